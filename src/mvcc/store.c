/* Store lifecycle, batches, accessors, meta and other buckets. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/store_int.h"

int mvcc_open(const char *dir, const mvcc_opts_t *opts, mvcc_store_t **out) {
  *out = NULL;
  mvcc_store_t *s = xcalloc(1, sizeof(*s));
  if (opts) s->opts = *opts;
  mvcc_bt_init(&s->idx);
  arena_init(&s->ev_arena);
  int rc = mvcc_be_open(&s->be, dir, s->opts.map_size);
  if (rc == 0) rc = mvcc_restore(s);
  if (rc) {
    mvcc_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

void mvcc_close(mvcc_store_t *s) {
  if (!s) return;
  if (s->in_batch) mvcc_batch_abort(s);
  if (mvcc_flush(s)) LOGE("msg=\"backend commit at close failed; the WAL replays it at the next start\"");
  mvcc_be_close(&s->be);
  mvcc_bt_clear(&s->idx, true);
  arena_destroy(&s->ev_arena);
  free(s->evs);
  free(s->scratch.v);
  free(s);
}

int mvcc_sync(mvcc_store_t *s) { return mvcc_be_sync(&s->be); }

void mvcc_drop_pages(mvcc_store_t *s) { mvcc_be_drop_pages(&s->be); }

int mvcc_batch_begin(mvcc_store_t *s) {
  if (s->in_batch) return CETCD_EINVAL;
  if (s->deferred) { /* join the transaction that holds the deferred batches */
    s->batch_off = s->be.log.len;
    s->in_batch = true;
    return 0;
  }
  int rc = mvcc_be_begin(&s->be);
  if (rc == 0) {
    s->in_batch = true;
    s->batch_off = 0;
  }
  return rc;
}

int mvcc_batch_commit(mvcc_store_t *s, uint64_t consistent_index) {
  if (!s->in_batch) return CETCD_EINVAL;
  uint8_t b[8];
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(consistent_index >> (56 - 8 * i));
  int rc = mvcc_be_put(&s->be, s->be.meta_dbi, "consistent_index", 16, b, 8, 0);
  if (rc == 0 && s->opts.commit_interval_ms) {
    /* durability comes from the WAL: the LMDB commit (which syncs its data pages) waits
     * for mvcc_flush, so that many batches share one */
    s->in_batch = false;
    s->ci = consistent_index;
    if (!s->deferred) {
      s->deferred = true;
      if (s->opts.on_deferred) s->opts.on_deferred(s->opts.hook_ctx);
    }
    return 0;
  }
  if (rc == 0) rc = mvcc_be_commit(&s->be);
  if (rc) {
    LOGE("msg=\"backend commit failed; rolling back the batch\" error=\"%s\"", cetcd_strerror(rc));
    mvcc_batch_abort(s);
    return rc;
  }
  s->in_batch = false;
  s->ci = consistent_index;
  return 0;
}

void mvcc_batch_abort(mvcc_store_t *s) {
  if (s->deferred) {
    /* keep the deferred batches: undo only this one's writes */
    int rc = mvcc_be_rollback_to(&s->be, s->batch_off);
    if (rc) {
      LOGE(
          "msg=\"cannot roll a batch back inside deferred commits; stopping (the WAL replays them)\" "
          "error=\"%s\"",
          cetcd_strerror(rc));
      abort();
    }
  } else {
    mvcc_be_abort(&s->be);
  }
  s->in_batch = false;
  int rc = mvcc_restore(s);
  if (rc) LOGE("msg=\"cannot rebuild the key index after a rollback\" error=\"%s\"", cetcd_strerror(rc));
}

bool mvcc_in_batch(const mvcc_store_t *s) { return s->in_batch; }

int mvcc_flush(mvcc_store_t *s) {
  if (!s->deferred || s->in_batch) return 0;
  s->deferred = false;
  int rc = mvcc_be_commit(&s->be);
  if (rc) LOGE("msg=\"backend commit failed\" error=\"%s\"", cetcd_strerror(rc));
  return rc;
}

bool mvcc_flush_pending(const mvcc_store_t *s) { return s->deferred; }

int mvcc_read_begin(mvcc_store_t *s) { return mvcc_be_read_begin(&s->be) ? 0 : -EIO; }

