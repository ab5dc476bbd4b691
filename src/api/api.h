/* Shared helpers for the gRPC handlers in api/: response headers, error replies, and the
 * registration of every etcd service's method table. */
#ifndef CETCD_API_H
#define CETCD_API_H

#include "api/api_ctx.h"
#include "grpc/grpc_server.h"
#include "rpc.pb-c.h"
#include "server/server.h"

/* Ends the call with the gRPC status and etcd error string for a negative CETCD_E* code. */
void api_finish_error(grpc_call_t *call, int code);

/* Returns `h` (or a new header in the call's arena when h is NULL) with cluster id, member
 * id and raft term filled in; the revision is set to the store's current revision when it
 * is 0. */
Etcdserverpb__ResponseHeader *api_header(grpc_call_t *call, Etcdserverpb__ResponseHeader *h);

/* Sends msg (borrowed) as the only response and ends the call with OK. */
void api_reply(grpc_call_t *call, const ProtobufCMessage *msg);

/* Registers the handlers of every service (KV, Watch, Lease, Cluster, Maintenance, Auth,
 * Lock, Election) with ctx (borrowed; it must outlive g); methods without an implementation
 * answer UNIMPLEMENTED. */
void api_register_all(grpc_server_t *g, api_ctx_t *ctx);

/* Ends every open Watch stream of ctx's handlers (UNAVAILABLE "etcdserver: server
 * stopped") and refuses new ones: called when the server begins shutting down, so streams
 * do not hold it up. */
void api_watch_stop_all(api_ctx_t *ctx);

/* Ends the open streams (Watch, LeaseKeepAlive, ...) of the client server g (NULL: none)
 * that carry `hasleader: true` metadata (clientv3's WithRequireLeader; its lease
 * keep-alives always do) with UNAVAILABLE "etcdserver: no leader": called when this member
 * has been without a leader for a while, as etcd's monitorLeader does. */
void api_end_streams_requiring_leader(grpc_server_t *g);

/* The gRPC server's gate (grpc_server_opts_t.gate), like etcd's interceptors: a learner
 * refuses what it does not serve (reconfig_learner_gate); a call with `hasleader: true`
 * metadata on a cluster member that knows no leader ends at once with UNAVAILABLE
 * "etcdserver: no leader". msg is the call's first message (or NULL). */
int api_gate(grpc_call_t *call, const ProtobufCMessage *msg, const char **message);

/* ---- auth (api/api_auth.c): who a call comes from, etcd's AuthInfoFromCtx ---- */

/* Resolves the call's `token` metadata into *ai (user borrowed from the auth store until
 * its next change; NULL user and revision 0 without a token). Returns 0 or
 * CETCD_EAUTHBADTOKEN (unknown or expired token, as etcd even while auth is disabled). */
struct auth_info;
int api_auth_info(grpc_call_t *call, struct auth_info *ai);
/* The gRPC server's hold (grpc_server_opts_t.hold), etcd's isValidSimpleToken: a call
 * whose simple token names a log index this member has not applied yet waits until it
 * has (grpc_server_recheck_held after each applied batch), or until its deadline. */
bool api_auth_hold(grpc_call_t *call);
/* Puts the caller's user and auth revision into a proposal (copied into the call's arena),
 * as etcd's request header. Returns 0 or CETCD_EAUTHBADTOKEN. */
int api_auth_stamp(grpc_call_t *call, Cetcdinternal__InternalRequest *ir);
/* Root role needed (Defragment, Snapshot, Hash, HashKV, membership changes). Returns 0 or
 * a CETCD_EAUTH* code. */
int api_auth_admin(grpc_call_t *call);
/* api_auth_admin for a handler's first line: on refusal ends the call with the error and
 * returns true (the handler returns at once). */
bool api_auth_refuse_non_admin(grpc_call_t *call);
/* The same for the Maintenance calls, answering as etcd's authMaintenanceServer does:
 * Unknown with the auth package's text ("auth: permission denied"). */
bool api_auth_refuse_non_admin_raw(grpc_call_t *call);
/* Read access to [key, end) (etcd's IsRangePermitted with the call's token). */
int api_auth_range(grpc_call_t *call, const ProtobufCBinaryData *key, const ProtobufCBinaryData *end);
/* Every compare and op of a txn (served as a read). */
int api_auth_txn(grpc_call_t *call, const Etcdserverpb__TxnRequest *txn);

/* Method tables of the services, one per api/<service>.c. */
extern const grpc_method_t api_kv_methods[];
extern const size_t api_kv_methods_len;
extern const grpc_method_t api_maintenance_methods[];
extern const size_t api_maintenance_methods_len;
extern const grpc_method_t api_cluster_methods[];
extern const size_t api_cluster_methods_len;
extern const grpc_method_t api_watch_methods[];
extern const size_t api_watch_methods_len;
extern const grpc_method_t api_lease_methods[];
extern const size_t api_lease_methods_len;
extern const grpc_method_t api_lock_methods[];
extern const size_t api_lock_methods_len;
extern const grpc_method_t api_election_methods[];
extern const size_t api_election_methods_len;
extern const grpc_method_t api_auth_methods[];
extern const size_t api_auth_methods_len;

#endif
