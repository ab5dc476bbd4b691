/* libcetcd concurrency: sessions (a lease with keep-alive) and the helpers shared by the
 * mutex and election recipes. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "client/concurrency/conc_int.h"

enum { DEFAULT_TTL = 60 };

/* ---- helpers ------------------------------------------------------------------------------ */

int64_t conc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t conc_deadline(int timeout_ms) { return timeout_ms < 0 ? -1 : conc_now_ms() + timeout_ms; }

int conc_keys(const char *prefix, int64_t lease, char **pfx, size_t *pfxlen, char **key, size_t *keylen) {
  if (!prefix) return CETCD_EINVAL;
  size_t n = strlen(prefix);
  char *p = malloc(n + 2);
  if (!p) return CETCD_ENOMEM;
  memcpy(p, prefix, n);
  p[n] = '/';
  p[n + 1] = '\0';
  char *k = NULL;
  int kl = 0;
  if (lease) {
    k = malloc(n + 2 + 17);
    if (!k) {
      free(p);
      return CETCD_ENOMEM;
    }
    kl = snprintf(k, n + 2 + 17, "%s%" PRIx64, p, (uint64_t)lease);
  }
  *pfx = p;
  *pfxlen = n + 1;
  if (key) *key = k;
  if (keylen) *keylen = (size_t)kl;
  return 0;
}

