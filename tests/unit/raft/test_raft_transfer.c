/* Leadership transfer: to an up-to-date member, to a lagging one, proposals dropped while it
 * runs, abandoned after an election timeout, forwarded from a follower; the choice of the
 * most caught-up voter (raft_best_transferee) and raft_is_voter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "raft_test_util.h"

/* Transfer to an up-to-date follower: it campaigns at once (despite leases) and wins. */
static void test_transfer_basic(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.pre_vote = true, .check_quorum = true};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  uint64_t term = tn_status(net, 1).term;
  assert_int_equal(raft_transfer_leader(net->r[1], 3), 0);
  tn_settle(net);
  assert_int_equal(tn_leader(net), 3);
  assert_int_equal(tn_status(net, 3).term, term + 1);
  assert_int_equal(tn_status(net, 1).lead, 3);
  assert_int_equal(tn_propose(net, 1, "after"), 0);
  tn_settle(net);
  assert_string_equal(tn_last_data(net, 2), "after");
  tn_free(net);
  free(net);
}

/* A lagging transferee is caught up first; a follower's request is forwarded. */
static void test_transfer_lagging_and_forwarded(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  tn_isolate(net, 3, true);
  for (int i = 0; i < 10; i++) tn_propose(net, 1, "x");
  tn_settle(net);
  tn_isolate(net, 3, false);
  assert_int_equal(raft_transfer_leader(net->r[2], 3), 0); /* asked at a follower */
  tn_settle(net);
  assert_int_equal(tn_leader(net), 3);
  assert_int_equal(tn_status(net, 3).commit, 12);
  tn_free(net);
  free(net);
}

/* While a transfer runs, proposals are dropped; it is abandoned after an election timeout. */
static void test_transfer_drops_proposals_then_aborts(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  tn_isolate(net, 3, true);
  assert_int_equal(raft_transfer_leader(net->r[1], 3), 0);
  tn_settle(net);
  raft_status_t st = tn_status(net, 1);
  assert_int_equal(st.lead_transferee, 3);
  assert_int_equal(tn_propose(net, 1, "no"), CETCD_EPROPDROPPED);
  tn_tick(net, 10);
  assert_int_equal(tn_status(net, 1).lead_transferee, 0);
  assert_int_equal(tn_leader(net), 1);
  assert_int_equal(tn_propose(net, 1, "yes"), 0);
  tn_settle(net);
  assert_string_equal(tn_last_data(net, 2), "yes");
  /* Transfers to self or to an unknown member are ignored. */
  raft_transfer_leader(net->r[1], 1);
  raft_transfer_leader(net->r[1], 7);
  assert_int_equal(tn_status(net, 1).lead_transferee, 0);
  tn_free(net);
  free(net);
}

/* The best transferee is the voter whose log matches furthest; learners never are. */
static void test_best_transferee(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.n_learners = 1}; /* voters 1..3, learner 4 */
  tn_init(net, 4, &o);
  tn_elect(net, 1);
  uint64_t id = 99;
  assert_int_equal(raft_best_transferee(net->r[2], &id), CETCD_ENOTLEADER);
  assert_int_equal(id, RAFT_NONE);
  tn_isolate(net, 2, true);
  for (int i = 0; i < 5; i++) tn_propose(net, 1, "x");
  tn_settle(net);
  assert_int_equal(raft_best_transferee(net->r[1], &id), 0);
  assert_int_equal(id, 3); /* 2 lags; 4 is caught up but a learner */
  tn_isolate(net, 2, false);
  tn_isolate(net, 3, true);
  for (int i = 0; i < 5; i++) tn_propose(net, 1, "y");
  tn_settle(net);
  assert_int_equal(raft_best_transferee(net->r[1], &id), 0);
  assert_int_equal(id, 2);
  assert_true(raft_is_voter(net->r[2], 3));
  assert_false(raft_is_voter(net->r[2], 4));
  assert_false(raft_is_voter(net->r[2], 7));
  assert_true(raft_is_learner(net->r[2], 4));
  assert_false(raft_is_learner(net->r[2], 3));
  assert_false(raft_is_learner(net->r[2], 7));
  tn_free(net);
  free(net);
}

/* Between equally caught-up voters, one that stopped answering is not chosen. */
static void test_best_transferee_prefers_active(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.pre_vote = true, .check_quorum = true};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  tn_propose(net, 1, "x");
  tn_settle(net);
  uint64_t id = 0;
  assert_int_equal(raft_best_transferee(net->r[1], &id), 0);
  assert_int_equal(id, 2);  /* a tie goes to the first */
  tn_isolate(net, 2, true); /* 2 keeps its match index but goes silent */
  tn_tick(net, 11);         /* a check-quorum round, then a heartbeat 3 answers */
  assert_int_equal(tn_leader(net), 1);
  assert_int_equal(raft_best_transferee(net->r[1], &id), 0);
  assert_int_equal(id, 3);
  tn_free(net);
  free(net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_transfer_basic),
      cmocka_unit_test(test_transfer_lagging_and_forwarded),
      cmocka_unit_test(test_transfer_drops_proposals_then_aborts),
      cmocka_unit_test(test_best_transferee),
      cmocka_unit_test(test_best_transferee_prefers_active),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
