/* Deterministic simulation of raft clusters (DESIGN §6.8).
 *
 * Each run is one seed: 3 or 5 members (sometimes plus learners, sometimes with membership
 * changes), a network that loses, duplicates, delays and reorders messages, partitions that
 * come and go, members that crash and restart from what they persisted (the snapshot, the
 * entries and hard state handed out in Readys before the crash, nothing in flight), random
 * proposals, linearizable reads, log compaction, snapshots that carry the sender's state
 * machine as of sending (ahead of their index, as the server ships its backend; a receiver
 * whose state is ahead keeps it) and leadership transfers. Every message goes
 * through raft_msg_encode/decode. As in the server, a Ready's messages that
 * raft_ready_send_early allows leave before the Ready is persisted, and persisting is often
 * late, with more input in between and raft_take_urgent's messages going out meanwhile (the
 * WAL syncs on another thread); a crash before it loses the whole Ready. Readys are
 * sometimes advanced late too.
 *
 * Checked continuously: election safety (one leader per term), log matching, leader
 * completeness, state machine safety (every member applies the same entry at each index, in
 * order, including after restarts and snapshots), committed entries never change, read
 * index >= every commit index known when the read was issued. At the end of each run the
 * network heals and every member restarts: a leader must emerge and a new proposal must be
 * applied everywhere within a bounded number of ticks.
 *
 * Environment: RAFT_SIM_RUNS (default 200), RAFT_SIM_TICKS (default 2000), RAFT_SIM_FIRST
 * (first seed, default 1), RAFT_SIM_SEED (run only that seed), RAFT_SIM_VERBOSE. A failure prints the seed to
 * replay it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "base/buf.h"
#include "cetcd/errors.h"
#include "raft/raft.h"
#include "raft/raft_int.h" /* progress details in failure dumps */

#define MAXN 7 /* ids 1..MAXN */

/* ==== deterministic randomness ==== */

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rand_cb(void *ctx) { return splitmix(ctx); }

static uint64_t hash_bytes(const uint8_t *p, size_t n, uint64_t h) {
  h ^= 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

/* ==== model ==== */

typedef struct pent {
  uint64_t term;
  raft_entry_type_t type;
  uint8_t *data;
  size_t len;
} pent_t;

/* What a member has on disk: hard state, latest snapshot, log entries after it. */
typedef struct disk {
  raft_hard_state_t hs;
  bool has_snap;
  uint64_t snap_index, snap_term;
  uint64_t snap_voters[MAXN], snap_learners[MAXN];
  size_t snap_nv, snap_nl;
  uint8_t snap_data[16]; /* the state machine it carries: index applied, hash chain */
  pent_t *ents;          /* ents[k] has index snap_index + 1 + k */
  size_t n, cap;
} disk_t;

typedef struct node {
  uint64_t id;
  raft_t *r; /* NULL while crashed */
  bool exists, removed;
  int down_until;
  disk_t disk;
  uint64_t applied, chain; /* the state machine: applied index and a hash chain */
  uint64_t rng;
  bool holding;   /* a Ready was handed out but not advanced yet */
  bool persisted; /* ... and it was persisted (until then a crash loses all of it) */
  raft_ready_t rd;
} node_t;

typedef struct nmsg {
  int at;
  uint64_t from, to;
  bool snap;
  uint8_t *buf;
  size_t len;
} nmsg_t;

typedef struct read_req {
  uint64_t min_index;
  bool done;
} read_req_t;

typedef struct sim {
  uint64_t seed, rng;
  int now, ticks;
  size_t n_initial;
  node_t nodes[MAXN + 1];
  bool pre_vote, check_quorum, conf_changes;
  int election, heartbeat;
  size_t max_inflight, max_msg;
  unsigned loss, dup, max_delay;                        /* loss/dup in 1/1000 */
  unsigned crash_rate, part_rate, heal_rate, prop_rate; /* per tick, in 1/1000 */
  int max_down;
  bool cut[MAXN + 1][MAXN + 1];
  nmsg_t *q;
  size_t nq, capq;
  /* global knowledge */
  uint64_t *g_term, *g_hash, *g_chain, *g_cterm; /* by index: applied entry and commit term */
  size_t g_cap;
  uint64_t g_max_commit;
  uint64_t *leader_of; /* by term */
  size_t leader_cap;
  read_req_t *reads;
  size_t n_reads, cap_reads;
  uint64_t prop_seq;
  uint64_t marker; /* liveness proposal */
  /* stats */
  size_t stat_commits, stat_reads, stat_snaps, stat_crashes, stat_confs, stat_leaders, stat_msgs;
  size_t stat_snaps_ahead, stat_snaps_kept; /* state ahead of the snapshot index; ours kept */
} sim_t;

static sim_t *S;

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "raft sim FAILED seed=%llu tick=%d: ", (unsigned long long)S->seed, S->now);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n  replay: RAFT_SIM_SEED=%llu RAFT_SIM_VERBOSE=1 <this binary>\n",
          (unsigned long long)S->seed);
  va_end(ap);
  exit(1);
}

static bool verbose;
#define VLOG(...)                       \
  do {                                  \
    if (verbose) {                      \
      fprintf(stderr, "[%d] ", S->now); \
      fprintf(stderr, __VA_ARGS__);     \
      fprintf(stderr, "\n");            \
    }                                   \
  } while (0)

