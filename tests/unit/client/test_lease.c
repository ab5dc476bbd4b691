/* libcetcd leases: grant, time-to-live, list, revoke, keep-alive (automatic and once),
 * and loss reporting. */
#include <pthread.h>
#include <stdatomic.h>

#include "client_test_util.h"

static test_server_t srv;
static cetcd_client_t *cli;

static int setup(void **state) {
  (void)state;
  return tu_start_with_client(&srv, &cli);
}

static int teardown(void **state) {
  (void)state;
  tu_stop_with_client(&srv, cli);
  return 0;
}

static void test_grant_ttl_revoke(void **state) {
  (void)state;
  int64_t id, ttl;
  assert_int_equal(cetcd_lease_grant(cli, 30, 0, &id, &ttl), 0);
  assert_true(id != 0);
  assert_int_equal(ttl, 30);
  assert_int_equal(cetcd_lease_grant(cli, 30, id, NULL, NULL), CETCD_ELEASEEXISTS);
  assert_int_equal(cetcd_client_last_error(cli)->grpc_status, 9);
  int64_t id2;
  assert_int_equal(cetcd_lease_grant(cli, 30, 0x1234, &id2, NULL), 0);
  assert_int_equal(id2, 0x1234);
  cetcd_put_opts_t po = {.lease = id};
  assert_int_equal(cetcd_put(cli, "l/a", 3, "1", 1, &po, NULL), 0);
  assert_int_equal(cetcd_put(cli, "l/b", 3, "2", 1, &po, NULL), 0);

  cetcd_lease_ttl_t *t;
  assert_int_equal(cetcd_lease_timetolive(cli, id, true, &t), 0);
  assert_int_equal(t->id, id);
  assert_true(t->ttl > 0 && t->ttl <= 30);
  assert_int_equal(t->granted_ttl, 30);
  assert_int_equal(t->n_keys, 2);
  bool a = !strcmp(t->keys[0], "l/a") || !strcmp(t->keys[1], "l/a");
  assert_true(a);
  assert_int_equal(t->key_lens[0], 3);
  cetcd_lease_ttl_free(t);

  int64_t *ids;
  size_t n;
  assert_int_equal(cetcd_lease_leases(cli, &ids, &n), 0);
  assert_true(n >= 2);
  bool found = false;
  for (size_t i = 0; i < n; i++) found |= ids[i] == id;
  assert_true(found);
  cetcd_free(ids);

  int64_t nttl;
  assert_int_equal(cetcd_lease_keepalive_once(cli, id, &nttl), 0);
  assert_int_equal(nttl, 30);

  assert_int_equal(cetcd_lease_revoke(cli, id), 0);
  cetcd_get_result_t *g;
  assert_int_equal(cetcd_get(cli, "l/", 2, &(cetcd_get_opts_t){.prefix = true}, &g), 0);
  assert_int_equal(g->n_kvs, 0);
  cetcd_get_result_free(g);
  assert_int_equal(cetcd_lease_timetolive(cli, id, false, &t), 0);
  assert_int_equal(t->ttl, -1);
  cetcd_lease_ttl_free(t);
  assert_int_equal(cetcd_lease_revoke(cli, id), CETCD_ELEASENOTFOUND);
  assert_string_equal(cetcd_client_last_error(cli)->message, "etcdserver: requested lease not found");
  assert_int_equal(cetcd_lease_keepalive_once(cli, id, NULL), CETCD_ELEASENOTFOUND);
  assert_int_equal(cetcd_lease_revoke(cli, id2), 0);
}

typedef struct lost {
  atomic_int calls;
  atomic_int err;
  atomic_llong id;
} lost_t;

static void on_lost(void *ctx, int64_t id, int err) {
  lost_t *l = ctx;
  atomic_store(&l->err, err);
  atomic_store(&l->id, id);
  atomic_fetch_add(&l->calls, 1);
}

