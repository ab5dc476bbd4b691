/* libcetcd KV: get, put, delete, compact and the Txn builder. */
#include <string.h>

#include "client/client_int.h"
#include "grpc/grpc_frame.h"

#define KV_PATH(m) "/etcdserverpb.KV/" m

/* ===================================================================================== */
/* Result conversions                                                                    */
/* ===================================================================================== */

int cc_get_result(const Etcdserverpb__RangeResponse *r, cetcd_get_result_t **out) {
  cetcd_get_result_t *g = cc_calloc(1, sizeof(*g));
  if (!g) return CETCD_ENOMEM;
  cc_header(&g->header, r->header);
  if (cc_kvs_copy(&g->kvs, &g->n_kvs, r->kvs, r->n_kvs)) {
    cc_free(g);
    return CETCD_ENOMEM;
  }
  g->count = r->count;
  g->more = r->more;
  *out = g;
  return 0;
}

int cc_put_result(const Etcdserverpb__PutResponse *r, cetcd_put_result_t **out) {
  cetcd_put_result_t *p = cc_calloc(1, sizeof(*p));
  if (!p) return CETCD_ENOMEM;
  cc_header(&p->header, r->header);
  if (cc_kv_dup(&p->prev_kv, r->prev_kv)) {
    cc_free(p);
    return CETCD_ENOMEM;
  }
  *out = p;
  return 0;
}

int cc_delete_result(const Etcdserverpb__DeleteRangeResponse *r, cetcd_delete_result_t **out) {
  cetcd_delete_result_t *d = cc_calloc(1, sizeof(*d));
  if (!d) return CETCD_ENOMEM;
  cc_header(&d->header, r->header);
  d->deleted = r->deleted;
  if (cc_kvs_copy(&d->prev_kvs, &d->n_prev_kvs, r->prev_kvs, r->n_prev_kvs)) {
    cc_free(d);
    return CETCD_ENOMEM;
  }
  *out = d;
  return 0;
}

void cetcd_get_result_free(cetcd_get_result_t *r) {
  if (!r) return;
  cc_kvs_free(r->kvs, r->n_kvs);
  cc_free(r);
}

void cetcd_put_result_free(cetcd_put_result_t *r) {
  if (!r) return;
  if (r->prev_kv) cc_kv_clear(r->prev_kv);
  cc_free(r->prev_kv);
  cc_free(r);
}

void cetcd_delete_result_free(cetcd_delete_result_t *r) {
  if (!r) return;
  cc_kvs_free(r->prev_kvs, r->n_prev_kvs);
  cc_free(r);
}

/* ===================================================================================== */
/* Requests                                                                              */
/* ===================================================================================== */

static const cetcd_get_opts_t no_get_opts;
static const cetcd_put_opts_t no_put_opts;
static const cetcd_delete_opts_t no_delete_opts;

/* Fills a RangeRequest from options; key/range_end point into key, opts or *end_buf. */
static int fill_range(Etcdserverpb__RangeRequest *r, const void *key, size_t klen, const cetcd_get_opts_t *o,
                      uint8_t **end_buf) {
  if ((unsigned)o->sort_order > CETCD_SORT_DESCEND || (unsigned)o->sort_target > CETCD_SORT_VALUE)
    return CETCD_EINVAL;
  int rc = cc_range(key, klen, o->range_end, o->range_end_len, o->prefix, o->from_key, &r->key, &r->range_end,
                    end_buf);
  if (rc) return rc;
  r->limit = o->limit;
  r->revision = o->revision;
  r->sort_order = (Etcdserverpb__RangeRequest__SortOrder)o->sort_order;
  r->sort_target = (Etcdserverpb__RangeRequest__SortTarget)o->sort_target;
  r->serializable = o->serializable;
  r->keys_only = o->keys_only;
  r->count_only = o->count_only;
  r->min_mod_revision = o->min_mod_revision;
  r->max_mod_revision = o->max_mod_revision;
  r->min_create_revision = o->min_create_revision;
  r->max_create_revision = o->max_create_revision;
  return 0;
}

