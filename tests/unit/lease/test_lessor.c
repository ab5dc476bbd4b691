/* Lessor core on an injected clock: grant, revoke, renew, lookups, TTL limits, expiry order,
 * in-flight revokes, the key set and the id generator. No store. */
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

#include "cetcd/errors.h"
#include "lease/lease.h"
#include "lease/lease_int.h"

static uint64_t now_ms;

/* The test clock. */
static uint64_t fake_clock(void *ctx) {
  (void)ctx;
  return now_ms;
}

/* A primary lessor with min TTL 2 s on the fake clock. */
static lessor_t *new_lessor(void) {
  now_ms = 1000000;
  lease_opts_t o = {.min_ttl = 2, .clock = fake_clock, .retry_ms = 3000};
  lessor_t *le = lease_new(&o);
  lease_promote(le, 0);
  return le;
}

static void test_min_ttl(void **state) {
  (void)state;
  assert_int_equal(lease_min_ttl(1000, 100), 2); /* (3*10)/2 * 100ms = 1.5 s → 2 */
  assert_int_equal(lease_min_ttl(5000, 100), 8); /* 75 ticks * 100ms = 7.5 s → 8 */
  assert_int_equal(lease_min_ttl(1000, 300), 2); /* 3 ticks → 4 * 300 = 1.2 s → 2 */
  assert_int_equal(lease_min_ttl(2000, 1000), 3);
}

static void test_grant_limits(void **state) {
  (void)state;
  lessor_t *le = new_lessor();
  int64_t ttl = 0;
  assert_int_equal(lease_grant(le, 0, 10, &ttl), CETCD_ELEASENOTFOUND);
  assert_int_equal(lease_grant(le, 1, LEASE_MAX_TTL + 1, &ttl), CETCD_ETTLTOOLARGE);
  assert_int_equal(lease_grant(le, 1, LEASE_MAX_TTL, &ttl), 0);
  assert_int_equal(ttl, LEASE_MAX_TTL);
  assert_int_equal(lease_grant(le, 1, 10, &ttl), CETCD_ELEASEEXISTS);
  assert_int_equal(lease_grant(le, 2, 1, &ttl), 0);
  assert_int_equal(ttl, 2); /* raised to the minimum */
  assert_int_equal(lease_grant(le, 3, -5, &ttl), 0);
  assert_int_equal(ttl, 2);
  assert_int_equal(lease_count(le), 3);
  lease_info_t info;
  assert_int_equal(lease_lookup(le, 1, &info), 0);
  assert_int_equal(info.granted_ttl, LEASE_MAX_TTL);
  assert_int_equal(info.ttl_remaining, LEASE_MAX_TTL);
  lease_free(le);
}

static void test_ttl_and_renew(void **state) {
  (void)state;
  lessor_t *le = new_lessor();
  assert_int_equal(lease_grant(le, 7, 10, NULL), 0);
  lease_info_t info;
  now_ms += 2500;
  assert_int_equal(lease_lookup(le, 7, &info), 0);
  assert_int_equal(info.ttl_remaining, 7); /* 7.5 s truncated */
  assert_int_equal(info.granted_ttl, 10);
  int64_t ttl = 0;
  assert_int_equal(lease_renew(le, 7, &ttl), 0);
  assert_int_equal(ttl, 10);
  assert_int_equal(lease_lookup(le, 7, &info), 0);
  assert_int_equal(info.ttl_remaining, 10);
  now_ms += 9999;
  assert_int_equal(lease_lookup(le, 7, &info), 0);
  assert_int_equal(info.ttl_remaining, 0);
  int64_t ids[4];
  assert_int_equal(lease_find_expired(le, ids, 4), 0);
  now_ms += 1;
  /* expired: renew reports not found, lookup still answers until the revoke applies */
  assert_int_equal(lease_renew(le, 7, &ttl), CETCD_ELEASENOTFOUND);
  assert_int_equal(lease_renew(le, 99, &ttl), CETCD_ELEASENOTFOUND);
  assert_int_equal(lease_lookup(le, 99, &info), CETCD_ELEASENOTFOUND);
  assert_int_equal(lease_find_expired(le, ids, 4), 1);
  assert_int_equal(ids[0], 7);
  assert_int_equal(lease_revoke(le, 7), 0);
  assert_int_equal(lease_revoke(le, 7), CETCD_ELEASENOTFOUND);
  assert_int_equal(lease_lookup(le, 7, &info), CETCD_ELEASENOTFOUND);
  assert_int_equal(lease_count(le), 0);
  lease_free(le);
}

