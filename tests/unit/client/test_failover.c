/* libcetcd connection handling: failover to the next endpoint, connections dropped in
 * the middle of a call, unreachable endpoints, bad endpoints, and many threads sharing
 * one client. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include "client_test_util.h"

static test_server_t srv;

static int setup(void **state) {
  (void)state;
  return tu_server_new(&srv);
}

static int teardown(void **state) {
  (void)state;
  tu_server_free(&srv);
  return 0;
}

/* ---- a "blackhole" server: accepts, reads and never answers, then drops the connection -- */

typedef struct blackhole {
  int lfd;
  int port;
  int drop_after_ms;
  atomic_bool stop;
  atomic_int accepted;
  pthread_t th;
} blackhole_t;

static void *bh_main(void *arg) {
  blackhole_t *b = arg;
  int conns[64];
  uint64_t born[64];
  int n = 0;
  while (!atomic_load(&b->stop)) {
    struct pollfd p[65];
    p[0] = (struct pollfd){.fd = b->lfd, .events = POLLIN};
    for (int i = 0; i < n; i++) p[i + 1] = (struct pollfd){.fd = conns[i], .events = POLLIN};
    poll(p, (nfds_t)n + 1, 20);
    if (p[0].revents & POLLIN) {
      int fd = accept(b->lfd, NULL, NULL);
      if (fd >= 0 && n < 64) {
        conns[n] = fd;
        born[n++] = tu_now_ms();
        atomic_fetch_add(&b->accepted, 1);
      } else if (fd >= 0) {
        close(fd);
      }
    }
    for (int i = 0; i < n; i++) {
      char buf[4096];
      if (p[i + 1].revents & POLLIN) {
        ssize_t r = read(conns[i], buf, sizeof buf);
        (void)r;
      }
      if (tu_now_ms() - born[i] >= (uint64_t)b->drop_after_ms) {
        close(conns[i]);
        conns[i] = conns[--n];
        born[i] = born[n];
        i--;
      }
    }
  }
  for (int i = 0; i < n; i++) close(conns[i]);
  return NULL;
}

