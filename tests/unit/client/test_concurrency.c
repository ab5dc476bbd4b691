/* libcetcd concurrency recipes (cetcd/concurrency.h) against a real server (cetcd, or etcd
 * 3.4 with CETCD_TEST_SERVER=/usr/bin/etcd): sessions, Mutex and Election in one process,
 * then across processes (handoff latency on Unlock/Resign, takeover after SIGKILL of the
 * holder within TTL + 1 s, revision delta while waiters wait, no keys left behind, Observe
 * sees every change). Measured numbers are printed with a "[cetcd]" / "[etcd]" label. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#include "test_concurrency_util.h"

enum { TTL = 2 };

static test_server_t srv;
static cetcd_client_t *cli;

/* ================================ child processes ================================ */

/* child mutex <ep> <prefix> <id>: lock, report, then on 'u' unlock; EOF: close session. */
static int child_mutex(const char *ep, const char *prefix, int id) {
  cetcd_client_t *c;
  cetcd_session_t *s;
  ct_child_session(ep, TTL, id, &c, &s);
  cetcd_mutex_t *m = NULL;
  int rc = cetcd_mutex_new(s, prefix, &m);
  if (!rc) ct_report("ready", id, 0);
  if (!rc) rc = cetcd_mutex_lock(m, 30000);
  if (rc) {
    ct_report("error", id, rc);
    return 2;
  }
  ct_report("locked", id, cetcd_mutex_rev(m));
  for (int cmd; (cmd = ct_command()) != 0;) {
    if (cmd == 'u') {
      ct_report("unlocking", id, 0);
      rc = cetcd_mutex_unlock(m);
      ct_report(rc ? "error" : "unlocked", id, rc);
    }
  }
  cetcd_mutex_free(m);
  cetcd_session_close(s);
  cetcd_client_free(c);
  return 0;
}

/* child elect <ep> <prefix> <id>: campaign with "v<id>", report; 'p' proclaims "v<id>b",
 * 'r' resigns; EOF: close session. */
static int child_elect(const char *ep, const char *prefix, int id) {
  cetcd_client_t *c;
  cetcd_session_t *s;
  ct_child_session(ep, TTL, id, &c, &s);
  cetcd_election_t *e = NULL;
  char v[32];
  snprintf(v, sizeof v, "v%d", id);
  int rc = cetcd_election_new(s, prefix, &e);
  if (!rc) ct_report("ready", id, 0);
  if (!rc) rc = cetcd_election_campaign(e, v, strlen(v), 30000);
  if (rc) {
    ct_report("error", id, rc);
    return 2;
  }
  ct_report("leader", id, cetcd_election_rev(e));
  for (int cmd; (cmd = ct_command()) != 0;) {
    if (cmd == 'p') {
      snprintf(v, sizeof v, "v%db", id);
      rc = cetcd_election_proclaim(e, v, strlen(v));
      ct_report(rc ? "error" : "proclaimed", id, rc);
    } else if (cmd == 'r') {
      ct_report("resigning", id, 0);
      rc = cetcd_election_resign(e);
      ct_report(rc ? "error" : "resigned", id, rc);
    }
  }
  cetcd_election_free(e);
  cetcd_session_close(s);
  cetcd_client_free(c);
  return 0;
}

/* ================================ in-process tests ================================ */

static int setup(void **state) {
  (void)state;
  ct_init();
  return tu_start_with_client(&srv, &cli);
}

static int teardown(void **state) {
  (void)state;
  ct_kill_all();
  tu_stop_with_client(&srv, cli);
  return 0;
}

static cetcd_session_t *new_session(int ttl) {
  cetcd_session_t *s = NULL;
  assert_int_equal(cetcd_session_new(cli, ttl, NULL, &s), 0);
  return s;
}

static atomic_int lost_calls;
static void on_lost(void *ctx, int64_t id, int err) {
  (void)ctx;
  (void)id;
  (void)err;
  atomic_fetch_add(&lost_calls, 1);
}

