/* JWT tokens over OpenSSL 3, loaded on demand (auth_libcrypto.h; see auth_jwt.h): JWS compact form, base64url
 * without padding, ECDSA signatures as R||S, claims written as Go's encoding/json writes a map (sorted keys).
 */
#include "auth/auth_jwt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_libcrypto.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "cetcd/errors.h"

typedef enum { K_RSA, K_PSS, K_EC, K_HMAC } kind_t;

struct auth_jwt {
  char alg[8];
  kind_t kind;
  const EVP_MD *md;
  size_t ec_half; /* bytes of R (and S) for ES* */
  EVP_PKEY *priv, *pub;
  uint8_t *secret; /* HS* */
  size_t secret_len;
  int64_t ttl_s;
};

/* ---- base64url ---- */

/* Appends base64url (no padding) of n bytes to b. */
static void b64url_put(buf_t *b, const uint8_t *p, size_t n) {
  char *tmp = xmalloc(4 * ((n + 2) / 3) + 1);
  int len = C(EVP_EncodeBlock)((unsigned char *)tmp, p, (int)n);
  while (len > 0 && tmp[len - 1] == '=') len--;
  for (int i = 0; i < len; i++) tmp[i] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : tmp[i];
  buf_append(b, tmp, (size_t)len);
  free(tmp);
}

/* Decodes n chars of base64url into a malloc'd *out; returns the length or -1. */
static long b64url_get(const char *s, size_t n, uint8_t **out) {
  size_t padded = (n + 3) / 4 * 4;
  char *tmp = xmalloc(padded + 1);
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '+' || c == '/' || c == '=') {
      free(tmp);
      return -1;
    }
    tmp[i] = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  for (size_t i = n; i < padded; i++) tmp[i] = '=';
  tmp[padded] = 0;
  *out = xmalloc(padded / 4 * 3 + 1);
  int len = C(EVP_DecodeBlock)(*out, (unsigned char *)tmp, (int)padded);
  free(tmp);
  if (len < 0 || n % 4 == 1) {
    free(*out);
    return -1;
  }
  return len - (long)(padded - n); /* EVP_DecodeBlock counts the padding as zero bytes */
}

/* ---- keys ---- */

/* Reads a whole file into a malloc'd buffer. */
static int read_file(const char *path, uint8_t **data, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return -errno;
  buf_t b = {0};
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) buf_append(&b, chunk, n);
  fclose(f);
  *len = b.len;
  *data = xmemdup(b.data ? (const void *)b.data : "", b.len + 1);
  buf_free(&b);
  return 0;
}

/* Parses a PEM private (priv) or public key. */
static EVP_PKEY *load_pem(const uint8_t *pem, size_t len, bool priv) {
  BIO *bio = C(BIO_new_mem_buf)(pem, (int)len);
  EVP_PKEY *k = priv ? C(PEM_read_bio_PrivateKey)(bio, NULL, NULL, NULL)
                     : C(PEM_read_bio_PUBKEY)(bio, NULL, NULL, NULL);
  C(BIO_free)(bio);
  return k;
}

/* Sets the algorithm's kind and digest from its name. */
static int set_method(auth_jwt_t *j, const char *m) {
  if (strlen(m) != 5) return -1;
  int bits = atoi(m + 2);
  j->md = bits == 256   ? C(EVP_sha256)()
          : bits == 384 ? C(EVP_sha384)()
          : bits == 512 ? C(EVP_sha512)()
                        : NULL;
  if (!j->md) return -1;
  if (!strncmp(m, "RS", 2))
    j->kind = K_RSA;
  else if (!strncmp(m, "PS", 2))
    j->kind = K_PSS;
  else if (!strncmp(m, "ES", 2))
    j->kind = K_EC;
  else if (!strncmp(m, "HS", 2))
    j->kind = K_HMAC;
  else
    return -1;
  j->ec_half = bits == 256 ? 32 : bits == 384 ? 48 : 66;
  snprintf(j->alg, sizeof(j->alg), "%s", m);
  return 0;
}

/* Loads the key files for the method. */
static int load_keys(auth_jwt_t *j, const char *pub_path, const char *priv_path, char *err, size_t errlen) {
  uint8_t *data = NULL;
  size_t len = 0;
  if (j->kind == K_HMAC) {
    if (!*priv_path || read_file(priv_path, &data, &len))
      return snprintf(err, errlen, "cannot read priv-key"), -1;
    j->secret = data;
    j->secret_len = len;
    return 0;
  }
  const char *path = *priv_path ? priv_path : pub_path;
  if (!*path) return snprintf(err, errlen, "neither pub-key nor priv-key given"), -1;
  if (read_file(path, &data, &len)) return snprintf(err, errlen, "cannot read %s", path), -1;
  EVP_PKEY *k = load_pem(data, len, *priv_path != 0);
  free(data);
  if (!k) return snprintf(err, errlen, "cannot parse the key in %s", path), -1;
  int want = j->kind == K_EC ? EVP_PKEY_EC : EVP_PKEY_RSA;
  if (C(EVP_PKEY_get_base_id)(k) != want) {
    C(EVP_PKEY_free)(k);
    return snprintf(err, errlen, "the key in %s does not fit sign-method %s", path, j->alg), -1;
  }
  if (*priv_path) j->priv = k;
  j->pub = k; /* a private key verifies too; with only pub-key the provider is verify-only */
  return 0;
}

