/* Applying a log entry: the only code that changes state. Deterministic: everything it
 * needs is in the entry or in the state. */
#include <string.h>

#include "cetcd/errors.h"
#include "mvcc/mvcc.h"
#include "server/server.h"

void server_apply_entry(server_t *srv, const Cetcdinternal__InternalRequest *req, arena_t *arena,
                        apply_result_t *res) {
  memset(res, 0, sizeof(*res));
  if (req->put)
    res->err = mvcc_apply_put(srv->mvcc, req->put, arena, &res->put);
  else if (req->delete_range)
    res->err = mvcc_apply_delete_range(srv->mvcc, req->delete_range, arena, &res->delete_range);
  else if (req->txn)
    res->err = mvcc_apply_txn(srv->mvcc, req->txn, arena, &res->txn);
  else if (req->compaction)
    res->err = mvcc_apply_compact(srv->mvcc, req->compaction, arena, &res->compaction);
  else
    res->err = CETCD_EINVAL;
}
