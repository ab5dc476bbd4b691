/* Message and conf change encoding, input validation, and the in-memory log's primitives
 * (conflict search, truncation, compaction, size limits) and inflights. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "raft/raft_int.h"
#include "raft_test_util.h"

/* Every field survives encode/decode. */
static void test_msg_roundtrip(void **state) {
  (void)state;
  raft_entry_t ents[2] = {
      {.term = 3, .index = 8, .type = RAFT_ENTRY_NORMAL, .data = (const uint8_t *)"abc", .len = 3},
      {.term = 4, .index = 9, .type = RAFT_ENTRY_CONF_CHANGE, .data = NULL, .len = 0}};
  uint64_t voters[] = {1, 2, 3}, learners[] = {9};
  raft_snapshot_t snap = {.index = 7,
                          .term = 3,
                          .voters = voters,
                          .n_voters = 3,
                          .learners = learners,
                          .n_learners = 1,
                          .data = (const uint8_t *)"SNAP",
                          .len = 4};
  raft_msg_t m = {.type = RAFT_MSG_APP,
                  .from = 1,
                  .to = 2,
                  .term = 5,
                  .log_term = 3,
                  .index = 7,
                  .commit = 6,
                  .reject = true,
                  .reject_hint = 4,
                  .entries = ents,
                  .n_entries = 2,
                  .context = (const uint8_t *)"ctx",
                  .context_len = 3,
                  .snapshot = &snap};
  buf_t b = {0};
  assert_int_equal(raft_msg_encode(&m, &b), 0);
  arena_t a;
  arena_init(&a);
  raft_msg_t d;
  assert_int_equal(raft_msg_decode(b.data, b.len, &a, &d), 0);
  assert_int_equal(d.type, RAFT_MSG_APP);
  assert_int_equal(d.from, 1);
  assert_int_equal(d.to, 2);
  assert_int_equal(d.term, 5);
  assert_int_equal(d.log_term, 3);
  assert_int_equal(d.index, 7);
  assert_int_equal(d.commit, 6);
  assert_true(d.reject);
  assert_int_equal(d.reject_hint, 4);
  assert_int_equal(d.n_entries, 2);
  assert_int_equal(d.entries[0].index, 8);
  assert_int_equal(d.entries[0].len, 3);
  assert_memory_equal(d.entries[0].data, "abc", 3);
  assert_int_equal(d.entries[1].type, RAFT_ENTRY_CONF_CHANGE);
  assert_int_equal(d.entries[1].len, 0);
  assert_int_equal(d.context_len, 3);
  assert_memory_equal(d.context, "ctx", 3);
  assert_non_null(d.snapshot);
  assert_int_equal(d.snapshot->index, 7);
  assert_int_equal(d.snapshot->n_voters, 3);
  assert_int_equal(d.snapshot->voters[2], 3);
  assert_int_equal(d.snapshot->n_learners, 1);
  assert_int_equal(d.snapshot->learners[0], 9);
  assert_memory_equal(d.snapshot->data, "SNAP", 4);
  arena_destroy(&a);
  /* Many entries (heap path) and garbage. */
  raft_entry_t many[40];
  for (int i = 0; i < 40; i++) many[i] = (raft_entry_t){.term = 1, .index = (uint64_t)i + 1};
  raft_msg_t big = {.type = RAFT_MSG_APP, .from = 1, .to = 2, .term = 1, .entries = many, .n_entries = 40};
  buf_reset(&b);
  raft_msg_encode(&big, &b);
  arena_init(&a);
  assert_int_equal(raft_msg_decode(b.data, b.len, &a, &d), 0);
  assert_int_equal(d.n_entries, 40);
  assert_int_equal(d.entries[39].index, 40);
  assert_int_equal(raft_msg_decode((const uint8_t *)"\xff\xff\xff", 3, &a, &d), CETCD_EINVAL);
  arena_destroy(&a);
  buf_free(&b);
}

