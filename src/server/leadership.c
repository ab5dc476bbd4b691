/* Leadership transfers: MoveLeader and the hand-off on stop (see leadership.h). */
#include "server/leadership.h"

#include <inttypes.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "server/raft_node.h"

/* One transfer being watched. */
typedef struct transfer {
  uv_timer_t timer;
  server_t *srv;
  uint64_t old_lead, target;
  uint64_t start_ns; /* uv_hrtime() at the start */
  uint64_t deadline; /* uv_now() milliseconds */
  leadership_cb cb;  /* MoveLeader: the answer */
  void *ctx;
  void (*done)(server_t *srv); /* hand-off: what runs once it is over */
  bool lingering;              /* hand-off finished: one more poll before done */
} transfer_t;

/* The poll interval: raft's tick (etcd's MoveLeader polls once per tick too). */
static uint64_t tick_ms(server_t *srv) {
  return srv->cfg->heartbeat_interval_ms ? srv->cfg->heartbeat_interval_ms : 100;
}

/* libuv: the timer is closed; the record goes. */
static void transfer_closed(uv_handle_t *h) { free(h->data); }

/* Logs "leadership transfer finished" like etcd's MoveLeader. */
static void log_finished(server_t *srv, uint64_t old_lead, uint64_t target, uint64_t start_ns) {
  LOGI("msg=\"leadership transfer finished\" local-member-id=%" PRIx64 " old-leader-member-id=%" PRIx64
       " new-leader-member-id=%" PRIx64 " took=%.3fms",
       srv->member_id, old_lead, target, (double)(uv_hrtime() - start_ns) / 1e6);
}

/* Ends t with err (0 = the target leads): logs, answers or lingers, closes the timer. */
static void transfer_end(transfer_t *t, int err) {
  server_t *srv = t->srv;
  if (!err)
    log_finished(srv, t->old_lead, t->target, t->start_ns);
  else
    LOGW("msg=\"leadership transfer failed\" local-member-id=%" PRIx64 " error=\"%s\"", srv->member_id,
         cetcd_strerror(err));
  if (t->cb) {
    t->cb(t->ctx, err);
  } else if (!err) {
    t->lingering = true; /* lets the proposals it held go to the new leader first */
    return;
  } else {
    t->done(srv);
  }
  uv_timer_stop(&t->timer);
  uv_close((uv_handle_t *)&t->timer, transfer_closed);
}

/* Timer: has the transfer finished, been abandoned by raft, or run out of time? */
static void on_poll(uv_timer_t *h) {
  transfer_t *t = h->data;
  server_t *srv = t->srv;
  if (t->lingering) {
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, transfer_closed);
    t->done(srv);
    return;
  }
  if (srv->stopping) { /* stopping already (a second signal): raft is gone or going */
    transfer_end(t, CETCD_ESTOPPED);
    return;
  }
  uint64_t lead = 0;
  raft_node_info(srv->rn, &lead, NULL, NULL);
  if (lead == t->target)
    transfer_end(t, 0);
  else if ((lead == srv->member_id && raft_node_transferee(srv->rn) != t->target) ||
           uv_now(srv->loop) >= t->deadline)
    transfer_end(t, CETCD_ETRANSFERTIMEOUT); /* still leader, raft gave up (or time is up) */
}

/* Starts watching a transfer from this leader to target. */
static transfer_t *watch_transfer(server_t *srv, uint64_t target, uint64_t deadline) {
  transfer_t *t = xcalloc(1, sizeof(*t));
  t->srv = srv;
  t->old_lead = srv->member_id;
  t->target = target;
  t->start_ns = uv_hrtime();
  t->deadline = deadline;
  uv_timer_init(srv->loop, &t->timer);
  t->timer.data = t;
  uv_timer_start(&t->timer, on_poll, tick_ms(srv), tick_ms(srv));
  LOGI("msg=\"leadership transfer starting\" local-member-id=%" PRIx64 " current-leader-member-id=%" PRIx64
       " transferee-member-id=%" PRIx64,
       srv->member_id, srv->member_id, target);
  return t;
}

