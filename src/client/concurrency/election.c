/* libcetcd concurrency: leader election and its observer.
 *
 * Candidates' keys are "<prefix>/<lease hex>" with the proclaimed value; the leader is
 * the first-created key. Campaign waits like Mutex lock. The observer keeps the set of
 * candidates (one initial read, then a prefix watch) and reports the leader after every
 * revision that changes it, including "no leader". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "client/concurrency/conc_int.h"

struct cetcd_election {
  cetcd_client_t *client;
  cetcd_session_t *s; /* NULL for an observer-only election */
  char *pfx;          /* "<prefix>/" */
  size_t pfxlen;
  char *key; /* "<prefix>/<lease hex>" (NULL without session) */
  size_t keylen;
  bool candidate; /* my key exists (as far as we know) with create revision crev */
  int64_t crev;
  int64_t rev; /* crev once elected, else 0 */
  int cancel_fd;
};

void cetcd_leader_free(cetcd_leader_t *l) {
  if (!l) return;
  free(l->kv.key);
  free(l->kv.value);
  free(l);
}

static int election_make(cetcd_client_t *c, cetcd_session_t *s, const char *prefix, cetcd_election_t **out) {
  if (!out) return CETCD_EINVAL;
  *out = NULL;
  if (!c || !prefix) return CETCD_EINVAL;
  cetcd_election_t *e = calloc(1, sizeof *e);
  if (!e) return CETCD_ENOMEM;
  int rc = conc_keys(prefix, s ? s->lease : 0, &e->pfx, &e->pfxlen, &e->key, &e->keylen);
  if (rc) {
    free(e);
    return rc;
  }
  e->cancel_fd = conc_eventfd();
  if (e->cancel_fd < 0) {
    rc = e->cancel_fd;
    free(e->pfx);
    free(e->key);
    free(e);
    return rc;
  }
  e->client = c;
  e->s = s;
  *out = e;
  return 0;
}

int cetcd_election_new(cetcd_session_t *s, const char *prefix, cetcd_election_t **out) {
  if (!s) {
    if (out) *out = NULL;
    return CETCD_EINVAL;
  }
  return election_make(s->client, s, prefix, out);
}

int cetcd_election_new_observer(cetcd_client_t *client, const char *prefix, cetcd_election_t **out) {
  return election_make(client, NULL, prefix, out);
}

void cetcd_election_free(cetcd_election_t *e) {
  if (!e) return;
  close(e->cancel_fd);
  free(e->pfx);
  free(e->key);
  free(e);
}

/* Puts value on my key if it still has create revision crev. */
static int guarded_put(cetcd_election_t *e, const void *value, size_t vlen) {
  cetcd_txn_t *t = NULL;
  int rc = cetcd_txn_new(&t);
  if (rc) return rc;
  cetcd_put_opts_t po = {.lease = e->s->lease};
  cetcd_txn_cmp_create(t, e->key, e->keylen, CETCD_CMP_EQUAL, e->crev);
  cetcd_txn_then_put(t, e->key, e->keylen, value, vlen, &po);
  cetcd_txn_result_t *r = NULL;
  rc = cetcd_txn_commit(e->client, t, &r);
  cetcd_txn_free(t);
  if (rc) return rc;
  bool ok = r->succeeded;
  cetcd_txn_result_free(r);
  if (!ok) {
    e->candidate = false;
    e->crev = e->rev = 0;
    return CETCD_EELECTIONNOTLEADER;
  }
  return 0;
}

int cetcd_election_campaign(cetcd_election_t *e, const void *value, size_t vlen, int timeout_ms) {
  if (!e || !e->s || (!value && vlen)) return CETCD_EINVAL;
  int64_t deadline = conc_deadline(timeout_ms);
  conc_drain(e->cancel_fd);
  e->rev = 0;
  cetcd_txn_t *t = NULL;
  int rc = cetcd_txn_new(&t);
  if (rc) return rc;
  cetcd_put_opts_t po = {.lease = e->s->lease};
  cetcd_txn_cmp_create(t, e->key, e->keylen, CETCD_CMP_EQUAL, 0);
  cetcd_txn_then_put(t, e->key, e->keylen, value ? value : "", vlen, &po);
  cetcd_txn_else_get(t, e->key, e->keylen, NULL);
  cetcd_txn_result_t *r = NULL;
  rc = cetcd_txn_commit(e->client, t, &r);
  cetcd_txn_free(t);
  if (rc) return rc;
  bool reproclaim = false;
  if (r->succeeded) {
    e->crev = r->header.revision;
  } else {
    const cetcd_get_result_t *g = r->n_results ? r->results[0].get : NULL;
    if (!g || !g->n_kvs) {
      cetcd_txn_result_free(r);
      return CETCD_EGRPC; /* malformed answer */
    }
    e->crev = g->kvs[0].create_revision;
    reproclaim = g->kvs[0].value_len != vlen || (vlen && memcmp(g->kvs[0].value, value, vlen));
  }
  cetcd_txn_result_free(r);
  e->candidate = true;
  if (reproclaim) rc = guarded_put(e, value, vlen);
  if (!rc) rc = conc_wait_deletes(e->s, e->pfx, e->pfxlen, e->crev - 1, deadline, e->cancel_fd);
  if (!rc) rc = conc_check_key(e->client, e->key, e->keylen, e->crev);
  if (rc) {
    cetcd_election_resign(e); /* withdraw the candidacy, as etcd does */
    e->candidate = false;
    e->crev = 0;
    return rc;
  }
  e->rev = e->crev;
  return 0;
}

