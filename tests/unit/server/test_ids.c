/* Unit tests for etcd-compatible member and cluster ids (server/ids.c). Every expected id
 * below was read from a real etcd 3.4.23 (etcdctl member list / endpoint status -w json)
 * started with the same flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "cetcd/errors.h"
#include "server/config.h"
#include "server/ids.h"

/* Parses args (after a program name) with an empty environment into cfg. */
static void parse(cetcd_config_t *cfg, const char **args) {
  char *argv[64] = {(char *)"cetcd"};
  int argc = 1;
  while (args[argc - 1]) argv[argc] = (char *)args[argc - 1], argc++;
  char *envp[] = {NULL};
  char err[512];
  config_defaults(cfg);
  cfg->quiet = true;
  int rc = config_parse(cfg, argc, argv, envp, err, sizeof(err));
  if (rc) fail_msg("config_parse: %s", err);
}

/* Derives ids from args. */
static int derive(const char **args, uint64_t *m, uint64_t *c, char *err, size_t errlen) {
  cetcd_config_t cfg;
  parse(&cfg, args);
  int rc = ids_from_config(&cfg, m, c, err, errlen);
  config_free(&cfg);
  return rc;
}

/* `etcd` with no flags: 8e9e05c52164694d in cluster cdf818194e3a8c32. */
static void test_default_ids(void **state) {
  (void)state;
  char *urls[] = {(char *)"http://localhost:2380"};
  uint64_t m = ids_member_id(urls, 1, "etcd-cluster", NULL);
  assert_true(m == 0x8e9e05c52164694dULL);
  assert_true(ids_cluster_id(&m, 1) == 0xcdf818194e3a8c32ULL);
  uint64_t mm = 0, cc = 0;
  char err[256];
  const char *args[] = {NULL};
  assert_int_equal(derive(args, &mm, &cc, err, sizeof(err)), 0);
  assert_true(mm == 0x8e9e05c52164694dULL);
  assert_true(cc == 0xcdf818194e3a8c32ULL);
  char s[17];
  assert_string_equal(ids_format(mm, s), "8e9e05c52164694d");
  assert_string_equal(ids_format(0xabc, s), "abc");
  uint64_t back;
  assert_int_equal(ids_parse("8e9e05c52164694d", &back), 0);
  assert_true(back == mm);
  assert_int_equal(ids_parse("xyz", &back), CETCD_EINVAL);
}

/* One member with its own name, port and token. */
static void test_single_member_token(void **state) {
  (void)state;
  uint64_t m, c;
  char err[256];
  const char *args[] = {"--name",
                        "n1",
                        "--listen-peer-urls",
                        "http://127.0.0.1:23802",
                        "--initial-advertise-peer-urls",
                        "http://127.0.0.1:23802",
                        "--initial-cluster",
                        "n1=http://127.0.0.1:23802",
                        "--initial-cluster-token",
                        "tok",
                        NULL};
  assert_int_equal(derive(args, &m, &c, err, sizeof(err)), 0);
  assert_true(m == 0x2737ecedbf2a9065ULL);
  assert_true(c == 0x579590e908d4cea4ULL);
  /* --name alone rewrites the default initial cluster from the advertised peer URLs */
  const char *args2[] = {"--name",
                         "foo",
                         "--listen-peer-urls",
                         "http://127.0.0.1:23806",
                         "--initial-advertise-peer-urls",
                         "http://127.0.0.1:23806",
                         NULL};
  assert_int_equal(derive(args2, &m, &c, err, sizeof(err)), 0);
  assert_true(m == 0x9d1485ec3af443aeULL);
  assert_true(c == 0x8d2e693905fcf714ULL);
}

/* Two peer URLs, given in unsorted order: sorted before hashing. */
static void test_multi_url_member(void **state) {
  (void)state;
  uint64_t m, c;
  char err[256];
  const char *args[] = {"--name",
                        "n1",
                        "--listen-peer-urls",
                        "http://127.0.0.1:23803,http://127.0.0.1:23813",
                        "--initial-advertise-peer-urls",
                        "http://127.0.0.1:23813,http://127.0.0.1:23803",
                        "--initial-cluster",
                        "n1=http://127.0.0.1:23813,n1=http://127.0.0.1:23803",
                        NULL};
  assert_int_equal(derive(args, &m, &c, err, sizeof(err)), 0);
  assert_true(m == 0x594e5813cd23a702ULL);
  assert_true(c == 0x4e29a5fff21b2edbULL);
}

