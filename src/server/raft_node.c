/* The Raft path of a multi-member cluster (see raft_node.h). Everything runs on the loop
 * thread; the WAL is synced (wal_sync_now) before a Ready's messages are sent and its
 * committed entries applied, so votes and append acks are always durable. */
#include "server/raft_node.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "lease/lease.h"
#include "mvcc/mvcc.h"
#include "raft/raft.h"
#include "raftpb.pb-c.h"
#include "server/apply.h"
#include "server/lease_forward.h"
#include "server/membership.h"
#include "server/peer.h"
#include "server/peer_snapshot.h"
#include "server/raft_ship.h"
#include "server/raft_snapshot.h"
#include "server/reconfig.h"
#include "server/tls_setup.h"
#include "wal/wal.h"

typedef struct rn_prop {
  struct rn_prop *next;
  uint64_t id;
  arena_t *arena; /* responses: the caller's arena, or NULL for a scratch one */
  propose_cb cb;
  void *ctx;
  uint64_t deadline;
  uint8_t *held; /* not in raft yet (no leader, or a transfer): the entry to propose again */
  size_t held_len;
} rn_prop_t;

/* A proposal forwarded by a peer that raft could not take (see hold_peer_prop). */
typedef struct rn_held_msg {
  struct rn_held_msg *next;
  uint64_t deadline;
  size_t len;
  uint8_t data[]; /* the encoded raft message */
} rn_held_msg_t;

typedef struct rn_read {
  struct rn_read *next;
  uint64_t ctx_id;
  uint64_t index;
  bool have_index;
  raft_node_read_cb cb;
  void *ctx;
  uint64_t deadline;
  uint64_t next_ask;
} rn_read_t;

/* The one membership change this member proposed and waits for. */
typedef struct rn_conf_wait {
  bool active;
  uint64_t node_id;
  raft_cc_type_t type;
  void (*cb)(void *ctx, int err);
  void *ctx;
  uint64_t deadline;
} rn_conf_wait_t;

struct raft_node {
  server_t *srv;
  raft_t *raft;
  ids_cluster_t cluster;
  uint64_t *voters;
  size_t n_voters;
  uint64_t *learners;
  size_t n_learners;
  rn_conf_wait_t conf_wait;
  bool peers_dirty;  /* the membership changed: rebuild the peer table after this Ready */
  bool self_removed; /* this member's removal was applied: stop */
  peer_transport_t *peers;
  lease_fwd_t *lease_fwd; /* keep-alives and TimeToLive answered by the leader's lessor */
  uv_timer_t tick;
  uv_idle_t kick; /* rn_schedule: process the iteration's input in one go */
  bool started, stopped, processing, announced;
  bool holding;         /* rd was taken and waits for its WAL sync or to be finished */
  raft_ready_t rd;      /* the Ready being persisted */
  uint64_t sync_ticket; /* wal_sync_async's ticket for rd */
  buf_t enc;            /* message encoding scratch */
  bool sent;            /* messages were queued since the last peer_flush */
  bool kick_open;       /* the kick handle is not closed yet (it lives in this struct) */
  bool conf_applied;    /* apply_committed: the awaited membership change was applied... */
  int conf_err;         /* ...or refused with this error */
  bool tick_open;       /* the tick handle is not closed yet (it lives in this struct) */
  bool free_requested;  /* raft_node_free ran: free once the tick handle has closed */
  uint64_t lead;
  raft_role_t role;
  uint64_t commit;
  rn_prop_t *props;         /* local proposals waiting to be applied */
  rn_read_t *reads;         /* linearizable reads waiting */
  rn_held_msg_t *held_msgs; /* peers' proposals waiting for a leader, oldest first */
  uint64_t lead_elected_ms; /* uv_now() when this member last became leader (etcd's leadElectedTime) */
  uint64_t next_read;
  uint64_t rng;
  /* WAL replay */
  raft_entry_t *rents;
  size_t n_rents, cap_rents;
  raft_hard_state_t rhs;
  rsnap_state_t snaps; /* --snapshot-count compaction and snap files (raft_snapshot.c) */
  rship_t *ship;       /* snapshots to and from peers (raft_ship.c) */
};

static void rn_process(raft_node_t *rn);

/* etcd's request timeout (ReqTimeout): 5 s plus two election timeouts. */
static uint64_t req_timeout(raft_node_t *rn) {
  return 5000 + 2 * (uint64_t)rn->srv->cfg->election_timeout_ms;
}

/* xorshift64* random source for election timeouts. */
static uint64_t rn_rand(void *ctx) {
  raft_node_t *rn = ctx;
  rn->rng ^= rn->rng >> 12;
  rn->rng ^= rn->rng << 25;
  rn->rng ^= rn->rng >> 27;
  return rn->rng * 2685821657736338717ULL;
}

/* Creates the node from --initial-cluster if it names at least min_members members. */
static int create_node(server_t *srv, size_t min_members, raft_node_t **out) {
  *out = NULL;
  cetcd_config_t *cfg = srv->cfg;
  if (!cfg->initial_cluster || !*cfg->initial_cluster) return 0;
  ids_cluster_t c;
  char err[256];
  if (ids_parse_initial_cluster(cfg->initial_cluster, cfg->initial_cluster_token, &c, err, sizeof(err)))
    return 0; /* the single-member path reports it (ids_for_config) */
  if (c.n_members < min_members) {
    ids_cluster_free(&c);
    return 0;
  }
  raft_node_t *rn = xcalloc(1, sizeof(*rn));
  rn->srv = srv;
  rn->cluster = c;
  rn->n_voters = c.n_members;
  rn->voters = xcalloc(c.n_members, sizeof(uint64_t));
  for (size_t i = 0; i < c.n_members; i++) rn->voters[i] = c.members[i].id;
  rsnap_state_init(&rn->snaps, cfg->data_dir, cfg->snapshot_count, 0);
  *out = rn;
  return 0;
}

int raft_node_create(server_t *srv, raft_node_t **out) { return create_node(srv, 2, out); }

int raft_node_create_single(server_t *srv, raft_node_t **out) {
  create_node(srv, 1, out);
  return *out ? 0 : CETCD_EINVAL;
}

void raft_node_restore_single(raft_node_t *rn, uint64_t term, uint64_t commit) {
  rn->rhs = (raft_hard_state_t){.term = term, .vote = rn->srv->member_id, .commit = commit};
}

