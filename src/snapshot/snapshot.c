/* Snapshot images: LMDB view -> bbolt file (with etcd's membership records filled in),
 * and bbolt file -> LMDB at start after `etcdctl snapshot restore`. */
#include "snapshot/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/version.h"
#include "cetcd/errors.h"
#include "snapshot/bbolt.h"

/* Meta keys private to cetcd, never exported nor imported. */
static bool private_meta(const char *bucket, const void *key, size_t klen) {
  return !strcmp(bucket, "meta") && klen >= 6 && !memcmp(key, "cetcd_", 6);
}

/* ---- export ------------------------------------------------------------------------ */

/* A record added to a bucket when the store has no such key. */
typedef struct extra {
  const char *bucket;
  char key[32];
  size_t klen;
  buf_t val;
} extra_t;

enum { MAX_EXTRAS = 4 };

/* State of one bucket's export. */
typedef struct exp_ctx {
  bbolt_writer_t *w;
  const char *bucket;
  const atomic_bool *cancel;
  extra_t *extras; /* of this bucket, sorted by key */
  size_t nextras, next_extra;
  uint64_t records;
} exp_ctx_t;

/* Appends a JSON array of strings. */
static void json_strs(buf_t *b, char *const *v, size_t n) {
  buf_append(b, "[", 1);
  for (size_t i = 0; i < n; i++) {
    if (i) buf_append(b, ",", 1);
    buf_append_json_str(b, v[i]);
  }
  buf_append(b, "]", 1);
}

/* Byte order of two keys. */
static int key_cmp(const void *a, size_t al, const void *b, size_t bl) {
  int c = memcmp(a, b, al < bl ? al : bl);
  return c ? c : (al < bl ? -1 : al > bl);
}

/* Writes the extras ordered before key (all when key is NULL); skips one equal to key. */
static int put_extras(exp_ctx_t *x, const void *key, size_t klen) {
  while (x->next_extra < x->nextras) {
    extra_t *e = &x->extras[x->next_extra];
    int c = key ? key_cmp(e->key, e->klen, key, klen) : -1;
    if (c > 0) break;
    x->next_extra++;
    if (c == 0) continue; /* the store's record wins */
    int rc = bbolt_writer_put(x->w, e->key, e->klen, e->val.data, e->val.len);
    if (rc) return rc;
    x->records++;
  }
  return 0;
}

/* mvcc_snap_foreach callback: one record into the image. */
static int exp_record(void *ctx, const void *key, size_t klen, const void *val, size_t vlen) {
  exp_ctx_t *x = ctx;
  if (x->cancel && atomic_load(x->cancel)) return CETCD_ECANCELED;
  if (private_meta(x->bucket, key, klen)) return 0;
  int rc = put_extras(x, key, klen);
  if (rc == 0) rc = bbolt_writer_put(x->w, key, klen, val, vlen);
  x->records++;
  return rc;
}

int snapshot_write_bbolt(mvcc_store_t *s, const snapshot_member_t *m, int fd, const atomic_bool *cancel,
                         uint64_t *size) {
  extra_t extras[MAX_EXTRAS];
  size_t nextras = 0;
  memset(extras, 0, sizeof(extras));
  /* etcd's auth store starts at revision 1 */
  extra_t *e = &extras[nextras++];
  e->bucket = "auth";
  e->klen = (size_t)snprintf(e->key, sizeof(e->key), "authRevision");
  uint8_t one[8] = {0, 0, 0, 0, 0, 0, 0, 1};
  buf_append(&e->val, one, 8);
  e = &extras[nextras++];
  e->bucket = "cluster";
  e->klen = (size_t)snprintf(e->key, sizeof(e->key), "clusterVersion");
  buf_printf(&e->val, "%s", CETCD_CLUSTER_VERSION);
  if (m && m->id) {
    e = &extras[nextras++];
    e->bucket = "members";
    e->klen = (size_t)snprintf(e->key, sizeof(e->key), "%" PRIx64, m->id);
    buf_printf(&e->val, "{\"id\":%" PRIu64 ",\"peerURLs\":", m->id);
    json_strs(&e->val, m->peer_urls, m->n_peer_urls);
    if (m->name && *m->name) {
      buf_printf(&e->val, ",\"name\":");
      buf_append_json_str(&e->val, m->name);
    }
    if (m->n_client_urls) {
      buf_printf(&e->val, ",\"clientURLs\":");
      json_strs(&e->val, m->client_urls, m->n_client_urls);
    }
    buf_append(&e->val, "}", 1);
  }

  bbolt_writer_t *w = NULL;
  mvcc_snap_t *sn = NULL;
  int rc = mvcc_snap_open(s, &sn);
  if (rc == 0) rc = bbolt_writer_open(fd, &w);
  const char *const *names;
  int nb = mvcc_bucket_names(s, &names);
  uint64_t records = 0;
  for (int i = 0; i < nb && rc == 0; i++) {
    exp_ctx_t x = {.w = w, .bucket = names[i], .cancel = cancel};
    /* this bucket's extras (one each at most, so already sorted) */
    for (size_t j = 0; j < nextras; j++)
      if (!strcmp(extras[j].bucket, names[i])) {
        x.extras = &extras[j];
        x.nextras = 1;
      }
    rc = bbolt_writer_bucket_begin(w, names[i], strlen(names[i]));
    if (rc == 0) rc = mvcc_snap_foreach(sn, names[i], exp_record, &x);
    if (rc == 0) rc = put_extras(&x, NULL, 0);
    if (rc == 0) rc = bbolt_writer_bucket_end(w);
    records += x.records;
  }
  mvcc_snap_close(sn);
  if (rc == 0) {
    rc = bbolt_writer_finish(w, size);
    w = NULL;
  }
  bbolt_writer_free(w);
  for (size_t j = 0; j < nextras; j++) buf_free(&extras[j].val);
  if (rc == 0) LOGD("msg=\"wrote snapshot image\" records=%" PRIu64, records);
  return rc;
}

