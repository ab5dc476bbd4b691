/* libcetcd client objects: creation from an endpoint list, timeouts, failover, errors,
 * and the types shared by every other header (response header, key-value).
 *
 * Connection model: the client keeps one HTTP/2 (h2c, prior knowledge, or TLS) connection to one
 * endpoint at a time, on a private I/O thread. If connecting fails (refused, or no
 * answer within dial_timeout_ms) or the server answers UNAVAILABLE, the client moves to
 * the next endpoint in the list, round-robin, with a capped exponential backoff after
 * each full round. Calls waiting for a connection wait at most their request timeout.
 * Read-only calls (get, read-only txn, lease time-to-live/leases, status, ...) are
 * retried on another connection when the connection drops mid-call; writes are not
 * (they return CETCD_EUNAVAILABLE, because the server may have applied them) unless the
 * request provably never reached the server. Calls that name an endpoint (status,
 * defrag, hashkv) use a separate connection to that endpoint and never fail over. */
#ifndef CETCD_CLIENT_H
#define CETCD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cetcd/errors.h"
#include "cetcd/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An etcd client. Opaque; create with cetcd_client_new, free with cetcd_client_free. */
typedef struct cetcd_client cetcd_client_t;

/* Options for cetcd_client_new. Zero-initialize, then set what you need. */
typedef struct cetcd_client_opts {
  /* Endpoints "host:port", "http://host:port" or "https://host:port" (borrowed; copied by
   * cetcd_client_new). Hosts may be names or IPv4/IPv6 literals ("[::1]:2379"). https://
   * endpoints use TLS; endpoints without a scheme use TLS when any TLS option below is
   * set (as clientv3 with a TLS config), http:// ones never do. */
  const char *const *endpoints;
  size_t n_endpoints;
  /* Time allowed to establish one connection, in ms (0 = 5000). cetcd_client_new waits
   * up to this long for a first connection unless lazy_connect is set. */
  int dial_timeout_ms;
  /* Default deadline of every unary call, in ms, sent to the server as grpc-timeout
   * (0 = 5000; negative = no deadline). */
  int request_timeout_ms;
  /* Largest response message accepted, in bytes (0 = 64 MiB). */
  size_t max_recv_bytes;
  /* Do not connect in cetcd_client_new; connect on first use instead. */
  bool lazy_connect;
  /* Credentials (borrowed; copied), both or neither. With them the client gets a token
   * (Authenticate) when it connects, or before its first call with lazy_connect, and sends
   * it as gRPC metadata "token" on every call and stream. A call answered "etcdserver:
   * invalid auth token" (or "revision of auth store is old", "user name is empty") gets a
   * new token and is retried once, as etcd's clientv3 does. When the server answers that
   * authentication is not enabled, the client goes on without a token. */
  const char *username;
  const char *password;
  /* TLS (OpenSSL 3; TLS 1.2 or newer, ALPN h2). The server's certificate chain is checked
   * against ca_file (PEM; NULL = the system's trusted CAs) and its name against the
   * endpoint's host (or server_name, also sent as SNI) unless insecure_skip_verify.
   * cert_file and key_file (PEM, both or neither) give a client certificate. tls turns TLS
   * on for endpoints without a scheme when no other option is needed. Files are read in
   * cetcd_client_new: an unreadable or invalid one gives CETCD_ETLS; a failed handshake or
   * verification makes the endpoint unavailable, with OpenSSL's reason in the message. */
  bool tls;
  const char *ca_file;
  const char *cert_file;
  const char *key_file;
  const char *server_name;
  bool insecure_skip_verify;
} cetcd_client_opts_t;

/* Header of every response. */
typedef struct cetcd_header {
  uint64_t cluster_id;
  uint64_t member_id;
  int64_t revision; /* store revision when the request was served */
  uint64_t raft_term;
} cetcd_header_t;

/* One key-value pair. key and value are NUL-terminated copies (NUL not counted); both
 * are owned by the result object that contains this struct. */
typedef struct cetcd_kv {
  char *key;
  size_t key_len;
  char *value;
  size_t value_len;
  int64_t create_revision;
  int64_t mod_revision;
  int64_t version;
  int64_t lease;
} cetcd_kv_t;

/* The last error seen by the calling thread (see cetcd_client_last_error). */
typedef struct cetcd_error_info {
  int code;          /* the CETCD_E* code the failing call returned (0 if none yet) */
  int grpc_status;   /* gRPC status code from the server, or 0 if the error was local */
  char message[512]; /* server's grpc-message (percent-decoded), or a local description */
} cetcd_error_info_t;

/* Creates a client for the given endpoints and starts its I/O thread. Unless
 * opts->lazy_connect, waits up to dial_timeout_ms for a connection to one endpoint and,
 * with credentials, authenticates (failing with CETCD_EAUTHFAILED or the server's code).
 * opts and its strings are borrowed (copied). On success stores the new client (owned by
 * the caller, free with cetcd_client_free) in *out. Returns 0, CETCD_EINVAL (no or bad
 * endpoints), CETCD_ENOMEM, CETCD_EUNAVAILABLE (no endpoint reachable within the dial
 * timeout), or a negative errno when the I/O thread cannot be started. */
CETCD_EXPORT int cetcd_client_new(const cetcd_client_opts_t *opts, cetcd_client_t **out);

/* (Re)authenticates now with the credentials given at creation and uses the new token
 * for every later call and stream. Returns 0 (also when the server has authentication
 * disabled: no token then), CETCD_EINVAL (no credentials), CETCD_EAUTHFAILED, or the
 * common codes. */
CETCD_EXPORT int cetcd_client_authenticate(cetcd_client_t *client);

/* Closes every connection, stops the I/O thread and frees the client. All watches and
 * keep-alives of this client must have been freed first. Calls still blocked in other
 * threads return CETCD_ECANCELED. Must not be called from a callback. NULL is a no-op. */
CETCD_EXPORT void cetcd_client_free(cetcd_client_t *client);

/* Returns the calling thread's last error information: thread-local storage valid until
 * the thread's next libcetcd call. Updated by every failing call (any client) in this
 * thread; code is the returned CETCD_E* code, grpc_status and message describe the
 * server's answer when there was one (for CETCD_EGRPC and the specific codes mapped from
 * etcd's messages such as CETCD_ECOMPACTED). client may be NULL. Never returns NULL. */
CETCD_EXPORT const cetcd_error_info_t *cetcd_client_last_error(const cetcd_client_t *client);

/* Returns the endpoint ("host:port") the client currently uses, a string owned by the
 * client and valid until cetcd_client_free. Racy by nature under failover; for logs. */
CETCD_EXPORT const char *cetcd_client_endpoint(const cetcd_client_t *client);

/* Frees memory returned by libcetcd as a bare array (e.g. cetcd_lease_leases ids,
 * cetcd_alarm_list alarms). NULL is a no-op. */
CETCD_EXPORT void cetcd_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