void raft_node_campaign(raft_node_t *rn) {
  if (!rn->raft || rn->stopped) return;
  raft_campaign(rn->raft);
  rn_process(rn);
}

const ids_cluster_t *raft_node_cluster(raft_node_t *rn) { return &rn->cluster; }

void raft_node_replay_entry(raft_node_t *rn, uint64_t index, uint64_t term, raft_entry_type_t type,
                            const uint8_t *data, size_t len) {
  /* a later leader may have overwritten a suffix: drop our entries from index on */
  while (rn->n_rents && rn->rents[rn->n_rents - 1].index >= index) {
    rn->n_rents--;
    free((void *)rn->rents[rn->n_rents].data);
  }
  if (rn->n_rents && rn->rents[rn->n_rents - 1].index + 1 != index) {
    for (size_t i = 0; i < rn->n_rents; i++) free((void *)rn->rents[i].data); /* gap: keep the tail */
    rn->n_rents = 0;
  }
  if (rn->n_rents == rn->cap_rents) {
    rn->cap_rents = rn->cap_rents ? 2 * rn->cap_rents : 64;
    rn->rents = xrealloc(rn->rents, rn->cap_rents * sizeof(raft_entry_t));
  }
  uint8_t *copy = xmalloc(len ? len : 1);
  if (len) memcpy(copy, data, len);
  rn->rents[rn->n_rents++] =
      (raft_entry_t){.term = term, .index = index, .type = type, .data = copy, .len = len};
}

void raft_node_replay_hardstate(raft_node_t *rn, uint64_t term, uint64_t vote, uint64_t commit) {
  rn->rhs = (raft_hard_state_t){.term = term, .vote = vote, .commit = commit};
}

/* ---- answering ---------------------------------------------------------------------- */

/* Frees a proposal record. */
static void prop_free(rn_prop_t *p) {
  free(p->held);
  free(p);
}

/* Answers the waiting membership change, if any. */
static void conf_wait_done(raft_node_t *rn, int err) {
  if (!rn->conf_wait.active) return;
  rn->conf_wait.active = false;
  rn->conf_wait.cb(rn->conf_wait.ctx, err);
}

/* Fails every waiting proposal and read with err. */
static void fail_all(raft_node_t *rn, int err) {
  conf_wait_done(rn, err);
  rn_prop_t *p = rn->props;
  rn->props = NULL;
  while (p) {
    rn_prop_t *next = p->next;
    apply_result_t res = {.err = err};
    p->cb(p->ctx, &res);
    prop_free(p);
    p = next;
  }
  rn_read_t *r = rn->reads;
  rn->reads = NULL;
  while (r) {
    rn_read_t *next = r->next;
    r->cb(r->ctx, err);
    free(r);
    r = next;
  }
}

/* Serves the reads whose read index the state machine reached. */
static void serve_reads(raft_node_t *rn) {
  rn_read_t **pp = &rn->reads;
  while (*pp) {
    rn_read_t *r = *pp;
    if (r->have_index && r->index <= rn->srv->applied_index) {
      *pp = r->next;
      r->cb(r->ctx, 0);
      free(r);
    } else {
      pp = &r->next;
    }
  }
}

/* Removes and returns the local proposal with request id, or NULL. */
static rn_prop_t *take_prop(raft_node_t *rn, uint64_t id) {
  for (rn_prop_t **pp = &rn->props; *pp; pp = &(*pp)->next)
    if ((*pp)->id == id) {
      rn_prop_t *p = *pp;
      *pp = p->next;
      p->next = NULL;
      return p;
    }
  return NULL;
}

/* ---- proposals waiting for a leader ------------------------------------------------ */

/* Raft's answers that mean "nobody can take a proposal right now": no leader is known, or
 * the leader is handing leadership over. etcd's proposers wait for a leader then (until
 * their request timeout), and so do ours. */
static bool transient(int rc) { return rc == CETCD_ENOLEADER || rc == CETCD_EPROPDROPPED; }

/* Keeps a proposal a peer forwarded while this member could not take it (a transfer in
 * progress, or no leader known) until a leader can, instead of dropping it and leaving the
 * peer's client to time out. data is the encoded raft message (copied). */
static void hold_peer_prop(raft_node_t *rn, const uint8_t *data, size_t len) {
  rn_held_msg_t *h = xmalloc(sizeof(*h) + len);
  h->next = NULL;
  h->deadline = uv_now(rn->srv->loop) + req_timeout(rn);
  h->len = len;
  memcpy(h->data, data, len);
  rn_held_msg_t **tail = &rn->held_msgs;
  while (*tail) tail = &(*tail)->next;
  *tail = h;
}

/* Frees every held peer proposal. */
static void drop_held_msgs(raft_node_t *rn) {
  while (rn->held_msgs) {
    rn_held_msg_t *h = rn->held_msgs;
    rn->held_msgs = h->next;
    free(h);
  }
}

/* Unlinks p from the waiting proposals. */
static void unlink_prop(raft_node_t *rn, rn_prop_t *p) {
  for (rn_prop_t **pp = &rn->props; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      p->next = NULL;
      return;
    }
}

/* Proposes again, oldest first, what waits for a leader; stops at the first that still
 * cannot go. Held peer proposals past their deadline are dropped (their proposer times
 * out by itself); local ones time out in on_tick. */
static void retry_held(raft_node_t *rn) {
  uint64_t now = uv_now(rn->srv->loop);
  while (rn->held_msgs) {
    rn_held_msg_t *h = rn->held_msgs;
    int rc = 0;
    if (h->deadline > now) {
      arena_t a;
      arena_init(&a);
      raft_msg_t m;
      if (raft_msg_decode(h->data, h->len, &a, &m) == 0) rc = raft_step(rn->raft, &m);
      arena_destroy(&a);
      if (transient(rc)) break;
    }
    rn->held_msgs = h->next;
    free(h);
  }
  size_t n = 0;
  for (rn_prop_t *p = rn->props; p; p = p->next) n += p->held != NULL;
  if (!n) return;
  rn_prop_t **held = xmalloc(n * sizeof(*held)); /* props is newest first */
  size_t k = n;
  for (rn_prop_t *p = rn->props; p; p = p->next)
    if (p->held) held[--k] = p;
  for (size_t i = 0; i < n; i++) {
    rn_prop_t *p = held[i];
    int rc = raft_propose(rn->raft, p->held, p->held_len);
    if (transient(rc)) break;
    free(p->held);
    p->held = NULL;
    if (rc) {
      unlink_prop(rn, p);
      apply_result_t res = {.err = rc};
      p->cb(p->ctx, &res);
      prop_free(p);
    }
  }
  free(held);
}

