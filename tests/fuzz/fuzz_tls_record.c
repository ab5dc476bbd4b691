/* libFuzzer target: arbitrary bytes fed as a client's TLS records into a server-side
 * connection over memory BIOs (net/tls.c, linked in with OpenSSL by scripts/fuzz.sh in
 * place of the module loader). The server certificate is a self-signed one made at start
 * (tls_self_cert) in a temp dir. The first input byte picks the context (bit 0: one that
 * requires a client certificate signed by that cert, as --client-cert-auth) and the chunk
 * size ((byte >> 1) * 13 + 1); the rest is fed in chunks, the server's output and any
 * plaintext drained after each, a reply written once the handshake is done, then the
 * connection freed. The goal is no crash, leak or UBSan report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/tls.h"

/* Removes the temp dir of the keys (loaded already, never re-read). */
static void remove_dir(const char *dir) {
  static const char *names[] = {"cert.pem", "key.pem"};
  char path[256];
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    unlink(path);
  }
  rmdir(dir);
}

static tls_ctx_t *plain_ctx, *mtls_ctx;

/* Makes a server context or aborts, printing why. */
static tls_ctx_t *ctx_new(const tls_config_t *cfg) {
  char err[512];
  tls_ctx_t *t = tls_server_ctx_new(cfg, err, sizeof(err));
  if (!t) {
    fprintf(stderr, "fuzz_tls_record: %s\n", err);
    abort();
  }
  return t;
}

/* The self-signed certificate and the two contexts, made once. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  char dir[] = "/tmp/fuzz_tls_record.XXXXXX", cert[128], key[128], err[512];
  char *hosts[] = {"127.0.0.1", "localhost"};
  if (!mkdtemp(dir)) abort();
  if (tls_self_cert(dir, hosts, 2, 1, err, sizeof(err))) {
    fprintf(stderr, "fuzz_tls_record: tls_self_cert: %s\n", err);
    abort();
  }
  snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
  snprintf(key, sizeof(key), "%s/key.pem", dir);
  plain_ctx = ctx_new(&(tls_config_t){.cert_file = cert, .key_file = key});
  mtls_ctx = ctx_new(
      &(tls_config_t){.cert_file = cert, .key_file = key, .trusted_ca_file = cert, .client_cert_auth = true});
  remove_dir(dir);
  return 0;
}

/* Takes the server's pending ciphertext and any plaintext; false once the connection failed. */
static bool drain(tls_conn_t *c) {
  uint8_t buf[4096];
  for (int i = 0; i < 64 && tls_conn_pending(c); i++) tls_conn_take(c, buf, sizeof(buf));
  ssize_t r = 0;
  for (int i = 0; i < 64 && (r = tls_conn_read(c, buf, sizeof(buf))) > 0; i++) {
  }
  if (r > 0 && tls_conn_handshake_done(c) && tls_conn_write(c, buf, (size_t)r) < 0) return false;
  for (int i = 0; i < 64 && tls_conn_pending(c); i++) tls_conn_take(c, buf, sizeof(buf));
  return r >= 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  tls_conn_t *c = tls_conn_new(data[0] & 1 ? mtls_ctx : plain_ctx);
  if (!c) abort();
  size_t chunk = (size_t)(data[0] >> 1) * 13 + 1;
  data++, size--;
  for (size_t off = 0; off < size;) {
    size_t k = size - off < chunk ? size - off : chunk;
    int rc = tls_conn_feed(c, data + off, k);
    off += k;
    if (!drain(c) || rc < 0) {
      if (!tls_conn_closed(c) && !tls_conn_error(c)[0]) abort(); /* a failure says why */
      break;
    }
  }
  (void)tls_conn_alpn_is_h2(c);
  tls_conn_free(c);
  return 0;
}
