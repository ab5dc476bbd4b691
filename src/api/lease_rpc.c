/* etcdserverpb.Lease: LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases.
 * Grant and revoke are proposed to the log (the proposer picks the id of a grant with ID 0,
 * so applying is deterministic); keep-alives and TimeToLive are answered by the leader's
 * lessor without logging, like etcd: a follower forwards them (server/lease_forward.h).
 * LeaseLeases lists this member's leases, as etcd 3.4 does. */
#include "lease/lease.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "api/api.h"
#include "base/alloc.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"
#include "server/lease_forward.h"
#include "server/quota.h"
#include "server/raft_node.h"

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
static int64_t pick_id(api_ctx_t *ctx) {
  static lease_idgen_t gen;
  static bool seeded;
  if (!seeded) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    lease_idgen_init(&gen, ctx->srv->member_id, (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000);
    seeded = true;
  }
  int64_t id;
  do id = lease_idgen_next(&gen);
  while (lease_exists(ctx->lessor, id));
  return id;
}

/* Lease.LeaseGrant: proposed with the id filled in. */
static void lease_grant_rpc(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__LeaseGrantRequest *req = (Etcdserverpb__LeaseGrantRequest *)m;
  api_ctx_t *ctx = api_ctx(call);
  int rc = quota_check(ctx->srv, QUOTA_LEASE_OVERHEAD);
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  if (req->id == 0) req->id = pick_id(ctx);
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.lease_grant = req;
  if ((rc = api_auth_stamp(call, &ir))) {
    api_finish_error(call, rc);
    return;
  }
  server_propose(ctx->srv, &ir, grpc_call_arena(call), write_done, call);
}

/* Lease.LeaseRevoke: proposed; applying it deletes the lease's keys in one revision. */
static void lease_revoke_rpc(grpc_call_t *call, ProtobufCMessage *m) {
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.lease_revoke = (Etcdserverpb__LeaseRevokeRequest *)m;
  int rc = api_auth_stamp(call, &ir); /* apply checks write access to the lease's keys */
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  server_propose(api_ctx(call)->srv, &ir, grpc_call_arena(call), write_done, call);
}

/* The forwarder of a cluster member (NULL on a single member, whose lessor is primary). */
static lease_fwd_t *forwarder(server_t *srv) { return srv->rn ? raft_node_lease_forward(srv->rn) : NULL; }

/* A keep-alive stream's state (in the call's arena): renewals still waiting for the leader,
 * and how the call ends once they are answered. The call is finished exactly once, after
 * its last waiting renewal, so answers never reach a freed call. */
typedef struct ka_stream {
  grpc_call_t *call;
  size_t waiting;
  bool ending;    /* the client half-closed or went away, or a renewal failed */
  bool silent;    /* the client went away or a renewal failed: send nothing more */
  int end_status; /* gRPC status to finish with */
  int end_err;    /* CETCD_E* code of a failed renewal (0: end_status as is) */
} ka_stream_t;

/* One renewal on its way: the header was taken before the renewal was asked for. */
typedef struct ka_renewal {
  ka_stream_t *ks;
  int64_t id;
  Etcdserverpb__ResponseHeader h;
} ka_renewal_t;

/* Finishes the stream's call if it is ending and nothing waits any more. */
static void ka_maybe_finish(ka_stream_t *ks) {
  if (!ks->ending || ks->waiting) return;
  if (ks->end_err)
    api_finish_error(ks->call, ks->end_err);
  else
    grpc_call_finish(ks->call, ks->end_status, NULL);
}

/* The stream's state, created on first use. */
static ka_stream_t *ka_stream(grpc_call_t *call) {
  ka_stream_t *ks = grpc_call_user(call);
  if (!ks) {
    ks = ARENA_NEW(grpc_call_arena(call), ka_stream_t);
    memset(ks, 0, sizeof(*ks));
    ks->call = call;
    grpc_call_set_user(call, ks);
  }
  return ks;
}

/* Sends one keep-alive answer, or ends the stream with the error (etcd returns it). */
static void ka_answer(ka_stream_t *ks, int64_t id, Etcdserverpb__ResponseHeader *h,
                      const lease_fwd_answer_t *a) {
  if (ks->silent) return;
  int rc = a->err;
  int64_t ttl = a->ttl;
  if (rc == CETCD_ELEASENOTFOUND) {
    rc = 0;
    ttl = 0;
  }
  if (rc) {
    ks->ending = ks->silent = true;
    ks->end_err = rc;
    return;
  }
  Etcdserverpb__LeaseKeepAliveResponse resp = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
  resp.header = h;
  resp.id = id;
  resp.ttl = ttl;
  grpc_call_send(ks->call, &resp.base);
}

/* A renewal answered by this member's lessor at once (leader): no allocation. */
static void ka_answered_now(void *ctx, const lease_fwd_answer_t *a) {
  ka_renewal_t *r = ctx;
  ka_answer(r->ks, r->id, &r->h, a);
}

/* A renewal answered later (by the leader over the peer transport, or failed). */
static void ka_answered_later(void *ctx, const lease_fwd_answer_t *a) {
  ka_renewal_t *r = ctx;
  ka_stream_t *ks = r->ks;
  ka_answer(ks, r->id, &r->h, a);
  ks->waiting--;
  free(r);
  ka_maybe_finish(ks);
}

