/* libcetcd watches: callback and pollable variants, history, compaction, progress,
 * cancellation, and resumption across a server restart. */
#include <poll.h>
#include <pthread.h>

#include "client_test_util.h"

static test_server_t srv;
static cetcd_client_t *cli;

static int setup(void **state) {
  (void)state;
  return tu_start_with_client(&srv, &cli);
}

static int teardown(void **state) {
  (void)state;
  tu_stop_with_client(&srv, cli);
  return 0;
}

/* ---- a recorder for callback watches ----------------------------------------------------- */

typedef struct rec_event {
  int type;
  char key[32];
  char value[32];
  int64_t mod_rev;
  bool has_prev;
} rec_event_t;

typedef struct recorder {
  pthread_mutex_t mu;
  rec_event_t ev[256];
  int n;
  int batches;
  bool canceled;
  int err;
  int64_t compact_rev;
  int cancel_after; /* cancel the watch from the callback after this many events (0 = never) */
  bool free_in_cb;
} recorder_t;

static void rec_cb(void *ctx, cetcd_watch_t *w, const cetcd_watch_event_batch_t *b) {
  recorder_t *r = ctx;
  pthread_mutex_lock(&r->mu);
  r->batches++;
  for (size_t i = 0; i < b->n_events && r->n < 256; i++) {
    rec_event_t *e = &r->ev[r->n++];
    e->type = b->events[i].type;
    snprintf(e->key, sizeof e->key, "%s", b->events[i].kv.key);
    snprintf(e->value, sizeof e->value, "%s", b->events[i].kv.value);
    e->mod_rev = b->events[i].kv.mod_revision;
    e->has_prev = b->events[i].prev_kv != NULL;
  }
  if (b->canceled) {
    r->canceled = true;
    r->err = b->err;
    r->compact_rev = b->compact_revision;
  }
  bool cancel = r->cancel_after && r->n >= r->cancel_after;
  bool do_free = r->free_in_cb && cancel;
  pthread_mutex_unlock(&r->mu);
  if (do_free)
    cetcd_watch_free(w);
  else if (cancel)
    cetcd_watch_cancel(w);
}

static int rec_count(recorder_t *r) {
  pthread_mutex_lock(&r->mu);
  int n = r->n;
  pthread_mutex_unlock(&r->mu);
  return n;
}

static bool rec_wait(recorder_t *r, int n, int timeout_ms) {
  uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
  while (rec_count(r) < n && tu_now_ms() < end) tu_sleep_ms(10);
  return rec_count(r) >= n;
}

static void test_callback_watch(void **state) {
  (void)state;
  recorder_t r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  cetcd_watch_t *w;
  cetcd_watch_opts_t o = {.prefix = true, .prev_kv = true};
  assert_int_equal(cetcd_watch(cli, "cb/", 3, &o, rec_cb, &r, &w), 0);
  assert_int_equal(cetcd_watch_fd(w), -1);
  int64_t r1 = tu_put(cli, "cb/a", "1");
  tu_put(cli, "cb/a", "2");
  tu_put(cli, "other", "x");
  assert_int_equal(cetcd_delete(cli, "cb/a", 4, NULL, NULL), 0);
  assert_true(rec_wait(&r, 3, 5000));
  tu_sleep_ms(100);
  assert_int_equal(rec_count(&r), 3);
  assert_int_equal(r.ev[0].type, CETCD_EVENT_PUT);
  assert_string_equal(r.ev[0].key, "cb/a");
  assert_int_equal(r.ev[0].mod_rev, r1);
  assert_false(r.ev[0].has_prev);
  assert_string_equal(r.ev[1].value, "2");
  assert_true(r.ev[1].has_prev);
  assert_int_equal(r.ev[2].type, CETCD_EVENT_DELETE);
  assert_int_equal(r.ev[2].mod_rev, r1 + 3);
  assert_int_equal(cetcd_watch_last_revision(w), r1 + 3);
  assert_int_equal(cetcd_watch_cancel(w), 0);
  tu_put(cli, "cb/b", "after cancel");
  tu_sleep_ms(200);
  assert_int_equal(rec_count(&r), 3);
  cetcd_watch_free(w);

  /* filters and cancel/free from inside the callback */
  recorder_t r2 = {.mu = PTHREAD_MUTEX_INITIALIZER, .cancel_after = 2, .free_in_cb = true};
  o = (cetcd_watch_opts_t){.prefix = true, .no_delete = true};
  assert_int_equal(cetcd_watch(cli, "f/", 2, &o, rec_cb, &r2, &w), 0);
  tu_put(cli, "f/1", "a");
  assert_int_equal(cetcd_delete(cli, "f/1", 3, NULL, NULL), 0);
  tu_put(cli, "f/2", "b");
  tu_put(cli, "f/3", "c");
  assert_true(rec_wait(&r2, 2, 5000));
  tu_sleep_ms(200);
  assert_int_equal(rec_count(&r2), 2);
  assert_int_equal(r2.ev[0].type, CETCD_EVENT_PUT);
  assert_int_equal(r2.ev[1].type, CETCD_EVENT_PUT);
  assert_string_equal(r2.ev[1].key, "f/2");
  /* w was freed by the callback */
}

