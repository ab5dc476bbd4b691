/* The lessor with a real mvcc store: puts with leases attach keys, overwrites and deletes
 * detach them, a revoke deletes every key in one revision, and leases persist in the
 * `lease` bucket in etcd's format across a reopen (restore + promote), and a lessor reset
 * for a backend replaced by a raft snapshot image. */
#include <fcntl.h>
#include <unistd.h>

#include "../mvcc/mvcc_test_util.h"
#include "cetcd/errors.h"
#include "lease.pb-c.h"
#include "lease/lease.h"

static uint64_t now_ms;

/* The test clock. */
static uint64_t fake_clock(void *ctx) {
  (void)ctx;
  return now_ms;
}

static bool h_exists(void *ctx, int64_t id) { return lease_exists(ctx, id); }
static void h_attach(void *ctx, int64_t id, const uint8_t *k, size_t n) { lease_attach(ctx, id, k, n); }
static void h_detach(void *ctx, int64_t id, const uint8_t *k, size_t n) { lease_detach(ctx, id, k, n); }

typedef struct env {
  char *dir;
  lessor_t *le;
  mvcc_store_t *s;
} env_t;

/* Opens the store in e->dir with a new lessor as hook context, restores and promotes. */
static void env_open(env_t *e) {
  lease_opts_t o = {.min_ttl = 2, .clock = fake_clock};
  e->le = lease_new(&o);
  mvcc_opts_t mo;
  memset(&mo, 0, sizeof(mo));
  mo.hook_ctx = e->le;
  mo.lease_exists = h_exists;
  mo.lease_attach = h_attach;
  mo.lease_detach = h_detach;
  e->s = tu_open(e->dir, &mo);
  assert_int_equal(lease_restore(e->le, e->s), 0);
  lease_promote(e->le, 0);
}

static void env_close(env_t *e) {
  mvcc_close(e->s);
  lease_free(e->le);
}

/* Puts k=v with a lease; returns the error code. */
static int put_lease(mvcc_store_t *s, const char *k, const char *v, int64_t lease) {
  arena_t a;
  arena_init(&a);
  Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
  req.key = tu_bin(k);
  req.value = tu_bin(v);
  req.lease = lease;
  Etcdserverpb__PutResponse *r = NULL;
  int rc = mvcc_apply_put(s, &req, &a, &r);
  arena_destroy(&a);
  return rc;
}

/* Grants in a batch, like apply. */
static void grant(env_t *e, int64_t id, int64_t ttl) {
  assert_int_equal(mvcc_batch_begin(e->s), 0);
  assert_int_equal(lease_grant(e->le, id, ttl, NULL), 0);
  assert_int_equal(mvcc_batch_commit(e->s, mvcc_consistent_index(e->s) + 1), 0);
}

static size_t nkeys(env_t *e, int64_t id) {
  lease_info_t info;
  assert_int_equal(lease_lookup(e->le, id, &info), 0);
  return info.n_keys;
}

static void test_attach_detach(void **state) {
  (void)state;
  env_t e = {.dir = tu_mkdtemp()};
  now_ms = 1000;
  env_open(&e);
  assert_int_equal(put_lease(e.s, "a", "1", 5), CETCD_ELEASENOTFOUND);
  grant(&e, 5, 10);
  grant(&e, 6, 10);
  assert_int_equal(put_lease(e.s, "a", "1", 5), 0);
  assert_int_equal(put_lease(e.s, "b", "1", 5), 0);
  assert_int_equal(nkeys(&e, 5), 2);
  assert_int_equal(put_lease(e.s, "a", "2", 6), 0); /* moves to lease 6 */
  assert_int_equal(nkeys(&e, 5), 1);
  assert_int_equal(nkeys(&e, 6), 1);
  assert_int_equal(put_lease(e.s, "b", "2", 0), 0); /* no lease any more */
  assert_int_equal(nkeys(&e, 5), 0);
  assert_int_equal(tu_del(e.s, "a", NULL, NULL), 1);
  assert_int_equal(nkeys(&e, 6), 0);
  /* ignore_lease keeps the lease */
  assert_int_equal(put_lease(e.s, "c", "1", 6), 0);
  arena_t a;
  arena_init(&a);
  Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
  req.key = tu_bin("c");
  req.value = tu_bin("2");
  req.ignore_lease = true;
  Etcdserverpb__PutResponse *r = NULL;
  assert_int_equal(mvcc_apply_put(e.s, &req, &a, &r), 0);
  assert_int_equal(nkeys(&e, 6), 1);
  assert_int_equal(tu_get(e.s, &a, "c", 0)->lease, 6);
  arena_destroy(&a);
  env_close(&e);
  tu_rmdir(e.dir);
}

