/* churn [--prefix P] [--window 60s] [--top N] [--depth D] [--rev R]: which key prefixes
 * consume revisions, how fast, under which leases, and which keys are created and
 * deleted again (the signature of TryLock polling).
 *
 * Read from the watch stream, so it works against any etcd v3 server: the store revision
 * R0 is read first and a watch (with previous key-values, for the leases of deleted keys)
 * starts at R0 + 1; events are aggregated until the window ends, then every event up to
 * the revision current at that moment is drained. With --rev R the history from R up to
 * the current revision is analysed instead (no waiting, no rates: the history carries no
 * timestamps). A revision that touches several prefixes counts once for each. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/printer.h"

static char *g_prefix;
static int64_t g_window_ms, g_rev, g_top, g_depth;

/* Resets churn's flags. */
static void churn_reset(void) {
  g_prefix = "";
  g_window_ms = 60000;
  g_rev = 0;
  g_top = 10;
  g_depth = 2;
}

static const ctl_flag_t churn_flags[] = {
    {"depth", 0, FLAG_INT64, &g_depth, "number of '/'-separated key segments that form a prefix (default 2)",
     NULL, "=2"},
    {"prefix", 0, FLAG_STRING, &g_prefix, "only watch keys under this prefix (default: the whole keyspace)",
     NULL, NULL},
    {"rev", 0, FLAG_INT64, &g_rev,
     "analyse the history from this revision to now instead of waiting for the window", NULL, NULL},
    {"top", 0, FLAG_INT64, &g_top, "number of prefixes and keys to show (default 10)", NULL, "=10"},
    {"window", 0, FLAG_DURATION, &g_window_ms, "how long to observe (default 60s)", NULL, "=1m0s"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

/* ---- a small string-keyed hash map ---------------------------------------------------- */

typedef struct lease_count {
  int64_t id, n;
} lease_count_t;

/* Aggregate for one prefix or one key. */
typedef struct entry {
  char *key;
  size_t klen;
  struct entry *next;
  /* prefix stats */
  int64_t revisions, last_rev, puts, deletes, cycles;
  lease_count_t *leases;
  size_t n_leases;
  /* key stats */
  int64_t create_rev; /* pending creation in the window, 0 if none */
  int64_t life_sum, lease;
} entry_t;

typedef struct map {
  entry_t **b;
  size_t nb, n;
} map_t;

/* FNV-1a. */
static uint64_t hash(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
  return h;
}

/* Finds or inserts key in m. */
static entry_t *map_get(map_t *m, const char *k, size_t n) {
  if (m->n >= m->nb * 2) {
    size_t nb = m->nb ? m->nb * 4 : 64;
    entry_t **b = calloc(nb, sizeof(*b));
    if (!b) abort();
    for (size_t i = 0; i < m->nb; i++)
      for (entry_t *e = m->b[i], *nx; e; e = nx) {
        nx = e->next;
        size_t j = hash(e->key, e->klen) % nb;
        e->next = b[j];
        b[j] = e;
      }
    free(m->b);
    m->b = b;
    m->nb = nb;
  }
  size_t j = hash(k, n) % m->nb;
  for (entry_t *e = m->b[j]; e; e = e->next)
    if (e->klen == n && memcmp(e->key, k, n) == 0) return e;
  entry_t *e = calloc(1, sizeof(*e));
  if (!e) abort();
  e->key = malloc(n + 1);
  if (!e->key) abort();
  memcpy(e->key, k, n);
  e->key[n] = 0;
  e->klen = n;
  e->next = m->b[j];
  m->b[j] = e;
  m->n++;
  return e;
}

/* All entries of m as an array (owned by the caller). */
static entry_t **map_list(const map_t *m) {
  entry_t **v = calloc(m->n + 1, sizeof(*v));
  size_t k = 0;
  if (!v) abort();
  for (size_t i = 0; i < m->nb; i++)
    for (entry_t *e = m->b[i]; e; e = e->next) v[k++] = e;
  return v;
}

/* ---- aggregation -------------------------------------------------------------------- */

typedef struct churn {
  map_t prefixes, keys;
  int64_t events, first_rev, last_rev;
} churn_t;

/* Length of the prefix of key made of the first g_depth '/'-terminated segments (a
 * leading '/' does not end a segment); the whole key when it has fewer. */
static size_t prefix_len(const char *k, size_t n) {
  int64_t seen = 0;
  for (size_t i = k[0] == '/' ? 1 : 0; i < n; i++)
    if (k[i] == '/' && ++seen == g_depth) return i + 1;
  return n;
}

/* Adds one event to lease counts of a prefix. */
static void count_lease(entry_t *p, int64_t lease) {
  if (!lease) return;
  for (size_t i = 0; i < p->n_leases; i++)
    if (p->leases[i].id == lease) {
      p->leases[i].n++;
      return;
    }
  lease_count_t *nl = realloc(p->leases, (p->n_leases + 1) * sizeof(*nl));
  if (!nl) abort();
  p->leases = nl;
  p->leases[p->n_leases++] = (lease_count_t){lease, 1};
}

/* Accounts one event. */
static void account(churn_t *c, const cetcd_watch_event_t *ev) {
  const cetcd_kv_t *kv = &ev->kv;
  int64_t rev = kv->mod_revision;
  bool del = ev->type == CETCD_EVENT_DELETE;
  int64_t lease = del ? (ev->prev_kv ? ev->prev_kv->lease : 0) : kv->lease;
  c->events++;
  if (!c->first_rev || rev < c->first_rev) c->first_rev = rev;
  if (rev > c->last_rev) c->last_rev = rev;
  entry_t *p = map_get(&c->prefixes, kv->key, prefix_len(kv->key, kv->key_len));
  if (p->last_rev != rev) p->revisions++, p->last_rev = rev;
  if (del)
    p->deletes++;
  else
    p->puts++;
  count_lease(p, lease);
  entry_t *k = map_get(&c->keys, kv->key, kv->key_len);
  if (!del && kv->version == 1) {
    k->create_rev = rev;
    k->lease = kv->lease;
  } else if (del && k->create_rev) {
    k->cycles++;
    k->life_sum += rev - k->create_rev;
    k->create_rev = 0;
    p->cycles++;
  }
}

/* Sorts prefixes by revisions, descending. */
static int by_revisions(const void *a, const void *b) {
  const entry_t *x = *(entry_t *const *)a, *y = *(entry_t *const *)b;
  if (x->revisions != y->revisions) return x->revisions < y->revisions ? 1 : -1;
  return strcmp(x->key, y->key);
}

/* Sorts keys by create/delete cycles, descending. */
static int by_cycles(const void *a, const void *b) {
  const entry_t *x = *(entry_t *const *)a, *y = *(entry_t *const *)b;
  if (x->cycles != y->cycles) return x->cycles < y->cycles ? 1 : -1;
  return strcmp(x->key, y->key);
}

/* Sorts lease counts, descending. */
static int by_count(const void *a, const void *b) {
  const lease_count_t *x = a, *y = b;
  return x->n != y->n ? (x->n < y->n ? 1 : -1) : (x->id < y->id ? -1 : x->id > y->id);
}

/* Prints the report (text or json). secs <= 0: no rates (history mode). */
static void report(churn_t *c, int64_t r0, int64_t r1, double secs) {
  entry_t **ps = map_list(&c->prefixes), **ks = map_list(&c->keys);
  qsort(ps, c->prefixes.n, sizeof(*ps), by_revisions);
  qsort(ks, c->keys.n, sizeof(*ks), by_cycles);
  size_t np = c->prefixes.n < (size_t)g_top ? c->prefixes.n : (size_t)g_top, nk = 0;
  while (nk < c->keys.n && nk < (size_t)g_top && ks[nk]->cycles > 0) nk++;
  int64_t total_cycles = 0;
  for (size_t i = 0; i < c->keys.n; i++) total_cycles += ks[i]->cycles;
  int64_t revs = r1 - r0;
  if (g_ctl.fmt == FMT_JSON) {
    printf("{\"window_seconds\":%.3f,\"start_revision\":%" PRId64 ",\"end_revision\":%" PRId64
           ",\"revisions\":%" PRId64 ",\"revisions_per_second\":%.3f,\"events\":%" PRId64
           ",\"created_deleted\":%" PRId64 ",\"prefixes\":[",
           secs > 0 ? secs : 0, r0 + 1, r1, revs, secs > 0 ? (double)revs / secs : 0, c->events,
           total_cycles);
    for (size_t i = 0; i < np; i++) {
      entry_t *p = ps[i];
      qsort(p->leases, p->n_leases, sizeof(*p->leases), by_count);
      printf("%s{\"prefix\":", i ? "," : "");
      ctl_json_str(stdout, p->key);
      printf(",\"revisions\":%" PRId64 ",\"revisions_per_second\":%.3f,\"puts\":%" PRId64
             ",\"deletes\":%" PRId64 ",\"created_deleted\":%" PRId64 ",\"leases\":[",
             p->revisions, secs > 0 ? (double)p->revisions / secs : 0, p->puts, p->deletes, p->cycles);
      for (size_t j = 0; j < p->n_leases && j < 5; j++)
        printf("%s{\"id\":%" PRId64 ",\"events\":%" PRId64 "}", j ? "," : "", p->leases[j].id,
               p->leases[j].n);
      printf("]}");
    }
    printf("],\"created_deleted_keys\":[");
    for (size_t i = 0; i < nk; i++) {
      printf("%s{\"key\":", i ? "," : "");
      ctl_json_str(stdout, ks[i]->key);
      printf(",\"cycles\":%" PRId64 ",\"lease\":%" PRId64 ",\"mean_life_revisions\":%.2f}", ks[i]->cycles,
             ks[i]->lease, (double)ks[i]->life_sum / (double)ks[i]->cycles);
    }
    printf("]}\n");
  } else {
    if (secs > 0)
      printf("window %.1fs: revisions %" PRId64 "..%" PRId64 " (%" PRId64 " revisions, %.1f/s), %" PRId64
             " events, %" PRId64 " keys created and deleted again\n",
             secs, r0 + 1, r1, revs, (double)revs / secs, c->events, total_cycles);
    else
      printf("history: revisions %" PRId64 "..%" PRId64 " (%" PRId64 " revisions), %" PRId64
             " events, %" PRId64 " keys created and deleted again\n",
             r0 + 1, r1, revs, c->events, total_cycles);
    size_t w = 6;
    for (size_t i = 0; i < np; i++)
      if (strlen(ps[i]->key) > w) w = strlen(ps[i]->key);
    printf("\n%-*s %10s %9s %8s %8s %16s  %s\n", (int)w, "PREFIX", "REVISIONS", "REV/S", "PUTS", "DELETES",
           "CREATED+DELETED", "TOP LEASES (events)");
    for (size_t i = 0; i < np; i++) {
      entry_t *p = ps[i];
      char rate[32] = "-";
      if (secs > 0) snprintf(rate, sizeof(rate), "%.1f", (double)p->revisions / secs);
      printf("%-*s %10" PRId64 " %9s %8" PRId64 " %8" PRId64 " %16" PRId64 "  ", (int)w, p->key, p->revisions,
             rate, p->puts, p->deletes, p->cycles);
      qsort(p->leases, p->n_leases, sizeof(*p->leases), by_count);
      if (!p->n_leases) printf("-");
      for (size_t j = 0; j < p->n_leases && j < 3; j++)
        printf("%s%016" PRIx64 "(%" PRId64 ")", j ? " " : "", (uint64_t)p->leases[j].id, p->leases[j].n);
      putchar('\n');
    }
    if (nk) {
      size_t kw = 3;
      for (size_t i = 0; i < nk; i++)
        if (strlen(ks[i]->key) > kw) kw = strlen(ks[i]->key);
      printf("\nkeys created and deleted again (TryLock polling signature):\n%-*s %8s %16s  %s\n", (int)kw,
             "KEY", "CYCLES", "LEASE", "MEAN LIFETIME");
      for (size_t i = 0; i < nk; i++) {
        char lease[24] = "-";
        if (ks[i]->lease) snprintf(lease, sizeof(lease), "%016" PRIx64, (uint64_t)ks[i]->lease);
        printf("%-*s %8" PRId64 " %16s  %.1f revisions\n", (int)kw, ks[i]->key, ks[i]->cycles, lease,
               (double)ks[i]->life_sum / (double)ks[i]->cycles);
      }
    }
  }
  free(ps);
  free(ks);
}

/* Store revision now; exits on failure. */
static int64_t current_rev(cetcd_client_t *c) {
  cetcd_header_t h;
  int rc = ctl_header(c, &h);
  if (rc != 0) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  return h.revision;
}

/* churn [options] */
static int run_churn(ctl_args_t *a) {
  if (a->npos || a->nexec) ctl_die(EXIT_BADARGS, "churn takes no arguments");
  if (g_depth < 1) g_depth = 1;
  if (g_top < 1) g_top = 1;
  if (g_window_ms <= 0 && !g_rev) ctl_die(EXIT_BADARGS, "--window must be positive");
  cetcd_client_t *c = ctl_client();
  int64_t r0 = current_rev(c), start = ctl_now_ns(), from = r0 + 1, r_end = 0;
  if (g_rev > r0) ctl_die(EXIT_ERR, "%s", ctl_errmsg(CETCD_EFUTUREREV));
  if (g_rev > 0) {
    from = g_rev;
    r_end = r0;
    r0 = g_rev - 1;
  }
  cetcd_watch_opts_t o = {0};
  o.prev_kv = true;
  o.start_revision = from;
  const char *key = g_prefix;
  size_t klen = strlen(key);
  if (klen)
    o.prefix = true;
  else
    key = "\0", klen = 1, o.from_key = true;
  cetcd_watch_t *w = NULL;
  int rc = cetcd_watch_open(c, key, klen, &o, &w);
  if (rc != 0) ctl_die_call(EXIT_BADCONN, rc, NULL, NULL);
  churn_t ch = {0};
  int64_t deadline = start + g_window_ms * 1000000;
  double secs = -1;
  for (;;) {
    int tmo = -1;
    if (!r_end) {
      int64_t left = deadline - ctl_now_ns();
      if (left <= 0) {
        /* window over: drain everything up to the revision current now */
        secs = (double)(ctl_now_ns() - start) / 1e9;
        r_end = current_rev(c);
        if (cetcd_watch_last_revision(w) >= r_end) break;
        continue;
      }
      tmo = (int)(left / 1000000) + 1;
    } else {
      if (cetcd_watch_last_revision(w) >= r_end) break;
      cetcd_watch_request_progress(w);
      tmo = 1000;
    }
    cetcd_watch_event_batch_t *b = NULL;
    rc = cetcd_watch_next(w, tmo, &b);
    if (rc == CETCD_ETIMEOUT) continue;
    if (rc != 0) break;
    if (b->canceled) {
      int err = b->err;
      cetcd_watch_batch_free(b);
      if (err == CETCD_ECOMPACTED) ctl_die(EXIT_ERR, "%s", ctl_errmsg(err));
      ctl_die(EXIT_ERR, "watch canceled: %s", ctl_errmsg(err ? err : CETCD_ECANCELED));
    }
    for (size_t i = 0; i < b->n_events; i++)
      if (!r_end || b->events[i].kv.mod_revision <= r_end) account(&ch, &b->events[i]);
    if (r_end && b->header.revision >= r_end && b->n_events == 0) {
      cetcd_watch_batch_free(b);
      break;
    }
    cetcd_watch_batch_free(b);
  }
  cetcd_watch_free(w);
  if (g_rev > 0) secs = -1;
  report(&ch, r0, r_end, secs);
  cetcd_client_free(c);
  return 0;
}

const ctl_cmd_t ctl_cmd_churn = {"churn",
                                 "churn [--prefix P] [--window 60s] [--top N] [--depth D] [--rev R]",
                                 "Shows which key prefixes consume revisions, how fast, by which leases",
                                 run_churn,
                                 churn_flags,
                                 NULL,
                                 churn_reset};
