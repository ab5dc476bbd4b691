/* Unit tests of the watch hub over a temp-dir mvcc store, driven by a private uv loop:
 * live fan-out, ranges, filters, prev_kv, catch-up (no dup, no gap, atomic revisions),
 * compaction, pause/resume, many watchers, cancel inside callbacks, mvcc_events_range, and
 * a store replaced by a snapshot image (mvcc_copy_to_fd, mvcc_file_put_meta,
 * mvcc_file_consistent_index, mvcc_replace_file, watch_hub_restore). */
#include "../mvcc/mvcc_test_util.h"
#include "watch/watch.h"

static watch_hub_t *g_hub;

/* mvcc hook → the hub under test. */
static void hook_events(void *ctx, int64_t rev, const Mvccpb__Event *const *evs, size_t n) {
  (void)ctx;
  if (g_hub) watch_hub_notify(g_hub, rev, evs, n);
}

/* mvcc's prev_wanted hook, as the server wires it. */
static bool hook_prev(void *ctx) {
  (void)ctx;
  return g_hub && watch_hub_wants_prev(g_hub);
}

typedef struct fix {
  char *dir;
  mvcc_store_t *s;
  uv_loop_t loop;
} fix_t;

/* What one watcher received. */
typedef struct rec {
  int calls;
  int64_t revs[4096]; /* revision of each event */
  int types[4096];
  bool has_prev[4096];
  char keys[4096][8];
  size_t n;
  int64_t compacted;
  int64_t last_header;
  bool multi_rev_call_split; /* a revision split across two calls */
  watcher_t *self;
  watcher_t *cancel_other; /* cancelled from this watcher's callback */
  bool cancel_self;
  bool pause_self;
} rec_t;

static int setup(void **st) {
  fix_t *f = calloc(1, sizeof(*f));
  f->dir = tu_mkdtemp();
  mvcc_opts_t o = {.on_events = hook_events, .prev_wanted = hook_prev};
  f->s = tu_open(f->dir, &o);
  uv_loop_init(&f->loop);
  g_hub = watch_hub_new(&f->loop, f->s);
  *st = f;
  return 0;
}