static void test_revoke_one_revision(void **state) {
  (void)state;
  env_t e = {.dir = tu_mkdtemp()};
  now_ms = 1000;
  env_open(&e);
  grant(&e, 9, 30);
  for (int i = 0; i < 50; i++) {
    char k[16];
    snprintf(k, sizeof(k), "k%02d", i);
    assert_int_equal(put_lease(e.s, k, "v", 9), 0);
  }
  tu_put(e.s, "other", "x");
  int64_t before = mvcc_rev(e.s);
  assert_int_equal(mvcc_batch_begin(e.s), 0);
  arena_t a;
  arena_init(&a);
  Etcdserverpb__LeaseRevokeRequest rr = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
  rr.id = 9;
  Etcdserverpb__LeaseRevokeResponse *resp = NULL;
  assert_int_equal(lease_apply_revoke(e.le, &rr, &a, &resp), 0);
  assert_int_equal(resp->header->revision, before + 1);
  assert_int_equal(lease_apply_revoke(e.le, &rr, &a, &resp), CETCD_ELEASENOTFOUND);
  assert_int_equal(mvcc_batch_commit(e.s, 100), 0);
  assert_int_equal(mvcc_rev(e.s), before + 1);
  assert_int_equal(mvcc_key_count(e.s), 1);
  Etcdserverpb__RangeResponse *rg = NULL;
  assert_int_equal(tu_range(e.s, &a, "k", "l", 0, &rg), 0);
  assert_int_equal(rg->n_kvs, 0);
  /* every key was deleted at the same revision */
  assert_int_equal(tu_range(e.s, &a, "k", "l", before, &rg), 0);
  assert_int_equal(rg->n_kvs, 50);
  /* revoking a lease without keys takes no revision */
  grant(&e, 10, 30);
  rr.id = 10;
  assert_int_equal(lease_apply_revoke(e.le, &rr, &a, &resp), 0);
  assert_int_equal(mvcc_rev(e.s), before + 1);
  arena_destroy(&a);
  env_close(&e);
  tu_rmdir(e.dir);
}

/* Bucket visitor collecting the raw records. */
static int collect(void *ctx, const void *key, size_t klen, const void *val, size_t vlen) {
  int *count = ctx;
  assert_int_equal(klen, 8);
  const uint8_t *k = key;
  int64_t id = 0;
  for (int i = 0; i < 8; i++) id = id << 8 | k[i];
  Leasepb__Lease *pb = leasepb__lease__unpack(NULL, vlen, val);
  assert_non_null(pb);
  assert_int_equal(pb->id, id);
  if (id == 0x1234567890abLL) assert_int_equal(pb->ttl, 100);
  if (id == 2) assert_int_equal(pb->ttl, 2); /* stored after the minimum was applied */
  leasepb__lease__free_unpacked(pb, NULL);
  (*count)++;
  return 0;
}

