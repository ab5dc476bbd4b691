/* Replay at open: read every segment in order, validate each record, deliver the
 * records, and tell a torn tail (normal end of the log) from corruption (see the rules
 * in wal_int.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "cetcd/errors.h"
#include "wal/wal_int.h"

static const char *dec_reason(int rc) {
  switch (rc) {
    case WAL_DEC_SHORT:
      return "truncated record";
    case WAL_DEC_BADHDR:
      return "bad header";
    case WAL_DEC_BADCRC:
      return "crc mismatch";
    default:
      return "out of batch order";
  }
}

/* Is there a valid BATCH record naming its own offset at an 8-aligned offset in
 * [from, size)? Returns its offset or UINT64_MAX. */
static uint64_t find_batch(const uint8_t *p, uint64_t size, uint64_t from, uint64_t seq) {
  for (uint64_t q = from; q + WAL_BATCH_REC_SIZE <= size; q += 8) {
    if (p[q + 8] != WAL_REC_BATCH || p[q + 9] != WAL_MAGIC) continue;
    wal_record_t r;
    if (wal_record_decode(p + q, size - q, &r) == WAL_DEC_OK && r.type == WAL_REC_BATCH &&
        wal_get_u64(r.payload) == q && wal_get_u64(r.payload + 16) == seq)
      return q;
  }
  return UINT64_MAX;
}

/* Offset of the first non-zero byte at or after from, or size. */
static uint64_t first_nonzero(const uint8_t *p, uint64_t size, uint64_t from) {
  uint64_t q = from;
  while (q < size && (q & 7)) {
    if (p[q]) return q;
    q++;
  }
  for (; q + 8 <= size; q += 8) {
    uint64_t v;
    memcpy(&v, p + q, 8);
    if (v) break;
  }
  for (; q < size; q++)
    if (p[q]) return q;
  return size;
}

static int deliver(const wal_record_t *r, wal_seg_t *s, const wal_replay_t *cb, wal_replay_result_t *res) {
  const uint8_t *pl = r->payload;
  switch (r->type) {
    case WAL_REC_ENTRY:
    case WAL_REC_CONF_ENTRY: {
      uint64_t index = wal_get_u64(pl), term = wal_get_u64(pl + 8);
      if (!s->has_entries || index > s->max_index) s->max_index = index;
      s->has_entries = true;
      res->has_index = true;
      res->last_index = index;
      if (r->type == WAL_REC_CONF_ENTRY && cb && cb->conf_entry)
        return cb->conf_entry(cb->ctx, index, term, pl + 16, r->len - 16);
      return cb && cb->entry ? cb->entry(cb->ctx, index, term, pl + 16, r->len - 16) : 0;
    }
    case WAL_REC_HARDSTATE:
      res->has_hs = true;
      for (int i = 0; i < 3; i++) res->hs[i] = wal_get_u64(pl + 8 * i);
      return cb && cb->hardstate ? cb->hardstate(cb->ctx, res->hs[0], res->hs[1], res->hs[2]) : 0;
    case WAL_REC_SNAPSHOT:
      res->has_snap = true;
      res->snap[0] = wal_get_u64(pl);
      res->snap[1] = wal_get_u64(pl + 8);
      return cb && cb->snapshot ? cb->snapshot(cb->ctx, res->snap[0], res->snap[1]) : 0;
    default:
      return 0;
  }
}

/* Reads one segment; last says whether it is the last one. */
static int replay_segment(int dirfd, const char *dir, wal_seg_t *s, bool last, const wal_replay_t *cb,
                          wal_replay_result_t *res) {
  char name[64];
  wal_segment_name(name, sizeof(name), s->seq, s->first_index);
  int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int rc = -errno;
    LOGE("wal: cannot open segment dir=%s file=%s err=\"%s\"", dir, name, strerror(-rc));
    return rc;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  uint64_t size = (uint64_t)st.st_size;
  const uint8_t *p = NULL;
  if (size) {
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int rc = -errno;
      LOGE("wal: cannot map segment dir=%s file=%s err=\"%s\"", dir, name, strerror(-rc));
      close(fd);
      return rc;
    }
    p = m;
  }
  close(fd);

  int rc = 0;
  uint64_t pos = 0, batch_end = 0, batch_off = 0;
  int bad = 0;
  while (pos < size) {
    wal_record_t r;
    int d = wal_record_decode(p + pos, size - pos, &r);
    if (d != WAL_DEC_OK) {
      bad = d;
      break;
    }
    bool is_batch = r.type == WAL_REC_BATCH;
    if (is_batch != (pos == batch_end) || (!is_batch && pos + r.size > batch_end) ||
        (is_batch && (wal_get_u64(r.payload) != pos || wal_get_u64(r.payload + 16) != s->seq))) {
      bad = -1;
      break;
    }
    if (is_batch) {
      batch_off = pos;
      batch_end = pos + r.size + wal_get_u64(r.payload + 8);
    } else if ((rc = deliver(&r, s, cb, res)) != 0) {
      goto out;
    }
    pos += r.size;
  }

  if (!last) {
    if (bad || pos != batch_end) {
      LOGE("wal: corrupt record in a sealed segment dir=%s file=%s offset=%" PRIu64 " reason=\"%s\"", dir,
           name, pos, bad ? dec_reason(bad) : "segment ends inside a batch");
      rc = CETCD_ECORRUPT;
    }
    goto out;
  }
  res->end_off = pos;
  res->last_size = size;
  res->tail_dirty = false;
  res->batch_off = batch_off;
  res->fix_batch = pos < batch_end;
  if (pos < size) {
    uint64_t nz = first_nonzero(p, size, pos);
    if (nz < size) {
      uint64_t from = nz & ~(uint64_t)7;
      if (from <= pos) from = pos + 8;
      uint64_t later = find_batch(p, size, from, s->seq);
      if (later != UINT64_MAX) {
        LOGE("wal: corrupt record followed by later batches dir=%s file=%s offset=%" PRIu64
             " reason=\"%s\" next-batch-offset=%" PRIu64,
             dir, name, pos, dec_reason(bad), later);
        rc = CETCD_ECORRUPT;
        goto out;
      }
      LOGW("wal: torn tail, truncating dir=%s file=%s offset=%" PRIu64 " reason=\"%s\"", dir, name, pos,
           dec_reason(bad));
      res->tail_dirty = true;
    }
  }
out:
  if (p) munmap((void *)p, size);
  return rc;
}

int wal_replay_all(int dirfd, const char *dir, wal_seg_t *segs, size_t n, const wal_replay_t *cb,
                   wal_replay_result_t *res) {
  memset(res, 0, sizeof(*res));
  for (size_t i = 0; i < n; i++) {
    int rc = replay_segment(dirfd, dir, &segs[i], i + 1 == n, cb, res);
    if (rc) return rc;
  }
  return 0;
}
