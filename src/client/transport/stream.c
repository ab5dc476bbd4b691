/* gRPC client transport, streams (see grpc_client.h): opening, sending, receiving and
 * framing, deadlines and idle timeouts, and the nghttp2 session callbacks that feed them. */
#include <stdio.h>

#include "cetcd/errors.h"
#include "client/transport/transport_int.h"

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
void gc_stream_finish(grpc_cstream_t *s, int err, int status, const char *msg, bool sent) {
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
    gc_stream_finish(s, CETCD_EUNAVAILABLE, 14, m, false);
    return;
  }
  transport_t *tr = s->tr;
  if (tr && tr->session) {
    nghttp2_submit_rst_stream(tr->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
  }
  gc_stream_finish(s, CETCD_ETIMEOUT, 4, dl ? "deadline exceeded" : "stream idle timeout", true);
  if (tr) gc_transport_flush(tr);
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
    gc_stream_submit(ch->tr, s);
    gc_transport_flush(ch->tr);
  } else {
    gc_channel_kick(ch);
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
    gc_transport_flush(s->tr);
  }
  return 0;
}

void grpc_cstream_cancel(grpc_cstream_t *s) {
  if (!s || s->state == ST_DONE) return;
  transport_t *tr = s->state == ST_ACTIVE ? s->tr : NULL;
  if (tr && tr->session) nghttp2_submit_rst_stream(tr->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
  stream_release(s);
  if (tr) gc_transport_flush(tr);
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
void gc_stream_submit(transport_t *tr, grpc_cstream_t *s) {
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
    s->state = ST_ACTIVE; /* so gc_stream_finish does not unlink from pending again */
    s->tr = NULL;
    gc_stream_finish(s, id == NGHTTP2_ERR_NOMEM ? CETCD_ENOMEM : CETCD_EUNAVAILABLE, 14, nghttp2_strerror(id),
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
        gc_stream_finish(s, CETCD_EGRPC, 8, bad, true);
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
        gc_stream_finish(s, CETCD_ENOMEM, 8, "out of memory", true);
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
    gc_stream_finish(s, 0, s->grpc_status, s->message, true);
  } else if (error_code == NGHTTP2_REFUSED_STREAM) {
    gc_stream_finish(s, CETCD_EUNAVAILABLE, 14, "stream refused by server", false);
  } else if (s->http_status && s->http_status != 200) {
    char m[64];
    snprintf(m, sizeof m, "unexpected HTTP status %d", s->http_status);
    int st = (s->http_status == 502 || s->http_status == 503 || s->http_status == 504) ? 14 : 2;
    gc_stream_finish(s, 0, st, m, true);
  } else if (error_code != NGHTTP2_NO_ERROR) {
    char m[96];
    snprintf(m, sizeof m, "stream reset by server: %s", nghttp2_http2_strerror(error_code));
    gc_stream_finish(s, 0, error_code == NGHTTP2_CANCEL ? 1 : 13, m, true);
  } else {
    gc_stream_finish(s, CETCD_EGRPC, 13, "server closed the stream without grpc-status", true);
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
      if (ch->pending) gc_channel_kick(ch);
    }
  }
  return 0;
}

int gc_stream_callbacks_new(nghttp2_session_callbacks **out) {
  if (nghttp2_session_callbacks_new(out) != 0) return CETCD_ENOMEM;
  nghttp2_session_callbacks_set_on_header_callback(*out, on_header_cb);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(*out, on_data_chunk_cb);
  nghttp2_session_callbacks_set_on_stream_close_callback(*out, on_stream_close_cb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(*out, on_frame_recv_cb);
  return 0;
}
