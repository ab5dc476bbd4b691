/* The writer thread driven from a libuv loop: group commit, durability callbacks,
 * sequential appends, write failures, close, deferred wake-ups with the loop
 * writing lone entries itself (wal_flush), and asynchronous sync requests (wal_sync_async,
 * the cluster path: hard states and entries, reported by ticket). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
// clang-format off
#include <cmocka.h>
// clang-format on

#include "cetcd/errors.h"
#include "wal/wal.h"
#include "wal_test_util.h"

typedef struct ctx {
  uv_loop_t loop;
  wal_t *w;
  uint64_t durable; /* last index reported */
  uint64_t ncalls;  /* on_durable calls */
  int err;          /* on_error's code */
  int nerr;         /* on_error calls */
  uint64_t stop_at; /* stop the loop when this index is durable */
  uint64_t next;    /* next index to append (sequential and idle tests) */
  uint64_t last;    /* last index to append */
  uv_idle_t idle;
} ctx_t;

static void on_durable(void *p, uint64_t index) {
  ctx_t *c = p;
  assert_true(index >= c->durable); /* no overwrites in these tests */
  c->durable = index;
  c->ncalls++;
  if (index == c->stop_at) uv_stop(&c->loop);
}

static void on_error(void *p, int err) {
  ctx_t *c = p;
  c->err = err;
  c->nerr++;
  uv_stop(&c->loop);
}

static void open_ctx(ctx_t *c, const char *dir) {
  memset(c, 0, sizeof(*c));
  assert_int_equal(uv_loop_init(&c->loop), 0);
  wal_options_t o = {
      .segment_size = 1 << 20, .loop = &c->loop, .on_durable = on_durable, .on_error = on_error, .ctx = c};
  assert_int_equal(wal_open(dir, &o, NULL, &c->w), 0);
}

/* Closes the WAL, lets the loop close the async handle and closes the loop. */
static int close_ctx(ctx_t *c) {
  int rc = wal_close(c->w);
  c->w = NULL;
  assert_int_equal(uv_run(&c->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&c->loop), 0);
  return rc;
}

static void test_group_commit_burst(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  ctx_t c;
  open_ctx(&c, dir);
  char data[100];
  memset(data, 'x', sizeof(data));
  c.stop_at = 1000;
  for (uint64_t i = 1; i <= 1000; i++) assert_int_equal(wal_append_entry(c.w, i, 1, data, sizeof(data)), 0);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  assert_int_equal(c.durable, 1000);
  assert_int_equal(c.nerr, 0);
  uint64_t fs = wal_fsync_count(c.w);
  assert_true(fs >= 1);
  assert_true(fs <= 50);
  assert_true(c.ncalls <= fs);
  assert_int_equal(close_ctx(&c), 0);
  coll_t col = {0};
  replay_dir(dir, &col);
  assert_int_equal(col.n, 1000);
  assert_int_equal(col.e[999].index, 1000);
  coll_free(&col);
  rm_tmpdir(dir);
}

/* Appends keep arriving from the loop (a few per iteration) while the writer syncs: one
 * fdatasync serves everything that arrived meanwhile. */
static void idle_cb(uv_idle_t *h) {
  ctx_t *c = h->data;
  char data[64] = "v";
  for (int k = 0; k < 3 && c->next <= c->last; k++)
    assert_int_equal(wal_append_entry(c->w, c->next++, 1, data, sizeof(data)), 0);
  if (c->next > c->last) uv_idle_stop(h);
}

static void test_group_commit_streaming(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  ctx_t c;
  open_ctx(&c, dir);
  c.next = 1;
  c.last = c.stop_at = 1000;
  uv_idle_init(&c.loop, &c.idle);
  c.idle.data = &c;
  uv_idle_start(&c.idle, idle_cb);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  assert_int_equal(c.durable, 1000);
  uint64_t fs = wal_fsync_count(c.w);
  print_message("streaming: 1000 appends, %llu fdatasync, %llu on_durable calls\n", (unsigned long long)fs,
                (unsigned long long)c.ncalls);
  assert_true(fs < 500);
  uv_close((uv_handle_t *)&c.idle, NULL);
  assert_int_equal(close_ctx(&c), 0);
  rm_tmpdir(dir);
}

