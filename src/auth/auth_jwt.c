/* JWT tokens (see auth_jwt.h): JWS compact form, base64url without padding, claims written as
 * Go's encoding/json writes a map (sorted keys). The signatures come from auth_jws.h
 * (OpenSSL); base64 is nettle's. */
#include "auth/auth_jwt.h"

#include <errno.h>
#include <inttypes.h>
#include <nettle/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_jws.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "cetcd/errors.h"

struct auth_jwt {
  char alg[8];
  auth_jws_key_t *key;
  int64_t ttl_s;
};

/* ---- base64url ---- */

/* Appends base64url (no padding) of n bytes to b. */
static void b64url_put(buf_t *b, const uint8_t *p, size_t n) {
  struct base64_encode_ctx e;
  base64url_encode_init(&e);
  char *tmp = xmalloc(BASE64_ENCODE_LENGTH(n) + BASE64_ENCODE_FINAL_LENGTH);
  size_t len = base64_encode_update(&e, tmp, n, p);
  len += base64_encode_final(&e, tmp + len);
  while (len > 0 && tmp[len - 1] == '=') len--;
  buf_append(b, tmp, len);
  free(tmp);
}

/* Decodes n chars of unpadded base64url into a malloc'd *out; returns the length, or -1
 * with *out NULL. */
static long b64url_get(const char *s, size_t n, uint8_t **out) {
  if (n % 4 == 1 || memchr(s, '=', n)) return -1;
  size_t padded = (n + 3) / 4 * 4, len = BASE64_DECODE_LENGTH(padded);
  char *tmp = xmalloc(padded);
  memcpy(tmp, s, n);
  memset(tmp + n, '=', padded - n);
  struct base64_decode_ctx d;
  base64url_decode_init(&d);
  *out = xmalloc(len + 1);
  bool ok = base64_decode_update(&d, &len, *out, padded, tmp) && base64_decode_final(&d);
  free(tmp);
  if (!ok) {
    free(*out);
    *out = NULL;
    return -1;
  }
  return (long)len;
}

/* ---- keys ---- */

int auth_jwt_open(const char *method, const char *pub_path, const char *priv_path, int64_t ttl_ms,
                  auth_jwt_t **out, char *err, size_t errlen) {
  *out = NULL;
  method = method ? method : "";
  auth_jws_key_t *k =
      auth_jws_key_open(method, pub_path ? pub_path : "", priv_path ? priv_path : "", err, errlen);
  if (!k) return CETCD_EINVAL;
  auth_jwt_t *j = xcalloc(1, sizeof(*j));
  snprintf(j->alg, sizeof(j->alg), "%s", method);
  j->key = k;
  j->ttl_s = ttl_ms > 0 ? ttl_ms / 1000 : 300;
  *out = j;
  return 0;
}

void auth_jwt_free(auth_jwt_t *j) {
  if (!j) return;
  auth_jws_key_free(j->key);
  free(j);
}

/* ---- tokens ---- */

int auth_jwt_sign(const auth_jwt_t *j, const char *user, uint64_t rev, int64_t now_s, char **token) {
  *token = NULL;
  if (!auth_jws_can_sign(j->key)) return CETCD_EAUTHVERIFYONLY;
  buf_t hdr = {0}, claims = {0}, out = {0};
  buf_printf(&hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", j->alg);
  buf_printf(&claims, "{\"exp\":%" PRId64 ",\"revision\":%" PRIu64 ",\"username\":", now_s + j->ttl_s, rev);
  buf_append_json_str(&claims, user);
  buf_append(&claims, "}", 1);
  b64url_put(&out, (const uint8_t *)hdr.data, hdr.len);
  buf_append(&out, ".", 1);
  b64url_put(&out, (const uint8_t *)claims.data, claims.len);
  uint8_t *sig = NULL;
  size_t slen = auth_jws_sign(j->key, (const uint8_t *)out.data, out.len, &sig);
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
         auth_jws_verify(j->key, (const uint8_t *)token, (size_t)(d2 - token), sig, (size_t)sl);
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
