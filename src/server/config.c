/* cetcd's configuration: etcd's flags, ETCD_* environment variables and --config-file YAML.
 * See config.h. The flag table below drives all three sources and the --help text. */
#include "server/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "server/urls.h"

/* ---- the flag table ----------------------------------------------------------------- */

enum ftype {
  T_SECTION, /* a heading in --help, not a flag */
  T_STR,     /* char * */
  T_BOOL,    /* bool */
  T_U32,     /* uint32_t, Go ParseUint base 0 */
  T_U64,     /* uint64_t */
  T_SIZE,    /* size_t */
  T_I64,     /* int64_t, Go ParseInt base 0 */
  T_DUR,     /* int64_t milliseconds, from a Go duration */
  T_CHOICE,  /* char *, one of choices */
  T_CMODE,   /* enum config_compaction_mode from "periodic" | "revision" */
  T_URLS,    /* char ** + size_t: sorted unique URL list */
  T_CORS,    /* like T_URLS but "*" is allowed */
  T_SLIST,   /* char ** + size_t: sorted unique strings */
  T_LIST,    /* char ** + size_t: strings in order */
  T_IGN,     /* etcd's removed flags: bool-like, any value, ignored with a warning */
};

/* flag_def_t.fl bits */
#define F_NOYAML 1u /* not a top-level key of etcd's config file */
#define F_IGNORE 2u /* accepted and validated but has no effect: warn when set */
#define F_QUIET 4u  /* accepted and ignored silently */
#define F_HIDDEN 8u /* not listed by --help */

#define NOFIELD ((size_t)-1)

typedef struct flag_def {
  const char *name;
  unsigned char type;
  unsigned char fl;
  size_t off;          /* field offset, NOFIELD to discard */
  size_t off_n;        /* count field offset for list types */
  const char *choices; /* '|'-separated, T_CHOICE only */
  const char *def;     /* default shown by --help */
  const char *help;
} flag_def_t;

#define SEC(title) \
  { title, T_SECTION, 0, NOFIELD, NOFIELD, NULL, NULL, NULL }
#define FLD(f) offsetof(cetcd_config_t, f), NOFIELD
#define LST(f) offsetof(cetcd_config_t, f), offsetof(cetcd_config_t, n_##f)
#define NONE NOFIELD, NOFIELD

static const flag_def_t flag_defs[] = {
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
    {"cipher-suites", T_LIST, 0, LST(cipher_suites), NULL, "", "Comma-separated TLS cipher suites."},
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
    {"log-outputs", T_SLIST, 0, LST(log_outputs), NULL, "default", "Log outputs: default, stderr, stdout."},
    {"log-output", T_SLIST, F_IGNORE | F_HIDDEN, NONE, NULL, "default", "Deprecated; use --log-outputs."},
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

#define NFLAGS (sizeof(flag_defs) / sizeof(flag_defs[0]))

/* ETCD_* variables that are not flags and are ignored without a warning. */
static const char *const quiet_env[] = {"ETCD_UNSUPPORTED_ARCH", "ETCD_VERIFY", "ETCD_CONFIG_FILE", NULL};

/* Per-parse state: which flags were given, by which source. */
typedef struct pctx {
  cetcd_config_t *cfg;
  bool set[NFLAGS];     /* given on the command line, in the environment or in the file */
  bool cmdline[NFLAGS]; /* given on the command line */
  bool version;
} pctx_t;

/* Finds a flag by name; returns its index or -1. */
static int find_flag(const char *name, size_t len) {
  for (size_t i = 0; i < NFLAGS; i++) {
    if (flag_defs[i].type == T_SECTION) continue;
    if (strlen(flag_defs[i].name) == len && !memcmp(flag_defs[i].name, name, len)) return (int)i;
  }
  return -1;
}

/* ---- small helpers ------------------------------------------------------------------ */

/* Writes a formatted message into err (if room) and returns CETCD_EINVAL. */
static int errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return CETCD_EINVAL;
}

/* Appends a formatted warning to cfg->warnings. */
static void warnf(cetcd_config_t *cfg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(cetcd_config_t *cfg, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  if (!s) return;
  cfg->warnings = xrealloc(cfg->warnings, (cfg->n_warnings + 1) * sizeof(char *));
  cfg->warnings[cfg->n_warnings++] = s;
}

/* Replaces an owned string field with a copy of v. */
static void set_str(char **field, const char *v) {
  char *n = xstrdup(v);
  free(*field);
  *field = n;
}

/* Frees an owned string array and zeroes it. */
static void strv_free(char ***v, size_t *n) {
  for (size_t i = 0; *v && i < *n; i++) free((*v)[i]);
  free(*v);
  *v = NULL;
  *n = 0;
}

/* Appends a copy of s to an owned string array. */
static void strv_push(char ***v, size_t *n, const char *s) {
  *v = xrealloc(*v, (*n + 1) * sizeof(char *));
  (*v)[(*n)++] = xstrdup(s);
}

/* qsort comparator for strings. */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Splits s on commas into a new array; empty elements are dropped. If sorted, the result
 * is sorted and de-duplicated. */
static void split_list(const char *s, bool sorted, char ***v, size_t *n) {
  *v = NULL;
  *n = 0;
  const char *p = s;
  for (;;) {
    const char *c = strchr(p, ',');
    size_t len = c ? (size_t)(c - p) : strlen(p);
    if (len) {
      char *one = xmemdup(p, len);
      strv_push(v, n, one);
      free(one);
    }
    if (!c) break;
    p = c + 1;
  }
  if (!sorted || *n < 2) return;
  qsort(*v, *n, sizeof(char *), cmp_str);
  size_t w = 1;
  for (size_t i = 1; i < *n; i++) {
    if (!strcmp((*v)[w - 1], (*v)[i])) {
      free((*v)[i]);
      continue;
    }
    (*v)[w++] = (*v)[i];
  }
  *n = w;
}

/* ---- Go-compatible scalar parsing ------------------------------------------------------ */

/* Go's strconv underscoreOK: underscores only between digits or after a base prefix. */
static bool underscore_ok(const char *s) {
  char saw = '^';
  size_t i = 0, n = strlen(s);
  if (n >= 1 && (s[0] == '-' || s[0] == '+')) s++, n--;
  bool hex = false;
  if (n >= 2 && s[0] == '0' && strchr("bBoOxX", s[1])) {
    i = 2;
    saw = '0';
    hex = s[1] == 'x' || s[1] == 'X';
  }
  for (; i < n; i++) {
    if (isdigit((unsigned char)s[i]) || (hex && isxdigit((unsigned char)s[i]))) {
      saw = '0';
      continue;
    }
    if (s[i] == '_') {
      if (saw != '0') return false;
      saw = '_';
      continue;
    }
    if (saw == '_') return false;
    saw = '!';
  }
  return saw != '_';
}

/* Like Go's strconv.ParseUint(s, 0, bits). Returns 0, -1 (syntax) or -2 (range). */
static int go_parse_uint(const char *s, int bits, uint64_t *out) {
  if (!*s) return -1;
  const char *orig = s;
  int base = 10;
  bool base0 = true;
  if (s[0] == '0' && s[1]) {
    if (s[1] == 'x' || s[1] == 'X')
      base = 16, s += 2;
    else if (s[1] == 'o' || s[1] == 'O')
      base = 8, s += 2;
    else if (s[1] == 'b' || s[1] == 'B')
      base = 2, s += 2;
    else
      base = 8, s += 1;
  }
  if (!*s) return -1;
  bool underscores = false;
  uint64_t v = 0, max = bits >= 64 ? UINT64_MAX : ((UINT64_C(1) << bits) - 1);
  bool range = false;
  for (; *s; s++) {
    int d;
    char c = *s;
    if (c == '_' && base0) {
      underscores = true;
      continue;
    } else if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'z') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'Z') {
      d = c - 'A' + 10;
    } else {
      return -1;
    }
    if (d >= base) return -1;
    if (range) continue;
    if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) {
      range = true;
      continue;
    }
    v = v * (uint64_t)base + (uint64_t)d;
    if (v > max) range = true;
  }
  if (underscores && !underscore_ok(orig)) return -1;
  if (range) return -2;
  *out = v;
  return 0;
}

