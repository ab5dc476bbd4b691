/* v3lockpb.Lock: the server-side distributed lock (etcd's v3lock service over the Mutex
 * recipe). Lock creates "<name>/<lease hex>" if absent and waits, watching only its
 * predecessor, until it is the oldest key under "<name>/": a waiting Lock holds one key and
 * consumes no further revisions however long it waits. */
#include <string.h>

#include "api/api.h"
#include "api/recipe.h"
#include "auth/auth.h"
#include "cetcd/errors.h"
#include "v3lock.pb-c.h"

typedef struct lock_call {
  grpc_call_t *call;
  api_ctx_t *api;  /* the call's */
  uint8_t *prefix; /* "<name>/" */
  size_t plen;
  uint8_t *key; /* "<name>/<lease hex>" */
  size_t klen;
  int64_t my_rev;
  recipe_wait_t *wait;
  char *user;     /* the caller's token user (auth), or NULL */
  bool in_flight; /* a proposal is pending */
  bool cancelled;
} lock_call_t;

/* Nothing to report when a best-effort cleanup write finishes. */
static void ignore_result(void *ctx, const apply_result_t *res) {
  (void)ctx;
  (void)res;
}

/* Deletes the waiter's key (the client gave up), without waiting for the result. */
static void release_key(lock_call_t *lc) {
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  arena_t a;
  arena_init(&a);
  ir.delete_range = recipe_op_delete(&a, lc->key, lc->klen)->request_delete_range;
  ir.auth_user = lc->user; /* as the caller, at the store's revision now */
  ir.auth_revision = lc->user ? auth_revision(lc->api->auth) : 0;
  server_propose(lc->api->srv, &ir, NULL, ignore_result, NULL);
  arena_destroy(&a);
}

/* Answers the Lock call with the key and a header at `rev`. */
static void reply_locked(lock_call_t *lc, int64_t rev) {
  V3lockpb__LockResponse resp = V3LOCKPB__LOCK_RESPONSE__INIT;
  Etcdserverpb__ResponseHeader *h = arena_alloc(grpc_call_arena(lc->call), sizeof(*h));
  etcdserverpb__response_header__init(h);
  h->revision = rev;
  resp.header = api_header(lc->call, h);
  resp.key.data = lc->key;
  resp.key.len = lc->klen;
  api_reply(lc->call, &resp.base);
}

/* Every predecessor is gone: we hold the lock if our key still exists. */
static void on_waited(void *ctx, int err, int64_t rev) {
  lock_call_t *lc = ctx;
  lc->wait = NULL;
  if (err) {
    release_key(lc);
    api_finish_error(lc->call, err);
    return;
  }
  Mvccpb__KeyValue *kv = NULL;
  int64_t now = 0;
  int rc = recipe_read_key(lc->api, grpc_call_arena(lc->call), lc->key, lc->klen, &kv, &now);
  if (rc) {
    api_finish_error(lc->call, rc);
  } else if (!kv || kv->create_revision != lc->my_rev) {
    /* the lease expired while waiting and took the key with it */
    grpc_call_finish(lc->call, GRPC_UNKNOWN, "session: expired");
  } else {
    reply_locked(lc, rev);
  }
}

/* The create-or-get txn was applied: owner now, or wait for the predecessors. */
static void on_txn(void *ctx, const apply_result_t *res) {
  lock_call_t *lc = ctx;
  lc->in_flight = false;
  if (res->err) {
    api_finish_error(lc->call, res->err);
    return;
  }
  Etcdserverpb__TxnResponse *t = res->txn;
  if (t->n_responses < 2) {
    api_finish_error(lc->call, CETCD_EINVAL);
    return;
  }
  Etcdserverpb__RangeResponse *mine = t->responses[0]->response_range;
  Etcdserverpb__RangeResponse *owner = t->responses[1]->response_range;
  lc->my_rev = t->header->revision;
  if (!t->succeeded && mine && mine->n_kvs) lc->my_rev = mine->kvs[0]->create_revision;
  if (lc->cancelled) {
    release_key(lc);
    grpc_call_finish(lc->call, GRPC_CANCELLED, "context canceled");
    return;
  }
  if (!owner || owner->n_kvs == 0 || owner->kvs[0]->create_revision == lc->my_rev) {
    reply_locked(lc, t->header->revision);
    return;
  }
  lc->wait = recipe_wait_deletes(lc->api, lc->prefix, lc->plen, lc->my_rev - 1, on_waited, lc);
}

