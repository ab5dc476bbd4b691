/* JWS signatures of JWT tokens (etcd's --auth-token jwt sign methods RS*, PS*, ES*, HS*) over
 * OpenSSL 3. Only signatures live here; the token format is auth_jwt.c's.
 * Thread-safe once the key is loaded. */
#ifndef CETCD_AUTH_JWS_H
#define CETCD_AUTH_JWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct auth_jws_key auth_jws_key_t;

/* Loads the key for sign method `method` ("RS256", "PS384", "ES512", "HS256", ...) from PEM
 * files (paths; "" = unset): the private key signs and verifies, a public key alone only
 * verifies; HS* takes priv_path's bytes as the secret. NULL with the cause in err (unknown
 * method, unreadable or mismatching key, the module missing). */
auth_jws_key_t *auth_jws_key_open(const char *method, const char *pub_path, const char *priv_path, char *err,
                                  size_t errlen);
/* Frees the key (NULL is fine). */
void auth_jws_key_free(auth_jws_key_t *k);
/* Whether the key can sign (a private key or an HMAC secret). */
bool auth_jws_can_sign(const auth_jws_key_t *k);
/* Signs msg (n bytes) into *sig (malloc'd; ECDSA as R||S, as JWS wants). Returns the
 * signature's length, or 0 on failure (nothing allocated then). */
size_t auth_jws_sign(const auth_jws_key_t *k, const uint8_t *msg, size_t n, uint8_t **sig);
/* Whether sig (slen bytes, JWS form) is a valid signature of msg under the key. */
bool auth_jws_verify(const auth_jws_key_t *k, const uint8_t *msg, size_t n, const uint8_t *sig, size_t slen);

#endif
