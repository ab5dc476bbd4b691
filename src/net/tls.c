/* TLS contexts and connections over memory BIOs (see tls.h). */
#include "net/tls.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum { TLS_FILES = 4 };

/* What identifies one version of a file: a changed one differs in one of these. */
typedef struct file_sig {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
} file_sig_t;

struct tls_ctx {
  SSL_CTX *ssl; /* current; connections hold their own reference */
  bool server;
  char *files[TLS_FILES]; /* cert, key, CA, CRL (NULL when not given) */
  char *ciphers, *server_name, *allowed_cn, *allowed_hostname;
  bool client_cert_auth, insecure_skip_verify;
  file_sig_t sigs[TLS_FILES];
  STACK_OF(X509_CRL) * crls; /* from the CRL file: client certificates listed are refused */
  time_t checked;            /* last tls_ctx_reload_if_changed look at the files */
};

struct tls_conn {
  SSL *ssl;
  BIO *net_in;  /* ciphertext from the socket, read by OpenSSL */
  BIO *net_out; /* ciphertext written by OpenSSL, for the socket */
  bool done, closed, failed;
  char err[256];
};

static const unsigned char ALPN_H2[] = {2, 'h', '2'};

/* Formats an error into err and returns NULL-friendly -1. */
static int fail(char *err, size_t errlen, const char *what, const char *file) {
  unsigned long e = ERR_get_error();
  char why[200] = "";
  if (e) ERR_error_string_n(e, why, sizeof(why));
  ERR_clear_error();
  snprintf(err, errlen, "%s%s%s%s%s", what, file ? " " : "", file ? file : "", *why ? ": " : "", why);
  return -1;
}

/* strdup that keeps NULL and "" as NULL. */
static char *dup_opt(const char *s) { return s && *s ? strdup(s) : NULL; }

/* Reads the signature of each configured file; missing files give a zero signature. */
static void read_sigs(const tls_ctx_t *t, file_sig_t *sigs) {
  memset(sigs, 0, sizeof(file_sig_t) * TLS_FILES);
  for (int i = 0; i < TLS_FILES; i++) {
    struct stat st;
    if (!t->files[i] || stat(t->files[i], &st)) continue;
    sigs[i] = (file_sig_t){st.st_dev, st.st_ino, st.st_size, st.st_mtim};
  }
}

/* Reads every CRL of a PEM file, or the one of a DER file, as etcd accepts both. NULL (with
 * the cause in err) when there is none. */
static STACK_OF(X509_CRL) * read_crls(const char *file, char *err, size_t errlen) {
  FILE *f = fopen(file, "r");
  if (!f) {
    snprintf(err, errlen, "cannot open CRL file %s: %m", file);
    return NULL;
  }
  STACK_OF(X509_CRL) *list = sk_X509_CRL_new_null();
  X509_CRL *crl;
  while (list && (crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL) sk_X509_CRL_push(list, crl);
  if (list && sk_X509_CRL_num(list) == 0) {
    rewind(f);
    if ((crl = d2i_X509_CRL_fp(f, NULL)) != NULL) sk_X509_CRL_push(list, crl);
  }
  fclose(f);
  ERR_clear_error(); /* the read that ended the loop */
  if (list && sk_X509_CRL_num(list) == 0) {
    snprintf(err, errlen, "no CRL (PEM or DER) in %s", file);
    sk_X509_CRL_free(list);
    return NULL;
  }
  return list;
}

/* Whether the certificate's serial number is listed in one of the CRLs (etcd compares
 * serials only: neither the CRL's issuer nor its dates matter). */
static bool revoked(STACK_OF(X509_CRL) * crls, X509 *cert) {
  for (int i = 0; crls && i < sk_X509_CRL_num(crls); i++) {
    X509_REVOKED *rev = NULL;
    if (X509_CRL_get0_by_serial(sk_X509_CRL_value(crls, i), &rev, X509_get0_serialNumber(cert)) == 1)
      return true;
  }
  return false;
}

/* OpenSSL: a peer certificate was checked. The leaf must also not be revoked by the CRL
 * file, and with --peer-cert-allowed-cn (or hostname) carry that CN (or be valid for that
 * name). */
static int verify_cb(int ok, X509_STORE_CTX *store) {
  if (!ok || X509_STORE_CTX_get_error_depth(store) != 0) return ok;
  SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
  const tls_ctx_t *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
  X509 *leaf = X509_STORE_CTX_get_current_cert(store);
  if (t && revoked(t->crls, leaf)) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REVOKED);
    return 0;
  }
  if (t && t->allowed_cn) {
    char cn[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn));
    if (strcmp(cn, t->allowed_cn)) { /* "rejected": the peer gets a bad_certificate alert */
      X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
      return 0;
    }
  }
  if (t && t->allowed_hostname && X509_check_host(leaf, t->allowed_hostname, 0, 0, NULL) != 1) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
    return 0;
  }
  return ok;
}

