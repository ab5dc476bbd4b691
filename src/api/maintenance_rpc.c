/* etcdserverpb.Maintenance: Status, Hash, HashKV, Alarm, Defragment, MoveLeader (and
 * Snapshot). */
#include <string.h>

#include "api/api.h"
#include "api/snapshot_rpc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"
#include "server/alarm.h"
#include "server/leadership.h"
#include "server/raft_node.h"

/* Maintenance.Status: version, backend sizes, raft position of this member. */
static void mt_status(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  api_ctx_t *api = api_ctx(call);
  server_t *srv = api->srv;
  Etcdserverpb__StatusResponse resp = ETCDSERVERPB__STATUS_RESPONSE__INIT;
  resp.header = api_header(call, NULL);
  resp.version = (char *)CETCD_ETCD_VERSION;
  resp.dbsize = mvcc_db_size(api->mvcc);
  resp.dbsizeinuse = mvcc_db_size_in_use(api->mvcc);
  resp.leader = srv->member_id;
  resp.raftindex = srv->last_index;
  resp.raftterm = srv->term;
  resp.raftappliedindex = srv->applied_index;
  if (srv->rn) {
    raft_node_info(srv->rn, &resp.leader, &resp.raftindex, &resp.raftterm);
    resp.islearner = raft_node_is_learner(srv->rn);
  }
  size_t na = alarm_count(srv->alarms, ETCDSERVERPB__ALARM_TYPE__NONE);
  if (na || !resp.leader) { /* etcd: one "memberID:<id> alarm:<type> " string per raised alarm */
    arena_t *a = grpc_call_arena(call);
    resp.errors = arena_alloc(a, (na + 1) * sizeof(*resp.errors));
    if (!resp.leader) resp.errors[resp.n_errors++] = (char *)"etcdserver: no leader"; /* etcd's too */
    for (size_t i = 0; i < na; i++) {
      uint64_t member;
      int type;
      alarm_get(srv->alarms, i, &member, &type);
      char *text = arena_alloc(a, 64);
      alarm_member_string(member, type, text, 64);
      resp.errors[resp.n_errors++] = text;
    }
  }
  api_reply(call, &resp.base);
}

/* Maintenance.Hash: crc32c over the whole backend keyspace. */
static void mt_hash(grpc_call_t *call, ProtobufCMessage *m) {
  if (api_auth_refuse_non_admin_raw(call)) return; /* root only (etcd's authMaintenanceServer) */
  (void)m;
  Etcdserverpb__HashResponse resp = ETCDSERVERPB__HASH_RESPONSE__INIT;
  int rc = mvcc_hash(api_ctx(call)->mvcc, &resp.hash);
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  resp.header = api_header(call, NULL);
  api_reply(call, &resp.base);
}

/* Maintenance.HashKV: etcd's hash of the MVCC history up to a revision. */
static void mt_hash_kv(grpc_call_t *call, ProtobufCMessage *m) {
  if (api_auth_refuse_non_admin_raw(call)) return; /* root only (etcd's authMaintenanceServer) */
  Etcdserverpb__HashKVRequest *req = (Etcdserverpb__HashKVRequest *)m;
  Etcdserverpb__HashKVResponse resp = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
  int rc = mvcc_hash_kv(api_ctx(call)->mvcc, req->revision, &resp.hash, &resp.compact_revision,
                        &resp.hash_revision);
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  resp.header = api_header(call, NULL);
  api_reply(call, &resp.base);
}

/* Replies to a proposed alarm change once applied. */
static void alarm_done(void *ctx, const apply_result_t *res) {
  grpc_call_t *call = ctx;
  if (res->err) {
    api_finish_error(call, res->err);
    return;
  }
  Etcdserverpb__AlarmResponse empty = ETCDSERVERPB__ALARM_RESPONSE__INIT;
  Etcdserverpb__AlarmResponse *resp = res->alarm ? res->alarm : &empty;
  resp->header = NULL; /* etcd's Alarm responses carry no header */
  api_reply(call, &resp->base);
}

/* Maintenance.Alarm: GET lists the raised alarms from local state; ACTIVATE and
 * DEACTIVATE go through the log like etcd's, and list the alarm they changed. */
