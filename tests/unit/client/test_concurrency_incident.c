/* The incident workload with libcetcd (against cetcd, or etcd 3.4 with
 * CETCD_TEST_SERVER=/usr/bin/etcd): one primary and three standbys, separate processes,
 * each standby polling cetcd_mutex_trylock every 50 ms. While they wait the store's
 * revision must not move at all (clientv3's TryLock costs 2 revisions per try, which is
 * what filled the incident's backend). Then the primary is SIGKILLed and one standby must
 * take over within TTL + 1 s; at the end no key is left.
 *
 * CETCD_TEST_STANDBY_SECONDS (default 60) sets how long the standbys poll. */
#include "test_concurrency_util.h"

enum { TTL = 3, POLL_MS = 50, N_STANDBY = 3 };
#define PREFIX "/locks/primary"

static test_server_t srv;
static cetcd_client_t *cli;

/* child standby <ep> <prefix> <id>: the primary/standby loop. Polls TryLock every
 * POLL_MS; reports "standby" after the first failed try and "primary" once it holds the
 * lock, then holds it until its stdin closes. On stdin EOF reports "tries" (failed
 * TryLocks) and releases everything. */
static int child_standby(const char *ep, const char *prefix, int id) {
  cetcd_client_t *c;
  cetcd_session_t *s;
  ct_child_session(ep, TTL, id, &c, &s);
  cetcd_mutex_t *m = NULL;
  int rc = cetcd_mutex_new(s, prefix, &m);
  if (rc) {
    ct_report("error", id, rc);
    return 2;
  }
  long long tries = 0;
  bool primary = false;
  for (;;) {
    if (!primary) {
      rc = cetcd_mutex_trylock(m);
      if (rc == 0) {
        primary = true;
        ct_report("primary", id, cetcd_mutex_rev(m));
      } else if (rc == CETCD_ELOCKED) {
        if (tries++ == 0) ct_report("standby", id, 0);
      } else {
        ct_report("error", id, rc);
      }
    }
    struct pollfd pf = {.fd = 0, .events = POLLIN};
    if (poll(&pf, 1, primary ? -1 : POLL_MS) > 0 && ct_command() == 0) break; /* EOF */
  }
  ct_report("tries", id, tries);
  cetcd_mutex_free(m);
  cetcd_session_close(s);
  cetcd_client_free(c);
  return 0;
}

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

static void test_primary_and_standbys(void **state) {
  (void)state;
  const char *env = getenv("CETCD_TEST_STANDBY_SECONDS");
  int seconds = env && atoi(env) > 0 ? atoi(env) : 60;
  char ids[N_STANDBY + 1][4];
  for (int i = 0; i <= N_STANDBY; i++) {
    snprintf(ids[i], sizeof ids[i], "%d", i);
    const char *args[] = {"standby", srv.endpoint, PREFIX, ids[i], NULL};
    ct_spawn(i, args);
    ct_expect(i == 0 ? "primary" : "standby", i, 10000);
  }
  /* the standbys poll for `seconds`: sample the revision every second */
  int64_t r0 = ct_rev(cli), max_delta = 0;
  uint64_t end = tu_now_ms() + (uint64_t)seconds * 1000;
  while (tu_now_ms() < end) {
    ct_line_t l;
    if (ct_read(&l, 1000)) fail_msg("unexpected report '%s %d' while the primary lives", l.tag, l.id);
    int64_t d = ct_rev(cli) - r0;
    if (d > max_delta) max_delta = d;
  }
  assert_int_equal(max_delta, 0);
  assert_int_equal(ct_count(cli, PREFIX "/"), 1); /* only the primary's key */

  /* kill the primary: one standby takes over within TTL + 1 s */
  uint64_t t_kill = ct_now_us();
  ct_kill(0, SIGKILL);
  ct_line_t p = ct_expect("primary", -1, (TTL + 1) * 1000 + 3000);
  double takeover = ((double)p.t_us - (double)t_kill) / 1000.0;
  assert_true(p.id >= 1 && p.id <= N_STANDBY);
  ct_line_t extra;
  if (ct_read(&extra, 1000)) fail_msg("unexpected report '%s %d' after the takeover", extra.tag, extra.id);
  int64_t d_takeover = ct_rev(cli) - r0; /* expiry of the old key, new key, lost races */
  assert_int_equal(ct_count(cli, PREFIX "/"), 1);

  /* stop everyone (the new primary last); collect the number of failed tries */
  long long tries = 0;
  for (int i = 1; i <= N_STANDBY; i++) {
    if (i == p.id) continue;
    assert_int_equal(ct_finish(i), 0);
    tries += ct_expect("tries", i, 5000).extra;
  }
  assert_int_equal(ct_finish(p.id), 0);
  tries += ct_expect("tries", p.id, 5000).extra;
  assert_int_equal(ct_count(cli, PREFIX "/"), 0); /* no keys left behind */
  printf(
      "[%s] 1 primary + %d standbys polling TryLock every %d ms for %d s: %lld failed tries, "
      "revision delta %lld (clientv3 TryLock: %lld); takeover after SIGKILL (TTL %d s): %.0f ms, "
      "costing %lld revisions\n",
      ct_server_label(), N_STANDBY, POLL_MS, seconds, tries, (long long)max_delta, 2 * tries, TTL, takeover,
      (long long)d_takeover);
  assert_true(tries >= (long long)N_STANDBY * seconds * (1000 / POLL_MS) / 4);
  assert_true(takeover <= (TTL + 1) * 1000.0);
}

int main(int argc, char **argv) {
  if (argc >= 6 && !strcmp(argv[1], "child")) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!strcmp(argv[2], "standby")) return child_standby(argv[3], argv[4], atoi(argv[5]));
    return 64;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_primary_and_standbys)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
