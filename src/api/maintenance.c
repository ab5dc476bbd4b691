/* etcdserverpb.Maintenance: Status, Hash, HashKV, Alarm (so far). */
#include <string.h>

#include "api/api.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"

/* Maintenance.Status: version, backend sizes, raft position of this member. */
static void mt_status(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  server_t *srv = server_get();
  Etcdserverpb__StatusResponse resp = ETCDSERVERPB__STATUS_RESPONSE__INIT;
  resp.header = api_header(call, NULL);
  resp.version = (char *)CETCD_ETCD_VERSION;
  resp.dbsize = mvcc_db_size(srv->mvcc);
  resp.dbsizeinuse = mvcc_db_size_in_use(srv->mvcc);
  resp.leader = srv->member_id;
  resp.raftindex = srv->last_index;
  resp.raftterm = srv->term;
  resp.raftappliedindex = srv->applied_index;
  api_reply(call, &resp.base);
}

/* Maintenance.Hash: crc32c over the whole backend keyspace. */
static void mt_hash(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  Etcdserverpb__HashResponse resp = ETCDSERVERPB__HASH_RESPONSE__INIT;
  int rc = mvcc_hash(server_get()->mvcc, &resp.hash);
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  resp.header = api_header(call, NULL);
  api_reply(call, &resp.base);
}

/* Maintenance.HashKV: etcd's hash of the MVCC history up to a revision. */
static void mt_hash_kv(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__HashKVRequest *req = (Etcdserverpb__HashKVRequest *)m;
  Etcdserverpb__HashKVResponse resp = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
  int rc = mvcc_hash_kv(server_get()->mvcc, req->revision, &resp.hash, &resp.compact_revision,
                        &resp.hash_revision);
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  resp.header = api_header(call, NULL);
  api_reply(call, &resp.base);
}

/* Maintenance.Alarm: no alarm is raised yet (quota arrives with step 2), so GET lists none. */
static void mt_alarm(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__AlarmRequest *req = (Etcdserverpb__AlarmRequest *)m;
  if (req->action != ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET) {
    grpc_call_finish(call, GRPC_UNIMPLEMENTED, "cetcd: alarm activate/deactivate is not implemented yet");
    return;
  }
  Etcdserverpb__AlarmResponse resp = ETCDSERVERPB__ALARM_RESPONSE__INIT;
  resp.header = api_header(call, NULL);
  api_reply(call, &resp.base);
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
};
const size_t api_maintenance_methods_len = sizeof(api_maintenance_methods) / sizeof(*api_maintenance_methods);
