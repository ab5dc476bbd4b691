/* Auto-compaction (etcd 3.4's v3compactor): --auto-compaction-mode periodic|revision with
 * --auto-compaction-retention. Compactions are proposed through the log as
 * CompactionRequests; a compacted-revision error counts as success, as in etcd.
 *
 * Periodic (retention P): every P/10 (P capped at 1 h) the current revision is recorded,
 * keeping the last P/(P/10)+1 records; once P has passed since the start (later: min(P,1h)
 * since the last successful compaction) the oldest record is compacted to.
 * Revision (retention N): every 5 minutes, compact to current - N unless that is <= 0 or
 * the revision compacted last time.
 *
 * Testing knob: the environment variable CETCD_TEST_COMPACTOR_INTERVAL_MS replaces the
 * 5-minute check interval of revision mode (and the 1-minute growth check); tests only.
 *
 * Testing knob: CETCD_TEST_CLOCK_SCALE=N (a positive integer) makes the auto-compaction
 * scheduler's clock run N times faster than real time (N=60: one real second counts as
 * one compactor minute, so a 1 h retention elapses in 1 real minute). Only the compactor
 * reads it (not leases, raft or anything else); the timer fires every interval/N real ms
 * (at least 1 ms). CETCD_TEST_COMPACTOR_INTERVAL_MS, if also set, is in compactor time.
 * The growth watcher keeps real time. A warning is logged when it is set. Tests only:
 * never set it in production.
 *
 * With auto-compaction off, a warning is logged (at most once per 10 minutes) when the
 * history grows by more than 10,000 revisions per minute.
 *
 * The scheduling core (compactor_core_*, compactor_growth_check) is pure and clock-injected;
 * compactor_start wires it to libuv timers on the loop thread. */
#ifndef CETCD_SERVER_COMPACTOR_H
#define CETCD_SERVER_COMPACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct server server_t;

/* Revision mode's check interval (etcd's revInterval). */
#define COMPACTOR_REVISION_INTERVAL_MS (5 * 60 * 1000)
/* Growth warning: threshold (revisions per minute), check interval and minimum spacing. */
#define COMPACTOR_GROWTH_WARN_PER_MIN 10000
#define COMPACTOR_GROWTH_CHECK_MS (60 * 1000)
#define COMPACTOR_GROWTH_WARN_EVERY_MS (10 * 60 * 1000)

enum compactor_mode { COMPACTOR_PERIODIC = 0, COMPACTOR_REVISION = 1 };

/* The scheduler state. Fields are read-only outside compactor.c (tests may inspect). */
typedef struct compactor_core {
  int mode;
  int64_t period_ms;           /* periodic: retention window */
  int64_t retention;           /* revision: revisions kept */
  int64_t interval_ms;         /* how often compactor_core_tick should be called */
  int64_t compact_interval_ms; /* periodic: min(period, 1h) */
  int64_t base_interval_ms;    /* periodic: wait before the next compaction (period, then compact interval) */
  int64_t last_success_ms;     /* periodic: start, then time of the last successful compaction */
  int64_t *revs;               /* periodic: recorded revisions, oldest first */
  size_t nrevs, retentions;
  int64_t prev;     /* revision: last revision compacted to */
  int64_t proposed; /* revision of the compaction in flight, 0 if none */
} compactor_core_t;

/* Initializes core for mode with period_ms (periodic) or retention revisions (revision) at
 * time now_ms with the store at cur_rev. interval_override_ms > 0 replaces revision mode's
 * 5-minute interval. Free with compactor_core_free. */
void compactor_core_init(compactor_core_t *c, int mode, int64_t period_ms, int64_t retention,
                         int64_t interval_override_ms, int64_t now_ms, int64_t cur_rev);
/* One timer tick at now_ms with the store at cur_rev. Returns the revision to compact to
 * (> 0; the caller proposes it and reports with compactor_core_done) or 0. While a
 * compaction is in flight ticks do nothing. */
int64_t compactor_core_tick(compactor_core_t *c, int64_t now_ms, int64_t cur_rev);
/* Reports the outcome of the compaction returned by the last tick (ok: applied or already
 * compacted) at now_ms with the store at cur_rev. */
void compactor_core_done(compactor_core_t *c, bool ok, int64_t now_ms, int64_t cur_rev);
/* Frees what core holds. */
void compactor_core_free(compactor_core_t *c);

/* Growth watcher for when auto-compaction is off. */
typedef struct compactor_growth {
  int64_t last_rev, last_ms; /* previous sample; last_ms < 0 before the first */
  int64_t last_warn_ms;      /* < 0: never warned */
} compactor_growth_t;

/* Initializes the watcher. */
void compactor_growth_init(compactor_growth_t *g);
/* Samples the revision at now_ms. Returns true if a warning is due: the rate since the
 * previous sample exceeds COMPACTOR_GROWTH_WARN_PER_MIN and no warning was given in the
 * last COMPACTOR_GROWTH_WARN_EVERY_MS. *per_min (optional) gets the measured rate. */
bool compactor_growth_check(compactor_growth_t *g, int64_t now_ms, int64_t rev, int64_t *per_min);

/* CETCD_TEST_CLOCK_SCALE (tests only): parses the knob's value; 1 (real time) for NULL,
 * empty or invalid values (not a positive integer, or above COMPACTOR_MAX_CLOCK_SCALE). */
#define COMPACTOR_MAX_CLOCK_SCALE 1000000
int64_t compactor_parse_clock_scale(const char *s);
/* Compactor time at real time now_ms for a clock started at base_ms running scale times
 * faster: base_ms + (now_ms - base_ms) * scale. */
int64_t compactor_scaled_now(int64_t base_ms, int64_t now_ms, int64_t scale);
/* The real timer period for a compactor-time interval: interval_ms / scale, at least 1. */
int64_t compactor_real_interval(int64_t interval_ms, int64_t scale);

/* Formats a duration like Go's time.Duration.String ("1h0m0s", "1.5s", "300ms"). */
void compactor_format_duration(int64_t ms, char *buf, size_t n);

typedef struct compactor compactor_t;

/* Starts auto-compaction (or, when it is off, the growth watcher) for srv per srv->cfg,
 * logging the mode. Returns the compactor (owned; compactor_stop frees it). */
compactor_t *compactor_start(server_t *srv);
/* Stops the timers and frees the compactor once its handles are closed and no compaction
 * proposal is pending (NULL is fine). Call on the loop thread before the loop ends. */
void compactor_stop(compactor_t *c);

#endif
