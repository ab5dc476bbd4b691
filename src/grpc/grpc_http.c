/* Plain HTTP requests handed to the HTTP handler: complete and chunked answers, request
 * headers and the client-went-away hook, over HTTP/1.1 connections and HTTP/2 streams.
 *
 * A request object lives from the handler's call until its answer completes (or, when the
 * client went away first, until the handler answers anyway). An HTTP/1.1 request holds a
 * connection reference; an HTTP/2 one keeps its call alive (the call's handler is not done
 * until the answer). */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "grpc/grpc_int.h"
#include "grpc/http1.h"

/* Allocates a request counted by the server. */
static grpc_http_req_t *req_alloc(grpc_server_t *s) {
  grpc_http_req_t *r = xcalloc(1, sizeof(*r));
  r->srv = s;
  arena_init(&r->arena);
  s->live_reqs++;
  return r;
}

/* Frees a request (its answer is complete or dropped). */
static void req_free(grpc_http_req_t *r) {
  grpc_server_t *s = r->srv;
  if (r->conn) {
    if (r->conn->hreq == r) r->conn->hreq = NULL;
    grpc_conn_unref(r->conn);
  }
  arena_destroy(&r->arena);
  free(r);
  s->live_reqs--;
  if (s->free_requested) grpc_server_maybe_release(s);
}

grpc_http_req_t *grpc_http_req_new_h2(grpc_call_t *c) {
  grpc_http_req_t *r = req_alloc(c->srv);
  r->call = c;
  c->hreq = r;
  c->dispatched = true;
  return r;
}

grpc_http_req_t *grpc_http_req_new_h1(grpc_conn_t *c, const grpc_http1_req_t *in) {
  grpc_http_req_t *r = req_alloc(c->srv);
  r->conn = c;
  c->refs++;
  c->hreq = r;
  r->keep_alive = in->keep_alive;
  r->method = arena_memdup(&r->arena, in->method, strlen(in->method));
  r->path = arena_memdup(&r->arena, in->path, strlen(in->path));
  r->n_hdr = (uint32_t)in->n_hdr;
  r->hdr = arena_alloc(&r->arena, (in->n_hdr ? in->n_hdr : 1) * sizeof(*r->hdr));
  for (size_t i = 0; i < in->n_hdr; i++) {
    char *name = arena_memdup(&r->arena, in->hdr[i].name, in->hdr[i].nlen);
    for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
    r->hdr[i].name = name;
    r->hdr[i].value = arena_memdup(&r->arena, in->hdr[i].value, in->hdr[i].vlen);
  }
  return r;
}

void grpc_http_req_client_gone(grpc_http_req_t *r) {
  if (r->gone) return;
  r->gone = true;
  void (*cb)(void *) = r->on_close;
  r->on_close = NULL;
  if (cb) cb(r->on_close_arg); /* may answer, and so free, r */
}

void grpc_http_req_on_close(grpc_http_req_t *r, void (*cb)(void *arg), void *arg) {
  r->on_close = cb;
  r->on_close_arg = arg;
  if (r->gone && cb) {
    r->on_close = NULL;
    cb(arg);
  }
}

bool grpc_http_req_gone(grpc_http_req_t *r) { return r->gone; }

const char *grpc_http_req_header(grpc_http_req_t *r, const char *name) {
  if (r->call) return grpc_call_metadata(r->call, name);
  for (uint32_t i = 0; i < r->n_hdr; i++)
    if (!strcasecmp(r->hdr[i].name, name)) return r->hdr[i].value;
  return NULL;
}

/* HTTP/1.1: decides whether the connection stays open, as the response head says. */
static bool h1_keep_alive(grpc_http_req_t *r) {
  r->keep_alive = r->keep_alive && !r->conn->want_goaway && !r->conn->srv->shutting_down;
  return r->keep_alive;
}

/* HTTP/1.1: the answer is fully queued; the connection takes the next request or closes
 * once it is written. */
static void h1_done(grpc_http_req_t *r) {
  grpc_conn_t *c = r->conn;
  c->hreq = NULL;
  if (r->keep_alive && !c->want_goaway)
    c->http1_resume = true;
  else
    c->close_after_write = true;
  grpc_conn_mark_dirty(c);
}

void grpc_http_respond(grpc_http_req_t *r, int status, const char *content_type, const uint8_t *body,
                       size_t len) {
  if (r->streaming) {
    grpc_http_respond_chunk(r, body, len);
    grpc_http_respond_end(r);
    return;
  }
  if (r->call) {
    grpc_call_t *c = r->call;
    c->hreq = NULL;
    grpc_call_http_respond(c, status, content_type, body, len); /* no-op on the wire if gone */
  } else if (!r->gone) {
    grpc_http1_response(&r->conn->out, status, content_type, body, len, h1_keep_alive(r));
    h1_done(r);
  }
  req_free(r);
}

void grpc_http_respond_chunk(grpc_http_req_t *r, const uint8_t *data, size_t len) {
  if (r->gone) return;
  bool first = !r->streaming;
  r->streaming = true;
  if (r->call) {
    grpc_call_http_chunk(r->call, data, len);
    return;
  }
  grpc_conn_t *c = r->conn;
  if (first) grpc_http1_chunked_head(&c->out, "application/json", h1_keep_alive(r));
  if (len) grpc_http1_chunk(&c->out, data, len);
  grpc_conn_mark_dirty(c);
}

size_t grpc_http_req_pending_bytes(grpc_http_req_t *r) {
  if (r->gone) return 0;
  if (r->call) return r->call->out.len - r->call->out_off;
  return r->conn->out.len + (r->conn->writing ? r->conn->inflight.len : 0);
}

void grpc_http_respond_end(grpc_http_req_t *r) {
  if (!r->streaming) {
    grpc_http_respond(r, 200, "application/json", NULL, 0);
    return;
  }
  if (r->call) {
    grpc_call_t *c = r->call;
    c->hreq = NULL;
    grpc_call_http_end(c);
  } else if (!r->gone) {
    grpc_http1_chunked_end(&r->conn->out);
    h1_done(r);
  }
  req_free(r);
}