static int teardown(void **st) {
  fix_t *f = *st;
  watch_hub_free(g_hub);
  g_hub = NULL;
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  mvcc_close(f->s);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

static void rec_events(void *ctx, watcher_t *w, const Mvccpb__Event *const *evs, size_t n, int64_t rev) {
  rec_t *r = ctx;
  r->calls++;
  r->last_header = rev;
  if (r->n && n && evs[0]->kv->mod_revision == r->revs[r->n - 1]) r->multi_rev_call_split = true;
  for (size_t i = 0; i < n; i++) {
    r->revs[r->n] = evs[i]->kv->mod_revision;
    r->types[r->n] = evs[i]->type;
    r->has_prev[r->n] = evs[i]->prev_kv != NULL;
    snprintf(r->keys[r->n], sizeof(r->keys[0]), "%.*s", (int)evs[i]->kv->key.len, evs[i]->kv->key.data);
    r->n++;
  }
  if (r->cancel_other) {
    watch_cancel(r->cancel_other);
    r->cancel_other = NULL;
  }
  if (r->pause_self) watch_set_paused(w, true);
  if (r->cancel_self) watch_cancel(w);
}

static void rec_compacted(void *ctx, watcher_t *w, int64_t rev) {
  (void)w;
  ((rec_t *)ctx)->compacted = rev;
}

/* Adds a watcher recording into r. */
static watcher_t *add(const char *key, const char *end, size_t elen, int64_t start, int filters, bool prev,
                      rec_t *r) {
  watch_opts_t o = {.key = (const uint8_t *)key,
                    .key_len = strlen(key),
                    .range_end = (const uint8_t *)end,
                    .range_end_len = end ? (elen ? elen : strlen(end)) : 0,
                    .start_rev = start,
                    .filters = filters,
                    .prev_kv = prev,
                    .on_events = rec_events,
                    .on_compacted = rec_compacted,
                    .ctx = r};
  r->self = watch_add(g_hub, &o);
  return r->self;
}

/* Runs the loop until the hub has nothing left to do (or a step limit). */
static void drain(fix_t *f) {
  for (int i = 0; i < 100000; i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (!uv_loop_alive(&f->loop)) return;
  }
}

static void test_live_fanout(void **st) {
  fix_t *f = *st;
  static rec_t a, pre, all, b, rng;
  memset(&a, 0, sizeof(a));
  memset(&pre, 0, sizeof(pre));
  memset(&all, 0, sizeof(all));
  memset(&b, 0, sizeof(b));
  memset(&rng, 0, sizeof(rng));
  add("a", NULL, 0, 0, 0, false, &a);
  add("a", "b", 0, 0, 0, false, &pre);
  add("", "\0", 1, 0, 0, false, &all);
  add("b", NULL, 0, 0, 0, false, &b);
  add("ab", "ac", 0, 0, 0, false, &rng);
  assert_int_equal(watch_count(g_hub), 5);
  assert_true(watch_is_synced(a.self));
  tu_put(f->s, "a", "1");
  tu_put(f->s, "ab", "2");
  tu_put(f->s, "b", "3");
  tu_put(f->s, "c", "4");
  tu_del(f->s, "a", NULL, NULL);
  assert_int_equal(a.n, 2);
  assert_int_equal(a.types[1], MVCCPB__EVENT__EVENT_TYPE__DELETE);
  assert_int_equal(a.revs[1], 6);
  assert_int_equal(pre.n, 3);
  assert_int_equal(all.n, 5);
  assert_int_equal(b.n, 1);
  assert_string_equal(b.keys[0], "b");
  assert_int_equal(rng.n, 1);
  assert_string_equal(rng.keys[0], "ab");
  assert_int_equal(a.last_header, 6);
  assert_false(a.has_prev[1]); /* no watcher asked for prev_kv: none was read */
  assert_false(watch_hub_wants_prev(g_hub));
}

static void test_filters_prev_kv(void **st) {
  fix_t *f = *st;
  static rec_t noput, nodel, prev;
  memset(&noput, 0, sizeof(noput));
  memset(&nodel, 0, sizeof(nodel));
  memset(&prev, 0, sizeof(prev));
  add("k", NULL, 0, 0, WATCH_FILTER_NOPUT, false, &noput);
  add("k", NULL, 0, 0, WATCH_FILTER_NODELETE, false, &nodel);
  assert_false(watch_hub_wants_prev(g_hub));
  add("k", NULL, 0, 0, 0, true, &prev);
  assert_true(watch_hub_wants_prev(g_hub));
  tu_put(f->s, "k", "1");
  tu_put(f->s, "k", "2");
  tu_del(f->s, "k", NULL, NULL);
  assert_int_equal(noput.n, 1);
  assert_int_equal(noput.calls, 1); /* revisions with nothing left are not delivered */
  assert_int_equal(noput.types[0], MVCCPB__EVENT__EVENT_TYPE__DELETE);
  assert_int_equal(nodel.n, 2);
  assert_int_equal(prev.n, 3);
  assert_false(prev.has_prev[0]);
  assert_true(prev.has_prev[1]);
  assert_true(prev.has_prev[2]);
  /* the same from history */
  static rec_t hist;
  memset(&hist, 0, sizeof(hist));
  add("k", NULL, 0, 1, 0, true, &hist);
  assert_int_equal(hist.n, 0); /* never from inside watch_add */
  drain(f);
  assert_int_equal(hist.n, 3);
  assert_false(hist.has_prev[0]);
  assert_true(hist.has_prev[1]);
  assert_true(hist.has_prev[2]);
  assert_int_equal(hist.types[2], MVCCPB__EVENT__EVENT_TYPE__DELETE);
  assert_int_equal(hist.revs[2], 4);
  assert_true(watch_is_synced(hist.self));
  /* once no synced watcher asks for prev_kv, writes stop reading it back for events */
  watch_cancel(prev.self);
  assert_true(watch_hub_wants_prev(g_hub)); /* hist still asks */
  watch_cancel(hist.self);
  assert_false(watch_hub_wants_prev(g_hub));
  tu_put(f->s, "k", "3");
  assert_int_equal(nodel.n, 3); /* the others still get live events */
}

/* Puts one txn with several keys (one revision, several events). */
static void put_txn(mvcc_store_t *s, const char **keys, size_t n) {
  arena_t a;
  arena_init(&a);
  Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
  Etcdserverpb__RequestOp **ops = arena_zalloc(&a, n * sizeof(*ops));
  for (size_t i = 0; i < n; i++) {
    ops[i] = ARENA_NEW(&a, Etcdserverpb__RequestOp);
    etcdserverpb__request_op__init(ops[i]);
    Etcdserverpb__PutRequest *p = ARENA_NEW(&a, Etcdserverpb__PutRequest);
    etcdserverpb__put_request__init(p);
    p->key = tu_bin(keys[i]);
    p->value = tu_bin("v");
    ops[i]->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    ops[i]->request_put = p;
  }
  req.success = ops;
  req.n_success = n;
  Etcdserverpb__TxnResponse *r;
  assert_int_equal(mvcc_apply_txn(s, &req, &a, &r), 0);
  arena_destroy(&a);
}

static void test_catchup_while_writing(void **st) {
  fix_t *f = *st;
  for (int i = 0; i < 2500; i++) {
    char k[8];
    snprintf(k, sizeof(k), "p%d", i % 7);
    tu_put(f->s, k, "x");
    if (i % 100 == 0) {
      const char *ks[] = {"p1", "p2", "q"};
      put_txn(f->s, ks, 3);
    }
  }
  static rec_t r, q;
  memset(&r, 0, sizeof(r));
  memset(&q, 0, sizeof(q));
  add("p", "q", 0, 2, 0, false, &r);
  add("q", NULL, 0, 1, 0, false, &q);
  int writes = 0;
  for (int i = 0; i < 200000 && !(watch_is_synced(r.self) && writes >= 300); i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (writes < 300) {
      tu_put(f->s, "p9", "y");
      writes++;
    }
  }
  assert_true(watch_is_synced(r.self));
  drain(f);
  /* every revision 2..current with a p key, in order, no dup, no gap */
  int64_t cur = mvcc_rev(f->s);
  size_t expect = 0;
  for (int64_t rev = 2; rev <= cur; rev++) expect++;
  /* the txns add 2 extra p events in their revision */
  size_t txns = 25;
  assert_int_equal(r.n, expect + txns);
  for (size_t i = 1; i < r.n; i++) assert_true(r.revs[i] >= r.revs[i - 1]);
  assert_false(r.multi_rev_call_split);
  assert_int_equal(r.revs[r.n - 1], cur);
  assert_int_equal(q.n, txns);
}

static void test_compacted_start(void **st) {
  fix_t *f = *st;
  for (int i = 0; i < 10; i++) tu_put(f->s, "c", "v");
  arena_t a;
  arena_init(&a);
  Etcdserverpb__CompactionRequest cr = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
  cr.revision = 6;
  Etcdserverpb__CompactionResponse *resp;
  assert_int_equal(mvcc_apply_compact(f->s, &cr, &a, &resp), 0);
  arena_destroy(&a);
  static rec_t r, ok;
  memset(&r, 0, sizeof(r));
  memset(&ok, 0, sizeof(ok));
  add("c", NULL, 0, 3, 0, false, &r);
  add("c", NULL, 0, 6, 0, false, &ok);
  drain(f);
  assert_int_equal(r.compacted, 6);
  assert_int_equal(r.n, 0);
  assert_int_equal(watch_count(g_hub), 1);
  assert_int_equal(ok.n, 6); /* revisions 6..11 */
}

static void test_compaction_while_catching_up(void **st) {
  fix_t *f = *st;
  for (int i = 0; i < 5000; i++) tu_put(f->s, "c", "v");
  static rec_t r;
  memset(&r, 0, sizeof(r));
  watch_hub_set_batch_bytes(g_hub, 16 << 10);
  add("c", NULL, 0, 2, 0, false, &r);
  uv_run(&f->loop, UV_RUN_NOWAIT); /* one step: the revisions that fit in 16 KiB */
  assert_true(r.n > 0 && r.n < 5000);
  arena_t a;
  arena_init(&a);
  Etcdserverpb__CompactionRequest cr = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
  cr.revision = 4000;
  Etcdserverpb__CompactionResponse *resp;
  assert_int_equal(mvcc_apply_compact(f->s, &cr, &a, &resp), 0);
  arena_destroy(&a);
  drain(f);
  assert_int_equal(r.compacted, 4000);
  assert_int_equal(watch_count(g_hub), 0);
}

static void test_pause_resume(void **st) {
  fix_t *f = *st;
  static rec_t r;
  memset(&r, 0, sizeof(r));
  watch_hub_set_batch_bytes(g_hub, 16 << 10);
  add("z", NULL, 0, 0, 0, false, &r);
  tu_put(f->s, "z", "1");
  watch_set_paused(r.self, true);
  assert_false(watch_is_synced(r.self));
  for (int i = 0; i < 3000; i++) tu_put(f->s, "z", "2");
  assert_int_equal(r.n, 1);
  assert_int_equal(watch_progress_rev(r.self), 2);
  watch_set_paused(r.self, false);
  /* pause from inside the callback, resume later: nothing lost */
  r.pause_self = true;
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_true(r.n > 1 && r.n < 3001);
  r.pause_self = false;
  watch_set_paused(r.self, false);
  drain(f);
  tu_put(f->s, "z", "3");
  assert_int_equal(r.n, 3002);
  for (size_t i = 0; i < r.n; i++) assert_int_equal(r.revs[i], (int64_t)i + 2);
}

static void test_many_watchers_cancel_in_callback(void **st) {
  fix_t *f = *st;
  enum { N = 2000 };
  static rec_t rs[N]; /* zero: this test runs once */
  for (int i = 0; i < N; i++) add("hot", i % 2 ? NULL : "hou", 0, 0, 0, false, &rs[i]);
  rs[0].cancel_self = true;
  rs[1].cancel_other = rs[N - 1].self; /* delivered later in the same dispatch, or earlier */
  tu_put(f->s, "hot", "1");
  assert_int_equal(rs[0].n, 1);
  size_t total = 0;
  for (int i = 0; i < N; i++) total += rs[i].n;
  assert_true(total == N || total == N - 1);
  assert_int_equal(watch_count(g_hub), N - 2);
  tu_put(f->s, "hot", "2");
  total = 0;
  for (int i = 0; i < N; i++) total += rs[i].n;
  assert_true(total == N - 2 + N || total == N - 2 + N - 1);
  assert_int_equal(rs[0].n, 1);
  assert_true(rs[N - 1].n <= 1);
}

static void test_txn_atomic_live(void **st) {
  fix_t *f = *st;
  static rec_t r;
  memset(&r, 0, sizeof(r));
  add("t", "u", 0, 0, 0, false, &r);
  const char *ks[] = {"t1", "t2", "x", "t3"};
  put_txn(f->s, ks, 4);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.n, 3);
  assert_string_equal(r.keys[2], "t3");
}