static void test_session(void **state) {
  (void)state;
  cetcd_session_opts_t so = {.on_lost = on_lost};
  cetcd_session_t *s = NULL;
  assert_int_equal(cetcd_session_new(cli, TTL, &so, &s), 0);
  int64_t lease = cetcd_session_lease(s);
  assert_true(lease > 0);
  assert_true(cetcd_session_ttl(s) >= TTL);
  assert_ptr_equal(cetcd_session_client(s), cli);
  assert_false(cetcd_session_done(s));
  /* kept alive past its TTL */
  tu_sleep_ms(TTL * 1000 + 700);
  assert_false(cetcd_session_done(s));
  cetcd_lease_ttl_t *t = NULL;
  assert_int_equal(cetcd_lease_timetolive(cli, lease, false, &t), 0);
  assert_true(t->ttl > 0);
  cetcd_lease_ttl_free(t);
  /* loss is reported (fd, flag, callback) when the lease is revoked behind its back */
  assert_int_equal(cetcd_lease_revoke(cli, lease), 0);
  struct pollfd pf = {.fd = cetcd_session_fd(s), .events = POLLIN};
  assert_int_equal(poll(&pf, 1, 5000), 1);
  assert_true(cetcd_session_done(s));
  assert_int_equal(atomic_load(&lost_calls), 1);
  assert_int_equal(cetcd_session_close(s), 0); /* already gone: still fine */

  /* close revokes; adopting an existing lease keeps it alive */
  int64_t id = 0;
  assert_int_equal(cetcd_lease_grant(cli, 30, 0, &id, NULL), 0);
  cetcd_session_opts_t adopt = {.lease = id};
  assert_int_equal(cetcd_session_new(cli, 0, &adopt, &s), 0);
  assert_int_equal(cetcd_session_lease(s), id);
  assert_int_equal(cetcd_session_close(s), 0);
  assert_int_equal(cetcd_lease_timetolive(cli, id, false, &t), 0);
  assert_int_equal(t->ttl, -1);
  cetcd_lease_ttl_free(t);
  cetcd_session_opts_t gone = {.lease = id};
  assert_int_equal(cetcd_session_new(cli, 0, &gone, &s), CETCD_ELEASENOTFOUND);
  assert_null(s);
}

