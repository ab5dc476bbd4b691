/* Raft snapshots between members (the server side of RAFT_MSG_SNAP, etcd's
 * snapshot_merge.go): the leader ships its whole backend to a follower whose next entry
 * was compacted away, the follower swaps it in.
 *
 * Leader: a worker thread writes a compacting copy of the backend (mvcc_copy_to_fd) to
 * <snap dir>/send-<peer id>.db.tmp and hashes it; peer_snapshot.c streams it; the outcome
 * goes to raft_report_snapshot. While a transfer runs the member does not compact its
 * raft log (etcd: "skip compaction since there is an inflight snapshot"). The image is as
 * of the latest applied entry, newer than the MsgSnap's index: the follower then skips
 * the entries up to its new consistent index when raft hands them again.
 *
 * Follower: unless its backend is already ahead of the image (a later leader may have
 * applied less than the one that sent an earlier snapshot), the verified image replaces data.mdb
 * (mvcc_replace_file: rename, reopen, rebuild the key index), then leases, alarms and watchers are reloaded
 * from it and the MsgSnap is stepped into raft, whose Ready persists the snapshot metadata. */
#ifndef CETCD_SERVER_RAFT_SHIP_H
#define CETCD_SERVER_RAFT_SHIP_H

#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"
#include "server/raft_node.h"
#include "server/raft_snapshot.h"
#include "server/server.h"

typedef struct rship rship_t;

/* Creates the shipper of a member (st borrowed: its inflight count pauses compaction). */
rship_t *rship_new(server_t *srv, raft_node_t *rn, rsnap_state_t *st);
/* Leader: ships the backend for m (a RAFT_MSG_SNAP) to m->to at peer_url ("host:port" or a
 * URL); reports the outcome to raft. A second MsgSnap to a member with a transfer running
 * is ignored. */
void rship_send(rship_t *sh, const raft_msg_t *m, const char *peer_url);
/* Follower (psnap_install_fn): swaps in the image and steps msg into raft. */
int rship_install(void *ctx, const char *image, const uint8_t *msg, size_t len);
/* Cancels running transfers; sh is freed once no image is being built. */
void rship_stop(rship_t *sh);

#endif
