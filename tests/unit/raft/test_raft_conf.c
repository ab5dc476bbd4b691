/* Membership changes: add and remove voters, one change at a time, learners that replicate
 * but do not vote, promotion, removing the leader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "raft_test_util.h"

/* Starts member id as a joiner configured with voters 1..id (learner if as_learner). */
static void join(tnet_t *net, uint64_t id, bool as_learner) {
  tn_opts_t o = {.n_learners = as_learner ? 1 : 0};
  net->n = id;
  net->r[id] = tn_make(net, id, id, &o, NULL);
  assert_non_null(net->r[id]);
}

/* An added voter gets the log and counts in the quorum; changes go one at a time. */
static void test_add_voter(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  tn_propose(net, 1, "before");
  tn_settle(net);
  join(net, 4, false);
  assert_int_equal(tn_conf(net, 1, RAFT_CC_ADD_VOTER, 4), 0);
  assert_int_equal(tn_conf(net, 1, RAFT_CC_ADD_VOTER, 5), CETCD_ECONFPENDING);
  tn_settle(net);
  assert_int_equal(tn_status(net, 1).n_voters, 4);
  assert_int_equal(tn_status(net, 4).n_voters, 4);
  assert_true(tn_status(net, 4).voter);
  assert_string_equal(tn_last_data(net, 4), "before");
  /* With 4 voters, two members are not a quorum. */
  tn_isolate(net, 2, true);
  tn_isolate(net, 3, true);
  tn_propose(net, 1, "stuck");
  tn_settle(net);
  assert_false(tn_has_applied(net, 4, "stuck"));
  tn_isolate(net, 2, false);
  tn_tick(net, 2);
  assert_true(tn_has_applied(net, 4, "stuck"));
  /* The next change is accepted once the first is applied; a follower forwards it. */
  assert_int_equal(tn_conf(net, 2, RAFT_CC_ADD_LEARNER, 5), 0);
  tn_settle(net);
  assert_int_equal(tn_status(net, 1).n_learners, 1);
  tn_free(net);
  free(net);
}

/* A committed change the state machine refuses (no longer valid when applied) changes
 * nothing in raft either, on every member; the next change goes through. */
static void test_refused_change_is_a_noop(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  net->refuse_conf_node = 4;
  assert_int_equal(tn_conf(net, 1, RAFT_CC_ADD_LEARNER, 4), 0);
  tn_settle(net);
  for (uint64_t id = 1; id <= 3; id++) {
    assert_int_equal(tn_status(net, id).n_learners, 0);
    assert_int_equal(tn_status(net, id).n_voters, 3);
  }
  net->refuse_conf_node = 0;
  join(net, 4, true);
  assert_int_equal(tn_conf(net, 1, RAFT_CC_ADD_LEARNER, 4), 0);
  tn_settle(net);
  assert_int_equal(tn_status(net, 1).n_learners, 1);
  assert_int_equal(tn_status(net, 2).n_learners, 1);
  tn_free(net);
  free(net);
}

/* A removed voter no longer counts; removing the leader makes it step down. */
static void test_remove_voter_and_leader(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  assert_int_equal(tn_conf(net, 1, RAFT_CC_REMOVE_NODE, 3), 0);
  tn_settle(net);
  assert_int_equal(tn_status(net, 1).n_voters, 2);
  assert_false(tn_status(net, 3).voter);
  tn_isolate(net, 3, true);
  tn_propose(net, 1, "two");
  tn_settle(net);
  assert_true(tn_has_applied(net, 2, "two"));
  /* 3 no longer campaigns. */
  tn_tick(net, 50);
  assert_int_equal(tn_status(net, 3).role, RAFT_FOLLOWER);
  /* Remove the leader itself: it steps down and 2 takes over alone. */
  assert_int_equal(tn_conf(net, 1, RAFT_CC_REMOVE_NODE, 1), 0);
  tn_settle(net);
  assert_int_not_equal(tn_status(net, 1).role, RAFT_LEADER);
  tn_isolate(net, 1, true);
  tn_tick(net, 30);
  assert_int_equal(tn_leader(net), 2);
  assert_int_equal(tn_status(net, 2).n_voters, 1);
  tn_propose(net, 2, "alone");
  tn_settle(net);
  assert_true(tn_has_applied(net, 2, "alone"));
  tn_free(net);
  free(net);
}

/* A learner replicates but neither votes nor counts for commit; promoted, it does. */
static void test_learner_and_promote(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  join(net, 4, true);
  assert_int_equal(tn_conf(net, 1, RAFT_CC_ADD_LEARNER, 4), 0);
  tn_settle(net);
  assert_int_equal(tn_status(net, 1).n_learners, 1);
  assert_int_equal(tn_status(net, 1).n_voters, 3);
  tn_propose(net, 1, "l1");
  tn_settle(net);
  assert_true(tn_has_applied(net, 4, "l1"));
  assert_false(tn_status(net, 4).voter);
  /* Leader plus learner are not a quorum of 3 voters. */
  tn_isolate(net, 2, true);
  tn_isolate(net, 3, true);
  tn_propose(net, 1, "l2");
  tn_settle(net);
  assert_false(tn_has_applied(net, 4, "l2"));
  tn_heal(net);
  tn_tick(net, 2);
  assert_true(tn_has_applied(net, 4, "l2"));
  /* Promote: now 4 voters, and 1 + 4 + one more make a quorum. */
  assert_int_equal(tn_conf(net, 1, RAFT_CC_PROMOTE, 4), 0);
  tn_settle(net);
  assert_int_equal(tn_status(net, 1).n_voters, 4);
  assert_true(tn_status(net, 4).voter);
  tn_isolate(net, 3, true);
  tn_propose(net, 1, "l3");
  tn_settle(net);
  assert_true(tn_has_applied(net, 4, "l3"));
  /* A promoted learner can win an election. */
  tn_heal(net);
  tn_elect(net, 4);
  assert_int_equal(tn_leader(net), 4);
  tn_free(net);
  free(net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_add_voter),
      cmocka_unit_test(test_refused_change_is_a_noop),
      cmocka_unit_test(test_remove_voter_and_leader),
      cmocka_unit_test(test_learner_and_promote),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
