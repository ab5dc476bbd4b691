/* The Raft path of a multi-member cluster (--initial-cluster with more than one member):
 * drives the raft core (src/raft/) on the server loop. A tick timer from
 * --heartbeat-interval; each Ready is persisted to the WAL (entries, hard state, synced),
 * its messages go out through the peer transport, committed entries are applied with
 * server_apply_entry in one mvcc batch whose consistent index is the last applied entry,
 * and the member that received a client request answers it once it is applied locally.
 * Linearizable reads wait for a read index and for the applied index to reach it. */
#ifndef CETCD_SERVER_RAFT_NODE_H
#define CETCD_SERVER_RAFT_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/raft.h"
#include "server/ids.h"
#include "server/server.h"

typedef struct raft_node raft_node_t;

/* Called once a linearizable read may be served locally (err 0) or failed. */
typedef void (*raft_node_read_cb)(void *ctx, int err);

/* Parses --initial-cluster; with more than one member creates the node in *out, otherwise
 * leaves *out NULL (single-member path). Returns 0 or CETCD_EINVAL (logged). */
int raft_node_create(server_t *srv, raft_node_t **out);
/* WAL replay hooks (before raft_node_start): entries and hard states as read back. */
void raft_node_replay_entry(raft_node_t *rn, uint64_t index, uint64_t term, raft_entry_type_t type,
                            const uint8_t *data, size_t len);
void raft_node_replay_hardstate(raft_node_t *rn, uint64_t term, uint64_t vote, uint64_t commit);
/* Creates the raft core from what was replayed, listens for peers and starts ticking. The
 * readiness lines are logged once a leader is known. Returns 0 or a negative code. */
int raft_node_start(raft_node_t *rn);
/* Proposes an encoded InternalRequest whose id is req_id; cb runs once it is applied here
 * (responses in arena, or a scratch arena when NULL) or failed. */
void raft_node_propose(raft_node_t *rn, const uint8_t *data, size_t len, uint64_t req_id, arena_t *arena,
                       propose_cb cb, void *ctx);
/* Waits for a read index and for the local state to reach it, then calls cb. */
void raft_node_read_index(raft_node_t *rn, raft_node_read_cb cb, void *ctx);
/* Steps an encoded raft message (as if a peer sent it) and processes the Ready. */
void raft_node_step(raft_node_t *rn, const uint8_t *msg, size_t len);
/* The transfer of a snapshot to member to ended (ok: the follower installed it). */
void raft_node_report_snapshot(raft_node_t *rn, uint64_t to, bool ok);
/* The index before which WAL segments may go once the backend is durable up to synced (the
 * newest saved raft snapshot at or below it, plus one), or 0. */
uint64_t raft_node_release_index(raft_node_t *rn, uint64_t synced);
/* The forwarder of lease requests only the leader's lessor answers (server/lease_forward.h);
 * NULL before raft_node_start and after raft_node_stop. */
struct lease_fwd *raft_node_lease_forward(raft_node_t *rn);
/* Leader id (0 if none), commit index and term. */
void raft_node_info(raft_node_t *rn, uint64_t *leader, uint64_t *index, uint64_t *term);
/* Asks raft to hand leadership to target (a leader sends it TimeoutNow once its log is
 * caught up; see server/leadership.c for the waiting). Returns 0, CETCD_EBADTRANSFEREE
 * (target is not a voting member) or CETCD_ENOLEADER. */
int raft_node_transfer_leader(raft_node_t *rn, uint64_t target);
/* True if this member is a learner in the current configuration (Status' isLearner). */
bool raft_node_is_learner(raft_node_t *rn);
/* The member a transfer started on this leader goes to, or 0 when none is in progress. */
uint64_t raft_node_transferee(raft_node_t *rn);
/* On a leader: the most caught-up other voter (highest match index), or 0 if none. */
uint64_t raft_node_best_transferee(raft_node_t *rn);
/* The initial cluster (member names, peer URLs, ids). */
const ids_cluster_t *raft_node_cluster(raft_node_t *rn);
/* ---- membership (used by server/reconfig.c) ---- */

/* A single member becoming a cluster (its first membership change, or a restart once its
 * membership has several members): creates the node from a one-member --initial-cluster.
 * Returns 0 or CETCD_EINVAL. */
int raft_node_create_single(server_t *srv, raft_node_t **out);
/* For a member switching at run time (nothing replayed): raft starts from the single
 * member's term (voting for itself) with everything up to commit committed and applied. */
void raft_node_restore_single(raft_node_t *rn, uint64_t term, uint64_t commit);
/* Starts an election now (a one-voter cluster wins it at once). */
void raft_node_campaign(raft_node_t *rn);

/* Proposes a membership change; cb runs once it is applied here (0), or failed (raft's
 * codes, CETCD_ECONFPENDING while this member waits for another, CETCD_ETIMEOUT). cc and
 * its context are borrowed for the call. */
void raft_node_propose_conf(raft_node_t *rn, const raft_conf_change_t *cc, void (*cb)(void *ctx, int err),
                            void *ctx);
/* On the leader: the match index of member id and of the leader itself. Returns 0,
 * CETCD_ENOTLEADER, or CETCD_EINVAL (raft does not know id). */
int raft_node_match(raft_node_t *rn, uint64_t id, uint64_t *match, uint64_t *lead_match);
/* Sends a health probe (a raft message of type 0, never stepped) to peer `to`. */
void raft_node_send_probe(raft_node_t *rn, uint64_t to);
/* The membership changed: the peer transport is rebuilt after the current Ready. */
void raft_node_peers_changed(raft_node_t *rn);
/* This member's removal was applied: it stops after the current Ready. */
void raft_node_self_removed(raft_node_t *rn);

/* Stops ticking and the peer transport and fails what waits. */
void raft_node_stop(raft_node_t *rn);

/* The WAL's on_synced: the Ready waiting for sync `ticket` is durable; finish it. */
void raft_node_on_wal_synced(raft_node_t *rn, uint64_t ticket);

/* The WAL's on_error: raft stops and every waiting proposal and read fails. */
void raft_node_on_wal_error(raft_node_t *rn, int err);
/* Stops the node if needed and frees it (the memory goes once its timer handle has closed,
 * so the loop must run on). NULL is a no-op. */
void raft_node_free(raft_node_t *rn);

#endif
