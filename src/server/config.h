/* cetcd's configuration: etcd 3.4's command-line flags, ETCD_* environment variables and
 * --config-file YAML, merged into one struct (etcdmain/config.go, embed/config.go).
 *
 * Precedence, as in etcd: when a config file is named (--config-file or ETCD_CONFIG_FILE)
 * it is the only source and other flags and environment variables are ignored (with a
 * warning); otherwise command-line flags win over ETCD_* variables, which win over the
 * defaults. Flags are written --flag value, --flag=value, -flag value or -flag=value;
 * booleans as --flag or --flag=true|false (Go's flag package rules). */
#ifndef CETCD_SERVER_CONFIG_H
#define CETCD_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/version.h"

/* config_parse results besides 0 and negative errors: help or version was printed. */
#define CONFIG_HELP 1
#define CONFIG_VERSION 2

/* Default backend quota (etcd's DefaultQuotaBytes) and the largest recommended one. */
#define CONFIG_DEFAULT_QUOTA_BYTES (INT64_C(2) * 1024 * 1024 * 1024)
#define CONFIG_MAX_QUOTA_BYTES (INT64_C(8) * 1024 * 1024 * 1024)

/* Auto-compaction modes (--auto-compaction-mode). */
enum config_compaction_mode { CONFIG_COMPACT_PERIODIC = 0, CONFIG_COMPACT_REVISION = 1 };

/* The merged configuration. Every string and array is owned by the struct (config_free);
 * URL lists hold normalized URL strings, sorted and de-duplicated as etcd does. Durations
 * are milliseconds. Unset optional strings are "" (never NULL after config_defaults). */
typedef struct cetcd_config {
  /* ---- member ---- */
  char *name;                /* --name, default "default" */
  char *data_dir;            /* --data-dir, default "<name>.etcd" (filled in by config_parse) */
  char *wal_dir;             /* --wal-dir; config_parse fills in <data-dir>/member/wal */
  char **listen_client_urls; /* --listen-client-urls, default http://localhost:2379 */
  size_t n_listen_client_urls;
  char **advertise_client_urls; /* --advertise-client-urls, default http://localhost:2379 */
  size_t n_advertise_client_urls;
  char **listen_peer_urls; /* --listen-peer-urls, default http://localhost:2380 */
  size_t n_listen_peer_urls;
  char **initial_advertise_peer_urls; /* --initial-advertise-peer-urls, default http://localhost:2380 */
  size_t n_initial_advertise_peer_urls;
  char **listen_metrics_urls; /* --listen-metrics-urls, default none */
  size_t n_listen_metrics_urls;
  uint64_t snapshot_count;            /* --snapshot-count, default 100000 */
  uint32_t heartbeat_interval_ms;     /* --heartbeat-interval, default 100 */
  uint32_t election_timeout_ms;       /* --election-timeout, default 1000 */
  bool initial_election_tick_advance; /* --initial-election-tick-advance, default true */
  uint32_t max_snapshots;             /* --max-snapshots, default 5 (0 = unlimited) */
  uint32_t max_wals;                  /* --max-wals, default 5 (0 = unlimited) */
  int64_t quota_backend_bytes;        /* --quota-backend-bytes as given (0 = default) */
  int64_t quota_bytes;                /* effective quota: 2 GiB for 0, -1 = no quota (< 0 given) */
  uint32_t max_txn_ops;               /* --max-txn-ops, default 128 */
  size_t max_request_bytes;           /* --max-request-bytes, default 1572864 */
  uint32_t max_concurrent_streams;    /* --max-concurrent-streams, default UINT32_MAX */
  int64_t grpc_keepalive_min_time_ms; /* --grpc-keepalive-min-time, default 5s */
  int64_t grpc_keepalive_interval_ms; /* --grpc-keepalive-interval, default 2h (0 = off) */
  int64_t grpc_keepalive_timeout_ms;  /* --grpc-keepalive-timeout, default 20s (0 = off) */

  /* ---- clustering ---- */
  char *initial_cluster;         /* --initial-cluster, default "<name>=<initial-advertise-peer-urls>" */
  char *initial_cluster_state;   /* --initial-cluster-state: "new" (default) or "existing" */
  bool initial_cluster_existing; /* initial_cluster_state == "existing" */
  char *initial_cluster_token;   /* --initial-cluster-token, default "etcd-cluster" */
  char *discovery;               /* --discovery (accepted, unsupported: warning) */
  char *discovery_fallback;      /* --discovery-fallback: "proxy" (default) or "exit" */
  char *discovery_proxy;         /* --discovery-proxy */
  char *discovery_srv;           /* --discovery-srv (accepted, unsupported: warning) */
  char *discovery_srv_name;      /* --discovery-srv-name */
  bool strict_reconfig_check;    /* --strict-reconfig-check, default true */
  bool pre_vote;                 /* --pre-vote, default false */
  bool enable_v2;                /* --enable-v2 (accepted; the v2 API is not served: warning) */
  char *proxy;                   /* --proxy: only "off" is supported */
  enum config_compaction_mode auto_compaction_mode; /* --auto-compaction-mode, default periodic */
  char *auto_compaction_retention;                  /* --auto-compaction-retention as given; default "1h" */
  int64_t auto_compaction_period_ms;                /* periodic mode: retention window, 0 = off */
  int64_t auto_compaction_revisions;                /* revision mode: revisions kept, 0 = off */
  bool force_new_cluster;                           /* --force-new-cluster */

  /* ---- security ---- */
  char *cert_file;                    /* --cert-file (YAML client-transport-security.cert-file) */
  char *key_file;                     /* --key-file */
  char *trusted_ca_file;              /* --trusted-ca-file */
  bool client_cert_auth;              /* --client-cert-auth */
  bool auto_tls;                      /* --auto-tls */
  char *client_crl_file;              /* --client-crl-file */
  char *client_cert_allowed_hostname; /* --client-cert-allowed-hostname */
  char *peer_cert_file;               /* --peer-cert-file (YAML peer-transport-security.cert-file) */
  char *peer_key_file;                /* --peer-key-file */
  char *peer_trusted_ca_file;         /* --peer-trusted-ca-file */
  bool peer_client_cert_auth;         /* --peer-client-cert-auth */
  bool peer_auto_tls;                 /* --peer-auto-tls */
  char *peer_crl_file;                /* --peer-crl-file */
  char *peer_cert_allowed_cn;         /* --peer-cert-allowed-cn */
  char *peer_cert_allowed_hostname;   /* --peer-cert-allowed-hostname */
  char **cipher_suites;               /* --cipher-suites (comma-separated names) */
  size_t n_cipher_suites;
  uint32_t self_signed_cert_validity; /* --self-signed-cert-validity in years, default 1 */
  char **cors;                        /* --cors, default "*" */
  size_t n_cors;
  char **host_whitelist; /* --host-whitelist, default "*" */
  size_t n_host_whitelist;

  /* ---- auth ---- */
  char *auth_token;        /* --auth-token as given, default "simple" */
  char *auth_token_type;   /* "simple", "jwt" or "" (tokens disabled) */
  char *jwt_pub_key;       /* jwt option pub-key (path), "" if unset */
  char *jwt_priv_key;      /* jwt option priv-key (path), "" if unset */
  char *jwt_sign_method;   /* jwt option sign-method, e.g. "RS256", "" if unset */
  int64_t jwt_ttl_ms;      /* jwt option ttl, default 5m */
  uint32_t bcrypt_cost;    /* --bcrypt-cost, default 10 (4..31) */
  uint32_t auth_token_ttl; /* --auth-token-ttl seconds (simple tokens), default 300 */

  /* ---- logging, monitoring, profiling ---- */
  char *log_level;    /* --log-level: debug|info|warn|error|panic|fatal, default "info" */
  char *logger;       /* --logger: "zap" or "capnslog", default "capnslog" */
  char **log_outputs; /* --log-outputs, default "default" */
  size_t n_log_outputs;
  bool debug;        /* --debug (sets log_level to "debug") */
  char *metrics;     /* --metrics: "basic" (default) or "extensive" */
  bool enable_pprof; /* --enable-pprof */

  /* ---- experimental and unsafe ---- */
  bool experimental_initial_corrupt_check;           /* --experimental-initial-corrupt-check */
  int64_t experimental_corrupt_check_time_ms;        /* --experimental-corrupt-check-time, default 0 */
  bool experimental_enable_lease_checkpoint;         /* --experimental-enable-lease-checkpoint */
  bool experimental_enable_lease_checkpoint_persist; /* ...-checkpoint-persist */
  int64_t experimental_compaction_batch_limit;       /* --experimental-compaction-batch-limit, default 1000 */
  int64_t experimental_watch_progress_notify_interval_ms; /* default 10m */
  int64_t experimental_warning_apply_duration_ms;         /* default 100ms */
  bool unsafe_no_fsync;                                   /* --unsafe-no-fsync */

  /* ---- bookkeeping ---- */
  char *config_file;     /* --config-file or ETCD_CONFIG_FILE, "" if none */
  bool from_config_file; /* the values came from config_file */
  bool quiet;            /* set before config_parse to suppress --help/--version printing */
  int error_exit;        /* after config_parse failed: the exit status etcd uses for that error,
                            2 for a command-line syntax error (Go's flag package), else 1 */
  char **warnings;       /* messages for the caller to log (ignored flags, env, ...) */
  size_t n_warnings;
} cetcd_config_t;