static void test_mutex_basics(void **state) {
  (void)state;
  cetcd_session_t *s1 = new_session(TTL), *s2 = new_session(TTL);
  cetcd_mutex_t *m1, *m2;
  assert_int_equal(cetcd_mutex_new(s1, "/mx/a", &m1), 0);
  assert_int_equal(cetcd_mutex_new(s2, "/mx/a", &m2), 0);
  char want[64];
  snprintf(want, sizeof want, "/mx/a/%" PRIx64, (uint64_t)cetcd_session_lease(s1));
  assert_string_equal(cetcd_mutex_key(m1), want); /* etcd's layout */
  assert_int_equal(cetcd_mutex_rev(m1), 0);
  bool own = true;
  assert_int_equal(cetcd_mutex_is_owner(m1, &own), 0);
  assert_false(own);

  /* uncontended TryLock: exactly one revision (the put) */
  int64_t r0 = ct_rev(cli);
  assert_int_equal(cetcd_mutex_trylock(m1), 0);
  assert_int_equal(ct_rev(cli), r0 + 1);
  assert_int_equal(cetcd_mutex_rev(m1), r0 + 1);
  assert_int_equal(cetcd_mutex_is_owner(m1, &own), 0);
  assert_true(own);

  /* contended TryLock: CETCD_ELOCKED and nothing written, however often */
  int64_t r1 = ct_rev(cli);
  for (int i = 0; i < 50; i++) assert_int_equal(cetcd_mutex_trylock(m2), CETCD_ELOCKED);
  assert_int_equal(ct_rev(cli), r1);
  assert_int_equal(ct_count(cli, "/mx/a/"), 1);
  printf("[%s] contended TryLock x50: revision delta %lld (etcd clientv3 would cost 100)\n",
         ct_server_label(), (long long)(ct_rev(cli) - r1));

  /* fenced write: applies while held, not after the lock moved on */
  cetcd_txn_t *t;
  assert_int_equal(cetcd_txn_new(&t), 0);
  assert_int_equal(cetcd_mutex_guard(m1, t), 0);
  assert_int_equal(cetcd_txn_then_put(t, "/mx/data", 8, "1", 1, NULL), 0);
  cetcd_txn_result_t *tr;
  assert_int_equal(cetcd_txn_commit(cli, t, &tr), 0);
  assert_true(tr->succeeded);
  cetcd_txn_result_free(tr);

  /* Lock with a timeout: times out, leaves no key, costs put + delete only */
  int64_t r2 = ct_rev(cli);
  uint64_t t0 = tu_now_ms();
  assert_int_equal(cetcd_mutex_lock(m2, 300), CETCD_ETIMEOUT);
  assert_true(tu_now_ms() - t0 >= 290);
  assert_int_equal(ct_count(cli, "/mx/a/"), 1);
  assert_int_equal(ct_rev(cli), r2 + 2);

  /* Unlock hands over to a waiting Lock; the old holder's fenced write now fails */
  assert_int_equal(cetcd_mutex_unlock(m1), 0);
  assert_int_equal(cetcd_mutex_rev(m1), 0);
  assert_int_equal(cetcd_mutex_lock(m2, 5000), 0);
  assert_int_equal(cetcd_mutex_guard(m1, t), CETCD_EINVAL); /* not held any more */
  assert_int_equal(cetcd_txn_commit(cli, t, &tr), 0);       /* t still has m1's old guard */
  assert_false(tr->succeeded);
  cetcd_txn_result_free(tr);
  cetcd_txn_free(t);
  assert_int_equal(cetcd_mutex_is_owner(m2, &own), 0);
  assert_true(own);
  /* re-locking with the same session is not an error */
  assert_int_equal(cetcd_mutex_lock(m2, 1000), 0);
  assert_int_equal(cetcd_mutex_trylock(m2), 0);
  assert_int_equal(cetcd_mutex_unlock(m2), 0);
  assert_int_equal(cetcd_mutex_unlock(m2), 0); /* not held: fine */
  assert_int_equal(ct_count(cli, "/mx/a/"), 0);

  cetcd_mutex_free(m1);
  cetcd_mutex_free(m2);
  assert_int_equal(cetcd_session_close(s1), 0);
  assert_int_equal(cetcd_session_close(s2), 0);
}

typedef struct {
  cetcd_mutex_t *m;
  int rc;
} lock_arg_t;

static void *lock_thread(void *p) {
  lock_arg_t *a = p;
  a->rc = cetcd_mutex_lock(a->m, 20000);
  return NULL;
}

static void test_mutex_cancel_and_session_loss(void **state) {
  (void)state;
  cetcd_session_t *s1 = new_session(TTL), *s2 = new_session(TTL);
  cetcd_mutex_t *m1, *m2;
  assert_int_equal(cetcd_mutex_new(s1, "/mx/b", &m1), 0);
  assert_int_equal(cetcd_mutex_new(s2, "/mx/b", &m2), 0);
  assert_int_equal(cetcd_mutex_lock(m1, 5000), 0);

  /* cancel from another thread */
  lock_arg_t a = {.m = m2, .rc = 1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, lock_thread, &a), 0);
  ct_wait_count(cli, "/mx/b/", 2, 5000);
  int64_t r0 = ct_rev(cli);
  tu_sleep_ms(500);
  assert_int_equal(ct_rev(cli), r0); /* a waiting Lock writes nothing */
  uint64_t t0 = tu_now_ms();
  assert_int_equal(cetcd_mutex_cancel(m2), 0);
  pthread_join(th, NULL);
  assert_int_equal(a.rc, CETCD_ECANCELED);
  assert_true(tu_now_ms() - t0 < 1000);
  assert_int_equal(ct_count(cli, "/mx/b/"), 1); /* the canceled waiter's key is gone */

  /* the waiter's session is lost while it waits: CETCD_ESESSIONEXPIRED at once */
  a.rc = 1;
  assert_int_equal(pthread_create(&th, NULL, lock_thread, &a), 0);
  ct_wait_count(cli, "/mx/b/", 2, 5000);
  t0 = tu_now_ms();
  assert_int_equal(cetcd_lease_revoke(cli, cetcd_session_lease(s2)), 0);
  pthread_join(th, NULL);
  assert_int_equal(a.rc, CETCD_ESESSIONEXPIRED);
  assert_true(tu_now_ms() - t0 < 3000);
  assert_true(cetcd_session_done(s2));

  assert_int_equal(cetcd_mutex_unlock(m1), 0);
  assert_int_equal(ct_count(cli, "/mx/b/"), 0);
  cetcd_mutex_free(m1);
  cetcd_mutex_free(m2);
  cetcd_session_close(s1);
  cetcd_session_close(s2);
}

