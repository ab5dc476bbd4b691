/* Raft log replication: commit and apply, forwarding, catch-up, conflicting tails, flow
 * control, the rule that only current-term entries commit by counting, and restarts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "raft/raft_int.h"
#include "raft_test_util.h"

/* Compares the logs of a and b over [lo, hi]. */
static void assert_same_log(tnet_t *net, uint64_t a, uint64_t b, uint64_t lo, uint64_t hi) {
  for (uint64_t i = lo; i <= hi; i++) {
    raft_entry_t ea, eb;
    assert_int_equal(raft_entry_at(net->r[a], i, &ea), 0);
    assert_int_equal(raft_entry_at(net->r[b], i, &eb), 0);
    assert_int_equal(ea.term, eb.term);
    assert_int_equal(ea.len, eb.len);
    if (ea.len) assert_memory_equal(ea.data, eb.data, ea.len);
  }
}

/* Entries proposed at the leader commit on a quorum and are applied everywhere in order. */
static void test_replicate_and_commit(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.pre_vote = true, .check_quorum = true};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  char buf[16];
  for (int i = 0; i < 20; i++) {
    snprintf(buf, sizeof(buf), "v%d", i);
    assert_int_equal(tn_propose(net, 1, buf), 0);
  }
  tn_settle(net);
  for (uint64_t id = 1; id <= 3; id++) {
    assert_int_equal(tn_status(net, id).commit, 21);
    assert_int_equal(tn_status(net, id).applied, 21);
    assert_int_equal(net->n_applied[id], 21);
    for (int i = 0; i < 20; i++) {
      snprintf(buf, sizeof(buf), "v%d", i);
      assert_string_equal(net->applied[id][i + 1].data, buf);
      assert_int_equal(net->applied[id][i + 1].index, (uint64_t)i + 2);
    }
  }
  /* A minority cannot commit: with both followers cut off nothing new commits. */
  tn_isolate(net, 1, true);
  assert_int_equal(tn_propose(net, 1, "lost"), 0);
  tn_settle(net);
  assert_int_equal(tn_status(net, 1).commit, 21);
  assert_int_equal(tn_status(net, 1).last_index, 22);
  tn_free(net);
  free(net);
}

/* A follower forwards proposals to the leader; without a leader it refuses. */
static void test_forwarding(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  assert_int_equal(tn_propose(net, 2, "x"), CETCD_ENOLEADER);
  tn_elect(net, 1);
  assert_int_equal(tn_propose(net, 2, "fwd"), 0);
  tn_settle(net);
  for (uint64_t id = 1; id <= 3; id++) assert_string_equal(tn_last_data(net, id), "fwd");
  tn_free(net);
  free(net);
}

/* A follower that missed many entries catches up once reconnected. */
static void test_follower_catch_up(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.pre_vote = true, .check_quorum = true, .max_inflight = 4};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  tn_isolate(net, 3, true);
  char buf[16];
  for (int i = 0; i < 300; i++) {
    snprintf(buf, sizeof(buf), "e%d", i);
    assert_int_equal(tn_propose(net, 1, buf), 0);
    if (i % 10 == 0) tn_tick(net, 1);
  }
  tn_settle(net);
  assert_int_equal(tn_status(net, 2).commit, 301);
  assert_int_equal(tn_status(net, 3).commit, 1);
  tn_isolate(net, 3, false);
  tn_tick(net, 3);
  assert_int_equal(tn_status(net, 3).commit, 301);
  assert_string_equal(tn_last_data(net, 3), "e299");
  assert_same_log(net, 1, 3, 1, 301);
  tn_free(net);
  free(net);
}

/* A deposed leader's uncommitted tail is overwritten by the new leader's log. */
static void test_conflicting_tail_overwritten(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.pre_vote = true, .check_quorum = true};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  assert_int_equal(tn_propose(net, 1, "ok"), 0);
  tn_settle(net);
  tn_isolate(net, 1, true);
  char buf[16];
  for (int i = 0; i < 5; i++) {
    snprintf(buf, sizeof(buf), "old%d", i);
    assert_int_equal(tn_propose(net, 1, buf), 0);
  }
  tn_settle(net);
  assert_int_equal(tn_status(net, 1).last_index, 7);
  /* 2 and 3 wait out the leader's lease, then elect one of them. */
  uint64_t l = 0;
  for (int t = 0; t < 100 && (l == 0 || l == 1); t++) {
    tn_tick(net, 1);
    l = tn_leader(net);
  }
  assert_true(l == 2 || l == 3);
  for (int i = 0; i < 3; i++) {
    snprintf(buf, sizeof(buf), "new%d", i);
    assert_int_equal(tn_propose(net, l, buf), 0);
  }
  tn_settle(net);
  tn_isolate(net, 1, false);
  tn_tick(net, 25);
  assert_int_equal(tn_leader(net), l);
  raft_status_t s1 = tn_status(net, 1), sl = tn_status(net, l);
  assert_int_equal(s1.last_index, sl.last_index);
  assert_int_equal(s1.commit, sl.commit);
  assert_same_log(net, 1, l, 1, sl.last_index);
  for (uint64_t id = 1; id <= 3; id++) {
    assert_string_equal(tn_last_data(net, id), "new2");
    for (int i = 0; i < 5; i++) {
      snprintf(buf, sizeof(buf), "old%d", i);
      assert_false(tn_has_applied(net, id, buf));
    }
  }
  tn_free(net);
  free(net);
}

