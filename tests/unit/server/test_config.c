/* Unit tests for flag, environment and config-file parsing (server/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "cetcd/errors.h"
#include "server/config.h"
#include "server/ids.h"

static char err[1024];

/* Runs config_parse on args (NULL-terminated, without the program name) and env
 * (NULL-terminated "K=V" strings, may be NULL). Returns config_parse's result. */
static int run(cetcd_config_t *cfg, const char *const *args, const char *const *env) {
  char *argv[64] = {(char *)"cetcd"};
  int argc = 1;
  for (; args && args[argc - 1]; argc++) argv[argc] = (char *)args[argc - 1];
  char *envp[32] = {NULL};
  for (int i = 0; env && env[i]; i++) envp[i] = (char *)env[i];
  config_defaults(cfg);
  cfg->quiet = true;
  err[0] = '\0';
  return config_parse(cfg, argc, argv, envp, err, sizeof(err));
}

/* Parses args expecting success. */
static void ok(cetcd_config_t *cfg, const char *const *args, const char *const *env) {
  int rc = run(cfg, args, env);
  if (rc != 0) fail_msg("config_parse failed (%d): %s", rc, err);
}

/* Parses args expecting an error whose message is exactly want (if want is not NULL). */
static void bad(const char *const *args, const char *const *env, const char *want) {
  cetcd_config_t cfg;
  int rc = run(&cfg, args, env);
  config_free(&cfg);
  if (rc != CETCD_EINVAL) fail_msg("expected an error, got %d", rc);
  if (want && strcmp(err, want)) fail_msg("message\n  got:  %s\n  want: %s", err, want);
}

/* True if some warning contains needle. */
static bool has_warning(const cetcd_config_t *cfg, const char *needle) {
  for (size_t i = 0; i < cfg->n_warnings; i++)
    if (strstr(cfg->warnings[i], needle)) return true;
  return false;
}