/* OpenSSL (server): picks "h2" when the client offers it; otherwise no ALPN (HTTP/1.1). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  (void)ssl;
  (void)arg;
  unsigned char *o = NULL;
  if (SSL_select_next_proto(&o, outlen, ALPN_H2, sizeof(ALPN_H2), in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

/* Builds an SSL_CTX from t's settings and files. NULL on error. */
static SSL_CTX *build(tls_ctx_t *t, char *err, size_t errlen) {
  SSL_CTX *s = SSL_CTX_new(t->server ? TLS_server_method() : TLS_client_method());
  if (!s) {
    fail(err, errlen, "cannot create a TLS context", NULL);
    return NULL;
  }
  SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
  SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_app_data(s, t);
  const char *cert = t->files[0], *key = t->files[1], *ca = t->files[2], *crl = t->files[3];
  int rc = 0;
  if (t->ciphers && !SSL_CTX_set_cipher_list(s, t->ciphers))
    rc = fail(err, errlen, "bad cipher suites", t->ciphers);
  if (!rc && cert && SSL_CTX_use_certificate_chain_file(s, cert) != 1)
    rc = fail(err, errlen, "cannot load certificate", cert);
  if (!rc && key && SSL_CTX_use_PrivateKey_file(s, key, SSL_FILETYPE_PEM) != 1)
    rc = fail(err, errlen, "cannot load key", key);
  if (!rc && cert && key && SSL_CTX_check_private_key(s) != 1)
    rc = fail(err, errlen, "the key does not match the certificate", cert);
  if (!rc && ca && SSL_CTX_load_verify_locations(s, ca, NULL) != 1)
    rc = fail(err, errlen, "cannot load trusted CA file", ca);
  if (!rc && crl) {
    STACK_OF(X509_CRL) *crls = read_crls(crl, err, errlen);
    if (!crls) rc = -1;
    sk_X509_CRL_pop_free(t->crls, X509_CRL_free);
    t->crls = crls;
  }
  if (!rc && t->server) {
    SSL_CTX_set_alpn_select_cb(s, alpn_select, NULL);
    if (t->client_cert_auth || ca) {
      SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
      STACK_OF(X509_NAME) *names = ca ? SSL_load_client_CA_file(ca) : NULL;
      if (names) SSL_CTX_set_client_CA_list(s, names);
    }
    SSL_CTX_set_session_id_context(s, (const unsigned char *)"cetcd", 5);
  } else if (!rc) {
    SSL_CTX_set_alpn_protos(s, ALPN_H2, sizeof(ALPN_H2));
    if (!t->insecure_skip_verify) {
      SSL_CTX_set_verify(s, SSL_VERIFY_PEER, verify_cb);
      if (!ca && SSL_CTX_set_default_verify_paths(s) != 1) rc = fail(err, errlen, "no system CA store", NULL);
    }
  }
  if (rc) {
    SSL_CTX_free(s);
    return NULL;
  }
  return s;
}

/* Shared constructor of both kinds. */
static tls_ctx_t *ctx_new(const tls_config_t *cfg, bool server, char *err, size_t errlen) {
  tls_ctx_t *t = calloc(1, sizeof(*t));
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  t->server = server;
  t->files[0] = dup_opt(cfg->cert_file);
  t->files[1] = dup_opt(cfg->key_file);
  t->files[2] = dup_opt(cfg->trusted_ca_file);
  t->files[3] = server ? dup_opt(cfg->crl_file) : NULL;
  t->ciphers = dup_opt(cfg->cipher_suites);
  t->server_name = dup_opt(cfg->server_name);
  t->allowed_cn = dup_opt(cfg->allowed_cn);
  t->allowed_hostname = dup_opt(cfg->allowed_hostname);
  t->client_cert_auth = cfg->client_cert_auth;
  t->insecure_skip_verify = cfg->insecure_skip_verify;
  if (server && (!t->files[0] || !t->files[1])) {
    snprintf(err, errlen, "a TLS server needs a certificate and a key (--cert-file, --key-file)");
    tls_ctx_free(t);
    return NULL;
  }
  read_sigs(t, t->sigs);
  t->checked = time(NULL);
  if (!(t->ssl = build(t, err, errlen))) {
    tls_ctx_free(t);
    return NULL;
  }
  return t;
}

