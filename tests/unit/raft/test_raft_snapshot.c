/* Log compaction and snapshots: a far-behind follower gets MsgSnap and continues from it;
 * snapshot transfer failures; compaction bounds; restart from a snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "raft_test_util.h"

/* Compacts member id at its applied index with data s. */
static void compact(tnet_t *net, uint64_t id, const char *s) {
  uint64_t applied = tn_status(net, id).applied;
  assert_int_equal(raft_compact(net->r[id], applied, (const uint8_t *)s, strlen(s)), 0);
}

/* A follower behind the leader's compaction point receives the snapshot, then entries. */
static void test_snapshot_to_far_behind_follower(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.pre_vote = true, .check_quorum = true};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  tn_isolate(net, 3, true);
  for (int i = 0; i < 20; i++) tn_propose(net, 1, "s");
  tn_settle(net);
  compact(net, 1, "state@21");
  compact(net, 2, "state2@21");
  assert_int_equal(tn_status(net, 1).first_index, 22);
  raft_entry_t e;
  assert_int_equal(raft_entry_at(net->r[1], 5, &e), CETCD_ERAFTCOMPACTED);
  assert_int_equal(raft_entry_at(net->r[1], 99, &e), CETCD_ERAFTUNAVAIL);
  const raft_snapshot_t *snap = raft_last_snapshot(net->r[1]);
  assert_int_equal(snap->index, 21);
  assert_int_equal(snap->term, tn_status(net, 1).term);
  assert_int_equal(snap->n_voters, 3);
  tn_propose(net, 1, "after-snap");
  tn_settle(net);
  tn_isolate(net, 3, false);
  tn_tick(net, 3);
  assert_int_equal(net->snapshots_applied[3], 1);
  assert_string_equal(net->snap_data[3], "state@21");
  assert_int_equal(tn_status(net, 3).commit, 22);
  assert_int_equal(tn_status(net, 3).first_index, 22);
  assert_true(tn_has_applied(net, 3, "after-snap"));
  /* 3 can lead afterwards, and ships its own (received) snapshot to others if needed. */
  tn_propose(net, 1, "more");
  tn_settle(net);
  assert_true(tn_has_applied(net, 3, "more"));
  tn_free(net);
  free(net);
}

/* A failed snapshot transfer puts the follower back to probing, and it is retried. */
static void test_snapshot_report_failure(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  tn_isolate(net, 3, true);
  for (int i = 0; i < 5; i++) tn_propose(net, 1, "s");
  tn_settle(net);
  compact(net, 1, "snap");
  tn_isolate(net, 3, false);
  net->drop_type[RAFT_MSG_SNAP] = true;
  tn_tick(net, 3);
  size_t sent = net->delivered[RAFT_MSG_SNAP];
  assert_int_equal(sent, 0);
  raft_report_snapshot(net->r[1], 3, false);
  net->drop_type[RAFT_MSG_SNAP] = false;
  tn_tick(net, 3);
  assert_int_equal(net->snapshots_applied[3], 1);
  assert_int_equal(tn_status(net, 3).commit, tn_status(net, 1).commit);
  raft_report_snapshot(net->r[1], 3, true); /* late report: ignored */
  raft_report_unreachable(net->r[1], 3);
  tn_propose(net, 1, "z");
  tn_tick(net, 2);
  assert_true(tn_has_applied(net, 3, "z"));
  tn_free(net);
  free(net);
}

/* raft_compact refuses indexes beyond applied or already compacted; the snapshot records
 * the membership as of its index. */
static void test_compact_bounds_and_conf(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  tn_propose(net, 1, "a");
  tn_settle(net);
  assert_int_equal(raft_compact(net->r[1], 5, NULL, 0), CETCD_EINVAL);
  assert_int_equal(raft_compact(net->r[1], 1, NULL, 0), 0);
  assert_int_equal(raft_compact(net->r[1], 1, NULL, 0), CETCD_ERAFTCOMPACTED);
  assert_int_equal(tn_conf(net, 1, RAFT_CC_ADD_LEARNER, 4), 0);
  tn_settle(net);
  assert_int_equal(tn_conf(net, 1, RAFT_CC_REMOVE_NODE, 3), 0);
  tn_settle(net);
  raft_status_t st = tn_status(net, 1);
  assert_int_equal(st.applied, 4);
  /* At 3 the learner was added but 3 not yet removed. */
  assert_int_equal(raft_compact(net->r[1], 3, NULL, 0), 0);
  const raft_snapshot_t *s = raft_last_snapshot(net->r[1]);
  assert_int_equal(s->n_voters, 3);
  assert_int_equal(s->n_learners, 1);
  assert_int_equal(s->learners[0], 4);
  assert_int_equal(raft_compact(net->r[1], 4, NULL, 0), 0);
  s = raft_last_snapshot(net->r[1]);
  assert_int_equal(s->n_voters, 2);
  tn_free(net);
  free(net);
}

/* A member restarted from a snapshot plus later entries takes its membership from the
 * snapshot and continues. */
static void test_restart_from_snapshot(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 1, &o);
  tn_elect(net, 1);
  tn_propose(net, 1, "a");
  tn_propose(net, 1, "b");
  tn_settle(net);
  uint64_t voters[] = {1};
  raft_snapshot_t snap = {
      .index = 2, .term = 1, .voters = voters, .n_voters = 1, .data = (const uint8_t *)"S", .len = 1};
  raft_entry_t e3 = {.term = 1, .index = 3, .data = (const uint8_t *)"b", .len = 1};
  raft_restore_t rs = {
      .hs = {.term = 1, .vote = 1, .commit = 3}, .snapshot = &snap, .entries = &e3, .n_entries = 1};
  raft_free(net->r[1]);
  net->r[1] = tn_make(net, 1, 1, &o, &rs);
  assert_non_null(net->r[1]);
  net->n_applied[1] = 0;
  tn_settle(net);
  assert_int_equal(net->n_applied[1], 1);
  assert_string_equal(tn_last_data(net, 1), "b");
  assert_int_equal(tn_status(net, 1).first_index, 3);
  tn_tick(net, 30);
  assert_int_equal(tn_leader(net), 1);
  tn_free(net);
  free(net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_snapshot_to_far_behind_follower),
      cmocka_unit_test(test_snapshot_report_failure),
      cmocka_unit_test(test_compact_bounds_and_conf),
      cmocka_unit_test(test_restart_from_snapshot),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
