/* HTTP/1.1 endpoints served on the client port beside gRPC. */
#include "server/http.h"

#include <string.h>

#include "base/buf.h"
#include "mvcc/mvcc.h"
#include "server/alarm.h"
#include "server/metrics.h"
#include "server/raft_node.h"
#include "server/server.h"

/* True if the query string of path has exclude=<name> (etcd's /health?exclude=NOSPACE). */
static bool health_excluded(const char *path, const char *name) {
  const char *q = strchr(path, '?');
  size_t n = strlen(name);
  while (q) {
    q++;
    if (!strncmp(q, "exclude=", 8) && !strncmp(q + 8, name, n) && (q[8 + n] == '&' || q[8 + n] == 0))
      return true;
    q = strchr(q, '&');
  }
  return false;
}

/* GET /health: etcd's JSON health answer; false while an alarm (not excluded) is raised.
 * A false answer is sent as Go's http.Error does: 503, text/plain, a trailing newline. */
static void serve_health(server_t *srv, const char *path, int *status, buf_t *body, const char **ctype) {
  bool ok = !srv->stopping && !srv->wal_failed;
  if (ok && srv->rn) { /* a cluster member is healthy only while a leader is known */
    uint64_t lead = 0;
    raft_node_info(srv->rn, &lead, NULL, NULL);
    ok = lead != 0;
  }
  size_t na = alarm_count(srv->alarms, ETCDSERVERPB__ALARM_TYPE__NONE);
  for (size_t i = 0; ok && i < na; i++) {
    uint64_t member;
    int type;
    char name[12];
    alarm_get(srv->alarms, i, &member, &type);
    if (!health_excluded(path, alarm_type_name(type, name))) ok = false;
  }
  metrics_on_health(ok);
  *status = ok ? 200 : 503;
  *ctype = ok ? "application/json" : "text/plain; charset=utf-8";
  buf_printf(body, "{\"health\":\"%s\"}%s", ok ? "true" : "false", ok ? "" : "\n");
}

/* GET /metrics: Prometheus text format (server/metrics.c). */
static void serve_metrics(server_t *srv, buf_t *body) { metrics_render(srv, body); }

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
    const char *ctype = "application/json";
    serve_health(srv, path, &status, &body, &ctype);
    respond(req, status, ctype, &body);
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
  if (srv->layer->http(srv->layer->ctx, req, method, path, req_body, req_len)) return; /* the JSON gateway */
  buf_printf(&body, "404 page not found\n");
  respond(req, 404, "text/plain; charset=utf-8", &body);
}
