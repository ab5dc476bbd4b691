/* Unit tests for the auto-compaction schedules (server/compactor.c) on an injected clock:
 * etcd 3.4's periodic and revision compactors, and the growth warning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "server/compactor.h"

/* Periodic, 10 s: records every 1 s; the first compaction after 10 s picks the revision
 * seen at the start; then every 10 s the oldest of the last 11 records. */
static void test_periodic(void **state) {
  (void)state;
  compactor_core_t c;
  int64_t rev = 100; /* the store gains 10 revisions per second below */
  compactor_core_init(&c, COMPACTOR_PERIODIC, 10000, 0, 0, 0, rev);
  assert_int_equal(c.interval_ms, 1000);
  assert_int_equal(c.retentions, 11);
  int64_t got = 0, when = 0;
  for (int64_t t = 1000; t <= 10000; t += 1000) {
    rev += 10;
    got = compactor_core_tick(&c, t, rev);
    if (got) {
      when = t;
      break;
    }
  }
  assert_int_equal(when, 10000);
  assert_int_equal(got, 100);                               /* the revision 10 s ago */
  assert_int_equal(compactor_core_tick(&c, 10500, rev), 0); /* in flight: nothing */
  compactor_core_done(&c, true, 10000, rev);
  got = 0;
  for (int64_t t = 11000; t <= 20000; t += 1000) {
    rev += 10;
    got = compactor_core_tick(&c, t, rev);
    if (got) {
      when = t;
      break;
    }
  }
  assert_int_equal(when, 20000);
  assert_int_equal(got, 190); /* the oldest of the last 11 records (taken at 9 s) */
  /* a failure retries at the next tick, without waiting a whole period */
  compactor_core_done(&c, false, 20000, rev);
  assert_int_equal(compactor_core_tick(&c, 21000, rev + 10), 200);
  compactor_core_done(&c, true, 21000, rev + 10);
  assert_int_equal(compactor_core_tick(&c, 22000, rev + 20), 0);
  compactor_core_free(&c);
}

/* Periodic, 24 h: checks every 6 minutes, first compaction after 24 h, then hourly. */
static void test_periodic_long(void **state) {
  (void)state;
  compactor_core_t c;
  const int64_t H = 3600000, itv = 360000;
  compactor_core_init(&c, COMPACTOR_PERIODIC, 24 * H, 0, 0, 0, 1);
  assert_int_equal(c.interval_ms, itv);
  assert_int_equal(c.retentions, 241);
  int64_t first = 0, second = 0, rev = 1;
  for (int64_t t = itv; t <= 26 * H && !second; t += itv) {
    rev++;
    int64_t r = compactor_core_tick(&c, t, rev);
    if (!r) continue;
    if (!first) {
      first = t;
      assert_int_equal(r, 1);
    } else {
      second = t;
    }
    compactor_core_done(&c, true, t, rev);
  }
  assert_int_equal(first, 24 * H);
  assert_int_equal(second, 25 * H);
  compactor_core_free(&c);
}

/* Revision mode: current - N, skipped when <= 0 or unchanged; the knob sets the interval. */
static void test_revision(void **state) {
  (void)state;
  compactor_core_t c;
  compactor_core_init(&c, COMPACTOR_REVISION, 0, 10, 0, 0, 1);
  assert_int_equal(c.interval_ms, 5 * 60 * 1000);
  compactor_core_free(&c);
  compactor_core_init(&c, COMPACTOR_REVISION, 0, 10, 200, 0, 1);
  assert_int_equal(c.interval_ms, 200);
  assert_int_equal(compactor_core_tick(&c, 200, 5), 0);
  assert_int_equal(compactor_core_tick(&c, 400, 10), 0);
  assert_int_equal(compactor_core_tick(&c, 600, 25), 15);
  compactor_core_done(&c, true, 600, 25);
  assert_int_equal(compactor_core_tick(&c, 800, 25), 0); /* same as last time */
  assert_int_equal(compactor_core_tick(&c, 1000, 31), 21);
  compactor_core_done(&c, false, 1000, 31);
  assert_int_equal(compactor_core_tick(&c, 1200, 31), 21); /* retried */
  compactor_core_done(&c, true, 1200, 31);
  compactor_core_free(&c);
}

