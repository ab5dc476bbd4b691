/* mvcc: the multi-version key-value store (etcd's mvcc package plus the KV parts of its
 * applier) on LMDB, with an in-memory key index.
 *
 * Threading: every function runs on the loop thread, except mvcc_sync (any thread).
 * Writes happen inside a batch (mvcc_batch_begin .. mvcc_batch_commit); a write called
 * outside a batch opens and commits its own. Each request that changes something takes
 * one new main revision. Reads inside a batch see the batch's writes; reads outside read
 * committed state.
 *
 * Responses are allocated in the caller's arena; the caller fills the header's
 * cluster_id, member_id and raft_term, mvcc fills header->revision. */
#ifndef CETCD_MVCC_H
#define CETCD_MVCC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "kv.pb-c.h"
#include "rpc.pb-c.h"

typedef struct mvcc_store mvcc_store_t;

/* Open options. Zero-initialize; every hook may be NULL. */
typedef struct mvcc_opts {
  size_t map_size; /* LMDB map size in bytes; 0 = 8 GiB (grows when full) */
  void *hook_ctx;  /* passed to every hook */
  /* True if the lease exists. NULL: any lease != 0 is unknown (CETCD_ELEASENOTFOUND). */
  bool (*lease_exists)(void *ctx, int64_t lease);
  /* A key now belongs to lease (also called at open for every live key with a lease). */
  void (*lease_attach)(void *ctx, int64_t lease, const uint8_t *key, size_t klen);
  /* A key no longer belongs to lease (overwritten or deleted). */
  void (*lease_detach)(void *ctx, int64_t lease, const uint8_t *key, size_t klen);
  /* Called after each revision's writes with its events in order (prev_kv set when the
   * key existed, unless prev_wanted said no). Everything is borrowed for the duration of
   * the call. */
  void (*on_events)(void *ctx, int64_t rev, const Mvccpb__Event *const *events, size_t n);
  /* Optional: false when nobody listens to events right now, so writes skip building
   * them (and reading each overwritten value back for prev_kv). */
  bool (*events_wanted)(void *ctx);
  /* Optional: false when no event consumer needs prev_kv right now, so an overwrite or
   * delete is not read back for it (unless the request itself asked for prev_kv). */
  bool (*prev_wanted)(void *ctx);
  /* 0: mvcc_batch_commit commits to LMDB at once. Otherwise committed batches stay in the
   * open LMDB transaction (reads on the loop thread see them) until mvcc_flush, which the
   * owner calls within this many milliseconds: each LMDB commit syncs its data pages
   * (MDB_NOMETASYNC, so a power cut never leaves a meta page pointing at unwritten pages),
   * and one commit for many batches keeps that cost off the write path. The WAL makes the
   * batches durable meanwhile. */
  uint32_t commit_interval_ms;
  /* Called when a batch's LMDB commit was deferred and none was before: the owner must
   * call mvcc_flush within commit_interval_ms. */
  void (*on_deferred)(void *ctx);
} mvcc_opts_t;

/* ---- lifecycle ---- */

/* Opens (creating) the store in directory dir (created if missing) and rebuilds the key
 * index; opts is copied (NULL = defaults). Resumes an interrupted compaction. On success
 * *out is owned by the caller (mvcc_close). Returns 0, CETCD_ECORRUPT, or -errno. */
int mvcc_open(const char *dir, const mvcc_opts_t *opts, mvcc_store_t **out);
/* Closes the store, aborting an open batch and committing deferred ones. Does not sync
 * (call mvcc_sync first). */
void mvcc_close(mvcc_store_t *s);
/* Flushes LMDB to disk (meta pages are written with MDB_NOMETASYNC). Safe from any thread while the
 * loop thread works. Returns 0 or a negative code. */
int mvcc_sync(mvcc_store_t *s);

/* Lets go of the backend map's resident pages (they stay in the kernel's page cache; the
 * next read faults them in again). Rebuilding the key index reads every revision, and
 * writes touch new pages, so without this the whole file would count in the server's RSS.
 * Called after the index is rebuilt and after each periodic backend sync. Loop thread. */
void mvcc_drop_pages(mvcc_store_t *s);

/* ---- batches ---- */

/* LMDB writes data.mdb through a shared map (MDB_WRITEMAP) and the file is sparse: on a
 * full file system, the first write to a page with no disk block behind it kills the
 * process with SIGBUS. Before work that may grow the file by up to `headroom` bytes past
 * the last committed high-water mark, the caller reserves them here; blocks are allocated
 * with fallocate in 1 MiB steps, so a full disk becomes -ENOSPC here, before anything is
 * written. Returns 0, -ENOSPC or another -errno. File systems without fallocate get no
 * protection (logged once). */
