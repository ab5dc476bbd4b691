/* Unit tests for the key-range permission logic (auth/auth_perm.c): etcd's affine key
 * order, points, ranges, prefixes, from-key, coverage by several permissions, gaps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka must come after the headers above
#include <cmocka.h>
#include <string.h>

#include "auth/auth_perm.h"

#define R AUTHPB__PERMISSION__TYPE__READ
#define W AUTHPB__PERMISSION__TYPE__WRITE
#define RW AUTHPB__PERMISSION__TYPE__READWRITE

/* A permission over [key, end) (end NULL: one key; "\0": to the end). */
static Authpb__Permission perm(int type, const char *key, const char *end) {
  Authpb__Permission p = AUTHPB__PERMISSION__INIT;
  p.permtype = type;
  p.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
  if (end) p.range_end = (ProtobufCBinaryData){*end ? strlen(end) : 1, (uint8_t *)end};
  return p;
}

/* Whether the permissions allow `type` on [key, end) (end NULL: one key; "" means "\0"). */
static bool allows(Authpb__Permission *ps, size_t n, int type, const char *key, const char *end) {
  Authpb__Permission *v[8];
  for (size_t i = 0; i < n; i++) v[i] = &ps[i];
  size_t el = end ? (*end ? strlen(end) : 1) : 0;
  return auth_perm_allows(v, n, type, (const uint8_t *)key, strlen(key), (const uint8_t *)end, el);
}

/* Empty keys sort after everything (etcd's BytesAffineComparable). */
static void test_affine_order(void **state) {
  (void)state;
  assert_true(auth_affine_cmp((const uint8_t *)"a", 1, (const uint8_t *)"b", 1) < 0);
  assert_true(auth_affine_cmp((const uint8_t *)"ab", 2, (const uint8_t *)"a", 1) > 0);
  assert_true(auth_affine_cmp(NULL, 0, (const uint8_t *)"zzz", 3) > 0);
  assert_true(auth_affine_cmp((const uint8_t *)"zzz", 3, NULL, 0) < 0);
  assert_int_equal(auth_affine_cmp(NULL, 0, NULL, 0), 0);
}

/* A single-key permission grants that key only, and only its type. */
static void test_point(void **state) {
  (void)state;
  Authpb__Permission p[] = {perm(R, "foo", NULL)};
  assert_true(allows(p, 1, AUTH_PERM_READ, "foo", NULL));
  assert_false(allows(p, 1, AUTH_PERM_WRITE, "foo", NULL));
  assert_false(allows(p, 1, AUTH_PERM_READ, "foo1", NULL));
  assert_false(allows(p, 1, AUTH_PERM_READ, "fo", NULL));
  assert_false(allows(p, 1, AUTH_PERM_READ, "foo", "fop"));                    /* wider range */
  assert_false(allows(p, 0, AUTH_PERM_READ, "foo", NULL));                     /* no permission */
}

/* Ranges: [k1, k5) grants keys and sub-ranges inside, not past the end. */
static void test_range(void **state) {
  (void)state;
  Authpb__Permission p[] = {perm(W, "k1", "k5")};
  assert_true(allows(p, 1, AUTH_PERM_WRITE, "k1", NULL));
  assert_true(allows(p, 1, AUTH_PERM_WRITE, "k4zzz", NULL));
  assert_false(allows(p, 1, AUTH_PERM_WRITE, "k5", NULL));
  assert_false(allows(p, 1, AUTH_PERM_WRITE, "k0", NULL));
  assert_true(allows(p, 1, AUTH_PERM_WRITE, "k1", "k5"));
  assert_true(allows(p, 1, AUTH_PERM_WRITE, "k2", "k3"));
  assert_false(allows(p, 1, AUTH_PERM_WRITE, "k1", "k6"));
  assert_false(allows(p, 1, AUTH_PERM_WRITE, "k0", "k3"));
  assert_false(allows(p, 1, AUTH_PERM_READ, "k2", NULL));
  assert_false(allows(p, 1, AUTH_PERM_WRITE, "k1", "")); /* from k1 to the end */
}

/* Prefix permissions ([p, p+1)) and READWRITE serving both types. */
static void test_prefix_readwrite(void **state) {
  (void)state;
  Authpb__Permission p[] = {perm(RW, "/p/", "/p0")};
  assert_true(allows(p, 1, AUTH_PERM_READ, "/p/", "/p0"));
  assert_true(allows(p, 1, AUTH_PERM_WRITE, "/p/a", NULL));
  assert_false(allows(p, 1, AUTH_PERM_READ, "/p", "/q"));
  assert_false(allows(p, 1, AUTH_PERM_READ, "/p", NULL));
}

/* A from-key permission ("\0" end) covers everything after its key, to the end. */
static void test_from_key(void **state) {
  (void)state;
  Authpb__Permission p[] = {perm(R, "m", "")};
  assert_true(allows(p, 1, AUTH_PERM_READ, "m", ""));
  assert_true(allows(p, 1, AUTH_PERM_READ, "zzz", NULL));
  assert_true(allows(p, 1, AUTH_PERM_READ, "n", "q"));
  assert_false(allows(p, 1, AUTH_PERM_READ, "a", ""));
  assert_false(allows(p, 1, AUTH_PERM_READ, "l", NULL));
}

/* Several permissions cover a range together only without a gap between them; their order
 * does not matter. */
static void test_union_and_gaps(void **state) {
  (void)state;
  Authpb__Permission p[] = {perm(R, "c", "e"), perm(R, "a", "c"), perm(W, "e", "g")};
  assert_true(allows(p, 3, AUTH_PERM_READ, "a", "e"));
  assert_true(allows(p, 3, AUTH_PERM_READ, "b", "d"));
  assert_false(allows(p, 3, AUTH_PERM_READ, "a", "f")); /* [e, g) is write-only */
  Authpb__Permission q[] = {perm(R, "a", "b"), perm(R, "c", "d")};
  assert_false(allows(q, 2, AUTH_PERM_READ, "a", "d")); /* gap [b, c) */
  assert_true(allows(q, 2, AUTH_PERM_READ, "c", NULL));
  Authpb__Permission all[] = {perm(RW, "\x01", "")};
  assert_true(allows(all, 1, AUTH_PERM_WRITE, "anything", NULL));
  assert_true(allows(all, 1, AUTH_PERM_READ, "\x01", ""));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_affine_order), cmocka_unit_test(test_point),  cmocka_unit_test(test_range),
      cmocka_unit_test(test_prefix_readwrite), cmocka_unit_test(test_from_key), cmocka_unit_test(test_union_and_gaps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
