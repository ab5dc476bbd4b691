/* Private to src/grpc/: the server, connection and call structures and the functions
 * the files of the folder share. Other modules use grpc_server.h only. */
#ifndef CETCD_GRPC_INT_H
#define CETCD_GRPC_INT_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>

#include "base/arena.h"
#include "base/buf.h"
#include "grpc/grpc_frame.h"
#include "grpc/grpc_server.h"

/* ---- intrusive circular doubly linked list ---- */

typedef struct grpc_list {
  struct grpc_list *prev, *next;
} grpc_list_t;

/* Makes l an empty list head (or an unlinked node). */
static inline void grpc_list_init(grpc_list_t *l) { l->prev = l->next = l; }
/* True if the head has no nodes (or the node is unlinked). */
static inline bool grpc_list_empty(const grpc_list_t *l) { return l->next == l; }
/* Appends node n at the tail of head h. */
static inline void grpc_list_push(grpc_list_t *h, grpc_list_t *n) {
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}
/* Unlinks n (safe on an unlinked node) and leaves it unlinked. */
static inline void grpc_list_remove(grpc_list_t *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  grpc_list_init(n);
}
#define GRPC_CONTAINER(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- structures ---- */

typedef struct grpc_conn grpc_conn_t;
struct grpc_http1_req;

enum { GRPC_CONN_DETECT, GRPC_CONN_H2, GRPC_CONN_HTTP1 };

typedef struct grpc_md grpc_md_t;

/* A plain HTTP request handed to the HTTP handler (see grpc_server.h). */
struct grpc_http_req {
  grpc_server_t *srv;
  grpc_conn_t *conn;         /* HTTP/1.1: holds a reference until the request is freed */
  grpc_call_t *call;         /* HTTP/2: the stream's call, alive until the answer */
  arena_t arena;             /* HTTP/1.1: method, path and headers */
  const char *method, *path; /* HTTP/1.1 (arena) */
  grpc_md_t *hdr;            /* HTTP/1.1 headers (names lower case) */
  uint32_t n_hdr;
  void (*on_close)(void *);
  void *on_close_arg;
  bool keep_alive; /* HTTP/1.1: the connection may take another request after this one */
  bool streaming;  /* grpc_http_respond_chunk started the response */
  bool gone;       /* the client went away before the answer completed */
};

struct grpc_md {
  const char *name; /* lower case, arena */
  const char *value;
};

struct grpc_call {
  grpc_server_t *srv;
  grpc_conn_t *conn;           /* holds a reference for the call's whole life; NULL if local */
  const grpc_method_t *method; /* NULL when the request was refused before dispatch */
  void *method_ctx;            /* the context registered with the method's table */
  int32_t stream_id;
  arena_t arena;
  arena_t scratch; /* stream methods: the request message being handled, reset after it */
  void *user;
  const char *path; /* arena */
  grpc_md_t *md;    /* arena */
  uint32_t n_md, cap_md, md_bytes;
  uint64_t deadline; /* uv_now ms, 0 = none */
  size_t heap_idx;   /* position in the deadline heap, SIZE_MAX if not there */
  grpc_deframer_t in;
  ProtobufCMessage *unary_msg;   /* unary/server-stream request, decoded, waiting for END_STREAM */
  buf_t out;                     /* framed response messages not yet handed to nghttp2 */
  size_t out_off;                /* bytes of `out` already sent */
  size_t out_committed;          /* bytes after out_off promised to nghttp2's DATA frame */
  void (*refill)(grpc_call_t *); /* grpc_call_set_refill */
  int status;                    /* final grpc-status */
  const char *status_msg;        /* percent-encoded grpc-message (arena) or NULL */
  const char *http_method;       /* :method (arena), for plain HTTP requests over h2 */
  grpc_http_req_t *hreq;         /* plain HTTP request handed to the HTTP handler, unanswered */
  const grpc_local_ops_t *lops;  /* local calls */
  void *lctx;
  int nest;               /* > 0 while we run handler code on it: defers freeing */
  uint8_t bad_request;    /* header check result, see grpc_session.c */
  bool http_req;          /* not gRPC: routed to the server's HTTP handler */
  bool http_resp;         /* the response is a plain HTTP one (no trailers) */
  bool headers_submitted; /* response HEADERS (or trailers-only) queued */
  bool deferred;          /* our data provider returned NGHTTP2_ERR_DEFERRED */
  bool wire_finished;     /* the final status has been decided and queued */
  bool remote_closed;     /* the client sent END_STREAM */
  bool stream_closed;     /* nghttp2 closed the stream or the connection went away */
  bool dispatched;        /* the handler has seen the call */
  bool handler_done;      /* grpc_call_finish ran (or no handler will ever run) */
  bool cancelled;
  bool local;                 /* grpc_local_call_new: no connection, no stream */
  bool held;                  /* opts.hold holds it: no message goes to the gate or handler yet */
  buf_t held_in;              /* held remote call: request DATA received meanwhile, not deframed yet */
  ProtobufCMessage *held_msg; /* held local call: the message it was started with */
  grpc_list_t held_link;      /* in srv->held while held */
  grpc_list_t link;           /* in conn->calls while the stream is open; in srv->locals while a
                                 started local call runs */
  struct grpc_call *next_free;
};