static void test_keepalive(void **state) {
  (void)state;
  int64_t id1, id2, ttl;
  assert_int_equal(cetcd_lease_grant(cli, 2, 0, &id1, &ttl), 0);
  assert_int_equal(cetcd_lease_grant(cli, 2, 0, &id2, NULL), 0);
  cetcd_put_opts_t po = {.lease = id1};
  assert_int_equal(cetcd_put(cli, "ka/1", 4, "1", 1, &po, NULL), 0);
  lost_t l1 = {0}, l2 = {0};
  cetcd_keepalive_t *k1, *k2;
  assert_int_equal(cetcd_lease_keepalive_start(cli, id1, on_lost, &l1, &k1), 0);
  assert_int_equal(cetcd_lease_keepalive_start(cli, id2, on_lost, &l2, &k2), 0);
  assert_true(cetcd_lease_keepalive_ttl(k1) >= 2);
  /* well past the TTL: both leases stay alive, the key stays */
  tu_sleep_ms(3500);
  cetcd_lease_ttl_t *t;
  assert_int_equal(cetcd_lease_timetolive(cli, id1, false, &t), 0);
  assert_true(t->ttl > 0);
  cetcd_lease_ttl_free(t);
  cetcd_get_result_t *g;
  assert_int_equal(cetcd_get(cli, "ka/1", 4, NULL, &g), 0);
  assert_int_equal(g->n_kvs, 1);
  cetcd_get_result_free(g);
  assert_false(cetcd_lease_keepalive_lost(k1));
  assert_int_equal(atomic_load(&l1.calls), 0);

  /* revoking one lease: its keep-alive reports the loss once */
  assert_int_equal(cetcd_lease_revoke(cli, id2), 0);
  uint64_t end = tu_now_ms() + 5000;
  while (!atomic_load(&l2.calls) && tu_now_ms() < end) tu_sleep_ms(20);
  assert_int_equal(atomic_load(&l2.calls), 1);
  assert_int_equal(atomic_load(&l2.err), CETCD_ELEASENOTFOUND);
  assert_int_equal(atomic_load(&l2.id), id2);
  assert_true(cetcd_lease_keepalive_lost(k2));
  assert_int_equal(cetcd_lease_keepalive_ttl(k2), 0);
  cetcd_lease_keepalive_stop(k2);

  /* stopping does not revoke; without renewals the lease expires */
  cetcd_lease_keepalive_stop(k1);
  assert_int_equal(atomic_load(&l1.calls), 0);
  end = tu_now_ms() + 10000;
  int64_t left = 1;
  while (left > 0 && tu_now_ms() < end) {
    assert_int_equal(cetcd_lease_timetolive(cli, id1, false, &t), 0);
    left = t->ttl;
    cetcd_lease_ttl_free(t);
    if (left > 0) tu_sleep_ms(200);
  }
  assert_true(left <= 0);

  /* starting a keep-alive for an unknown lease fails */
  cetcd_keepalive_t *k3;
  assert_int_equal(cetcd_lease_keepalive_start(cli, id2, on_lost, &l2, &k3), CETCD_ELEASENOTFOUND);
  assert_null(k3);
}

static void test_keepalive_survives_restart(void **state) {
  (void)state;
  int64_t id;
  assert_int_equal(cetcd_lease_grant(cli, 10, 0, &id, NULL), 0);
  lost_t l = {0};
  cetcd_keepalive_t *k;
  assert_int_equal(cetcd_lease_keepalive_start(cli, id, on_lost, &l, &k), 0);
  tu_server_stop(&srv, false);
  assert_int_equal(tu_server_start(&srv), 0);
  /* the shared stream is reopened and renewals continue */
  tu_sleep_ms(4500);
  assert_int_equal(atomic_load(&l.calls), 0);
  cetcd_lease_ttl_t *t;
  assert_int_equal(cetcd_lease_timetolive(cli, id, false, &t), 0);
  assert_true(t->ttl >= 5);
  cetcd_lease_ttl_free(t);
  cetcd_lease_keepalive_stop(k);
  assert_int_equal(cetcd_lease_revoke(cli, id), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grant_ttl_revoke),
      cmocka_unit_test(test_keepalive),
      cmocka_unit_test(test_keepalive_survives_restart),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