/* Lease.LeaseKeepAlive, one request: renewed by the primary lessor (this member's, or the
 * leader's through the forwarder). The header is taken before the renewal (etcd does the
 * same, so a client never sees a successful keep-alive at a revision after the lease's
 * revoke). On the primary the answer is built on the stack: nothing is allocated per
 * message of a long-lived stream. */
static void keepalive_message(grpc_call_t *call, ProtobufCMessage *m) {
  const Etcdserverpb__LeaseKeepAliveRequest *req = (const Etcdserverpb__LeaseKeepAliveRequest *)m;
  api_ctx_t *ctx = api_ctx(call);
  server_t *srv = ctx->srv;
  ka_stream_t *ks = ka_stream(call);
  if (ks->ending) return;
  ka_renewal_t now = {.ks = ks, .id = req->id};
  etcdserverpb__response_header__init(&now.h);
  now.h.cluster_id = srv->cluster_id;
  now.h.member_id = srv->member_id;
  now.h.raft_term = srv->term;
  now.h.revision = mvcc_rev(ctx->mvcc);
  lease_fwd_t *lf = forwarder(srv);
  if (!lf) {
    lease_fwd_answer_t a = {0};
    a.err = lease_renew(ctx->lessor, req->id, &a.ttl);
    ka_answer(ks, req->id, &now.h, &a);
  } else if (lease_forward_can_answer(lf)) {
    lease_forward_renew(lf, req->id, ka_answered_now, &now);
  } else {
    ka_renewal_t *later = xmalloc(sizeof(*later));
    *later = now;
    ks->waiting++;
    lease_forward_renew(lf, req->id, ka_answered_later, later);
  }
  ka_maybe_finish(ks);
}

/* The client closed its side of the keep-alive stream: end with OK (etcd returns on EOF)
 * once the renewals in flight are answered. */
static void keepalive_half_close(grpc_call_t *call) {
  ka_stream_t *ks = ka_stream(call);
  if (!ks->ending) {
    ks->ending = true;
    ks->end_status = GRPC_OK;
  }
  ka_maybe_finish(ks);
}

/* The client went away: the call is still finished (which frees it), after the renewals
 * in flight are answered. */
static void keepalive_cancel(grpc_call_t *call) {
  ka_stream_t *ks = ka_stream(call);
  ks->ending = ks->silent = true;
  ks->end_err = 0;
  ks->end_status = GRPC_CANCELLED;
  ka_maybe_finish(ks);
}

/* Fills and sends a TimeToLive answer: remaining seconds (truncated), granted TTL and the
 * keys if asked for; an unknown lease answers TTL -1 (etcd's LeaseServer does the same). */
static void ttl_reply(grpc_call_t *call, int64_t id, const lease_fwd_answer_t *a) {
  if (a->err && a->err != CETCD_ELEASENOTFOUND) {
    api_finish_error(call, a->err);
    return;
  }
  arena_t *ar = grpc_call_arena(call);
  Etcdserverpb__LeaseTimeToLiveResponse *resp = ARENA_NEW(ar, Etcdserverpb__LeaseTimeToLiveResponse);
  etcdserverpb__lease_time_to_live_response__init(resp);
  resp->id = id;
  if (a->err) {
    resp->ttl = -1;
  } else {
    resp->ttl = a->ttl;
    resp->grantedttl = a->granted_ttl;
    resp->keys = a->keys;
    resp->n_keys = a->n_keys;
  }
  resp->header = api_header(call, NULL);
  api_reply(call, &resp->base);
}

/* The primary answered a TimeToLive. */
static void ttl_answered(void *ctx, const lease_fwd_answer_t *a) {
  grpc_call_t *call = ctx;
  const Etcdserverpb__LeaseTimeToLiveRequest *req = grpc_call_user(call);
  ttl_reply(call, req->id, a);
}

/* Lease.LeaseTimeToLive: answered by the primary lessor (this member's, or the leader's
 * through the forwarder: a follower's lessor does not know when a lease expires). */
static void lease_ttl_rpc(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__LeaseTimeToLiveRequest *req = (Etcdserverpb__LeaseTimeToLiveRequest *)m;
  api_ctx_t *ctx = api_ctx(call);
  arena_t *a = grpc_call_arena(call);
  lease_fwd_t *lf = forwarder(ctx->srv);
  if (lf) {
    grpc_call_set_user(call, req); /* lives in the call's arena */
    lease_forward_ttl(lf, req->id, req->keys, a, ttl_answered, call);
    return;
  }
  lease_fwd_answer_t ans = {0};
  lease_info_t info;
  ans.err = lease_lookup(ctx->lessor, req->id, &info);
  if (!ans.err) {
    ans.ttl = info.ttl_remaining;
    ans.granted_ttl = info.granted_ttl;
    if (req->keys) lease_keys(ctx->lessor, req->id, a, &ans.keys, &ans.n_keys);
  }
  ttl_reply(call, req->id, &ans);
}

/* Lease.LeaseLeases: the ids of every granted lease. */
static void lease_leases_rpc(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  lessor_t *lessor = api_ctx(call)->lessor;
  arena_t *a = grpc_call_arena(call);
  Etcdserverpb__LeaseLeasesResponse *resp = ARENA_NEW(a, Etcdserverpb__LeaseLeasesResponse);
  etcdserverpb__lease_leases_response__init(resp);
  size_t n = lease_count(lessor);
  if (n) {
    int64_t *ids = arena_alloc(a, n * sizeof(*ids));
    n = lease_list(lessor, ids, n);
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
