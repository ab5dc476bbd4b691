/* Server lifecycle: open storage, replay the WAL, bind the client listeners, announce
 * readiness, shut down gracefully. */
#include "server/server.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/auth.h"
#include "auth/auth_jwt.h"
#include "base/alloc.h"
#include "base/fsutil.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "grpc/grpc_server.h"
#include "lease/lease.h"
#include "mvcc/mvcc.h"
#include "server/alarm.h"
#include "server/apply.h"
#include "server/compactor.h"
#include "server/http.h"
#include "server/ids.h"
#include "server/leadership.h"
#include "server/lease_expiry.h"
#include "server/metrics.h"
#include "server/pipeline.h"
#include "server/quota.h"
#include "server/raft_node.h"
#include "server/reconfig.h"
#include "server/tls_setup.h"
#include "server/urls.h"
#include "snapshot/snapshot.h"
#include "wal/wal.h"
#include "watch/watch.h"

/* ---- WAL replay ------------------------------------------------------------------- */

typedef struct replay_ctx {
  server_t *srv;
  uint64_t consistent_index;
  uint64_t last_term;
  uint64_t replayed;
} replay_ctx_t;

/* Applies WAL entries the backend has not seen yet (the batch is open). */
static int replay_entry(void *ctx, uint64_t index, uint64_t term, const uint8_t *data, size_t len) {
  replay_ctx_t *rc = ctx;
  if (rc->srv->rn) { /* clustered: raft decides what is committed */
    raft_node_replay_entry(rc->srv->rn, index, term, RAFT_ENTRY_NORMAL, data, len);
    return 0;
  }
  if (term > rc->last_term) rc->last_term = term;
  if (index > rc->srv->last_index) rc->srv->last_index = index;
  if (index <= rc->consistent_index) return 0;
  apply_replayed(rc->srv, index, data, len);
  rc->replayed++;
  return 0;
}

/* A raft membership change entry (clustered members only; raft applies it). */
static int replay_conf_entry(void *ctx, uint64_t index, uint64_t term, const uint8_t *data, size_t len) {
  replay_ctx_t *rc = ctx;
  if (rc->srv->rn) raft_node_replay_entry(rc->srv->rn, index, term, RAFT_ENTRY_CONF_CHANGE, data, len);
  return 0;
}

/* Remembers the highest term seen in a hard state record. */
static int replay_hardstate(void *ctx, uint64_t term, uint64_t vote, uint64_t commit) {
  replay_ctx_t *rc = ctx;
  if (rc->srv->rn) raft_node_replay_hardstate(rc->srv->rn, term, vote, commit);
  (void)vote;
  (void)commit;
  if (term > rc->last_term) rc->last_term = term;
  return 0;
}

/* ---- WAL callbacks (loop thread) ---------------------------------------------------- */

/* Entries up to `index` are on disk: apply and answer them. */
static void on_wal_durable(void *ctx, uint64_t index) { server_on_durable(ctx, index); }

/* A cluster member's Ready is durable (raft_node.c waits for it). */
static void on_wal_synced(void *ctx, uint64_t ticket) {
  server_t *srv = ctx;
  if (srv->rn) raft_node_on_wal_synced(srv->rn, ticket);
}

/* The WAL cannot write: nothing more can be acknowledged. */
static void on_wal_error(void *ctx, int err) {
  server_t *srv = ctx;
  LOGE("msg=\"WAL write failed; refusing writes\" error=\"%s\"", cetcd_strerror(err));
  srv->wal_failed = true;
  server_fail_pending(srv, CETCD_ESTOPPED);
  if (srv->rn) raft_node_on_wal_error(srv->rn, err);
}

/* ---- periodic backend sync ---------------------------------------------------------- */

/* Worker thread: flushes LMDB to disk. */
static void sync_work(uv_work_t *w) {
  server_t *srv = w->data;
  int rc = mvcc_sync(srv->mvcc);
  if (rc)
    LOGE("msg=\"backend sync failed\" error=\"%s\"", cetcd_strerror(rc));
  else
    srv->sync_running = true; /* success marker read in sync_done */
}

static void close_storage(server_t *srv);

