/* Applying the lease requests of the log: lessor calls plus the etcd responses. */
#include "lease/lease_int.h"
#include "mvcc/mvcc.h"

/* A header (arena-owned) carrying the store's current revision; the api fills the ids. */
static Etcdserverpb__ResponseHeader *header(lessor_t *le, arena_t *arena) {
  Etcdserverpb__ResponseHeader *h = ARENA_NEW(arena, Etcdserverpb__ResponseHeader);
  etcdserverpb__response_header__init(h);
  if (le->store) h->revision = mvcc_rev(le->store);
  return h;
}

int lease_apply_grant(lessor_t *le, const Etcdserverpb__LeaseGrantRequest *req, arena_t *arena,
                      Etcdserverpb__LeaseGrantResponse **resp) {
  int64_t ttl = 0;
  int rc = lease_grant(le, req->id, req->ttl, &ttl);
  if (rc) return rc;
  Etcdserverpb__LeaseGrantResponse *r = ARENA_NEW(arena, Etcdserverpb__LeaseGrantResponse);
  etcdserverpb__lease_grant_response__init(r);
  r->id = req->id;
  r->ttl = ttl;
  r->header = header(le, arena);
  *resp = r;
  return 0;
}

int lease_apply_revoke(lessor_t *le, const Etcdserverpb__LeaseRevokeRequest *req, arena_t *arena,
                       Etcdserverpb__LeaseRevokeResponse **resp) {
  int rc = lease_revoke(le, req->id);
  if (rc) return rc;
  Etcdserverpb__LeaseRevokeResponse *r = ARENA_NEW(arena, Etcdserverpb__LeaseRevokeResponse);
  etcdserverpb__lease_revoke_response__init(r);
  r->header = header(le, arena);
  *resp = r;
  return 0;
}

int lease_apply_checkpoint(lessor_t *le, const Etcdserverpb__LeaseCheckpointRequest *req) {
  for (size_t i = 0; i < req->n_checkpoints; i++)
    lease_checkpoint(le, req->checkpoints[i]->id, req->checkpoints[i]->remaining_ttl);
  return 0;
}
