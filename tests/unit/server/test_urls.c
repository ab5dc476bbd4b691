/* Unit tests for URL parsing with etcd's rules (server/urls.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "cetcd/errors.h"
#include "server/urls.h"

/* http, https, IPv6 in brackets and host names parse into their parts. */
static void test_parse_one_parts(void **state) {
  (void)state;
  char err[256];
  url_t u;
  assert_int_equal(urls_parse_one("http://127.0.0.1:2379", &u, err, sizeof(err)), 0);
  assert_string_equal(u.scheme, "http");
  assert_string_equal(u.host, "127.0.0.1");
  assert_int_equal(u.port, 2379);
  assert_string_equal(u.hostport, "127.0.0.1:2379");
  assert_string_equal(u.path, "");
  assert_string_equal(u.str, "http://127.0.0.1:2379");
  assert_false(u.is_unix);
  assert_false(u.is_tls);
  urls_free_one(&u);

  assert_int_equal(urls_parse_one("  HTTPS://[::1]:2380 ", &u, err, sizeof(err)), 0);
  assert_string_equal(u.scheme, "https");
  assert_string_equal(u.host, "::1");
  assert_int_equal(u.port, 2380);
  assert_string_equal(u.str, "https://[::1]:2380");
  assert_true(u.is_tls);
  urls_free_one(&u);

  assert_int_equal(urls_parse_one("http://localhost:0", &u, err, sizeof(err)), 0);
  assert_string_equal(u.host, "localhost");
  assert_int_equal(u.port, 0);
  urls_free_one(&u);
}

/* unix sockets are named by host:port, as in etcd's e2e tests (unix://etcd.unix:1). */
static void test_parse_unix(void **state) {
  (void)state;
  char err[256];
  url_t u;
  assert_int_equal(urls_parse_one("unix://etcd.unix:1", &u, err, sizeof(err)), 0);
  assert_true(u.is_unix);
  assert_false(u.is_tls);
  assert_string_equal(u.host, "etcd.unix");
  assert_int_equal(u.port, 1);
  assert_string_equal(u.str, "unix://etcd.unix:1");
  char host[128];
  int port = 0;
  assert_int_equal(urls_listen_addr(&u, host, sizeof(host), &port), 0);
  assert_string_equal(host, "etcd.unix:1");
  assert_int_equal(port, -1);
  urls_free_one(&u);

  assert_int_equal(urls_parse_one("unixs://sock:2", &u, err, sizeof(err)), 0);
  assert_true(u.is_unix);
  assert_true(u.is_tls);
  urls_free_one(&u);
}

