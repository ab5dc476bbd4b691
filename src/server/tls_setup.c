/* The TLS contexts of the listeners, built from the configuration as etcd builds its
 * TLSInfo: given files, or --auto-tls's self-signed certificate kept under the data dir,
 * with --cipher-suites mapped to OpenSSL's names. */
#include "server/tls_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "cetcd/errors.h"
#include "server/urls.h"

/* Whether any URL of the list is https or unixs. */
static bool any_tls(char *const *urls, size_t n) {
  for (size_t i = 0; i < n; i++) {
    url_t u;
    char err[256];
    if (urls_parse_one(urls[i], &u, err, sizeof(err))) continue;
    bool tls = u.is_tls;
    urls_free_one(&u);
    if (tls) return true;
  }
  return false;
}

/* --auto-tls: makes (or keeps) <data-dir>/fixtures/<kind>/{cert,key}.pem for the hosts of
 * the listen URLs and points the file names at them. */
static int self_cert(const cetcd_config_t *cfg, const char *kind, char *const *urls, size_t n, char *cert,
                     char *key, size_t cap) {
  char dir[4096], err[512];
  snprintf(dir, sizeof(dir), "%s/fixtures/%s", cfg->data_dir, kind);
  char **hosts = calloc(n ? n : 1, sizeof(*hosts));
  size_t nh = 0;
  for (size_t i = 0; hosts && i < n; i++) {
    url_t u;
    if (urls_parse_one(urls[i], &u, err, sizeof(err))) continue;
    hosts[nh++] = strdup(u.host);
    urls_free_one(&u);
  }
  int rc = tls_self_cert(dir, hosts, nh, cfg->self_signed_cert_validity, err, sizeof(err));
  for (size_t i = 0; i < nh; i++) free(hosts[i]);
  free(hosts);
  if (rc) {
    LOGE(
        "msg=\"cannot create a self-signed certificate\" error=\"%s\" fix=\"make the data dir writable, or "
        "give "
        "--%scert-file and --%skey-file\"",
        err, strcmp(kind, "peer") ? "" : "peer-", strcmp(kind, "peer") ? "" : "peer-");
    return -1;
  }
  snprintf(cert, cap, "%s/cert.pem", dir);
  snprintf(key, cap, "%s/key.pem", dir);
  return 0;
}

/* One side's TLS settings (etcd's ClientTLSInfo or PeerTLSInfo) and its flag names. */
typedef struct side {
  const char *kind;   /* "client" or "peer": the fixtures dir and the log lines */
  const char *prefix; /* "" or "peer-": the flag names */
  char *const *urls;
  size_t n_urls;
  const char *cert, *key, *ca, *crl, *allowed_cn, *allowed_hostname;
  bool client_cert_auth, auto_tls;
} side_t;

/* Builds the server context of one side (see tls_setup_client). */
static int setup(const cetcd_config_t *cfg, const side_t *sd, tls_ctx_t **out) {
  *out = NULL;
  bool have_files = (sd->cert && *sd->cert) || (sd->key && *sd->key);
  if (!any_tls(sd->urls, sd->n_urls)) {
    if (have_files)
      LOGW("msg=\"scheme is HTTP while key and cert files are present; ignoring key and cert files\" kind=%s",
           sd->kind);
    if (sd->client_cert_auth)
      LOGW("msg=\"scheme is HTTP while --%sclient-cert-auth is enabled; ignoring client cert auth\"",
           sd->prefix);
    return 0;
  }
  char cert[4200], key[4200], ciphers[2048] = "", err[512];
  const char *cert_file = sd->cert, *key_file = sd->key;
  if (sd->auto_tls && have_files) {
    LOGW("msg=\"ignoring %s auto TLS since certs given\"", sd->kind);
  } else if (sd->auto_tls) {
    if (self_cert(cfg, sd->kind, sd->urls, sd->n_urls, cert, key, sizeof(cert))) return -1;
    cert_file = cert;
    key_file = key;
  } else if (!have_files) {
    for (size_t i = 0; i < sd->n_urls; i++) {
      if (!any_tls(&sd->urls[i], 1)) continue;
      LOGE(
          "msg=\"TLS key/cert (--%scert-file, --%skey-file) must be provided for %s url %s with HTTPS "
          "scheme\" "
          "fix=\"give --%scert-file and --%skey-file, or --%sauto-tls\"",
          sd->prefix, sd->prefix, sd->kind, sd->urls[i], sd->prefix, sd->prefix, sd->prefix);
      break;
    }
    return -1;
  }
  if (cfg->n_cipher_suites &&
      tls_cipher_list(cfg->cipher_suites, cfg->n_cipher_suites, ciphers, sizeof(ciphers), err, sizeof(err))) {
    LOGE("msg=\"bad --cipher-suites\" error=\"%s\"", err);
    return -1;
  }
  if (sd->allowed_cn && *sd->allowed_cn && sd->allowed_hostname && *sd->allowed_hostname) {
    LOGE(
        "msg=\"AllowedCN and AllowedHostname are mutually exclusive (cn=\\\"%s\\\", hostname=\\\"%s\\\")\" "
        "fix=\"give only one of --%scert-allowed-cn and --%scert-allowed-hostname\"",
        sd->allowed_cn, sd->allowed_hostname, sd->prefix, sd->prefix);
    return -1;
  }
  tls_config_t tc = {
      .cert_file = cert_file,
      .key_file = key_file,
      .trusted_ca_file = sd->ca,
      .crl_file = sd->crl,
      .client_cert_auth = sd->client_cert_auth,
      .cipher_suites = *ciphers ? ciphers : NULL,
      .allowed_cn = sd->allowed_cn,
      .allowed_hostname = sd->allowed_hostname,
  };
  *out = tls_server_ctx_new(&tc, err, sizeof(err));
  if (!*out) {
    LOGE(
        "msg=\"cannot set up %s TLS\" error=\"%s\" fix=\"check --%scert-file, --%skey-file and "
        "--%strusted-ca-file\"",
        sd->kind, err, sd->prefix, sd->prefix, sd->prefix);
    return -1;
  }
  return 0;
}

