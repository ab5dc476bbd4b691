/* JWS signatures over OpenSSL 3 (see auth_jws.h). As net/tls.c, it reports allocation
 * failures instead of aborting. */
#include "auth/auth_jws.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_RSA, K_PSS, K_EC, K_HMAC } kind_t;

struct auth_jws_key {
  kind_t kind;
  const EVP_MD *md;
  size_t ec_half;       /* bytes of R (and S) for ES* */
  EVP_PKEY *priv, *pub; /* priv, when set, is pub */
  uint8_t *secret;      /* HS* */
  size_t secret_len;
};

/* ---- keys ---- */

/* Reads a whole file into a malloc'd buffer; false if it cannot. */
static bool read_file(const char *path, uint8_t **data, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  size_t cap = 4096, n = 0, got;
  uint8_t *b = malloc(cap);
  while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      uint8_t *nb = realloc(b, cap *= 2);
      if (!nb) free(b);
      b = nb;
    }
  }
  bool ok = b && !ferror(f);
  fclose(f);
  if (!ok) {
    free(b);
    return false;
  }
  *data = b;
  *len = n;
  return true;
}

/* Sets the algorithm's kind and digest from its name; false for an unknown method. */
static bool set_method(auth_jws_key_t *k, const char *m) {
  if (strlen(m) != 5) return false;
  int bits = atoi(m + 2);
  k->md = bits == 256 ? EVP_sha256() : bits == 384 ? EVP_sha384() : bits == 512 ? EVP_sha512() : NULL;
  if (!k->md) return false;
  if (!strncmp(m, "RS", 2))
    k->kind = K_RSA;
  else if (!strncmp(m, "PS", 2))
    k->kind = K_PSS;
  else if (!strncmp(m, "ES", 2))
    k->kind = K_EC;
  else if (!strncmp(m, "HS", 2))
    k->kind = K_HMAC;
  else
    return false;
  k->ec_half = bits == 256 ? 32 : bits == 384 ? 48 : 66;
  return true;
}

/* Loads the key files for the method; false with the cause in err. */
static bool load_keys(auth_jws_key_t *k, const char *method, const char *pub_path, const char *priv_path,
                      char *err, size_t errlen) {
  uint8_t *data = NULL;
  size_t len = 0;
  if (k->kind == K_HMAC) {
    if (!*priv_path || !read_file(priv_path, &data, &len))
      return snprintf(err, errlen, "cannot read priv-key"), false;
    k->secret = data;
    k->secret_len = len;
    return true;
  }
  const char *path = *priv_path ? priv_path : pub_path;
  if (!*path) return snprintf(err, errlen, "neither pub-key nor priv-key given"), false;
  if (!read_file(path, &data, &len)) return snprintf(err, errlen, "cannot read %s", path), false;
  BIO *bio = BIO_new_mem_buf(data, (int)len);
  EVP_PKEY *key = !bio         ? NULL
                  : *priv_path ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                               : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  BIO_free(bio);
  free(data);
  if (!key) return snprintf(err, errlen, "cannot parse the key in %s", path), false;
  if (EVP_PKEY_get_base_id(key) != (k->kind == K_EC ? EVP_PKEY_EC : EVP_PKEY_RSA)) {
    EVP_PKEY_free(key);
    return snprintf(err, errlen, "the key in %s does not fit sign-method %s", path, method), false;
  }
  if (*priv_path) k->priv = key;
  k->pub = key;
  return true;
}

auth_jws_key_t *auth_jws_key_open(const char *method, const char *pub_path, const char *priv_path, char *err,
                                  size_t errlen) {
  auth_jws_key_t *k = calloc(1, sizeof(*k));
  if (!k) return snprintf(err, errlen, "out of memory"), NULL;
  if (!set_method(k, method)) {
    snprintf(err, errlen, "invalid sign-method \"%s\"", method);
    free(k);
    return NULL;
  }
  if (!load_keys(k, method, pub_path, priv_path, err, errlen)) {
    auth_jws_key_free(k);
    return NULL;
  }
  return k;
}

void auth_jws_key_free(auth_jws_key_t *k) {
  if (!k) return;
  EVP_PKEY_free(k->pub);
  free(k->secret);
  free(k);
}