/* The error of a proposal that reached its deadline, as etcd's parseProposeCtxErr tells
 * them apart: no leader ever took it; it was made while the previous leader was failing
 * (within two election timeouts before this member was elected leader: etcd records the
 * election time only on the new leader); or it just timed out. */
static int timeout_error(raft_node_t *rn, const rn_prop_t *p) {
  if (p->held) return CETCD_EPROPTIMEOUT;
  uint64_t start = p->deadline - req_timeout(rn);
  uint64_t window = 2 * (uint64_t)rn->srv->cfg->election_timeout_ms;
  if (rn->lead_elected_ms && start < rn->lead_elected_ms && start + window > rn->lead_elected_ms)
    return CETCD_ETIMEOUTLEADERFAIL;
  return CETCD_ETIMEOUT;
}

/* Fails the linearizable reads still waiting for their read index (etcd: a new leader
 * makes them retry with "leader changed"). */
static void fail_unindexed_reads(raft_node_t *rn) {
  rn_read_t **pp = &rn->reads;
  while (*pp) {
    rn_read_t *r = *pp;
    if (r->have_index) {
      pp = &r->next;
      continue;
    }
    *pp = r->next;
    r->cb(r->ctx, CETCD_ELEADERCHANGED);
    free(r);
  }
}

/* apply_sink claim: a committed entry this member proposed is answered here. */
static arena_t *rn_claim(void *ctx, uint64_t index, uint64_t req_id, void **token) {
  (void)index;
  rn_prop_t *p = take_prop(ctx, req_id);
  *token = p;
  return p ? p->arena : NULL;
}

/* apply_sink answer: the local proposer gets its result. */
static void rn_answer(void *ctx, void *token, const apply_result_t *res) {
  (void)ctx;
  rn_prop_t *p = token;
  p->cb(p->ctx, res);
  prop_free(p);
}

/* apply_sink conf_applied: a refused change is a no-op for raft too; the one this member
 * waits for is answered with the outcome. */
static void rn_conf_applied(void *ctx, uint64_t index, const raft_conf_change_t *cc, int err) {
  raft_node_t *rn = ctx;
  if (err) raft_conf_skip(rn->raft, index);
  if (rn->conf_wait.active && rn->conf_wait.node_id == cc->node_id && rn->conf_wait.type == cc->type) {
    rn->conf_applied = true;
    rn->conf_err = err;
  }
}

/* Applies committed entries through the shared apply loop (one mvcc batch), answering
 * local proposers in order; then the lessor may be promoted. */
static void apply_committed(raft_node_t *rn, const raft_entry_t *ents, size_t n) {
  server_t *srv = rn->srv;
  if (!n || ents[n - 1].index <= srv->applied_index) return;
  bool promote = false;
  apply_entry_t stack_ents[64];
  apply_entry_t *ae = n <= 64 ? stack_ents : xmalloc(n * sizeof(*ae));
  for (size_t i = 0; i < n; i++) {
    const raft_entry_t *e = &ents[i];
    /* the empty entry a new leader appends: once it is applied, everything of earlier terms
     * is too, and the lessor may take over (etcd promotes at the same point) */
    if (e->index > srv->applied_index && e->type == RAFT_ENTRY_NORMAL && !e->len && rn->role == RAFT_LEADER &&
        e->term == srv->term)
      promote = true;
    ae[i] = (apply_entry_t){
        .index = e->index, .conf = e->type == RAFT_ENTRY_CONF_CHANGE, .data = e->data, .len = e->len};
  }
  rn->conf_applied = false;
  apply_sink_t sink = {.claim = rn_claim, .answer = rn_answer, .conf_applied = rn_conf_applied, .ctx = rn};
  apply_entries(srv, ae, n, &sink);
  if (ae != stack_ents) free(ae);
  if (promote && !lease_is_primary(srv->lessor)) {
    /* every lease gets its whole TTL again, plus an election timeout (etcd's Promote) */
    lease_promote(srv->lessor, srv->cfg->election_timeout_ms);
    LOGI("msg=\"lessor promoted\" member-id=%016" PRIx64 " term=%" PRIu64, srv->member_id, srv->term);
    if (rn->lease_fwd) lease_forward_kick(rn->lease_fwd);
  }
  if (rn->conf_applied) conf_wait_done(rn, rn->conf_err);
}

/* ---- Ready loop --------------------------------------------------------------------- */

/* Once a leader is known: the capabilities line, and this member publishes itself. */
static void announce(raft_node_t *rn) {
  server_t *srv = rn->srv;
  rn->announced = true;
  LOGI("msg=\"enabled capabilities for version\" cluster-version=%s", CETCD_CLUSTER_VERSION);
  reconfig_publish(srv); /* "published ..." and "ready ..." once its entry is applied here */
}

/* Leadership changes: leases expire only on the leader, whose lessor is promoted once it
 * applied the first entry of its term (apply_committed), and demoted as soon as it steps
 * down. Lease requests waiting for a leader go out to the new one. */
static void on_soft_state(raft_node_t *rn, const raft_soft_state_t *ss) {
  server_t *srv = rn->srv;
  if (ss->role == RAFT_LEADER && rn->role != RAFT_LEADER) {
    LOGI("msg=\"%016" PRIx64 " became leader at term %" PRIu64 "\"", srv->member_id, srv->term);
  } else if (ss->role != RAFT_LEADER && lease_is_primary(srv->lessor)) {
    lease_demote(srv->lessor);
  }
  if (ss->lead != rn->lead)
    LOGI("msg=\"raft leader changed\" member-id=%016" PRIx64 " leader=%016" PRIx64 " term=%" PRIu64,
         srv->member_id, ss->lead, srv->term);
  bool new_leader = ss->lead != RAFT_NONE && ss->lead != rn->lead;
  rn->role = ss->role;
  rn->lead = ss->lead;
  if (new_leader && ss->role == RAFT_LEADER) rn->lead_elected_ms = uv_now(srv->loop);
  if (new_leader) {
    fail_unindexed_reads(rn);
    retry_held(rn);
  }
  if (rn->lead != RAFT_NONE && !rn->announced) announce(rn);
  if (rn->lease_fwd) lease_forward_kick(rn->lease_fwd);
}