/* One client, sequential: the next append only after the previous one is durable. */
static void seq_durable(void *p, uint64_t index) {
  ctx_t *c = p;
  assert_int_equal(index, c->next - 1);
  c->durable = index;
  c->ncalls++;
  if (c->next > c->last) {
    uv_stop(&c->loop);
    return;
  }
  assert_int_equal(wal_append_entry(c->w, c->next++, 1, "s", 1), 0);
}

static void test_sequential_appends(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  ctx_t c;
  memset(&c, 0, sizeof(c));
  uv_loop_init(&c.loop);
  wal_options_t o = {.loop = &c.loop, .on_durable = seq_durable, .on_error = on_error, .ctx = &c};
  assert_int_equal(wal_open(dir, &o, NULL, &c.w), 0);
  c.next = 2;
  c.last = 20;
  assert_int_equal(wal_append_entry(c.w, 1, 1, "s", 1), 0);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  assert_int_equal(c.durable, 20);
  assert_int_equal(c.ncalls, 20);
  assert_int_equal(wal_fsync_count(c.w), 20);
  assert_int_equal(close_ctx(&c), 0);
  rm_tmpdir(dir);
}

/* A failed write or sync: on_error once, nothing after the failure is acknowledged,
 * appends fail, close reports it, and the entry is not in the log. */
static void test_write_error(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  ctx_t c;
  open_ctx(&c, dir);
  c.stop_at = 10;
  for (uint64_t i = 1; i <= 10; i++) assert_int_equal(wal_append_entry(c.w, i, 1, "a", 1), 0);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  assert_int_equal(c.durable, 10);
  wal_debug_inject_error(c.w, -EIO);
  assert_int_equal(wal_append_entry(c.w, 11, 1, "b", 1), 0);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  assert_int_equal(c.nerr, 1);
  assert_int_equal(c.err, -EIO);
  assert_int_equal(c.durable, 10);
  assert_int_equal(wal_durable_index(c.w), 10);
  assert_int_equal(wal_append_entry(c.w, 12, 1, "c", 1), -EIO);
  assert_int_equal(wal_append_hardstate(c.w, 1, 1, 1), -EIO);
  assert_int_equal(wal_sync_now(c.w), -EIO);
  assert_int_equal(close_ctx(&c), -EIO);
  assert_int_equal(c.nerr, 1);
  coll_t col = {0};
  replay_dir(dir, &col);
  assert_int_equal(col.n, 10);
  coll_free(&col);
  rm_tmpdir(dir);
}

/* Close flushes what is pending even if the loop never ran. */
static void test_close_flushes(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  ctx_t c;
  open_ctx(&c, dir);
  for (uint64_t i = 1; i <= 100; i++) assert_int_equal(wal_append_entry(c.w, i, 1, "z", 1), 0);
  assert_int_equal(wal_append_hardstate(c.w, 2, 1, 100), 0);
  assert_int_equal(close_ctx(&c), 0);
  assert_int_equal(c.ncalls, 0); /* no callbacks after wal_close */
  coll_t col = {0};
  replay_dir(dir, &col);
  assert_int_equal(col.n, 100);
  assert_int_equal(col.nhs, 1);
  assert_int_equal(col.hs[2], 100);
  coll_free(&col);
  rm_tmpdir(dir);
}

/* Appends one entry and flushes; returns 1 if the loop wrote it itself, else runs the loop
 * until the writer made it durable and returns 0. */