static uint64_t rnd(uint64_t n) { return n ? splitmix(&S->rng) % n : 0; }
static bool chance(unsigned per_mille) { return rnd(1000) < per_mille; }

/* Grows the global arrays to cover index i. */
static void g_reserve(size_t i) {
  if (i < S->g_cap) return;
  size_t cap = S->g_cap ? S->g_cap : 1024;
  while (cap <= i) cap *= 2;
  uint64_t **arrs[] = {&S->g_term, &S->g_hash, &S->g_chain, &S->g_cterm};
  for (size_t k = 0; k < 4; k++) {
    *arrs[k] = realloc(*arrs[k], cap * sizeof(uint64_t));
    memset(*arrs[k] + S->g_cap, 0, (cap - S->g_cap) * sizeof(uint64_t));
  }
  S->g_cap = cap;
}

/* ==== disk ==== */

static uint64_t disk_last(const disk_t *d) { return d->snap_index + d->n; }

static void disk_truncate(disk_t *d, uint64_t from) {
  while (d->n && disk_last(d) >= from) free(d->ents[--d->n].data);
}

static void disk_append(disk_t *d, const raft_entry_t *e) {
  if (e->index <= d->snap_index)
    fail("member persists entry %llu below its snapshot", (unsigned long long)e->index);
  disk_truncate(d, e->index);
  if (e->index != disk_last(d) + 1) fail("gap in persisted log at %llu", (unsigned long long)e->index);
  if (d->n == d->cap) {
    d->cap = d->cap ? d->cap * 2 : 64;
    d->ents = realloc(d->ents, d->cap * sizeof(*d->ents));
  }
  pent_t *p = &d->ents[d->n++];
  p->term = e->term;
  p->type = e->type;
  p->len = e->len;
  p->data = NULL;
  if (e->len) {
    p->data = malloc(e->len);
    memcpy(p->data, e->data, e->len);
  }
}

static void disk_set_snapshot(disk_t *d, const raft_snapshot_t *s) {
  d->has_snap = true;
  /* Entries the snapshot covers are dropped; later ones stay only if they continue it. */
  if (s->index <= disk_last(d) && s->index > d->snap_index &&
      d->ents[s->index - d->snap_index - 1].term == s->term) {
    size_t drop = (size_t)(s->index - d->snap_index);
    for (size_t k = 0; k < drop; k++) free(d->ents[k].data);
    memmove(d->ents, d->ents + drop, (d->n - drop) * sizeof(*d->ents));
    d->n -= drop;
  } else {
    disk_truncate(d, d->snap_index + 1);
  }
  d->snap_index = s->index;
  d->snap_term = s->term;
  d->snap_nv = s->n_voters;
  d->snap_nl = s->n_learners;
  memcpy(d->snap_voters, s->voters, s->n_voters * sizeof(uint64_t));
  memcpy(d->snap_learners, s->learners, s->n_learners * sizeof(uint64_t));
  if (s->len != 16) fail("snapshot data of %zu bytes", s->len);
  memcpy(d->snap_data, s->data, 16);
}

static void disk_free(disk_t *d) {
  disk_truncate(d, 0);
  free(d->ents);
  memset(d, 0, sizeof(*d));
}

/* ==== members ==== */

static uint64_t get_u64(const uint8_t *b) {
  uint64_t v;
  memcpy(&v, b, 8);
  return v;
}

/* Snapshot data: the state machine as of index (index, then its hash chain). */
static void snap_state(uint8_t out[16], uint64_t index, uint64_t chain) {
  memcpy(out, &index, 8);
  memcpy(out + 8, &chain, 8);
}

/* Creates the raft of node nd from its disk (or fresh with the given membership). */
static void node_start(node_t *nd, const uint64_t *voters, size_t nv, const uint64_t *learners, size_t nl) {
  disk_t *d = &nd->disk;
  raft_entry_t *ents = calloc(d->n + 1, sizeof(*ents));
  for (size_t k = 0; k < d->n; k++)
    ents[k] = (raft_entry_t){.term = d->ents[k].term,
                             .index = d->snap_index + 1 + k,
                             .type = d->ents[k].type,
                             .data = d->ents[k].data,
                             .len = d->ents[k].len};
  raft_snapshot_t snap = {.index = d->snap_index,
                          .term = d->snap_term,
                          .voters = d->snap_voters,
                          .n_voters = d->snap_nv,
                          .learners = d->snap_learners,
                          .n_learners = d->snap_nl,
                          .data = d->snap_data,
                          .len = 16};
  raft_restore_t rs = {
      .hs = d->hs, .snapshot = d->has_snap ? &snap : NULL, .entries = ents, .n_entries = d->n};
  raft_config_t cfg = {.id = nd->id,
                       .voters = voters,
                       .n_voters = nv,
                       .learners = learners,
                       .n_learners = nl,
                       .election_tick = S->election,
                       .heartbeat_tick = S->heartbeat,
                       .pre_vote = S->pre_vote,
                       .check_quorum = S->check_quorum,
                       .max_inflight = S->max_inflight,
                       .max_size_per_msg = S->max_msg,
                       .rand = rand_cb,
                       .rand_ctx = &nd->rng,
                       .restore = &rs};
  nd->r = raft_new(&cfg);
  free(ents);
  if (!nd->r) fail("raft_new failed for %llu (restart from disk)", (unsigned long long)nd->id);
  /* The state machine restarts from the snapshot's; raft hands the rest out again (the
   * entries the state already reflects are skipped). */
  nd->applied = d->has_snap ? get_u64(d->snap_data) : 0;
  nd->chain = d->has_snap ? get_u64(d->snap_data + 8) : 0;
  nd->holding = false;
}

