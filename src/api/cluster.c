/* etcdserverpb.Cluster: MemberList for the one member (membership changes arrive with Raft). */
#include "api/api.h"

/* Cluster.MemberList: this member with its advertised peer and client URLs. */
static void cl_member_list(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  server_t *srv = server_get();
  Etcdserverpb__Member self = ETCDSERVERPB__MEMBER__INIT;
  self.id = srv->member_id;
  self.name = srv->cfg->name;
  self.peerurls = srv->peer_urls;
  self.n_peerurls = srv->n_peer_urls;
  self.clienturls = srv->client_urls;
  self.n_clienturls = srv->n_client_urls;
  Etcdserverpb__Member *members[] = {&self};
  Etcdserverpb__MemberListResponse resp = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
  resp.header = api_header(call, NULL);
  resp.header->revision = 0; /* etcd's cluster responses carry no revision */
  resp.members = members;
  resp.n_members = 1;
  api_reply(call, &resp.base);
}

const grpc_method_t api_cluster_methods[] = {
    {"/etcdserverpb.Cluster/MemberList", GRPC_UNARY, &etcdserverpb__member_list_request__descriptor,
     cl_member_list, NULL, NULL},
};
const size_t api_cluster_methods_len = sizeof(api_cluster_methods) / sizeof(*api_cluster_methods);
