/* JSON gateway: HTTP/1.1 POST /v3/... → the gRPC handlers → JSON, at most max_streams calls
 * at once (the rest wait in arrival order). */
#include "api/gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/pbjson.h"
#include "base/alloc.h"
#include "base/buf.h"

typedef struct route {
  const char *url; /* after the /v3 prefix */
  const char *grpc;
} route_t;

static const route_t routes[] = {
    {"/kv/range", "/etcdserverpb.KV/Range"},
    {"/kv/put", "/etcdserverpb.KV/Put"},
    {"/kv/deleterange", "/etcdserverpb.KV/DeleteRange"},
    {"/kv/txn", "/etcdserverpb.KV/Txn"},
    {"/kv/compaction", "/etcdserverpb.KV/Compact"},
    {"/watch", "/etcdserverpb.Watch/Watch"},
    {"/lease/grant", "/etcdserverpb.Lease/LeaseGrant"},
    {"/lease/revoke", "/etcdserverpb.Lease/LeaseRevoke"},
    {"/kv/lease/revoke", "/etcdserverpb.Lease/LeaseRevoke"},
    {"/lease/keepalive", "/etcdserverpb.Lease/LeaseKeepAlive"},
    {"/lease/timetolive", "/etcdserverpb.Lease/LeaseTimeToLive"},
    {"/kv/lease/timetolive", "/etcdserverpb.Lease/LeaseTimeToLive"},
    {"/lease/leases", "/etcdserverpb.Lease/LeaseLeases"},
    {"/kv/lease/leases", "/etcdserverpb.Lease/LeaseLeases"},
    {"/cluster/member/add", "/etcdserverpb.Cluster/MemberAdd"},
    {"/cluster/member/remove", "/etcdserverpb.Cluster/MemberRemove"},
    {"/cluster/member/update", "/etcdserverpb.Cluster/MemberUpdate"},
    {"/cluster/member/list", "/etcdserverpb.Cluster/MemberList"},
    {"/cluster/member/promote", "/etcdserverpb.Cluster/MemberPromote"},
    {"/maintenance/alarm", "/etcdserverpb.Maintenance/Alarm"},
    {"/maintenance/status", "/etcdserverpb.Maintenance/Status"},
    {"/maintenance/defragment", "/etcdserverpb.Maintenance/Defragment"},
    {"/maintenance/hash", "/etcdserverpb.Maintenance/HashKV"},
    {"/maintenance/snapshot", "/etcdserverpb.Maintenance/Snapshot"},
    {"/maintenance/transfer-leadership", "/etcdserverpb.Maintenance/MoveLeader"},
    {"/auth/enable", "/etcdserverpb.Auth/AuthEnable"},
    {"/auth/disable", "/etcdserverpb.Auth/AuthDisable"},
    {"/auth/status", "/etcdserverpb.Auth/AuthStatus"},
    {"/auth/authenticate", "/etcdserverpb.Auth/Authenticate"},
    {"/auth/user/add", "/etcdserverpb.Auth/UserAdd"},
    {"/auth/user/get", "/etcdserverpb.Auth/UserGet"},
    {"/auth/user/list", "/etcdserverpb.Auth/UserList"},
    {"/auth/user/delete", "/etcdserverpb.Auth/UserDelete"},
    {"/auth/user/changepw", "/etcdserverpb.Auth/UserChangePassword"},
    {"/auth/user/grant", "/etcdserverpb.Auth/UserGrantRole"},
    {"/auth/user/revoke", "/etcdserverpb.Auth/UserRevokeRole"},
    {"/auth/role/add", "/etcdserverpb.Auth/RoleAdd"},
    {"/auth/role/get", "/etcdserverpb.Auth/RoleGet"},
    {"/auth/role/list", "/etcdserverpb.Auth/RoleList"},
    {"/auth/role/delete", "/etcdserverpb.Auth/RoleDelete"},
    {"/auth/role/grant", "/etcdserverpb.Auth/RoleGrantPermission"},
    {"/auth/role/revoke", "/etcdserverpb.Auth/RoleRevokePermission"},
    {"/lock/lock", "/v3lockpb.Lock/Lock"},
    {"/lock/unlock", "/v3lockpb.Lock/Unlock"},
    {"/election/campaign", "/v3electionpb.Election/Campaign"},
    {"/election/proclaim", "/v3electionpb.Election/Proclaim"},
    {"/election/leader", "/v3electionpb.Election/Leader"},
    {"/election/observe", "/v3electionpb.Election/Observe"},
    {"/election/resign", "/v3electionpb.Election/Resign"},
};