/* The membership a fresh or restarted member is configured with (the initial cluster). */
static void initial_conf(uint64_t *voters, size_t *nv) {
  *nv = S->n_initial;
  for (size_t i = 0; i < S->n_initial; i++) voters[i] = i + 1;
}

static void crash(node_t *nd) {
  if (!nd->r) return;
  VLOG("crash %llu", (unsigned long long)nd->id);
  /* an outstanding Ready survives only if it was persisted (its WAL sync returned) */
  raft_free(nd->r);
  nd->r = NULL;
  nd->holding = false;
  S->stat_crashes++;
}

static void restart(node_t *nd) {
  uint64_t voters[MAXN];
  size_t nv;
  initial_conf(voters, &nv);
  VLOG("restart %llu", (unsigned long long)nd->id);
  node_start(nd, voters, nv, NULL, 0);
}

/* ==== checks ==== */

static void check_leader(node_t *nd) {
  raft_status_t st;
  raft_status(nd->r, &st);
  if (st.role != RAFT_LEADER) return;
  if (st.term >= S->leader_cap) {
    size_t cap = S->leader_cap ? S->leader_cap : 256;
    while (cap <= st.term) cap *= 2;
    S->leader_of = realloc(S->leader_of, cap * sizeof(uint64_t));
    memset(S->leader_of + S->leader_cap, 0, (cap - S->leader_cap) * sizeof(uint64_t));
    S->leader_cap = cap;
  }
  uint64_t *l = &S->leader_of[st.term];
  if (*l && *l != nd->id)
    fail("election safety: term %llu has leaders %llu and %llu", (unsigned long long)st.term,
         (unsigned long long)*l, (unsigned long long)nd->id);
  if (*l == 0) {
    *l = nd->id;
    S->stat_leaders++;
    VLOG("leader %llu term %llu", (unsigned long long)nd->id, (unsigned long long)st.term);
    /* Leader completeness: every entry committed in an earlier term is in our log. */
    for (uint64_t i = st.first_index; i <= S->g_max_commit; i++) {
      if (!S->g_cterm[i] || S->g_cterm[i] >= st.term || !S->g_term[i]) continue;
      raft_entry_t e;
      if (raft_entry_at(nd->r, i, &e) != 0 || e.term != S->g_term[i] ||
          hash_bytes(e.data, e.len, 0) != S->g_hash[i])
        fail("leader completeness: leader %llu of term %llu lacks committed entry %llu",
             (unsigned long long)nd->id, (unsigned long long)st.term, (unsigned long long)i);
    }
  }
}

/* Log matching between two members, and committed entries equal to what was applied. */
static void check_logs(void) {
  for (uint64_t a = 1; a <= MAXN; a++) {
    node_t *na = &S->nodes[a];
    if (!na->r) continue;
    raft_status_t sa;
    raft_status(na->r, &sa);
    if (sa.commit > sa.last_index) fail("member %llu commit beyond its log", (unsigned long long)a);
    uint64_t from = sa.commit > 512 && sa.commit - 512 > sa.first_index ? sa.commit - 512 : sa.first_index;
    for (uint64_t i = from; i <= sa.commit; i++) {
      raft_entry_t e;
      if (i >= S->g_cap || !S->g_term[i]) continue;
      if (raft_entry_at(na->r, i, &e) != 0 || e.term != S->g_term[i] ||
          hash_bytes(e.data, e.len, 0) != S->g_hash[i])
        fail("committed entry %llu changed on member %llu", (unsigned long long)i, (unsigned long long)a);
    }
    for (uint64_t b = a + 1; b <= MAXN; b++) {
      node_t *nb = &S->nodes[b];
      if (!nb->r) continue;
      raft_status_t sb;
      raft_status(nb->r, &sb);
      uint64_t lo = sa.first_index > sb.first_index ? sa.first_index : sb.first_index;
      uint64_t hi = sa.last_index < sb.last_index ? sa.last_index : sb.last_index;
      uint64_t i = hi;
      raft_entry_t ea, eb;
      for (; i >= lo && i > 0; i--) {
        raft_entry_at(na->r, i, &ea);
        raft_entry_at(nb->r, i, &eb);
        if (ea.term == eb.term) break;
      }
      for (int budget = 256; i >= lo && i > 0 && budget > 0; i--, budget--) {
        raft_entry_at(na->r, i, &ea);
        raft_entry_at(nb->r, i, &eb);
        if (ea.term != eb.term || ea.len != eb.len || ea.type != eb.type ||
            (ea.len && memcmp(ea.data, eb.data, ea.len) != 0))
          fail("log matching: members %llu and %llu differ at %llu below a matching entry",
               (unsigned long long)a, (unsigned long long)b, (unsigned long long)i);
      }
    }
  }
}

/* ==== Ready processing ==== */

static void net_send(const raft_msg_t *m);

