/* Metric storage and the Prometheus text rendering. */
#include "server/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "mvcc/mvcc.h"
#include "server/config.h"
#include "server/server.h"
#include "wal/wal.h"
#include "watch/watch.h"

/* etcd's WAL fsync buckets: 1 ms doubling 14 times (up to 8.192 s). */
enum { FSYNC_BUCKETS = 14, GRPC_CODES = 17 };
static const char *const fsync_le[FSYNC_BUCKETS] = {"0.001", "0.002", "0.004", "0.008", "0.016",
                                                    "0.032", "0.064", "0.128", "0.256", "0.512",
                                                    "1.024", "2.048", "4.096", "8.192"};

/* grpc-go's names of the status codes (codes.Code.String). */
static const char *const grpc_code_names[GRPC_CODES] = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

typedef struct grpc_stat {
  const grpc_method_t *m;
  uint64_t started;
  uint64_t handled[GRPC_CODES];
} grpc_stat_t;

typedef struct prefix_stat {
  char name[METRICS_MAX_PREFIX_LEN + 1];
  uint64_t n;
} prefix_stat_t;

static struct {
  uint64_t range, put, del, txn;
  uint64_t health_ok, health_failed;
  prefix_stat_t prefixes[METRICS_MAX_PREFIXES];
  size_t n_prefixes;
  uint64_t prefix_other;
  grpc_stat_t *grpc;
  size_t n_grpc, cap_grpc;
} M;

/* Written by the WAL writer thread. */
static _Atomic uint64_t fsync_buckets[FSYNC_BUCKETS], fsync_count, fsync_sum_ns;

void metrics_reset(void) {
  free(M.grpc);
  memset(&M, 0, sizeof(M));
  for (int i = 0; i < FSYNC_BUCKETS; i++) atomic_store(&fsync_buckets[i], 0);
  atomic_store(&fsync_count, 0);
  atomic_store(&fsync_sum_ns, 0);
}

/* ============================== counting ============================== */

void metrics_key_prefix(const uint8_t *key, size_t len, char *out) {
  size_t n = len;
  for (size_t i = 1; i < len; i++)
    if (key[i] == '/') {
      n = i + 1;
      break;
    }
  if (n > METRICS_MAX_PREFIX_LEN) n = METRICS_MAX_PREFIX_LEN;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = key[i];
    out[i] = (c < 0x20 || c > 0x7e || c == '"' || c == '\\') ? '_' : (char)c;
  }
  out[n] = 0;
}

void metrics_on_write(const uint8_t *key, size_t len) {
  char p[METRICS_MAX_PREFIX_LEN + 1];
  metrics_key_prefix(key, len, p);
  for (size_t i = 0; i < M.n_prefixes; i++)
    if (!strcmp(M.prefixes[i].name, p)) {
      M.prefixes[i].n++;
      return;
    }
  if (M.n_prefixes == METRICS_MAX_PREFIXES) {
    M.prefix_other++;
    return;
  }
  memcpy(M.prefixes[M.n_prefixes].name, p, strlen(p) + 1);
  M.prefixes[M.n_prefixes++].n = 1;
}

/* Per-request op counts, like etcd's metricsTxnWrite. */
typedef struct ops {
  uint64_t r, p, d;
} ops_t;

/* True if a put reads the previous value first (etcd ranges for these flags). */
static bool put_reads(const Etcdserverpb__PutRequest *p) {
  return p->prev_kv || p->ignore_value || p->ignore_lease;
}

/* Counts the compares and the ops of the branch a txn took (nested txns included);
 * writes, when true, also feeds the per-prefix counts. */