/* ---- import ------------------------------------------------------------------------ */

typedef struct imp_ctx {
  mvcc_import_t *im;
  char bucket[64];
  bool skip; /* bucket unknown to cetcd */
  uint64_t records, bytes, total;
  time_t last_log;
} imp_ctx_t;

/* bbolt_reader_walk bucket callback. */
static int imp_bucket(void *ctx, const uint8_t *name, size_t nlen) {
  imp_ctx_t *x = ctx;
  x->skip = nlen >= sizeof(x->bucket);
  if (!x->skip) {
    memcpy(x->bucket, name, nlen);
    x->bucket[nlen] = 0;
    x->skip = memchr(name, 0, nlen) != NULL;
  }
  if (x->skip) LOGW("msg=\"skipping bucket from snapshot\" reason=\"name too long or binary\"");
  return 0;
}

/* True for the membership buckets of a restored db: they describe the old cluster (etcd's
 * `snapshot restore` means to clear them but deletes keys instead, and etcd itself boots
 * its membership from the restore's WAL and snap files, i.e. --initial-cluster). A restored
 * member takes its membership from --initial-cluster, as a new member does. */
static bool old_membership(const char *bucket) {
  return !strcmp(bucket, "members") || !strcmp(bucket, "members_removed");
}

/* bbolt_reader_walk record callback. */
static int imp_record(void *ctx, const uint8_t *bucket, size_t blen, const uint8_t *key, size_t klen,
                      const uint8_t *val, size_t vlen) {
  imp_ctx_t *x = ctx;
  (void)bucket, (void)blen;
  if (x->skip || private_meta(x->bucket, key, klen) || old_membership(x->bucket)) return 0;
  int rc = mvcc_import_put(x->im, x->bucket, key, klen, val, vlen);
  if (rc == CETCD_EINVAL) {
    LOGW("msg=\"skipping bucket from snapshot: cetcd does not keep it\" bucket=%s", x->bucket);
    x->skip = true;
    return 0;
  }
  if (rc) return rc;
  x->records++;
  x->bytes += klen + vlen;
  time_t now = time(NULL);
  if (now != x->last_log) {
    x->last_log = now;
    LOGI("msg=\"importing snapshot\" records=%" PRIu64 " bytes=%" PRIu64 " file-bytes=%" PRIu64, x->records,
         x->bytes, x->total);
  }
  return 0;
}