static void fill_put(Etcdserverpb__PutRequest *r, const void *key, size_t klen, const void *value,
                     size_t vlen, const cetcd_put_opts_t *o) {
  r->key.data = (uint8_t *)key;
  r->key.len = klen;
  r->value.data = (uint8_t *)value;
  r->value.len = vlen;
  r->lease = o->lease;
  r->prev_kv = o->prev_kv;
  r->ignore_value = o->ignore_value;
  r->ignore_lease = o->ignore_lease;
}

static int fill_delete(Etcdserverpb__DeleteRangeRequest *r, const void *key, size_t klen,
                       const cetcd_delete_opts_t *o, uint8_t **end_buf) {
  int rc = cc_range(key, klen, o->range_end, o->range_end_len, o->prefix, o->from_key, &r->key, &r->range_end,
                    end_buf);
  r->prev_kv = o->prev_kv;
  return rc;
}

int cetcd_get(cetcd_client_t *c, const void *key, size_t klen, const cetcd_get_opts_t *opts,
              cetcd_get_result_t **out) {
  if (!out) return cc_error(CETCD_EINVAL, 0, NULL);
  *out = NULL;
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
  uint8_t *eb = NULL;
  int rc = fill_range(&r, key, klen, opts ? opts : &no_get_opts, &eb);
  if (rc) return cc_error(rc, 0, NULL);
  ProtobufCMessage *m;
  rc = cc_unary(c, KV_PATH("Range"), -1, &r.base, &etcdserverpb__range_response__descriptor, true, 0, &m);
  cc_free(eb);
  if (rc) return rc;
  rc = cc_get_result((Etcdserverpb__RangeResponse *)m, out);
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return rc ? cc_error(rc, 0, NULL) : 0;
}

int cetcd_put(cetcd_client_t *c, const void *key, size_t klen, const void *value, size_t vlen,
              const cetcd_put_opts_t *opts, cetcd_put_result_t **out) {
  if (out) *out = NULL;
  if (!c || (klen && !key) || (vlen && !value)) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__PutRequest r = ETCDSERVERPB__PUT_REQUEST__INIT;
  fill_put(&r, key, klen, value, vlen, opts ? opts : &no_put_opts);
  ProtobufCMessage *m;
  int rc = cc_unary(c, KV_PATH("Put"), -1, &r.base, &etcdserverpb__put_response__descriptor, false, 0, &m);
  if (rc) return rc;
  if (out) rc = cc_put_result((Etcdserverpb__PutResponse *)m, out);
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return rc ? cc_error(rc, 0, NULL) : 0;
}

/* ---- asynchronous get and put ---------------------------------------------------------- */

typedef struct kv_async {
  bool put;
  union {
    cetcd_get_cb get;
    cetcd_put_cb put;
  } cb;
  void *ctx;
} kv_async_t;

/* Transport completion (I/O thread): decode the response and hand the result over. */
static void kv_async_done(void *ctx, const grpc_close_info_t *info, uint8_t *resp, size_t resp_len) {
  kv_async_t *k = ctx;
  int rc = 0;
  void *result = NULL;
  if (info->err) {
    rc = cc_error(info->err, info->status, info->message);
  } else if (info->status) {
    rc = cc_error(cc_map_status(info->status, info->message), info->status, info->message);
  } else {
    cc_pb_oom_take();
    const ProtobufCMessageDescriptor *d =
        k->put ? &etcdserverpb__put_response__descriptor : &etcdserverpb__range_response__descriptor;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &cc_pb_alloc, resp_len, resp);
    if (!m) {
      rc = cc_pb_oom_take() ? cc_error(CETCD_ENOMEM, 0, NULL)
                            : cc_error(CETCD_EGRPC, 13, "malformed response message");
    } else {
      rc = k->put ? cc_put_result((Etcdserverpb__PutResponse *)m, (cetcd_put_result_t **)&result)
                  : cc_get_result((Etcdserverpb__RangeResponse *)m, (cetcd_get_result_t **)&result);
      if (rc) cc_error(rc, 0, NULL);
      protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
    }
  }
  cc_free(resp);
  if (rc) result = NULL;
  kv_async_t kk = *k;
  cc_free(k);
  if (kk.put)
    kk.cb.put(kk.ctx, rc, result);
  else
    kk.cb.get(kk.ctx, rc, result);
}

