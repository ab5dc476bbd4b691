/* gRPC client transport: nghttp2 client sessions on a private libuv loop and thread. */
#include "grpc/grpc_client.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "cetcd/errors.h"
#include "grpc/grpc_client_tls.h"
#include "grpc/grpc_frame.h"

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

/* The client whose I/O thread this is (NULL on other threads). */
static _Thread_local grpc_client_t *tl_io_client;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *gc_strndup(grpc_client_t *gc, const char *s, size_t n) {
  char *p = gc->mem.malloc_fn(n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

/* Grows *p (cap *cap) to hold need bytes. Returns false on allocation failure. */
static bool grow(grpc_client_t *gc, uint8_t **p, size_t *cap, size_t need) {
  if (need <= *cap) return true;
  size_t c = *cap ? *cap : 256;
  while (c < need) c *= 2;
  uint8_t *n = gc->mem.realloc_fn(*p, c);
  if (!n) return false;
  *p = n;
  *cap = c;
  return true;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decodes a grpc-message into out (bounded, NUL-terminated, no allocation). */
static void percent_decode(char *out, size_t cap, const uint8_t *s, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 1 < cap; i++) {
    if (s[i] == '%' && i + 2 < n && hexval((char)s[i + 1]) >= 0 && hexval((char)s[i + 2]) >= 0) {
      out[o++] = (char)(hexval((char)s[i + 1]) << 4 | hexval((char)s[i + 2]));
      i += 2;
    } else {
      out[o++] = (char)s[i];
    }
  }
  out[o] = 0;
}

/* Formats a grpc-timeout header value. */
static void timeout_format(uint64_t ms, char out[16]) {
  if (ms < 100000000u)
    snprintf(out, 16, "%llum", (unsigned long long)ms);
  else
    snprintf(out, 16, "%lluS",
             (unsigned long long)((ms + 999) / 1000 > 99999999u ? 99999999u : (ms + 999) / 1000));
}

/* Parses one endpoint string into e. Returns 0, CETCD_EINVAL or CETCD_ENOMEM. */
static int parse_endpoint(grpc_client_t *gc, const char *s, endpoint_t *e) {
  if (!s) return CETCD_EINVAL;
  e->tls = gc->tls_default;
  if (!strncmp(s, "http://", 7)) {
    s += 7;
    e->tls = false;
  } else if (!strncmp(s, "https://", 8)) {
    s += 8;
    e->tls = true;
    if (!gc->tls_ops) return CETCD_EINVAL; /* no TLS settings given */
  } else if (strstr(s, "://")) {
    return CETCD_EINVAL; /* unix sockets are not supported */
  }
  size_t n = strlen(s);
  while (n && s[n - 1] == '/') n--;
  if (!n) return CETCD_EINVAL;
  const char *hs, *he, *colon;
  if (s[0] == '[') {
    he = memchr(s, ']', n);
    if (!he || he + 1 >= s + n || he[1] != ':') return CETCD_EINVAL;
    hs = s + 1;
    colon = he + 1;
  } else {
    colon = NULL;
    for (size_t i = 0; i < n; i++)
      if (s[i] == ':') colon = s + i;
    if (!colon) return CETCD_EINVAL;
    hs = s;
    he = colon;
  }
  const char *ps = colon + 1;
  size_t plen = (size_t)(s + n - ps);
  if (!plen || plen > 5 || he == hs) return CETCD_EINVAL;
  for (size_t i = 0; i < plen; i++)
    if (ps[i] < '0' || ps[i] > '9') return CETCD_EINVAL;
  e->hostport = gc_strndup(gc, s, n);
  e->host = gc_strndup(gc, hs, (size_t)(he - hs));
  e->port = gc_strndup(gc, ps, plen);
  if (!e->hostport || !e->host || !e->port) return CETCD_ENOMEM;
  return 0;
}

static void free_endpoints(grpc_client_t *gc) {
  for (size_t i = 0; gc->eps && i < gc->n_eps; i++) {
    gc->mem.free_fn(gc->eps[i].hostport);
    gc->mem.free_fn(gc->eps[i].host);
    gc->mem.free_fn(gc->eps[i].port);
  }
  gc->mem.free_fn(gc->eps);
}

/* ---- lists ---------------------------------------------------------------------------- */

static void list_add(grpc_cstream_t **head, grpc_cstream_t *s) {
  s->prev = NULL;
  s->next = *head;
  if (*head) (*head)->prev = s;
  *head = s;
}

static void list_del(grpc_cstream_t **head, grpc_cstream_t *s) {
  if (s->prev)
    s->prev->next = s->next;
  else if (*head == s)
    *head = s->next;
  if (s->next) s->next->prev = s->prev;
  s->prev = s->next = NULL;
}

/* ===================================================================================== */
/* Streams                                                                               */
/* ===================================================================================== */

static void channel_kick(channel_t *ch);
static void transport_flush(transport_t *tr);
static void transport_fail(transport_t *tr, const char *why);
static void stream_submit(transport_t *tr, grpc_cstream_t *s);

static void stream_timer_closed(uv_handle_t *h) {
  grpc_cstream_t *s = h->data;
  grpc_client_t *gc = s->gc;
  gc->mem.free_fn(s->out);
  gc->mem.free_fn(s->body);
  gc->mem.free_fn(s->path);
  gc->mem.free_fn(s);
}

/* Detaches s from its lists and releases it (memory freed after the timer closes). */
static void stream_release(grpc_cstream_t *s) {
  if (s->state == ST_PENDING) {
    list_del(&s->ch->pending, s);
  } else if (s->state == ST_ACTIVE && s->tr) {
    list_del(&s->tr->active, s);
    if (s->tr->session) nghttp2_session_set_stream_user_data(s->tr->session, s->id, NULL);
  }
  s->state = ST_DONE;
  s->tr = NULL;
  uv_close((uv_handle_t *)&s->timer, stream_timer_closed);
}

/* Ends s with the given outcome: calls on_close, then releases. */
static void stream_finish(grpc_cstream_t *s, int err, int status, const char *msg, bool sent) {
  if (s->state == ST_DONE) return;
  enum stream_state st = s->state;
  transport_t *tr = s->tr;
  if (st == ST_PENDING) {
    list_del(&s->ch->pending, s);
  } else if (tr) {
    list_del(&tr->active, s);
    if (tr->session) nghttp2_session_set_stream_user_data(tr->session, s->id, NULL);
  }
  s->state = ST_DONE;
  s->tr = NULL;
  grpc_close_info_t info = {.err = err, .status = status, .message = msg ? msg : "", .sent = sent};
  if (s->cbs->on_close) s->cbs->on_close(s->ctx, s, &info);
  uv_close((uv_handle_t *)&s->timer, stream_timer_closed);
}

static void stream_rearm(grpc_cstream_t *s);

static void stream_timer_cb(uv_timer_t *t) {
  grpc_cstream_t *s = t->data;
  if (s->state == ST_DONE) return;
  uint64_t now = now_ms();
  bool dl = s->deadline && now >= s->deadline;
  bool idle = s->idle_ms && now >= s->last_rx + s->idle_ms;
  if (!dl && !idle) {
    stream_rearm(s);
    return;
  }
  if (s->state == ST_PENDING) {
    char m[256];
    snprintf(m, sizeof m, "no endpoint available: %s",
             s->ch->last_error[0] ? s->ch->last_error : "not connected");
    stream_finish(s, CETCD_EUNAVAILABLE, 14, m, false);
    return;
  }
  transport_t *tr = s->tr;
  if (tr && tr->session) {
    nghttp2_submit_rst_stream(tr->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
  }
  stream_finish(s, CETCD_ETIMEOUT, 4, dl ? "deadline exceeded" : "stream idle timeout", true);
  if (tr) transport_flush(tr);
}

static void stream_rearm(grpc_cstream_t *s) {
  uint64_t at = 0;
  if (s->deadline) at = s->deadline;
  if (s->idle_ms) {
    uint64_t i = s->last_rx + s->idle_ms;
    if (!at || i < at) at = i;
  }
  if (!at) {
    uv_timer_stop(&s->timer);
    return;
  }
  uint64_t now = now_ms();
  uv_timer_start(&s->timer, stream_timer_cb, at > now ? at - now : 0, 0);
}

grpc_cstream_t *grpc_cstream_open(grpc_client_t *gc, const char *path, int channel, uint64_t timeout_ms,
                                  const grpc_cstream_cbs_t *cbs, void *ctx) {
  if (gc->stopping || channel < -1 || channel >= (int)gc->n_eps) return NULL;
  grpc_cstream_t *s = gc->mem.malloc_fn(sizeof(*s));
  if (!s) return NULL;
  memset(s, 0, sizeof(*s));
  s->path = gc_strndup(gc, path, strlen(path));
  if (!s->path) {
    gc->mem.free_fn(s);
    return NULL;
  }
  s->gc = gc;
  s->cbs = cbs;
  s->ctx = ctx;
  s->grpc_status = -1;
  s->last_rx = now_ms();
  s->deadline = timeout_ms ? s->last_rx + timeout_ms : 0;
  uv_timer_init(&gc->loop, &s->timer);
  s->timer.data = s;
  channel_t *ch = &gc->channels[channel + 1];
  s->ch = ch;
  s->state = ST_PENDING;
  list_add(&ch->pending, s);
  stream_rearm(s);
  if (ch->tr && ch->tr->ready && !ch->tr->goaway) {
    stream_submit(ch->tr, s);
    transport_flush(ch->tr);
  } else {
    channel_kick(ch);
  }
  return s;
}

int grpc_cstream_send(grpc_cstream_t *s, const uint8_t *msg, size_t len, bool end) {
  if (s->state == ST_DONE || s->out_eof) return CETCD_EINVAL;
  if (len > UINT32_MAX) return CETCD_ETOOLARGE;
  /* compact already-sent bytes first */
  if (s->out_off) {
    memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
    s->out_len -= s->out_off;
    s->out_off = 0;
  }
  if (!grow(s->gc, &s->out, &s->out_cap, s->out_len + GRPC_FRAME_PREFIX + len)) return CETCD_ENOMEM;
  uint8_t *p = s->out + s->out_len;
  p[0] = 0;
  p[1] = (uint8_t)(len >> 24);
  p[2] = (uint8_t)(len >> 16);
  p[3] = (uint8_t)(len >> 8);
  p[4] = (uint8_t)len;
  if (len) memcpy(p + GRPC_FRAME_PREFIX, msg, len);
  s->out_len += GRPC_FRAME_PREFIX + len;
  if (end) s->out_eof = true;
  if (s->state == ST_ACTIVE && s->tr && s->tr->session) {
    if (s->deferred) {
      s->deferred = false;
      nghttp2_session_resume_data(s->tr->session, s->id);
    }
    transport_flush(s->tr);
  }
  return 0;
}

void grpc_cstream_cancel(grpc_cstream_t *s) {
  if (!s || s->state == ST_DONE) return;
  transport_t *tr = s->state == ST_ACTIVE ? s->tr : NULL;
  if (tr && tr->session) nghttp2_submit_rst_stream(tr->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
  stream_release(s);
  if (tr) transport_flush(tr);
}

void grpc_cstream_set_idle_timeout(grpc_cstream_t *s, uint64_t timeout_ms) {
  if (s->state == ST_DONE) return;
  s->idle_ms = timeout_ms;
  s->last_rx = now_ms();
  stream_rearm(s);
}

/* nghttp2 data source: the stream's queued output. */
static ssize_t data_read_cb(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *source, void *user) {
  (void)session, (void)id, (void)user;
  grpc_cstream_t *s = source->ptr;
  size_t avail = s->out_len - s->out_off;
  size_t n = avail < length ? avail : length;
  if (n) memcpy(buf, s->out + s->out_off, n);
  s->out_off += n;
  if (s->out_off == s->out_len) {
    s->out_off = s->out_len = 0;
    if (s->out_eof) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
      s->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return (ssize_t)n;
}

#define NV(n, v) \
  { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

/* Submits pending stream s on transport tr. */
static void stream_submit(transport_t *tr, grpc_cstream_t *s) {
  grpc_client_t *gc = tr->gc;
  char tmo[16];
  size_t nnv = 7;
  nghttp2_nv nv[9] = {
      NV(":method", "POST"),
      NV(":scheme", gc->eps[tr->ep].tls ? "https" : "http"),
      NV(":path", s->path),
      NV(":authority", gc->eps[tr->ep].hostport),
      NV("content-type", "application/grpc"),
      NV("te", "trailers"),
      NV("user-agent", "libcetcd/0.1"),
  };
  if (s->deadline) {
    uint64_t now = now_ms();
    timeout_format(s->deadline > now ? s->deadline - now : 1, tmo);
    nghttp2_nv t = NV("grpc-timeout", tmo);
    nv[nnv++] = t;
  }
  if (gc->token && strcmp(s->path, GRPC_AUTHENTICATE_PATH) != 0) {
    nghttp2_nv t = NV("token", gc->token);
    nv[nnv++] = t;
  }
  nghttp2_data_provider dp = {.source.ptr = s, .read_callback = data_read_cb};
  int32_t id = nghttp2_submit_request(tr->session, NULL, nv, nnv, &dp, s);
  list_del(&s->ch->pending, s);
  if (id < 0) {
    s->state = ST_ACTIVE; /* so stream_finish does not unlink from pending again */
    s->tr = NULL;
    stream_finish(s, id == NGHTTP2_ERR_NOMEM ? CETCD_ENOMEM : CETCD_EUNAVAILABLE, 14, nghttp2_strerror(id),
                  false);
    return;
  }
  s->id = id;
  s->state = ST_ACTIVE;
  s->tr = tr;
  s->deferred = false;
  list_add(&tr->active, s);
}

/* ---- receiving ------------------------------------------------------------------------ */

/* Delivers complete messages in data (len bytes) of stream s. Returns false when the
 * stream ended (cancelled by a callback, or a framing error). */
static bool stream_feed(grpc_cstream_t *s, const uint8_t *p, size_t n) {
  grpc_client_t *gc = s->gc;
  while (n > 0 && s->state != ST_DONE) {
    if (!s->in_body) {
      size_t take = GRPC_FRAME_PREFIX - s->hdr_len;
      if (take > n) take = n;
      memcpy(s->hdr + s->hdr_len, p, take);
      s->hdr_len += take;
      p += take;
      n -= take;
      if (s->hdr_len < GRPC_FRAME_PREFIX) break;
      s->msg_len =
          (uint32_t)s->hdr[1] << 24 | (uint32_t)s->hdr[2] << 16 | (uint32_t)s->hdr[3] << 8 | s->hdr[4];
      const char *bad = NULL;
      if (s->hdr[0] != 0) bad = "compressed or malformed message flag";
      if (gc->max_recv && s->msg_len > gc->max_recv) bad = "received message larger than max";
      if (bad) {
        transport_t *tr = s->tr;
        if (tr && tr->session)
          nghttp2_submit_rst_stream(tr->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        stream_finish(s, CETCD_EGRPC, 8, bad, true);
        return false;
      }
      s->in_body = true;
      s->body_len = 0;
    }
    const uint8_t *msg;
    if (s->body_len == 0 && n >= s->msg_len) {
      msg = p;
      p += s->msg_len;
      n -= s->msg_len;
    } else {
      size_t take = s->msg_len - s->body_len;
      if (take > n) take = n;
      if (!grow(gc, &s->body, &s->body_cap, s->body_len + take)) {
        transport_t *tr = s->tr;
        if (tr && tr->session)
          nghttp2_submit_rst_stream(tr->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        stream_finish(s, CETCD_ENOMEM, 8, "out of memory", true);
        return false;
      }
      memcpy(s->body + s->body_len, p, take);
      s->body_len += take;
      p += take;
      n -= take;
      if (s->body_len < s->msg_len) break;
      msg = s->body;
    }
    s->in_body = false;
    s->hdr_len = 0;
    size_t mlen = s->msg_len;
    s->body_len = 0;
    s->last_rx = now_ms();
    if (s->cbs->on_message && s->cbs->on_message(s->ctx, s, msg, mlen)) {
      grpc_cstream_cancel(s);
      return false;
    }
    if (s->body_cap > 1024 * 1024 && s->state != ST_DONE) {
      gc->mem.free_fn(s->body);
      s->body = NULL;
      s->body_cap = 0;
    }
  }
  if (s->state != ST_DONE && s->idle_ms) stream_rearm(s);
  return s->state != ST_DONE;
}

static int on_header_cb(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user) {
  (void)flags, (void)user;
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  grpc_cstream_t *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!s) return 0;
  if (namelen == 7 && !memcmp(name, ":status", 7)) {
    int v = 0;
    for (size_t i = 0; i < valuelen && i < 4; i++) v = v * 10 + (value[i] - '0');
    s->http_status = v;
  } else if (namelen == 11 && !memcmp(name, "grpc-status", 11)) {
    int v = 0;
    for (size_t i = 0; i < valuelen && i < 4; i++)
      if (value[i] >= '0' && value[i] <= '9') v = v * 10 + (value[i] - '0');
    s->grpc_status = v;
  } else if (namelen == 12 && !memcmp(name, "grpc-message", 12)) {
    percent_decode(s->message, sizeof s->message, value, valuelen);
  }
  return 0;
}

static int on_data_chunk_cb(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                            size_t len, void *user) {
  (void)flags, (void)user;
  grpc_cstream_t *s = nghttp2_session_get_stream_user_data(session, id);
  if (!s) return 0;
  stream_feed(s, data, len);
  return 0;
}

static int on_stream_close_cb(nghttp2_session *session, int32_t id, uint32_t error_code, void *user) {
  (void)user;
  grpc_cstream_t *s = nghttp2_session_get_stream_user_data(session, id);
  if (!s || s->state != ST_ACTIVE) return 0;
  if (s->grpc_status >= 0) {
    stream_finish(s, 0, s->grpc_status, s->message, true);
  } else if (error_code == NGHTTP2_REFUSED_STREAM) {
    stream_finish(s, CETCD_EUNAVAILABLE, 14, "stream refused by server", false);
  } else if (s->http_status && s->http_status != 200) {
    char m[64];
    snprintf(m, sizeof m, "unexpected HTTP status %d", s->http_status);
    int st = (s->http_status == 502 || s->http_status == 503 || s->http_status == 504) ? 14 : 2;
    stream_finish(s, 0, st, m, true);
  } else if (error_code != NGHTTP2_NO_ERROR) {
    char m[96];
    snprintf(m, sizeof m, "stream reset by server: %s", nghttp2_http2_strerror(error_code));
    stream_finish(s, 0, error_code == NGHTTP2_CANCEL ? 1 : 13, m, true);
  } else {
    stream_finish(s, CETCD_EGRPC, 13, "server closed the stream without grpc-status", true);
  }
  return 0;
}

static int on_frame_recv_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user) {
  (void)session;
  transport_t *tr = user;
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    tr->goaway = true;
    channel_t *ch = tr->ch;
    if (ch) {
      /* detach: finish existing streams here, open a new connection for new ones */
      ch->tr = NULL;
      tr->ch = NULL;
      tr->next_draining = tr->gc->draining;
      tr->gc->draining = tr;
      if (ch->fixed < 0) {
        pthread_mutex_lock(&tr->gc->mu);
        tr->gc->ready = false;
        pthread_mutex_unlock(&tr->gc->mu);
      }
      if (ch->pending) channel_kick(ch);
    }
  }
  return 0;
}

/* ===================================================================================== */
/* Transports (one TCP connection + nghttp2 session)                                     */
/* ===================================================================================== */

static void *ng_malloc(size_t n, void *ud) { return ((grpc_client_t *)ud)->mem.malloc_fn(n); }
static void ng_free(void *p, void *ud) { ((grpc_client_t *)ud)->mem.free_fn(p); }
static void *ng_calloc(size_t a, size_t b, void *ud) {
  if (b && a > SIZE_MAX / b) return NULL;
  void *p = ((grpc_client_t *)ud)->mem.malloc_fn(a * b);
  if (p) memset(p, 0, a * b);
  return p;
}
static void *ng_realloc(void *p, size_t n, void *ud) { return ((grpc_client_t *)ud)->mem.realloc_fn(p, n); }

static void transport_maybe_free(transport_t *tr) {
  if (tr->gai_pending || tr->tcp_inited) return;
  grpc_client_t *gc = tr->gc;
  if (tr->addrs) uv_freeaddrinfo(tr->addrs);
  if (tr->tls) gc->tls_ops->conn_free(tr->tls);
  gc->mem.free_fn(tr->rbuf);
  gc->mem.free_fn(tr->wbuf);
  gc->mem.free_fn(tr);
  gc->live_transports--;
}

static void tcp_closed(uv_handle_t *h) {
  transport_t *tr = h->data;
  tr->tcp_inited = false;
  transport_maybe_free(tr);
}

static void transport_connect_addr(transport_t *tr, const struct sockaddr *sa);

/* The socket of a refused connect attempt closed: dial the name's next address. */
static void tcp_closed_try_next(uv_handle_t *h) {
  transport_t *tr = h->data;
  tr->tcp_inited = false;
  tr->tcp_closing = false;
  if (tr->failed) {
    transport_maybe_free(tr);
    return;
  }
  struct addrinfo *ai = tr->next_addr;
  tr->next_addr = ai->ai_next;
  transport_connect_addr(tr, ai->ai_addr);
}

static void remove_draining(transport_t *tr) {
  for (transport_t **pp = &tr->gc->draining; *pp; pp = &(*pp)->next_draining) {
    if (*pp == tr) {
      *pp = tr->next_draining;
      break;
    }
  }
}

typedef struct write_req {
  uv_write_t req;
  grpc_client_t *gc;
  uint8_t *data;
} write_req_t;

static void write_done(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  transport_t *tr = req->handle->data;
  grpc_client_t *gc = w->gc;
  gc->mem.free_fn(w->data);
  gc->mem.free_fn(w);
  if (status < 0 && status != UV_ECANCELED && !tr->failed) transport_fail(tr, uv_strerror(status));
}

/* Writes tr->wbuf[0..len) to the socket: directly when the socket takes it all (the
 * common case: no copy, no request), the rest through a uv_write of a copy. Returns false
 * when the transport failed. */
static bool socket_write(transport_t *tr, size_t len) {
  grpc_client_t *gc = tr->gc;
  uv_buf_t b = uv_buf_init((char *)tr->wbuf, (unsigned)len);
  int wn = uv_try_write((uv_stream_t *)&tr->tcp, &b, 1);
  if (wn < 0 && wn != UV_EAGAIN && wn != UV_ENOSYS) {
    transport_fail(tr, uv_strerror(wn));
    return false;
  }
  size_t done = wn > 0 ? (size_t)wn : 0;
  if (done < len) {
    size_t rest = len - done;
    write_req_t *w = gc->mem.malloc_fn(sizeof(*w));
    uint8_t *buf = gc->mem.malloc_fn(rest);
    if (!w || !buf) {
      gc->mem.free_fn(w);
      gc->mem.free_fn(buf);
      transport_fail(tr, "out of memory");
      return false;
    }
    memcpy(buf, tr->wbuf + done, rest);
    w->gc = gc;
    w->data = buf;
    uv_buf_t rb = uv_buf_init((char *)buf, (unsigned)rest);
    int rc = uv_write(&w->req, (uv_stream_t *)&tr->tcp, &rb, 1, write_done);
    if (rc < 0) {
      gc->mem.free_fn(buf);
      gc->mem.free_fn(w);
      transport_fail(tr, uv_strerror(rc));
      return false;
    }
  }
  if (tr->wcap > 1024 * 1024) {
    gc->mem.free_fn(tr->wbuf);
    tr->wbuf = NULL;
    tr->wcap = 0;
  }
  return true;
}

/* TLS: moves the ciphertext waiting in the TLS state to the socket. Returns false when
 * the transport failed. */
static bool tls_send_pending(transport_t *tr) {
  const grpc_tls_ops_t *ops = tr->gc->tls_ops;
  size_t n = ops->pending(tr->tls);
  if (!n) return true;
  if (!grow(tr->gc, &tr->wbuf, &tr->wcap, n)) {
    transport_fail(tr, "out of memory");
    return false;
  }
  return socket_write(tr, ops->take(tr->tls, tr->wbuf, n));
}

static void transport_flush(transport_t *tr) {
  if (tr->failed || !tr->session || tr->in_recv) return;
  grpc_client_t *gc = tr->gc;
  if (gc->batch) {
    tr->need_flush = true; /* flushed once at the end of the batch */
    return;
  }
  tr->need_flush = false;
  size_t len = 0;
  for (;;) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(tr->session, &data);
    if (n < 0) {
      transport_fail(tr, nghttp2_strerror((int)n));
      return;
    }
    if (n == 0) break;
    if (!grow(gc, &tr->wbuf, &tr->wcap, len + (size_t)n)) {
      transport_fail(tr, "out of memory");
      return;
    }
    memcpy(tr->wbuf + len, data, (size_t)n);
    len += (size_t)n;
  }
  if (len && tr->tls) {
    /* encrypt the whole batch, then send the records */
    if (gc->tls_ops->write(tr->tls, tr->wbuf, len) != 0) {
      transport_fail(tr, "TLS write failed");
      return;
    }
    if (!tls_send_pending(tr)) return;
  } else if (len && !socket_write(tr, len)) {
    return;
  }
  /* a detached transport with nothing left to do can go */
  if (!tr->ch && !tr->active && !nghttp2_session_want_read(tr->session) &&
      !nghttp2_session_want_write(tr->session))
    transport_fail(tr, "drained");
}

static void channel_on_failure(channel_t *ch, const char *why);
static void channel_on_ready(channel_t *ch);

/* Tears the transport down: fails its streams, closes the socket, and lets the channel
 * (if still attached) fail over or report the failure. */
static void transport_fail(transport_t *tr, const char *why) {
  if (tr->failed) return;
  tr->failed = true;
  channel_t *ch = tr->ch;
  if (ch) {
    ch->tr = NULL;
    tr->ch = NULL;
  } else {
    remove_draining(tr);
  }
  char m[200];
  snprintf(m, sizeof m, "connection to %s lost: %s", tr->gc->eps[tr->ep].hostport, why);
  /* the channel moves on first, so streams reopened from on_close go to the next endpoint */
  if (ch) channel_on_failure(ch, why);
  while (tr->active) stream_finish(tr->active, CETCD_EUNAVAILABLE, 14, m, true);
  if (tr->session && !tr->in_recv) {
    nghttp2_session_del(tr->session);
    tr->session = NULL;
  }
  if (tr->gai_pending) uv_cancel((uv_req_t *)&tr->gai);
  if (tr->tcp_inited && !tr->tcp_closing) {
    tr->tcp_closing = true;
    uv_close((uv_handle_t *)&tr->tcp, tcp_closed);
  }
  transport_maybe_free(tr);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  transport_t *tr = h->data;
  b->base = (char *)tr->rbuf;
  b->len = READ_BUF;
}

/* Hands n received HTTP/2 bytes to the session. Returns false when the transport failed. */
static bool session_recv(transport_t *tr, const uint8_t *p, size_t n) {
  tr->in_recv = true;
  ssize_t rc = nghttp2_session_mem_recv(tr->session, p, n);
  tr->in_recv = false;
  if (tr->failed) {
    /* failed from inside a callback: the session could not be deleted then */
    nghttp2_session_del(tr->session);
    tr->session = NULL;
    return false;
  }
  if (rc < 0) {
    transport_fail(tr, nghttp2_strerror((int)rc));
    return false;
  }
  return true;
}

static void transport_start_session(transport_t *tr);

/* TLS: takes n received bytes of ciphertext, advances the handshake (starting the HTTP/2
 * session when it completes) and hands the decrypted bytes to the session. Returns false
 * when the transport failed. */
/* A failed handshake: hands the alert TLS queued (e.g. "bad certificate") to the socket
 * in one try, so the server can log why, as Go's clients let it. */
static void tls_send_alert(transport_t *tr) {
  const grpc_tls_ops_t *ops = tr->gc->tls_ops;
  size_t n = ops->pending(tr->tls);
  if (!n || !grow(tr->gc, &tr->wbuf, &tr->wcap, n)) return;
  uv_buf_t b = uv_buf_init((char *)tr->wbuf, (unsigned)ops->take(tr->tls, tr->wbuf, n));
  (void)uv_try_write((uv_stream_t *)&tr->tcp, &b, 1);
}

static bool tls_recv(transport_t *tr, size_t n) {
  const grpc_tls_ops_t *ops = tr->gc->tls_ops;
  char err[300];
  if (ops->feed(tr->tls, tr->rbuf, n) != 0) {
    transport_fail(tr, "out of memory");
    return false;
  }
  if (!tr->tls_done) {
    int h = ops->handshake(tr->tls, err, sizeof err);
    if (h < 0) {
      tls_send_alert(tr);
      transport_fail(tr, err);
      return false;
    }
    if (!tls_send_pending(tr)) return false;
    if (h == 0) return true;
    tr->tls_done = true;
    transport_start_session(tr);
    if (tr->failed) return false;
  }
  /* decrypt into the read buffer (its ciphertext is in the TLS state now), bounded */
  for (int i = 0; i < 1024 && !tr->failed && tr->session; i++) {
    ssize_t got = ops->read(tr->tls, tr->rbuf, READ_BUF, err, sizeof err);
    if (got < 0) {
      transport_fail(tr, err);
      return false;
    }
    if (got == 0) break;
    if (!session_recv(tr, tr->rbuf, (size_t)got)) return false;
  }
  return !tr->failed && tls_send_pending(tr); /* TLS may have answered (key updates) */
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
  (void)b;
  transport_t *tr = st->data;
  if (tr->failed) return;
  if (nread < 0) {
    transport_fail(tr, nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
    return;
  }
  if (nread == 0) return;
  if (tr->tls ? !tls_recv(tr, (size_t)nread) : !session_recv(tr, tr->rbuf, (size_t)nread)) return;
  transport_flush(tr);
}

static void on_connect(uv_connect_t *req, int status) {
  transport_t *tr = req->data;
  grpc_client_t *gc = tr->gc;
  tr->connecting = false;
  if (tr->failed) return;
  if (status < 0 && tr->next_addr) {
    /* a name resolves to several addresses (localhost: ::1 and 127.0.0.1): try them in
     * turn, as etcd's Go client does, before the endpoint counts as failed */
    tr->tcp_closing = true;
    uv_close((uv_handle_t *)&tr->tcp, tcp_closed_try_next);
    return;
  }
  if (status < 0) {
    transport_fail(tr, uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&tr->tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&tr->tcp, alloc_cb, read_cb);
  if (rc < 0) {
    transport_fail(tr, uv_strerror(rc));
    return;
  }
  if (!gc->eps[tr->ep].tls) {
    transport_start_session(tr);
    return;
  }
  /* TLS first: the session starts once the handshake is done (within the dial timeout) */
  char err[300];
  tr->tls = gc->tls_ops->conn_new(gc->tls_ctx, gc->eps[tr->ep].host, err, sizeof err);
  if (!tr->tls) {
    transport_fail(tr, err);
    return;
  }
  if (gc->tls_ops->handshake(tr->tls, err, sizeof err) < 0) {
    transport_fail(tr, err);
    return;
  }
  tls_send_pending(tr);
}

/* Creates the HTTP/2 session of a connected (and, with TLS, handshaken) transport, sends
 * the client preface and settings, and reports the channel ready. */
static void transport_start_session(transport_t *tr) {
  grpc_client_t *gc = tr->gc;
  nghttp2_session *sess;
  nghttp2_option *opt = NULL;
  if (nghttp2_option_new(&opt) == 0) {
    nghttp2_option_set_no_http_messaging(opt, 0);
    nghttp2_option_set_peer_max_concurrent_streams(opt, 1000);
  }
  int rc = nghttp2_session_client_new3(&sess, gc->cbs, tr, opt, &gc->ngmem);
  if (opt) nghttp2_option_del(opt);
  if (rc != 0) {
    transport_fail(tr, nghttp2_strerror(rc));
    return;
  }
  tr->session = sess;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
  };
  if (nghttp2_submit_settings(sess, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
      nghttp2_session_set_local_window_size(sess, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0) {
    transport_fail(tr, "cannot start HTTP/2 session");
    return;
  }
  tr->ready = true;
  transport_flush(tr);
  if (!tr->failed && tr->ch) channel_on_ready(tr->ch);
}

static void transport_connect_addr(transport_t *tr, const struct sockaddr *sa) {
  int rc = uv_tcp_init(&tr->gc->loop, &tr->tcp);
  if (rc < 0) {
    transport_fail(tr, uv_strerror(rc));
    return;
  }
  tr->tcp_inited = true;
  tr->tcp.data = tr;
  tr->conn_req.data = tr;
  rc = uv_tcp_connect(&tr->conn_req, &tr->tcp, sa, on_connect);
  if (rc < 0) {
    transport_fail(tr, uv_strerror(rc));
    return;
  }
  tr->connecting = true;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  transport_t *tr = req->data;
  tr->gai_pending = false;
  if (tr->failed) {
    if (res) uv_freeaddrinfo(res);
    transport_maybe_free(tr);
    return;
  }
  if (status < 0 || !res) {
    if (res) uv_freeaddrinfo(res);
    transport_fail(tr, status < 0 ? uv_strerror(status) : "no address");
    return;
  }
  tr->addrs = res;
  tr->next_addr = res->ai_next;
  transport_connect_addr(tr, res->ai_addr);
}

/* Starts a new connection attempt of ch to its current endpoint. */
static void channel_dial(channel_t *ch) {
  grpc_client_t *gc = ch->gc;
  transport_t *tr = gc->mem.malloc_fn(sizeof(*tr));
  uint8_t *rbuf = gc->mem.malloc_fn(READ_BUF);
  if (!tr || !rbuf) {
    gc->mem.free_fn(tr);
    gc->mem.free_fn(rbuf);
    /* cannot even allocate: fail what waits and retry later */
    channel_on_failure(ch, "out of memory");
    return;
  }
  memset(tr, 0, sizeof(*tr));
  tr->gc = gc;
  tr->rbuf = rbuf;
  tr->ch = ch;
  tr->ep = ch->ep;
  gc->live_transports++;
  ch->tr = tr;
  endpoint_t *e = &gc->eps[ch->ep];
  struct sockaddr_storage ss;
  if (uv_ip4_addr(e->host, atoi(e->port), (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(e->host, atoi(e->port), (struct sockaddr_in6 *)&ss) == 0) {
    transport_connect_addr(tr, (struct sockaddr *)&ss);
  } else {
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    tr->gai.data = tr;
    int rc = uv_getaddrinfo(&gc->loop, &tr->gai, on_resolved, e->host, e->port, &hints);
    if (rc < 0) {
      transport_fail(tr, uv_strerror(rc));
      return;
    }
    tr->gai_pending = true;
  }
}

/* ===================================================================================== */
/* Channels                                                                              */
/* ===================================================================================== */

static void channel_timer_cb(uv_timer_t *t) {
  channel_t *ch = t->data;
  if (ch->gc->stopping) return;
  if (ch->backing_off) {
    ch->backing_off = false;
    if (ch->pending || ch->want) channel_kick(ch);
    return;
  }
  /* dial timeout */
  transport_t *tr = ch->tr;
  if (tr && !tr->ready) transport_fail(tr, "dial timeout");
}

/* Ensures ch is connected or connecting if it has work. */
static void channel_kick(channel_t *ch) {
  grpc_client_t *gc = ch->gc;
  if (gc->stopping || ch->tr || ch->backing_off) return;
  channel_dial(ch);
  if (ch->tr && !ch->tr->ready)
    uv_timer_start(&ch->timer, channel_timer_cb, (uint64_t)gc->dial_timeout_ms, 0);
}

static void set_ready(grpc_client_t *gc, bool ready) {
  pthread_mutex_lock(&gc->mu);
  gc->ready = ready;
  gc->current = gc->channels[0].ep;
  pthread_cond_broadcast(&gc->cond);
  pthread_mutex_unlock(&gc->mu);
}

static void channel_on_ready(channel_t *ch) {
  uv_timer_stop(&ch->timer);
  ch->fails_in_round = 0;
  ch->backoff_ms = 0;
  ch->last_error[0] = 0;
  ch->want = false;
  transport_t *tr = ch->tr;
  while (ch->pending && ch->tr == tr && !tr->failed) stream_submit(tr, ch->pending);
  if (ch->tr == tr && !tr->failed) transport_flush(tr);
  if (ch->fixed < 0) set_ready(ch->gc, true);
}

static void channel_on_failure(channel_t *ch, const char *why) {
  grpc_client_t *gc = ch->gc;
  uv_timer_stop(&ch->timer);
  snprintf(ch->last_error, sizeof ch->last_error, "%s: %s", gc->eps[ch->ep].hostport, why);
  if (gc->stopping) return;
  if (ch->fixed >= 0) {
    /* dedicated: fail waiting streams at once */
    char m[220];
    snprintf(m, sizeof m, "endpoint unavailable: %s", ch->last_error);
    while (ch->pending) stream_finish(ch->pending, CETCD_EUNAVAILABLE, 14, m, false);
    return;
  }
  ch->ep = (ch->ep + 1) % gc->n_eps;
  ch->fails_in_round++;
  set_ready(gc, false);
  if (ch->fails_in_round >= gc->n_eps) {
    ch->fails_in_round = 0;
    ch->backoff_ms = ch->backoff_ms ? ch->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (ch->backoff_ms > BACKOFF_MAX_MS) ch->backoff_ms = BACKOFF_MAX_MS;
    ch->backing_off = true;
    uv_timer_start(&ch->timer, channel_timer_cb, ch->backoff_ms, 0);
    return;
  }
  if (ch->pending || ch->want) channel_kick(ch);
}

void grpc_client_failover(grpc_client_t *gc) {
  channel_t *ch = &gc->channels[0];
  if (gc->n_eps < 2 || !ch->tr) return;
  transport_fail(ch->tr, "server unavailable");
}

/* ===================================================================================== */
/* The I/O thread and task hand-off                                                      */
/* ===================================================================================== */

static void run_tasks(grpc_client_t *gc) {
  for (;;) {
    pthread_mutex_lock(&gc->mu);
    task_t *t = gc->tasks;
    if (t) {
      gc->tasks = t->next;
      if (!gc->tasks) gc->tasks_tail = NULL;
    }
    pthread_mutex_unlock(&gc->mu);
    if (!t) return;
    t->fn(gc, t->arg);
    pthread_mutex_lock(&gc->mu);
    t->done = true;
    pthread_cond_broadcast(&gc->cond);
    pthread_mutex_unlock(&gc->mu);
  }
}

/* ---- unary calls (I/O thread side) ------------------------------------------------------ */

/* Flushes every transport whose flush was deferred by the batch. */
static void flush_deferred(grpc_client_t *gc) {
  for (size_t i = 0; i <= gc->n_eps; i++) {
    transport_t *tr = gc->channels[i].tr;
    if (tr && tr->need_flush) transport_flush(tr);
  }
  for (transport_t *tr = gc->draining, *nx; tr; tr = nx) {
    nx = tr->next_draining;
    if (tr->need_flush) transport_flush(tr);
  }
}

static int acall_on_message(void *ctx, grpc_cstream_t *s, const uint8_t *msg, size_t len) {
  (void)s;
  acall_t *a = ctx;
  if (a->resp || a->err) return 0; /* extra messages: ignore */
  a->resp = a->gc->mem.malloc_fn(len ? len : 1);
  if (!a->resp) {
    a->err = CETCD_ENOMEM;
    return 0;
  }
  memcpy(a->resp, msg, len);
  a->resp_len = len;
  return 0;
}

/* Ends call a: runs done with the outcome, then frees a if the transport owns it. */
static void acall_complete(acall_t *a, const grpc_close_info_t *in) {
  grpc_client_t *gc = a->gc;
  grpc_close_info_t info = *in;
  if (a->err && !info.err) {
    info.err = a->err;
    info.message = cetcd_strerror(a->err);
  }
  if (!info.err && info.status == 0 && !a->resp) {
    info.err = CETCD_EGRPC;
    info.status = 13;
    info.message = "server sent no response message";
  }
  uint8_t *resp = a->resp;
  size_t rlen = a->resp_len;
  a->resp = NULL;
  if (info.err || info.status) {
    gc->mem.free_fn(resp);
    resp = NULL;
    rlen = 0;
  }
  bool heap = a->heap;
  a->done(a->ctx, &info, resp, rlen); /* a may be gone now unless heap */
  if (heap) gc->mem.free_fn(a);
}

static void acall_on_close(void *ctx, grpc_cstream_t *s, const grpc_close_info_t *info) {
  (void)s;
  acall_complete(ctx, info);
}

static const grpc_cstream_cbs_t acall_cbs = {acall_on_message, acall_on_close};

/* Opens the stream of call a (I/O thread). Returns 0, or an error (a untouched but its
 * owned request freed). */
static int acall_open_batched(grpc_client_t *gc, acall_t *a);

static int acall_open(grpc_client_t *gc, acall_t *a) {
  /* HEADERS and DATA go out in one write: defer the flush of the open until the request
   * is attached (inside a batch the batch flushes) */
  bool was = gc->batch;
  gc->batch = true;
  int rc = acall_open_batched(gc, a);
  gc->batch = was;
  if (!was) flush_deferred(gc);
  return rc;
}

static int acall_open_batched(grpc_client_t *gc, acall_t *a) {
  grpc_cstream_t *s =
      gc->stopping ? NULL : grpc_cstream_open(gc, a->path, a->channel, a->timeout_ms, &acall_cbs, a);
  if (!s) {
    if (a->req_owned) gc->mem.free_fn(a->req);
    a->req = NULL;
    return gc->stopping ? CETCD_ECANCELED : CETCD_ENOMEM;
  }
  int rc = 0;
  if (a->req_owned) {
    /* hand the framed request to the stream as its output buffer: no copy */
    size_t len = a->req_len - GRPC_FRAME_PREFIX;
    uint8_t *p = a->req;
    p[0] = 0;
    p[1] = (uint8_t)(len >> 24);
    p[2] = (uint8_t)(len >> 16);
    p[3] = (uint8_t)(len >> 8);
    p[4] = (uint8_t)len;
    gc->mem.free_fn(s->out);
    s->out = p;
    s->out_cap = s->out_len = a->req_len;
    s->out_off = 0;
    s->out_eof = true;
    a->req = NULL;
    if (s->state == ST_ACTIVE && s->tr && s->tr->session) {
      if (s->deferred) {
        s->deferred = false;
        nghttp2_session_resume_data(s->tr->session, s->id);
      }
      transport_flush(s->tr);
    }
  } else {
    rc = grpc_cstream_send(s, a->req, a->req_len, true);
  }
  if (rc) grpc_cstream_cancel(s);
  return rc;
}

/* Opens every queued call, with one socket write per connection for the whole batch. */
static void run_calls(grpc_client_t *gc, acall_t *list) {
  if (!list) return;
  gc->batch = true;
  while (list) {
    acall_t *a = list;
    list = a->next;
    a->next = NULL;
    int rc = acall_open(gc, a);
    if (rc) {
      grpc_close_info_t info = {
          .err = rc, .status = rc == CETCD_ECANCELED ? 1 : 13, .message = cetcd_strerror(rc), .sent = false};
      acall_complete(a, &info);
    }
  }
  gc->batch = false;
  flush_deferred(gc);
}

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void shutdown_all(grpc_client_t *gc) {
  gc->stopping = true;
  for (size_t i = 0; i <= gc->n_eps; i++) {
    channel_t *ch = &gc->channels[i];
    uv_timer_stop(&ch->timer);
    while (ch->pending) stream_finish(ch->pending, CETCD_ECANCELED, 1, "client closed", false);
    if (ch->tr) {
      while (ch->tr->active) stream_finish(ch->tr->active, CETCD_ECANCELED, 1, "client closed", true);
      transport_fail(ch->tr, "client closed");
    }
  }
  while (gc->draining) {
    while (gc->draining->active)
      stream_finish(gc->draining->active, CETCD_ECANCELED, 1, "client closed", true);
    transport_fail(gc->draining, "client closed");
  }
  for (size_t i = 0; i <= gc->n_eps; i++) uv_close((uv_handle_t *)&gc->channels[i].timer, NULL);
  uv_close((uv_handle_t *)&gc->wake, NULL);
}

static void wake_cb(uv_async_t *a) {
  grpc_client_t *gc = a->data;
  pthread_mutex_lock(&gc->mu);
  gc->wake_pending = false;
  acall_t *calls = gc->calls;
  gc->calls = gc->calls_tail = NULL;
  pthread_mutex_unlock(&gc->mu);
  run_calls(gc, calls);
  run_tasks(gc);
  pthread_mutex_lock(&gc->mu);
  bool stop = gc->closing && !gc->tasks && !gc->calls;
  pthread_mutex_unlock(&gc->mu);
  if (stop && !gc->stopping) shutdown_all(gc);
}

static void io_main(void *arg) {
  grpc_client_t *gc = arg;
  tl_io_client = gc;
  /* a write to a connection the peer closed (e.g. after refusing a TLS handshake) must
   * give EPIPE, not kill the application: SIGPIPE is thread-directed, so blocking it on
   * this thread suffices and leaves the application's own handling alone */
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
  uv_run(&gc->loop, UV_RUN_DEFAULT);
  /* anything left (should be nothing) gets closed */
  uv_walk(&gc->loop, walk_close, NULL);
  uv_run(&gc->loop, UV_RUN_DEFAULT);
}

bool grpc_client_on_io_thread(const grpc_client_t *gc) { return tl_io_client == gc; }

int grpc_client_run_sync(grpc_client_t *gc, void (*fn)(grpc_client_t *gc, void *arg), void *arg) {
  if (grpc_client_on_io_thread(gc)) {
    if (gc->stopping) return CETCD_ECANCELED;
    fn(gc, arg);
    return 0;
  }
  task_t t = {.fn = fn, .arg = arg};
  pthread_mutex_lock(&gc->mu);
  if (gc->closing) {
    pthread_mutex_unlock(&gc->mu);
    return CETCD_ECANCELED;
  }
  if (gc->tasks_tail)
    gc->tasks_tail->next = &t;
  else
    gc->tasks = &t;
  gc->tasks_tail = &t;
  if (!gc->wake_pending) {
    gc->wake_pending = true;
    uv_async_send(&gc->wake); /* under mu: the handle cannot be closed meanwhile */
  }
  while (!t.done) pthread_cond_wait(&gc->cond, &gc->mu);
  pthread_mutex_unlock(&gc->mu);
  return 0;
}

/* ===================================================================================== */
/* Blocking unary calls                                                                  */
/* ===================================================================================== */

/* Queues call a for the I/O thread (any thread but the I/O thread). Returns 0 or
 * CETCD_ECANCELED. */
static int acall_enqueue(grpc_client_t *gc, acall_t *a) {
  a->next = NULL;
  pthread_mutex_lock(&gc->mu);
  if (gc->closing) {
    pthread_mutex_unlock(&gc->mu);
    return CETCD_ECANCELED;
  }
  if (gc->calls_tail)
    gc->calls_tail->next = a;
  else
    gc->calls = a;
  gc->calls_tail = a;
  if (!gc->wake_pending) {
    gc->wake_pending = true;
    uv_async_send(&gc->wake); /* under mu: the handle cannot be closed meanwhile */
  }
  pthread_mutex_unlock(&gc->mu);
  return 0;
}

int grpc_client_unary_async(grpc_client_t *gc, const char *path, int channel, uint64_t timeout_ms,
                            uint8_t *framed, size_t framed_len, grpc_unary_done_fn done, void *ctx) {
  if (!framed || framed_len < GRPC_FRAME_PREFIX || framed_len - GRPC_FRAME_PREFIX > UINT32_MAX || !done ||
      !path || channel < -1 || channel >= (int)gc->n_eps) {
    gc->mem.free_fn(framed);
    return CETCD_EINVAL;
  }
  acall_t *a = gc->mem.malloc_fn(sizeof(*a));
  if (!a) {
    gc->mem.free_fn(framed);
    return CETCD_ENOMEM;
  }
  *a = (acall_t){.gc = gc,
                 .path = path,
                 .channel = channel,
                 .timeout_ms = timeout_ms,
                 .req = framed,
                 .req_len = framed_len,
                 .req_owned = true,
                 .heap = true,
                 .done = done,
                 .ctx = ctx};
  int rc;
  if (grpc_client_on_io_thread(gc)) {
    rc = acall_open(gc, a); /* the write is flushed after the current callback's batch */
  } else {
    rc = acall_enqueue(gc, a);
    if (rc) gc->mem.free_fn(a->req);
  }
  if (rc) gc->mem.free_fn(a);
  return rc;
}

/* ---- blocking unary calls --------------------------------------------------------------- */

typedef struct unary_ctx {
  acall_t a;
  grpc_unary_t *u;
  sem_t done; /* posted once by the completion: wakes only this caller, takes no lock */
} unary_ctx_t;

static void unary_done(void *ctx, const grpc_close_info_t *info, uint8_t *resp, size_t resp_len) {
  unary_ctx_t *c = ctx;
  grpc_unary_t *u = c->u;
  u->err = info->err;
  u->status = info->status;
  u->sent = info->sent;
  snprintf(u->message, sizeof u->message, "%s", info->message);
  u->resp = resp;
  u->resp_len = resp_len;
  /* glibc's sem_post touches nothing after the post that a waiter returning and
   * destroying the semaphore could invalidate (the waiter's stack frame goes with it) */
  sem_post(&c->done);
}

int grpc_client_unary(grpc_client_t *gc, grpc_unary_t *u) {
  u->resp = NULL;
  u->resp_len = 0;
  u->err = 0;
  u->status = 0;
  u->sent = false;
  u->message[0] = 0;
  if (grpc_client_on_io_thread(gc)) {
    u->err = CETCD_EINVAL;
    snprintf(u->message, sizeof u->message, "blocking call from a libcetcd callback");
    return u->err;
  }
  unary_ctx_t c = {.u = u};
  c.a = (acall_t){.gc = gc,
                  .path = u->path,
                  .channel = u->channel,
                  .timeout_ms = u->timeout_ms,
                  .req = (uint8_t *)u->req,
                  .req_len = u->req_len,
                  .done = unary_done,
                  .ctx = &c};
  sem_init(&c.done, 0, 0);
  int rc = acall_enqueue(gc, &c.a);
  if (rc) {
    sem_destroy(&c.done);
    u->err = rc;
    snprintf(u->message, sizeof u->message, "%s", cetcd_strerror(rc));
    return rc;
  }
  while (sem_wait(&c.done) != 0) {
  } /* EINTR only: a signal handler ran */
  sem_destroy(&c.done);
  return u->err;
}

/* ===================================================================================== */
/* Client lifecycle                                                                      */
/* ===================================================================================== */

static void kick_primary(grpc_client_t *gc, void *arg) {
  gc->channels[0].want = arg != NULL;
  if (arg) channel_kick(&gc->channels[0]);
}

int grpc_client_wait_ready(grpc_client_t *gc, int timeout_ms) {
  if (grpc_client_on_io_thread(gc)) return CETCD_EINVAL;
  uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
  int rc = grpc_client_run_sync(gc, kick_primary, gc);
  if (rc) return rc;
  pthread_mutex_lock(&gc->mu);
  while (!gc->ready && !gc->closing) {
    uint64_t now = now_ms();
    if (now >= deadline) break;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wait = deadline - now;
    ts.tv_sec += (time_t)(wait / 1000);
    ts.tv_nsec += (long)(wait % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&gc->cond, &gc->mu, &ts);
  }
  bool ok = gc->ready;
  pthread_mutex_unlock(&gc->mu);
  if (!ok) grpc_client_run_sync(gc, kick_primary, NULL); /* stop redialing on our behalf */
  return ok ? 0 : CETCD_EUNAVAILABLE;
}

int grpc_client_new(const grpc_client_config_t *cfg, grpc_client_t **out) {
  *out = NULL;
  if (!cfg->n_endpoints || !cfg->endpoints) return CETCD_EINVAL;
  grpc_client_t *gc = cfg->mem.malloc_fn(sizeof(*gc));
  if (!gc) return CETCD_ENOMEM;
  memset(gc, 0, sizeof(*gc));
  gc->mem = cfg->mem;
  gc->tls_ops = cfg->tls_ctx ? cfg->tls_ops : NULL;
  gc->tls_ctx = cfg->tls_ctx;
  gc->tls_default = gc->tls_ops && cfg->tls_default;
  gc->dial_timeout_ms = cfg->dial_timeout_ms > 0 ? cfg->dial_timeout_ms : 5000;
  gc->max_recv = cfg->max_recv_bytes;
  int rc = 0;
  gc->eps = gc->mem.malloc_fn(sizeof(endpoint_t) * cfg->n_endpoints);
  gc->channels = gc->mem.malloc_fn(sizeof(channel_t) * (cfg->n_endpoints + 1));
  if (!gc->eps || !gc->channels) {
    rc = CETCD_ENOMEM;
    goto fail_eps;
  }
  memset(gc->eps, 0, sizeof(endpoint_t) * cfg->n_endpoints);
  memset(gc->channels, 0, sizeof(channel_t) * (cfg->n_endpoints + 1));
  gc->n_eps = cfg->n_endpoints;
  for (size_t i = 0; i < gc->n_eps; i++) {
    rc = parse_endpoint(gc, cfg->endpoints[i], &gc->eps[i]);
    if (rc) goto fail_eps;
  }
  gc->ngmem = (nghttp2_mem){gc, ng_malloc, ng_free, ng_calloc, ng_realloc};
  if (nghttp2_session_callbacks_new(&gc->cbs) != 0) {
    rc = CETCD_ENOMEM;
    goto fail_eps;
  }
  nghttp2_session_callbacks_set_on_header_callback(gc->cbs, on_header_cb);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(gc->cbs, on_data_chunk_cb);
  nghttp2_session_callbacks_set_on_stream_close_callback(gc->cbs, on_stream_close_cb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(gc->cbs, on_frame_recv_cb);
  pthread_mutex_init(&gc->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_cond_init(&gc->cond, &ca);
  pthread_condattr_destroy(&ca);
  rc = uv_loop_init(&gc->loop);
  if (rc < 0) goto fail_sync;
  rc = uv_async_init(&gc->loop, &gc->wake, wake_cb);
  if (rc < 0) goto fail_loop;
  gc->wake.data = gc;
  for (size_t i = 0; i <= gc->n_eps; i++) {
    channel_t *ch = &gc->channels[i];
    ch->gc = gc;
    ch->fixed = (int)i - 1;
    ch->ep = i ? i - 1 : 0;
    uv_timer_init(&gc->loop, &ch->timer);
    ch->timer.data = ch;
    ch->timer_inited = true;
  }
  rc = uv_thread_create(&gc->thread, io_main, gc);
  if (rc < 0) goto fail_handles;
  *out = gc;
  return 0;

fail_handles:
  uv_walk(&gc->loop, walk_close, NULL);
  uv_run(&gc->loop, UV_RUN_DEFAULT);
fail_loop:
  uv_loop_close(&gc->loop);
fail_sync:
  pthread_mutex_destroy(&gc->mu);
  pthread_cond_destroy(&gc->cond);
  nghttp2_session_callbacks_del(gc->cbs);
fail_eps:
  free_endpoints(gc);
  gc->mem.free_fn(gc->channels);
  gc->mem.free_fn(gc);
  return rc;
}

void grpc_client_free(grpc_client_t *gc) {
  if (!gc) return;
  pthread_mutex_lock(&gc->mu);
  gc->closing = true;
  pthread_cond_broadcast(&gc->cond);
  uv_async_send(&gc->wake);
  pthread_mutex_unlock(&gc->mu);
  uv_thread_join(&gc->thread);
  uv_loop_close(&gc->loop);
  pthread_mutex_destroy(&gc->mu);
  pthread_cond_destroy(&gc->cond);
  nghttp2_session_callbacks_del(gc->cbs);
  free_endpoints(gc);
  gc->mem.free_fn(gc->channels);
  gc->mem.free_fn(gc->token);
  gc->mem.free_fn(gc);
}

/* Token hand-over to the I/O thread: the new copy in, the old one out. */
typedef struct token_swap {
  char *token;
} token_swap_t;

/* Installs a new token on the I/O thread. */
static void token_install(grpc_client_t *gc, void *arg) {
  token_swap_t *t = arg;
  char *old = gc->token;
  gc->token = t->token;
  t->token = old;
}

int grpc_client_set_token(grpc_client_t *gc, const char *token) {
  token_swap_t t = {NULL};
  if (token && !(t.token = gc_strndup(gc, token, strlen(token)))) return CETCD_ENOMEM;
  int rc = grpc_client_run_sync(gc, token_install, &t);
  gc->mem.free_fn(t.token); /* the old token, or ours when not installed */
  return rc;
}

size_t grpc_client_n_endpoints(const grpc_client_t *gc) { return gc->n_eps; }

const char *grpc_client_endpoint(const grpc_client_t *gc, size_t k) { return gc->eps[k].hostport; }

size_t grpc_client_current(const grpc_client_t *gc) {
  grpc_client_t *m = (grpc_client_t *)gc;
  pthread_mutex_lock(&m->mu);
  size_t c = m->current;
  pthread_mutex_unlock(&m->mu);
  return c;
}

int grpc_client_find_endpoint(const grpc_client_t *gc, const char *s) {
  if (!s) return -1;
  if (!strncmp(s, "http://", 7))
    s += 7;
  else if (!strncmp(s, "https://", 8))
    s += 8;
  size_t n = strlen(s);
  while (n && s[n - 1] == '/') n--;
  for (size_t i = 0; i < gc->n_eps; i++)
    if (strlen(gc->eps[i].hostport) == n && !memcmp(gc->eps[i].hostport, s, n)) return (int)i;
  return -1;
}

struct uv_loop_s *grpc_client_loop(grpc_client_t *gc) {
  return &gc->loop;
}
