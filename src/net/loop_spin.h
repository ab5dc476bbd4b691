/* Adaptive busy-polling of a libuv loop.
 *
 * When a client sends its next request a few tens of microseconds after our answer, a
 * loop that went to sleep in epoll_wait pays for being woken up again: on a virtual
 * machine whose idle CPUs halt, that wake-up costs 20-30 µs, a large share of a
 * 0.2 ms write. A spinner keeps the loop polling (epoll_wait with a zero timeout) for a
 * short window after the last activity instead, and learns the window from the gaps
 * it sees: a request that arrives within the longest window makes it grow, one that
 * arrives later makes it shrink, down to no spinning at all. An idle server therefore
 * stops spinning within one window, and a server under load never waits anyway.
 *
 * The owner says when spinning may happen (may_spin: e.g. not while another thread is
 * about to deliver the work, which spinning would slow down on a shared core). */
#ifndef CETCD_NET_LOOP_SPIN_H
#define CETCD_NET_LOOP_SPIN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Default longest window; CETCD_SPIN_MAX_US overrides it (0 turns spinning off). */
#define LOOP_SPIN_DEFAULT_MAX_NS (200u * 1000)
/* The first window after spinning was off. */
#define LOOP_SPIN_START_NS (25u * 1000)

typedef struct loop_spin {
  uv_idle_t idle;           /* active while spinning: makes the loop poll without blocking */
  uv_check_t check;         /* after every poll: notices arrivals and ends the window */
  const uint64_t *arrivals; /* the owner's count of reads; a change means work arrived */
  uint64_t seen;            /* *arrivals at the last check */
  uint64_t quiet_since_ns;  /* end of the last activity (uv_hrtime) */
  uint64_t window_ns;       /* how long to keep polling after activity; 0: not at all */
  uint64_t max_ns;          /* longest window; 0 disables spinning */
  bool (*may_spin)(void *ctx);
  void *ctx;
} loop_spin_t;

/* The next window after a request arrived gap_ns after the last activity: unchanged when
 * the window covered it, doubled (from LOOP_SPIN_START_NS, capped at max_ns) when the gap
 * was longer than the window but within max_ns, halved (to 0 below the start) when the
 * gap was longer than max_ns. */
uint64_t loop_spin_adapt(uint64_t window_ns, uint64_t gap_ns, uint64_t max_ns);

/* Starts watching `*arrivals` on loop; max_ns is the longest window (0: never spin). */
void loop_spin_init(loop_spin_t *s, uv_loop_t *loop, const uint64_t *arrivals, uint64_t max_ns,
                    bool (*may_spin)(void *ctx), void *ctx);

/* The owner finished a piece of work after which it wants to spin (e.g. answered a write
 * it made durable itself): the window counts from now, and spinning starts if allowed.
 * Only this starts spinning; arrivals alone only teach the window, so that a server kept
 * busy by many clients, whose wake-ups each bring several requests, does not spin. */
void loop_spin_touch(loop_spin_t *s);

/* Closes the handles (the loop must run once more to finish closing them). */
void loop_spin_close(loop_spin_t *s);

/* Longest window from CETCD_SPIN_MAX_US (microseconds), else the default (also, with a
 * warning naming the fix, when the value is not a number from 0 to 10000). */
uint64_t loop_spin_max_from_env(void);

#endif