/* A follower needs entries compacted away: ship it the backend. */
static void send_snapshot(raft_node_t *rn, const raft_msg_t *m) {
  const char *addr = peer_address(rn->peers, m->to);
  if (addr)
    rship_send(rn->ship, m, addr);
  else
    raft_report_snapshot(rn->raft, m->to, false);
}

/* Rebuilds the peer transport's table from the applied membership. */
static void refresh_peers(raft_node_t *rn) {
  rn->peers_dirty = false;
  uint64_t *ids;
  char **urls;
  size_t n;
  reconfig_peers(rn->srv, &ids, &urls, &n);
  if (peer_set_peers(rn->peers, ids, urls, n))
    LOGE("msg=\"cannot update the peer transport\" member-id=%016" PRIx64, rn->srv->member_id);
  free(ids);
  free(urls);
}

/* Encodes and queues one raft message for its peer (a snapshot goes through raft_ship). */
static void send_msg(raft_node_t *rn, const raft_msg_t *m) {
  if (m->type == RAFT_MSG_SNAP) {
    send_snapshot(rn, m);
    return;
  }
  buf_reset(&rn->enc);
  raft_msg_encode(m, &rn->enc);
  peer_send(rn->peers, m->to, rn->enc.data, rn->enc.len);
  rn->sent = true;
}

/* Notes a confirmed read index for the waiting read with that context. */
static void note_read_state(raft_node_t *rn, const raft_read_state_t *rs) {
  if (rs->ctx_len != 8) return;
  uint64_t id;
  memcpy(&id, rs->ctx, 8);
  for (rn_read_t *r = rn->reads; r; r = r->next)
    if (r->ctx_id == id) {
      r->index = rs->index;
      r->have_index = true;
    }
}

/* raft_take_urgent callbacks: heartbeats, read-index traffic and a leader's appends leave
 * while the WAL syncs; confirmed read indexes are noted at once. */
static void urgent_msg(void *ctx, const raft_msg_t *m) { send_msg(ctx, m); }
static void urgent_read(void *ctx, const raft_read_state_t *rs) { note_read_state(ctx, rs); }

/* The held Ready is durable (or needed no sync): sends the messages that had to wait for
 * the disk, applies the committed entries, serves reads, advances. */
static void finish_ready(raft_node_t *rn) {
  raft_ready_t *rd = &rn->rd;
  server_t *srv = rn->srv;
  rn->holding = false;
  for (size_t i = 0; i < rd->n_msgs; i++)
    if (!raft_ready_send_early(rn->raft, rd, &rd->msgs[i])) send_msg(rn, &rd->msgs[i]);
  if (rn->sent) {
    peer_flush(rn->peers);
    rn->sent = false;
  }
  apply_committed(rn, rd->committed, rd->n_committed);
  for (size_t i = 0; i < rd->n_read_states; i++) note_read_state(rn, &rd->read_states[i]);
  serve_reads(rn);
  raft_advance(rn->raft, rd);
  rsnap_maybe_snapshot(&rn->snaps, rn->raft, srv->wal);
}

/* The WAL failed: nothing more can be made durable here, so raft stops. */
static void wal_dead(raft_node_t *rn, int rc) {
  LOGE("msg=\"WAL write failed; stopping raft\" error=\"%s\"", cetcd_strerror(rc));
  rn->srv->wal_failed = true;
  rn->stopped = true;
  rn->holding = false;
}

/* Drains the Ready loop. Each Ready: the messages that need no disk write go out at once
 * (a leader's appends, heartbeats), its entries and hard state go to the WAL, whose writer
 * thread syncs them while the loop goes on (on_wal_synced resumes here); then the other
 * messages (append acks, votes) go out, committed entries are applied, and raft advances.
 * While a Ready waits for its sync, raft keeps taking input and what it may send at once
 * leaves through raft_take_urgent; the rest, including new entries, forms the next Ready,
 * so entries proposed during one sync share the next. */
static void rn_process(raft_node_t *rn) {
  if (rn->processing || !rn->raft || rn->stopped) return;
  rn->processing = true;
  server_t *srv = rn->srv;
  while (!rn->stopped) {
    if (rn->holding) {
      raft_take_urgent(rn->raft, urgent_msg, urgent_read, rn);
      serve_reads(rn);
      break;
    }
    if (!raft_has_ready(rn->raft)) break;
    raft_ready_t *rd = &rn->rd;
    if (raft_ready(rn->raft, rd)) break;
    rn->holding = true;
    if (rd->hs_changed) {
      srv->term = rd->hs.term;
      rn->commit = rd->hs.commit;
    }
    if (rd->soft_changed) on_soft_state(rn, &rd->soft);
    for (size_t i = 0; i < rd->n_msgs; i++)
      if (raft_ready_send_early(rn->raft, rd, &rd->msgs[i])) send_msg(rn, &rd->msgs[i]);
    if (rn->sent) { /* out before the disk write: followers persist while we do */
      peer_flush(rn->peers);
      rn->sent = false;
    }
    int rc =
        rd->snapshot ? rsnap_persist_received(&rn->snaps, rd->snapshot, srv->wal, srv->applied_index) : 0;
    for (size_t i = 0; i < rd->n_entries && !rc; i++) {
      const raft_entry_t *e = &rd->entries[i];
      rc = e->type == RAFT_ENTRY_CONF_CHANGE
               ? wal_append_conf_entry(srv->wal, e->index, e->term, e->data, e->len)
               : wal_append_entry(srv->wal, e->index, e->term, e->data, e->len);
    }
    if (!rc && rd->hs_changed) rc = wal_append_hardstate(srv->wal, rd->hs.term, rd->hs.vote, rd->hs.commit);
    if (!rc && (rd->must_sync || rd->n_entries)) {
      rc = wal_sync_async(srv->wal, &rn->sync_ticket);
      if (!rc) continue; /* on_wal_synced finishes it */
    }
    if (rc) {
      wal_dead(rn, rc);
      break;
    }
    finish_ready(rn); /* nothing to wait for: a commit index or messages only */
  }
  rn->processing = false;
  if (rn->peers_dirty && !rn->stopped) refresh_peers(rn);
  if (rn->self_removed) reconfig_removed(srv);
}

void raft_node_on_wal_synced(raft_node_t *rn, uint64_t ticket) {
  if (!rn->holding || rn->stopped || ticket < rn->sync_ticket) return;
  rn->processing = true;
  finish_ready(rn);
  rn->processing = false;
  rn_process(rn);
}