static void count_txn(const Etcdserverpb__TxnRequest *req, const Etcdserverpb__TxnResponse *resp, bool writes,
                      ops_t *o) {
  o->r += req->n_compare;
  if (!resp) return;
  Etcdserverpb__RequestOp **ops = resp->succeeded ? req->success : req->failure;
  size_t n = resp->succeeded ? req->n_success : req->n_failure;
  for (size_t i = 0; i < n; i++) {
    const Etcdserverpb__ResponseOp *ro = i < resp->n_responses ? resp->responses[i] : NULL;
    const Etcdserverpb__RequestOp *op = ops[i];
    switch (op->request_case) {
      case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
        o->r++;
        break;
      case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
        o->p++;
        o->r += put_reads(op->request_put);
        if (writes) metrics_on_write(op->request_put->key.data, op->request_put->key.len);
        break;
      case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
        o->d++;
        o->r += op->request_delete_range->prev_kv;
        if (writes && ro && ro->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE &&
            ro->response_delete_range->deleted > 0)
          metrics_on_write(op->request_delete_range->key.data, op->request_delete_range->key.len);
        break;
      case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
        count_txn(op->request_txn,
                  ro && ro->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN
                      ? ro->response_txn
                      : NULL,
                  writes, o);
        break;
      default:
        break;
    }
  }
}

/* Adds one request's op counts to the totals. */
static void add_ops(const ops_t *o) {
  M.range += o->r;
  M.put += o->p;
  M.del += o->d;
  if (o->r + o->p + o->d > 1) M.txn++;
}

void metrics_on_apply(const Cetcdinternal__InternalRequest *req, const apply_result_t *res) {
  if (res->err) return;
  ops_t o = {0, 0, 0};
  if (req->put) {
    o.p = 1;
    o.r = put_reads(req->put);
    metrics_on_write(req->put->key.data, req->put->key.len);
  } else if (req->delete_range) {
    o.d = 1;
    o.r = req->delete_range->prev_kv;
    if (res->delete_range && res->delete_range->deleted > 0)
      metrics_on_write(req->delete_range->key.data, req->delete_range->key.len);
  } else if (req->txn) {
    count_txn(req->txn, res->txn, true, &o);
  } else {
    return;
  }
  add_ops(&o);
}

void metrics_on_range(void) { M.range++; }

void metrics_on_read_txn(const Etcdserverpb__TxnRequest *req, const Etcdserverpb__TxnResponse *resp) {
  ops_t o = {0, 0, 0};
  count_txn(req, resp, false, &o);
  add_ops(&o);
}

void metrics_grpc_observe(const grpc_method_t *m, int code) {
  if (!m) return;
  grpc_stat_t *st = NULL;
  for (size_t i = 0; i < M.n_grpc; i++)
    if (M.grpc[i].m == m || !strcmp(M.grpc[i].m->path, m->path)) {
      st = &M.grpc[i];
      break;
    }
  if (!st) {
    if (M.n_grpc == M.cap_grpc) {
      M.cap_grpc = M.cap_grpc ? M.cap_grpc * 2 : 32;
      M.grpc = xrealloc(M.grpc, M.cap_grpc * sizeof(*M.grpc));
    }
    st = &M.grpc[M.n_grpc++];
    memset(st, 0, sizeof(*st));
    st->m = m;
  }
  if (code < 0)
    st->started++;
  else
    st->handled[code < GRPC_CODES ? code : GRPC_UNKNOWN]++;
}

void metrics_observe_wal_fsync(double seconds) {
  if (seconds < 0) seconds = 0;
  double ub = 0.001;
  for (int i = 0; i < FSYNC_BUCKETS; i++, ub *= 2)
    if (seconds <= ub) atomic_fetch_add(&fsync_buckets[i], 1);
  atomic_fetch_add(&fsync_count, 1);
  atomic_fetch_add(&fsync_sum_ns, (uint64_t)(seconds * 1e9));
}

void metrics_on_health(bool ok) {
  if (ok)
    M.health_ok++;
  else
    M.health_failed++;
}

/* ============================== rendering ============================== */

