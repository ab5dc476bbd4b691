/* The server's side of the OpenSSL module (see tls_module.h): loads cetcd-tls.so on first use,
 * for TLS or for JWT alike, and forwards the tls.h and auth_jws.h functions to it. Functions
 * that take a context, a connection or a key run only after one was made, so only the
 * constructors and the set-up helpers load. */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net/tls_module.h"

#ifndef CETCD_TLS_MODULE_DIR
#define CETCD_TLS_MODULE_DIR "/usr/local/lib/cetcd"
#endif

static const tls_api_t *api;
static char load_error[2 * PATH_MAX + 512];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

/* Opens the module beside the running executable (a build tree), else in the install dir. */
static void load(void) {
  char exe[PATH_MAX], path[PATH_MAX + 32];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  const char *dirs[2] = {NULL, CETCD_TLS_MODULE_DIR};
  if (n > 0) {
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    dirs[0] = exe;
  }
  char tried[2][PATH_MAX + 64] = {"", ""};
  for (int i = 0; i < 2 && !api; i++) {
    if (!dirs[i]) continue;
    snprintf(path, sizeof(path), "%s/%s", dirs[i], TLS_MODULE_FILE);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      snprintf(tried[i], sizeof(tried[i]), "%s", dlerror());
      continue;
    }
    tls_api_fn fn = (tls_api_fn)dlsym(h, TLS_MODULE_SYMBOL);
    const tls_api_t *a = fn ? fn() : NULL;
    if (a && a->size == sizeof(tls_api_t)) {
      api = a;
      return;
    }
    snprintf(tried[i], sizeof(tried[i]), "%s is from another build", path);
    dlclose(h);
  }
  snprintf(load_error, sizeof(load_error),
           "cannot load %s (%s; %s); install it beside the cetcd binary or in %s", TLS_MODULE_FILE, tried[0],
           tried[1], CETCD_TLS_MODULE_DIR);
}

/* The table, loading the module the first time; NULL with "<what> support is not
 * available: <cause>" in err. */
static const tls_api_t *get(const char *what, char *err, size_t errlen) {
  pthread_once(&load_once, load);
  if (!api && err) snprintf(err, errlen, "%s support is not available: %s", what, load_error);
  return api;
}

tls_ctx_t *tls_server_ctx_new(const tls_config_t *cfg, char *err, size_t errlen) {
  return get("TLS", err, errlen) ? api->server_ctx_new(cfg, err, errlen) : NULL;
}

tls_ctx_t *tls_client_ctx_new(const tls_config_t *cfg, char *err, size_t errlen) {
  return get("TLS", err, errlen) ? api->client_ctx_new(cfg, err, errlen) : NULL;
}

int tls_self_cert(const char *dir, char *const *hosts, size_t n_hosts, unsigned years, char *err,
                  size_t errlen) {
  return get("TLS", err, errlen) ? api->self_cert(dir, hosts, n_hosts, years, err, errlen) : -1;
}

int tls_cipher_list(char *const *names, size_t n, char *out, size_t cap, char *err, size_t errlen) {
  return get("TLS", err, errlen) ? api->cipher_list(names, n, out, cap, err, errlen) : -1;
}

auth_jws_key_t *auth_jws_key_open(const char *method, const char *pub_path, const char *priv_path, char *err,
                                  size_t errlen) {
  return get("JWT", err, errlen) ? api->jws_key_open(method, pub_path, priv_path, err, errlen) : NULL;
}

/* The rest run on objects the module made, so it is loaded. */
void tls_ctx_free(tls_ctx_t *ctx) {
  if (ctx) api->ctx_free(ctx);
}
int tls_ctx_reload_if_changed(tls_ctx_t *ctx, char *err, size_t errlen) {
  return api->ctx_reload_if_changed(ctx, err, errlen);
}
tls_conn_t *tls_conn_new(tls_ctx_t *ctx) { return api->conn_new(ctx); }
void tls_conn_free(tls_conn_t *c) {
  if (c) api->conn_free(c);
}
int tls_conn_set_host(tls_conn_t *c, const char *host) { return api->conn_set_host(c, host); }
int tls_conn_feed(tls_conn_t *c, const uint8_t *p, size_t n) { return api->conn_feed(c, p, n); }
ssize_t tls_conn_read(tls_conn_t *c, uint8_t *buf, size_t cap) { return api->conn_read(c, buf, cap); }
ssize_t tls_conn_write(tls_conn_t *c, const uint8_t *p, size_t n) { return api->conn_write(c, p, n); }
size_t tls_conn_pending(const tls_conn_t *c) { return api->conn_pending(c); }
size_t tls_conn_take(tls_conn_t *c, uint8_t *out, size_t cap) { return api->conn_take(c, out, cap); }
int tls_conn_connect(tls_conn_t *c) { return api->conn_connect(c); }
bool tls_conn_handshake_done(const tls_conn_t *c) { return api->conn_handshake_done(c); }
bool tls_conn_closed(const tls_conn_t *c) { return api->conn_closed(c); }
const char *tls_conn_error(const tls_conn_t *c) { return api->conn_error(c); }
bool tls_conn_alpn_is_h2(const tls_conn_t *c) { return api->conn_alpn_is_h2(c); }
bool tls_conn_peer_cn(const tls_conn_t *c, char *out, size_t cap) { return api->conn_peer_cn(c, out, cap); }
void auth_jws_key_free(auth_jws_key_t *k) {
  if (k) api->jws_key_free(k);
}
bool auth_jws_can_sign(const auth_jws_key_t *k) { return api->jws_can_sign(k); }
size_t auth_jws_sign(const auth_jws_key_t *k, const uint8_t *msg, size_t n, uint8_t **sig) {
  return api->jws_sign(k, msg, n, sig);
}
bool auth_jws_verify(const auth_jws_key_t *k, const uint8_t *msg, size_t n, const uint8_t *sig, size_t slen) {
  return api->jws_verify(k, msg, n, sig, slen);
}