void raft_node_on_wal_error(raft_node_t *rn, int err) {
  if (rn->stopped) return;
  wal_dead(rn, err);
  fail_all(rn, CETCD_ESTOPPED);
}

/* libuv idle callback: the input gathered in this loop iteration (proposals, peer
 * messages) is turned into one Ready, so a burst of proposals shares one append. */
static void on_kick(uv_idle_t *h) {
  raft_node_t *rn = h->data;
  uv_idle_stop(h);
  rn_process(rn);
}

/* Processes raft's output later in this loop iteration, once the input read in it is in. */
static void rn_schedule(raft_node_t *rn) {
  if (rn->kick_open && !rn->stopped) uv_idle_start(&rn->kick, on_kick);
}

/* Asks raft for a read index for r. */
static void ask_read(raft_node_t *rn, rn_read_t *r) {
  r->next_ask = uv_now(rn->srv->loop) + rn->srv->cfg->election_timeout_ms;
  raft_read_index(rn->raft, (const uint8_t *)&r->ctx_id, 8);
}

/* Tick timer: raft's clock, plus timeouts of proposals and reads. */
static void on_tick(uv_timer_t *t) {
  raft_node_t *rn = t->data;
  if (rn->stopped) return;
  raft_tick(rn->raft);
  retry_held(rn);
  uint64_t now = uv_now(rn->srv->loop);
  lease_forward_tick(rn->lease_fwd);
  rn_prop_t **pp = &rn->props;
  while (*pp) {
    rn_prop_t *p = *pp;
    if (p->deadline > now) {
      pp = &p->next;
      continue;
    }
    *pp = p->next;
    apply_result_t res = {.err = timeout_error(rn, p)};
    p->cb(p->ctx, &res);
    prop_free(p);
  }
  if (rn->conf_wait.active && rn->conf_wait.deadline <= now) conf_wait_done(rn, CETCD_ETIMEOUT);
  rn_read_t **rp = &rn->reads;
  while (*rp) {
    rn_read_t *r = *rp;
    if (r->deadline <= now) {
      *rp = r->next;
      r->cb(r->ctx, CETCD_ETIMEOUT);
      free(r);
      continue;
    }
    if (!r->have_index && r->next_ask <= now) ask_read(rn, r);
    rp = &r->next;
  }
  rn_process(rn);
}

/* A raft message (or a health probe, type 0) from a peer, as the peer server decoded it.
 * Returns 1 if its sender was removed from the cluster. */
static int on_peer_message(void *ctx, const Cetcdraftpb__Message *pm) {
  raft_node_t *rn = ctx;
  if (!rn->raft || rn->stopped) return 0;
  arena_t a;
  arena_init(&a);
  raft_msg_t m;
  int removed = 0;
  if (raft_msg_from_pb(pm, &a, &m) == 0) {
    removed = reconfig_heard(rn->srv, m.from);
    if (!removed && transient(raft_step(rn->raft, &m)) && m.type == RAFT_MSG_PROP) {
      size_t n = cetcdraftpb__message__get_packed_size(pm);
      uint8_t *b = arena_alloc(&a, n ? n : 1);
      hold_peer_prop(rn, b, cetcdraftpb__message__pack(pm, b));
    }
  } else if (pm->type == 0 && pm->from) {
    removed = reconfig_heard(rn->srv, pm->from);
  }
  arena_destroy(&a);
  rn_schedule(rn);
  return removed;
}

/* A peer said this member was removed from the cluster. */
static void on_peer_removed(void *ctx) {
  raft_node_t *rn = ctx;
  if (!rn->stopped) reconfig_removed(rn->srv);
}

/* A lease message from a peer: a forwarded request (we may be the leader) or an answer. */
static void on_peer_lease(void *ctx, const ProtobufCMessage *msg) {
  raft_node_t *rn = ctx;
  if (!rn->lease_fwd || rn->stopped) return;
  lease_forward_on_message(rn->lease_fwd, msg);
}

/* The stream to a peer broke. */
static void on_peer_unreachable(void *ctx, uint64_t id) {
  raft_node_t *rn = ctx;
  if (!rn->raft || rn->stopped) return;
  raft_report_unreachable(rn->raft, id);
}

/* rsnap_load_newest filter: the WAL holds every entry after the snapshot (or none). */
static bool snap_fits(void *ctx, const rsnap_meta_t *m) {
  raft_node_t *rn = ctx;
  return !rn->n_rents || rn->rents[0].index <= m->index + 1;
}

/* Drops the replayed entries the snapshot at index covers. */
static void drop_replayed_through(raft_node_t *rn, uint64_t index) {
  size_t k = 0;
  while (k < rn->n_rents && rn->rents[k].index <= index) free((void *)rn->rents[k++].data);
  memmove(rn->rents, rn->rents + k, (rn->n_rents - k) * sizeof(raft_entry_t));
  rn->n_rents -= k;
}
/* lease forwarder hooks: the leader we know, sending on the peer's lease stream, time */
static uint64_t fwd_leader(void *ctx) { return ((raft_node_t *)ctx)->lead; }
static void fwd_send(void *ctx, uint64_t to, const uint8_t *data, size_t len) {
  raft_node_t *rn = ctx;
  if (!rn->peers) return;
  peer_send_kind(rn->peers, to, PEER_LEASE, data, len);
  peer_flush(rn->peers);
}
static uint64_t fwd_now(void *ctx) { return uv_now(((raft_node_t *)ctx)->srv->loop); }

lease_fwd_t *raft_node_lease_forward(raft_node_t *rn) { return rn->lease_fwd; }

/* Appends a replayed-style copy of entry e to rn's restore entries. */
static void push_rent(raft_node_t *rn, const raft_entry_t *e) {
  if (rn->n_rents == rn->cap_rents) {
    rn->cap_rents = rn->cap_rents ? 2 * rn->cap_rents : 64;
    rn->rents = xrealloc(rn->rents, rn->cap_rents * sizeof(raft_entry_t));
  }
  raft_entry_t c = *e;
  c.data = xmemdup(e->data ? e->data : (const uint8_t *)"", e->len ? e->len : 1);
  rn->rents[rn->n_rents++] = c;
}

