/* Common handler helpers and method registration. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#include "api/api_errors.h"
#include "auth.pb-c.h"
#include "base/alloc.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"
#include "server/raft_node.h"
#include "server/reconfig.h"
#include "v3election.pb-c.h"
#include "v3lock.pb-c.h"

void api_finish_error(grpc_call_t *call, int code) {
  const char *msg;
  int status = api_error_status(code, &msg);
  grpc_call_finish(call, status, msg);
}

Etcdserverpb__ResponseHeader *api_header(grpc_call_t *call, Etcdserverpb__ResponseHeader *h) {
  api_ctx_t *ctx = api_ctx(call);
  server_t *srv = ctx->srv;
  if (!h) {
    h = arena_alloc(grpc_call_arena(call), sizeof(*h));
    etcdserverpb__response_header__init(h);
  }
  h->cluster_id = srv->cluster_id;
  h->member_id = srv->member_id;
  h->raft_term = srv->term;
  if (h->revision == 0) h->revision = mvcc_rev(ctx->mvcc);
  return h;
}

void api_reply(grpc_call_t *call, const ProtobufCMessage *msg) {
  grpc_call_send(call, msg);
  grpc_call_finish(call, GRPC_OK, NULL);
}

int api_gate(grpc_call_t *call, const ProtobufCMessage *msg, const char **message) {
  server_t *srv = api_ctx(call)->srv;
  int refused = reconfig_learner_gate(srv, grpc_call_method(call)->path, msg, message);
  if (refused) return refused;
  const char *v = grpc_call_metadata(call, "hasleader");
  if (!v || strcmp(v, "true") != 0 || !srv->rn) return GRPC_OK;
  uint64_t lead = 0;
  raft_node_info(srv->rn, &lead, NULL, NULL);
  if (lead) return GRPC_OK;
  return api_error_status(CETCD_ENOLEADER, message);
}

/* grpc_server_abort_calls' filter: a stream whose client requires a leader. */
static bool stream_requires_leader(grpc_call_t *call, void *arg) {
  (void)arg;
  const char *v = grpc_call_metadata(call, "hasleader");
  return grpc_call_method(call)->kind != GRPC_UNARY && v && strcmp(v, "true") == 0;
}

void api_end_streams_requiring_leader(grpc_server_t *g) {
  const char *message;
  int status = api_error_status(CETCD_ENOLEADER, &message);
  if (g) grpc_server_abort_calls(g, stream_requires_leader, NULL, status, message);
}

/* Answers any method that cetcd does not implement yet. */
static void unimplemented_message(grpc_call_t *call, ProtobufCMessage *msg) {
  (void)msg;
  char text[200];
  snprintf(text, sizeof(text), "cetcd: method %s is not implemented yet", grpc_call_method(call)->path);
  grpc_call_finish(call, GRPC_UNIMPLEMENTED, text);
}

/* Bidirectional/server streaming methods of etcd's services (protobuf-c's descriptors do not
 * record streaming). */
static enum grpc_method_kind method_kind(const char *path) {
  static const char *bidi[] = {"/etcdserverpb.Watch/Watch", "/etcdserverpb.Lease/LeaseKeepAlive"};
  static const char *server_stream[] = {"/etcdserverpb.Maintenance/Snapshot",
                                        "/v3electionpb.Election/Observe"};
  for (size_t i = 0; i < sizeof(bidi) / sizeof(*bidi); i++)
    if (!strcmp(path, bidi[i])) return GRPC_BIDI_STREAM;
  for (size_t i = 0; i < sizeof(server_stream) / sizeof(*server_stream); i++)
    if (!strcmp(path, server_stream[i])) return GRPC_SERVER_STREAM;
  return GRPC_UNARY;
}

/* True if `path` is in the table. */
static bool table_has(const grpc_method_t *t, size_t n, const char *path) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(t[i].path, path)) return true;
  return false;
}

typedef struct table {
  const grpc_method_t *methods;
  const size_t *len;
} table_t;

/* Every implemented method, by service. */
static const table_t tables[] = {
    {api_kv_methods, &api_kv_methods_len},
    {api_maintenance_methods, &api_maintenance_methods_len},
    {api_cluster_methods, &api_cluster_methods_len},
    {api_watch_methods, &api_watch_methods_len},
    {api_lease_methods, &api_lease_methods_len},
    {api_lock_methods, &api_lock_methods_len},
    {api_election_methods, &api_election_methods_len},
    {api_auth_methods, &api_auth_methods_len},
};

/* True if some service table implements `path`. */
static bool implemented(const char *path) {
  for (size_t i = 0; i < sizeof(tables) / sizeof(*tables); i++)
    if (table_has(tables[i].methods, *tables[i].len, path)) return true;
  return false;
}

/* The UNIMPLEMENTED table: built once, lives for the process (held here, so leak checkers
 * see it is still referenced). */
static grpc_method_t *unimplemented_table;
static size_t unimplemented_n;

void api_register_all(grpc_server_t *g, api_ctx_t *ctx) {
  for (size_t i = 0; i < sizeof(tables) / sizeof(*tables); i++)
    if (*tables[i].len) grpc_server_add_methods(g, tables[i].methods, *tables[i].len, ctx);
  static const ProtobufCServiceDescriptor *services[] = {&etcdserverpb__kv__descriptor,
                                                         &etcdserverpb__watch__descriptor,
                                                         &etcdserverpb__lease__descriptor,
                                                         &etcdserverpb__cluster__descriptor,
                                                         &etcdserverpb__maintenance__descriptor,
                                                         &etcdserverpb__auth__descriptor,
                                                         &v3lockpb__lock__descriptor,
                                                         &v3electionpb__election__descriptor};
  /* Every other method answers UNIMPLEMENTED with a clear message. The table is built once
   * and lives for the process. */
  if (unimplemented_table) {
    grpc_server_add_methods(g, unimplemented_table, unimplemented_n, ctx);
    return;
  }
  size_t total = 0;
  for (size_t i = 0; i < sizeof(services) / sizeof(*services); i++) total += services[i]->n_methods;
  grpc_method_t *rest = unimplemented_table = xcalloc(total, sizeof(*rest));
  size_t n = 0;
  for (size_t i = 0; i < sizeof(services) / sizeof(*services); i++) {
    const ProtobufCServiceDescriptor *sd = services[i];
    for (unsigned m = 0; m < sd->n_methods; m++) {
      char path[160];
      snprintf(path, sizeof(path), "/%s/%s", sd->name, sd->methods[m].name);
      if (implemented(path)) continue;
      rest[n].path = xstrdup(path);
      rest[n].kind = method_kind(path);
      rest[n].request = sd->methods[m].input;
      rest[n].on_message = unimplemented_message;
      n++;
    }
  }
  unimplemented_n = n;
  grpc_server_add_methods(g, rest, n, ctx);
}
