/* mvcc: deferred LMDB commits (commit_interval_ms). Committed batches wait in the open LMDB
 * transaction until mvcc_flush; reads on the loop thread see them, a rolled-back batch
 * keeps the batches before it, mvcc_close commits them, and a snapshot view (another
 * thread's reader) sees only what was flushed. */
#include "mvcc_test_util.h"

static int deferred_calls;

/* on_deferred hook: counts how often the owner is asked to flush. */
static void on_deferred(void *ctx) {
  (void)ctx;
  deferred_calls++;
}

/* Opens a store in dir with deferred commits. */
static mvcc_store_t *open_deferred(const char *dir) {
  mvcc_opts_t o = {.commit_interval_ms = 20, .on_deferred = on_deferred};
  return tu_open(dir, &o);
}

/* Counts the records of the key bucket in a fresh read view (what another thread sees). */
static int count_rec(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
  (void)k, (void)kl, (void)v, (void)vl;
  (*(int *)ctx)++;
  return 0;
}
static int committed_records(mvcc_store_t *s) {
  mvcc_snap_t *sn;
  assert_int_equal(mvcc_snap_open(s, &sn), 0);
  int n = 0;
  assert_int_equal(mvcc_snap_foreach(sn, "key", count_rec, &n), 0);
  mvcc_snap_close(sn);
  return n;
}

static void test_batches_share_one_commit(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  mvcc_store_t *s = open_deferred(dir);
  arena_t a;
  arena_init(&a);
  deferred_calls = 0;
  assert_int_equal(mvcc_batch_begin(s), 0);
  tu_put(s, "a", "1");
  assert_int_equal(mvcc_batch_commit(s, 10), 0);
  assert_int_equal(mvcc_batch_begin(s), 0);
  tu_put(s, "b", "2");
  assert_int_equal(mvcc_batch_commit(s, 11), 0);
  assert_int_equal(deferred_calls, 1); /* asked once for both */
  assert_true(mvcc_flush_pending(s));
  assert_int_equal(mvcc_consistent_index(s), 11);
  tu_assert_kv(tu_get(s, &a, "b", 0), "b", "2", 3, 3, 1); /* the loop thread reads them */
  assert_int_equal(committed_records(s), 0);              /* another reader does not yet */
  /* a batch rolled back inside the deferred transaction keeps the batches before it */
  assert_int_equal(mvcc_batch_begin(s), 0);
  tu_put(s, "c", "3");
  mvcc_batch_abort(s);
  assert_null(tu_get(s, &a, "c", 0));
  tu_assert_kv(tu_get(s, &a, "a", 0), "a", "1", 2, 2, 1);
  assert_int_equal(mvcc_rev(s), 3);
  assert_int_equal(mvcc_consistent_index(s), 11);
  /* no flush while a batch is open */
  assert_int_equal(mvcc_batch_begin(s), 0);
  assert_int_equal(mvcc_flush(s), 0);
  assert_true(mvcc_flush_pending(s));
  assert_int_equal(mvcc_batch_commit(s, 12), 0);
  assert_int_equal(mvcc_flush(s), 0);
  assert_false(mvcc_flush_pending(s));
  assert_int_equal(committed_records(s), 2);
  /* the next deferred batch asks again; close commits it */
  assert_int_equal(mvcc_batch_begin(s), 0);
  tu_put(s, "d", "4");
  assert_int_equal(mvcc_batch_commit(s, 13), 0);
  assert_int_equal(deferred_calls, 2);
  mvcc_close(s);
  s = open_deferred(dir);
  tu_assert_kv(tu_get(s, &a, "d", 0), "d", "4", 4, 4, 1);
  assert_int_equal(mvcc_consistent_index(s), 13);
  assert_int_equal(mvcc_rev(s), 4);
  mvcc_close(s);
  arena_destroy(&a);
  tu_rmdir(dir);
}

/* Defrag commits the deferred batches first and keeps them. */
static void test_defrag_flushes(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  mvcc_store_t *s = open_deferred(dir);
  arena_t a;
  arena_init(&a);
  for (int i = 0; i < 50; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%02d", i);
    assert_int_equal(mvcc_batch_begin(s), 0);
    tu_put(s, k, "v");
    assert_int_equal(mvcc_batch_commit(s, (uint64_t)i + 1), 0);
  }
  assert_true(mvcc_flush_pending(s));
  assert_int_equal(mvcc_defrag(s, NULL, NULL), 0);
  assert_false(mvcc_flush_pending(s));
  assert_int_equal(committed_records(s), 50);
  tu_assert_kv(tu_get(s, &a, "k49", 0), "k49", "v", 51, 51, 1);
  mvcc_close(s);
  arena_destroy(&a);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_batches_share_one_commit),
      cmocka_unit_test(test_defrag_flushes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
