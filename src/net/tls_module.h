/* The OpenSSL module's table of functions. The server loads OpenSSL only when a listener or
 * a peer link uses TLS or --auth-token jwt is given: net/tls.c, net/tls_cert.c and
 * auth/auth_jws.c (JWT signatures) are built into cetcd-tls.so (with OpenSSL), which exports
 * only cetcd_tls_api(), and net/tls_load.c gives the server the tls.h and auth_jws.h
 * functions by calling through this table. Linking libcrypto and libssl into the server kept
 * 1.7 MiB of them resident in an idle server that uses neither. libcetcd compiles net/tls.c
 * in directly. */
#ifndef CETCD_NET_TLS_MODULE_H
#define CETCD_NET_TLS_MODULE_H

#include "auth/auth_jws.h"
#include "net/tls.h"

#define TLS_MODULE_FILE "cetcd-tls.so"
#define TLS_MODULE_SYMBOL "cetcd_tls_api"

typedef struct tls_api {
  size_t size; /* sizeof(tls_api_t) of the module's build: a mismatch is refused */
  tls_ctx_t *(*server_ctx_new)(const tls_config_t *cfg, char *err, size_t errlen);
  tls_ctx_t *(*client_ctx_new)(const tls_config_t *cfg, char *err, size_t errlen);
  void (*ctx_free)(tls_ctx_t *ctx);
  int (*ctx_reload_if_changed)(tls_ctx_t *ctx, char *err, size_t errlen);
  tls_conn_t *(*conn_new)(tls_ctx_t *ctx);
  void (*conn_free)(tls_conn_t *c);
  int (*conn_set_host)(tls_conn_t *c, const char *host);
  int (*conn_feed)(tls_conn_t *c, const uint8_t *p, size_t n);
  ssize_t (*conn_read)(tls_conn_t *c, uint8_t *buf, size_t cap);
  ssize_t (*conn_write)(tls_conn_t *c, const uint8_t *p, size_t n);
  size_t (*conn_pending)(const tls_conn_t *c);
  size_t (*conn_take)(tls_conn_t *c, uint8_t *out, size_t cap);
  int (*conn_connect)(tls_conn_t *c);
  bool (*conn_handshake_done)(const tls_conn_t *c);
  bool (*conn_closed)(const tls_conn_t *c);
  const char *(*conn_error)(const tls_conn_t *c);
  bool (*conn_alpn_is_h2)(const tls_conn_t *c);
  bool (*conn_peer_cn)(const tls_conn_t *c, char *out, size_t cap);
  int (*self_cert)(const char *dir, char *const *hosts, size_t n_hosts, unsigned years, char *err,
                   size_t errlen);
  int (*cipher_list)(char *const *names, size_t n, char *out, size_t cap, char *err, size_t errlen);
  /* JWT signatures (auth/auth_jws.h) */
  auth_jws_key_t *(*jws_key_open)(const char *method, const char *pub_path, const char *priv_path, char *err,
                                  size_t errlen);
  void (*jws_key_free)(auth_jws_key_t *k);
  bool (*jws_can_sign)(const auth_jws_key_t *k);
  size_t (*jws_sign)(const auth_jws_key_t *k, const uint8_t *msg, size_t n, uint8_t **sig);
  bool (*jws_verify)(const auth_jws_key_t *k, const uint8_t *msg, size_t n, const uint8_t *sig, size_t slen);
} tls_api_t;

/* The module's one exported function. */
typedef const tls_api_t *(*tls_api_fn)(void);

#endif
