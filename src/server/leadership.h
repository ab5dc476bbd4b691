/* Leadership transfers, as etcd does them: MoveLeader (Maintenance.MoveLeader) and the
 * hand-off a leader makes when it is asked to stop (etcd's TransferLeadership on Stop).
 * Both ask raft for the transfer (raft_node_transfer_leader) and then watch, once per
 * heartbeat interval, until this member sees the transferee as leader, raft abandons the
 * transfer (it gives up after an election timeout), or the deadline passes. Loop thread. */
#ifndef CETCD_SERVER_LEADERSHIP_H
#define CETCD_SERVER_LEADERSHIP_H

#include <stdint.h>

#include "server/server.h"

/* Called once a transfer finished (err 0) or failed: CETCD_ETRANSFERTIMEOUT,
 * CETCD_EBADTRANSFEREE, CETCD_ESTOPPED. */
typedef void (*leadership_cb)(void *ctx, int err);

/* MoveLeader on the leader: hands leadership to target and calls cb once target leads (at
 * once when target is this member), with "leadership transfer starting/finished" logged
 * like etcd. deadline_ms (uv_now() milliseconds, 0 = none) bounds the wait, as does etcd's
 * request timeout. The caller checked that this member leads. */
void leadership_move(server_t *srv, uint64_t target, uint64_t deadline_ms, leadership_cb cb, void *ctx);

/* Stopping: if this member leads a cluster with other voters, hands leadership to the most
 * caught-up voter and waits (about an election timeout at most) before calling done(srv);
 * returns 1 then. Returns 0 (done is not called) when there is nothing to hand over; the
 * reason is logged like etcd's. */
int leadership_handoff(server_t *srv, void (*done)(server_t *srv));

/* etcd's monitorLeader, on a cluster member: once per election timeout it checks for a
 * leader; after three checks in a row without one it ends the streams (Watch,
 * LeaseKeepAlive, ...) that require a leader (the layer's no_leader hook). New calls that
 * require one are refused by the layer's gate. No-op on a single member. */
void leadership_monitor_start(server_t *srv);
/* Stops the monitor (its timer closes with the loop). */
void leadership_monitor_stop(void);

#endif
