/* Internals of the gRPC client transport (grpc_client.h), shared by its files: stream.c
 * (streams and the HTTP/2 session callbacks), conn.c (connections: one socket, TLS and
 * nghttp2 session each), failover.c (endpoints and channels), io_thread.c (the I/O thread,
 * task hand-off, client lifecycle) and unary.c (unary calls). Private to this folder. */
#ifndef CETCD_CLIENT_TRANSPORT_INT_H
#define CETCD_CLIENT_TRANSPORT_INT_H

#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "client/transport/grpc_client.h"
#include "client/transport/grpc_client_tls.h"
#include "grpc/grpc_frame.h"

/* The server's copy (see grpc_client.h) renames the internal names as well. */
#ifdef GRPC_CLIENT_PEER_COPY
#define gc_channel_dial peer_gc_channel_dial
#define gc_channel_kick peer_gc_channel_kick
#define gc_channel_on_failure peer_gc_channel_on_failure
#define gc_channel_on_ready peer_gc_channel_on_ready
#define gc_flush_deferred peer_gc_flush_deferred
#define gc_free_endpoints peer_gc_free_endpoints
#define gc_parse_endpoint peer_gc_parse_endpoint
#define gc_run_calls peer_gc_run_calls
#define gc_stream_callbacks_new peer_gc_stream_callbacks_new
#define gc_stream_finish peer_gc_stream_finish
#define gc_stream_submit peer_gc_stream_submit
#define gc_transport_fail peer_gc_transport_fail
#define gc_transport_flush peer_gc_transport_flush
#endif

enum {
  READ_BUF = 64 * 1024,
  BACKOFF_MIN_MS = 50,
  BACKOFF_MAX_MS = 2000,
  STREAM_WINDOW = 4 * 1024 * 1024,
  CONN_WINDOW = 16 * 1024 * 1024,
};

/* ===================================================================================== */
/* Types                                                                                 */
/* ===================================================================================== */

typedef struct endpoint {
  char *hostport; /* "host:port" */
  char *host;     /* without brackets */
  char *port;
  bool tls; /* connect with TLS */
} endpoint_t;

typedef struct transport transport_t;
typedef struct channel channel_t;

enum stream_state { ST_PENDING, ST_ACTIVE, ST_DONE };

struct grpc_cstream {
  grpc_client_t *gc;
  channel_t *ch;
  transport_t *tr; /* set while ACTIVE */
  enum stream_state state;
  struct grpc_cstream *prev, *next; /* in ch->pending or tr->active */
  const grpc_cstream_cbs_t *cbs;
  void *ctx;
  char *path;
  int32_t id;
  uint64_t deadline; /* absolute ms, 0 = none */
  uint64_t idle_ms;
  uint64_t last_rx;
  uv_timer_t timer;
  bool timer_on;
  /* sending */
  uint8_t *out;
  size_t out_len, out_cap, out_off;
  bool out_eof;  /* half-close after out */
  bool deferred; /* data provider returned DEFERRED */
  /* receiving */
  int http_status;
  int grpc_status; /* -1 = not seen */
  char message[512];
  uint8_t hdr[GRPC_FRAME_PREFIX];
  size_t hdr_len;
  bool in_body;
  uint32_t msg_len;
  uint8_t *body;
  size_t body_len, body_cap;
};

struct transport {
  grpc_client_t *gc;
  channel_t *ch; /* NULL once detached (draining or failed) */
  size_t ep;
  uv_tcp_t tcp;
  uv_getaddrinfo_t gai;
  struct addrinfo *addrs;     /* resolved addresses of a named endpoint (owned), or NULL */
  struct addrinfo *next_addr; /* the address to try when the current connect fails */
  uv_connect_t conn_req;
  bool gai_pending, tcp_inited, tcp_closing, connecting;
  bool ready;  /* session created, settings sent */
  bool goaway; /* peer sent GOAWAY: no new streams */
  bool failed;
  bool in_recv; /* inside nghttp2_session_mem_recv: defer flushes and session_del */
  nghttp2_session *session;
  grpc_cstream_t *active; /* streams submitted on this transport */
  uint8_t *rbuf;
  uint8_t *wbuf; /* reused staging buffer of transport_flush */
  size_t wcap;
  bool need_flush; /* a flush was deferred while the I/O thread batches submissions */
  struct transport *next_draining;
  grpc_tls_conn_t *tls; /* TLS state (TLS endpoints), or NULL */
  bool tls_done;        /* handshake finished */
};

struct channel {
  grpc_client_t *gc;
  int fixed; /* -1 failover, else endpoint index */
  size_t ep; /* current endpoint */
  transport_t *tr;
  grpc_cstream_t *pending;
  uv_timer_t timer; /* dial timeout / backoff */
  bool timer_inited;
  bool backing_off;
  bool want; /* keep (re)connecting even without pending streams */
  size_t fails_in_round;
  uint64_t backoff_ms;
  char last_error[160];
};