/* Like Go's strconv.ParseInt(s, 0, 64). Returns 0, -1 (syntax) or -2 (range). */
static int go_parse_int64(const char *s, int64_t *out) {
  bool neg = false;
  if (*s == '+' || *s == '-') neg = *s++ == '-';
  uint64_t u;
  int rc = go_parse_uint(s, 64, &u);
  if (rc) return rc;
  if (!neg && u > (uint64_t)INT64_MAX) return -2;
  if (neg && u > (uint64_t)INT64_MAX + 1) return -2;
  *out = neg ? (int64_t)(0 - u) : (int64_t)u;
  return 0;
}

/* Like Go's strconv.ParseBool. Returns 0 or -1. */
static int go_parse_bool(const char *s, bool *out) {
  static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
  for (size_t i = 0; i < 6; i++) {
    if (!strcmp(s, t[i])) return *out = true, 0;
    if (!strcmp(s, f[i])) return *out = false, 0;
  }
  return -1;
}

int config_parse_duration(const char *s, int64_t *ns) {
  /* Go's time.ParseDuration: [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+ with units ns us µs μs ms s m h. */
  static const struct {
    const char *u;
    uint64_t mul;
  } units[] = {{"ns", 1},
               {"us", 1000},
               {"\xc2\xb5s", 1000},
               {"\xce\xbcs", 1000},
               {"ms", 1000000},
               {"s", UINT64_C(1000000000)},
               {"m", UINT64_C(60000000000)},
               {"h", UINT64_C(3600000000000)}};
  if (!s) return CETCD_EINVAL;
  bool neg = false;
  if (*s == '-' || *s == '+') neg = *s++ == '-';
  if (!strcmp(s, "0")) return *ns = 0, 0;
  if (!*s) return CETCD_EINVAL;
  uint64_t total = 0;
  while (*s) {
    if (!(isdigit((unsigned char)*s) || *s == '.')) return CETCD_EINVAL;
    uint64_t whole = 0;
    bool pre = false, post = false, over = false;
    while (isdigit((unsigned char)*s)) {
      if (whole > (UINT64_C(1) << 63) / 10) over = true;
      whole = whole * 10 + (uint64_t)(*s - '0');
      pre = true;
      s++;
    }
    double frac = 0, scale = 1;
    if (*s == '.') {
      s++;
      while (isdigit((unsigned char)*s)) {
        scale /= 10;
        frac += (*s - '0') * scale;
        post = true;
        s++;
      }
    }
    if ((!pre && !post) || over) return CETCD_EINVAL;
    const char *u = s;
    while (*s && !isdigit((unsigned char)*s) && *s != '.') s++;
    size_t ul = (size_t)(s - u);
    if (ul == 0) return CETCD_EINVAL; /* missing unit */
    uint64_t mul = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
      if (strlen(units[i].u) == ul && !memcmp(units[i].u, u, ul)) mul = units[i].mul;
    if (!mul) return CETCD_EINVAL; /* unknown unit */
    if (whole > (UINT64_C(1) << 63) / mul) return CETCD_EINVAL;
    uint64_t v = whole * mul + (uint64_t)(frac * (double)mul);
    if (v > (UINT64_C(1) << 63) - total) return CETCD_EINVAL;
    total += v;
  }
  if (!neg && total > (uint64_t)INT64_MAX) return CETCD_EINVAL;
  *ns = neg ? (int64_t)(0 - total) : (int64_t)total;
  return 0;
}

/* Nanoseconds to milliseconds, keeping a positive sub-millisecond value non-zero. */
static int64_t ns_to_ms(int64_t ns) {
  int64_t ms = ns / 1000000;
  if (ms == 0 && ns > 0) ms = 1;
  return ms;
}

/* ---- setting one flag --------------------------------------------------------------- */

#define FIELD(cfg, f, T) ((T *)((char *)(cfg) + (f)->off))
#define COUNT(cfg, f) ((size_t *)((char *)(cfg) + (f)->off_n))

/* Writes Go's reason text for a numeric parse result. */
static const char *num_reason(int rc) { return rc == -2 ? "value out of range" : "parse error"; }

/* Sets flag f from the text v. On a bad value writes the reason (the part after
 * "invalid value ... for flag -x: ") into why and returns CETCD_EINVAL. */