tls_ctx_t *tls_server_ctx_new(const tls_config_t *cfg, char *err, size_t errlen) {
  return ctx_new(cfg, true, err, errlen);
}

tls_ctx_t *tls_client_ctx_new(const tls_config_t *cfg, char *err, size_t errlen) {
  return ctx_new(cfg, false, err, errlen);
}

void tls_ctx_free(tls_ctx_t *t) {
  if (!t) return;
  SSL_CTX_free(t->ssl);
  sk_X509_CRL_pop_free(t->crls, X509_CRL_free);
  for (int i = 0; i < TLS_FILES; i++) free(t->files[i]);
  free(t->ciphers);
  free(t->server_name);
  free(t->allowed_cn);
  free(t->allowed_hostname);
  free(t);
}

int tls_ctx_reload_if_changed(tls_ctx_t *t, char *err, size_t errlen) {
  time_t now = time(NULL);
  if (now == t->checked) return 0;
  t->checked = now;
  file_sig_t sigs[TLS_FILES];
  read_sigs(t, sigs);
  if (!memcmp(sigs, t->sigs, sizeof(sigs))) return 0;
  SSL_CTX *s = build(t, err, errlen);
  if (!s) return -1; /* e.g. the key is written after the certificate: next look retries */
  memcpy(t->sigs, sigs, sizeof(sigs));
  SSL_CTX_free(t->ssl);
  t->ssl = s;
  return 0;
}

/* ============================== connections ============================== */

tls_conn_t *tls_conn_new(tls_ctx_t *t) {
  tls_conn_t *c = calloc(1, sizeof(*c));
  if (!c) return NULL;
  c->ssl = SSL_new(t->ssl); /* takes a reference on the SSL_CTX */
  c->net_in = BIO_new(BIO_s_mem());
  c->net_out = BIO_new(BIO_s_mem());
  if (!c->ssl || !c->net_in || !c->net_out) {
    BIO_free(c->net_in);
    BIO_free(c->net_out);
    SSL_free(c->ssl);
    free(c);
    ERR_clear_error();
    return NULL;
  }
  BIO_set_mem_eof_return(c->net_in, -1); /* empty means "wait", not EOF */
  SSL_set_bio(c->ssl, c->net_in, c->net_out);
  if (t->server) {
    SSL_set_accept_state(c->ssl);
  } else {
    SSL_set_connect_state(c->ssl);
    if (t->server_name) tls_conn_set_host(c, t->server_name);
  }
  return c;
}

int tls_conn_set_host(tls_conn_t *c, const char *host) {
  X509_VERIFY_PARAM *p = SSL_get0_param(c->ssl);
  if (X509_VERIFY_PARAM_set1_ip_asc(p, host) == 1) return 0; /* IP literal: no SNI */
  ERR_clear_error();
  if (SSL_set_tlsext_host_name(c->ssl, host) != 1 || SSL_set1_host(c->ssl, host) != 1) {
    ERR_clear_error();
    return -1;
  }
  return 0;
}

void tls_conn_free(tls_conn_t *c) {
  if (!c) return;
  SSL_free(c->ssl); /* frees both BIOs */
  free(c);
}

/* Go's names of TLS alerts (crypto/tls), which etcd's logs and its e2e tests show. */
static const char *alert_name(int alert) {
  switch (alert) {
    case SSL_AD_HANDSHAKE_FAILURE:
      return "handshake failure";
    case SSL_AD_BAD_CERTIFICATE:
      return "bad certificate";
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
      return "unsupported certificate";
    case SSL_AD_CERTIFICATE_REVOKED:
      return "revoked certificate";
    case SSL_AD_CERTIFICATE_EXPIRED:
      return "expired certificate";
    case SSL_AD_CERTIFICATE_UNKNOWN:
      return "unknown certificate";
    case SSL_AD_UNKNOWN_CA:
      return "unknown certificate authority";
    case SSL_AD_ACCESS_DENIED:
      return "access denied";
    case SSL_AD_DECODE_ERROR:
      return "error decoding message";
    case SSL_AD_DECRYPT_ERROR:
      return "error decrypting message";
    case SSL_AD_PROTOCOL_VERSION:
      return "protocol version not supported";
    case SSL_AD_INTERNAL_ERROR:
      return "internal error";
    case SSL_AD_NO_APPLICATION_PROTOCOL:
      return "no application protocol";
    case SSL_AD_CERTIFICATE_REQUIRED:
      return "certificate required";
    default:
      return SSL_alert_desc_string_long(alert);
  }
}