int mvcc_ensure_space(mvcc_store_t *s, uint64_t headroom);

/* Opens the batch's write transaction. Returns 0, CETCD_EINVAL if one is open, or a
 * negative code. */
int mvcc_batch_begin(mvcc_store_t *s);
/* Stores consistent_index in the batch and commits it. Returns 0 or a negative code (the
 * batch is then rolled back as by mvcc_batch_abort). */
int mvcc_batch_commit(mvcc_store_t *s, uint64_t consistent_index);
/* Rolls the batch back, including the in-memory index (rebuilt from LMDB). Lease hooks
 * and events already delivered are not undone. */
void mvcc_batch_abort(mvcc_store_t *s);
/* True while a batch is open. */
bool mvcc_in_batch(const mvcc_store_t *s);
/* Commits the batches whose LMDB commit was deferred (commit_interval_ms); a no-op when
 * there are none or a batch is open. Call on the loop thread before anything that reads
 * committed state from another thread (mvcc_sync's caller deciding what the sync covers,
 * snapshot views, mvcc_copy_to_fd). Returns 0 or a negative code: the in-memory state is
 * then ahead of the backend, and the caller must stop (the WAL replays the batches). */
int mvcc_flush(mvcc_store_t *s);
/* True while committed batches wait for mvcc_flush. */
bool mvcc_flush_pending(const mvcc_store_t *s);

/* ---- KV requests (etcd semantics) ---- */

/* Range at req->revision (<= 0: latest). *resp is arena-owned. Returns 0,
 * CETCD_ECOMPACTED, CETCD_EFUTUREREV, or a negative backend code. */
int mvcc_apply_range(mvcc_store_t *s, const Etcdserverpb__RangeRequest *req, arena_t *arena,
                     Etcdserverpb__RangeResponse **resp);
/* Put (a write). Returns 0, CETCD_ELEASENOTFOUND, CETCD_EKEYNOTFOUND (ignore_value or
 * ignore_lease on a missing key), or a negative backend code. */
int mvcc_apply_put(mvcc_store_t *s, const Etcdserverpb__PutRequest *req, arena_t *arena,
                   Etcdserverpb__PutResponse **resp);
/* DeleteRange (a write; deleting nothing takes no revision). Returns 0 or a backend code. */
int mvcc_apply_delete_range(mvcc_store_t *s, const Etcdserverpb__DeleteRangeRequest *req, arena_t *arena,
                            Etcdserverpb__DeleteRangeResponse **resp);
/* Txn: compares, then the success or failure ops in one revision (none if nothing
 * changed). Read-only txns may be called outside a batch. The request should have
 * passed mvcc_validate_txn. Returns 0, CETCD_EKEYNOTFOUND, CETCD_ELEASENOTFOUND,
 * CETCD_ECOMPACTED, CETCD_EFUTUREREV (a Range op's revision), or a backend code. */
int mvcc_apply_txn(mvcc_store_t *s, const Etcdserverpb__TxnRequest *req, arena_t *arena,
                   Etcdserverpb__TxnResponse **resp);
/* Compacts history at req->revision (index and LMDB, in the open batch). Returns 0,
 * CETCD_EFUTUREREV, CETCD_ECOMPACTED, or a backend code. */
int mvcc_apply_compact(mvcc_store_t *s, const Etcdserverpb__CompactionRequest *req, arena_t *arena,
                       Etcdserverpb__CompactionResponse **resp);
/* True if every op (top level) is a Range (etcd's isTxnReadonly). */
bool mvcc_txn_is_readonly(const Etcdserverpb__TxnRequest *req);
/* etcd's checkTxnRequest + checkIntervals: returns 0, CETCD_ETOOMANYOPS, CETCD_EKEYEMPTY,
 * CETCD_EVALUEPROVIDED, CETCD_ELEASEPROVIDED, CETCD_EKEYNOTFOUND (an empty op) or
 * CETCD_EDUPKEY. */
int mvcc_validate_txn(const Etcdserverpb__TxnRequest *req, int max_ops);
/* Deletes the given keys (those live) in one revision, as a lease revoke does.
 * *rev (optional) gets the store revision after. Returns 0 or a backend code. */
int mvcc_delete_keys(mvcc_store_t *s, const ProtobufCBinaryData *keys, size_t n, int64_t *rev);

/* ---- history (for watchers catching up) ---- */

