/* TLS for the gRPC client transport over memory BIOs (see grpc_client_tls.h). */
#include "grpc/grpc_client_tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cetcd/errors.h"

struct grpc_tls_ctx {
  SSL_CTX *ssl_ctx;
  char *server_name; /* or NULL */
  bool skip_verify;
};

struct grpc_tls_conn {
  SSL *ssl;
  BIO *in, *out; /* network side: ciphertext received / to send (owned by ssl) */
};

static const unsigned char alpn_h2[] = {2, 'h', '2'};

/* Writes OpenSSL's first queued error (or what) into err and clears the queue. */
static void ssl_reason(const char *what, char *err, size_t errlen) {
  unsigned long e = ERR_get_error();
  char buf[256] = "", w[300];
  snprintf(w, sizeof w, "%s", what); /* what may be err itself */
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  snprintf(err, errlen, "%s%s%s", w, e ? ": " : "", buf);
  ERR_clear_error();
}

int grpc_tls_ctx_new(const grpc_tls_config_t *cfg, grpc_tls_ctx_t **out, char *err, size_t errlen) {
  *out = NULL;
  grpc_tls_ctx_t *c = calloc(1, sizeof(*c));
  if (!c) return CETCD_ENOMEM;
  c->ssl_ctx = SSL_CTX_new(TLS_client_method());
  if (!c->ssl_ctx) goto fail_reason;
  SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(c->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_set_alpn_protos(c->ssl_ctx, alpn_h2, sizeof alpn_h2) != 0) goto fail_reason;
  c->skip_verify = cfg->insecure_skip_verify;
  SSL_CTX_set_verify(c->ssl_ctx, c->skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
  if (cfg->ca_file && *cfg->ca_file) {
    if (SSL_CTX_load_verify_locations(c->ssl_ctx, cfg->ca_file, NULL) != 1) {
      snprintf(err, errlen, "cannot load CA file %s", cfg->ca_file);
      ssl_reason(err, err, errlen);
      goto fail;
    }
  } else if (SSL_CTX_set_default_verify_paths(c->ssl_ctx) != 1) {
    goto fail_reason;
  }
  if ((cfg->cert_file && *cfg->cert_file) != (cfg->key_file && *cfg->key_file)) {
    snprintf(err, errlen, "a client certificate needs both a certificate and a key file");
    goto fail;
  }
  if (cfg->cert_file && *cfg->cert_file) {
    if (SSL_CTX_use_certificate_chain_file(c->ssl_ctx, cfg->cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(c->ssl_ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(c->ssl_ctx) != 1) {
      snprintf(err, errlen, "cannot load client certificate %s / key %s", cfg->cert_file, cfg->key_file);
      ssl_reason(err, err, errlen);
      goto fail;
    }
  }
  if (cfg->server_name && *cfg->server_name && !(c->server_name = strdup(cfg->server_name))) {
    grpc_tls_ctx_free(c);
    return CETCD_ENOMEM;
  }
  *out = c;
  return 0;
fail_reason:
  ssl_reason("TLS setup failed", err, errlen);
fail:
  grpc_tls_ctx_free(c);
  return CETCD_ETLS;
}

void grpc_tls_ctx_free(grpc_tls_ctx_t *c) {
  if (!c) return;
  SSL_CTX_free(c->ssl_ctx);
  free(c->server_name);
  free(c);
}

/* True when host is an IPv4 or IPv6 literal. */
static bool is_ip(const char *host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* One connection: SSL with two memory BIOs, SNI and the name (or IP) to verify. */
static grpc_tls_conn_t *conn_new(grpc_tls_ctx_t *c, const char *host, char *err, size_t errlen) {
  grpc_tls_conn_t *t = calloc(1, sizeof(*t));
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  const char *name = c->server_name ? c->server_name : host;
  t->ssl = SSL_new(c->ssl_ctx);
  t->in = BIO_new(BIO_s_mem());
  t->out = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->in || !t->out) {
    BIO_free(t->in);
    BIO_free(t->out);
    goto fail;
  }
  BIO_set_mem_eof_return(t->in, -1); /* empty input means "retry", not EOF */
  SSL_set_bio(t->ssl, t->in, t->out);
  SSL_set_connect_state(t->ssl);
  if (!is_ip(name) && SSL_set_tlsext_host_name(t->ssl, name) != 1) goto fail;
  if (!c->skip_verify) {
    X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
    int ok = is_ip(name) ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) : SSL_set1_host(t->ssl, name);
    if (ok != 1) goto fail;
  }
  return t;
fail:
  ssl_reason("TLS connection setup failed", err, errlen);
  SSL_free(t->ssl);
  free(t);
  return NULL;
}

static int feed(grpc_tls_conn_t *t, const uint8_t *p, size_t n) {
  return n && BIO_write(t->in, p, (int)n) != (int)n ? -1 : 0;
}

/* Describes a failed handshake or read: verification result, OpenSSL's reason, or what. */
static void conn_reason(grpc_tls_conn_t *t, const char *what, char *err, size_t errlen) {
  long v = SSL_get_verify_result(t->ssl);
  if (v != X509_V_OK) {
    snprintf(err, errlen, "%s: certificate verify failed: %s", what, X509_verify_cert_error_string(v));
    ERR_clear_error();
    return;
  }
  ssl_reason(what, err, errlen);
}

static int handshake(grpc_tls_conn_t *t, char *err, size_t errlen) {
  ERR_clear_error();
  int r = SSL_do_handshake(t->ssl);
  if (r != 1) {
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    conn_reason(t, "TLS handshake failed", err, errlen);
    return -1;
  }
  const unsigned char *proto = NULL;
  unsigned int plen = 0;
  SSL_get0_alpn_selected(t->ssl, &proto, &plen);
  if (plen && (plen != 2 || memcmp(proto, "h2", 2) != 0)) {
    snprintf(err, errlen, "TLS handshake failed: server chose ALPN protocol %.*s, not h2", (int)plen, proto);
    return -1;
  }
  return 1;
}

static ssize_t conn_read(grpc_tls_conn_t *t, uint8_t *buf, size_t cap, char *err, size_t errlen) {
  ERR_clear_error();
  size_t got = 0;
  int r = SSL_read_ex(t->ssl, buf, cap, &got);
  if (r == 1) return (ssize_t)got;
  int e = SSL_get_error(t->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  if (e == SSL_ERROR_ZERO_RETURN) {
    snprintf(err, errlen, "closed by peer (TLS close_notify)");
    return -1;
  }
  conn_reason(t, "TLS read failed", err, errlen);
  return -1;
}

static int conn_write(grpc_tls_conn_t *t, const uint8_t *p, size_t n) {
  while (n) {
    size_t w = 0;
    if (SSL_write_ex(t->ssl, p, n, &w) != 1) { /* the memory BIO grows: only a failure stops it */
      ERR_clear_error();
      return -1;
    }
    p += w;
    n -= w;
  }
  return 0;
}

static size_t pending(grpc_tls_conn_t *t) { return BIO_ctrl_pending(t->out); }

static size_t take(grpc_tls_conn_t *t, uint8_t *buf, size_t cap) {
  int r = BIO_read(t->out, buf, (int)(cap > INT32_MAX ? INT32_MAX : cap));
  return r > 0 ? (size_t)r : 0;
}

static void conn_free(grpc_tls_conn_t *t) {
  if (!t) return;
  SSL_free(t->ssl); /* frees both BIOs */
  free(t);
}

const grpc_tls_ops_t grpc_tls_ops = {conn_new, feed, handshake, conn_read, conn_write, pending, take, conn_free};
