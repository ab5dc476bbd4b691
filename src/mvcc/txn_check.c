/* Txn validation before proposing (etcd's checkTxnRequest and checkIntervals) and the
 * read-only test. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "mvcc/store_int.h"

bool mvcc_txn_is_readonly(const Etcdserverpb__TxnRequest *req) {
  for (size_t i = 0; i < req->n_success; i++)
    if (req->success[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE) return false;
  for (size_t i = 0; i < req->n_failure; i++)
    if (req->failure[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE) return false;
  return true;
}

static int check_txn(const Etcdserverpb__TxnRequest *r, int max_ops);

/* etcd's checkRequestOp. */
static int check_op(const Etcdserverpb__RequestOp *u, int max_ops) {
  switch (u->request_case) {
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
      return u->request_range->key.len ? 0 : CETCD_EKEYEMPTY;
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT: {
      const Etcdserverpb__PutRequest *p = u->request_put;
      if (!p->key.len) return CETCD_EKEYEMPTY;
      if (p->ignore_value && p->value.len) return CETCD_EVALUEPROVIDED;
      if (p->ignore_lease && p->lease) return CETCD_ELEASEPROVIDED;
      return 0;
    }
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
      return u->request_delete_range->key.len ? 0 : CETCD_EKEYEMPTY;
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
      return check_txn(u->request_txn, max_ops);
    default:
      return CETCD_EKEYNOTFOUND;
  }
}

/* etcd's checkTxnRequest. */
static int check_txn(const Etcdserverpb__TxnRequest *r, int max_ops) {
  size_t opc = r->n_compare;
  if (opc < r->n_success) opc = r->n_success;
  if (opc < r->n_failure) opc = r->n_failure;
  if (opc > (size_t)(max_ops < 0 ? 0 : max_ops)) return CETCD_ETOOMANYOPS;
  for (size_t i = 0; i < r->n_compare; i++)
    if (!r->compare[i]->key.len) return CETCD_EKEYEMPTY;
  int rc;
  for (size_t i = 0; i < r->n_success; i++)
    if ((rc = check_op(r->success[i], max_ops - (int)opc))) return rc;
  for (size_t i = 0; i < r->n_failure; i++)
    if ((rc = check_op(r->failure[i], max_ops - (int)opc))) return rc;
  return 0;
}

/* ---- overlapping writes (checkIntervals) ---- */

/* A key interval [b, e) where an empty bound is +infinity (etcd's StringAffine). */
typedef struct ivl {
  ProtobufCBinaryData b, e;
  bool point; /* [b, b + "\0"): just the key b */
} ivl_t;

typedef struct ivls {
  ivl_t *v;
  size_t n, cap;
} ivls_t;

typedef struct keyset {
  ProtobufCBinaryData *v;
  size_t n, cap;
} keyset_t;

/* Affine less-than: an empty string is larger than everything else. */
static bool aff_less(ProtobufCBinaryData a, ProtobufCBinaryData b) {
  if (!a.len) return false;
  if (!b.len) return true;
  return mvcc_key_cmp(a.data, a.len, b.data, b.len) < 0;
}

/* True if the point k intersects any interval. */
static bool ivls_hit(const ivls_t *d, ProtobufCBinaryData k) {
  for (size_t i = 0; i < d->n; i++) {
    const ivl_t *iv = &d->v[i];
    if (iv->point ? (k.len == iv->b.len && (!k.len || !memcmp(k.data, iv->b.data, k.len)))
                  : (!aff_less(k, iv->b) && aff_less(k, iv->e)))
      return true;
  }
  return false;
}

static void ivls_add(ivls_t *d, ivl_t iv) {
  if (d->n == d->cap) {
    d->cap = d->cap ? d->cap * 2 : 8;
    d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
  }
  d->v[d->n++] = iv;
}

static bool keyset_has(const keyset_t *s, ProtobufCBinaryData k) {
  for (size_t i = 0; i < s->n; i++)
    if (s->v[i].len == k.len && (!k.len || !memcmp(s->v[i].data, k.data, k.len))) return true;
  return false;
}

static void keyset_add(keyset_t *s, ProtobufCBinaryData k) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 8;
    s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
  }
  s->v[s->n++] = k;
}

/* Checks one op list; on success *puts and *dels hold its writes (caller frees). */
static int check_intervals(Etcdserverpb__RequestOp *const *reqs, size_t n, keyset_t *puts, ivls_t *dels) {
  memset(puts, 0, sizeof(*puts));
  memset(dels, 0, sizeof(*dels));
  for (size_t i = 0; i < n; i++) {
    if (reqs[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE) continue;
    const Etcdserverpb__DeleteRangeRequest *d = reqs[i]->request_delete_range;
    ivls_add(dels, (ivl_t){d->key, d->range_end, d->range_end.len == 0});
  }
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    if (reqs[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN) continue;
    const Etcdserverpb__TxnRequest *t = reqs[i]->request_txn;
    keyset_t pt, pe;
    ivls_t dt, de;
    rc = check_intervals(t->success, t->n_success, &pt, &dt);
    if (!rc)
      rc = check_intervals(t->failure, t->n_failure, &pe, &de);
    else
      memset(&pe, 0, sizeof(pe)), memset(&de, 0, sizeof(de));
    for (size_t j = 0; j < pt.n && !rc; j++) {
      if (keyset_has(puts, pt.v[j]) || ivls_hit(dels, pt.v[j]))
        rc = CETCD_EDUPKEY;
      else
        keyset_add(puts, pt.v[j]);
    }
    for (size_t j = 0; j < pe.n && !rc; j++) {
      if (keyset_has(puts, pe.v[j]) && !keyset_has(&pt, pe.v[j]))
        rc = CETCD_EDUPKEY;
      else if (ivls_hit(dels, pe.v[j]))
        rc = CETCD_EDUPKEY;
      else
        keyset_add(puts, pe.v[j]);
    }
    for (size_t j = 0; j < dt.n; j++) ivls_add(dels, dt.v[j]);
    for (size_t j = 0; j < de.n; j++) ivls_add(dels, de.v[j]);
    free(pt.v), free(pe.v), free(dt.v), free(de.v);
  }
  for (size_t i = 0; i < n && !rc; i++) {
    if (reqs[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT) continue;
    ProtobufCBinaryData k = reqs[i]->request_put->key;
    if (keyset_has(puts, k) || ivls_hit(dels, k))
      rc = CETCD_EDUPKEY;
    else
      keyset_add(puts, k);
  }
  if (rc) {
    free(puts->v), free(dels->v);
    memset(puts, 0, sizeof(*puts));
    memset(dels, 0, sizeof(*dels));
  }
  return rc;
}

int mvcc_validate_txn(const Etcdserverpb__TxnRequest *req, int max_ops) {
  int rc = check_txn(req, max_ops);
  if (rc) return rc;
  keyset_t p;
  ivls_t d;
  if ((rc = check_intervals(req->success, req->n_success, &p, &d))) return rc;
  free(p.v), free(d.v);
  if ((rc = check_intervals(req->failure, req->n_failure, &p, &d))) return rc;
  free(p.v), free(d.v);
  return 0;
}