int auth_jwt_open(const char *method, const char *pub_path, const char *priv_path, int64_t ttl_ms,
                  auth_jwt_t **out, char *err, size_t errlen) {
  *out = NULL;
  if (auth_libcrypto_load(err, errlen)) return CETCD_EINVAL;
  auth_jwt_t *j = xcalloc(1, sizeof(*j));
  j->ttl_s = ttl_ms > 0 ? ttl_ms / 1000 : 300;
  if (set_method(j, method ? method : "")) {
    snprintf(err, errlen, "invalid sign-method \"%s\"", method ? method : "");
    auth_jwt_free(j);
    return CETCD_EINVAL;
  }
  if (load_keys(j, pub_path ? pub_path : "", priv_path ? priv_path : "", err, errlen)) {
    auth_jwt_free(j);
    return CETCD_EINVAL;
  }
  *out = j;
  return 0;
}

void auth_jwt_free(auth_jwt_t *j) {
  if (!j) return;
  C(EVP_PKEY_free)(j->pub); /* priv, when set, is the same key */
  free(j->secret);
  free(j);
}

/* ---- signatures ---- */

/* Converts a DER ECDSA signature to R||S (2 * half bytes) in out. */
static bool der_to_rs(const uint8_t *der, size_t len, size_t half, uint8_t *out) {
  const unsigned char *p = der;
  ECDSA_SIG *s = C(d2i_ECDSA_SIG)(NULL, &p, (long)len);
  if (!s) return false;
  const BIGNUM *r, *sv;
  C(ECDSA_SIG_get0)(s, &r, &sv);
  bool ok = C(BN_bn2binpad)(r, out, (int)half) == (int)half &&
            C(BN_bn2binpad)(sv, out + half, (int)half) == (int)half;
  C(ECDSA_SIG_free)(s);
  return ok;
}

/* Converts R||S to DER (malloc'd *der); returns its length or 0. */
static size_t rs_to_der(const uint8_t *rs, size_t half, uint8_t **der) {
  ECDSA_SIG *s = C(ECDSA_SIG_new)();
  BIGNUM *r = C(BN_bin2bn)(rs, (int)half, NULL), *sv = C(BN_bin2bn)(rs + half, (int)half, NULL);
  if (!s || !r || !sv || !C(ECDSA_SIG_set0)(s, r, sv)) {
    C(BN_free)(r);
    C(BN_free)(sv);
    C(ECDSA_SIG_free)(s);
    return 0;
  }
  unsigned char *p = NULL;
  int n = C(i2d_ECDSA_SIG)(s, &p);
  C(ECDSA_SIG_free)(s);
  if (n <= 0) return 0;
  *der = xmemdup(p, (size_t)n);
  C(CRYPTO_free)(p, __FILE__, __LINE__);
  return (size_t)n;
}

/* Sets PSS padding on a signing/verifying context. */
static bool pss(EVP_PKEY_CTX *pc, bool sign) {
  return C(EVP_PKEY_CTX_set_rsa_padding)(pc, RSA_PKCS1_PSS_PADDING) > 0 &&
         C(EVP_PKEY_CTX_set_rsa_pss_saltlen)(pc, sign ? RSA_PSS_SALTLEN_DIGEST : RSA_PSS_SALTLEN_AUTO) > 0;
}

/* Signs msg into a malloc'd *sig (JWS form); returns its length or 0. */
static size_t sign(const auth_jwt_t *j, const uint8_t *msg, size_t n, uint8_t **sig) {
  if (j->kind == K_HMAC) {
    unsigned int len = 0;
    *sig = xmalloc(EVP_MAX_MD_SIZE);
    if (!C(HMAC)(j->md, j->secret, (int)j->secret_len, msg, n, *sig, &len)) len = 0;
    return len;
  }
  EVP_MD_CTX *c = C(EVP_MD_CTX_new)();
  EVP_PKEY_CTX *pc = NULL;
  size_t len = 0;
  uint8_t *der = NULL;
  if (c && C(EVP_DigestSignInit)(c, &pc, j->md, NULL, j->priv) > 0 && (j->kind != K_PSS || pss(pc, true)) &&
      C(EVP_DigestSign)(c, NULL, &len, msg, n) > 0) {
    der = xmalloc(len);
    if (C(EVP_DigestSign)(c, der, &len, msg, n) <= 0) len = 0;
  }
  C(EVP_MD_CTX_free)(c);
  if (len && j->kind == K_EC) {
    uint8_t *rs = xmalloc(2 * j->ec_half);
    len = der_to_rs(der, len, j->ec_half, rs) ? 2 * j->ec_half : 0;
    free(der);
    der = rs;
  }
  *sig = der;
  return len;
}

