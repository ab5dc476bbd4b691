/* watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...], and the
 * interactive mode (-i) reading "watch ..." and "progress" lines from stdin. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl/printer.h"

typedef struct watch_flags {
  bool interactive, prefix, prev_kv, progress_notify;
  int64_t rev;
} watch_flags_t;

static watch_flags_t g_wf;

/* Flag table over a watch_flags_t (the global one, or a per-line copy in -i mode). */
#define WATCH_FLAGS(f)                                                                                        \
  {                                                                                                           \
    {"interactive", 'i', FLAG_BOOL, &(f).interactive, "Interactive mode", NULL, NULL},                        \
        {"prefix", 0, FLAG_BOOL, &(f).prefix, "Watch on a prefix if prefix is set", NULL, NULL},              \
        {"prev-kv", 0,   FLAG_BOOL, &(f).prev_kv, "get the previous key-value pair before the event happens", \
         NULL,      NULL},                                                                                    \
        {"progress-notify",                                                                                   \
         0,                                                                                                   \
         FLAG_BOOL,                                                                                           \
         &(f).progress_notify,                                                                                \
         "get periodic watch progress notification from server",                                              \
         NULL,                                                                                                \
         NULL},                                                                                               \
        {"rev", 0, FLAG_INT64, &(f).rev, "Revision to start watching", NULL, NULL},                           \
        {NULL, 0, 0, NULL, NULL, NULL, NULL},                                                                 \
  }

static const ctl_flag_t watch_flags[] = WATCH_FLAGS(g_wf);

/* Resets watch's flags. */
static void watch_reset(void) { memset(&g_wf, 0, sizeof(g_wf)); }

static pthread_mutex_t g_out_lock = PTHREAD_MUTEX_INITIALIZER;

/* One running watch and the command to run per event. */
typedef struct watcher {
  cetcd_watch_t *w;
  char **exec;
  int nexec;
} watcher_t;

/* Runs the exec command for one event with etcdctl's ETCD_WATCH_* variables; exits 1 when
 * it fails, as etcdctl does. */
static void run_exec(const watcher_t *wr, const cetcd_watch_event_batch_t *b, const cetcd_watch_event_t *e) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%lld", (long long)b->header.revision);
    setenv("ETCD_WATCH_REVISION", buf, 1);
    setenv("ETCD_WATCH_EVENT_TYPE", e->type == CETCD_EVENT_DELETE ? "\"DELETE\"" : "\"PUT\"", 1);
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    ctl_fquote(f, e->kv.key, e->kv.key_len);
    fclose(f);
    setenv("ETCD_WATCH_KEY", s, 1);
    free(s);
    f = open_memstream(&s, &len);
    ctl_fquote(f, e->kv.value, e->kv.value_len);
    fclose(f);
    setenv("ETCD_WATCH_VALUE", s, 1);
    execvp(wr->exec[0], wr->exec);
    _exit(127);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "command [");
    for (int i = 0; i < wr->nexec; i++) {
      if (i) fputc(' ', stderr);
      ctl_fquote(stderr, wr->exec[i], strlen(wr->exec[i]));
    }
    if (pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 127)
      fprintf(stderr, "] error (exec: \"%s\": executable file not found in $PATH)\n", wr->exec[0]);
    else if (pid > 0 && WIFSIGNALED(st))
      fprintf(stderr, "] error (signal: %s)\n", strsignal(WTERMSIG(st)));
    else
      fprintf(stderr, "] error (exit status %d)\n", WIFEXITED(st) ? WEXITSTATUS(st) : 1);
    exit(1);
  }
}

/* Prints (and runs the command for) every batch of a watch until it ends. */
static void *watch_loop(void *arg) {
  watcher_t *wr = arg;
  const ctl_printer_t *p = ctl_printer();
  for (;;) {
    cetcd_watch_event_batch_t *b = NULL;
    int rc = cetcd_watch_next(wr->w, -1, &b);
    if (rc == CETCD_ETIMEOUT) continue;
    if (rc != 0) break;
    pthread_mutex_lock(&g_out_lock);
    if (b->canceled) {
      const char *why = b->err == CETCD_ECOMPACTED ? ctl_errmsg(CETCD_ECOMPACTED)
                        : b->cancel_reason && b->cancel_reason[0]
                            ? b->cancel_reason
                            : ctl_errmsg(b->err ? b->err : CETCD_ECANCELED);
      fprintf(stderr, "watch was canceled (%s)\n", why);
    } else if (b->n_events == 0 && b->header.revision != 0) {
      printf("progress notify: %lld\n", (long long)b->header.revision);
    }
    if (p->watch) {
      p->watch(b);
    } else {
      pthread_mutex_unlock(&g_out_lock);
      ctl_require_format(false);
    }
    fflush(stdout);
    pthread_mutex_unlock(&g_out_lock);
    if (wr->nexec > 0)
      for (size_t i = 0; i < b->n_events; i++) run_exec(wr, b, &b->events[i]);
    bool end = b->canceled;
    cetcd_watch_batch_free(b);
    if (end) break;
  }
  return NULL;
}

/* Starts a watch on args (key [range_end]) with flags f. Returns 0 or a code; on a bad
 * argument combination writes the message to err. */
