/* Raft elections: single member, three members, split votes, pre-vote, check-quorum, leader
 * stickiness, learners. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "raft_test_util.h"

/* A single voter becomes leader as soon as it campaigns, and commits its empty entry. */
static void test_single_node_leader(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 1, &o);
  tn_elect(net, 1);
  raft_status_t st = tn_status(net, 1);
  assert_int_equal(st.role, RAFT_LEADER);
  assert_int_equal(st.term, 1);
  assert_int_equal(st.commit, 1);
  assert_int_equal(tn_propose(net, 1, "a"), 0);
  tn_settle(net);
  assert_string_equal(tn_last_data(net, 1), "a");
  tn_free(net);
  /* Ticks alone elect it too, with pre-vote. */
  o.pre_vote = true;
  tn_init(net, 1, &o);
  tn_tick(net, 20);
  assert_int_equal(tn_status(net, 1).role, RAFT_LEADER);
  assert_int_equal(tn_status(net, 1).term, 1);
  tn_free(net);
  free(net);
}

/* Three members elect exactly one leader from ticks alone; the others follow it. */
static void test_three_nodes_elect_one(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  for (int pv = 0; pv < 2; pv++) {
    tn_opts_t o = {.pre_vote = pv, .check_quorum = pv};
    tn_init(net, 3, &o);
    tn_tick(net, 30);
    assert_int_equal(tn_count_leaders(net), 1);
    uint64_t l = tn_leader(net);
    for (uint64_t id = 1; id <= 3; id++) {
      raft_status_t st = tn_status(net, id);
      assert_int_equal(st.lead, l);
      assert_int_equal(st.term, tn_status(net, l).term);
    }
    /* Stable: more ticks keep the same leader and term. */
    uint64_t term = tn_status(net, l).term;
    tn_tick(net, 100);
    assert_int_equal(tn_leader(net), l);
    assert_int_equal(tn_status(net, l).term, term);
    tn_free(net);
  }
  free(net);
}

/* Two candidates splitting the vote of four members: nobody wins that term; a later
 * election resolves it with exactly one leader. */
static void test_split_vote(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 4, &o);
  net->cut[1][4] = net->cut[4][1] = true;
  net->cut[2][3] = net->cut[3][2] = true;
  raft_campaign(net->r[1]);
  raft_campaign(net->r[2]);
  tn_settle(net);
  assert_int_equal(tn_status(net, 1).role, RAFT_CANDIDATE);
  assert_int_equal(tn_status(net, 2).role, RAFT_CANDIDATE);
  assert_int_equal(tn_status(net, 1).term, 1);
  assert_int_equal(tn_count_leaders(net), 0);
  tn_heal(net);
  tn_tick(net, 40);
  assert_int_equal(tn_count_leaders(net), 1);
  assert_true(tn_status(net, tn_leader(net)).term >= 2);
  tn_free(net);
  free(net);
}

/* With pre-vote, a partitioned member does not inflate its term, and rejoining does not
 * depose the leader. Without pre-vote it does. */
static void test_pre_vote_no_term_inflation(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.pre_vote = true};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  assert_int_equal(tn_leader(net), 1);
  uint64_t term = tn_status(net, 1).term;
  tn_isolate(net, 3, true);
  tn_tick(net, 200);
  assert_int_equal(tn_status(net, 3).term, term);
  assert_int_not_equal(tn_status(net, 3).role, RAFT_CANDIDATE);
  tn_isolate(net, 3, false);
  tn_tick(net, 5);
  assert_int_equal(tn_leader(net), 1);
  assert_int_equal(tn_status(net, 1).term, term);
  assert_int_equal(tn_status(net, 3).lead, 1);
  tn_free(net);

  o.pre_vote = false;
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  tn_isolate(net, 3, true);
  tn_tick(net, 200);
  assert_true(tn_status(net, 3).term > term + 5);
  tn_free(net);
  free(net);
}

/* With check-quorum an isolated leader steps down after an election timeout, and the
 * majority elects a new one. */
