/* Applying log entries: the only code that changes state, and the one apply loop of both
 * write paths (see apply.h). Deterministic: everything it needs is in the entry or in the
 * state. */
#include "server/apply.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "grpc/grpc_server.h"
#include "lease/lease.h"
#include "mvcc/mvcc.h"
#include "server/alarm.h"
#include "server/metrics.h"
#include "server/reconfig.h"
#include "server/server.h"

/* etcd's authApplierV3 checks of KV writes and lease revocations, by the proposer's user
 * and auth revision carried in the entry. */
static int auth_gate(server_t *srv, const Cetcdinternal__InternalRequest *req) {
  auth_store_t *as = srv->auth;
  if (!auth_is_enabled(as)) return 0;
  auth_info_t ai = {.user = req->auth_user, .revision = req->auth_revision};
  int rc = 0;
  if (req->put) {
    const Etcdserverpb__PutRequest *p = req->put;
    rc = auth_check_put(as, &ai, p->key.data, p->key.len);
    if (rc == 0) rc = auth_check_lease(as, &ai, srv->lessor, p->lease);
    if (rc == 0 && p->prev_kv) rc = auth_check_range(as, &ai, p->key.data, p->key.len, NULL, 0);
  } else if (req->delete_range) {
    const Etcdserverpb__DeleteRangeRequest *d = req->delete_range;
    rc = auth_check_delete(as, &ai, d->key.data, d->key.len, d->range_end.data, d->range_end.len);
    if (rc == 0 && d->prev_kv)
      rc = auth_check_range(as, &ai, d->key.data, d->key.len, d->range_end.data, d->range_end.len);
  } else if (req->txn) {
    rc = auth_check_txn(as, &ai, req->txn);
  } else if (req->lease_revoke) {
    rc = auth_check_lease(as, &ai, srv->lessor, req->lease_revoke->id);
  }
  return rc;
}

void server_apply_entry(server_t *srv, const Cetcdinternal__InternalRequest *req, arena_t *arena,
                        apply_result_t *res) {
  memset(res, 0, sizeof(*res));
  if ((res->err = alarm_apply_gate(srv->alarms, req)) != 0) {
    /* refused while NOSPACE or CORRUPT is raised (etcd's capped/corrupt appliers) */
  } else if ((res->err = auth_gate(srv, req)) != 0) {
    /* refused: the proposer may not do this (etcd's authApplierV3) */
  } else if (auth_is_request(req))
    res->err = auth_apply(srv->auth, req, srv->applying_index, arena, &res->auth);
  else if (req->put)
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

/* Decodes and applies one entry's bytes; the response goes in out. */
static void apply_bytes(server_t *srv, const uint8_t *data, size_t len, arena_t *dec, arena_t *out,
                        apply_result_t *res) {
  Cetcdinternal__InternalRequest *req = cetcdinternal__internal_request__unpack(&dec->pb, len, data);
  memset(res, 0, sizeof(*res));
  if (!req) {
    /* Only our own encoder writes entries; a failure here means corruption. */
    LOGE("msg=\"cannot decode a logged entry\" len=%zu", len);
    res->err = CETCD_ECORRUPT;
    return;
  }
  server_apply_entry(srv, req, out, res);
}

/* One applied entry waiting for its answer until the batch is committed. */
typedef struct answer {
  void *token;
  arena_t dec; /* the decoded request (and the response when nobody claimed it) */
  apply_result_t res;
} answer_t;

void apply_entries(server_t *srv, const apply_entry_t *ents, size_t n, const apply_sink_t *sink) {
  size_t first = 0;
  while (first < n && ents[first].index <= srv->applied_index) first++;
  if (first == n) return;
  answer_t stack_ans[16];
  answer_t *ans = n - first <= 16 ? stack_ans : xmalloc((n - first) * sizeof(*ans));
  size_t n_ans = 0;
  mvcc_batch_begin(srv->mvcc);
  for (size_t i = first; i < n; i++) {
    const apply_entry_t *e = &ents[i];
    server_reserve_apply_space(srv, e->len);
    if (e->conf) {
      arena_t a;
      arena_init(&a);
      raft_conf_change_t cc;
      memset(&cc, 0, sizeof(cc));
      int err = reconfig_apply_conf_change(srv, e->data, e->len, &a, &cc);
      if (sink->conf_applied) sink->conf_applied(sink->ctx, e->index, &cc, err);
      arena_destroy(&a);
    } else if (e->len) {
      srv->applying_index = e->index;
      answer_t *an = &ans[n_ans];
      arena_init(&an->dec);
      Cetcdinternal__InternalRequest *req =
          cetcdinternal__internal_request__unpack(&an->dec.pb, e->len, e->data);
      an->token = NULL;
      arena_t *out = req ? sink->claim(sink->ctx, e->index, req->id, &an->token) : NULL;
      memset(&an->res, 0, sizeof(an->res));
      if (req) {
        server_apply_entry(srv, req, out ? out : &an->dec, &an->res);
      } else {
        LOGE("msg=\"cannot decode a logged entry\" index=%" PRIu64 " len=%zu", e->index, e->len);
        an->res.err = CETCD_ECORRUPT;
      }
      if (an->token)
        n_ans++;
      else
        arena_destroy(&an->dec);
    }
    srv->applied_index = e->index;
  }
  server_apply_space_done(srv);
  int rc = mvcc_batch_commit(srv->mvcc, srv->applied_index);
  if (rc) {
    LOGE("msg=\"backend commit failed\" error=\"%s\"", cetcd_strerror(rc));
    abort(); /* the log is durable: restarting replays it; continuing would diverge */
  }
  for (size_t i = 0; i < n_ans; i++) {
    sink->answer(sink->ctx, ans[i].token, &ans[i].res);
    arena_destroy(&ans[i].dec);
  }
  if (ans != stack_ans) free(ans);
  if (srv->grpc) grpc_server_recheck_held(srv->grpc); /* calls waiting for a token's index */
}

void apply_replayed(server_t *srv, uint64_t index, const uint8_t *data, size_t len) {
  server_reserve_apply_space(srv, len);
  arena_t a;
  arena_init(&a);
  apply_result_t res;
  srv->applying_index = index;
  apply_bytes(srv, data, len, &a, &a, &res);
  arena_destroy(&a);
  srv->applied_index = index;
}