static int set_value(cetcd_config_t *cfg, const flag_def_t *f, const char *v, char *why, size_t whylen) {
  bool store = f->off != NOFIELD;
  switch (f->type) {
    case T_STR:
      if (store) set_str(FIELD(cfg, f, char *), v);
      return 0;
    case T_IGN:
      return 0;
    case T_BOOL: {
      bool b;
      if (go_parse_bool(v, &b)) return errf(why, whylen, "parse error");
      if (store) *FIELD(cfg, f, bool) = b;
      return 0;
    }
    case T_U32:
    case T_U64:
    case T_SIZE: {
      uint64_t u;
      int rc = go_parse_uint(v, f->type == T_U32 ? 32 : 64, &u);
      if (rc) return errf(why, whylen, "%s", num_reason(rc));
      if (!store) return 0;
      if (f->type == T_U32)
        *FIELD(cfg, f, uint32_t) = (uint32_t)u;
      else if (f->type == T_U64)
        *FIELD(cfg, f, uint64_t) = u;
      else
        *FIELD(cfg, f, size_t) = (size_t)u;
      return 0;
    }
    case T_I64: {
      int64_t i;
      int rc = go_parse_int64(v, &i);
      if (rc) return errf(why, whylen, "%s", num_reason(rc));
      if (store) *FIELD(cfg, f, int64_t) = i;
      return 0;
    }
    case T_DUR: {
      int64_t ns;
      if (config_parse_duration(v, &ns)) return errf(why, whylen, "parse error");
      if (store) *FIELD(cfg, f, int64_t) = ns_to_ms(ns);
      return 0;
    }
    case T_CHOICE:
    case T_CMODE: {
      size_t vl = strlen(v);
      const char *c = f->choices;
      int idx = 0;
      while (c && *c) {
        size_t cl = strcspn(c, "|");
        if (cl == vl && !memcmp(c, v, vl)) {
          if (!store) return 0;
          if (f->type == T_CMODE)
            *FIELD(cfg, f, enum config_compaction_mode) = (enum config_compaction_mode)idx;
          else
            set_str(FIELD(cfg, f, char *), v);
          return 0;
        }
        c += cl + (c[cl] == '|');
        idx++;
      }
      char list[160] = "";
      size_t used = 0;
      for (c = f->choices; *c && used + 8 < sizeof(list);) {
        size_t cl = strcspn(c, "|");
        used +=
            (size_t)snprintf(list + used, sizeof(list) - used, "%s\"%.*s\"", used ? ", " : "", (int)cl, c);
        c += cl + (c[cl] == '|');
      }
      return errf(why, whylen, "valid values are %s", list);
    }
    case T_URLS:
    case T_CORS: {
      char **v2 = NULL;
      size_t n2 = 0;
      if (f->type == T_CORS && !strcmp(v, "*")) {
        strv_push(&v2, &n2, "*");
      } else {
        url_list_t l;
        if (urls_parse_list(v, &l, why, whylen)) return CETCD_EINVAL;
        for (size_t i = 0; i < l.n; i++) strv_push(&v2, &n2, l.v[i].str);
        urls_list_free(&l);
      }
      if (store) {
        strv_free(FIELD(cfg, f, char **), COUNT(cfg, f));
        *FIELD(cfg, f, char **) = v2;
        *COUNT(cfg, f) = n2;
      } else {
        strv_free(&v2, &n2);
      }
      return 0;
    }
    case T_SLIST:
    case T_LIST: {
      char **v2;
      size_t n2;
      split_list(v, f->type == T_SLIST, &v2, &n2);
      if (store) {
        strv_free(FIELD(cfg, f, char **), COUNT(cfg, f));
        *FIELD(cfg, f, char **) = v2;
        *COUNT(cfg, f) = n2;
      } else {
        strv_free(&v2, &n2);
      }
      return 0;
    }
    default:
      return errf(why, whylen, "not a flag");
  }
}

/* Records a warning for a flag that is accepted but has no effect in cetcd. */
static void note_ignored(cetcd_config_t *cfg, const flag_def_t *f) {
  if (f->type == T_IGN)
    warnf(cfg, "flag \"-%s\" is no longer supported - ignoring", f->name);
  else if (f->fl & F_IGNORE)
    warnf(cfg, "--%s is accepted for etcd compatibility but has no effect in cetcd", f->name);
}

/* ---- defaults ----------------------------------------------------------------------- */

void config_defaults(cetcd_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->name = xstrdup("default");
  cfg->data_dir = xstrdup("");
  cfg->wal_dir = xstrdup("");
  strv_push(&cfg->listen_client_urls, &cfg->n_listen_client_urls, "http://localhost:2379");
  strv_push(&cfg->advertise_client_urls, &cfg->n_advertise_client_urls, "http://localhost:2379");
  strv_push(&cfg->listen_peer_urls, &cfg->n_listen_peer_urls, "http://localhost:2380");
  strv_push(&cfg->initial_advertise_peer_urls, &cfg->n_initial_advertise_peer_urls, "http://localhost:2380");
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
  strv_push(&cfg->cors, &cfg->n_cors, "*");
  strv_push(&cfg->host_whitelist, &cfg->n_host_whitelist, "*");

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
  strv_push(&cfg->log_outputs, &cfg->n_log_outputs, "default");
  cfg->metrics = xstrdup("basic");

  cfg->experimental_compaction_batch_limit = 1000;
  cfg->experimental_watch_progress_notify_interval_ms = 10 * 60 * 1000;
  cfg->experimental_warning_apply_duration_ms = 100;
  cfg->config_file = xstrdup("");
}

/* ---- command line and environment ----------------------------------------------------- */

/* Wraps a parse/validation message the way etcd prints it. */
static int verify_fail(char *err, size_t errlen, const char *msg) {
  return errf(err, errlen, "error verifying flags, %s. See 'cetcd --help'.", msg);
}

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
      return verify_fail(err, errlen, msg);
    }
    const char *eq = strchr(name, '=');
    size_t nl = eq ? (size_t)(eq - name) : strlen(name);
    int fi = find_flag(name, nl);
    if (fi < 0) {
      if ((nl == 4 && !memcmp(name, "help", 4)) || (nl == 1 && name[0] == 'h')) return CONFIG_HELP;
      snprintf(msg, sizeof(msg), "flag provided but not defined: -%.*s", (int)nl, name);
      return verify_fail(err, errlen, msg);
    }
    const flag_def_t *f = &flag_defs[fi];
    const char *val;
    if (f->type == T_BOOL || f->type == T_IGN) {
      val = eq ? eq + 1 : "true";
      if (f->type == T_BOOL) {
        bool b;
        if (go_parse_bool(val, &b)) {
          snprintf(msg, sizeof(msg), "invalid boolean value \"%s\" for -%s: parse error", val, f->name);
          return verify_fail(err, errlen, msg);
        }
        if (!strcmp(f->name, "version")) px->version = b;
      }
    } else if (eq) {
      val = eq + 1;
    } else if (i + 1 < argc) {
      val = argv[++i];
    } else {
      snprintf(msg, sizeof(msg), "flag needs an argument: -%s", f->name);
      return verify_fail(err, errlen, msg);
    }
    if (set_value(px->cfg, f, val, why, sizeof(why))) {
      snprintf(msg, sizeof(msg), "invalid value \"%s\" for flag -%s: %s", val, f->name, why);
      return verify_fail(err, errlen, msg);
    }
    px->set[fi] = px->cmdline[fi] = true;
  }
  if (i < argc) {
    snprintf(msg, sizeof(msg), "'%s' is not a valid flag", argv[i]);
    return verify_fail(err, errlen, msg);
  }
  return 0;
}

