/* The server: storage, the write pipeline, listeners and lifecycle. One instance per
 * process, owned by main. The layer above it (api/: the gRPC handlers and the JSON gateway)
 * plugs in through a server_layer_t that main passes to server_start; the server never
 * includes api/. Everything here runs on the libuv loop thread. */
#ifndef CETCD_SERVER_H
#define CETCD_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/arena.h"
#include "grpc/grpc_server.h"
#include "internal.pb-c.h"
#include "net/loop_spin.h"
#include "net/tls.h"
#include "rpc.pb-c.h"
#include "server/config.h"

typedef struct mvcc_store mvcc_store_t;
typedef struct wal wal_t;
typedef struct watch_hub watch_hub_t;
typedef struct lessor lessor_t;
typedef struct alarm_store alarm_store_t;
typedef struct compactor compactor_t;
typedef struct raft_node raft_node_t;
typedef struct membership membership_t;
typedef struct auth_store auth_store_t;
struct reconfig;

/* The result of applying one log entry, handed to the proposer's callback. Exactly one of
 * the response pointers is set (matching the request) when err == 0. Responses live in the
 * arena the proposer passed in. */
typedef struct apply_result {
  int err; /* 0 or a negative CETCD_E* code */
  Etcdserverpb__PutResponse *put;
  Etcdserverpb__DeleteRangeResponse *delete_range;
  Etcdserverpb__TxnResponse *txn;
  Etcdserverpb__CompactionResponse *compaction;
  Etcdserverpb__LeaseGrantResponse *lease_grant;
  Etcdserverpb__LeaseRevokeResponse *lease_revoke;
  Etcdserverpb__AlarmResponse *alarm;
  ProtobufCMessage *auth; /* the response of an auth request (src/auth/) */
} apply_result_t;

/* Called on the loop thread once the proposal has been made durable and applied (or has
 * failed). `res` is borrowed for the duration of the call. */
typedef void (*propose_cb)(void *ctx, const apply_result_t *res);

typedef struct pending_entry pending_entry_t;
typedef struct server server_t;

/* What the layer above the server (api/, installed by main) plugs into it: the server calls
 * each hook at the moment its comment names, with `ctx` as the first argument. The server
 * owns the listeners, so it asks the layer for their handlers; the layer owns what it
 * registers. Every hook is required. */
typedef struct server_layer {
  void *ctx;
  /* The client gRPC server's gate and hold (grpc_server_opts_t.gate and .hold). */
  int (*gate)(grpc_call_t *call, const ProtobufCMessage *msg, const char **message);
  bool (*hold)(grpc_call_t *call);
  /* The client gRPC server g exists and is not listening yet: register every service. */
  void (*serve_clients)(void *ctx, grpc_server_t *g);
  /* The peer gRPC server g of a cluster member exists: register what peers call there. */
  void (*serve_peers)(void *ctx, grpc_server_t *g);
  /* An HTTP/1 request the server does not answer itself (/health, /version and /metrics
   * are its own). Returns true when the layer answers req (now or later), false for 404. */
  bool (*http)(void *ctx, grpc_http_req_t *req, const char *method, const char *path, const uint8_t *body,
               size_t len);
  /* The server's stores were opened, replaced (a raft snapshot install) or closed. */
  void (*stores_changed)(void *ctx, server_t *srv);
  /* A cluster member has had no leader for a while (server/leadership.c): end the streams
   * of the client server g that require one. */
  void (*no_leader)(void *ctx, grpc_server_t *g);
  /* Shutdown began: end the streams that never end by themselves, refuse new ones. */
  void (*stopping)(void *ctx);
  /* Every client connection is gone; the client gRPC server is freed next. */
  void (*clients_gone)(void *ctx);
  /* Storage is about to close: let go of the backend (snapshot builds in flight). */
  void (*storage_closing)(void *ctx);
} server_layer_t;

