/* The WAL's public face: open (replay, tail repair, thread start), the appends on the
 * loop thread, the hand-back of durability through uv_async, and close. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fsutil.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "wal/wal_int.h"

/* ------------------------------------------------------------------------------------
 * Open and close
 * ---------------------------------------------------------------------------------- */

static void async_cb(uv_async_t *h);
static void close_cb(uv_handle_t *h);

static void free_wal(wal_t *w) {
  for (int i = 0; i < 2; i++) buf_free(&w->batches[i].buf);
  free(w->segs);
  free(w->dir);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->wake);
  pthread_cond_destroy(&w->done);
  free(w);
}

static void close_files(wal_t *w) {
  if (w->fd >= 0) close(w->fd);
  if (w->dirfd >= 0) close(w->dirfd); /* also drops the flock */
  w->fd = w->dirfd = -1;
}

/* Makes the torn tail of the last segment a clean end of log: the last batch is
 * rewritten to end at end_off and the bytes after it are zeroed. */
static int repair_tail(wal_t *w, const wal_replay_result_t *res) {
  if (res->fix_batch) {
    uint8_t rec[WAL_BATCH_REC_SIZE];
    wal_batch_record(rec, res->batch_off, res->end_off - res->batch_off - WAL_BATCH_REC_SIZE,
                     w->segs[w->nsegs - 1].seq);
    ssize_t n = pwrite(w->fd, rec, sizeof(rec), (off_t)res->batch_off);
    if (n < 0) return -errno;
    if (n != (ssize_t)sizeof(rec)) return -EIO;
  }
  if (res->tail_dirty)
    return wal_segment_cut(w->fd, res->end_off, res->end_off > w->seg_size ? res->end_off : w->seg_size);
  return wal_fsync_fd(w->fd, true);
}

/* Sets up the files: directory, lock, replay, tail repair, current segment. */
static int open_files(wal_t *w, uint64_t first_index, const wal_replay_t *replay) {
  int rc = fs_mkdir_durable(w->dir);
  if (rc) {
    LOGE("wal: cannot create directory dir=%s err=\"%s\"", w->dir, strerror(-rc));
    return rc;
  }
  w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (w->dirfd < 0) {
    rc = -errno;
    LOGE("wal: cannot open directory dir=%s err=\"%s\"", w->dir, strerror(-rc));
    return rc;
  }
  if (flock(w->dirfd, LOCK_EX | LOCK_NB) < 0) {
    rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
    LOGE("wal: cannot lock directory (in use by another process?) dir=%s err=\"%s\"", w->dir, strerror(-rc));
    return rc;
  }
  rc = wal_segment_list(w->dirfd, w->dir, &w->segs, &w->nsegs);
  if (rc) return rc;
  w->capsegs = w->nsegs;
  if (w->nsegs == 0) {
    w->segs = xrealloc(w->segs, 8 * sizeof(*w->segs));
    w->capsegs = 8;
    w->segs[0] = (wal_seg_t){.seq = 0, .first_index = first_index};
    rc = wal_segment_create(w->dirfd, w->dir, 0, first_index, w->seg_size, &w->fd);
    if (rc) return rc;
    w->nsegs = 1;
    w->off = w->zeroed = 0;
    return 0;
  }

  wal_replay_result_t res;
  rc = wal_replay_all(w->dirfd, w->dir, w->segs, w->nsegs, replay, &res);
  if (rc) return rc;
  w->has_index = res.has_index;
  w->last_index = res.last_index;
  w->has_hs = res.has_hs;
  memcpy(w->hs, res.hs, sizeof(w->hs));
  w->has_snap = res.has_snap;
  memcpy(w->snap, res.snap, sizeof(w->snap));
  rc = wal_segment_open(w->dirfd, w->dir, &w->segs[w->nsegs - 1], &w->fd);
  if (rc) return rc;
  w->off = w->zeroed = res.end_off;
  if (res.fix_batch || res.tail_dirty) {
    rc = repair_tail(w, &res);
    if (rc) {
      LOGE("wal: cannot truncate torn tail dir=%s offset=%" PRIu64 " err=\"%s\"", w->dir, res.end_off,
           strerror(-rc));
      return rc;
    }
  }
  if (wal_rotation_due(w)) return wal_writer_rotate(w);
  return 0;
}