static void test_election_basics(void **state) {
  (void)state;
  cetcd_session_t *s1 = new_session(TTL), *s2 = new_session(TTL);
  cetcd_election_t *e1, *e2, *obs;
  assert_int_equal(cetcd_election_new(s1, "/el/a", &e1), 0);
  assert_int_equal(cetcd_election_new(s2, "/el/a", &e2), 0);
  assert_int_equal(cetcd_election_new_observer(cli, "/el/a", &obs), 0);
  cetcd_leader_t *l = NULL;
  assert_int_equal(cetcd_election_leader(obs, &l), CETCD_EELECTIONNOLEADER);
  assert_null(l);
  assert_int_equal(cetcd_election_campaign(obs, "x", 1, 10), CETCD_EINVAL);
  assert_int_equal(cetcd_election_proclaim(e1, "x", 1), CETCD_EELECTIONNOTLEADER);
  assert_int_equal(cetcd_election_resign(e1), 0);

  assert_int_equal(cetcd_election_campaign(e1, "one", 3, 5000), 0);
  assert_non_null(cetcd_election_key(e1));
  assert_true(cetcd_election_rev(e1) > 0);
  assert_int_equal(cetcd_election_leader(obs, &l), 0);
  assert_true(l->has_leader);
  assert_string_equal(l->kv.value, "one");
  assert_string_equal(l->kv.key, cetcd_election_key(e1));
  assert_int_equal(l->kv.create_revision, cetcd_election_rev(e1));
  cetcd_leader_free(l);
  assert_int_equal(cetcd_election_proclaim(e1, "uno", 3), 0);
  assert_int_equal(cetcd_election_leader(e2, &l), 0);
  assert_string_equal(l->kv.value, "uno");
  cetcd_leader_free(l);
  /* campaigning again with another value just proclaims it */
  assert_int_equal(cetcd_election_campaign(e1, "eins", 4, 5000), 0);
  assert_int_equal(cetcd_election_leader(e2, &l), 0);
  assert_string_equal(l->kv.value, "eins");
  cetcd_leader_free(l);

  /* e2 times out while e1 leads; its candidacy is withdrawn */
  assert_int_equal(cetcd_election_campaign(e2, "two", 3, 300), CETCD_ETIMEOUT);
  assert_int_equal(ct_count(cli, "/el/a/"), 1);
  assert_int_equal(cetcd_election_proclaim(e2, "two", 3), CETCD_EELECTIONNOTLEADER);

  /* resign, e2 is elected; e1 may no longer proclaim */
  assert_int_equal(cetcd_election_resign(e1), 0);
  assert_null(cetcd_election_key(e1));
  assert_int_equal(cetcd_election_campaign(e2, "two", 3, 5000), 0);
  assert_int_equal(cetcd_election_proclaim(e1, "x", 1), CETCD_EELECTIONNOTLEADER);
  /* losing the key behind one's back: proclaim tells */
  assert_int_equal(cetcd_delete(cli, cetcd_election_key(e2), strlen(cetcd_election_key(e2)), NULL, NULL), 0);
  assert_int_equal(cetcd_election_proclaim(e2, "y", 1), CETCD_EELECTIONNOTLEADER);
  assert_int_equal(ct_count(cli, "/el/a/"), 0);

  cetcd_election_free(e1);
  cetcd_election_free(e2);
  cetcd_election_free(obs);
  cetcd_session_close(s1);
  cetcd_session_close(s2);
}

