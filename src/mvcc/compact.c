/* Compaction: drop history at or below a revision from the index and from LMDB. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/store_int.h"

enum { COMPACT_CHUNK = 1000 };

typedef struct compact_ctx {
  int64_t rev;
  mvcc_revset_t *keep;
  mvcc_ki_t **alive;
  size_t n, cap;
} compact_ctx_t;

/* Index visitor: compacts one key, keeping it if history remains. */
static bool compact_one(void *arg, mvcc_ki_t *ki) {
  compact_ctx_t *c = arg;
  mvcc_ki_compact(ki, c->rev, c->keep);
  if (mvcc_ki_is_empty(ki)) {
    mvcc_ki_free(ki);
    return true;
  }
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 1024;
    c->alive = xrealloc(c->alive, c->cap * sizeof(*c->alive));
  }
  c->alive[c->n++] = ki;
  return true;
}

/* Stores a revision-valued meta key. */
static int put_meta_rev(mvcc_store_t *s, const char *name, int64_t rev) {
  uint8_t b[MVCC_REV_BYTES];
  mvcc_rev_encode((mvcc_rev_t){rev, 0}, false, b);
  return mvcc_be_put(&s->be, s->be.meta_dbi, name, strlen(name), b, sizeof(b), 0);
}

/* Deletes records with main revision <= rev that are not in keep, collecting a chunk
 * with a cursor, then deleting it, then resuming after the last deleted record. */
static int delete_old(mvcc_store_t *s, int64_t rev, const mvcc_revset_t *keep) {
  uint8_t from[MVCC_REV_BYTES_TOMB] = {0};
  size_t from_len = MVCC_REV_BYTES;
  uint8_t(*dels)[MVCC_REV_BYTES_TOMB + 1] = xmalloc(COMPACT_CHUNK * sizeof(*dels));
  int rc = 0;
  bool done = false;
  while (!done && !rc) {
    size_t n = 0;
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(mvcc_txn(s), s->be.key_dbi, &c))) {
      rc = mvcc_be_err(rc);
      break;
    }
    MDB_val k = {from_len, from}, v;
    int r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (r == 0) {
      if (k.mv_size == MVCC_REV_BYTES || k.mv_size == MVCC_REV_BYTES_TOMB) {
        mvcc_rev_t kr = mvcc_rev_decode(k.mv_data);
        if (kr.main > rev) {
          done = true;
          break;
        }
        if (!mvcc_revset_has(keep, kr)) {
          dels[n][0] = (uint8_t)k.mv_size;
          memcpy(dels[n] + 1, k.mv_data, k.mv_size);
          if (++n == COMPACT_CHUNK) break;
        }
      }
      r = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (r == MDB_NOTFOUND)
      done = true;
    else if (r)
      rc = mvcc_be_err(r);
    mdb_cursor_close(c);
    if (n) {
      from_len = dels[n - 1][0];
      memcpy(from, dels[n - 1] + 1, from_len);
    }
    for (size_t i = 0; i < n && !rc; i++) rc = mvcc_be_del(&s->be, s->be.key_dbi, dels[i] + 1, dels[i][0]);
  }
  free(dels);
  return rc;
}

int mvcc_compact_run(mvcc_store_t *s, int64_t rev) {
  int rc = put_meta_rev(s, "scheduledCompactRev", rev);
  if (rc) return rc;
  s->compact_rev = rev;
  mvcc_revset_t keep = {0};
  compact_ctx_t c = {rev, &keep, NULL, 0, 0};
  mvcc_bt_visit(&s->idx, NULL, 0, compact_one, &c);
  mvcc_bt_clear(&s->idx, false);
  for (size_t i = 0; i < c.n; i++) mvcc_bt_insert(&s->idx, c.alive[i]);
  free(c.alive);
  mvcc_revset_sort(&keep);
  rc = delete_old(s, rev, &keep);
  mvcc_revset_free(&keep);
  if (rc == 0) rc = put_meta_rev(s, "finishedCompactRev", rev);
  if (rc == 0) LOGI("msg=\"finished scheduled compaction\" compact-revision=%lld", (long long)rev);
  return rc;
}

int mvcc_apply_compact(mvcc_store_t *s, const Etcdserverpb__CompactionRequest *req, arena_t *arena,
                       Etcdserverpb__CompactionResponse **resp) {
  *resp = NULL;
  int64_t rev = req->revision;
  if (rev <= s->compact_rev) return CETCD_ECOMPACTED;
  if (rev > s->rev) return CETCD_EFUTUREREV;
  bool own = !s->in_batch;
  int rc;
  if (own && (rc = mvcc_batch_begin(s))) return rc;
  rc = mvcc_compact_run(s, rev);
  if (own) {
    if (rc)
      mvcc_batch_abort(s);
    else
      rc = mvcc_batch_commit(s, s->ci);
  }
  if (rc) return rc;
  Etcdserverpb__CompactionResponse *r = ARENA_NEW(arena, Etcdserverpb__CompactionResponse);
  etcdserverpb__compaction_response__init(r);
  r->header = ARENA_NEW(arena, Etcdserverpb__ResponseHeader);
  etcdserverpb__response_header__init(r->header);
  r->header->revision = s->rev;
  *resp = r;
  return 0;
}
