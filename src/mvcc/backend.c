/* LMDB environment, buckets, batches with a redo log, reads, sync and sizes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "base/alloc.h"
#include "base/fsutil.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/backend_int.h"

/* etcd's buckets, in byte order (the order the whole-backend hash visits them). */
static const char *const bucket_names[] = {"alarm", "auth",  "authRoles", "authUsers",       "cluster",
                                           "key",   "lease", "members",   "members_removed", "meta"};
enum { NBUCKETS = sizeof(bucket_names) / sizeof(bucket_names[0]) };

enum { OP_PUT = 1, OP_DEL = 2 };

/* Redo-log record header; key and value bytes follow. */
typedef struct log_rec {
  uint32_t op, dbi, flags, klen, vlen;
} log_rec_t;

int mvcc_be_err(int rc) {
  if (rc == 0) return 0;
  if (rc > 0) return -rc;
  switch (rc) {
    case MDB_MAP_FULL:
      return CETCD_ENOSPACE;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return CETCD_ECORRUPT;
    case MDB_NOTFOUND:
      return CETCD_EKEYNOTFOUND;
    default:
      LOGE("msg=\"lmdb error\" error=\"%s\"", mdb_strerror(rc));
      return -EIO;
  }
}

int mvcc_be_open(mvcc_backend_t *be, const char *dir, size_t map_size) {
  memset(be, 0, sizeof(*be));
  pthread_mutex_init(&be->lock, NULL);
  be->map_size = map_size ? map_size : (size_t)8 << 30;
  be->dir = xstrdup(dir);
  int rc = fs_mkdir_durable(dir);
  if (rc) return rc;
  if ((rc = mdb_env_create(&be->env))) return mvcc_be_err(rc);
  mdb_env_set_maxdbs(be->env, 16);
  mdb_env_set_mapsize(be->env, be->map_size);
  if ((rc = mdb_env_open(be->env, dir, MVCC_ENV_FLAGS, 0600))) {
    LOGE("msg=\"cannot open lmdb\" path=%s error=\"%s\"", dir, mdb_strerror(rc));
    mdb_env_close(be->env);
    be->env = NULL;
    return mvcc_be_err(rc);
  }
  /* mdb_env_open may have just created data.mdb: make its name durable */
  if ((rc = fs_sync_dir(dir))) {
    LOGE("msg=\"cannot sync the backend dir\" path=%s error=\"%s\"", dir, strerror(-rc));
    return rc;
  }
  MDB_envinfo info;
  MDB_stat st;
  mdb_env_info(be->env, &info);
  mdb_env_stat(be->env, &st);
  be->map_size = info.me_mapsize; /* an existing, larger file keeps its size */
  be->psize = st.ms_psize;
  MDB_txn *txn;
  if ((rc = mdb_txn_begin(be->env, NULL, 0, &txn))) return mvcc_be_err(rc);
  for (int i = 0; i < NBUCKETS; i++) {
    if ((rc = mdb_dbi_open(txn, bucket_names[i], MDB_CREATE, &be->buckets[i]))) {
      mdb_txn_abort(txn);
      return mvcc_be_err(rc);
    }
    be->bucket_names[i] = bucket_names[i];
    if (!strcmp(bucket_names[i], "key")) be->key_dbi = be->buckets[i];
    if (!strcmp(bucket_names[i], "meta")) be->meta_dbi = be->buckets[i];
  }
  be->nbuckets = NBUCKETS;
  if ((rc = mdb_txn_commit(txn))) return mvcc_be_err(rc);
  if ((rc = mdb_txn_begin(be->env, NULL, MDB_RDONLY, &be->rtxn))) return mvcc_be_err(rc);
  mdb_txn_reset(be->rtxn);
  return 0;
}

void mvcc_be_close(mvcc_backend_t *be) {
  if (be->wtxn) mvcc_be_abort(be);
  if (be->rtxn) mdb_txn_abort(be->rtxn);
  be->rtxn = NULL;
  if (be->env) mdb_env_close(be->env);
  be->env = NULL;
  buf_free(&be->log);
  free(be->dir);
  be->dir = NULL;
  pthread_mutex_destroy(&be->lock);
}

