/* Helpers shared by the mvcc unit tests (header-only; each test file is its own binary). */
#ifndef CETCD_TEST_MVCC_UTIL_H
#define CETCD_TEST_MVCC_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// clang-format off
#include <cmocka.h>
// clang-format on
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"

/* nftw callback removing one entry. */
static int tu_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

/* Creates a fresh temporary directory (owned string). */
static inline char *tu_mkdtemp(void) {
  char *t = strdup("/tmp/cetcd-mvcc-test-XXXXXX");
  assert_non_null(mkdtemp(t));
  return t;
}

/* Removes dir recursively and frees the string. */
static inline void tu_rmdir(char *dir) {
  nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

/* Opens a store in dir with optional opts; fails the test on error. */
static inline mvcc_store_t *tu_open(const char *dir, const mvcc_opts_t *o) {
  mvcc_store_t *s = NULL;
  assert_int_equal(mvcc_open(dir, o, &s), 0);
  return s;
}

static inline ProtobufCBinaryData tu_bin(const char *s) {
  ProtobufCBinaryData b = {s ? strlen(s) : 0, (uint8_t *)s};
  return b;
}

/* Puts key=val (lease 0); returns the response's revision. */
static inline int64_t tu_put(mvcc_store_t *s, const char *k, const char *v) {
  arena_t a;
  arena_init(&a);
  Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
  req.key = tu_bin(k);
  req.value = tu_bin(v);
  Etcdserverpb__PutResponse *r = NULL;
  assert_int_equal(mvcc_apply_put(s, &req, &a, &r), 0);
  int64_t rev = r->header->revision;
  arena_destroy(&a);
  return rev;
}

/* Deletes [k, end) (end NULL: the key); returns the number deleted, *rev the revision. */
static inline int64_t tu_del(mvcc_store_t *s, const char *k, const char *end, int64_t *rev) {
  arena_t a;
  arena_init(&a);
  Etcdserverpb__DeleteRangeRequest req = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
  req.key = tu_bin(k);
  req.range_end = tu_bin(end);
  Etcdserverpb__DeleteRangeResponse *r = NULL;
  assert_int_equal(mvcc_apply_delete_range(s, &req, &a, &r), 0);
  int64_t n = r->deleted;
  if (rev) *rev = r->header->revision;
  arena_destroy(&a);
  return n;
}

/* Ranges [k, end) at rev into arena a; returns the error code, *out the response. */
static inline int tu_range(mvcc_store_t *s, arena_t *a, const char *k, const char *end, int64_t rev,
                           Etcdserverpb__RangeResponse **out) {
  Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
  req.key = tu_bin(k);
  req.range_end = tu_bin(end);
  req.revision = rev;
  return mvcc_apply_range(s, &req, a, out);
}

/* Asserts a KeyValue's fields. */
static inline void tu_assert_kv(const Mvccpb__KeyValue *kv, const char *k, const char *v, int64_t create,
                                int64_t mod, int64_t ver) {
  assert_non_null(kv);
  assert_int_equal(kv->key.len, strlen(k));
  assert_memory_equal(kv->key.data, k, strlen(k));
  if (v) {
    assert_int_equal(kv->value.len, strlen(v));
    if (kv->value.len) assert_memory_equal(kv->value.data, v, strlen(v));
  }
  assert_int_equal(kv->create_revision, create);
  assert_int_equal(kv->mod_revision, mod);
  assert_int_equal(kv->version, ver);
}

/* Returns the single KeyValue of key k at rev (NULL if absent); arena-owned. */
static inline Mvccpb__KeyValue *tu_get(mvcc_store_t *s, arena_t *a, const char *k, int64_t rev) {
  Etcdserverpb__RangeResponse *r = NULL;
  assert_int_equal(tu_range(s, a, k, NULL, rev, &r), 0);
  return r->n_kvs ? r->kvs[0] : NULL;
}

#endif
