/* Auto-compaction: etcd 3.4's periodic and revision compactors as a clock-injected core,
 * driven by libuv timers, proposing compactions through the log. */
#include "server/compactor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"
#include "server/server.h"

enum { HOUR_MS = 3600 * 1000, RETRY_DIVISOR = 10, MIN_INTERVAL_MS = 10 };

/* ============================== the core ============================== */

/* Records a revision, keeping the newest `retentions` (etcd: revs[0] is the oldest). */
static void record(compactor_core_t *c, int64_t rev) {
  if (c->nrevs == c->retentions) {
    memmove(c->revs, c->revs + 1, (c->nrevs - 1) * sizeof(*c->revs));
    c->nrevs--;
  }
  c->revs[c->nrevs++] = rev;
}

void compactor_core_init(compactor_core_t *c, int mode, int64_t period_ms, int64_t retention,
                         int64_t interval_override_ms, int64_t now_ms, int64_t cur_rev) {
  memset(c, 0, sizeof(*c));
  c->mode = mode;
  if (mode == COMPACTOR_REVISION) {
    c->retention = retention;
    c->interval_ms = interval_override_ms > 0 ? interval_override_ms : COMPACTOR_REVISION_INTERVAL_MS;
    return;
  }
  c->period_ms = period_ms;
  c->compact_interval_ms = period_ms > HOUR_MS ? HOUR_MS : period_ms;
  c->interval_ms = c->compact_interval_ms / RETRY_DIVISOR;
  if (c->interval_ms < MIN_INTERVAL_MS) c->interval_ms = MIN_INTERVAL_MS;
  c->retentions = (size_t)(period_ms / c->interval_ms) + 1;
  c->revs = xcalloc(c->retentions, sizeof(*c->revs));
  c->base_interval_ms = period_ms;
  c->last_success_ms = now_ms;
  record(c, cur_rev); /* etcd records before its first wait */
}

int64_t compactor_core_tick(compactor_core_t *c, int64_t now_ms, int64_t cur_rev) {
  if (c->proposed) return 0;
  if (c->mode == COMPACTOR_REVISION) {
    int64_t rev = cur_rev - c->retention;
    if (rev <= 0 || rev == c->prev) return 0;
    c->proposed = rev;
    return rev;
  }
  if (now_ms - c->last_success_ms < c->base_interval_ms) {
    record(c, cur_rev); /* the record etcd makes at the top of its next iteration */
    return 0;
  }
  if (c->base_interval_ms == c->period_ms) c->base_interval_ms = c->compact_interval_ms;
  c->proposed = c->revs[0];
  return c->proposed;
}

void compactor_core_done(compactor_core_t *c, bool ok, int64_t now_ms, int64_t cur_rev) {
  int64_t rev = c->proposed;
  c->proposed = 0;
  if (c->mode == COMPACTOR_REVISION) {
    if (ok) c->prev = rev;
    return;
  }
  if (ok) c->last_success_ms = now_ms;
  record(c, cur_rev);
}

void compactor_core_free(compactor_core_t *c) {
  free(c->revs);
  c->revs = NULL;
  c->nrevs = 0;
}

void compactor_growth_init(compactor_growth_t *g) {
  g->last_rev = 0;
  g->last_ms = -1;
  g->last_warn_ms = -1;
}

bool compactor_growth_check(compactor_growth_t *g, int64_t now_ms, int64_t rev, int64_t *per_min) {
  bool warn = false;
  int64_t rate = 0;
  if (g->last_ms >= 0 && now_ms > g->last_ms) {
    rate = (rev - g->last_rev) * 60000 / (now_ms - g->last_ms);
    if (rate > COMPACTOR_GROWTH_WARN_PER_MIN &&
        (g->last_warn_ms < 0 || now_ms - g->last_warn_ms >= COMPACTOR_GROWTH_WARN_EVERY_MS)) {
      warn = true;
      g->last_warn_ms = now_ms;
    }
  }
  g->last_rev = rev;
  g->last_ms = now_ms;
  if (per_min) *per_min = rate;
  return warn;
}

int64_t compactor_parse_clock_scale(const char *s) {
  if (!s || !*s) return 1;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (*end || v <= 0 || v > COMPACTOR_MAX_CLOCK_SCALE) return 1;
  return (int64_t)v;
}

int64_t compactor_scaled_now(int64_t base_ms, int64_t now_ms, int64_t scale) {
  return base_ms + (now_ms - base_ms) * scale;
}

int64_t compactor_real_interval(int64_t interval_ms, int64_t scale) {
  int64_t r = scale > 1 ? interval_ms / scale : interval_ms;
  return r < 1 ? 1 : r;
}

