/* The write-ahead log: Raft entries, hard states and snapshot markers appended to
 * CRC-protected segment files, made durable by a writer thread with group commit.
 *
 * Threads: wal_open, wal_close and the callbacks run on the loop thread (the thread
 * running opts->loop). The append functions and wal_sync_now may be called from any
 * thread, but the log order is the order of the calls, so the server calls them from
 * the loop thread only. One writer thread per WAL writes each batch with one pwritev
 * and one fdatasync, then hands back to the loop through a uv_async handle.
 *
 * Files: <dir>/%016x-%016x.wal (sequence number, index of the first entry expected in
 * the segment), preallocated to the segment size. Rotation preallocates the next segment
 * under a temporary name, then seals the current one (truncated to its used length and
 * synced), then renames the next into place, so a reader never sees an unsealed segment
 * before another. The record format is
 * described in wal_int.h.
 *
 * Replay and raft overwrites: records are delivered in log order. A later leader may
 * overwrite a suffix of the log, so an entry may arrive whose index is <= the index of
 * an entry delivered earlier; the caller must then drop its entries from that index on
 * and keep the new one (the same rule raft applies to its unstable log). Hard states and
 * snapshot markers may repeat (each segment starts with a copy of the latest ones); the
 * last delivered one wins. */
#ifndef CETCD_WAL_WAL_H
#define CETCD_WAL_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct wal wal_t;

/* Default segment size (preallocated; a new segment is started once half of it is used, or
 * while 8 MiB are still free in larger ones, so a full disk leaves room to refuse writes
 * cleanly). etcd's is 64 MiB; segments are released once the backend is synced past them,
 * so a small one keeps the WAL's share of the data dir small (docs/PERFORMANCE.md). */
#define WAL_DEFAULT_SEGMENT_SIZE (4u * 1024 * 1024)
/* Largest entry payload accepted by wal_append_entry. */
#define WAL_MAX_ENTRY_SIZE (512u * 1024 * 1024)

typedef struct wal_options {
  /* Segment size in bytes; 0 means WAL_DEFAULT_SEGMENT_SIZE. Minimum 4096. */
  uint64_t segment_size;
  /* Index named in the first segment of a new (empty) WAL; informational. */
  uint64_t first_index;
  /* Loop on which on_durable/on_error run (borrowed, must outlive the WAL). NULL means
   * no callbacks: use wal_sync_now for durability (tests and tools). */
  uv_loop_t *loop;
  /* Runs on the loop thread when entries became durable; durable_index is the index of
   * the last ENTRY record made durable (the last appended one, so in normal operation it
   * only grows). Several batches may be reported by one call. */
  void (*on_durable)(void *ctx, uint64_t durable_index);
  /* Runs once on the loop thread when the writer failed (negative errno such as -EIO,
   * -ENOSPC). The WAL is then dead: nothing appended after the last on_durable is or
   * ever will be acknowledged, further appends return the error; close and reopen. */
  void (*on_error)(void *ctx, int err);
  /* Runs on the loop thread once everything appended before a wal_sync_async call is
   * durable; ticket is the largest such call's ticket (calls may be reported together). */
  void (*on_synced)(void *ctx, uint64_t ticket);
  void *ctx; /* passed to the callbacks, borrowed */
  /* Optional: runs ON THE WRITER THREAD after each batch's fdatasync with its duration in
   * seconds (for the fsync latency histogram); must be thread-safe and quick. */
  void (*on_fsync)(double seconds);
  /* etcd's --unsafe-no-fsync: batches are written but never fdatasynced, so a power cut
   * loses acknowledged entries (the power-loss test proves it). Segment and directory
   * syncs still run. */
  bool no_fsync;
  /* Appends leave the writer asleep; the owner calls wal_flush once it has appended what
   * it has for now (e.g. once per loop iteration). Lets the loop write a lone entry
   * itself (see wal_flush) and gathers bigger batches for the writer. */
  bool defer_wake;
} wal_options_t;

/* Replay callbacks used by wal_open. Each returns 0 to continue, or a negative code
 * that aborts wal_open with that code. NULL callbacks are skipped. Pointers passed to
 * them are valid only during the call. */
typedef struct wal_replay {
  int (*entry)(void *ctx, uint64_t index, uint64_t term, const uint8_t *data, size_t len);
  int (*conf_entry)(void *ctx, uint64_t index, uint64_t term, const uint8_t *data, size_t len);
  int (*hardstate)(void *ctx, uint64_t term, uint64_t vote, uint64_t commit);
  int (*snapshot)(void *ctx, uint64_t index, uint64_t term);
  void *ctx;
} wal_replay_t;

