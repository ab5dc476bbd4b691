/* bbolt writer/reader: round trips (many buckets, empty buckets, overflow pages,
 * multi-level branches) and rejection of corrupt files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// clang-format off
#include <cmocka.h>
// clang-format on
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cetcd/errors.h"
#include "snapshot/bbolt.h"
#include "snapshot/bbolt_int.h"

/* Deterministic record content for bucket b, index i. */
static size_t make_key(int b, int i, char *out) { return (size_t)sprintf(out, "b%03d-key-%08d", b, i); }
static size_t val_len(int b, int i) {
  if (b == 3 && i % 7 == 0) return 5000 + (size_t)i * 131 % 70000; /* overflow pages */
  return (size_t)(i % 40);
}
static void make_val(int b, int i, uint8_t *out, size_t n) {
  for (size_t j = 0; j < n; j++) out[j] = (uint8_t)(b * 31 + i * 7 + j);
}

/* Bucket plan: number of records per bucket (0 = empty). */
static const int plan[] = {0, 5, 200, 300, 0, 100000, 1, 20};
enum { NB = sizeof(plan) / sizeof(plan[0]) };

/* Writes the plan into a new temp file; returns its bytes (owned) and size. */
static uint8_t *write_plan(size_t *len) {
  char path[] = "/tmp/cetcd-bbolt-test-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  unlink(path);
  bbolt_writer_t *w;
  assert_int_equal(bbolt_writer_open(fd, &w), 0);
  static uint8_t val[80000];
  /* buckets in reverse order: the writer sorts them */
  for (int b = NB - 1; b >= 0; b--) {
    char name[32];
    int nl = sprintf(name, "bucket-%02d", b);
    assert_int_equal(bbolt_writer_bucket_begin(w, name, (size_t)nl), 0);
    for (int i = 0; i < plan[b]; i++) {
      char k[64];
      size_t kl = make_key(b, i, k), vl = val_len(b, i);
      make_val(b, i, val, vl);
      assert_int_equal(bbolt_writer_put(w, k, kl, val, vl), 0);
    }
    assert_int_equal(bbolt_writer_bucket_end(w), 0);
  }
  uint64_t size = 0;
  assert_int_equal(bbolt_writer_finish(w, &size), 0);
  struct stat st;
  assert_int_equal(fstat(fd, &st), 0);
  assert_int_equal((uint64_t)st.st_size, size);
  assert_int_equal(size % BBOLT_PAGE_SIZE, 0);
  uint8_t *data = malloc(size);
  assert_int_equal(pread(fd, data, size, 0), (ssize_t)size);
  close(fd);
  *len = size;
  return data;
}

typedef struct check_ctx {
  int bucket, next, nbuckets;
  long records;
} check_ctx_t;

static int on_bucket(void *ctx, const uint8_t *name, size_t nlen) {
  check_ctx_t *c = ctx;
  if (c->bucket >= 0) assert_int_equal(c->next, plan[c->bucket]);
  char want[32];
  int wl = sprintf(want, "bucket-%02d", c->nbuckets);
  assert_int_equal(nlen, (size_t)wl);
  assert_memory_equal(name, want, nlen);
  c->bucket = c->nbuckets++;
  c->next = 0;
  return 0;
}

static int on_record(void *ctx, const uint8_t *bucket, size_t blen, const uint8_t *key, size_t klen,
                     const uint8_t *val, size_t vlen) {
  check_ctx_t *c = ctx;
  (void)bucket, (void)blen;
  char k[64];
  static uint8_t v[80000];
  size_t kl = make_key(c->bucket, c->next, k), vl = val_len(c->bucket, c->next);
  make_val(c->bucket, c->next, v, vl);
  assert_int_equal(klen, kl);
  assert_memory_equal(key, k, kl);
  assert_int_equal(vlen, vl);
  if (vl) assert_memory_equal(val, v, vl);
  c->next++;
  c->records++;
  return 0;
}

