/* Range: collecting keys from the index, reading records, and etcd's applier semantics
 * (limit/more/count, revision checks, filters, sorting, keys_only, count_only). */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "mvcc/store_int.h"

mvcc_span_t mvcc_span(ProtobufCBinaryData key, ProtobufCBinaryData range_end) {
  mvcc_span_t sp = {key.data, key.len, NULL, 0, false};
  if (range_end.len == 1 && range_end.data[0] == 0)
    sp.end_inf = true;
  else if (range_end.len > 0) {
    sp.end = range_end.data;
    sp.elen = range_end.len;
  }
  return sp;
}

/* Appends an entry to v. */
static mvcc_ent_t *ent_push(mvcc_entvec_t *v) {
  if (v->n == v->cap) {
    v->cap = v->cap ? v->cap * 2 : 64;
    v->v = xrealloc(v->v, v->cap * sizeof(*v->v));
  }
  mvcc_ent_t *e = &v->v[v->n];
  e->pos = (uint32_t)v->n++;
  e->kv = NULL;
  return e;
}

typedef struct collect_ctx {
  const mvcc_span_t *span;
  int64_t at_rev, limit, count;
  mvcc_entvec_t *v;
} collect_ctx_t;

/* Tree visitor for mvcc_collect. */
static bool collect_one(void *arg, mvcc_ki_t *ki) {
  collect_ctx_t *c = arg;
  if (!c->span->end_inf && mvcc_key_cmp(ki->key, ki->klen, c->span->end, c->span->elen) >= 0) return false;
  mvcc_rev_t mod;
  int64_t created, ver;
  if (!mvcc_ki_get(ki, c->at_rev, &mod, &created, &ver)) return true;
  c->count++;
  if (c->limit > 0 && (int64_t)c->v->n >= c->limit) return true;
  mvcc_ent_t *e = ent_push(c->v);
  e->ki = ki;
  e->mod = mod;
  e->created = created;
  e->ver = ver;
  return true;
}

void mvcc_collect(mvcc_store_t *s, const mvcc_span_t *span, int64_t at_rev, int64_t limit, mvcc_entvec_t *v,
                  int64_t *count) {
  v->n = 0;
  collect_ctx_t c = {span, at_rev, limit, 0, v};
  if (!span->end && !span->end_inf) {
    mvcc_ki_t *ki = mvcc_bt_find(&s->idx, span->key, span->klen);
    if (ki) {
      mvcc_span_t one = {span->key, span->klen, NULL, 0, true};
      c.span = &one;
      collect_one(&c, ki);
    }
  } else {
    mvcc_bt_visit(&s->idx, span->key, span->klen, collect_one, &c);
  }
  *count = c.count;
}

int mvcc_read_kv(mvcc_store_t *s, mvcc_rev_t rev, bool keys_only, arena_t *arena, Mvccpb__KeyValue **out) {
  uint8_t rk[MVCC_REV_BYTES];
  mvcc_rev_encode(rev, false, rk);
  MDB_val v;
  int rc = mvcc_be_get(mvcc_txn(s), s->be.key_dbi, rk, sizeof(rk), &v);
  if (rc == CETCD_EKEYNOTFOUND) rc = CETCD_ECORRUPT;
  if (rc) return rc;
  *out = mvcc_kv_decode_arena(v.mv_data, v.mv_size, keys_only, arena);
  return *out ? 0 : CETCD_ECORRUPT;
}

/* ---- sorting ---- */

typedef struct sort_spec {
  int target;
  bool desc;
} sort_spec_t;

static _Thread_local sort_spec_t g_sort; /* qsort has no context argument */

/* Compares two int64 fields. */
static int cmp_i64(int64_t a, int64_t b) { return a < b ? -1 : a > b; }

/* Orders entries by the sort target, reversed for DESCEND; ties keep key order (a stable
 * sort, as Go's sort.Sort is for the small inputs etcd's tests use). */
