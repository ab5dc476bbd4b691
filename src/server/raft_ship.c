/* Raft snapshots between members (see raft_ship.h). */
#include "server/raft_ship.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "grpc/grpc_server.h"
#include "lease/lease.h"
#include "mvcc/mvcc.h"
#include "server/alarm.h"
#include "server/peer_snapshot.h"
#include "server/reconfig.h"
#include "watch/watch.h"

typedef struct rship_job {
  struct rship_job *next;
  rship_t *sh;
  uv_work_t work;
  uint64_t to, index;
  char *url;
  buf_t msg; /* the encoded MsgSnap */
  char path[PATH_MAX];
  uint64_t size, t0;
  uint8_t sha[SHA256_DIGEST_SIZE];
  int err;
  psnap_send_t *send;
} rship_job_t;

struct rship {
  server_t *srv;
  raft_node_t *rn;
  rsnap_state_t *st;
  rship_job_t *jobs;
  bool stopped;
};

rship_t *rship_new(server_t *srv, raft_node_t *rn, rsnap_state_t *st) {
  rship_t *sh = xcalloc(1, sizeof(*sh));
  sh->srv = srv;
  sh->rn = rn;
  sh->st = st;
  return sh;
}

/* Unlinks job from its shipper's list, removes its image and frees it. */
static void job_release(rship_job_t *job) {
  rship_t *sh = job->sh;
  for (rship_job_t **pp = &sh->jobs; *pp; pp = &(*pp)->next)
    if (*pp == job) {
      *pp = job->next;
      break;
    }
  unlink(job->path);
  buf_free(&job->msg);
  free(job->url);
  free(job);
}

/* job_release, then frees a stopped shipper once no job is left. */
static void job_free(rship_job_t *job) {
  rship_t *sh = job->sh;
  job_release(job);
  if (sh->stopped && !sh->jobs) free(sh);
}

/* The transfer ended: raft hears whether the follower has the snapshot now. */
static void job_done(rship_job_t *job, int err) {
  rship_t *sh = job->sh;
  if (!sh->stopped) {
    sh->st->inflight--;
    if (!err)
      LOGI("msg=\"sent merged snapshot\" from=%016" PRIx64 " to=%016" PRIx64 " bytes=%" PRIu64 " took=%.3fs",
           sh->srv->member_id, job->to, job->size, (double)(uv_hrtime() - job->t0) / 1e9);
    raft_node_report_snapshot(sh->rn, job->to, err == 0);
  }
  job_free(job);
}

/* psnap_done_fn: the stream ended. */
static void on_sent(void *ctx, uint64_t to, int err) {
  (void)to;
  rship_job_t *job = ctx;
  job->send = NULL;
  job_done(job, err);
}

/* Worker thread: writes a compacting copy of the backend and hashes it. */
static void build_image(uv_work_t *w) {
  rship_job_t *job = w->data;
  int fd = open(job->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    job->err = -errno;
    return;
  }
  job->err = mvcc_copy_to_fd(job->sh->srv->mvcc, fd);
  struct sha256_ctx h;
  sha256_init(&h);
  uint8_t *b = xmalloc(1u << 20);
  off_t off = 0;
  while (!job->err) {
    ssize_t r = pread(fd, b, 1u << 20, off);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) job->err = -errno;
    if (r <= 0) break;
    sha256_update(&h, (size_t)r, b);
    off += r;
  }
  free(b);
  close(fd);
  sha256_digest(&h, sizeof(job->sha), job->sha);
  job->size = (uint64_t)off;
}

/* Loop thread: the image is ready; stream it. */
static void image_built(uv_work_t *w, int status) {
  rship_job_t *job = w->data;
  rship_t *sh = job->sh;
  if (sh->stopped) {
    job_free(job);
    return;
  }
  int err = status ? status : job->err;
  if (!err)
    err = psnap_send_start(sh->srv->loop, job->url, job->to, job->path, job->size, job->sha, job->msg.data,
                           job->msg.len, on_sent, job, &job->send);
  if (err) {
    LOGW("msg=\"failed to send database snapshot\" remote-peer-id=%016" PRIx64 " error=\"%s\"", job->to,
         cetcd_strerror(err));
    job_done(job, err);
  }
}

void rship_send(rship_t *sh, const raft_msg_t *m, const char *peer_url) {
  for (rship_job_t *j = sh->jobs; j; j = j->next)
    if (j->to == m->to) return;
  rship_job_t *job = xcalloc(1, sizeof(*job));
  job->sh = sh;
  job->to = m->to;
  job->index = m->snapshot->index;
  job->url = xstrdup(peer_url);
  job->t0 = uv_hrtime();
  raft_msg_encode(m, &job->msg);
  snprintf(job->path, sizeof(job->path), "%s/send-%016" PRIx64 ".db.tmp", sh->st->dir, m->to);
  job->next = sh->jobs;
  sh->jobs = job;
  sh->st->inflight++;
  LOGI("msg=\"sending merged snapshot\" from=%016" PRIx64 " to=%016" PRIx64 " snapshot-index=%" PRIu64
       " applied-index=%" PRIu64,
       sh->srv->member_id, m->to, job->index, sh->srv->applied_index);
  job->work.data = job;
  server_flush_backend(sh->srv); /* the copy is of committed batches only */
  uv_queue_work(sh->srv->loop, &job->work, build_image, image_built);
}