/* Paths are rejected in lists but available with URLS_ALLOW_PATH. */
static void test_path(void **state) {
  (void)state;
  char err[256];
  url_t u;
  assert_int_equal(urls_parse_one("http://a:1/v2", &u, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(err, "URL must not contain a path: http://a:1/v2");
  assert_null(u.str);
  assert_int_equal(urls_parse("unix://local:9/tmp/x.sock", &u, URLS_ALLOW_PATH, err, sizeof(err)), 0);
  assert_string_equal(u.path, "/tmp/x.sock");
  assert_string_equal(u.str, "unix://local:9/tmp/x.sock");
  urls_free_one(&u);
}

/* etcd's validation messages. */
static void test_errors(void **state) {
  (void)state;
  char err[256];
  url_t u;
  assert_int_equal(urls_parse_one("foo://x", &u, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(err, "URL scheme must be http, https, unix, or unixs: foo://x");
  assert_int_equal(urls_parse_one("127.0.0.1:2379", &u, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(err, "URL scheme must be http, https, unix, or unixs: 127.0.0.1:2379");
  assert_int_equal(urls_parse_one("", &u, err, sizeof(err)), CETCD_EINVAL);
  assert_int_equal(urls_parse_one("http://127.0.0.1", &u, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(err, "URL address does not have the form \"host:port\": http://127.0.0.1");
  assert_int_equal(urls_parse_one("http://::1:2379", &u, err, sizeof(err)), CETCD_EINVAL);
  assert_int_equal(urls_parse_one("http://a:99999", &u, err, sizeof(err)), CETCD_EINVAL);
  assert_int_equal(urls_parse_one("http://a:x", &u, err, sizeof(err)), CETCD_EINVAL);
  assert_int_equal(urls_parse_one("http://a:", &u, err, sizeof(err)), CETCD_EINVAL);
  assert_int_equal(urls_parse_one("http://[zz]:1", &u, err, sizeof(err)), CETCD_EINVAL);
  assert_int_equal(urls_parse_one("http://a b:1", &u, err, sizeof(err)), CETCD_EINVAL);
  assert_int_equal(urls_parse_one("http://a:1?x=1", &u, err, sizeof(err)), CETCD_EINVAL);
  assert_int_equal(urls_parse_one("http://u@a:1", &u, err, sizeof(err)), CETCD_EINVAL);
  /* an empty host parses (etcd accepts it for the list) but cannot be bound or advertised */
  assert_int_equal(urls_parse_one("http://:2379", &u, err, sizeof(err)), 0);
  assert_int_equal(urls_check_bind(&u, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(err, "expected IP in URL for binding (http://:2379)");
  assert_int_equal(urls_check_advertise(&u, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(err, "unexpected empty host (http://:2379)");
  urls_free_one(&u);
}

/* Lists are split on commas, sorted and de-duplicated; an empty list is an error. */
static void test_list(void **state) {
  (void)state;
  char err[256];
  url_list_t l;
  assert_int_equal(
      urls_parse_list("https://[::1]:2380,http://127.0.0.1:2379,http://127.0.0.1:2379", &l, err, sizeof(err)),
      0);
  assert_int_equal(l.n, 2);
  assert_string_equal(l.v[0].str, "http://127.0.0.1:2379");
  assert_string_equal(l.v[1].str, "https://[::1]:2380");
  urls_list_free(&l);
  assert_int_equal(l.n, 0);
  assert_int_equal(urls_parse_list("http://a:1,bad", &l, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(err, "URL scheme must be http, https, unix, or unixs: bad");
  assert_int_equal(urls_parse_list("", &l, err, sizeof(err)), CETCD_EINVAL);
}

/* Bind rules: IPs and localhost pass, host names fail; listen address conversion. */
static void test_bind(void **state) {
  (void)state;
  char err[256], host[64];
  int port;
  url_t u;
  assert_int_equal(urls_parse_one("http://example.com:1", &u, err, sizeof(err)), 0);
  assert_int_equal(urls_check_bind(&u, err, sizeof(err)), CETCD_EINVAL);
  assert_string_equal(err, "expected IP in URL for binding (http://example.com:1)");
  assert_int_equal(urls_check_advertise(&u, err, sizeof(err)), 0);
  assert_int_equal(urls_listen_addr(&u, host, sizeof(host), &port), CETCD_EINVAL);
  urls_free_one(&u);

  assert_int_equal(urls_parse_one("http://localhost:2379", &u, err, sizeof(err)), 0);
  assert_int_equal(urls_check_bind(&u, err, sizeof(err)), 0);
  assert_int_equal(urls_listen_addr(&u, host, sizeof(host), &port), 0);
  assert_string_equal(host, "127.0.0.1");
  assert_int_equal(port, 2379);
  urls_free_one(&u);

  assert_int_equal(urls_parse_one("http://[::]:0", &u, err, sizeof(err)), 0);
  assert_int_equal(urls_listen_addr(&u, host, sizeof(host), &port), 0);
  assert_string_equal(host, "::");
  assert_int_equal(port, 0);
  assert_int_equal(urls_listen_addr(&u, host, 2, &port), CETCD_EINVAL);
  urls_free_one(&u);

  assert_int_equal(urls_parse_one("http://0.0.0.0:20000", &u, err, sizeof(err)), 0);
  assert_int_equal(urls_check_bind(&u, err, sizeof(err)), 0);
  urls_free_one(&u);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_one_parts), cmocka_unit_test(test_parse_unix), cmocka_unit_test(test_path),
      cmocka_unit_test(test_errors),          cmocka_unit_test(test_list),       cmocka_unit_test(test_bind),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
