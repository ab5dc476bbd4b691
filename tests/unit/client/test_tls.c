/* libcetcd TLS: https:// endpoints against etcd serving TLS with client certificates
 * required (--client-cert-auth): CA and client certificate, host name and IP
 * verification, server_name, insecure_skip_verify, and the refusals (unknown CA, wrong
 * name, no client certificate, plain HTTP/2 to a TLS port, unreadable files).
 *
 * A throwaway CA and certificates are made with the openssl CLI in the server's temp dir.
 * Runs against cetcd (unit/client/test_tls) and real etcd (unit/client/test_tls@etcd). */
#include "client_test_util.h"

static test_server_t srv;
static char ca[400], cert[400], key[400], other_ca[400], skey[400], scert[400];

/* Runs a shell command in dir; returns its exit status. */
static int sh(const char *dir, const char *cmd) {
  char full[2048];
  snprintf(full, sizeof full, "cd '%s' && { %s ; } >>openssl.log 2>&1", dir, cmd);
  return system(full);
}

/* Makes ca.pem, server and client certificates (SAN localhost and 127.0.0.1) signed by
 * it, and a second, unrelated CA. Returns 0 or -1. */
static int make_certs(const char *dir) {
  const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj /CN=cetcd-test-ca", ec);
  if (sh(dir, cmd)) return -1;
  snprintf(cmd, sizeof cmd, "openssl req -x509 %s -keyout other.key -out other.pem -days 2 -subj /CN=other-ca", ec);
  if (sh(dir, cmd)) return -1;
  for (int i = 0; i < 2; i++) {
    const char *n = i ? "client" : "server";
    snprintf(cmd, sizeof cmd,
             "openssl req -new %s -keyout %s.key -out %s.csr -subj /CN=%s "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 && "
             "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out %s.pem -days 2 "
             "-copy_extensions copy",
             ec, n, n, n, n, n);
    if (sh(dir, cmd)) return -1;
  }
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(other_ca, sizeof other_ca, "%s/other.pem", dir);
  snprintf(cert, sizeof cert, "%s/client.pem", dir);
  snprintf(key, sizeof key, "%s/client.key", dir);
  snprintf(scert, sizeof scert, "%s/server.pem", dir);
  snprintf(skey, sizeof skey, "%s/server.key", dir);
  return 0;
}

static int setup(void **state) {
  (void)state;
  if (tu_server_prepare(&srv)) return -1;
  if (make_certs(srv.root)) {
    fprintf(stderr, "openssl could not make the test certificates (see %s/openssl.log)\n", srv.root);
    return -1;
  }
  srv.tls = true;
  const char *extra[] = {"--cert-file", scert, "--key-file", skey, "--client-cert-auth", "--trusted-ca-file", ca,
                         NULL};
  memcpy(srv.extra, extra, sizeof extra);
  return tu_server_start(&srv);
}

static int teardown(void **state) {
  (void)state;
  tu_server_free(&srv);
  return 0;
}

/* A lazy client for endpoint ep with the given TLS options (request timeout 2 s). */
static cetcd_client_t *tls_client(const char *ep, const cetcd_client_opts_t *tls) {
  const char *eps[] = {ep};
  cetcd_client_opts_t o = *tls;
  o.endpoints = eps;
  o.n_endpoints = 1;
  o.dial_timeout_ms = 2000;
  o.request_timeout_ms = 2000;
  o.lazy_connect = true;
  cetcd_client_t *c = NULL;
  int rc = cetcd_client_new(&o, &c);
  if (rc) fprintf(stderr, "cetcd_client_new: %s\n", cetcd_client_last_error(NULL)->message);
  assert_int_equal(rc, 0);
  return c;
}

/* Puts and reads back key through c; returns the put's code. */
static int roundtrip(cetcd_client_t *c, const char *k) {
  int rc = cetcd_put(c, k, strlen(k), "v", 1, NULL, NULL);
  if (rc) return rc;
  cetcd_get_result_t *g;
  assert_int_equal(cetcd_get(c, k, strlen(k), NULL, &g), 0);
  assert_int_equal(g->n_kvs, 1);
  cetcd_get_result_free(g);
  return 0;
}

/* Asserts that a call through c fails and that the reason names what. */
static void assert_refused(cetcd_client_t *c, const char *what) {
  int rc = cetcd_put(c, "x", 1, "v", 1, NULL, NULL);
  assert_true(rc == CETCD_EUNAVAILABLE || rc == CETCD_ETIMEOUT);
  const char *m = cetcd_client_last_error(NULL)->message;
  if (!strstr(m, what)) fail_msg("expected \"%s\" in \"%s\"", what, m);
}

