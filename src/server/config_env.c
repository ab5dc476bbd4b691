/* ETCD_* environment variables (etcd's flags.SetFlagsFromEnv): ETCD_<FLAG_NAME> sets a
 * flag not given on the command line; unknown and shadowed variables are warned about. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "server/config_int.h"

/* ETCD_* variables that are not flags and are ignored without a warning. */
static const char *const quiet_env[] = {"ETCD_UNSUPPORTED_ARCH", "ETCD_VERIFY", "ETCD_CONFIG_FILE", NULL};

/* Builds the ETCD_* variable name of a flag into out. */
static void env_name(const char *flag, char *out, size_t outlen) {
  size_t n = (size_t)snprintf(out, outlen, "ETCD_");
  for (const char *p = flag; *p && n + 1 < outlen; p++)
    out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
  out[n] = '\0';
}

/* Looks up NAME in envp; returns its value or NULL. */
const char *config_env_get(char **envp, const char *name) {
  size_t nl = strlen(name);
  for (char **e = envp; e && *e; e++)
    if (!strncmp(*e, name, nl) && (*e)[nl] == '=') return *e + nl + 1;
  return NULL;
}

/* Applies ETCD_* variables for flags not given on the command line (etcd's
 * SetFlagsFromEnv), warning about shadowed and unrecognized ones. */
int config_parse_env(pctx_t *px, char **envp, char *err, size_t errlen) {
  char key[96], msg[512], why[384];
  for (char **e = envp; e && *e; e++) {
    const char *kv = *e;
    if (strncmp(kv, "ETCD_", 5)) continue;
    const char *eq = strchr(kv, '=');
    if (!eq) continue;
    size_t kl = (size_t)(eq - kv);
    const char *val = eq + 1;
    int fi = -1;
    for (size_t i = 0; i < config_nflags && fi < 0; i++) {
      if (config_flag_defs[i].type == T_SECTION || !strcmp(config_flag_defs[i].name, "config-file")) continue;
      env_name(config_flag_defs[i].name, key, sizeof(key));
      if (strlen(key) == kl && !memcmp(key, kv, kl)) fi = (int)i;
    }
    if (fi < 0) {
      bool quiet = false;
      for (const char *const *q = quiet_env; *q; q++)
        if (strlen(*q) == kl && !memcmp(*q, kv, kl)) quiet = true;
      if (!quiet) config_warnf(px->cfg, "unrecognized environment variable %s", kv);
      continue;
    }
    const flag_def_t *f = &config_flag_defs[fi];
    if (!strcmp(f->name, "version")) { /* container images often set ETCD_VERSION=3.x.y */
      config_warnf(px->cfg, "environment variable %s ignored (use --version)", kv);
      continue;
    }
    if (px->cmdline[fi]) {
      config_warnf(px->cfg,
                   "environment variable %.*s is shadowed by the command-line flag --%s; using the flag",
                   (int)kl, kv, f->name);
      continue;
    }
    if (val[0] == '\0') continue; /* etcd ignores empty values */
    if (config_set_value(px->cfg, f, val, why, sizeof(why))) {
      snprintf(msg, sizeof(msg), "invalid value \"%s\" for %.*s: %s", val, (int)kl, kv, why);
      return config_verify_fail(err, errlen, msg);
    }
    px->set[fi] = true;
    config_note_ignored(px->cfg, f);
  }
  return 0;
}
