/* Raft snapshot transfer over the peer port (see peer_snapshot.h). */

/* The gRPC client is compiled into the server under other names (see peer.c). */
#define grpc_client_new peer_gc_new
#define grpc_client_free peer_gc_free
#define grpc_client_run_sync peer_gc_run_sync
#define grpc_cstream_open peer_gc_cstream_open
#define grpc_cstream_send peer_gc_cstream_send
#define grpc_cstream_cancel peer_gc_cstream_cancel
#define grpc_cstream_set_idle_timeout peer_gc_cstream_set_idle_timeout
#include "server/peer_snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "client/transport/grpc_client.h"
#include "raft/raft.h"
#include "raftsnap.pb-c.h"
#include "server/peer.h"

#define PSNAP_PATH "/cetcdraftpb.Raft/Snapshot"
#define PSNAP_IDLE_TIMEOUT_MS 30000 /* a receiver that stops acknowledging fails the transfer */

/* ==== sender ==== */

struct psnap_send {
  uv_loop_t *loop;
  uv_async_t done_async; /* loop: the transfer ended */
  grpc_client_t *gc;
  grpc_cstream_t *st; /* I/O thread */
  int fd;
  uint64_t total, sent, acked; /* I/O thread */
  uint8_t sha[32];
  uint8_t *msg;
  size_t mlen;
  int fail_mode;            /* test hook: 1 corrupt a byte, 2 cancel after the first ack */
  bool installed, finished; /* I/O thread */
  atomic_bool cancelled;
  int err;
  char why[160];
  uint64_t to;
  psnap_done_fn done;
  void *ctx;
};

static atomic_int psnap_sends; /* transfers started by this process (test hook) */

/* I/O thread: the transfer ended with err (0: installed); the loop hears about it. */
static void send_finish(psnap_send_t *ps, int err, const char *why) {
  if (ps->finished) return;
  ps->finished = true;
  ps->err = err;
  snprintf(ps->why, sizeof(ps->why), "%s", why);
  if (ps->st) grpc_cstream_cancel(ps->st);
  ps->st = NULL;
  if (!atomic_load(&ps->cancelled)) uv_async_send(&ps->done_async);
}

/* I/O thread: sends chunks while the unacknowledged bytes fit in the window. */
static void pump(psnap_send_t *ps) {
  uint8_t *data = NULL, *buf = NULL;
  while (ps->st && ps->sent < ps->total && ps->sent - ps->acked < PSNAP_WINDOW_BYTES) {
    if (ps->fail_mode == 2 && ps->sent) break; /* the hook cancels once this chunk is acked */
    uint64_t left = ps->total - ps->sent;
    size_t n = left < PSNAP_CHUNK_BYTES ? (size_t)left : PSNAP_CHUNK_BYTES;
    if (ps->fail_mode == 2 && ps->sent == 0 && n > 1) n /= 2; /* never the whole image */
    data = xrealloc(data, n);
    ssize_t r = pread(ps->fd, data, n, (off_t)ps->sent);
    if (r != (ssize_t)n) {
      send_finish(ps, r < 0 ? -errno : CETCD_ECORRUPT, "cannot read the snapshot image");
      break;
    }
    bool last = ps->sent + n == ps->total;
    Cetcdraftsnap__Chunk c = CETCDRAFTSNAP__CHUNK__INIT;
    if (ps->sent == 0) {
      c.message = (ProtobufCBinaryData){ps->mlen, ps->msg};
      c.total = ps->total;
    }
    if (ps->fail_mode == 1 && ps->sent == 0) data[n / 2] ^= 0x5a;
    c.data = (ProtobufCBinaryData){n, data};
    if (last) {
      c.sha256 = (ProtobufCBinaryData){32, ps->sha};
      c.last = true;
    }
    size_t len = cetcdraftsnap__chunk__get_packed_size(&c);
    buf = xrealloc(buf, len);
    cetcdraftsnap__chunk__pack(&c, buf);
    if (grpc_cstream_send(ps->st, buf, len, last)) {
      send_finish(ps, CETCD_EUNAVAILABLE, "cannot queue a chunk");
      break;
    }
    ps->sent += n;
  }
  free(data);
  free(buf);
}

