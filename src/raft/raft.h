/* Raft consensus core as a pure state machine: no I/O, no clocks, no threads (DESIGN §3, §6.4).
 *
 * The server drives one raft_t per member with four kinds of input (raft_tick, raft_step for
 * messages from peers, raft_propose/raft_read_index/... for local requests) and drains its
 * output through the Ready loop:
 *
 *   while (raft_has_ready(r)) {
 *     raft_ready_t rd;
 *     raft_ready(r, &rd);
 *     send the rd.msgs raft_ready_send_early allows (a leader's appends, heartbeats...);
 *     persist rd.snapshot, rd.entries and rd.hs (fdatasync if rd.must_sync);
 *     send the other rd.msgs (only now: votes and append acks must be durable first);
 *     apply rd.snapshot, then rd.committed in order; answer rd.read_states once applied;
 *     raft_advance(r, &rd);
 *   }
 *
 * Transport duties: report failed sends with raft_report_unreachable, and the outcome of every
 * RAFT_MSG_SNAP with raft_report_snapshot (the follower stays paused until then). The snapshot
 * is shipped whole (metadata + opaque data); chunking it is the transport's business.
 *
 * Between raft_ready and raft_advance the server may keep feeding inputs (for example while
 * the WAL writer thread syncs) and send what raft_take_urgent hands out; everything rd points
 * at stays valid until raft_advance.
 *
 * The log lives inside raft_t from the last compaction point on (the server's state machine is
 * the snapshot); raft_compact drops a prefix. On restart the server hands back what it
 * persisted (raft_restore_t). Membership changes one node at a time; a committed conf change
 * is applied by raft itself in raft_advance, and the server sees the entry in rd.committed. */
#ifndef CETCD_RAFT_H
#define CETCD_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"

/* The id that means "nobody" (no vote, no leader). */
#define RAFT_NONE 0

typedef struct raft raft_t;

/* ---- entries, states, membership ---- */

typedef enum raft_entry_type { RAFT_ENTRY_NORMAL = 0, RAFT_ENTRY_CONF_CHANGE = 1 } raft_entry_type_t;

/* One log entry. data is borrowed (see the function that hands it out). */
typedef struct raft_entry {
  uint64_t term;
  uint64_t index;
  raft_entry_type_t type;
  const uint8_t *data;
  size_t len;
} raft_entry_t;

typedef enum raft_role { RAFT_FOLLOWER = 0, RAFT_PRE_CANDIDATE, RAFT_CANDIDATE, RAFT_LEADER } raft_role_t;

/* What must be persisted before messages of the same Ready are sent. */
typedef struct raft_hard_state {
  uint64_t term;
  uint64_t vote;
  uint64_t commit;
} raft_hard_state_t;

/* Volatile state the server reports (leader id for forwarding/metrics, own role). */
typedef struct raft_soft_state {
  uint64_t lead;
  raft_role_t role;
} raft_soft_state_t;

/* Snapshot metadata plus opaque data; the conf state is the membership at index. */
typedef struct raft_snapshot {
  uint64_t index;
  uint64_t term;
  const uint64_t *voters;
  size_t n_voters;
  const uint64_t *learners;
  size_t n_learners;
  const uint8_t *data;
  size_t len;
} raft_snapshot_t;

typedef enum raft_cc_type {
  RAFT_CC_ADD_VOTER = 0,   /* add a voter, or promote a learner */
  RAFT_CC_REMOVE_NODE = 1, /* remove a voter or a learner */
  RAFT_CC_ADD_LEARNER = 2, /* add a non-voting learner (or demote a voter) */
  RAFT_CC_PROMOTE = 3      /* promote an existing learner to voter; no-op otherwise */
} raft_cc_type_t;

/* A single-node membership change; context is opaque to raft (e.g. the member's peer URLs). */
typedef struct raft_conf_change {
  raft_cc_type_t type;
  uint64_t node_id;
  const uint8_t *context;
  size_t context_len;
} raft_conf_change_t;

/* ---- messages ---- */