/* Loop thread: the backend is durable up to sync_index, so older WAL segments can go. */
static void sync_done(uv_work_t *w, int status) {
  server_t *srv = w->data;
  /* a cluster member keeps the log after its newest raft snapshot (server/raft_snapshot.c) */
  uint64_t release = srv->rn ? raft_node_release_index(srv->rn, srv->sync_index) : srv->sync_index + 1;
  if (status == 0 && srv->sync_running && srv->wal && release) wal_release_before(srv->wal, release);
  if (status == 0 && srv->sync_running) mvcc_drop_pages(srv->mvcc); /* see mvcc_drop_pages */
  srv->sync_running = false;
  w->data = NULL;
  if (srv->close_pending) close_storage(srv);
}

/* Timer: starts a backend sync when there is something new and none is running. */
static void on_sync_timer(uv_timer_t *t) {
  server_t *srv = t->data;
  if (srv->sync_work.data || srv->stopping) return;
  server_flush_backend(srv); /* the sync covers what is committed */
  srv->sync_index = srv->applied_index;
  srv->sync_running = false;
  srv->sync_work.data = srv;
  uv_queue_work(srv->loop, &srv->sync_work, sync_work, sync_done);
}

/* ---- identity ----------------------------------------------------------------------- */

void server_identity_record(const server_t *srv, uint8_t out[16]) {
  for (int i = 0; i < 8; i++) out[i] = (uint8_t)(srv->member_id >> (56 - 8 * i));
  for (int i = 0; i < 8; i++) out[8 + i] = (uint8_t)(srv->cluster_id >> (56 - 8 * i));
}

/* Stores this member's id and the cluster id in the backend's meta bucket. */
static int save_identity(server_t *srv) {
  uint8_t buf[16];
  server_identity_record(srv, buf);
  mvcc_batch_begin(srv->mvcc);
  mvcc_meta_put(srv->mvcc, SERVER_IDS_META, buf, 16);
  return mvcc_batch_commit(srv->mvcc, mvcc_consistent_index(srv->mvcc));
}

/* Loads the member and cluster ids from the backend, or derives and stores them on first
 * start (etcd's derivation: from the peer URLs, the cluster token and the members). */
static int load_identity(server_t *srv) {
  uint8_t buf[16];
  size_t n = sizeof(buf);
  if (mvcc_meta_get(srv->mvcc, SERVER_IDS_META, buf, &n) == 0 && n == 16) {
    uint64_t m = 0, c = 0;
    for (int i = 0; i < 8; i++) m = m << 8 | buf[i];
    for (int i = 8; i < 16; i++) c = c << 8 | buf[i];
    srv->member_id = m;
    srv->cluster_id = c;
    return 0;
  }
  int rc = ids_for_config(srv->cfg, &srv->member_id, &srv->cluster_id);
  return rc ? rc : save_identity(srv);
}

/* ---- start / stop ------------------------------------------------------------------- */

/* Signal handler: graceful stop. A leader first hands leadership to the most caught-up
 * voter (etcd's TransferLeadership on Stop); a second signal stops at once. */
static void on_signal(uv_signal_t *s, int signum) {
  server_t *srv = s->data;
  LOGI("msg=\"received signal; shutting down\" signal=%d", signum);
  if (!srv->handing_off && !srv->stopping && leadership_handoff(srv, server_stop)) {
    srv->handing_off = true;
    return;
  }
  server_stop(srv);
}

/* mvcc's on_events hook: hands each revision's events to the watch hub (WAL replay at
 * start produces events too, before any watcher exists). */
static void on_mvcc_events(void *ctx, int64_t rev, const Mvccpb__Event *const *events, size_t n) {
  server_t *srv = ctx;
  if (srv->watch) watch_hub_notify(srv->watch, rev, events, n);
}

/* mvcc's events_wanted hook: only build events while some watcher exists. */
static bool hook_events_wanted(void *ctx) {
  server_t *srv = ctx;
  return srv->watch && watch_count(srv->watch) > 0;
}

/* mvcc's prev_wanted hook: events carry prev_kv only while a synced watcher asked for it. */
static bool hook_prev_wanted(void *ctx) {
  server_t *srv = ctx;
  return srv->watch && watch_hub_wants_prev(srv->watch);
}

/* mvcc's lease hooks, forwarded to the lessor (which exists before mvcc_open replays the
 * attachments of live keys). */
