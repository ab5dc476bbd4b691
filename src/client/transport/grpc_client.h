/* Client side of gRPC over HTTP/2 (h2c with prior knowledge, or TLS with ALPN h2 through
 * grpc_client_tls.h) on nghttp2 and libuv.
 *
 * A grpc_client owns a libuv loop running on its own I/O thread. Other threads hand work
 * to that thread with grpc_client_run_sync (a caller-owned task node, a mutex-protected
 * queue and uv_async_send) or make blocking unary calls with grpc_client_unary. Streams
 * (grpc_cstream_*) are driven on the I/O thread only and report messages and their end
 * through callbacks on that thread.
 *
 * Channels: channel -1 is the failover channel: one connection at a time to the current
 * endpoint; connect failures, dial timeouts and lost connections move it to the next
 * endpoint, with capped exponential backoff after each full round. Channel k (0 <= k < n)
 * is a dedicated connection to endpoint k that never fails over. Connections are opened
 * on demand: a stream opened while its channel is not connected waits (pending) until it
 * is, or until its deadline.
 *
 * Memory: every allocation goes through the allocator in the config (malloc-like; a
 * NULL return is handled as CETCD_ENOMEM, never aborts). This module never uses the
 * server's aborting wrappers. */
#ifndef CETCD_CLIENT_TRANSPORT_GRPC_CLIENT_H
#define CETCD_CLIENT_TRANSPORT_GRPC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The server's peer transport (server/peer.c) uses its own copy of this module: the server
 * core compiles these files with GRPC_CLIENT_PEER_COPY (CMakeLists.txt), which gives every
 * external name another prefix, so that the server core and libcetcd may be linked into
 * one test binary. */
#ifdef GRPC_CLIENT_PEER_COPY
#define grpc_client_batch_begin peer_gc_batch_begin
#define grpc_client_batch_end peer_gc_batch_end
#define grpc_client_current peer_gc_current
#define grpc_client_endpoint peer_gc_endpoint
#define grpc_client_failover peer_gc_failover
#define grpc_client_find_endpoint peer_gc_find_endpoint
#define grpc_client_free peer_gc_free
#define grpc_client_loop peer_gc_loop
#define grpc_client_n_endpoints peer_gc_n_endpoints
#define grpc_client_new peer_gc_new
#define grpc_client_on_io_thread peer_gc_on_io_thread
#define grpc_client_run_sync peer_gc_run_sync
#define grpc_client_set_token peer_gc_set_token
#define grpc_client_unary peer_gc_unary
#define grpc_client_unary_async peer_gc_unary_async
#define grpc_client_wait_ready peer_gc_wait_ready
#define grpc_cstream_cancel peer_gc_cstream_cancel
#define grpc_cstream_open peer_gc_cstream_open
#define grpc_cstream_send peer_gc_cstream_send
#define grpc_cstream_set_idle_timeout peer_gc_cstream_set_idle_timeout
#endif

/* The one call that never carries the auth token. */
#define GRPC_AUTHENTICATE_PATH "/etcdserverpb.Auth/Authenticate"

typedef struct grpc_client grpc_client_t;
typedef struct grpc_cstream grpc_cstream_t;

/* Allocator used by the transport (all three required). */
typedef struct grpc_client_mem {
  void *(*malloc_fn)(size_t n);
  void *(*realloc_fn)(void *p, size_t n);
  void (*free_fn)(void *p);
} grpc_client_mem_t;

struct grpc_tls_ops;
struct grpc_tls_ctx;

/* Configuration of grpc_client_new (borrowed; copied). */
typedef struct grpc_client_config {
  const char *const *endpoints; /* "host:port", "http://host:port" or "https://host:port" */
  size_t n_endpoints;
  /* TLS (grpc_client_tls.h): ops and settings, both borrowed for the client's lifetime.
   * With them, "https://" endpoints use TLS, and so do endpoints without a scheme when
   * tls_default is set; without them "https://" endpoints are CETCD_EINVAL. */
  const struct grpc_tls_ops *tls_ops;
  struct grpc_tls_ctx *tls_ctx;
  bool tls_default;
  int dial_timeout_ms;   /* > 0 */
  size_t max_recv_bytes; /* largest message accepted */
  grpc_client_mem_t mem;
} grpc_client_config_t;

