/* The TLS contexts of the listeners, built from the configuration as etcd builds its
 * TLSInfo: given files, or --auto-tls's self-signed certificate kept under the data dir,
 * with --cipher-suites mapped to OpenSSL's names. */
#include "server/tls_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
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

int tls_setup_client(const cetcd_config_t *cfg, tls_ctx_t **out) {
  *out = NULL;
  bool have_files = (cfg->cert_file && *cfg->cert_file) || (cfg->key_file && *cfg->key_file);
  if (!any_tls(cfg->listen_client_urls, cfg->n_listen_client_urls)) {
    if (have_files)
      LOGW("msg=\"scheme is HTTP while key and cert files are present; ignoring key and cert files\"");
    if (cfg->client_cert_auth)
      LOGW("msg=\"scheme is HTTP while --client-cert-auth is enabled; ignoring client cert auth\"");
    return 0;
  }
  char cert[4200], key[4200], ciphers[2048] = "", err[512];
  const char *cert_file = cfg->cert_file, *key_file = cfg->key_file;
  if (cfg->auto_tls && have_files) {
    LOGW("msg=\"ignoring client auto TLS since certs given\"");
  } else if (cfg->auto_tls) {
    if (self_cert(cfg, "client", cfg->listen_client_urls, cfg->n_listen_client_urls, cert, key, sizeof(cert)))
      return -1;
    cert_file = cert;
    key_file = key;
  } else if (!have_files) {
    for (size_t i = 0; i < cfg->n_listen_client_urls; i++) {
      if (!any_tls(&cfg->listen_client_urls[i], 1)) continue;
      LOGE(
          "msg=\"TLS key/cert (--cert-file, --key-file) must be provided for client url %s with HTTPS "
          "scheme\" "
          "fix=\"give --cert-file and --key-file, or --auto-tls\"",
          cfg->listen_client_urls[i]);
      break;
    }
    return -1;
  }
  if (cfg->n_cipher_suites &&
      tls_cipher_list(cfg->cipher_suites, cfg->n_cipher_suites, ciphers, sizeof(ciphers), err, sizeof(err))) {
    LOGE("msg=\"bad --cipher-suites\" error=\"%s\"", err);
    return -1;
  }
  tls_config_t tc = {
      .cert_file = cert_file,
      .key_file = key_file,
      .trusted_ca_file = cfg->trusted_ca_file,
      .crl_file = cfg->client_crl_file,
      .client_cert_auth = cfg->client_cert_auth,
      .cipher_suites = *ciphers ? ciphers : NULL,
      .allowed_hostname = cfg->client_cert_allowed_hostname,
  };
  *out = tls_server_ctx_new(&tc, err, sizeof(err));
  if (!*out) {
    LOGE(
        "msg=\"cannot set up client TLS\" error=\"%s\" fix=\"check --cert-file, --key-file and "
        "--trusted-ca-file\"",
        err);
    return -1;
  }
  return 0;
}
