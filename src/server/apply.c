/* Applying a log entry: the only code that changes state. Deterministic: everything it
 * needs is in the entry or in the state. */
#include <string.h>

#include "cetcd/errors.h"
#include "lease/lease.h"
#include "mvcc/mvcc.h"
#include "server/alarm.h"
#include "server/metrics.h"
#include "server/reconfig.h"
#include "server/server.h"

void server_apply_entry(server_t *srv, const Cetcdinternal__InternalRequest *req, arena_t *arena,
                        apply_result_t *res) {
  memset(res, 0, sizeof(*res));
  if ((res->err = alarm_apply_gate(srv->alarms, req)) != 0) {
    /* refused while NOSPACE or CORRUPT is raised (etcd's capped/corrupt appliers) */
  } else if (req->put)
    res->err = mvcc_apply_put(srv->mvcc, req->put, arena, &res->put);
  else if (req->delete_range)
    res->err = mvcc_apply_delete_range(srv->mvcc, req->delete_range, arena, &res->delete_range);
  else if (req->txn)
    res->err = mvcc_apply_txn(srv->mvcc, req->txn, arena, &res->txn);
  else if (req->compaction)
    res->err = mvcc_apply_compact(srv->mvcc, req->compaction, arena, &res->compaction);
  else if (req->lease_grant)
    res->err = lease_apply_grant(srv->lessor, req->lease_grant, arena, &res->lease_grant);
  else if (req->lease_revoke)
    res->err = lease_apply_revoke(srv->lessor, req->lease_revoke, arena, &res->lease_revoke);
  else if (req->lease_checkpoint)
    res->err = lease_apply_checkpoint(srv->lessor, req->lease_checkpoint);
  else if (req->alarm)
    res->err = alarm_apply(srv->alarms, req->alarm, arena, &res->alarm);
  else if (req->member_attr)
    res->err = reconfig_apply_attr(srv, req->member_attr);
  else if (req->member_update)
    res->err = reconfig_apply_update(srv, req->member_update);
  else
    res->err = CETCD_EINVAL;
  metrics_on_apply(req, res);
}