static void test_check_quorum_steps_down(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.check_quorum = true, .pre_vote = true};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  tn_isolate(net, 1, true);
  tn_tick(net, 20); /* at most two election timeouts */
  assert_int_equal(tn_status(net, 1).role, RAFT_FOLLOWER);
  tn_tick(net, 30);
  uint64_t l = tn_leader(net);
  assert_true(l == 2 || l == 3);
  tn_isolate(net, 1, false);
  tn_tick(net, 5);
  assert_int_equal(tn_status(net, 1).lead, l);
  tn_free(net);
  free(net);
}

/* Leader stickiness: with check-quorum, members that hear from the leader ignore a
 * candidate's vote request. */
static void test_leader_stickiness(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.check_quorum = true};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  uint64_t term = tn_status(net, 1).term;
  net->cut[1][3] = true; /* 3 stops hearing the leader and campaigns */
  raft_campaign(net->r[3]);
  tn_settle(net);
  assert_int_equal(tn_status(net, 2).term, term);
  assert_int_equal(tn_status(net, 2).lead, 1);
  assert_int_equal(tn_status(net, 1).role, RAFT_LEADER);
  tn_free(net);
  free(net);
}

/* Learners never campaign and their votes are not requested. */
static void test_learner_does_not_vote(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.n_learners = 1};
  tn_init(net, 4, &o); /* voters 1..3, learner 4 */
  assert_int_equal(raft_campaign(net->r[4]), CETCD_EINVAL);
  tn_isolate(net, 1, true);
  tn_isolate(net, 2, true);
  tn_tick(net, 100);
  assert_int_equal(tn_status(net, 4).role, RAFT_FOLLOWER);
  assert_int_equal(tn_status(net, 4).term, 0);
  assert_int_equal(net->delivered[RAFT_MSG_VOTE_RESP], 0); /* 3 asked nobody reachable */
  tn_heal(net);
  tn_elect(net, 3);
  assert_int_equal(tn_leader(net), 3);
  assert_int_equal(net->delivered[RAFT_MSG_VOTE_RESP], 2);
  assert_int_equal(tn_status(net, 4).lead, 3);
  assert_false(tn_status(net, 4).voter);
  tn_free(net);
  free(net);
}

/* At most one leader per term, observed across many ticks with flapping partitions; the
 * four connected members have a leader by the end of every 50-tick partition, and isolating
 * a leader makes them elect another (in a later term). */
static void test_election_safety_flapping(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.pre_vote = true, .check_quorum = true};
  tn_init(net, 5, &o);
  uint64_t leader_of[512] = {0};
  uint64_t rng = 42, isolated = 0;
  int windows_led = 0, terms_led = 0;
  for (int t = 0; t < 2000; t++) {
    if (t % 50 == 0) {
      tn_heal(net);
      isolated = 1 + tn_rand(&rng) % 5;
      tn_isolate(net, isolated, true);
    }
    tn_tick(net, 1);
    bool majority_led = false;
    for (uint64_t id = 1; id <= 5; id++) {
      raft_status_t st = tn_status(net, id);
      if (st.role != RAFT_LEADER) continue;
      assert_true(st.term < 512);
      if (leader_of[st.term]) assert_int_equal(leader_of[st.term], id);
      if (!leader_of[st.term]) terms_led++;
      leader_of[st.term] = id;
      if (id != isolated) majority_led = true;
    }
    if (t % 50 == 49 && majority_led) windows_led++;
  }
  assert_int_equal(windows_led, 2000 / 50);
  assert_true(terms_led >= 2);
  tn_free(net);
  free(net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_single_node_leader),
      cmocka_unit_test(test_three_nodes_elect_one),
      cmocka_unit_test(test_split_vote),
      cmocka_unit_test(test_pre_vote_no_term_inflation),
      cmocka_unit_test(test_check_quorum_steps_down),
      cmocka_unit_test(test_leader_stickiness),
      cmocka_unit_test(test_learner_does_not_vote),
      cmocka_unit_test(test_election_safety_flapping),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