int cetcd_election_proclaim(cetcd_election_t *e, const void *value, size_t vlen) {
  if (!e || !e->s || (!value && vlen)) return CETCD_EINVAL;
  if (!e->rev) return CETCD_EELECTIONNOTLEADER;
  return guarded_put(e, value ? value : "", vlen);
}

int cetcd_election_resign(cetcd_election_t *e) {
  if (!e || !e->s) return CETCD_EINVAL;
  if (!e->candidate) return 0;
  cetcd_txn_t *t = NULL;
  int rc = cetcd_txn_new(&t);
  if (rc) return rc;
  cetcd_txn_cmp_create(t, e->key, e->keylen, CETCD_CMP_EQUAL, e->crev);
  cetcd_txn_then_delete(t, e->key, e->keylen, NULL);
  rc = cetcd_txn_commit(e->client, t, NULL);
  cetcd_txn_free(t);
  if (rc) return rc;
  e->candidate = false;
  e->crev = e->rev = 0;
  return 0;
}

int cetcd_election_cancel(cetcd_election_t *e) {
  if (e) conc_signal(e->cancel_fd);
  return 0;
}

/* Builds a leader from a kv (NULL: no leader). */
static int leader_make(const cetcd_kv_t *kv, int64_t revision, cetcd_leader_t **out) {
  cetcd_leader_t *l = calloc(1, sizeof *l);
  if (!l) return CETCD_ENOMEM;
  l->revision = revision;
  if (kv) {
    l->has_leader = true;
    l->kv = *kv;
    l->kv.key = malloc(kv->key_len + 1);
    l->kv.value = malloc(kv->value_len + 1);
    if (!l->kv.key || !l->kv.value) {
      cetcd_leader_free(l);
      return CETCD_ENOMEM;
    }
    memcpy(l->kv.key, kv->key, kv->key_len);
    l->kv.key[kv->key_len] = '\0';
    if (kv->value_len) memcpy(l->kv.value, kv->value, kv->value_len);
    l->kv.value[kv->value_len] = '\0';
  }
  *out = l;
  return 0;
}

int cetcd_election_leader(cetcd_election_t *e, cetcd_leader_t **out) {
  if (!out) return CETCD_EINVAL;
  *out = NULL;
  if (!e) return CETCD_EINVAL;
  cetcd_get_opts_t o;
  conc_first_created_opts(&o);
  cetcd_get_result_t *g = NULL;
  int rc = cetcd_get(e->client, e->pfx, e->pfxlen, &o, &g);
  if (rc) return rc;
  rc = g->n_kvs ? leader_make(&g->kvs[0], g->header.revision, out) : CETCD_EELECTIONNOLEADER;
  cetcd_get_result_free(g);
  return rc;
}

const char *cetcd_election_key(const cetcd_election_t *e) { return e && e->candidate ? e->key : NULL; }

int64_t cetcd_election_rev(const cetcd_election_t *e) { return e ? e->rev : 0; }

/* ---- observer --------------------------------------------------------------------------- */

struct cetcd_observer {
  cetcd_election_t *e;
  cetcd_watch_t *w;  /* NULL until (re)synchronized */
  int epfd;          /* epoll over the watch's fd and pend_fd: the public fd */
  int pend_fd;       /* eventfd readable while next() has buffered work */
  cetcd_kv_t *cands; /* every candidate (owned copies) */
  size_t n, cap;
  int64_t rev;                      /* revision of the current candidate set */
  cetcd_watch_event_batch_t *batch; /* batch being applied, and the next event in it */
  size_t bi;
  bool reported; /* something was reported already */
  bool last_has; /* last reported state */
  char *last_key;
  size_t last_klen;
  int64_t last_crev, last_mrev;
};

