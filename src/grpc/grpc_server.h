/* gRPC server over cleartext HTTP/2 (h2c, prior knowledge) on libuv + nghttp2.
 *
 * Everything runs on the one libuv loop thread. The server accepts TCP connections,
 * speaks HTTP/2 through nghttp2, frames gRPC messages (5-byte prefix), decodes them with
 * the method's protobuf-c descriptor into the call's arena and hands them to the method's
 * handler. Plain HTTP/1.1 requests on the same port (detected by the absence of the h2
 * preface) go to an http1 handler (/health, /version, /metrics, the /v3/ JSON gateway).
 *
 * Call lifetime: a call is created when a request's headers arrive. The handler must call
 * grpc_call_finish() exactly once; after that it must not touch the call. If the client
 * goes away first (RST_STREAM, connection closed, deadline), the method's on_cancel hook
 * runs (if set); the handler still calls grpc_call_finish() (a no-op on the wire), which
 * is what frees the call. Sends on a cancelled call are dropped and return CETCD_ECANCELED.
 * When the deadline passes before the handler finished, the server itself answers
 * DEADLINE_EXCEEDED ("context deadline exceeded") and the handler's finish only frees.
 *
 * Messages: a unary or server-stream request is decoded as it arrives and handed to
 * on_message when the client half-closes; stream requests are handed over one by one as
 * they complete. All of them are decoded into the call's arena, which lives as long as the
 * call: long-lived streams should build responses in a scratch arena of their own.
 * Responses are written with one socket write per connection per loop iteration.
 *
 * A request whose content-type is not application/grpc is handed to the http1 handler
 * (so `curl --http2-prior-knowledge .../health` works too), or answered 415.
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
   * called exactly once, after the client half-closed. msg is owned by the call's arena. */
  void (*on_message)(grpc_call_t *call, ProtobufCMessage *msg);
  /* Streams only (optional): the client half-closed its side. */
  void (*on_half_close)(grpc_call_t *call);
  /* Optional: the client cancelled or disconnected or the deadline passed. */
  void (*on_cancel)(grpc_call_t *call);
} grpc_method_t;

/* Answers a plain HTTP/1.1 request. Fill *status (e.g. 200), *content_type (static
 * string) and append the body to `body`. Return false to answer 404. */
typedef bool (*grpc_http1_handler_fn)(void *ctx, const char *method, const char *path,
                                      const uint8_t *req_body, size_t req_len, int *status,
                                      const char **content_type, buf_t *body);

typedef struct grpc_server_opts {
  size_t max_recv_msg_bytes;       /* larger messages fail with RESOURCE_EXHAUSTED; 0 = 4 MiB */
  uint32_t max_concurrent_streams; /* per connection, 0 = unlimited */
  grpc_http1_handler_fn http1;     /* may be NULL */
  void *http1_ctx;
} grpc_server_opts_t;

/* Creates a server on `loop` (opts copied; may be NULL for defaults). Returns NULL only if
 * opts are invalid (max_recv_msg_bytes above 4 GiB - 1). */
grpc_server_t *grpc_server_new(uv_loop_t *loop, const grpc_server_opts_t *opts);
/* Registers n methods (borrowed; must outlive the server). Unknown paths get UNIMPLEMENTED.
 * Registering a path again replaces the earlier entry. */
void grpc_server_add_methods(grpc_server_t *s, const grpc_method_t *methods, size_t n);
/* Starts listening on host:port (SO_REUSEADDR, backlog 511). host is an IPv4/IPv6 literal
 * (brackets allowed), "localhost" (= 127.0.0.1), another name (resolved synchronously) or
 * NULL/"" (= 0.0.0.0); port 0 picks an ephemeral port. May be called up to 8 times.
 * Returns 0 or a negative libuv/errno code. */
int grpc_server_listen(grpc_server_t *s, const char *host, int port);
/* The local port of the first listener (useful after listening on port 0), or -1. */
int grpc_server_port(grpc_server_t *s);
/* Graceful shutdown: stop accepting, send GOAWAY on every connection, let in-flight calls
 * finish; `done` runs on the loop once every connection has closed (or after `grace_ms`,
 * when the rest are closed forcibly). */
void grpc_server_shutdown(grpc_server_t *s, unsigned grace_ms, void (*done)(void *), void *arg);
/* Frees the server. Normally called after shutdown's `done`; if shutdown has not run it is
 * started with no grace period and the memory is released once it completes. Calls whose
 * handlers have not finished keep the server's memory alive until they do (their finish
 * is then a no-op on the wire), so handlers must still finish every call they saw. */
void grpc_server_free(grpc_server_t *s);

/* ---- per-call API (loop thread only) ---- */

/* The call's arena: request messages live here; use it for response messages too. */
arena_t *grpc_call_arena(grpc_call_t *call);
/* Handler-owned pointer, NULL initially. */
void *grpc_call_user(grpc_call_t *call);
void grpc_call_set_user(grpc_call_t *call, void *user);
/* Value of a request metadata header (e.g. "token", "hasleader"; name matched without
 * case), or NULL. Borrowed from the call's arena. */
const char *grpc_call_metadata(grpc_call_t *call, const char *name);
/* The method this call invokes. */
const grpc_method_t *grpc_call_method(grpc_call_t *call);
/* True once the client cancelled/disconnected or the deadline passed. */
bool grpc_call_cancelled(grpc_call_t *call);
/* Deadline from grpc-timeout in uv_now() milliseconds, or 0 when none. */
uint64_t grpc_call_deadline_ms(grpc_call_t *call);
/* Serializes msg and queues it as one gRPC message (headers are sent before the first).
 * Returns 0, or CETCD_ECANCELED if the call is gone. msg is borrowed. */
int grpc_call_send(grpc_call_t *call, const ProtobufCMessage *msg);
/* Bytes queued on this call and not yet handed to the connection (for slow-consumer
 * limits; HTTP/2 flow control holds them here when the client does not read). */
size_t grpc_call_pending_bytes(grpc_call_t *call);
/* Convenience for unary replies: grpc_call_send(msg) then grpc_call_finish(GRPC_OK).
 * Returns what grpc_call_send returned; the call is finished either way. */
int grpc_call_reply(grpc_call_t *call, const ProtobufCMessage *msg);
/* Ends the call with a status and message (message may be NULL; it is percent-encoded in
 * grpc-message). An error with no prior message is sent trailers-only. Frees the call
 * (now, or once nghttp2 is done with it). Call exactly once. */
void grpc_call_finish(grpc_call_t *call, int status, const char *message);
/* Peer address "ip:port" of the call's connection, borrowed. */
const char *grpc_call_peer(grpc_call_t *call);

#endif