typedef enum raft_msg_type {
  RAFT_MSG_PROP = 1,             /* proposal forwarded to the leader */
  RAFT_MSG_APP = 2,              /* append entries (also probes) */
  RAFT_MSG_APP_RESP = 3,         /* append ack or reject with hint */
  RAFT_MSG_VOTE = 4,             /* request vote */
  RAFT_MSG_VOTE_RESP = 5,        /* vote response */
  RAFT_MSG_PRE_VOTE = 6,         /* pre-vote request (for term + 1, no term change) */
  RAFT_MSG_PRE_VOTE_RESP = 7,    /* pre-vote response */
  RAFT_MSG_SNAP = 8,             /* install snapshot */
  RAFT_MSG_HEARTBEAT = 9,        /* leader heartbeat, may carry a read-index context */
  RAFT_MSG_HEARTBEAT_RESP = 10,  /* heartbeat ack echoing the context */
  RAFT_MSG_TRANSFER_LEADER = 11, /* ask the leader to hand leadership to from */
  RAFT_MSG_TIMEOUT_NOW = 12,     /* leader tells the transferee to campaign now */
  RAFT_MSG_READ_INDEX = 13,      /* read index request forwarded to the leader */
  RAFT_MSG_READ_INDEX_RESP = 14  /* read index answer to the requester */
} raft_msg_type_t;

/* A message between members. Pointers are borrowed: from raft_ready they stay valid until
 * raft_advance; raft_step copies whatever it keeps. */
typedef struct raft_msg {
  raft_msg_type_t type;
  uint64_t from;
  uint64_t to;
  uint64_t term;
  uint64_t log_term;
  uint64_t index;
  uint64_t commit;
  bool reject;
  uint64_t reject_hint;
  const raft_entry_t *entries;
  size_t n_entries;
  const uint8_t *context;
  size_t context_len;
  const raft_snapshot_t *snapshot; /* RAFT_MSG_SNAP only */
} raft_msg_t;

/* A confirmed linearizable read: serve it once the applied index reaches index. */
typedef struct raft_read_state {
  uint64_t index;
  const uint8_t *ctx;
  size_t ctx_len;
} raft_read_state_t;

/* One batch of output. All arrays and pointers are owned by raft and valid until raft_advance. */
typedef struct raft_ready {
  bool soft_changed;
  raft_soft_state_t soft;
  bool hs_changed;
  raft_hard_state_t hs;
  const raft_snapshot_t *snapshot; /* received snapshot to persist and apply, or NULL */
  const raft_entry_t *entries;     /* to append to the WAL; entries[0].index may be <= the last
                                    * persisted index, which then truncates the WAL tail */
  size_t n_entries;
  const raft_entry_t *committed; /* to apply, in order, after persisting */
  size_t n_committed;
  const raft_msg_t *msgs; /* to send after persisting */
  size_t n_msgs;
  const raft_read_state_t *read_states;
  size_t n_read_states;
  bool must_sync; /* term/vote changed or entries present: fdatasync before sending */
} raft_ready_t;

/* ---- configuration ---- */

/* What the server persisted, handed back on restart. Borrowed; raft copies it. */
typedef struct raft_restore {
  raft_hard_state_t hs;
  const raft_snapshot_t *snapshot; /* latest snapshot (its conf state replaces the config's
                                    * voters/learners), or NULL */
  const raft_entry_t *entries;     /* persisted entries after the snapshot, contiguous */
  size_t n_entries;
  uint64_t applied; /* index the state machine already reflects; 0 = snapshot index */
} raft_restore_t;

typedef struct raft_config {
  uint64_t id;            /* this member, non-zero */
  const uint64_t *voters; /* initial voters (borrowed); a joining member lists the current
                           * membership, including itself */
  size_t n_voters;
  const uint64_t *learners; /* initial learners (borrowed) */
  size_t n_learners;
  int election_tick;                /* election timeout in ticks (randomized in [n, 2n)); default 10 */
  int heartbeat_tick;               /* leader heartbeat interval in ticks; default 1 */
  bool pre_vote;                    /* run a pre-vote round before bumping the term */
  bool check_quorum;                /* leader steps down without a quorum of recent contact; also
                                     * enables leader stickiness (votes ignored within the lease) */
  bool disable_proposal_forwarding; /* followers return CETCD_ENOTLEADER instead */
  size_t max_inflight;              /* max in-flight append messages per follower; default 256 */
  size_t max_size_per_msg;          /* max entry bytes per append message (>= 1 entry); default 1 MiB */
  uint64_t (*rand)(void *ctx);      /* random source for election timeouts (required) */
  void *rand_ctx;
  const raft_restore_t *restore; /* persisted state on restart, or NULL for a fresh member */
} raft_config_t;