/* The growth warning: above 10k revisions/min, at most once per 10 minutes. */
static void test_growth(void **state) {
  (void)state;
  compactor_growth_t g;
  compactor_growth_init(&g);
  int64_t rate;
  assert_false(compactor_growth_check(&g, 0, 1, NULL));
  assert_false(compactor_growth_check(&g, 60000, 5001, &rate));
  assert_int_equal(rate, 5000);
  assert_true(compactor_growth_check(&g, 120000, 25001, &rate));
  assert_int_equal(rate, 20000);
  assert_false(compactor_growth_check(&g, 180000, 45001, NULL)); /* too soon */
  assert_true(compactor_growth_check(&g, 120000 + 600000, 2000001, NULL));
}

/* CETCD_TEST_CLOCK_SCALE (tests only): parsing, the scaled clock and timer period, and a
 * 1 h periodic compactor driven in real time at scale 60 compacting after 1 real minute. */
static void test_clock_scale(void **state) {
  (void)state;
  assert_int_equal(compactor_parse_clock_scale(NULL), 1);
  assert_int_equal(compactor_parse_clock_scale(""), 1);
  assert_int_equal(compactor_parse_clock_scale("60"), 60);
  assert_int_equal(compactor_parse_clock_scale("1"), 1);
  assert_int_equal(compactor_parse_clock_scale("0"), 1);
  assert_int_equal(compactor_parse_clock_scale("-5"), 1);
  assert_int_equal(compactor_parse_clock_scale("60x"), 1);
  assert_int_equal(compactor_parse_clock_scale("99999999999"), 1); /* above the maximum */
  assert_int_equal(compactor_scaled_now(1000, 1000, 60), 1000);
  assert_int_equal(compactor_scaled_now(1000, 2000, 60), 61000);
  assert_int_equal(compactor_scaled_now(1000, 2000, 1), 2000);
  assert_int_equal(compactor_real_interval(360000, 60), 6000);
  assert_int_equal(compactor_real_interval(360000, 1), 360000);
  assert_int_equal(compactor_real_interval(10, 60), 1); /* never a 0 ms (one-shot) timer */

  const int64_t scale = 60, base = 5000, H = 3600000;
  compactor_core_t c;
  int64_t rev = 1;
  compactor_core_init(&c, COMPACTOR_PERIODIC, H, 0, 0, compactor_scaled_now(base, base, scale), rev);
  const int64_t period = compactor_real_interval(c.interval_ms, scale);
  assert_int_equal(period, 6000); /* 6 compactor minutes = 6 real seconds */
  int64_t first = 0, second = 0, got1 = 0;
  for (int64_t real = base + period; real <= base + 130000 && !second; real += period) {
    rev += 1200; /* 200 revisions per real second */
    int64_t now = compactor_scaled_now(base, real, scale);
    int64_t r = compactor_core_tick(&c, now, rev);
    if (!r) continue;
    if (!first) {
      first = real - base;
      got1 = r;
    } else {
      second = real - base;
    }
    compactor_core_done(&c, true, now, rev);
  }
  assert_int_equal(first, 60000); /* the 1 h retention elapsed in one real minute */
  assert_int_equal(got1, 1);      /* compacted to the revision of an hour (compactor time) ago */
  assert_int_equal(second, 120000);
  compactor_core_free(&c);
}

/* Go's Duration.String for the log lines. */
static void test_duration(void **state) {
  (void)state;
  char b[32];
  compactor_format_duration(3600000, b, sizeof(b));
  assert_string_equal(b, "1h0m0s");
  compactor_format_duration(1500, b, sizeof(b));
  assert_string_equal(b, "1.5s");
  compactor_format_duration(300, b, sizeof(b));
  assert_string_equal(b, "300ms");
  compactor_format_duration(90061000, b, sizeof(b));
  assert_string_equal(b, "25h1m1s");
  compactor_format_duration(0, b, sizeof(b));
  assert_string_equal(b, "0s");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_periodic), cmocka_unit_test(test_periodic_long),
      cmocka_unit_test(test_revision), cmocka_unit_test(test_growth),
      cmocka_unit_test(test_duration), cmocka_unit_test(test_clock_scale),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
