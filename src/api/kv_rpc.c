/* etcdserverpb.KV: Range, Put, DeleteRange, Txn, Compact.
 * Reads are answered from local state (a single member is always up to date with what it
 * has acknowledged); writes are proposed to the log and answered once applied. */
#include <string.h>

#include "api/api.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"
#include "server/metrics.h"
#include "server/quota.h"
#include "server/raft_node.h"

/* Replies to a proposed write once it has been applied. */
static void write_done(void *ctx, const apply_result_t *res) {
  grpc_call_t *call = ctx;
  if (res->err) {
    api_finish_error(call, res->err);
    return;
  }
  const ProtobufCMessage *msg = NULL;
  if (res->put) {
    res->put->header = api_header(call, res->put->header);
    msg = &res->put->base;
  } else if (res->delete_range) {
    res->delete_range->header = api_header(call, res->delete_range->header);
    msg = &res->delete_range->base;
  } else if (res->txn) {
    res->txn->header = api_header(call, res->txn->header);
    msg = &res->txn->base;
  } else if (res->compaction) {
    res->compaction->header = api_header(call, res->compaction->header);
    msg = &res->compaction->base;
  }
  if (!msg) {
    api_finish_error(call, CETCD_EINVAL);
    return;
  }
  api_reply(call, msg);
}

/* Proposes `ir` on behalf of the call. */
static void propose(grpc_call_t *call, Cetcdinternal__InternalRequest *ir) {
  int rc = api_auth_stamp(call, ir); /* apply checks the user's rights (etcd's authApplierV3) */
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  server_propose(api_ctx(call)->srv, ir, grpc_call_arena(call), write_done, call);
}

static void kv_range(grpc_call_t *call, ProtobufCMessage *m);
static void kv_txn(grpc_call_t *call, ProtobufCMessage *m);

/* A linearizable read waiting for its read index (clustered members only). */
typedef struct lin_read {
  grpc_call_t *call;
  ProtobufCMessage *msg;
  void (*serve)(grpc_call_t *call, ProtobufCMessage *m);
} lin_read_t;

/* The read index is applied locally: serve the read (or fail it). */
static void lin_read_ready(void *ctx, int err) {
  lin_read_t *lr = ctx;
  if (err) {
    api_finish_error(lr->call, err);
    return;
  }
  lr->serve(lr->call, lr->msg);
}

/* On a cluster, defers a linearizable read until its read index is applied here; `serve`
 * then runs again (the call is marked, so it is not deferred twice). Returns true if the
 * read was deferred. */
static bool defer_linearizable(grpc_call_t *call, ProtobufCMessage *m, bool serializable,
                               void (*serve)(grpc_call_t *, ProtobufCMessage *)) {
  server_t *srv = api_ctx(call)->srv;
  if (!srv->rn || serializable || grpc_call_user(call) == (void *)lin_read_ready) return false;
  grpc_call_set_user(call, (void *)lin_read_ready); /* marks the call as linearized */
  lin_read_t *lr = arena_alloc(grpc_call_arena(call), sizeof(*lr));
  *lr = (lin_read_t){.call = call, .msg = m, .serve = serve};
  raft_node_read_index(srv->rn, lin_read_ready, lr);
  return true;
}

/* KV.Range: validated, then read at the requested revision. */
static void kv_range(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__RangeRequest *req = (Etcdserverpb__RangeRequest *)m;
  if (req->key.len == 0) {
    api_finish_error(call, CETCD_EKEYEMPTY);
    return;
  }
  if (defer_linearizable(call, m, req->serializable, kv_range)) return;
  Etcdserverpb__RangeResponse *resp = NULL;
  metrics_on_range();
  int rc = api_auth_range(call, &req->key, &req->range_end);
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  rc = mvcc_apply_range(api_ctx(call)->mvcc, req, grpc_call_arena(call), &resp);
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  resp->header = api_header(call, resp->header);
  api_reply(call, &resp->base);
}

/* KV.Put: etcd's request checks, then proposed. */
static void kv_put(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__PutRequest *req = (Etcdserverpb__PutRequest *)m;
  int rc = 0;
  if (req->key.len == 0)
    rc = CETCD_EKEYEMPTY;
  else if (req->ignore_value && req->value.len)
    rc = CETCD_EVALUEPROVIDED;
  else if (req->ignore_lease && req->lease)
    rc = CETCD_ELEASEPROVIDED;
  else
    rc = quota_check(api_ctx(call)->srv, quota_cost_put(req)); /* CETCD_ENOSPACE, raising NOSPACE */
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.put = req;
  propose(call, &ir);
}

/* KV.DeleteRange: proposed after the empty-key check. */
static void kv_delete_range(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__DeleteRangeRequest *req = (Etcdserverpb__DeleteRangeRequest *)m;
  if (req->key.len == 0) {
    api_finish_error(call, CETCD_EKEYEMPTY);
    return;
  }
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.delete_range = req;
  propose(call, &ir);
}

/* KV.Txn: validated (size, keys, overlapping writes); a read-only txn is served as a read. */
static void kv_txn(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__TxnRequest *req = (Etcdserverpb__TxnRequest *)m;
  api_ctx_t *ctx = api_ctx(call);
  int rc = mvcc_validate_txn(req, (int)ctx->cfg->max_txn_ops);
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  if (mvcc_txn_is_readonly(req)) {
    if (defer_linearizable(call, m, false, kv_txn)) return;
    Etcdserverpb__TxnResponse *resp = NULL;
    if ((rc = api_auth_txn(call, req))) {
      api_finish_error(call, rc);
      return;
    }
    rc = mvcc_apply_txn(ctx->mvcc, req, grpc_call_arena(call), &resp);
    metrics_on_read_txn(req, rc ? NULL : resp);
    if (rc) {
      api_finish_error(call, rc);
      return;
    }
    resp->header = api_header(call, resp->header);
    api_reply(call, &resp->base);
    return;
  }
  if ((rc = quota_check(ctx->srv, quota_cost_txn(req)))) { /* CETCD_ENOSPACE, raising NOSPACE */
    api_finish_error(call, rc);
    return;
  }
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.txn = req;
  propose(call, &ir);
}

/* KV.Compact: proposed; the compaction runs as part of applying it. */
static void kv_compact(grpc_call_t *call, ProtobufCMessage *m) {
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.compaction = (Etcdserverpb__CompactionRequest *)m;
  propose(call, &ir);
}

const grpc_method_t api_kv_methods[] = {
    {"/etcdserverpb.KV/Range", GRPC_UNARY, &etcdserverpb__range_request__descriptor, kv_range, NULL, NULL},
    {"/etcdserverpb.KV/Put", GRPC_UNARY, &etcdserverpb__put_request__descriptor, kv_put, NULL, NULL},
    {"/etcdserverpb.KV/DeleteRange", GRPC_UNARY, &etcdserverpb__delete_range_request__descriptor,
     kv_delete_range, NULL, NULL},
    {"/etcdserverpb.KV/Txn", GRPC_UNARY, &etcdserverpb__txn_request__descriptor, kv_txn, NULL, NULL},
    {"/etcdserverpb.KV/Compact", GRPC_UNARY, &etcdserverpb__compaction_request__descriptor, kv_compact, NULL,
     NULL},
};
const size_t api_kv_methods_len = sizeof(api_kv_methods) / sizeof(*api_kv_methods);