static void cands_clear(cetcd_observer_t *o) {
  for (size_t i = 0; i < o->n; i++) {
    free(o->cands[i].key);
    free(o->cands[i].value);
  }
  o->n = 0;
}

static int kv_copy(cetcd_kv_t *dst, const cetcd_kv_t *src) {
  char *k = malloc(src->key_len + 1), *v = malloc(src->value_len + 1);
  if (!k || !v) {
    free(k);
    free(v);
    return CETCD_ENOMEM;
  }
  memcpy(k, src->key, src->key_len);
  k[src->key_len] = '\0';
  if (src->value_len) memcpy(v, src->value, src->value_len);
  v[src->value_len] = '\0';
  *dst = *src;
  dst->key = k;
  dst->value = v;
  return 0;
}

/* Applies a PUT (insert or update) or DELETE to the candidate set. */
static int cands_apply(cetcd_observer_t *o, const cetcd_watch_event_t *ev) {
  size_t i = 0;
  while (i < o->n &&
         !(o->cands[i].key_len == ev->kv.key_len && !memcmp(o->cands[i].key, ev->kv.key, ev->kv.key_len)))
    i++;
  if (ev->type == CETCD_EVENT_DELETE) {
    if (i < o->n) {
      free(o->cands[i].key);
      free(o->cands[i].value);
      o->cands[i] = o->cands[--o->n];
    }
    return 0;
  }
  cetcd_kv_t nk;
  if (kv_copy(&nk, &ev->kv)) return CETCD_ENOMEM;
  if (i < o->n) {
    free(o->cands[i].key);
    free(o->cands[i].value);
    o->cands[i] = nk;
    return 0;
  }
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 8;
    cetcd_kv_t *c = realloc(o->cands, cap * sizeof *c);
    if (!c) {
      free(nk.key);
      free(nk.value);
      return CETCD_ENOMEM;
    }
    o->cands = c;
    o->cap = cap;
  }
  o->cands[o->n++] = nk;
  return 0;
}

static const cetcd_kv_t *cands_leader(const cetcd_observer_t *o) {
  const cetcd_kv_t *best = NULL;
  for (size_t i = 0; i < o->n; i++)
    if (!best || o->cands[i].create_revision < best->create_revision) best = &o->cands[i];
  return best;
}

static void drop_watch(cetcd_observer_t *o) {
  if (o->batch) cetcd_watch_batch_free(o->batch);
  o->batch = NULL;
  if (o->w) {
    epoll_ctl(o->epfd, EPOLL_CTL_DEL, cetcd_watch_fd(o->w), NULL);
    cetcd_watch_free(o->w);
    o->w = NULL;
  }
}

/* Reads every candidate and starts the prefix watch right after that read. */
static int resync(cetcd_observer_t *o) {
  drop_watch(o);
  cetcd_get_opts_t go = {.prefix = true, .sort_order = CETCD_SORT_ASCEND, .sort_target = CETCD_SORT_CREATE};
  cetcd_get_result_t *g = NULL;
  int rc = cetcd_get(o->e->client, o->e->pfx, o->e->pfxlen, &go, &g);
  if (rc) return rc;
  cands_clear(o);
  for (size_t i = 0; i < g->n_kvs && !rc; i++) {
    cetcd_watch_event_t ev = {.type = CETCD_EVENT_PUT, .kv = g->kvs[i]};
    rc = cands_apply(o, &ev);
  }
  int64_t rev = g->header.revision;
  cetcd_get_result_free(g);
  if (rc) return rc;
  o->rev = rev;
  cetcd_watch_opts_t wo = {.prefix = true, .start_revision = rev + 1};
  rc = cetcd_watch_open(o->e->client, o->e->pfx, o->e->pfxlen, &wo, &o->w);
  if (rc) return rc;
  struct epoll_event ee = {.events = EPOLLIN};
  if (epoll_ctl(o->epfd, EPOLL_CTL_ADD, cetcd_watch_fd(o->w), &ee) < 0) {
    rc = -errno;
    drop_watch(o);
  }
  return rc;
}