static void test_round_trip(void **state) {
  (void)state;
  size_t len;
  uint8_t *data = write_plan(&len);
  bbolt_reader_t *r;
  char err[256];
  assert_int_equal(bbolt_reader_open_mem(data, len, &r, err, sizeof(err)), 0);
  assert_int_equal(bbolt_reader_txid(r), 1);
  assert_int_equal(bbolt_reader_pgid(r) * BBOLT_PAGE_SIZE, len);
  check_ctx_t c = {.bucket = -1};
  assert_int_equal(bbolt_reader_walk(r, on_bucket, on_record, &c), 0);
  assert_int_equal(c.nbuckets, NB);
  assert_int_equal(c.next, plan[NB - 1]);
  long total = 0;
  for (int b = 0; b < NB; b++) total += plan[b];
  assert_int_equal(c.records, total);
  /* point lookups, incl. deep in the multi-level bucket and an overflow value */
  const uint8_t *v;
  size_t vl;
  char k[64];
  size_t kl = make_key(5, 77777, k);
  assert_int_equal(bbolt_reader_get(r, "bucket-05", k, kl, &v, &vl), 0);
  assert_int_equal(vl, val_len(5, 77777));
  kl = make_key(3, 49, k);
  assert_int_equal(bbolt_reader_get(r, "bucket-03", k, kl, &v, &vl), 0);
  assert_int_equal(vl, val_len(3, 49));
  assert_true(vl > BBOLT_PAGE_SIZE);
  assert_int_equal(bbolt_reader_get(r, "bucket-04", "x", 1, &v, &vl), CETCD_EKEYNOTFOUND);
  assert_int_equal(bbolt_reader_get(r, "nope", "x", 1, &v, &vl), CETCD_EKEYNOTFOUND);
  bbolt_reader_close(r);

  /* the same through a file with a trailing sha256 (32 bytes) like a snapshot */
  char path[] = "/tmp/cetcd-bbolt-test-XXXXXX";
  int fd = mkstemp(path);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  assert_int_equal(write(fd, data, 32), 32);
  close(fd);
  assert_int_equal(bbolt_reader_open(path, &r, err, sizeof(err)), 0);
  c = (check_ctx_t){.bucket = -1};
  assert_int_equal(bbolt_reader_walk(r, on_bucket, on_record, &c), 0);
  assert_int_equal(c.records, total);
  bbolt_reader_close(r);
  unlink(path);
  free(data);
}

static void test_empty_file_and_writer_errors(void **state) {
  (void)state;
  char path[] = "/tmp/cetcd-bbolt-test-XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  bbolt_writer_t *w;
  assert_int_equal(bbolt_writer_open(fd, &w), 0);
  assert_int_equal(bbolt_writer_put(w, "k", 1, "v", 1), CETCD_EINVAL); /* no bucket open */
  assert_int_equal(bbolt_writer_bucket_begin(w, "a", 1), 0);
  assert_int_equal(bbolt_writer_bucket_begin(w, "b", 1), CETCD_EINVAL); /* nested */
  assert_int_equal(bbolt_writer_put(w, "k2", 2, "v", 1), 0);
  assert_int_equal(bbolt_writer_put(w, "k1", 2, "v", 1), CETCD_EINVAL); /* order */
  assert_int_equal(bbolt_writer_put(w, "k2", 2, "v", 1), CETCD_EINVAL); /* duplicate */
  assert_int_equal(bbolt_writer_put(w, "", 0, "v", 1), CETCD_EINVAL);
  assert_int_equal(bbolt_writer_bucket_end(w), 0);
  assert_int_equal(bbolt_writer_bucket_begin(w, "a", 1), CETCD_EINVAL); /* duplicate */
  bbolt_writer_free(w);

  /* a file without buckets is valid */
  assert_int_equal(ftruncate(fd, 0), 0);
  assert_int_equal(bbolt_writer_open(fd, &w), 0);
  uint64_t size;
  assert_int_equal(bbolt_writer_finish(w, &size), 0);
  assert_int_equal(size, 4 * BBOLT_PAGE_SIZE);
  uint8_t *data = malloc(size);
  assert_int_equal(pread(fd, data, size, 0), (ssize_t)size);
  close(fd);
  bbolt_reader_t *r;
  assert_int_equal(bbolt_reader_open_mem(data, size, &r, NULL, 0), 0);
  check_ctx_t c = {.bucket = -1};
  assert_int_equal(bbolt_reader_walk(r, on_bucket, on_record, &c), 0);
  assert_int_equal(c.nbuckets, 0);
  bbolt_reader_close(r);
  free(data);
}

/* Opens and walks; returns the first error. */
static int open_walk(const uint8_t *data, size_t len) {
  bbolt_reader_t *r;
  char err[256] = "";
  int rc = bbolt_reader_open_mem(data, len, &r, err, sizeof(err));
  if (rc) {
    assert_true(err[0] != 0);
    return rc;
  }
  check_ctx_t c = {.bucket = -1};
  (void)c;
  rc = bbolt_reader_walk(r, NULL, NULL, NULL);
  if (rc) assert_true(bbolt_reader_error(r)[0] != 0);
  bbolt_reader_close(r);
  return rc;
}