int conc_eventfd(void) {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

void conc_signal(int fd) {
  uint64_t one = 1;
  while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void conc_drain(int fd) {
  uint64_t v;
  while (read(fd, &v, sizeof v) < 0 && errno == EINTR) {
  }
}

void conc_first_created_opts(cetcd_get_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->prefix = true;
  o->limit = 1;
  o->sort_order = CETCD_SORT_ASCEND;
  o->sort_target = CETCD_SORT_CREATE;
}

/* Waits for a DELETE of key at a revision > rev, or an end condition. 0 means "look
 * again" (deleted, or the watch ended and the caller must re-read). */
static int wait_delete(cetcd_session_t *s, const char *key, size_t klen, int64_t rev, int64_t deadline,
                       int cancel_fd) {
  cetcd_watch_opts_t wo = {.start_revision = rev + 1, .no_put = true};
  cetcd_watch_t *w = NULL;
  int rc = cetcd_watch_open(s->client, key, klen, &wo, &w);
  if (rc) return rc;
  for (;;) {
    int wait_ms = -1;
    if (deadline >= 0) {
      int64_t left = deadline - conc_now_ms();
      if (left <= 0) {
        rc = CETCD_ETIMEOUT;
        break;
      }
      wait_ms = left > 1000000 ? 1000000 : (int)left;
    }
    struct pollfd pf[3] = {{.fd = cetcd_watch_fd(w), .events = POLLIN},
                           {.fd = s->lost_fd, .events = POLLIN},
                           {.fd = cancel_fd, .events = POLLIN}};
    int n = poll(pf, cancel_fd >= 0 ? 3 : 2, wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      rc = -errno;
      break;
    }
    if (cancel_fd >= 0 && (pf[2].revents & POLLIN)) {
      rc = CETCD_ECANCELED;
      break;
    }
    if (pf[1].revents & POLLIN) {
      rc = CETCD_ESESSIONEXPIRED;
      break;
    }
    if (!(pf[0].revents & (POLLIN | POLLERR | POLLHUP))) continue;
    cetcd_watch_event_batch_t *b = NULL;
    rc = cetcd_watch_next(w, 0, &b);
    if (rc == CETCD_ETIMEOUT) continue;
    if (rc == CETCD_ECANCELED) {
      rc = 0; /* the watch ended: re-read */
      break;
    }
    if (rc) break;
    bool done = false;
    if (b->canceled) {
      done = true;
      if (b->err != CETCD_ECOMPACTED) rc = b->err ? b->err : CETCD_ECANCELED;
    }
    for (size_t i = 0; i < b->n_events; i++)
      if (b->events[i].type == CETCD_EVENT_DELETE) done = true;
    cetcd_watch_batch_free(b);
    if (done) break;
  }
  cetcd_watch_free(w);
  return rc;
}

int conc_wait_deletes(cetcd_session_t *s, const char *pfx, size_t pfxlen, int64_t max_rev, int64_t deadline,
                      int cancel_fd) {
  if (max_rev <= 0) return 0;
  for (;;) {
    cetcd_get_opts_t o = {.prefix = true,
                          .limit = 1,
                          .keys_only = true,
                          .sort_order = CETCD_SORT_DESCEND,
                          .sort_target = CETCD_SORT_CREATE,
                          .max_create_revision = max_rev};
    cetcd_get_result_t *g = NULL;
    int rc = cetcd_get(s->client, pfx, pfxlen, &o, &g);
    if (rc) return rc;
    if (g->n_kvs == 0) {
      cetcd_get_result_free(g);
      return 0;
    }
    size_t plen = g->kvs[0].key_len;
    char *pred = malloc(plen + 1);
    if (!pred) {
      cetcd_get_result_free(g);
      return CETCD_ENOMEM;
    }
    memcpy(pred, g->kvs[0].key, plen);
    int64_t rev = g->header.revision;
    cetcd_get_result_free(g);
    rc = wait_delete(s, pred, plen, rev, deadline, cancel_fd);
    free(pred);
    if (rc) return rc;
  }
}

int conc_check_key(cetcd_client_t *c, const char *key, size_t keylen, int64_t rev) {
  cetcd_get_opts_t o = {.keys_only = true};
  cetcd_get_result_t *g = NULL;
  int rc = cetcd_get(c, key, keylen, &o, &g);
  if (rc) return rc;
  if (g->n_kvs == 0 || g->kvs[0].create_revision != rev) rc = CETCD_ESESSIONEXPIRED;
  cetcd_get_result_free(g);
  return rc;
}

/* ---- session ------------------------------------------------------------------------------ */

static void session_lost(void *ctx, int64_t lease_id, int err) {
  cetcd_session_t *s = ctx;
  if (atomic_exchange(&s->lost, true)) return;
  if (s->on_lost) s->on_lost(s->ctx, lease_id, err);
  conc_signal(s->lost_fd); /* after the callback: once the fd is readable, it has run */
}

int cetcd_session_new(cetcd_client_t *client, int64_t ttl, const cetcd_session_opts_t *opts,
                      cetcd_session_t **out) {
  if (!out) return CETCD_EINVAL;
  *out = NULL;
  if (!client) return CETCD_EINVAL;
  cetcd_session_t *s = calloc(1, sizeof *s);
  if (!s) return CETCD_ENOMEM;
  s->client = client;
  s->ttl = ttl > 0 ? ttl : DEFAULT_TTL;
  atomic_init(&s->lost, false);
  if (opts) {
    s->on_lost = opts->on_lost;
    s->ctx = opts->ctx;
  }
  s->lost_fd = conc_eventfd();
  if (s->lost_fd < 0) {
    int rc = s->lost_fd;
    free(s);
    return rc;
  }
  int rc = 0;
  bool granted = false;
  if (opts && opts->lease) {
    s->lease = opts->lease;
  } else {
    int64_t got_ttl = 0;
    rc = cetcd_lease_grant(client, s->ttl, 0, &s->lease, &got_ttl);
    if (rc) goto fail;
    granted = true;
    if (got_ttl > 0) s->ttl = got_ttl;
  }
  rc = cetcd_lease_keepalive_start(client, s->lease, session_lost, s, &s->ka);
  if (rc) goto fail;
  if (opts && opts->lease) {
    int64_t t = cetcd_lease_keepalive_ttl(s->ka);
    if (t > 0) s->ttl = t;
  }
  *out = s;
  return 0;
fail:
  if (granted) cetcd_lease_revoke(client, s->lease);
  close(s->lost_fd);
  free(s);
  return rc;
}

int64_t cetcd_session_lease(const cetcd_session_t *s) { return s ? s->lease : 0; }

int64_t cetcd_session_ttl(const cetcd_session_t *s) { return s ? s->ttl : 0; }

cetcd_client_t *cetcd_session_client(const cetcd_session_t *s) { return s ? s->client : NULL; }

bool cetcd_session_done(const cetcd_session_t *s) { return s ? atomic_load(&s->lost) : true; }

int cetcd_session_fd(const cetcd_session_t *s) { return s ? s->lost_fd : -1; }

void cetcd_session_free(cetcd_session_t *s) {
  if (!s) return;
  cetcd_lease_keepalive_stop(s->ka);
  close(s->lost_fd);
  free(s);
}

int cetcd_session_close(cetcd_session_t *s) {
  if (!s) return 0;
  cetcd_lease_keepalive_stop(s->ka);
  s->ka = NULL;
  int rc = cetcd_lease_revoke(s->client, s->lease);
  if (rc == CETCD_ELEASENOTFOUND) rc = 0;
  cetcd_session_free(s);
  return rc;
}