/* Builds the ETCD_* variable name of a flag into out. */
static void env_name(const char *flag, char *out, size_t outlen) {
  size_t n = (size_t)snprintf(out, outlen, "ETCD_");
  for (const char *p = flag; *p && n + 1 < outlen; p++)
    out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
  out[n] = '\0';
}

/* Looks up NAME in envp; returns its value or NULL. */
static const char *env_get(char **envp, const char *name) {
  size_t nl = strlen(name);
  for (char **e = envp; e && *e; e++)
    if (!strncmp(*e, name, nl) && (*e)[nl] == '=') return *e + nl + 1;
  return NULL;
}

/* Applies ETCD_* variables for flags not given on the command line (etcd's
 * SetFlagsFromEnv), warning about shadowed and unrecognized ones. */
static int parse_env(pctx_t *px, char **envp, char *err, size_t errlen) {
  char key[96], msg[512], why[384];
  for (char **e = envp; e && *e; e++) {
    const char *kv = *e;
    if (strncmp(kv, "ETCD_", 5)) continue;
    const char *eq = strchr(kv, '=');
    if (!eq) continue;
    size_t kl = (size_t)(eq - kv);
    const char *val = eq + 1;
    int fi = -1;
    for (size_t i = 0; i < NFLAGS && fi < 0; i++) {
      if (flag_defs[i].type == T_SECTION || !strcmp(flag_defs[i].name, "config-file")) continue;
      env_name(flag_defs[i].name, key, sizeof(key));
      if (strlen(key) == kl && !memcmp(key, kv, kl)) fi = (int)i;
    }
    if (fi < 0) {
      bool quiet = false;
      for (const char *const *q = quiet_env; *q; q++)
        if (strlen(*q) == kl && !memcmp(*q, kv, kl)) quiet = true;
      if (!quiet) warnf(px->cfg, "unrecognized environment variable %s", kv);
      continue;
    }
    const flag_def_t *f = &flag_defs[fi];
    if (!strcmp(f->name, "version")) { /* container images often set ETCD_VERSION=3.x.y */
      warnf(px->cfg, "environment variable %s ignored (use --version)", kv);
      continue;
    }
    if (px->cmdline[fi]) {
      warnf(px->cfg, "environment variable %.*s is shadowed by the command-line flag --%s; using the flag",
            (int)kl, kv, f->name);
      continue;
    }
    if (val[0] == '\0') continue; /* etcd ignores empty values */
    if (set_value(px->cfg, f, val, why, sizeof(why))) {
      snprintf(msg, sizeof(msg), "invalid value \"%s\" for %.*s: %s", val, (int)kl, kv, why);
      return verify_fail(err, errlen, msg);
    }
    px->set[fi] = true;
    note_ignored(px->cfg, f);
  }
  return 0;
}

/* ---- YAML config file ---------------------------------------------------------------- */

/* One YAML value: null, a scalar or a list of scalars. */
typedef struct yval {
  int kind; /* 0 null, 1 scalar, 2 list */
  char *s;  /* scalar text (owned) */
  char **items;
  size_t n;
} yval_t;

/* Frees a yval's contents. */
static void yval_free(yval_t *v) {
  free(v->s);
  strv_free(&v->items, &v->n);
  memset(v, 0, sizeof(*v));
}

/* Parses a quoted scalar at *p (which points at the quote); advances *p past it. Returns
 * the owned text or NULL if the quote is not closed. */
static char *y_quoted(const char **p) {
  char q = **p;
  const char *s = *p + 1;
  size_t cap = strlen(s) + 1, n = 0;
  char *out = xmalloc(cap);
  for (;; s++) {
    if (*s == '\0') {
      free(out);
      return NULL;
    }
    if (*s == q) {
      if (q == '\'' && s[1] == '\'') { /* '' is a literal quote */
        out[n++] = '\'';
        s++;
        continue;
      }
      s++;
      break;
    }
    if (q == '"' && *s == '\\' && s[1]) {
      s++;
      switch (*s) {
        case 'n':
          out[n++] = '\n';
          break;
        case 't':
          out[n++] = '\t';
          break;
        case 'r':
          out[n++] = '\r';
          break;
        case '0':
          out[n++] = '\0';
          break;
        default:
          out[n++] = *s;
          break;
      }
      continue;
    }
    out[n++] = *s;
  }
  out[n] = '\0';
  *p = s;
  return out;
}

/* Trims white space from both ends of [s, s+n) and returns a copy. */
static char *dup_trim(const char *s, size_t n) {
  while (n && isspace((unsigned char)*s)) s++, n--;
  while (n && isspace((unsigned char)s[n - 1])) n--;
  return xmemdup(s, n);
}

/* True if only white space or a comment remains at p. */
static bool y_rest_empty(const char *p) {
  while (*p == ' ' || *p == '\t') p++;
  return *p == '\0' || *p == '#';
}

/* Parses a plain scalar: up to a " #" comment, trimmed. */
static char *y_plain(const char *p) {
  const char *e = p;
  for (; *e; e++)
    if (*e == '#' && (e == p || e[-1] == ' ' || e[-1] == '\t')) break;
  return dup_trim(p, (size_t)(e - p));
}

