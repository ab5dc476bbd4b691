/* Private to src/raft/: the raft_t layout and the functions the files of the core share.
 * Each .c file has one job: raft_log (the in-memory log), raft_progress (follower tracking,
 * inflights, quorum), raft_election (roles, votes, ticks), raft_replication (appends,
 * heartbeats, snapshots, commit), raft_read_index (ReadIndex), raft_conf (membership),
 * raft_ready (outbox and the Ready loop), raft_msg (encoding), raft.c (API and dispatch). */
#ifndef CETCD_RAFT_INT_H
#define CETCD_RAFT_INT_H

#include "raft/raft.h"

/* Context of a vote request sent because of a leadership transfer (ignores leader lease). */
#define RAFT_CAMPAIGN_TRANSFER "CampaignTransfer"
#define RAFT_CAMPAIGN_TRANSFER_LEN 16

/* ==== small vectors ==== */

/* A vector of heap pointers to free later (the graveyard, see raft_ready.c). */
typedef struct raft_ptrvec {
  void **v;
  size_t n, cap;
} raft_ptrvec_t;

/* Appends p (owned) to pv. */
void raft_ptrvec_push(raft_ptrvec_t *pv, void *p);
/* Frees every pointer in pv and empties it, keeping the storage. */
void raft_ptrvec_free_all(raft_ptrvec_t *pv);

/* ==== log (raft_log.c) ==== */

/* Entries (snap_index, snap_index + len] live in ents[head .. head + len); each entry owns its
 * data. stable is the last index handed to the server for persisting and acknowledged. */
typedef struct raft_log {
  raft_entry_t *ents;
  size_t head, len, cap;
  uint64_t snap_index, snap_term;
  uint64_t committed, applied, stable;
  raft_ptrvec_t *gy; /* where dropped entry data goes until no Ready can point at it */
} raft_log_t;

/* Initializes an empty log whose first index is snap_index + 1. gy is borrowed. */
void raft_log_init(raft_log_t *l, uint64_t snap_index, uint64_t snap_term, raft_ptrvec_t *gy);
/* Frees the entries and their data right away. */
void raft_log_destroy(raft_log_t *l);
/* Index of the first entry still in memory. */
static inline uint64_t raft_log_first(const raft_log_t *l) { return l->snap_index + 1; }
/* Index of the last entry (snap_index when empty). */
static inline uint64_t raft_log_last(const raft_log_t *l) { return l->snap_index + l->len; }
/* The entry at i, which must be in (snap_index, last]. Borrowed. */
static inline raft_entry_t *raft_log_at(const raft_log_t *l, uint64_t i) {
  return &l->ents[l->head + (size_t)(i - l->snap_index - 1)];
}
/* Term of entry i through t. Returns 0, CETCD_ERAFTCOMPACTED or CETCD_ERAFTUNAVAIL. */
int raft_log_term(const raft_log_t *l, uint64_t i, uint64_t *t);
/* Term of entry i, or 0 if it is unknown. */
uint64_t raft_log_term0(const raft_log_t *l, uint64_t i);
/* Term of the last entry. */
static inline uint64_t raft_log_last_term(const raft_log_t *l) { return raft_log_term0(l, raft_log_last(l)); }
/* True if entry i exists with term t (i == snap_index counts). */
bool raft_log_match_term(const raft_log_t *l, uint64_t i, uint64_t t);
/* True if a log ending at (last_index, last_term) is at least as up to date as ours. */
bool raft_log_up_to_date(const raft_log_t *l, uint64_t last_index, uint64_t last_term);
/* Appends n entries (data copied) starting at ents[0].index <= last + 1, truncating any
 * existing suffix from that index. */
void raft_log_append(raft_log_t *l, const raft_entry_t *ents, size_t n);
/* Appends one entry at last + 1 (data copied). Returns its index. */
uint64_t raft_log_append_one(raft_log_t *l, uint64_t term, raft_entry_type_t type, const uint8_t *data,
                             size_t len);
/* Follower append: if (index, log_term) matches, appends the new part of ents, commits up to
 * min(committed, index + n) and stores the last new index in *lastnew; returns true.
 * Returns false on a mismatch. */
bool raft_log_maybe_append(raft_log_t *l, uint64_t index, uint64_t log_term, uint64_t committed,
                           const raft_entry_t *ents, size_t n, uint64_t *lastnew);