void compactor_format_duration(int64_t ms, char *buf, size_t n) {
  if (ms == 0) {
    snprintf(buf, n, "0s");
    return;
  }
  const char *sign = ms < 0 ? "-" : "";
  if (ms < 0) ms = -ms;
  if (ms < 1000) {
    snprintf(buf, n, "%s%" PRId64 "ms", sign, ms);
    return;
  }
  int64_t h = ms / HOUR_MS, m = ms / 60000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
  char sec[32];
  if (frac) {
    snprintf(sec, sizeof(sec), "%" PRId64 ".%03" PRId64, s, frac);
    size_t l = strlen(sec);
    while (sec[l - 1] == '0') sec[--l] = 0;
  } else {
    snprintf(sec, sizeof(sec), "%" PRId64, s);
  }
  if (h)
    snprintf(buf, n, "%s%" PRId64 "h%" PRId64 "m%ss", sign, h, m, sec);
  else if (m)
    snprintf(buf, n, "%s%" PRId64 "m%ss", sign, m, sec);
  else
    snprintf(buf, n, "%s%ss", sign, sec);
}

/* ============================== the runtime ============================== */

struct compactor {
  server_t *srv;
  bool on; /* auto-compaction enabled (else only the growth watcher runs) */
  compactor_core_t core;
  compactor_growth_t growth;
  uv_timer_t timer;
  int64_t growth_interval_ms;
  uint64_t started_ms;   /* uv_now when the compaction in flight was proposed */
  int64_t clock_scale;   /* CETCD_TEST_CLOCK_SCALE (tests only); 1: real time */
  int64_t clock_base_ms; /* uv_now at start: the scaled clock's origin */
  bool stopped;
  bool timer_closed;
  bool proposal_pending;
};

/* Frees c once nothing refers to it any more. */
static void maybe_free(compactor_t *c) {
  if (!c->stopped || !c->timer_closed || c->proposal_pending) return;
  compactor_core_free(&c->core);
  free(c);
}

/* The scheduler's clock: uv_now, sped up by the test-only clock scale. */
static int64_t clock_now(const compactor_t *c) {
  return compactor_scaled_now(c->clock_base_ms, (int64_t)uv_now(c->srv->loop), c->clock_scale);
}

/* The retention as etcd prints it in its compaction log lines. */
static void retention_text(const compactor_t *c, char *buf, size_t n) {
  if (c->core.mode == COMPACTOR_REVISION) {
    snprintf(buf, n, "%" PRId64 " revisions", c->core.retention);
  } else {
    compactor_format_duration(c->core.period_ms, buf, n);
  }
}

/* The compaction was applied (or failed). */
static void on_compacted(void *ctx, const apply_result_t *res) {
  compactor_t *c = ctx;
  c->proposal_pending = false;
  int64_t rev = c->core.proposed;
  if (c->stopped) {
    maybe_free(c);
    return;
  }
  bool ok = res->err == 0 || res->err == CETCD_ECOMPACTED;
  uint64_t now = uv_now(c->srv->loop);
  if (ok) {
    LOGI("msg=\"Finished auto-compaction at revision %" PRId64 "\" took=%" PRIu64 "ms", rev,
         now - c->started_ms);
  } else {
    char retry[32];
    compactor_format_duration(c->core.interval_ms, retry, sizeof(retry));
    LOGW("msg=\"Failed auto-compaction at revision %" PRId64 " (%s)\" retry-interval=%s", rev,
         cetcd_strerror(res->err), retry);
  }
  compactor_core_done(&c->core, ok, clock_now(c), c->srv->mvcc ? mvcc_rev(c->srv->mvcc) : 0);
}

/* Auto-compaction timer: maybe propose a compaction. */
static void on_tick(uv_timer_t *t) {
  compactor_t *c = t->data;
  server_t *srv = c->srv;
  if (c->stopped || srv->stopping || !srv->mvcc) return;
  int64_t rev = compactor_core_tick(&c->core, clock_now(c), mvcc_rev(srv->mvcc));
  if (rev <= 0) return;
  char ret[48];
  retention_text(c, ret, sizeof(ret));
  LOGI("msg=\"Starting auto-compaction at revision %" PRId64 " (retention: %s)\"", rev, ret);
  Etcdserverpb__CompactionRequest creq = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
  creq.revision = rev;
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.compaction = &creq;
  c->started_ms = uv_now(srv->loop);
  c->proposal_pending = true;
  server_propose(srv, &ir, NULL, on_compacted, c);
}

