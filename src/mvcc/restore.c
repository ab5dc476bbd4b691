/* Rebuilding the key index from the `key` bucket at open (etcd's store.restore). */
#include <string.h>

#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/store_int.h"

/* Reads a 17-byte revision meta value; returns its main revision or def if absent. */
static int64_t meta_rev(mvcc_store_t *s, const char *name, int64_t def) {
  MDB_val v;
  if (mvcc_be_get(mvcc_txn(s), s->be.meta_dbi, name, strlen(name), &v) || v.mv_size < MVCC_REV_BYTES)
    return def;
  return mvcc_rev_decode(v.mv_data).main;
}

/* Index visitor: attaches each live key's lease. */
static bool attach_lease(void *ctx, mvcc_ki_t *ki) {
  mvcc_store_t *s = ctx;
  if (ki->lease && mvcc_ki_is_live(ki)) s->opts.lease_attach(s->opts.hook_ctx, ki->lease, ki->key, ki->klen);
  return true;
}

/* Scans the key bucket in revision order into the (empty) index. */
static int load_index(mvcc_store_t *s, int64_t *last_main) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(mvcc_txn(s), s->be.key_dbi, &c);
  if (rc) return mvcc_be_err(rc);
  MDB_val k, v;
  int r;
  while ((r = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
    if (k.mv_size != MVCC_REV_BYTES && k.mv_size != MVCC_REV_BYTES_TOMB) continue;
    mvcc_rev_t rev = mvcc_rev_decode(k.mv_data);
    bool tomb = mvcc_rev_is_tomb(k.mv_data, k.mv_size);
    mvcc_kv_view_t kv;
    if (mvcc_kv_decode(v.mv_data, v.mv_size, &kv)) {
      LOGE("msg=\"cannot decode a stored KeyValue\" revision=%lld", (long long)rev.main);
      rc = CETCD_ECORRUPT;
      break;
    }
    *last_main = rev.main;
    mvcc_ki_t *ki = mvcc_bt_find(&s->idx, kv.key, kv.klen);
    if (ki) {
      bool was_live = mvcc_ki_is_live(ki);
      if (tomb) {
        if (mvcc_ki_tombstone(ki, rev) == 0 && was_live) s->live--;
      } else {
        mvcc_ki_put(ki, rev);
        ki->lease = kv.lease;
        if (!was_live) s->live++;
      }
    } else if (!tomb) {
      ki = mvcc_ki_new(kv.key, kv.klen);
      mvcc_ki_restore(ki, kv.create_rev, rev, kv.version);
      ki->lease = kv.lease;
      mvcc_bt_insert(&s->idx, ki);
      s->live++;
    }
  }
  mdb_cursor_close(c);
  if (rc == 0 && r != MDB_NOTFOUND) rc = mvcc_be_err(r);
  return rc;
}

int mvcc_restore(mvcc_store_t *s) {
  mvcc_bt_clear(&s->idx, true);
  s->live = 0;
  s->rev = 1;
  s->compact_rev = -1;
  int rc = mvcc_read_begin(s);
  if (rc) return rc;
  s->compact_rev = meta_rev(s, "finishedCompactRev", -1);
  int64_t scheduled = meta_rev(s, "scheduledCompactRev", 0);
  MDB_val v;
  s->ci = 0;
  if (mvcc_be_get(mvcc_txn(s), s->be.meta_dbi, "consistent_index", 16, &v) == 0 && v.mv_size == 8) {
    const uint8_t *p = v.mv_data;
    for (int i = 0; i < 8; i++) s->ci = s->ci << 8 | p[i];
  }
  int64_t last = 1;
  rc = load_index(s, &last);
  mvcc_read_end(s);
  if (rc) return rc;
  mvcc_drop_pages(s); /* load_index read every page of the key bucket */
  s->rev = last > s->compact_rev ? last : s->compact_rev;
  if (s->opts.lease_attach) mvcc_bt_visit(&s->idx, NULL, 0, attach_lease, s);
  if (scheduled > 0 && scheduled > s->compact_rev && scheduled <= s->rev && !s->in_batch) {
    LOGI("msg=\"resume scheduled compaction\" scheduled-compact-revision=%lld", (long long)scheduled);
    if ((rc = mvcc_batch_begin(s))) return rc;
    rc = mvcc_compact_run(s, scheduled);
    if (rc) {
      mvcc_be_abort(&s->be);
      s->in_batch = false;
      return rc;
    }
    rc = mvcc_batch_commit(s, s->ci);
  }
  return rc;
}
