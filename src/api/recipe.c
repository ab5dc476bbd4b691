/* Waiting on predecessors and request builders for the Lock and Election services. */
#include "api/recipe.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"
#include "watch/watch.h"

struct recipe_wait {
  api_ctx_t *api;
  uint8_t *prefix;
  size_t plen;
  int64_t max_create_rev;
  recipe_wait_fn cb;
  void *ctx;
  watcher_t *watcher; /* on the current predecessor */
  uv_timer_t step;    /* defers each re-check out of watch callbacks */
  bool closing;
};

size_t recipe_prefix_end(const uint8_t *prefix, size_t plen, uint8_t *end) {
  memcpy(end, prefix, plen);
  for (size_t i = plen; i > 0; i--) {
    if (end[i - 1] < 0xff) {
      end[i - 1]++;
      return i;
    }
  }
  end[0] = 0;
  return 1;
}

Etcdserverpb__RangeRequest *recipe_first_created(arena_t *a, const uint8_t *prefix, size_t plen) {
  Etcdserverpb__RangeRequest *r = arena_alloc(a, sizeof(*r));
  etcdserverpb__range_request__init(r);
  uint8_t *end = arena_alloc(a, plen + 1);
  r->key.data = arena_memdup(a, prefix, plen);
  r->key.len = plen;
  r->range_end.data = end;
  r->range_end.len = recipe_prefix_end(prefix, plen, end);
  r->sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE;
  r->sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
  r->limit = 1;
  return r;
}

Etcdserverpb__RequestOp *recipe_op_range(arena_t *a, Etcdserverpb__RangeRequest *r) {
  Etcdserverpb__RequestOp *op = arena_alloc(a, sizeof(*op));
  etcdserverpb__request_op__init(op);
  op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
  op->request_range = r;
  return op;
}

Etcdserverpb__RequestOp *recipe_op_get(arena_t *a, const uint8_t *key, size_t klen) {
  Etcdserverpb__RangeRequest *r = arena_alloc(a, sizeof(*r));
  etcdserverpb__range_request__init(r);
  r->key.data = arena_memdup(a, key, klen);
  r->key.len = klen;
  return recipe_op_range(a, r);
}

Etcdserverpb__RequestOp *recipe_op_put(arena_t *a, const uint8_t *key, size_t klen, const uint8_t *val,
                                       size_t vlen, int64_t lease, bool ignore_lease) {
  Etcdserverpb__PutRequest *p = arena_alloc(a, sizeof(*p));
  etcdserverpb__put_request__init(p);
  p->key.data = arena_memdup(a, key, klen);
  p->key.len = klen;
  p->value.data = arena_memdup(a, val ? val : (const uint8_t *)"", vlen);
  p->value.len = vlen;
  p->lease = lease;
  p->ignore_lease = ignore_lease;
  Etcdserverpb__RequestOp *op = arena_alloc(a, sizeof(*op));
  etcdserverpb__request_op__init(op);
  op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
  op->request_put = p;
  return op;
}

Etcdserverpb__RequestOp *recipe_op_delete(arena_t *a, const uint8_t *key, size_t klen) {
  Etcdserverpb__DeleteRangeRequest *d = arena_alloc(a, sizeof(*d));
  etcdserverpb__delete_range_request__init(d);
  d->key.data = arena_memdup(a, key, klen);
  d->key.len = klen;
  Etcdserverpb__RequestOp *op = arena_alloc(a, sizeof(*op));
  etcdserverpb__request_op__init(op);
  op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
  op->request_delete_range = d;
  return op;
}

Etcdserverpb__Compare *recipe_cmp_create(arena_t *a, const uint8_t *key, size_t klen, int64_t rev) {
  Etcdserverpb__Compare *c = arena_alloc(a, sizeof(*c));
  etcdserverpb__compare__init(c);
  c->key.data = arena_memdup(a, key, klen);
  c->key.len = klen;
  c->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
  c->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
  c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
  c->create_revision = rev;
  return c;
}

/* Runs a range from local state and returns its first kv (or NULL). */
static int read_first_kv(api_ctx_t *api, Etcdserverpb__RangeRequest *r, arena_t *a, Mvccpb__KeyValue **kv,
                         int64_t *rev) {
  Etcdserverpb__RangeResponse *resp = NULL;
  int rc = mvcc_apply_range(api->mvcc, r, a, &resp);
  if (rc) return rc;
  *kv = resp->n_kvs ? resp->kvs[0] : NULL;
  *rev = resp->header ? resp->header->revision : mvcc_rev(api->mvcc);
  return 0;
}

int recipe_read_first(api_ctx_t *api, arena_t *a, const uint8_t *prefix, size_t plen, Mvccpb__KeyValue **kv,
                      int64_t *rev) {
  return read_first_kv(api, recipe_first_created(a, prefix, plen), a, kv, rev);
}

