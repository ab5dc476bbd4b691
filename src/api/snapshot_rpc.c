/* Maintenance.Snapshot (see snapshot_rpc.h): the image is built on a libuv worker thread
 * into an unlinked temp file beside the backend, then streamed from the loop thread in
 * 32 KiB blobs (with remaining_bytes) while the call's queued bytes stay under a limit,
 * and finally the sha256 of the image as one more blob, like etcd 3.4's maintenance
 * server. */
#include "api/snapshot_rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "rpc.pb-c.h"
#include "snapshot/snapshot.h"

enum {
  CHUNK = 32 * 1024,       /* etcd's snapshotSendBufferSize */
  HIGH_WATER = 256 * 1024, /* queued bytes above which sending pauses */
  RETRY_MS = 2,            /* poll interval while the client is slow */
};

typedef struct snap_job {
  uv_work_t work;
  uv_timer_t timer;
  grpc_call_t *call; /* NULL once finished */
  mvcc_store_t *mvcc;
  snapshot_member_t member;
  int fd;
  atomic_bool cancel;
  bool building;    /* the worker owns the build */
  bool worker_done; /* guarded by jobs_mu */
  int rc;
  uint64_t size, sent;
  int last_decile;
  struct sha256_ctx sha;
  uint64_t start_ms;
  api_ctx_t *api;        /* whose list (api->snapshot_jobs) holds the job */
  struct snap_job *next; /* that list, loop thread */
} snap_job_t;

/* Worker threads tell the loop thread that a build let go of the store (any server's). */
static pthread_mutex_t jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cv = PTHREAD_COND_INITIALIZER;

/* Opens an anonymous temp file in dir (O_TMPFILE, else mkstemp + unlink). */
static int open_temp(const char *dir) {
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/.snapshot-XXXXXX", dir);
  fd = mkstemp(path);
  if (fd < 0) return -errno;
  unlink(path);
  return fd;
}

/* Frees the job once its timer handle is closed. */
static void job_free_cb(uv_handle_t *h) {
  snap_job_t *j = h->data;
  if (j->fd >= 0) close(j->fd);
  free(j);
}

/* Finishes the call (if still open), unlists the job and frees it. */
static void job_end(snap_job_t *j, int status, const char *msg) {
  if (j->call) {
    grpc_call_set_user(j->call, NULL);
    grpc_call_finish(j->call, status, msg);
    j->call = NULL;
  }
  for (snap_job_t **p = &j->api->snapshot_jobs; *p; p = &(*p)->next)
    if (*p == j) {
      *p = j->next;
      break;
    }
  uv_timer_stop(&j->timer);
  uv_close((uv_handle_t *)&j->timer, job_free_cb);
}

/* Worker thread: writes the image. */
static void build_work(uv_work_t *w) {
  snap_job_t *j = w->data;
  j->rc = snapshot_write_bbolt(j->mvcc, &j->member, j->fd, &j->cancel, &j->size);
  pthread_mutex_lock(&jobs_mu);
  j->worker_done = true;
  pthread_cond_broadcast(&jobs_cv);
  pthread_mutex_unlock(&jobs_mu);
}

static void pump(snap_job_t *j);

/* Timer: the client may have read some of what is queued. */
static void on_timer(uv_timer_t *t) { pump(t->data); }

/* Reads bytes [off, off+n) of the image. */
static int read_at(int fd, uint8_t *p, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r < 0 ? -errno : -EIO;
    got += (size_t)r;
  }
  return 0;
}

/* Sends chunks while the call's queue is short; re-arms the timer when it is not. */
static void pump(snap_job_t *j) {
  static uint8_t buf[CHUNK];
  while (j->call) {
    if (grpc_call_cancelled(j->call)) {
      LOGW("msg=\"snapshot canceled by the client\" sent-bytes=%" PRIu64 " total-bytes=%" PRIu64, j->sent,
           j->size);
      job_end(j, GRPC_CANCELLED, "context canceled");
      return;
    }
    if (grpc_call_pending_bytes(j->call) >= HIGH_WATER) {
      uv_timer_start(&j->timer, on_timer, RETRY_MS, 0);
      return;
    }
    Etcdserverpb__SnapshotResponse resp = ETCDSERVERPB__SNAPSHOT_RESPONSE__INIT;
    if (j->sent == 0) resp.header = api_header(j->call, NULL);
    if (j->sent < j->size) {
      size_t n = j->size - j->sent < CHUNK ? (size_t)(j->size - j->sent) : CHUNK;
      int rc = read_at(j->fd, buf, n, j->sent);
      if (rc) {
        LOGE("msg=\"cannot read snapshot image\" error=\"%s\"", cetcd_strerror(rc));
        job_end(j, GRPC_INTERNAL, "cetcd: cannot read snapshot image");
        return;
      }
      sha256_update(&j->sha, n, buf);
      j->sent += n;
      resp.remaining_bytes = j->size - j->sent;
      resp.blob.data = buf;
      resp.blob.len = n;
      if (grpc_call_send(j->call, &resp.base)) {
        job_end(j, GRPC_CANCELLED, "context canceled");
        return;
      }
      int decile = (int)(j->sent * 10 / j->size);
      if (decile != j->last_decile) {
        j->last_decile = decile;
        if (j->size >= (1u << 20) && decile < 10)
          LOGI("msg=\"sending database snapshot\" sent-bytes=%" PRIu64 " total-bytes=%" PRIu64
               " progress=%d%%",
               j->sent, j->size, decile * 10);
      }
      continue;
    }
    /* the sha256 of everything sent, as the last blob */
    uint8_t sum[SHA256_DIGEST_SIZE];
    unsigned sl = SHA256_DIGEST_SIZE;
    sha256_digest(&j->sha, SHA256_DIGEST_SIZE, sum);
    resp.remaining_bytes = 0;
    resp.blob.data = sum;
    resp.blob.len = sl;
    if (grpc_call_send(j->call, &resp.base)) {
      job_end(j, GRPC_CANCELLED, "context canceled");
      return;
    }
    LOGI("msg=\"sent database snapshot to client\" total-bytes=%" PRIu64 " took-ms=%" PRIu64, j->size,
         uv_now(j->timer.loop) - j->start_ms);
    job_end(j, GRPC_OK, NULL);
    return;
  }
}