void mvcc_read_end(mvcc_store_t *s) {
  if (!s->be.wtxn) mvcc_be_read_end(&s->be, s->be.rtxn);
}

int64_t mvcc_rev(const mvcc_store_t *s) { return s->rev; }
int64_t mvcc_compact_rev(const mvcc_store_t *s) { return s->compact_rev; }
uint64_t mvcc_consistent_index(const mvcc_store_t *s) { return s->ci; }
int mvcc_ensure_space(mvcc_store_t *s, uint64_t headroom) { return mvcc_be_ensure_space(&s->be, headroom); }
int64_t mvcc_db_size(mvcc_store_t *s) { return mvcc_be_size(&s->be); }
int64_t mvcc_db_size_in_use(mvcc_store_t *s) { return mvcc_be_size_in_use(&s->be); }
size_t mvcc_key_count(const mvcc_store_t *s) { return s->live; }

/* ---- buckets ---- */

int mvcc_bucket_get(mvcc_store_t *s, const char *bucket, const void *key, size_t klen, void *buf, size_t *n) {
  MDB_dbi dbi;
  int rc = mvcc_be_bucket(&s->be, bucket, &dbi);
  if (rc) return rc;
  if ((rc = mvcc_read_begin(s))) return rc;
  MDB_val v;
  rc = mvcc_be_get(mvcc_txn(s), dbi, key, klen, &v);
  if (rc == 0) {
    if (v.mv_size > *n) {
      rc = -ERANGE;
    } else if (v.mv_size) {
      memcpy(buf, v.mv_data, v.mv_size);
    }
    *n = v.mv_size;
  }
  mvcc_read_end(s);
  return rc;
}

/* Runs a single backend write, in the open batch or a batch of its own. */
static int bucket_write(mvcc_store_t *s, const char *bucket, const void *key, size_t klen, const void *val,
                        size_t vlen, bool del) {
  MDB_dbi dbi;
  int rc = mvcc_be_bucket(&s->be, bucket, &dbi);
  if (rc) return rc;
  bool own = !s->in_batch;
  if (own && (rc = mvcc_batch_begin(s))) return rc;
  rc = del ? mvcc_be_del(&s->be, dbi, key, klen) : mvcc_be_put(&s->be, dbi, key, klen, val, vlen, 0);
  if (own) {
    if (rc)
      mvcc_batch_abort(s);
    else
      rc = mvcc_batch_commit(s, s->ci);
  }
  return rc;
}

int mvcc_bucket_put(mvcc_store_t *s, const char *bucket, const void *key, size_t klen, const void *val,
                    size_t vlen) {
  return bucket_write(s, bucket, key, klen, val, vlen, false);
}

int mvcc_bucket_del(mvcc_store_t *s, const char *bucket, const void *key, size_t klen) {
  return bucket_write(s, bucket, key, klen, NULL, 0, true);
}

int mvcc_bucket_foreach(mvcc_store_t *s, const char *bucket,
                        int (*fn)(void *ctx, const void *key, size_t klen, const void *val, size_t vlen),
                        void *ctx) {
  MDB_dbi dbi;
  int rc = mvcc_be_bucket(&s->be, bucket, &dbi);
  if (rc) return rc;
  if ((rc = mvcc_read_begin(s))) return rc;
  MDB_cursor *c;
  rc = mdb_cursor_open(mvcc_txn(s), dbi, &c);
  if (rc == 0) {
    MDB_val k, v;
    int r;
    while ((r = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0)
      if ((rc = fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size))) break;
    if (!rc && r != MDB_NOTFOUND) rc = mvcc_be_err(r);
    mdb_cursor_close(c);
  } else {
    rc = mvcc_be_err(rc);
  }
  mvcc_read_end(s);
  return rc;
}

int mvcc_meta_get(mvcc_store_t *s, const char *name, void *buf, size_t *n) {
  return mvcc_bucket_get(s, "meta", name, strlen(name), buf, n);
}

int mvcc_meta_put(mvcc_store_t *s, const char *name, const void *buf, size_t n) {
  return mvcc_bucket_put(s, "meta", name, strlen(name), buf, n);
}
