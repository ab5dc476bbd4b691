/* Adaptive busy-polling of a libuv loop (see loop_spin.h). */
#include "net/loop_spin.h"

#include <stdlib.h>

#include "base/log.h"

uint64_t loop_spin_adapt(uint64_t window_ns, uint64_t gap_ns, uint64_t max_ns) {
  if (!max_ns) return 0;
  if (gap_ns <= window_ns) return window_ns;
  if (gap_ns <= max_ns) {
    uint64_t w = window_ns < LOOP_SPIN_START_NS ? LOOP_SPIN_START_NS : window_ns * 2;
    return w > max_ns ? max_ns : w;
  }
  uint64_t w = window_ns / 2;
  return w < LOOP_SPIN_START_NS ? 0 : w;
}

/* Idle callback: nothing to do; being active is what keeps the poll from blocking. The
 * check callback decides when to stop. */
static void on_idle(uv_idle_t *h) { (void)h; }

/* Whether the owner allows spinning now. */
static bool allowed(loop_spin_t *s) { return !s->may_spin || s->may_spin(s->ctx); }

/* Starts polling without blocking, if the window and the owner allow it. */
static void start_spinning(loop_spin_t *s) {
  if (s->window_ns && !uv_is_active((uv_handle_t *)&s->idle) && allowed(s)) uv_idle_start(&s->idle, on_idle);
}

/* After every poll: a changed arrival count adapts the window (spinning itself only starts
 * at loop_spin_touch); otherwise spinning ends once the window since the last activity
 * has passed. */
static void on_check(uv_check_t *h) {
  loop_spin_t *s = h->data;
  uint64_t now = uv_hrtime();
  if (*s->arrivals != s->seen) {
    s->seen = *s->arrivals;
    s->window_ns = loop_spin_adapt(s->window_ns, now - s->quiet_since_ns, s->max_ns);
    s->quiet_since_ns = now;
    return;
  }
  if (uv_is_active((uv_handle_t *)&s->idle) && (now - s->quiet_since_ns >= s->window_ns || !allowed(s)))
    uv_idle_stop(&s->idle);
}

void loop_spin_init(loop_spin_t *s, uv_loop_t *loop, const uint64_t *arrivals, uint64_t max_ns,
                    bool (*may_spin)(void *ctx), void *ctx) {
  *s = (loop_spin_t){.arrivals = arrivals,
                     .seen = *arrivals,
                     .max_ns = max_ns,
                     .may_spin = may_spin,
                     .ctx = ctx,
                     .quiet_since_ns = uv_hrtime()};
  uv_idle_init(loop, &s->idle);
  uv_check_init(loop, &s->check);
  s->idle.data = s->check.data = s;
  if (max_ns) uv_check_start(&s->check, on_check);
  uv_unref((uv_handle_t *)&s->check); /* watching alone does not keep the loop alive */
}

void loop_spin_touch(loop_spin_t *s) {
  s->quiet_since_ns = uv_hrtime();
  start_spinning(s);
}

void loop_spin_close(loop_spin_t *s) {
  uv_close((uv_handle_t *)&s->idle, NULL);
  uv_close((uv_handle_t *)&s->check, NULL);
}

uint64_t loop_spin_max_from_env(void) {
  const char *e = getenv("CETCD_SPIN_MAX_US");
  if (!e || !*e) return LOOP_SPIN_DEFAULT_MAX_NS;
  char *end;
  unsigned long long us = strtoull(e, &end, 10);
  if (*end || us > 10000) { /* at most 10 ms */
    LOGW(
        "msg=\"ignoring CETCD_SPIN_MAX_US\" value=\"%s\" using-us=%u fix=\"set microseconds from 0 (off) "
        "to 10000\"",
        e, LOOP_SPIN_DEFAULT_MAX_NS / 1000);
    return LOOP_SPIN_DEFAULT_MAX_NS;
  }
  return (uint64_t)us * 1000;
}
