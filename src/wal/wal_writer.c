/* The writer thread: takes the pending batch, writes it with one pwritev preceded by a
 * BATCH record, makes it durable with one fdatasync, publishes the durable index and
 * wakes the loop; rotates full segments and deletes released ones. Any write or sync
 * failure is fatal for the WAL: after a failed fdatasync the page cache state of the
 * file is unknown, so the descriptor is never synced again (fsyncgate). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "wal/wal_int.h"

/* Batch buffers larger than this are freed after use instead of kept. */
#define KEEP_BUF_MAX (8u * 1024 * 1024)
/* Zeros written ahead of the records at a time (zero_ahead). */
#define ZERO_CHUNK (256u * 1024)

static int pwritev_all(int fd, struct iovec *iov, int cnt, uint64_t off) {
  while (cnt > 0) {
    ssize_t n = pwritev(fd, iov, cnt, (off_t)off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EIO;
    off += (uint64_t)n;
    while (cnt > 0 && (size_t)n >= iov->iov_len) {
      n -= (ssize_t)iov->iov_len;
      iov++;
      cnt--;
    }
    if (cnt > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + n;
      iov->iov_len -= (size_t)n;
    }
  }
  return 0;
}

static const char *cur_name(wal_t *w, char *buf, size_t n) {
  wal_seg_t *s = &w->segs[w->nsegs - 1];
  wal_segment_name(buf, n, s->seq, s->first_index);
  return buf;
}

void wal_batch_record(uint8_t *out, uint64_t off, uint64_t nbytes, uint64_t seq) {
  uint8_t fixed[24];
  wal_put_u64(fixed, off);
  wal_put_u64(fixed + 8, nbytes);
  wal_put_u64(fixed + 16, seq);
  wal_record_encode(out, WAL_REC_BATCH, fixed, sizeof(fixed), NULL, 0);
}

/* Zeros read from here: never written, so it stays the kernel's shared zero page. */
static uint8_t zeros[ZERO_CHUNK];

/* Segments are preallocated with fallocate, which leaves unwritten extents: the first
 * write into each one changes the file's extent tree, so an fdatasync after appending
 * into it also writes metadata (on this project's ext4 test disk about 1.5x the time and
 * CPU of a data-only fdatasync). So the writer keeps ZERO_CHUNK..2*ZERO_CHUNK of written
 * zeros ahead of the records: when the records come within ZERO_CHUNK of the zeroed end,
 * the next chunk of zeros goes out with this batch and is synced by its fdatasync, and the
 * appends of the next ~ZERO_CHUNK bytes sync data only. (Zero-filling whole segments up
 * front, as PostgreSQL's wal_init_zero does, would stall the writer for milliseconds at
 * each rotation.) A failed zero write is not an error: appends work without it. */
static void zero_ahead(wal_t *w, uint64_t end) {
  if (end > w->zeroed) w->zeroed = end;
  if (w->zero_failed || w->zeroed >= w->seg_size || w->zeroed - end >= ZERO_CHUNK) return;
  uint64_t n = w->seg_size - w->zeroed < ZERO_CHUNK ? w->seg_size - w->zeroed : ZERO_CHUNK;
  ssize_t r;
  do r = pwrite(w->fd, zeros, (size_t)n, (off_t)w->zeroed);
  while (r < 0 && errno == EINTR);
  if (r <= 0) {
    char name[64];
    LOGW("wal: cannot write zeros ahead of the records (appends go on, with slower syncs) dir=%s "
         "file=%s offset=%" PRIu64 " err=\"%s\"",
         w->dir, cur_name(w, name, sizeof(name)), w->zeroed, r < 0 ? strerror(errno) : "short write");
    w->zero_failed = true;
    return;
  }
  w->zeroed += (uint64_t)r;
}

/* Writes records (len bytes) as one batch at the current offset and syncs it. inj, if
 * non-zero, is an injected failure. Returns 0 or -errno. */
static int write_records(wal_t *w, const uint8_t *recs, size_t len, int inj) {
  uint8_t hdr[WAL_BATCH_REC_SIZE];
  wal_batch_record(hdr, w->off, len, w->segs[w->nsegs - 1].seq);
  struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)recs, len}};
  char name[64];
  int rc = inj ? inj : pwritev_all(w->fd, iov, len ? 2 : 1, w->off);
  if (rc) {
    LOGE("wal: write failed dir=%s file=%s offset=%" PRIu64 " bytes=%zu err=\"%s\"", w->dir,
         cur_name(w, name, sizeof(name)), w->off, sizeof(hdr) + len, strerror(-rc));
    return rc;
  }
  zero_ahead(w, w->off + sizeof(hdr) + len);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  rc = w->no_fsync ? 0 : wal_fsync_fd(w->fd, true);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  if (w->on_fsync) w->on_fsync(secs);
  pthread_mutex_lock(&w->mu);
  w->fsyncs++;
  w->sync_avg_us = (w->sync_avg_us * 7 + secs * 1e6) / 8;
  pthread_mutex_unlock(&w->mu);
  if (rc) {
    LOGE("wal: fdatasync failed, the WAL is unusable dir=%s file=%s err=\"%s\"", w->dir,
         cur_name(w, name, sizeof(name)), strerror(-rc));
    return rc;
  }
  w->off += sizeof(hdr) + len;
  return 0;
}

