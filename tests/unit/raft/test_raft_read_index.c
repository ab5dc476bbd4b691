/* ReadIndex: a read is confirmed by a heartbeat quorum and returns the leader's commit index;
 * forwarded reads; a new leader waits for its first commit; no quorum, no read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "raft_test_util.h"

static int read_at(tnet_t *net, uint64_t id, const char *ctx) {
  return raft_read_index(net->r[id], (const uint8_t *)ctx, strlen(ctx));
}

/* The leader answers with its commit index after one heartbeat round. */
static void test_read_index_leader(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {.pre_vote = true, .check_quorum = true};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  tn_propose(net, 1, "a");
  tn_propose(net, 1, "b");
  tn_settle(net);
  size_t hb = net->delivered[RAFT_MSG_HEARTBEAT_RESP];
  assert_int_equal(read_at(net, 1, "r1"), 0);
  tn_settle(net);
  assert_true(net->delivered[RAFT_MSG_HEARTBEAT_RESP] > hb);
  assert_int_equal(net->n_reads[1], 1);
  assert_int_equal(net->reads[1][0].index, 3);
  assert_string_equal(net->read_ctx[1][0], "r1");
  tn_free(net);
  free(net);
}

/* Without a heartbeat quorum the read waits; it completes once the quorum is back. */
static void test_read_index_needs_quorum(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  tn_elect(net, 1);
  tn_isolate(net, 1, true);
  assert_int_equal(read_at(net, 1, "r"), 0);
  tn_settle(net);
  tn_tick(net, 3);
  assert_int_equal(net->n_reads[1], 0);
  tn_isolate(net, 1, false);
  tn_tick(net, 2); /* the next heartbeat carries the pending read's context */
  assert_int_equal(net->n_reads[1], 1);
  assert_int_equal(net->reads[1][0].index, 1);
  tn_free(net);
  free(net);
}

/* A follower's read goes to the leader and comes back with the leader's commit index. */
static void test_read_index_follower(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  assert_int_equal(read_at(net, 2, "x"), CETCD_ENOLEADER);
  tn_elect(net, 1);
  tn_propose(net, 1, "a");
  tn_settle(net);
  assert_int_equal(read_at(net, 2, "f1"), 0);
  tn_settle(net);
  assert_int_equal(net->n_reads[2], 1);
  assert_int_equal(net->n_reads[1], 0);
  assert_int_equal(net->reads[2][0].index, 2);
  assert_string_equal(net->read_ctx[2][0], "f1");
  tn_free(net);
  free(net);
}

/* A single voter answers at once. */
static void test_read_index_single(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 1, &o);
  tn_elect(net, 1);
  assert_int_equal(read_at(net, 1, "s"), 0);
  tn_settle(net);
  assert_int_equal(net->n_reads[1], 1);
  assert_int_equal(net->reads[1][0].index, 1);
  tn_free(net);
  free(net);
}

/* A new leader that has not committed an entry of its term yet holds reads until it has. */
static void test_read_index_waits_for_term_commit(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  net->drop_type[RAFT_MSG_APP_RESP] = true;
  tn_elect(net, 1);
  assert_int_equal(tn_leader(net), 1);
  assert_int_equal(tn_status(net, 1).commit, 0);
  assert_int_equal(read_at(net, 1, "early"), 0);
  tn_settle(net);
  assert_int_equal(net->n_reads[1], 0);
  net->drop_type[RAFT_MSG_APP_RESP] = false;
  tn_tick(net, 3);
  assert_int_equal(net->n_reads[1], 1);
  assert_int_equal(net->reads[1][0].index, 1);
  tn_free(net);
  free(net);
}

/* Several queued reads are all released by the ack of the newest one, in order. */
static void test_read_index_batch(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 5, &o);
  tn_elect(net, 1);
  net->drop_type[RAFT_MSG_HEARTBEAT_RESP] = true;
  read_at(net, 1, "q1");
  tn_propose(net, 1, "w");
  tn_settle(net);
  read_at(net, 1, "q2");
  tn_settle(net);
  assert_int_equal(net->n_reads[1], 0);
  net->drop_type[RAFT_MSG_HEARTBEAT_RESP] = false;
  tn_tick(net, 1);
  assert_int_equal(net->n_reads[1], 2);
  assert_string_equal(net->read_ctx[1][0], "q1");
  assert_int_equal(net->reads[1][0].index, 1);
  assert_string_equal(net->read_ctx[1][1], "q2");
  assert_int_equal(net->reads[1][1].index, 2);
  tn_free(net);
  free(net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read_index_leader),
      cmocka_unit_test(test_read_index_needs_quorum),
      cmocka_unit_test(test_read_index_follower),
      cmocka_unit_test(test_read_index_single),
      cmocka_unit_test(test_read_index_waits_for_term_commit),
      cmocka_unit_test(test_read_index_batch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
