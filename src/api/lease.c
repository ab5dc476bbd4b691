/* etcdserverpb.Lease: LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases.
 * Grant and revoke are proposed to the log (the proposer picks the id of a grant with ID 0,
 * so applying is deterministic); keep-alives and lookups are answered by the leader's
 * lessor without logging, like etcd. */
#include "lease/lease.h"

#include <string.h>
#include <sys/time.h>

#include "api/api.h"
#include "server/quota.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"

/* Replies to a proposed grant or revoke once applied. */
static void write_done(void *ctx, const apply_result_t *res) {
  grpc_call_t *call = ctx;
  if (res->err) {
    api_finish_error(call, res->err);
    return;
  }
  if (res->lease_grant) {
    res->lease_grant->header = api_header(call, res->lease_grant->header);
    api_reply(call, &res->lease_grant->base);
  } else if (res->lease_revoke) {
    res->lease_revoke->header = api_header(call, res->lease_revoke->header);
    api_reply(call, &res->lease_revoke->base);
  } else {
    api_finish_error(call, CETCD_EINVAL);
  }
}

/* A fresh lease id (etcd's reqIDGen-based choice), skipping ids in use. */
static int64_t pick_id(server_t *srv) {
  static lease_idgen_t gen;
  static bool seeded;
  if (!seeded) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    lease_idgen_init(&gen, srv->member_id, (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000);
    seeded = true;
  }
  int64_t id;
  do id = lease_idgen_next(&gen);
  while (lease_exists(srv->lessor, id));
  return id;
}

/* Lease.LeaseGrant: proposed with the id filled in. */
static void lease_grant_rpc(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__LeaseGrantRequest *req = (Etcdserverpb__LeaseGrantRequest *)m;
  server_t *srv = server_get();
  int rc = quota_check(srv, QUOTA_LEASE_OVERHEAD);
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  if (req->id == 0) req->id = pick_id(srv);
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.lease_grant = req;
  server_propose(srv, &ir, grpc_call_arena(call), write_done, call);
}

/* Lease.LeaseRevoke: proposed; applying it deletes the lease's keys in one revision. */
static void lease_revoke_rpc(grpc_call_t *call, ProtobufCMessage *m) {
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.lease_revoke = (Etcdserverpb__LeaseRevokeRequest *)m;
  server_propose(server_get(), &ir, grpc_call_arena(call), write_done, call);
}

/* Lease.LeaseKeepAlive, one request: renew and answer at once. The response and its header
 * live on the stack (the stream may be long-lived; nothing is allocated per message). */
static void keepalive_message(grpc_call_t *call, ProtobufCMessage *m) {
  const Etcdserverpb__LeaseKeepAliveRequest *req = (const Etcdserverpb__LeaseKeepAliveRequest *)m;
  server_t *srv = server_get();
  /* The header is taken before the renew (etcd does the same, so a client never sees a
   * successful keep-alive at a revision after the lease's revoke). */
  Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
  h.cluster_id = srv->cluster_id;
  h.member_id = srv->member_id;
  h.raft_term = srv->term;
  h.revision = mvcc_rev(srv->mvcc);
  Etcdserverpb__LeaseKeepAliveResponse resp = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
  resp.header = &h;
  resp.id = req->id;
  int64_t ttl = 0;
  int rc = lease_renew(srv->lessor, req->id, &ttl);
  if (rc == CETCD_ELEASENOTFOUND) {
    rc = 0;
    ttl = 0;
  }
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  resp.ttl = ttl;
  grpc_call_send(call, &resp.base);
}

/* The client closed its side of the keep-alive stream: end with OK (etcd returns on EOF). */
static void keepalive_half_close(grpc_call_t *call) { grpc_call_finish(call, GRPC_OK, NULL); }

/* The client went away: the handler still finishes the call, which frees it. */
static void keepalive_cancel(grpc_call_t *call) { grpc_call_finish(call, GRPC_CANCELLED, NULL); }

/* Lease.LeaseTimeToLive: remaining seconds (truncated), granted TTL and optionally the keys;
 * an unknown lease answers TTL -1. */
static void lease_ttl_rpc(grpc_call_t *call, ProtobufCMessage *m) {
  const Etcdserverpb__LeaseTimeToLiveRequest *req = (const Etcdserverpb__LeaseTimeToLiveRequest *)m;
  server_t *srv = server_get();
  arena_t *a = grpc_call_arena(call);
  Etcdserverpb__LeaseTimeToLiveResponse *resp = ARENA_NEW(a, Etcdserverpb__LeaseTimeToLiveResponse);
  etcdserverpb__lease_time_to_live_response__init(resp);
  resp->id = req->id;
  lease_info_t info;
  if (lease_lookup(srv->lessor, req->id, &info) == 0) {
    resp->ttl = info.ttl_remaining;
    resp->grantedttl = info.granted_ttl;
    if (req->keys) lease_keys(srv->lessor, req->id, a, &resp->keys, &resp->n_keys);
  } else {
    resp->ttl = -1;
  }
  resp->header = api_header(call, NULL);
  api_reply(call, &resp->base);
}

/* Lease.LeaseLeases: the ids of every granted lease. */
static void lease_leases_rpc(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  server_t *srv = server_get();
  arena_t *a = grpc_call_arena(call);
  Etcdserverpb__LeaseLeasesResponse *resp = ARENA_NEW(a, Etcdserverpb__LeaseLeasesResponse);
  etcdserverpb__lease_leases_response__init(resp);
  size_t n = lease_count(srv->lessor);
  if (n) {
    int64_t *ids = arena_alloc(a, n * sizeof(*ids));
    n = lease_list(srv->lessor, ids, n);
    Etcdserverpb__LeaseStatus *st = arena_alloc(a, n * sizeof(*st));
    resp->leases = arena_alloc(a, n * sizeof(*resp->leases));
    for (size_t i = 0; i < n; i++) {
      etcdserverpb__lease_status__init(&st[i]);
      st[i].id = ids[i];
      resp->leases[i] = &st[i];
    }
    resp->n_leases = n;
  }
  resp->header = api_header(call, NULL);
  api_reply(call, &resp->base);
}

const grpc_method_t api_lease_methods[] = {
    {"/etcdserverpb.Lease/LeaseGrant", GRPC_UNARY, &etcdserverpb__lease_grant_request__descriptor,
     lease_grant_rpc, NULL, NULL},
    {"/etcdserverpb.Lease/LeaseRevoke", GRPC_UNARY, &etcdserverpb__lease_revoke_request__descriptor,
     lease_revoke_rpc, NULL, NULL},
    {"/etcdserverpb.Lease/LeaseKeepAlive", GRPC_BIDI_STREAM,
     &etcdserverpb__lease_keep_alive_request__descriptor, keepalive_message, keepalive_half_close,
     keepalive_cancel},
    {"/etcdserverpb.Lease/LeaseTimeToLive", GRPC_UNARY, &etcdserverpb__lease_time_to_live_request__descriptor,
     lease_ttl_rpc, NULL, NULL},
    {"/etcdserverpb.Lease/LeaseLeases", GRPC_UNARY, &etcdserverpb__lease_leases_request__descriptor,
     lease_leases_rpc, NULL, NULL},
};
const size_t api_lease_methods_len = sizeof(api_lease_methods) / sizeof(*api_lease_methods);
