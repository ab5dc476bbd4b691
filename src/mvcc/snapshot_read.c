/* Consistent read views of the whole backend for snapshots (usable off the loop thread),
 * and bulk import of bucket records into a fresh LMDB environment (restore). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/store_int.h"

struct mvcc_snap {
  mvcc_backend_t *be;
  MDB_txn *txn;
};

int mvcc_bucket_names(mvcc_store_t *s, const char *const **names) {
  *names = s->be.bucket_names;
  return s->be.nbuckets;
}

int mvcc_snap_open(mvcc_store_t *s, mvcc_snap_t **out) {
  mvcc_snap_t *sn = xcalloc(1, sizeof(*sn));
  sn->be = &s->be;
  /* Held until mvcc_snap_close: the map cannot be resized under an active reader. */
  pthread_mutex_lock(&s->be.lock);
  int rc = mdb_txn_begin(s->be.env, NULL, MDB_RDONLY, &sn->txn);
  if (rc) {
    pthread_mutex_unlock(&s->be.lock);
    free(sn);
    LOGE("msg=\"cannot start snapshot read txn\" error=\"%s\"", mdb_strerror(rc));
    return mvcc_be_err(rc);
  }
  *out = sn;
  return 0;
}

int mvcc_snap_foreach(mvcc_snap_t *sn, const char *bucket,
                      int (*fn)(void *ctx, const void *key, size_t klen, const void *val, size_t vlen),
                      void *ctx) {
  MDB_dbi dbi;
  int rc = mvcc_be_bucket(sn->be, bucket, &dbi);
  if (rc) return rc;
  MDB_cursor *c;
  if ((rc = mdb_cursor_open(sn->txn, dbi, &c))) return mvcc_be_err(rc);
  MDB_val k, v;
  int r = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  rc = 0;
  while (r == 0) {
    if ((rc = fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size))) break;
    r = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  if (rc) return rc;
  return r == MDB_NOTFOUND ? 0 : mvcc_be_err(r);
}

void mvcc_snap_close(mvcc_snap_t *sn) {
  if (!sn) return;
  mdb_txn_abort(sn->txn);
  pthread_mutex_unlock(&sn->be->lock);
  free(sn);
}

/* ---- import ---- */

enum { IMPORT_COMMIT_BYTES = 64 << 20 };

struct mvcc_import {
  mvcc_backend_t be;
  char *dir, *tmp;
  size_t pending; /* bytes written since the last commit */
  uint64_t records;
};

/* Removes dir's plain files and dir itself (absent is fine). */
static void remove_flat_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[4096];
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
      unlink(p);
    }
  closedir(d);
  rmdir(dir);
}

int mvcc_import_open(const char *dir, mvcc_import_t **out) {
  char p[4096];
  snprintf(p, sizeof(p), "%s/data.mdb", dir);
  if (access(p, F_OK) == 0) return CETCD_EINVAL;
  mvcc_import_t *im = xcalloc(1, sizeof(*im));
  im->dir = xstrdup(dir);
  snprintf(p, sizeof(p), "%s/import.tmp", dir);
  im->tmp = xstrdup(p);
  remove_flat_dir(im->tmp); /* left over from an interrupted import */
  int rc = mvcc_be_open(&im->be, im->tmp, 0);
  if (rc == 0) rc = mvcc_be_begin(&im->be);
  if (rc) {
    mvcc_import_abort(im);
    return rc;
  }
  *out = im;
  return 0;
}

int mvcc_import_put(mvcc_import_t *im, const char *bucket, const void *key, size_t klen, const void *val,
                    size_t vlen) {
  MDB_dbi dbi;
  int rc = mvcc_be_bucket(&im->be, bucket, &dbi);
  if (rc) return rc;
  if (klen == 0 || klen > (size_t)mdb_env_get_maxkeysize(im->be.env)) return CETCD_EINVAL;
  if ((rc = mvcc_be_put(&im->be, dbi, key, klen, val, vlen, MDB_APPEND))) return rc;
  im->records++;
  im->pending += klen + vlen;
  if (im->pending >= IMPORT_COMMIT_BYTES) {
    im->pending = 0;
    if ((rc = mvcc_be_commit(&im->be)) || (rc = mvcc_be_begin(&im->be))) return rc;
  }
  return 0;
}

int mvcc_import_commit(mvcc_import_t *im) {
  int rc = mvcc_be_commit(&im->be);
  if (rc == 0) rc = mvcc_be_sync(&im->be);
  mvcc_be_close(&im->be);
  char from[4096], to[4096];
  snprintf(from, sizeof(from), "%s/data.mdb", im->tmp);
  snprintf(to, sizeof(to), "%s/data.mdb", im->dir);
  if (rc == 0 && rename(from, to) != 0) rc = -errno;
  if (rc == 0) {
    /* make the rename durable */
    int fd = open(im->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      fsync(fd);
      close(fd);
    }
  }
  remove_flat_dir(im->tmp);
  free(im->dir);
  free(im->tmp);
  free(im);
  return rc;
}

void mvcc_import_abort(mvcc_import_t *im) {
  if (!im) return;
  mvcc_be_close(&im->be);
  remove_flat_dir(im->tmp);
  free(im->dir);
  free(im->tmp);
  free(im);
}
