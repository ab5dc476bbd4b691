/* Private to src/wal: the record format and the state shared by the WAL's files.
 *
 * Record format (all integers little-endian, every record 8-byte aligned):
 *
 *   off  size  field
 *   0    4     crc      CRC32C (Castagnoli) over bytes 4..16 of the header and the
 *                       payload (not the padding)
 *   4    4     len      payload length in bytes
 *   8    1     type     WAL_REC_*
 *   9    1     magic    WAL_MAGIC
 *   10   6     zero     reserved, must be zero
 *   16   len   payload
 *   ..   pad   zero bytes up to the next multiple of 8
 *
 * Payloads:  ENTRY     index u64, term u64, data (len - 16 bytes)
 *            CONF_ENTRY the same, for a raft membership change entry
 *            HARDSTATE term u64, vote u64, commit u64
 *            SNAPSHOT  index u64, term u64
 *            BATCH     file offset u64 of this record, byte count u64 of the records
 *                      that follow in this batch, segment sequence u64
 *
 * The CRC is per record, not chained: segments are zero-filled when created and when a
 * torn tail is cut off, so stale records never follow the end of the log, and each
 * record validates alone, which lets the reader look past a bad record.
 *
 * Each write of the writer thread is one batch: a BATCH record then the records
 * appended meanwhile, followed by one fdatasync. A batch is written only after the
 * previous one was synced and a segment is created only after the previous one was
 * sealed, so when the reader meets a bad record at offset P:
 *   - in a segment that is not the last, or
 *   - with a valid BATCH record (naming its own offset) after P in the last segment,
 * the bad bytes had been synced before: corruption (CETCD_ECORRUPT). Otherwise P lies in
 * the last, unfinished batch (a torn write, possibly with later sectors on disk but not
 * earlier ones): the log ends at P, the BATCH record of that batch is rewritten to end
 * at P (keeping the complete records before P), the rest of the segment is zeroed and
 * appends continue from P. */
#ifndef CETCD_WAL_WAL_INT_H
#define CETCD_WAL_WAL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "base/buf.h"
#include "wal/wal.h"

/* ---- record format (wal_record.c) ---- */

#define WAL_HDR_SIZE 16
#define WAL_MAGIC 0xC7
#define WAL_MAX_PAYLOAD (WAL_MAX_ENTRY_SIZE + 16u)
#define WAL_BATCH_REC_SIZE (WAL_HDR_SIZE + 24)
/* A segment is rotated while this much (or half of it) is left, so that on a full disk the
 * current segment still has room for the writes in flight. */
#define WAL_ROOM_MAX ((uint64_t)8 << 20)
/* The loop writes lone entries itself only while fdatasync averages below this: on a slow
 * disk the writer thread keeps reads and other work going during the sync. */
#define WAL_INLINE_MAX_SYNC_US 1000.0

enum wal_rec_type {
  WAL_REC_ENTRY = 1,
  WAL_REC_HARDSTATE = 2,
  WAL_REC_SNAPSHOT = 3,
  WAL_REC_BATCH = 4,
  WAL_REC_CONF_ENTRY = 5 /* an ENTRY whose data is a raft membership change */
};

/* Results of wal_record_decode. */
enum wal_dec { WAL_DEC_OK = 0, WAL_DEC_SHORT = 1, WAL_DEC_BADHDR = 2, WAL_DEC_BADCRC = 3 };

/* A decoded record; payload points into the decoded bytes (borrowed). */
typedef struct wal_record {
  int type;
  const uint8_t *payload;
  uint32_t len; /* payload length */
  size_t size;  /* bytes the record occupies, padding included */
} wal_record_t;

static inline size_t wal_align8(size_t n) { return (n + 7) & ~(size_t)7; }
/* Bytes a record with a payload of len bytes occupies. */
static inline size_t wal_record_size(size_t len) { return WAL_HDR_SIZE + wal_align8(len); }

static inline void wal_put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t wal_get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static inline void wal_put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t wal_get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* CRC32C of n bytes at p, continuing from crc (start with 0); wal_crc32c(wal_crc32c(0,
 * a), b) equals the CRC of a followed by b. Uses SSE4.2 when the CPU has it. */