int mvcc_be_bucket(const mvcc_backend_t *be, const char *name, MDB_dbi *dbi) {
  for (int i = 0; i < be->nbuckets; i++)
    if (!strcmp(be->bucket_names[i], name)) {
      *dbi = be->buckets[i];
      return 0;
    }
  return CETCD_EINVAL;
}

/* Doubles the map size. No transaction may be active. */
static int grow_map(mvcc_backend_t *be) {
  size_t ns = be->map_size * 2;
  pthread_mutex_lock(&be->lock);
  int rc = mdb_env_set_mapsize(be->env, ns);
  pthread_mutex_unlock(&be->lock);
  if (rc) return mvcc_be_err(rc);
  LOGI("msg=\"grew backend map\" old-size=%zu new-size=%zu", be->map_size, ns);
  be->map_size = ns;
  return 0;
}

/* Bytes up to the highest page ever used. */
static size_t high_water(mvcc_backend_t *be) {
  MDB_envinfo info;
  mdb_env_info(be->env, &info);
  return ((size_t)info.me_last_pgno + 1) * be->psize;
}

/* Blocks are allocated ahead of the high-water mark in steps of this many bytes. */
#define ALLOC_STEP ((uint64_t)1 << 20)

int mvcc_be_ensure_space(mvcc_backend_t *be, uint64_t headroom) {
  uint64_t need = (uint64_t)high_water(be) + headroom;
  if (need <= be->allocated_to || be->no_fallocate) return 0;
  uint64_t to = (need + ALLOC_STEP - 1) / ALLOC_STEP * ALLOC_STEP;
  if (to > be->map_size) to = be->map_size; /* the file is map_size long; the map grows first */
  if (to <= be->allocated_to) return 0;
  int fd;
  if (mdb_env_get_fd(be->env, &fd)) return -EBADF;
  /* mode 0 inside the file's length: blocks for the sparse range, the size is unchanged */
  if (fallocate(fd, 0, (off_t)be->allocated_to, (off_t)(to - be->allocated_to)) != 0) {
    int err = errno;
    if (err == EOPNOTSUPP) {
      be->no_fallocate = true;
      LOGW(
          "msg=\"the data dir's file system cannot allocate ahead; a full disk will stop the server "
          "with SIGBUS instead of refusing writes\" path=%s",
          be->dir);
      return 0;
    }
    return -err;
  }
  be->allocated_to = (size_t)to;
  return 0;
}

int mvcc_be_begin(mvcc_backend_t *be) {
  if (be->wtxn) return CETCD_EINVAL;
  while (high_water(be) > be->map_size / 4 * 3) {
    int rc = grow_map(be);
    if (rc) return rc;
  }
  int rc = mdb_txn_begin(be->env, NULL, 0, &be->wtxn);
  if (rc) {
    be->wtxn = NULL;
    return mvcc_be_err(rc);
  }
  buf_reset(&be->log);
  be->failed = false;
  return 0;
}