/* Flow control: with acks lost, a follower in replicate state gets at most max_inflight
 * appends; heartbeat acks then get replication going again. */
static void test_flow_control(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.max_inflight = 3};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  tn_propose(net, 1, "warm");
  tn_settle(net); /* followers now in replicate state */
  net->drop_type[RAFT_MSG_APP_RESP] = true;
  size_t before = net->delivered[RAFT_MSG_APP];
  for (int i = 0; i < 10; i++) {
    assert_int_equal(tn_propose(net, 1, "x"), 0);
    tn_settle(net);
  }
  assert_int_equal(net->delivered[RAFT_MSG_APP] - before, 2 * 3);
  net->drop_type[RAFT_MSG_APP_RESP] = false;
  tn_tick(net, 2);
  assert_int_equal(tn_status(net, 2).commit, 12);
  assert_int_equal(tn_status(net, 1).commit, 12);
  tn_free(net);
  free(net);
}

/* Raft §5.4.2: an entry from an older term is not committed by counting replicas, only
 * together with an entry of the leader's own term. */
static void test_commit_only_current_term(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  /* Term 1: an entry reaches only the leader. */
  tn_isolate(net, 1, true);
  tn_propose(net, 1, "t1");
  tn_settle(net);
  assert_int_equal(tn_status(net, 1).last_index, 2);
  /* 1 wins term 2 with 3's vote; append acks are lost so 3's progress stays unknown. */
  tn_heal(net);
  net->cut[2][1] = net->cut[1][2] = true;
  net->drop_type[RAFT_MSG_APP_RESP] = true;
  raft_become_follower(net->r[1], 1, RAFT_NONE);
  tn_elect(net, 1);
  assert_int_equal(tn_leader(net), 1);
  assert_int_equal(tn_status(net, 1).term, 2);
  /* Say 3 acknowledged index 2 (the term-1 entry): a quorum holds it, yet counting must not
   * commit it because it is not from the leader's term. */
  raft_t *r = net->r[1];
  raft_pr_find(r, 3)->match = 2;
  assert_false(raft_maybe_commit(r));
  assert_int_equal(tn_status(net, 1).commit, 1);
  raft_pr_find(r, 3)->match = 0; /* undo the pretence */
  /* Once the term-2 entry (index 3) is on a quorum, both commit. */
  net->drop_type[RAFT_MSG_APP_RESP] = false;
  tn_tick(net, 2);
  assert_int_equal(tn_status(net, 1).commit, 3);
  assert_string_equal(tn_last_data(net, 3), "t1");
  tn_free(net);
  free(net);
}

/* A restarted member resumes from what it persisted. */
static void test_restart_from_persisted(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 1, &o);
  tn_elect(net, 1);
  tn_propose(net, 1, "a");
  tn_propose(net, 1, "b");
  tn_settle(net);
  raft_entry_t ents[3];
  for (uint64_t i = 1; i <= 3; i++) assert_int_equal(raft_entry_at(net->r[1], i, &ents[i - 1]), 0);
  static const char copies[3][4] = {"", "a", "b"};
  for (int i = 0; i < 3; i++) ents[i].data = ents[i].len ? (const uint8_t *)copies[i] : NULL;
  raft_status_t st = tn_status(net, 1);
  raft_restore_t rs = {.hs = {.term = st.term, .vote = st.vote, .commit = st.commit},
                       .entries = ents,
                       .n_entries = 3,
                       .applied = 2};
  raft_t *r = tn_make(net, 1, 1, &o, &rs);
  assert_non_null(r);
  raft_free(net->r[1]);
  net->r[1] = r;
  net->n_applied[1] = 0;
  tn_settle(net);
  assert_int_equal(net->n_applied[1], 1); /* only "b" was not applied yet */
  assert_string_equal(tn_last_data(net, 1), "b");
  tn_tick(net, 30);
  assert_int_equal(tn_status(net, 1).role, RAFT_LEADER);
  assert_int_equal(tn_status(net, 1).term, st.term + 1);
  /* A restore that is not contiguous is refused. */
  rs.entries = ents + 1;
  rs.n_entries = 2;
  assert_null(tn_make(net, 1, 1, &o, &rs));
  tn_free(net);
  free(net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_replicate_and_commit),   cmocka_unit_test(test_forwarding),
      cmocka_unit_test(test_follower_catch_up),      cmocka_unit_test(test_conflicting_tail_overwritten),
      cmocka_unit_test(test_flow_control),           cmocka_unit_test(test_commit_only_current_term),
      cmocka_unit_test(test_restart_from_persisted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
