/* HTTP/1.1 endpoints served on the client port beside gRPC. */
#include "server/http.h"

#include <string.h>

#include "mvcc/mvcc.h"
#include "server/server.h"

/* GET /health: etcd's JSON health answer. */
static void serve_health(server_t *srv, int *status, buf_t *body) {
  bool ok = !srv->stopping && !srv->wal_failed;
  *status = ok ? 200 : 503;
  buf_printf(body, "{\"health\":\"%s\",\"reason\":\"%s\"}", ok ? "true" : "false",
             ok ? "" : "server is stopping or cannot write");
}

/* GET /metrics: Prometheus text format. */
static void serve_metrics(server_t *srv, buf_t *body) {
  buf_printf(body, "# HELP etcd_server_version Which version is running. 1 for 'server_version' label with current version.\n");
  buf_printf(body, "# TYPE etcd_server_version gauge\netcd_server_version{server_version=\"%s\"} 1\n",
             CETCD_ETCD_VERSION);
  buf_printf(body, "# HELP etcd_cluster_version Which version is running. 1 for 'cluster_version' label with current cluster version\n");
  buf_printf(body, "# TYPE etcd_cluster_version gauge\netcd_cluster_version{cluster_version=\"%s\"} 1\n",
             CETCD_CLUSTER_VERSION);
  buf_printf(body, "# TYPE etcd_server_has_leader gauge\netcd_server_has_leader 1\n");
  buf_printf(body, "# TYPE etcd_debugging_mvcc_keys_total gauge\netcd_debugging_mvcc_keys_total %zu\n",
             mvcc_key_count(srv->mvcc));
  buf_printf(body, "# TYPE etcd_mvcc_db_total_size_in_bytes gauge\netcd_mvcc_db_total_size_in_bytes %lld\n",
             (long long)mvcc_db_size(srv->mvcc));
  buf_printf(body,
             "# TYPE etcd_mvcc_db_total_size_in_use_in_bytes gauge\netcd_mvcc_db_total_size_in_use_in_bytes %lld\n",
             (long long)mvcc_db_size_in_use(srv->mvcc));
  buf_printf(body, "# TYPE etcd_debugging_mvcc_current_revision gauge\netcd_debugging_mvcc_current_revision %lld\n",
             (long long)mvcc_rev(srv->mvcc));
  buf_printf(body, "# TYPE etcd_debugging_mvcc_compact_revision gauge\netcd_debugging_mvcc_compact_revision %lld\n",
             (long long)mvcc_compact_rev(srv->mvcc));
  buf_printf(body, "# TYPE etcd_server_proposals_applied_total gauge\netcd_server_proposals_applied_total %llu\n",
             (unsigned long long)srv->applied_index);
}

bool http_handle(void *ctx, const char *method, const char *path, const uint8_t *req_body, size_t req_len,
                 int *status, const char **content_type, buf_t *body) {
  server_t *srv = ctx;
  (void)req_body;
  (void)req_len;
  size_t plen = strcspn(path, "?");
  if (plen == 7 && !strncmp(path, "/health", 7)) {
    *content_type = "application/json";
    if (strcmp(method, "GET")) {
      *status = 405;
      buf_printf(body, "Method Not Allowed");
      return true;
    }
    serve_health(srv, status, body);
    return true;
  }
  if (plen == 8 && !strncmp(path, "/version", 8)) {
    *status = 200;
    *content_type = "application/json";
    buf_printf(body, "{\"etcdserver\":\"%s\",\"etcdcluster\":\"%s\"}", CETCD_ETCD_VERSION, CETCD_CLUSTER_VERSION);
    return true;
  }
  if (plen == 8 && !strncmp(path, "/metrics", 8)) {
    *status = 200;
    *content_type = "text/plain; version=0.0.4; charset=utf-8";
    serve_metrics(srv, body);
    return true;
  }
  return false;
}
