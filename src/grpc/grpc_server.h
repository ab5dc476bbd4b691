/* gRPC server over cleartext HTTP/2 (h2c, prior knowledge) on libuv + nghttp2.
 *
 * Everything runs on the one libuv loop thread. The server accepts TCP connections,
 * speaks HTTP/2 through nghttp2, frames gRPC messages (5-byte prefix), decodes them with
 * the method's protobuf-c descriptor and hands them to the method's handler. Plain HTTP
 * requests on the same port (HTTP/1.1, detected by the absence of the h2 preface, or
 * HTTP/2 with a non-gRPC content-type) go to an http1 handler (/health, /version,
 * /metrics, the /v3/ JSON gateway), which answers them asynchronously.
 *
 * Call lifetime: a call is created when a request's headers arrive. The handler must call
 * grpc_call_finish() exactly once; after that it must not touch the call. If the client
 * goes away first (RST_STREAM, connection closed, deadline), the method's on_cancel hook
 * runs (if set); the handler still calls grpc_call_finish() (a no-op on the wire), which
 * is what frees the call. Sends on a cancelled call are dropped and return CETCD_ECANCELED.
 * When the deadline passes before the handler finished, the server itself answers
 * DEADLINE_EXCEEDED ("context deadline exceeded") and the handler's finish only frees.
 *
 * Messages: a unary or server-stream request is decoded into the call's arena as it
 * arrives and handed to on_message when the client half-closes; it lives as long as the
 * call. Client-stream and bidi requests are handed over one by one as they complete, each
 * decoded into a per-message scratch arena that is reset when on_message returns: such a
 * `msg` is valid only during on_message, and the handler copies what it keeps (into
 * grpc_call_arena, which lives as long as the call, or its own memory). Long-lived streams
 * should build responses in a scratch arena of their own too.
 * Responses are written with one socket write per connection per loop iteration.
 *
 * Local calls (grpc_local_call_new) run a method's handler in process, without a
 * connection: the JSON gateway uses them. The handler cannot tell them apart except by
 * grpc_call_peer() returning "local".
 */
#ifndef CETCD_GRPC_SERVER_H
#define CETCD_GRPC_SERVER_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/arena.h"
#include "base/buf.h"
#include "net/tls.h"

/* gRPC status codes. */
enum grpc_status {
  GRPC_OK = 0,
  GRPC_CANCELLED = 1,
  GRPC_UNKNOWN = 2,
  GRPC_INVALID_ARGUMENT = 3,
  GRPC_DEADLINE_EXCEEDED = 4,
  GRPC_NOT_FOUND = 5,
  GRPC_ALREADY_EXISTS = 6,
  GRPC_PERMISSION_DENIED = 7,
  GRPC_RESOURCE_EXHAUSTED = 8,
  GRPC_FAILED_PRECONDITION = 9,
  GRPC_ABORTED = 10,
  GRPC_OUT_OF_RANGE = 11,
  GRPC_UNIMPLEMENTED = 12,
  GRPC_INTERNAL = 13,
  GRPC_UNAVAILABLE = 14,
  GRPC_DATA_LOSS = 15,
  GRPC_UNAUTHENTICATED = 16,
};

typedef struct grpc_server grpc_server_t;
typedef struct grpc_call grpc_call_t;

enum grpc_method_kind { GRPC_UNARY, GRPC_SERVER_STREAM, GRPC_CLIENT_STREAM, GRPC_BIDI_STREAM };

/* One RPC method. Tables of these are registered with grpc_server_add_methods and must
 * outlive the server. */
typedef struct grpc_method {
  const char *path; /* "/etcdserverpb.KV/Range" */
  enum grpc_method_kind kind;
  const ProtobufCMessageDescriptor *request; /* decoder for incoming messages */
  /* Called for each decoded request message. For unary and server-stream methods it is
   * called exactly once, after the client half-closed, and msg is owned by the call's
   * arena. For client-stream and bidi methods msg is valid only during this call. */
  void (*on_message)(grpc_call_t *call, ProtobufCMessage *msg);
  /* Streams only (optional): the client half-closed its side. */
  void (*on_half_close)(grpc_call_t *call);
  /* Optional: the client cancelled or disconnected or the deadline passed. */
  void (*on_cancel)(grpc_call_t *call);
} grpc_method_t;

/* One plain HTTP request waiting for its answer (HTTP/1.1, or HTTP/2 with a non-gRPC
 * content-type). It stays valid until answered with grpc_http_respond or
 * grpc_http_respond_end, even if the client goes away first (the answer is then dropped). */
typedef struct grpc_http_req grpc_http_req_t;