int snapshot_import_bbolt(const char *db_path, const char *lmdb_dir, uint64_t *records) {
  char err[256];
  bbolt_reader_t *r;
  int rc = bbolt_reader_open(db_path, &r, err, sizeof(err));
  if (rc) {
    LOGE("msg=\"cannot read snapshot db\" path=%s error=\"%s\"", db_path, err);
    return rc;
  }
  imp_ctx_t x = {.total = bbolt_reader_pgid(r) * BBOLT_PAGE_SIZE, .last_log = time(NULL)};
  rc = mvcc_import_open(lmdb_dir, &x.im);
  if (rc) {
    LOGE("msg=\"cannot start import\" dir=%s error=\"%s\"", lmdb_dir, cetcd_strerror(rc));
    bbolt_reader_close(r);
    return rc;
  }
  rc = bbolt_reader_walk(r, imp_bucket, imp_record, &x);
  if (rc == CETCD_ECORRUPT)
    LOGE("msg=\"snapshot db is corrupt\" path=%s error=\"%s\"", db_path, bbolt_reader_error(r));
  bbolt_reader_close(r);
  if (rc) {
    mvcc_import_abort(x.im);
    return rc;
  }
  rc = mvcc_import_commit(x.im);
  if (rc) {
    LOGE("msg=\"cannot commit import\" dir=%s error=\"%s\"", lmdb_dir, cetcd_strerror(rc));
    return rc;
  }
  if (records) *records = x.records;
  return 0;
}

/* Renames etcd's raft snapshot files (*.snap, written by the restore beside the db) in
 * snap_dir to *.snap.etcd-restore: like etcd's WAL they describe etcd's raft state, which
 * the import replaces, and cetcd's own snap files (same names, another format) would
 * take them for broken ones. Returns 0 or -errno. */
static int move_etcd_snaps_aside(const char *snap_dir) {
  DIR *d = opendir(snap_dir);
  if (!d) return -errno;
  int rc = 0;
  struct dirent *de;
  while (!rc && (de = readdir(d))) {
    size_t n = strlen(de->d_name);
    if (n <= 5 || strcmp(de->d_name + n - 5, ".snap")) continue;
    char from[PATH_MAX], to[PATH_MAX + 16];
    snprintf(from, sizeof(from), "%s/%s", snap_dir, de->d_name);
    snprintf(to, sizeof(to), "%s.etcd-restore", from);
    if (rename(from, to) != 0) {
      rc = -errno;
      LOGE("msg=\"cannot move etcd's snap file aside\" path=%s error=\"%s\"", from, strerror(-rc));
    } else {
      LOGI("msg=\"moved etcd's snap file aside\" from=%s to=%s", from, to);
    }
  }
  closedir(d);
  return rc;
}

int snapshot_restore_at_start(const char *snap_dir, const char *wal_dir) {
  char db[PATH_MAX], mdb[PATH_MAX], done[PATH_MAX];
  snprintf(db, sizeof(db), "%s/db", snap_dir);
  snprintf(mdb, sizeof(mdb), "%s/data.mdb", snap_dir);
  struct stat st;
  if (stat(db, &st) != 0) return 0;
  if (stat(mdb, &st) == 0) {
    LOGW("msg=\"ignoring %s: the backend already has data\" path=%s", db, mdb);
    return 0;
  }
  LOGI("msg=\"found a restored etcd snapshot db; importing it\" path=%s", db);
  int rc;
  /* etcd's WAL (written by the restore) is not ours: keep it, out of the way (first, so
   * that an interrupted import is simply redone at the next start) */
  if (wal_dir && stat(wal_dir, &st) == 0) {
    char aside[PATH_MAX];
    snprintf(aside, sizeof(aside), "%s.etcd-restore", wal_dir);
    if (stat(aside, &st) == 0) {
      LOGW("msg=\"%s exists; leaving etcd's WAL in place\" path=%s", aside, wal_dir);
    } else if (rename(wal_dir, aside) != 0) {
      rc = -errno;
      LOGE("msg=\"cannot move etcd's WAL aside\" path=%s error=\"%s\"", wal_dir, strerror(-rc));
      return rc;
    } else {
      LOGI("msg=\"moved etcd's WAL aside\" from=%s to=%s", wal_dir, aside);
    }
  }
  if ((rc = move_etcd_snaps_aside(snap_dir))) return rc;
  uint64_t records = 0;
  rc = snapshot_import_bbolt(db, snap_dir, &records);
  if (rc) {
    LOGE(
        "msg=\"cannot import restored snapshot\" path=%s error=\"%s\" fix=\"re-run etcdctl snapshot restore "
        "from a good snapshot\"",
        db, cetcd_strerror(rc));
    return rc;
  }
  snprintf(done, sizeof(done), "%s/db.imported", snap_dir);
  if (rename(db, done) != 0) {
    rc = -errno;
    LOGE("msg=\"cannot move imported db aside\" path=%s error=\"%s\"", db, strerror(-rc));
    return rc;
  }
  LOGI("msg=\"imported restored snapshot\" path=%s records=%" PRIu64 " moved-to=%s", db, records, done);
  return 0;
}