static void test_events_range(void **st) {
  fix_t *f = *st;
  tu_put(f->s, "a", "1");
  tu_put(f->s, "b", "1");
  tu_put(f->s, "a", "2");
  tu_del(f->s, "a", NULL, NULL);
  arena_t a;
  arena_init(&a);
  mvcc_events_query_t q = {.from_rev = 2, .to_rev = 100, .prev_kv = true};
  mvcc_events_t out;
  assert_int_equal(mvcc_events_range(f->s, &q, &a, &out), 0);
  assert_int_equal(out.n, 4);
  assert_int_equal(out.next_rev, 6);
  assert_null(out.evs[0]->prev_kv);
  assert_non_null(out.evs[2]->prev_kv);
  assert_int_equal(out.evs[2]->prev_kv->mod_revision, 2);
  assert_int_equal(out.evs[3]->type, MVCCPB__EVENT__EVENT_TYPE__DELETE);
  assert_int_equal(out.evs[3]->kv->mod_revision, 5);
  assert_int_equal(out.evs[3]->prev_kv->mod_revision, 4);
  mvcc_events_free(&out);
  q.max_revs = 2;
  assert_int_equal(mvcc_events_range(f->s, &q, &a, &out), 0);
  assert_int_equal(out.n, 2);
  assert_int_equal(out.next_rev, 4);
  mvcc_events_free(&out);
  arena_destroy(&a);
}

