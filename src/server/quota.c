/* Quota costs, the availability rule, and raising NOSPACE through the log. */
#include "server/quota.h"

#include <inttypes.h>
#include <string.h>

#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"
#include "server/alarm.h"
#include "server/server.h"

int64_t quota_cost_put(const Etcdserverpb__PutRequest *req) {
  return QUOTA_KV_OVERHEAD + (int64_t)req->key.len + (int64_t)req->value.len;
}

/* Sum of the put costs of one branch of a txn. */
static int64_t branch_cost(Etcdserverpb__RequestOp **ops, size_t n) {
  int64_t sum = 0;
  for (size_t i = 0; i < n; i++) {
    if (ops[i]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT)
      sum += quota_cost_put(ops[i]->request_put);
    else if (ops[i]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN)
      sum += quota_cost_txn(ops[i]->request_txn);
  }
  return sum;
}

int64_t quota_cost_txn(const Etcdserverpb__TxnRequest *req) {
  int64_t s = branch_cost(req->success, req->n_success);
  int64_t f = branch_cost(req->failure, req->n_failure);
  return f > s ? f : s;
}

bool quota_available(int64_t quota_bytes, int64_t db_size, int64_t cost) {
  if (cost == 0 || quota_bytes < 0) return true;
  return db_size + cost < quota_bytes;
}

/* The alarm proposal's result is only logged: the request that triggered it has already
 * failed. */
static void alarm_proposed(void *ctx, const apply_result_t *res) {
  (void)ctx;
  if (res->err && res->err != CETCD_ESTOPPED)
    LOGW("msg=\"cannot raise the NOSPACE alarm\" error=\"%s\"", cetcd_strerror(res->err));
}

/* Log index of the last NOSPACE proposal, so a burst of writes proposes it only once. */
static uint64_t alarm_proposal_index;

int quota_check(server_t *srv, int64_t cost) {
  int64_t quota = srv->cfg->quota_bytes;
  if (cost == 0 || quota < 0) return 0;
  int64_t size = mvcc_db_size(srv->mvcc);
  if (quota_available(quota, size, cost)) return 0;
  bool in_flight = alarm_proposal_index > srv->applied_index && alarm_proposal_index <= srv->last_index;
  if (!in_flight && !alarm_is_raised(srv->alarms, srv->member_id, ETCDSERVERPB__ALARM_TYPE__NOSPACE)) {
    LOGW("msg=\"backend quota exceeded; raising the NOSPACE alarm\" quota-size-bytes=%" PRId64
         " current-db-size-bytes=%" PRId64 " request-cost-bytes=%" PRId64
         " fix=\"compact (etcdctl compaction), defragment (etcdctl defrag), then etcdctl alarm disarm; or "
         "raise --quota-backend-bytes\"",
         quota, size, cost);
    Etcdserverpb__AlarmRequest ar = ETCDSERVERPB__ALARM_REQUEST__INIT;
    ar.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE;
    ar.memberid = srv->member_id;
    ar.alarm = ETCDSERVERPB__ALARM_TYPE__NOSPACE;
    Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
    ir.alarm = &ar;
    server_propose(srv, &ir, NULL, alarm_proposed, NULL);
    alarm_proposal_index = srv->last_index;
  }
  return CETCD_ENOSPACE;
}

void quota_log_config(const cetcd_config_t *cfg) {
  if (cfg->quota_bytes < 0) {
    LOGI("msg=\"disabled backend quota\" quota-name=v3-applier quota-size-bytes=%" PRId64,
         cfg->quota_backend_bytes);
  } else if (cfg->quota_backend_bytes == 0) {
    LOGI("msg=\"enabled backend quota with default value\" quota-name=v3-applier quota-size-bytes=%" PRId64,
         cfg->quota_bytes);
  } else {
    LOGI("msg=\"enabled backend quota\" quota-name=v3-applier quota-size-bytes=%" PRId64, cfg->quota_bytes);
  }
}
