/* nghttp2 server session callbacks: streams become calls, DATA becomes gRPC messages. */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "grpc/grpc_int.h"
#include "grpc/grpc_status.h"

enum {
  MAX_MD = 64,                     /* request metadata entries per call */
  MAX_MD_BYTES = 64 * 1024,        /* and their total size */
  STREAM_WINDOW = 4 * 1024 * 1024, /* etcd requests reach 1.5 MiB */
  CONN_WINDOW = 16 * 1024 * 1024,
};

/* Header check results kept in call->bad_request until the HEADERS frame is complete. */
enum { BAD_CONTENT_TYPE = 1, BAD_ENCODING = 2, BAD_TIMEOUT = 4 };

static const char CT_GRPC[] = "application/grpc";

/* The call attached to a stream, or NULL. */
static grpc_call_t *stream_call(nghttp2_session *h2, int32_t sid) {
  return nghttp2_session_get_stream_user_data(h2, sid);
}

/* True if a content-type value names gRPC: "application/grpc" optionally followed by
 * "+proto" style or ";params" suffixes. */
static bool is_grpc_content_type(const uint8_t *v, size_t n) {
  size_t k = sizeof(CT_GRPC) - 1;
  return n >= k && !memcmp(v, CT_GRPC, k) && (n == k || v[k] == '+' || v[k] == ';');
}

/* ============================== receiving ============================== */

/* nghttp2: a HEADERS frame starts. A request opens a call. */
static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *user) {
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  grpc_conn_t *conn = user;
  grpc_call_t *c = grpc_call_new(conn, f->hd.stream_id);
  c->bad_request = BAD_CONTENT_TYPE; /* until a valid one is seen */
  nghttp2_session_set_stream_user_data(h2, f->hd.stream_id, c);
  return 0;
}

