/* Put and DeleteRange with etcd's applier semantics, standalone and as Txn ops. */
#include <string.h>

#include "cetcd/errors.h"
#include "mvcc/store_int.h"

/* A zeroed response header owned by arena. */
static Etcdserverpb__ResponseHeader *new_header(arena_t *arena) {
  Etcdserverpb__ResponseHeader *h = ARENA_NEW(arena, Etcdserverpb__ResponseHeader);
  etcdserverpb__response_header__init(h);
  return h;
}

int mvcc_put_op(mvcc_store_t *s, const Etcdserverpb__PutRequest *req, bool in_txn, arena_t *arena,
                Etcdserverpb__PutResponse **resp) {
  const uint8_t *val = req->value.data;
  size_t vlen = req->value.len;
  int64_t lease = req->lease;
  if (!in_txn && lease && (!s->opts.lease_exists || !s->opts.lease_exists(s->opts.hook_ctx, lease)))
    return CETCD_ELEASENOTFOUND;
  Mvccpb__KeyValue *prev = NULL;
  mvcc_ki_t *ki = mvcc_bt_find(&s->idx, req->key.data, req->key.len);
  if (req->ignore_value || req->ignore_lease || req->prev_kv) {
    mvcc_rev_t mod;
    if (ki && mvcc_ki_get(ki, mvcc_w_rev(s), &mod, NULL, NULL)) {
      int rc = mvcc_read_kv(s, mod, false, arena, &prev);
      if (rc) return rc;
    }
  }
  if ((req->ignore_value || req->ignore_lease) && !prev) return CETCD_EKEYNOTFOUND;
  if (req->ignore_value) {
    val = prev->value.data;
    vlen = prev->value.len;
  }
  if (req->ignore_lease) lease = prev->lease;
  int rc = mvcc_w_put(s, ki, req->key.data, req->key.len, val, vlen, lease, prev);
  if (rc) return rc;
  Etcdserverpb__PutResponse *r = ARENA_NEW(arena, Etcdserverpb__PutResponse);
  etcdserverpb__put_response__init(r);
  r->header = new_header(arena);
  r->header->revision = s->w_begin + 1;
  if (req->prev_kv) r->prev_kv = prev;
  *resp = r;
  return 0;
}

int mvcc_delete_op(mvcc_store_t *s, const Etcdserverpb__DeleteRangeRequest *req, arena_t *arena,
                   Etcdserverpb__DeleteRangeResponse **resp) {
  mvcc_span_t span = mvcc_span(req->key, req->range_end);
  mvcc_entvec_t *v = &s->scratch;
  int64_t count;
  mvcc_collect(s, &span, mvcc_w_rev(s), 0, v, &count);
  Etcdserverpb__DeleteRangeResponse *r = ARENA_NEW(arena, Etcdserverpb__DeleteRangeResponse);
  etcdserverpb__delete_range_response__init(r);
  r->header = new_header(arena);
  int rc;
  if (req->prev_kv && v->n) {
    r->prev_kvs = arena_alloc(arena, v->n * sizeof(*r->prev_kvs));
    r->n_prev_kvs = v->n;
    for (size_t i = 0; i < v->n; i++) {
      if ((rc = mvcc_read_kv(s, v->v[i].mod, false, arena, &v->v[i].kv))) return rc;
      r->prev_kvs[i] = v->v[i].kv;
    }
  }
  for (size_t i = 0; i < v->n; i++)
    if ((rc = mvcc_w_delete(s, v->v[i].ki, v->v[i].kv))) return rc;
  r->deleted = (int64_t)v->n;
  r->header->revision = s->w_changes > 0 ? s->w_begin + 1 : s->w_begin;
  *resp = r;
  return 0;
}

int mvcc_apply_put(mvcc_store_t *s, const Etcdserverpb__PutRequest *req, arena_t *arena,
                   Etcdserverpb__PutResponse **resp) {
  *resp = NULL;
  int rc = mvcc_w_begin(s);
  if (rc) return rc;
  rc = mvcc_put_op(s, req, false, arena, resp);
  return mvcc_w_end(s, rc);
}

int mvcc_apply_delete_range(mvcc_store_t *s, const Etcdserverpb__DeleteRangeRequest *req, arena_t *arena,
                            Etcdserverpb__DeleteRangeResponse **resp) {
  *resp = NULL;
  int rc = mvcc_w_begin(s);
  if (rc) return rc;
  rc = mvcc_delete_op(s, req, arena, resp);
  return mvcc_w_end(s, rc);
}

int mvcc_delete_keys(mvcc_store_t *s, const ProtobufCBinaryData *keys, size_t n, int64_t *rev) {
  int rc = mvcc_w_begin(s);
  if (rc) return rc;
  for (size_t i = 0; i < n && rc == 0; i++) {
    mvcc_ki_t *ki = mvcc_bt_find(&s->idx, keys[i].data, keys[i].len);
    if (ki && mvcc_ki_is_live(ki)) rc = mvcc_w_delete(s, ki, NULL);
  }
  rc = mvcc_w_end(s, rc);
  if (rev) *rev = s->rev;
  return rc;
}