/* Largest index <= index whose term is <= term (for fast backtracking). */
uint64_t raft_log_find_conflict_by_term(const raft_log_t *l, uint64_t index, uint64_t term);
/* Raises the commit index to c (c must be <= last). */
void raft_log_commit_to(raft_log_t *l, uint64_t c);
/* Commits up to max if entry max is from term (Raft §5.4.2). Returns true if it moved. */
bool raft_log_maybe_commit(raft_log_t *l, uint64_t max, uint64_t term);
/* Number of entries from lo whose total size stays within max_bytes (at least one). */
size_t raft_log_limit(const raft_log_t *l, uint64_t lo, size_t max_bytes);
/* Drops entries up to and including i (snap_index < i <= last). */
void raft_log_compact(raft_log_t *l, uint64_t i);
/* Replaces the whole log by the snapshot point (index, term); commits and marks it stable. */
void raft_log_restore(raft_log_t *l, uint64_t index, uint64_t term);

/* ==== progress (raft_progress.c) ==== */

/* Ring of the last index of each in-flight append, for flow control. */
typedef struct raft_inflights {
  uint64_t *buf;
  size_t start, count, cap;
} raft_inflights_t;

typedef enum raft_pr_state { RAFT_PR_PROBE = 0, RAFT_PR_REPLICATE, RAFT_PR_SNAPSHOT } raft_pr_state_t;

/* What a leader knows about one member (and, while campaigning, its vote). */
typedef struct raft_progress {
  uint64_t id;
  uint64_t match, next;
  uint64_t pending_snapshot;
  raft_pr_state_t state;
  bool probe_sent;
  bool recent_active;
  bool learner;
  int8_t vote; /* 0 not yet, 1 granted, -1 rejected */
  raft_inflights_t ins;
} raft_progress_t;

/* Result of counting votes. */
typedef enum raft_vote_result { RAFT_VOTE_PENDING = 0, RAFT_VOTE_WON, RAFT_VOTE_LOST } raft_vote_result_t;

/* True if the leader should not send appends to pr right now. */
bool raft_pr_is_paused(const raft_progress_t *pr);
/* Switches pr to probing (after a reject, snapshot or unreachable report). */
void raft_pr_become_probe(raft_progress_t *pr);
/* Switches pr to optimistic pipelining. */
void raft_pr_become_replicate(raft_progress_t *pr);
/* Switches pr to waiting for the snapshot at index. */
void raft_pr_become_snapshot(raft_progress_t *pr, uint64_t index);
/* Records an ack up to n. Returns true if match moved. */
bool raft_pr_maybe_update(raft_progress_t *pr, uint64_t n);
/* Handles a reject of the append at rejected with the follower's hint. Returns false if the
 * reject is stale. */
bool raft_pr_maybe_decr_to(raft_progress_t *pr, uint64_t rejected, uint64_t match_hint);
/* Records an append whose last entry is last. */
void raft_inflights_add(raft_inflights_t *in, uint64_t last);
/* Frees every in-flight append ending at or before to. */
void raft_inflights_free_le(raft_inflights_t *in, uint64_t to);
/* Frees the oldest in-flight append. */
void raft_inflights_free_first(raft_inflights_t *in);
/* True if no more appends may be in flight. */
static inline bool raft_inflights_full(const raft_inflights_t *in) { return in->count == in->cap; }

/* Returns the progress of id, or NULL. */
raft_progress_t *raft_pr_find(raft_t *r, uint64_t id);
/* Adds id (as learner or voter) with next = last + 1. Returns the progress. */
raft_progress_t *raft_pr_add(raft_t *r, uint64_t id, bool learner);
/* Removes id if present. */
void raft_pr_remove(raft_t *r, uint64_t id);
/* Number of voters. */
size_t raft_pr_voters(const raft_t *r);
/* Highest index replicated on a quorum of voters (0 without voters). */
uint64_t raft_pr_quorum_match(raft_t *r);
/* Counts votes among voters. */
raft_vote_result_t raft_pr_tally(const raft_t *r);
/* True if a quorum of voters was recently active (self counts); clears the flags. */
bool raft_pr_quorum_active(raft_t *r);
/* Resets every progress for a new term: next = last + 1, match = 0 (self: last). */
void raft_pr_reset_all(raft_t *r);

/* ==== read index (raft_read_index.c) ==== */

/* A read waiting for a heartbeat quorum. */
typedef struct raft_readreq {
  uint64_t seq;   /* heartbeat context that confirms it */
  uint64_t index; /* commit index when it arrived */
  uint64_t from;  /* requester (self for local reads) */
  uint8_t *ctx;
  size_t ctx_len;
  uint64_t *acks; /* ids that acked, up to n_voters at arrival */
  size_t n_acks, cap_acks;
} raft_readreq_t;