/* Adds id to the set (ids, *n) unless present; removes it when del. */
static void id_set(uint64_t *ids, size_t *n, uint64_t id, bool del) {
  for (size_t i = 0; i < *n; i++)
    if (ids[i] == id) {
      if (del) ids[i] = ids[--*n];
      return;
    }
  if (!del) ids[(*n)++] = id;
}

/* --force-new-cluster (etcd's restartAsStandaloneNode): drops the uncommitted tail of the
 * log, then appends and commits conf changes that remove every other member (and add this
 * one if needed), so this member restarts as a one-member cluster with its data. */
static int force_new_cluster(raft_node_t *rn) {
  server_t *srv = rn->srv;
  uint64_t commit = rn->rhs.commit, applied = mvcc_consistent_index(srv->mvcc);
  if (commit < applied) commit = applied;
  size_t keep = 0;
  while (keep < rn->n_rents && rn->rents[keep].index <= commit) keep++;
  if (keep < rn->n_rents) {
    LOGI("msg=\"discarding uncommitted WAL entries\" entry-index=%" PRIu64 " commit-index-from-wal=%" PRIu64
         " number-of-discarded-entries=%zu",
         rn->rents[keep].index, commit, rn->n_rents - keep);
    for (size_t i = keep; i < rn->n_rents; i++) free((void *)rn->rents[i].data);
    rn->n_rents = keep;
  }
  /* the members as of the commit index: the applied membership, then later conf changes */
  size_t cap = membership_count(srv->members) + rn->n_rents + 1, n = 0;
  uint64_t *ids = xcalloc(cap, sizeof(uint64_t));
  for (size_t i = 0; i < membership_count(srv->members); i++) ids[n++] = membership_at(srv->members, i)->id;
  for (size_t i = 0; i < rn->n_rents; i++) {
    const raft_entry_t *e = &rn->rents[i];
    if (e->index <= applied || e->type != RAFT_ENTRY_CONF_CHANGE) continue;
    arena_t a;
    arena_init(&a);
    raft_conf_change_t cc;
    if (raft_conf_change_decode(e->data, e->len, &a, &cc) == 0)
      id_set(ids, &n, cc.node_id, cc.type == RAFT_CC_REMOVE_NODE);
    arena_destroy(&a);
  }
  uint64_t last = rn->n_rents ? rn->rents[rn->n_rents - 1].index : commit;
  if (last < commit) last = commit;
  uint64_t term = rn->rhs.term;
  int rc = 0;
  bool self_found = false;
  for (size_t i = 0; i < n && !rc; i++) self_found |= ids[i] == srv->member_id;
  for (size_t i = 0; i <= n && !rc; i++) {
    raft_conf_change_t cc = {.type = RAFT_CC_REMOVE_NODE};
    buf_t ctx = {0};
    if (i == n) { /* this member, if the log does not have it */
      if (self_found) break;
      Cetcdinternal__MemberRecord rec = CETCDINTERNAL__MEMBER_RECORD__INIT;
      rec.id = srv->member_id;
      rec.peerurls = srv->peer_urls;
      rec.n_peerurls = srv->n_peer_urls;
      buf_reserve(&ctx, cetcdinternal__member_record__get_packed_size(&rec));
      ctx.len = cetcdinternal__member_record__pack(&rec, ctx.data);
      cc = (raft_conf_change_t){.type = RAFT_CC_ADD_VOTER, .context = ctx.data, .context_len = ctx.len};
      cc.node_id = srv->member_id;
    } else if (ids[i] == srv->member_id) {
      continue;
    } else {
      cc.node_id = ids[i];
    }
    buf_t b = {0};
    raft_conf_change_encode(&cc, &b);
    raft_entry_t e = {
        .term = term, .index = ++last, .type = RAFT_ENTRY_CONF_CHANGE, .data = b.data, .len = b.len};
    rc = wal_append_conf_entry(srv->wal, e.index, e.term, e.data, e.len);
    if (!rc) push_rent(rn, &e);
    buf_free(&b);
    buf_free(&ctx);
  }
  free(ids);
  rn->rhs.commit = last;
  if (!rc) rc = wal_append_hardstate(srv->wal, rn->rhs.term, rn->rhs.vote, last);
  if (!rc) rc = wal_sync_now(srv->wal);
  if (rc) {
    LOGE("msg=\"failed to save hard state and entries\" error=\"%s\"", cetcd_strerror(rc));
    return rc;
  }
  LOGI("msg=\"forcing restart member\" cluster-id=%016" PRIx64 " local-member-id=%016" PRIx64
       " commit-index=%" PRIu64,
       srv->cluster_id, srv->member_id, last);
  return 0;
}