/* Growth timer (auto-compaction off): warn when the history grows fast. */
static void on_growth_tick(uv_timer_t *t) {
  compactor_t *c = t->data;
  server_t *srv = c->srv;
  if (c->stopped || srv->stopping || !srv->mvcc) return;
  int64_t rate;
  if (compactor_growth_check(&c->growth, (int64_t)uv_now(srv->loop), mvcc_rev(srv->mvcc), &rate))
    LOGW(
        "msg=\"history grows fast and auto-compaction is off; the backend will keep growing until "
        "--quota-backend-bytes is reached\" revisions-per-minute=%" PRId64 " revision=%" PRId64
        " fix=\"set --auto-compaction-retention (e.g. 1h, or --auto-compaction-mode=revision with a "
        "revision count), or compact regularly with etcdctl compaction\"",
        rate, mvcc_rev(srv->mvcc));
}

/* Milliseconds from CETCD_TEST_COMPACTOR_INTERVAL_MS, or 0. */
static int64_t test_interval(void) {
  const char *e = getenv("CETCD_TEST_COMPACTOR_INTERVAL_MS");
  if (!e || !*e) return 0;
  char *end;
  long long v = strtoll(e, &end, 10);
  if (*end || v <= 0) {
    LOGW("msg=\"ignoring invalid CETCD_TEST_COMPACTOR_INTERVAL_MS\" value=\"%s\"", e);
    return 0;
  }
  LOGW("msg=\"test knob CETCD_TEST_COMPACTOR_INTERVAL_MS is set\" interval-ms=%lld", v);
  return v;
}

/* CETCD_TEST_CLOCK_SCALE, or 1 (tests only). */
static int64_t test_clock_scale(void) {
  const char *e = getenv("CETCD_TEST_CLOCK_SCALE");
  if (!e || !*e) return 1;
  int64_t v = compactor_parse_clock_scale(e);
  if (v == 1 && strcmp(e, "1") != 0) {
    LOGW("msg=\"ignoring invalid CETCD_TEST_CLOCK_SCALE\" value=\"%s\"", e);
    return 1;
  }
  LOGW("msg=\"test knob CETCD_TEST_CLOCK_SCALE is set: the auto-compaction clock runs %" PRId64
       " times faster than real time (tests only)\" clock-scale=%" PRId64,
       v, v);
  return v;
}

compactor_t *compactor_start(server_t *srv) {
  const cetcd_config_t *cfg = srv->cfg;
  compactor_t *c = xcalloc(1, sizeof(*c));
  c->srv = srv;
  int64_t knob = test_interval();
  c->clock_base_ms = (int64_t)uv_now(srv->loop);
  c->clock_scale = test_clock_scale();
  uv_timer_init(srv->loop, &c->timer);
  c->timer.data = c;
  int mode = cfg->auto_compaction_mode == CONFIG_COMPACT_REVISION ? COMPACTOR_REVISION : COMPACTOR_PERIODIC;
  c->on =
      mode == COMPACTOR_REVISION ? cfg->auto_compaction_revisions > 0 : cfg->auto_compaction_period_ms > 0;
  if (!c->on) {
    compactor_growth_init(&c->growth);
    c->growth_interval_ms = knob > 0 ? knob : COMPACTOR_GROWTH_CHECK_MS;
    compactor_growth_check(&c->growth, (int64_t)uv_now(srv->loop), mvcc_rev(srv->mvcc), NULL);
    uv_timer_start(&c->timer, on_growth_tick, (uint64_t)c->growth_interval_ms,
                   (uint64_t)c->growth_interval_ms);
    LOGI("msg=\"auto-compaction is disabled\" auto-compaction-retention=\"%s\"",
         cfg->auto_compaction_retention);
    return c;
  }
  compactor_core_init(&c->core, mode, cfg->auto_compaction_period_ms, cfg->auto_compaction_revisions, knob,
                      clock_now(c), mvcc_rev(srv->mvcc));
  char ret[48], itv[32];
  retention_text(c, ret, sizeof(ret));
  compactor_format_duration(c->core.interval_ms, itv, sizeof(itv));
  LOGI(
      "msg=\"enabled auto-compaction\" auto-compaction-mode=%s auto-compaction-retention=\"%s\" "
      "check-interval=%s",
      mode == COMPACTOR_REVISION ? "revision" : "periodic", ret, itv);
  uint64_t period = (uint64_t)compactor_real_interval(c->core.interval_ms, c->clock_scale);
  uv_timer_start(&c->timer, on_tick, period, period);
  return c;
}

/* The timer handle is closed. */
static void on_timer_closed(uv_handle_t *h) {
  compactor_t *c = h->data;
  c->timer_closed = true;
  maybe_free(c);
}

void compactor_stop(compactor_t *c) {
  if (!c || c->stopped) return;
  c->stopped = true;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