struct grpc_conn {
  uv_tcp_t tcp;
  grpc_server_t *srv;
  nghttp2_session *h2;
  int mode;
  int refs; /* one for the socket (or the detached owner) + one per call */
  bool has_socket, closing, writing, read_paused, close_after_write, want_goaway, goaway_sent;
  bool http1_resume;     /* HTTP/1.1 keep-alive: parse the next buffered request at flush */
  bool tls_failed;       /* TLS handshake or record failed: send the alert, then close */
  grpc_http_req_t *hreq; /* HTTP/1.1: the request in flight (one at a time) */
  buf_t in;              /* preface detection and HTTP/1 request bytes */
  buf_t out;             /* bytes gathered for the next socket write */
  buf_t inflight;
  buf_t *sink;          /* detached connections: output goes here (NULL = discarded) */
  tls_conn_t *tls;      /* TLS listener: out is sealed into cipher before the socket */
  buf_t cipher;         /* TLS: ciphertext for the next socket write */
  uv_timer_t *hs_timer; /* TLS: closes a connection whose handshake takes too long */
  uv_write_t wreq;
  grpc_list_t calls; /* open streams */
  grpc_list_t link;  /* in srv->conns */
  grpc_list_t dirty; /* in srv->dirty while it has output to flush */
  char peer[64];
};

/* One registered method and the context its table was registered with. */
typedef struct grpc_method_slot {
  const grpc_method_t *m; /* NULL = free slot */
  void *ctx;
} grpc_method_slot_t;

struct grpc_server {
  uv_loop_t *loop;
  grpc_server_opts_t opts;
  grpc_method_slot_t *mt; /* open-addressing hash table by path */
  size_t mt_cap, mt_len;
  uv_tcp_t *listeners[8];
  tls_ctx_t *listener_tls[8]; /* per listener: NULL = plain TCP (not owned) */
  size_t n_listeners;
  uv_prepare_t prepare; /* flushes dirty connections once per loop iteration */
  uv_timer_t deadline_timer;
  uv_timer_t grace_timer;
  uint64_t timer_due; /* when deadline_timer fires, 0 = stopped */
  grpc_call_t **heap; /* deadline min-heap */
  size_t heap_len, heap_cap;
  grpc_list_t conns;
  grpc_list_t dirty;
  size_t n_conns; /* connections whose socket is not closed yet */
  nghttp2_session_callbacks *cbs;
  nghttp2_option *h2opt;
  uint8_t *rbuf;  /* shared read buffer: reads are processed synchronously */
  uint64_t reads; /* socket reads that brought bytes, for the loop's spinner */
  grpc_call_t *free_calls;
  size_t n_free_calls, live_calls;
  size_t live_reqs;   /* plain HTTP requests not yet freed */
  grpc_list_t locals; /* started local calls still running (shutdown waits for them) */
  grpc_list_t held;   /* calls opts.hold holds, in arrival order */
  bool shutting_down, handles_closing, shutdown_complete, free_requested;
  int pending_closes;
  void (*done)(void *);
  void *done_arg;
};