/* Packs req into a framed buffer and starts the call. */
static int kv_async_start(cetcd_client_t *c, const char *path, const ProtobufCMessage *req, kv_async_t *k) {
  /* a lazily connected client logs in first (from a callback it has a token already) */
  int arc = c->user && !grpc_client_on_io_thread(c->gc) ? cc_auth_first(c) : 0;
  if (arc) {
    cc_free(k);
    return arc;
  }
  size_t n = protobuf_c_message_get_packed_size(req);
  uint8_t *buf = cc_malloc(GRPC_FRAME_PREFIX + n);
  if (!buf) {
    cc_free(k);
    return cc_error(CETCD_ENOMEM, 0, NULL);
  }
  protobuf_c_message_pack(req, buf + GRPC_FRAME_PREFIX);
  int rc = grpc_client_unary_async(c->gc, path, -1, c->request_timeout_ms, buf, GRPC_FRAME_PREFIX + n,
                                   kv_async_done, k);
  if (rc) {
    cc_free(k);
    return cc_error(rc, 0, NULL);
  }
  return 0;
}

int cetcd_get_async(cetcd_client_t *c, const void *key, size_t klen, const cetcd_get_opts_t *opts,
                    cetcd_get_cb cb, void *ctx) {
  if (!c || !cb) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
  uint8_t *eb = NULL;
  int rc = fill_range(&r, key, klen, opts ? opts : &no_get_opts, &eb);
  if (rc) return cc_error(rc, 0, NULL);
  kv_async_t *k = cc_malloc(sizeof(*k));
  if (!k) {
    cc_free(eb);
    return cc_error(CETCD_ENOMEM, 0, NULL);
  }
  k->put = false;
  k->cb.get = cb;
  k->ctx = ctx;
  rc = kv_async_start(c, KV_PATH("Range"), &r.base, k);
  cc_free(eb);
  return rc;
}

int cetcd_put_async(cetcd_client_t *c, const void *key, size_t klen, const void *value, size_t vlen,
                    const cetcd_put_opts_t *opts, cetcd_put_cb cb, void *ctx) {
  if (!c || !cb || (klen && !key) || (vlen && !value)) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__PutRequest r = ETCDSERVERPB__PUT_REQUEST__INIT;
  fill_put(&r, key, klen, value, vlen, opts ? opts : &no_put_opts);
  kv_async_t *k = cc_malloc(sizeof(*k));
  if (!k) return cc_error(CETCD_ENOMEM, 0, NULL);
  k->put = true;
  k->cb.put = cb;
  k->ctx = ctx;
  return kv_async_start(c, KV_PATH("Put"), &r.base, k);
}

int cetcd_delete(cetcd_client_t *c, const void *key, size_t klen, const cetcd_delete_opts_t *opts,
                 cetcd_delete_result_t **out) {
  if (out) *out = NULL;
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__DeleteRangeRequest r = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
  uint8_t *eb = NULL;
  int rc = fill_delete(&r, key, klen, opts ? opts : &no_delete_opts, &eb);
  if (rc) return cc_error(rc, 0, NULL);
  ProtobufCMessage *m;
  rc = cc_unary(c, KV_PATH("DeleteRange"), -1, &r.base, &etcdserverpb__delete_range_response__descriptor,
                false, 0, &m);
  cc_free(eb);
  if (rc) return rc;
  if (out) rc = cc_delete_result((Etcdserverpb__DeleteRangeResponse *)m, out);
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return rc ? cc_error(rc, 0, NULL) : 0;
}

int cetcd_compact(cetcd_client_t *c, int64_t rev, bool physical) {
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__CompactionRequest r = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
  r.revision = rev;
  r.physical = physical;
  ProtobufCMessage *m;
  int rc = cc_unary(c, KV_PATH("Compact"), -1, &r.base, &etcdserverpb__compaction_response__descriptor, false,
                    0, &m);
  if (rc) return rc;
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return 0;
}

/* ===================================================================================== */
/* Txn builder                                                                           */
/* ===================================================================================== */