static void test_pollable_watch(void **state) {
  (void)state;
  cetcd_watch_t *w;
  assert_int_equal(cetcd_watch_open(cli, "pw", 2, NULL, &w), 0);
  int fd = cetcd_watch_fd(w);
  assert_true(fd >= 0);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 0), 0);
  cetcd_watch_event_batch_t *b;
  assert_int_equal(cetcd_watch_next(w, 0, &b), CETCD_ETIMEOUT);
  assert_int_equal(cetcd_watch_next(w, 50, &b), CETCD_ETIMEOUT);
  int64_t rev = tu_put(cli, "pw", "v1");
  assert_int_equal(poll(&p, 1, 5000), 1);
  assert_int_equal(cetcd_watch_next(w, 0, &b), 0);
  assert_int_equal(b->n_events, 1);
  assert_string_equal(b->events[0].kv.value, "v1");
  assert_int_equal(b->events[0].kv.mod_revision, rev);
  assert_int_equal(b->header.revision, rev);
  assert_false(b->canceled);
  cetcd_watch_batch_free(b);
  assert_int_equal(poll(&p, 1, 0), 0); /* drained: not readable */
  /* a waiting next() is woken by an event from another client thread */
  tu_put(cli, "pw", "v2");
  assert_int_equal(cetcd_watch_next(w, 5000, &b), 0);
  assert_string_equal(b->events[0].kv.value, "v2");
  cetcd_watch_batch_free(b);
  /* progress request: a batch without events */
  assert_int_equal(cetcd_watch_request_progress(w), 0);
  assert_int_equal(cetcd_watch_next(w, 5000, &b), 0);
  assert_int_equal(b->n_events, 0);
  assert_false(b->canceled);
  assert_true(b->header.revision >= rev + 1);
  cetcd_watch_batch_free(b);
  assert_int_equal(cetcd_watch_cancel(w), 0);
  assert_int_equal(poll(&p, 1, 0), 1); /* readable: next() reports the end */
  assert_int_equal(cetcd_watch_next(w, -1, &b), CETCD_ECANCELED);
  cetcd_watch_free(w);
}

