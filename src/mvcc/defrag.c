/* Defragmentation: a compacting copy of the LMDB environment (free pages left out) into a
 * temporary file beside data.mdb, fsynced, renamed over data.mdb, and the environment
 * reopened. The in-memory key index refers to revisions, not pages, so it stays valid.
 *
 * Failure safety: until the rename the old file is untouched (a failed copy only removes
 * the temporary file); the rename is atomic, so after a crash data.mdb is either the old
 * file or the complete, synced copy. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/store_int.h"

/* Milliseconds on the monotonic clock. */
static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* fsyncs a directory so a rename in it is durable. Returns 0 or -errno. */
static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = fsync(fd) ? -errno : 0;
  close(fd);
  return rc;
}

/* Opens the environment at be->dir again with the options mvcc_be_open used, reopens
 * every bucket (handles are per environment) and the reusable read transaction. The
 * caller holds be->lock. Returns 0 or a negative code. */
static int reopen_env(mvcc_backend_t *be) {
  int rc = mdb_env_create(&be->env);
  if (rc) {
    be->env = NULL;
    return mvcc_be_err(rc);
  }
  mdb_env_set_maxdbs(be->env, 16);
  mdb_env_set_mapsize(be->env, be->map_size);
  if ((rc = mdb_env_open(be->env, be->dir, MVCC_ENV_FLAGS, 0600))) goto fail;
  MDB_envinfo info;
  mdb_env_info(be->env, &info);
  be->map_size = info.me_mapsize;
  be->allocated_to = 0; /* a new file: allocate ahead again */
  MDB_txn *txn;
  if ((rc = mdb_txn_begin(be->env, NULL, 0, &txn))) goto fail;
  for (int i = 0; i < be->nbuckets; i++) {
    if ((rc = mdb_dbi_open(txn, be->bucket_names[i], MDB_CREATE, &be->buckets[i]))) {
      mdb_txn_abort(txn);
      goto fail;
    }
    if (!strcmp(be->bucket_names[i], "key")) be->key_dbi = be->buckets[i];
    if (!strcmp(be->bucket_names[i], "meta")) be->meta_dbi = be->buckets[i];
  }
  if ((rc = mdb_txn_commit(txn))) goto fail;
  if ((rc = mdb_txn_begin(be->env, NULL, MDB_RDONLY, &be->rtxn))) goto fail;
  mdb_txn_reset(be->rtxn);
  return 0;
fail:
  LOGE("msg=\"cannot reopen the backend after defragmenting\" path=%s error=\"%s\"", be->dir,
       mdb_strerror(rc));
  mdb_env_close(be->env);
  be->env = NULL;
  be->rtxn = NULL;
  return mvcc_be_err(rc);
}

int mvcc_defrag(mvcc_store_t *s, int64_t *size_before, int64_t *size_after) {
  mvcc_backend_t *be = &s->be;
  if (s->in_batch || be->rdepth) return CETCD_EINVAL;
  int frc = mvcc_flush(s);
  if (frc) return frc;
  if (be->wtxn) return CETCD_EINVAL;
  double t0 = now_ms();
  int64_t before = mvcc_be_size(be), in_use = mvcc_be_size_in_use(be);
  if (size_before) *size_before = before;
  char tmp[4096], data[4096];
  snprintf(tmp, sizeof(tmp), "%s/data.mdb.defrag", be->dir);
  snprintf(data, sizeof(data), "%s/data.mdb", be->dir);
  LOGI("msg=\"defragmenting\" path=%s current-db-size-bytes=%" PRId64
       " current-db-size-in-use-bytes=%" PRId64,
       data, before, in_use);

  /* Hold be->lock from the copy to the reopen: the sync thread and snapshot readers (which
   * keep it for their whole life) must not use the environment while it is swapped. Do not
   * wait long for it: a snapshot being streamed may need the loop thread we are blocking. */
  int tries = 0;
  while (pthread_mutex_trylock(&be->lock) != 0) {
    if (++tries > 2000) {
      LOGW("msg=\"defragment skipped: the backend is busy (a snapshot is being sent); retry later\"");
      return -EBUSY;
    }
    usleep(1000);
  }

  /* 1. Compacting copy into the temporary file, made durable. */
  unlink(tmp); /* left over by a crash during an earlier defrag */
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    int rc = -errno;
    pthread_mutex_unlock(&be->lock);
    LOGE("msg=\"cannot create the defragment file\" path=%s error=\"%s\"", tmp, strerror(errno));
    return rc;
  }
  int rc = mvcc_be_err(mdb_env_copyfd2(be->env, fd, MDB_CP_COMPACT));
  if (rc == 0 && fsync(fd) != 0) rc = -errno;
  if (close(fd) != 0 && rc == 0) rc = -errno;
  if (rc) {
    LOGE("msg=\"defragment failed; the backend is unchanged\" path=%s error=\"%s\"", tmp, cetcd_strerror(rc));
    unlink(tmp);
    pthread_mutex_unlock(&be->lock);
    return rc;
  }
  double t_copy = now_ms();

  /* 2. Swap the files with the environment closed. */
  if (be->rtxn) mdb_txn_abort(be->rtxn);
  be->rtxn = NULL;
  mdb_env_close(be->env);
  be->env = NULL;
  if (rename(tmp, data) != 0) {
    rc = -errno;
    LOGE("msg=\"cannot replace the backend file; keeping the old one\" from=%s to=%s error=\"%s\"", tmp, data,
         strerror(errno));
    unlink(tmp);
  } else {
    int drc = sync_dir(be->dir);
    if (drc) LOGW("msg=\"cannot sync the data dir after defragmenting\" error=\"%s\"", strerror(-drc));
  }
  int orc = reopen_env(be);
  pthread_mutex_unlock(&be->lock);
  if (orc) {
    /* The file on disk is complete either way; restarting opens it. */
    LOGE("msg=\"backend unusable after defragmenting; exiting so a restart reopens it\" error=\"%s\"",
         cetcd_strerror(orc));
    abort();
  }
  if (rc) return rc;
  int64_t after = mvcc_be_size(be);
  if (size_after) *size_after = after;
  double t1 = now_ms();
  LOGI("msg=\"finished defragmenting\" path=%s current-db-size-bytes-diff=%" PRId64
       " current-db-size-bytes=%" PRId64 " current-db-size-in-use-bytes=%" PRId64
       " copy-took=%.3fms took=%.3fms",
       data, after - before, after, mvcc_be_size_in_use(be), t_copy - t0, t1 - t0);
  return 0;
}

