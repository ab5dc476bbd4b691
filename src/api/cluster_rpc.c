/* etcdserverpb.Cluster: MemberList, MemberAdd, MemberRemove, MemberUpdate, MemberPromote.
 * A cluster's members come from the applied membership (server/membership.c); changes go
 * through server/reconfig.c. A single member started without a cluster lists itself; its
 * first change moves it to the Raft path. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/alloc.h"
#include "cetcd/errors.h"
#include "server/membership.h"
#include "server/peer.h"
#include "server/raft_node.h"
#include "server/reconfig.h"

/* etcd's cluster response header: no revision. */
static Etcdserverpb__ResponseHeader *cl_header(grpc_call_t *call) {
  Etcdserverpb__ResponseHeader *h = api_header(call, NULL);
  h->revision = 0;
  return h;
}

/* Every member (this one alone without a cluster), in id order, in the call's arena. */
static void cl_members(grpc_call_t *call, Etcdserverpb__Member ***out, size_t *n) {
  api_ctx_t *api = api_ctx(call);
  server_t *srv = api->srv;
  arena_t *a = grpc_call_arena(call);
  if (srv->members) {
    membership_list_pb(srv->members, a, out, n);
    return;
  }
  Etcdserverpb__Member *self = arena_alloc(a, sizeof(*self));
  etcdserverpb__member__init(self);
  self->id = srv->member_id;
  self->name = api->cfg->name;
  self->peerurls = srv->peer_urls;
  self->n_peerurls = srv->n_peer_urls;
  self->clienturls = srv->client_urls;
  self->n_clienturls = srv->n_client_urls;
  *out = arena_alloc(a, sizeof(**out));
  (*out)[0] = self;
  *n = 1;
}

/* A change on a member started alone first moves it to the Raft path; true if that failed
 * (the call is then answered). */
static bool cl_refuse_single(grpc_call_t *call) {
  int rc = reconfig_become_cluster(api_ctx(call)->srv);
  if (rc) api_finish_error(call, rc);
  return rc != 0;
}

/* Cluster.MemberList. */
static void cl_member_list(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  Etcdserverpb__MemberListResponse resp = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
  resp.header = cl_header(call);
  cl_members(call, &resp.members, &resp.n_members);
  api_reply(call, &resp.base);
}

/* ---- MemberAdd ---------------------------------------------------------------------------- */

typedef struct add_ctx {
  grpc_call_t *call;
  uint64_t id;
  bool learner;
  char **urls;
  size_t n_urls;
} add_ctx_t;

/* The added member was applied (or the change failed). */
static void add_done(void *ctx, int err) {
  add_ctx_t *c = ctx;
  if (err) {
    api_finish_error(c->call, err);
    return;
  }
  Etcdserverpb__MemberAddResponse resp = ETCDSERVERPB__MEMBER_ADD_RESPONSE__INIT;
  Etcdserverpb__Member added = ETCDSERVERPB__MEMBER__INIT;
  const member_t *m = membership_find(api_ctx(c->call)->srv->members, c->id);
  added.id = c->id;
  added.peerurls = m ? m->peer_urls : c->urls;
  added.n_peerurls = m ? m->n_peer_urls : c->n_urls;
  added.islearner = c->learner;
  resp.header = cl_header(c->call);
  resp.member = &added;
  cl_members(c->call, &resp.members, &resp.n_members);
  api_reply(c->call, &resp.base);
}

/* Cluster.MemberAdd. */
static void cl_member_add(grpc_call_t *call, ProtobufCMessage *m) {
  if (api_auth_refuse_non_admin(call)) return; /* root only (etcd's checkMembershipOperationPermission) */
  if (cl_refuse_single(call)) return;
  Etcdserverpb__MemberAddRequest *req = (Etcdserverpb__MemberAddRequest *)m;
  add_ctx_t *c = arena_alloc(grpc_call_arena(call), sizeof(*c));
  *c = (add_ctx_t){.call = call, .learner = req->islearner, .urls = req->peerurls, .n_urls = req->n_peerurls};
  reconfig_member_add(api_ctx(call)->srv, req->peerurls, req->n_peerurls, req->islearner, &c->id, add_done,
                      c);
}