int raft_node_start(raft_node_t *rn) {
  server_t *srv = rn->srv;
  cetcd_config_t *cfg = srv->cfg;
  uint64_t applied = mvcc_consistent_index(srv->mvcc);
  if (srv->members) { /* the applied membership, not --initial-cluster */
    free(rn->voters);
    reconfig_conf_state(srv, &rn->voters, &rn->n_voters, &rn->learners, &rn->n_learners);
  }
  /* only a member with data restarts alone; a new one bootstraps as usual (as etcd) */
  if (cfg->force_new_cluster && srv->members && (rn->rhs.term || rn->n_rents || applied)) {
    int frc = force_new_cluster(rn);
    if (frc) return frc;
  }
  raft_snapshot_t snap = {
      .voters = rn->voters, .n_voters = rn->n_voters, .learners = rn->learners, .n_learners = rn->n_learners};
  raft_restore_t rs = {.hs = rn->rhs, .applied = applied};
  rn->snaps.member_id = srv->member_id;
  rsnap_meta_t meta = {0};
  bool have_meta = rsnap_load_newest(rn->snaps.dir, applied, snap_fits, rn, &meta) == 0;
  if (have_meta) {
    snap = rsnap_as_raft(&meta);
    rs.snapshot = &snap;
    drop_replayed_through(rn, meta.index);
    uint64_t last = rn->n_rents ? rn->rents[rn->n_rents - 1].index : meta.index;
    if (applied > last) applied = last; /* an installed backend may be ahead of the log */
    LOGI("msg=\"recovered from snapshot\" snapshot-index=%" PRIu64 " snapshot-term=%" PRIu64
         " voters=%zu learners=%zu",
         meta.index, meta.term, meta.n_voters, meta.n_learners);
  } else if (rn->n_rents) {
    if (rn->rents[0].index > 1) {
      snap.index = rn->rents[0].index - 1;
      snap.term = rn->rents[0].term;
      rs.snapshot = &snap;
    }
  } else if (applied) {
    snap.index = applied;
    snap.term = rn->rhs.term;
    rs.snapshot = &snap;
  }
  rs.entries = rn->rents;
  rs.n_entries = rn->n_rents;
  if (rs.hs.commit < applied) rs.hs.commit = applied;
  rsnap_state_restored(&rn->snaps, have_meta ? meta.index : 0, applied);
  rn->rng = srv->member_id ^ (uint64_t)uv_hrtime() ^ 0x9e3779b97f4a7c15ULL;
  if (!rn->rng) rn->rng = 1;
  uint32_t hb = cfg->heartbeat_interval_ms ? cfg->heartbeat_interval_ms : 100;
  raft_config_t rc = {
      .id = srv->member_id,
      .voters = rn->voters,
      .n_voters = rn->n_voters,
      .learners = rn->learners,
      .n_learners = rn->n_learners,
      .election_tick = (int)(cfg->election_timeout_ms / hb) > 1 ? (int)(cfg->election_timeout_ms / hb) : 10,
      .heartbeat_tick = 1,
      .pre_vote = true,
      .check_quorum = true,
      .rand = rn_rand,
      .rand_ctx = rn,
      .restore = (rs.hs.term || rs.n_entries || rs.snapshot) ? &rs : NULL};
  if (rc.restore && !rs.snapshot && rs.n_entries == 0) rs.applied = 0;
  uint64_t log_last = rs.n_entries  ? rs.entries[rs.n_entries - 1].index
                      : rs.snapshot ? rs.snapshot->index
                                    : 0;
  if (rc.restore && rs.hs.commit > log_last) /* etcd panics the same way ("tocommit out of range") */
    LOGE(
        "msg=\"the WAL lost committed entries the backend or hard state has: was the raft log corrupted, "
        "truncated, or lost?\" wal-dir=%s backend=%s/member/snap/data.mdb tocommit=%" PRIu64
        " last-index=%" PRIu64 " applied-index=%" PRIu64,
        cfg->wal_dir, cfg->data_dir, rs.hs.commit, log_last, applied);
  rn->raft = raft_new(&rc);
  rsnap_meta_free(&meta);
  for (size_t i = 0; i < rn->n_rents; i++) free((void *)rn->rents[i].data);
  free(rn->rents);
  rn->rents = NULL;
  rn->n_rents = rn->cap_rents = 0;
  if (!rn->raft) {
    LOGE("msg=\"cannot create the raft node\" member-id=%016" PRIx64, srv->member_id);
    return CETCD_EINVAL;
  }
  raft_status_t st;
  raft_status(rn->raft, &st);
  srv->term = st.term;
  srv->last_index = st.last_index;
  /* request ids unique across members and restarts: member bits, then the start time */
  srv->next_request_id =
      (srv->member_id & 0xffff000000000000ULL) | ((uv_hrtime() / 1000000 & 0xffffffffffULL) << 8);
  uint64_t *ids;
  char **urls;
  size_t n_peers;
  reconfig_peers(srv, &ids, &urls, &n_peers);
  tls_ctx_t *peer_tls;
  grpc_tls_ctx_t *dialer_tls;
  if (tls_setup_peer(cfg, &peer_tls, &dialer_tls)) {
    free(ids);
    free(urls);
    return CETCD_EINVAL;
  }
  peer_set_dialer_tls(dialer_tls);
  peer_cbs_t cbs = {.on_message = on_peer_message,
                    .on_lease = on_peer_lease,
                    .on_unreachable = on_peer_unreachable,
                    .on_removed = on_peer_removed,
                    .ctx = rn};
  rn->peers = peer_new(srv->loop, ids, urls, n_peers, &cbs);
  free(ids);
  free(urls);
  if (!rn->peers) {
    tls_ctx_free(peer_tls);
    return CETCD_EINVAL;
  }
  int r = peer_listen(rn->peers, cfg->listen_peer_urls, cfg->n_listen_peer_urls, peer_tls);
  if (r) return r;
  /* etcd's request timeout: 5 s plus two election timeouts for a possible election */
  lease_fwd_env_t env = {.leader = fwd_leader, .send = fwd_send, .now_ms = fwd_now, .ctx = rn};
  rn->lease_fwd =
      lease_forward_new(srv->member_id, srv->lessor, 5000 + 2 * (uint64_t)cfg->election_timeout_ms, hb, &env);
  rn->ship = rship_new(srv, rn, &rn->snaps);
  psnap_register(peer_server(rn->peers), rn->snaps.dir, rship_install, rn->ship);
  /* a joining member reads the membership here; a follower forwards MemberPromote here */
  srv->layer->serve_peers(srv->layer->ctx, peer_server(rn->peers));
  uv_timer_init(srv->loop, &rn->tick);
  rn->tick.data = rn;
  rn->tick_open = true;
  uv_timer_start(&rn->tick, on_tick, hb, hb);
  uv_idle_init(srv->loop, &rn->kick);
  rn->kick.data = rn;
  rn->kick_open = true;
  rn->started = true;
  LOGI("msg=\"starting raft\" member-id=%016" PRIx64 " members=%zu term=%" PRIu64 " applied-index=%" PRIu64
       " last-index=%" PRIu64,
       srv->member_id, rn->n_voters, st.term, applied, st.last_index);
  rn_process(rn);
  return 0;
}

void raft_node_propose(raft_node_t *rn, const uint8_t *data, size_t len, uint64_t req_id, arena_t *arena,
                       propose_cb cb, void *ctx) {
  if (rn->stopped || !rn->raft) {
    apply_result_t res = {.err = CETCD_ESTOPPED};
    cb(ctx, &res);
    return;
  }
  int rc = raft_propose(rn->raft, data, len);
  if (rc && !transient(rc)) {
    apply_result_t res = {.err = rc};
    cb(ctx, &res);
    return;
  }
  rn_prop_t *p = xcalloc(1, sizeof(*p));
  if (rc) { /* proposed again once a leader can take it (retry_held) */
    p->held = xmalloc(len ? len : 1);
    memcpy(p->held, data, len);
    p->held_len = len;
  }
  p->id = req_id;
  p->arena = arena;
  p->cb = cb;
  p->ctx = ctx;
  p->deadline = uv_now(rn->srv->loop) + req_timeout(rn);
  p->next = rn->props;
  rn->props = p;
  rn_schedule(rn);
}