static void bh_start(blackhole_t *b, int drop_after_ms) {
  memset(b, 0, sizeof(*b));
  b->drop_after_ms = drop_after_ms;
  b->lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(b->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(b->lfd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t l = sizeof a;
  getsockname(b->lfd, (struct sockaddr *)&a, &l);
  b->port = ntohs(a.sin_port);
  assert_int_equal(listen(b->lfd, 16), 0);
  pthread_create(&b->th, NULL, bh_main, b);
}

static void bh_stop(blackhole_t *b) {
  atomic_store(&b->stop, true);
  pthread_join(b->th, NULL);
  close(b->lfd);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_failover_first_dead(void **state) {
  (void)state;
  char dead[64], good[80];
  snprintf(dead, sizeof dead, "127.0.0.1:%d", tu_free_port()); /* nothing listens there */
  snprintf(good, sizeof good, "http://%s", srv.endpoint);
  const char *eps[] = {dead, good};
  cetcd_client_t *c = tu_client(eps, 2, false);
  assert_non_null(c);
  assert_string_equal(cetcd_client_endpoint(c), srv.endpoint);
  tu_put(c, "fo/a", "1");
  cetcd_get_result_t *g;
  assert_int_equal(cetcd_get(c, "fo/a", 4, NULL, &g), 0);
  assert_int_equal(g->n_kvs, 1);
  cetcd_get_result_free(g);
  cetcd_client_free(c);

  /* the same with a lazy client: the first call fails over */
  c = tu_client(eps, 2, true);
  assert_non_null(c);
  tu_put(c, "fo/b", "2");
  cetcd_client_free(c);

  /* a dedicated endpoint call to a dead member fails fast, without failover */
  c = tu_client(eps, 2, false);
  cetcd_status_t *st;
  uint64_t t0 = tu_now_ms();
  assert_int_equal(cetcd_status(c, dead, &st), CETCD_EUNAVAILABLE);
  assert_true(tu_now_ms() - t0 < 3000);
  assert_int_equal(cetcd_status(c, good, &st), 0);
  cetcd_status_free(st);
  cetcd_client_free(c);
}

static void test_unreachable_and_bad_endpoints(void **state) {
  (void)state;
  char dead[64];
  snprintf(dead, sizeof dead, "127.0.0.1:%d", tu_free_port());
  const char *eps[] = {dead};
  cetcd_client_opts_t o = {
      .endpoints = eps, .n_endpoints = 1, .dial_timeout_ms = 300, .request_timeout_ms = 500};
  cetcd_client_t *c = NULL;
  uint64_t t0 = tu_now_ms();
  assert_int_equal(cetcd_client_new(&o, &c), CETCD_EUNAVAILABLE);
  assert_null(c);
  assert_true(tu_now_ms() - t0 < 2000);
  o.lazy_connect = true;
  assert_int_equal(cetcd_client_new(&o, &c), 0);
  cetcd_get_result_t *g;
  t0 = tu_now_ms();
  assert_int_equal(cetcd_get(c, "x", 1, NULL, &g), CETCD_EUNAVAILABLE);
  assert_true(tu_now_ms() - t0 < 2000);
  cetcd_watch_t *w;
  assert_int_equal(cetcd_watch_open(c, "x", 1, NULL, &w), CETCD_ETIMEOUT);
  cetcd_client_free(c);

  const char *bad[][1] = {{"unix:///tmp/etcd.sock"}, {"https://127.0.0.1"}, {"127.0.0.1"}, {"127.0.0.1:abc"}, {""}, {"[::1"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    o = (cetcd_client_opts_t){.endpoints = bad[i], .n_endpoints = 1, .lazy_connect = true};
    assert_int_equal(cetcd_client_new(&o, &c), CETCD_EINVAL);
  }
  o = (cetcd_client_opts_t){0};
  assert_int_equal(cetcd_client_new(&o, &c), CETCD_EINVAL);
  /* names resolve through getaddrinfo */
  char local[64];
  snprintf(local, sizeof local, "localhost:%d", srv.client_port);
  const char *leps[] = {local};
  c = tu_client(leps, 1, false);
  assert_non_null(c);
  tu_put(c, "named", "1");
  cetcd_client_free(c);
}

static void test_dropped_mid_call(void **state) {
  (void)state;
  blackhole_t bh;
  bh_start(&bh, 300);
  char hole[64];
  snprintf(hole, sizeof hole, "127.0.0.1:%d", bh.port);
  const char *eps[] = {hole, srv.endpoint};
  /* a read is retried on the next endpoint */
  cetcd_client_t *c = tu_client(eps, 2, true);
  assert_non_null(c);
  cetcd_get_result_t *g;
  assert_int_equal(cetcd_get(c, "dm", 2, NULL, &g), 0);
  cetcd_get_result_free(g);
  assert_true(atomic_load(&bh.accepted) >= 1);
  cetcd_client_free(c);
  /* a write is not: the server might have applied it */
  c = tu_client(eps, 2, true);
  assert_int_equal(cetcd_put(c, "dm", 2, "1", 1, NULL, NULL), CETCD_EUNAVAILABLE);
  assert_int_equal(cetcd_client_last_error(c)->code, CETCD_EUNAVAILABLE);
  /* ...but the next call works on the other endpoint */
  tu_put(c, "dm", "2");
  cetcd_client_free(c);
  /* a blackhole that never answers: the deadline applies */
  bh_stop(&bh);
  bh_start(&bh, 60000);
  snprintf(hole, sizeof hole, "127.0.0.1:%d", bh.port);
  const char *eps1[] = {hole};
  cetcd_client_opts_t o = {
      .endpoints = eps1, .n_endpoints = 1, .request_timeout_ms = 400, .lazy_connect = true};
  assert_int_equal(cetcd_client_new(&o, &c), 0);
  uint64_t t0 = tu_now_ms();
  assert_int_equal(cetcd_get(c, "dm", 2, NULL, &g), CETCD_ETIMEOUT);
  assert_true(tu_now_ms() - t0 < 1500);
  cetcd_client_free(c);
  bh_stop(&bh);
}

static void test_calls_across_restart(void **state) {
  (void)state;
  const char *eps[] = {srv.endpoint};
  cetcd_client_opts_t o = {.endpoints = eps, .n_endpoints = 1, .request_timeout_ms = 1500};
  cetcd_client_t *c = NULL;
  assert_int_equal(cetcd_client_new(&o, &c), 0);
  tu_put(c, "cr", "1");
  tu_server_stop(&srv, true);
  assert_int_equal(cetcd_put(c, "cr", 2, "2", 1, NULL, NULL), CETCD_EUNAVAILABLE);
  assert_int_equal(tu_server_start(&srv), 0);
  /* reconnects by itself */
  cetcd_get_result_t *g;
  assert_int_equal(cetcd_get(c, "cr", 2, NULL, &g), 0);
  assert_string_equal(g->kvs[0].value, "1");
  cetcd_get_result_free(g);
  cetcd_client_free(c);
}

/* ---- many threads, one client ----------------------------------------------------------- */

typedef struct worker {
  cetcd_client_t *c;
  int id;
  int errors;
} worker_t;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  char k[32], v[32];
  for (int i = 0; i < 50; i++) {
    snprintf(k, sizeof k, "mt/%d/%d", w->id, i);
    snprintf(v, sizeof v, "%d", i);
    if (cetcd_put(w->c, k, strlen(k), v, strlen(v), NULL, NULL)) w->errors++;
    cetcd_get_result_t *g;
    if (cetcd_get(w->c, k, strlen(k), NULL, &g) || g->n_kvs != 1 || strcmp(g->kvs[0].value, v)) w->errors++;
    cetcd_get_result_free(g);
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  const char *eps[] = {srv.endpoint};
  cetcd_client_t *c = tu_client(eps, 1, false);
  assert_non_null(c);
  cetcd_watch_t *w;
  assert_int_equal(cetcd_watch_open(c, "mt/", 3, &(cetcd_watch_opts_t){.prefix = true}, &w), 0);
  enum { N = 8 };
  pthread_t th[N];
  worker_t ws[N];
  for (int i = 0; i < N; i++) {
    ws[i] = (worker_t){.c = c, .id = i};
    pthread_create(&th[i], NULL, worker_main, &ws[i]);
  }
  for (int i = 0; i < N; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(ws[i].errors, 0);
  }
  int events = 0;
  while (events < N * 50) {
    cetcd_watch_event_batch_t *b;
    assert_int_equal(cetcd_watch_next(w, 5000, &b), 0);
    events += (int)b->n_events;
    cetcd_watch_batch_free(b);
  }
  assert_int_equal(events, N * 50);
  cetcd_watch_free(w);
  cetcd_client_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_failover_first_dead),
      cmocka_unit_test(test_unreachable_and_bad_endpoints),
      cmocka_unit_test(test_dropped_mid_call),
      cmocka_unit_test(test_calls_across_restart),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