/* ---- MemberRemove, MemberUpdate ------------------------------------------------------------ */

/* A removal was applied (or failed). */
static void remove_done(void *ctx, int err) {
  grpc_call_t *call = ctx;
  if (err) {
    api_finish_error(call, err);
    return;
  }
  Etcdserverpb__MemberRemoveResponse resp = ETCDSERVERPB__MEMBER_REMOVE_RESPONSE__INIT;
  resp.header = cl_header(call);
  cl_members(call, &resp.members, &resp.n_members);
  api_reply(call, &resp.base);
}

/* Cluster.MemberRemove. */
static void cl_member_remove(grpc_call_t *call, ProtobufCMessage *m) {
  if (api_auth_refuse_non_admin(call)) return; /* root only (etcd's checkMembershipOperationPermission) */
  if (cl_refuse_single(call)) return;
  Etcdserverpb__MemberRemoveRequest *req = (Etcdserverpb__MemberRemoveRequest *)m;
  reconfig_member_remove(api_ctx(call)->srv, req->id, remove_done, call);
}

/* An update was applied (or failed). */
static void update_done(void *ctx, int err) {
  grpc_call_t *call = ctx;
  if (err) {
    api_finish_error(call, err);
    return;
  }
  Etcdserverpb__MemberUpdateResponse resp = ETCDSERVERPB__MEMBER_UPDATE_RESPONSE__INIT;
  resp.header = cl_header(call);
  cl_members(call, &resp.members, &resp.n_members);
  api_reply(call, &resp.base);
}

/* Cluster.MemberUpdate. */
static void cl_member_update(grpc_call_t *call, ProtobufCMessage *m) {
  if (api_auth_refuse_non_admin(call)) return; /* root only (etcd's checkMembershipOperationPermission) */
  if (cl_refuse_single(call)) return;
  Etcdserverpb__MemberUpdateRequest *req = (Etcdserverpb__MemberUpdateRequest *)m;
  reconfig_member_update(api_ctx(call)->srv, req->id, req->peerurls, req->n_peerurls, update_done, call);
}

/* ---- MemberPromote (a follower forwards it to the leader over the peer port) ------------- */

typedef struct fwd {
  uv_work_t work;
  grpc_call_t *call;
  char **urls; /* the leader's peer URLs (owned copies) */
  size_t n_urls;
  uint8_t req[32];
  size_t req_len;
  int rc;
  uint8_t *resp;
  size_t resp_len;
  int status;
  char message[256];
} fwd_t;

/* Worker thread: the blocking call to the leader. */
static void fwd_work(uv_work_t *w) {
  fwd_t *f = w->data;
  f->rc = peer_call_status(f->urls, f->n_urls, "/etcdserverpb.Cluster/MemberPromote", f->req, f->req_len,
                           &f->resp, &f->resp_len, &f->status, f->message, sizeof(f->message));
}

/* Loop thread: answers with the leader's outcome. */
static void fwd_after(uv_work_t *w, int status) {
  fwd_t *f = w->data;
  (void)status;
  if (f->rc == CETCD_EGRPC) {
    grpc_call_finish(f->call, f->status, f->message);
  } else if (f->rc) {
    api_finish_error(f->call, CETCD_ETIMEOUT);
  } else {
    Etcdserverpb__MemberPromoteResponse *resp =
        etcdserverpb__member_promote_response__unpack(&grpc_call_arena(f->call)->pb, f->resp_len, f->resp);
    if (resp) {
      resp->header = cl_header(f->call);
      api_reply(f->call, &resp->base);
    } else {
      api_finish_error(f->call, CETCD_ECORRUPT);
    }
  }
  for (size_t i = 0; i < f->n_urls; i++) free(f->urls[i]);
  free(f->urls);
  free(f->resp);
  free(f);
}