/* Opens (creating if needed, with parents) the WAL in dir, replays every record through
 * replay (may be NULL) in log order, truncates a torn tail, starts the writer thread and,
 * if opts->loop is set, registers a uv_async handle on it (so call it on the loop thread).
 * A torn or zero-filled tail of the last segment is the normal end of the log; a bad
 * record followed by data that was certainly written after it was synced is corruption.
 * If it fails after some replay callbacks ran, the caller must discard what it got.
 * dir and opts are borrowed. On success *out owns the WAL (release with wal_close).
 * Returns 0; CETCD_ECORRUPT (bad record in the middle, missing segment; file and offset
 * are logged); -EBUSY (another process holds the WAL); CETCD_EINVAL (bad options);
 * a negative errno from the file system (-EACCES, -ENOTDIR, -ENOSPC...); or the code a
 * replay callback returned. */
int wal_open(const char *dir, const wal_options_t *opts, const wal_replay_t *replay, wal_t **out);

/* Appends an ENTRY record (data is copied, borrowed only during the call) to the pending
 * batch and wakes the writer (unless opts->defer_wake). O(len); never blocks on I/O.
 * Returns 0; CETCD_ETOOLARGE if len > WAL_MAX_ENTRY_SIZE; or the writer's error if the
 * WAL has failed (the entry is then not logged). */
int wal_append_entry(wal_t *w, uint64_t index, uint64_t term, const void *data, size_t len);

/* wal_append_entry for a raft membership change entry: replayed through
 * wal_replay_t.conf_entry (or .entry when that is NULL). */
int wal_append_conf_entry(wal_t *w, uint64_t index, uint64_t term, const void *data, size_t len);

/* Appends a HARDSTATE record (Raft term, vote, commit). Durable together with the
 * entries appended before it. Returns 0 or the writer's error. */
int wal_append_hardstate(wal_t *w, uint64_t term, uint64_t vote, uint64_t commit);

/* Appends a SNAPSHOT marker (a snapshot at index/term exists). Returns 0 or the writer's
 * error. */
int wal_append_snapshot(wal_t *w, uint64_t index, uint64_t term);

/* Before logging an entry of len bytes: 0 if it fits, -ENOSPC when the file system had no
 * room for a new segment and the current one's room is used up (the writer retries the
 * segment every second; writes go through again once it exists), or the writer's error. */
int wal_check_room(wal_t *w, size_t len);

/* With opts->defer_wake, on the loop thread: gets what was appended written. When
 * allow_inline is set, the writer is idle, the pending batch holds a single entry and so
 * did the batch before it (one client at a time) and fdatasync has been fast (under 1 ms on
 * average), the calling thread writes and syncs it itself: the fdatasync
 * costs the same, and the two thread hand-offs are saved. Then *durable is set to the
 * batch's last entry index (0 if it held no entry) and 1 is returned; the caller applies
 * those entries itself (on_durable is not called for them). Otherwise the writer is woken
 * and 0 is returned. A failed inline write returns the error after on_error ran. */
int wal_flush(wal_t *w, uint64_t *durable, bool allow_inline);

/* Blocks the calling thread until everything appended before the call is durable (and
 * pending wal_release_before work is done). on_durable still runs later on the loop.
 * Returns 0 or the writer's error. */
int wal_sync_now(wal_t *w);

/* Loop thread, with opts->on_synced: asks the writer thread to make everything appended so
 * far durable without waiting for it; on_synced(ctx, ticket) reports when it is. Returns the
 * ticket (> 0) through *ticket; 0 or the WAL's error. */
int wal_sync_async(wal_t *w, uint64_t *ticket);

/* Allows deleting the oldest segments whose entries all have an index < index (call it
 * once the state machine is synced to disk up to index - 1). Deletion happens on the
 * writer thread after its current batch; the current segment is always kept. Returns 0,
 * or the writer's error. */
int wal_release_before(wal_t *w, uint64_t index);

/* Index of the last durable entry (0 if none became durable since wal_open). */
uint64_t wal_durable_index(wal_t *w);

/* Number of fdatasync calls made for batches since wal_open (for tests and metrics). */
uint64_t wal_fsync_count(wal_t *w);

/* Number of segment files currently in use (for tests and metrics). */
size_t wal_segment_count(wal_t *w);

/* Test hook: pretend fdatasync has recently averaged `us` microseconds. */
void wal_debug_set_sync_avg(wal_t *w, double us);

/* Test hook: the next batch write fails with err (negative errno) as if the disk failed. */
void wal_debug_inject_error(wal_t *w, int err);

/* Flushes and syncs pending records, stops and joins the writer thread and closes the
 * files. Must be called on the loop thread; no callback runs after it is entered. With a
 * loop, the WAL memory is freed when the uv_async handle has closed, so the caller must
 * let the loop run (uv_run) afterwards; without a loop it is freed at once. w is invalid
 * after the call either way. Returns 0 if everything appended is durable, else the
 * writer's error. */
int wal_close(wal_t *w);

#endif
