/* The backend space quota (etcd's backendQuota and quotaAlarmer): before a Put, a writing
 * Txn or a LeaseGrant is proposed, its estimated cost is added to the backend's physical
 * size; at or over --quota-backend-bytes the NOSPACE alarm is proposed for this member and
 * the request fails with CETCD_ENOSPACE ("etcdserver: mvcc: database space exceeded").
 * The cost functions are pure; quota_check runs on the loop thread. */
#ifndef CETCD_SERVER_QUOTA_H
#define CETCD_SERVER_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include "rpc.pb-c.h"

typedef struct server server_t;
typedef struct cetcd_config cetcd_config_t;

/* etcd's estimates: per stored key's metadata, and per lease. */
#define QUOTA_KV_OVERHEAD 256
#define QUOTA_LEASE_OVERHEAD 64

/* Cost of a Put: overhead + key + value bytes. */
int64_t quota_cost_put(const Etcdserverpb__PutRequest *req);
/* Cost of a Txn: the larger of its success and failure branches, each the sum of its Put
 * costs (nested Txns included, unlike etcd 3.4, which ignores them). 0 for a txn without
 * puts. */
int64_t quota_cost_txn(const Etcdserverpb__TxnRequest *req);

/* The quota rule: true if a request of `cost` fits: cost 0 (nothing stored), no quota
 * (quota_bytes < 0), or db_size + cost < quota_bytes. */
bool quota_available(int64_t quota_bytes, int64_t db_size, int64_t cost);

/* Checks a request of `cost` against srv's quota and backend size. If it does not fit,
 * proposes AlarmRequest{ACTIVATE, NOSPACE, this member} (unless this member's NOSPACE
 * alarm is already raised) and returns CETCD_ENOSPACE; else 0. Call before proposing a
 * Put (quota_cost_put), a Txn (quota_cost_txn) or a LeaseGrant (QUOTA_LEASE_OVERHEAD). */
int quota_check(server_t *srv, int64_t cost);

/* Logs the quota in effect at start, as etcd does ("enabled backend quota ..."). */
void quota_log_config(const cetcd_config_t *cfg);

#endif
