/* bcrypt through libcrypt (libxcrypt): hashing for UserAdd/UserChangePassword and the
 * password check of Authenticate. Thread-safe (crypt_r with a per-call buffer); the api
 * layer runs both on libuv worker threads, since one hash at cost 10 takes ~50 ms. */
#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "base/alloc.h"

int auth_bcrypt_hash(const char *password, size_t len, unsigned cost, char **out) {
  *out = NULL;
  if (cost < 4 || cost > 31) cost = 10; /* etcd falls back to bcrypt.DefaultCost */
  if (memchr(password, 0, len)) return -EINVAL;
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (!crypt_gensalt_rn("$2b$", cost, NULL, 0, setting, sizeof(setting))) return -errno ? -errno : -EINVAL;
  char *pw = xmalloc(len + 1);
  if (len) memcpy(pw, password, len);
  pw[len] = 0;
  struct crypt_data *cd = xcalloc(1, sizeof(*cd));
  const char *h = crypt_r(pw, setting, cd);
  int rc = 0;
  if (!h || h[0] == '*')
    rc = -EINVAL;
  else
    *out = xstrdup(h);
  explicit_bzero(pw, len);
  free(pw);
  explicit_bzero(cd, sizeof(*cd));
  free(cd);
  return rc;
}

bool auth_bcrypt_verify(const char *password, size_t len, const char *hash, size_t hash_len) {
  if (memchr(password, 0, len) || hash_len < 7 || hash_len >= CRYPT_OUTPUT_SIZE) return false;
  char *pw = xmalloc(len + 1), *setting = xmalloc(hash_len + 1);
  if (len) memcpy(pw, password, len);
  pw[len] = 0;
  if (hash_len) memcpy(setting, hash, hash_len);
  setting[hash_len] = 0;
  struct crypt_data *cd = xcalloc(1, sizeof(*cd));
  const char *h = crypt_r(pw, setting, cd);
  bool ok = h && h[0] != '*' && strlen(h) == hash_len;
  if (ok) { /* constant-time comparison of the two hashes */
    unsigned char d = 0;
    for (size_t i = 0; i < hash_len; i++) d |= (unsigned char)(h[i] ^ hash[i]);
    ok = d == 0;
  }
  explicit_bzero(pw, len);
  free(pw);
  free(setting);
  explicit_bzero(cd, sizeof(*cd));
  free(cd);
  return ok;
}