/* A read of the events of a span of revisions. Zero-initialize. */
typedef struct mvcc_events_query {
  int64_t from_rev, to_rev; /* inclusive; to_rev is capped at the current revision */
  size_t max_revs;          /* stop after this many revisions were scanned (0 = 1000) */
  size_t max_bytes;         /* the returned events' size in a WatchResponse (prev_kv
                             * included) stays within this (0 = 8 MiB): whole revisions
                             * that fit, or the first revision alone if it is larger */
  bool prev_kv;             /* fill prev_kv (the key at rev-1) on non-create events */
  /* Optional key filter: only events whose key it accepts are returned (key borrowed). */
  bool (*match)(void *ctx, const uint8_t *key, size_t klen);
  void *match_ctx;
} mvcc_events_query_t;

/* The result of mvcc_events_range. evs is heap-owned (mvcc_events_free); the events and
 * their KeyValues live in the caller's arena. */
typedef struct mvcc_events {
  Mvccpb__Event **evs; /* in revision order (main, then sub); a DELETE's kv holds the key
                        * and mod_revision = the deleting revision */
  size_t n;
  int64_t next_rev; /* first revision not read: to_rev + 1 when the span was read fully */
} mvcc_events_t;

/* Reads the events of revisions [q->from_rev, q->to_rev] from the backend (a short LMDB
 * read; inside an open batch it sees the batch). Returns 0, CETCD_ECOMPACTED (from_rev <
 * the compacted revision), CETCD_EINVAL (bad span), CETCD_ECORRUPT or a backend code. */
int mvcc_events_range(mvcc_store_t *s, const mvcc_events_query_t *q, arena_t *arena, mvcc_events_t *out);
/* Frees the array of a mvcc_events_range result (not the arena-owned events). */
void mvcc_events_free(mvcc_events_t *out);

/* ---- hashes ---- */

/* crc32c over every bucket's name and records except meta/consistent_index (etcd's
 * backend Hash). Returns 0 or a backend code. */
int mvcc_hash(mvcc_store_t *s, uint32_t *hash);
/* etcd's HashKV at rev (0 = current): *compact_rev gets the compacted revision and
 * *hash_rev the revision hashed (both optional). Returns 0, CETCD_ECOMPACTED (rev <=
 * compacted), CETCD_EFUTUREREV, or a backend code. */
int mvcc_hash_kv(mvcc_store_t *s, int64_t rev, uint32_t *hash, int64_t *compact_rev, int64_t *hash_rev);

/* ---- accessors ---- */

/* Current store revision (1 for an empty store). */
int64_t mvcc_rev(const mvcc_store_t *s);
/* Last compacted revision, -1 if never compacted. */
int64_t mvcc_compact_rev(const mvcc_store_t *s);
/* Consistent index stored by the last committed batch (0 if none). */
uint64_t mvcc_consistent_index(const mvcc_store_t *s);
/* Physical size of data.mdb in bytes. */
int64_t mvcc_db_size(mvcc_store_t *s);
/* Bytes of pages in use (approximate). */
int64_t mvcc_db_size_in_use(mvcc_store_t *s);
/* Number of live keys. */
size_t mvcc_key_count(const mvcc_store_t *s);
/* Copies meta value `name` into buf; *n is the capacity in, the length out. Returns 0,
 * CETCD_EKEYNOTFOUND, -ERANGE (buf too small; *n set to the length), or a backend code. */
int mvcc_meta_get(mvcc_store_t *s, const char *name, void *buf, size_t *n);
/* Stores meta value `name` (in the open batch, or its own). Returns 0 or a backend code. */
int mvcc_meta_put(mvcc_store_t *s, const char *name, const void *buf, size_t n);

/* ---- other buckets (lease, auth, authUsers, authRoles, members, members_removed,
 * cluster, alarm) for the modules that persist state beside the KV store ---- */

/* Copies a value like mvcc_meta_get. CETCD_EINVAL for an unknown bucket. */
int mvcc_bucket_get(mvcc_store_t *s, const char *bucket, const void *key, size_t klen, void *buf, size_t *n);
/* Stores a value in the open batch (or its own). */
int mvcc_bucket_put(mvcc_store_t *s, const char *bucket, const void *key, size_t klen, const void *val,
                    size_t vlen);
/* Deletes a key (absent is fine). */
int mvcc_bucket_del(mvcc_store_t *s, const char *bucket, const void *key, size_t klen);
/* Calls fn for every record of the bucket in key order (borrowed bytes) until it returns
 * non-zero, which is returned. */
