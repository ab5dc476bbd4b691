/* Tests for the gRPC message deframer: split, merged, oversized, truncated input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "grpc/grpc_frame.h"

typedef struct collected {
  int n;
  size_t lens[16];
  uint8_t data[16][64];
  int stop_after; /* 0 = never */
} collected_t;

/* Deframer callback that records each message. */
static int collect(void *ctx, const uint8_t *p, size_t n) {
  collected_t *c = ctx;
  if (c->n < 16) {
    c->lens[c->n] = n;
    memcpy(c->data[c->n], p, n < 64 ? n : 64);
  }
  c->n++;
  return c->stop_after && c->n >= c->stop_after;
}

/* Appends a framed message with payload s to out; returns the new length. */
static size_t frame(uint8_t *out, size_t off, const char *s) {
  size_t n = strlen(s);
  grpc_frame_prefix(out + off, (uint32_t)n);
  memcpy(out + off + 5, s, n);
  return off + 5 + n;
}

/* Three messages in one chunk arrive as three callbacks. */
static void test_merged(void **state) {
  (void)state;
  uint8_t in[128];
  size_t n = frame(in, 0, "one");
  n = frame(in, n, "");
  n = frame(in, n, "three!");
  grpc_deframer_t d;
  grpc_deframer_init(&d, 1024);
  collected_t c = {0};
  assert_int_equal(grpc_deframer_feed(&d, in, n, collect, &c), GRPC_DEFRAME_OK);
  assert_int_equal(c.n, 3);
  assert_int_equal(c.lens[0], 3);
  assert_memory_equal(c.data[0], "one", 3);
  assert_int_equal(c.lens[1], 0);
  assert_int_equal(c.lens[2], 6);
  assert_memory_equal(c.data[2], "three!", 6);
  assert_true(grpc_deframer_idle(&d));
  grpc_deframer_reset(&d);
}

/* The same stream fed one byte at a time gives the same messages. */
static void test_split_bytewise(void **state) {
  (void)state;
  uint8_t in[128];
  size_t n = frame(in, 0, "hello");
  n = frame(in, n, "world, longer");
  grpc_deframer_t d;
  grpc_deframer_init(&d, 1024);
  collected_t c = {0};
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(grpc_deframer_feed(&d, in + i, 1, collect, &c), GRPC_DEFRAME_OK);
    if (i + 1 < n) assert_false(grpc_deframer_idle(&d) && c.n == 2);
  }
  assert_int_equal(c.n, 2);
  assert_memory_equal(c.data[0], "hello", 5);
  assert_int_equal(c.lens[1], 13);
  assert_memory_equal(c.data[1], "world, longer", 13);
  assert_true(grpc_deframer_idle(&d));
  grpc_deframer_reset(&d);
}

/* Every split point of a two-message stream into two chunks works. */
static void test_all_split_points(void **state) {
  (void)state;
  uint8_t in[128];
  size_t n = frame(in, 0, "abc");
  n = frame(in, n, "defgh");
  for (size_t cut = 0; cut <= n; cut++) {
    grpc_deframer_t d;
    grpc_deframer_init(&d, 0);
    collected_t c = {0};
    assert_int_equal(grpc_deframer_feed(&d, in, cut, collect, &c), GRPC_DEFRAME_OK);
    assert_int_equal(grpc_deframer_feed(&d, in + cut, n - cut, collect, &c), GRPC_DEFRAME_OK);
    assert_int_equal(c.n, 2);
    assert_memory_equal(c.data[1], "defgh", 5);
    grpc_deframer_reset(&d);
  }
}

