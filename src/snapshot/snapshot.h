/* etcd v3 snapshots: a bbolt image of the backend (what Maintenance.Snapshot streams,
 * api/snapshot_rpc.c), and the import at start of a bbolt `member/snap/db` left by
 * `etcdctl snapshot restore`. */
#ifndef CETCD_SNAPSHOT_H
#define CETCD_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mvcc/mvcc.h"

/* This member as etcd records it in the `members` bucket (all borrowed). */
typedef struct snapshot_member {
  uint64_t id;
  const char *name;
  char *const *peer_urls;
  size_t n_peer_urls;
  char *const *client_urls;
  size_t n_client_urls;
} snapshot_member_t;

/* Writes a bbolt image of a consistent view of every bucket of s to fd (borrowed, empty,
 * written from offset 0). Records etcd has and cetcd may not keep are added when absent:
 * auth/authRevision, cluster/clusterVersion and this member in `members` (m may be NULL
 * to skip it); cetcd's private meta keys ("cetcd_*") are left out. Runs on any thread
 * except the loop thread (it holds an mvcc read view). *size (optional) gets the image
 * size. cancel (optional) is polled between records.
 * Returns 0, CETCD_ECANCELED, or a negative code. */
int snapshot_write_bbolt(mvcc_store_t *s, const snapshot_member_t *m, int fd, const atomic_bool *cancel,
                         uint64_t *size);

/* Imports every bucket of the bbolt file db_path into a new LMDB store in lmdb_dir (see
 * mvcc_import_open), skipping buckets cetcd does not keep and cetcd-private meta keys.
 * *records (optional) gets how many were imported. Returns 0, CETCD_ECORRUPT (message
 * logged), or a negative code. */
int snapshot_import_bbolt(const char *db_path, const char *lmdb_dir, uint64_t *records);

/* Start-up hook: if snap_dir/db exists (written by `etcdctl snapshot restore`) and
 * snap_dir holds no LMDB data yet, imports it, renames it to db.imported, and moves
 * etcd's WAL dir wal_dir (a different format) aside to <wal_dir>.etcd-restore and etcd's
 * snap files in snap_dir to <name>.snap.etcd-restore. Returns 0
 * (also when there is nothing to do) or a negative code (logged). */
int snapshot_restore_at_start(const char *snap_dir, const char *wal_dir);

#endif
