/* Cluster membership on the Raft path (etcd's etcdserver AddMember/RemoveMember/
 * UpdateMember/PromoteMember, publish, and the joining of a running cluster).
 *
 * - Start-up: reconfig_join gives a member started with --initial-cluster-state existing
 *   the ids the cluster assigned to it (MemberList over a peer URL of the running members);
 *   reconfig_open loads the applied membership (server/membership.c) or seeds it from
 *   --initial-cluster; raft starts from it (voters, learners, peers).
 * - Publish: once a leader is known the member proposes its name and client URLs; the
 *   "published local member to cluster through raft" and "ready to serve client requests"
 *   lines are logged when that entry is applied here.
 * - Changes: add/remove/promote are raft conf changes whose context is the member
 *   (Cetcdinternal__MemberRecord); update is a normal entry. They are checked before they
 *   are proposed (etcd's strict reconfiguration checks and membership rules), applied in
 *   log order with the rest, persisted in the members buckets, and change the peer
 *   transport. A member that applies its own removal, or that a peer tells it was removed,
 *   stops by itself.
 * - Health: every member probes every peer twice a second over the peer transport; a peer
 *   heard from continuously for 5 s counts as connected (etcd's HealthInterval).
 *
 * Loop thread only. */
#ifndef CETCD_SERVER_RECONFIG_H
#define CETCD_SERVER_RECONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc/grpc_server.h"
#include "internal.pb-c.h"
#include "raft/raft.h"
#include "server/server.h"

typedef struct mvcc_store mvcc_store_t;

/* A member change finished (err 0: applied here; the membership now reflects it). */
typedef void (*reconfig_cb)(void *ctx, int err);

/* Before load_identity: a new member joining a running cluster (--initial-cluster-state
 * existing, no ids stored yet) asks the members listed in --initial-cluster for the
 * membership, takes the id the cluster gave its peer URLs, stores the ids and the
 * membership. Returns 0 (also when there is nothing to do) or CETCD_EINVAL (logged). */
int reconfig_join(server_t *srv);
/* After load_identity: loads the membership into srv->members, seeding it from
 * --initial-cluster for a new cluster, and starts the peer probes. Returns 0 or a code. */
int reconfig_open(server_t *srv);
/* True if mvcc's membership has more than one member (a single member that became a
 * cluster restarts on the Raft path). */
bool reconfig_has_cluster(mvcc_store_t *mvcc);
/* Before a membership change on a member without the Raft path (started as a single
 * member): stops the single-member pipeline and starts Raft with this member as its only
 * voter, from the applied state; it wins the election at once. No-op when clustered.
 * Returns 0, CETCD_ETIMEOUT (writes are in flight: retry) or a start-up code. */
int reconfig_become_cluster(server_t *srv);
/* Reloads the membership from the backend (after a snapshot replaced it) and rebuilds the
 * peer transport's table. A backend error is logged; the old membership then stays. */
void reconfig_reload(server_t *srv);
/* Stops the probes and frees the membership state. */
void reconfig_close(server_t *srv);

/* The voters and learners of the applied membership (owned arrays, free()). */
void reconfig_conf_state(server_t *srv, uint64_t **voters, size_t *nv, uint64_t **learners, size_t *nl);
/* Every member but this one with its first peer URL (ids and urls owned: free() the arrays,
 * the strings are borrowed from the membership until its next change). */
void reconfig_peers(server_t *srv, uint64_t **ids, char ***urls, size_t *n);

/* A leader is known for the first time: propose this member's attributes. */
void reconfig_publish(server_t *srv);
/* A message from peer `from` arrived. Returns true if from was removed (the transport then
 * tells it so). */
bool reconfig_heard(server_t *srv, uint64_t from);
/* A peer told this member it was removed: stop (etcd's log lines). */
void reconfig_removed(server_t *srv);

/* ---- apply (inside the apply batch, in log order) ---- */

/* Applies a committed conf change entry's data to the membership and the peer transport;
 * *cc (context in a) says what it was, for the proposer. Returns 0, CETCD_EINVAL (an
 * entry that does not decode) or the membership error of a change that is no longer valid
 * (etcd's ValidateConfigurationChange); then nothing changes, on every member alike, and
 * raft must not apply it either (raft_conf_skip). */
int reconfig_apply_conf_change(server_t *srv, const uint8_t *data, size_t len, arena_t *a,
                               raft_conf_change_t *cc);
/* Applies a published member's attributes. Returns 0 or a backend code. */
int reconfig_apply_attr(server_t *srv, const Cetcdinternal__MemberAttrRequest *req);
/* Applies a member's new peer URLs. Returns 0 or a backend code. */
int reconfig_apply_update(server_t *srv, const Etcdserverpb__MemberUpdateRequest *req);

/* ---- the Cluster API's changes (cb runs once, maybe before the call returns) ---- */

/* Adds a member with peer_urls (normalized strings; learner or voter). *id gets its new id
 * before cb runs. Errors: CETCD_EMEMBERBADURLS, CETCD_EUNHEALTHY and CETCD_ENOTENOUGHSTARTED
 * before proposing; CETCD_EMEMBERNOTFOUND (a removed id), CETCD_EMEMBEREXISTS,
 * CETCD_EPEERURLEXISTS and CETCD_ETOOMANYLEARNERS when applied; or raft's and the
 * proposal's codes. */
void reconfig_member_add(server_t *srv, char *const *peer_urls, size_t n, bool learner, uint64_t *id,
                         reconfig_cb cb, void *ctx);
/* Removes member id (CETCD_EUNHEALTHY, CETCD_ENOTENOUGHSTARTED before proposing;
 * CETCD_EMEMBERNOTFOUND when applied). */
void reconfig_member_remove(server_t *srv, uint64_t id, reconfig_cb cb, void *ctx);
/* Sets member id's peer URLs (CETCD_EMEMBERNOTFOUND, CETCD_EPEERURLEXISTS). */
void reconfig_member_update(server_t *srv, uint64_t id, char *const *peer_urls, size_t n, reconfig_cb cb,
                            void *ctx);
/* Promotes learner id, on the leader only (CETCD_ENOTLEADER on a follower: the caller
 * forwards it), with CETCD_EMEMBERNOTFOUND, CETCD_EMEMBERNOTLEARNER, CETCD_ELEARNERNOTREADY
 * (its log is behind 90 % of the leader's), CETCD_ENOTENOUGHSTARTED. */
void reconfig_member_promote(server_t *srv, uint64_t id, reconfig_cb cb, void *ctx);

/* etcd's learner interceptor, for the client server's gate (api_gate): a learner serves
 * only Status and serializable Range; any other method (path) gets GRPC_UNAVAILABLE and
 * *message "etcdserver: rpc not supported for learner". Returns 0 to let the call through.
 * msg is the call's first message (or NULL). */
int reconfig_learner_gate(server_t *srv, const char *path, const ProtobufCMessage *msg, const char **message);

/* True if this member is a learner of the applied membership. */
bool reconfig_is_learner(server_t *srv);

#endif