/* ================================ across processes ================================ */

static double ms(uint64_t from_us, uint64_t to_us) { return ((double)to_us - (double)from_us) / 1000.0; }

static void test_mutex_processes(void **state) {
  (void)state;
  const char *pfx = "/mxp/lock";
  char ids[3][4];
  for (int i = 0; i < 3; i++) {
    snprintf(ids[i], sizeof ids[i], "%d", i);
    const char *args[] = {"mutex", srv.endpoint, pfx, ids[i], NULL};
    ct_spawn(i, args);
    if (i == 0) {
      ct_expect("locked", 0, 10000);
    } else {
      ct_expect("ready", i, 10000);
      ct_wait_count(cli, "/mxp/lock/", i + 1, 5000); /* queue in order 1, 2 */
    }
  }
  /* two processes block in Lock for 1 s: the store's revision does not move */
  int64_t r0 = ct_rev(cli);
  tu_sleep_ms(1000);
  int64_t d_wait = ct_rev(cli) - r0;
  assert_int_equal(d_wait, 0);

  double handoff[2];
  for (int i = 0; i < 2; i++) {
    ct_send(i, 'u');
    ct_line_t u = ct_expect("unlocking", i, 5000);
    ct_line_t l = ct_expect("locked", i + 1, 5000); /* FIFO: the next in line, no one else */
    handoff[i] = ms(u.t_us, l.t_us);
    assert_true(handoff[i] >= 0);
    assert_true(handoff[i] < 1000);
    assert_int_equal(ct_finish(i), 0);
  }
  ct_send(2, 'u');
  ct_expect("unlocked", 2, 5000);
  assert_int_equal(ct_finish(2), 0);
  assert_int_equal(ct_count(cli, "/mxp/lock/"), 0); /* no keys left behind */
  printf(
      "[%s] mutex across processes: revision delta while 2 waiters wait 1 s: %lld; "
      "handoff Unlock->Lock: %.2f ms, %.2f ms\n",
      ct_server_label(), (long long)d_wait, handoff[0], handoff[1]);

  /* SIGKILL of the holder: the waiter takes over when the lease expires (<= TTL + 1 s) */
  const char *a0[] = {"mutex", srv.endpoint, pfx, "3", NULL};
  const char *a1[] = {"mutex", srv.endpoint, pfx, "4", NULL};
  ct_spawn(3, a0);
  ct_expect("locked", 3, 10000);
  ct_spawn(4, a1);
  ct_expect("ready", 4, 10000);
  ct_wait_count(cli, "/mxp/lock/", 2, 5000);
  uint64_t t_kill = ct_now_us();
  ct_kill(3, SIGKILL);
  ct_line_t l = ct_expect("locked", 4, (TTL + 1) * 1000 + 2000);
  double takeover = ms(t_kill, l.t_us);
  printf("[%s] mutex takeover after SIGKILL of the holder (TTL %d s): %.0f ms\n", ct_server_label(), TTL,
         takeover);
  assert_true(takeover <= (TTL + 1) * 1000.0);
  assert_int_equal(ct_finish(4), 0);
  assert_int_equal(ct_count(cli, "/mxp/lock/"), 0);
}

/* Takes the next observed leader state, failing after timeout_ms. */
static cetcd_leader_t *observed(cetcd_observer_t *o, int timeout_ms) {
  cetcd_leader_t *l = NULL;
  int rc = cetcd_observer_next(o, timeout_ms, &l);
  if (rc) fail_msg("observer: %s", cetcd_strerror(rc));
  return l;
}

static void expect_leader(cetcd_observer_t *o, const char *value) {
  cetcd_leader_t *l = observed(o, 5000);
  if (!value) {
    assert_false(l->has_leader);
  } else {
    assert_true(l->has_leader);
    assert_string_equal(l->kv.value, value);
  }
  cetcd_leader_free(l);
}

