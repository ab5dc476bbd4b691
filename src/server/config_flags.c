/* The flag table: every etcd 3.4 flag cetcd knows, with its type, field, default and help
 * text. It drives the command line, the ETCD_* variables, the config file's keys and
 * --help. Also the defaults, the help and version texts and config_free. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "server/config_int.h"

/* ---- the flag table ----------------------------------------------------------------- */

#define SEC(title) \
  { title, T_SECTION, 0, NOFIELD, NOFIELD, NULL, NULL, NULL }
#define FLD(f) offsetof(cetcd_config_t, f), NOFIELD
#define LST(f) offsetof(cetcd_config_t, f), offsetof(cetcd_config_t, n_##f)
#define NONE NOFIELD, NOFIELD

const flag_def_t config_flag_defs[] = {
    SEC("Member"),
    {"name", T_STR, 0, FLD(name), NULL, "default", "Human-readable name for this member."},
    {"data-dir", T_STR, 0, FLD(data_dir), NULL, "${name}.etcd", "Path to the data directory."},
    {"wal-dir", T_STR, 0, FLD(wal_dir), NULL, "", "Path to a dedicated WAL directory."},
    {"snapshot-count", T_U64, 0, FLD(snapshot_count), NULL, "100000",
     "Committed entries between two snapshots to disk."},
    {"heartbeat-interval", T_U32, 0, FLD(heartbeat_interval_ms), NULL, "100",
     "Heartbeat interval in milliseconds."},
    {"election-timeout", T_U32, 0, FLD(election_timeout_ms), NULL, "1000",
     "Election timeout in milliseconds."},
    {"initial-election-tick-advance", T_BOOL, 0, FLD(initial_election_tick_advance), NULL, "true",
     "Fast-forward election ticks at boot for a faster first election."},
    {"listen-peer-urls", T_URLS, 0, LST(listen_peer_urls), NULL, "http://localhost:2380",
     "URLs to listen on for peer traffic."},
    {"listen-client-urls", T_URLS, 0, LST(listen_client_urls), NULL, "http://localhost:2379",
     "URLs to listen on for client traffic."},
    {"max-snapshots", T_U32, 0, FLD(max_snapshots), NULL, "5", "Snapshot files to keep (0 = unlimited)."},
    {"max-wals", T_U32, 0, FLD(max_wals), NULL, "5", "WAL files to keep (0 = unlimited)."},
    {"quota-backend-bytes", T_I64, 0, FLD(quota_backend_bytes), NULL, "0",
     "Raise the NOSPACE alarm above this backend size (0 = 2 GiB, negative = no quota)."},
    {"backend-batch-interval", T_DUR, F_IGNORE, NONE, NULL, "", "Accepted for compatibility; no effect."},
    {"backend-batch-limit", T_I64, F_IGNORE, NONE, NULL, "0", "Accepted for compatibility; no effect."},
    {"max-txn-ops", T_U32, 0, FLD(max_txn_ops), NULL, "128", "Maximum operations in one transaction."},
    {"max-request-bytes", T_SIZE, 0, FLD(max_request_bytes), NULL, "1572864",
     "Maximum client request size in bytes."},
    {"max-concurrent-streams", T_U32, 0, FLD(max_concurrent_streams), NULL, "4294967295",
     "Maximum concurrent streams per client connection."},
    {"grpc-keepalive-min-time", T_DUR, 0, FLD(grpc_keepalive_min_time_ms), NULL, "5s",
     "Minimum interval a client should wait between pings."},
    {"grpc-keepalive-interval", T_DUR, 0, FLD(grpc_keepalive_interval_ms), NULL, "2h",
     "Interval of server-to-client pings (0 = off)."},
    {"grpc-keepalive-timeout", T_DUR, 0, FLD(grpc_keepalive_timeout_ms), NULL, "20s",
     "Wait for a ping answer before closing the connection (0 = off)."},

    SEC("Clustering"),
    {"initial-advertise-peer-urls", T_URLS, 0, LST(initial_advertise_peer_urls), NULL,
     "http://localhost:2380", "This member's peer URLs, advertised to the rest of the cluster."},
    {"initial-cluster", T_STR, 0, FLD(initial_cluster), NULL, "${name}=${initial-advertise-peer-urls}",
     "Initial cluster members for bootstrapping (name=url,...)."},
    {"initial-cluster-state", T_CHOICE, 0, FLD(initial_cluster_state), "new|existing", "new",
     "Initial cluster state ('new' or 'existing')."},
    {"initial-cluster-token", T_STR, 0, FLD(initial_cluster_token), NULL, "etcd-cluster",
     "Initial cluster token, mixed into the member and cluster ids."},
    {"advertise-client-urls", T_URLS, 0, LST(advertise_client_urls), NULL, "http://localhost:2379",
     "This member's client URLs, advertised to clients."},
    {"discovery", T_STR, 0, FLD(discovery), NULL, "", "Discovery URL (not supported by cetcd)."},
    {"discovery-fallback", T_CHOICE, 0, FLD(discovery_fallback), "proxy|exit", "proxy",
     "Behaviour when discovery fails ('exit' or 'proxy')."},
    {"discovery-proxy", T_STR, 0, FLD(discovery_proxy), NULL, "", "HTTP proxy for the discovery service."},
    {"discovery-srv", T_STR, 0, FLD(discovery_srv), NULL, "",
     "DNS SRV domain for bootstrapping (not supported)."},
    {"discovery-srv-name", T_STR, 0, FLD(discovery_srv_name), NULL, "", "Suffix of the DNS SRV name."},
    {"strict-reconfig-check", T_BOOL, 0, FLD(strict_reconfig_check), NULL, "true",
     "Reject reconfigurations that would cause quorum loss."},
    {"pre-vote", T_BOOL, 0, FLD(pre_vote), NULL, "false", "Run raft's pre-vote phase before elections."},
    {"auto-compaction-retention", T_STR, 0, FLD(auto_compaction_retention), NULL, "1h",
     "Auto compaction retention: a duration or hours (periodic) or revisions (revision); 0 = off."},
    {"auto-compaction-mode", T_CMODE, 0, FLD(auto_compaction_mode), "periodic|revision", "periodic",
     "Interpretation of --auto-compaction-retention: 'periodic' or 'revision'."},
    {"enable-v2", T_BOOL, 0, FLD(enable_v2), NULL, "false", "Accepted; cetcd serves the v3 API only."},
    {"experimental-enable-v2v3", T_STR, F_IGNORE, NONE, NULL, "", "Accepted for compatibility; no effect."},

    SEC("Security"),
    {"cert-file", T_STR, F_NOYAML, FLD(cert_file), NULL, "", "Client server TLS certificate file."},
    {"key-file", T_STR, F_NOYAML, FLD(key_file), NULL, "", "Client server TLS key file."},
    {"client-cert-auth", T_BOOL, F_NOYAML, FLD(client_cert_auth), NULL, "false",
     "Require and verify client certificates."},
    {"client-crl-file", T_STR, F_NOYAML, FLD(client_crl_file), NULL, "",
     "Client certificate revocation list."},
    {"client-cert-allowed-hostname", T_STR, F_NOYAML, FLD(client_cert_allowed_hostname), NULL, "",
     "Allowed TLS hostname for client certificates."},
    {"trusted-ca-file", T_STR, F_NOYAML, FLD(trusted_ca_file), NULL, "", "Client server trusted CA file."},
    {"auto-tls", T_BOOL, F_NOYAML, FLD(auto_tls), NULL, "false", "Client TLS with generated certificates."},
    {"peer-cert-file", T_STR, F_NOYAML, FLD(peer_cert_file), NULL, "", "Peer server TLS certificate file."},
    {"peer-key-file", T_STR, F_NOYAML, FLD(peer_key_file), NULL, "", "Peer server TLS key file."},
    {"peer-client-cert-auth", T_BOOL, F_NOYAML, FLD(peer_client_cert_auth), NULL, "false",
     "Require and verify peer client certificates."},
    {"peer-trusted-ca-file", T_STR, F_NOYAML, FLD(peer_trusted_ca_file), NULL, "",
     "Peer server trusted CA file."},
    {"peer-cert-allowed-cn", T_STR, F_NOYAML, FLD(peer_cert_allowed_cn), NULL, "",
     "Required CN of peer client certificates."},
    {"peer-cert-allowed-hostname", T_STR, F_NOYAML, FLD(peer_cert_allowed_hostname), NULL, "",
     "Allowed TLS hostname of peer client certificates."},
    {"peer-auto-tls", T_BOOL, F_NOYAML, FLD(peer_auto_tls), NULL, "false",
     "Peer TLS with generated certificates."},
    {"peer-crl-file", T_STR, F_NOYAML, FLD(peer_crl_file), NULL, "", "Peer certificate revocation list."},
    {"experimental-peer-skip-client-san-verification", T_BOOL, F_NOYAML | F_IGNORE, NONE, NULL, "false",
     "Accepted for compatibility; no effect."},
    {"cipher-suites", T_LIST, F_YSEQ, LST(cipher_suites), NULL, "", "Comma-separated TLS cipher suites."},
    {"self-signed-cert-validity", T_U32, 0, FLD(self_signed_cert_validity), NULL, "1",
     "Validity in years of --auto-tls / --peer-auto-tls certificates."},
    {"cors", T_CORS, 0, LST(cors), NULL, "*", "Comma-separated CORS origins (* = all)."},
    {"host-whitelist", T_SLIST, 0, LST(host_whitelist), NULL, "*",
     "Acceptable Host headers on insecure HTTP (* = all)."},

    SEC("Auth"),
    {"auth-token", T_STR, 0, FLD(auth_token), NULL, "simple",
     "Auth token type and options: 'simple' or 'jwt,pub-key=..,priv-key=..,sign-method=RS256,ttl=5m'."},
    {"bcrypt-cost", T_U32, 0, FLD(bcrypt_cost), NULL, "10", "bcrypt cost for password hashes (4..31)."},
    {"auth-token-ttl", T_U32, 0, FLD(auth_token_ttl), NULL, "300", "Lifetime of simple tokens in seconds."},

    SEC("Profiling and monitoring"),
    {"enable-pprof", T_BOOL, 0, FLD(enable_pprof), NULL, "false", "Accepted; cetcd has no pprof endpoint."},
    {"metrics", T_CHOICE, 0, FLD(metrics), "basic|extensive", "basic",
     "Metrics detail: 'basic' or 'extensive'."},
    {"listen-metrics-urls", T_URLS, 0, LST(listen_metrics_urls), NULL, "",
     "Extra URLs serving /metrics and /health."},
    {"enable-grpc-gateway", T_BOOL, F_QUIET, NONE, NULL, "true", "Accepted; the JSON gateway is always on."},

    SEC("Logging"),
    {"logger", T_CHOICE, 0, FLD(logger), "zap|capnslog", "zap",
     "Accepted: 'zap' or 'capnslog' (one format)."},
    {"log-outputs", T_SLIST, F_YSEQ, LST(log_outputs), NULL, "default",
     "Log outputs: default, stderr, stdout."},
    {"log-output", T_SLIST, F_IGNORE | F_HIDDEN | F_YSEQ, NONE, NULL, "default",
     "Deprecated; use --log-outputs."},
    {"log-level", T_CHOICE, 0, FLD(log_level), "debug|info|warn|error|panic|fatal", "info",
     "Log level: debug, info, warn, error, panic or fatal."},
    {"debug", T_BOOL, 0, FLD(debug), NULL, "false", "Same as --log-level=debug."},
    {"log-package-levels", T_STR, F_IGNORE | F_HIDDEN, NONE, NULL, "", "Deprecated; no effect."},

    SEC("v2 proxy (only 'off' is supported)"),
    {"proxy", T_CHOICE, 0, FLD(proxy), "off|readonly|on", "off", "Proxy mode; cetcd supports 'off' only."},
    {"proxy-failure-wait", T_U64, F_QUIET, NONE, NULL, "5000", "Accepted; no effect."},
    {"proxy-refresh-interval", T_U64, F_QUIET, NONE, NULL, "30000", "Accepted; no effect."},
    {"proxy-dial-timeout", T_U64, F_QUIET, NONE, NULL, "1000", "Accepted; no effect."},
    {"proxy-write-timeout", T_U64, F_QUIET, NONE, NULL, "5000", "Accepted; no effect."},
    {"proxy-read-timeout", T_U64, F_QUIET, NONE, NULL, "0", "Accepted; no effect."},

    SEC("Experimental"),
    {"experimental-initial-corrupt-check", T_BOOL, 0, FLD(experimental_initial_corrupt_check), NULL, "false",
     "Check data corruption before serving traffic."},
    {"experimental-corrupt-check-time", T_DUR, 0, FLD(experimental_corrupt_check_time_ms), NULL, "0s",
     "Time between cluster corruption checks (0 = off)."},
    {"experimental-backend-bbolt-freelist-type", T_STR, F_QUIET, NONE, NULL, "array", "Accepted; no effect."},
    {"experimental-enable-lease-checkpoint", T_BOOL, 0, FLD(experimental_enable_lease_checkpoint), NULL,
     "false", "Leader checkpoints lease remaining TTLs."},
    {"experimental-enable-lease-checkpoint-persist", T_BOOL, 0,
     FLD(experimental_enable_lease_checkpoint_persist), NULL, "false",
     "Persist lease checkpoints (needs --experimental-enable-lease-checkpoint)."},
    {"experimental-compaction-batch-limit", T_I64, 0, FLD(experimental_compaction_batch_limit), NULL, "1000",
     "Revisions deleted per compaction batch."},
    {"experimental-watch-progress-notify-interval", T_DUR, 0,
     FLD(experimental_watch_progress_notify_interval_ms), NULL, "10m",
     "Interval of watch progress notifications."},
    {"experimental-warning-apply-duration", T_DUR, 0, FLD(experimental_warning_apply_duration_ms), NULL,
     "100ms", "Warn when applying a request takes longer than this."},

    SEC("Unsafe"),
    {"unsafe-no-fsync", T_BOOL, 0, FLD(unsafe_no_fsync), NULL, "false",
     "Disable fsync (data loss on crash)."},
    {"force-new-cluster", T_BOOL, 0, FLD(force_new_cluster), NULL, "false",
     "Force a new one-member cluster from existing data."},

    SEC("Other"),
    {"config-file", T_STR, F_NOYAML, FLD(config_file), NULL, "",
     "YAML configuration file; when given, other flags and ETCD_* variables are ignored."},
    {"version", T_BOOL, F_NOYAML, NONE, NULL, "false", "Print the version and exit."},

    /* etcd's long-removed flags: accepted like bool flags and ignored. */
    {"cluster-active-size", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"cluster-remove-delay", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"cluster-sync-interval", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"config", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"force", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"max-result-buffer", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"max-retry-attempts", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"peer-heartbeat-interval", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"peer-election-timeout", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"retry-interval", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"snapshot", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"v", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"vv", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"test.coverprofile", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
    {"test.outputdir", T_IGN, F_NOYAML | F_HIDDEN, NONE, NULL, NULL, NULL},
};

const size_t config_nflags = sizeof(config_flag_defs) / sizeof(config_flag_defs[0]);
_Static_assert(sizeof(config_flag_defs) / sizeof(config_flag_defs[0]) <= CONFIG_MAX_FLAGS,
               "raise CONFIG_MAX_FLAGS");

/* Finds a flag by name; returns its index or -1. */
/* Finds a flag by name; returns its index or -1. */
int config_find_flag(const char *name, size_t len) {
  for (size_t i = 0; i < config_nflags; i++) {
    if (config_flag_defs[i].type == T_SECTION) continue;
    if (strlen(config_flag_defs[i].name) == len && !memcmp(config_flag_defs[i].name, name, len))
      return (int)i;
  }
  return -1;
}

/* ---- defaults ----------------------------------------------------------------------- */

/* Fills cfg with etcd's defaults (config.h). */
void config_defaults(cetcd_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->name = xstrdup("default");
  cfg->data_dir = xstrdup("");
  cfg->wal_dir = xstrdup("");
  config_strv_push(&cfg->listen_client_urls, &cfg->n_listen_client_urls, "http://localhost:2379");
  config_strv_push(&cfg->advertise_client_urls, &cfg->n_advertise_client_urls, "http://localhost:2379");
  config_strv_push(&cfg->listen_peer_urls, &cfg->n_listen_peer_urls, "http://localhost:2380");
  config_strv_push(&cfg->initial_advertise_peer_urls, &cfg->n_initial_advertise_peer_urls,
                   "http://localhost:2380");
  cfg->snapshot_count = 100000;
  cfg->heartbeat_interval_ms = 100;
  cfg->election_timeout_ms = 1000;
  cfg->initial_election_tick_advance = true;
  cfg->max_snapshots = 5;
  cfg->max_wals = 5;
  cfg->quota_backend_bytes = 0;
  cfg->quota_bytes = CONFIG_DEFAULT_QUOTA_BYTES;
  cfg->max_txn_ops = 128;
  cfg->max_request_bytes = 1572864;
  cfg->max_concurrent_streams = UINT32_MAX;
  cfg->grpc_keepalive_min_time_ms = 5000;
  cfg->grpc_keepalive_interval_ms = INT64_C(2) * 3600 * 1000;
  cfg->grpc_keepalive_timeout_ms = 20000;

  cfg->initial_cluster = xstrdup("default=http://localhost:2380");
  cfg->initial_cluster_state = xstrdup("new");
  cfg->initial_cluster_token = xstrdup("etcd-cluster");
  cfg->discovery = xstrdup("");
  cfg->discovery_fallback = xstrdup("proxy");
  cfg->discovery_proxy = xstrdup("");
  cfg->discovery_srv = xstrdup("");
  cfg->discovery_srv_name = xstrdup("");
  cfg->strict_reconfig_check = true;
  cfg->proxy = xstrdup("off");
  cfg->auto_compaction_mode = CONFIG_COMPACT_PERIODIC;
  cfg->auto_compaction_retention = xstrdup("1h");
  cfg->auto_compaction_period_ms = 3600 * 1000;

  cfg->cert_file = xstrdup("");
  cfg->key_file = xstrdup("");
  cfg->trusted_ca_file = xstrdup("");
  cfg->client_crl_file = xstrdup("");
  cfg->client_cert_allowed_hostname = xstrdup("");
  cfg->peer_cert_file = xstrdup("");
  cfg->peer_key_file = xstrdup("");
  cfg->peer_trusted_ca_file = xstrdup("");
  cfg->peer_crl_file = xstrdup("");
  cfg->peer_cert_allowed_cn = xstrdup("");
  cfg->peer_cert_allowed_hostname = xstrdup("");
  cfg->self_signed_cert_validity = 1;
  config_strv_push(&cfg->cors, &cfg->n_cors, "*");
  config_strv_push(&cfg->host_whitelist, &cfg->n_host_whitelist, "*");

  cfg->auth_token = xstrdup("simple");
  cfg->auth_token_type = xstrdup("simple");
  cfg->jwt_pub_key = xstrdup("");
  cfg->jwt_priv_key = xstrdup("");
  cfg->jwt_sign_method = xstrdup("");
  cfg->jwt_ttl_ms = 5 * 60 * 1000;
  cfg->bcrypt_cost = 10;
  cfg->auth_token_ttl = 300;

  cfg->log_level = xstrdup("info");
  cfg->logger = xstrdup("zap");
  config_strv_push(&cfg->log_outputs, &cfg->n_log_outputs, "default");
  cfg->metrics = xstrdup("basic");

  cfg->experimental_compaction_batch_limit = 1000;
  cfg->experimental_watch_progress_notify_interval_ms = 10 * 60 * 1000;
  cfg->experimental_warning_apply_duration_ms = 100;
  cfg->config_file = xstrdup("");
}

/* ---- help and version --------------------------------------------------------------- */

/* Writes the --help text from the flag table. */
void config_print_help(FILE *out) {
  fprintf(out,
          "Usage:\n\n"
          "  cetcd [flags]\n    Start a cetcd server (an etcd v3-compatible server written in C).\n\n"
          "  cetcd --version\n    Print the version and exit.\n\n"
          "  cetcd -h | --help\n    Print this help and exit.\n\n"
          "Flags take the form --flag value or --flag=value (one dash works too); boolean flags\n"
          "are --flag or --flag=true|false. Each flag can also be set with an environment\n"
          "variable ETCD_<FLAG_NAME> (e.g. ETCD_DATA_DIR); command-line flags take precedence.\n"
          "With --config-file, only the YAML file is read.\n");
  for (size_t i = 0; i < config_nflags; i++) {
    const flag_def_t *f = &config_flag_defs[i];
    if (f->type == T_SECTION) {
      fprintf(out, "\n%s:\n", f->name);
      continue;
    }
    if (f->fl & F_HIDDEN) continue;
    fprintf(out, "  --%s '%s'\n    %s\n", f->name, f->def ? f->def : "", f->help ? f->help : "");
  }
}

/* Writes the --version lines. */
void config_print_version(FILE *out) {
  fprintf(out, "etcd Version: %s\nGit SHA: cetcd\nGo Version: n/a (cetcd, C)\nGo OS/Arch: linux/amd64\n",
          CETCD_ETCD_VERSION);
}

/* ---- free --------------------------------------------------------------------------- */

/* Frees every string and list the flag table points at, then the derived fields. */
void config_free(cetcd_config_t *cfg) {
  for (size_t i = 0; i < config_nflags; i++) {
    const flag_def_t *f = &config_flag_defs[i];
    if (f->off == NOFIELD) continue;
    switch (f->type) {
      case T_STR:
      case T_CHOICE:
        free(*FIELD(cfg, f, char *));
        *FIELD(cfg, f, char *) = NULL;
        break;
      case T_URLS:
      case T_CORS:
      case T_SLIST:
      case T_LIST:
        config_strv_free(FIELD(cfg, f, char **), COUNT(cfg, f));
        break;
      default:
        break;
    }
  }
  free(cfg->auth_token_type);
  free(cfg->jwt_pub_key);
  free(cfg->jwt_priv_key);
  free(cfg->jwt_sign_method);
  config_strv_free(&cfg->warnings, &cfg->n_warnings);
  memset(cfg, 0, sizeof(*cfg));
}