/* A prefix announcing more than max fails at once and stays failed. */
static void test_oversized(void **state) {
  (void)state;
  uint8_t in[5];
  grpc_frame_prefix(in, 2000);
  grpc_deframer_t d;
  grpc_deframer_init(&d, 1024);
  collected_t c = {0};
  assert_int_equal(grpc_deframer_feed(&d, in, 3, collect, &c), GRPC_DEFRAME_OK);
  assert_int_equal(grpc_deframer_feed(&d, in + 3, 2, collect, &c), GRPC_DEFRAME_TOO_LARGE);
  assert_int_equal(d.msg_len, 2000);
  assert_int_equal(grpc_deframer_feed(&d, in, 1, collect, &c), GRPC_DEFRAME_FAILED);
  assert_false(grpc_deframer_idle(&d));
  assert_int_equal(c.n, 0);
  grpc_deframer_reset(&d);
  /* exactly max is fine */
  uint8_t ok[5 + 4] = {0};
  grpc_frame_prefix(ok, 4);
  grpc_deframer_init(&d, 4);
  assert_int_equal(grpc_deframer_feed(&d, ok, sizeof(ok), collect, &c), GRPC_DEFRAME_OK);
  assert_int_equal(c.n, 1);
  grpc_deframer_reset(&d);
}

/* Truncated input leaves the deframer non-idle (the stream ended inside a message). */
static void test_truncated(void **state) {
  (void)state;
  uint8_t in[64];
  size_t n = frame(in, 0, "truncated message");
  grpc_deframer_t d;
  grpc_deframer_init(&d, 1024);
  collected_t c = {0};
  assert_int_equal(grpc_deframer_feed(&d, in, n - 4, collect, &c), GRPC_DEFRAME_OK);
  assert_int_equal(c.n, 0);
  assert_false(grpc_deframer_idle(&d));
  grpc_deframer_reset(&d);
  grpc_deframer_init(&d, 1024);
  assert_int_equal(grpc_deframer_feed(&d, in, 2, collect, &c), GRPC_DEFRAME_OK);
  assert_false(grpc_deframer_idle(&d));
  grpc_deframer_reset(&d);
}

/* Compressed flag 1 and unknown flags are reported distinctly. */
static void test_flags(void **state) {
  (void)state;
  uint8_t in[6] = {1, 0, 0, 0, 1, 'x'};
  grpc_deframer_t d;
  grpc_deframer_init(&d, 1024);
  collected_t c = {0};
  assert_int_equal(grpc_deframer_feed(&d, in, 6, collect, &c), GRPC_DEFRAME_COMPRESSED);
  grpc_deframer_reset(&d);
  in[0] = 7;
  assert_int_equal(grpc_deframer_feed(&d, in, 6, collect, &c), GRPC_DEFRAME_BAD_FLAG);
  assert_int_equal(d.flag, 7);
  grpc_deframer_reset(&d);
  assert_int_equal(c.n, 0);
}

/* A callback returning nonzero stops the feed. */
static void test_stop(void **state) {
  (void)state;
  uint8_t in[64];
  size_t n = frame(in, 0, "a");
  n = frame(in, n, "b");
  grpc_deframer_t d;
  grpc_deframer_init(&d, 1024);
  collected_t c = {.stop_after = 1};
  assert_int_equal(grpc_deframer_feed(&d, in, n, collect, &c), GRPC_DEFRAME_STOPPED);
  assert_int_equal(c.n, 1);
  grpc_deframer_reset(&d);
}

/* A large message split across many chunks is reassembled intact. */
static void test_large_reassembly(void **state) {
  (void)state;
  enum { N = 300000 };
  static uint8_t in[N + 5];
  grpc_frame_prefix(in, N);
  for (size_t i = 0; i < N; i++) in[5 + i] = (uint8_t)(i * 7);
  grpc_deframer_t d;
  grpc_deframer_init(&d, N);
  collected_t c = {0};
  for (size_t off = 0; off < sizeof(in); off += 16384) {
    size_t k = sizeof(in) - off < 16384 ? sizeof(in) - off : 16384;
    assert_int_equal(grpc_deframer_feed(&d, in + off, k, collect, &c), GRPC_DEFRAME_OK);
  }
  assert_int_equal(c.n, 1);
  assert_int_equal(c.lens[0], N);
  assert_memory_equal(c.data[0], in + 5, 64);
  assert_true(grpc_deframer_idle(&d));
  grpc_deframer_reset(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_merged),
      cmocka_unit_test(test_split_bytewise),
      cmocka_unit_test(test_all_split_points),
      cmocka_unit_test(test_oversized),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_flags),
      cmocka_unit_test(test_stop),
      cmocka_unit_test(test_large_reassembly),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