/* Called for every plain HTTP request. The handler must eventually answer, now or later
 * from the loop thread, with grpc_http_respond, or with grpc_http_respond_chunk... then
 * grpc_http_respond_end. method, path and the request headers stay valid until the answer;
 * body only during this call. Unknown paths should be answered 404 by the handler. */
typedef void (*grpc_http1_handler_fn)(void *ctx, grpc_http_req_t *req, const char *method, const char *path,
                                      const uint8_t *body, size_t len);

typedef struct grpc_server_opts {
  size_t max_recv_msg_bytes;       /* larger messages fail with RESOURCE_EXHAUSTED; 0 = 4 MiB */
  uint32_t max_concurrent_streams; /* per connection, 0 = unlimited */
  grpc_http1_handler_fn http1;     /* may be NULL */
  void *http1_ctx;
  /* Optional interceptor, run before a method's handler first sees a call (remote or
   * local) with its first message (NULL if the client half-closed without one): returns
   * GRPC_OK to let it through, or a status (and *message, static) that ends the call
   * instead, without the handler. */
  int (*gate)(grpc_call_t *call, const ProtobufCMessage *msg, const char **message);
  /* Optional: asked once a gRPC call's request headers are complete (a local call: when it
   * is started), before any message reaches the gate or the handler. True holds the call:
   * its request bytes (a local call: its message) are kept and no handler runs until
   * grpc_server_recheck_held finds hold false for it; a deadline, a cancellation or the
   * client going away still end it meanwhile. */
  bool (*hold)(grpc_call_t *call);
} grpc_server_opts_t;

/* Creates a server on `loop` (opts copied; may be NULL for defaults). Returns NULL only if
 * opts are invalid (max_recv_msg_bytes above 4 GiB - 1). */
grpc_server_t *grpc_server_new(uv_loop_t *loop, const grpc_server_opts_t *opts);
/* Registers n methods (borrowed; must outlive the server) with ctx (borrowed), which their
 * handlers get from grpc_call_ctx. Unknown paths get UNIMPLEMENTED. Registering a path
 * again replaces the earlier entry and its ctx. */
void grpc_server_add_methods(grpc_server_t *s, const grpc_method_t *methods, size_t n, void *ctx);
/* Starts listening on host:port (SO_REUSEADDR, backlog 511). host is an IPv4/IPv6 literal
 * (brackets allowed), "localhost" (= 127.0.0.1), another name (resolved synchronously) or
 * NULL/"" (= 0.0.0.0); port 0 picks an ephemeral port. May be called up to 8 times.
 * With tls (not owned; it must outlive the server) the listener speaks TLS.
 * Returns 0 or a negative libuv/errno code. */
int grpc_server_listen(grpc_server_t *s, const char *host, int port, tls_ctx_t *tls);
/* The local port of the first listener (useful after listening on port 0), or -1. */
int grpc_server_port(grpc_server_t *s);
/* Counts the socket reads that brought bytes (never reset): a change means a client sent
 * something. Valid until grpc_server_free. */
const uint64_t *grpc_server_read_counter(grpc_server_t *s);
/* Ends every open call on a connection (local calls are not included) that match(call, arg)
 * selects, as an expired deadline does: the client gets status and message (static), and
 * the method's on_cancel runs; the handler still finishes the call. */
void grpc_server_abort_calls(grpc_server_t *s, bool (*match)(grpc_call_t *call, void *arg), void *arg,
                             int status, const char *message);
/* Asks opts.hold again for every held call and lets through, in arrival order, those it no
 * longer holds (their messages reach the gate and the handler now). Cheap when none is
 * held. */
void grpc_server_recheck_held(grpc_server_t *s);
/* Writes out now what calls answered since the last flush (normally done once per loop
 * iteration, just before the loop waits for I/O); for code that answers calls late in an
 * iteration, after the server's own flush may have run. */
void grpc_server_flush(grpc_server_t *s);
/* Graceful shutdown: stop accepting, send GOAWAY on every connection (HTTP/1.1 ones close
 * once their request in flight is answered), let in-flight calls, HTTP requests and started
 * local calls finish; `done` runs on the loop once every connection has closed and every
 * local call finished (or after `grace_ms`, when the connections left are closed forcibly —
 * cancelling their calls and HTTP requests — and the local calls left are cancelled with
 * grpc_local_call_cancel semantics). */
void grpc_server_shutdown(grpc_server_t *s, unsigned grace_ms, void (*done)(void *), void *arg);
/* Frees the server. Normally called after shutdown's `done`; if shutdown has not run it is
 * started with no grace period and the memory is released once it completes. Calls whose
 * handlers have not finished and HTTP requests not yet answered keep the server's memory
 * alive until they are (their answers are then no-ops on the wire), so handlers must still
 * finish every call and answer every request they saw. */