/* Records what a durable batch contained. */
static void note_batch(wal_t *w, const wal_batch_t *b) {
  wal_seg_t *s = &w->segs[w->nsegs - 1];
  if (b->has_entry) {
    if (!s->has_entries || b->max_index > s->max_index) s->max_index = b->max_index;
    s->has_entries = true;
    w->has_index = true;
    w->last_index = b->last_index;
  }
  if (b->has_hs) {
    w->has_hs = true;
    memcpy(w->hs, b->hs, sizeof(w->hs));
  }
  if (b->has_snap) {
    w->has_snap = true;
    memcpy(w->snap, b->snap, sizeof(w->snap));
  }
}

/* Notes whether the next segment could be made (with mu). */
static void set_full(wal_t *w, bool full, int err) {
  pthread_mutex_lock(&w->mu);
  bool was = w->full;
  w->full = full;
  w->off_pub = w->off;
  pthread_mutex_unlock(&w->mu);
  if (full && !was)
    LOGW(
        "wal: no space for a new segment; writing on in the current one, writes are refused once its "
        "room is used, retrying every second dir=%s err=\"%s\" fix=\"free disk space on the WAL's file "
        "system\"",
        w->dir, strerror(-err));
  if (!full && was) LOGI("wal: space for a new segment again dir=%s", w->dir);
}

int wal_writer_rotate(wal_t *w) {
  char name[64];
  wal_seg_t *cur = &w->segs[w->nsegs - 1];
  wal_seg_t next = {.seq = cur->seq + 1, .first_index = w->has_index ? w->last_index + 1 : cur->first_index};
  /* The next file is made (and its space taken) before the current one is sealed: on a
   * full disk the current segment keeps the room it has left. */
  int fd;
  int rc = wal_segment_prepare(w->dirfd, w->dir, next.seq, next.first_index, w->seg_size, &fd);
  if (rc == -ENOSPC || rc == -EDQUOT) {
    set_full(w, true, rc);
    return 0;
  }
  if (rc) return rc;
  rc = wal_segment_cut(w->fd, w->off, 0);
  if (rc) {
    LOGE("wal: cannot seal segment dir=%s file=%s err=\"%s\"", w->dir, cur_name(w, name, sizeof(name)),
         strerror(-rc));
    close(fd);
    return rc;
  }
  if ((rc = wal_segment_publish(w->dirfd, w->dir, next.seq, next.first_index))) {
    close(fd);
    return rc;
  }
  close(w->fd);
  w->fd = fd;
  w->off = w->zeroed = 0;
  w->zero_failed = false;
  if (w->nsegs == w->capsegs) {
    w->capsegs = w->capsegs ? w->capsegs * 2 : 8;
    w->segs = xrealloc(w->segs, w->capsegs * sizeof(*w->segs));
  }
  w->segs[w->nsegs++] = next;
  pthread_mutex_lock(&w->mu);
  w->nsegs_pub = w->nsegs;
  pthread_mutex_unlock(&w->mu);
  set_full(w, false, 0);
  LOGI("wal: new segment dir=%s file=%s", w->dir, cur_name(w, name, sizeof(name)));

  /* Start the segment with the latest hard state and snapshot marker, so that deleting
   * older segments never loses them. */
  uint8_t recs[2 * WAL_HDR_SIZE + 24 + 16], fixed[24];
  size_t len = 0;
  if (w->has_hs) {
    for (int i = 0; i < 3; i++) wal_put_u64(fixed + 8 * i, w->hs[i]);
    len += wal_record_encode(recs + len, WAL_REC_HARDSTATE, fixed, 24, NULL, 0);
  }
  if (w->has_snap) {
    for (int i = 0; i < 2; i++) wal_put_u64(fixed + 8 * i, w->snap[i]);
    len += wal_record_encode(recs + len, WAL_REC_SNAPSHOT, fixed, 16, NULL, 0);
  }
  return len ? write_records(w, recs, len, 0) : 0;
}

