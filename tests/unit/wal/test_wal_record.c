/* Record encoding, decoding and CRC32C. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
// clang-format off
#include <cmocka.h>
// clang-format on

#include "wal/wal_int.h"

static void test_crc32c_vectors(void **state) {
  (void)state;
  assert_int_equal(wal_crc32c(0, "123456789", 9), 0xE3069283u);
  assert_int_equal(wal_crc32c(0, "", 0), 0);
  uint8_t zeros[32] = {0};
  assert_int_equal(wal_crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
  /* Chaining equals one pass, at every split point and odd alignment. */
  uint8_t buf[301];
  for (size_t i = 0; i < sizeof(buf); i++) buf[i] = (uint8_t)(i * 7 + 3);
  uint32_t whole = wal_crc32c(0, buf + 1, 300);
  for (size_t k = 0; k <= 300; k += 13)
    assert_int_equal(wal_crc32c(wal_crc32c(0, buf + 1, k), buf + 1 + k, 300 - k), whole);
  /* The table-driven path agrees with the hardware one. */
  assert_int_equal(wal_crc32c_sw(0, "123456789", 9), 0xE3069283u);
  for (size_t k = 0; k <= 300; k += 7) {
    assert_int_equal(wal_crc32c_sw(0, buf + (k & 7), 300 - k), wal_crc32c(0, buf + (k & 7), 300 - k));
    assert_int_equal(wal_crc32c_sw(wal_crc32c_sw(0, buf, k), buf + k, 300 - k), wal_crc32c(0, buf, 300));
  }
}

static void test_roundtrip(void **state) {
  (void)state;
  uint8_t out[128], fixed[16];
  wal_put_u64(fixed, 42);
  wal_put_u64(fixed + 8, 7);
  const char *data = "hello";
  size_t n = wal_record_encode(out, WAL_REC_ENTRY, fixed, 16, data, 5);
  assert_int_equal(n, wal_record_size(21));
  assert_int_equal(n % 8, 0);
  assert_int_equal(n, 16 + 24);
  wal_record_t r;
  assert_int_equal(wal_record_decode(out, n, &r), WAL_DEC_OK);
  assert_int_equal(r.type, WAL_REC_ENTRY);
  assert_int_equal(r.len, 21);
  assert_int_equal(r.size, n);
  assert_int_equal(wal_get_u64(r.payload), 42);
  assert_int_equal(wal_get_u64(r.payload + 8), 7);
  assert_memory_equal(r.payload + 16, "hello", 5);
  /* The padding is zero. */
  for (size_t i = 16 + 21; i < n; i++) assert_int_equal(out[i], 0);
  /* wal_record_prefix + copy gives the same bytes. */
  uint8_t out2[128] = {0};
  wal_record_prefix(out2, WAL_REC_ENTRY, fixed, 16, data, 5);
  memcpy(out2 + 32, data, 5);
  assert_memory_equal(out, out2, n);
}

static void test_decode_errors(void **state) {
  (void)state;
  uint8_t out[64], fixed[24] = {1, 2, 3};
  size_t n = wal_record_encode(out, WAL_REC_HARDSTATE, fixed, 24, NULL, 0);
  wal_record_t r;
  assert_int_equal(wal_record_decode(out, n, &r), WAL_DEC_OK);
  assert_int_equal(wal_record_decode(out, n - 1, &r), WAL_DEC_SHORT);
  assert_int_equal(wal_record_decode(out, 8, &r), WAL_DEC_SHORT);
  uint8_t bad[64];
  memcpy(bad, out, n);
  bad[20] ^= 1; /* payload */
  assert_int_equal(wal_record_decode(bad, n, &r), WAL_DEC_BADCRC);
  memcpy(bad, out, n);
  bad[0] ^= 1; /* the crc itself */
  assert_int_equal(wal_record_decode(bad, n, &r), WAL_DEC_BADCRC);
  memcpy(bad, out, n);
  bad[9] = 0; /* magic */
  assert_int_equal(wal_record_decode(bad, n, &r), WAL_DEC_BADHDR);
  memcpy(bad, out, n);
  bad[8] = 99; /* type */
  assert_int_equal(wal_record_decode(bad, n, &r), WAL_DEC_BADHDR);
  memcpy(bad, out, n);
  bad[12] = 1; /* reserved */
  assert_int_equal(wal_record_decode(bad, n, &r), WAL_DEC_BADHDR);
  memcpy(bad, out, n);
  bad[4] = 16; /* wrong length for a hard state */
  assert_int_equal(wal_record_decode(bad, n, &r), WAL_DEC_BADHDR);
  uint8_t zeros[64] = {0};
  assert_int_equal(wal_record_decode(zeros, sizeof(zeros), &r), WAL_DEC_BADHDR);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32c_vectors),
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_decode_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
