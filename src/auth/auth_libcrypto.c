/* libcrypto loaded on demand (see auth_libcrypto.h). */
#include "auth/auth_libcrypto.h"

#include <dlfcn.h>
#include <stdio.h>

#define AUTH_CRYPTO_DEF(f) __typeof__(&f) auth_p_##f;
AUTH_CRYPTO_FUNCS(AUTH_CRYPTO_DEF)
#undef AUTH_CRYPTO_DEF

static int loaded; /* 0: not tried, 1: ready, -1: failed */
static char why[160];

/* Resolves every function from handle h; false names the first missing one in why. */
static int resolve(void *h) {
#define AUTH_CRYPTO_LOAD(f)                                    \
  if (!(*(void **)&auth_p_##f = dlsym(h, #f))) {               \
    snprintf(why, sizeof(why), "libcrypto.so.3 lacks %s", #f); \
    return -1;                                                 \
  }
  AUTH_CRYPTO_FUNCS(AUTH_CRYPTO_LOAD)
#undef AUTH_CRYPTO_LOAD
  return 0;
}

int auth_libcrypto_load(char *err, size_t errlen) {
  if (loaded == 0) {
    void *h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char *e = dlerror();
      snprintf(why, sizeof(why), "cannot load libcrypto.so.3 (%s): install OpenSSL 3 (libssl3)", e ? e : "?");
      loaded = -1;
    } else {
      loaded = resolve(h) ? -1 : 1;
    }
  }
  if (loaded < 0) snprintf(err, errlen, "%s", why);
  return loaded > 0 ? 0 : -1;
}