/* nghttp2: one request header field. */
static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user) {
  (void)flags, (void)user;
  grpc_call_t *c = stream_call(h2, f->hd.stream_id);
  if (!c || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  c->md_bytes += (uint32_t)(nlen + vlen);
  if (c->n_md >= MAX_MD || c->md_bytes > MAX_MD_BYTES) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (nlen > 0 && name[0] == ':') {
    if (nlen == 5 && !memcmp(name, ":path", 5)) c->path = arena_memdup(&c->arena, value, vlen);
    if (nlen == 7 && !memcmp(name, ":method", 7)) c->http_method = arena_memdup(&c->arena, value, vlen);
    return 0;
  }
  if (nlen == 12 && !memcmp(name, "content-type", 12)) {
    if (is_grpc_content_type(value, vlen)) c->bad_request &= (uint8_t)~BAD_CONTENT_TYPE;
  } else if (nlen == 13 && !memcmp(name, "grpc-encoding", 13)) {
    if (!(vlen == 8 && !memcmp(value, "identity", 8))) c->bad_request |= BAD_ENCODING;
  } else if (nlen == 12 && !memcmp(name, "grpc-timeout", 12)) {
    uint64_t ms;
    if (grpc_timeout_parse((const char *)value, vlen, &ms))
      c->deadline = ms ? ms : 1; /* converted to an absolute time once headers are complete */
    else
      c->bad_request |= BAD_TIMEOUT;
  }
  grpc_call_md_add(c, name, nlen, value, vlen);
  return 0;
}

/* Hands a complete non-gRPC request made over HTTP/2 to the HTTP handler, which answers
 * now or later. */
static void http_request_done(grpc_call_t *c) {
  grpc_http_req_t *r = grpc_http_req_new_h2(c);
  grpc_server_http(c->srv, r, c->http_method ? c->http_method : "GET", c->path ? c->path : "/",
                   c->in.body.data, c->in.body.len);
}

/* Validates a complete request HEADERS block and routes the call. */
static void on_request_headers(grpc_call_t *c) {
  grpc_server_t *s = c->srv;
  char msg[320];
  if (c->bad_request & BAD_CONTENT_TYPE) {
    if (s->opts.http1) {
      c->http_req = true; /* e.g. curl --http2-prior-knowledge /health */
      return;
    }
    static const uint8_t text[] = "invalid gRPC request content-type\n";
    grpc_call_http_respond(c, 415, NULL, text, sizeof(text) - 1);
    return;
  }
  const char *path = c->path ? c->path : "";
  c->method = grpc_server_find_method(s, path, strlen(path), &c->method_ctx);
  if (!c->method) {
    grpc_server_unknown_method_msg(s, path, msg, sizeof(msg));
    grpc_call_abort(c, GRPC_UNIMPLEMENTED, msg);
    return;
  }
  if (c->bad_request & BAD_ENCODING) {
    const char *enc = grpc_call_metadata(c, "grpc-encoding");
    snprintf(msg, sizeof(msg), "grpc: Decompressor is not installed for grpc-encoding \"%s\"",
             enc ? enc : "");
    grpc_call_abort(c, GRPC_UNIMPLEMENTED, msg);
    return;
  }
  if (c->bad_request & BAD_TIMEOUT) {
    grpc_call_abort(c, GRPC_INTERNAL, "transport: malformed grpc-timeout");
    return;
  }
  if (c->deadline) {
    c->deadline += uv_now(s->loop);
    grpc_deadline_add(s, c);
  }
  if (s->opts.hold && s->opts.hold(c)) grpc_hold_add(c);
}

/* Hands the complete request to the handler once the client half-closed: unary calls run
 * now, streams hear on_half_close. */
static void dispatch_remote_end(grpc_call_t *c) {
  if (!grpc_deframer_idle(&c->in)) {
    grpc_call_abort(c, GRPC_INTERNAL, "grpc: the client ended the stream inside a message");
    return;
  }
  enum grpc_method_kind k = c->method->kind;
  if (k == GRPC_UNARY || k == GRPC_SERVER_STREAM) {
    if (!c->unary_msg)
      grpc_call_abort(c, GRPC_INTERNAL, "grpc: the client sent no request message");
    else
      grpc_call_dispatch(c, c->unary_msg);
  } else if (c->method->on_half_close || c->dispatched) {
    grpc_call_dispatch(c, NULL);
  } else {
    grpc_call_abort(c, GRPC_OK, NULL); /* a stream with no message and no handler interest */
  }
}

/* The client half-closed. */
static void on_remote_end(grpc_call_t *c) {
  c->remote_closed = true;
  if (c->wire_finished || c->cancelled) return;
  if (c->http_req) {
    http_request_done(c);
    return;
  }
  if (!c->method || c->held) return; /* a held call is dispatched when released */
  dispatch_remote_end(c);
}

/* Deframer callback: decodes one request message and routes it. Returns nonzero to stop.
 * Unary and server-stream requests are decoded into the call's arena; stream messages
 * into the scratch arena, which is emptied once the handler has seen the message. */
static int on_message(void *ctx, const uint8_t *p, size_t n) {
  grpc_call_t *c = ctx;
  enum grpc_method_kind k = c->method->kind;
  bool single = k == GRPC_UNARY || k == GRPC_SERVER_STREAM;
  if (single && c->unary_msg) return 0; /* extra messages of a unary request are ignored */
  arena_t *a = single ? &c->arena : &c->scratch;
  ProtobufCMessage *m = protobuf_c_message_unpack(c->method->request, &a->pb, n, p);
  if (!m) {
    if (!single) {
      arena_destroy(a);
      arena_init(a);
    }
    grpc_call_abort(c, GRPC_INTERNAL,
                    "grpc: error unmarshalling request: proto: cannot parse invalid wire-format data");
    return 1;
  }
  if (single) {
    c->unary_msg = m;
    return 0;
  }
  grpc_call_dispatch(c, m);   /* the stream is open: the call outlives this */
  arena_destroy(&c->scratch); /* msg was valid during on_message only */
  arena_init(&c->scratch);
  return c->wire_finished || c->cancelled;
}

/* Deframes request DATA into messages for the handler; a framing error ends the call. */
static void feed(grpc_call_t *c, const uint8_t *data, size_t len) {
  int rc = grpc_deframer_feed(&c->in, data, len, on_message, c);
  if (rc >= 0) return;
  char msg[128];
  switch (rc) {
    case GRPC_DEFRAME_TOO_LARGE:
      snprintf(msg, sizeof(msg), "grpc: received message larger than max (%u vs. %zu)", c->in.msg_len,
               c->in.max_len);
      grpc_call_abort(c, GRPC_RESOURCE_EXHAUSTED, msg);
      break;
    case GRPC_DEFRAME_COMPRESSED:
      grpc_call_abort(c, GRPC_UNIMPLEMENTED, "grpc: compressed messages not supported");
      break;
    default:
      snprintf(msg, sizeof(msg), "grpc: received unexpected payload format %u", c->in.flag);
      grpc_call_abort(c, GRPC_INTERNAL, msg);
      break;
  }
}

void grpc_session_release(grpc_call_t *c) {
  buf_t in = c->held_in;
  c->held_in = (buf_t){0};
  c->nest++; /* the handler may finish the call in here */
  if (in.len) feed(c, in.data, in.len);
  buf_free(&in);
  if (c->remote_closed && !c->wire_finished && !c->cancelled) dispatch_remote_end(c);
  c->nest--;
  grpc_call_maybe_free(c);
}

/* nghttp2: a chunk of DATA payload for a stream. */
static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                         void *user) {
  (void)flags, (void)user;
  grpc_call_t *c = stream_call(h2, sid);
  if (!c || c->wire_finished || c->cancelled) return 0;
  if (c->http_req) {
    size_t max = c->srv->opts.max_recv_msg_bytes;
    if (c->in.body.len + len > max) {
      static const uint8_t text[] = "request body too large\n";
      grpc_call_http_respond(c, 413, NULL, text, sizeof(text) - 1);
      return 0;
    }
    buf_append(&c->in.body, data, len);
    return 0;
  }
  if (!c->method) return 0;
  if (c->held) { /* deframed when released; at most a request's worth is kept */
    if (c->held_in.len + len > (size_t)c->srv->opts.max_recv_msg_bytes + GRPC_FRAME_PREFIX)
      grpc_call_abort(c, GRPC_RESOURCE_EXHAUSTED, "grpc: too much request data while the call waits");
    else
      buf_append(&c->held_in, data, len);
    return 0;
  }
  feed(c, data, len);
  return 0;
}