static void test_persist_restore(void **state) {
  (void)state;
  env_t e = {.dir = tu_mkdtemp()};
  now_ms = 1000;
  env_open(&e);
  grant(&e, 0x1234567890abLL, 100);
  grant(&e, 2, 1);
  grant(&e, 3, 50);
  assert_int_equal(put_lease(e.s, "x", "1", 0x1234567890abLL), 0);
  assert_int_equal(put_lease(e.s, "y", "1", 0x1234567890abLL), 0);
  assert_int_equal(put_lease(e.s, "z", "1", 2), 0);
  assert_int_equal(put_lease(e.s, "w", "1", 3), 0);
  assert_int_equal(tu_del(e.s, "w", NULL, NULL), 1);
  assert_int_equal(mvcc_batch_begin(e.s), 0);
  assert_int_equal(lease_revoke(e.le, 3), 0);
  assert_int_equal(mvcc_batch_commit(e.s, 50), 0);
  /* a batch that is aborted leaves nothing behind in the bucket */
  assert_int_equal(mvcc_batch_begin(e.s), 0);
  assert_int_equal(lease_grant(e.le, 77, 5, NULL), 0);
  mvcc_batch_abort(e.s);
  int count = 0;
  assert_int_equal(mvcc_bucket_foreach(e.s, "lease", collect, &count), 0);
  assert_int_equal(count, 2);
  env_close(&e);

  now_ms = 500000; /* a later start: leases get their full TTL again */
  env_open(&e);
  assert_int_equal(lease_count(e.le), 2);
  assert_true(lease_exists(e.le, 0x1234567890abLL));
  assert_true(lease_exists(e.le, 2));
  assert_false(lease_exists(e.le, 3));
  lease_info_t info;
  assert_int_equal(lease_lookup(e.le, 0x1234567890abLL, &info), 0);
  assert_int_equal(info.ttl_remaining, 100);
  assert_int_equal(info.granted_ttl, 100);
  assert_int_equal(info.n_keys, 2);
  assert_int_equal(nkeys(&e, 2), 1);
  /* expiry after restart deletes the keys */
  now_ms += 2000;
  int64_t ids[4];
  assert_int_equal(lease_find_expired(e.le, ids, 4), 1);
  assert_int_equal(ids[0], 2);
  assert_int_equal(mvcc_batch_begin(e.s), 0);
  assert_int_equal(lease_revoke(e.le, 2), 0);
  assert_int_equal(mvcc_batch_commit(e.s, 60), 0);
  arena_t a;
  arena_init(&a);
  assert_null(tu_get(e.s, &a, "z", 0));
  assert_non_null(tu_get(e.s, &a, "x", 0));
  arena_destroy(&a);
  env_close(&e);
  tu_rmdir(e.dir);
}

/* A raft snapshot install: the lessor is reset, the backend replaced by another store's
 * image and the leases restored from it, with the image's keys attached (nothing of the
 * old backend's leases is left). */
static void test_reset_for_snapshot_install(void **state) {
  (void)state;
  now_ms = 1000;
  env_t a = {.dir = tu_mkdtemp()}, b = {.dir = tu_mkdtemp()};
  env_open(&a);
  env_open(&b);
  grant(&a, 5, 100);
  assert_int_equal(put_lease(a.s, "a", "1", 5), 0);
  grant(&b, 6, 30);
  grant(&b, 7, 40);
  assert_int_equal(put_lease(b.s, "b", "1", 6), 0);
  assert_int_equal(put_lease(b.s, "c", "1", 6), 0);
  char img[600];
  snprintf(img, sizeof(img), "%s/9.db.tmp", a.dir);
  int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(mvcc_copy_to_fd(b.s, fd), 0);
  close(fd);
  env_close(&b);
  tu_rmdir(b.dir);

  lease_reset(a.le);
  assert_int_equal(lease_count(a.le), 0);
  assert_int_equal(mvcc_replace_file(a.s, img), 0);
  assert_int_equal(lease_restore(a.le, a.s), 0);
  assert_int_equal(lease_count(a.le), 2);
  assert_false(lease_exists(a.le, 5));
  assert_true(lease_exists(a.le, 7));
  assert_int_equal(nkeys(&a, 6), 2);
  assert_int_equal(nkeys(&a, 7), 0);
  lease_promote(a.le, 0);
  now_ms += 31000;
  int64_t ids[4];
  assert_int_equal(lease_find_expired(a.le, ids, 4), 1);
  assert_int_equal(ids[0], 6);
  env_close(&a);
  tu_rmdir(a.dir);
}

/* Keys whose lease is not in the bucket come back without a lease entry. */
static void test_orphan_attachments(void **state) {
  (void)state;
  env_t e = {.dir = tu_mkdtemp()};
  now_ms = 1000;
  env_open(&e);
  grant(&e, 4, 10);
  assert_int_equal(put_lease(e.s, "o", "1", 4), 0);
  /* drop the lease record behind the lessor's back */
  uint8_t k[8] = {0, 0, 0, 0, 0, 0, 0, 4};
  assert_int_equal(mvcc_bucket_del(e.s, "lease", k, 8), 0);
  env_close(&e);
  env_open(&e);
  assert_false(lease_exists(e.le, 4));
  assert_int_equal(lease_count(e.le), 0);
  env_close(&e);
  tu_rmdir(e.dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_attach_detach),
      cmocka_unit_test(test_revoke_one_revision),
      cmocka_unit_test(test_persist_restore),
      cmocka_unit_test(test_orphan_attachments),
      cmocka_unit_test(test_reset_for_snapshot_install),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