/* Conf changes encode into entry data and decode back. */
static void test_conf_change_codec(void **state) {
  (void)state;
  raft_conf_change_t cc = {
      .type = RAFT_CC_ADD_LEARNER, .node_id = 42, .context = (const uint8_t *)"url", .context_len = 3};
  buf_t b = {0};
  raft_conf_change_encode(&cc, &b);
  arena_t a;
  arena_init(&a);
  raft_conf_change_t d;
  assert_int_equal(raft_conf_change_decode(b.data, b.len, &a, &d), 0);
  assert_int_equal(d.type, RAFT_CC_ADD_LEARNER);
  assert_int_equal(d.node_id, 42);
  assert_memory_equal(d.context, "url", 3);
  assert_int_equal(raft_conf_change_decode((const uint8_t *)"", 0, &a, &d), CETCD_EINVAL); /* node 0 */
  arena_destroy(&a);
  buf_free(&b);
}

/* raft_step refuses malformed input; raft_new refuses bad configs. */
static void test_validation(void **state) {
  (void)state;
  tnet_t *net = calloc(1, sizeof(*net));
  tn_opts_t o = {0};
  tn_init(net, 3, &o);
  raft_t *r = net->r[2];
  raft_entry_t gap[2] = {{.term = 1, .index = 1}, {.term = 1, .index = 3}};
  raft_msg_t m = {
      .type = RAFT_MSG_APP, .from = 1, .to = 2, .term = 1, .index = 0, .entries = gap, .n_entries = 2};
  assert_int_equal(raft_step(r, &m), CETCD_EINVAL);
  m.n_entries = 0;
  m.to = 3;
  assert_int_equal(raft_step(r, &m), CETCD_EINVAL);
  m.to = 2;
  m.from = 0;
  assert_int_equal(raft_step(r, &m), CETCD_EINVAL);
  raft_msg_t snap = {.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 1};
  assert_int_equal(raft_step(r, &snap), CETCD_EINVAL);
  raft_conf_change_t cc = {.type = RAFT_CC_ADD_VOTER, .node_id = 0};
  assert_int_equal(raft_propose_conf_change(r, &cc), CETCD_EINVAL);
  raft_config_t bad = {.id = 0};
  assert_null(raft_new(&bad));
  bad.id = 1;
  assert_null(raft_new(&bad)); /* no random source */
  /* A Ready must be advanced before the next one. */
  raft_campaign(r);
  raft_ready_t rd, rd2;
  assert_int_equal(raft_ready(r, &rd), 0);
  assert_false(raft_has_ready(r));
  assert_int_equal(raft_ready(r, &rd2), CETCD_EINVAL);
  raft_advance(r, &rd);
  tn_free(net);
  free(net);
}

/* With proposals forwarding disabled a follower says so. */
static void test_no_forwarding(void **state) {
  (void)state;
  uint64_t voters[] = {1, 2}, rng = 1;
  raft_config_t cfg = {.id = 2,
                       .voters = voters,
                       .n_voters = 2,
                       .disable_proposal_forwarding = true,
                       .rand = tn_rand,
                       .rand_ctx = &rng};
  raft_t *r = raft_new(&cfg);
  raft_msg_t hb = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 1};
  assert_int_equal(raft_step(r, &hb), 0);
  assert_int_equal(raft_propose(r, (const uint8_t *)"x", 1), CETCD_ENOTLEADER);
  assert_int_equal(raft_read_index(r, (const uint8_t *)"x", 1), CETCD_ENOTLEADER);
  raft_free(r);
}