static void apply_entry(node_t *nd, const raft_entry_t *e) {
  if (e->index <= nd->applied) { /* reflected by an installed snapshot that was ahead of its index */
    uint64_t h = hash_bytes(e->data, e->len, 0);
    g_reserve(e->index);
    if (S->g_term[e->index] != e->term || S->g_hash[e->index] != h)
      fail("member %llu skips entry %llu its state reflects, but it differs from the history",
           (unsigned long long)nd->id, (unsigned long long)e->index);
    return;
  }
  if (e->index != nd->applied + 1)
    fail("member %llu applies %llu after %llu", (unsigned long long)nd->id, (unsigned long long)e->index,
         (unsigned long long)nd->applied);
  uint64_t h = hash_bytes(e->data, e->len, 0);
  nd->chain = hash_bytes((const uint8_t *)&h, 8, nd->chain ^ (uint64_t)e->type);
  nd->applied = e->index;
  g_reserve(e->index);
  if (S->g_term[e->index]) {
    if (S->g_term[e->index] != e->term || S->g_hash[e->index] != h || S->g_chain[e->index] != nd->chain)
      fail("state machine safety: member %llu applied a different entry at %llu (term %llu vs %llu)",
           (unsigned long long)nd->id, (unsigned long long)e->index, (unsigned long long)e->term,
           (unsigned long long)S->g_term[e->index]);
  } else {
    S->g_term[e->index] = e->term;
    S->g_hash[e->index] = h;
    S->g_chain[e->index] = nd->chain;
    S->stat_commits++;
  }
}

/* Stops members whose removal was applied (a real server shuts them down). */
static void conf_applied(node_t *nd, const raft_entry_t *e) {
  arena_t a;
  arena_init(&a);
  raft_conf_change_t cc;
  if (raft_conf_change_decode(e->data, e->len, &a, &cc) != 0)
    fail("undecodable conf change at %llu", (unsigned long long)e->index);
  arena_destroy(&a);
  (void)nd;
  if (cc.type == RAFT_CC_REMOVE_NODE && cc.node_id <= MAXN) {
    node_t *victim = &S->nodes[cc.node_id];
    if (!victim->removed) {
      victim->removed = true;
      VLOG("removed %llu", (unsigned long long)cc.node_id);
    }
  }
}

static void finish_ready(node_t *nd) {
  if (!nd->holding || !nd->persisted) return;
  raft_advance(nd->r, &nd->rd);
  nd->holding = false;
}

/* The largest commit index any running member holds in memory (a read state handed out
 * by raft_take_urgent may name one no Ready has persisted yet). */
static uint64_t max_live_commit(void) {
  uint64_t c = 0;
  for (int i = 1; i <= MAXN; i++) {
    if (!S->nodes[i].r) continue;
    raft_status_t st;
    raft_status(S->nodes[i].r, &st);
    if (st.commit > c) c = st.commit;
  }
  return c;
}

/* Checks a read state handed out in a Ready or by raft_take_urgent. */
static void check_read_state(const raft_read_state_t *rs) {
  if (rs->ctx_len != 8) fail("read state with a %zu-byte context", rs->ctx_len);
  uint64_t id = get_u64(rs->ctx);
  if (id >= S->n_reads) fail("unknown read context");
  if (rs->index < S->reads[id].min_index)
    fail("linearizability: read %llu got index %llu but %llu was committed when it was issued",
         (unsigned long long)id, (unsigned long long)rs->index, (unsigned long long)S->reads[id].min_index);
  if (rs->index > S->g_max_commit && rs->index > max_live_commit())
    fail("read index %llu beyond any commit index", (unsigned long long)rs->index);
  S->reads[id].done = true;
  S->stat_reads++;
}

/* raft_take_urgent callbacks. */
static void urgent_msg(void *ctx, const raft_msg_t *m) {
  (void)ctx;
  net_send(m);
}
static void urgent_read(void *ctx, const raft_read_state_t *rs) {
  (void)ctx;
  check_read_state(rs);
}