/* What a watcher received, counted (for catch-ups too long for rec_t). */
typedef struct batch_rec {
  int calls;
  size_t n, max_n;
  size_t max_bytes; /* largest WatchResponse events payload seen */
  int64_t last_rev;
  bool out_of_order, split; /* a revision before the last, or continued in a later call */
} batch_rec_t;

static void batch_events(void *ctx, watcher_t *w, const Mvccpb__Event *const *evs, size_t n, int64_t rev) {
  (void)w, (void)rev;
  batch_rec_t *b = ctx;
  Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
  r.events = (Mvccpb__Event **)evs;
  r.n_events = n;
  size_t bytes = protobuf_c_message_get_packed_size(&r.base);
  if (bytes > b->max_bytes) b->max_bytes = bytes;
  if (n && evs[0]->kv->mod_revision == b->last_rev) b->split = true;
  for (size_t i = 0; i < n; i++) {
    if (evs[i]->kv->mod_revision < b->last_rev) b->out_of_order = true;
    b->last_rev = evs[i]->kv->mod_revision;
  }
  b->calls++;
  b->n += n;
  if (n > b->max_n) b->max_n = n;
}

/* Adds a counting watcher on [key, end) from start. */
static watcher_t *add_counted(const char *key, const char *end, int64_t start, bool prev, batch_rec_t *b) {
  watch_opts_t o = {.key = (const uint8_t *)key,
                    .key_len = strlen(key),
                    .range_end = (const uint8_t *)end,
                    .range_end_len = strlen(end),
                    .start_rev = start,
                    .prev_kv = prev,
                    .on_events = batch_events,
                    .ctx = b};
  return watch_add(g_hub, &o);
}