/* True if a plain scalar is YAML null. */
static bool y_is_null(const char *s) {
  return !strcmp(s, "") || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* Parses the value part of "key: value" into *v. Returns 0 or -1 with a reason in why. */
static int y_value(const char *p, yval_t *v, char *why, size_t whylen) {
  memset(v, 0, sizeof(*v));
  while (*p == ' ' || *p == '\t') p++;
  if (*p == '\'' || *p == '"') {
    char *s = y_quoted(&p);
    if (!s) return errf(why, whylen, "unterminated quoted string"), -1;
    if (!y_rest_empty(p)) {
      free(s);
      return errf(why, whylen, "unexpected text after a quoted string"), -1;
    }
    v->kind = 1;
    v->s = s;
    return 0;
  }
  if (*p == '[') {
    p++;
    v->kind = 2;
    for (;;) {
      while (*p == ' ' || *p == '\t') p++;
      if (*p == ']') {
        p++;
        break;
      }
      char *item;
      if (*p == '\'' || *p == '"') {
        item = y_quoted(&p);
        if (!item) return errf(why, whylen, "unterminated quoted string"), -1;
      } else {
        size_t l = strcspn(p, ",]");
        if (p[l] == '\0') return errf(why, whylen, "unterminated flow list (lists must fit on one line)"), -1;
        item = dup_trim(p, l);
        p += l;
        if (strpbrk(item, "[{")) {
          free(item);
          return errf(why, whylen, "nested lists and maps are not supported"), -1;
        }
      }
      strv_push(&v->items, &v->n, item);
      free(item);
      while (*p == ' ' || *p == '\t') p++;
      if (*p == ',') {
        p++;
        continue;
      }
      if (*p == ']') {
        p++;
        break;
      }
      return errf(why, whylen, "expected ',' or ']' in a flow list"), -1;
    }
    if (!y_rest_empty(p)) return errf(why, whylen, "unexpected text after a list"), -1;
    return 0;
  }
  if (*p == '{' || *p == '|' || *p == '>' || *p == '&' || *p == '*' || *p == '!')
    return errf(why, whylen, "unsupported YAML syntax '%c' (use plain, quoted or [a, b] values)", *p), -1;
  char *s = y_plain(p);
  if (y_is_null(s)) {
    free(s);
    return 0;
  }
  v->kind = 1;
  v->s = s;
  return 0;
}

/* The transport-security blocks: YAML sub-key → flag name. */
static const char *security_flag(const char *block, const char *key) {
  static const char *const keys[] = {"cert-file", "key-file", "client-cert-auth", "trusted-ca-file",
                                     "auto-tls"};
  static const char *const peer[] = {"peer-cert-file", "peer-key-file", "peer-client-cert-auth",
                                     "peer-trusted-ca-file", "peer-auto-tls"};
  bool is_peer = !strcmp(block, "peer-transport-security");
  if (!is_peer && strcmp(block, "client-transport-security")) return NULL;
  for (size_t i = 0; i < 5; i++)
    if (!strcmp(key, keys[i])) return is_peer ? peer[i] : keys[i];
  return NULL;
}

/* Converts a YAML 1.1 boolean word to "true"/"false"; returns NULL if it is not one. */
static const char *y_bool(const char *s) {
  static const char *const t[] = {"y",  "Y",    "yes",  "Yes",  "YES", "on", "On",
                                  "ON", "true", "True", "TRUE", "1",   "t",  "T"};
  static const char *const f[] = {"n",   "N",     "no",    "No",    "NO", "off", "Off",
                                  "OFF", "false", "False", "FALSE", "0",  "f",   "F"};
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    if (!strcmp(s, t[i])) return "true";
    if (!strcmp(s, f[i])) return "false";
  }
  return NULL;
}

/* Applies one YAML entry (block is "" at top level). Returns 0 or CETCD_EINVAL. */
static int y_apply(pctx_t *px, const char *path, int line, const char *block, const char *key, yval_t *v,
                   char *err, size_t errlen) {
  char full[160], why[384];
  snprintf(full, sizeof(full), "%s%s%s", block, *block ? "." : "", key);
  const char *fname = *block ? security_flag(block, key) : key;
  int fi = fname ? find_flag(fname, strlen(fname)) : -1;
  if (fi >= 0 && !*block && (flag_defs[fi].fl & F_NOYAML)) fi = -1;
  if (fi < 0) {
    warnf(px->cfg, "config file %s: line %d: unknown key \"%s\" ignored", path, line, full);
    return 0;
  }
  const flag_def_t *f = &flag_defs[fi];
  if (v->kind == 0) return 0; /* null keeps the default, as in etcd */
  bool is_list = f->type == T_URLS || f->type == T_CORS || f->type == T_SLIST || f->type == T_LIST;
  char *text;
  if (v->kind == 2) {
    if (!is_list)
      return errf(err, errlen, "config file %s: line %d: %s: expected a single value, not a list", path, line,
                  full);
    size_t n = 1;
    for (size_t i = 0; i < v->n; i++) n += strlen(v->items[i]) + 1;
    text = xcalloc(1, n);
    for (size_t i = 0; i < v->n; i++) {
      if (i) strcat(text, ",");
      strcat(text, v->items[i]);
    }
    if (v->n == 0 && is_list) { /* [] clears the list */
      strv_free(FIELD(px->cfg, f, char **), COUNT(px->cfg, f));
      free(text);
      px->set[fi] = true;
      return 0;
    }
  } else {
    text = xstrdup(v->s);
  }
  if (is_list && text[0] == '\0') { /* etcd skips empty URL strings */
    free(text);
    return 0;
  }
  const char *val = text;
  char nsbuf[32];
  if (f->type == T_BOOL) {
    const char *b = y_bool(text);
    if (b) val = b;
  } else if (f->type == T_DUR) {
    int64_t ns; /* JSON durations are integer nanoseconds; Go duration strings are accepted too */
    if (go_parse_int64(text, &ns) == 0) {
      snprintf(nsbuf, sizeof(nsbuf), "%" PRId64 "ns", ns);
      val = nsbuf;
    }
  }
  int rc = set_value(px->cfg, f, val, why, sizeof(why));
  if (rc) {
    rc = errf(err, errlen, "config file %s: line %d: invalid value \"%s\" for %s: %s", path, line, text, full,
              why);
  } else {
    px->set[fi] = true;
    note_ignored(px->cfg, f);
  }
  free(text);
  return rc;
}

/* Splits "key: rest" at the first ':' followed by a blank or the end of line. Returns the
 * owned key (unquoted) and sets *rest, or NULL if the line is not a mapping entry. */
static char *y_key(const char *p, const char **rest) {
  if (*p == '\'' || *p == '"') {
    const char *q = p;
    char *k = y_quoted(&q);
    if (!k) return NULL;
    while (*q == ' ') q++;
    if (*q != ':' || (q[1] && q[1] != ' ' && q[1] != '\t')) {
      free(k);
      return NULL;
    }
    *rest = q + 1;
    return k;
  }
  for (const char *c = p; *c; c++) {
    if (*c == '#' && (c == p || c[-1] == ' ')) return NULL;
    if (*c == ':' && (c[1] == '\0' || c[1] == ' ' || c[1] == '\t')) {
      *rest = c + 1;
      return dup_trim(p, (size_t)(c - p));
    }
  }
  return NULL;
}

