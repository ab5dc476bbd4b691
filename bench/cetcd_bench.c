/* cetcd-bench: a small load generator on libcetcd, to compare the C client's cost with
 * etcd's Go benchmark tool on the same server and workload.
 *
 *   cetcd-bench ENDPOINT put   TOTAL CLIENTS CONNS [VAL_SIZE] [KEY_SPACE]
 *   cetcd-bench ENDPOINT range TOTAL CLIENTS CONNS [serializable:0|1]
 *   cetcd-bench ENDPOINT put-async   TOTAL INFLIGHT CONNS [VAL_SIZE] [KEY_SPACE]
 *   cetcd-bench ENDPOINT range-async TOTAL INFLIGHT CONNS [serializable:0|1]
 *   cetcd-bench ENDPOINT watch-fanout PUTS CONNS WATCHES RATE   (see fanout.c)
 *
 * put/range: CLIENTS threads share CONNS client objects (connections) round-robin and
 * issue TOTAL blocking requests in all. The -async modes use the asynchronous API: one
 * thread per connection starts INFLIGHT/CONNS requests, and each completion callback
 * issues the next one, so INFLIGHT requests stay in flight until TOTAL are done. Prints requests/s, p50/p99
 * latency and this process's CPU time per request (user+system from getrusage). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "cetcd/cetcd.h"

typedef struct worker {
  cetcd_client_t *client;
  int put;
  int serializable;
  size_t val_size;
  long key_space;
  atomic_long *left;
  double *lat; /* this worker's latencies, seconds */
  size_t n;
  size_t cap;
  int errors;
  unsigned seed;
} worker_t;

/* Seconds on the monotonic clock. */
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Issues requests until the shared budget runs out. */
static void *run(void *arg) {
  worker_t *w = arg;
  char *val = malloc(w->val_size + 1);
  memset(val, 'v', w->val_size);
  char key[32];
  while (atomic_fetch_sub(w->left, 1) > 0) {
    int klen = snprintf(key, sizeof(key), "%08ld", (long)(rand_r(&w->seed) % w->key_space));
    double t0 = now();
    int rc;
    if (w->put) {
      rc = cetcd_put(w->client, key, (size_t)klen, val, w->val_size, NULL, NULL);
    } else {
      cetcd_get_opts_t o = {0};
      o.serializable = w->serializable != 0;
      cetcd_get_result_t *r = NULL;
      rc = cetcd_get(w->client, "key", 3, &o, &r);
      cetcd_get_result_free(r);
    }
    double dt = now() - t0;
    if (rc) w->errors++;
    if (w->n == w->cap) {
      w->cap = w->cap ? w->cap * 2 : 1024;
      w->lat = realloc(w->lat, w->cap * sizeof(double));
    }
    w->lat[w->n++] = dt;
  }
  free(val);
  return NULL;
}

/* ---- asynchronous modes ---- */

typedef struct aconn aconn_t;

typedef struct slot {
  aconn_t *conn;
  double t0;
  unsigned seed; /* per slot: a slot is used by one thread at a time */
} slot_t;

struct aconn {
  worker_t w; /* client, options, latencies, errors (touched on the I/O thread only) */
  char *val;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int inflight;
  atomic_int start_errors; /* requests that could not be started (any thread) */
};

static void async_issue(slot_t *sl);

static void async_finish(slot_t *sl, int rc) {
  aconn_t *a = sl->conn;
  worker_t *w = &a->w;
  double dt = now() - sl->t0;
  if (rc) w->errors++;
  if (w->n == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 1024;
    w->lat = realloc(w->lat, w->cap * sizeof(double));
  }
  w->lat[w->n++] = dt;
  async_issue(sl);
}

static void on_get(void *ctx, int rc, cetcd_get_result_t *r) {
  cetcd_get_result_free(r);
  async_finish(ctx, rc);
}

static void on_put(void *ctx, int rc, cetcd_put_result_t *r) {
  cetcd_put_result_free(r);
  async_finish(ctx, rc);
}

/* Starts the next request of slot sl, or retires the slot when the budget is spent. */
static void async_issue(slot_t *sl) {
  aconn_t *a = sl->conn;
  worker_t *w = &a->w;
  for (;;) {
    if (atomic_fetch_sub(w->left, 1) <= 0) break;
    sl->t0 = now();
    int rc;
    if (w->put) {
      char key[32];
      int klen = snprintf(key, sizeof(key), "%08ld", (long)(rand_r(&sl->seed) % w->key_space));
      rc = cetcd_put_async(w->client, key, (size_t)klen, a->val, w->val_size, NULL, on_put, sl);
    } else {
      cetcd_get_opts_t o = {0};
      o.serializable = w->serializable != 0;
      rc = cetcd_get_async(w->client, "key", 3, &o, on_get, sl);
    }
    if (rc == 0) return;
    atomic_fetch_add(&a->start_errors, 1); /* not started: count it and try the next one */
  }
  pthread_mutex_lock(&a->mu);
  if (--a->inflight == 0) pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
}