static void test_not_primary(void **state) {
  (void)state;
  now_ms = 5000;
  lease_opts_t o = {.min_ttl = 2, .clock = fake_clock};
  lessor_t *le = lease_new(&o);
  assert_int_equal(lease_grant(le, 5, 3, NULL), 0);
  int64_t ttl, ids[2];
  assert_int_equal(lease_renew(le, 5, &ttl), CETCD_ENOLEADER);
  now_ms += 100000;
  assert_int_equal(lease_find_expired(le, ids, 2), 0); /* never expires before promote */
  lease_promote(le, 1000);
  lease_info_t info;
  assert_int_equal(lease_lookup(le, 5, &info), 0);
  assert_int_equal(info.ttl_remaining, 4); /* TTL + election timeout */
  now_ms += 4000;
  assert_int_equal(lease_find_expired(le, ids, 2), 1);
  lease_demote(le);
  assert_int_equal(lease_find_expired(le, ids, 2), 0);
  lease_free(le);
}

/* A promotion with a backlog of leases that would all expire in the same second spreads
 * their expiries: no second sees more than 3/4 of the revoke rate, and no lease expires
 * before its TTL plus the extension (etcd's Promote). */
static void test_promote_spreads_pileup(void **state) {
  (void)state;
  now_ms = 10000;
  lease_opts_t o = {.clock = fake_clock};
  lessor_t *le = lease_new(&o);
  enum { N = 3000 };
  for (int i = 1; i <= N; i++) assert_int_equal(lease_grant(le, i, 5, NULL), 0);
  lease_promote(le, 1000);
  int per_second[64] = {0};
  int64_t ids[N];
  uint64_t t0 = now_ms;
  size_t total = 0;
  for (int sec = 0; sec < 64; sec++) {
    now_ms = t0 + (uint64_t)(sec + 1) * 1000;
    size_t n = lease_find_expired(le, ids, N);
    per_second[sec] = (int)n;
    if (n) assert_true(now_ms - t0 >= 6000); /* TTL 5 s + extension 1 s at least */
    total += n;
  }
  assert_int_equal(total, N);
  for (int sec = 0; sec < 64; sec++) assert_true(per_second[sec] <= (3 * LEASE_REVOKE_RATE) / 4 + 1);
  lease_free(le);
}

/* Expired leases come out in expiry order, at most `max` at a time, each once while its
 * revoke is in flight, and again after the retry period if the revoke failed. */
static void test_expiry_order(void **state) {
  (void)state;
  lessor_t *le = new_lessor();
  enum { N = 2000 };
  /* TTL i%50+2 seconds, granted in a scrambled order */
  for (int k = 0; k < N; k++) {
    int i = (k * 7919) % N;
    assert_int_equal(lease_grant(le, i + 1, i % 50 + 2, NULL), 0);
  }
  now_ms += 1000000;
  int64_t ids[N];
  size_t got = 0;
  int64_t prev_exp = -1;
  while (got < N) {
    size_t n = lease_find_expired(le, ids + got, 300);
    assert_true(n <= 300);
    assert_true(n > 0);
    for (size_t j = got; j < got + n; j++) {
      int64_t e = (ids[j] - 1) % 50 + 2;
      assert_true(e >= prev_exp);
      prev_exp = e;
    }
    got += n;
  }
  assert_int_equal(lease_find_expired(le, ids, 10), 0); /* all in flight */
  lease_revoke_failed(le, 1);
  assert_int_equal(lease_find_expired(le, ids, 10), 0); /* not before the retry time */
  now_ms += 3000;
  size_t n = lease_find_expired(le, ids, N);
  assert_int_equal(n, 1);
  assert_int_equal(ids[0], 1);
  for (int i = 1; i <= N; i++) assert_int_equal(lease_revoke(le, i), 0);
  assert_int_equal(lease_count(le), 0);
  assert_int_equal(lease_next_expiry_in(le), UINT64_MAX);
  lease_free(le);
}