static void mt_alarm(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__AlarmRequest *req = (Etcdserverpb__AlarmRequest *)m;
  server_t *srv = api_ctx(call)->srv;
  if (req->action != ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET) {
    Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
    ir.alarm = req;
    int rc = api_auth_stamp(call, &ir);
    if (rc) {
      api_finish_error(call, rc);
      return;
    }
    server_propose(srv, &ir, grpc_call_arena(call), alarm_done, call);
    return;
  }
  Etcdserverpb__AlarmResponse *resp = NULL;
  alarm_apply(srv->alarms, req, grpc_call_arena(call), &resp); /* GET changes nothing */
  resp->header = NULL;                                         /* etcd's Alarm responses carry no header */
  api_reply(call, &resp->base);
}

/* Maintenance.Defragment: rewrites the backend compactly, blocking the loop meanwhile
 * (etcd blocks writes during defrag too). Answers like etcd: an empty response. */
static void mt_defragment(grpc_call_t *call, ProtobufCMessage *m) {
  if (api_auth_refuse_non_admin_raw(call)) return; /* root only (etcd's authMaintenanceServer) */
  (void)m;
  LOGI("msg=\"starting defragment\"");
  int rc = mvcc_defrag(api_ctx(call)->mvcc, NULL, NULL);
  if (rc) {
    LOGW("msg=\"failed to defragment\" error=\"%s\"", cetcd_strerror(rc));
    api_finish_error(call, rc);
    return;
  }
  LOGI("msg=\"finished defragment\"");
  Etcdserverpb__DefragmentResponse resp = ETCDSERVERPB__DEFRAGMENT_RESPONSE__INIT;
  api_reply(call, &resp.base);
}

/* Answers MoveLeader once the transfer finished or failed. */
static void move_leader_done(void *ctx, int err) {
  grpc_call_t *call = ctx;
  if (err) {
    api_finish_error(call, err);
    return;
  }
  Etcdserverpb__MoveLeaderResponse resp = ETCDSERVERPB__MOVE_LEADER_RESPONSE__INIT;
  api_reply(call, &resp.base); /* etcd's carries no header */
}

/* Maintenance.MoveLeader: only the leader accepts it ("etcdserver: not leader"); it answers
 * once the target leads, like etcd's (a bad target: "etcdserver: bad leader transferee"). */
static void mt_move_leader(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__MoveLeaderRequest *req = (Etcdserverpb__MoveLeaderRequest *)m;
  server_t *srv = api_ctx(call)->srv;
  uint64_t lead = srv->member_id;
  if (srv->rn) raft_node_info(srv->rn, &lead, NULL, NULL);
  if (lead != srv->member_id) {
    api_finish_error(call, CETCD_ENOTLEADER);
    return;
  }
  leadership_move(srv, req->targetid, grpc_call_deadline_ms(call), move_leader_done, call);
}

/* Maintenance.Snapshot: root only, then streamed by api/snapshot_rpc.c. */
static void mt_snapshot(grpc_call_t *call, ProtobufCMessage *m) {
  if (api_auth_refuse_non_admin_raw(call)) return;
  snapshot_rpc_on_message(call, m);
}

const grpc_method_t api_maintenance_methods[] = {
    {"/etcdserverpb.Maintenance/Status", GRPC_UNARY, &etcdserverpb__status_request__descriptor, mt_status,
     NULL, NULL},
    {"/etcdserverpb.Maintenance/Hash", GRPC_UNARY, &etcdserverpb__hash_request__descriptor, mt_hash, NULL,
     NULL},
    {"/etcdserverpb.Maintenance/HashKV", GRPC_UNARY, &etcdserverpb__hash_kvrequest__descriptor, mt_hash_kv,
     NULL, NULL},
    {"/etcdserverpb.Maintenance/Alarm", GRPC_UNARY, &etcdserverpb__alarm_request__descriptor, mt_alarm, NULL,
     NULL},
    {"/etcdserverpb.Maintenance/Snapshot", GRPC_SERVER_STREAM, &etcdserverpb__snapshot_request__descriptor,
     mt_snapshot, NULL, snapshot_rpc_on_cancel},
    {"/etcdserverpb.Maintenance/Defragment", GRPC_UNARY, &etcdserverpb__defragment_request__descriptor,
     mt_defragment, NULL, NULL},
    {"/etcdserverpb.Maintenance/MoveLeader", GRPC_UNARY, &etcdserverpb__move_leader_request__descriptor,
     mt_move_leader, NULL, NULL},
};
const size_t api_maintenance_methods_len = sizeof(api_maintenance_methods) / sizeof(*api_maintenance_methods);