/* I/O thread: the receiver acknowledged bytes, or the install. */
static int on_ack(void *ctx, grpc_cstream_t *s, const uint8_t *msg, size_t len) {
  (void)s;
  psnap_send_t *ps = ctx;
  Cetcdraftsnap__Ack *a = cetcdraftsnap__ack__unpack(NULL, len, msg);
  if (!a) return 1;
  if (a->received > ps->acked) ps->acked = a->received;
  if (a->done) ps->installed = true;
  cetcdraftsnap__ack__free_unpacked(a, NULL);
  if (ps->fail_mode == 2) {
    send_finish(ps, CETCD_ECANCELED, "transfer broken midway by CETCD_TEST_SNAPSHOT_SEND_FAILURES");
    return 0; /* send_finish cancelled the stream */
  }
  pump(ps);
  return 0;
}

/* I/O thread: the stream ended. */
static void on_close(void *ctx, grpc_cstream_t *s, const grpc_close_info_t *info) {
  (void)s;
  psnap_send_t *ps = ctx;
  ps->st = NULL; /* freed by the transport after this returns */
  if (ps->installed && info->err == 0 && info->status == 0) {
    send_finish(ps, 0, "");
    return;
  }
  send_finish(ps, info->err ? info->err : CETCD_EGRPC, info->message);
}

static const grpc_cstream_cbs_t send_cbs = {on_ack, on_close};

/* I/O thread: opens the stream and sends the first window. */
static void start_io(grpc_client_t *gc, void *arg) {
  psnap_send_t *ps = arg;
  ps->st = grpc_cstream_open(gc, PSNAP_PATH, 0, 0, &send_cbs, ps);
  if (!ps->st) {
    send_finish(ps, CETCD_ENOMEM, "cannot open the snapshot stream");
    return;
  }
  grpc_cstream_set_idle_timeout(ps->st, PSNAP_IDLE_TIMEOUT_MS);
  pump(ps);
}

/* libuv: the done handle closed; the transfer's memory goes. */
static void send_closed(uv_handle_t *h) { free(h->data); }

/* Joins the I/O thread and frees ps (loop thread). */
static void send_release(psnap_send_t *ps) {
  atomic_store(&ps->cancelled, true);
  grpc_client_free(ps->gc);
  close(ps->fd);
  free(ps->msg);
  uv_close((uv_handle_t *)&ps->done_async, send_closed);
}

/* Loop thread: reports the end of the transfer. */
static void on_send_done(uv_async_t *a) {
  psnap_send_t *ps = a->data;
  if (ps->err)
    LOGW("msg=\"failed to send database snapshot\" remote-peer-id=%016" PRIx64 " bytes=%" PRIu64
         " error=\"%s\" detail=\"%s\"",
         ps->to, ps->total, cetcd_strerror(ps->err), ps->why);
  else
    LOGI("msg=\"sent database snapshot\" remote-peer-id=%016" PRIx64 " bytes=%" PRIu64, ps->to, ps->total);
  ps->done(ps->ctx, ps->to, ps->err);
  send_release(ps);
}

/* malloc adapters for the client transport. */
static void *ps_malloc(size_t n) { return malloc(n); }
static void *ps_realloc(void *p, size_t n) { return realloc(p, n); }
static void ps_free(void *p) { free(p); }

int psnap_send_start(uv_loop_t *loop, const char *peer_url, uint64_t to, const char *path, uint64_t size,
                     const uint8_t sha256[32], const uint8_t *msg, size_t len, psnap_done_fn done, void *ctx,
                     psnap_send_t **out) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  psnap_send_t *ps = xcalloc(1, sizeof(*ps));
  ps->loop = loop;
  ps->fd = fd;
  ps->total = size;
  memcpy(ps->sha, sha256, 32);
  ps->msg = xmalloc(len ? len : 1);
  memcpy(ps->msg, msg, len);
  ps->mlen = len;
  ps->to = to;
  ps->done = done;
  ps->ctx = ctx;
  const char *hook = getenv("CETCD_TEST_SNAPSHOT_SEND_FAILURES");
  int k = atomic_fetch_add(&psnap_sends, 1) + 1;
  if (hook && k <= atoi(hook)) ps->fail_mode = k % 2 ? 1 : 2;
  const char *eps[1] = {peer_url};
  grpc_client_config_t cfg = {.endpoints = eps,
                              .n_endpoints = 1,
                              .dial_timeout_ms = 1000,
                              .max_recv_bytes = 1u << 20,
                              .mem = {ps_malloc, ps_realloc, ps_free}};
  peer_client_tls(&cfg);
  int rc = grpc_client_new(&cfg, &ps->gc);
  if (rc) {
    close(fd);
    free(ps->msg);
    free(ps);
    return rc;
  }
  uv_async_init(loop, &ps->done_async, on_send_done);
  ps->done_async.data = ps;
  LOGI("msg=\"sending database snapshot\" remote-peer-id=%016" PRIx64 " bytes=%" PRIu64 "%s", to, size,
       ps->fail_mode ? " test-hook=break-midway" : "");
  grpc_client_run_sync(ps->gc, start_io, ps);
  *out = ps;
  return 0;
}