/* Parses YAML text (the subset etcd config files use) and applies it. */
static int y_parse(pctx_t *px, const char *path, char *text, char *err, size_t errlen) {
  char why[256];
  char *pending = NULL; /* top-level key whose value is an indented block */
  int pending_line = 0, child_indent = -1;
  yval_t list = {0};
  bool saw_child = false;
  int rc = 0, line = 0;
  char *save = NULL;
  for (char *ln = text; ln && rc == 0; ln = save) {
    save = strchr(ln, '\n');
    if (save) *save++ = '\0';
    line++;
    size_t L = strlen(ln);
    if (L && ln[L - 1] == '\r') ln[--L] = '\0';
    int indent = 0;
    while (ln[indent] == ' ') indent++;
    if (ln[indent] == '\t') {
      rc = errf(err, errlen, "config file %s: line %d: tabs are not allowed for indentation", path, line);
      break;
    }
    const char *p = ln + indent;
    if (*p == '\0' || *p == '#') continue;
    if (indent == 0 && (!strncmp(p, "---", 3) || !strncmp(p, "...", 3)) && y_rest_empty(p + 3)) continue;
    if (indent == 0) {
      if (pending) { /* close the previous block */
        if (list.kind == 2)
          rc = y_apply(px, path, pending_line, "", pending, &list, err, errlen);
        else if (!saw_child)
          rc = y_apply(px, path, pending_line, "", pending, &list, err, errlen);
        yval_free(&list);
        free(pending);
        pending = NULL;
        if (rc) break;
      }
      const char *rest;
      char *key = y_key(p, &rest);
      if (!key) {
        rc = errf(err, errlen, "config file %s: line %d: expected \"key: value\"", path, line);
        break;
      }
      if (y_rest_empty(rest)) {
        pending = key;
        pending_line = line;
        child_indent = -1;
        saw_child = false;
        continue;
      }
      yval_t v;
      if (y_value(rest, &v, why, sizeof(why))) {
        rc = errf(err, errlen, "config file %s: line %d: %s", path, line, why);
        yval_free(&v);
        free(key);
        break;
      }
      rc = y_apply(px, path, line, "", key, &v, err, errlen);
      yval_free(&v);
      free(key);
      continue;
    }
    /* indented: belongs to the pending block */
    if (!pending) {
      rc = errf(err, errlen, "config file %s: line %d: unexpected indentation", path, line);
      break;
    }
    if (child_indent < 0) child_indent = indent;
    if (indent != child_indent) {
      rc = errf(err, errlen,
                "config file %s: line %d: inconsistent indentation (only one level of nesting is supported)",
                path, line);
      break;
    }
    if (*p == '-' && (p[1] == '\0' || p[1] == ' ')) { /* block list item */
      if (saw_child && list.kind != 2) {
        rc = errf(err, errlen, "config file %s: line %d: list item inside a map", path, line);
        break;
      }
      yval_t v;
      if (y_value(p + 1, &v, why, sizeof(why)) || v.kind == 2) {
        if (v.kind == 2) snprintf(why, sizeof(why), "nested lists are not supported");
        rc = errf(err, errlen, "config file %s: line %d: %s", path, line, why);
        yval_free(&v);
        break;
      }
      list.kind = 2;
      strv_push(&list.items, &list.n, v.kind ? v.s : "");
      yval_free(&v);
      saw_child = true;
      continue;
    }
    if (list.kind == 2) {
      rc = errf(err, errlen, "config file %s: line %d: map entry inside a list", path, line);
      break;
    }
    const char *rest;
    char *key = y_key(p, &rest);
    if (!key) {
      rc = errf(err, errlen, "config file %s: line %d: expected \"key: value\"", path, line);
      break;
    }
    saw_child = true;
    yval_t v;
    if (y_value(rest, &v, why, sizeof(why))) {
      rc = errf(err, errlen, "config file %s: line %d: %s", path, line, why);
    } else {
      rc = y_apply(px, path, line, pending, key, &v, err, errlen);
    }
    yval_free(&v);
    free(key);
  }
  if (pending) {
    if (rc == 0 && (list.kind == 2 || !saw_child))
      rc = y_apply(px, path, pending_line, "", pending, &list, err, errlen);
    free(pending);
  }
  yval_free(&list);
  return rc;
}

/* Reads the file and applies it to px. */
static int load_file(pctx_t *px, const char *path, char *err, size_t errlen) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    int e = errno;
    errf(err, errlen, "cannot read config file %s: %s", path, strerror(e));
    return -e;
  }
  size_t cap = 4096, n = 0;
  char *buf = xmalloc(cap);
  size_t r;
  while ((r = fread(buf + n, 1, cap - n - 1, fp)) > 0) {
    n += r;
    if (cap - n - 1 == 0) buf = xrealloc(buf, cap *= 2);
  }
  bool bad = ferror(fp);
  fclose(fp);
  if (bad) {
    free(buf);
    return errf(err, errlen, "cannot read config file %s", path), -EIO;
  }
  buf[n] = '\0';
  if (memchr(buf, '\0', n)) {
    free(buf);
    return errf(err, errlen, "config file %s is not a text file", path);
  }
  int rc = y_parse(px, path, buf, err, errlen);
  free(buf);
  return rc;
}

