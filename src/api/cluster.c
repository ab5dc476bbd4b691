/* etcdserverpb.Cluster: MemberList for the one member (membership changes arrive with Raft). */
#include "api/api.h"
#include "server/raft_node.h"

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
  if (srv->rn) { /* every member of the initial cluster; client URLs known only for self */
    const ids_cluster_t *c = raft_node_cluster(srv->rn);
    arena_t *a = grpc_call_arena(call);
    resp.members = arena_alloc(a, c->n_members * sizeof(*resp.members));
    resp.n_members = c->n_members;
    for (size_t i = 0; i < c->n_members; i++) {
      Etcdserverpb__Member *mb = arena_alloc(a, sizeof(*mb));
      etcdserverpb__member__init(mb);
      mb->id = c->members[i].id;
      mb->name = c->members[i].name;
      mb->peerurls = c->members[i].peer_urls;
      mb->n_peerurls = c->members[i].n_peer_urls;
      if (mb->id == srv->member_id) {
        mb->clienturls = srv->client_urls;
        mb->n_clienturls = srv->n_client_urls;
      }
      resp.members[i] = mb;
    }
  }
  api_reply(call, &resp.base);
}

const grpc_method_t api_cluster_methods[] = {
    {"/etcdserverpb.Cluster/MemberList", GRPC_UNARY, &etcdserverpb__member_list_request__descriptor,
     cl_member_list, NULL, NULL},
};
const size_t api_cluster_methods_len = sizeof(api_cluster_methods) / sizeof(*api_cluster_methods);