/* The builder keeps a TxnRequest whose every part is allocated with cc_pb_alloc, so that
 * protobuf_c_message_free_unpacked releases it. */
struct cetcd_txn {
  int err;     /* sticky builder error */
  bool writes; /* some op (maybe nested) writes */
  Etcdserverpb__TxnRequest *req;
};

int cetcd_txn_new(cetcd_txn_t **out) {
  if (!out) return cc_error(CETCD_EINVAL, 0, NULL);
  *out = NULL;
  cetcd_txn_t *t = cc_calloc(1, sizeof(*t));
  Etcdserverpb__TxnRequest *r = cc_malloc(sizeof(*r));
  if (!t || !r) {
    cc_free(t);
    cc_free(r);
    return cc_error(CETCD_ENOMEM, 0, NULL);
  }
  etcdserverpb__txn_request__init(r);
  t->req = r;
  *out = t;
  return 0;
}

void cetcd_txn_free(cetcd_txn_t *t) {
  if (!t) return;
  protobuf_c_message_free_unpacked(&t->req->base, &cc_pb_alloc);
  cc_free(t);
}

/* Records err in the builder (first error wins) and returns it. */
static int txn_fail(cetcd_txn_t *t, int err) {
  if (!t->err) t->err = err;
  return cc_error(err, 0, NULL);
}

/* Appends p to the pointer array *arr of length *n. Returns 0 or CETCD_ENOMEM. */
static int push_ptr(void ***arr, size_t *n, void *p) {
  void **a = cc_realloc(*arr, (*n + 1) * sizeof(void *));
  if (!a) return CETCD_ENOMEM;
  a[*n] = p;
  *arr = a;
  (*n)++;
  return 0;
}

/* Copies n bytes into d (allocated with cc_malloc; empty stays NULL). */
static int bin_copy(ProtobufCBinaryData *d, const void *p, size_t n) {
  d->len = 0;
  d->data = NULL;
  if (!n) return 0;
  d->data = cc_malloc(n);
  if (!d->data) return CETCD_ENOMEM;
  memcpy(d->data, p, n);
  d->len = n;
  return 0;
}

static int add_cmp(cetcd_txn_t *t, const void *key, size_t klen, cetcd_cmp_op_t op,
                   Etcdserverpb__Compare__CompareTarget target, int64_t v, const void *val, size_t vlen) {
  if (!t) return cc_error(CETCD_EINVAL, 0, NULL);
  if ((klen && !key) || (unsigned)op > CETCD_CMP_NOT_EQUAL || (vlen && !val))
    return txn_fail(t, CETCD_EINVAL);
  Etcdserverpb__Compare *c = cc_malloc(sizeof(*c));
  if (!c) return txn_fail(t, CETCD_ENOMEM);
  etcdserverpb__compare__init(c);
  c->result = (Etcdserverpb__Compare__CompareResult)op;
  c->target = target;
  int rc = bin_copy(&c->key, key, klen);
  switch (target) {
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION:
      c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
      c->version = v;
      break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE:
      c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
      c->create_revision = v;
      break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD:
      c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
      c->mod_revision = v;
      break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE:
      c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
      if (!rc) rc = bin_copy(&c->value, val, vlen);
      break;
    default:
      c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE;
      c->lease = v;
      break;
  }
  if (!rc) rc = push_ptr((void ***)&t->req->compare, &t->req->n_compare, c);
  if (rc) {
    protobuf_c_message_free_unpacked(&c->base, &cc_pb_alloc);
    return txn_fail(t, rc);
  }
  return 0;
}

int cetcd_txn_cmp_version(cetcd_txn_t *t, const void *key, size_t klen, cetcd_cmp_op_t op, int64_t v) {
  return add_cmp(t, key, klen, op, ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION, v, NULL, 0);
}

int cetcd_txn_cmp_create(cetcd_txn_t *t, const void *key, size_t klen, cetcd_cmp_op_t op, int64_t rev) {
  return add_cmp(t, key, klen, op, ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE, rev, NULL, 0);
}