int mvcc_bucket_foreach(mvcc_store_t *s, const char *bucket,
                        int (*fn)(void *ctx, const void *key, size_t klen, const void *val, size_t vlen),
                        void *ctx);

/* ---- defragmentation (defrag.c) ---- */

/* Rewrites the backend compactly (LMDB compacting copy into data.mdb.defrag in the same
 * directory, fsync, rename over data.mdb, reopen), so the file shrinks to the pages in use.
 * Blocks the calling (loop) thread for the copy; the sync thread waits. No batch or read
 * may be open. The old file stays intact until the rename. *size_before / *size_after
 * (optional) get the file sizes. Returns 0, CETCD_EINVAL (a batch or read is open), or a
 * negative code (the backend is then unchanged). Aborts the process only if the
 * environment cannot be reopened after the swap (the data on disk is intact). */
int mvcc_defrag(mvcc_store_t *s, int64_t *size_before, int64_t *size_after);
/* Writes a compacting copy of the backend (a complete LMDB file, as of the last committed
 * batch) to fd. Meant for a worker thread: map growth on the loop thread waits for it.
 * Returns 0 or a backend code. */
int mvcc_copy_to_fd(mvcc_store_t *s, int fd);
/* Replaces the backend with the complete LMDB file at path (in the same file system):
 * closes the environment, renames path over data.mdb, syncs the directory, reopens it and
 * rebuilds the key index, revisions and consistent index (mvcc_restore; the lease_attach
 * hook runs for every live key, also when the swap did not happen). No batch or read may
 * be open. Returns 0, CETCD_EINVAL, -EBUSY (a reader held the backend for 2 s: nothing
 * changed) or a negative code (the rename failed: the old backend is reopened unchanged). Aborts only if the
 * environment cannot be reopened (the file on disk is complete; a restart opens it). */
int mvcc_replace_file(mvcc_store_t *s, const char *path);
/* Stores name=val in the meta bucket of the closed LMDB file at path (an image about to
 * become the backend) and syncs it. Returns 0 or a backend code. */
int mvcc_file_put_meta(const char *path, const char *name, const void *val, size_t n);
/* Reads the consistent index stored in the closed LMDB file at path (0 if it has none).
 * Returns 0 or a backend code. */
int mvcc_file_consistent_index(const char *path, uint64_t *ci);

/* ---- snapshots and restore (snapshot_read.c) ---- */

typedef struct mvcc_snap mvcc_snap_t;
typedef struct mvcc_import mvcc_import_t;

/* Sets *names to the backend's bucket names (borrowed, in byte order); returns how many. */
int mvcc_bucket_names(mvcc_store_t *s, const char *const **names);
/* Opens a consistent read view of every bucket (an LMDB read transaction of its own).
 * Any one thread may use it, and must be the one that opens and closes it; map growth
 * (and mvcc_sync) wait until it is closed, so keep it short-lived and never open it on
 * the loop thread. *out is owned by the caller (mvcc_snap_close). Returns 0 or a backend
 * code. */
int mvcc_snap_open(mvcc_store_t *s, mvcc_snap_t **out);
/* Calls fn for every record of bucket in the view, in key order (borrowed bytes, valid
 * until the view closes) until it returns non-zero, which is returned. CETCD_EINVAL for
 * an unknown bucket. */
int mvcc_snap_foreach(mvcc_snap_t *sn, const char *bucket,
                      int (*fn)(void *ctx, const void *key, size_t klen, const void *val, size_t vlen),
                      void *ctx);
/* Closes the view (NULL is fine). */
void mvcc_snap_close(mvcc_snap_t *sn);

/* Starts importing records into a new store in dir (which must hold no data.mdb yet; the
 * records go to dir/import.tmp and move into place on commit, so an interrupted import
 * leaves nothing behind). Call before mvcc_open. *out is owned by the caller (commit or
 * abort). Returns 0, CETCD_EINVAL (dir already has data) or a backend code. */
int mvcc_import_open(const char *dir, mvcc_import_t **out);
/* Adds one record (fastest in key order; bytes copied). Commits every 64 MiB. Returns 0,
 * CETCD_EINVAL (unknown bucket, or a key LMDB cannot hold) or a backend code. */
int mvcc_import_put(mvcc_import_t *im, const char *bucket, const void *key, size_t klen, const void *val,
                    size_t vlen);
/* Commits, syncs and moves the store into place; frees im (always). Returns 0 or a
 * negative code. */
int mvcc_import_commit(mvcc_import_t *im);
/* Drops the import and its files (NULL is fine). */
void mvcc_import_abort(mvcc_import_t *im);

#endif
