/* cetcd-bench watch-fanout: watch fan-out throughput through libcetcd.
 *
 *   cetcd-bench ENDPOINT watch-fanout PUTS CONNS WATCHES RATE
 *
 * CONNS client objects (connections) each open WATCHES callback watches on the prefix
 * "fanout/" (libcetcd gives every watch its own gRPC Watch stream, so this is CONNS x
 * WATCHES streams); a putter on a connection of its own then writes PUTS keys under the
 * prefix at RATE puts/s with the asynchronous API (at most MAX_INFLIGHT in flight, so the
 * rate holds whatever the put latency; 0 = as fast as that allows). Every put reaches
 * CONNS x WATCHES watches. The run ends when every event arrived (or after a minute of
 * silence, an error). Prints, in the summary format the other modes use, events/s from
 * the first put to the last event, then the responses (batches) received, events per
 * response and this process's CPU time (user+system, putter included) per event. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "cetcd/cetcd.h"

enum { SILENCE_S = 60, MAX_INFLIGHT = 64 };

typedef struct fanout {
  atomic_long events, batches, bad;
  long expected;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  double t_last; /* when the last expected event arrived */
} fanout_t;

/* Seconds on the monotonic clock. */
static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User+system CPU seconds of this process. */
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Watch callback (client I/O thread): counts the events of a batch. */
static void on_batch(void *ctx, cetcd_watch_t *w, const cetcd_watch_event_batch_t *b) {
  (void)w;
  fanout_t *f = ctx;
  if (b->canceled) {
    atomic_fetch_add(&f->bad, 1);
    pthread_cond_signal(&f->cv);
    return;
  }
  if (!b->n_events) return;
  atomic_fetch_add(&f->batches, 1);
  long n = atomic_fetch_add(&f->events, (long)b->n_events) + (long)b->n_events;
  if (n >= f->expected) {
    pthread_mutex_lock(&f->mu);
    f->t_last = mono();
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
  }
}

/* Connects one client to ep. Returns NULL (and says why) on failure. */
static cetcd_client_t *connect_one(const char *ep) {
  const char *eps[] = {ep};
  cetcd_client_opts_t o = {0};
  o.endpoints = eps;
  o.n_endpoints = 1;
  o.dial_timeout_ms = 5000;
  o.request_timeout_ms = 10000;
  cetcd_client_t *c = NULL;
  int rc = cetcd_client_new(&o, &c);
  if (rc) fprintf(stderr, "cetcd-bench: cannot connect to %s: %s\n", ep, cetcd_strerror(rc));
  return c;
}

/* Puts in flight, so that the putter keeps its rate whatever the put latency. */
typedef struct putter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int inflight;
  int errors;
} putter_t;

/* Completion of an asynchronous put (client I/O thread). */
static void on_put(void *ctx, int rc, cetcd_put_result_t *r) {
  putter_t *p = ctx;
  cetcd_put_result_free(r);
  pthread_mutex_lock(&p->mu);
  p->inflight--;
  if (rc) p->errors++;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* Writes puts keys under the prefix at rate puts/s (0 = as fast as MAX_INFLIGHT allows),
 * asynchronously, and waits for every answer. Returns the failures. */
static int put_paced(cetcd_client_t *c, long puts, long rate) {
  putter_t p = {.inflight = 0};
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  double t0 = mono();
  char key[32];
  for (long i = 0; i < puts; i++) {
    if (rate > 0) {
      double wait = t0 + (double)i / (double)rate - mono();
      if (wait > 0) {
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
      }
    }
    pthread_mutex_lock(&p.mu);
    while (p.inflight >= MAX_INFLIGHT) pthread_cond_wait(&p.cv, &p.mu);
    p.inflight++;
    pthread_mutex_unlock(&p.mu);
    int klen = snprintf(key, sizeof(key), "fanout/%ld", i % 16);
    if (cetcd_put_async(c, key, (size_t)klen, "data", 4, NULL, on_put, &p)) {
      pthread_mutex_lock(&p.mu);
      p.inflight--;
      p.errors++;
      pthread_mutex_unlock(&p.mu);
    }
  }
  pthread_mutex_lock(&p.mu);
  while (p.inflight > 0) pthread_cond_wait(&p.cv, &p.mu);
  int errors = p.errors;
  pthread_mutex_unlock(&p.mu);
  pthread_cond_destroy(&p.cv);
  pthread_mutex_destroy(&p.mu);
  return errors;
}

int bench_fanout(const char *ep, int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: cetcd-bench ENDPOINT watch-fanout PUTS CONNS WATCHES RATE\n");
    return 2;
  }
  long puts = atol(argv[0]), rate = atol(argv[3]);
  int conns = atoi(argv[1]), per = atoi(argv[2]);
  if (puts <= 0 || conns <= 0 || per <= 0 || rate < 0) return 2;
  fanout_t f = {.expected = puts * conns * per};
  pthread_mutex_init(&f.mu, NULL);
  pthread_cond_init(&f.cv, NULL);
  cetcd_client_t **cl = calloc((size_t)conns + 1, sizeof(*cl));
  cetcd_watch_t **ws = calloc((size_t)conns * (size_t)per, sizeof(*ws));
  int rc = 1;
  for (int i = 0; i <= conns; i++)
    if (!(cl[i] = connect_one(ep))) goto out;
  cetcd_watch_opts_t wo = {.prefix = true};
  for (int i = 0; i < conns * per; i++) {
    int wrc = cetcd_watch(cl[i % conns], "fanout/", 7, &wo, on_batch, &f, &ws[i]);
    if (wrc) {
      fprintf(stderr, "cetcd-bench: watch failed: %s\n", cetcd_strerror(wrc));
      goto out;
    }
  }
  double c0 = cpu_s(), t0 = mono();
  int errors = put_paced(cl[conns], puts, rate);
  pthread_mutex_lock(&f.mu);
  long seen = atomic_load(&f.events);
  while (atomic_load(&f.events) < f.expected && !atomic_load(&f.bad)) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += SILENCE_S;
    if (pthread_cond_timedwait(&f.cv, &f.mu, &dl) != ETIMEDOUT) continue;
    long n = atomic_load(&f.events);
    if (n == seen) break; /* a whole silence window without an event */
    seen = n;
  }
  double t_end = f.t_last;
  pthread_mutex_unlock(&f.mu);
  double cpu = cpu_s() - c0;
  long ev = atomic_load(&f.events), nb = atomic_load(&f.batches);
  if (ev < f.expected || atomic_load(&f.bad) || errors) {
    fprintf(stderr, "cetcd-bench: %ld of %ld events, %ld watches ended, %d failed puts\n", ev, f.expected,
            (long)atomic_load(&f.bad), errors);
    goto out;
  }
  printf("Requests/sec:\t%.1f\n", (double)ev / (t_end - t0));
  printf("events: %ld in %.3f s, responses: %ld, events per response: %.2f\n", ev, t_end - t0, nb,
         (double)ev / (double)(nb ? nb : 1));
  printf("client CPU per event: %.3f us\nerrors: 0\n", cpu / (double)ev * 1e6);
  rc = 0;
out:
  for (int i = 0; i < conns * per; i++) cetcd_watch_free(ws[i]);
  for (int i = 0; i <= conns; i++) cetcd_client_free(cl[i]);
  free(ws);
  free(cl);
  pthread_cond_destroy(&f.cv);
  pthread_mutex_destroy(&f.mu);
  return rc;
}