void raft_node_read_index(raft_node_t *rn, raft_node_read_cb cb, void *ctx) {
  if (rn->stopped || !rn->raft) {
    cb(ctx, CETCD_ESTOPPED);
    return;
  }
  rn_read_t *r = xcalloc(1, sizeof(*r));
  r->ctx_id = ++rn->next_read ^ (rn->srv->member_id << 32);
  r->cb = cb;
  r->ctx = ctx;
  r->deadline = uv_now(rn->srv->loop) + req_timeout(rn);
  r->next = rn->reads;
  rn->reads = r;
  ask_read(rn, r);
  rn_process(rn);
}

void raft_node_step(raft_node_t *rn, const uint8_t *msg, size_t len) {
  arena_t a;
  arena_init(&a);
  Cetcdraftpb__Message *pm = cetcdraftpb__message__unpack(&a.pb, len, msg);
  if (pm) on_peer_message(rn, pm);
  arena_destroy(&a);
}

void raft_node_report_snapshot(raft_node_t *rn, uint64_t to, bool ok) {
  if (!rn->raft || rn->stopped) return;
  raft_report_snapshot(rn->raft, to, ok);
  rn_process(rn);
}

uint64_t raft_node_release_index(raft_node_t *rn, uint64_t synced) {
  return rsnap_release_index(&rn->snaps, synced);
}

void raft_node_info(raft_node_t *rn, uint64_t *leader, uint64_t *index, uint64_t *term) {
  raft_status_t st;
  memset(&st, 0, sizeof(st));
  if (rn->raft) raft_status(rn->raft, &st);
  if (leader) *leader = st.lead;
  if (index) *index = st.commit;
  if (term) *term = st.term;
}

int raft_node_transfer_leader(raft_node_t *rn, uint64_t target) {
  if (!rn->raft || rn->stopped) return CETCD_ESTOPPED;
  if (!raft_is_voter(rn->raft, target)) return CETCD_EBADTRANSFEREE;
  int rc = raft_transfer_leader(rn->raft, target);
  rn_process(rn);
  return rc;
}

bool raft_node_is_learner(raft_node_t *rn) {
  return rn->raft && raft_is_learner(rn->raft, rn->srv->member_id);
}

uint64_t raft_node_transferee(raft_node_t *rn) {
  raft_status_t st;
  if (!rn->raft) return 0;
  raft_status(rn->raft, &st);
  return st.role == RAFT_LEADER ? st.lead_transferee : 0;
}

uint64_t raft_node_best_transferee(raft_node_t *rn) {
  uint64_t id = RAFT_NONE;
  if (rn->raft) raft_best_transferee(rn->raft, &id);
  return id;
}

/* Releases everything the node owns. */
static void free_node(raft_node_t *rn) {
  raft_free(rn->raft);
  for (size_t i = 0; i < rn->n_rents; i++) free((void *)rn->rents[i].data);
  free(rn->rents);
  free(rn->voters);
  rsnap_state_free(&rn->snaps);
  free(rn->learners);
  ids_cluster_free(&rn->cluster);
  buf_free(&rn->enc);
  free(rn);
}

/* libuv: the tick or kick handle is closed; a free that was asked for meanwhile happens
 * once both are. */
static void handle_closed(uv_handle_t *h) {
  raft_node_t *rn = h->data;
  if (h == (uv_handle_t *)&rn->tick)
    rn->tick_open = false;
  else
    rn->kick_open = false;
  if (rn->free_requested && !rn->tick_open && !rn->kick_open) free_node(rn);
}

void raft_node_free(raft_node_t *rn) {
  if (!rn) return;
  raft_node_stop(rn);
  if (rn->tick_open || rn->kick_open)
    rn->free_requested = true; /* handle_closed frees it */
  else
    free_node(rn);
}

void raft_node_stop(raft_node_t *rn) {
  if (!rn || rn->stopped) return;
  rn->stopped = true;
  if (rn->started) {
    psnap_unregister();
    rship_stop(rn->ship);
    rn->ship = NULL;
    uv_timer_stop(&rn->tick);
    uv_close((uv_handle_t *)&rn->tick, handle_closed);
    uv_idle_stop(&rn->kick);
    uv_close((uv_handle_t *)&rn->kick, handle_closed);
    lease_forward_free(rn->lease_fwd);
    rn->lease_fwd = NULL;
    peer_free(rn->peers);
    rn->peers = NULL;
    peer_set_dialer_tls(NULL);
  }
  fail_all(rn, CETCD_ESTOPPED);
  drop_held_msgs(rn);
}

/* ---- membership (server/reconfig.c) ------------------------------------------------ */

void raft_node_propose_conf(raft_node_t *rn, const raft_conf_change_t *cc, void (*cb)(void *ctx, int err),
                            void *ctx) {
  if (rn->stopped || !rn->raft) {
    cb(ctx, CETCD_ESTOPPED);
    return;
  }
  if (rn->conf_wait.active) {
    cb(ctx, CETCD_ECONFPENDING);
    return;
  }
  int rc = raft_propose_conf_change(rn->raft, cc);
  if (rc) {
    cb(ctx, rc);
    return;
  }
  rn->conf_wait = (rn_conf_wait_t){.active = true,
                                   .node_id = cc->node_id,
                                   .type = cc->type,
                                   .cb = cb,
                                   .ctx = ctx,
                                   .deadline = uv_now(rn->srv->loop) + req_timeout(rn)};
  rn_process(rn);
}

int raft_node_match(raft_node_t *rn, uint64_t id, uint64_t *match, uint64_t *lead_match) {
  *match = *lead_match = 0;
  if (!rn->raft) return CETCD_ENOTLEADER;
  int rc = raft_progress_match(rn->raft, rn->srv->member_id, lead_match);
  if (rc) return rc;
  return raft_progress_match(rn->raft, id, match);
}

void raft_node_send_probe(raft_node_t *rn, uint64_t to) {
  if (!rn->peers || rn->stopped) return;
  Cetcdraftpb__Message m = CETCDRAFTPB__MESSAGE__INIT;
  m.from = rn->srv->member_id;
  m.to = to;
  uint8_t buf[32];
  size_t n = cetcdraftpb__message__pack(&m, buf);
  peer_send(rn->peers, to, buf, n);
  peer_flush(rn->peers);
}

void raft_node_peers_changed(raft_node_t *rn) { rn->peers_dirty = true; }

void raft_node_self_removed(raft_node_t *rn) { rn->self_removed = true; }
