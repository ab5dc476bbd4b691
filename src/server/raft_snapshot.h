/* Raft snapshot metadata files of a cluster member (etcd's member/snap/<term>-<index>.snap).
 *
 * A member compacts its raft log every --snapshot-count applied entries (raft_node.c). The
 * compaction point's metadata (index, term, conf state: voters and learners) is written to
 * <snap dir>/%016x-%016x.snap (term, index; etcd's naming) before a WAL snapshot record
 * names it, and before WAL segments wholly before it are deleted. The state machine itself
 * is the LMDB backend beside it, whose consistent index is never below a snapshot the
 * member restarts from. On restart the newest file whose index the backend reached, and
 * from which the WAL has every later entry, becomes raft_restore_t.snapshot.
 *
 * File format (little-endian u64s): magic "CSNAP\0\0\1", index, term, n_voters, n_learners,
 * voters..., learners..., then the SHA-256 of everything before it. */
#ifndef CETCD_SERVER_RAFT_SNAPSHOT_H
#define CETCD_SERVER_RAFT_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

/* Metadata read back from a snap file; the arrays are owned (rsnap_meta_free). */
typedef struct rsnap_meta {
  uint64_t index, term;
  uint64_t *voters;
  size_t n_voters;
  uint64_t *learners;
  size_t n_learners;
} rsnap_meta_t;

/* Writes s's metadata (data is not stored) to dir atomically: a temporary file, fsync,
 * rename, fsync of dir. Returns 0 or -errno (logged). */
int rsnap_save(const char *dir, const raft_snapshot_t *s);

/* Loads the newest snap file in dir with index <= max_index for which accept(ctx, meta)
 * returns true. Damaged files are renamed to *.broken and skipped (etcd does the same).
 * Returns 0 and fills out, CETCD_EKEYNOTFOUND if none fits, or -errno. */
int rsnap_load_newest(const char *dir, uint64_t max_index, bool (*accept)(void *ctx, const rsnap_meta_t *m),
                      void *ctx, rsnap_meta_t *out);

/* Deletes all but the newest keep snap files in dir (etcd keeps 5). */
void rsnap_purge(const char *dir, size_t keep);

/* Frees m's arrays. */
void rsnap_meta_free(rsnap_meta_t *m);

/* The view of m as a raft snapshot without data (borrows m's arrays). */
raft_snapshot_t rsnap_as_raft(const rsnap_meta_t *m);

/* ---- when to snapshot, what the WAL may drop ---- */

/* etcd's SnapshotCatchUpEntries: entries kept behind a compaction for slow followers. */
#define RSNAP_CATCH_UP_ENTRIES 5000
/* etcd's DefaultSnapshotCount, also used for --snapshot-count 0. */
#define RSNAP_DEFAULT_COUNT 100000
/* etcd's default --max-snapshots: snap files kept. */
#define RSNAP_KEEP_FILES 5

typedef struct wal wal_t;

/* A member's snapshot policy and what it persisted (loop thread). */
typedef struct rsnap_state {
  char *dir;             /* <data-dir>/member/snap (owned) */
  uint64_t count;        /* --snapshot-count */
  uint64_t catch_up;     /* entries kept behind a compaction */
  uint64_t member_id;    /* for log lines */
  uint64_t last_trigger; /* applied index when the last snapshot was triggered */
  uint64_t snap_index;   /* newest persisted snapshot (0: none) */
  uint64_t prev_index;   /* the one before it */
  unsigned inflight;     /* snapshots being sent: compaction waits (etcd) */
} rsnap_state_t;

/* Fills st for a member whose data dir is data_dir (count 0: the default). The catch-up distance is
 * RSNAP_CATCH_UP_ENTRIES unless CETCD_TEST_SNAPSHOT_CATCHUP_ENTRIES (tests) says otherwise. */
void rsnap_state_init(rsnap_state_t *st, const char *data_dir, uint64_t count, uint64_t member_id);
/* Frees st's memory. */
void rsnap_state_free(rsnap_state_t *st);
/* Records that the member restarted from the persisted snapshot at index (0: none). */
void rsnap_state_restored(rsnap_state_t *st, uint64_t index, uint64_t applied);
/* After raft_advance: once count entries were applied since the last trigger, compacts the
 * raft log catch_up entries behind the applied index, saves the compaction point's
 * metadata (rsnap_save), appends a WAL snapshot record naming it and purges old files.
 * Logs etcd's lines. A failure is logged; the log is then kept until the next trigger. */
void rsnap_maybe_snapshot(rsnap_state_t *st, raft_t *r, wal_t *w);
/* A follower's raft restored the snapshot s received from the leader (whose backend is
 * installed: applied, the consistent index, is at or past s->index): saves its metadata,
 * appends a WAL snapshot record and purges old files, like a snapshot of our own.
 * Returns 0 or a negative code (logged). */
int rsnap_persist_received(rsnap_state_t *st, const raft_snapshot_t *s, wal_t *w, uint64_t applied);
/* The index before which WAL segments may be deleted once the backend is durable up to
 * synced: one past the newest persisted snapshot at or below synced, or 0 (nothing). */
uint64_t rsnap_release_index(const rsnap_state_t *st, uint64_t synced);

#endif
