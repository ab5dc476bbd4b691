/* Snapshot images: LMDB store -> bbolt (etcd's records added when absent, cetcd's private
 * meta keys left out) -> LMDB store again, and the start-up restore hook. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "../mvcc/mvcc_test_util.h"
#include "snapshot/bbolt.h"
#include "snapshot/snapshot.h"

typedef struct rec {
  char bucket[32];
  char key[64];
  size_t klen;
  char val[256];
  size_t vlen;
} rec_t;

typedef struct recs {
  rec_t v[64];
  int n;
} recs_t;

/* Collects the non-key records of a bbolt file. */
static int collect(void *ctx, const uint8_t *b, size_t bl, const uint8_t *k, size_t kl, const uint8_t *v,
                   size_t vl) {
  recs_t *r = ctx;
  if (bl == 3 && !memcmp(b, "key", 3)) return 0;
  assert_true(r->n < 64 && bl < 32 && kl < 64 && vl < 256);
  rec_t *x = &r->v[r->n++];
  memcpy(x->bucket, b, bl);
  x->bucket[bl] = 0;
  memcpy(x->key, k, kl);
  x->klen = kl;
  memcpy(x->val, v, vl);
  x->vlen = vl;
  return 0;
}

static const rec_t *find(const recs_t *r, const char *bucket, const char *key) {
  for (int i = 0; i < r->n; i++)
    if (!strcmp(r->v[i].bucket, bucket) && r->v[i].klen == strlen(key) &&
        !memcmp(r->v[i].key, key, r->v[i].klen))
      return &r->v[i];
  return NULL;
}