static bool hook_lease_exists(void *ctx, int64_t id) { return lease_exists(((server_t *)ctx)->lessor, id); }
static void hook_lease_attach(void *ctx, int64_t id, const uint8_t *key, size_t klen) {
  lease_attach(((server_t *)ctx)->lessor, id, key, klen);
}
static void hook_lease_detach(void *ctx, int64_t id, const uint8_t *key, size_t klen) {
  lease_detach(((server_t *)ctx)->lessor, id, key, klen);
}

/* How long applied batches may wait in the open LMDB transaction: one LMDB commit (which
 * syncs its data pages) then covers every batch of that window. */
#define BACKEND_COMMIT_INTERVAL_MS 20

/* Commits the backend's deferred batches; a failure leaves memory ahead of the backend,
 * so the process stops (the WAL replays the batches at the next start). */
void server_flush_backend(server_t *srv) {
  if (!srv->mvcc || mvcc_flush(srv->mvcc) == 0) return;
  LOGE("msg=\"backend commit failed; stopping (the WAL replays the applied entries at the next start)\"");
  abort();
}

/* Timer: the deferred batches' commit is due. */
static void on_commit_timer(uv_timer_t *t) { server_flush_backend(t->data); }

/* mvcc's on_deferred hook: a batch's commit waits; commit within the interval. */
static void hook_deferred(void *ctx) {
  server_t *srv = ctx;
  if (srv->commit_timer_on)
    uv_timer_start(&srv->commit_timer, on_commit_timer, BACKEND_COMMIT_INTERVAL_MS, 0);
}