uint32_t wal_crc32c(uint32_t crc, const void *p, size_t n);
/* The table-driven CRC32C, whatever the CPU (for tests). */
uint32_t wal_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* Writes the 16-byte header and the nfixed bytes of fixed into out (16 + nfixed bytes,
 * nfixed a multiple of 8), for a record whose payload is fixed followed by ntail bytes
 * of tail; the CRC covers both. The caller copies tail and the padding after it. */
void wal_record_prefix(uint8_t *out, int type, const uint8_t *fixed, size_t nfixed, const void *tail,
                       size_t ntail);

/* Encodes a whole record (header, fixed, tail, zero padding) into out, which must hold
 * wal_record_size(nfixed + ntail) bytes. Returns the bytes written. */
size_t wal_record_encode(uint8_t *out, int type, const uint8_t *fixed, size_t nfixed, const void *tail,
                         size_t ntail);

/* Decodes the record at p with avail bytes available. Checks the magic, reserved bytes,
 * type, the payload length for the type, and the CRC. Returns WAL_DEC_OK and fills rec,
 * or WAL_DEC_SHORT / WAL_DEC_BADHDR / WAL_DEC_BADCRC. */
int wal_record_decode(const uint8_t *p, size_t avail, wal_record_t *rec);

/* ---- segment files (wal_segment.c) ---- */

typedef struct wal_seg {
  uint64_t seq;
  uint64_t first_index; /* from the file name */
  uint64_t max_index;   /* largest entry index in the segment (valid if has_entries) */
  bool has_entries;
} wal_seg_t;

/* Formats the file name of a segment into out (at least 48 bytes). */
void wal_segment_name(char *out, size_t n, uint64_t seq, uint64_t first_index);

/* Lists the segments in dirfd sorted by sequence, removing leftover temporary files.
 * *segs is owned by the caller (free). Returns 0, CETCD_ECORRUPT if the sequence has a
 * gap, or -errno. */
int wal_segment_list(int dirfd, const char *dir, wal_seg_t **segs, size_t *n);

/* Creates and preallocates a segment (through a temporary name, renamed and the directory
 * synced) and returns an O_RDWR descriptor in *fd. Returns 0 or -errno. */
int wal_segment_create(int dirfd, const char *dir, uint64_t seq, uint64_t first_index, uint64_t size,
                       int *fd);

/* The two halves of wal_segment_create: prepare makes and preallocates the file under a
 * temporary name (nothing a reader sees; a crash leaves a leftover that listing removes);
 * publish renames it into place and syncs the directory. Return 0 or -errno. */
int wal_segment_prepare(int dirfd, const char *dir, uint64_t seq, uint64_t first_index, uint64_t size,
                        int *fd);
int wal_segment_publish(int dirfd, const char *dir, uint64_t seq, uint64_t first_index);

/* Opens an existing segment read-write. Returns 0 or -errno. */
int wal_segment_open(int dirfd, const char *dir, const wal_seg_t *s, int *fd);

/* Cuts the segment at off and zero-fills it up to size bytes (if size > off), then syncs.
 * Returns 0 or -errno. */
int wal_segment_cut(int fd, uint64_t off, uint64_t size);

/* Deletes a segment file. Returns 0 or -errno. */
int wal_segment_remove(int dirfd, const char *dir, const wal_seg_t *s);

/* fsync on a descriptor, returning 0 or -errno (EINTR retried). */
int wal_fsync_fd(int fd, bool data_only);

/* ---- replay (wal_reader.c) ---- */

typedef struct wal_replay_result {
  uint64_t end_off;    /* end of the valid records in the last segment */
  bool tail_dirty;     /* non-zero bytes follow end_off and must be zeroed */
  uint64_t last_size;  /* file size of the last segment */
  uint64_t batch_off;  /* offset of the last BATCH record in the last segment */
  bool fix_batch;      /* that batch is cut short: its BATCH record must be rewritten */
  bool has_index;      /* at least one entry was read */
  uint64_t last_index; /* index of the last entry read */
  bool has_hs, has_snap;
  uint64_t hs[3];   /* term, vote, commit */
  uint64_t snap[2]; /* index, term */
} wal_replay_result_t;