void grpc_server_free(grpc_server_t *s);

/* ---- plain HTTP answers (loop thread only) ---- */

/* Sends a complete response (content_type NULL = text/plain) and frees req. After
 * grpc_http_respond_chunk it sends body as a last chunk and ends the stream instead. */
void grpc_http_respond(grpc_http_req_t *req, int status, const char *content_type, const uint8_t *body,
                       size_t len);
/* Streams a response: the first call sends status 200 with content-type application/json
 * (and Transfer-Encoding: chunked over HTTP/1.1); each chunk is flushed in the current loop
 * iteration. Empty chunks are ignored. A no-op once the client has gone. */
void grpc_http_respond_chunk(grpc_http_req_t *req, const uint8_t *data, size_t len);
/* Ends a streamed response (an empty 200 application/json one if no chunk was sent) and
 * frees req. */
void grpc_http_respond_end(grpc_http_req_t *req);
/* Bytes of a streamed response not yet taken by the client (queued behind HTTP/2 flow
 * control or in the connection's unsent output); 0 once the client has gone. */
size_t grpc_http_req_pending_bytes(grpc_http_req_t *req);
/* A request header's value (name matched without case), or NULL. Valid until the answer. */
const char *grpc_http_req_header(grpc_http_req_t *req, const char *name);
/* True once the client went away (closed the connection, reset the stream, or the server
 * shut it down) before the answer completed. */
bool grpc_http_req_gone(grpc_http_req_t *req);
/* Registers cb (replacing an earlier one) to run once if the client goes away before the
 * answer completes; runs it at once if it has already gone. cb may answer (and so free)
 * req; it is never run after the answer completed. */
void grpc_http_req_on_close(grpc_http_req_t *req, void (*cb)(void *arg), void *arg);

/* ---- local (in-process) calls ---- */

/* Receives what the handler of a local call produces. */
typedef struct grpc_local_ops {
  /* Each message the handler sends (borrowed: only valid during the callback). */
  void (*on_send)(void *ctx, const ProtobufCMessage *msg);
  /* Exactly once for a started call, when the handler calls grpc_call_finish (status and
   * message as the handler passed them, message unencoded and possibly NULL). Not called
   * for a call given up with grpc_local_call_abort. The call is freed right after. */
  void (*on_finish)(void *ctx, int status, const char *message);
  /* Optional: bytes sent but not yet taken by the consumer (what grpc_call_pending_bytes
   * reports for the call, so a slow consumer is held back as on a real stream); NULL = 0. */
  size_t (*pending_bytes)(void *ctx);
} grpc_local_ops_t;

/* Creates a call to method `path` not attached to any connection, or NULL if the path is
 * unknown. The caller decodes the request into grpc_call_arena(call), may add metadata,
 * then calls grpc_local_call_start, or gives up with grpc_local_call_abort. ops and ctx
 * are borrowed until on_finish. */
grpc_call_t *grpc_local_call_new(grpc_server_t *s, const char *path, const grpc_local_ops_t *ops, void *ctx);
/* Adds request metadata (name lower-cased, both copied) seen by grpc_call_metadata, e.g.
 * the gateway passes the Authorization header as "token". Before start only. */
void grpc_local_call_set_metadata(grpc_call_t *call, const char *name, const char *value);
/* Hands msg (owned by the call's arena, or outliving the call) to the method's on_message,
 * then, for client-stream and bidi methods whose handler has not finished, to
 * on_half_close. The handler may finish, and so free the call (after on_finish), within
 * this function, so the caller must not touch the call afterwards unless it knows the
 * call is still running (i.e. on_finish has not run). If the call was cancelled before
 * being started, no handler runs: on_finish(GRPC_CANCELLED, "context canceled") is
 * delivered at once. */
void grpc_local_call_start(grpc_call_t *call, ProtobufCMessage *msg);
/* Frees a local call that was never started (no callback runs). */
void grpc_local_call_abort(grpc_call_t *call);
/* Cancels a local call, e.g. because the HTTP client went away. On a started call whose
 * handler has not finished: marks it cancelled (grpc_call_cancelled is true, sends are
 * dropped with CETCD_ECANCELED and no longer reach on_send) and runs the method's
 * on_cancel, if any. The handler still calls grpc_call_finish — possibly inside on_cancel,
 * so within this function — and on_finish is delivered then, with the handler's status;
 * the call is freed after it. On a call not started yet it only marks it cancelled (see
 * grpc_local_call_start). A second cancel is a no-op; after on_finish the call is gone and
 * must not be cancelled. */