/* Rewrites meta page i's checksum after a change. */
static void reseal_meta(uint8_t *data, int i) {
  uint8_t *m = data + (size_t)i * BBOLT_PAGE_SIZE + BB_PAGE_HDR;
  bb_put64(m + 56, bb_fnv1a64(m, BB_META_SUMMED));
}

static void test_corrupt(void **state) {
  (void)state;
  size_t len;
  uint8_t *data = write_plan(&len);
  uint8_t *d = malloc(len);

  /* truncated: shorter than the high-water mark */
  assert_int_equal(open_walk(data, len - BBOLT_PAGE_SIZE), CETCD_ECORRUPT);
  assert_int_equal(open_walk(data, 100), CETCD_ECORRUPT);
  assert_int_equal(open_walk(data, 0), CETCD_ECORRUPT);

  /* bad magic in both metas; in one meta only the other is used */
  memcpy(d, data, len);
  d[BB_PAGE_HDR] ^= 1;
  assert_int_equal(open_walk(d, len), 0);
  d[BBOLT_PAGE_SIZE + BB_PAGE_HDR] ^= 1;
  assert_int_equal(open_walk(d, len), CETCD_ECORRUPT);

  /* bad checksum in both metas */
  memcpy(d, data, len);
  d[BB_PAGE_HDR + 40] ^= 1; /* pgid field */
  d[BBOLT_PAGE_SIZE + BB_PAGE_HDR + 40] ^= 1;
  assert_int_equal(open_walk(d, len), CETCD_ECORRUPT);

  /* root page id out of range (checksums fixed up) */
  memcpy(d, data, len);
  for (int i = 0; i < 2; i++) {
    bb_put64(d + (size_t)i * BBOLT_PAGE_SIZE + BB_PAGE_HDR + 16, 1u << 30);
    reseal_meta(d, i);
  }
  assert_int_equal(open_walk(d, len), CETCD_ECORRUPT);

  /* a branch element pointing past the high-water mark: find the first branch page */
  memcpy(d, data, len);
  size_t npages = len / BBOLT_PAGE_SIZE, bp = 0;
  for (size_t p = 3; p < npages; p++)
    if (bb_get16(d + p * BBOLT_PAGE_SIZE + 8) == BB_BRANCH_PAGE) {
      bp = p;
      break;
    }
  assert_true(bp != 0);
  bb_put64(d + bp * BBOLT_PAGE_SIZE + BB_PAGE_HDR + 8, npages + 5);
  assert_int_equal(open_walk(d, len), CETCD_ECORRUPT);
  /* ... pointing at a meta page / the freelist */
  bb_put64(d + bp * BBOLT_PAGE_SIZE + BB_PAGE_HDR + 8, 1);
  assert_int_equal(open_walk(d, len), CETCD_ECORRUPT);
  bb_put64(d + bp * BBOLT_PAGE_SIZE + BB_PAGE_HDR + 8, 2);
  assert_int_equal(open_walk(d, len), CETCD_ECORRUPT);
  /* element count that does not fit the page */
  memcpy(d, data, len);
  bb_put16(d + bp * BBOLT_PAGE_SIZE + 10, 0xffff);
  assert_int_equal(open_walk(d, len), CETCD_ECORRUPT);

  /* random damage to data pages never crashes: either still readable or ECORRUPT */
  srand(42);
  for (int t = 0; t < 300; t++) {
    memcpy(d, data, len);
    for (int j = 0; j < 4; j++) {
      size_t off = 2 * BBOLT_PAGE_SIZE + (size_t)rand() % (len - 2 * BBOLT_PAGE_SIZE);
      d[off] = (uint8_t)rand();
    }
    int rc = open_walk(d, len);
    assert_true(rc == 0 || rc == CETCD_ECORRUPT);
  }
  /* damage confined to page headers (ids, flags, counts, overflow) */
  for (int t = 0; t < 300; t++) {
    memcpy(d, data, len);
    size_t p = 3 + (size_t)rand() % (npages - 3);
    d[p * BBOLT_PAGE_SIZE + (size_t)rand() % BB_PAGE_HDR] = (uint8_t)rand();
    int rc = open_walk(d, len);
    assert_true(rc == 0 || rc == CETCD_ECORRUPT);
  }
  free(d);
  free(data);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_empty_file_and_writer_errors),
      cmocka_unit_test(test_corrupt),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