/* The WAL sync of the held Ready returned: persist it, send the rest of its messages, apply. */
static void persist_ready(node_t *nd) {
  raft_ready_t *rd = &nd->rd;
  disk_t *d = &nd->disk;
  nd->persisted = true;
  if (rd->snapshot) {
    /* The state travels as the sender's state machine when it sent the snapshot, as the
     * server ships its whole backend (ahead of the snapshot's index); a state behind the
     * receiver's is not installed (the server keeps its backend then). */
    uint64_t x = get_u64(rd->snapshot->data), c = get_u64(rd->snapshot->data + 8);
    uint64_t i = rd->snapshot->index;
    g_reserve(x);
    if (x < i || !S->g_chain[x] || S->g_chain[x] != c)
      fail("snapshot at %llu (state at %llu) received by %llu does not match the applied history",
           (unsigned long long)i, (unsigned long long)x, (unsigned long long)nd->id);
    S->stat_snaps_ahead += x > i;
    S->stat_snaps_kept += x < nd->applied;
    if (x < nd->applied) {
      uint8_t own[16]; /* what the server persists: its backend, ahead of the image */
      snap_state(own, nd->applied, nd->chain);
      raft_snapshot_t keep = *rd->snapshot;
      keep.data = own;
      disk_set_snapshot(d, &keep);
    } else {
      disk_set_snapshot(d, rd->snapshot);
      nd->applied = x;
      nd->chain = c;
    }
    S->stat_snaps++;
  }
  for (size_t k = 0; k < rd->n_entries; k++) disk_append(d, &rd->entries[k]);
  if (rd->hs_changed) {
    if (rd->hs.term < d->hs.term) fail("hard state term went back");
    if (rd->hs.term == d->hs.term && d->hs.vote && rd->hs.vote != d->hs.vote)
      fail("member %llu changed its vote within term %llu", (unsigned long long)nd->id,
           (unsigned long long)rd->hs.term);
    d->hs = rd->hs;
    /* g_cterm[i]: smallest term in which anyone reported commit >= i (an upper bound of
     * the term that committed i); it is non-decreasing in i. */
    g_reserve(rd->hs.commit);
    for (uint64_t i = S->g_max_commit + 1; i <= rd->hs.commit; i++) S->g_cterm[i] = rd->hs.term;
    uint64_t top = rd->hs.commit < S->g_max_commit ? rd->hs.commit : S->g_max_commit;
    for (uint64_t i = top; i >= 1 && S->g_cterm[i] > rd->hs.term; i--) S->g_cterm[i] = rd->hs.term;
    if (rd->hs.commit > S->g_max_commit) S->g_max_commit = rd->hs.commit;
  }
  if (d->hs.commit > disk_last(d) && d->hs.commit > d->snap_index)
    fail("persisted commit %llu beyond persisted log %llu", (unsigned long long)d->hs.commit,
         (unsigned long long)disk_last(d));
  for (size_t k = 0; k < rd->n_msgs; k++)
    if (!raft_ready_send_early(nd->r, rd, &rd->msgs[k])) net_send(&rd->msgs[k]);
  for (size_t k = 0; k < rd->n_committed; k++) {
    apply_entry(nd, &rd->committed[k]);
    if (rd->committed[k].type == RAFT_ENTRY_CONF_CHANGE) conf_applied(nd, &rd->committed[k]);
  }
  for (size_t k = 0; k < rd->n_read_states; k++) check_read_state(&rd->read_states[k]);
}

static void process(node_t *nd) {
  if (!nd->r) return;
  if (nd->holding && !nd->persisted && chance(400)) persist_ready(nd);
  if (nd->holding && chance(700)) finish_ready(nd);
  for (int rounds = 0; rounds < 4 && !nd->holding && raft_has_ready(nd->r); rounds++) {
    raft_ready_t *rd = &nd->rd;
    if (raft_ready(nd->r, rd) != 0) fail("raft_ready refused");
    nd->holding = true;
    nd->persisted = false;
    /* 1. what may go before the disk write */
    for (size_t k = 0; k < rd->n_msgs; k++)
      if (raft_ready_send_early(nd->r, rd, &rd->msgs[k])) net_send(&rd->msgs[k]);
    /* 2. persist, send the rest, apply: now, or later with more input in between */
    if (chance(300)) persist_ready(nd);
    /* 3. advance now, or later */
    if (chance(700)) finish_ready(nd);
  }
  if (nd->holding) raft_take_urgent(nd->r, urgent_msg, urgent_read, NULL);
  check_leader(nd);
}

/* ==== network ==== */

static void enqueue(const raft_msg_t *m, int delay) {
  raft_msg_t mm;
  raft_snapshot_t sn;
  uint8_t data[16];
  if (m->type == RAFT_MSG_SNAP && m->snapshot) { /* the server ships its current backend */
    const node_t *from = &S->nodes[m->from];
    snap_state(data, from->applied, from->chain);
    sn = *m->snapshot;
    sn.data = data;
    mm = *m;
    mm.snapshot = &sn;
    m = &mm;
  }
  if (S->nq == S->capq) {
    S->capq = S->capq ? S->capq * 2 : 256;
    S->q = realloc(S->q, S->capq * sizeof(*S->q));
  }
  buf_t b = {0};
  raft_msg_encode(m, &b);
  S->q[S->nq++] = (nmsg_t){.at = S->now + delay,
                           .from = m->from,
                           .to = m->to,
                           .snap = m->type == RAFT_MSG_SNAP,
                           .buf = b.data,
                           .len = b.len};
}

/* The transport tells the sender's raft how a snapshot transfer went, as the server will. */
static void report_snap(uint64_t from, uint64_t to, bool ok) {
  node_t *nd = &S->nodes[from];
  if (nd->r) raft_report_snapshot(nd->r, to, ok);
}

static void net_send(const raft_msg_t *m) {
  if (m->to < 1 || m->to > MAXN) fail("message to unknown member %llu", (unsigned long long)m->to);
  if (chance(S->loss)) {
    if (m->type == RAFT_MSG_SNAP) report_snap(m->from, m->to, false);
    return;
  }
  enqueue(m, (int)rnd(S->max_delay + 1));
  if (chance(S->dup)) enqueue(m, (int)rnd(S->max_delay + 3));
}

