/* The lease expiry driver (see lease_expiry.h). */
#include "server/lease_expiry.h"

#include <stdint.h>
#include <stdlib.h>
#include <uv.h>

#include "auth/auth.h"
#include "base/alloc.h"
#include "cetcd/errors.h"
#include "internal.pb-c.h"
#include "lease/lease.h"
#include "server/server.h"

/* Timer period; at most LEASE_REVOKE_RATE / (1000 / TICK_MS) revokes per tick. */
#define TICK_MS 100
#define PER_TICK (LEASE_REVOKE_RATE * TICK_MS / 1000)

/* One proposed revoke, waiting for its result. */
typedef struct revoke {
  server_t *srv;
  int64_t id;
} revoke_t;

/* A proposed revoke finished: on failure the lease may be proposed again later. */
static void revoke_done(void *ctx, const apply_result_t *res) {
  revoke_t *r = ctx;
  server_t *srv = r->srv;
  if (res->err && res->err != CETCD_ELEASENOTFOUND && srv->lessor) lease_revoke_failed(srv->lessor, r->id);
  free(r);
}

/* Timer: proposes revokes for the leases that expired. */
static void on_tick(uv_timer_t *t) {
  server_t *srv = t->data;
  if (srv->stopping || srv->wal_failed) return;
  int64_t ids[PER_TICK];
  size_t n = lease_find_expired(srv->lessor, ids, PER_TICK);
  for (size_t i = 0; i < n; i++) {
    Etcdserverpb__LeaseRevokeRequest rr = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    rr.id = ids[i];
    Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
    ir.lease_revoke = &rr;
    if (auth_is_enabled(srv->auth)) { /* the server revokes as root (etcd's authStore.WithRoot) */
      ir.auth_user = "root";
      ir.auth_revision = auth_revision(srv->auth); /* a change applied first: refused, retried */
    }
    revoke_t *r = xmalloc(sizeof(*r));
    *r = (revoke_t){.srv = srv, .id = ids[i]};
    server_propose(srv, &ir, NULL, revoke_done, r);
  }
}

int lease_expiry_start(server_t *srv) {
  if (srv->lease_timer) return 0;
  srv->lease_timer = xmalloc(sizeof(*srv->lease_timer));
  uv_timer_init(srv->loop, srv->lease_timer);
  srv->lease_timer->data = srv;
  uv_timer_start(srv->lease_timer, on_tick, TICK_MS, TICK_MS);
  return 0;
}

/* Close callback: frees the timer. */
static void timer_closed(uv_handle_t *h) { free(h); }

void lease_expiry_stop(server_t *srv) {
  if (!srv->lease_timer) return;
  uv_timer_stop(srv->lease_timer);
  uv_close((uv_handle_t *)srv->lease_timer, timer_closed);
  srv->lease_timer = NULL;
}