int cetcd_election_observe(cetcd_election_t *e, cetcd_observer_t **out) {
  if (!out) return CETCD_EINVAL;
  *out = NULL;
  if (!e) return CETCD_EINVAL;
  cetcd_observer_t *o = calloc(1, sizeof *o);
  if (!o) return CETCD_ENOMEM;
  o->e = e;
  o->epfd = epoll_create1(EPOLL_CLOEXEC);
  o->pend_fd = conc_eventfd();
  int rc = o->epfd < 0 ? -errno : o->pend_fd;
  if (rc >= 0) {
    struct epoll_event ee = {.events = EPOLLIN};
    rc = epoll_ctl(o->epfd, EPOLL_CTL_ADD, o->pend_fd, &ee) < 0 ? -errno : 0;
  }
  if (!rc) rc = resync(o);
  if (rc) {
    cetcd_observer_free(o);
    return rc;
  }
  conc_signal(o->pend_fd); /* the initial state is news */
  *out = o;
  return 0;
}

int cetcd_observer_fd(const cetcd_observer_t *o) { return o ? o->epfd : -1; }

/* If the candidate set's leader differs from the last reported state, reports it. */
static int report_if_changed(cetcd_observer_t *o, cetcd_leader_t **out) {
  const cetcd_kv_t *l = cands_leader(o);
  if (o->reported && o->last_has == (l != NULL) &&
      (!l || (l->create_revision == o->last_crev && l->mod_revision == o->last_mrev &&
              l->key_len == o->last_klen && !memcmp(l->key, o->last_key, l->key_len))))
    return CETCD_ETIMEOUT; /* nothing new */
  char *k = NULL;
  if (l) {
    k = malloc(l->key_len + 1);
    if (!k) return CETCD_ENOMEM;
    memcpy(k, l->key, l->key_len);
  }
  int rc = leader_make(l, o->rev, out);
  if (rc) {
    free(k);
    return rc;
  }
  free(o->last_key);
  o->last_key = k;
  o->last_klen = l ? l->key_len : 0;
  o->last_has = l != NULL;
  o->last_crev = l ? l->create_revision : 0;
  o->last_mrev = l ? l->mod_revision : 0;
  o->reported = true;
  return 0;
}

int cetcd_observer_next(cetcd_observer_t *o, int timeout_ms, cetcd_leader_t **out) {
  if (!out) return CETCD_EINVAL;
  *out = NULL;
  if (!o) return CETCD_EINVAL;
  int64_t deadline = conc_deadline(timeout_ms);
  conc_drain(o->pend_fd);
  for (;;) {
    /* Apply the buffered batch one revision at a time, reporting after each. */
    while (o->batch && o->bi < o->batch->n_events) {
      int64_t rev = o->batch->events[o->bi].kv.mod_revision;
      while (o->bi < o->batch->n_events && o->batch->events[o->bi].kv.mod_revision == rev) {
        int rc = cands_apply(o, &o->batch->events[o->bi]);
        if (rc) return rc; /* retried on the next call: the event stays unapplied */
        o->bi++;
      }
      o->rev = rev;
      int rc = report_if_changed(o, out);
      if (rc != CETCD_ETIMEOUT) {
        if (o->bi < o->batch->n_events) conc_signal(o->pend_fd);
        return rc;
      }
    }
    if (o->batch) {
      cetcd_watch_batch_free(o->batch);
      o->batch = NULL;
    }
    int rc = report_if_changed(o, out); /* initial state, or after a resync */
    if (rc != CETCD_ETIMEOUT) return rc;
    if (!o->w) {
      rc = resync(o);
      if (rc) return rc;
      continue;
    }
    int wait_ms = -1;
    if (deadline >= 0) {
      int64_t left = deadline - conc_now_ms();
      wait_ms = left <= 0 ? 0 : left > 1000000 ? 1000000 : (int)left;
    }
    cetcd_watch_event_batch_t *b = NULL;
    rc = cetcd_watch_next(o->w, wait_ms, &b);
    if (rc == CETCD_ETIMEOUT) {
      if (deadline >= 0 && conc_now_ms() >= deadline) return CETCD_ETIMEOUT;
      continue;
    }
    if (rc == CETCD_ECANCELED || (!rc && b->canceled)) {
      cetcd_watch_batch_free(b);
      drop_watch(o); /* compacted or ended: read everything again */
      continue;
    }
    if (rc) return rc;
    if (b->n_events == 0) { /* progress notification */
      cetcd_watch_batch_free(b);
      continue;
    }
    o->batch = b;
    o->bi = 0;
  }
}

void cetcd_observer_free(cetcd_observer_t *o) {
  if (!o) return;
  drop_watch(o);
  cands_clear(o);
  free(o->cands);
  free(o->last_key);
  if (o->pend_fd >= 0) close(o->pend_fd);
  if (o->epfd >= 0) close(o->epfd);
  free(o);
}