/* Records why the connection failed, from the verification result, an alert the peer sent
 * ("remote error: tls: bad certificate", in Go's words as etcd logs it) or OpenSSL's queue. */
static int conn_fail(tls_conn_t *c, int ssl_err) {
  c->failed = true;
  long v = SSL_get_verify_result(c->ssl);
  unsigned long e = ERR_peek_last_error();
  int reason = ERR_GET_REASON(e);
  const tls_ctx_t *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(c->ssl));
  if (v == X509_V_ERR_CERT_REJECTED && t && t->allowed_cn) { /* etcd's words, then the detail */
    snprintf(c->err, sizeof(c->err),
             "client certificate authentication failed: the certificate's CN is not the allowed CN \"%s\"",
             t->allowed_cn);
  } else if (v == X509_V_ERR_HOSTNAME_MISMATCH && t && t->allowed_hostname) {
    snprintf(c->err, sizeof(c->err),
             "client certificate authentication failed: the certificate is not valid for the allowed "
             "hostname \"%s\"",
             t->allowed_hostname);
  } else if (v != X509_V_OK) {
    snprintf(c->err, sizeof(c->err), "certificate verify failed: %s", X509_verify_cert_error_string(v));
  } else if (e && ERR_GET_LIB(e) == ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET &&
             reason < SSL_AD_REASON_OFFSET + 256) {
    snprintf(c->err, sizeof(c->err), "remote error: tls: %s", alert_name(reason - SSL_AD_REASON_OFFSET));
  } else if (e) {
    const char *why = ERR_reason_error_string(e);
    snprintf(c->err, sizeof(c->err), "%s", why ? why : "TLS error");
  } else {
    snprintf(c->err, sizeof(c->err), "TLS error %d", ssl_err);
  }
  ERR_clear_error();
  return -1;
}

/* Advances the handshake with what has arrived. */
static int handshake(tls_conn_t *c) {
  int r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    c->done = true;
    return 0;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  return conn_fail(c, e);
}

int tls_conn_connect(tls_conn_t *c) { return c->failed ? -1 : handshake(c); }

int tls_conn_feed(tls_conn_t *c, const uint8_t *p, size_t n) {
  if (c->failed) return -1;
  while (n) {
    int w = BIO_write(c->net_in, p, n > INT_MAX ? INT_MAX : (int)n);
    if (w <= 0) return conn_fail(c, 0);
    p += w;
    n -= (size_t)w;
  }
  return c->done ? 0 : handshake(c);
}

ssize_t tls_conn_read(tls_conn_t *c, uint8_t *buf, size_t cap) {
  if (c->failed || c->closed) return -1;
  if (!c->done && (handshake(c) || !c->done)) return c->failed ? -1 : 0;
  int r = SSL_read(c->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
  if (r > 0) return r;
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  if (e == SSL_ERROR_ZERO_RETURN) {
    c->closed = true;
    return -1;
  }
  return conn_fail(c, e);
}

ssize_t tls_conn_write(tls_conn_t *c, const uint8_t *p, size_t n) {
  if (c->failed) return -1;
  if (!c->done) return 0;
  size_t done = 0;
  while (done < n) {
    size_t chunk = n - done > INT_MAX ? INT_MAX : n - done;
    int w = SSL_write(c->ssl, p + done, (int)chunk);
    if (w <= 0) {
      int e = SSL_get_error(c->ssl, w);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
      return conn_fail(c, e);
    }
    done += (size_t)w;
  }
  return (ssize_t)done;
}

size_t tls_conn_pending(const tls_conn_t *c) { return BIO_ctrl_pending(c->net_out); }

size_t tls_conn_take(tls_conn_t *c, uint8_t *out, size_t cap) {
  int r = BIO_read(c->net_out, out, cap > INT_MAX ? INT_MAX : (int)cap);
  return r > 0 ? (size_t)r : 0;
}

bool tls_conn_handshake_done(const tls_conn_t *c) { return c->done; }
bool tls_conn_closed(const tls_conn_t *c) { return c->closed; }
const char *tls_conn_error(const tls_conn_t *c) { return c->err; }

bool tls_conn_alpn_is_h2(const tls_conn_t *c) {
  const unsigned char *p = NULL;
  unsigned int n = 0;
  SSL_get0_alpn_selected(c->ssl, &p, &n);
  return n == 2 && !memcmp(p, "h2", 2);
}

bool tls_conn_peer_cn(const tls_conn_t *c, char *out, size_t cap) {
  X509 *peer = SSL_get0_peer_certificate(c->ssl);
  if (!peer || SSL_get_verify_result(c->ssl) != X509_V_OK) return false;
  return X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, out, (int)cap) > 0;
}
