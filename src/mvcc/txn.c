/* Txn: compares, the chosen path through nested txns, etcd's pre-checks, and applying
 * the ops in one revision. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "mvcc/store_int.h"

/* The branch taken by each txn, depth-first (etcd's txnPath). */
typedef struct path {
  bool *v;
  size_t n, cap, pos;
} path_t;

/* compareInt64. */
static int cmp_i64(int64_t a, int64_t b) { return a < b ? -1 : a > b; }

/* The compare's integer operand if its union holds the given case, else 0 (etcd reads the
 * oneof through a type assertion). */
static int64_t operand(const Etcdserverpb__Compare *c, Etcdserverpb__Compare__TargetUnionCase want) {
  if (c->target_union_case != want) return 0;
  switch (want) {
    case ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION:
      return c->version;
    case ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION:
      return c->create_revision;
    case ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION:
      return c->mod_revision;
    case ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE:
      return c->lease;
    default:
      return 0;
  }
}

/* Applies the compare result to an ordering. */
static bool result_ok(const Etcdserverpb__Compare *c, int r) {
  switch (c->result) {
    case ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL:
      return r == 0;
    case ETCDSERVERPB__COMPARE__COMPARE_RESULT__NOT_EQUAL:
      return r != 0;
    case ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER:
      return r > 0;
    case ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS:
      return r < 0;
    default:
      return true;
  }
}

/* etcd's compareKV on one key's state (e NULL: the zero KeyValue). */
static bool compare_kv(mvcc_store_t *s, const Etcdserverpb__Compare *c, const mvcc_ent_t *e) {
  switch (c->target) {
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE: {
      ProtobufCBinaryData want = {0, NULL};
      if (c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE) want = c->value;
      const uint8_t *have = NULL;
      size_t hlen = 0;
      if (e) {
        uint8_t rk[MVCC_REV_BYTES];
        mvcc_rev_encode(e->mod, false, rk);
        MDB_val v;
        mvcc_kv_view_t kv;
        if (mvcc_be_get(mvcc_txn(s), s->be.key_dbi, rk, sizeof(rk), &v) ||
            mvcc_kv_decode(v.mv_data, v.mv_size, &kv))
          return false;
        have = kv.value;
        hlen = kv.vlen;
      }
      return result_ok(c, mvcc_key_cmp(have, hlen, want.data, want.len));
    }
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE:
      return result_ok(
          c, cmp_i64(e ? e->created : 0, operand(c, ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION)));
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD:
      return result_ok(
          c, cmp_i64(e ? e->mod.main : 0, operand(c, ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION)));
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION:
      return result_ok(c, cmp_i64(e ? e->ver : 0, operand(c, ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION)));
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE:
      return result_ok(c,
                       cmp_i64(e ? e->ki->lease : 0, operand(c, ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE)));
    default:
      return result_ok(c, 0);
  }
}

/* etcd's applyCompare at the current revision: every key in range must satisfy it; a
 * missing key compares as the zero KeyValue except for VALUE, which fails. */
static bool apply_compare(mvcc_store_t *s, const Etcdserverpb__Compare *c) {
  mvcc_span_t span = mvcc_span(c->key, c->range_end);
  mvcc_entvec_t *v = &s->scratch;
  int64_t count;
  mvcc_collect(s, &span, s->rev, 0, v, &count);
  if (v->n == 0) {
    if (c->target == ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE) return false;
    return compare_kv(s, c, NULL);
  }
  for (size_t i = 0; i < v->n; i++)
    if (!compare_kv(s, c, &v->v[i])) return false;
  return true;
}

/* Appends a path entry. */
static void path_push(path_t *p, bool ok) {
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 8;
    p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
  }
  p->v[p->n++] = ok;
}

/* etcd's compareToPath. */
static void compare_to_path(mvcc_store_t *s, const Etcdserverpb__TxnRequest *r, path_t *p) {
  bool ok = true;
  for (size_t i = 0; i < r->n_compare && ok; i++) ok = apply_compare(s, r->compare[i]);
  path_push(p, ok);
  size_t n = ok ? r->n_success : r->n_failure;
  Etcdserverpb__RequestOp **ops = ok ? r->success : r->failure;
  for (size_t i = 0; i < n; i++)
    if (ops[i]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN && ops[i]->request_txn)
      compare_to_path(s, ops[i]->request_txn, p);
}