/* Verifies a JWS signature over msg. */
static bool verify(const auth_jwt_t *j, const uint8_t *msg, size_t n, const uint8_t *sig, size_t slen) {
  if (j->kind == K_HMAC) {
    uint8_t *mine = NULL;
    size_t ml = sign(j, msg, n, &mine);
    unsigned char d = ml != slen;
    for (size_t i = 0; i < ml && i < slen; i++) d |= (unsigned char)(mine[i] ^ sig[i]);
    free(mine);
    return ml && d == 0;
  }
  uint8_t *der = NULL;
  if (j->kind == K_EC) {
    if (slen != 2 * j->ec_half || !(slen = rs_to_der(sig, j->ec_half, &der))) return false;
    sig = der;
  }
  EVP_MD_CTX *c = C(EVP_MD_CTX_new)();
  EVP_PKEY_CTX *pc = NULL;
  bool ok = c && C(EVP_DigestVerifyInit)(c, &pc, j->md, NULL, j->pub) > 0 &&
            (j->kind != K_PSS || pss(pc, false)) && C(EVP_DigestVerify)(c, sig, slen, msg, n) == 1;
  C(EVP_MD_CTX_free)(c);
  free(der);
  return ok;
}

/* ---- tokens ---- */

int auth_jwt_sign(const auth_jwt_t *j, const char *user, uint64_t rev, int64_t now_s, char **token) {
  *token = NULL;
  if (!j->priv && j->kind != K_HMAC) return CETCD_EAUTHVERIFYONLY;
  buf_t hdr = {0}, claims = {0}, out = {0};
  buf_printf(&hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", j->alg);
  buf_printf(&claims, "{\"exp\":%" PRId64 ",\"revision\":%" PRIu64 ",\"username\":", now_s + j->ttl_s, rev);
  buf_append_json_str(&claims, user);
  buf_append(&claims, "}", 1);
  b64url_put(&out, (const uint8_t *)hdr.data, hdr.len);
  buf_append(&out, ".", 1);
  b64url_put(&out, (const uint8_t *)claims.data, claims.len);
  uint8_t *sig = NULL;
  size_t slen = sign(j, (const uint8_t *)out.data, out.len, &sig);
  int rc = slen ? 0 : -ENOMEM;
  if (rc == 0) {
    buf_append(&out, ".", 1);
    b64url_put(&out, sig, slen);
    buf_append(&out, "", 1);
    *token = xmemdup(out.data, out.len);
  }
  free(sig);
  buf_free(&hdr);
  buf_free(&claims);
  buf_free(&out);
  return rc;
}

/* Finds "key": in a flat JSON object and returns a pointer to its value, or NULL. */
static const char *json_field(const char *js, const char *key) {
  char pat[32];
  snprintf(pat, sizeof(pat), "\"%s\"", key);
  const char *p = strstr(js, pat);
  if (!p) return NULL;
  p += strlen(pat);
  while (*p == ' ') p++;
  if (*p++ != ':') return NULL;
  while (*p == ' ') p++;
  return p;
}

/* Copies a JSON string value (escapes \" and \\ only) into out. */
static bool json_str_get(const char *p, char *out, size_t cap) {
  if (*p++ != '"') return false;
  size_t n = 0;
  for (; *p && *p != '"'; p++) {
    if (*p == '\\') {
      p++;
      if (*p != '"' && *p != '\\') return false;
    }
    if (n + 1 >= cap) return false;
    out[n++] = *p;
  }
  out[n] = 0;
  return *p == '"';
}

bool auth_jwt_verify(const auth_jwt_t *j, const char *token, int64_t now_s, char *user, size_t ucap,
                     uint64_t *rev) {
  const char *d1 = strchr(token, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  if (!d2 || strchr(d2 + 1, '.')) return false;
  uint8_t *hdr = NULL, *claims = NULL, *sig = NULL;
  long hl = b64url_get(token, (size_t)(d1 - token), &hdr);
  long cl = hl < 0 ? -1 : b64url_get(d1 + 1, (size_t)(d2 - d1 - 1), &claims);
  long sl = cl < 0 ? -1 : b64url_get(d2 + 1, strlen(d2 + 1), &sig);
  bool ok = sl > 0;
  if (ok) {
    hdr[hl] = 0;
    claims[cl] = 0;
    char alg[16];
    const char *a = json_field((char *)hdr, "alg");
    ok = a && json_str_get(a, alg, sizeof(alg)) && !strcmp(alg, j->alg) &&
         verify(j, (const uint8_t *)token, (size_t)(d2 - token), sig, (size_t)sl);
  }
  if (ok) {
    const char *u = json_field((char *)claims, "username"), *r = json_field((char *)claims, "revision");
    const char *e = json_field((char *)claims, "exp");
    ok = u && r && json_str_get(u, user, ucap);
    if (ok) *rev = strtoull(r, NULL, 10);
    if (ok && e) ok = strtoll(e, NULL, 10) >= now_s; /* jwt-go: expired once now > exp */
  }
  free(hdr);
  free(claims);
  free(sig);
  return ok;
}