const char *gateway_grpc_path(const char *url_path) {
  static const char *prefixes[] = {"/v3beta", "/v3alpha", "/v3"};
  for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++) {
    size_t n = strlen(prefixes[i]);
    if (strncmp(url_path, prefixes[i], n) || url_path[n] != '/') continue;
    const char *rest = url_path + n;
    size_t rlen = strcspn(rest, "?");
    for (size_t r = 0; r < sizeof(routes) / sizeof(*routes); r++)
      if (strlen(routes[r].url) == rlen && !strncmp(routes[r].url, rest, rlen)) return routes[r].grpc;
    return NULL;
  }
  return NULL;
}

/* HTTP status for a gRPC status code (grpc-gateway v1's mapping, which etcd 3.4 and 3.5
 * use: FailedPrecondition is 412). */
static int http_status_for(int code) {
  switch (code) {
    case GRPC_OK:
      return 200;
    case GRPC_CANCELLED:
      return 408;
    case GRPC_FAILED_PRECONDITION:
      return 412;
    case GRPC_INVALID_ARGUMENT:
    case GRPC_OUT_OF_RANGE:
      return 400;
    case GRPC_DEADLINE_EXCEEDED:
      return 504;
    case GRPC_NOT_FOUND:
      return 404;
    case GRPC_ALREADY_EXISTS:
    case GRPC_ABORTED:
      return 409;
    case GRPC_PERMISSION_DENIED:
      return 403;
    case GRPC_UNAUTHENTICATED:
      return 401;
    case GRPC_RESOURCE_EXHAUSTED:
      return 429;
    case GRPC_UNIMPLEMENTED:
      return 501;
    case GRPC_UNAVAILABLE:
      return 503;
    default:
      return 500;
  }
}

/* Answers with grpc-gateway's error object. */
static void respond_error(grpc_http_req_t *req, int code, const char *message) {
  buf_t b = {0};
  const char *m = message ? message : "";
  buf_append(&b, "{\"error\":", 9);
  pbjson_string(&b, m, strlen(m));
  buf_append(&b, ",\"message\":", 11);
  pbjson_string(&b, m, strlen(m));
  buf_printf(&b, ",\"code\":%d}", code);
  grpc_http_respond(req, http_status_for(code), "application/json", b.data, b.len);
  buf_free(&b);
}

/* A request waiting for one of the gateway's streams. */
typedef struct gw_wait {
  struct gw_wait *next;
  gateway_t *gw;
  grpc_http_req_t *req;
  const char *grpc_path; /* static (routes[]) */
  uint8_t *body;         /* owned copy */
  size_t len;
} gw_wait_t;

struct gateway {
  grpc_server_t *grpc;
  uint32_t max_streams; /* 0 = no limit */
  uint32_t active;      /* calls started and not finished */
  bool releasing;       /* gw_release is starting waiters (calls may finish inside) */
  gw_wait_t *head, *tail;
};

typedef struct gw_call {
  gateway_t *gw;
  grpc_http_req_t *req;
  grpc_call_t *call; /* streaming calls: cancelled if the HTTP client goes away */
  buf_t body;
  bool streaming;
  int sent;
} gw_call_t;

/* A response message from the handler: encode it. Streaming responses are wrapped in
 * {"result": ...} lines, as grpc-gateway does. */
static void gw_on_send(void *ctx, const ProtobufCMessage *msg) {
  gw_call_t *gc = ctx;
  if (gc->streaming) {
    buf_append(&gc->body, "{\"result\":", 10);
    pbjson_encode(msg, &gc->body);
    buf_append(&gc->body, "}\n", 2);
    grpc_http_respond_chunk(gc->req, gc->body.data, gc->body.len);
    buf_reset(&gc->body);
  } else if (!gc->sent) {
    pbjson_encode(msg, &gc->body);
  }
  gc->sent++;
}

static void gw_release(gateway_t *gw);

/* The handler finished: answer the HTTP request, and give its stream to the next waiter. */
static void gw_on_finish(void *ctx, int status, const char *message) {
  gw_call_t *gc = ctx;
  gateway_t *gw = gc->gw;
  if (gc->streaming && gc->sent) {
    grpc_http_respond_end(gc->req);
  } else if (status != GRPC_OK) {
    respond_error(gc->req, status, message);
  } else {
    grpc_http_respond(gc->req, 200, "application/json", gc->body.data, gc->body.len);
  }
  buf_free(&gc->body);
  free(gc);
  gw_release(gw);
}

/* Bytes of the streamed HTTP answer the client has not taken yet (slow watch consumers). */
static size_t gw_pending(void *ctx) { return grpc_http_req_pending_bytes(((gw_call_t *)ctx)->req); }

