/* Permission checks of requests (etcd's isOpPermitted, IsAdminPermitted, checkTxnAuth,
 * checkLeasePuts): who asks comes from the request's token; the key-range logic is in
 * auth_perm.c. */
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "auth/auth_perm.h"
#include "base/alloc.h"
#include "base/arena.h"
#include "cetcd/errors.h"
#include "lease/lease.h"

/* etcd's isOpPermitted for one access type. */
static int op_permitted(auth_store_t *as, const auth_info_t *ai, const uint8_t *key, size_t klen,
                        const uint8_t *end, size_t elen, int type) {
  if (!as->enabled) return 0;
  if (!ai || ai->revision == 0) return CETCD_EAUTHUSEREMPTY;
  if (ai->revision < as->revision) return CETCD_EAUTHOLDREV;
  const Authpb__User *u = ai->user ? auth_user_get(as, ai->user) : NULL;
  if (!u) return CETCD_EAUTHDENIED;
  if (auth_user_has_role(u, AUTH_ROOT)) return 0;
  size_t n = 0;
  for (size_t i = 0; i < u->n_roles; i++) {
    const Authpb__Role *r = auth_role_get(as, u->roles[i]);
    if (r) n += r->n_keypermission;
  }
  Authpb__Permission **perms = xmalloc((n ? n : 1) * sizeof(*perms));
  n = 0;
  for (size_t i = 0; i < u->n_roles; i++) {
    const Authpb__Role *r = auth_role_get(as, u->roles[i]);
    for (size_t j = 0; r && j < r->n_keypermission; j++) perms[n++] = r->keypermission[j];
  }
  bool ok = auth_perm_allows(perms, n, type, key, klen, end, elen);
  free(perms);
  return ok ? 0 : CETCD_EAUTHDENIED;
}

int auth_check_range(auth_store_t *as, const auth_info_t *ai, const uint8_t *key, size_t klen,
                     const uint8_t *end, size_t elen) {
  return op_permitted(as, ai, key, klen, end, elen, AUTH_PERM_READ);
}

int auth_check_put(auth_store_t *as, const auth_info_t *ai, const uint8_t *key, size_t klen) {
  return op_permitted(as, ai, key, klen, NULL, 0, AUTH_PERM_WRITE);
}

int auth_check_delete(auth_store_t *as, const auth_info_t *ai, const uint8_t *key, size_t klen,
                      const uint8_t *end, size_t elen) {
  return op_permitted(as, ai, key, klen, end, elen, AUTH_PERM_WRITE);
}

/* The operations of one txn branch (etcd's checkTxnReqsPermission; nested txns as well). */
static int check_ops(auth_store_t *as, const auth_info_t *ai, Etcdserverpb__RequestOp *const *ops, size_t n) {
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const Etcdserverpb__RequestOp *op = ops[i];
    switch (op->request_case) {
      case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE: {
        const Etcdserverpb__RangeRequest *r = op->request_range;
        rc = auth_check_range(as, ai, r->key.data, r->key.len, r->range_end.data, r->range_end.len);
        break;
      }
      case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
        rc = auth_check_put(as, ai, op->request_put->key.data, op->request_put->key.len);
        break;
      case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE: {
        const Etcdserverpb__DeleteRangeRequest *d = op->request_delete_range;
        if (d->prev_kv)
          rc = auth_check_range(as, ai, d->key.data, d->key.len, d->range_end.data, d->range_end.len);
        if (rc == 0)
          rc = auth_check_delete(as, ai, d->key.data, d->key.len, d->range_end.data, d->range_end.len);
        break;
      }
      case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
        rc = auth_check_txn(as, ai, op->request_txn);
        break;
      default:
        break;
    }
  }
  return rc;
}

int auth_check_txn(auth_store_t *as, const auth_info_t *ai, const Etcdserverpb__TxnRequest *txn) {
  if (!as->enabled) return 0;
  for (size_t i = 0; i < txn->n_compare; i++) {
    const Etcdserverpb__Compare *c = txn->compare[i];
    int rc = auth_check_range(as, ai, c->key.data, c->key.len, c->range_end.data, c->range_end.len);
    if (rc) return rc;
  }
  int rc = check_ops(as, ai, txn->success, txn->n_success);
  return rc ? rc : check_ops(as, ai, txn->failure, txn->n_failure);
}

int auth_check_lease(auth_store_t *as, const auth_info_t *ai, const lessor_t *le, int64_t lease) {
  if (!as->enabled || lease == 0) return 0;
  arena_t a;
  arena_init(&a);
  ProtobufCBinaryData *keys = NULL;
  size_t n = 0;
  int rc = 0;
  if (lease_keys(le, lease, &a, &keys, &n)) n = 0; /* an unknown lease has no keys to check */
  for (size_t i = 0; i < n && rc == 0; i++) rc = auth_check_put(as, ai, keys[i].data, keys[i].len);
  arena_destroy(&a);
  return rc;
}

int auth_check_admin(auth_store_t *as, const auth_info_t *ai) {
  if (!as->enabled) return 0;
  if (!ai || !ai->user || !*ai->user) return CETCD_EAUTHUSEREMPTY;
  const Authpb__User *u = auth_user_get(as, ai->user);
  if (!u) return CETCD_EAUTHUSERNOTFOUND;
  return auth_user_has_role(u, AUTH_ROOT) ? 0 : CETCD_EAUTHDENIED;
}