int mvcc_copy_to_fd(mvcc_store_t *s, int fd) {
  mvcc_backend_t *be = &s->be;
  pthread_mutex_lock(&be->lock); /* the map must not be resized under the copy's reader */
  int rc = mvcc_be_err(mdb_env_copyfd2(be->env, fd, MDB_CP_COMPACT));
  pthread_mutex_unlock(&be->lock);
  return rc;
}

int mvcc_replace_file(mvcc_store_t *s, const char *path) {
  mvcc_backend_t *be = &s->be;
  if (s->in_batch || be->rdepth) return CETCD_EINVAL;
  int frc = mvcc_flush(s);
  if (frc) return frc;
  if (be->wtxn) return CETCD_EINVAL;
  char data[4096];
  snprintf(data, sizeof(data), "%s/data.mdb", be->dir);
  int tries = 0;
  while (pthread_mutex_trylock(&be->lock) != 0) { /* a backend sync or a snapshot reader */
    if (++tries > 2000) {
      int rr = mvcc_restore(s); /* the caller may have dropped what the index attaches */
      return rr ? rr : -EBUSY;
    }
    usleep(1000);
  }
  if (be->rtxn) mdb_txn_abort(be->rtxn);
  be->rtxn = NULL;
  mdb_env_close(be->env);
  be->env = NULL;
  int rc = 0;
  if (rename(path, data) != 0) {
    rc = -errno;
    LOGE("msg=\"cannot replace the backend file; keeping the old one\" from=%s to=%s error=\"%s\"", path,
         data, strerror(errno));
  } else if ((rc = sync_dir(be->dir))) {
    LOGW("msg=\"cannot sync the data dir after replacing the backend\" error=\"%s\"", strerror(-rc));
    rc = 0; /* the rename happened; a crash may bring the old file back, which replay handles */
  }
  int orc = reopen_env(be);
  pthread_mutex_unlock(&be->lock);
  if (orc) {
    LOGE("msg=\"backend unusable after replacing it; exiting so a restart reopens it\" error=\"%s\"",
         cetcd_strerror(orc));
    abort();
  }
  int rr = mvcc_restore(s);
  return rc ? rc : rr;
}

/* Opens the closed LMDB file at path as an environment of its own (no lock file). Returns
 * 0 or an LMDB code. */
static int open_file_env(const char *path, unsigned flags, MDB_env **env) {
  int rc = mdb_env_create(env);
  if (rc) return rc;
  mdb_env_set_maxdbs(*env, 16);
  if ((rc = mdb_env_open(*env, path, MDB_NOSUBDIR | MDB_NOLOCK | flags, 0600))) mdb_env_close(*env);
  return rc;
}

int mvcc_file_consistent_index(const char *path, uint64_t *ci) {
  *ci = 0;
  MDB_env *env;
  int rc = open_file_env(path, MDB_RDONLY, &env);
  if (rc) return mvcc_be_err(rc);
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_val k = {16, "consistent_index"}, v;
  if (!(rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))) {
    if (!(rc = mdb_dbi_open(txn, "meta", 0, &dbi)) && !(rc = mdb_get(txn, dbi, &k, &v)) && v.mv_size == 8)
      for (int i = 0; i < 8; i++) *ci = *ci << 8 | ((const uint8_t *)v.mv_data)[i];
    mdb_txn_abort(txn);
  }
  mdb_env_close(env);
  return rc ? mvcc_be_err(rc) : 0;
}

int mvcc_file_put_meta(const char *path, const char *name, const void *val, size_t n) {
  MDB_env *env;
  int rc = open_file_env(path, 0, &env);
  if (rc) return mvcc_be_err(rc);
  MDB_txn *txn = NULL;
  MDB_dbi dbi;
  if (!(rc = mdb_txn_begin(env, NULL, 0, &txn))) {
    MDB_val k = {strlen(name), (void *)name}, v = {n, (void *)val};
    if (!(rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi)) && !(rc = mdb_put(txn, dbi, &k, &v, 0)))
      rc = mdb_txn_commit(txn);
    else
      mdb_txn_abort(txn);
  }
  if (!rc) rc = mdb_env_sync(env, 1);
  mdb_env_close(env);
  return rc ? mvcc_be_err(rc) : 0;
}