bool auth_jws_can_sign(const auth_jws_key_t *k) { return k->priv || k->kind == K_HMAC; }

/* ---- signatures ---- */

/* Converts a DER ECDSA signature to R||S (2 * half bytes) in out. */
static bool der_to_rs(const uint8_t *der, size_t len, size_t half, uint8_t *out) {
  const unsigned char *p = der;
  ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
  if (!s) return false;
  const BIGNUM *r, *sv;
  ECDSA_SIG_get0(s, &r, &sv);
  bool ok =
      BN_bn2binpad(r, out, (int)half) == (int)half && BN_bn2binpad(sv, out + half, (int)half) == (int)half;
  ECDSA_SIG_free(s);
  return ok;
}

/* Converts R||S to DER (OpenSSL-allocated *der); returns its length or 0. */
static size_t rs_to_der(const uint8_t *rs, size_t half, unsigned char **der) {
  ECDSA_SIG *s = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(rs, (int)half, NULL), *sv = BN_bin2bn(rs + half, (int)half, NULL);
  if (!s || !r || !sv || !ECDSA_SIG_set0(s, r, sv)) {
    BN_free(r);
    BN_free(sv);
    ECDSA_SIG_free(s);
    return 0;
  }
  *der = NULL;
  int n = i2d_ECDSA_SIG(s, der);
  ECDSA_SIG_free(s);
  return n > 0 ? (size_t)n : 0;
}

/* Sets PSS padding on a signing/verifying context. */
static bool pss(EVP_PKEY_CTX *pc, bool sign) {
  return EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, sign ? RSA_PSS_SALTLEN_DIGEST : RSA_PSS_SALTLEN_AUTO) > 0;
}

size_t auth_jws_sign(const auth_jws_key_t *k, const uint8_t *msg, size_t n, uint8_t **sig) {
  *sig = NULL;
  if (k->kind == K_HMAC) {
    unsigned int len = 0;
    uint8_t *mac = malloc(EVP_MAX_MD_SIZE);
    if (!mac || !HMAC(k->md, k->secret, (int)k->secret_len, msg, n, mac, &len) || !len) {
      free(mac);
      return 0;
    }
    *sig = mac;
    return len;
  }
  if (!k->priv) return 0;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pc = NULL;
  size_t len = 0;
  uint8_t *der = NULL;
  if (c && EVP_DigestSignInit(c, &pc, k->md, NULL, k->priv) > 0 && (k->kind != K_PSS || pss(pc, true)) &&
      EVP_DigestSign(c, NULL, &len, msg, n) > 0 && (der = malloc(len)) &&
      EVP_DigestSign(c, der, &len, msg, n) <= 0)
    len = 0;
  EVP_MD_CTX_free(c);
  if (!der) return 0;
  if (len && k->kind == K_EC) {
    uint8_t *rs = malloc(2 * k->ec_half);
    len = rs && der_to_rs(der, len, k->ec_half, rs) ? 2 * k->ec_half : 0;
    free(der);
    der = rs;
  }
  if (!len) {
    free(der);
    return 0;
  }
  *sig = der;
  return len;
}

bool auth_jws_verify(const auth_jws_key_t *k, const uint8_t *msg, size_t n, const uint8_t *sig, size_t slen) {
  if (k->kind == K_HMAC) {
    uint8_t *mine = NULL;
    size_t ml = auth_jws_sign(k, msg, n, &mine);
    unsigned char d = ml != slen;
    for (size_t i = 0; i < ml && i < slen; i++) d |= (unsigned char)(mine[i] ^ sig[i]);
    free(mine);
    return ml && d == 0;
  }
  unsigned char *der = NULL;
  if (k->kind == K_EC) {
    if (slen != 2 * k->ec_half || !(slen = rs_to_der(sig, k->ec_half, &der))) return false;
    sig = der;
  }
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pc = NULL;
  bool ok = c && EVP_DigestVerifyInit(c, &pc, k->md, NULL, k->pub) > 0 &&
            (k->kind != K_PSS || pss(pc, false)) && EVP_DigestVerify(c, sig, slen, msg, n) == 1;
  EVP_MD_CTX_free(c);
  OPENSSL_free(der);
  return ok;
}
