/* TLS for the gRPC client transport (see grpc_client_tls.h): the transport's ops table over
 * the shared memory-BIO module src/net/tls.{h,c} (OpenSSL 3), which libcetcd compiles in. */
#include "client/transport/grpc_client_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cetcd/errors.h"
#include "net/tls.h"

struct grpc_tls_ctx {
  tls_ctx_t *tls;
  bool has_server_name; /* the context names the server: do not verify the endpoint's host */
};

int grpc_tls_ctx_new(const grpc_tls_config_t *cfg, grpc_tls_ctx_t **out, char *err, size_t errlen) {
  *out = NULL;
  bool cert = cfg->cert_file && *cfg->cert_file, key = cfg->key_file && *cfg->key_file;
  if (cert != key) {
    snprintf(err, errlen, "a client certificate needs both a certificate and a key file");
    return CETCD_ETLS;
  }
  grpc_tls_ctx_t *c = calloc(1, sizeof(*c));
  if (!c) return CETCD_ENOMEM;
  tls_config_t tc = {.cert_file = cert ? cfg->cert_file : NULL,
                     .key_file = key ? cfg->key_file : NULL,
                     .trusted_ca_file = cfg->ca_file && *cfg->ca_file ? cfg->ca_file : NULL,
                     .insecure_skip_verify = cfg->insecure_skip_verify,
                     .server_name = cfg->server_name && *cfg->server_name ? cfg->server_name : NULL,
                     .allowed_cn = cfg->allowed_cn,
                     .allowed_hostname = cfg->allowed_hostname};
  c->has_server_name = tc.server_name != NULL;
  c->tls = tls_client_ctx_new(&tc, err, errlen);
  if (!c->tls) {
    free(c);
    return CETCD_ETLS;
  }
  *out = c;
  return 0;
}

void grpc_tls_ctx_free(grpc_tls_ctx_t *c) {
  if (!c) return;
  tls_ctx_free(c->tls);
  free(c);
}

/* One connection to host (verified and sent as SNI unless the context names the server). */
static grpc_tls_conn_t *conn_new(grpc_tls_ctx_t *c, const char *host, char *err, size_t errlen) {
  tls_conn_t *t = tls_conn_new(c->tls);
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (!c->has_server_name && tls_conn_set_host(t, host) != 0) {
    snprintf(err, errlen, "TLS: cannot verify host %s", host);
    tls_conn_free(t);
    return NULL;
  }
  return (grpc_tls_conn_t *)t;
}

static int feed(grpc_tls_conn_t *t, const uint8_t *p, size_t n) {
  tls_conn_feed((tls_conn_t *)t, p, n); /* a failure shows in the next handshake or read */
  return 0;
}

static int handshake(grpc_tls_conn_t *gt, char *err, size_t errlen) {
  tls_conn_t *t = (tls_conn_t *)gt;
  if (!tls_conn_handshake_done(t) && tls_conn_connect(t) != 0) {
    snprintf(err, errlen, "TLS handshake failed: %s", tls_conn_error(t));
    return -1;
  }
  if (!tls_conn_handshake_done(t)) return 0;
  if (!tls_conn_alpn_is_h2(t)) {
    snprintf(err, errlen, "TLS handshake failed: the server did not agree to ALPN h2");
    return -1;
  }
  return 1;
}

static ssize_t conn_read(grpc_tls_conn_t *gt, uint8_t *buf, size_t cap, char *err, size_t errlen) {
  tls_conn_t *t = (tls_conn_t *)gt;
  ssize_t n = tls_conn_read(t, buf, cap);
  if (n < 0)
    snprintf(err, errlen, "%s", tls_conn_closed(t) ? "closed by peer (TLS close_notify)" : tls_conn_error(t));
  return n;
}

static int conn_write(grpc_tls_conn_t *gt, const uint8_t *p, size_t n) {
  tls_conn_t *t = (tls_conn_t *)gt;
  while (n) { /* the memory BIO grows: everything is taken unless the connection failed */
    ssize_t w = tls_conn_write(t, p, n);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static size_t pending(grpc_tls_conn_t *t) { return tls_conn_pending((tls_conn_t *)t); }

static size_t take(grpc_tls_conn_t *t, uint8_t *buf, size_t cap) {
  return tls_conn_take((tls_conn_t *)t, buf, cap);
}

static void conn_free(grpc_tls_conn_t *t) { tls_conn_free((tls_conn_t *)t); }

const grpc_tls_ops_t grpc_tls_ops = {conn_new,   feed,    handshake, conn_read,
                                     conn_write, pending, take,      conn_free};