/* Writes text to a new temporary file; returns its path (static buffer). */
static const char *write_tmp(const char *text) {
  static char path[64];
  snprintf(path, sizeof(path), "/tmp/cetcd_cfg_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return path;
}

#define A(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- defaults and flag syntax ------------------------------------------------------------ */

static void test_defaults(void **state) {
  (void)state;
  cetcd_config_t c;
  ok(&c, NULL, NULL);
  assert_string_equal(c.name, "default");
  assert_string_equal(c.data_dir, "default.etcd");
  assert_string_equal(c.wal_dir, "default.etcd/member/wal"); /* derived */
  assert_int_equal(c.n_listen_client_urls, 1);
  assert_string_equal(c.listen_client_urls[0], "http://localhost:2379");
  assert_string_equal(c.advertise_client_urls[0], "http://localhost:2379");
  assert_string_equal(c.listen_peer_urls[0], "http://localhost:2380");
  assert_string_equal(c.initial_advertise_peer_urls[0], "http://localhost:2380");
  assert_int_equal(c.n_listen_metrics_urls, 0);
  assert_string_equal(c.initial_cluster, "default=http://localhost:2380");
  assert_string_equal(c.initial_cluster_state, "new");
  assert_false(c.initial_cluster_existing);
  assert_string_equal(c.initial_cluster_token, "etcd-cluster");
  assert_int_equal(c.snapshot_count, 100000);
  assert_int_equal(c.heartbeat_interval_ms, 100);
  assert_int_equal(c.election_timeout_ms, 1000);
  assert_int_equal(c.quota_backend_bytes, 0);
  assert_int_equal(c.quota_bytes, CONFIG_DEFAULT_QUOTA_BYTES);
  assert_int_equal(c.max_txn_ops, 128);
  assert_int_equal(c.max_request_bytes, 1572864);
  assert_int_equal(c.max_concurrent_streams, UINT32_MAX);
  assert_int_equal(c.max_snapshots, 5);
  assert_int_equal(c.max_wals, 5);
  assert_int_equal(c.auto_compaction_mode, CONFIG_COMPACT_PERIODIC);
  assert_string_equal(c.auto_compaction_retention, "1h");
  assert_int_equal(c.auto_compaction_period_ms, 3600 * 1000);
  assert_int_equal(c.auto_compaction_revisions, 0);
  assert_int_equal(c.grpc_keepalive_min_time_ms, 5000);
  assert_int_equal(c.grpc_keepalive_interval_ms, 7200 * 1000);
  assert_int_equal(c.grpc_keepalive_timeout_ms, 20000);
  assert_int_equal(c.experimental_watch_progress_notify_interval_ms, 600 * 1000);
  assert_true(c.strict_reconfig_check);
  assert_true(c.initial_election_tick_advance);
  assert_false(c.client_cert_auth);
  assert_false(c.enable_v2);
  assert_string_equal(c.auth_token, "simple");
  assert_string_equal(c.auth_token_type, "simple");
  assert_int_equal(c.bcrypt_cost, 10);
  assert_string_equal(c.log_level, "info");
  assert_string_equal(c.metrics, "basic");
  assert_string_equal(c.proxy, "off");
  assert_string_equal(c.cors[0], "*");
  assert_string_equal(c.host_whitelist[0], "*");
  assert_string_equal(c.log_outputs[0], "default");
  assert_string_equal(c.cert_file, "");
  assert_string_equal(c.config_file, "");
  assert_false(c.from_config_file);
  assert_int_equal(c.n_warnings, 0);
  config_free(&c);
}

/* --x y, --x=y, -x y and -x=y all work; the last occurrence wins. */
static void test_flag_forms(void **state) {
  (void)state;
  cetcd_config_t c;
  ok(&c, A("--name", "a"), NULL);
  assert_string_equal(c.name, "a");
  assert_string_equal(c.data_dir, "a.etcd");
  config_free(&c);
  ok(&c, A("--name=b", "-data-dir=/tmp/d", "-wal-dir", "/tmp/w"), NULL);
  assert_string_equal(c.name, "b");
  assert_string_equal(c.data_dir, "/tmp/d");
  assert_string_equal(c.wal_dir, "/tmp/w");
  config_free(&c);
  ok(&c, A("--name", "x", "-name", "y", "--snapshot-count=5", "-snapshot-count=7"), NULL);
  assert_string_equal(c.name, "y");
  assert_int_equal(c.snapshot_count, 7);
  config_free(&c);
  /* a value may itself start with a dash, as in Go */
  ok(&c, A("--name", "-odd-"), NULL);
  assert_string_equal(c.name, "-odd-");
  config_free(&c);
  /* "--" ends the flags */
  ok(&c, A("--name", "z", "--"), NULL);
  assert_string_equal(c.name, "z");
  config_free(&c);
}

static void test_booleans(void **state) {
  (void)state;
  cetcd_config_t c;
  ok(&c,
     A("--client-cert-auth", "-auto-tls", "--peer-auto-tls=true", "--peer-client-cert-auth=1",
       "--strict-reconfig-check=false", "--experimental-initial-corrupt-check=T", "--enable-v2=False"),
     NULL);
  assert_true(c.client_cert_auth);
  assert_true(c.auto_tls);
  assert_true(c.peer_auto_tls);
  assert_true(c.peer_client_cert_auth);
  assert_false(c.strict_reconfig_check);
  assert_true(c.experimental_initial_corrupt_check);
  assert_false(c.enable_v2);
  config_free(&c);
  bad(A("--debug=maybe"), NULL,
      "error verifying flags, invalid boolean value \"maybe\" for -debug: parse error. See 'cetcd --help'.");
  /* booleans never take the next argument (Go's flag package) */
  bad(A("--client-cert-auth", "false"), NULL,
      "error verifying flags, 'false' is not a valid flag. See 'cetcd --help'.");
  ok(&c, A("--debug"), NULL);
  assert_true(c.debug);
  assert_string_equal(c.log_level, "debug");
  config_free(&c);
}

static void test_unknown_and_syntax_errors(void **state) {
  (void)state;
  bad(A("--bogus"), NULL,
      "error verifying flags, flag provided but not defined: -bogus. See 'cetcd --help'.");
  bad(A("-bogus=1"), NULL,
      "error verifying flags, flag provided but not defined: -bogus. See 'cetcd --help'.");
  bad(A("extra"), NULL, "error verifying flags, 'extra' is not a valid flag. See 'cetcd --help'.");
  bad(A("--name", "x", "extra", "--data-dir", "d"), NULL,
      "error verifying flags, 'extra' is not a valid flag. See 'cetcd --help'.");
  bad(A("---name=x"), NULL, "error verifying flags, bad flag syntax: ---name=x. See 'cetcd --help'.");
  bad(A("--=x"), NULL, "error verifying flags, bad flag syntax: --=x. See 'cetcd --help'.");
  bad(A("--name"), NULL, "error verifying flags, flag needs an argument: -name. See 'cetcd --help'.");
}

static void test_help_and_version(void **state) {
  (void)state;
  cetcd_config_t c;
  assert_int_equal(run(&c, A("--help"), NULL), CONFIG_HELP);
  config_free(&c);
  assert_int_equal(run(&c, A("-h"), NULL), CONFIG_HELP);
  config_free(&c);
  assert_int_equal(run(&c, A("--name", "x", "-help"), NULL), CONFIG_HELP);
  config_free(&c);
  assert_int_equal(run(&c, A("--version"), NULL), CONFIG_VERSION);
  config_free(&c);
  assert_int_equal(run(&c, A("--version=false"), NULL), 0);
  config_free(&c);
  /* the text itself */
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  config_print_version(f);
  fclose(f);
  assert_string_equal(buf, "etcd Version: " CETCD_ETCD_VERSION
                           "\nGit SHA: cetcd\nGo Version: n/a (cetcd, C)\nGo OS/Arch: "
                           "linux/amd64\n");
  assert_string_equal(CETCD_ETCD_VERSION, "3.4.23");
  free(buf);
  f = open_memstream(&buf, &len);
  config_print_help(f);
  fclose(f);
  assert_non_null(strstr(buf, "  --name 'default'\n"));
  assert_non_null(strstr(buf, "  --quota-backend-bytes '0'\n"));
  assert_non_null(strstr(buf, "  --auto-compaction-retention '1h'\n"));
  assert_null(strstr(buf, "--cluster-active-size")); /* removed flags are hidden */
  free(buf);
}

/* ---- values --------------------------------------------------------------------------- */

static void test_bad_values(void **state) {
  (void)state;
  bad(A("--quota-backend-bytes=abc"), NULL,
      "error verifying flags, invalid value \"abc\" for flag -quota-backend-bytes: parse error. See 'cetcd "
      "--help'.");
  bad(A("--initial-cluster-state=foo"), NULL,
      "error verifying flags, invalid value \"foo\" for flag -initial-cluster-state: valid values are "
      "\"new\", "
      "\"existing\". See 'cetcd --help'.");
  bad(A("--listen-client-urls=foo://x"), NULL,
      "error verifying flags, invalid value \"foo://x\" for flag -listen-client-urls: URL scheme must be "
      "http, https, "
      "unix, or unixs: foo://x. See 'cetcd --help'.");
  bad(A("--max-concurrent-streams=-1"), NULL,
      "error verifying flags, invalid value \"-1\" for flag -max-concurrent-streams: parse error. See 'cetcd "
      "--help'.");
  bad(A("--max-concurrent-streams=4294967296"), NULL,
      "error verifying flags, invalid value \"4294967296\" for flag -max-concurrent-streams: value out of "
      "range. See "
      "'cetcd --help'.");
  bad(A("--snapshot-count", "1e5"), NULL, NULL);
  bad(A("--log-level=loud"), NULL, NULL);
  bad(A("--logger=glog"), NULL, NULL);
  bad(A("--auto-compaction-mode=daily"), NULL, NULL);
  bad(A("--grpc-keepalive-min-time=5"), NULL,
      "error verifying flags, invalid value \"5\" for flag -grpc-keepalive-min-time: parse error. See 'cetcd "
      "--help'.");
  bad(A("--heartbeat-interval=300"), NULL,
      "error verifying flags, --election-timeout[1000ms] should be at least as 5 times as "
      "--heartbeat-interval[300ms]. See 'cetcd --help'.");
  bad(A("--heartbeat-interval=0"), NULL, NULL);
  bad(A("--election-timeout=60000"), NULL, NULL);
  bad(A("--listen-client-urls=http://127.0.0.1:2379"), NULL,
      "error verifying flags, --advertise-client-urls is required when --listen-client-urls is set "
      "explicitly. See "
      "'cetcd --help'.");
  bad(A("--listen-peer-urls=http://example.com:2380"), NULL,
      "error verifying flags, invalid --listen-peer-urls: expected IP in URL for binding "
      "(http://example.com:2380). "
      "See 'cetcd --help'.");
  bad(A("--initial-advertise-peer-urls=http://:2380"), NULL,
      "error verifying flags, --initial-advertise-peer-urls \"http://:2380\" must be \"host:port\" "
      "(unexpected empty "
      "host (http://:2380)). See 'cetcd --help'.");
  bad(A("--proxy=on"), NULL, NULL);
  bad(A("--proxy=sideways"), NULL, NULL);
  bad(A("--bcrypt-cost=2"), NULL, NULL);
  bad(A("--discovery=https://d/x", "--initial-cluster=default=http://localhost:2380"), NULL,
      "error verifying flags, multiple discovery or bootstrap flags are set. Choose one of "
      "\"initial-cluster\", "
      "\"discovery\" or \"discovery-srv\". See 'cetcd --help'.");
  bad(A("--experimental-enable-lease-checkpoint-persist"), NULL, NULL);
}

/* Go's integer syntax (strconv base 0): prefixes, underscores, octal with a leading zero. */
static void test_numbers(void **state) {
  (void)state;
  cetcd_config_t c;
  ok(&c,
     A("--max-txn-ops=0x10", "--snapshot-count=1_000", "--max-wals=010", "--max-snapshots=0b11",
       "--max-request-bytes=0o17"),
     NULL);
  assert_int_equal(c.max_txn_ops, 16);
  assert_int_equal(c.snapshot_count, 1000);
  assert_int_equal(c.max_wals, 8);
  assert_int_equal(c.max_snapshots, 3);
  assert_int_equal(c.max_request_bytes, 15);
  config_free(&c);
  bad(A("--snapshot-count=_1"), NULL, NULL);
  bad(A("--snapshot-count=1__0"), NULL, NULL);
  bad(A("--snapshot-count=08"), NULL, NULL);
  bad(A("--snapshot-count=0x"), NULL, NULL);
  bad(A("--snapshot-count=+5"), NULL, NULL);
  bad(A("--snapshot-count=18446744073709551616"), NULL, NULL);
  ok(&c, A("--snapshot-count=18446744073709551615", "--max-concurrent-streams=4294967295"), NULL);
  assert_true(c.snapshot_count == UINT64_MAX);
  assert_int_equal(c.max_concurrent_streams, UINT32_MAX);
  config_free(&c);
}

static void test_quota(void **state) {
  (void)state;
  cetcd_config_t c;
  ok(&c, A("--quota-backend-bytes=0"), NULL);
  assert_int_equal(c.quota_bytes, INT64_C(2147483648));
  config_free(&c);
  ok(&c, A("--quota-backend-bytes", "8589934592"), NULL);
  assert_int_equal(c.quota_bytes, INT64_C(8589934592));
  assert_int_equal(c.n_warnings, 0);
  config_free(&c);
  ok(&c, A("--quota-backend-bytes=9000000000"), NULL);
  assert_int_equal(c.quota_bytes, INT64_C(9000000000));
  assert_true(has_warning(&c, "exceeds the maximum"));
  config_free(&c);
  ok(&c, A("--quota-backend-bytes=-1"), NULL);
  assert_int_equal(c.quota_backend_bytes, -1);
  assert_int_equal(c.quota_bytes, -1);
  config_free(&c);
  ok(&c, A("--quota-backend-bytes=0x1000"), NULL);
  assert_int_equal(c.quota_bytes, 4096);
  config_free(&c);
  bad(A("--quota-backend-bytes=9223372036854775808"), NULL,
      "error verifying flags, invalid value \"9223372036854775808\" for flag -quota-backend-bytes: value out "
      "of "
      "range. See 'cetcd --help'.");
  bad(A("--quota-backend-bytes=2GB"), NULL, NULL);
}

static void test_durations(void **state) {
  (void)state;
  int64_t ns;
  assert_int_equal(config_parse_duration("0", &ns), 0);
  assert_int_equal(ns, 0);
  assert_int_equal(config_parse_duration("5s", &ns), 0);
  assert_int_equal(ns, INT64_C(5000000000));
  assert_int_equal(config_parse_duration("1h30m", &ns), 0);
  assert_int_equal(ns, INT64_C(5400000000000));
  assert_int_equal(config_parse_duration("1.5h", &ns), 0);
  assert_int_equal(ns, INT64_C(5400000000000));
  assert_int_equal(config_parse_duration("300ms", &ns), 0);
  assert_int_equal(ns, INT64_C(300000000));
  assert_int_equal(config_parse_duration("-2m", &ns), 0);
  assert_int_equal(ns, INT64_C(-120000000000));
  assert_int_equal(config_parse_duration("1us", &ns), 0);
  assert_int_equal(ns, 1000);
  assert_int_equal(config_parse_duration("1\xc2\xb5s", &ns), 0);
  assert_int_equal(ns, 1000);
  assert_int_equal(config_parse_duration(".5s", &ns), 0);
  assert_int_equal(ns, 500000000);
  assert_int_equal(config_parse_duration("2h45m10s", &ns), 0);
  assert_int_equal(ns, INT64_C(9910000000000));
  assert_int_equal(config_parse_duration("", &ns), CETCD_EINVAL);
  assert_int_equal(config_parse_duration("5", &ns), CETCD_EINVAL);
  assert_int_equal(config_parse_duration("5d", &ns), CETCD_EINVAL);
  assert_int_equal(config_parse_duration("h", &ns), CETCD_EINVAL);
  assert_int_equal(config_parse_duration(".s", &ns), CETCD_EINVAL);
  assert_int_equal(config_parse_duration("1s ", &ns), CETCD_EINVAL);
  assert_int_equal(config_parse_duration("9999999999h", &ns), CETCD_EINVAL);

  cetcd_config_t c;
  ok(&c,
     A("--grpc-keepalive-min-time=10s", "--grpc-keepalive-interval=0", "--grpc-keepalive-timeout=1m",
       "--experimental-watch-progress-notify-interval=100ms", "--experimental-corrupt-check-time=500us"),
     NULL);
  assert_int_equal(c.grpc_keepalive_min_time_ms, 10000);
  assert_int_equal(c.grpc_keepalive_interval_ms, 0);
  assert_int_equal(c.grpc_keepalive_timeout_ms, 60000);
  assert_int_equal(c.experimental_watch_progress_notify_interval_ms, 100);
  assert_int_equal(c.experimental_corrupt_check_time_ms, 1); /* sub-millisecond stays non-zero */
  config_free(&c);
}

static void test_compaction(void **state) {
  (void)state;
  static const struct {
    const char *v;
    int64_t ms;
  } periodic[] = {{"1", 3600000}, {"30m", 1800000}, {"1h30m", 5400000},
                  {"5s", 5000},   {"0", 0},         {"24", 86400000}};
  cetcd_config_t c;
  for (size_t i = 0; i < sizeof(periodic) / sizeof(periodic[0]); i++) {
    char flag[64];
    snprintf(flag, sizeof(flag), "--auto-compaction-retention=%s", periodic[i].v);
    ok(&c, A(flag), NULL);
    assert_int_equal(c.auto_compaction_mode, CONFIG_COMPACT_PERIODIC);
    assert_int_equal(c.auto_compaction_period_ms, periodic[i].ms);
    assert_string_equal(c.auto_compaction_retention, periodic[i].v);
    config_free(&c);
  }
  ok(&c, A("--auto-compaction-mode=revision", "--auto-compaction-retention=1000"), NULL);
  assert_int_equal(c.auto_compaction_mode, CONFIG_COMPACT_REVISION);
  assert_int_equal(c.auto_compaction_revisions, 1000);
  assert_int_equal(c.auto_compaction_period_ms, 0);
  config_free(&c);
  /* revision mode without a retention: off (the "1h" default is for periodic mode) */
  ok(&c, A("--auto-compaction-mode=revision"), NULL);
  assert_int_equal(c.auto_compaction_revisions, 0);
  assert_int_equal(c.auto_compaction_period_ms, 0);
  config_free(&c);
  bad(A("--auto-compaction-mode=revision", "--auto-compaction-retention=5m"), NULL,
      "error verifying flags, invalid --auto-compaction-retention \"5m\": revision mode needs a number of "
      "revisions. "
      "See 'cetcd --help'.");
  bad(A("--auto-compaction-retention=-1"), NULL, NULL);
  bad(A("--auto-compaction-retention=abc"), NULL, NULL);
  bad(A("--auto-compaction-retention="), NULL, NULL);
}

static void test_urls_and_lists(void **state) {
  (void)state;
  cetcd_config_t c;
  ok(&c,
     A("--listen-client-urls", "http://127.0.0.1:2379,unix://sock:0,http://[::1]:2379,http://127.0.0.1:2379",
       "--advertise-client-urls=http://0.0.0.0:0", "--listen-metrics-urls=http://127.0.0.1:9000",
       "--cipher-suites=TLS_B,TLS_A", "--host-whitelist=b,a,b", "--cors=http://x:1",
       "--log-outputs=stderr,stdout"),
     NULL);
  assert_int_equal(c.n_listen_client_urls, 3); /* sorted, de-duplicated */
  assert_string_equal(c.listen_client_urls[0], "http://127.0.0.1:2379");
  assert_string_equal(c.listen_client_urls[1], "http://[::1]:2379");
  assert_string_equal(c.listen_client_urls[2], "unix://sock:0");
  assert_string_equal(c.advertise_client_urls[0], "http://0.0.0.0:0");
  assert_string_equal(c.listen_metrics_urls[0], "http://127.0.0.1:9000");
  assert_int_equal(c.n_cipher_suites, 2);
  assert_string_equal(c.cipher_suites[0], "TLS_B"); /* order kept */
  assert_int_equal(c.n_host_whitelist, 2);
  assert_string_equal(c.host_whitelist[0], "a");
  assert_string_equal(c.cors[0], "http://x:1");
  assert_int_equal(c.n_log_outputs, 2);
  config_free(&c);
  bad(A("--cors=http://x"), NULL, NULL);
  bad(A("--listen-peer-urls="), NULL, NULL);
}

/* --initial-cluster defaults to <name>=<advertised peer URLs>; discovery clears it. */
static void test_initial_cluster_default(void **state) {
  (void)state;
  cetcd_config_t c;
  ok(&c,
     A("--name", "n1", "--initial-advertise-peer-urls", "http://127.0.0.1:2,http://127.0.0.1:1",
       "--listen-peer-urls=http://127.0.0.1:1"),
     NULL);
  assert_string_equal(c.initial_cluster, "n1=http://127.0.0.1:1,n1=http://127.0.0.1:2");
  config_free(&c);
  ok(&c,
     A("--initial-cluster", "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380", "--initial-cluster-state",
       "existing"),
     NULL);
  assert_string_equal(c.initial_cluster, "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380");
  assert_true(c.initial_cluster_existing);
  config_free(&c);
  ok(&c, A("--discovery=https://discovery.example/x"), NULL);
  assert_string_equal(c.initial_cluster, "");
  assert_true(has_warning(&c, "discovery"));
  config_free(&c);
}

static void test_auth_token(void **state) {
  (void)state;
  cetcd_config_t c;
  ok(&c,
     A("--auth-token",
       "jwt,pub-key=../../integration/fixtures/server.crt,priv-key=../../integration/fixtures/"
       "server.key.insecure,"
       "sign-method=RS256,ttl=1s"),
     NULL);
  assert_string_equal(c.auth_token_type, "jwt");
  assert_string_equal(c.jwt_pub_key, "../../integration/fixtures/server.crt");
  assert_string_equal(c.jwt_priv_key, "../../integration/fixtures/server.key.insecure");
  assert_string_equal(c.jwt_sign_method, "RS256");
  assert_int_equal(c.jwt_ttl_ms, 1000);
  config_free(&c);
  ok(&c, A("--auth-token=jwt,priv-key=k,sign-method=HS256"), NULL);
  assert_int_equal(c.jwt_ttl_ms, 300000); /* 5m default */
  config_free(&c);
  ok(&c, A("--auth-token=simple"), NULL);
  assert_string_equal(c.auth_token_type, "simple");
  config_free(&c);
  bad(A("--auth-token=magic"), NULL, NULL);
  bad(A("--auth-token=jwt,priv-key=k"), NULL, NULL);
  bad(A("--auth-token=jwt,priv-key=k,sign-method=RS256,ttl=x"), NULL, NULL);
  bad(A("--auth-token=jwt,priv-key,sign-method=RS256"), NULL, NULL);
  bad(A("--auth-token=jwt,priv-key=a,priv-key=b,sign-method=RS256"), NULL, NULL);
}

/* Flags cetcd accepts but does not act on are collected as warnings. */
static void test_ignored_flags(void **state) {
  (void)state;
  cetcd_config_t c;
  ok(&c,
     A("--snapshot", "--v=3", "--backend-batch-limit=10", "--enable-v2", "--proxy=off",
       "--proxy-dial-timeout=5", "--discovery-fallback=exit", "--experimental-enable-v2v3=/v2",
       "--enable-pprof", "--metrics=extensive", "--peer-cert-allowed-cn", "example.com",
       "--self-signed-cert-validity=3", "--force-new-cluster"),
     NULL);
  assert_true(has_warning(&c, "flag \"-snapshot\" is no longer supported - ignoring"));
  assert_true(has_warning(&c, "flag \"-v\" is no longer supported"));
  assert_true(has_warning(&c, "--backend-batch-limit is accepted"));
  assert_true(has_warning(&c, "--experimental-enable-v2v3 is accepted"));
  assert_true(has_warning(&c, "--enable-v2"));
  assert_true(has_warning(&c, "--enable-pprof"));
  assert_false(has_warning(&c, "proxy-dial-timeout"));
  assert_true(c.enable_v2);
  assert_string_equal(c.metrics, "extensive");
  assert_string_equal(c.discovery_fallback, "exit");
  assert_string_equal(c.peer_cert_allowed_cn, "example.com");
  assert_int_equal(c.self_signed_cert_validity, 3);
  assert_true(c.force_new_cluster);
  config_free(&c);
}

/* ---- environment ------------------------------------------------------------------------ */

static void test_env(void **state) {
  (void)state;
  cetcd_config_t c;
  ok(&c, NULL,
     A("ETCD_NAME=envname", "ETCD_DATA_DIR=/var/lib/x", "ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:3379",
       "ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:3379", "ETCD_CLIENT_CERT_AUTH=true",
       "ETCD_SNAPSHOT_COUNT=42", "PATH=/bin", "ETCDCTL_API=3"));
  assert_string_equal(c.name, "envname");
  assert_string_equal(c.data_dir, "/var/lib/x");
  assert_string_equal(c.listen_client_urls[0], "http://127.0.0.1:3379");
  assert_true(c.client_cert_auth);
  assert_int_equal(c.snapshot_count, 42);
  assert_string_equal(c.initial_cluster, "envname=http://localhost:2380");
  assert_int_equal(c.n_warnings, 0);
  config_free(&c);
}

static void test_env_precedence_and_warnings(void **state) {
  (void)state;
  cetcd_config_t c;
  ok(&c, A("--name", "cli"),
     A("ETCD_NAME=env", "ETCD_WAL_DIR=/w", "ETCD_FOO=1", "ETCD_UNSUPPORTED_ARCH=arm", "ETCD_MAX_WALS="));
  assert_string_equal(c.name, "cli");   /* the command line wins */
  assert_string_equal(c.wal_dir, "/w"); /* the environment fills the rest */
  assert_int_equal(c.max_wals, 5);      /* empty values are ignored */
  assert_true(has_warning(&c, "ETCD_NAME is shadowed by the command-line flag --name"));
  assert_true(has_warning(&c, "unrecognized environment variable ETCD_FOO=1"));
  assert_false(has_warning(&c, "UNSUPPORTED_ARCH"));
  assert_int_equal(c.n_warnings, 2);
  config_free(&c);
  bad(NULL, A("ETCD_QUOTA_BACKEND_BYTES=abc"),
      "error verifying flags, invalid value \"abc\" for ETCD_QUOTA_BACKEND_BYTES: parse error. See 'cetcd "
      "--help'.");
  bad(NULL, A("ETCD_INITIAL_CLUSTER_STATE=old"), NULL);
  /* ETCD_VERSION (set by many container images) is not the --version flag */
  ok(&c, NULL, A("ETCD_VERSION=3.4.23"));
  assert_true(has_warning(&c, "ETCD_VERSION=3.4.23 ignored"));
  config_free(&c);
  /* etcd's rule: listen-client-urls from the environment also needs advertise-client-urls */
  bad(NULL, A("ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:3379"), NULL);
}

/* ---- config file --------------------------------------------------------------------------- */

/* The sample file of etcd's e2e suite (TestEtcdExampleConfig). */
static const char *sample_yaml =
    "name: 'default'\n"
    "data-dir:\n"
    "wal-dir:\n"
    "snapshot-count: 10000\n"
    "heartbeat-interval: 100\n"
    "election-timeout: 1000\n"
    "quota-backend-bytes: 0\n"
    "listen-peer-urls: http://127.0.0.1:20081\n"
    "listen-client-urls: http://127.0.0.1:20080\n"
    "max-snapshots: 5\n"
    "max-wals: 5\n"
    "cors:\n"
    "initial-advertise-peer-urls: http://127.0.0.1:20081\n"
    "advertise-client-urls: http://127.0.0.1:20080\n"
    "discovery:\n"
    "discovery-fallback: 'proxy'\n"
    "discovery-proxy:\n"
    "discovery-srv:\n"
    "initial-cluster: 'default=http://127.0.0.1:20081'\n"
    "initial-cluster-token: 'etcd-cluster'\n"
    "initial-cluster-state: 'new'\n"
    "strict-reconfig-check: false\n"
    "enable-v2: true\n"
    "enable-pprof: true\n"
    "proxy: 'off'\n"
    "proxy-failure-wait: 5000\n"
    "proxy-refresh-interval: 30000\n"
    "proxy-dial-timeout: 1000\n"
    "proxy-write-timeout: 5000\n"
    "proxy-read-timeout: 0\n"
    "client-transport-security:\n"
    "  cert-file:\n"
    "  key-file:\n"
    "  client-cert-auth: false\n"
    "  trusted-ca-file:\n"
    "  auto-tls: false\n"
    "peer-transport-security:\n"
    "  cert-file:\n"
    "  key-file:\n"
    "  client-cert-auth: false\n"
    "  trusted-ca-file:\n"
    "  auto-tls: false\n"
    "debug: false\n"
    "logger: zap\n"
    "log-outputs: [stderr]\n"
    "force-new-cluster: false\n"
    "auto-compaction-mode: periodic\n"
    "auto-compaction-retention: \"1\"\n";

static void test_yaml_sample(void **state) {
  (void)state;
  const char *path = write_tmp(sample_yaml);
  char flag[96];
  snprintf(flag, sizeof(flag), "--config-file=%s", path);
  cetcd_config_t c;
  /* other flags and ETCD_* variables are ignored when a config file is given */
  ok(&c, A(flag, "--name", "ignored", "--snapshot-count=1"), A("ETCD_WAL_DIR=/nope", "ETCD_BOGUS=1"));
  unlink(path);
  assert_true(c.from_config_file);
  assert_string_equal(c.config_file, path);
  assert_string_equal(c.name, "default");
  assert_string_equal(c.data_dir, "default.etcd");
  assert_string_equal(c.wal_dir, "default.etcd/member/wal");
  assert_int_equal(c.snapshot_count, 10000);
  assert_int_equal(c.heartbeat_interval_ms, 100);
  assert_int_equal(c.election_timeout_ms, 1000);
  assert_int_equal(c.quota_backend_bytes, 0);
  assert_int_equal(c.quota_bytes, CONFIG_DEFAULT_QUOTA_BYTES);
  assert_int_equal(c.n_listen_peer_urls, 1);
  assert_string_equal(c.listen_peer_urls[0], "http://127.0.0.1:20081");
  assert_int_equal(c.n_listen_client_urls, 1);
  assert_string_equal(c.listen_client_urls[0], "http://127.0.0.1:20080");
  assert_int_equal(c.max_snapshots, 5);
  assert_int_equal(c.max_wals, 5);
  assert_string_equal(c.cors[0], "*");
  assert_string_equal(c.initial_advertise_peer_urls[0], "http://127.0.0.1:20081");
  assert_string_equal(c.advertise_client_urls[0], "http://127.0.0.1:20080");
  assert_string_equal(c.discovery, "");
  assert_string_equal(c.discovery_fallback, "proxy");
  assert_string_equal(c.initial_cluster, "default=http://127.0.0.1:20081");
  assert_string_equal(c.initial_cluster_token, "etcd-cluster");
  assert_string_equal(c.initial_cluster_state, "new");
  assert_false(c.strict_reconfig_check);
  assert_true(c.enable_v2);
  assert_true(c.enable_pprof);
  assert_string_equal(c.proxy, "off");
  assert_string_equal(c.cert_file, "");
  assert_false(c.client_cert_auth);
  assert_false(c.auto_tls);
  assert_false(c.peer_client_cert_auth);
  assert_false(c.peer_auto_tls);
  assert_false(c.debug);
  assert_string_equal(c.logger, "zap");
  assert_int_equal(c.n_log_outputs, 1);
  assert_string_equal(c.log_outputs[0], "stderr");
  assert_false(c.force_new_cluster);
  assert_int_equal(c.auto_compaction_mode, CONFIG_COMPACT_PERIODIC);
  assert_string_equal(c.auto_compaction_retention, "1");
  assert_int_equal(c.auto_compaction_period_ms, 3600000);
  assert_true(has_warning(&c, "command-line flag(s) and ETCD_* variables are ignored"));
  assert_false(has_warning(&c, "BOGUS"));
  assert_false(has_warning(&c, "unknown key"));
  /* real etcd 3.4.23 started with this file reports these ids */
  uint64_t m, cl;
  assert_int_equal(ids_from_config(&c, &m, &cl, err, sizeof(err)), 0);
  assert_true(m == 0x8bb5f1639a718af1ULL);
  assert_true(cl == 0x61559bfc95d922caULL);
  config_free(&c);
}

/* ETCD_CONFIG_FILE names the file when --config-file is absent. */
static void test_yaml_from_env(void **state) {
  (void)state;
  const char *path = write_tmp("name: fromfile\n");
  char env[96];
  snprintf(env, sizeof(env), "ETCD_CONFIG_FILE=%s", path);
  cetcd_config_t c;
  ok(&c, NULL, A(env, "ETCD_NAME=fromenv"));
  unlink(path);
  assert_string_equal(c.name, "fromfile");
  assert_string_equal(c.data_dir, "fromfile.etcd");
  assert_string_equal(c.initial_cluster, "fromfile=http://localhost:2380");
  config_free(&c);
}

/* etcd's typing (sigs.k8s.io/yaml: YAML 1.1 scalars, then encoding/json): what it accepts. */
static void test_yaml_types(void **state) {
  (void)state;
  const char *path = write_tmp(
      "NAME: upper\n"         /* keys match ignoring case */
      "snapshot-count: 1e3\n" /* an integral float is a number */
      "max-wals: 0x10\n"      /* Go base prefixes */
      "max-snapshots: 0o7\n"
      "max-txn-ops: 1_024\n" /* underscores */
      "quota-backend-bytes: -1\n"
      "strict-reconfig-check: n\n" /* YAML 1.1 booleans */
      "pre-vote: On\n"
      "enable-v2: YES\n"
      "grpc-keepalive-timeout: &t 3000000\n" /* anchors and aliases; 3 ms in nanoseconds */
      "grpc-keepalive-min-time: *t\n"
      "initial-cluster-token: '123'\n" /* a quoted number is a string */
      "discovery-srv-name: |\n"
      "  block\n"
      "cipher-suites: []\n"
      "initial-cluster-token: tok\n" /* the last duplicate wins */
      "---\n"
      "name: second-document-is-not-read\n");
  char flag[96];
  snprintf(flag, sizeof(flag), "--config-file=%s", path);
  cetcd_config_t c;
  ok(&c, A(flag), NULL);
  unlink(path);
  assert_string_equal(c.name, "upper");
  assert_int_equal(c.snapshot_count, 1000);
  assert_int_equal(c.max_wals, 16);
  assert_int_equal(c.max_snapshots, 7);
  assert_int_equal(c.max_txn_ops, 1024);
  assert_int_equal(c.quota_bytes, -1);
  assert_false(c.strict_reconfig_check);
  assert_true(c.pre_vote);
  assert_true(c.enable_v2);
  assert_int_equal(c.grpc_keepalive_timeout_ms, 3);
  assert_int_equal(c.grpc_keepalive_min_time_ms, 3);
  assert_string_equal(c.initial_cluster_token, "tok");
  assert_string_equal(c.discovery_srv_name, "block\n");
  assert_int_equal(c.n_cipher_suites, 0);
  config_free(&c);
}

/* Values in TLS blocks, block lists, comments, quoting, durations, null. */
static void test_yaml_features(void **state) {
  (void)state;
  const char *path = write_tmp(
      "# cetcd test config\n"
      "---\n"
      "name: \"n \\\"1\\\"\"   # a comment\n"
      "data-dir: '/tmp/it''s'\n"
      "initial-cluster-state: existing\n"
      "initial-cluster: n1=http://127.0.0.1:2380\n"
      "listen-client-urls: 'http://127.0.0.1:2379,http://127.0.0.1:22379'\n"
      "advertise-client-urls: http://127.0.0.1:2379,http://127.0.0.1:22379\n"
      "log-outputs:\n"
      "  - stdout\n"
      "  - 'stderr'\n"
      "cipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384']\n"
      "grpc-keepalive-min-time: 2000000000\n"
      "grpc-keepalive-interval: 30_000_000_000\n"
      "experimental-initial-corrupt-check: yes\n"
      "max-request-bytes: ~\n"
      "auth-token: jwt,priv-key=k.pem,sign-method=RS256\n"
      "quota-backend-bytes: 1073741824\n"
      "client-transport-security:\n"
      "    cert-file: /etc/c.crt\n"
      "    key-file: /etc/c.key\n"
      "    client-cert-auth: true\n"
      "    trusted-ca-file: /etc/ca.crt\n"
      "    auto-tls: false\n"
      "peer-transport-security:\n"
      "  cert-file: /etc/p.crt\n"
      "  key-file: \"/etc/p.key\"\n"
      "  client-cert-auth: true\n"
      "  trusted-ca-file: /etc/pca.crt\n"
      "  auto-tls: true\n"
      "  allowed-cn: x\n"
      "cert-file: /top/level/is/not/etcd/syntax\n"
      "some-future-key: 1\n"
      "log-level: warn\n");
  char flag[96];
  snprintf(flag, sizeof(flag), "--config-file=%s", path);
  cetcd_config_t c;
  ok(&c, A(flag), NULL);
  unlink(path);
  assert_string_equal(c.name, "n \"1\"");
  assert_string_equal(c.data_dir, "/tmp/it's");
  assert_true(c.initial_cluster_existing);
  assert_int_equal(c.n_listen_client_urls, 2);
  assert_int_equal(c.n_advertise_client_urls, 2);
  assert_string_equal(c.advertise_client_urls[0], "http://127.0.0.1:22379"); /* sorted */
  assert_int_equal(c.n_cipher_suites, 2);
  assert_string_equal(c.cipher_suites[1], "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
  assert_int_equal(c.grpc_keepalive_min_time_ms, 2000); /* integer YAML durations are nanoseconds */
  assert_int_equal(c.grpc_keepalive_interval_ms, 30000);
  assert_true(c.experimental_initial_corrupt_check);
  assert_int_equal(c.max_request_bytes, 1572864);
  assert_string_equal(c.auth_token_type, "jwt");
  assert_int_equal(c.quota_bytes, INT64_C(1073741824));
  assert_string_equal(c.cert_file, "/etc/c.crt");
  assert_string_equal(c.key_file, "/etc/c.key");
  assert_true(c.client_cert_auth);
  assert_string_equal(c.trusted_ca_file, "/etc/ca.crt");
  assert_false(c.auto_tls);
  assert_string_equal(c.peer_cert_file, "/etc/p.crt");
  assert_string_equal(c.peer_key_file, "/etc/p.key");
  assert_true(c.peer_client_cert_auth);
  assert_string_equal(c.peer_trusted_ca_file, "/etc/pca.crt");
  assert_true(c.peer_auto_tls);
  assert_string_equal(c.log_level, "warn");
  assert_int_equal(c.n_log_outputs, 2);
  assert_string_equal(c.log_outputs[0], "stderr"); /* sorted */
  assert_true(has_warning(&c, "unknown key \"peer-transport-security.allowed-cn\""));
  assert_true(has_warning(&c, "unknown key \"cert-file\""));
  assert_true(has_warning(&c, "unknown key \"some-future-key\""));
  config_free(&c);
}

static void test_yaml_errors(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"snapshot-count: lots\n",
       "line 1: invalid value \"lots\" for snapshot-count: cannot unmarshal string into Go struct field "
       "configYAML.snapshot-count of type uint64"},
      {"name: a\nheartbeat-interval: [1, 2]\n",
       "line 2: heartbeat-interval: expected a single value, not a list"},
      {"name: 'open\n", "line 2: found unexpected end of stream (while scanning a quoted scalar at line 1)"},
      {"just text\n", "line 1: expected \"key: value\""},
      {"client-transport-security:\n\tcert-file: x\n", "line 2: found character that cannot start any token"},
      {"name: a\n  b: c\n", "line 2: mapping values are not allowed in this context"},
      {"initial-cluster-state: maybe\n", "invalid value \"maybe\" for initial-cluster-state"},
      {"listen-client-urls: localhost:2379\n", "URL scheme must be http, https, unix, or unixs"},
      {"name: {a: 1}\n", "line 1: name: expected a single value, not a map"},
      /* etcd's types: no number for a string, no string for a number or a bool, durations in
       * nanoseconds, URL keys as one string, log-outputs as a sequence */
      {"name: 123\n", "cannot unmarshal number into Go struct field configYAML.name of type string"},
      {"proxy: off\n", "cannot unmarshal bool into Go struct field configYAML.proxy of type string"},
      {"snapshot-count: \"10\"\n", "cannot unmarshal string into Go struct field configYAML.snapshot-count"},
      {"snapshot-count: -1\n", "cannot unmarshal number -1 into Go struct field configYAML.snapshot-count"},
      {"max-wals: 1.5\n", "cannot unmarshal number 1.5 into Go struct field configYAML.max-wals"},
      {"grpc-keepalive-interval: 30s\n",
       "cannot unmarshal string into Go struct field "
       "configYAML.grpc-keepalive-interval of type time.Duration"},
      {"strict-reconfig-check: 1\n",
       "cannot unmarshal number into Go struct field configYAML.strict-reconfig-check"},
      {"strict-reconfig-check: 'true'\n", "cannot unmarshal string into Go struct field"},
      {"advertise-client-urls: [http://127.0.0.1:2379]\n",
       "line 1: advertise-client-urls: expected a single value, not a list"},
      {"log-outputs: stderr\n",
       "cannot unmarshal string into Go struct field configYAML.log-outputs of type []string"},
      {"log-outputs: [stderr, 1]\n",
       "cannot unmarshal number into Go struct field configYAML.log-outputs of type string"},
      {"peer-transport-security: 5\n",
       "cannot unmarshal number into Go struct field configYAML.peer-transport-security"},
      {"client-transport-security:\n  cert-file: 5\n",
       "line 2: invalid value \"5\" for client-transport-security.cert-file: cannot unmarshal number into Go "
       "struct "
       "field securityConfig.client-transport-security.cert-file of type string"},
      {"- a\n", "line 1: expected \"key: value\" mappings at the top level (json: cannot unmarshal array"},
      {"client-transport-security:\n  client-cert-auth: sometimes\n",
       "invalid value \"sometimes\" for client-transport-security.client-cert-auth"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *path = write_tmp(cases[i][0]);
    char flag[96];
    snprintf(flag, sizeof(flag), "--config-file=%s", path);
    cetcd_config_t c;
    int rc = run(&c, A(flag), NULL);
    unlink(path);
    config_free(&c);
    if (rc != CETCD_EINVAL || !strstr(err, cases[i][1]))
      fail_msg("case %zu: rc=%d err=%s (want %s)", i, rc, err, cases[i][1]);
    assert_non_null(strstr(err, "error verifying flags, config file "));
  }
  cetcd_config_t c;
  assert_true(run(&c, A("--config-file", "/nonexistent/cetcd.yml"), NULL) < 0);
  assert_non_null(strstr(err, "cannot read config file /nonexistent/cetcd.yml"));
  assert_int_equal(c.error_exit, 1); /* etcd exits 1 for a bad config file */
  config_free(&c);
  /* the command line is still checked first, as etcd does */
  bad(A("--config-file", "/nonexistent/cetcd.yml", "--bogus"), NULL,
      "error verifying flags, flag provided but not defined: -bogus. See 'cetcd --help'.");
  /* exit statuses as etcd's: 2 from Go's flag package, 1 for everything checked later */
  assert_int_equal(run(&c, A("--bogus"), NULL), CETCD_EINVAL);
  assert_int_equal(c.error_exit, 2);
  config_free(&c);
  assert_int_equal(run(&c, NULL, A("ETCD_MAX_WALS=x")), CETCD_EINVAL);
  assert_int_equal(c.error_exit, 1);
  config_free(&c);
  assert_int_equal(run(&c, A("--election-timeout=1"), NULL), CETCD_EINVAL);
  assert_int_equal(c.error_exit, 1);
  config_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_flag_forms),
      cmocka_unit_test(test_booleans),
      cmocka_unit_test(test_unknown_and_syntax_errors),
      cmocka_unit_test(test_help_and_version),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_quota),
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_compaction),
      cmocka_unit_test(test_urls_and_lists),
      cmocka_unit_test(test_initial_cluster_default),
      cmocka_unit_test(test_auth_token),
      cmocka_unit_test(test_ignored_flags),
      cmocka_unit_test(test_env),
      cmocka_unit_test(test_env_precedence_and_warnings),
      cmocka_unit_test(test_yaml_sample),
      cmocka_unit_test(test_yaml_from_env),
      cmocka_unit_test(test_yaml_types),
      cmocka_unit_test(test_yaml_features),
      cmocka_unit_test(test_yaml_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
