/* The LMDB backend: one environment, named sub-databases (etcd's buckets), one write
 * transaction per batch with a redo log (so MDB_MAP_FULL can grow the map and replay),
 * and one reusable read transaction. Private to src/mvcc. Loop thread only, except
 * mvcc_be_sync which any thread may call. */
#ifndef CETCD_MVCC_BACKEND_INT_H
#define CETCD_MVCC_BACKEND_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* How the environment is opened everywhere (open, reopen after defrag):
 * - MDB_NOMETASYNC: each commit msyncs its data pages, then writes the meta page without
 *   syncing it (the next commit's msync or the timer's mdb_env_sync does). The newest meta
 *   on disk therefore always points at synced pages. MDB_NOSYNC did not: the kernel may
 *   write back dirty map pages in any order (and msync writes the meta pages, at the start
 *   of the file, first), so a power cut could leave a newer meta over missing or reused
 *   pages: "data corrupted" at start-up, with the WAL already released
 *   (test_power_loss's writeback rounds found it). A cut still undoes the last commit,
 *   which WAL replay redoes; the server syncs LMDB on a timer before it releases WAL
 *   segments.
 * - MDB_WRITEMAP: commits write pages through the shared map instead of one pwrite per
 *   dirty page (6 syscalls per small commit before), which cuts single-writer latency.
 *   LMDB stays consistent across process crashes (uncommitted pages are never referenced
 *   by a committed meta page); the file becomes a sparse file of the map size, so the
 *   "physical size" we report is the page high-water mark (mvcc_be_size).
 * - MDB_NOTLS: read transactions are not tied to threads (snapshots read on workers). */
#define MVCC_ENV_FLAGS (MDB_NOMETASYNC | MDB_NOTLS | MDB_WRITEMAP)

enum { MVCC_BE_MAX_BUCKETS = 12 };

typedef struct mvcc_backend {
  MDB_env *env;
  char *dir;
  size_t map_size;
  unsigned psize;
  MDB_txn *wtxn;        /* the open batch, or NULL */
  MDB_txn *rtxn;        /* reusable read transaction, reset while idle */
  int rdepth;           /* nesting of mvcc_be_read_begin on rtxn */
  bool failed;          /* a write in the open batch failed: commit refuses */
  buf_t log;            /* redo log of the open batch */
  size_t reserved_off;  /* log offset of the record from mvcc_be_reserve */
  size_t allocated_to;  /* data.mdb has disk blocks up to here (mvcc_be_ensure_space) */
  bool no_fallocate;    /* the file system cannot allocate ahead: no protection */
  pthread_mutex_t lock; /* orders mdb_env_sync against map resizing */
  int nbuckets;
  const char *bucket_names[MVCC_BE_MAX_BUCKETS];
  MDB_dbi buckets[MVCC_BE_MAX_BUCKETS];
  MDB_dbi key_dbi, meta_dbi;
} mvcc_backend_t;

/* Opens (creating) the environment in dir (created if missing) and every bucket.
 * map_size 0 means 8 GiB. Returns 0 or a negative code. */
int mvcc_be_open(mvcc_backend_t *be, const char *dir, size_t map_size);
/* Closes the environment (aborting an open batch). */
void mvcc_be_close(mvcc_backend_t *be);
/* Translates an LMDB or errno return value into a cetcd code. */
int mvcc_be_err(int rc);
/* Looks up a bucket by name. Returns 0 or CETCD_EINVAL if unknown. */
int mvcc_be_bucket(const mvcc_backend_t *be, const char *name, MDB_dbi *dbi);

/* Starts a batch (one write transaction). Returns 0 or a negative code. */
int mvcc_be_begin(mvcc_backend_t *be);
/* Makes sure data.mdb has disk blocks for headroom bytes past the last committed
 * high-water mark (see mvcc_ensure_space). Returns 0 or -ENOSPC / -errno. */
int mvcc_be_ensure_space(mvcc_backend_t *be, uint64_t headroom);
/* Commits the batch, growing the map and replaying if it is full. */
int mvcc_be_commit(mvcc_backend_t *be);
/* Aborts the batch. */
void mvcc_be_abort(mvcc_backend_t *be);
/* Undoes the open transaction's writes after the first `off` bytes of its redo log (an
 * earlier be->log.len): the transaction restarts and the log up to off is replayed into it.
 * Returns 0 or a negative code (the transaction is then marked failed). */
int mvcc_be_rollback_to(mvcc_backend_t *be, size_t off);
/* Puts key → val in the open batch (flags: 0 or MDB_APPEND). */
int mvcc_be_put(mvcc_backend_t *be, MDB_dbi dbi, const void *key, size_t klen, const void *val, size_t vlen,
                unsigned flags);
/* Reserves vlen bytes for a value to be written with mvcc_be_put_reserved; the pointer
 * stays valid until the next backend call. */
uint8_t *mvcc_be_reserve(mvcc_backend_t *be, MDB_dbi dbi, const void *key, size_t klen, size_t vlen,
                         unsigned flags);
/* Writes the value reserved by the last mvcc_be_reserve. */
int mvcc_be_put_reserved(mvcc_backend_t *be);
/* Deletes key in the open batch (absent is fine). */
int mvcc_be_del(mvcc_backend_t *be, MDB_dbi dbi, const void *key, size_t klen);

/* Returns a transaction to read from: the open batch, or the renewed read transaction.
 * Pair with mvcc_be_read_end. NULL on failure. */
MDB_txn *mvcc_be_read_begin(mvcc_backend_t *be);
/* Ends a read started by mvcc_be_read_begin. */
void mvcc_be_read_end(mvcc_backend_t *be, MDB_txn *txn);
/* Reads a value (borrowed, valid until the read ends). Returns 0, CETCD_EKEYNOTFOUND, or
 * a negative code. */
int mvcc_be_get(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, MDB_val *val);

/* Drops every resident page of the backend's map from the process (MADV_DONTNEED): the
 * map is shared, so nothing is lost (written pages stay in the page cache, dirty until
 * written back) and the next access faults the page in again. Loop thread (the map may
 * move when it grows). */
void mvcc_be_drop_pages(mvcc_backend_t *be);
/* Flushes to disk; thread-safe. */
int mvcc_be_sync(mvcc_backend_t *be);
/* Size of data.mdb in bytes. */
int64_t mvcc_be_size(mvcc_backend_t *be);
/* Bytes of pages in use (high-water mark minus free pages). */
int64_t mvcc_be_size_in_use(mvcc_backend_t *be);

#endif