static int start_watch(cetcd_client_t *c, char **args, int nargs, const watch_flags_t *f, cetcd_watch_t **out,
                       char *err, size_t errlen) {
  if (nargs < 1) {
    snprintf(err, errlen, "bad number of arguments");
    return CETCD_EINVAL;
  }
  cetcd_watch_opts_t o = {0};
  const char *key = args[0];
  size_t klen = strlen(key);
  if (nargs == 2) {
    if (f->prefix) {
      snprintf(err, errlen, "`range_end` and `--prefix` are mutually exclusive");
      return CETCD_EINVAL;
    }
    o.range_end = args[1];
    o.range_end_len = strlen(args[1]);
  }
  if (f->prefix) {
    if (klen == 0) {
      key = "\0";
      klen = 1;
      o.from_key = true;
    } else {
      o.prefix = true;
    }
  }
  o.prev_kv = f->prev_kv;
  o.start_revision = f->rev;
  o.progress_notify = f->progress_notify;
  int rc = cetcd_watch_open(c, key, klen, &o, out);
  if (rc != 0) snprintf(err, errlen, "%s", ctl_errmsg(rc));
  return rc;
}

/* The interactive mode: one watch per "watch ..." line, "progress" requests progress. */
static int interactive(cetcd_client_t *c, const char *env_key, const char *env_range) {
  cetcd_watch_t *ws[256];
  size_t nws = 0;
  char *line = NULL;
  size_t cap = 0;
  for (;;) {
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0 || line[n - 1] != '\n') ctl_die(EXIT_INVALID_INPUT, "Error reading watch request line: EOF");
    line[n - 1] = 0;
    char **args;
    int na = ctl_argify(line, &args);
    if (na < 1) {
      fprintf(stderr, "Invalid command: %s (watch and progress supported)\n", line);
      continue;
    }
    if (strcmp(args[0], "progress") == 0) {
      for (size_t i = 0; i < nws; i++) cetcd_watch_request_progress(ws[i]);
      continue;
    }
    if (strcmp(args[0], "watch") != 0) {
      fprintf(stderr, "Invalid command %s (only support watch)\n", line);
      continue;
    }
    if (na < 2 && !env_key[0]) {
      fprintf(stderr, "Invalid command %s (command type or key is not provided)\n", line);
      continue;
    }
    watch_flags_t f = {0};
    const ctl_flag_t fl[] = WATCH_FLAGS(f);
    ctl_args_t a;
    char err[512];
    if (ctl_parse_flags(fl, false, na - 1, args + 1, &a, err, sizeof(err)) != 0)
      ctl_die(EXIT_BADARGS, "%s", err);
    if (a.dashdash && a.nexec == 0)
      ctl_die(EXIT_BADARGS, "bad number of arguments (found separator --, but no commands)");
    if (!a.dashdash && !env_key[0] && a.npos < 1) ctl_die(EXIT_BADARGS, "bad number of arguments");
    if (!a.dashdash && a.npos > 0 && env_key[0])
      ctl_die(EXIT_BADARGS, "bad number of arguments (found conflicting environment key)");
    char *eargs[2] = {(char *)env_key, (char *)env_range};
    char **wargs = env_key[0] ? eargs : a.pos;
    int nw = env_key[0] ? (env_range[0] ? 2 : 1) : a.npos;
    cetcd_watch_t *w = NULL;
    if (start_watch(c, wargs, nw, &f, &w, err, sizeof(err)) != 0 || nws == 256) {
      fprintf(stderr, "Invalid command %s (%s)\n", line, err);
      continue;
    }
    ws[nws++] = w;
    watcher_t *wr = calloc(1, sizeof(*wr));
    if (!wr) abort();
    wr->w = w;
    wr->exec = a.exec;
    wr->nexec = a.nexec;
    pthread_t t;
    pthread_create(&t, NULL, watch_loop, wr);
    pthread_detach(t);
  }
}

/* watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...] */
static int run_watch(ctl_args_t *a) {
  const char *env_key = getenv("ETCDCTL_WATCH_KEY"), *env_range = getenv("ETCDCTL_WATCH_RANGE_END");
  if (!env_key) env_key = "";
  if (!env_range) env_range = "";
  if (!env_key[0] && env_range[0])
    ctl_die(EXIT_BADARGS, "ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=\"%s\"", env_range);
  if (g_wf.interactive) {
    cetcd_client_t *c = ctl_client();
    return interactive(c, env_key, env_range);
  }
  if (a->dashdash && a->nexec == 0)
    ctl_die(EXIT_BADARGS, "bad number of arguments (found separator --, but no commands)");
  if (!a->dashdash && a->npos < 1 && !env_key[0]) ctl_die(EXIT_BADARGS, "bad number of arguments");
  if (env_key[0] && a->npos > 0)
    ctl_die(EXIT_BADARGS, "bad number of arguments (found conflicting environment key)");
  char *eargs[2] = {(char *)env_key, (char *)env_range};
  char **wargs = env_key[0] ? eargs : a->pos;
  int nw = env_key[0] ? (env_range[0] ? 2 : 1) : a->npos;
  cetcd_client_t *c = ctl_client();
  cetcd_watch_t *w = NULL;
  char err[512];
  int rc = start_watch(c, wargs, nw, &g_wf, &w, err, sizeof(err));
  if (rc == CETCD_EINVAL) ctl_die(EXIT_BADARGS, "%s", err);
  if (rc != 0) ctl_die(EXIT_BADCONN, "%s", err);
  watcher_t wr = {w, a->exec, a->nexec};
  watch_loop(&wr);
  cetcd_watch_free(w);
  cetcd_client_free(c);
  ctl_die(EXIT_INTERRUPTED, "watch is canceled by the server");
}

const ctl_cmd_t ctl_cmd_watch = {
    "watch",
    "watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
    "Watches events stream on keys or prefixes",
    run_watch,
    watch_flags,
    NULL,
    watch_reset};
