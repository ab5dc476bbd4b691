/* The api layer's hooks into the server (server_layer_t): main fills one table with
 * api_server_layer and passes it to server_start, so the server below serves etcd's
 * services, the JSON gateway and their shutdown without including api/. */
#include "api/api_layer.h"

#include <string.h>

#include "api/api.h"
#include "api/gateway.h"
#include "api/snapshot_rpc.h"

/* serve_clients: every service and the gateway on the client gRPC server. */
static void serve_clients(void *ctx, grpc_server_t *g) {
  api_ctx_t *api = ctx;
  api->gateway = gateway_new(g, api->cfg->max_concurrent_streams);
  api_register_all(g, api);
}

/* serve_peers: a joining member reads the membership there; a follower forwards
 * MemberPromote there. */
static void serve_peers(void *ctx, grpc_server_t *g) {
  grpc_server_add_methods(g, api_cluster_methods, api_cluster_methods_len, ctx);
}

/* http: POSTs to the gateway's paths. */
static bool serve_http(void *ctx, grpc_http_req_t *req, const char *method, const char *path,
                       const uint8_t *body, size_t len) {
  api_ctx_t *api = ctx;
  const char *grpc_path = gateway_grpc_path(path);
  if (!grpc_path || strcmp(method, "POST") || !api->gateway) return false;
  gateway_handle(api->gateway, req, grpc_path, body, len); /* answers now or later */
  return true;
}

/* stores_changed: copies the server's stores (and its loop and flags). */
static void stores_changed(void *ctx, server_t *srv) {
  api_ctx_t *api = ctx;
  api->loop = srv->loop;
  api->cfg = srv->cfg;
  api->mvcc = srv->mvcc;
  api->watch = srv->watch;
  api->lessor = srv->lessor;
  api->auth = srv->auth;
  api->srv = srv;
}

/* no_leader: streams that require a leader end. */
static void no_leader(void *ctx, grpc_server_t *g) {
  (void)ctx;
  api_end_streams_requiring_leader(g);
}

/* stopping: Watch streams end (they never end by themselves). */
static void stopping(void *ctx) { api_watch_stop_all(ctx); }

/* clients_gone: the gateway goes; no request waits, its clients are gone. */
static void clients_gone(void *ctx) {
  api_ctx_t *api = ctx;
  gateway_free(api->gateway);
  api->gateway = NULL;
}

/* storage_closing: snapshot builds let go of the backend. */
static void storage_closing(void *ctx) { snapshot_rpc_shutdown(ctx); }

void api_server_layer(api_ctx_t *api, server_layer_t *layer) {
  memset(api, 0, sizeof(*api));
  *layer = (server_layer_t){
      .ctx = api,
      .gate = api_gate,
      .hold = api_auth_hold,
      .serve_clients = serve_clients,
      .serve_peers = serve_peers,
      .http = serve_http,
      .stores_changed = stores_changed,
      .no_leader = no_leader,
      .stopping = stopping,
      .clients_gone = clients_gone,
      .storage_closing = storage_closing,
  };
}