/* Opens LMDB and the WAL and replays what the backend has not applied. */
static int open_storage(server_t *srv) {
  cetcd_config_t *cfg = srv->cfg;
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/member/snap", cfg->data_dir);
  int rc = fs_mkdir_durable(path);
  if (rc) {
    LOGE("msg=\"cannot create data dir\" path=%s error=\"%s\"", path, cetcd_strerror(rc));
    return rc;
  }
  /* a db left by `etcdctl snapshot restore` becomes the backend (etcd's WAL moves aside) */
  if ((rc = snapshot_restore_at_start(path, cfg->wal_dir))) return rc;
  mvcc_opts_t mo;
  memset(&mo, 0, sizeof(mo));
  mo.on_events = on_mvcc_events;
  mo.events_wanted = hook_events_wanted;
  mo.prev_wanted = hook_prev_wanted;
  lease_opts_t lo = {.min_ttl = lease_min_ttl(cfg->election_timeout_ms, cfg->heartbeat_interval_ms)};
  srv->lessor = lease_new(&lo);
  mo.lease_exists = hook_lease_exists;
  mo.lease_attach = hook_lease_attach;
  mo.lease_detach = hook_lease_detach;
  mo.hook_ctx = srv;
  mo.commit_interval_ms = BACKEND_COMMIT_INTERVAL_MS;
  mo.on_deferred = hook_deferred;
  uv_timer_init(srv->loop, &srv->commit_timer);
  srv->commit_timer.data = srv;
  srv->commit_timer_on = true;
  rc = mvcc_open(path, &mo, &srv->mvcc);
  if (rc) {
    LOGE("msg=\"cannot open backend\" path=%s/data.mdb error=\"%s\" fix=\"%s\"", path, cetcd_strerror(rc),
         rc == CETCD_ECORRUPT ? "the file is damaged: move the data dir aside and restore it from a snapshot "
                                "(etcdctl snapshot restore), or re-add this member to its cluster"
         : rc == -EBUSY || rc == -EAGAIN ? "another process uses this data dir: stop it first"
                                         : "check the data dir's permissions and free space");
    return rc;
  }
  if ((rc = lease_restore(srv->lessor, srv->mvcc))) {
    LOGE("msg=\"cannot restore leases\" error=\"%s\"", cetcd_strerror(rc));
    return rc;
  }
  srv->watch = watch_hub_new(srv->loop, srv->mvcc);
  watch_hub_set_batch_bytes(srv->watch, cfg->max_request_bytes);
  if ((rc = alarm_store_open(srv->mvcc, &srv->alarms))) { /* before replay: entries may raise alarms */
    LOGE("msg=\"cannot restore alarms\" error=\"%s\"", cetcd_strerror(rc));
    return rc;
  }
  if ((rc = auth_store_open(srv->mvcc, cfg->auth_token_ttl, &srv->auth))) { /* before replay, as alarms */
    LOGE("msg=\"cannot restore the auth store\" error=\"%s\"", cetcd_strerror(rc));
    return rc;
  }
  if (cfg->auth_token_type && !strcmp(cfg->auth_token_type, "jwt")) {
    char why[1024] = "";
    if ((rc = auth_jwt_open(cfg->jwt_sign_method, cfg->jwt_pub_key, cfg->jwt_priv_key, cfg->jwt_ttl_ms, &srv->jwt, why,
                            sizeof(why)))) {
      LOGE("msg=\"invalid --auth-token jwt options\" error=\"%s\" fix=\"give sign-method and readable PEM keys\"",
           why);
      return rc;
    }
    auth_store_set_jwt(srv->auth, srv->jwt);
  }
  /* a single member that became a cluster (membership changes) stays on the Raft path */
  if (!srv->rn && reconfig_has_cluster(srv->mvcc) && (rc = raft_node_create_single(srv, &srv->rn))) return rc;
  const char *walpath = cfg->wal_dir;
  if ((rc = fs_mkdir_durable(walpath))) {
    LOGE("msg=\"cannot create WAL dir\" path=%s error=\"%s\"", walpath, cetcd_strerror(rc));
    return rc;
  }
  replay_ctx_t rctx = {.srv = srv, .consistent_index = mvcc_consistent_index(srv->mvcc)};
  srv->last_index = srv->applied_index = rctx.consistent_index;
  wal_replay_t cbs = {
      .entry = replay_entry, .conf_entry = replay_conf_entry, .hardstate = replay_hardstate, .ctx = &rctx};
  const char *seg_env = getenv("CETCD_TEST_WAL_SEGMENT_BYTES"); /* tests only: small segments */
  wal_options_t wo = {.segment_size = seg_env ? strtoull(seg_env, NULL, 10) : 0,
                      .loop = srv->loop,
                      .on_durable = on_wal_durable,
                      .on_error = on_wal_error,
                      .ctx = srv,
                      .on_fsync = metrics_observe_wal_fsync,
                      .no_fsync = cfg->unsafe_no_fsync,
                      .on_synced = on_wal_synced,
                      .defer_wake = true};
  mvcc_batch_begin(srv->mvcc);
  rc = wal_open(walpath, &wo, &cbs, &srv->wal);
  if (rc) {
    mvcc_batch_abort(srv->mvcc);
    LOGE(
        "msg=\"cannot open WAL\" path=%s error=\"%s\" fix=\"move the data dir aside and restore from a "
        "snapshot, or fix the disk\"",
        walpath, cetcd_strerror(rc));
    return rc;
  }
  if ((rc = mvcc_batch_commit(srv->mvcc, srv->applied_index))) return rc;
  server_apply_space_done(srv);
  if (rctx.replayed)
    LOGI("msg=\"replayed WAL\" entries=%" PRIu64 " applied-index=%" PRIu64, rctx.replayed,
         srv->applied_index);
  if (srv->rn) return 0; /* raft keeps its own hard state */
  uv_prepare_init(srv->loop, &srv->wal_flush);
  srv->wal_flush.data = srv;
  srv->wal_flush_on = true;
  /* A single member elects itself at every start: a new term, like etcd's. */
  srv->term = (rctx.last_term ? rctx.last_term : 1) + 1;
  if ((rc = wal_append_hardstate(srv->wal, srv->term, 0, srv->last_index))) return rc;
  uint64_t none;
  return wal_flush(srv->wal, &none, false) < 0 ? CETCD_ESTOPPED : 0; /* the writer takes it */
}