int wal_open(const char *dir, const wal_options_t *opts, const wal_replay_t *replay, wal_t **out) {
  static const wal_options_t defaults;
  if (!opts) opts = &defaults;
  if (!dir || !*dir || !out || (opts->segment_size && opts->segment_size < 4096) ||
      (opts->loop && ((!opts->on_durable && !opts->on_synced) || !opts->on_error)))
    return CETCD_EINVAL;
  wal_t *w = xcalloc(1, sizeof(*w));
  w->dir = xstrdup(dir);
  w->fd = w->dirfd = -1;
  w->seg_size = opts->segment_size ? opts->segment_size : WAL_DEFAULT_SEGMENT_SIZE;
  w->room = w->seg_size / 2 < WAL_ROOM_MAX ? w->seg_size / 2 : WAL_ROOM_MAX;
  w->loop = opts->loop;
  w->on_durable = opts->on_durable;
  w->on_error = opts->on_error;
  w->on_synced = opts->on_synced;
  w->on_fsync = opts->on_fsync;
  w->no_fsync = opts->no_fsync;
  w->defer_wake = opts->defer_wake && opts->loop;
  w->ctx = opts->ctx;
  w->pending = &w->batches[0];
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->wake, NULL);
  pthread_cond_init(&w->done, NULL);

  int rc = open_files(w, opts->first_index, replay);
  if (rc) goto fail;
  w->nsegs_pub = w->nsegs;
  w->off_pub = w->off;
  LOGI("wal: opened dir=%s segments=%zu offset=%" PRIu64 " last-index=%" PRIu64, w->dir, w->nsegs, w->off,
       w->last_index);
  if (w->loop) {
    rc = uv_async_init(w->loop, &w->async, async_cb);
    if (rc) goto fail;
    w->async.data = w;
  }
  /* The writer runs with every signal blocked, so signals go to the loop thread and its
   * system calls are not interrupted. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = -pthread_create(&w->thread, NULL, wal_writer_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc) {
    LOGE("wal: cannot start writer thread dir=%s err=\"%s\"", w->dir, strerror(-rc));
    if (!w->loop) goto fail;
    close_files(w);
    uv_close((uv_handle_t *)&w->async, close_cb); /* frees w once the loop runs */
    return rc;
  }
  pthread_setname_np(w->thread, "wal-writer");
  *out = w;
  return 0;
fail:
  close_files(w);
  free_wal(w);
  return rc;
}

static void close_cb(uv_handle_t *h) { free_wal(h->data); }

int wal_close(wal_t *w) {
  pthread_mutex_lock(&w->mu);
  w->stopping = true;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  int err = w->err;
  close_files(w);
  if (w->loop) {
    uv_close((uv_handle_t *)&w->async, close_cb);
  } else {
    free_wal(w);
  }
  return err;
}

/* ------------------------------------------------------------------------------------
 * Appends (loop thread) and the hand-back from the writer
 * ---------------------------------------------------------------------------------- */

/* Wakes the writer if it sleeps. Called with mu held. */
static void wake_writer(wal_t *w) {
  if (w->writer_idle) pthread_cond_signal(&w->wake);
}

/* Copies a record made of prefix (header and fixed part) and tail into the pending
 * batch, then lets fill update the batch's summary. */
static int append(wal_t *w, const uint8_t *prefix, size_t nprefix, const void *tail, size_t ntail,
                  wal_batch_t **bp) {
  size_t total = wal_record_size(nprefix - WAL_HDR_SIZE + ntail);
  pthread_mutex_lock(&w->mu);
  if (w->err) {
    int err = w->err;
    pthread_mutex_unlock(&w->mu);
    return err;
  }
  wal_batch_t *b = w->pending;
  buf_reserve(&b->buf, total);
  uint8_t *dst = b->buf.data + b->buf.len;
  memcpy(dst, prefix, nprefix);
  if (ntail) memcpy(dst + nprefix, tail, ntail);
  memset(dst + nprefix + ntail, 0, total - nprefix - ntail);
  b->buf.len += total;
  *bp = b;
  return 0; /* mu stays held: the caller updates the summary, then finish_append */
}

/* Ends an append: drops mu, then wakes the writer if it sleeps. Signalling after the
 * unlock spares the writer waking up only to block on mu again; no wake-up is lost, as
 * the writer re-checks for work under mu before it sleeps. */