static void deliver_due(void) {
  size_t w = 0, n = S->nq;
  nmsg_t *due = malloc((n + 1) * sizeof(*due));
  size_t nd = 0;
  for (size_t i = 0; i < n; i++) {
    if (S->q[i].at <= S->now)
      due[nd++] = S->q[i];
    else
      S->q[w++] = S->q[i];
  }
  S->nq = w;
  for (size_t i = 0; i < nd; i++) {
    nmsg_t *m = &due[i];
    node_t *to = &S->nodes[m->to];
    if (to->r && !S->cut[m->from][m->to]) {
      arena_t a;
      arena_init(&a);
      raft_msg_t msg;
      if (raft_msg_decode(m->buf, m->len, &a, &msg) != 0) fail("undecodable message");
      int rc = raft_step(to->r, &msg);
      if (rc != 0 && rc != CETCD_ENOLEADER && rc != CETCD_EPROPDROPPED && rc != CETCD_ECONFPENDING &&
          rc != CETCD_ENOTLEADER)
        fail("raft_step returned %d for type %d", rc, msg.type);
      S->stat_msgs++;
      arena_destroy(&a);
      check_leader(to);
      if (m->snap) report_snap(m->from, m->to, true);
      if (chance(500)) process(to);
    } else if (m->snap) {
      report_snap(m->from, m->to, false);
    }
    free(m->buf);
  }
  free(due);
}

/* ==== workload ==== */

static node_t *random_up(void) {
  for (int tries = 0; tries < 20; tries++) {
    node_t *nd = &S->nodes[1 + rnd(MAXN)];
    if (nd->r) return nd;
  }
  return NULL;
}

static node_t *current_leader(void) {
  node_t *best = NULL;
  uint64_t best_term = 0;
  for (int i = 1; i <= MAXN; i++) {
    node_t *nd = &S->nodes[i];
    if (!nd->r) continue;
    raft_status_t st;
    raft_status(nd->r, &st);
    if (st.role == RAFT_LEADER && st.term >= best_term) {
      best = nd;
      best_term = st.term;
    }
  }
  return best;
}

static void propose(node_t *nd, uint64_t value) {
  uint8_t data[40];
  memcpy(data, &value, 8);
  size_t extra = (size_t)rnd(32);
  for (size_t i = 0; i < extra; i++) data[8 + i] = (uint8_t)value;
  raft_propose(nd->r, data, 8 + extra);
}

static uint64_t max_known_commit(void) {
  uint64_t m = S->g_max_commit;
  for (int i = 1; i <= MAXN; i++) {
    node_t *nd = &S->nodes[i];
    if (!nd->r) continue;
    raft_status_t st;
    raft_status(nd->r, &st);
    if (st.commit > m) m = st.commit;
  }
  return m;
}

static void issue_read(node_t *nd) {
  if (S->n_reads == S->cap_reads) {
    S->cap_reads = S->cap_reads ? S->cap_reads * 2 : 256;
    S->reads = realloc(S->reads, S->cap_reads * sizeof(*S->reads));
  }
  uint64_t id = S->n_reads++;
  S->reads[id] = (read_req_t){.min_index = max_known_commit()};
  raft_read_index(nd->r, (const uint8_t *)&id, 8);
}

static void compact(node_t *nd) {
  raft_status_t st;
  raft_status(nd->r, &st);
  if (nd->holding || st.applied < st.first_index + 8) return;
  uint64_t idx = st.applied - rnd(4);
  g_reserve(idx);
  uint64_t chain = S->g_chain[idx];
  if (!chain) return;
  uint8_t data[16];
  snap_state(data, idx, chain);
  if (raft_compact(nd->r, idx, data, 16) != 0) return; /* e.g. a snapshot is pending */
  /* Persist the snapshot the way the server would: metadata from raft, data = our state. */
  disk_set_snapshot(&nd->disk, raft_last_snapshot(nd->r));
  VLOG("compact %llu at %llu", (unsigned long long)nd->id, (unsigned long long)idx);
}

/* Membership changes among ids 1..MAXN: add learner, promote, add voter, remove. */
static void change_conf(void) {
  node_t *l = current_leader();
  if (!l) return;
  raft_status_t st;
  raft_status(l->r, &st);
  uint64_t target = 1 + rnd(MAXN);
  node_t *t = &S->nodes[target];
  if (t->removed) return; /* ids are never reused */
  raft_conf_change_t cc = {.node_id = target};
  uint64_t match;
  bool member = raft_progress_match(l->r, target, &match) == 0;
  if (!member) {
    cc.type = chance(500) ? RAFT_CC_ADD_LEARNER : RAFT_CC_ADD_VOTER;
  } else {
    if (target == l->id || st.n_voters <= 3) {
      cc.type = RAFT_CC_PROMOTE;
    } else {
      cc.type = chance(300) ? RAFT_CC_REMOVE_NODE : RAFT_CC_PROMOTE;
    }
  }
  if (cc.type == RAFT_CC_ADD_VOTER && st.n_voters >= 5) return;
  int rc = raft_propose_conf_change(l->r, &cc);
  if (rc != 0) return;
  S->stat_confs++;
  VLOG("conf change type %d node %llu proposed at %llu", cc.type, (unsigned long long)target,
       (unsigned long long)l->id);
  if (!member && !t->exists) {
    /* The new member starts empty, configured with the membership it joins. */
    uint64_t ids[MAXN];
    size_t n = 0;
    for (uint64_t i = 1; i <= MAXN; i++) {
      uint64_t mm;
      if (raft_progress_match(l->r, i, &mm) == 0) ids[n++] = i;
    }
    ids[n++] = target;
    t->exists = true;
    t->rng = S->seed * 131 + target;
    uint64_t voters[MAXN];
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) voters[nv++] = ids[i];
    node_start(t, voters, nv, NULL, 0);
  }
}