/* A watcher far behind gets its backlog in few large callbacks: each within the batch
 * size, whole revisions only, in order, nothing lost. */
static void test_catchup_batches_fit(void **st) {
  fix_t *f = *st;
  const char *ks[] = {"b0", "b1", "b2"};
  for (int i = 0; i < 600; i++) put_txn(f->s, ks, 3);
  for (int i = 0; i < 600; i++) tu_put(f->s, "b1", "0123456789012345678901234567890123456789");
  static batch_rec_t all, small;
  memset(&all, 0, sizeof(all));
  memset(&small, 0, sizeof(small));
  add_counted("b", "c", 2, true, &all); /* default batch size: the backlog in one callback */
  drain(f);
  assert_int_equal(all.n, 2400);
  assert_int_equal(all.calls, 1);
  assert_false(all.out_of_order);
  watch_hub_set_batch_bytes(g_hub, 8 << 10);
  watcher_t *w = add_counted("b", "c", 2, true, &small);
  drain(f);
  assert_true(watch_is_synced(w));
  assert_int_equal(small.n, 2400);
  assert_true(small.calls > 3);
  assert_true(small.max_bytes <= 8 << 10);
  assert_true(small.max_n >= 40);
  assert_false(small.out_of_order);
  assert_false(small.split);
  tu_put(f->s, "b2", "live");
  assert_int_equal(small.n, 2401);
}

/* mvcc_events_range keeps whole revisions within max_bytes; a larger single revision comes
 * alone. */