static int finish_append(wal_t *w) {
  bool idle = w->writer_idle && !w->defer_wake;
  pthread_mutex_unlock(&w->mu);
  if (idle) pthread_cond_signal(&w->wake);
  return 0;
}

/* Appends an ENTRY or CONF_ENTRY record (see wal_append_entry). */
static int append_entry(wal_t *w, int type, uint64_t index, uint64_t term, const void *data, size_t len) {
  if (len > WAL_MAX_ENTRY_SIZE) return CETCD_ETOOLARGE;
  uint8_t pre[WAL_HDR_SIZE + 16], fixed[16];
  wal_put_u64(fixed, index);
  wal_put_u64(fixed + 8, term);
  wal_record_prefix(pre, type, fixed, 16, data, len); /* CRC outside the lock */
  wal_batch_t *b;
  int rc = append(w, pre, sizeof(pre), data, len, &b);
  if (rc) return rc;
  if (!b->has_entry || index > b->max_index) b->max_index = index;
  b->has_entry = true;
  b->entries++;
  b->last_index = index;
  return finish_append(w);
}

int wal_append_entry(wal_t *w, uint64_t index, uint64_t term, const void *data, size_t len) {
  return append_entry(w, WAL_REC_ENTRY, index, term, data, len);
}

int wal_append_conf_entry(wal_t *w, uint64_t index, uint64_t term, const void *data, size_t len) {
  return append_entry(w, WAL_REC_CONF_ENTRY, index, term, data, len);
}

int wal_append_hardstate(wal_t *w, uint64_t term, uint64_t vote, uint64_t commit) {
  uint8_t pre[WAL_HDR_SIZE + 24], fixed[24];
  wal_put_u64(fixed, term);
  wal_put_u64(fixed + 8, vote);
  wal_put_u64(fixed + 16, commit);
  wal_record_prefix(pre, WAL_REC_HARDSTATE, fixed, 24, NULL, 0);
  wal_batch_t *b;
  int rc = append(w, pre, sizeof(pre), NULL, 0, &b);
  if (rc) return rc;
  b->has_hs = true;
  b->hs[0] = term, b->hs[1] = vote, b->hs[2] = commit;
  return finish_append(w);
}

int wal_append_snapshot(wal_t *w, uint64_t index, uint64_t term) {
  uint8_t pre[WAL_HDR_SIZE + 16], fixed[16];
  wal_put_u64(fixed, index);
  wal_put_u64(fixed + 8, term);
  wal_record_prefix(pre, WAL_REC_SNAPSHOT, fixed, 16, NULL, 0);
  wal_batch_t *b;
  int rc = append(w, pre, sizeof(pre), NULL, 0, &b);
  if (rc) return rc;
  b->has_snap = true;
  b->snap[0] = index, b->snap[1] = term;
  return finish_append(w);
}

/* Under mu: may the loop write the pending batch itself? Only when the writer sleeps with
 * nothing else to do, and the batch is a lone entry after a lone entry (one client at a
 * time; under load the writer overlaps its fdatasync with the loop's work, which is
 * worth more than the saved hand-offs), the disk syncs fast (a slow sync would stall the
 * loop), and it does not end the segment. */
static bool inline_write_ok(wal_t *w) {
  const wal_batch_t *b = w->pending;
  return w->writer_idle && !w->err && !w->stopping && !w->inject_err && b->entries == 1 &&
         w->sync_avg_us < WAL_INLINE_MAX_SYNC_US && w->last_batch_entries == 1 &&
         w->sync_req == w->sync_done && w->release_req == w->release_done && !w->full &&
         w->off + WAL_BATCH_REC_SIZE + b->buf.len + w->room < w->seg_size;
}