/* An asynchronous (or blocking, then caller-owned) unary call on its way to the I/O thread. */
typedef struct acall {
  struct acall *next;
  grpc_client_t *gc;
  const char *path;
  int channel;
  uint64_t timeout_ms;
  uint8_t *req; /* framed (owned) when req_owned, else the bare message (borrowed) */
  size_t req_len;
  bool req_owned;
  bool heap; /* freed after done */
  grpc_unary_done_fn done;
  void *ctx;
  uint8_t *resp;
  size_t resp_len;
  int err;
} acall_t;

typedef struct task {
  void (*fn)(grpc_client_t *gc, void *arg);
  void *arg;
  bool done;
  struct task *next;
} task_t;

struct grpc_client {
  grpc_client_mem_t mem;
  endpoint_t *eps;
  size_t n_eps;
  int dial_timeout_ms;
  size_t max_recv;
  uv_loop_t loop;
  uv_async_t wake;
  uv_thread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cond; /* task completion and readiness changes */
  task_t *tasks, *tasks_tail;
  acall_t *calls, *calls_tail; /* queued unary calls (under mu) */
  bool wake_pending;           /* uv_async_send done, I/O thread has not taken the queues yet */
  bool batch;                  /* I/O thread: defer transport flushes (coalesced writes) */
  bool closing;                /* no more tasks accepted */
  bool stopping;               /* I/O thread is tearing down */
  size_t current;              /* failover channel's endpoint (under mu for readers) */
  bool ready;                  /* failover channel connected (under mu) */
  channel_t *channels;         /* [0] failover, [1 + k] endpoint k */
  transport_t *draining;
  size_t live_transports;
  nghttp2_session_callbacks *cbs;
  nghttp2_mem ngmem;
  const grpc_tls_ops_t *tls_ops; /* NULL: no TLS support */
  grpc_tls_ctx_t *tls_ctx;
  bool tls_default; /* endpoints without a scheme use TLS */
  char *token;      /* auth token sent as metadata (I/O thread only), or NULL */
};

/* ===================================================================================== */
/* Small helpers                                                                         */
/* ===================================================================================== */

/* Monotonic clock in milliseconds. */
static inline uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Copies n bytes of s into a new NUL-terminated string (gc's allocator), or NULL. */
static inline char *gc_strndup(grpc_client_t *gc, const char *s, size_t n) {
  char *p = gc->mem.malloc_fn(n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

/* Grows *p (cap *cap) to hold need bytes. Returns false on allocation failure. */
static inline bool grow(grpc_client_t *gc, uint8_t **p, size_t *cap, size_t need) {
  if (need <= *cap) return true;
  size_t c = *cap ? *cap : 256;
  while (c < need) c *= 2;
  uint8_t *n = gc->mem.realloc_fn(*p, c);
  if (!n) return false;
  *p = n;
  *cap = c;
  return true;
}

/* ===================================================================================== */
/* Functions shared between the files (I/O thread only, unless said otherwise)            */
/* ===================================================================================== */

/* stream.c */
/* Ends s with the given outcome: calls on_close, then releases it. */
void gc_stream_finish(grpc_cstream_t *s, int err, int status, const char *msg, bool sent);
/* Submits pending stream s on transport tr (a failure finishes s). */
void gc_stream_submit(transport_t *tr, grpc_cstream_t *s);
/* The nghttp2 callbacks of every session (header, data, stream close, frame received).
 * Returns 0 or CETCD_ENOMEM. */
int gc_stream_callbacks_new(nghttp2_session_callbacks **out);

/* conn.c */
/* Sends what the session of tr has to send (deferred while the I/O thread batches). */
void gc_transport_flush(transport_t *tr);
/* Tears tr down: fails its streams, closes the socket, and lets the channel (if still
 * attached) fail over or report the failure (why says why). */
void gc_transport_fail(transport_t *tr, const char *why);
/* Starts a new connection attempt of ch to its current endpoint. */
void gc_channel_dial(channel_t *ch);

/* failover.c */
/* Parses one endpoint string into e. Returns 0, CETCD_EINVAL or CETCD_ENOMEM. */
int gc_parse_endpoint(grpc_client_t *gc, const char *s, endpoint_t *e);
/* Frees gc's endpoints (any thread, once the I/O thread is gone). */
void gc_free_endpoints(grpc_client_t *gc);
/* Ensures ch is connected or connecting if it has work. */
void gc_channel_kick(channel_t *ch);
/* ch's connection is ready: submits its pending streams. */
void gc_channel_on_ready(channel_t *ch);
/* ch's connection failed (why): fails over, backs off, or fails what waits. */
void gc_channel_on_failure(channel_t *ch, const char *why);

/* io_thread.c */
/* Flushes every transport whose flush was deferred by the batch. */
void gc_flush_deferred(grpc_client_t *gc);

/* unary.c */
/* Opens every queued call of list, with one socket write per connection for the batch. */
void gc_run_calls(grpc_client_t *gc, acall_t *list);

#endif