/* A promotion was applied here (or failed; a follower forwards to the leader). */
static void promote_done(void *ctx, int err);

typedef struct promote_ctx {
  grpc_call_t *call;
  uint64_t id;
} promote_ctx_t;

/* Sends the promotion to the leader's peer port. */
static void promote_forward(promote_ctx_t *c) {
  server_t *srv = api_ctx(c->call)->srv;
  uint64_t leader = 0;
  raft_node_info(srv->rn, &leader, NULL, NULL);
  const member_t *lm = leader ? membership_find(srv->members, leader) : NULL;
  if (!lm || leader == srv->member_id) {
    api_finish_error(c->call, CETCD_ENOLEADER);
    return;
  }
  fwd_t *f = xcalloc(1, sizeof(*f));
  f->work.data = f;
  f->call = c->call;
  f->n_urls = lm->n_peer_urls;
  f->urls = xcalloc(f->n_urls ? f->n_urls : 1, sizeof(char *));
  for (size_t i = 0; i < f->n_urls; i++) f->urls[i] = xstrdup(lm->peer_urls[i]);
  Etcdserverpb__MemberPromoteRequest req = ETCDSERVERPB__MEMBER_PROMOTE_REQUEST__INIT;
  req.id = c->id;
  f->req_len = etcdserverpb__member_promote_request__pack(&req, f->req);
  uv_queue_work(srv->loop, &f->work, fwd_work, fwd_after);
}

static void promote_done(void *ctx, int err) {
  promote_ctx_t *c = ctx;
  if (err == CETCD_ENOTLEADER) {
    promote_forward(c);
    return;
  }
  if (err) {
    api_finish_error(c->call, err);
    return;
  }
  Etcdserverpb__MemberPromoteResponse resp = ETCDSERVERPB__MEMBER_PROMOTE_RESPONSE__INIT;
  resp.header = cl_header(c->call);
  cl_members(c->call, &resp.members, &resp.n_members);
  api_reply(c->call, &resp.base);
}

/* Cluster.MemberPromote. */
static void cl_member_promote(grpc_call_t *call, ProtobufCMessage *m) {
  /* root only, checked where the client called: a follower forwards the request to the
   * leader's peer port without the client's token */
  bool forwarded = grpc_call_server(call) && grpc_call_server(call) != api_ctx(call)->srv->grpc;
  if (!forwarded && api_auth_refuse_non_admin(call)) return;
  if (cl_refuse_single(call)) return;
  Etcdserverpb__MemberPromoteRequest *req = (Etcdserverpb__MemberPromoteRequest *)m;
  promote_ctx_t *c = arena_alloc(grpc_call_arena(call), sizeof(*c));
  *c = (promote_ctx_t){.call = call, .id = req->id};
  reconfig_member_promote(api_ctx(call)->srv, req->id, promote_done, c);
}

const grpc_method_t api_cluster_methods[] = {
    {"/etcdserverpb.Cluster/MemberList", GRPC_UNARY, &etcdserverpb__member_list_request__descriptor,
     cl_member_list, NULL, NULL},
    {"/etcdserverpb.Cluster/MemberAdd", GRPC_UNARY, &etcdserverpb__member_add_request__descriptor,
     cl_member_add, NULL, NULL},
    {"/etcdserverpb.Cluster/MemberRemove", GRPC_UNARY, &etcdserverpb__member_remove_request__descriptor,
     cl_member_remove, NULL, NULL},
    {"/etcdserverpb.Cluster/MemberUpdate", GRPC_UNARY, &etcdserverpb__member_update_request__descriptor,
     cl_member_update, NULL, NULL},
    {"/etcdserverpb.Cluster/MemberPromote", GRPC_UNARY, &etcdserverpb__member_promote_request__descriptor,
     cl_member_promote, NULL, NULL},
};
const size_t api_cluster_methods_len = sizeof(api_cluster_methods) / sizeof(*api_cluster_methods);