static void random_partition(void) {
  memset(S->cut, 0, sizeof(S->cut));
  switch (rnd(3)) {
    case 0: { /* isolate one member */
      uint64_t v = 1 + rnd(MAXN);
      for (uint64_t j = 0; j <= MAXN; j++) S->cut[v][j] = S->cut[j][v] = true;
      break;
    }
    case 1: { /* two groups */
      bool side[MAXN + 1];
      for (int i = 1; i <= MAXN; i++) side[i] = chance(500);
      for (int i = 1; i <= MAXN; i++)
        for (int j = 1; j <= MAXN; j++) S->cut[i][j] = side[i] != side[j];
      break;
    }
    default: /* a few one-way links */
      for (int k = 0; k < 3; k++) S->cut[1 + rnd(MAXN)][1 + rnd(MAXN)] = true;
  }
}

/* ==== one run ==== */

static void sim_init(uint64_t seed) {
  memset(S, 0, sizeof(*S));
  S->seed = seed;
  S->rng = seed * 0x9e3779b97f4a7c15ull + 1;
  S->n_initial = chance(500) ? 3 : 5;
  S->pre_vote = chance(600);
  S->check_quorum = chance(600);
  S->conf_changes = chance(300);
  S->election = 8 + (int)rnd(8);
  S->heartbeat = 1 + (int)rnd(3);
  S->max_inflight = 1 + rnd(16);
  S->max_msg = chance(300) ? 1 : chance(500) ? 64 : 1 << 20; /* 1: one entry per append */
  S->loss = (unsigned)rnd(150);
  S->dup = (unsigned)rnd(80);
  S->max_delay = (unsigned)rnd(S->election / 2);
  if (chance(300)) { /* stormy: leaders come and go fast, which is where commit rules matter */
    S->crash_rate = 40 + (unsigned)rnd(60);
    S->part_rate = 30 + (unsigned)rnd(50);
    S->heal_rate = 30;
    S->prop_rate = 150;
    S->max_down = 3 * S->election;
  } else {
    S->crash_rate = 8;
    S->part_rate = 15;
    S->heal_rate = 20;
    S->prop_rate = 350;
    S->max_down = 60;
  }
  uint64_t voters[MAXN];
  size_t nv;
  initial_conf(voters, &nv);
  for (uint64_t i = 1; i <= MAXN; i++) {
    node_t *nd = &S->nodes[i];
    nd->id = i;
    nd->rng = seed * 131 + i;
    if (i <= S->n_initial) {
      nd->exists = true;
      node_start(nd, voters, nv, NULL, 0);
    }
  }
}

static void sim_destroy(void) {
  for (int i = 1; i <= MAXN; i++) {
    node_t *nd = &S->nodes[i];
    if (nd->r) raft_free(nd->r);
    disk_free(&nd->disk);
  }
  for (size_t i = 0; i < S->nq; i++) free(S->q[i].buf);
  free(S->q);
  free(S->g_term);
  free(S->g_hash);
  free(S->g_chain);
  free(S->g_cterm);
  free(S->leader_of);
  free(S->reads);
}

static void tick_all(void) {
  for (int i = 1; i <= MAXN; i++) {
    node_t *nd = &S->nodes[i];
    if (!nd->r) continue;
    raft_tick(nd->r);
    check_leader(nd);
  }
  deliver_due();
  for (int i = 1; i <= MAXN; i++) process(&S->nodes[i]);
}

static void chaos_step(void) {
  if (chance(S->part_rate)) random_partition();
  if (chance(S->heal_rate)) memset(S->cut, 0, sizeof(S->cut));
  if (chance(S->crash_rate)) {
    node_t *nd = random_up();
    if (nd) {
      crash(nd);
      nd->down_until = S->now + 1 + (int)rnd((uint64_t)S->max_down);
    }
  }
  for (int i = 1; i <= MAXN; i++) {
    node_t *nd = &S->nodes[i];
    if (nd->exists && !nd->r && !nd->removed && S->now >= nd->down_until) restart(nd);
    if (nd->removed && nd->r) crash(nd); /* a removed member is shut down */
  }
  if (chance(S->prop_rate)) {
    node_t *nd = chance(700) ? current_leader() : random_up();
    if (nd) propose(nd, ++S->prop_seq);
  }
  if (chance(80)) {
    node_t *nd = random_up();
    if (nd) issue_read(nd);
  }
  if (chance(10)) {
    node_t *nd = random_up();
    if (nd) compact(nd);
  }
  if (chance(3)) {
    node_t *l = current_leader();
    if (l) raft_transfer_leader(l->r, 1 + rnd(MAXN));
  }
  if (S->conf_changes && chance(6)) change_conf();
  if (chance(5)) {
    node_t *nd = random_up();
    if (nd) raft_campaign(nd->r);
  }
}