/* Three members: every member id and the cluster id match etcd's log lines. */
static void test_three_members(void **state) {
  (void)state;
  ids_cluster_t cl;
  char err[256];
  assert_int_equal(ids_parse_initial_cluster(
                       "n1=http://127.0.0.1:23904,n2=http://127.0.0.1:23804,n3=http://127.0.0.1:23905",
                       "e2e-tok", &cl, err, sizeof(err)),
                   0);
  assert_int_equal(cl.n_members, 3);
  assert_true(ids_cluster_find(&cl, "n1")->id == 0x100a32fa719278feULL);
  assert_true(ids_cluster_find(&cl, "n2")->id == 0x2abca50fb4982e72ULL);
  assert_true(ids_cluster_find(&cl, "n3")->id == 0xf0934d6f0255af9aULL);
  assert_true(cl.cluster_id == 0x6cbe830c9213045cULL);
  assert_null(ids_cluster_find(&cl, "n4"));
  char *ap[] = {(char *)"http://127.0.0.1:23804"};
  assert_int_equal(ids_verify_bootstrap(&cl, "n2", ap, 1, 0, err, sizeof(err)), 0);
  ids_cluster_free(&cl);
}

/* unix and IPv6 peer URLs. */
static void test_unix_and_ipv6(void **state) {
  (void)state;
  uint64_t m, c;
  char err[256];
  const char *args[] = {"--name",
                        "e1",
                        "--listen-peer-urls",
                        "unix://etcd.unix:1",
                        "--initial-advertise-peer-urls",
                        "unix://etcd.unix:1",
                        "--initial-cluster",
                        "e1=unix://etcd.unix:1",
                        NULL};
  assert_int_equal(derive(args, &m, &c, err, sizeof(err)), 0);
  assert_true(m == 0xb16965eda2672782ULL);
  assert_true(c == 0x72c251f3aa4aa290ULL);
  const char *args6[] = {"--name",
                         "v6",
                         "--listen-peer-urls",
                         "http://[::1]:23809",
                         "--initial-advertise-peer-urls",
                         "http://[::1]:23809",
                         "--initial-cluster",
                         "v6=http://[::1]:23809",
                         "--initial-cluster-token",
                         "T",
                         NULL};
  assert_int_equal(derive(args6, &m, &c, err, sizeof(err)), 0);
  assert_true(m == 0xd362ea782222ec4cULL);
  assert_true(c == 0x1a769757f115e915ULL);
}

/* Members added at runtime hash the time too. */
static void test_member_add_with_time(void **state) {
  (void)state;
  /* `etcdctl member add n2 --peer-urls=http://127.0.0.1:23998,http://127.0.0.1:23997` at unix
   * time 1795493533: etcd hashes the URLs, an empty token and the time. */
  char *urls[] = {(char *)"http://127.0.0.1:23998", (char *)"http://127.0.0.1:23997"};
  int64_t t = 1795493533;
  assert_true(ids_member_id(urls, 2, "", &t) == 0x180afa172ca086f1ULL);
  t++;
  assert_true(ids_member_id(urls, 2, "", &t) != 0x180afa172ca086f1ULL);
  /* the cluster it joined: n1=http://127.0.0.1:23807, default token */
  char *n1[] = {(char *)"http://127.0.0.1:23807"};
  uint64_t m = ids_member_id(n1, 1, "etcd-cluster", NULL);
  assert_true(m == 0x38c12c72c338faf9ULL);
  assert_true(ids_cluster_id(&m, 1) == 0xe7aacfde58c90dc3ULL);
}

/* Cluster ids do not depend on the order of the member ids. */
static void test_cluster_id_order(void **state) {
  (void)state;
  uint64_t a[] = {0x100a32fa719278feULL, 0x2abca50fb4982e72ULL, 0xf0934d6f0255af9aULL};
  uint64_t b[] = {0xf0934d6f0255af9aULL, 0x100a32fa719278feULL, 0x2abca50fb4982e72ULL};
  assert_true(ids_cluster_id(a, 3) == 0x6cbe830c9213045cULL);
  assert_true(ids_cluster_id(b, 3) == 0x6cbe830c9213045cULL);
  assert_true(b[0] == 0xf0934d6f0255af9aULL); /* input untouched */
}

