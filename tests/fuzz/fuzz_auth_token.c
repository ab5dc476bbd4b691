/* libFuzzer target: arbitrary bytes as the `token` metadata string given to the auth store's
 * token lookup (auth_token_info, auth_token_index). The first input byte picks the store:
 * even = simple tokens, with "abcdefghijklmnop.42" assigned to user alice; odd = a JWT
 * provider, HS256 with a fixed secret when bit 1 is clear, ES256 with a P-256 key made at
 * start (tls_self_cert) when set. JWT signatures are really checked: this build links
 * net/tls*.c and auth/auth_jws.c (OpenSSL, scripts/fuzz.sh), so header/claims parsing,
 * base64url and the signature check all run.
 * The seeds' HS256 tokens are signed with the secret below and expire in 2100. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth_int.h"
#include "auth/auth_jwt.h"
#include "cetcd/errors.h"
#include "net/tls.h"

#define SIMPLE_TOKEN "abcdefghijklmnop.42"
#define HS256_SECRET "cetcd-fuzz-hs256-secret"

/* Removes the temp dir of the keys (loaded already, never re-read). */
static void remove_dir(const char *dir) {
  static const char *names[] = {"hs256.key", "cert.pem", "key.pem"};
  char path[256];
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    unlink(path);
  }
  rmdir(dir);
}

static auth_store_t simple, hs256, es256;
static auth_jwt_t *jwt_hs, *jwt_es;

/* Writes s to dir/name into path; aborts on failure (the target cannot run without it). */
static void write_file(const char *dir, const char *name, const char *s, char *path, size_t cap) {
  snprintf(path, cap, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f || fputs(s, f) < 0 || fclose(f)) abort();
}

/* Opens a JWT provider or aborts, printing why. */
static auth_jwt_t *jwt_open(const char *method, const char *pub, const char *priv) {
  char err[512];
  auth_jwt_t *j = NULL;
  if (auth_jwt_open(method, pub, priv, 0, &j, err, sizeof(err))) {
    fprintf(stderr, "fuzz_auth_token: %s: %s\n", method, err);
    abort();
  }
  return j;
}

/* The three stores, made once. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  char dir[] = "/tmp/fuzz_auth_token.XXXXXX", path[256], err[512];
  if (!mkdtemp(dir)) abort();
  write_file(dir, "hs256.key", HS256_SECRET, path, sizeof(path));
  jwt_hs = jwt_open("HS256", "", path);
  char *hosts[] = {"127.0.0.1"};
  if (tls_self_cert(dir, hosts, 1, 1, err, sizeof(err))) {
    fprintf(stderr, "fuzz_auth_token: tls_self_cert: %s\n", err);
    abort();
  }
  snprintf(path, sizeof(path), "%s/key.pem", dir);
  jwt_es = jwt_open("ES256", "", path);
  remove_dir(dir);
  auth_store_t *stores[] = {&simple, &hs256, &es256};
  for (int i = 0; i < 3; i++) {
    stores[i]->revision = 1;
    stores[i]->ttl_ms = 3600 * 1000;
  }
  auth_token_assign(&simple, SIMPLE_TOKEN, "alice");
  auth_store_set_jwt(&hs256, jwt_hs);
  auth_store_set_jwt(&es256, jwt_es);
  /* the set-up must resolve what it signs, or the target would fuzz only refusals */
  auth_store_t *jwts[] = {&hs256, &es256};
  for (int i = 0; i < 2; i++) {
    char *tok = NULL;
    auth_info_t ai = {0};
    if (auth_jwt_sign(jwts[i]->jwt, "alice", 1, (int64_t)time(NULL), &tok) ||
        auth_token_info(jwts[i], tok, &ai) || strcmp(ai.user, "alice"))
      abort();
    free(tok);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  auth_store_t *as = !(mode & 1) ? &simple : (mode & 2) ? &es256 : &hs256;
  char *token = malloc(size); /* the rest, NUL-terminated as metadata strings are */
  memcpy(token, data + 1, size - 1);
  token[size - 1] = 0;
  auth_info_t ai = {0};
  int rc = auth_token_info(as, token, &ai);
  if (rc != 0 && rc != CETCD_EAUTHBADTOKEN) abort();
  if (rc == 0 && (!ai.user || strlen(ai.user) >= sizeof(as->jwt_user))) abort();
  if (rc == 0 && as == &simple && (strcmp(token, SIMPLE_TOKEN) || strcmp(ai.user, "alice"))) abort();
  uint64_t index = 0;
  bool has_index = auth_token_index(as, token, &index);
  if (has_index && as->jwt) abort(); /* JWTs have no index */
  if (as == &simple && !strcmp(token, SIMPLE_TOKEN) && (!has_index || index != 42)) abort();
  free(token);
  return 0;
}