enum { GRPC_RBUF_SIZE = 64 * 1024, GRPC_OUT_HIGH_WATER = 1024 * 1024 };

/* ---- grpc_server.c ---- */

/* Looks up a method by :path; NULL if not registered. *ctx gets the context its table was
 * registered with. */
const grpc_method_t *grpc_server_find_method(grpc_server_t *s, const char *path, size_t len, void **ctx);
/* Writes the UNIMPLEMENTED message grpc-go uses for an unknown path into out (cap bytes). */
void grpc_server_unknown_method_msg(grpc_server_t *s, const char *path, char *out, size_t cap);
/* Hands req to the HTTP handler from the options (a 404 answer when there is none). */
void grpc_server_http(grpc_server_t *s, grpc_http_req_t *req, const char *method, const char *path,
                      const uint8_t *body, size_t len);
/* libuv prepare callback: flushes every dirty connection (one write per iteration). */
void grpc_server_on_prepare(uv_prepare_t *p);
/* Called when a call or HTTP request of a server that grpc_server_free already released is
 * freed: releases the memory once none is left. */
void grpc_server_maybe_release(grpc_server_t *s);
/* Called after a connection's socket closed (n_conns already decremented), a listener
 * closed or a local call stopped running; starts closing the server's handles once
 * shutdown has nothing left to wait for. */
void grpc_server_conn_gone(grpc_server_t *s);

/* ---- grpc_deadline.c ---- */

/* Adds the call (deadline set) to the server's deadline heap and arms the timer. */
void grpc_deadline_add(grpc_server_t *s, grpc_call_t *c);
/* Removes the call from the heap if it is there. */
void grpc_deadline_remove(grpc_server_t *s, grpc_call_t *c);
/* Timer callback: expires every call whose deadline has passed. */
void grpc_deadline_fire(uv_timer_t *t);

/* ---- grpc_conn.c ---- */

/* Creates a connection. With a socket, the caller accepts into c->tcp and calls
 * grpc_conn_start; without one (tests, fuzzing) output goes to `sink` (may be NULL). */
grpc_conn_t *grpc_conn_new(grpc_server_t *s, bool has_socket, buf_t *sink);
/* Starts reading an accepted socket. Returns 0 or a negative libuv code. */
int grpc_conn_start(grpc_conn_t *c);

/* ---- TLS on a connection (grpc_conn_tls.c) ---- */
/* Makes an accepted connection speak TLS with ctx (certificates re-read when changed) and
 * arms the handshake timeout. Returns 0 or -1. */
int grpc_conn_start_tls(grpc_conn_t *c, tls_ctx_t *ctx);
/* Ciphertext from the socket: decrypted and fed to grpc_conn_feed. */
void grpc_conn_tls_read(grpc_conn_t *c, const uint8_t *p, size_t n);
/* Seals c->out into c->cipher (with any handshake bytes). Returns 0, or -1 when the
 * connection was closed. */
int grpc_conn_tls_seal(grpc_conn_t *c);
/* The connection is closing: stops the handshake timer. */
void grpc_conn_tls_closing(grpc_conn_t *c);
/* Frees the TLS state (last reference gone). */
void grpc_conn_tls_free(grpc_conn_t *c);
/* The subject CN of the client certificate the TLS handshake verified, into out; false
 * without one. */
bool grpc_conn_peer_cn(const grpc_conn_t *c, char *out, size_t cap);
/* The input path: feeds bytes read from the peer. Returns 0, or -1 if the connection
 * was found bad and closed (a detached connection is then freed once its calls are). */
int grpc_conn_feed(grpc_conn_t *c, const uint8_t *p, size_t n);
/* Queues the connection for the once-per-iteration flush. */
void grpc_conn_mark_dirty(grpc_conn_t *c);
/* Sends what nghttp2 has queued and starts a socket write if none is in flight. */
void grpc_conn_flush(grpc_conn_t *c);
/* Tears the connection down: cancels its calls, frees the session, closes the socket. */
void grpc_conn_close(grpc_conn_t *c);
/* Drops one reference; the last frees the connection. */
void grpc_conn_unref(grpc_conn_t *c);