/* etcd's checkRequests with checkRequestPut (if check_put) and checkRequestRange. */
static int check_requests(mvcc_store_t *s, const Etcdserverpb__TxnRequest *r, path_t *p, bool check_put) {
  bool ok = p->v[p->pos++];
  size_t n = ok ? r->n_success : r->n_failure;
  Etcdserverpb__RequestOp **ops = ok ? r->success : r->failure;
  for (size_t i = 0; i < n; i++) {
    const Etcdserverpb__RequestOp *op = ops[i];
    int rc = 0;
    if (op->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN && op->request_txn) {
      rc = check_requests(s, op->request_txn, p, check_put);
    } else if (op->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT && check_put) {
      const Etcdserverpb__PutRequest *put = op->request_put;
      if (put->ignore_value || put->ignore_lease) {
        mvcc_ki_t *ki = mvcc_bt_find(&s->idx, put->key.data, put->key.len);
        if (!ki || !mvcc_ki_get(ki, s->rev, NULL, NULL, NULL)) rc = CETCD_EKEYNOTFOUND;
      }
      if (!rc && put->lease && (!s->opts.lease_exists || !s->opts.lease_exists(s->opts.hook_ctx, put->lease)))
        rc = CETCD_ELEASENOTFOUND;
    } else if (op->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE && !check_put) {
      int64_t rev = op->request_range->revision;
      if (rev != 0 && rev > s->rev)
        rc = CETCD_EFUTUREREV;
      else if (rev != 0 && rev < s->compact_rev)
        rc = CETCD_ECOMPACTED;
    }
    if (rc) return rc;
  }
  return 0;
}

/* A TxnResponse with an empty header, owned by arena. */
static Etcdserverpb__TxnResponse *new_txn_resp(arena_t *arena) {
  Etcdserverpb__TxnResponse *t = ARENA_NEW(arena, Etcdserverpb__TxnResponse);
  etcdserverpb__txn_response__init(t);
  t->header = ARENA_NEW(arena, Etcdserverpb__ResponseHeader);
  etcdserverpb__response_header__init(t->header);
  return t;
}

/* etcd's applyTxn: runs the chosen ops in order, filling tr. */
static int apply_ops(mvcc_store_t *s, const Etcdserverpb__TxnRequest *r, path_t *p, bool write,
                     arena_t *arena, Etcdserverpb__TxnResponse *tr) {
  bool ok = p->v[p->pos++];
  tr->succeeded = ok;
  size_t n = ok ? r->n_success : r->n_failure;
  Etcdserverpb__RequestOp **ops = ok ? r->success : r->failure;
  tr->responses = arena_alloc(arena, n * sizeof(*tr->responses));
  tr->n_responses = n;
  for (size_t i = 0; i < n; i++) {
    const Etcdserverpb__RequestOp *op = ops[i];
    Etcdserverpb__ResponseOp *ro = ARENA_NEW(arena, Etcdserverpb__ResponseOp);
    etcdserverpb__response_op__init(ro);
    tr->responses[i] = ro;
    int rc = 0;
    switch (op->request_case) {
      case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
        ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
        rc = mvcc_range_at(s, op->request_range, write ? mvcc_w_rev(s) : s->rev, arena, &ro->response_range);
        break;
      case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
        ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
        rc = mvcc_put_op(s, op->request_put, true, arena, &ro->response_put);
        break;
      case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
        ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
        rc = mvcc_delete_op(s, op->request_delete_range, arena, &ro->response_delete_range);
        break;
      case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
        if (!op->request_txn) break;
        ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
        ro->response_txn = new_txn_resp(arena);
        rc = apply_ops(s, op->request_txn, p, write, arena, ro->response_txn);
        break;
      default:
        break;
    }
    if (rc) return rc;
  }
  return 0;
}

int mvcc_apply_txn(mvcc_store_t *s, const Etcdserverpb__TxnRequest *req, arena_t *arena,
                   Etcdserverpb__TxnResponse **resp) {
  *resp = NULL;
  bool write = !mvcc_txn_is_readonly(req);
  int rc;
  if (write && (rc = mvcc_w_begin(s))) return rc;
  if ((rc = mvcc_read_begin(s))) return write ? mvcc_w_end(s, rc) : rc;
  path_t p = {0};
  compare_to_path(s, req, &p);
  if (write) rc = check_requests(s, req, &p, true);
  p.pos = 0;
  if (!rc) rc = check_requests(s, req, &p, false);
  Etcdserverpb__TxnResponse *tr = NULL;
  if (!rc) {
    p.pos = 0;
    tr = new_txn_resp(arena);
    rc = apply_ops(s, req, &p, write, arena, tr);
    tr->header->revision = write ? mvcc_w_rev(s) : s->rev;
  }
  free(p.v);
  mvcc_read_end(s);
  if (write)
    rc = mvcc_w_end(s, rc);
  else
    mvcc_scratch_trim(s);
  if (!rc) *resp = tr;
  return rc;
}