/* nghttp2: a complete frame was received. */
static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *user) {
  (void)user;
  if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) return 0;
  grpc_call_t *c = stream_call(h2, f->hd.stream_id);
  if (!c) return 0;
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) on_request_headers(c);
  if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) on_remote_end(c);
  return 0;
}

/* nghttp2: a stream closed (normally, by RST_STREAM, or by GOAWAY). */
static int on_stream_close(nghttp2_session *h2, int32_t sid, uint32_t error_code, void *user) {
  (void)error_code, (void)user;
  grpc_call_t *c = stream_call(h2, sid);
  if (c) {
    nghttp2_session_set_stream_user_data(h2, sid, NULL);
    grpc_call_stream_closed(c);
  }
  return 0;
}

/* nghttp2: a frame went out. After our END_STREAM on a stream the client has not
 * half-closed, reset it with NO_ERROR (as grpc-go does) so that it closes. */
static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *user) {
  (void)user;
  if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
      !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  grpc_call_t *c = stream_call(h2, f->hd.stream_id);
  if (c && !c->remote_closed)
    nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
  return 0;
}

/* nghttp2: serialized frame bytes to send; gathered into the connection buffer. */
static ssize_t on_send(nghttp2_session *h2, const uint8_t *data, size_t len, int flags, void *user) {
  (void)h2, (void)flags;
  grpc_conn_t *conn = user;
  if (conn->writing && conn->out.len >= GRPC_OUT_HIGH_WATER) return NGHTTP2_ERR_WOULDBLOCK;
  buf_append(&conn->out, data, len);
  return (ssize_t)len;
}

/* ============================== setup ============================== */

void grpc_session_init_callbacks(grpc_server_t *s) {
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_send_callback(cb, on_send);
  nghttp2_session_callbacks_set_send_data_callback(cb, grpc_call_data_send);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
  s->cbs = cb;
  nghttp2_option_new(&s->h2opt);
  nghttp2_option_set_no_closed_streams(s->h2opt, 1);
  /* Go clients send ":authority: http://host:port" when dialed with a URL; nghttp2's HTTP
   * messaging checks would reset such streams, and grpc-go's server accepts them. */
  nghttp2_option_set_no_http_messaging(s->h2opt, 1);
}

int grpc_session_start(grpc_conn_t *c) {
  grpc_server_t *s = c->srv;
  int rv = nghttp2_session_server_new2(&c->h2, s->cbs, c, s->h2opt);
  if (rv) return rv;
  nghttp2_settings_entry iv[2];
  size_t n = 0;
  iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW};
  if (s->opts.max_concurrent_streams)
    iv[n++] =
        (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->opts.max_concurrent_streams};
  rv = nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, n);
  if (!rv) rv = nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
  return rv;
}