/* --initial-cluster errors and bootstrap checks, with etcd's messages. */
static void test_initial_cluster_errors(void **state) {
  (void)state;
  ids_cluster_t cl;
  char err[512];
  assert_int_equal(ids_parse_initial_cluster("n1=foo://x", "t", &cl, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(
      err,
      "invalid --initial-cluster \"n1=foo://x\": URL scheme must be http, https, unix, or unixs: "
      "foo://x");
  assert_int_equal(ids_parse_initial_cluster("n1", "t", &cl, err, sizeof(err)), CETCD_EINVAL);
  assert_int_equal(ids_parse_initial_cluster("n1=http://a:1,n2=http://a:1", "t", &cl, err, sizeof(err)),
                   CETCD_EINVAL);
  assert_string_equal(err, "initial cluster n1=http://a:1,n2=http://a:1 has duplicate url");
  /* empty entries are skipped; a repeated name collects URLs */
  assert_int_equal(ids_parse_initial_cluster(",n1=http://a:1,,n1=http://b:2,", "t", &cl, err, sizeof(err)),
                   0);
  assert_int_equal(cl.n_members, 1);
  assert_int_equal(cl.members[0].n_peer_urls, 2);
  assert_string_equal(cl.members[0].peer_urls[0], "http://a:1");
  assert_string_equal(cl.members[0].peer_urls[1], "http://b:2");

  char *ap_ok[] = {(char *)"http://b:2", (char *)"http://a:1"};
  assert_int_equal(ids_verify_bootstrap(&cl, "n1", ap_ok, 2, 0, err, sizeof(err)), 0);
  assert_int_equal(ids_verify_bootstrap(&cl, "nx", ap_ok, 2, 0, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(err, "couldn't find local name \"nx\" in the initial cluster configuration");
  char *ap_short[] = {(char *)"http://a:1"};
  assert_int_equal(ids_verify_bootstrap(&cl, "n1", ap_short, 1, 0, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(
      err, "--initial-cluster has n1=http://b:2 but missing from --initial-advertise-peer-urls=http://a:1");
  /* existing clusters only need the name */
  assert_int_equal(ids_verify_bootstrap(&cl, "n1", ap_short, 1, 1, err, sizeof(err)), 0);
  ids_cluster_free(&cl);

  assert_int_equal(ids_parse_initial_cluster("n1=http://a:1", "t", &cl, err, sizeof(err)), 0);
  char *ap_more[] = {(char *)"http://a:1", (char *)"http://c:3"};
  assert_int_equal(ids_verify_bootstrap(&cl, "n1", ap_more, 2, 0, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(err,
                      "--initial-advertise-peer-urls has http://c:3 but missing from "
                      "--initial-cluster=n1=http://a:1,n1=http://c:3");
  ids_cluster_free(&cl);

  /* localhost and 127.0.0.1 are the same after resolving, as etcd's URLStringsEqual does */
  assert_int_equal(ids_parse_initial_cluster("n1=http://localhost:2380", "t", &cl, err, sizeof(err)), 0);
  char *ap_ip[] = {(char *)"http://127.0.0.1:2380"};
  assert_int_equal(ids_verify_bootstrap(&cl, "n1", ap_ip, 1, 0, err, sizeof(err)), 0);
  ids_cluster_free(&cl);

  /* through the config: our name must be in --initial-cluster */
  uint64_t m, c;
  const char *args[] = {"--name", "me", "--initial-cluster", "other=http://localhost:2380", NULL};
  assert_int_equal(derive(args, &m, &c, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(err, "couldn't find local name \"me\" in the initial cluster configuration");
  const char *args2[] = {"--initial-cluster", "", NULL};
  assert_int_equal(derive(args2, &m, &c, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(err, "initial cluster unset and no discovery URL found");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_ids),      cmocka_unit_test(test_single_member_token),
      cmocka_unit_test(test_multi_url_member), cmocka_unit_test(test_three_members),
      cmocka_unit_test(test_unix_and_ipv6),    cmocka_unit_test(test_member_add_with_time),
      cmocka_unit_test(test_cluster_id_order), cmocka_unit_test(test_initial_cluster_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
