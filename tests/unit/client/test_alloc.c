/* libcetcd allocation-failure injection: for every API call, make its 1st, 2nd, ... N-th
 * allocation (on the calling thread) fail until the call succeeds without hitting the
 * injected failure. Each failing run must return CETCD_ENOMEM, leave no result behind and
 * leak nothing (checked by LeakSanitizer in the ASan build: make asan). */
#include "client_test_util.h"

static test_server_t srv;
static cetcd_client_t *cli;

static int setup(void **state) {
  (void)state;
  if (tu_start_with_client(&srv, &cli)) return -1;
  tu_put(cli, "a/1", "one");
  tu_put(cli, "a/2", "two");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tu_stop_with_client(&srv, cli);
  return 0;
}

/* Runs op with the N-th allocation failing, N = 1, 2, ... until op succeeds untouched.
 * op returns 0 or a CETCD_E* code and must free whatever it got on success. */
static void inject_loop(const char *name, void (*prep)(void), int (*op)(void)) {
  int failures = 0;
  for (long n = 1; n < 10000; n++) {
    if (prep) prep();
    cetcd__alloc_fail_at(n);
    int rc = op();
    bool hit = cetcd__alloc_failed();
    cetcd__alloc_fail_at(0);
    if (!hit) {
      if (rc) fprintf(stderr, "%s: unexpected %s without injected failure\n", name, cetcd_strerror(rc));
      assert_int_equal(rc, 0);
      fprintf(stderr, "%s: %d allocation points, each failed cleanly\n", name, failures);
      return;
    }
    if (rc != CETCD_ENOMEM)
      fprintf(stderr, "%s: allocation %ld failed but the call returned %d (%s)\n", name, n, rc,
              cetcd_strerror(rc));
    assert_int_equal(rc, CETCD_ENOMEM);
    failures++;
  }
  fail_msg("%s: never completed", name);
}

static int op_client_new(void) {
  const char *eps[] = {srv.endpoint, "localhost:1"};
  cetcd_client_opts_t o = {.endpoints = eps, .n_endpoints = 2, .dial_timeout_ms = 2000};
  cetcd_client_t *c = NULL;
  int rc = cetcd_client_new(&o, &c);
  if (rc) {
    assert_null(c);
    return rc;
  }
  cetcd_client_free(c);
  return 0;
}

static int op_get(void) {
  cetcd_get_result_t *g = NULL;
  cetcd_get_opts_t o = {.prefix = true, .sort_order = CETCD_SORT_DESCEND};
  int rc = cetcd_get(cli, "a/", 2, &o, &g);
  if (rc) {
    assert_null(g);
    return rc;
  }
  assert_int_equal(g->n_kvs, 2);
  cetcd_get_result_free(g);
  return 0;
}

static int op_put(void) {
  cetcd_put_result_t *r = NULL;
  cetcd_put_opts_t o = {.prev_kv = true};
  int rc = cetcd_put(cli, "a/3", 3, "three", 5, &o, &r);
  if (rc) {
    assert_null(r);
    return rc;
  }
  cetcd_put_result_free(r);
  return 0;
}

static void prep_delete(void) { tu_put(cli, "d/1", "x"); }

static int op_delete(void) {
  cetcd_delete_result_t *r = NULL;
  cetcd_delete_opts_t o = {.prefix = true, .prev_kv = true};
  int rc = cetcd_delete(cli, "d/", 2, &o, &r);
  if (rc) {
    assert_null(r);
    return rc;
  }
  cetcd_delete_result_free(r);
  return 0;
}

static int op_txn(void) {
  cetcd_txn_t *sub = NULL, *t = NULL;
  cetcd_txn_result_t *r = NULL;
  int rc = cetcd_txn_new(&sub);
  if (!rc) rc = cetcd_txn_then_get(sub, "a/1", 3, NULL);
  if (!rc) rc = cetcd_txn_new(&t);
  if (!rc) {
    /* builder errors are sticky: keep building, commit reports the first one */
    cetcd_txn_cmp_value(t, "a/1", 3, CETCD_CMP_EQUAL, "one", 3);
    cetcd_txn_cmp_version(t, "a/", 2, CETCD_CMP_GREATER, 0);
    cetcd_txn_cmp_range(t, NULL, 0, true);
    cetcd_txn_then_put(t, "a/t", 3, "v", 1, &(cetcd_put_opts_t){.prev_kv = true});
    cetcd_txn_then_get(t, "a/", 2, &(cetcd_get_opts_t){.prefix = true});
    cetcd_txn_then_delete(t, "a/none", 6, &(cetcd_delete_opts_t){.prefix = true, .prev_kv = true});
    cetcd_txn_then_txn(t, sub);
    cetcd_txn_else_get(t, "a/1", 3, NULL);
    rc = cetcd_txn_commit(cli, t, &r);
  }
  if (!rc) {
    assert_true(r->succeeded);
    assert_int_equal(r->n_results, 4);
  } else {
    assert_null(r);
  }
  cetcd_txn_result_free(r);
  cetcd_txn_free(t);
  cetcd_txn_free(sub);
  return rc;
}