int cetcd_txn_cmp_mod(cetcd_txn_t *t, const void *key, size_t klen, cetcd_cmp_op_t op, int64_t rev) {
  return add_cmp(t, key, klen, op, ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD, rev, NULL, 0);
}

int cetcd_txn_cmp_value(cetcd_txn_t *t, const void *key, size_t klen, cetcd_cmp_op_t op, const void *value,
                        size_t vlen) {
  return add_cmp(t, key, klen, op, ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE, 0, value, vlen);
}

int cetcd_txn_cmp_lease(cetcd_txn_t *t, const void *key, size_t klen, cetcd_cmp_op_t op, int64_t lease) {
  return add_cmp(t, key, klen, op, ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE, lease, NULL, 0);
}

int cetcd_txn_cmp_range(cetcd_txn_t *t, const void *range_end, size_t range_end_len, bool prefix) {
  if (!t) return cc_error(CETCD_EINVAL, 0, NULL);
  if (!t->req->n_compare || (range_end_len && !range_end) || (!prefix && !range_end_len))
    return txn_fail(t, CETCD_EINVAL);
  Etcdserverpb__Compare *c = t->req->compare[t->req->n_compare - 1];
  ProtobufCBinaryData k, end;
  uint8_t *eb = NULL;
  int rc = cc_range(c->key.data, c->key.len, prefix ? NULL : range_end, prefix ? 0 : range_end_len, prefix,
                    false, &k, &end, &eb);
  if (rc) return txn_fail(t, rc);
  ProtobufCBinaryData nk = {0, NULL}, ne = {0, NULL};
  rc = bin_copy(&ne, end.data, end.len);
  if (!rc && k.data != c->key.data) rc = bin_copy(&nk, k.data, k.len);
  cc_free(eb);
  if (rc) {
    cc_free(ne.data);
    return txn_fail(t, rc);
  }
  if (nk.data) {
    cc_free(c->key.data);
    c->key = nk;
  }
  cc_free(c->range_end.data);
  c->range_end = ne;
  return 0;
}

/* Appends op to the then (success) or else branch, taking ownership; frees op on error. */
static int add_op(cetcd_txn_t *t, bool then, Etcdserverpb__RequestOp *op) {
  int rc = then ? push_ptr((void ***)&t->req->success, &t->req->n_success, op)
                : push_ptr((void ***)&t->req->failure, &t->req->n_failure, op);
  if (rc) {
    protobuf_c_message_free_unpacked(&op->base, &cc_pb_alloc);
    return txn_fail(t, rc);
  }
  return 0;
}

static Etcdserverpb__RequestOp *new_op(void) {
  Etcdserverpb__RequestOp *op = cc_malloc(sizeof(*op));
  if (op) etcdserverpb__request_op__init(op);
  return op;
}

static int txn_put(cetcd_txn_t *t, bool then, const void *key, size_t klen, const void *value, size_t vlen,
                   const cetcd_put_opts_t *opts) {
  if (!t) return cc_error(CETCD_EINVAL, 0, NULL);
  if ((klen && !key) || (vlen && !value)) return txn_fail(t, CETCD_EINVAL);
  Etcdserverpb__RequestOp *op = new_op();
  Etcdserverpb__PutRequest *r = cc_malloc(sizeof(*r));
  if (!op || !r) {
    cc_free(op);
    cc_free(r);
    return txn_fail(t, CETCD_ENOMEM);
  }
  etcdserverpb__put_request__init(r);
  op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
  op->request_put = r;
  fill_put(r, NULL, 0, NULL, 0, opts ? opts : &no_put_opts);
  if (bin_copy(&r->key, key, klen) || bin_copy(&r->value, value, vlen)) {
    protobuf_c_message_free_unpacked(&op->base, &cc_pb_alloc);
    return txn_fail(t, CETCD_ENOMEM);
  }
  int rc = add_op(t, then, op);
  if (!rc) t->writes = true;
  return rc;
}

/* Finishes a Range or DeleteRange op whose request `tmp` was filled with key and range_end
 * pointing at the caller's bytes and eb: copies both into the op's request (r_key, r_end),
 * frees eb and adds the op. On failure frees the op and fails the txn. */