/* After the chaos: heal everything and require progress within a bounded time. */
static void liveness(void) {
  memset(S->cut, 0, sizeof(S->cut));
  S->loss = S->dup = 0;
  S->max_delay = 1;
  for (int i = 1; i <= MAXN; i++) {
    node_t *nd = &S->nodes[i];
    if (nd->exists && !nd->removed && !nd->r) restart(nd);
  }
  int limit = 40 * S->election + 200, start = S->now;
  S->marker = 0xfeedull << 40 | S->seed;
  int proposed_at = -1000;
  for (; S->now - start < limit; S->now++) {
    tick_all();
    node_t *l = current_leader();
    if (!l) continue;
    raft_status_t ls;
    raft_status(l->r, &ls);
    /* done when every live member applied the marker (found in the global record) */
    uint64_t marker_idx = 0;
    for (uint64_t i = ls.first_index; i <= ls.commit && !marker_idx; i++) {
      raft_entry_t e;
      if (raft_entry_at(l->r, i, &e) == 0 && e.len >= 8 && get_u64(e.data) == S->marker) marker_idx = i;
    }
    if (marker_idx) {
      bool all = true;
      for (int i = 1; i <= MAXN; i++) {
        node_t *nd = &S->nodes[i];
        if (nd->r && !nd->removed) {
          /* only members of the current configuration must catch up */
          uint64_t mm;
          if (raft_progress_match(l->r, nd->id, &mm) == 0 && nd->applied < marker_idx) all = false;
        }
      }
      if (all) return;
    }
    if (S->now - proposed_at > 4 * S->election) {
      propose(l, S->marker);
      proposed_at = S->now;
    }
  }
  for (int i = 1; i <= MAXN; i++) {
    node_t *nd = &S->nodes[i];
    if (!nd->r) continue;
    raft_status_t st;
    raft_status(nd->r, &st);
    fprintf(
        stderr,
        "  member %d: role %d term %llu lead %llu commit %llu applied %llu first %llu last %llu voters %zu "
        "learners %zu voter %d\n",
        i, st.role, (unsigned long long)st.term, (unsigned long long)st.lead, (unsigned long long)st.commit,
        (unsigned long long)st.applied, (unsigned long long)st.first_index, (unsigned long long)st.last_index,
        st.n_voters, st.n_learners, st.voter);
    if (st.role == RAFT_LEADER)
      for (size_t k = 0; k < nd->r->n_prs; k++) {
        raft_progress_t *pr = &nd->r->prs[k];
        fprintf(stderr,
                "    progress %llu: match %llu next %llu state %d paused %d active %d learner %d "
                "pending_snap %llu inflight %zu transferee %llu pending_conf %llu\n",
                (unsigned long long)pr->id, (unsigned long long)pr->match, (unsigned long long)pr->next,
                pr->state, raft_pr_is_paused(pr), pr->recent_active, pr->learner,
                (unsigned long long)pr->pending_snapshot, pr->ins.count,
                (unsigned long long)nd->r->lead_transferee, (unsigned long long)nd->r->pending_conf_index);
      }
  }
  fail("liveness: no leader committed a proposal on every member within %d ticks after healing", limit);
}

static void run(uint64_t seed, int ticks) {
  sim_init(seed);
  VLOG(
      "seed %llu: n=%zu pre_vote=%d check_quorum=%d conf=%d election=%d hb=%d inflight=%zu loss=%u dup=%u "
      "delay=%u",
      (unsigned long long)seed, S->n_initial, S->pre_vote, S->check_quorum, S->conf_changes, S->election,
      S->heartbeat, S->max_inflight, S->loss, S->dup, S->max_delay);
  for (S->now = 0; S->now < ticks; S->now++) {
    chaos_step();
    tick_all();
    if (S->now % 50 == 0) check_logs();
  }
  liveness();
  check_logs();
  /* Every live member of the final configuration applied the same history. */
  for (int i = 1; i <= MAXN; i++) {
    node_t *nd = &S->nodes[i];
    if (!nd->r || nd->applied == 0) continue;
    if (S->g_chain[nd->applied] != nd->chain)
      fail("member %d state differs from the applied history at %llu", i, (unsigned long long)nd->applied);
  }
}

int main(void) {
  static sim_t sim;
  S = &sim;
  const char *e;
  int runs = (e = getenv("RAFT_SIM_RUNS")) ? atoi(e) : 200;
  int ticks = (e = getenv("RAFT_SIM_TICKS")) ? atoi(e) : 2000;
  verbose = getenv("RAFT_SIM_VERBOSE") != NULL;
  uint64_t first = 1;
  if ((e = getenv("RAFT_SIM_FIRST"))) first = strtoull(e, NULL, 10);
  if ((e = getenv("RAFT_SIM_SEED"))) {
    first = strtoull(e, NULL, 10);
    runs = 1;
  }
  size_t commits = 0, reads = 0, snaps = 0, crashes = 0, confs = 0, leaders = 0, msgs = 0, ahead = 0,
         kept = 0;
  clock_t t0 = clock();
  for (int i = 0; i < runs; i++) {
    run(first + (uint64_t)i, ticks);
    commits += S->stat_commits;
    reads += S->stat_reads;
    snaps += S->stat_snaps;
    ahead += S->stat_snaps_ahead;
    kept += S->stat_snaps_kept;
    crashes += S->stat_crashes;
    confs += S->stat_confs;
    leaders += S->stat_leaders;
    msgs += S->stat_msgs;
    sim_destroy();
  }
  printf(
      "raft sim: %d runs x %d ticks (seeds %llu..%llu) in %.2fs: %zu committed entries, %zu reads, %zu "
      "leaders, "
      "%zu crashes, %zu snapshots installed (%zu with a state ahead of their index, %zu behind the "
      "receiver's state), %zu conf changes, %zu messages delivered\n",
      runs, ticks, (unsigned long long)first, (unsigned long long)(first + (uint64_t)runs - 1),
      (double)(clock() - t0) / CLOCKS_PER_SEC, commits, reads, leaders, crashes, snaps, ahead, kept, confs,
      msgs);
  return 0;
}