static void test_export_import(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char p[512];
  snprintf(p, sizeof(p), "%s/a", dir);
  mvcc_store_t *s = tu_open(p, NULL);
  tu_put(s, "foo", "1");
  tu_put(s, "bar", "2");
  tu_put(s, "foo", "3");
  assert_int_equal(mvcc_bucket_put(s, "cluster", "aaa", 3, "x", 1), 0);
  assert_int_equal(mvcc_bucket_put(s, "cluster", "zzz", 3, "y", 1), 0);
  assert_int_equal(mvcc_bucket_put(s, "auth", "authRevision", 12, "\0\0\0\0\0\0\0\5", 8), 0);
  assert_int_equal(mvcc_meta_put(s, "cetcd_ids", "0123456789abcdef", 16), 0);

  char *peers[] = {"http://10.0.0.1:2380"}, *clients[] = {"http://10.0.0.1:2379", "http://x\"y"};
  snapshot_member_t m = {.id = 0xabc,
                         .name = "n1",
                         .peer_urls = peers,
                         .n_peer_urls = 1,
                         .client_urls = clients,
                         .n_client_urls = 2};
  snprintf(p, sizeof(p), "%s/snap.db", dir);
  int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
  uint64_t size = 0;
  atomic_bool cancel;
  atomic_init(&cancel, false);
  assert_int_equal(snapshot_write_bbolt(s, &m, fd, &cancel, &size), 0);
  assert_true(size > 0 && size % BBOLT_PAGE_SIZE == 0);
  /* a cancelled build stops */
  atomic_store(&cancel, true);
  int fd2 = open(p, O_RDONLY);
  close(fd2);
  char p2[1024];
  snprintf(p2, sizeof(p2), "%s/cancelled.db", dir);
  fd2 = open(p2, O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_int_equal(snapshot_write_bbolt(s, &m, fd2, &cancel, NULL), CETCD_ECANCELED);
  close(fd2);
  close(fd);
  int64_t rev = mvcc_rev(s);
  mvcc_close(s);

  bbolt_reader_t *r;
  assert_int_equal(bbolt_reader_open(p, &r, NULL, 0), 0);
  recs_t recs = {.n = 0};
  assert_int_equal(bbolt_reader_walk(r, NULL, collect, &recs), 0);
  bbolt_reader_close(r);
  /* the store's value wins over the default; defaults fill in, in key order */
  const rec_t *x = find(&recs, "auth", "authRevision");
  assert_non_null(x);
  assert_int_equal(x->val[7], 5);
  assert_non_null(find(&recs, "cluster", "aaa"));
  x = find(&recs, "cluster", "clusterVersion");
  assert_non_null(x);
  assert_memory_equal(x->val, "3.4.0", 5);
  assert_true(find(&recs, "cluster", "aaa") < x && x < find(&recs, "cluster", "zzz"));
  x = find(&recs, "members", "abc");
  assert_non_null(x);
  const char *json =
      "{\"id\":2748,\"peerURLs\":[\"http://10.0.0.1:2380\"],\"name\":\"n1\",\"clientURLs\":"
      "[\"http://10.0.0.1:2379\",\"http://x\\\"y\"]}";
  assert_int_equal(x->vlen, strlen(json));
  assert_memory_equal(x->val, json, x->vlen);
  assert_null(find(&recs, "meta", "cetcd_ids"));
  assert_non_null(find(&recs, "meta", "consistent_index"));

  /* restore hook: db in an empty snap dir is imported, the WAL moved aside */
  char snap[600], wal[600], db[700];
  snprintf(snap, sizeof(snap), "%s/b/member/snap", dir);
  snprintf(wal, sizeof(wal), "%s/b/member/wal", dir);
  snprintf(p2, sizeof(p2), "%s/b", dir);
  mkdir(p2, 0700);
  snprintf(p2, sizeof(p2), "%s/b/member", dir);
  mkdir(p2, 0700);
  mkdir(snap, 0700);
  mkdir(wal, 0700);
  snprintf(db, sizeof(db), "%s/db", snap);
  assert_int_equal(rename(p, db), 0);
  assert_int_equal(snapshot_restore_at_start(snap, wal), 0);
  struct stat st;
  snprintf(p2, sizeof(p2), "%s/db.imported", snap);
  assert_int_equal(stat(p2, &st), 0);
  assert_int_not_equal(stat(db, &st), 0);
  assert_int_not_equal(stat(wal, &st), 0);
  snprintf(p2, sizeof(p2), "%s.etcd-restore", wal);
  assert_int_equal(stat(p2, &st), 0);
  /* nothing to do the second time */
  assert_int_equal(snapshot_restore_at_start(snap, wal), 0);

  s = tu_open(snap, NULL);
  assert_int_equal(mvcc_rev(s), rev);
  assert_int_equal(mvcc_key_count(s), 2);
  char buf[64];
  size_t n = sizeof(buf);
  assert_int_equal(mvcc_bucket_get(s, "cluster", "zzz", 3, buf, &n), 0);
  n = sizeof(buf);
  assert_int_equal(mvcc_meta_get(s, "cetcd_ids", buf, &n), CETCD_EKEYNOTFOUND);
  n = sizeof(buf);
  /* the old cluster's membership is not imported: a restored member takes --initial-cluster */
  assert_int_equal(mvcc_bucket_get(s, "members", "abc", 3, buf, &n), CETCD_EKEYNOTFOUND);
  mvcc_close(s);

  /* a corrupt db is refused and nothing is left behind */
  snprintf(snap, sizeof(snap), "%s/c", dir);
  mkdir(snap, 0700);
  snprintf(db, sizeof(db), "%s/db", snap);
  fd = open(db, O_RDWR | O_CREAT | O_TRUNC, 0600);
  char zero[8192] = {0};
  assert_int_equal(write(fd, zero, sizeof(zero)), (ssize_t)sizeof(zero));
  close(fd);
  assert_int_equal(snapshot_restore_at_start(snap, NULL), CETCD_ECORRUPT);
  snprintf(p2, sizeof(p2), "%s/data.mdb", snap);
  assert_int_not_equal(stat(p2, &st), 0);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_export_import),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