int wal_flush(wal_t *w, uint64_t *durable, bool allow_inline) {
  *durable = 0;
  pthread_mutex_lock(&w->mu);
  if (!w->pending->buf.len) {
    pthread_mutex_unlock(&w->mu);
    return 0;
  }
  if (!allow_inline || !inline_write_ok(w)) {
    bool idle = w->writer_idle;
    pthread_mutex_unlock(&w->mu);
    if (idle) pthread_cond_signal(&w->wake);
    return 0;
  }
  wal_batch_t *b = w->pending;
  w->pending = b == &w->batches[0] ? &w->batches[1] : &w->batches[0];
  w->loop_writing = true; /* the writer sleeps and stays off w->fd, w->off, w->segs */
  pthread_mutex_unlock(&w->mu);

  int rc = wal_write_batch(w, b, 0);

  pthread_mutex_lock(&w->mu);
  w->loop_writing = false;
  w->off_pub = w->off;
  if (rc) {
    if (!w->err) w->err = rc;
  } else if (b->has_entry) {
    w->has_durable = true;
    w->durable_index = b->last_index;
    w->durable_seq++;
    w->reported_seq = w->durable_seq; /* reported by our return, not by async_cb */
    *durable = b->last_index;
  }
  wal_batch_reset(b);
  bool wake = w->writer_idle && w->pending->buf.len;
  pthread_mutex_unlock(&w->mu);
  if (wake) pthread_cond_signal(&w->wake);
  if (rc) {
    if (!w->err_reported) {
      w->err_reported = true;
      w->on_error(w->ctx, rc);
    }
    return rc;
  }
  return 1;
}

int wal_check_room(wal_t *w, size_t len) {
  pthread_mutex_lock(&w->mu);
  int rc = w->err;
  if (!rc && w->full &&
      w->off_pub + WAL_BATCH_REC_SIZE + w->pending->buf.len + wal_record_size(len + 16) > w->seg_size)
    rc = -ENOSPC;
  pthread_mutex_unlock(&w->mu);
  return rc;
}

int wal_sync_now(wal_t *w) {
  pthread_mutex_lock(&w->mu);
  uint64_t gen = ++w->sync_req, rel = w->release_req;
  pthread_cond_signal(&w->wake);
  while (!w->err && (w->sync_done < gen || w->release_done < rel)) pthread_cond_wait(&w->done, &w->mu);
  int err = w->err;
  pthread_mutex_unlock(&w->mu);
  return err;
}

int wal_release_before(wal_t *w, uint64_t index) {
  pthread_mutex_lock(&w->mu);
  int err = w->err;
  if (!err && index > w->release_req) {
    w->release_req = index;
    wake_writer(w);
  }
  pthread_mutex_unlock(&w->mu);
  return err;
}

int wal_sync_async(wal_t *w, uint64_t *ticket) {
  pthread_mutex_lock(&w->mu);
  int err = w->err;
  if (!err) {
    *ticket = ++w->sync_req;
    pthread_cond_signal(&w->wake);
  }
  pthread_mutex_unlock(&w->mu);
  return err;
}

/* Loop thread: reports durability, then a failure, as published by the writer. */
static void async_cb(uv_async_t *h) {
  wal_t *w = h->data;
  pthread_mutex_lock(&w->mu);
  bool has = w->has_durable;
  uint64_t idx = w->durable_index, seq = w->durable_seq, synced = w->sync_written;
  int err = w->err;
  pthread_mutex_unlock(&w->mu);
  if (has && seq != w->reported_seq) {
    w->reported_seq = seq;
    if (w->on_durable) w->on_durable(w->ctx, idx);
  }
  if (w->on_synced && synced > w->reported_sync) {
    w->reported_sync = synced;
    w->on_synced(w->ctx, synced);
  }
  if (err && !w->err_reported) {
    w->err_reported = true;
    w->on_error(w->ctx, err);
  }
}

/* ------------------------------------------------------------------------------------
 * Introspection
 * ---------------------------------------------------------------------------------- */

uint64_t wal_durable_index(wal_t *w) {
  pthread_mutex_lock(&w->mu);
  uint64_t v = w->durable_index;
  pthread_mutex_unlock(&w->mu);
  return v;
}

uint64_t wal_fsync_count(wal_t *w) {
  pthread_mutex_lock(&w->mu);
  uint64_t v = w->fsyncs;
  pthread_mutex_unlock(&w->mu);
  return v;
}

size_t wal_segment_count(wal_t *w) {
  pthread_mutex_lock(&w->mu);
  size_t v = w->nsegs_pub;
  pthread_mutex_unlock(&w->mu);
  return v;
}

void wal_debug_set_sync_avg(wal_t *w, double us) {
  pthread_mutex_lock(&w->mu);
  w->sync_avg_us = us;
  pthread_mutex_unlock(&w->mu);
}

void wal_debug_inject_error(wal_t *w, int err) {
  pthread_mutex_lock(&w->mu);
  w->inject_err = err;
  pthread_mutex_unlock(&w->mu);
}