/* Binds every --listen-client-urls address. */
static int listen_clients(server_t *srv) {
  cetcd_config_t *cfg = srv->cfg;
  grpc_server_opts_t go = {
      .max_recv_msg_bytes = cfg->max_request_bytes + 512 * 1024,
      .max_concurrent_streams = cfg->max_concurrent_streams,
      .http1 = http_handle,
      .http1_ctx = srv,
      .gate = srv->layer->gate,
      .hold = srv->layer->hold,
  };
  if (tls_setup_client(cfg, &srv->client_tls)) return CETCD_EINVAL;
  srv->grpc = grpc_server_new(srv->loop, &go);
  srv->layer->serve_clients(srv->layer->ctx, srv->grpc);
  for (size_t i = 0; i < cfg->n_listen_client_urls; i++) {
    url_t u;
    char err[256];
    int rc = urls_parse_one(cfg->listen_client_urls[i], &u, err, sizeof(err));
    if (rc) {
      LOGE("msg=\"bad listen-client-urls\" error=\"%s\"", err);
      return rc;
    }
    rc = grpc_server_listen(srv->grpc, u.host, u.port, u.is_tls ? srv->client_tls : NULL);
    if (rc) {
      LOGE(
          "msg=\"cannot listen for clients\" address=%s:%d error=\"%s\" fix=\"choose a free port with "
          "--listen-client-urls\"",
          u.host, u.port, uv_strerror(rc));
      urls_free_one(&u);
      return rc;
    }
    if (u.is_tls)
      LOGI("msg=\"serving client requests on %s:%d\"", u.host, u.port);
    else
      LOGI("msg=\"serving insecure client requests on %s:%d, this is strongly discouraged!\"", u.host,
           u.port);
    urls_free_one(&u);
  }
  return 0;
}

/* The spinner's condition: no proposal waits for the WAL writer (spinning on a shared core
 * would only delay the writer's answer). */
static bool nothing_in_flight(void *ctx) {
  server_t *srv = ctx;
  return !srv->pending_head;
}

void server_stores_changed(server_t *srv) { srv->layer->stores_changed(srv->layer->ctx, srv); }

int server_start(server_t *srv, uv_loop_t *loop, cetcd_config_t *cfg, const server_layer_t *layer) {
  memset(srv, 0, sizeof(*srv));
  srv->loop = loop;
  srv->cfg = cfg;
  srv->layer = layer;
  srv->peer_urls = cfg->initial_advertise_peer_urls;
  srv->n_peer_urls = cfg->n_initial_advertise_peer_urls;
  srv->client_urls = cfg->advertise_client_urls;
  srv->n_client_urls = cfg->n_advertise_client_urls;
  LOGI("msg=\"starting cetcd\" etcd-version=%s name=%s data-dir=%s", CETCD_ETCD_VERSION, cfg->name,
       cfg->data_dir);
  int rc = raft_node_create(srv, &srv->rn);
  if (rc) return rc;
  if ((rc = open_storage(srv))) return rc;
  server_stores_changed(srv);
  if (srv->rn && (rc = reconfig_join(srv))) return rc; /* --initial-cluster-state existing */
  if ((rc = load_identity(srv))) return rc;
  if (srv->rn && (rc = reconfig_open(srv))) return rc;
  LOGI("msg=\"starting member\" member-id=%016" PRIx64 " cluster-id=%016" PRIx64 " term=%" PRIu64
       " applied-index=%" PRIu64 " revision=%" PRId64,
       srv->member_id, srv->cluster_id, srv->term, srv->applied_index, mvcc_rev(srv->mvcc));
  /* Leader from the start: every lease gets its TTL again (etcd's Promote). A cluster
   * promotes on winning an election (server/raft_node.c). */
  if (!srv->rn) lease_promote(srv->lessor, cfg->election_timeout_ms);
  lease_expiry_start(srv);
  quota_log_config(cfg);
  grpc_set_call_observer(metrics_grpc_observe);
  if ((rc = listen_clients(srv))) return rc;
  if (srv->wal_flush_on) {
    loop_spin_init(&srv->spin, loop, grpc_server_read_counter(srv->grpc), loop_spin_max_from_env(),
                   nothing_in_flight, srv);
    srv->spin_on = true;
  }
  srv->compactor = compactor_start(srv);
  uv_signal_init(loop, &srv->sigterm);
  uv_signal_init(loop, &srv->sigint);
  srv->sigterm.data = srv->sigint.data = srv;
  uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
  uv_signal_start(&srv->sigint, on_signal, SIGINT);
  uv_timer_init(loop, &srv->sync_timer);
  srv->sync_timer.data = srv;
  uv_timer_start(&srv->sync_timer, on_sync_timer, 1000, 1000);
  leadership_monitor_start(srv);
  if (srv->rn) return raft_node_start(srv->rn); /* readiness lines once a leader is known */
  /* The lines etcd's tooling waits for. */
  LOGI("msg=\"%016" PRIx64 " became leader at term %" PRIu64 "\"", srv->member_id, srv->term);
  LOGI("msg=\"enabled capabilities for version\" cluster-version=%s", CETCD_CLUSTER_VERSION);
  LOGI("msg=\"published local member to cluster through raft\" local-member-id=%016" PRIx64
       " cluster-id=%016" PRIx64,
       srv->member_id, srv->cluster_id);
  LOGI("msg=\"ready to serve client requests\"");
  return 0;
}