/* Applies one logged record to the open transaction. */
static int apply_rec(mvcc_backend_t *be, const uint8_t *p) {
  log_rec_t h;
  memcpy(&h, p, sizeof(h));
  MDB_val k = {h.klen, (void *)(p + sizeof(h))};
  if (h.op == OP_PUT) {
    MDB_val v = {h.vlen, (void *)(p + sizeof(h) + h.klen)};
    int rc = mdb_put(be->wtxn, h.dbi, &k, &v, h.flags);
    if (rc == MDB_KEYEXIST && (h.flags & MDB_APPEND)) rc = mdb_put(be->wtxn, h.dbi, &k, &v, 0);
    return rc;
  }
  int rc = mdb_del(be->wtxn, h.dbi, &k, NULL);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Aborts the write transaction, begins a new one and replays the redo log up to `upto`
 * bytes into it. Returns 0 or an LMDB code (MDB_MAP_FULL included). */
static int restart_and_replay(mvcc_backend_t *be, size_t upto) {
  if (be->wtxn) mdb_txn_abort(be->wtxn);
  be->wtxn = NULL;
  int rc = mdb_txn_begin(be->env, NULL, 0, &be->wtxn);
  if (rc) {
    be->wtxn = NULL;
    return rc;
  }
  size_t off = 0;
  while (off < upto) {
    log_rec_t h;
    memcpy(&h, be->log.data + off, sizeof(h));
    if ((rc = apply_rec(be, be->log.data + off))) return rc;
    off += sizeof(h) + h.klen + h.vlen;
  }
  return 0;
}

/* After MDB_MAP_FULL: aborts, grows the map, restarts the batch and replays the log. */
static int grow_and_replay(mvcc_backend_t *be) {
  for (int tries = 0; tries < 8; tries++) {
    if (be->wtxn) mdb_txn_abort(be->wtxn);
    be->wtxn = NULL;
    int rc = grow_map(be);
    if (rc) return rc;
    rc = restart_and_replay(be, be->log.len);
    if (rc == 0) return 0;
    if (!be->wtxn) return mvcc_be_err(rc);
    if (rc != MDB_MAP_FULL) return mvcc_be_err(rc);
  }
  return CETCD_ENOSPACE;
}

int mvcc_be_rollback_to(mvcc_backend_t *be, size_t off) {
  if (!be->wtxn || off > be->log.len) return CETCD_EINVAL;
  int rc = restart_and_replay(be, off);
  while (rc == MDB_MAP_FULL && be->wtxn) {
    int r = grow_map(be);
    if (r) return r;
    rc = restart_and_replay(be, off);
  }
  be->log.len = off;
  be->failed = rc != 0;
  return mvcc_be_err(rc);
}

/* Appends a record to the redo log; returns its offset. */
static size_t log_append(mvcc_backend_t *be, unsigned op, MDB_dbi dbi, unsigned flags, const void *key,
                         size_t klen, size_t vlen) {
  log_rec_t h = {op, dbi, flags, (uint32_t)klen, (uint32_t)vlen};
  buf_reserve(&be->log, sizeof(h) + klen + vlen);
  size_t off = be->log.len;
  memcpy(be->log.data + off, &h, sizeof(h));
  if (klen) memcpy(be->log.data + off + sizeof(h), key, klen);
  be->log.len += sizeof(h) + klen + vlen;
  return off;
}

/* Applies the record at off, growing the map on MDB_MAP_FULL. */
static int apply_logged(mvcc_backend_t *be, size_t off) {
  if (!be->wtxn) return CETCD_EINVAL;
  int rc = apply_rec(be, be->log.data + off);
  if (rc == MDB_MAP_FULL)
    rc = grow_and_replay(be);
  else
    rc = mvcc_be_err(rc);
  if (rc) be->failed = true;
  return rc;
}

uint8_t *mvcc_be_reserve(mvcc_backend_t *be, MDB_dbi dbi, const void *key, size_t klen, size_t vlen,
                         unsigned flags) {
  be->reserved_off = log_append(be, OP_PUT, dbi, flags, key, klen, vlen);
  return be->log.data + be->reserved_off + sizeof(log_rec_t) + klen;
}

int mvcc_be_put_reserved(mvcc_backend_t *be) { return apply_logged(be, be->reserved_off); }

int mvcc_be_put(mvcc_backend_t *be, MDB_dbi dbi, const void *key, size_t klen, const void *val, size_t vlen,
                unsigned flags) {
  uint8_t *p = mvcc_be_reserve(be, dbi, key, klen, vlen, flags);
  if (vlen) memcpy(p, val, vlen);
  return mvcc_be_put_reserved(be);
}

int mvcc_be_del(mvcc_backend_t *be, MDB_dbi dbi, const void *key, size_t klen) {
  return apply_logged(be, log_append(be, OP_DEL, dbi, 0, key, klen, 0));
}

int mvcc_be_commit(mvcc_backend_t *be) {
  if (!be->wtxn) return CETCD_EINVAL;
  if (be->failed) {
    mvcc_be_abort(be);
    return -EIO;
  }
  int rc = mdb_txn_commit(be->wtxn);
  be->wtxn = NULL;
  while (rc == MDB_MAP_FULL) {
    int r = grow_and_replay(be);
    if (r) {
      mvcc_be_abort(be);
      return r;
    }
    rc = mdb_txn_commit(be->wtxn);
    be->wtxn = NULL;
  }
  if (be->log.cap > (1u << 24)) buf_free(&be->log); /* do not pin a huge batch's memory */
  buf_reset(&be->log);
  return mvcc_be_err(rc);
}

void mvcc_be_abort(mvcc_backend_t *be) {
  if (be->wtxn) mdb_txn_abort(be->wtxn);
  be->wtxn = NULL;
  buf_reset(&be->log);
  be->failed = false;
}

MDB_txn *mvcc_be_read_begin(mvcc_backend_t *be) {
  if (be->wtxn) return be->wtxn;
  if (be->rdepth++ == 0) {
    int rc = mdb_txn_renew(be->rtxn);
    if (rc) {
      LOGE("msg=\"cannot renew lmdb read txn\" error=\"%s\"", mdb_strerror(rc));
      be->rdepth = 0;
      return NULL;
    }
  }
  return be->rtxn;
}

void mvcc_be_read_end(mvcc_backend_t *be, MDB_txn *txn) {
  if (!txn || txn != be->rtxn) return;
  if (--be->rdepth == 0) mdb_txn_reset(be->rtxn);
}

int mvcc_be_get(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, MDB_val *val) {
  MDB_val k = {klen, (void *)key};
  return mvcc_be_err(mdb_get(txn, dbi, &k, val));
}

void mvcc_be_drop_pages(mvcc_backend_t *be) {
  /* LMDB does not tell where its map is (me_mapaddr is set only with MDB_FIXEDMAP): find
   * the mappings of data.mdb by device and inode */
  int fd;
  struct stat st;
  if (!be->env || mdb_env_get_fd(be->env, &fd) || fstat(fd, &st)) return;
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof(line), f)) {
    unsigned long lo, hi, ino;
    unsigned maj, min;
    if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu", &lo, &hi, &maj, &min, &ino) != 5) continue;
    if (ino != (unsigned long)st.st_ino || maj != major(st.st_dev) || min != minor(st.st_dev)) continue;
    /* a shared file map: dirty pages stay dirty in the page cache, later reads fault them in */
    if (madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0)
      LOGW("msg=\"cannot drop the backend map's pages\" error=\"%s\"", strerror(errno));
  }
  fclose(f);
}