/* Reads every segment in order, delivering records to cb (may be NULL), filling the
 * per-segment max_index and res. Returns 0, CETCD_ECORRUPT, -errno or a callback's
 * code. */
int wal_replay_all(int dirfd, const char *dir, wal_seg_t *segs, size_t n, const wal_replay_t *cb,
                   wal_replay_result_t *res);

/* ---- the WAL object (wal.c, wal_writer.c) ---- */

/* Records appended since the writer last took a batch, with what they contain. */
typedef struct wal_batch {
  buf_t buf;
  uint32_t entries; /* ENTRY records in buf */
  bool has_entry;
  uint64_t last_index, max_index;
  bool has_hs, has_snap;
  uint64_t hs[3], snap[2];
} wal_batch_t;

struct wal {
  char *dir;
  int dirfd;
  uint64_t seg_size;
  uv_loop_t *loop;
  uv_async_t async;
  void (*on_durable)(void *ctx, uint64_t durable_index);
  void (*on_error)(void *ctx, int err);
  void (*on_synced)(void *ctx, uint64_t ticket);
  void *ctx;
  void (*on_fsync)(double seconds);
  bool no_fsync;
  bool defer_wake;
  pthread_t thread;

  /* Guarded by mu. */
  pthread_mutex_t mu;
  pthread_cond_t wake; /* writer waits for work */
  pthread_cond_t done; /* wal_sync_now waits for the writer */
  wal_batch_t batches[2];
  wal_batch_t *pending; /* the batch appends go to */
  bool writer_idle;
  bool loop_writing;           /* wal_flush writes a batch: the writer keeps off the files */
  uint32_t last_batch_entries; /* entries in the last batch written */
  bool full;                   /* no space for the next segment: the current one's room is all */
  double sync_avg_us;          /* moving average of fdatasync times (1/8 weight per sync) */
  uint64_t off_pub;            /* the writer's offset in the current segment */
  bool stopping;
  uint64_t sync_req, sync_done;
  uint64_t sync_written; /* sync requests whose records are durable (housekeeping may follow) */
  uint64_t release_req, release_done;
  bool has_durable;
  uint64_t durable_index;
  uint64_t durable_seq; /* batches with entries made durable */
  int err;
  int inject_err;
  uint64_t fsyncs;
  size_t nsegs_pub;

  /* Loop thread only. */
  uint64_t reported_seq;
  uint64_t reported_sync;
  bool err_reported;

  /* Writer thread only once it runs (wal_open before). */
  uint64_t room; /* rotate once less than this is left in the preallocated segment */
  int fd;
  uint64_t off;
  uint64_t zeroed; /* the current segment is written (records or zeros) up to here */
  bool zero_failed; /* a zero-ahead write failed: not tried again in this segment */
  wal_seg_t *segs;
  size_t nsegs, capsegs;
  bool has_index;
  uint64_t last_index;
  bool has_hs, has_snap;
  uint64_t hs[3], snap[2];
};

/* Encodes the BATCH record (WAL_BATCH_REC_SIZE bytes) of a batch at off in segment seq
 * followed by nbytes of records. */
void wal_batch_record(uint8_t *out, uint64_t off, uint64_t nbytes, uint64_t seq);

/* Writer thread body (arg is the wal_t). */
void *wal_writer_main(void *arg);

/* Seals the current segment and starts the next one, beginning with a batch holding
 * the latest hard state and snapshot marker. Writer thread (or wal_open before it
 * starts). Returns 0 or -errno. */
int wal_writer_rotate(wal_t *w);

/* Whether the current segment is due for rotation (writer thread). */
static inline bool wal_rotation_due(const wal_t *w) { return w->off + w->room >= w->seg_size; }

/* Writes batch b at the current offset with one pwritev and syncs it, then records what it
 * held; inj, if non-zero, is an injected failure. Called by whoever owns the files: the
 * writer thread, or the loop during wal_flush. Returns 0 or -errno. */
int wal_write_batch(wal_t *w, const wal_batch_t *b, int inj);

/* Empties a written batch for reuse. */
void wal_batch_reset(wal_batch_t *b);

#endif