int tls_setup_client(const cetcd_config_t *cfg, tls_ctx_t **out) {
  side_t sd = {"client",
               "",
               cfg->listen_client_urls,
               cfg->n_listen_client_urls,
               cfg->cert_file,
               cfg->key_file,
               cfg->trusted_ca_file,
               cfg->client_crl_file,
               NULL,
               cfg->client_cert_allowed_hostname,
               cfg->client_cert_auth,
               cfg->auto_tls};
  return setup(cfg, &sd, out);
}

/* The context for dialing peers (etcd's PeerTLSInfo.ClientConfig): the peer certificate is
 * also the client certificate, the peer CA verifies the other members, whose certificates
 * must also pass --peer-cert-allowed-cn/-hostname (etcd checks both ways); with --peer-auto-tls
 * the self-signed certificate is presented and nothing is verified, as etcd does. NULL in
 * *out when no peer TLS setting is given. */
static int setup_dialer(const cetcd_config_t *cfg, grpc_tls_ctx_t **out) {
  *out = NULL;
  bool files = *cfg->peer_cert_file || *cfg->peer_key_file;
  if (!files && !cfg->peer_auto_tls && !*cfg->peer_trusted_ca_file) return 0;
  char cert[4200] = "", key[4200] = "", err[512];
  if (!files && cfg->peer_auto_tls) { /* made by setup() when a peer listener is https */
    snprintf(cert, sizeof(cert), "%s/fixtures/peer/cert.pem", cfg->data_dir);
    snprintf(key, sizeof(key), "%s/fixtures/peer/key.pem", cfg->data_dir);
    if (access(cert, R_OK) || access(key, R_OK)) cert[0] = key[0] = 0;
  }
  grpc_tls_config_t tc = {.ca_file = cfg->peer_trusted_ca_file,
                          .cert_file = files ? cfg->peer_cert_file : cert,
                          .key_file = files ? cfg->peer_key_file : key,
                          .insecure_skip_verify = !files && cfg->peer_auto_tls,
                          .allowed_cn = cfg->peer_cert_allowed_cn,
                          .allowed_hostname = cfg->peer_cert_allowed_hostname};
  if (grpc_tls_ctx_new(&tc, out, err, sizeof(err)) != 0) {
    LOGE(
        "msg=\"cannot set up TLS for dialing peers\" error=\"%s\" fix=\"check --peer-cert-file, "
        "--peer-key-file and --peer-trusted-ca-file\"",
        err);
    return -1;
  }
  return 0;
}

int tls_setup_peer(const cetcd_config_t *cfg, tls_ctx_t **server, grpc_tls_ctx_t **dialer) {
  side_t sd = {"peer",
               "peer-",
               cfg->listen_peer_urls,
               cfg->n_listen_peer_urls,
               cfg->peer_cert_file,
               cfg->peer_key_file,
               cfg->peer_trusted_ca_file,
               cfg->peer_crl_file,
               cfg->peer_cert_allowed_cn,
               cfg->peer_cert_allowed_hostname,
               cfg->peer_client_cert_auth,
               cfg->peer_auto_tls};
  *dialer = NULL;
  if (setup(cfg, &sd, server)) return -1;
  if (setup_dialer(cfg, dialer)) {
    tls_ctx_free(*server);
    *server = NULL;
    return -1;
  }
  return 0;
}
