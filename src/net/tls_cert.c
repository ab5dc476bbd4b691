/* TLS set-up helpers: --auto-tls's self-signed certificate and --cipher-suites' names. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "net/tls.h"

/* Writes a PEM object to path (created with mode 0600) through write_fn. */
static int write_pem(const char *path, int (*write_fn)(FILE *, void *), void *obj) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    return -1;
  }
  int ok = write_fn(f, obj);
  if (fflush(f) || fsync(fileno(f))) ok = 0;
  return fclose(f) == 0 && ok ? 0 : -1;
}

static int write_key(FILE *f, void *k) { return PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL); }
static int write_cert(FILE *f, void *x) { return PEM_write_X509(f, x); }

/* Adds one v3 extension given in OpenSSL's config syntax. */
static int add_ext(X509 *x, int nid, const char *value) {
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
  X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
  if (!e) return -1;
  int ok = X509_add_ext(x, e, -1);
  X509_EXTENSION_free(e);
  return ok ? 0 : -1;
}

/* The subjectAltName value for the hosts: "IP:127.0.0.1,DNS:localhost". */
static void alt_names(char *const *hosts, size_t n, char *out, size_t cap) {
  size_t len = 0;
  out[0] = 0;
  for (size_t i = 0; i < n && len < cap; i++) {
    unsigned char bin[16];
    const char *h = hosts[i];
    bool ip = inet_pton(AF_INET, h, bin) == 1 || inet_pton(AF_INET6, h, bin) == 1;
    len += (size_t)snprintf(out + len, cap - len, "%s%s:%s", len ? "," : "", ip ? "IP" : "DNS", h);
  }
}

/* Builds and signs the certificate for key pk. NULL on error. */
static X509 *make_cert(EVP_PKEY *pk, char *const *hosts, size_t n, unsigned years) {
  X509 *x = X509_new();
  BIGNUM *serial = BN_new();
  char san[2048];
  alt_names(hosts, n, san, sizeof(san));
  int ok =
      x && serial && X509_set_version(x, 2) && BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
      BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) && X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
      X509_gmtime_adj(X509_getm_notAfter(x), (long)years * 365 * 24 * 3600) && X509_set_pubkey(x, pk) &&
      X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "O", MBSTRING_ASC, (const unsigned char *)"etcd",
                                 -1, -1, 0) &&
      X509_set_issuer_name(x, X509_get_subject_name(x));
  ok = ok && !add_ext(x, NID_basic_constraints, "critical,CA:FALSE") &&
       !add_ext(x, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
       !add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth") &&
       (!*san || !add_ext(x, NID_subject_alt_name, san)) && X509_sign(x, pk, EVP_sha256()) > 0;
  BN_free(serial);
  if (!ok) {
    X509_free(x);
    return NULL;
  }
  return x;
}

int tls_self_cert(const char *dir, char *const *hosts, size_t n_hosts, unsigned years, char *err,
                  size_t errlen) {
  char cert[4200], key[4200];
  snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
  snprintf(key, sizeof(key), "%s/key.pem", dir);
  if (!access(cert, R_OK) && !access(key, R_OK)) return 0;
  int mrc = fs_mkdir_durable(dir);
  if (mrc) {
    snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-mrc));
    return -1;
  }
  EVP_PKEY *pk = EVP_EC_gen("P-256");
  X509 *x = pk ? make_cert(pk, hosts, n_hosts, years ? years : 1) : NULL;
  int rc = 0;
  if (!x) {
    unsigned long e = ERR_get_error();
    snprintf(err, errlen, "cannot generate a self-signed certificate: %s",
             e ? ERR_reason_error_string(e) : "?");
    rc = -1;
  } else if (write_pem(key, write_key, pk) || write_pem(cert, write_cert, x)) {
    snprintf(err, errlen, "cannot write %s or %s: %s", key, cert, strerror(errno));
    rc = -1;
  }
  ERR_clear_error();
  X509_free(x);
  EVP_PKEY_free(pk);
  return rc;
}

/* Go's TLS 1.0-1.2 cipher suite names (crypto/tls) and OpenSSL's names for them. */
static const struct {
  const char *go, *openssl;
} SUITES[] = {
    {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA-DES-CBC3-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
};

int tls_cipher_list(char *const *names, size_t n, char *out, size_t cap, char *err, size_t errlen) {
  size_t len = 0;
  out[0] = 0;
  for (size_t i = 0; i < n; i++) {
    const char *ossl = NULL;
    for (size_t k = 0; k < sizeof(SUITES) / sizeof(SUITES[0]) && !ossl; k++)
      if (!strcmp(names[i], SUITES[k].go)) ossl = SUITES[k].openssl;
    if (!ossl) {
      snprintf(err, errlen, "unexpected TLS cipher suite \"%s\"", names[i]);
      return -1;
    }
    int w = snprintf(out + len, cap - len, "%s%s", len ? ":" : "", ossl);
    if (w < 0 || (size_t)w >= cap - len) {
      snprintf(err, errlen, "too many cipher suites");
      return -1;
    }
    len += (size_t)w;
  }
  return 0;
}