/* HELP and TYPE lines. */
static void head(buf_t *b, const char *name, const char *type, const char *help) {
  buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric without labels. */
static void one(buf_t *b, const char *name, const char *type, const char *help, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void one(buf_t *b, const char *name, const char *type, const char *help, const char *fmt, ...) {
  head(b, name, type, help);
  char v[64];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v, sizeof(v), fmt, ap);
  va_end(ap);
  buf_printf(b, "%s %s\n", name, v);
}

/* Splits "/pkg.Service/Method" into service and method (borrowed lengths). */
static void split_path(const char *path, const char **svc, int *svc_len, const char **meth) {
  const char *p = path[0] == '/' ? path + 1 : path;
  const char *slash = strchr(p, '/');
  *svc = p;
  *svc_len = slash ? (int)(slash - p) : (int)strlen(p);
  *meth = slash ? slash + 1 : "";
}

/* go-grpc-prometheus' grpc_type label. */
static const char *grpc_type(const grpc_method_t *m) {
  switch (m->kind) {
    case GRPC_UNARY:
      return "unary";
    case GRPC_SERVER_STREAM:
      return "server_stream";
    case GRPC_CLIENT_STREAM:
      return "client_stream";
    default:
      return "bidi_stream";
  }
}

/* The gRPC families. */
static void render_grpc(buf_t *b) {
  head(b, "grpc_server_started_total", "counter", "gRPC calls started, by method.");
  for (size_t i = 0; i < M.n_grpc; i++) {
    const char *svc, *meth;
    int sl;
    split_path(M.grpc[i].m->path, &svc, &sl, &meth);
    buf_printf(b,
               "grpc_server_started_total{grpc_method=\"%s\",grpc_service=\"%.*s\",grpc_type=\"%s\"} %" PRIu64
               "\n",
               meth, sl, svc, grpc_type(M.grpc[i].m), M.grpc[i].started);
  }
  head(b, "grpc_server_handled_total", "counter", "gRPC calls finished, by method and status code.");
  for (size_t i = 0; i < M.n_grpc; i++) {
    const char *svc, *meth;
    int sl;
    split_path(M.grpc[i].m->path, &svc, &sl, &meth);
    for (int c = 0; c < GRPC_CODES; c++) {
      if (!M.grpc[i].handled[c] && c != GRPC_OK) continue;
      buf_printf(b,
                 "grpc_server_handled_total{grpc_code=\"%s\",grpc_method=\"%s\",grpc_service=\"%.*s\","
                 "grpc_type=\"%s\"} %" PRIu64 "\n",
                 grpc_code_names[c], meth, sl, svc, grpc_type(M.grpc[i].m), M.grpc[i].handled[c]);
    }
  }
}

/* The WAL fsync histogram. */
static void render_fsync(buf_t *b) {
  const char *n = "etcd_disk_wal_fsync_duration_seconds";
  head(b, n, "histogram", "Time spent in the WAL's fdatasync calls.");
  for (int i = 0; i < FSYNC_BUCKETS; i++)
    buf_printf(b, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", n, fsync_le[i], atomic_load(&fsync_buckets[i]));
  uint64_t count = atomic_load(&fsync_count);
  buf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", n, count);
  buf_printf(b, "%s_sum %.9g\n", n, (double)atomic_load(&fsync_sum_ns) / 1e9);
  buf_printf(b, "%s_count %" PRIu64 "\n", n, count);
}

void metrics_render(server_t *srv, buf_t *b) {
  head(b, "etcd_cluster_version", "gauge",
       "The cluster version (major.minor) as a label; the value is always 1.");
  /* etcd labels it with major.minor only (version.Cluster): "3.4" */
  const char *cv = CETCD_CLUSTER_VERSION, *dot = strchr(cv, '.');
  int cvlen = dot && strchr(dot + 1, '.') ? (int)(strchr(dot + 1, '.') - cv) : (int)strlen(cv);
  buf_printf(b, "etcd_cluster_version{cluster_version=\"%.*s\"} 1\n", cvlen, cv);
  head(b, "etcd_server_version", "gauge",
       "The etcd version this server reports, as a label; the value is always 1.");
  buf_printf(b, "etcd_server_version{server_version=\"%s\"} 1\n", CETCD_ETCD_VERSION);
  if (srv) {
    head(b, "etcd_server_id", "gauge", "This member's id (hex) as a label; the value is always 1.");
    buf_printf(b, "etcd_server_id{server_id=\"%" PRIx64 "\"} 1\n", srv->member_id);
    one(b, "etcd_server_has_leader", "gauge", "1 if the cluster has a leader, else 0.", "1");
    one(b, "etcd_server_is_leader", "gauge", "1 if this member leads, else 0.", "1");
    one(b, "etcd_server_is_learner", "gauge", "1 if this member is a learner, else 0.", "0");
    one(b, "etcd_server_leader_changes_seen_total", "counter", "Leader changes this member has observed.",
        "1");
    one(b, "etcd_server_quota_backend_bytes", "gauge", "The backend quota (--quota-backend-bytes) in bytes.",
        "%" PRId64, srv->cfg ? srv->cfg->quota_bytes : 0);
    uint64_t committed = srv->wal ? wal_durable_index(srv->wal) : srv->applied_index;
    if (committed < srv->applied_index) committed = srv->applied_index;
    one(b, "etcd_server_proposals_committed_total", "gauge", "Log entries committed (durable).", "%" PRIu64,
        committed);
    one(b, "etcd_server_proposals_applied_total", "gauge", "Log entries applied to the state machine.",
        "%" PRIu64, srv->applied_index);
    one(b, "etcd_server_proposals_pending", "gauge", "Proposals logged but not applied yet.", "%" PRIu64,
        srv->last_index > srv->applied_index ? srv->last_index - srv->applied_index : 0);
  }
  one(b, "etcd_server_health_success", "counter", "/health answers that were true.", "%" PRIu64, M.health_ok);
  one(b, "etcd_server_health_failures", "counter", "/health answers that were false.", "%" PRIu64,
      M.health_failed);
  one(b, "etcd_mvcc_range_total", "counter", "Range operations (requests, txn ops and compares).", "%" PRIu64,
      M.range);
  one(b, "etcd_mvcc_put_total", "counter", "Put operations applied (requests and txn ops).", "%" PRIu64,
      M.put);
  one(b, "etcd_mvcc_delete_total", "counter", "DeleteRange operations applied (requests and txn ops).",
      "%" PRIu64, M.del);
  one(b, "etcd_mvcc_txn_total", "counter", "Requests that ran more than one operation.", "%" PRIu64, M.txn);
  if (srv && srv->mvcc) {
    one(b, "etcd_debugging_mvcc_keys_total", "gauge", "Live keys.", "%zu", mvcc_key_count(srv->mvcc));
    int64_t size = mvcc_db_size(srv->mvcc);
    one(b, "etcd_mvcc_db_total_size_in_bytes", "gauge", "Size of the backend file in bytes.", "%" PRId64,
        size);
    one(b, "etcd_debugging_mvcc_db_total_size_in_bytes", "gauge", "Size of the backend file in bytes.",
        "%" PRId64, size);
    one(b, "etcd_mvcc_db_total_size_in_use_in_bytes", "gauge",
        "Bytes of backend pages in use (the file less its free pages).", "%" PRId64,
        mvcc_db_size_in_use(srv->mvcc));
    one(b, "etcd_debugging_mvcc_current_revision", "gauge", "The store's current revision.", "%" PRId64,
        mvcc_rev(srv->mvcc));
    one(b, "etcd_debugging_mvcc_compact_revision", "gauge", "The revision the store was last compacted at.",
        "%" PRId64, mvcc_compact_rev(srv->mvcc) < 0 ? 0 : mvcc_compact_rev(srv->mvcc));
  }
  if (srv && srv->watch)
    one(b, "etcd_debugging_mvcc_watcher_total", "gauge", "Total number of watchers.", "%zu",
        watch_count(srv->watch));
  render_fsync(b);
  render_grpc(b);
  head(b, "cetcd_revisions_total", "counter",
       "Writes (puts and deletes that changed something) per top-level key prefix, at most 64 prefixes.");
  for (size_t i = 0; i < M.n_prefixes; i++)
    buf_printf(b, "cetcd_revisions_total{prefix=\"%s\"} %" PRIu64 "\n", M.prefixes[i].name, M.prefixes[i].n);
  if (M.prefix_other) buf_printf(b, "cetcd_revisions_total{prefix=\"other\"} %" PRIu64 "\n", M.prefix_other);
}
