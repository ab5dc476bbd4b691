/* A tiny synchronous network of raft members for unit tests: every Ready is persisted
 * trivially, its messages go through raft_msg_encode/decode, links can be cut and members
 * isolated. Header-only; each test file includes it once. */
#ifndef CETCD_TEST_RAFT_UTIL_H
#define CETCD_TEST_RAFT_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "cetcd/errors.h"
#include "raft/raft.h"

#define TN_MAX 8
#define TN_MAX_APPLIED 4096

typedef struct tn_applied {
  uint64_t index, term;
  raft_entry_type_t type;
  char data[64];
} tn_applied_t;

typedef struct tn_msg {
  uint64_t from, to;
  buf_t bytes;
} tn_msg_t;

typedef struct tnet {
  raft_t *r[TN_MAX + 1]; /* by id, 1..n */
  size_t n;
  bool cut[TN_MAX + 1][TN_MAX + 1]; /* cut[a][b]: messages a -> b are dropped */
  bool drop_type[16];               /* message types to drop everywhere */
  uint64_t rng[TN_MAX + 1];
  tn_applied_t applied[TN_MAX + 1][TN_MAX_APPLIED];
  size_t n_applied[TN_MAX + 1];
  raft_read_state_t reads[TN_MAX + 1][64];
  char read_ctx[TN_MAX + 1][64][32];
  size_t n_reads[TN_MAX + 1];
  size_t snapshots_applied[TN_MAX + 1];
  char snap_data[TN_MAX + 1][32];
  tn_msg_t *q;
  size_t nq, capq;
  size_t delivered[16];      /* by message type */
  uint64_t refuse_conf_node; /* committed conf changes about this node are refused (raft_conf_skip) */
} tnet_t;