void psnap_cancel(psnap_send_t *ps) { send_release(ps); }

/* ==== receiver ==== */

typedef struct psnap_recv {
  int fd;
  char path[PATH_MAX];
  uint64_t total, got, index, from;
  struct sha256_ctx h;
  uint8_t *msg;
  size_t mlen;
  uint64_t t0;
} psnap_recv_t;

static struct {
  const char *dir;
  psnap_install_fn install;
  void *ctx;
  bool busy; /* one transfer at a time */
} R;

/* Closes and removes the partial image and frees rv. */
static void recv_drop(psnap_recv_t *rv) {
  if (rv->fd >= 0) close(rv->fd);
  unlink(rv->path);
  free(rv->msg);
  free(rv);
  R.busy = false;
}

/* Ends the call with an error; the live backend was not touched. */
static void recv_fail(grpc_call_t *call, psnap_recv_t *rv, int status, const char *why) {
  if (rv) {
    LOGW(
        "msg=\"failed to receive database snapshot; keeping the current backend\" "
        "remote-snapshot-sender-id=%016" PRIx64 " incoming-snapshot-index=%" PRIu64 " received-bytes=%" PRIu64
        " error=\"%s\"",
        rv->from, rv->index, rv->got, why);
    recv_drop(rv);
  }
  grpc_call_set_user(call, NULL);
  grpc_call_finish(call, status, why);
}