static int txn_add_keyed(cetcd_txn_t *t, bool then, Etcdserverpb__RequestOp *op, ProtobufCBinaryData *r_key,
                         ProtobufCBinaryData *r_end, ProtobufCBinaryData key, ProtobufCBinaryData end,
                         uint8_t *eb) {
  r_key->data = NULL;
  r_end->data = NULL;
  int rc = bin_copy(r_key, key.data, key.len);
  if (!rc) rc = bin_copy(r_end, end.data, end.len);
  cc_free(eb);
  if (rc) {
    protobuf_c_message_free_unpacked(&op->base, &cc_pb_alloc);
    return txn_fail(t, rc);
  }
  return add_op(t, then, op);
}

static int txn_get(cetcd_txn_t *t, bool then, const void *key, size_t klen, const cetcd_get_opts_t *opts) {
  if (!t) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__RangeRequest tmp = ETCDSERVERPB__RANGE_REQUEST__INIT;
  uint8_t *eb = NULL;
  int rc = fill_range(&tmp, key, klen, opts ? opts : &no_get_opts, &eb);
  if (rc) return txn_fail(t, rc);
  Etcdserverpb__RequestOp *op = new_op();
  Etcdserverpb__RangeRequest *r = cc_malloc(sizeof(*r));
  if (!op || !r) {
    cc_free(op);
    cc_free(r);
    cc_free(eb);
    return txn_fail(t, CETCD_ENOMEM);
  }
  *r = tmp;
  op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
  op->request_range = r;
  return txn_add_keyed(t, then, op, &r->key, &r->range_end, tmp.key, tmp.range_end, eb);
}

static int txn_delete(cetcd_txn_t *t, bool then, const void *key, size_t klen,
                      const cetcd_delete_opts_t *opts) {
  if (!t) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__DeleteRangeRequest tmp = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
  uint8_t *eb = NULL;
  int rc = fill_delete(&tmp, key, klen, opts ? opts : &no_delete_opts, &eb);
  if (rc) return txn_fail(t, rc);
  Etcdserverpb__RequestOp *op = new_op();
  Etcdserverpb__DeleteRangeRequest *r = cc_malloc(sizeof(*r));
  if (!op || !r) {
    cc_free(op);
    cc_free(r);
    cc_free(eb);
    return txn_fail(t, CETCD_ENOMEM);
  }
  *r = tmp;
  op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
  op->request_delete_range = r;
  rc = txn_add_keyed(t, then, op, &r->key, &r->range_end, tmp.key, tmp.range_end, eb);
  if (!rc) t->writes = true;
  return rc;
}

static int txn_txn(cetcd_txn_t *t, bool then, const cetcd_txn_t *sub) {
  if (!t) return cc_error(CETCD_EINVAL, 0, NULL);
  if (!sub || sub == t) return txn_fail(t, CETCD_EINVAL);
  if (sub->err) return txn_fail(t, sub->err);
  /* deep copy by a pack/unpack round trip */
  size_t n = protobuf_c_message_get_packed_size(&sub->req->base);
  uint8_t *buf = cc_malloc(n);
  if (!buf) return txn_fail(t, CETCD_ENOMEM);
  protobuf_c_message_pack(&sub->req->base, buf);
  Etcdserverpb__TxnRequest *copy = etcdserverpb__txn_request__unpack(&cc_pb_alloc, n, buf);
  cc_free(buf);
  Etcdserverpb__RequestOp *op = copy ? new_op() : NULL;
  if (!op) {
    if (copy) protobuf_c_message_free_unpacked(&copy->base, &cc_pb_alloc);
    return txn_fail(t, CETCD_ENOMEM);
  }
  op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
  op->request_txn = copy;
  int rc = add_op(t, then, op);
  if (!rc && sub->writes) t->writes = true;
  return rc;
}