/* Creates a member. cfg and everything it points to are borrowed (copied).
 * Returns an owned raft_t (free with raft_free), or NULL if cfg is invalid. */
raft_t *raft_new(const raft_config_t *cfg);
/* Frees r and everything it owns, including anything a pending Ready pointed to. */
void raft_free(raft_t *r);

/* ---- inputs ---- */

/* Advances the logical clock by one tick (elections, heartbeats, check-quorum). */
void raft_tick(raft_t *r);
/* Feeds a message from a peer. m is borrowed. Returns 0, CETCD_EINVAL for a malformed message
 * or one addressed to another member, or what the handler returns (ENOLEADER, EPROPDROPPED). */
int raft_step(raft_t *r, const raft_msg_t *m);
/* Proposes a normal entry (data copied). On a follower it is forwarded to the leader.
 * Returns 0 (appended or forwarded; commit is not guaranteed), CETCD_ENOLEADER,
 * CETCD_ENOTLEADER (forwarding disabled), or CETCD_EPROPDROPPED (leadership transfer or
 * this member was removed). */
int raft_propose(raft_t *r, const uint8_t *data, size_t len);
/* Proposes a membership change. Only one may be pending (proposed but not applied).
 * Returns like raft_propose, plus CETCD_ECONFPENDING and CETCD_EINVAL. */
int raft_propose_conf_change(raft_t *r, const raft_conf_change_t *cc);
/* Requests a linearizable read point; ctx (copied, should be unique) comes back in a
 * raft_read_state_t once a quorum confirmed leadership. Returns 0, CETCD_ENOLEADER or
 * CETCD_ENOTLEADER. A lost request is not retried: the server times out and asks again. */
int raft_read_index(raft_t *r, const uint8_t *ctx, size_t len);
/* Starts an election now (pre-vote first if configured). Returns 0, or CETCD_EINVAL if this
 * member is not a voter. No-op on a leader. */
int raft_campaign(raft_t *r);
/* Asks the leader to hand leadership to transferee (forwarded by followers). Returns 0 or
 * CETCD_ENOLEADER. Proposals are dropped while a transfer is in progress (one election
 * timeout at most). */
int raft_transfer_leader(raft_t *r, uint64_t transferee);
/* Tells the leader that the last message to id could not be delivered (back to probing). */
void raft_report_unreachable(raft_t *r, uint64_t id);
/* Tells the leader whether shipping the snapshot to id succeeded. */
void raft_report_snapshot(raft_t *r, uint64_t id, bool ok);
/* Between raft_ready and raft_advance: the committed membership change at index (in the
 * Ready's committed entries) was refused by the state machine as no longer valid; raft
 * then does not apply it either (etcd applies such a change with node id None). */
void raft_conf_skip(raft_t *r, uint64_t index);
/* Marks entries up to index (<= applied) as covered by the state machine's snapshot and
 * drops them; data (copied, may be empty) is what a MsgSnap to a far-behind follower carries.
 * Returns 0, CETCD_ERAFTCOMPACTED (index already compacted) or CETCD_EINVAL (index > applied). */
int raft_compact(raft_t *r, uint64_t index, const uint8_t *data, size_t len);

/* ---- output ---- */

/* True if raft_ready would return something and no Ready is outstanding. */
bool raft_has_ready(const raft_t *r);
/* Fills rd with the next batch; pointers stay valid until raft_advance. Returns 0, or
 * CETCD_EINVAL if the previous Ready was not advanced yet. */
int raft_ready(raft_t *r, raft_ready_t *rd);
/* Acknowledges that rd (the last Ready) was persisted, sent and applied: marks entries stable
 * (a leader counts them for itself only now, so they may commit), advances the applied index,
 * applies committed conf changes, releases rd's memory. */
