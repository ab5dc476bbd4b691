/* The key index's B-tree (mvcc/btree.c) against a sorted array: every key is found, absent
 * keys are not, and an in-order walk from any key gives the keys >= it in byte order.
 * The keys are chosen to defeat the nodes' 8-byte prefixes: keys that are prefixes of one
 * another, embedded and trailing zero bytes, long keys sharing their first 8 bytes, and
 * bytes >= 0x80 (compared unsigned). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
// clang-format off
#include <cmocka.h>
// clang-format on

#include "mvcc/key_index_int.h"

typedef struct key {
  uint8_t b[24];
  size_t n;
} tkey_t;

/* qsort order: mvcc_key_cmp. */
static int key_qsort_cmp(const void *a, const void *b) {
  const tkey_t *x = a, *y = b;
  return mvcc_key_cmp(x->b, x->n, y->b, y->n);
}

/* A small alphabet makes shared prefixes and exact prefixes of other keys common. */
static void random_key(tkey_t *k, unsigned *seed) {
  static const uint8_t alphabet[] = {0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xff};
  int shape = rand_r(seed) % 4;
  k->n = shape == 0 ? (size_t)(rand_r(seed) % 9) : 8 + (size_t)(rand_r(seed) % 17);
  for (size_t i = 0; i < k->n; i++) {
    if (shape == 1 && i < 8)
      k->b[i] = "prefix!!"[i]; /* long keys that all share their first 8 bytes */
    else
      k->b[i] = alphabet[rand_r(seed) % sizeof(alphabet)];
  }
}

typedef struct walk {
  const tkey_t *want; /* the sorted keys expected from the walk's start on */
  size_t n, seen;
} walk_t;

/* mvcc_bt_visit callback: checks each item against the next expected key. */
static bool check_next(void *ctx, mvcc_ki_t *ki) {
  walk_t *w = ctx;
  assert_true(w->seen < w->n);
  const tkey_t *k = &w->want[w->seen++];
  assert_int_equal(ki->klen, k->n);
  assert_memory_equal(ki->key, k->b, k->n);
  return true;
}

static void test_btree_matches_sorted_keys(void **state) {
  (void)state;
  enum { N = 5000 };
  unsigned seed = 12345;
  tkey_t *keys = calloc(N, sizeof(*keys));
  mvcc_btree_t t;
  mvcc_bt_init(&t);
  size_t n = 0;
  for (int i = 0; i < N; i++) {
    tkey_t k;
    random_key(&k, &seed);
    if (mvcc_bt_find(&t, k.b, k.n)) continue; /* duplicates are not inserted twice */
    mvcc_bt_insert(&t, mvcc_ki_new(k.b, k.n));
    keys[n++] = k;
  }
  assert_true(n > 2000);
  qsort(keys, n, sizeof(*keys), key_qsort_cmp);
  for (size_t i = 0; i < n; i++) {
    mvcc_ki_t *ki = mvcc_bt_find(&t, keys[i].b, keys[i].n);
    assert_non_null(ki);
    assert_int_equal(ki->klen, keys[i].n);
    assert_memory_equal(ki->key, keys[i].b, keys[i].n);
  }
  walk_t all = {keys, n, 0};
  mvcc_bt_visit(&t, NULL, 0, check_next, &all);
  assert_int_equal(all.seen, n);

  /* Probes: absent keys are not found; a walk from any probe starts at its lower bound. */
  for (int i = 0; i < 2000; i++) {
    tkey_t p;
    random_key(&p, &seed);
    tkey_t *hit = bsearch(&p, keys, n, sizeof(*keys), key_qsort_cmp);
    mvcc_ki_t *ki = mvcc_bt_find(&t, p.b, p.n);
    assert_true((ki != NULL) == (hit != NULL));
    size_t lo = 0, hi = n;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (key_qsort_cmp(&keys[mid], &p) < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
    walk_t from = {keys + lo, n - lo, 0};
    mvcc_bt_visit(&t, p.n ? p.b : (const uint8_t *)"", p.n, check_next, &from);
    assert_int_equal(from.seen, n - lo);
  }

  /* Exact edge cases next to each other: "a" < "a\0" < "a\0\0" < "a\x01" and an 8-byte
   * key < the same 8 bytes followed by a zero byte. */
  static const struct {
    const char *b;
    size_t n;
  } edge[] = {{"a", 1}, {"a\0", 2}, {"a\0\0", 3}, {"a\x01", 2}, {"abcdefgh", 8}, {"abcdefgh\0", 9}};
  mvcc_btree_t e;
  mvcc_bt_init(&e);
  for (int i = (int)(sizeof(edge) / sizeof(*edge)) - 1; i >= 0; i--)
    mvcc_bt_insert(&e, mvcc_ki_new((const uint8_t *)edge[i].b, edge[i].n));
  tkey_t want[sizeof(edge) / sizeof(*edge)];
  for (size_t i = 0; i < sizeof(edge) / sizeof(*edge); i++) {
    memcpy(want[i].b, edge[i].b, edge[i].n);
    want[i].n = edge[i].n;
    assert_non_null(mvcc_bt_find(&e, (const uint8_t *)edge[i].b, edge[i].n));
  }
  walk_t ew = {want, sizeof(edge) / sizeof(*edge), 0};
  mvcc_bt_visit(&e, NULL, 0, check_next, &ew);
  assert_int_equal(ew.seen, sizeof(edge) / sizeof(*edge));
  mvcc_bt_clear(&e, true);
  mvcc_bt_clear(&t, true);
  free(keys);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_btree_matches_sorted_keys)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