int mvcc_be_sync(mvcc_backend_t *be) {
  pthread_mutex_lock(&be->lock);
  int rc = mdb_env_sync(be->env, 1);
  pthread_mutex_unlock(&be->lock);
  return mvcc_be_err(rc);
}

int64_t mvcc_be_size(mvcc_backend_t *be) {
  /* With MDB_WRITEMAP the file is a sparse map of map_size bytes; the physical size is
   * the high-water mark of pages LMDB has ever used (it only shrinks with defrag). */
  MDB_envinfo info;
  mdb_env_info(be->env, &info);
  return (int64_t)(((size_t)info.me_last_pgno + 1) * be->psize);
}

int64_t mvcc_be_size_in_use(mvcc_backend_t *be) {
  MDB_envinfo info;
  mdb_env_info(be->env, &info);
  size_t pages = (size_t)info.me_last_pgno + 1, free_pages = 0;
  MDB_txn *txn = mvcc_be_read_begin(be);
  if (txn) {
    MDB_cursor *c;
    if (mdb_cursor_open(txn, 0 /* FREE_DBI */, &c) == 0) {
      MDB_val k, v;
      while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
        size_t n;
        if (v.mv_size >= sizeof(n)) {
          memcpy(&n, v.mv_data, sizeof(n));
          free_pages += n;
        }
      }
      mdb_cursor_close(c);
    }
    mvcc_be_read_end(be, txn);
  }
  if (free_pages > pages) free_pages = pages;
  return (int64_t)((pages - free_pages) * be->psize);
}