void raft_advance(raft_t *r, const raft_ready_t *rd);

/* True if m, one of rd's messages, may be sent before rd is persisted (see
 * raft_take_urgent for which); false for all of them if rd changes the term or vote. */
bool raft_ready_send_early(const raft_t *r, const raft_ready_t *rd, const raft_msg_t *m);

/* Callbacks of raft_take_urgent; m and rs (and what they point to) are valid only during
 * the call. */
typedef void (*raft_urgent_cb)(void *ctx, const raft_msg_t *m);
typedef void (*raft_read_state_cb)(void *ctx, const raft_read_state_t *rs);
/* While a Ready is being persisted: hands out, now, the queued messages that need no disk
 * write first (heartbeats and their answers, read-index traffic, forwarded proposals, and a
 * leader's appends, which overlap its own write), and every read state. The rest waits for
 * the next Ready. Does nothing while this member's term or vote is not durable yet. */
void raft_take_urgent(raft_t *r, raft_urgent_cb on_msg, raft_read_state_cb on_read, void *ctx);

/* ---- inspection ---- */

typedef struct raft_status {
  uint64_t id, term, vote, lead, lead_transferee;
  raft_role_t role;
  bool voter; /* this member currently counts as a voter */
  uint64_t commit, applied, first_index, last_index;
  size_t n_voters, n_learners;
} raft_status_t;

/* Fills st with a snapshot of r's state. */
void raft_status(const raft_t *r, raft_status_t *st);
/* Returns the latest snapshot metadata (compaction point: index, term, conf state, data) for
 * the server to persist after raft_compact or to ship when rd.snapshot is not enough.
 * Borrowed until the next call into r. Never NULL (index 0 before any compaction). */
const raft_snapshot_t *raft_last_snapshot(const raft_t *r);
/* Returns the entry at index through out (data borrowed until the next call into r).
 * Returns 0, CETCD_ERAFTCOMPACTED or CETCD_ERAFTUNAVAIL. */
int raft_entry_at(const raft_t *r, uint64_t index, raft_entry_t *out);
/* On a leader, returns the match index of member id through match. Returns 0 or
 * CETCD_ENOTLEADER / CETCD_EINVAL (unknown id). */
int raft_progress_match(const raft_t *r, uint64_t id, uint64_t *match);
/* True if id is a voter (not a learner) in r's current configuration. */
bool raft_is_voter(const raft_t *r, uint64_t id);
/* True if id is a learner in r's current configuration. */
bool raft_is_learner(const raft_t *r, uint64_t id);
/* On a leader, sets *id to the voter other than itself whose log matches the leader's
 * furthest (the most caught-up transferee), preferring voters heard from within the last
 * election timeout (check-quorum's activity); RAFT_NONE if there is no other voter. Returns
 * 0 or CETCD_ENOTLEADER. */
int raft_best_transferee(const raft_t *r, uint64_t *id);

/* ---- encoding (proto/raftpb.proto, package cetcdraftpb) ---- */

/* Appends the encoded message to out. Returns 0. */
int raft_msg_encode(const raft_msg_t *m, buf_t *out);
/* Decodes a message; every pointer in out points into memory owned by a (free it with
 * arena_destroy). Returns 0 or CETCD_EINVAL. */
int raft_msg_decode(const uint8_t *buf, size_t len, arena_t *a, raft_msg_t *out);
/* The same from a message already unpacked (its memory must outlive out; extra memory from
 * a). Returns 0 or CETCD_EINVAL. */
struct Cetcdraftpb__Message;
int raft_msg_from_pb(const struct Cetcdraftpb__Message *pb, arena_t *a, raft_msg_t *out);
/* Appends the encoding of cc (the data of a RAFT_ENTRY_CONF_CHANGE entry) to out. Returns 0. */
int raft_conf_change_encode(const raft_conf_change_t *cc, buf_t *out);
/* Decodes a conf change entry's data; out->context points into a. Returns 0 or CETCD_EINVAL. */
int raft_conf_change_decode(const uint8_t *buf, size_t len, arena_t *a, raft_conf_change_t *out);

#endif
