/* Tests for grpc-message percent-encoding, grpc-timeout parsing and the HTTP/1 parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "grpc/grpc_status.h"
#include "grpc/http1.h"

/* Percent-encodes s and returns the result in a static buffer. */
static const char *enc(const char *s, size_t n) {
  static char out[256];
  buf_t b = {0};
  grpc_percent_encode(&b, s, n);
  if (b.len) memcpy(out, b.data, b.len);
  out[b.len] = 0;
  buf_free(&b);
  return out;
}

static void test_percent_encode(void **state) {
  (void)state;
  assert_string_equal(enc("plain text: ok", 14), "plain text: ok");
  assert_string_equal(enc("100%", 4), "100%25");
  assert_string_equal(enc("a\nb\tc", 5), "a%0Ab%09c");
  assert_string_equal(enc("caf\xc3\xa9", 5), "caf%C3%A9");
  assert_string_equal(enc("\x7f~ ", 3), "%7F~ ");
  assert_string_equal(enc("", 0), "");
}

static void test_percent_roundtrip(void **state) {
  (void)state;
  const char *src = "etcdserver: 100% \xe2\x9c\x93\r\n";
  buf_t e = {0}, d = {0};
  grpc_percent_encode(&e, src, strlen(src));
  grpc_percent_decode(&d, (const char *)e.data, e.len);
  assert_string_equal((const char *)d.data, src);
  buf_free(&e);
  buf_reset(&d);
  grpc_percent_decode(&d, "bad %zz and %4", 14); /* malformed escapes pass through */
  assert_string_equal((const char *)d.data, "bad %zz and %4");
  buf_free(&d);
}

static void test_timeout_parse(void **state) {
  (void)state;
  uint64_t ms = 0;
  assert_true(grpc_timeout_parse("5S", 2, &ms));
  assert_int_equal(ms, 5000);
  assert_true(grpc_timeout_parse("2H", 2, &ms));
  assert_int_equal(ms, 7200000);
  assert_true(grpc_timeout_parse("3M", 2, &ms));
  assert_int_equal(ms, 180000);
  assert_true(grpc_timeout_parse("250m", 4, &ms));
  assert_int_equal(ms, 250);
  assert_true(grpc_timeout_parse("1500u", 5, &ms));
  assert_int_equal(ms, 2); /* rounded up */
  assert_true(grpc_timeout_parse("1n", 2, &ms));
  assert_int_equal(ms, 1);
  assert_true(grpc_timeout_parse("0m", 2, &ms));
  assert_int_equal(ms, 0);
  assert_true(grpc_timeout_parse("99999999H", 9, &ms));
  assert_int_equal(ms, 99999999ull * 3600000ull);
  assert_false(grpc_timeout_parse("123456789S", 10, &ms)); /* 9 digits */
  assert_false(grpc_timeout_parse("S", 1, &ms));
  assert_false(grpc_timeout_parse("10", 2, &ms));
  assert_false(grpc_timeout_parse("10s", 3, &ms));
  assert_false(grpc_timeout_parse("-1S", 3, &ms));
  assert_false(grpc_timeout_parse("1 S", 3, &ms));
}

static void test_timeout_format(void **state) {
  (void)state;
  char b[16];
  uint64_t ms;
  assert_string_equal(grpc_timeout_format(5000, b), "5000m");
  assert_string_equal(grpc_timeout_format(100000000, b), "100000S");
  assert_true(grpc_timeout_parse(b, strlen(b), &ms));
  assert_int_equal(ms, 100000000);
  assert_non_null(grpc_status_name(4));
  assert_string_equal(grpc_status_name(4), "DeadlineExceeded");
  assert_string_equal(grpc_status_name(99), "Unknown");
}

