/* Validation and derived values (etcd's Config.Validate and friends): the default data
 * dir and initial cluster, URL rules, timeouts, auto-compaction retention, --auth-token,
 * the backend quota. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "server/config_int.h"
#include "server/urls.h"

/* ---- validation and derived values ------------------------------------------------------ */

/* Parses --auth-token into its type and jwt options. */
static int parse_auth_token(cetcd_config_t *cfg, char *err, size_t errlen) {
  static const char *const methods[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                                        "ES384", "ES512", "HS256", "HS384", "HS512", NULL};
  char **parts;
  size_t n;
  const char *tok = cfg->auth_token;
  /* etcd splits on every comma; an empty first part means no token provider. */
  size_t tl = strcspn(tok, ",");
  char *type = xmemdup(tok, tl);
  config_split_list(tok[tl] ? tok + tl + 1 : "", false, &parts, &n);
  int rc = 0;
  config_set_str(&cfg->auth_token_type, type);
  config_set_str(&cfg->jwt_pub_key, "");
  config_set_str(&cfg->jwt_priv_key, "");
  config_set_str(&cfg->jwt_sign_method, "");
  cfg->jwt_ttl_ms = 5 * 60 * 1000;
  if (strcmp(type, "simple") && strcmp(type, "jwt") && strcmp(type, "")) {
    rc = config_errf(err, errlen,
                     "invalid --auth-token \"%s\": unknown token type \"%s\" (use simple or jwt)", tok, type);
    goto out;
  }
  bool seen[4] = {false};
  for (size_t i = 0; i < n; i++) {
    char *e = strchr(parts[i], '=');
    if (!e || strchr(e + 1, '=')) {
      rc = config_errf(err, errlen, "invalid --auth-token \"%s\": option \"%s\" is not key=value", tok,
                       parts[i]);
      goto out;
    }
    *e = '\0';
    const char *k = parts[i], *v = e + 1;
    int idx = !strcmp(k, "pub-key")       ? 0
              : !strcmp(k, "priv-key")    ? 1
              : !strcmp(k, "sign-method") ? 2
              : !strcmp(k, "ttl")         ? 3
                                          : -1;
    if (idx < 0) {
      config_warnf(cfg, "--auth-token: unknown option \"%s\" ignored", k);
      continue;
    }
    if (seen[idx]) {
      rc = config_errf(err, errlen, "invalid --auth-token \"%s\": duplicated option \"%s\"", tok, k);
      goto out;
    }
    seen[idx] = true;
    if (idx == 0) config_set_str(&cfg->jwt_pub_key, v);
    if (idx == 1) config_set_str(&cfg->jwt_priv_key, v);
    if (idx == 2) config_set_str(&cfg->jwt_sign_method, v);
    if (idx == 3 && *v) {
      int64_t ns;
      if (config_parse_duration(v, &ns) || ns <= 0) {
        rc = config_errf(err, errlen, "invalid --auth-token \"%s\": bad ttl \"%s\"", tok, v);
        goto out;
      }
      cfg->jwt_ttl_ms = config_ns_to_ms(ns);
    }
  }
  if (!strcmp(type, "jwt")) {
    bool ok = false;
    for (const char *const *m = methods; *m; m++)
      if (!strcmp(*m, cfg->jwt_sign_method)) ok = true;
    if (!ok) {
      rc = config_errf(
          err, errlen,
          "invalid --auth-token \"%s\": jwt needs sign-method=RS256|RS384|RS512|PS256|PS384|PS512|"
          "ES256|ES384|ES512|HS256|HS384|HS512",
          tok);
      goto out;
    }
    if (!cfg->jwt_pub_key[0] && !cfg->jwt_priv_key[0]) {
      rc = config_errf(err, errlen, "invalid --auth-token \"%s\": jwt needs pub-key and/or priv-key", tok);
      goto out;
    }
  }
out:
  free(type);
  config_strv_free(&parts, &n);
  return rc;
}