/* Deletes the oldest segments whose entries are all below index, keeping the last. */
static void release_segments(wal_t *w, uint64_t index) {
  size_t k = 0;
  while (k + 1 < w->nsegs && (!w->segs[k].has_entries || w->segs[k].max_index < index)) {
    if (wal_segment_remove(w->dirfd, w->dir, &w->segs[k])) break;
    k++;
  }
  if (!k) return;
  wal_fsync_fd(w->dirfd, false);
  memmove(w->segs, w->segs + k, (w->nsegs - k) * sizeof(*w->segs));
  w->nsegs -= k;
  pthread_mutex_lock(&w->mu);
  w->nsegs_pub = w->nsegs;
  pthread_mutex_unlock(&w->mu);
  LOGI("wal: released segments dir=%s count=%zu before-index=%" PRIu64, w->dir, k, index);
}

void wal_batch_reset(wal_batch_t *b) {
  if (b->buf.cap > KEEP_BUF_MAX) buf_free(&b->buf);
  buf_reset(&b->buf);
  b->entries = 0;
  b->has_entry = b->has_hs = b->has_snap = false;
}

int wal_write_batch(wal_t *w, const wal_batch_t *b, int inj) {
  int rc = write_records(w, b->buf.data, b->buf.len, inj);
  if (!rc) note_batch(w, b);
  return rc;
}

void *wal_writer_main(void *arg) {
  wal_t *w = arg;
  uint64_t released = 0;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (w->loop_writing || (!w->stopping && w->pending->buf.len == 0 && w->sync_req == w->sync_done &&
                               w->release_req == w->release_done)) {
      w->writer_idle = true;
      if (w->full && !w->loop_writing) { /* try the new segment again every second */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        int t = pthread_cond_timedwait(&w->wake, &w->mu, &ts);
        w->writer_idle = false;
        if (t == ETIMEDOUT && !w->loop_writing) break; /* an empty round: rotation is retried */
      } else {
        pthread_cond_wait(&w->wake, &w->mu);
        w->writer_idle = false;
      }
    }
    wal_batch_t *b = w->pending;
    if (w->stopping && b->buf.len == 0 && w->sync_req == w->sync_done && w->release_req == w->release_done)
      break;
    w->pending = b == &w->batches[0] ? &w->batches[1] : &w->batches[0];
    if (b->buf.len) w->last_batch_entries = b->entries;
    uint64_t sync_target = w->sync_req, release_target = w->release_req;
    int err = w->err, inj = w->inject_err;
    w->inject_err = 0;
    pthread_mutex_unlock(&w->mu);

    int rc = 0;
    if (!err && b->buf.len) rc = wal_write_batch(w, b, inj);

    pthread_mutex_lock(&w->mu);
    bool notify = false;
    if (rc && !w->err) w->err = rc, notify = true;
    if (!rc && !err && b->has_entry) {
      w->has_durable = true;
      w->durable_index = b->last_index;
      w->durable_seq++;
      notify = true;
    }
    if (!rc && !err && sync_target > w->sync_written) { /* before housekeeping: no rotation delay */
      w->sync_written = sync_target;
      notify = notify || w->on_synced;
    }
    wal_batch_reset(b);
    w->off_pub = w->off;
    if (notify && w->loop) uv_async_send(&w->async);
    bool rotate = !w->err && wal_rotation_due(w);
    err = w->err;
    pthread_mutex_unlock(&w->mu);

    /* Housekeeping runs while new appends gather in the other batch. */
    if (rotate) rc = wal_writer_rotate(w);
    if (!err && !rc && release_target > released) {
      release_segments(w, release_target);
      released = release_target;
    }

    pthread_mutex_lock(&w->mu);
    if (rc && !w->err) {
      w->err = rc;
      if (w->loop) uv_async_send(&w->async);
    }
    w->sync_done = sync_target;
    w->release_done = release_target;
    pthread_cond_broadcast(&w->done);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}