/* ---- grpc_session.c ---- */

/* Creates c->h2 with the server's callbacks and queues our SETTINGS. Returns 0 or an
 * nghttp2 error code. */
int grpc_session_start(grpc_conn_t *c);
/* Builds the shared nghttp2 callback table and options of a server. */
void grpc_session_init_callbacks(grpc_server_t *s);
/* Lets a held remote call go on: the request bytes kept meanwhile are deframed and handed
 * on, then the half-close if it came. May free the call. */
void grpc_session_release(grpc_call_t *c);

/* ---- grpc_hold.c ---- */

/* Holds call c (opts.hold said so): listed in srv->held until released or dropped. */
void grpc_hold_add(grpc_call_t *c);
/* Unlists a held call without releasing it (it was cancelled or is being freed). */
void grpc_hold_drop(grpc_call_t *c);

/* ---- grpc_call.c ---- */

/* Takes a call from the pool for a new stream on c. */
grpc_call_t *grpc_call_new(grpc_conn_t *c, int32_t stream_id);
/* Decides the final status on the wire (trailers or trailers-only) if not done yet. */
void grpc_call_wire_finish(grpc_call_t *c, int status, const char *msg);
/* Fails a call from our side (deadline, bad input): answers status/msg on the wire, marks
 * it cancelled and notifies the handler once. The call may not be freed by this: it runs
 * with the stream open. */
void grpc_call_abort(grpc_call_t *c, int status, const char *msg);
/* Lets a held local call go on: its message goes to the gate and the handler. May free
 * the call. */
void grpc_call_local_release(grpc_call_t *c);
/* Hands a decoded message (or the half-close when msg is NULL) to the handler. */
void grpc_call_dispatch(grpc_call_t *c, ProtobufCMessage *msg);
/* The stream is gone (closed by nghttp2 or the connection). May free the call. */
void grpc_call_stream_closed(grpc_call_t *c);
/* Frees the call when both the handler and nghttp2 are done with it. */
void grpc_call_maybe_free(grpc_call_t *c);
/* Data provider read callback: hands queued response bytes to nghttp2 (no copy). */
ssize_t grpc_call_data_read(nghttp2_session *h2, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                            nghttp2_data_source *src, void *user);
/* Writes one DATA frame's payload (from the call's queue) into the connection buffer. */
int grpc_call_data_send(nghttp2_session *h2, nghttp2_frame *frame, const uint8_t *framehd, size_t len,
                        nghttp2_data_source *src, void *user);
/* Answers a plain HTTP request made over HTTP/2 (body copied) and ends the call (a no-op
 * on the wire once the stream is gone). May free the call. */
void grpc_call_http_respond(grpc_call_t *c, int status, const char *content_type, const uint8_t *body,
                            size_t len);
/* Streams a chunk of a plain HTTP response over HTTP/2 (the first sends 200 + headers). */
void grpc_call_http_chunk(grpc_call_t *c, const uint8_t *data, size_t len);
/* Ends a streamed plain HTTP response over HTTP/2 and the call. May free the call. */
void grpc_call_http_end(grpc_call_t *c);
/* Frees calls kept in the server's pool. */
void grpc_call_pool_drain(grpc_server_t *s);
/* Appends one request metadata entry (copied into the call's arena, name as given). */
void grpc_call_md_add(grpc_call_t *c, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen);
/* Grace period over: cancels every started local call still running. */
void grpc_local_cancel_all(grpc_server_t *s);

/* ---- grpc_http.c ---- */

/* Creates the request object for an HTTP/2 call routed to the HTTP handler. */
grpc_http_req_t *grpc_http_req_new_h2(grpc_call_t *c);
/* Creates the request object for a parsed HTTP/1.1 request on c (method, path and
 * headers copied; takes a connection reference) and makes it c's request in flight. */
grpc_http_req_t *grpc_http_req_new_h1(grpc_conn_t *c, const struct grpc_http1_req *in);
/* The client went away before the answer completed: runs the on_close hook once. */
void grpc_http_req_client_gone(grpc_http_req_t *r);

#endif