/* Lock(name, lease): create-or-reuse the waiter key, then wait for the lock. */
static void lock_lock(grpc_call_t *call, ProtobufCMessage *m) {
  V3lockpb__LockRequest *req = (V3lockpb__LockRequest *)m;
  arena_t *a = grpc_call_arena(call);
  lock_call_t *lc = arena_zalloc(a, sizeof(*lc));
  lc->call = call;
  lc->api = api_ctx(call);
  grpc_call_set_user(call, lc);
  lc->plen = req->name.len + 1;
  lc->prefix = arena_alloc(a, lc->plen + 1);
  memcpy(lc->prefix, req->name.data, req->name.len);
  lc->prefix[req->name.len] = '/';
  lc->klen = recipe_waiter_key(a, req->name.data, req->name.len, req->lease, &lc->key);

  Etcdserverpb__RequestOp *success[] = {recipe_op_put(a, lc->key, lc->klen, NULL, 0, req->lease, false),
                                        recipe_op_range(a, recipe_first_created(a, lc->prefix, lc->plen))};
  Etcdserverpb__RequestOp *failure[] = {recipe_op_get(a, lc->key, lc->klen),
                                        recipe_op_range(a, recipe_first_created(a, lc->prefix, lc->plen))};
  Etcdserverpb__Compare *cmp[] = {recipe_cmp_create(a, lc->key, lc->klen, 0)};
  Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
  txn.compare = cmp;
  txn.n_compare = 1;
  txn.success = success;
  txn.n_success = 2;
  txn.failure = failure;
  txn.n_failure = 2;
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.txn = &txn;
  int rc = api_auth_stamp(call, &ir); /* runs as the caller, as etcd's v3lock client does */
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  lc->user = *ir.auth_user ? ir.auth_user : NULL;
  lc->in_flight = true;
  server_propose(lc->api->srv, &ir, a, on_txn, lc);
}

/* The client went away: stop waiting and give the key back, as etcd's recipe does. */
static void lock_cancel(grpc_call_t *call) {
  lock_call_t *lc = grpc_call_user(call);
  if (!lc) return;
  lc->cancelled = true;
  if (lc->in_flight) return; /* on_txn releases the key and finishes */
  if (lc->wait) {
    recipe_wait_cancel(lc->wait);
    lc->wait = NULL;
    release_key(lc);
    grpc_call_finish(call, GRPC_CANCELLED, "context canceled");
  }
}

/* Unlock(key): deletes the key. */
static void unlock_done(void *ctx, const apply_result_t *res) {
  grpc_call_t *call = ctx;
  if (res->err) {
    api_finish_error(call, res->err);
    return;
  }
  V3lockpb__UnlockResponse resp = V3LOCKPB__UNLOCK_RESPONSE__INIT;
  resp.header = api_header(call, res->delete_range ? res->delete_range->header : NULL);
  api_reply(call, &resp.base);
}

/* Unlock(key): proposes the delete of the holder's key. */
static void lock_unlock(grpc_call_t *call, ProtobufCMessage *m) {
  V3lockpb__UnlockRequest *req = (V3lockpb__UnlockRequest *)m;
  arena_t *a = grpc_call_arena(call);
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.delete_range = recipe_op_delete(a, req->key.data, req->key.len)->request_delete_range;
  int rc = api_auth_stamp(call, &ir);
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  server_propose(api_ctx(call)->srv, &ir, a, unlock_done, call);
}

const grpc_method_t api_lock_methods[] = {
    {"/v3lockpb.Lock/Lock", GRPC_UNARY, &v3lockpb__lock_request__descriptor, lock_lock, NULL, lock_cancel},
    {"/v3lockpb.Lock/Unlock", GRPC_UNARY, &v3lockpb__unlock_request__descriptor, lock_unlock, NULL, NULL},
};
const size_t api_lock_methods_len = sizeof(api_lock_methods) / sizeof(*api_lock_methods);