/* Parses --auto-compaction-retention for the chosen mode (etcd's parseCompactionRetention). */
static int parse_retention(cetcd_config_t *cfg, bool retention_set, char *err, size_t errlen) {
  const char *r = cfg->auto_compaction_retention;
  cfg->auto_compaction_period_ms = 0;
  cfg->auto_compaction_revisions = 0;
  int64_t n;
  bool is_int = config_go_parse_int64(r, &n) == 0 && strspn(r, "0123456789") == strlen(r);
  if (cfg->auto_compaction_mode == CONFIG_COMPACT_REVISION) {
    if (!retention_set) return 0; /* the "1h" default is for periodic mode only */
    if (!is_int)
      return config_errf(
          err, errlen,
          "invalid --auto-compaction-retention \"%s\": revision mode needs a number of revisions", r);
    cfg->auto_compaction_revisions = n;
    return 0;
  }
  if (is_int) {
    if (n > INT64_MAX / 3600000)
      return config_errf(err, errlen, "invalid --auto-compaction-retention \"%s\": too large", r);
    cfg->auto_compaction_period_ms = n * 3600000; /* a bare number means hours */
    return 0;
  }
  int64_t ns;
  if (config_parse_duration(r, &ns) || ns < 0)
    return config_errf(
        err, errlen,
        "invalid --auto-compaction-retention \"%s\": expected hours (\"1\") or a duration (\"30m\", "
        "\"1h30m\")",
        r);
  cfg->auto_compaction_period_ms = config_ns_to_ms(ns);
  return 0;
}

/* Validates one URL list with check (bind or advertise rules). */
static int check_urls(char **v, size_t n, bool bind, const char *flag, char *err, size_t errlen) {
  char why[256];
  for (size_t i = 0; i < n; i++) {
    url_t u;
    if (urls_parse_one(v[i], &u, why, sizeof(why)))
      return config_errf(err, errlen, "invalid --%s \"%s\": %s", flag, v[i], why);
    int rc = bind ? urls_check_bind(&u, why, sizeof(why)) : urls_check_advertise(&u, why, sizeof(why));
    urls_free_one(&u);
    if (rc) {
      if (bind) return config_errf(err, errlen, "invalid --%s: %s", flag, why);
      char joined[512] = "";
      for (size_t j = 0; j < n; j++) {
        size_t l = strlen(joined);
        snprintf(joined + l, sizeof(joined) - l, "%s%s", j ? "," : "", v[j]);
      }
      return config_errf(err, errlen, "--%s \"%s\" must be \"host:port\" (%s)", flag, joined, why);
    }
  }
  return 0;
}

