/* TLS for the gRPC client transport: the shared memory-BIO module src/net/tls.{h,c}
 * (OpenSSL 3), so all socket I/O stays on the transport's libuv loop and nothing blocks
 * (the nghttp2 model: bytes in, bytes out). TLS 1.2 minimum, ALPN "h2" required,
 * certificate chain and host name (or IP) verification unless insecure_skip_verify.
 *
 * The transport (grpc_client.h) reaches this module only through grpc_tls_ops (a table of
 * function pointers in its config). The server's peer transport, which uses its own copy of
 * the transport, passes it for https peer URLs. */
#ifndef CETCD_CLIENT_TRANSPORT_GRPC_CLIENT_TLS_H
#define CETCD_CLIENT_TRANSPORT_GRPC_CLIENT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct grpc_tls_ctx grpc_tls_ctx_t;   /* shared settings (SSL_CTX) */
typedef struct grpc_tls_conn grpc_tls_conn_t; /* one connection's TLS state */

/* Settings of grpc_tls_ctx_new (strings borrowed; files read at once). */
typedef struct grpc_tls_config {
  const char *ca_file;   /* trusted CAs (PEM); NULL = the system's */
  const char *cert_file; /* client certificate (PEM), with key_file */
  const char *key_file;
  const char *server_name; /* name to verify and send as SNI instead of the endpoint's host */
  bool insecure_skip_verify;
  const char *allowed_cn;       /* peers (--peer-cert-allowed-cn): the server certificate's CN */
  const char *allowed_hostname; /* peers (--peer-cert-allowed-hostname): a name it must be valid for */
} grpc_tls_config_t;

/* The connection operations the transport calls (one connection, I/O thread only). */
typedef struct grpc_tls_ops {
  /* New connection state for host (NULL + reason in err on failure). */
  grpc_tls_conn_t *(*conn_new)(grpc_tls_ctx_t *ctx, const char *host, char *err, size_t errlen);
  /* Hands received ciphertext over (a failure shows in handshake or read). Returns 0. */
  int (*feed)(grpc_tls_conn_t *t, const uint8_t *p, size_t n);
  /* Advances the handshake: 1 done (ALPN checked), 0 wants more input, -1 failed (err). */
  int (*handshake)(grpc_tls_conn_t *t, char *err, size_t errlen);
  /* Decrypts into buf: > 0 bytes, 0 nothing yet, -1 failed or closed (err). */
  ssize_t (*read)(grpc_tls_conn_t *t, uint8_t *buf, size_t cap, char *err, size_t errlen);
  /* Encrypts n plaintext bytes (after the handshake). Returns 0 or -1. */
  int (*write)(grpc_tls_conn_t *t, const uint8_t *p, size_t n);
  /* Bytes of ciphertext waiting to be sent, and taking up to cap of them into buf. */
  size_t (*pending)(grpc_tls_conn_t *t);
  size_t (*take)(grpc_tls_conn_t *t, uint8_t *buf, size_t cap);
  void (*conn_free)(grpc_tls_conn_t *t);
} grpc_tls_ops_t;

extern const grpc_tls_ops_t grpc_tls_ops;

/* Builds the shared settings. Returns 0 and *out (free with grpc_tls_ctx_free), or
 * CETCD_ETLS with the reason (OpenSSL's, e.g. an unreadable file) in err. */
int grpc_tls_ctx_new(const grpc_tls_config_t *cfg, grpc_tls_ctx_t **out, char *err, size_t errlen);
void grpc_tls_ctx_free(grpc_tls_ctx_t *ctx);

#endif