static int64_t compact_rev;

static void prep_compact(void) { compact_rev = tu_put(cli, "c", "x"); }

static int op_compact(void) { return cetcd_compact(cli, compact_rev, false); }

static void nop_cb(void *ctx, cetcd_watch_t *w, const cetcd_watch_event_batch_t *b) {
  (void)ctx, (void)w, (void)b;
}

static int op_watch_cb(void) {
  cetcd_watch_t *w = NULL;
  int rc =
      cetcd_watch(cli, "a/", 2, &(cetcd_watch_opts_t){.prefix = true, .prev_kv = true}, nop_cb, NULL, &w);
  if (rc) {
    assert_null(w);
    return rc;
  }
  cetcd_watch_free(w);
  return 0;
}

static int op_watch_poll(void) {
  cetcd_watch_t *w = NULL;
  int rc = cetcd_watch_open(cli, "a/1", 3, &(cetcd_watch_opts_t){.start_revision = 1}, &w);
  if (rc) {
    assert_null(w);
    return rc;
  }
  cetcd_watch_event_batch_t *b = NULL;
  rc = cetcd_watch_next(w, 5000, &b);
  assert_int_equal(rc, 0);
  cetcd_watch_batch_free(b);
  cetcd_watch_free(w);
  return 0;
}

static int op_lease(void) {
  int64_t id;
  int rc = cetcd_lease_grant(cli, 60, 0, &id, NULL);
  if (rc) return rc;
  cetcd_put_opts_t po = {.lease = id};
  cetcd_lease_ttl_t *t = NULL;
  int64_t *ids = NULL;
  size_t n;
  cetcd_keepalive_t *ka = NULL;
  rc = cetcd_put(cli, "l/k", 3, "v", 1, &po, NULL);
  if (!rc) rc = cetcd_lease_timetolive(cli, id, true, &t);
  if (!rc) rc = cetcd_lease_leases(cli, &ids, &n);
  if (!rc) rc = cetcd_lease_keepalive_once(cli, id, NULL);
  if (!rc) rc = cetcd_lease_keepalive_start(cli, id, NULL, NULL, &ka);
  if (rc == CETCD_ENOMEM) assert_null(ka);
  cetcd_lease_keepalive_stop(ka);
  cetcd_lease_ttl_free(t);
  cetcd_free(ids);
  int rc2 = cetcd_lease_revoke(cli, id);
  /* a revoke failing with ENOMEM leaves the lease to expire on the server (60 s) */
  return rc ? rc : rc2;
}

static int op_maintenance(void) {
  cetcd_status_t *st = NULL;
  cetcd_member_list_t *ml = NULL;
  cetcd_alarm_t *al = NULL;
  size_t n;
  uint32_t h;
  int rc = cetcd_status(cli, srv.endpoint, &st);
  if (!rc) rc = cetcd_member_list(cli, &ml);
  if (!rc) rc = cetcd_alarm_list(cli, &al, &n);
  if (!rc) rc = cetcd_hashkv(cli, NULL, 0, &h, NULL, NULL);
  cetcd_status_free(st);
  cetcd_member_list_free(ml);
  cetcd_free(al);
  return rc;
}

static int count_cb(void *ctx, const void *d, size_t n) {
  (void)d;
  *(size_t *)ctx += n;
  return 0;
}

static int op_snapshot(void) {
  size_t total = 0;
  return cetcd_snapshot(cli, count_cb, &total);
}

#define INJECT(op, prep)             \
  static void test_##op(void **s) {  \
    (void)s;                         \
    inject_loop(#op, prep, op_##op); \
  }
INJECT(client_new, NULL)
INJECT(get, NULL)
INJECT(put, NULL)
INJECT(delete, prep_delete)
INJECT(txn, NULL)
INJECT(compact, prep_compact)
INJECT(watch_cb, NULL)
INJECT(watch_poll, NULL)
INJECT(lease, NULL)
INJECT(maintenance, NULL)
INJECT(snapshot, NULL)

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_new),  cmocka_unit_test(test_get),        cmocka_unit_test(test_put),
      cmocka_unit_test(test_delete),      cmocka_unit_test(test_txn),        cmocka_unit_test(test_compact),
      cmocka_unit_test(test_watch_cb),    cmocka_unit_test(test_watch_poll), cmocka_unit_test(test_lease),
      cmocka_unit_test(test_maintenance), cmocka_unit_test(test_snapshot),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