static void test_history_and_compaction(void **state) {
  (void)state;
  int64_t first = tu_put(cli, "h/k", "1");
  tu_put(cli, "h/k", "2");
  int64_t last = tu_put(cli, "h/k", "3");
  /* history from a past revision */
  cetcd_watch_t *w;
  cetcd_watch_opts_t o = {.start_revision = first + 1};
  assert_int_equal(cetcd_watch_open(cli, "h/k", 3, &o, &w), 0);
  cetcd_watch_event_batch_t *b;
  int got = 0;
  while (got < 2) {
    assert_int_equal(cetcd_watch_next(w, 5000, &b), 0);
    for (size_t i = 0; i < b->n_events; i++, got++)
      assert_int_equal(b->events[i].kv.mod_revision, first + 1 + got);
    cetcd_watch_batch_free(b);
  }
  cetcd_watch_free(w);

  /* compacted start revision: the first batch is the final one */
  assert_int_equal(cetcd_compact(cli, last, true), 0);
  o.start_revision = first;
  assert_int_equal(cetcd_watch_open(cli, "h/k", 3, &o, &w), 0);
  assert_int_equal(cetcd_watch_next(w, 5000, &b), 0);
  assert_true(b->canceled);
  assert_int_equal(b->err, CETCD_ECOMPACTED);
  assert_int_equal(b->compact_revision, last);
  assert_int_equal(b->n_events, 0);
  cetcd_watch_batch_free(b);
  assert_int_equal(cetcd_watch_next(w, 100, &b), CETCD_ECANCELED);
  cetcd_watch_free(w);

  /* and the same through a callback */
  recorder_t r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  assert_int_equal(cetcd_watch(cli, "h/k", 3, &o, rec_cb, &r, &w), 0);
  uint64_t end = tu_now_ms() + 5000;
  for (;;) {
    pthread_mutex_lock(&r.mu);
    bool c = r.canceled;
    pthread_mutex_unlock(&r.mu);
    if (c || tu_now_ms() > end) break;
    tu_sleep_ms(10);
  }
  assert_true(r.canceled);
  assert_int_equal(r.err, CETCD_ECOMPACTED);
  assert_int_equal(r.compact_rev, last);
  cetcd_watch_free(w);
}

/* Reads batches until an event with key `until` arrives; appends mod revisions to revs. */
static void collect(cetcd_watch_t *w, const char *until, int64_t *revs, int *n) {
  uint64_t end = tu_now_ms() + 20000;
  for (;;) {
    assert_true(tu_now_ms() < end);
    cetcd_watch_event_batch_t *b;
    int rc = cetcd_watch_next(w, 500, &b);
    if (rc == CETCD_ETIMEOUT) continue;
    assert_int_equal(rc, 0);
    assert_false(b->canceled);
    bool done = false;
    for (size_t i = 0; i < b->n_events; i++) {
      revs[(*n)++] = b->events[i].kv.mod_revision;
      if (!strcmp(b->events[i].kv.key, until)) done = true;
    }
    cetcd_watch_batch_free(b);
    if (done) return;
  }
}

static void test_resume_after_restart(void **state) {
  (void)state;
  cetcd_watch_t *w;
  recorder_t r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  cetcd_watch_t *wcb;
  cetcd_watch_opts_t o = {.prefix = true};
  assert_int_equal(cetcd_watch_open(cli, "rs/", 3, &o, &w), 0);
  assert_int_equal(cetcd_watch(cli, "rs/", 3, &o, rec_cb, &r, &wcb), 0);
  int64_t revs[64];
  int n = 0;
  int64_t r1 = tu_put(cli, "rs/1", "a");
  collect(w, "rs/1", revs, &n);
  assert_true(rec_wait(&r, 1, 5000));

  for (int round = 0; round < 2; round++) {
    /* round 0: graceful stop; round 1: crash */
    tu_server_stop(&srv, round == 1);
    assert_int_equal(tu_server_start(&srv), 0);
    /* writes right after the restart, most likely before the watches are back */
    char k[16];
    snprintf(k, sizeof k, "rs/%d", 10 * round + 2);
    tu_put(cli, k, "b");
    snprintf(k, sizeof k, "rs/%d", 10 * round + 3);
    tu_put(cli, k, "c");
    collect(w, k, revs, &n);
  }
  /* every revision exactly once, in order */
  assert_int_equal(n, 5);
  assert_int_equal(revs[0], r1);
  for (int i = 1; i < n; i++) assert_int_equal(revs[i], revs[i - 1] + 1);
  assert_true(rec_wait(&r, 5, 10000));
  tu_sleep_ms(100);
  assert_int_equal(rec_count(&r), 5);
  for (int i = 0; i < 5; i++) assert_int_equal(r.ev[i].mod_rev, revs[i]);
  cetcd_watch_free(w);
  cetcd_watch_free(wcb);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_callback_watch),
      cmocka_unit_test(test_pollable_watch),
      cmocka_unit_test(test_history_and_compaction),
      cmocka_unit_test(test_resume_after_restart),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