void grpc_local_call_cancel(grpc_call_t *call);

/* ---- per-call API (loop thread only) ---- */

/* The call's arena, which lives as long as the call: unary and server-stream requests
 * live here; use it for response messages and anything kept across stream messages. */
arena_t *grpc_call_arena(grpc_call_t *call);
/* Handler-owned pointer, NULL initially. */
void *grpc_call_user(grpc_call_t *call);
void grpc_call_set_user(grpc_call_t *call, void *user);
/* Value of a request metadata header (e.g. "token", "hasleader"; name matched without
 * case), or NULL. Borrowed from the call's arena. */
const char *grpc_call_metadata(grpc_call_t *call, const char *name);
/* The CN of the verified client certificate of the call's TLS connection, copied into the
 * call's arena; NULL for a plain connection, one without a client certificate, or a local
 * call. */
const char *grpc_call_peer_cn(grpc_call_t *call);
/* The server the call arrived on (NULL for a local call). */
grpc_server_t *grpc_call_server(grpc_call_t *call);
/* The method this call invokes. */
const grpc_method_t *grpc_call_method(grpc_call_t *call);
/* The ctx the method's table was registered with (grpc_server_add_methods); remote and
 * local calls alike, also in the server's gate. */
void *grpc_call_ctx(grpc_call_t *call);
/* True once the client cancelled/disconnected or the deadline passed. */
bool grpc_call_cancelled(grpc_call_t *call);
/* Deadline from grpc-timeout in uv_now() milliseconds, or 0 when none. */
uint64_t grpc_call_deadline_ms(grpc_call_t *call);
/* Serializes msg and queues it as one gRPC message (headers are sent before the first);
 * on a local call, hands it to ops->on_send synchronously instead. Returns 0, or
 * CETCD_ECANCELED if the call is gone. msg is borrowed. */
int grpc_call_send(grpc_call_t *call, const ProtobufCMessage *msg);
/* Like grpc_call_send, but the message is msg's serialized fields followed by tail
 * (tail_len bytes of already serialized fields of the same message type, borrowed):
 * protobuf concatenates repeated fields, so a caller can keep encoded elements aside
 * and send them under one header later. Not for local calls (CETCD_EINVAL). */
int grpc_call_send_with_tail(grpc_call_t *call, const ProtobufCMessage *msg, const uint8_t *tail,
                             size_t tail_len);
/* True if the call (not a local one) has queued bytes HTTP/2 has not taken yet: what is
 * sent now waits behind them, so a streaming handler may keep it aside and coalesce it
 * until the refill hook below asks. */
bool grpc_call_backlogged(grpc_call_t *call);
/* Registers fn (NULL = none) to run when HTTP/2 could send more of the call's data than
 * is queued (it fills a DATA frame: called again while it adds bytes and the frame has
 * room). fn may queue messages with grpc_call_send*; it must not finish the call. It runs
 * inside the connection's flush, so what it queues leaves in the same socket write. */
void grpc_call_set_refill(grpc_call_t *call, void (*fn)(grpc_call_t *call));
/* Bytes queued on this call and not yet handed to the connection (for slow-consumer
 * limits; HTTP/2 flow control holds them here when the client does not read). For a local
 * call, what its ops' pending_bytes reports (the gateway: its HTTP client's backlog). */
size_t grpc_call_pending_bytes(grpc_call_t *call);
/* Convenience for unary replies: grpc_call_send(msg) then grpc_call_finish(GRPC_OK).
 * Returns what grpc_call_send returned; the call is finished either way. */
int grpc_call_reply(grpc_call_t *call, const ProtobufCMessage *msg);
/* Ends the call with a status and message (message may be NULL; it is percent-encoded in
 * grpc-message). An error with no prior message is sent trailers-only. Frees the call
 * (now, or once nghttp2 is done with it); a local call delivers on_finish first. Call
 * exactly once. */
void grpc_call_finish(grpc_call_t *call, int status, const char *message);
/* Peer address "ip:port" of the call's connection ("local" for local calls), borrowed. */
const char *grpc_call_peer(grpc_call_t *call);

/* Process-wide observer of calls, for metrics: run on the loop thread with code -1 when a
 * method's handler first sees a call, and with the final gRPC status code when the call
 * finishes (GRPC_CANCELLED if the client went away first; the server's own status if it
 * ended the call, e.g. DEADLINE_EXCEEDED). Only calls to registered methods are
 * observed. NULL (the default) turns it off. */
typedef void (*grpc_call_observer_fn)(const grpc_method_t *m, int code);
void grpc_set_call_observer(grpc_call_observer_fn fn);

#endif