int config_load_file(cetcd_config_t *cfg, const char *path, char *err, size_t errlen) {
  pctx_t px;
  memset(&px, 0, sizeof(px));
  px.cfg = cfg;
  return load_file(&px, path, err, errlen);
}

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
  split_list(tok[tl] ? tok + tl + 1 : "", false, &parts, &n);
  int rc = 0;
  set_str(&cfg->auth_token_type, type);
  set_str(&cfg->jwt_pub_key, "");
  set_str(&cfg->jwt_priv_key, "");
  set_str(&cfg->jwt_sign_method, "");
  cfg->jwt_ttl_ms = 5 * 60 * 1000;
  if (strcmp(type, "simple") && strcmp(type, "jwt") && strcmp(type, "")) {
    rc = errf(err, errlen, "invalid --auth-token \"%s\": unknown token type \"%s\" (use simple or jwt)", tok,
              type);
    goto out;
  }
  bool seen[4] = {false};
  for (size_t i = 0; i < n; i++) {
    char *e = strchr(parts[i], '=');
    if (!e || strchr(e + 1, '=')) {
      rc = errf(err, errlen, "invalid --auth-token \"%s\": option \"%s\" is not key=value", tok, parts[i]);
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
      warnf(cfg, "--auth-token: unknown option \"%s\" ignored", k);
      continue;
    }
    if (seen[idx]) {
      rc = errf(err, errlen, "invalid --auth-token \"%s\": duplicated option \"%s\"", tok, k);
      goto out;
    }
    seen[idx] = true;
    if (idx == 0) set_str(&cfg->jwt_pub_key, v);
    if (idx == 1) set_str(&cfg->jwt_priv_key, v);
    if (idx == 2) set_str(&cfg->jwt_sign_method, v);
    if (idx == 3 && *v) {
      int64_t ns;
      if (config_parse_duration(v, &ns) || ns <= 0) {
        rc = errf(err, errlen, "invalid --auth-token \"%s\": bad ttl \"%s\"", tok, v);
        goto out;
      }
      cfg->jwt_ttl_ms = ns_to_ms(ns);
    }
  }
  if (!strcmp(type, "jwt")) {
    bool ok = false;
    for (const char *const *m = methods; *m; m++)
      if (!strcmp(*m, cfg->jwt_sign_method)) ok = true;
    if (!ok) {
      rc = errf(err, errlen,
                "invalid --auth-token \"%s\": jwt needs sign-method=RS256|RS384|RS512|PS256|PS384|PS512|"
                "ES256|ES384|ES512|HS256|HS384|HS512",
                tok);
      goto out;
    }
    if (!cfg->jwt_pub_key[0] && !cfg->jwt_priv_key[0]) {
      rc = errf(err, errlen, "invalid --auth-token \"%s\": jwt needs pub-key and/or priv-key", tok);
      goto out;
    }
  }
out:
  free(type);
  strv_free(&parts, &n);
  return rc;
}

/* Parses --auto-compaction-retention for the chosen mode (etcd's parseCompactionRetention). */
static int parse_retention(cetcd_config_t *cfg, bool retention_set, char *err, size_t errlen) {
  const char *r = cfg->auto_compaction_retention;
  cfg->auto_compaction_period_ms = 0;
  cfg->auto_compaction_revisions = 0;
  int64_t n;
  bool is_int = go_parse_int64(r, &n) == 0 && strspn(r, "0123456789") == strlen(r);
  if (cfg->auto_compaction_mode == CONFIG_COMPACT_REVISION) {
    if (!retention_set) return 0; /* the "1h" default is for periodic mode only */
    if (!is_int)
      return errf(err, errlen,
                  "invalid --auto-compaction-retention \"%s\": revision mode needs a number of revisions", r);
    cfg->auto_compaction_revisions = n;
    return 0;
  }
  if (is_int) {
    if (n > INT64_MAX / 3600000)
      return errf(err, errlen, "invalid --auto-compaction-retention \"%s\": too large", r);
    cfg->auto_compaction_period_ms = n * 3600000; /* a bare number means hours */
    return 0;
  }
  int64_t ns;
  if (config_parse_duration(r, &ns) || ns < 0)
    return errf(err, errlen,
                "invalid --auto-compaction-retention \"%s\": expected hours (\"1\") or a duration (\"30m\", "
                "\"1h30m\")",
                r);
  cfg->auto_compaction_period_ms = ns_to_ms(ns);
  return 0;
}

/* Validates one URL list with check (bind or advertise rules). */
static int check_urls(char **v, size_t n, bool bind, const char *flag, char *err, size_t errlen) {
  char why[256];
  for (size_t i = 0; i < n; i++) {
    url_t u;
    if (urls_parse_one(v[i], &u, why, sizeof(why)))
      return errf(err, errlen, "invalid --%s \"%s\": %s", flag, v[i], why);
    int rc = bind ? urls_check_bind(&u, why, sizeof(why)) : urls_check_advertise(&u, why, sizeof(why));
    urls_free_one(&u);
    if (rc) {
      if (bind) return errf(err, errlen, "invalid --%s: %s", flag, why);
      char joined[512] = "";
      for (size_t j = 0; j < n; j++) {
        size_t l = strlen(joined);
        snprintf(joined + l, sizeof(joined) - l, "%s%s", j ? "," : "", v[j]);
      }
      return errf(err, errlen, "--%s \"%s\" must be \"host:port\" (%s)", flag, joined, why);
    }
  }
  return 0;
}