static void test_events_range_bytes(void **st) {
  fix_t *f = *st;
  const char *ks[] = {"a", "b", "c"};
  for (int i = 0; i < 10; i++) put_txn(f->s, ks, 3); /* revisions 2..11, 3 events each */
  arena_t a;
  arena_init(&a);
  mvcc_events_query_t q = {.from_rev = 2, .to_rev = 100, .max_bytes = 1};
  mvcc_events_t out;
  assert_int_equal(mvcc_events_range(f->s, &q, &a, &out), 0);
  assert_int_equal(out.n, 3); /* one revision alone, larger than the limit */
  assert_int_equal(out.next_rev, 3);
  size_t one = 0;
  for (size_t i = 0; i < out.n; i++) one += 2 + protobuf_c_message_get_packed_size(&out.evs[i]->base);
  mvcc_events_free(&out);
  q.max_bytes = one * 4 + one / 2; /* room for 4.5 revisions: 4 whole ones */
  assert_int_equal(mvcc_events_range(f->s, &q, &a, &out), 0);
  assert_int_equal(out.n, 12);
  assert_int_equal(out.next_rev, 6);
  mvcc_events_free(&out);
  q.from_rev = 8; /* the last 4 revisions fit: read to the current revision */
  assert_int_equal(mvcc_events_range(f->s, &q, &a, &out), 0);
  assert_int_equal(out.n, 12);
  assert_int_equal(out.next_rev, 12);
  mvcc_events_free(&out);
  arena_destroy(&a);
}

/* A raft snapshot image (a compacting copy of another store, with a meta record put in)
 * replaces the store; a caught-up watcher then catches up from the old revision out of the
 * new history, and live events follow. */
static void test_restore_from_snapshot_image(void **st) {
  fix_t *f = *st;
  static rec_t r;
  memset(&r, 0, sizeof(r));
  tu_put(f->s, "a", "1");
  tu_put(f->s, "b", "1");
  add("a", NULL, 0, 0, 0, false, &r);
  drain(f);
  assert_true(watch_is_synced(r.self));
  char *dir2 = tu_mkdtemp();
  mvcc_store_t *s2 = tu_open(dir2, NULL);
  mvcc_batch_begin(s2);
  tu_put(s2, "a", "1");
  tu_put(s2, "b", "1");
  tu_put(s2, "a", "2");
  tu_put(s2, "a", "3");
  tu_put(s2, "b", "2");
  assert_int_equal(mvcc_batch_commit(s2, 77), 0);
  char img[600];
  snprintf(img, sizeof(img), "%s/77.db.tmp", f->dir);
  int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(mvcc_copy_to_fd(s2, fd), 0);
  close(fd);
  mvcc_close(s2);
  tu_rmdir(dir2);
  assert_int_equal(mvcc_file_put_meta(img, "cetcd_ids", "0123456789abcdef", 16), 0);
  uint64_t ci = 0;
  assert_int_equal(mvcc_file_consistent_index(img, &ci), 0);
  assert_int_equal(ci, 77);

  int64_t old_rev = mvcc_rev(f->s);
  assert_int_equal(old_rev, 3);
  assert_int_equal(mvcc_replace_file(f->s, img), 0);
  assert_int_not_equal(access(img, F_OK), 0); /* renamed into place */
  assert_int_equal(mvcc_rev(f->s), 6);
  assert_int_equal(mvcc_consistent_index(f->s), 77);
  uint8_t ids[16];
  size_t n = sizeof(ids);
  assert_int_equal(mvcc_meta_get(f->s, "cetcd_ids", ids, &n), 0);
  assert_memory_equal(ids, "0123456789abcdef", 16);
  arena_t a;
  arena_init(&a);
  Mvccpb__KeyValue *kv = tu_get(f->s, &a, "a", 0);
  assert_non_null(kv);
  assert_memory_equal(kv->value.data, "3", 1);
  arena_destroy(&a);

  watch_hub_restore(g_hub, old_rev);
  assert_false(watch_is_synced(r.self));
  drain(f);
  assert_int_equal(r.n, 2);
  assert_int_equal(r.revs[0], 4);
  assert_int_equal(r.revs[1], 5);
  assert_true(watch_is_synced(r.self));
  tu_put(f->s, "a", "4");
  drain(f);
  assert_int_equal(r.n, 3);
  assert_int_equal(r.revs[2], 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_live_fanout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_filters_prev_kv, setup, teardown),
      cmocka_unit_test_setup_teardown(test_catchup_while_writing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compacted_start, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compaction_while_catching_up, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_watchers_cancel_in_callback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_txn_atomic_live, setup, teardown),
      cmocka_unit_test_setup_teardown(test_events_range, setup, teardown),
      cmocka_unit_test_setup_teardown(test_catchup_batches_fit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_events_range_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_from_snapshot_image, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