void leadership_move(server_t *srv, uint64_t target, uint64_t deadline_ms, leadership_cb cb, void *ctx) {
  uint64_t self = srv->member_id;
  if (target == self) { /* raft ignores it; etcd answers at once */
    LOGI("msg=\"leadership transfer starting\" local-member-id=%" PRIx64 " current-leader-member-id=%" PRIx64
         " transferee-member-id=%" PRIx64,
         self, self, target);
    log_finished(srv, self, target, uv_hrtime());
    cb(ctx, 0);
    return;
  }
  int rc = srv->rn ? raft_node_transfer_leader(srv->rn, target) : CETCD_EBADTRANSFEREE;
  if (rc) {
    cb(ctx, rc);
    return;
  }
  /* etcd's request timeout bounds the wait as well as the client's deadline */
  uint64_t deadline = uv_now(srv->loop) + 5000 + 2 * (uint64_t)srv->cfg->election_timeout_ms;
  if (deadline_ms && deadline_ms < deadline) deadline = deadline_ms;
  transfer_t *t = watch_transfer(srv, target, deadline);
  t->cb = cb;
  t->ctx = ctx;
}

int leadership_handoff(server_t *srv, void (*done)(server_t *srv)) {
  if (!srv->rn) return 0;
  uint64_t lead = 0;
  raft_node_info(srv->rn, &lead, NULL, NULL);
  if (lead != srv->member_id) {
    LOGI("msg=\"skipped leadership transfer; local server is not leader\" local-member-id=%" PRIx64
         " current-leader-member-id=%" PRIx64,
         srv->member_id, lead);
    return 0;
  }
  uint64_t target = raft_node_best_transferee(srv->rn);
  if (!target) {
    LOGI("msg=\"skipped leadership transfer for single voting member cluster\" local-member-id=%" PRIx64
         " current-leader-member-id=%" PRIx64,
         srv->member_id, lead);
    return 0;
  }
  int rc = raft_node_transfer_leader(srv->rn, target);
  if (rc) {
    LOGW("msg=\"leadership transfer failed\" local-member-id=%" PRIx64 " error=\"%s\"", srv->member_id,
         cetcd_strerror(rc));
    return 0;
  }
  /* raft abandons a transfer after an election timeout; the deadline is a backstop */
  transfer_t *t =
      watch_transfer(srv, target, uv_now(srv->loop) + 2 * (uint64_t)srv->cfg->election_timeout_ms);
  t->done = done;
  return 1;
}

/* ---- etcd's monitorLeader ------------------------------------------------------------ */

#define MAX_NO_LEADER 3 /* election timeouts without a leader before streams are ended */

static struct {
  uv_timer_t timer;
  server_t *srv;
  int no_leader; /* consecutive checks that found no leader */
  bool on;
} monitor;

/* Timer, once per election timeout: counts the checks without a leader. */
static void on_monitor(uv_timer_t *h) {
  (void)h;
  server_t *srv = monitor.srv;
  uint64_t lead = 0;
  raft_node_info(srv->rn, &lead, NULL, NULL);
  monitor.no_leader = lead ? 0 : monitor.no_leader + 1;
  if (monitor.no_leader >= MAX_NO_LEADER) srv->layer->no_leader(srv->layer->ctx, srv->grpc);
}

void leadership_monitor_start(server_t *srv) {
  if (!srv->rn || monitor.on) return;
  monitor.srv = srv;
  monitor.no_leader = 0;
  monitor.on = true;
  uv_timer_init(srv->loop, &monitor.timer);
  uint64_t every = srv->cfg->election_timeout_ms ? srv->cfg->election_timeout_ms : 1000;
  uv_timer_start(&monitor.timer, on_monitor, every, every);
}

void leadership_monitor_stop(void) {
  if (!monitor.on) return;
  monitor.on = false;
  uv_close((uv_handle_t *)&monitor.timer, NULL);
}