int cetcd_txn_then_put(cetcd_txn_t *t, const void *key, size_t klen, const void *value, size_t vlen,
                       const cetcd_put_opts_t *opts) {
  return txn_put(t, true, key, klen, value, vlen, opts);
}
int cetcd_txn_then_get(cetcd_txn_t *t, const void *key, size_t klen, const cetcd_get_opts_t *opts) {
  return txn_get(t, true, key, klen, opts);
}
int cetcd_txn_then_delete(cetcd_txn_t *t, const void *key, size_t klen, const cetcd_delete_opts_t *opts) {
  return txn_delete(t, true, key, klen, opts);
}
int cetcd_txn_then_txn(cetcd_txn_t *t, const cetcd_txn_t *sub) { return txn_txn(t, true, sub); }
int cetcd_txn_else_put(cetcd_txn_t *t, const void *key, size_t klen, const void *value, size_t vlen,
                       const cetcd_put_opts_t *opts) {
  return txn_put(t, false, key, klen, value, vlen, opts);
}
int cetcd_txn_else_get(cetcd_txn_t *t, const void *key, size_t klen, const cetcd_get_opts_t *opts) {
  return txn_get(t, false, key, klen, opts);
}
int cetcd_txn_else_delete(cetcd_txn_t *t, const void *key, size_t klen, const cetcd_delete_opts_t *opts) {
  return txn_delete(t, false, key, klen, opts);
}
int cetcd_txn_else_txn(cetcd_txn_t *t, const cetcd_txn_t *sub) { return txn_txn(t, false, sub); }

/* ---- results ---------------------------------------------------------------------------- */

static void op_results_free(cetcd_op_result_t *ops, size_t n) {
  for (size_t i = 0; ops && i < n; i++) {
    cetcd_get_result_free(ops[i].get);
    cetcd_put_result_free(ops[i].put);
    cetcd_delete_result_free(ops[i].del);
    cetcd_txn_result_free(ops[i].txn);
  }
  cc_free(ops);
}

void cetcd_txn_result_free(cetcd_txn_result_t *r) {
  if (!r) return;
  op_results_free(r->results, r->n_results);
  cc_free(r);
}

static int txn_result(const Etcdserverpb__TxnResponse *r, cetcd_txn_result_t **out) {
  cetcd_txn_result_t *t = cc_calloc(1, sizeof(*t));
  if (!t) return CETCD_ENOMEM;
  cc_header(&t->header, r->header);
  t->succeeded = r->succeeded;
  if (r->n_responses) {
    t->results = cc_calloc(r->n_responses, sizeof(cetcd_op_result_t));
    if (!t->results) {
      cc_free(t);
      return CETCD_ENOMEM;
    }
  }
  int rc = 0;
  for (size_t i = 0; i < r->n_responses && !rc; i++) {
    const Etcdserverpb__ResponseOp *op = r->responses[i];
    cetcd_op_result_t *o = &t->results[i];
    t->n_results = i + 1;
    switch (op->response_case) {
      case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
        o->type = CETCD_OP_GET;
        rc = cc_get_result(op->response_range, &o->get);
        break;
      case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
        o->type = CETCD_OP_PUT;
        rc = cc_put_result(op->response_put, &o->put);
        break;
      case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
        o->type = CETCD_OP_DELETE;
        rc = cc_delete_result(op->response_delete_range, &o->del);
        break;
      case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN:
        o->type = CETCD_OP_TXN;
        rc = txn_result(op->response_txn, &o->txn);
        break;
      default:
        rc = CETCD_EGRPC;
        break;
    }
  }
  if (rc) {
    cetcd_txn_result_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

int cetcd_txn_commit(cetcd_client_t *c, const cetcd_txn_t *t, cetcd_txn_result_t **out) {
  if (out) *out = NULL;
  if (!c || !t) return cc_error(CETCD_EINVAL, 0, NULL);
  if (t->err) return cc_error(t->err, 0, "txn builder failed earlier");
  ProtobufCMessage *m;
  int rc = cc_unary(c, KV_PATH("Txn"), -1, &t->req->base, &etcdserverpb__txn_response__descriptor, !t->writes,
                    0, &m);
  if (rc) return rc;
  if (out) {
    rc = txn_result((Etcdserverpb__TxnResponse *)m, out);
    if (rc == CETCD_EGRPC) cc_error(rc, 13, "unknown op in txn response");
  }
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return rc ? cc_error(rc, rc == CETCD_EGRPC ? 13 : 0, NULL) : 0;
}