/* How a stream ended. err is 0 when the server answered with a gRPC status (status,
 * message), or a local CETCD_E* code: CETCD_ETIMEOUT (deadline), CETCD_EUNAVAILABLE
 * (connection lost or never made), CETCD_ECANCELED (client shutting down), CETCD_ENOMEM,
 * CETCD_EGRPC (protocol violation by the server; message says what). sent tells whether
 * the request may have reached the server (false: it provably did not). */
typedef struct grpc_close_info {
  int err;
  int status;
  const char *message; /* borrowed, valid during the callback; never NULL */
  bool sent;
} grpc_close_info_t;

/* Stream callbacks, run on the I/O thread. on_message gets one whole message (payload
 * borrowed for the call) and returns 0, or nonzero to cancel the stream (on_close is then
 * not called). on_close is called exactly once unless the stream was cancelled; the
 * stream is freed right after it returns. */
typedef struct grpc_cstream_cbs {
  int (*on_message)(void *ctx, grpc_cstream_t *s, const uint8_t *msg, size_t len);
  void (*on_close)(void *ctx, grpc_cstream_t *s, const grpc_close_info_t *info);
} grpc_cstream_cbs_t;

/* Creates a client and starts its I/O thread (no connection yet). Returns 0,
 * CETCD_EINVAL (bad endpoint), CETCD_ENOMEM or a negative errno/libuv error. */
int grpc_client_new(const grpc_client_config_t *cfg, grpc_client_t **out);
/* Fails every stream with CETCD_ECANCELED, closes the connections, joins the I/O thread
 * and frees the client. Must not be called on the I/O thread. */
void grpc_client_free(grpc_client_t *gc);
/* True when called on gc's I/O thread. */
bool grpc_client_on_io_thread(const grpc_client_t *gc);
/* Number of endpoints, and endpoint k as "host:port" (owned by gc). */
size_t grpc_client_n_endpoints(const grpc_client_t *gc);
const char *grpc_client_endpoint(const grpc_client_t *gc, size_t k);
/* Index of the failover channel's current endpoint. Thread-safe. */
size_t grpc_client_current(const grpc_client_t *gc);
/* Index of the endpoint named s ("host:port", "http://host:port" or "https://..."), or -1. */
int grpc_client_find_endpoint(const grpc_client_t *gc, const char *s);
/* Starts connecting the failover channel and waits up to timeout_ms for it to be ready.
 * Returns 0 or CETCD_EUNAVAILABLE. Any thread but the I/O thread. */
int grpc_client_wait_ready(grpc_client_t *gc, int timeout_ms);
/* Forces the failover channel to drop its connection and move to the next endpoint
 * (used when a server answers UNAVAILABLE). I/O thread only. */
void grpc_client_failover(grpc_client_t *gc);

/* Runs fn(gc, arg) on the I/O thread and waits for it to return (runs it inline when
 * called on the I/O thread). Returns 0, or CETCD_ECANCELED when the client is shutting
 * down (fn not run). */
int grpc_client_run_sync(grpc_client_t *gc, void (*fn)(grpc_client_t *gc, void *arg), void *arg);

/* Batch mode (I/O thread only): streams opened and messages sent between
 * grpc_client_batch_begin and grpc_client_batch_end do not write to the sockets; batch_end
 * writes each connection once for all of them. */
void grpc_client_batch_begin(grpc_client_t *gc);
void grpc_client_batch_end(grpc_client_t *gc);

