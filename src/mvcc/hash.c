/* Hashes: crc32c (Castagnoli) over the whole backend (etcd's Hash) and over the MVCC
 * history up to a revision (etcd's HashKV). */
#include <string.h>

#include "cetcd/errors.h"
#include "mvcc/store_int.h"

static uint32_t crc_table[256];

/* Builds the reflected Castagnoli table once. */
static void crc_init(void) {
  if (crc_table[1]) return;
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc_table[i] = c;
  }
}

/* Continues a crc32c (Go's crc32.Update convention: pass and get the finalized value). */
static uint32_t crc_update(uint32_t crc, const void *p, size_t n) {
  const uint8_t *b = p;
  crc = ~crc;
  for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

int mvcc_hash(mvcc_store_t *s, uint32_t *hash) {
  crc_init();
  int rc = mvcc_read_begin(s);
  if (rc) return rc;
  uint32_t h = 0;
  for (int i = 0; i < s->be.nbuckets && !rc; i++) {
    const char *name = s->be.bucket_names[i];
    bool meta = !strcmp(name, "meta");
    h = crc_update(h, name, strlen(name));
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(mvcc_txn(s), s->be.buckets[i], &c))) {
      rc = mvcc_be_err(rc);
      break;
    }
    MDB_val k, v;
    int r;
    while ((r = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
      if (meta && k.mv_size == 16 && !memcmp(k.mv_data, "consistent_index", 16)) continue;
      h = crc_update(h, k.mv_data, k.mv_size);
      h = crc_update(h, v.mv_data, v.mv_size);
    }
    if (r != MDB_NOTFOUND) rc = mvcc_be_err(r);
    mdb_cursor_close(c);
  }
  mvcc_read_end(s);
  if (!rc) *hash = h;
  return rc;
}

typedef struct keep_ctx {
  int64_t rev;
  mvcc_revset_t *keep;
} keep_ctx_t;

/* Index visitor for HashKV's keep set. */
static bool keep_one(void *arg, mvcc_ki_t *ki) {
  keep_ctx_t *c = arg;
  mvcc_ki_keep(ki, c->rev, c->keep);
  return true;
}

int mvcc_hash_kv(mvcc_store_t *s, int64_t rev, uint32_t *hash, int64_t *compact_rev, int64_t *hash_rev) {
  crc_init();
  int64_t crev = s->compact_rev, cur = s->rev;
  if (compact_rev) *compact_rev = crev;
  if (rev > 0 && rev <= crev) return CETCD_ECOMPACTED;
  if (rev > 0 && rev > cur) return CETCD_EFUTUREREV;
  if (rev <= 0) rev = cur;
  if (hash_rev) *hash_rev = rev;
  mvcc_revset_t keep = {0};
  keep_ctx_t kc = {rev, &keep};
  mvcc_bt_visit(&s->idx, NULL, 0, keep_one, &kc);
  mvcc_revset_sort(&keep);
  int rc = mvcc_read_begin(s);
  if (rc) {
    mvcc_revset_free(&keep);
    return rc;
  }
  uint32_t h = crc_update(0, "key", 3);
  MDB_cursor *c;
  if ((rc = mdb_cursor_open(mvcc_txn(s), s->be.key_dbi, &c)) == 0) {
    MDB_val k, v;
    int r;
    while ((r = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
      if (k.mv_size < MVCC_REV_BYTES) continue;
      mvcc_rev_t kr = mvcc_rev_decode(k.mv_data);
      if (kr.main > rev) break;
      if (kr.main <= crev && keep.n > 0 && !mvcc_revset_has(&keep, kr)) continue;
      h = crc_update(h, k.mv_data, k.mv_size);
      h = crc_update(h, v.mv_data, v.mv_size);
    }
    if (r != 0 && r != MDB_NOTFOUND) rc = mvcc_be_err(r);
    mdb_cursor_close(c);
  } else {
    rc = mvcc_be_err(rc);
  }
  mvcc_read_end(s);
  mvcc_revset_free(&keep);
  if (!rc) *hash = h;
  return rc;
}