static void test_http1_parse(void **state) {
  (void)state;
  grpc_http1_req_t r;
  const char *get = "GET /health HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
  assert_int_equal(grpc_http1_parse((const uint8_t *)get, strlen(get), 100, &r), (ssize_t)strlen(get));
  assert_string_equal(r.method, "GET");
  assert_string_equal(r.path, "/health");
  assert_int_equal(r.body_len, 0);
  assert_true(r.keep_alive);
  assert_int_equal(r.n_hdr, 2);
  assert_int_equal(r.hdr[1].nlen, 6);
  assert_memory_equal(r.hdr[1].name, "Accept", 6);
  assert_int_equal(r.hdr[1].vlen, 3);
  assert_memory_equal(r.hdr[1].value, "*/*", 3);
  /* keep-alive defaults and the Connection header */
  const char *ka[] = {"GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nConnection: Keep-Alive, Upgrade\r\n\r\n",
                      "GET / HTTP/1.1\r\nconnection:  upgrade , close\r\n\r\n",
                      "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"};
  const bool want[] = {false, true, false, true};
  for (size_t i = 0; i < 4; i++) {
    assert_true(grpc_http1_parse((const uint8_t *)ka[i], strlen(ka[i]), 100, &r) > 0);
    assert_int_equal(r.keep_alive, want[i]);
  }
  /* incomplete head, then incomplete body */
  assert_int_equal(grpc_http1_parse((const uint8_t *)get, 20, 100, &r), 0);
  const char *post = "POST /v3/kv/range HTTP/1.1\r\ncontent-length: 11\r\n\r\n{\"key\":\"x\"}";
  assert_int_equal(grpc_http1_parse((const uint8_t *)post, strlen(post) - 1, 100, &r), 0);
  assert_int_equal(grpc_http1_parse((const uint8_t *)post, strlen(post), 100, &r), (ssize_t)strlen(post));
  assert_int_equal(r.body_len, 11);
  assert_memory_equal(r.body, "{\"key\":\"x\"}", 11);
  assert_int_equal(grpc_http1_parse((const uint8_t *)post, strlen(post), 5, &r), -413);
  const char *bad[] = {"garbage\r\n\r\n",
                       "GET /x HTTP/2.0\r\n\r\n",
                       "GET /x HTTP/1.1\r\nno colon\r\n\r\n",
                       "get /x HTTP/1.1\r\n\r\n",
                       "GET /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                       "\x16\x03\x01\x02\x01\r\n\r\n"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
    assert_int_equal(grpc_http1_parse((const uint8_t *)bad[i], strlen(bad[i]), 100, &r), -400);
  /* an incomplete head that cannot become a request is refused at once */
  const char *early[] = {"\x00\x01\x02", "get ", "GET /x\x01", "ABCDEFGHIJKLMNOPQ"};
  const size_t early_len[] = {3, 4, 7, 17};
  for (size_t i = 0; i < sizeof(early) / sizeof(*early); i++)
    assert_int_equal(grpc_http1_parse((const uint8_t *)early[i], early_len[i], 100, &r), -400);
  assert_int_equal(grpc_http1_parse((const uint8_t *)"GE", 2, 100, &r), 0);
  assert_int_equal(grpc_http1_parse((const uint8_t *)"GET /x HTTP/1.1\r\nA: \xff\t", 22, 100, &r), 0);
  const char *te = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  assert_int_equal(grpc_http1_parse((const uint8_t *)te, strlen(te), 100, &r), -501);
  static uint8_t big[GRPC_HTTP1_MAX_HEAD + 10];
  memset(big, 'a', sizeof(big));
  memcpy(big, "GET /", 5);
  assert_int_equal(grpc_http1_parse(big, sizeof(big), 100, &r), -431);
  /* too many header lines */
  buf_t many = {0};
  buf_printf(&many, "GET / HTTP/1.1\r\n");
  for (int i = 0; i <= GRPC_HTTP1_MAX_HEADERS; i++) buf_printf(&many, "h%d: v\r\n", i);
  buf_printf(&many, "\r\n");
  assert_int_equal(grpc_http1_parse(many.data, many.len, 100, &r), -431);
  buf_free(&many);
  buf_t out = {0};
  grpc_http1_response(&out, 404, NULL, (const uint8_t *)"nope", 4, false);
  assert_true(out.len > 4 && !memcmp(out.data, "HTTP/1.1 404 Not Found\r\n", 24));
  assert_non_null(memmem(out.data, out.len, "Connection: close\r\n", 19));
  assert_memory_equal(out.data + out.len - 8, "\r\n\r\nnope", 8);
  out.len = 0;
  grpc_http1_response(&out, 200, NULL, NULL, 0, true);
  assert_null(memmem(out.data, out.len, "Connection", 10));
  out.len = 0;
  grpc_http1_chunked_head(&out, "application/json", true);
  grpc_http1_chunk(&out, (const uint8_t *)"0123456789abcdefX", 17);
  grpc_http1_chunked_end(&out);
  const char *tail = "Transfer-Encoding: chunked\r\n\r\n11\r\n0123456789abcdefX\r\n0\r\n\r\n";
  assert_true(out.len > strlen(tail));
  assert_memory_equal(out.data + out.len - strlen(tail), tail, strlen(tail));
  buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_percent_encode), cmocka_unit_test(test_percent_roundtrip),
      cmocka_unit_test(test_timeout_parse),  cmocka_unit_test(test_timeout_format),
      cmocka_unit_test(test_http1_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