static void test_https_with_client_cert(void **state) {
  (void)state;
  char ep[96];
  snprintf(ep, sizeof ep, "https://127.0.0.1:%d", srv.client_port);
  cetcd_client_opts_t t = {.ca_file = ca, .cert_file = cert, .key_file = key};
  cetcd_client_t *c = tls_client(ep, &t);
  assert_int_equal(roundtrip(c, "tls/ip"), 0);
  /* a stream over TLS */
  cetcd_watch_t *w;
  assert_int_equal(cetcd_watch_open(c, "tls/w", 5, NULL, &w), 0);
  assert_int_equal(cetcd_put(c, "tls/w", 5, "1", 1, NULL, NULL), 0);
  cetcd_watch_event_batch_t *b;
  assert_int_equal(cetcd_watch_next(w, 5000, &b), 0);
  assert_int_equal(b->n_events, 1);
  cetcd_watch_batch_free(b);
  cetcd_watch_free(w);
  /* a large value crosses many TLS records both ways */
  size_t big = 1 << 20;
  char *v = malloc(big);
  memset(v, 'z', big);
  assert_int_equal(cetcd_put(c, "tls/big", 7, v, big, NULL, NULL), 0);
  cetcd_get_result_t *g;
  assert_int_equal(cetcd_get(c, "tls/big", 7, NULL, &g), 0);
  assert_int_equal(g->kvs[0].value_len, big);
  assert_memory_equal(g->kvs[0].value, v, big);
  cetcd_get_result_free(g);
  free(v);
  cetcd_client_free(c);
  /* by name, and without a scheme (TLS because TLS options are set) */
  snprintf(ep, sizeof ep, "https://localhost:%d", srv.client_port);
  c = tls_client(ep, &t);
  assert_int_equal(roundtrip(c, "tls/name"), 0);
  cetcd_client_free(c);
  c = tls_client(srv.endpoint, &t);
  assert_int_equal(roundtrip(c, "tls/noscheme"), 0);
  cetcd_client_free(c);
  /* not connecting at once: cetcd_client_new waits for the handshake */
  const char *eps[] = {ep};
  cetcd_client_opts_t o = t;
  o.endpoints = eps;
  o.n_endpoints = 1;
  assert_int_equal(cetcd_client_new(&o, &c), 0);
  assert_int_equal(roundtrip(c, "tls/eager"), 0);
  cetcd_client_free(c);
}

static void test_verification(void **state) {
  (void)state;
  char ep[96];
  snprintf(ep, sizeof ep, "https://127.0.0.1:%d", srv.client_port);
  /* unknown CA */
  cetcd_client_opts_t t = {.ca_file = other_ca, .cert_file = cert, .key_file = key};
  cetcd_client_t *c = tls_client(ep, &t);
  assert_refused(c, "certificate verify failed");
  cetcd_client_free(c);
  /* the certificate does not name what we verify */
  t = (cetcd_client_opts_t){.ca_file = ca, .cert_file = cert, .key_file = key, .server_name = "etcd.example"};
  c = tls_client(ep, &t);
  assert_refused(c, "certificate verify failed");
  cetcd_client_free(c);
  /* ... unless verification is off */
  t.insecure_skip_verify = true;
  t.ca_file = NULL;
  c = tls_client(ep, &t);
  assert_int_equal(roundtrip(c, "tls/skip"), 0);
  cetcd_client_free(c);
  /* the server wants a client certificate */
  t = (cetcd_client_opts_t){.ca_file = ca};
  c = tls_client(ep, &t);
  assert_true(cetcd_put(c, "x", 1, "v", 1, NULL, NULL) != 0);
  cetcd_client_free(c);
  /* plain HTTP/2 to the TLS port */
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d", srv.client_port);
  t = (cetcd_client_opts_t){0};
  c = tls_client(ep, &t);
  assert_true(cetcd_put(c, "x", 1, "v", 1, NULL, NULL) != 0);
  cetcd_client_free(c);
}

static void test_bad_files(void **state) {
  (void)state;
  const char *eps[] = {srv.endpoint};
  cetcd_client_opts_t o = {.endpoints = eps, .n_endpoints = 1, .lazy_connect = true, .ca_file = "/nonexistent.pem"};
  cetcd_client_t *c = NULL;
  assert_int_equal(cetcd_client_new(&o, &c), CETCD_ETLS);
  assert_null(c);
  assert_non_null(strstr(cetcd_client_last_error(NULL)->message, "/nonexistent.pem"));
  o = (cetcd_client_opts_t){.endpoints = eps, .n_endpoints = 1, .lazy_connect = true, .cert_file = cert};
  assert_int_equal(cetcd_client_new(&o, &c), CETCD_ETLS); /* a certificate without its key */
  o.key_file = other_ca;                                   /* not a key */
  assert_int_equal(cetcd_client_new(&o, &c), CETCD_ETLS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_https_with_client_cert),
      cmocka_unit_test(test_verification),
      cmocka_unit_test(test_bad_files),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