/* Fills derived values and checks the combination (etcd's Config.Validate). */
int config_validate(pctx_t *px, char *err, size_t errlen) {
  cetcd_config_t *cfg = px->cfg;
  int fi;
#define WAS_SET(nm) ((fi = config_find_flag(nm, strlen(nm))) >= 0 && px->set[fi])
  if (cfg->debug) config_set_str(&cfg->log_level, "debug");
  if (!cfg->data_dir[0]) {
    size_t n = strlen(cfg->name) + 6;
    char *d = xmalloc(n);
    snprintf(d, n, "%s.etcd", cfg->name);
    free(cfg->data_dir);
    cfg->data_dir = d;
  }
  if (!cfg->wal_dir[0]) { /* etcd's default WAL directory */
    size_t n = strlen(cfg->data_dir) + sizeof("/member/wal");
    char *w = xmalloc(n);
    snprintf(w, n, "%s/member/wal", cfg->data_dir);
    free(cfg->wal_dir);
    cfg->wal_dir = w;
  }
  bool discovery = cfg->discovery[0] || cfg->discovery_srv[0];
  if (!WAS_SET("initial-cluster")) {
    if (discovery) {
      config_set_str(&cfg->initial_cluster, "");
    } else { /* "<name>=<peer url>,..." from the advertised peer URLs */
      size_t n = 1;
      for (size_t i = 0; i < cfg->n_initial_advertise_peer_urls; i++)
        n += strlen(cfg->name) + strlen(cfg->initial_advertise_peer_urls[i]) + 2;
      char *ic = xcalloc(1, n);
      for (size_t i = 0; i < cfg->n_initial_advertise_peer_urls; i++) {
        size_t l = strlen(ic);
        snprintf(ic + l, n - l, "%s%s=%s", i ? "," : "", cfg->name, cfg->initial_advertise_peer_urls[i]);
      }
      free(cfg->initial_cluster);
      cfg->initial_cluster = ic;
    }
  }
  if (!cfg->initial_cluster_state[0]) config_set_str(&cfg->initial_cluster_state, "new");
  cfg->initial_cluster_existing = !strcmp(cfg->initial_cluster_state, "existing");

  int rc;
  if ((rc = check_urls(cfg->listen_peer_urls, cfg->n_listen_peer_urls, true, "listen-peer-urls", err,
                       errlen)) ||
      (rc = check_urls(cfg->listen_client_urls, cfg->n_listen_client_urls, true, "listen-client-urls", err,
                       errlen)) ||
      (rc = check_urls(cfg->listen_metrics_urls, cfg->n_listen_metrics_urls, true, "listen-metrics-urls", err,
                       errlen)) ||
      (rc = check_urls(cfg->initial_advertise_peer_urls, cfg->n_initial_advertise_peer_urls, false,
                       "initial-advertise-peer-urls", err, errlen)) ||
      (rc = check_urls(cfg->advertise_client_urls, cfg->n_advertise_client_urls, false,
                       "advertise-client-urls", err, errlen)))
    return rc;
  int nboot = (cfg->discovery[0] != 0) + (cfg->initial_cluster[0] != 0) + (cfg->discovery_srv[0] != 0);
  if (nboot > 1)
    return config_errf(
        err, errlen,
        "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or "
        "\"discovery-srv\"");
  if (cfg->heartbeat_interval_ms == 0)
    return config_errf(err, errlen, "--heartbeat-interval must be >0 (set to %ums)",
                       cfg->heartbeat_interval_ms);
  if (cfg->election_timeout_ms == 0)
    return config_errf(err, errlen, "--election-timeout must be >0 (set to %ums)", cfg->election_timeout_ms);
  if ((uint64_t)cfg->heartbeat_interval_ms * 5 > cfg->election_timeout_ms)
    return config_errf(err, errlen,
                       "--election-timeout[%ums] should be at least as 5 times as --heartbeat-interval[%ums]",
                       cfg->election_timeout_ms, cfg->heartbeat_interval_ms);
  if (cfg->election_timeout_ms > 50000)
    return config_errf(err, errlen,
                       "--election-timeout[%ums] is too long, and should be set less than 50000ms",
                       cfg->election_timeout_ms);
  if (cfg->n_listen_client_urls > 0 && cfg->n_advertise_client_urls == 0)
    return config_errf(err, errlen,
                       "--advertise-client-urls is required when --listen-client-urls is set explicitly");
  if (strcmp(cfg->proxy, "off"))
    return config_errf(err, errlen, "--proxy=%s is not supported by cetcd (only \"off\")", cfg->proxy);
  if (cfg->experimental_enable_lease_checkpoint_persist && !cfg->experimental_enable_lease_checkpoint)
    return config_errf(
        err, errlen,
        "setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint");
  if (cfg->bcrypt_cost < 4 || cfg->bcrypt_cost > 31)
    return config_errf(err, errlen, "invalid --bcrypt-cost %u: valid values are between 4 and 31",
                       cfg->bcrypt_cost);
  if (cfg->max_request_bytes == 0) return config_errf(err, errlen, "--max-request-bytes must be >0");
  if ((rc = parse_retention(cfg, WAS_SET("auto-compaction-retention"), err, errlen))) return rc;
  if ((rc = parse_auth_token(cfg, err, errlen))) return rc;

  if (cfg->quota_backend_bytes < 0) {
    cfg->quota_bytes = -1;
    config_warnf(cfg, "--quota-backend-bytes %" PRId64 " is negative: backend quota disabled",
                 cfg->quota_backend_bytes);
  } else if (cfg->quota_backend_bytes == 0) {
    cfg->quota_bytes = CONFIG_DEFAULT_QUOTA_BYTES;
  } else {
    cfg->quota_bytes = cfg->quota_backend_bytes;
    if (cfg->quota_backend_bytes > CONFIG_MAX_QUOTA_BYTES)
      config_warnf(cfg,
                   "--quota-backend-bytes %" PRId64 " exceeds the maximum recommended %" PRId64 " (8 GiB)",
                   cfg->quota_backend_bytes, CONFIG_MAX_QUOTA_BYTES);
  }
  if (cfg->enable_v2) config_warnf(cfg, "--enable-v2 is accepted but cetcd serves only the v3 API");
  if (discovery)
    config_warnf(cfg, "--discovery / --discovery-srv are not supported by cetcd; bootstrap will fail");
  if (cfg->enable_pprof)
    config_warnf(cfg, "--enable-pprof is accepted but cetcd has no /debug/pprof endpoint");
#undef WAS_SET
  return 0;
}