/* Loop thread: the image is built (or the build failed or was cancelled). */
static void build_done(uv_work_t *w, int status) {
  snap_job_t *j = w->data;
  j->building = false;
  if (!j->call) { /* cannot happen: the call is finished here only */
    job_end(j, GRPC_CANCELLED, NULL);
    return;
  }
  if (status == UV_ECANCELED || j->rc == CETCD_ECANCELED || atomic_load(&j->cancel) ||
      grpc_call_cancelled(j->call)) {
    LOGI("msg=\"snapshot canceled\"");
    job_end(j, GRPC_CANCELLED, "context canceled");
    return;
  }
  if (j->rc) {
    LOGE("msg=\"cannot build snapshot\" error=\"%s\"", cetcd_strerror(j->rc));
    grpc_call_t *call = j->call;
    j->call = NULL;
    grpc_call_set_user(call, NULL);
    api_finish_error(call, j->rc);
    job_end(j, 0, NULL);
    return;
  }
  LOGI("msg=\"sending database snapshot to client\" total-bytes=%" PRIu64 " size=\"%.1f MiB\"", j->size,
       (double)j->size / (1024.0 * 1024.0));
  sha256_init(&j->sha);
  pump(j);
}

void snapshot_rpc_on_message(grpc_call_t *call, ProtobufCMessage *msg) {
  (void)msg;
  api_ctx_t *api = api_ctx(call);
  server_t *srv = api->srv;
  char dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s/member/snap", api->cfg->data_dir);
  int fd = open_temp(dir);
  if (fd < 0) {
    LOGE("msg=\"cannot create snapshot temp file\" dir=%s error=\"%s\"", dir, strerror(-fd));
    grpc_call_finish(call, GRPC_INTERNAL, "cetcd: cannot create snapshot file");
    return;
  }
  snap_job_t *j = xcalloc(1, sizeof(*j));
  j->call = call;
  j->mvcc = api->mvcc;
  j->fd = fd;
  j->last_decile = 0;
  j->member = (snapshot_member_t){.id = srv->member_id,
                                  .name = api->cfg->name,
                                  .peer_urls = srv->peer_urls,
                                  .n_peer_urls = srv->n_peer_urls,
                                  .client_urls = srv->client_urls,
                                  .n_client_urls = srv->n_client_urls};
  atomic_init(&j->cancel, false);
  j->start_ms = uv_now(api->loop);
  uv_timer_init(api->loop, &j->timer);
  j->timer.data = j;
  j->work.data = j;
  j->building = true;
  j->api = api;
  j->next = api->snapshot_jobs;
  api->snapshot_jobs = j;
  grpc_call_set_user(call, j);
  LOGI("msg=\"building database snapshot\" peer=%s", grpc_call_peer(call));
  server_flush_backend(srv); /* the worker's read view sees committed batches only */
  uv_queue_work(api->loop, &j->work, build_work, build_done);
}

void snapshot_rpc_on_cancel(grpc_call_t *call) {
  snap_job_t *j = grpc_call_user(call);
  if (!j) return;
  if (j->building) {
    atomic_store(&j->cancel, true); /* build_done finishes the call */
    return;
  }
  LOGW("msg=\"snapshot canceled by the client\" sent-bytes=%" PRIu64 " total-bytes=%" PRIu64, j->sent,
       j->size);
  job_end(j, GRPC_CANCELLED, "context canceled");
}

void snapshot_rpc_shutdown(api_ctx_t *api) {
  for (snap_job_t *j = api->snapshot_jobs; j; j = j->next)
    if (j->building) atomic_store(&j->cancel, true);
  pthread_mutex_lock(&jobs_mu);
  for (snap_job_t *j = api->snapshot_jobs; j; j = j->next)
    while (j->building && !j->worker_done) pthread_cond_wait(&jobs_cv, &jobs_mu);
  pthread_mutex_unlock(&jobs_mu);
}