/* Leader handling of a read request (local or forwarded). */
void raft_ri_request(raft_t *r, uint64_t from, const uint8_t *ctx, size_t len);
/* Leader: a heartbeat ack with context arrived from id. */
void raft_ri_ack(raft_t *r, uint64_t from, const uint8_t *ctx, size_t len);
/* Leader: the first entry of this term committed; serves reads that were waiting for it. */
void raft_ri_release_pending(raft_t *r);
/* Context (8 bytes, into buf) of the newest pending read, for heartbeats; 0 if none. */
size_t raft_ri_last_ctx(const raft_t *r, uint8_t buf[8]);
/* Drops all queued reads (on losing leadership). */
void raft_ri_reset(raft_t *r);
/* Emits a read state (local) or a MsgReadIndexResp (remote requester). */
void raft_ri_respond(raft_t *r, uint64_t from, uint64_t index, const uint8_t *ctx, size_t len);

/* ==== conf (raft_conf.c) ==== */

/* Heap snapshot object in one allocation (free()); also used for conf history. */
raft_snapshot_t *raft_snap_new(uint64_t index, uint64_t term, const uint64_t *voters, size_t nv,
                               const uint64_t *learners, size_t nl, const uint8_t *data, size_t len);
/* Builds a snapshot object of r's current membership at (index, term) with data. */
raft_snapshot_t *raft_conf_capture(raft_t *r, uint64_t index, uint64_t term, const uint8_t *data, size_t len);
/* Replaces the membership with the snapshot's conf state. */
void raft_conf_reset(raft_t *r, const raft_snapshot_t *s);
/* Applies a committed conf change entry at index (called from raft_advance / restore). */
void raft_conf_apply_entry(raft_t *r, const raft_entry_t *e);
/* Conf state at index (<= applied), as a borrowed snapshot object; drops older history. */
const raft_snapshot_t *raft_conf_at(raft_t *r, uint64_t index);
/* Drops conf history up to index. */
void raft_conf_trim(raft_t *r, uint64_t index);
/* True if a conf change entry is committed but not applied yet. */
bool raft_conf_unapplied(const raft_t *r);

/* ==== outbox and Ready (raft_ready.c) ==== */

/* Messages and read states built since the last raft_ready. Entries and contexts are kept
 * as offsets into ents/bytes and turned into pointers when handed out. */
typedef struct raft_outbox {
  raft_msg_t *msgs;
  size_t *ent_off, *ctx_off;
  size_t n_msgs, cap_msgs;
  raft_entry_t *ents;
  size_t n_ents, cap_ents;
  uint8_t *bytes;
  size_t n_bytes, cap_bytes;
  raft_read_state_t *rs;
  size_t *rs_off;
  size_t n_rs, cap_rs;
} raft_outbox_t;

/* Queues m (entries and context copied; entry data borrowed from the log). from defaults to
 * self; term is set unless m is a vote message or a forwarded proposal/read. */
void raft_send(raft_t *r, const raft_msg_t *m);
/* Queues a local read state (ctx copied). */
void raft_push_read_state(raft_t *r, uint64_t index, const uint8_t *ctx, size_t len);
/* Defers free(p) until no Ready can refer to it. */
void raft_defer_free(raft_t *r, void *p);
/* Frees an outbox's storage. */
void raft_outbox_destroy(raft_outbox_t *ob);
/* Leader: starts or restarts a leadership transfer to transferee. */
void raft_handle_transfer(raft_t *r, uint64_t transferee);

/* ==== election (raft_election.c) ==== */

void raft_become_follower(raft_t *r, uint64_t term, uint64_t lead);
void raft_become_pre_candidate(raft_t *r);
void raft_become_candidate(raft_t *r);
void raft_become_leader(raft_t *r);
/* Starts a (pre-)election; transfer skips pre-vote and overrides leases. */
void raft_campaign_now(raft_t *r, bool pre, bool transfer);
/* Local MsgHup: campaign unless leader, learner, or a conf change is unapplied. */
void raft_hup(raft_t *r, bool transfer);
/* Handles MsgVote/MsgPreVote after the term checks. */
void raft_handle_vote(raft_t *r, const raft_msg_t *m);
/* Candidate: handles a vote response. */
void raft_handle_vote_resp(raft_t *r, const raft_msg_t *m);
/* Per-role tick. */
void raft_tick_election(raft_t *r);
void raft_tick_heartbeat(raft_t *r);
/* Picks a new randomized election timeout in [election, 2 * election). */
void raft_reset_randomized_timeout(raft_t *r);