/* Closes the WAL and the backend (no backend sync may be running). */
static void close_storage(server_t *srv) {
  srv->close_pending = false;
  srv->layer->storage_closing(srv->layer->ctx); /* snapshot builds let go of the backend */
  wal_close(srv->wal);
  srv->wal = NULL;
  server_flush_backend(srv);
  mvcc_sync(srv->mvcc);
  watch_hub_free(srv->watch);
  srv->watch = NULL;
  alarm_store_free(srv->alarms);
  auth_store_free(srv->auth);
  srv->auth = NULL;
  auth_jwt_free(srv->jwt);
  srv->jwt = NULL;
  srv->alarms = NULL;
  reconfig_close(srv); /* the membership reads and writes the backend */
  mvcc_close(srv->mvcc);
  srv->mvcc = NULL;
  lease_free(srv->lessor);
  srv->lessor = NULL;
  raft_node_free(srv->rn); /* stopped in server_stop; its memory goes once its timer closed */
  srv->rn = NULL;
  server_stores_changed(srv);
  LOGI("msg=\"stopped cetcd\"");
}

/* Final step of shutdown once the gRPC connections are gone. */
static void after_grpc_shutdown(void *arg) {
  server_t *srv = arg;
  srv->layer->clients_gone(srv->layer->ctx); /* the JSON gateway's waiting requests go */
  grpc_server_free(srv->grpc); /* every connection is gone; released once its handles closed */
  srv->grpc = NULL;
  tls_ctx_free(srv->client_tls); /* connections hold their own references */
  srv->client_tls = NULL;
  server_fail_pending(srv, CETCD_ESTOPPED);
  uv_close((uv_handle_t *)&srv->sigterm, NULL);
  uv_close((uv_handle_t *)&srv->sigint, NULL);
  uv_close((uv_handle_t *)&srv->sync_timer, NULL);
  if (srv->commit_timer_on) {
    srv->commit_timer_on = false;
    uv_close((uv_handle_t *)&srv->commit_timer, NULL); /* close_storage commits what waits */
  }
  if (srv->wal_flush_on) {
    srv->wal_flush_on = false;
    uv_close((uv_handle_t *)&srv->wal_flush, NULL); /* wal_close writes what is pending */
  }
  if (srv->sync_work.data)
    srv->close_pending = true; /* sync_done closes storage */
  else
    close_storage(srv);
}

void server_single_path_stop(server_t *srv) {
  if (srv->spin_on) {
    srv->spin_on = false;
    loop_spin_close(&srv->spin);
  }
  if (srv->wal_flush_on) {
    srv->wal_flush_on = false;
    uv_close((uv_handle_t *)&srv->wal_flush, NULL);
  }
}

void server_stop(server_t *srv) {
  if (srv->stopping) return;
  srv->stopping = true;
  if (srv->spin_on) {
    srv->spin_on = false;
    loop_spin_close(&srv->spin); /* it reads the gRPC server's counter */
  }
  raft_node_stop(srv->rn);
  leadership_monitor_stop();
  uv_timer_stop(&srv->sync_timer);
  compactor_stop(srv->compactor); /* freed once its timer closed and its proposal answered */
  srv->compactor = NULL;
  lease_expiry_stop(srv);
  srv->layer->stopping(srv->layer->ctx); /* watch streams never end by themselves */
  grpc_server_shutdown(srv->grpc, 5000, after_grpc_shutdown, srv);
}