/* First chunk: checks the raft message and opens the temporary image file. */
static psnap_recv_t *recv_open(grpc_call_t *call, const Cetcdraftsnap__Chunk *c) {
  if (!R.install) {
    recv_fail(call, NULL, GRPC_UNAVAILABLE, "raft is not running");
    return NULL;
  }
  if (R.busy) {
    recv_fail(call, NULL, GRPC_UNAVAILABLE, "a snapshot is being received already");
    return NULL;
  }
  arena_t a;
  arena_init(&a);
  raft_msg_t m;
  int bad =
      raft_msg_decode(c->message.data, c->message.len, &a, &m) || m.type != RAFT_MSG_SNAP || !m.snapshot;
  psnap_recv_t *rv = NULL;
  if (!bad) {
    rv = xcalloc(1, sizeof(*rv));
    rv->index = m.snapshot->index;
    rv->from = m.from;
  }
  arena_destroy(&a);
  if (bad) {
    recv_fail(call, NULL, GRPC_INVALID_ARGUMENT, "the first chunk carries no raft snapshot message");
    return NULL;
  }
  R.busy = true;
  rv->total = c->total;
  rv->mlen = c->message.len;
  rv->msg = xmalloc(rv->mlen);
  memcpy(rv->msg, c->message.data, rv->mlen);
  rv->t0 = uv_hrtime();
  sha256_init(&rv->h);
  snprintf(rv->path, sizeof(rv->path), "%s/%016" PRIx64 ".db.tmp", R.dir, rv->index);
  rv->fd = open(rv->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (rv->fd < 0) {
    recv_fail(call, rv, GRPC_INTERNAL, strerror(errno));
    return NULL;
  }
  grpc_call_set_user(call, rv);
  LOGI("msg=\"receiving database snapshot\" remote-snapshot-sender-id=%016" PRIx64
       " incoming-snapshot-index=%" PRIu64 " incoming-snapshot-size-bytes=%" PRIu64,
       rv->from, rv->index, rv->total);
  return rv;
}

/* Writes n bytes at p to fd. Returns 0 or -errno. */
static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Last chunk: verifies, syncs and installs the image. */
static void recv_finish(grpc_call_t *call, psnap_recv_t *rv, const Cetcdraftsnap__Chunk *c) {
  uint8_t d[SHA256_DIGEST_SIZE];
  sha256_digest(&rv->h, sizeof(d), d);
  if (rv->got != rv->total) {
    recv_fail(call, rv, GRPC_DATA_LOSS, "snapshot size mismatch");
    return;
  }
  if (c->sha256.len != sizeof(d) || memcmp(d, c->sha256.data, sizeof(d))) {
    recv_fail(call, rv, GRPC_DATA_LOSS, "snapshot checksum mismatch");
    return;
  }
  if (fsync(rv->fd)) {
    recv_fail(call, rv, GRPC_INTERNAL, strerror(errno));
    return;
  }
  close(rv->fd);
  rv->fd = -1;
  LOGI("msg=\"received and saved database snapshot\" remote-snapshot-sender-id=%016" PRIx64
       " incoming-snapshot-index=%" PRIu64 " incoming-snapshot-size-bytes=%" PRIu64 " download-took=%.3fms",
       rv->from, rv->index, rv->total, (double)(uv_hrtime() - rv->t0) / 1e6);
  int rc = R.install(R.ctx, rv->path, rv->msg, rv->mlen);
  if (rc) {
    recv_fail(call, rv, GRPC_INTERNAL, cetcd_strerror(rc));
    return;
  }
  Cetcdraftsnap__Ack ack = CETCDRAFTSNAP__ACK__INIT;
  ack.received = rv->got;
  ack.done = true;
  grpc_call_send(call, &ack.base);
  recv_drop(rv); /* removes the image unless the install renamed it into place */
  grpc_call_set_user(call, NULL);
  grpc_call_finish(call, GRPC_OK, NULL);
}

/* One chunk of a transfer. */
static void on_chunk(grpc_call_t *call, ProtobufCMessage *msg) {
  const Cetcdraftsnap__Chunk *c = (const Cetcdraftsnap__Chunk *)msg;
  psnap_recv_t *rv = grpc_call_user(call);
  if (!rv && !(rv = recv_open(call, c))) return;
  if (rv->got + c->data.len > rv->total) {
    recv_fail(call, rv, GRPC_DATA_LOSS, "snapshot size mismatch");
    return;
  }
  int rc = write_all(rv->fd, c->data.data, c->data.len);
  if (rc) {
    recv_fail(call, rv, GRPC_INTERNAL, strerror(-rc));
    return;
  }
  sha256_update(&rv->h, c->data.len, c->data.data);
  rv->got += c->data.len;
  if (c->last) return recv_finish(call, rv, c);
  Cetcdraftsnap__Ack ack = CETCDRAFTSNAP__ACK__INIT;
  ack.received = rv->got;
  grpc_call_send(call, &ack.base);
}

/* The sender half-closed before the last chunk. */
static void on_chunks_end(grpc_call_t *call) {
  psnap_recv_t *rv = grpc_call_user(call);
  if (rv) recv_fail(call, rv, GRPC_DATA_LOSS, "the stream ended before the last chunk");
}

/* The sender went away midway. */
static void on_recv_cancel(grpc_call_t *call) {
  psnap_recv_t *rv = grpc_call_user(call);
  recv_fail(call, rv, GRPC_CANCELLED, "the sender went away midway");
}

static const grpc_method_t psnap_methods[] = {
    {PSNAP_PATH, GRPC_BIDI_STREAM, &cetcdraftsnap__chunk__descriptor, on_chunk, on_chunks_end,
     on_recv_cancel},
};

void psnap_register(grpc_server_t *srv, const char *dir, psnap_install_fn install, void *ctx) {
  R.dir = dir;
  R.install = install;
  R.ctx = ctx;
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    size_t n = strlen(de->d_name);
    if (n <= 7 || strcmp(de->d_name + n - 7, ".db.tmp")) continue;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
    if (unlink(path) == 0) LOGI("msg=\"removed an unfinished snapshot image\" path=%s", path);
  }
  if (d) closedir(d);
  grpc_server_add_methods(srv, psnap_methods, sizeof(psnap_methods) / sizeof(*psnap_methods), NULL);
}

void psnap_unregister(void) {
  R.install = NULL;
  R.ctx = NULL;
}