static int ent_cmp(const void *pa, const void *pb) {
  const mvcc_ent_t *a = pa, *b = pb;
  int c = 0;
  switch (g_sort.target) {
    case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY:
      c = mvcc_key_cmp(a->ki->key, a->ki->klen, b->ki->key, b->ki->klen);
      break;
    case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VERSION:
      c = cmp_i64(a->ver, b->ver);
      break;
    case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE:
      c = cmp_i64(a->created, b->created);
      break;
    case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD:
      c = cmp_i64(a->mod.main, b->mod.main);
      break;
    case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE:
      c = mvcc_key_cmp(a->kv->value.data, a->kv->value.len, b->kv->value.data, b->kv->value.len);
      break;
    default:
      break;
  }
  if (g_sort.desc) c = -c;
  if (c) return c;
  return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* Reads the record of every entry in [0, n) not read yet. */
static int fetch(mvcc_store_t *s, mvcc_ent_t *e, size_t n, bool keys_only, arena_t *arena) {
  for (size_t i = 0; i < n; i++) {
    if (e[i].kv) continue;
    int rc = mvcc_read_kv(s, e[i].mod, keys_only, arena, &e[i].kv);
    if (rc) return rc;
  }
  return 0;
}

int mvcc_range_at(mvcc_store_t *s, const Etcdserverpb__RangeRequest *req, int64_t cur_rev, arena_t *arena,
                  Etcdserverpb__RangeResponse **resp) {
  int64_t rev = req->revision;
  if (rev > cur_rev) return CETCD_EFUTUREREV;
  if (rev <= 0) rev = cur_rev;
  if (rev < s->compact_rev) return CETCD_ECOMPACTED;

  Etcdserverpb__RangeResponse *r = ARENA_NEW(arena, Etcdserverpb__RangeResponse);
  etcdserverpb__range_response__init(r);
  r->header = ARENA_NEW(arena, Etcdserverpb__ResponseHeader);
  etcdserverpb__response_header__init(r->header);
  r->header->revision = cur_rev;
  *resp = r;

  bool filters =
      req->min_mod_revision || req->max_mod_revision || req->min_create_revision || req->max_create_revision;
  int64_t limit = req->limit;
  if (req->sort_order != ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE || filters) limit = 0;
  if (limit > 0) limit++;
  if (req->count_only) limit = 1; /* only the count is needed */

  mvcc_span_t span = mvcc_span(req->key, req->range_end);
  mvcc_entvec_t *v = &s->scratch;
  int64_t count;
  mvcc_collect(s, &span, rev, limit, v, &count);
  r->count = count;
  if (req->count_only || v->n == 0) return 0;

  /* filters (etcd prunes after fetching; the index already knows these fields) */
  size_t n = 0;
  for (size_t i = 0; i < v->n; i++) {
    mvcc_ent_t *e = &v->v[i];
    if (req->max_mod_revision && e->mod.main > req->max_mod_revision) continue;
    if (req->min_mod_revision && e->mod.main < req->min_mod_revision) continue;
    if (req->max_create_revision && e->created > req->max_create_revision) continue;
    if (req->min_create_revision && e->created < req->min_create_revision) continue;
    v->v[n++] = *e;
  }
  v->n = n;

  int order = req->sort_order;
  if (req->sort_target != ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY &&
      order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE)
    order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
  int rc;
  if (order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND ||
      order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND) {
    bool desc = order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
    if (req->sort_target == ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY) {
      if (desc)
        for (size_t i = 0, j = n ? n - 1 : 0; i < j; i++, j--) {
          mvcc_ent_t t = v->v[i];
          v->v[i] = v->v[j];
          v->v[j] = t;
        }
    } else {
      if (req->sort_target == ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE &&
          (rc = fetch(s, v->v, n, false, arena)))
        return rc;
      g_sort = (sort_spec_t){req->sort_target, desc};
      if (n > 1) qsort(v->v, n, sizeof(*v->v), ent_cmp);
    }
  }
  if (req->limit > 0 && (int64_t)n > req->limit) {
    n = (size_t)req->limit;
    r->more = true;
  }
  if ((rc = fetch(s, v->v, n, req->keys_only, arena))) return rc;
  r->kvs = arena_alloc(arena, n * sizeof(*r->kvs));
  r->n_kvs = n;
  for (size_t i = 0; i < n; i++) {
    Mvccpb__KeyValue *kv = v->v[i].kv;
    if (req->keys_only) {
      kv->value.data = NULL;
      kv->value.len = 0;
    }
    r->kvs[i] = kv;
  }
  return 0;
}

int mvcc_apply_range(mvcc_store_t *s, const Etcdserverpb__RangeRequest *req, arena_t *arena,
                     Etcdserverpb__RangeResponse **resp) {
  *resp = NULL;
  int rc = mvcc_read_begin(s);
  if (rc) return rc;
  rc = mvcc_range_at(s, req, s->w_active ? mvcc_w_rev(s) : s->rev, arena, resp);
  mvcc_read_end(s);
  mvcc_scratch_trim(s);
  return rc;
}
