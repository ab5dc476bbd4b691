/* cetcdctl entry point: global flags and ETCDCTL_* environment variables, the command
 * table, flag parsing (pflag conventions: interspersed flags, --name=value, --name value,
 * -w json, "--" ends flags) and dispatch. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/printer.h"

ctl_global_t g_ctl;

static ctl_strings_t g_endpoints;
static bool g_changed[32];

/* Global flags, in etcdctl's order. */
static const ctl_flag_t g_flags[] = {
    {"cacert", 0, FLAG_STRING, &g_ctl.cacert,
     "verify certificates of TLS-enabled secure servers using this CA bundle", &g_changed[0], NULL},
    {"cert", 0, FLAG_STRING, &g_ctl.cert, "identify secure client using this TLS certificate file",
     &g_changed[1], NULL},
    {"command-timeout", 0, FLAG_DURATION, &g_ctl.command_timeout_ms,
     "timeout for short running command (excluding dial timeout)", &g_changed[2], "=5s"},
    {"debug", 0, FLAG_BOOL, &g_ctl.debug, "enable client-side debug logging", &g_changed[3], NULL},
    {"dial-timeout", 0, FLAG_DURATION, &g_ctl.dial_timeout_ms, "dial timeout for client connections",
     &g_changed[4], "=2s"},
    {"discovery-srv", 'd', FLAG_STRING, &g_ctl.discovery_srv,
     "domain name to query for SRV records describing cluster endpoints", &g_changed[5], NULL},
    {"discovery-srv-name", 0, FLAG_STRING, &g_ctl.discovery_srv_name,
     "service name to query when using DNS discovery", &g_changed[6], NULL},
    {"endpoints", 0, FLAG_STRINGS, &g_endpoints, "gRPC endpoints", &g_changed[7], "=[127.0.0.1:2379]"},
    {"hex", 0, FLAG_BOOL, &g_ctl.hex, "print byte strings as hex encoded strings", &g_changed[8], NULL},
    {"insecure-discovery", 0, FLAG_BOOL, &g_ctl.insecure_discovery,
     "accept insecure SRV records describing cluster endpoints", &g_changed[9], "[=true]"},
    {"insecure-skip-tls-verify", 0, FLAG_BOOL, &g_ctl.insecure_skip_verify,
     "skip server certificate verification (CAUTION: this option should be enabled only for testing "
     "purposes)",
     &g_changed[10], NULL},
    {"insecure-transport", 0, FLAG_BOOL, &g_ctl.insecure_transport,
     "disable transport security for client connections", &g_changed[11], "[=true]"},
    {"keepalive-time", 0, FLAG_DURATION, &g_ctl.keepalive_time_ms, "keepalive time for client connections",
     &g_changed[12], "=2s"},
    {"keepalive-timeout", 0, FLAG_DURATION, &g_ctl.keepalive_timeout_ms,
     "keepalive timeout for client connections", &g_changed[13], "=6s"},
    {"key", 0, FLAG_STRING, &g_ctl.key, "identify secure client using this TLS key file", &g_changed[14],
     NULL},
    {"password", 0, FLAG_STRING, &g_ctl.password,
     "password for authentication (if this option is used, --user option shouldn't include password)",
     &g_changed[15], NULL},
    {"user", 0, FLAG_STRING, &g_ctl.user,
     "username[:password] for authentication (prompt if password is not supplied)", &g_changed[16], NULL},
    {"write-out", 'w', FLAG_STRING, &g_ctl.write_out, "set the output format (fields, json, simple, table)",
     &g_changed[17], "=\"simple\""},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

/* Sets the global defaults (etcdctl's). */
static void global_defaults(void) {
  memset(&g_ctl, 0, sizeof(g_ctl));
  g_ctl.dial_timeout_ms = 2000;
  g_ctl.command_timeout_ms = 5000;
  g_ctl.keepalive_time_ms = 2000;
  g_ctl.keepalive_timeout_ms = 6000;
  g_ctl.write_out = "simple";
  g_ctl.insecure_transport = true;
  g_ctl.insecure_discovery = true;
}

/* Looks a long flag up in one table. */
static const ctl_flag_t *find_long(const ctl_flag_t *t, const char *name, size_t n) {
  for (; t && t->name; t++)
    if (strlen(t->name) == n && memcmp(t->name, name, n) == 0) return t;
  return NULL;
}

/* Looks a shorthand flag up in one table. */
static const ctl_flag_t *find_short(const ctl_flag_t *t, char c) {
  for (; t && t->name; t++)
    if (t->shorthand == c) return t;
  return NULL;
}

/* Parses a Go-style bool ("1", "t", "true", "TRUE", ...). */
static int parse_bool(const char *v, bool *out) {
  static const char *yes[] = {"1", "t", "T", "true", "TRUE", "True"};
  static const char *no[] = {"0", "f", "F", "false", "FALSE", "False"};
  for (size_t i = 0; i < 6; i++) {
    if (strcmp(v, yes[i]) == 0) return *out = true, 0;
    if (strcmp(v, no[i]) == 0) return *out = false, 0;
  }
  return -1;
}

/* Stores value into flag f; writes pflag's message into err on failure. */
static int set_flag(const ctl_flag_t *f, const char *shown, const char *v, char *err, size_t errlen) {
  char perr[256];
  switch (f->type) {
    case FLAG_BOOL:
      if (parse_bool(v, (bool *)f->ptr) != 0) {
        snprintf(err, errlen,
                 "invalid argument \"%s\" for \"%s\" flag: strconv.ParseBool: parsing \"%s\": invalid syntax",
                 v, shown, v);
        return -1;
      }
      break;
    case FLAG_STRING:
      *(char **)f->ptr = (char *)v;
      break;
    case FLAG_INT64:
    case FLAG_INT: {
      int64_t x;
      if (ctl_parse_int(v, 10, &x, perr, sizeof(perr)) != 0) {
        snprintf(err, errlen, "invalid argument \"%s\" for \"%s\" flag: %s", v, shown, perr);
        return -1;
      }
      if (f->type == FLAG_INT)
        *(int *)f->ptr = (int)x;
      else
        *(int64_t *)f->ptr = x;
      break;
    }
    case FLAG_DURATION:
      if (ctl_parse_duration(v, (int64_t *)f->ptr) != 0) {
        snprintf(err, errlen, "invalid argument \"%s\" for \"%s\" flag: time: invalid duration \"%s\"", v,
                 shown, v);
        return -1;
      }
      break;
    case FLAG_STRINGS: {
      ctl_strings_t *s = f->ptr;
      if (!s->set) s->n = 0;
      s->set = true;
      const char *p = v;
      for (;;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        char **nv = realloc(s->v, (s->n + 1) * sizeof(char *));
        if (!nv) abort();
        s->v = nv;
        while (n && isspace((unsigned char)*p)) p++, n--;
        while (n && isspace((unsigned char)p[n - 1])) n--;
        s->v[s->n++] = strndup(p, n);
        if (!c) break;
        p = c + 1;
      }
      break;
    }
  }
  if (f->changed) *f->changed = true;
  return 0;
}

int ctl_parse_flags(const ctl_flag_t *flags, bool with_global, int argc, char **argv, ctl_args_t *out,
                    char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  out->pos = calloc((size_t)argc + 1, sizeof(char *));
  out->exec = calloc((size_t)argc + 1, sizeof(char *));
  if (!out->pos || !out->exec) abort();
  const ctl_flag_t *glob = with_global ? g_flags : NULL;
  for (int i = 0; i < argc; i++) {
    char *a = argv[i];
    if (out->dashdash) {
      out->exec[out->nexec++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      out->dashdash = true;
      continue;
    }
    if (a[0] != '-' || a[1] == 0) {
      out->pos[out->npos++] = a;
      continue;
    }
    const ctl_flag_t *f;
    const char *val = NULL;
    char shown[128];
    if (a[1] == '-') {
      const char *name = a + 2, *eq = strchr(name, '=');
      size_t n = eq ? (size_t)(eq - name) : strlen(name);
      f = find_long(flags, name, n);
      if (!f) f = find_long(glob, name, n);
      if (!f) {
        snprintf(err, errlen, "unknown flag: --%.*s", (int)n, name);
        return -1;
      }
      snprintf(shown, sizeof(shown), "--%s", f->name);
      if (eq) val = eq + 1;
    } else {
      f = find_short(flags, a[1]);
      if (!f) f = find_short(glob, a[1]);
      if (!f) {
        snprintf(err, errlen, "unknown shorthand flag: '%c' in %s", a[1], a);
        return -1;
      }
      snprintf(shown, sizeof(shown), "-%c, --%s", f->shorthand, f->name);
      if (a[2] == '=')
        val = a + 3;
      else if (a[2])
        val = a + 2;
    }
    if (!val) {
      if (f->type == FLAG_BOOL) {
        val = "true";
      } else if (i + 1 < argc) {
        val = argv[++i];
      } else {
        snprintf(err, errlen, "flag needs an argument: %s", a);
        return -1;
      }
    }
    if (set_flag(f, shown, val, err, errlen) != 0) return -1;
  }
  return 0;
}

void ctl_args_free(ctl_args_t *a) {
  free(a->pos);
  free(a->exec);
  a->pos = a->exec = NULL;
}

/* Applies ETCDCTL_<FLAG> variables to global flags not given on the command line. */
static int apply_env(char *err, size_t errlen) {
  for (const ctl_flag_t *f = g_flags; f->name; f++) {
    if (*f->changed) continue;
    char name[64] = "ETCDCTL_";
    size_t j = strlen(name);
    for (const char *p = f->name; *p && j + 1 < sizeof(name); p++)
      name[j++] = *p == '-' ? '_' : (char)toupper(*p);
    name[j] = 0;
    const char *v = getenv(name);
    if (!v) continue;
    char shown[80];
    snprintf(shown, sizeof(shown), "--%s", f->name);
    if (set_flag(f, shown, v, err, errlen) != 0) {
      return -1;
    }
    *f->changed = false; /* set from env, not the command line */
  }
  return 0;
}

/* The top-level commands. */
static const ctl_cmd_t *const g_cmds[] = {
    &ctl_cmd_alarm,
    &ctl_cmd_auth,
    &ctl_cmd_churn,
    &ctl_cmd_compaction,
    &ctl_cmd_defrag,
    &ctl_cmd_del,
    &ctl_cmd_elect,
    &ctl_cmd_endpoint,
    &ctl_cmd_get,
    &ctl_cmd_lease,
    &ctl_cmd_lock,
    &ctl_cmd_member,
    &ctl_cmd_move_leader,
    &ctl_cmd_primary,
    &ctl_cmd_put,
    &ctl_cmd_role,
    &ctl_cmd_snapshot,
    &ctl_cmd_txn,
    &ctl_cmd_user,
    &ctl_cmd_version,
    &ctl_cmd_watch,
    NULL,
};

/* The "--name=default" part of a flag's usage line. */
static void flag_head(const ctl_flag_t *t, char *buf, size_t len) {
  const char *def = t->def;
  if (!def)
    def = t->type == FLAG_BOOL       ? "[=false]"
          : t->type == FLAG_STRING   ? "=\"\""
          : t->type == FLAG_DURATION ? "=0s"
                                     : "=0";
  if (t->shorthand)
    snprintf(buf, len, "  -%c, --%s%s", t->shorthand, t->name, def);
  else
    snprintf(buf, len, "      --%s%s", t->name, def);
}

/* Orders flags by name. */
static int flag_cmp(const void *a, const void *b) {
  return strcmp((*(const ctl_flag_t *const *)a)->name, (*(const ctl_flag_t *const *)b)->name);
}

/* Prints flags like etcdctl's usage template: sorted, usage text aligned with tabs (Go's
 * tabwriter with tab padding). help, when set, adds "-h, --help" for that command. */
static void print_flags(FILE *f, const ctl_flag_t *t, const char *help) {
  const ctl_flag_t *v[64];
  size_t n = 0;
  static ctl_flag_t h = {"help", 'h', FLAG_BOOL, NULL, NULL, NULL, NULL};
  char hu[64];
  if (help) {
    snprintf(hu, sizeof(hu), "help for %s", help);
    h.usage = hu;
    v[n++] = &h;
  }
  for (; t && t->name && n < 64; t++) v[n++] = t;
  qsort(v, n, sizeof(v[0]), flag_cmp);
  size_t w = 0;
  char head[128];
  for (size_t i = 0; i < n; i++) {
    flag_head(v[i], head, sizeof(head));
    if (strlen(head) > w) w = strlen(head);
  }
  size_t col = (w + 1 + 7) / 8 * 8;
  for (size_t i = 0; i < n; i++) {
    flag_head(v[i], head, sizeof(head));
    fputs(head, f);
    for (size_t c = strlen(head) / 8 * 8; c < col; c += 8) fputc('\t', f);
    fprintf(f, "%s\n", v[i]->usage ? v[i]->usage : "");
  }
}

/* Prints the usage of a command (or of the whole tool when c is NULL). */
static void usage(FILE *f, const ctl_cmd_t *c, const char *path) {
  const ctl_cmd_t *list = NULL;
  size_t nl = 0;
  if (!c) {
    fprintf(f,
            "NAME:\n\tcetcdctl - A simple command line client for etcd3.\n\nUSAGE:\n\tcetcdctl [flags]\n\n"
            "VERSION:\n\t0.1.0\n\nAPI VERSION:\n\t3.4\n\n\nCOMMANDS:\n");
    size_t w = 0;
    for (size_t i = 0; g_cmds[i]; i++) w = strlen(g_cmds[i]->name) > w ? strlen(g_cmds[i]->name) : w;
    for (size_t i = 0; g_cmds[i]; i++) {
      fprintf(f, "\t%s", g_cmds[i]->name);
      for (size_t col = strlen(g_cmds[i]->name) / 8 * 8; col < (w + 8) / 8 * 8; col += 8) fputc('\t', f);
      fprintf(f, "%s\n", g_cmds[i]->short_desc);
    }
    fprintf(f, "\nOPTIONS:\n");
    print_flags(f, NULL, "cetcdctl");
  } else {
    const char *args = c->use ? c->use + strcspn(c->use, " ") : "";
    fprintf(f, "NAME:\n\t%s - %s\n\nUSAGE:\n\tcetcdctl %s%s [flags]\n\n", path, c->short_desc, path, args);
    if (c->subs) {
      fprintf(f, "API VERSION:\n\t3.4\n\n\nCOMMANDS:\n");
      list = c->subs;
      size_t w = 0;
      for (const ctl_cmd_t *s = list; s->name; s++, nl++) w = strlen(s->name) > w ? strlen(s->name) : w;
      for (const ctl_cmd_t *s = list; s->name; s++) {
        fprintf(f, "\t%s", s->name);
        for (size_t col = strlen(s->name) / 8 * 8; col < (w + 8) / 8 * 8; col += 8) fputc('\t', f);
        fprintf(f, "%s\n", s->short_desc);
      }
      fputc('\n', f);
    }
    fprintf(f, "OPTIONS:\n");
    print_flags(f, c->flags, c->name);
  }
  fprintf(f, "\nGLOBAL OPTIONS:\n");
  print_flags(f, g_flags, NULL);
  fputc('\n', f);
}

/* True when arg is a global flag that takes its value in the next argument. */
static bool global_takes_next(const char *a) {
  if (a[0] != '-' || strchr(a, '=')) return false;
  const ctl_flag_t *f =
      a[1] == '-' ? find_long(g_flags, a + 2, strlen(a + 2)) : (a[2] ? NULL : find_short(g_flags, a[1]));
  return f && f->type != FLAG_BOOL;
}

/* Finds the next non-flag word in argv[from..argc) (stopping at "--"); -1 if none. */
static int next_word(int argc, char **argv, int from) {
  for (int i = from; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) return -1;
    if (argv[i][0] == '-' && argv[i][1]) {
      if (global_takes_next(argv[i])) i++;
      continue;
    }
    return i;
  }
  return -1;
}

/* Selects the printer from --write-out. */
static void select_format(void) {
  const char *w = g_ctl.write_out;
  if (strcmp(w, "simple") == 0)
    g_ctl.fmt = FMT_SIMPLE;
  else if (strcmp(w, "json") == 0)
    g_ctl.fmt = FMT_JSON;
  else if (strcmp(w, "fields") == 0)
    g_ctl.fmt = FMT_FIELDS;
  else if (strcmp(w, "table") == 0)
    g_ctl.fmt = FMT_TABLE;
  else if (strcmp(w, "protobuf") == 0)
    ctl_die(EXIT_BADFEATURE, "protobuf not supported as output format");
  else
    ctl_die(EXIT_BADFEATURE, "unsupported output format");
}

/* Parses the arguments, finds the command and runs it. */
int main(int argc, char **argv) {
  global_defaults();
  setvbuf(stdout, NULL, _IOLBF, 0);
  int ci = next_word(argc, argv, 1);
  if (ci < 0) {
    for (int i = 1; i < argc; i++)
      if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) break;
    usage(stdout, NULL, NULL);
    return 0;
  }
  const ctl_cmd_t *cmd = NULL;
  for (size_t i = 0; g_cmds[i]; i++)
    if (strcmp(g_cmds[i]->name, argv[ci]) == 0) cmd = g_cmds[i];
  if (!cmd) {
    fprintf(stderr, "Error: unknown command \"%s\" for \"cetcdctl\"\nRun 'cetcdctl --help' for usage.\n",
            argv[ci]);
    fprintf(stderr, "Error: unknown command \"%s\" for \"cetcdctl\"\n", argv[ci]);
    return EXIT_ERR;
  }
  char path[128];
  snprintf(path, sizeof(path), "%s", cmd->name);
  int si = -1;
  if (cmd->subs) {
    si = next_word(argc, argv, ci + 1);
    const ctl_cmd_t *sub = NULL;
    if (si >= 0)
      for (const ctl_cmd_t *s = cmd->subs; s->name; s++)
        if (strcmp(s->name, argv[si]) == 0) sub = s;
    if (!sub) {
      usage(stdout, cmd, path);
      return 0;
    }
    snprintf(path, sizeof(path), "%s %s", cmd->name, sub->name);
    cmd = sub;
  }
  g_ctl.cmd_path = path;
  /* Everything except the command words goes to the flag parser. */
  char **rest = calloc((size_t)argc, sizeof(char *));
  int nrest = 0;
  if (!rest) abort();
  for (int i = 1; i < argc; i++)
    if (i != ci && i != si) rest[nrest++] = argv[i];
  for (int i = 0; i < nrest && strcmp(rest[i], "--") != 0; i++)
    if (strcmp(rest[i], "--help") == 0 || strcmp(rest[i], "-h") == 0) {
      usage(stdout, cmd, path);
      return 0;
    }
  if (cmd->reset) cmd->reset();
  ctl_args_t args;
  char err[512];
  if (ctl_parse_flags(cmd->flags, true, nrest, rest, &args, err, sizeof(err)) != 0) {
    fprintf(stderr, "Error: %s\n", err);
    fflush(stderr);
    usage(stdout, cmd, path);
    fflush(stdout);
    fprintf(stderr, "\nError: %s\n", err);
    return EXIT_ERR;
  }
  if (apply_env(err, sizeof(err)) != 0) ctl_die(EXIT_ERR, "%s", err);
  if (g_endpoints.n) {
    g_ctl.endpoints = g_endpoints.v;
    g_ctl.n_endpoints = g_endpoints.n;
  } else {
    static char *def[] = {"127.0.0.1:2379"};
    g_ctl.endpoints = def;
    g_ctl.n_endpoints = 1;
  }
  g_ctl.command_timeout_set = g_changed[2] || getenv("ETCDCTL_COMMAND_TIMEOUT");
  select_format();
  int rc = cmd->run(&args);
  ctl_args_free(&args);
  free(rest);
  fflush(stdout);
  return rc;
}