static const grpc_local_ops_t gw_ops = {gw_on_send, gw_on_finish, gw_pending};

/* The HTTP client of a streaming call went away: cancel the call (its handler then
 * finishes it, which answers and frees the request). */
static void gw_on_close(void *arg) {
  gw_call_t *gc = arg;
  grpc_local_call_cancel(gc->call);
}

/* Starts the call for req now (a stream is free). */
static void gw_start(gateway_t *gw, grpc_http_req_t *req, const char *grpc_path, const uint8_t *body,
                     size_t len) {
  gw_call_t *gc = xcalloc(1, sizeof(*gc));
  gc->gw = gw;
  gc->req = req;
  grpc_call_t *call = grpc_local_call_new(gw->grpc, grpc_path, &gw_ops, gc);
  if (!call) {
    free(gc);
    respond_error(req, GRPC_UNIMPLEMENTED, "unknown method");
    return;
  }
  const grpc_method_t *m = grpc_call_method(call);
  gc->streaming = m->kind == GRPC_SERVER_STREAM || m->kind == GRPC_BIDI_STREAM;
  char err[200];
  ProtobufCMessage *msg = NULL;
  if (pbjson_decode(m->request, (const char *)body, len, grpc_call_arena(call), &msg, err, sizeof(err))) {
    /* grpc-gateway reports a body it cannot parse as InvalidArgument */
    grpc_local_call_abort(call);
    free(gc);
    respond_error(req, GRPC_INVALID_ARGUMENT, err);
    return;
  }
  gw->active++;
  if (gc->streaming) {
    gc->call = call;
    grpc_http_req_on_close(req, gw_on_close, gc);
  }
  const char *authz = grpc_http_req_header(req, "authorization"); /* grpc-gateway's token field */
  if (authz) grpc_local_call_set_metadata(call, "token", authz);
  grpc_local_call_start(call, msg);
}

/* Unlinks w from its gateway's queue and frees it (its request must be answered already or
 * be passed on). */
static void gw_wait_drop(gw_wait_t *w) {
  gateway_t *gw = w->gw;
  gw_wait_t **pp = &gw->head;
  while (*pp != w) pp = &(*pp)->next;
  *pp = w->next;
  if (gw->tail == w) {
    gw->tail = NULL;
    for (gw_wait_t *t = gw->head; t; t = t->next) gw->tail = t;
  }
  free(w->body);
  free(w);
}

/* A waiting request's client went away: answer it (the answer is dropped) and forget it. */
static void gw_wait_on_close(void *arg) {
  gw_wait_t *w = arg;
  respond_error(w->req, GRPC_CANCELLED, "context canceled");
  gw_wait_drop(w);
}

/* A call ended: start waiting requests while streams are free. */
static void gw_release(gateway_t *gw) {
  gw->active--;
  if (gw->releasing) return; /* a waiter's call finished at once: the loop below goes on */
  gw->releasing = true;
  while (gw->head && (!gw->max_streams || gw->active < gw->max_streams)) {
    gw_wait_t *w = gw->head;
    grpc_http_req_t *req = w->req;
    const char *path = w->grpc_path;
    uint8_t *body = w->body;
    size_t len = w->len;
    w->body = NULL;
    grpc_http_req_on_close(req, NULL, NULL);
    gw_wait_drop(w);
    gw_start(gw, req, path, body, len);
    free(body);
  }
  gw->releasing = false;
}

gateway_t *gateway_new(grpc_server_t *g, uint32_t max_streams) {
  gateway_t *gw = xcalloc(1, sizeof(*gw));
  gw->grpc = g;
  gw->max_streams = max_streams;
  return gw;
}

void gateway_free(gateway_t *gw) {
  if (!gw) return;
  while (gw->head) gw_wait_on_close(gw->head);
  free(gw);
}

void gateway_handle(gateway_t *gw, grpc_http_req_t *req, const char *grpc_path, const uint8_t *body,
                    size_t len) {
  if (!gw->max_streams || gw->active < gw->max_streams) {
    gw_start(gw, req, grpc_path, body, len);
    return;
  }
  /* every stream is taken: wait, as grpc-go's client waits for stream quota */
  gw_wait_t *w = xcalloc(1, sizeof(*w));
  w->gw = gw;
  w->req = req;
  w->grpc_path = grpc_path;
  w->body = xmalloc(len ? len : 1);
  if (len) memcpy(w->body, body, len);
  w->len = len;
  if (gw->tail)
    gw->tail->next = w;
  else
    gw->head = w;
  gw->tail = w;
  grpc_http_req_on_close(req, gw_wait_on_close, w);
}
