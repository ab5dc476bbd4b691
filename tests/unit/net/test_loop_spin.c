/* Unit tests for net/loop_spin: how the window adapts, and that a real libuv loop spins
 * after a touch, stops once the window has passed, and never spins when it may not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "net/loop_spin.h"

#define US 1000u
#define WMAX (200u * US)

/* The window grows by doubling from the start value while requests arrive within the
 * longest window, caps there, stays when it covered the gap, and halves down to 0 when
 * requests come later than the longest window. */
static void test_adapt(void **state) {
  (void)state;
  assert_int_equal(loop_spin_adapt(0, 30 * US, WMAX), LOOP_SPIN_START_NS);
  assert_int_equal(loop_spin_adapt(LOOP_SPIN_START_NS, 30 * US, WMAX), 2 * LOOP_SPIN_START_NS);
  assert_int_equal(loop_spin_adapt(100 * US, 150 * US, WMAX), WMAX);
  assert_int_equal(loop_spin_adapt(WMAX, 150 * US, WMAX), WMAX);        /* covered: unchanged */
  assert_int_equal(loop_spin_adapt(100 * US, 90 * US, WMAX), 100 * US); /* covered */
  assert_int_equal(loop_spin_adapt(WMAX, 5000 * US, WMAX), WMAX / 2);   /* too late: halves */
  assert_int_equal(loop_spin_adapt(40 * US, 5000 * US, WMAX), 0);       /* below the start: off */
  assert_int_equal(loop_spin_adapt(0, 5000 * US, WMAX), 0);
  assert_int_equal(loop_spin_adapt(WMAX, 30 * US, 0), 0); /* disabled */
  /* a steady 60 µs gap settles on a window that covers it within three requests */
  uint64_t w = 0;
  for (int i = 0; i < 3; i++) w = loop_spin_adapt(w, 60 * US, WMAX);
  assert_true(w >= 60 * US && w <= WMAX);
  assert_int_equal(loop_spin_adapt(w, 60 * US, WMAX), w);
}

static void timer_noop(uv_timer_t *t) { (void)t; }

/* A loop with a spinner on it, kept alive by a far-off timer as a server's listeners keep
 * its loop alive (the spinner's check handle alone does not: uv_run would return without
 * running callbacks). */
typedef struct {
  uv_loop_t loop;
  uv_timer_t alive;
  uint64_t arrivals;
  loop_spin_t s;
} spin_fixture_t;

/* Starts f's loop and a spinner with the longest window max_ns and the owner's condition. */
static void fixture_open(spin_fixture_t *f, uint64_t max_ns, bool (*may_spin)(void *ctx)) {
  uv_loop_init(&f->loop);
  uv_timer_init(&f->loop, &f->alive);
  uv_timer_start(&f->alive, timer_noop, 3600 * 1000, 0);
  f->arrivals = 0;
  loop_spin_init(&f->s, &f->loop, &f->arrivals, max_ns, may_spin, NULL);
}

