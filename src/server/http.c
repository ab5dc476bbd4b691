/* HTTP/1.1 endpoints served on the client port beside gRPC. */
#include "server/http.h"

#include <string.h>

#include "api/gateway.h"
#include "base/buf.h"
#include "mvcc/mvcc.h"
#include "server/server.h"

/* GET /health: etcd's JSON health answer. */
static void serve_health(server_t *srv, int *status, buf_t *body) {
  bool ok = !srv->stopping && !srv->wal_failed;
  *status = ok ? 200 : 503;
  buf_printf(body, "{\"health\":\"%s\"}", ok ? "true" : "false");
}

/* GET /metrics: Prometheus text format. */
static void serve_metrics(server_t *srv, buf_t *body) {
  buf_printf(body,
             "# HELP etcd_server_version Which version is running. 1 for 'server_version' label with current "
             "version.\n");
  buf_printf(body, "# TYPE etcd_server_version gauge\netcd_server_version{server_version=\"%s\"} 1\n",
             CETCD_ETCD_VERSION);
  buf_printf(body,
             "# HELP etcd_cluster_version Which version is running. 1 for 'cluster_version' label with "
             "current cluster version\n");
  buf_printf(body, "# TYPE etcd_cluster_version gauge\netcd_cluster_version{cluster_version=\"%s\"} 1\n",
             CETCD_CLUSTER_VERSION);
  buf_printf(body, "# TYPE etcd_server_has_leader gauge\netcd_server_has_leader 1\n");
  buf_printf(body, "# TYPE etcd_debugging_mvcc_keys_total gauge\netcd_debugging_mvcc_keys_total %zu\n",
             mvcc_key_count(srv->mvcc));
  buf_printf(body, "# TYPE etcd_mvcc_db_total_size_in_bytes gauge\netcd_mvcc_db_total_size_in_bytes %lld\n",
             (long long)mvcc_db_size(srv->mvcc));
  buf_printf(
      body,
      "# TYPE etcd_mvcc_db_total_size_in_use_in_bytes gauge\netcd_mvcc_db_total_size_in_use_in_bytes %lld\n",
      (long long)mvcc_db_size_in_use(srv->mvcc));
  buf_printf(body,
             "# TYPE etcd_debugging_mvcc_current_revision gauge\netcd_debugging_mvcc_current_revision %lld\n",
             (long long)mvcc_rev(srv->mvcc));
  buf_printf(body,
             "# TYPE etcd_debugging_mvcc_compact_revision gauge\netcd_debugging_mvcc_compact_revision %lld\n",
             (long long)mvcc_compact_rev(srv->mvcc));
  buf_printf(body,
             "# TYPE etcd_server_proposals_applied_total gauge\netcd_server_proposals_applied_total %llu\n",
             (unsigned long long)srv->applied_index);
}

/* Answers req with a complete response built in body, then frees body. */
static void respond(grpc_http_req_t *req, int status, const char *content_type, buf_t *body) {
  grpc_http_respond(req, status, content_type, body->data, body->len);
  buf_free(body);
}

void http_handle(void *ctx, grpc_http_req_t *req, const char *method, const char *path,
                 const uint8_t *req_body, size_t req_len) {
  server_t *srv = ctx;
  buf_t body = {0};
  int status = 200;
  size_t plen = strcspn(path, "?");
  if (plen == 7 && !strncmp(path, "/health", 7)) {
    if (strcmp(method, "GET")) {
      buf_printf(&body, "Method Not Allowed");
      respond(req, 405, "application/json", &body);
      return;
    }
    serve_health(srv, &status, &body);
    respond(req, status, "application/json", &body);
    return;
  }
  if (plen == 8 && !strncmp(path, "/version", 8)) {
    buf_printf(&body, "{\"etcdserver\":\"%s\",\"etcdcluster\":\"%s\"}", CETCD_ETCD_VERSION,
               CETCD_CLUSTER_VERSION);
    respond(req, 200, "application/json", &body);
    return;
  }
  if (plen == 8 && !strncmp(path, "/metrics", 8)) {
    serve_metrics(srv, &body);
    respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", &body);
    return;
  }
  const char *grpc_path = gateway_grpc_path(path);
  if (grpc_path && !strcmp(method, "POST")) {
    gateway_handle(srv->grpc, req, grpc_path, req_body, req_len); /* answers now or later */
    return;
  }
  buf_printf(&body, "404 page not found\n");
  respond(req, 404, "text/plain; charset=utf-8", &body);
}