/* After the backend was replaced: everything cached from it is loaded again. */
static void reload_from_backend(server_t *srv, int64_t old_rev) {
  alarm_store_t *alarms = NULL;
  int rc = alarm_store_open(srv->mvcc, &alarms);
  if (rc) {
    LOGE("msg=\"cannot restore alarms from the snapshot\" error=\"%s\"", cetcd_strerror(rc));
  } else {
    alarm_store_free(srv->alarms);
    srv->alarms = alarms;
  }
  auth_store_t *auth = NULL;
  if ((rc = auth_store_open(srv->mvcc, srv->cfg->auth_token_ttl, &auth))) {
    LOGE("msg=\"cannot restore the auth store from the snapshot\" error=\"%s\"", cetcd_strerror(rc));
  } else {
    auth_store_free(srv->auth);
    srv->auth = auth;
    server_stores_changed(srv);
    if (srv->jwt) auth_store_set_jwt(auth, srv->jwt);
  }
  watch_hub_restore(srv->watch, old_rev);
  srv->applied_index = mvcc_consistent_index(srv->mvcc);
  reconfig_reload(srv);                               /* the members buckets came with the snapshot */
  if (srv->grpc) grpc_server_recheck_held(srv->grpc); /* tokens of skipped entries are unknown */
}

/* Raft will restore the snapshot at index: swaps the image in, unless our backend is ahead
 * of it (a later leader may have applied less than the one that sent us a snapshot before;
 * the state never goes back). Returns 0 or a negative code (the backend is unchanged). */
static int install_image(rship_t *sh, const char *image, uint64_t index, uint64_t term) {
  server_t *srv = sh->srv;
  uint64_t image_ci = 0;
  int rc = mvcc_file_consistent_index(image, &image_ci);
  if (rc) return rc;
  if (image_ci < srv->applied_index) {
    LOGI("msg=\"keeping the current backend: it is ahead of the snapshot image\" applied-index=%" PRIu64
         " image-applied-index=%" PRIu64,
         srv->applied_index, image_ci);
    return 0;
  }
  LOGI("msg=\"applying snapshot\" current-snapshot-index=%" PRIu64 " current-applied-index=%" PRIu64
       " incoming-leader-snapshot-index=%" PRIu64 " incoming-leader-snapshot-term=%" PRIu64,
       sh->st->snap_index, srv->applied_index, index, term);
  uint8_t ids[16]; /* the image holds the sender's ids: ours go in before the swap */
  server_identity_record(srv, ids);
  if ((rc = mvcc_file_put_meta(image, SERVER_IDS_META, ids, sizeof(ids)))) {
    LOGE("msg=\"cannot prepare the snapshot image; keeping the current backend\" error=\"%s\"",
         cetcd_strerror(rc));
    return rc;
  }
  int64_t old_rev = mvcc_rev(srv->mvcc);
  lease_reset(srv->lessor); /* the new key index attaches its keys again */
  rc = mvcc_replace_file(srv->mvcc, image);
  int lr = lease_restore(srv->lessor, srv->mvcc);
  if (rc || lr) {
    LOGE("msg=\"cannot install the snapshot; keeping the current backend\" error=\"%s\"",
         cetcd_strerror(rc ? rc : lr));
    return rc ? rc : lr;
  }
  reload_from_backend(srv, old_rev);
  LOGI("msg=\"applied snapshot\" incoming-leader-snapshot-index=%" PRIu64 " applied-index=%" PRIu64
       " revision=%" PRId64,
       index, srv->applied_index, mvcc_rev(srv->mvcc));
  return 0;
}

int rship_install(void *ctx, const char *image, const uint8_t *msg, size_t len) {
  rship_t *sh = ctx;
  arena_t a;
  arena_init(&a);
  raft_msg_t m;
  int rc = raft_msg_decode(msg, len, &a, &m);
  uint64_t index = rc ? 0 : m.snapshot->index, term = rc ? 0 : m.snapshot->term;
  arena_destroy(&a);
  if (rc) return rc;
  uint64_t commit = 0;
  raft_node_info(sh->rn, NULL, &commit, NULL);
  if (index > commit && (rc = install_image(sh, image, index, term))) return rc; /* else raft ignores it */
  raft_node_step(sh->rn, msg, len);
  return 0;
}

void rship_stop(rship_t *sh) {
  if (!sh || sh->stopped) return;
  sh->stopped = true;
  for (rship_job_t *j = sh->jobs, *next; j; j = next) {
    next = j->next;
    if (j->send) {
      psnap_cancel(j->send);
      job_release(j);
    }
  }
  if (!sh->jobs) free(sh);
}
