/* TLS over memory buffers (OpenSSL 3 with memory BIOs) for connections driven by libuv,
 * on the server and in libcetcd alike. Nothing here touches a socket or blocks: the caller
 * moves the bytes. Ciphertext read from the socket goes in with tls_conn_feed, plaintext
 * comes out of tls_conn_read; plaintext to send goes in with tls_conn_write, and the
 * ciphertext to put on the socket comes out of tls_conn_take. Allocation failures are
 * reported, never fatal, so libcetcd can compile this file in. */
#ifndef CETCD_NET_TLS_H
#define CETCD_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct tls_ctx tls_ctx_t;
typedef struct tls_conn tls_conn_t;

/* What a context is made of (etcd's TLSInfo). Strings are copied. */
typedef struct tls_config {
  const char *cert_file;        /* PEM certificate (chain) this side presents */
  const char *key_file;         /* its private key */
  const char *trusted_ca_file;  /* CAs that sign the other side's certificates */
  const char *crl_file;         /* revoked certificates of the other side (server only) */
  bool client_cert_auth;        /* server: require a client certificate signed by a trusted CA */
  bool insecure_skip_verify;    /* client: do not verify the server's certificate */
  const char *server_name;      /* client: name checked against the server certificate and sent as SNI */
  const char *cipher_suites;    /* OpenSSL cipher list for TLS 1.2 (tls_cipher_list), NULL = default */
  const char *allowed_cn;       /* the other side's certificate must have this CN */
  const char *allowed_hostname; /* the other side's certificate must be valid for this name */
} tls_config_t;

/* A server context: TLS 1.2 minimum, ALPN "h2" chosen when offered (HTTP/1.1 clients
 * offer none or "http/1.1" and are served too). A client certificate is required and
 * verified when client_cert_auth is set or a trusted CA is given, as etcd does. NULL on
 * error, with the cause in err. */
tls_ctx_t *tls_server_ctx_new(const tls_config_t *cfg, char *err, size_t errlen);
/* A client context: TLS 1.2 minimum, ALPN "h2", the server certificate verified against
 * trusted_ca_file (or the system store) and server_name unless insecure_skip_verify. */
tls_ctx_t *tls_client_ctx_new(const tls_config_t *cfg, char *err, size_t errlen);
void tls_ctx_free(tls_ctx_t *ctx);
/* Re-reads the certificate, key, CA and CRL files when any of them changed (checked at
 * most once a second), so certificates rotate without a restart. Connections made before
 * keep what they had. Returns 0 (also when nothing changed) or -1 with the cause in err;
 * the previous files stay in use then. */
int tls_ctx_reload_if_changed(tls_ctx_t *ctx, char *err, size_t errlen);

/* A connection using ctx's current certificates; NULL when out of memory. */
tls_conn_t *tls_conn_new(tls_ctx_t *ctx);
void tls_conn_free(tls_conn_t *c);
/* Client: the name (or IP literal) the server certificate must be valid for; a name is
 * also sent as SNI. Returns 0 or -1. */
int tls_conn_set_host(tls_conn_t *c, const char *host);
/* Ciphertext from the socket. Drives the handshake. Returns 0, or -1 when the connection
 * failed (tls_conn_error says why). */
int tls_conn_feed(tls_conn_t *c, const uint8_t *p, size_t n);
/* Decrypted bytes: > 0 bytes copied into buf, 0 when none are ready, -1 on a failure or
 * after the peer's close_notify (tls_conn_closed). */
ssize_t tls_conn_read(tls_conn_t *c, uint8_t *buf, size_t cap);
/* Encrypts plaintext. Returns how many bytes were taken (0 until the handshake is done;
 * the caller keeps the rest), or -1 on a failure. */
ssize_t tls_conn_write(tls_conn_t *c, const uint8_t *p, size_t n);
/* Ciphertext waiting for the socket, and taking it out. */
size_t tls_conn_pending(const tls_conn_t *c);
size_t tls_conn_take(tls_conn_t *c, uint8_t *out, size_t cap);
/* Starts the handshake from the client side (the ClientHello is then pending). */
int tls_conn_connect(tls_conn_t *c);
bool tls_conn_handshake_done(const tls_conn_t *c);
bool tls_conn_closed(const tls_conn_t *c);
/* Why the connection failed (OpenSSL's reason or the verification error). */
const char *tls_conn_error(const tls_conn_t *c);
/* Whether ALPN agreed on "h2". */
bool tls_conn_alpn_is_h2(const tls_conn_t *c);
/* The verified peer certificate's subject CN into out; false when there is none. */
bool tls_conn_peer_cn(const tls_conn_t *c, char *out, size_t cap);

/* --auto-tls: the self-signed certificate dir/cert.pem with key dir/key.pem (ECDSA P-256),
 * valid `years` years for the hosts (IP literals or names) of the listen URLs; kept when
 * both files exist already, as etcd keeps them. Returns 0 or -1 with the cause in err. */
int tls_self_cert(const char *dir, char *const *hosts, size_t n_hosts, unsigned years, char *err,
                  size_t errlen);

/* Maps etcd's --cipher-suites names (Go's, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) to
 * an OpenSSL cipher list in out. Returns 0, or -1 naming the unknown suite in err. */
int tls_cipher_list(char *const *names, size_t n, char *out, size_t cap, char *err, size_t errlen);

#endif
