/* JWT tokens (etcd's auth/jwt.go, `--auth-token jwt,pub-key=..,priv-key=..,sign-method=..,ttl=..`):
 * a signed {"exp","revision","username"} claim set. Signatures are OpenSSL 3 EVP (RS*, PS*,
 * ES*) or HMAC (HS*, the priv-key file's bytes as the secret). With only a public key the
 * provider verifies but cannot sign (etcd's verify-only mode). Not thread-bound; used on
 * the loop thread. */
#ifndef CETCD_AUTH_JWT_H
#define CETCD_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct auth_jwt auth_jwt_t;

/* Loads the keys (paths; "" = unset) for sign method `method` with token lifetime ttl_ms.
 * Returns 0, or CETCD_EINVAL with a reason in err (unknown method, unreadable or
 * mismatching key). */
int auth_jwt_open(const char *method, const char *pub_path, const char *priv_path, int64_t ttl_ms,
                  auth_jwt_t **out, char *err, size_t errlen);
/* Frees the provider (NULL is fine). */
void auth_jwt_free(auth_jwt_t *j);
/* Signs a token for user at auth revision rev, expiring now_s + ttl; *token is malloc'd.
 * Returns 0, CETCD_EAUTHVERIFYONLY (a provider with only pub-key, etcd's ErrVerifyOnly) or -ENOMEM. */
int auth_jwt_sign(const auth_jwt_t *j, const char *user, uint64_t rev, int64_t now_s, char **token);
/* Verifies a token (signature, algorithm, expiry against now_s) and copies its user (up to
 * ucap bytes with the NUL) and revision. Returns false for any invalid token. */
bool auth_jwt_verify(const auth_jwt_t *j, const char *token, int64_t now_s, char *user, size_t ucap,
                     uint64_t *rev);

#endif