int recipe_read_key(api_ctx_t *api, arena_t *a, const uint8_t *key, size_t klen, Mvccpb__KeyValue **kv,
                    int64_t *rev) {
  return read_first_kv(api, recipe_op_get(a, key, klen)->request_range, a, kv, rev);
}

size_t recipe_waiter_key(arena_t *a, const uint8_t *name, size_t nlen, int64_t lease, uint8_t **key) {
  char hex[24];
  int n = snprintf(hex, sizeof(hex), "%" PRIx64, (uint64_t)lease);
  uint8_t *k = arena_alloc(a, nlen + 1 + (size_t)n + 1);
  memcpy(k, name, nlen);
  k[nlen] = '/';
  memcpy(k + nlen + 1, hex, (size_t)n);
  k[nlen + 1 + n] = 0;
  *key = k;
  return nlen + 1 + (size_t)n;
}

/* ---- waiting for predecessors ------------------------------------------------------- */

static void wait_check(recipe_wait_t *w);

/* Frees the wait once its timer handle has closed. */
static void wait_free(uv_handle_t *h) {
  recipe_wait_t *w = h->data;
  free(w->prefix);
  free(w);
}

/* Ends the wait: stop watching, close the timer, free. */
static void wait_close(recipe_wait_t *w) {
  if (w->closing) return;
  w->closing = true;
  if (w->watcher) watch_cancel(w->watcher);
  w->watcher = NULL;
  uv_timer_stop(&w->step);
  uv_close((uv_handle_t *)&w->step, wait_free);
}

/* Timer: re-check the predecessors outside any apply or watch callback. */
static void on_step(uv_timer_t *t) { wait_check(t->data); }

/* Schedules a re-check on the next loop iteration. */
static void schedule_check(recipe_wait_t *w) {
  if (!w->closing) uv_timer_start(&w->step, on_step, 0, 0);
}

/* Events on the predecessor: a delete means re-check. */
static void on_pred_events(void *ctx, watcher_t *wt, const Mvccpb__Event *const *events, size_t n,
                           int64_t rev) {
  recipe_wait_t *w = ctx;
  (void)wt;
  (void)rev;
  for (size_t i = 0; i < n; i++) {
    if (events[i]->type == MVCCPB__EVENT__EVENT_TYPE__DELETE) {
      schedule_check(w);
      return;
    }
  }
}

/* The watch start was compacted away: just re-read. */
static void on_pred_compacted(void *ctx, watcher_t *wt, int64_t compact_rev) {
  recipe_wait_t *w = ctx;
  (void)wt;
  (void)compact_rev;
  w->watcher = NULL; /* freed by the hub after this callback */
  schedule_check(w);
}

/* Looks for the newest key created at or below max_create_rev; none → done, else watch it. */
static void wait_check(recipe_wait_t *w) {
  if (w->closing) return;
  if (w->watcher) {
    watch_cancel(w->watcher);
    w->watcher = NULL;
  }
  arena_t a;
  arena_init(&a);
  Etcdserverpb__RangeRequest *r = recipe_first_created(&a, w->prefix, w->plen);
  r->sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
  r->max_create_revision = w->max_create_rev;
  Mvccpb__KeyValue *kv = NULL;
  int64_t rev = 0;
  int rc = read_first_kv(w->api, r, &a, &kv, &rev);
  if (rc || !kv) {
    recipe_wait_fn cb = w->cb;
    void *ctx = w->ctx;
    arena_destroy(&a);
    wait_close(w);
    cb(ctx, rc, rev);
    return;
  }
  watch_opts_t o = {
      .key = kv->key.data,
      .key_len = kv->key.len,
      .start_rev = rev + 1,
      .filters = WATCH_FILTER_NOPUT,
      .on_events = on_pred_events,
      .on_compacted = on_pred_compacted,
      .ctx = w,
  };
  w->watcher = watch_add(w->api->watch, &o);
  arena_destroy(&a);
  if (!w->watcher) {
    recipe_wait_fn cb = w->cb;
    void *ctx = w->ctx;
    wait_close(w);
    cb(ctx, CETCD_EINVAL, rev);
  }
}

recipe_wait_t *recipe_wait_deletes(api_ctx_t *api, const uint8_t *prefix, size_t plen, int64_t max_create_rev,
                                   recipe_wait_fn cb, void *ctx) {
  recipe_wait_t *w = xcalloc(1, sizeof(*w));
  w->api = api;
  w->prefix = xmemdup(prefix, plen);
  w->plen = plen;
  w->max_create_rev = max_create_rev;
  w->cb = cb;
  w->ctx = ctx;
  uv_timer_init(api->loop, &w->step);
  w->step.data = w;
  schedule_check(w);
  return w;
}

void recipe_wait_cancel(recipe_wait_t *w) { wait_close(w); }