static void test_election_processes(void **state) {
  (void)state;
  const char *pfx = "/elp/svc";
  cetcd_election_t *obs;
  cetcd_observer_t *o;
  assert_int_equal(cetcd_election_new_observer(cli, pfx, &obs), 0);
  assert_int_equal(cetcd_election_observe(obs, &o), 0);
  assert_true(cetcd_observer_fd(o) >= 0);
  expect_leader(o, NULL); /* initial state: no leader */
  cetcd_leader_t *l = NULL;
  assert_int_equal(cetcd_observer_next(o, 0, &l), CETCD_ETIMEOUT);

  char ids[3][4];
  for (int i = 0; i < 3; i++) {
    snprintf(ids[i], sizeof ids[i], "%d", i + 10);
    const char *args[] = {"elect", srv.endpoint, pfx, ids[i], NULL};
    ct_spawn(i, args);
    if (i == 0) {
      ct_expect("leader", 10, 10000);
      struct pollfd pf = {.fd = cetcd_observer_fd(o), .events = POLLIN};
      assert_int_equal(poll(&pf, 1, 5000), 1); /* the fd tells */
      expect_leader(o, "v10");
    } else {
      ct_expect("ready", i + 10, 10000);
      ct_wait_count(cli, "/elp/svc/", i + 1, 5000);
    }
  }
  /* followers joining is not a leader change; waiting candidates write nothing */
  int64_t r0 = ct_rev(cli);
  assert_int_equal(cetcd_observer_next(o, 1000, &l), CETCD_ETIMEOUT);
  int64_t d_wait = ct_rev(cli) - r0;
  assert_int_equal(d_wait, 0);

  ct_send(0, 'p');
  ct_expect("proclaimed", 10, 5000);
  expect_leader(o, "v10b");

  ct_send(0, 'r');
  ct_line_t r = ct_expect("resigning", 10, 5000);
  ct_line_t nl = ct_expect("leader", 11, 5000);
  double handoff = ms(r.t_us, nl.t_us);
  expect_leader(o, "v11");
  assert_true(handoff < 1000);
  assert_int_equal(ct_finish(0), 0);

  uint64_t t_kill = ct_now_us();
  ct_kill(1, SIGKILL);
  nl = ct_expect("leader", 12, (TTL + 1) * 1000 + 2000);
  double takeover = ms(t_kill, nl.t_us);
  assert_true(takeover <= (TTL + 1) * 1000.0);
  expect_leader(o, "v12");
  assert_int_equal(cetcd_election_leader(obs, &l), 0);
  assert_string_equal(l->kv.value, "v12");
  cetcd_leader_free(l);

  ct_send(2, 'r');
  ct_expect("resigned", 12, 5000);
  expect_leader(o, NULL); /* the last candidate went away */
  assert_int_equal(cetcd_election_leader(obs, &l), CETCD_EELECTIONNOLEADER);
  assert_int_equal(ct_finish(2), 0);
  assert_int_equal(cetcd_observer_next(o, 300, &l), CETCD_ETIMEOUT); /* nothing else happened */
  assert_int_equal(ct_count(cli, "/elp/svc/"), 0);
  printf(
      "[%s] election across processes: revision delta while 2 candidates wait 1 s: %lld; "
      "handoff Resign->elected: %.2f ms; takeover after SIGKILL (TTL %d s): %.0f ms\n",
      ct_server_label(), (long long)d_wait, handoff, TTL, takeover);
  cetcd_observer_free(o);
  cetcd_election_free(obs);
}

int main(int argc, char **argv) {
  if (argc >= 6 && !strcmp(argv[1], "child")) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int id = atoi(argv[5]);
    if (!strcmp(argv[2], "mutex")) return child_mutex(argv[3], argv[4], id);
    if (!strcmp(argv[2], "elect")) return child_elect(argv[3], argv[4], id);
    return 64;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_session),
      cmocka_unit_test(test_mutex_basics),
      cmocka_unit_test(test_mutex_cancel_and_session_loss),
      cmocka_unit_test(test_election_basics),
      cmocka_unit_test(test_mutex_processes),
      cmocka_unit_test(test_election_processes),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