/* Driver of one connection: fills its window and waits for the budget to run out. */
static void *run_async(void *arg) {
  aconn_t *a = arg;
  int window = a->inflight;
  slot_t *slots = calloc((size_t)window, sizeof(*slots));
  for (int i = 0; i < window; i++) {
    slots[i].conn = a;
    slots[i].seed = a->w.seed + (unsigned)i * 104729u;
  }
  for (int i = 0; i < window; i++) async_issue(&slots[i]);
  pthread_mutex_lock(&a->mu);
  while (a->inflight > 0) pthread_cond_wait(&a->cv, &a->mu);
  pthread_mutex_unlock(&a->mu);
  free(slots);
  return NULL;
}

/* qsort comparator for doubles. */
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[2], "watch-fanout")) return bench_fanout(argv[1], argc - 3, argv + 3);
  if (argc < 6) {
    fprintf(stderr,
            "usage: %s ENDPOINT put|range|put-async|range-async TOTAL CLIENTS|INFLIGHT CONNS "
            "[VAL_SIZE|SERIALIZABLE] [KEY_SPACE]\n"
            "       %s ENDPOINT watch-fanout PUTS CONNS WATCHES RATE\n",
            argv[0], argv[0]);
    return 2;
  }
  const char *ep = argv[1];
  int put = !strcmp(argv[2], "put") || !strcmp(argv[2], "put-async");
  int async = !!strstr(argv[2], "-async");
  long total = atol(argv[3]);
  int clients = atoi(argv[4]), conns = atoi(argv[5]);
  if (total <= 0 || clients <= 0 || conns <= 0) return 2;
  size_t val_size = put && argc > 6 ? (size_t)atol(argv[6]) : 256;
  int serializable = !put && argc > 6 ? atoi(argv[6]) : 0;
  long key_space = argc > 7 ? atol(argv[7]) : 100000;
  cetcd_client_t **cl = calloc((size_t)conns, sizeof(*cl));
  const char *eps[] = {ep};
  for (int i = 0; i < conns; i++) {
    cetcd_client_opts_t o = {0};
    o.endpoints = eps;
    o.n_endpoints = 1;
    o.dial_timeout_ms = 5000;
    o.request_timeout_ms = 10000;
    int rc = cetcd_client_new(&o, &cl[i]);
    if (rc) {
      fprintf(stderr, "cetcd-bench: cannot connect to %s: %s\n", ep, cetcd_strerror(rc));
      return 1;
    }
  }
  atomic_long left = total;
  if (async && clients < conns) clients = conns;
  worker_t *ws = calloc((size_t)clients, sizeof(*ws));
  pthread_t *th = calloc((size_t)clients, sizeof(*th));
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  double t0 = now();
  aconn_t *ac = NULL;
  if (async) {
    /* one driver per connection; the window is split over the connections */
    ac = calloc((size_t)conns, sizeof(*ac));
    char *val = malloc(val_size + 1);
    memset(val, 'v', val_size);
    for (int i = 0; i < conns; i++) {
      ac[i].w = (worker_t){.client = cl[i],
                           .put = put,
                           .serializable = serializable,
                           .val_size = val_size,
                           .key_space = key_space,
                           .left = &left,
                           .seed = (unsigned)i * 7919u + 1};
      ac[i].val = val;
      ac[i].inflight = clients / conns + (i < clients % conns);
      pthread_mutex_init(&ac[i].mu, NULL);
      pthread_cond_init(&ac[i].cv, NULL);
      pthread_create(&th[i], NULL, run_async, &ac[i]);
    }
    for (int i = 0; i < conns; i++) pthread_join(th[i], NULL);
    free(val);
    /* report through the per-worker arrays below */
    for (int i = 0; i < conns; i++) {
      ws[i] = ac[i].w;
      ws[i].errors += atomic_load(&ac[i].start_errors);
    }
    for (int i = conns; i < clients; i++) ws[i] = (worker_t){0};
  } else {
    for (int i = 0; i < clients; i++) {
      ws[i] = (worker_t){.client = cl[i % conns],
                         .put = put,
                         .serializable = serializable,
                         .val_size = val_size,
                         .key_space = key_space,
                         .left = &left,
                         .seed = (unsigned)i * 7919u + 1};
      pthread_create(&th[i], NULL, run, &ws[i]);
    }
    for (int i = 0; i < clients; i++) pthread_join(th[i], NULL);
  }
  double wall = now() - t0;
  getrusage(RUSAGE_SELF, &ru1);
  size_t n = 0;
  int errors = 0;
  for (int i = 0; i < clients; i++) n += ws[i].n, errors += ws[i].errors;
  double *all = malloc(n * sizeof(double));
  size_t k = 0;
  for (int i = 0; i < clients; i++) {
    memcpy(all + k, ws[i].lat, ws[i].n * sizeof(double));
    k += ws[i].n;
    free(ws[i].lat);
  }
  qsort(all, n, sizeof(double), cmp_double);
  double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
               (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
               ((double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
                (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec)) /
                   1e6;
  printf("Requests/sec:\t%.1f\n", (double)n / wall);
  printf("50%% in %.6f secs.\n99%% in %.6f secs.\n", all[n / 2], all[(size_t)((double)n * 0.99)]);
  printf("client CPU per request: %.2f us\nerrors: %d\n", cpu / (double)n * 1e6, errors);
  free(all);
  for (int i = 0; i < conns; i++) cetcd_client_free(cl[i]);
  free(cl);
  free(ws);
  free(th);
  free(ac);
  return errors ? 1 : 0;
}
