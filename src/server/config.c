/* The configuration's entry point (config_parse) and the command line (Go's flag package
 * rules). The other sources and steps live beside it: config_flags.c (the flag table,
 * defaults, help), config_values.c (Go value parsing), config_env.c (ETCD_* variables),
 * config_file.c (the YAML file, libyaml), config_validate.c (checks and derived values). */
#include "server/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "server/config_int.h"

/* Parses argv with Go's flag package rules. Returns 0, CONFIG_HELP, or CETCD_EINVAL. */
static int parse_args(pctx_t *px, int argc, char **argv, char *err, size_t errlen) {
  char msg[512], why[384];
  int i = 1;
  for (; i < argc; i++) {
    const char *s = argv[i];
    if (!s || strlen(s) < 2 || s[0] != '-') break; /* first non-flag argument */
    int minuses = 1;
    if (s[1] == '-') {
      minuses = 2;
      if (s[2] == '\0') { /* "--" ends the flags */
        i++;
        break;
      }
    }
    const char *name = s + minuses;
    if (name[0] == '\0' || name[0] == '-' || name[0] == '=') {
      snprintf(msg, sizeof(msg), "bad flag syntax: %s", s);
      return config_verify_fail(err, errlen, msg);
    }
    const char *eq = strchr(name, '=');
    size_t nl = eq ? (size_t)(eq - name) : strlen(name);
    int fi = config_find_flag(name, nl);
    if (fi < 0) {
      if ((nl == 4 && !memcmp(name, "help", 4)) || (nl == 1 && name[0] == 'h')) return CONFIG_HELP;
      snprintf(msg, sizeof(msg), "flag provided but not defined: -%.*s", (int)nl, name);
      return config_verify_fail(err, errlen, msg);
    }
    const flag_def_t *f = &config_flag_defs[fi];
    const char *val;
    if (f->type == T_BOOL || f->type == T_IGN) {
      val = eq ? eq + 1 : "true";
      if (f->type == T_BOOL) {
        bool b;
        if (config_go_parse_bool(val, &b)) {
          snprintf(msg, sizeof(msg), "invalid boolean value \"%s\" for -%s: parse error", val, f->name);
          return config_verify_fail(err, errlen, msg);
        }
        if (!strcmp(f->name, "version")) px->version = b;
      }
    } else if (eq) {
      val = eq + 1;
    } else if (i + 1 < argc) {
      val = argv[++i];
    } else {
      snprintf(msg, sizeof(msg), "flag needs an argument: -%s", f->name);
      return config_verify_fail(err, errlen, msg);
    }
    if (config_set_value(px->cfg, f, val, why, sizeof(why))) {
      snprintf(msg, sizeof(msg), "invalid value \"%s\" for flag -%s: %s", val, f->name, why);
      return config_verify_fail(err, errlen, msg);
    }
    px->set[fi] = px->cmdline[fi] = true;
  }
  if (i < argc) {
    snprintf(msg, sizeof(msg), "'%s' is not a valid flag", argv[i]);
    return config_verify_fail(err, errlen, msg);
  }
  return 0;
}

/* Merges the command line, the environment or the config file, then validates (config.h). */
int config_parse(cetcd_config_t *cfg, int argc, char **argv, char **envp, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  pctx_t *px = xcalloc(1, sizeof(*px));
  px->cfg = cfg;
  char msg[1024];
  int exit_status = 2; /* Go's flag package exits 2; etcd's later checks exit 1 */
  int rc = parse_args(px, argc, argv, err, errlen);
  if (rc == CONFIG_HELP) {
    if (!cfg->quiet) config_print_help(stdout);
    goto out;
  }
  if (rc) goto out;
  exit_status = 1;
  if (px->version) {
    if (!cfg->quiet) config_print_version(stdout);
    rc = CONFIG_VERSION;
    goto out;
  }
  if (!cfg->config_file[0]) {
    const char *e = config_env_get(envp, "ETCD_CONFIG_FILE");
    if (e && *e) config_set_str(&cfg->config_file, e);
  }
  if (cfg->config_file[0]) {
    /* etcd: the file is the only source; flags and environment are ignored. */
    char *path = xstrdup(cfg->config_file);
    bool quiet = cfg->quiet;
    size_t given = 0;
    for (size_t i = 0; i < config_nflags; i++)
      if (px->cmdline[i] && strcmp(config_flag_defs[i].name, "config-file")) given++;
    char **warnings = cfg->warnings;
    size_t n_warnings = cfg->n_warnings;
    cfg->warnings = NULL;
    cfg->n_warnings = 0;
    config_free(cfg);
    config_defaults(cfg);
    cfg->warnings = warnings;
    cfg->n_warnings = n_warnings;
    cfg->quiet = quiet;
    config_set_str(&cfg->config_file, path);
    free(path);
    cfg->from_config_file = true;
    memset(px->set, 0, sizeof(px->set));
    memset(px->cmdline, 0, sizeof(px->cmdline));
    if (given)
      config_warnf(
          cfg,
          "loaded configuration from %s; the other %zu command-line flag(s) and ETCD_* variables are ignored",
          cfg->config_file, given);
    rc = config_file_load(px, cfg->config_file, msg, sizeof(msg));
    if (rc) {
      config_verify_fail(err, errlen, msg);
      goto out;
    }
  } else {
    rc = config_parse_env(px, envp, err, errlen);
    if (rc) goto out;
    for (size_t i = 0; i < config_nflags; i++)
      if (px->cmdline[i]) config_note_ignored(cfg, &config_flag_defs[i]);
    /* etcd drops the default advertise-client-urls once listen-client-urls is given. */
    int lc = config_find_flag("listen-client-urls", 18), ac = config_find_flag("advertise-client-urls", 21);
    if (px->set[lc] && !px->set[ac])
      config_strv_free(&cfg->advertise_client_urls, &cfg->n_advertise_client_urls);
  }
  rc = config_validate(px, msg, sizeof(msg));
  if (rc) config_verify_fail(err, errlen, msg);
out:
  if (rc < 0) cfg->error_exit = exit_status;
  free(px);
  return rc;
}