struct server {
  uv_loop_t *loop;
  cetcd_config_t *cfg;
  const server_layer_t *layer; /* the layer above (borrowed from main) */
  mvcc_store_t *mvcc;
  wal_t *wal;
  grpc_server_t *grpc;
  tls_ctx_t *client_tls;  /* https client listeners (server/tls_setup.c), NULL without */
  watch_hub_t *watch;     /* watchers over mvcc's events (watch/) */
  lessor_t *lessor;       /* leases (lease/) */
  alarm_store_t *alarms;  /* raised alarms (server/alarm.c); created before WAL replay */
  auth_store_t *auth;     /* users, roles, tokens (auth/); created before WAL replay */
  struct auth_jwt *jwt;   /* --auth-token jwt: the token provider the auth store borrows */
  uint64_t applying_index; /* log index of the entry being applied (simple tokens carry it) */
  compactor_t *compactor; /* auto-compaction (server/compactor.c) */
  /* the lease expiry driver's timer (server/lease_expiry.c), owned; or NULL */
  uv_timer_t *lease_timer;
  uint64_t cluster_id;
  uint64_t member_id;
  uint64_t term;
  char **peer_urls; /* this member's advertised peer URLs (owned) */
  size_t n_peer_urls;
  char **client_urls; /* this member's advertised client URLs (owned) */
  size_t n_client_urls;
  uint64_t last_index;    /* highest index handed to the WAL */
  uint64_t applied_index; /* highest index applied to mvcc */
  uint64_t next_request_id;
  pending_entry_t *pending_head; /* proposals waiting for durability, in index order */
  pending_entry_t *pending_tail;
  uint64_t unapplied_headroom;  /* backend space reserved for logged, unapplied entries */
  uint64_t apply_headroom;      /* the same, accumulated inside one replay/apply batch */
  uint64_t disk_full_logged_ms; /* last "refusing writes: disk full" warning */
  uv_prepare_t wal_flush;       /* single member: gets this iteration's appends written */
  bool wal_flush_on;            /* wal_flush is initialised */
  loop_spin_t spin;             /* single member: keeps polling briefly after answering (net/loop_spin.h) */
  bool spin_on;                 /* spin is initialised */
  bool stopping;
  bool handing_off; /* stopping: a leader hands leadership over first (server/leadership.c) */
  bool wal_failed;
  uv_signal_t sigterm, sigint;
  uv_timer_t sync_timer;   /* periodic LMDB sync + WAL release */
  uv_timer_t commit_timer; /* commits the backend's deferred batches (mvcc_flush) */
  bool commit_timer_on;    /* commit_timer is initialised and open */
  uv_work_t sync_work;
  bool sync_running;
  bool close_pending;        /* shutdown waits for the running backend sync */
  uint64_t sync_index;       /* consistent index covered by the running sync */
  raft_node_t *rn;           /* the Raft path (server/raft_node.c) when clustered, else NULL */
  membership_t *members;     /* the applied membership (server/membership.c), clustered only */
  struct reconfig *reconfig; /* membership changes, publish, peer health (server/reconfig.c) */
};

/* Tells the layer above that the server's stores were opened, replaced (a raft snapshot
 * install brings a new auth store) or closed. */
void server_stores_changed(server_t *srv);

/* Opens storage, replays the WAL, binds listeners and prints the readiness lines. On
 * failure logs the cause and returns a negative code. cfg and layer are borrowed for the
 * server's life. */
int server_start(server_t *srv, uv_loop_t *loop, cetcd_config_t *cfg, const server_layer_t *layer);

/* A single member switching to the Raft path (server/reconfig.c): closes the lone-write
 * machinery (the loop's WAL flush and spinning). No proposal may be pending. */
void server_single_path_stop(server_t *srv);

/* Begins graceful shutdown: GOAWAY to clients, finish in-flight work, flush the WAL, close
 * storage. The loop ends once everything is closed. */
void server_stop(server_t *srv);

/* Proposes a state change: it is logged, made durable, applied in log order, and then cb
 * runs with the result, whose responses are allocated in `arena` (borrowed; must outlive
 * the callback — if the caller may go away first, it passes arena NULL and a scratch arena
 * is used). `req` is borrowed for this call only (it is encoded at once). */
void server_propose(server_t *srv, Cetcdinternal__InternalRequest *req, arena_t *arena, propose_cb cb,
                    void *ctx);

/* Single member, prepare phase (after this loop iteration's requests were read): gets the
 * WAL's pending entries written, by the loop itself when one client writes at a time. */
void server_wal_flush_cb(uv_prepare_t *p);

/* Before applying an entry of len logged bytes inside the open batch (replay, raft apply):
 * makes sure the backend can grow by what the batch may need so far. The entry is
 * durable already, so a full disk here stops the process with an error naming the fix
 * (nothing acknowledged is lost: the WAL replays it at the next start). Call
 * server_apply_space_done once the batch is committed. */
void server_reserve_apply_space(server_t *srv, size_t len);
void server_apply_space_done(server_t *srv);

/* The meta bucket key holding the member and cluster ids, read back at start; a raft
 * snapshot image from the leader gets the receiver's own before it is swapped in. */
#define SERVER_IDS_META "cetcd_ids"
/* Fills out with the ids as stored under SERVER_IDS_META (two big-endian u64s). */
void server_identity_record(const server_t *srv, uint8_t out[16]);

/* Commits the backend's deferred batches (before another thread reads committed state);
 * stops the process if the commit fails. Loop thread. */
void server_flush_backend(server_t *srv);

/* Applies one decoded entry inside an open mvcc batch. Responses go in `arena`. */
void server_apply_entry(server_t *srv, const Cetcdinternal__InternalRequest *req, arena_t *arena,
                        apply_result_t *res);

#endif