static void test_renew_reorders(void **state) {
  (void)state;
  lessor_t *le = new_lessor();
  for (int i = 1; i <= 10; i++) assert_int_equal(lease_grant(le, i, 10, NULL), 0);
  now_ms += 5000;
  for (int i = 1; i <= 10; i += 2) assert_int_equal(lease_renew(le, i, NULL), 0);
  assert_int_equal(lease_next_expiry_in(le), 5000);
  now_ms += 5000;
  int64_t ids[10];
  size_t n = lease_find_expired(le, ids, 10);
  assert_int_equal(n, 5);
  for (size_t j = 0; j < n; j++) assert_int_equal(ids[j] % 2, 0);
  now_ms += 5000;
  n = lease_find_expired(le, ids, 10);
  assert_int_equal(n, 5);
  for (size_t j = 0; j < n; j++) assert_int_equal(ids[j] % 2, 1);
  lease_free(le);
}

static void test_keys(void **state) {
  (void)state;
  lessor_t *le = new_lessor();
  assert_int_equal(lease_grant(le, 1, 10, NULL), 0);
  char k[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(k, sizeof(k), "key%04d", 999 - i);
    lease_attach(le, 1, (const uint8_t *)k, strlen(k));
  }
  lease_attach(le, 1, (const uint8_t *)"key0000", 7); /* twice: one entry */
  lease_info_t info;
  assert_int_equal(lease_lookup(le, 1, &info), 0);
  assert_int_equal(info.n_keys, 1000);
  for (int i = 0; i < 1000; i += 2) {
    snprintf(k, sizeof(k), "key%04d", i);
    lease_detach(le, 1, (const uint8_t *)k, strlen(k));
  }
  lease_detach(le, 1, (const uint8_t *)"nope", 4);
  lease_detach(le, 42, (const uint8_t *)"key0001", 7);
  arena_t a;
  arena_init(&a);
  ProtobufCBinaryData *keys;
  size_t n;
  assert_int_equal(lease_keys(le, 1, &a, &keys, &n), 0);
  assert_int_equal(n, 500);
  for (size_t i = 0; i < n; i++) {
    snprintf(k, sizeof(k), "key%04zu", 2 * i + 1);
    assert_int_equal(keys[i].len, strlen(k));
    assert_memory_equal(keys[i].data, k, keys[i].len);
  }
  assert_int_equal(lease_keys(le, 2, &a, &keys, &n), CETCD_ELEASENOTFOUND);
  arena_destroy(&a);
  lease_free(le);
}

/* Leases inserted and removed in bulk keep the map consistent (backward-shift deletes). */
static void test_map_churn(void **state) {
  (void)state;
  lessor_t *le = new_lessor();
  for (int round = 0; round < 5; round++) {
    for (int i = 1; i <= 3000; i++) assert_int_equal(lease_grant(le, i * 1000003LL, 5, NULL), 0);
    for (int i = 1; i <= 3000; i += 3) assert_int_equal(lease_revoke(le, i * 1000003LL), 0);
    for (int i = 1; i <= 3000; i++) assert_int_equal(lease_exists(le, i * 1000003LL), (i - 1) % 3 != 0);
    for (int i = 1; i <= 3000; i++)
      if ((i - 1) % 3) assert_int_equal(lease_revoke(le, i * 1000003LL), 0);
    assert_int_equal(lease_count(le), 0);
  }
  int64_t ids[4];
  assert_int_equal(lease_list(le, ids, 4), 0);
  lease_free(le);
}

static void test_idgen(void **state) {
  (void)state;
  lease_idgen_t g;
  lease_idgen_init(&g, 0x8e9e05c52164694dULL, 1700000000123ULL);
  int64_t a = lease_idgen_next(&g), b = lease_idgen_next(&g);
  assert_true(a > 0);
  assert_int_equal(b, a + 1);
  assert_int_equal((uint64_t)a >> 48, 0x694d & 0x7fff);
  assert_int_equal(((uint64_t)a >> 8) & 0xffffffffffULL, 1700000000123ULL & 0xffffffffffULL);
  lease_idgen_init(&g, 0, 0);
  assert_int_equal(lease_idgen_next(&g), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_min_ttl),       cmocka_unit_test(test_grant_limits),
      cmocka_unit_test(test_ttl_and_renew), cmocka_unit_test(test_not_primary),
      cmocka_unit_test(test_expiry_order),  cmocka_unit_test(test_renew_reorders),
      cmocka_unit_test(test_keys),          cmocka_unit_test(test_map_churn),
      cmocka_unit_test(test_idgen),         cmocka_unit_test(test_promote_spreads_pileup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