static inline uint64_t tn_rand(void *ctx) {
  uint64_t *s = ctx;
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

typedef struct tn_opts {
  bool pre_vote, check_quorum;
  int election, heartbeat;
  size_t n_learners; /* the last n_learners ids start as learners */
  size_t max_inflight;
} tn_opts_t;

/* Creates member id of a cluster whose voters are 1..n_voters and learners up to n. */
static inline raft_t *tn_make(tnet_t *net, uint64_t id, size_t n, const tn_opts_t *o,
                              const raft_restore_t *rs) {
  uint64_t voters[TN_MAX], learners[TN_MAX];
  size_t nv = 0, nl = 0;
  for (size_t i = 1; i <= n; i++) {
    if (i > n - o->n_learners)
      learners[nl++] = i;
    else
      voters[nv++] = i;
  }
  net->rng[id] = id * 7919;
  raft_config_t cfg = {.id = id,
                       .voters = voters,
                       .n_voters = nv,
                       .learners = learners,
                       .n_learners = nl,
                       .election_tick = o->election ? o->election : 10,
                       .heartbeat_tick = o->heartbeat ? o->heartbeat : 1,
                       .pre_vote = o->pre_vote,
                       .check_quorum = o->check_quorum,
                       .max_inflight = o->max_inflight ? o->max_inflight : 64,
                       .rand = tn_rand,
                       .rand_ctx = &net->rng[id],
                       .restore = rs};
  return raft_new(&cfg);
}

static inline void tn_init(tnet_t *net, size_t n, const tn_opts_t *o) {
  memset(net, 0, sizeof(*net));
  net->n = n;
  for (uint64_t id = 1; id <= n; id++) net->r[id] = tn_make(net, id, n, o, NULL);
}

static inline void tn_free(tnet_t *net) {
  for (size_t i = 1; i <= net->n; i++) raft_free(net->r[i]);
  for (size_t i = 0; i < net->nq; i++) buf_free(&net->q[i].bytes);
  free(net->q);
}

/* Drains every member's Ready once; returns true if anything happened. */
static inline bool tn_drain(tnet_t *net) {
  bool any = false;
  for (uint64_t id = 1; id <= net->n; id++) {
    raft_t *r = net->r[id];
    if (!r) continue;
    while (raft_has_ready(r)) {
      any = true;
      raft_ready_t rd;
      if (raft_ready(r, &rd) != 0) abort();
      if (rd.snapshot) {
        net->snapshots_applied[id]++;
        net->n_applied[id] = 0;
        size_t len = rd.snapshot->len < 31 ? rd.snapshot->len : 31;
        memcpy(net->snap_data[id], rd.snapshot->data ? (const char *)rd.snapshot->data : "", len);
        net->snap_data[id][len] = 0;
      }
      for (size_t i = 0; i < rd.n_committed; i++) {
        const raft_entry_t *e = &rd.committed[i];
        if (net->n_applied[id] >= TN_MAX_APPLIED) abort();
        tn_applied_t *a = &net->applied[id][net->n_applied[id]++];
        a->index = e->index;
        a->term = e->term;
        a->type = e->type;
        size_t len = e->len < 63 ? e->len : 63;
        memcpy(a->data, e->data ? (const char *)e->data : "", len);
        a->data[len] = 0;
        if (e->type == RAFT_ENTRY_CONF_CHANGE && net->refuse_conf_node) {
          arena_t ca;
          arena_init(&ca);
          raft_conf_change_t cc;
          if (raft_conf_change_decode(e->data, e->len, &ca, &cc) == 0 && cc.node_id == net->refuse_conf_node)
            raft_conf_skip(r, e->index);
          arena_destroy(&ca);
        }
      }
      for (size_t i = 0; i < rd.n_read_states && net->n_reads[id] < 64; i++) {
        size_t k = net->n_reads[id]++;
        net->reads[id][k] = rd.read_states[i];
        size_t len = rd.read_states[i].ctx_len < 31 ? rd.read_states[i].ctx_len : 31;
        memcpy(net->read_ctx[id][k], rd.read_states[i].ctx, len);
        net->read_ctx[id][k][len] = 0;
        net->reads[id][k].ctx = NULL;
      }
      for (size_t i = 0; i < rd.n_msgs; i++) {
        const raft_msg_t *m = &rd.msgs[i];
        if (m->to < 1 || m->to > net->n || net->cut[m->from][m->to] || net->drop_type[m->type]) continue;
        if (net->nq == net->capq) {
          net->capq = net->capq ? net->capq * 2 : 64;
          net->q = realloc(net->q, net->capq * sizeof(*net->q));
        }
        tn_msg_t *t = &net->q[net->nq++];
        t->from = m->from;
        t->to = m->to;
        memset(&t->bytes, 0, sizeof(t->bytes));
        raft_msg_encode(m, &t->bytes);
      }
      raft_advance(r, &rd);
    }
  }
  return any;
}

/* Delivers every queued message once (new ones queue behind). Returns how many. */
static inline size_t tn_deliver(tnet_t *net) {
  size_t n = net->nq;
  tn_msg_t *batch = net->q;
  net->q = NULL;
  net->nq = net->capq = 0;
  for (size_t i = 0; i < n; i++) {
    tn_msg_t *t = &batch[i];
    if (net->r[t->to] && !net->cut[t->from][t->to]) {
      arena_t a;
      arena_init(&a);
      raft_msg_t m;
      if (raft_msg_decode(t->bytes.data, t->bytes.len, &a, &m) != 0) abort();
      net->delivered[m.type]++;
      raft_step(net->r[t->to], &m);
      arena_destroy(&a);
    }
    buf_free(&t->bytes);
  }
  free(batch);
  return n;
}

/* Runs until no member has output and no message is in flight. */
static inline void tn_settle(tnet_t *net) {
  for (int i = 0; i < 10000; i++) {
    bool any = tn_drain(net);
    if (!any && net->nq == 0) return;
    tn_deliver(net);
  }
  abort();
}

/* Ticks every member k times, settling after each tick. */
static inline void tn_tick(tnet_t *net, int k) {
  for (int i = 0; i < k; i++) {
    for (uint64_t id = 1; id <= net->n; id++)
      if (net->r[id]) raft_tick(net->r[id]);
    tn_settle(net);
  }
}

/* Cuts (or restores) every link to and from id. */
static inline void tn_isolate(tnet_t *net, uint64_t id, bool cut) {
  for (uint64_t j = 0; j <= TN_MAX; j++) net->cut[id][j] = net->cut[j][id] = cut;
}

static inline void tn_heal(tnet_t *net) { memset(net->cut, 0, sizeof(net->cut)); }

static inline raft_status_t tn_status(tnet_t *net, uint64_t id) {
  raft_status_t st;
  raft_status(net->r[id], &st);
  return st;
}

/* The member that leads with the highest term, or 0. */
static inline uint64_t tn_leader(tnet_t *net) {
  uint64_t best = 0, best_term = 0;
  for (uint64_t id = 1; id <= net->n; id++) {
    if (!net->r[id]) continue;
    raft_status_t st = tn_status(net, id);
    if (st.role == RAFT_LEADER && st.term >= best_term) {
      best = id;
      best_term = st.term;
    }
  }
  return best;
}

/* Number of members currently in the leader role. */
static inline size_t tn_count_leaders(tnet_t *net) {
  size_t n = 0;
  for (uint64_t id = 1; id <= net->n; id++)
    if (net->r[id] && tn_status(net, id).role == RAFT_LEADER) n++;
  return n;
}

/* Proposes a string at member id. */
static inline int tn_propose(tnet_t *net, uint64_t id, const char *s) {
  return raft_propose(net->r[id], (const uint8_t *)s, strlen(s));
}

/* Last applied normal entry with data at id, or "". */
static inline const char *tn_last_data(tnet_t *net, uint64_t id) {
  for (size_t i = net->n_applied[id]; i > 0; i--)
    if (net->applied[id][i - 1].data[0] && net->applied[id][i - 1].type == RAFT_ENTRY_NORMAL)
      return net->applied[id][i - 1].data;
  return "";
}

/* True if member id applied a normal entry with data s. */
static inline bool tn_has_applied(tnet_t *net, uint64_t id, const char *s) {
  for (size_t i = 0; i < net->n_applied[id]; i++)
    if (net->applied[id][i].type == RAFT_ENTRY_NORMAL && strcmp(net->applied[id][i].data, s) == 0)
      return true;
  return false;
}

/* Proposes a membership change at member id. */
static inline int tn_conf(tnet_t *net, uint64_t id, raft_cc_type_t type, uint64_t node) {
  raft_conf_change_t cc = {.type = type, .node_id = node};
  return raft_propose_conf_change(net->r[id], &cc);
}

/* Elects id by campaigning and settling. */
static inline void tn_elect(tnet_t *net, uint64_t id) {
  raft_campaign(net->r[id]);
  tn_settle(net);
}

#endif