/* Fills cfg with etcd's defaults (plus cetcd's: auto-compaction retention "1h"). Any
 * previous contents are not freed; call on a fresh struct. */
void config_defaults(cetcd_config_t *cfg);

/* Parses argv[1..argc-1] and envp (NULL-terminated "K=V" array, may be NULL) into cfg,
 * which config_defaults must have filled. Returns 0 on success; CONFIG_HELP or
 * CONFIG_VERSION after printing the help or version text to stdout (unless cfg->quiet);
 * or CETCD_EINVAL (or -errno for an unreadable config file) with a message in err (e.g.
 * "error verifying flags, flag provided but not defined: -bogus. See 'cetcd --help'."),
 * after which the caller exits with cfg->error_exit (etcd's status for that error).
 * Warnings to log are left in cfg->warnings. Nothing is borrowed from argv or envp. */
int config_parse(cetcd_config_t *cfg, int argc, char **argv, char **envp, char *err, size_t errlen);

/* Loads a YAML config file (etcd's keys, read with libyaml; see config_file.c) over the
 * current values of cfg. Returns 0, or CETCD_EINVAL / -errno with a message that names the
 * file (and the line). */
int config_load_file(cetcd_config_t *cfg, const char *path, char *err, size_t errlen);

/* Parses a Go duration ("300ms", "1h30m", "-1.5h", "0"). Writes nanoseconds to *ns and
 * returns 0, or CETCD_EINVAL if s is not a valid duration. */
int config_parse_duration(const char *s, int64_t *ns);

/* Writes the --help text to out. */
void config_print_help(FILE *out);

/* Writes the --version lines to out (the first is "etcd Version: " CETCD_ETCD_VERSION). */
void config_print_version(FILE *out);

/* Releases everything cfg owns and zeroes it. */
void config_free(cetcd_config_t *cfg);

#endif
