/* Unit tests for base/: arenas, buffers, error strings, log levels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/log.h"
#include "cetcd/errors.h"

/* Arena allocations are aligned, distinct, survive growth, and large ones work. */
static void test_arena(void **state) {
  (void)state;
  arena_t a;
  arena_init(&a);
  uint8_t *prev = NULL;
  for (int i = 0; i < 2000; i++) {
    uint8_t *p = arena_alloc(&a, (size_t)(i % 37) + 1);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, i & 0xff, (size_t)(i % 37) + 1);
    if (prev) assert_ptr_not_equal(p, prev);
    prev = p;
  }
  uint8_t *big = arena_alloc(&a, 1 << 20);
  memset(big, 7, 1 << 20);
  uint8_t *after = arena_zalloc(&a, 64);
  for (int i = 0; i < 64; i++) assert_int_equal(after[i], 0);
  char *d = arena_memdup(&a, "hello", 5);
  assert_string_equal(d, "hello");
  /* protobuf-c allocator routes into the arena */
  void *q = a.pb.alloc(a.pb.allocator_data, 100);
  assert_non_null(q);
  a.pb.free(a.pb.allocator_data, q);
  arena_destroy(&a);
}

/* Buffers grow, format, and consume from the front. */
static void test_buf(void **state) {
  (void)state;
  buf_t b = {0};
  for (int i = 0; i < 1000; i++) buf_append(&b, "ab", 2);
  assert_int_equal(b.len, 2000);
  buf_consume(&b, 1999);
  assert_int_equal(b.len, 1);
  assert_int_equal(b.data[0], 'b');
  buf_reset(&b);
  buf_printf(&b, "%d-%s", 42, "x");
  assert_int_equal(b.len, 4);
  assert_memory_equal(b.data, "42-x", 4);
  buf_consume(&b, 10);
  assert_int_equal(b.len, 0);
  buf_free(&b);
  assert_null(b.data);
}

/* Every cetcd code has a description; errno values pass through. */
static void test_errors_and_levels(void **state) {
  (void)state;
  assert_string_equal(cetcd_strerror(CETCD_ECOMPACTED), "required revision has been compacted");
  assert_string_equal(cetcd_strerror(-2), "No such file or directory");
  for (int c = CETCD_EINVAL; c > CETCD_ELAST; c--) assert_non_null(cetcd_strerror(c));
  assert_int_equal(log_parse_level("warn"), LOGL_WARN);
  assert_int_equal(log_parse_level("bogus"), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_arena), cmocka_unit_test(test_buf),
                                     cmocka_unit_test(test_errors_and_levels)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