/* Closes the spinner and the loop; the loop must close cleanly. */
static void fixture_close(spin_fixture_t *f) {
  loop_spin_close(&f->s);
  uv_close((uv_handle_t *)&f->alive, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

static bool allow_flag;
static bool allow(void *ctx) {
  (void)ctx;
  return allow_flag;
}

/* Runs non-blocking loop iterations until the spinner's idle handle stops, at most
 * limit_ms; returns the time it took in µs, or -1 if it was still spinning. */
static long spin_duration_us(uv_loop_t *loop, loop_spin_t *s, long limit_ms) {
  uint64_t t0 = uv_hrtime();
  while (uv_is_active((uv_handle_t *)&s->idle)) {
    if (uv_hrtime() - t0 > (uint64_t)limit_ms * 1000000) return -1;
    uv_run(loop, UV_RUN_NOWAIT);
  }
  return (long)((uv_hrtime() - t0) / 1000);
}

/* Arrivals teach the window; a touch then spins for about that window and stops by
 * itself; without permission or with spinning disabled a touch does nothing. */
static void test_loop(void **state) {
  (void)state;
  spin_fixture_t f;
  allow_flag = true;
  fixture_open(&f, WMAX, allow);
  loop_spin_t *s = &f.s;

  /* nothing learnt yet: a touch does not spin */
  loop_spin_touch(s);
  assert_false(uv_is_active((uv_handle_t *)&s->idle));

  /* requests arriving 150 µs after the last activity grow the window to the cap */
  for (int i = 0; i < 6; i++) {
    loop_spin_touch(s);
    s->quiet_since_ns = uv_hrtime() - 150 * US;
    f.arrivals++;
    uv_run(&f.loop, UV_RUN_NOWAIT); /* the check callback sees the arrival */
  }
  assert_int_equal(s->window_ns, WMAX);

  /* a touch spins for about the window, then the loop is free to block again */
  loop_spin_touch(s);
  assert_true(uv_is_active((uv_handle_t *)&s->idle));
  long us = spin_duration_us(&f.loop, s, 1000);
  assert_true(us >= 150); /* the window is 200 µs; the first check may come a little late */
  assert_true(us < 100000);

  /* the owner forbids spinning: a touch does nothing, and a running spin stops */
  allow_flag = false;
  loop_spin_touch(s);
  assert_false(uv_is_active((uv_handle_t *)&s->idle));
  allow_flag = true;
  s->window_ns = 10000000000ull; /* a 10 s window: only the veto can end this spin soon */
  loop_spin_touch(s);
  assert_true(uv_is_active((uv_handle_t *)&s->idle));
  allow_flag = false;
  uv_run(&f.loop, UV_RUN_NOWAIT); /* the next check sees the veto */
  assert_false(uv_is_active((uv_handle_t *)&s->idle));
  s->window_ns = WMAX;
  allow_flag = true;

  /* requests that come much later than the longest window turn spinning off */
  for (int i = 0; i < 6; i++) {
    s->quiet_since_ns = uv_hrtime() - 10 * WMAX; /* as if the last activity was 2 ms ago */
    f.arrivals++;
    uv_run(&f.loop, UV_RUN_NOWAIT);
  }
  assert_int_equal(s->window_ns, 0);
  loop_spin_touch(s);
  assert_false(uv_is_active((uv_handle_t *)&s->idle));

  fixture_close(&f);
}

/* CETCD_SPIN_MAX_US sets the longest window; 0 turns spinning off; a bad value keeps the
 * default. A spinner made with 0 never spins. */
static void test_env_and_disabled(void **state) {
  (void)state;
  unsetenv("CETCD_SPIN_MAX_US");
  assert_int_equal(loop_spin_max_from_env(), LOOP_SPIN_DEFAULT_MAX_NS);
  setenv("CETCD_SPIN_MAX_US", "0", 1);
  assert_int_equal(loop_spin_max_from_env(), 0);
  setenv("CETCD_SPIN_MAX_US", "50", 1);
  assert_int_equal(loop_spin_max_from_env(), 50 * US);
  setenv("CETCD_SPIN_MAX_US", "abc", 1);
  assert_int_equal(loop_spin_max_from_env(), LOOP_SPIN_DEFAULT_MAX_NS);
  unsetenv("CETCD_SPIN_MAX_US");

  spin_fixture_t f;
  fixture_open(&f, 0, NULL);
  for (int i = 0; i < 4; i++) {
    loop_spin_touch(&f.s);
    f.arrivals++;
    uv_run(&f.loop, UV_RUN_NOWAIT);
  }
  loop_spin_touch(&f.s);
  assert_false(uv_is_active((uv_handle_t *)&f.s.idle));
  fixture_close(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_adapt),
      cmocka_unit_test(test_loop),
      cmocka_unit_test(test_env_and_disabled),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
