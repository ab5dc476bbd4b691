/* What the api handlers work with: main owns one api_ctx_t and hands it to the server as
 * the context of the api layer's hooks (api_layer.c); every api method table is registered
 * with it, so a handler takes it from its call (api_ctx(call)) instead of reaching for a
 * global. */
#ifndef CETCD_API_CTX_H
#define CETCD_API_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "grpc/grpc_server.h"

typedef struct mvcc_store mvcc_store_t;
typedef struct watch_hub watch_hub_t;
typedef struct lessor lessor_t;
typedef struct auth_store auth_store_t;
struct server;

typedef struct api_ctx {
  uv_loop_t *loop;
  /* The server's stores, as it holds them (the stores_changed hook copies them again when
   * one is opened, replaced or closed). */
  mvcc_store_t *mvcc;             /* the key-value store */
  watch_hub_t *watch;             /* watchers of the store's events */
  lessor_t *lessor;               /* leases */
  auth_store_t *auth;             /* users, roles, tokens (replaced by a raft snapshot install) */
  const struct cetcd_config *cfg; /* the flags (--name, --max-txn-ops, ...), fixed for the process */
  /* The server below, for the rest: proposals (server_propose), raft and member state,
   * membership changes, alarms, quota, lease forwarding, metrics. */
  struct server *srv;
  /* State api keeps for the server's life (zeroed by main; never refreshed). */
  struct wstream *watch_streams;  /* open Watch streams (api/watch_rpc.c) */
  bool watch_stopping;            /* api_watch_stop_all ran: new streams are refused */
  struct gateway *gateway;        /* the JSON gateway on the client port (api/gateway.c) */
  struct snap_job *snapshot_jobs; /* Snapshot RPCs in progress (api/snapshot_rpc.c) */
} api_ctx_t;

/* The context the call's method table was registered with. */
static inline api_ctx_t *api_ctx(grpc_call_t *call) { return grpc_call_ctx(call); }

#endif