static int append_and_flush(ctx_t *c, uint64_t index, const char *data, size_t len) {
  assert_int_equal(wal_append_entry(c->w, index, 1, data, len), 0);
  uint64_t before = c->ncalls, durable = 99;
  int r = wal_flush(c->w, &durable, true);
  if (r == 1) {
    assert_int_equal(durable, index);
    assert_int_equal(c->ncalls, before); /* reported by the return, not by on_durable */
  } else {
    assert_int_equal(r, 0);
    assert_int_equal(durable, 0);
    c->stop_at = index;
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(c->durable, index);
  }
  assert_int_equal(wal_durable_index(c->w), index);
  return r;
}

/* defer_wake: appends do not wake the writer; wal_flush writes a lone entry after a lone
 * entry on the calling thread, gives bigger batches and segment ends to the writer, and
 * the log replays complete and in order. */
static void test_deferred_flush(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  ctx_t c;
  memset(&c, 0, sizeof(c));
  assert_int_equal(uv_loop_init(&c.loop), 0);
  wal_options_t o = {.segment_size = 12288,
                     .loop = &c.loop,
                     .on_durable = on_durable,
                     .on_error = on_error,
                     .ctx = &c,
                     .defer_wake = true};
  assert_int_equal(wal_open(dir, &o, NULL, &c.w), 0);
  assert_int_equal(wal_sync_now(c.w), 0); /* returns once the new writer sleeps */

  assert_int_equal(wal_append_entry(c.w, 1, 1, "a", 1), 0);
  usleep(20000);
  assert_int_equal(wal_fsync_count(c.w), 0); /* nobody woke the writer */
  uint64_t durable;
  assert_int_equal(wal_flush(c.w, &durable, true), 0); /* first batch: the writer */
  c.stop_at = 1;
  uv_run(&c.loop, UV_RUN_DEFAULT);
  assert_int_equal(c.durable, 1);
  /* inline needs fdatasync to average under 1 ms: pin it, a loaded machine may be slower */
  wal_debug_set_sync_avg(c.w, 0);
  assert_int_equal(append_and_flush(&c, 2, "b", 1), 1); /* lone after lone: inline */
  assert_int_equal(wal_fsync_count(c.w), 2);

  assert_int_equal(wal_append_entry(c.w, 3, 1, "c", 1), 0);
  assert_int_equal(append_and_flush(&c, 4, "d", 1), 0); /* two entries: the writer */
  assert_int_equal(append_and_flush(&c, 5, "e", 1), 0); /* lone after two: the writer */
  wal_debug_set_sync_avg(c.w, 0);
  assert_int_equal(append_and_flush(&c, 6, "f", 1), 1);
  assert_int_equal(wal_flush(c.w, &durable, true), 0); /* nothing pending */
  wal_debug_set_sync_avg(c.w, 5000);                   /* a slow disk: the writer syncs */
  assert_int_equal(append_and_flush(&c, 7, "g", 1), 0);
  wal_debug_set_sync_avg(c.w, 0);
  assert_int_equal(append_and_flush(&c, 8, "h", 1), 1);
  assert_int_equal(wal_flush(c.w, &durable, false), 0); /* nothing pending */
  assert_int_equal(wal_append_entry(c.w, 9, 1, "i", 1), 0);
  c.stop_at = 9;
  assert_int_equal(wal_flush(c.w, &durable, false), 0); /* inline not allowed: the writer */
  uv_run(&c.loop, UV_RUN_DEFAULT);
  assert_int_equal(c.durable, 9);

  char big[1000];
  int inline_n = 0, writer_n = 0;
  for (uint64_t i = 10; i <= 40; i++) {
    memset(big, (int)('A' + i % 26), sizeof(big));
    wal_debug_set_sync_avg(c.w, 0); /* a loaded machine's slow syncs must not move them */
    if (append_and_flush(&c, i, big, sizeof(big)))
      inline_n++;
    else
      writer_n++;
  }
  assert_true(inline_n > 20);
  assert_true(writer_n >= 3);               /* each segment end goes to the writer, which rotates */
  assert_true(wal_segment_count(c.w) >= 4); /* 31 KB of entries, 12 KB segments rotated at half */
  assert_int_equal(close_ctx(&c), 0);

  coll_t col = {0};
  replay_dir(dir, &col);
  assert_int_equal(col.n, 40);
  for (size_t i = 0; i < col.n; i++) {
    assert_int_equal(col.e[i].index, i + 1);
    if (i >= 9) {
      assert_int_equal(col.e[i].len, 1000);
      assert_int_equal(col.e[i].data[999], 'A' + (i + 1) % 26);
    }
  }
  coll_free(&col);
  rm_tmpdir(dir);
}