/* Fills derived values and checks the combination (etcd's Config.Validate). */
static int finish(pctx_t *px, char *err, size_t errlen) {
  cetcd_config_t *cfg = px->cfg;
  int fi;
#define WAS_SET(nm) ((fi = find_flag(nm, strlen(nm))) >= 0 && px->set[fi])
  if (cfg->debug) set_str(&cfg->log_level, "debug");
  if (!cfg->data_dir[0]) {
    size_t n = strlen(cfg->name) + 6;
    char *d = xmalloc(n);
    snprintf(d, n, "%s.etcd", cfg->name);
    free(cfg->data_dir);
    cfg->data_dir = d;
  }
  bool discovery = cfg->discovery[0] || cfg->discovery_srv[0];
  if (!WAS_SET("initial-cluster")) {
    if (discovery) {
      set_str(&cfg->initial_cluster, "");
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
  if (!cfg->initial_cluster_state[0]) set_str(&cfg->initial_cluster_state, "new");
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
    return errf(
        err, errlen,
        "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or "
        "\"discovery-srv\"");
  if (cfg->heartbeat_interval_ms == 0)
    return errf(err, errlen, "--heartbeat-interval must be >0 (set to %ums)", cfg->heartbeat_interval_ms);
  if (cfg->election_timeout_ms == 0)
    return errf(err, errlen, "--election-timeout must be >0 (set to %ums)", cfg->election_timeout_ms);
  if ((uint64_t)cfg->heartbeat_interval_ms * 5 > cfg->election_timeout_ms)
    return errf(err, errlen,
                "--election-timeout[%ums] should be at least as 5 times as --heartbeat-interval[%ums]",
                cfg->election_timeout_ms, cfg->heartbeat_interval_ms);
  if (cfg->election_timeout_ms > 50000)
    return errf(err, errlen, "--election-timeout[%ums] is too long, and should be set less than 50000ms",
                cfg->election_timeout_ms);
  if (cfg->n_listen_client_urls > 0 && cfg->n_advertise_client_urls == 0)
    return errf(err, errlen,
                "--advertise-client-urls is required when --listen-client-urls is set explicitly");
  if (strcmp(cfg->proxy, "off"))
    return errf(err, errlen, "--proxy=%s is not supported by cetcd (only \"off\")", cfg->proxy);
  if (cfg->experimental_enable_lease_checkpoint_persist && !cfg->experimental_enable_lease_checkpoint)
    return errf(
        err, errlen,
        "setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint");
  if (cfg->bcrypt_cost < 4 || cfg->bcrypt_cost > 31)
    return errf(err, errlen, "invalid --bcrypt-cost %u: valid values are between 4 and 31", cfg->bcrypt_cost);
  if (cfg->max_request_bytes == 0) return errf(err, errlen, "--max-request-bytes must be >0");
  if ((rc = parse_retention(cfg, WAS_SET("auto-compaction-retention"), err, errlen))) return rc;
  if ((rc = parse_auth_token(cfg, err, errlen))) return rc;

  if (cfg->quota_backend_bytes < 0) {
    cfg->quota_bytes = -1;
    warnf(cfg, "--quota-backend-bytes %" PRId64 " is negative: backend quota disabled",
          cfg->quota_backend_bytes);
  } else if (cfg->quota_backend_bytes == 0) {
    cfg->quota_bytes = CONFIG_DEFAULT_QUOTA_BYTES;
  } else {
    cfg->quota_bytes = cfg->quota_backend_bytes;
    if (cfg->quota_backend_bytes > CONFIG_MAX_QUOTA_BYTES)
      warnf(cfg, "--quota-backend-bytes %" PRId64 " exceeds the maximum recommended %" PRId64 " (8 GiB)",
            cfg->quota_backend_bytes, CONFIG_MAX_QUOTA_BYTES);
  }
  if (cfg->enable_v2) warnf(cfg, "--enable-v2 is accepted but cetcd serves only the v3 API");
  if (discovery) warnf(cfg, "--discovery / --discovery-srv are not supported by cetcd; bootstrap will fail");
  if (cfg->enable_pprof) warnf(cfg, "--enable-pprof is accepted but cetcd has no /debug/pprof endpoint");
#undef WAS_SET
  return 0;
}

/* ---- entry point -------------------------------------------------------------------- */

int config_parse(cetcd_config_t *cfg, int argc, char **argv, char **envp, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  pctx_t *px = xcalloc(1, sizeof(*px));
  px->cfg = cfg;
  char msg[1024];
  int rc = parse_args(px, argc, argv, err, errlen);
  if (rc == CONFIG_HELP) {
    if (!cfg->quiet) config_print_help(stdout);
    goto out;
  }
  if (rc) goto out;
  if (px->version) {
    if (!cfg->quiet) config_print_version(stdout);
    rc = CONFIG_VERSION;
    goto out;
  }
  if (!cfg->config_file[0]) {
    const char *e = env_get(envp, "ETCD_CONFIG_FILE");
    if (e && *e) set_str(&cfg->config_file, e);
  }
  if (cfg->config_file[0]) {
    /* etcd: the file is the only source; flags and environment are ignored. */
    char *path = xstrdup(cfg->config_file);
    bool quiet = cfg->quiet;
    size_t given = 0;
    for (size_t i = 0; i < NFLAGS; i++)
      if (px->cmdline[i] && strcmp(flag_defs[i].name, "config-file")) given++;
    char **warnings = cfg->warnings;
    size_t n_warnings = cfg->n_warnings;
    cfg->warnings = NULL;
    cfg->n_warnings = 0;
    config_free(cfg);
    config_defaults(cfg);
    cfg->warnings = warnings;
    cfg->n_warnings = n_warnings;
    cfg->quiet = quiet;
    set_str(&cfg->config_file, path);
    free(path);
    cfg->from_config_file = true;
    memset(px->set, 0, sizeof(px->set));
    memset(px->cmdline, 0, sizeof(px->cmdline));
    if (given)
      warnf(
          cfg,
          "loaded configuration from %s; the other %zu command-line flag(s) and ETCD_* variables are ignored",
          cfg->config_file, given);
    rc = load_file(px, cfg->config_file, msg, sizeof(msg));
    if (rc) {
      verify_fail(err, errlen, msg);
      goto out;
    }
  } else {
    rc = parse_env(px, envp, err, errlen);
    if (rc) goto out;
    for (size_t i = 0; i < NFLAGS; i++)
      if (px->cmdline[i]) note_ignored(cfg, &flag_defs[i]);
    /* etcd drops the default advertise-client-urls once listen-client-urls is given. */
    int lc = find_flag("listen-client-urls", 18), ac = find_flag("advertise-client-urls", 21);
    if (px->set[lc] && !px->set[ac]) strv_free(&cfg->advertise_client_urls, &cfg->n_advertise_client_urls);
  }
  rc = finish(px, msg, sizeof(msg));
  if (rc) verify_fail(err, errlen, msg);
out:
  free(px);
  return rc;
}

/* ---- help and version --------------------------------------------------------------- */

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
  for (size_t i = 0; i < NFLAGS; i++) {
    const flag_def_t *f = &flag_defs[i];
    if (f->type == T_SECTION) {
      fprintf(out, "\n%s:\n", f->name);
      continue;
    }
    if (f->fl & F_HIDDEN) continue;
    fprintf(out, "  --%s '%s'\n    %s\n", f->name, f->def ? f->def : "", f->help ? f->help : "");
  }
}

void config_print_version(FILE *out) {
  fprintf(out, "etcd Version: %s\nGit SHA: cetcd\nGo Version: n/a (cetcd, C)\nGo OS/Arch: linux/amd64\n",
          CETCD_ETCD_VERSION);
}

/* ---- free --------------------------------------------------------------------------- */

void config_free(cetcd_config_t *cfg) {
  for (size_t i = 0; i < NFLAGS; i++) {
    const flag_def_t *f = &flag_defs[i];
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
        strv_free(FIELD(cfg, f, char **), COUNT(cfg, f));
        break;
      default:
        break;
    }
  }
  free(cfg->auth_token_type);
  free(cfg->jwt_pub_key);
  free(cfg->jwt_priv_key);
  free(cfg->jwt_sign_method);
  strv_free(&cfg->warnings, &cfg->n_warnings);
  memset(cfg, 0, sizeof(*cfg));
}