/* A blocking unary call (any thread but the I/O thread). */
typedef struct grpc_unary {
  const char *path;    /* "/etcdserverpb.KV/Range" (borrowed) */
  int channel;         /* -1 failover, else endpoint index */
  uint64_t timeout_ms; /* 0 = no deadline */
  const uint8_t *req;  /* serialized request message, without the 5-byte prefix */
  size_t req_len;
  /* outputs */
  uint8_t *resp; /* response message (owned by the caller; free with the config's free_fn) */
  size_t resp_len;
  int err;           /* as grpc_close_info_t.err */
  int status;        /* gRPC status (0 = OK) */
  bool sent;         /* see grpc_close_info_t */
  char message[512]; /* grpc-message or local description, NUL-terminated */
} grpc_unary_t;

/* Performs the call described by u and fills its outputs. Returns u->err (0 when the
 * server answered, whatever its status; then u->resp is set if status is OK). */
int grpc_client_unary(grpc_client_t *gc, grpc_unary_t *u);

/* Asynchronous unary calls. done runs exactly once on the I/O thread when the call ends
 * (only when grpc_client_unary_async returned 0): info as for streams; resp (resp_len
 * bytes) is the response message when info->err == 0 and info->status == 0, else NULL;
 * ownership of resp passes to done (free with the config's free_fn). */
typedef void (*grpc_unary_done_fn)(void *ctx, const grpc_close_info_t *info, uint8_t *resp, size_t resp_len);

/* Starts a unary call from any thread (also the I/O thread, e.g. from a done callback).
 * framed holds GRPC_FRAME_PREFIX (5) reserved bytes followed by the serialized request
 * (framed_len bytes in all), allocated with the config's malloc_fn; the transport always
 * takes ownership (also on failure). path must stay valid until done has run (use a
 * string literal). Submissions from other threads are queued and handed to the I/O thread
 * with at most one wake-up per batch; socket writes are coalesced per loop iteration.
 * Returns 0, CETCD_ECANCELED (client shutting down), CETCD_ENOMEM or CETCD_EINVAL. */
int grpc_client_unary_async(grpc_client_t *gc, const char *path, int channel, uint64_t timeout_ms,
                            uint8_t *framed, size_t framed_len, grpc_unary_done_fn done, void *ctx);

/* Opens a stream on path over channel (-1 = failover). timeout_ms 0 = no deadline.
 * cbs and ctx are borrowed for the stream's lifetime. I/O thread only. Returns the stream
 * (owned by the transport until on_close returns or grpc_cstream_cancel) or NULL on
 * allocation failure. */
grpc_cstream_t *grpc_cstream_open(grpc_client_t *gc, const char *path, int channel, uint64_t timeout_ms,
                                  const grpc_cstream_cbs_t *cbs, void *ctx);
/* Queues one message (len bytes, copied) and with end=true half-closes the sending side.
 * Works on pending streams too. I/O thread only. Returns 0, CETCD_ENOMEM or
 * CETCD_EINVAL (already half-closed or finished). */
int grpc_cstream_send(grpc_cstream_t *s, const uint8_t *msg, size_t len, bool end);
/* Cancels the stream (RST_STREAM CANCEL if it was sent); no callback runs afterwards and
 * the stream is freed. Safe from within the stream's own callbacks. I/O thread only. */
void grpc_cstream_cancel(grpc_cstream_t *s);
/* Sets or clears (0) the stream's idle timeout: the stream fails with CETCD_ETIMEOUT if no
 * message arrives for timeout_ms. I/O thread only. */
void grpc_cstream_set_idle_timeout(grpc_cstream_t *s, uint64_t timeout_ms);

/* Sets (or clears, with NULL) the auth token sent as "token" metadata on every stream
 * submitted from now on, except Authenticate calls (token copied). Any thread but the I/O
 * thread's callbacks may call it; it runs on the I/O thread. Returns 0, CETCD_ENOMEM or
 * CETCD_ECANCELED. */
int grpc_client_set_token(grpc_client_t *gc, const char *token);

/* The I/O thread's loop, for timers of higher layers (I/O thread only). */
struct uv_loop_s *grpc_client_loop(grpc_client_t *gc);

#endif