typedef struct sync_ctx {
  uv_loop_t loop;
  wal_t *w;
  uint64_t synced; /* last ticket reported */
  int calls;
  uint64_t stop_at;
  uint64_t fsyncs_at_report; /* wal_fsync_count when the ticket was reported */
} sync_ctx_t;

static void on_synced(void *p, uint64_t ticket) {
  sync_ctx_t *c = p;
  assert_true(ticket > c->synced); /* tickets are reported in order, once */
  c->synced = ticket;
  c->calls++;
  c->fsyncs_at_report = wal_fsync_count(c->w);
  if (ticket >= c->stop_at) uv_stop(&c->loop);
}

static void sync_error(void *p, int err) {
  (void)p;
  fail_msg("unexpected WAL error %d", err);
}

/* wal_sync_async: appends wait (defer_wake) until a sync is asked for; the request returns at
 * once and on_synced reports the ticket once everything appended before it is durable,
 * including a hard-state-only batch (no entry: on_durable alone would not report it). */
static void test_sync_async(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  sync_ctx_t c;
  memset(&c, 0, sizeof(c));
  assert_int_equal(uv_loop_init(&c.loop), 0);
  wal_options_t o = {.segment_size = 1 << 20,
                     .loop = &c.loop,
                     .on_synced = on_synced,
                     .on_error = sync_error,
                     .ctx = &c,
                     .defer_wake = true};
  assert_int_equal(wal_open(dir, &o, NULL, &c.w), 0);
  assert_int_equal(wal_sync_now(c.w), 0);
  uint64_t base = wal_fsync_count(c.w);

  for (uint64_t i = 1; i <= 50; i++) assert_int_equal(wal_append_entry(c.w, i, 2, "x", 1), 0);
  assert_int_equal(wal_append_hardstate(c.w, 2, 1, 40), 0);
  usleep(20000);
  assert_int_equal(wal_fsync_count(c.w), base); /* nothing asked for a sync yet */
  uint64_t t1;
  assert_int_equal(wal_sync_async(c.w, &t1), 0);
  assert_true(t1 > 0);
  c.stop_at = t1;
  uv_run(&c.loop, UV_RUN_DEFAULT);
  assert_int_equal(c.synced, t1);
  assert_int_equal(c.fsyncs_at_report, base + 1); /* one batch, one fdatasync */
  assert_int_equal(wal_durable_index(c.w), 50);

  /* a hard state alone (a vote) */
  assert_int_equal(wal_append_hardstate(c.w, 3, 2, 40), 0);
  uint64_t t2;
  assert_int_equal(wal_sync_async(c.w, &t2), 0);
  assert_true(t2 > t1);
  c.stop_at = t2;
  uv_run(&c.loop, UV_RUN_DEFAULT);
  assert_int_equal(c.synced, t2);
  assert_true(c.calls >= 2); /* (the wal_sync_now ticket may be reported too) */
  assert_int_equal(wal_close(c.w), 0);
  assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&c.loop), 0);

  coll_t col = {0};
  replay_dir(dir, &col);
  assert_int_equal(col.n, 50);
  assert_int_equal(col.hs[0], 3); /* the last hard state: term 3, vote 2 */
  assert_int_equal(col.hs[1], 2);
  coll_free(&col);
  rm_tmpdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_group_commit_burst), cmocka_unit_test(test_group_commit_streaming),
      cmocka_unit_test(test_sequential_appends), cmocka_unit_test(test_write_error),
      cmocka_unit_test(test_close_flushes),      cmocka_unit_test(test_deferred_flush),
      cmocka_unit_test(test_sync_async),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
