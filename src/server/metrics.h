/* Prometheus metrics served at /metrics (text format 0.0.4): etcd's mvcc, server, disk and
 * go-grpc-prometheus families that tools and etcd's e2e tests read, plus cetcd's own
 * cetcd_revisions_total{prefix} (writes per top-level key prefix).
 *
 * Counters are process-wide (like Prometheus' default registry) and live on the loop
 * thread, except metrics_observe_wal_fsync, which any thread may call. */
#ifndef CETCD_SERVER_METRICS_H
#define CETCD_SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "grpc/grpc_server.h"
#include "internal.pb-c.h"
#include "rpc.pb-c.h"

typedef struct server server_t;
typedef struct apply_result apply_result_t;

/* Most distinct prefixes cetcd_revisions_total tracks; later ones count as "other". */
#define METRICS_MAX_PREFIXES 64
/* Longest prefix label kept (bytes); longer segments are cut. */
#define METRICS_MAX_PREFIX_LEN 64

/* Zeroes every counter (tests). */
void metrics_reset(void);

/* Counts one applied log entry (call after server_apply_entry's dispatch): puts, delete
 * ranges, txns (etcd_mvcc_*_total, counting the ops of the branch taken and the compares
 * as ranges, as etcd's metrics txn does) and the per-prefix write counts. Failed entries
 * count nothing. */
void metrics_on_apply(const Cetcdinternal__InternalRequest *req, const apply_result_t *res);
/* Counts a Range served outside the log (KV.Range). */
void metrics_on_range(void);
/* Counts a read-only Txn served outside the log (resp may be NULL if it failed). */
void metrics_on_read_txn(const Etcdserverpb__TxnRequest *req, const Etcdserverpb__TxnResponse *resp);
/* Counts one write (put or delete) of key for cetcd_revisions_total{prefix}. */
void metrics_on_write(const uint8_t *key, size_t len);
/* The prefix label of key: up to and including the first '/' after position 0, else the
 * whole key; cut at METRICS_MAX_PREFIX_LEN; bytes that are not printable ASCII, '"' and
 * '\\' become '_'. Writes a NUL-terminated string to out (>= METRICS_MAX_PREFIX_LEN + 1). */
void metrics_key_prefix(const uint8_t *key, size_t len, char *out);

/* go-grpc-prometheus: code < 0 counts a started call of m, else a handled one with that
 * gRPC status code. Matches grpc_call_observer_fn. */
void metrics_grpc_observe(const grpc_method_t *m, int code);
/* Records one WAL fdatasync of `seconds` (thread-safe; call from the WAL writer). */
void metrics_observe_wal_fsync(double seconds);
/* Counts a /health answer. */
void metrics_on_health(bool ok);

/* Appends every metric, with HELP and TYPE lines, reading gauges from srv (NULL: the
 * counters only). */
void metrics_render(server_t *srv, buf_t *out);

#endif