/* Log primitives: conflict search by term, truncation, compaction with amortized storage. */
static void test_log_primitives(void **state) {
  (void)state;
  raft_ptrvec_t gy = {0};
  raft_log_t l;
  raft_log_init(&l, 0, 0, &gy);
  /* terms: 1 1 2 2 2 4 */
  uint64_t terms[] = {1, 1, 2, 2, 2, 4};
  for (int i = 0; i < 6; i++) raft_log_append_one(&l, terms[i], RAFT_ENTRY_NORMAL, (const uint8_t *)"d", 1);
  assert_int_equal(raft_log_last(&l), 6);
  assert_int_equal(raft_log_find_conflict_by_term(&l, 6, 3), 5);
  assert_int_equal(raft_log_find_conflict_by_term(&l, 6, 1), 2);
  assert_int_equal(raft_log_find_conflict_by_term(&l, 6, 0), 0);
  assert_int_equal(raft_log_find_conflict_by_term(&l, 9, 4), 6);
  assert_true(raft_log_up_to_date(&l, 6, 4));
  assert_false(raft_log_up_to_date(&l, 5, 4));
  assert_true(raft_log_up_to_date(&l, 1, 5));
  /* A follower append that conflicts at 4 replaces the tail. */
  raft_entry_t ents[2] = {{.term = 3, .index = 4, .data = (const uint8_t *)"x", .len = 1},
                          {.term = 3, .index = 5, .data = (const uint8_t *)"y", .len = 1}};
  uint64_t lastnew;
  l.stable = 6;
  assert_true(raft_log_maybe_append(&l, 3, 2, 5, ents, 2, &lastnew));
  assert_int_equal(lastnew, 5);
  assert_int_equal(raft_log_last(&l), 5);
  assert_int_equal(l.stable, 3);
  assert_int_equal(l.committed, 5);
  assert_int_equal(raft_log_term0(&l, 4), 3);
  assert_false(raft_log_maybe_append(&l, 5, 9, 5, NULL, 0, &lastnew));
  /* An already-present prefix is not truncated (stale or duplicate append). */
  assert_true(raft_log_maybe_append(&l, 3, 2, 5, ents, 1, &lastnew));
  assert_int_equal(raft_log_last(&l), 5);
  /* Compaction and size limits. */
  l.applied = 5;
  raft_log_compact(&l, 3);
  assert_int_equal(raft_log_first(&l), 4);
  assert_int_equal(raft_log_term0(&l, 3), 2);
  uint64_t t;
  assert_int_equal(raft_log_term(&l, 2, &t), CETCD_ERAFTCOMPACTED);
  assert_int_equal(raft_log_limit(&l, 4, 1), 1);
  assert_int_equal(raft_log_limit(&l, 4, 1000), 2);
  for (int i = 0; i < 5000; i++) raft_log_append_one(&l, 5, RAFT_ENTRY_NORMAL, NULL, 0);
  l.committed = l.applied = raft_log_last(&l);
  for (uint64_t i = 10; i < 5000; i += 7) raft_log_compact(&l, i);
  assert_true(l.cap <= 16384);
  assert_int_equal(raft_log_term0(&l, 5005), 5);
  raft_log_destroy(&l);
  raft_ptrvec_free_all(&gy);
  free(gy.v);
}

/* Inflights ring: fills, frees by index and the first one. */
static void test_inflights(void **state) {
  (void)state;
  uint64_t buf[3];
  raft_inflights_t in = {.buf = buf, .cap = 3};
  raft_inflights_add(&in, 5);
  raft_inflights_add(&in, 7);
  raft_inflights_add(&in, 9);
  assert_true(raft_inflights_full(&in));
  raft_inflights_free_le(&in, 7);
  assert_int_equal(in.count, 1);
  raft_inflights_add(&in, 11);
  raft_inflights_add(&in, 13);
  assert_true(raft_inflights_full(&in));
  raft_inflights_free_first(&in);
  assert_int_equal(in.count, 2);
  raft_inflights_free_le(&in, 100);
  assert_int_equal(in.count, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_msg_roundtrip),  cmocka_unit_test(test_conf_change_codec),
      cmocka_unit_test(test_validation),     cmocka_unit_test(test_no_forwarding),
      cmocka_unit_test(test_log_primitives), cmocka_unit_test(test_inflights),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