/* ==== replication (raft_replication.c) ==== */

/* Leader: sends an append (or a snapshot) to pr if allowed; returns true if sent. */
bool raft_send_append(raft_t *r, raft_progress_t *pr, bool send_if_empty);
/* Leader: sends appends to every other member. */
void raft_bcast_append(raft_t *r);
/* Leader: heartbeats to every other member (with the newest read context). */
void raft_bcast_heartbeat(raft_t *r);
/* Leader: recomputes the commit index; true if it moved. */
bool raft_maybe_commit(raft_t *r);
/* Leader: appends a new entry of the current term (not counted for itself until persisted).
 * Returns its index. */
uint64_t raft_leader_append(raft_t *r, raft_entry_type_t type, const uint8_t *data, size_t len);
/* Leader: the server persisted the log up to log.stable; counts it for this member and
 * commits what a quorum now holds. */
void raft_self_persisted(raft_t *r);
/* Follower side handlers. */
void raft_handle_append(raft_t *r, const raft_msg_t *m);
void raft_handle_heartbeat(raft_t *r, const raft_msg_t *m);
void raft_handle_snapshot(raft_t *r, const raft_msg_t *m);
/* Leader side handlers. */
void raft_handle_append_resp(raft_t *r, raft_progress_t *pr, const raft_msg_t *m);
void raft_handle_heartbeat_resp(raft_t *r, raft_progress_t *pr, const raft_msg_t *m);
/* Leader: sends MsgTimeoutNow to id. */
void raft_send_timeout_now(raft_t *r, uint64_t id);

/* ==== the member ==== */

struct raft {
  uint64_t id;
  uint64_t term, vote, lead, lead_transferee;
  raft_role_t role;
  bool pre_vote, check_quorum, no_forwarding;
  int election_timeout, heartbeat_timeout, randomized_timeout;
  int election_elapsed, heartbeat_elapsed;
  size_t max_inflight, max_msg_bytes;
  uint64_t (*rand)(void *ctx);
  void *rand_ctx;

  raft_log_t log;
  raft_progress_t *prs;
  size_t n_prs, cap_prs;
  uint64_t *scratch; /* cap_prs slots for the quorum computation */
  uint64_t pending_conf_index;

  raft_snapshot_t *snap;       /* snapshot at log.snap_index (conf state, data) */
  bool snap_pending;           /* snap was received from a leader and not yet handed out */
  raft_snapshot_t **conf_hist; /* membership after each applied conf change above snap_index */
  size_t n_conf_hist, cap_conf_hist;

  raft_readreq_t *reads; /* FIFO of reads waiting for heartbeat acks */
  size_t n_reads, cap_reads;
  uint64_t read_seq;
  raft_readreq_t *pending_reads; /* reads waiting for the first commit of this term */
  size_t n_pending_reads, cap_pending_reads;

  raft_outbox_t ob;     /* being filled */
  raft_outbox_t ob_out; /* handed out in the outstanding Ready */
  raft_ptrvec_t gy;     /* memory dropped since the last raft_ready (the graveyard) */
  raft_ptrvec_t gy_out; /* memory dropped before the outstanding Ready; freed on advance */
  raft_entry_t *rd_ents, *rd_committed;
  size_t cap_rd_ents, cap_rd_committed;
  raft_entry_t *rd_merged; /* entries of appends merged in the outstanding Ready */
  size_t cap_rd_merged;
  uint64_t *conf_skips; /* raft_conf_skip: committed conf changes not to apply */
  size_t n_conf_skips, cap_conf_skips;
  raft_msg_t *urg_msgs; /* raft_take_urgent scratch */
  size_t cap_urg_msgs;
  raft_entry_t *urg_ents;
  size_t cap_urg_ents;
  bool ready_out;
  struct {
    uint64_t ent_hi, ent_hi_term, snap_index;
    size_t n_committed;
    const raft_snapshot_t *snap;
    raft_hard_state_t hs;
  } handed;
  raft_hard_state_t prev_hs;
  raft_hard_state_t stable_hs; /* the hard state the server last persisted */
  raft_soft_state_t prev_ss;
};

/* The last index of this member's log that is durable (persisted and acknowledged). */
static inline uint64_t raft_self_durable(const raft_t *r) {
  uint64_t last = raft_log_last(&r->log);
  return r->log.stable < last ? r->log.stable : last;
}

/* Clears the leadership transfer target. */
static inline void raft_abort_transfer(raft_t *r) { r->lead_transferee = RAFT_NONE; }

/* True if this member is a voter in the current membership. */
bool raft_promotable(raft_t *r);

#endif
