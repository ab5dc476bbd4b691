/* Simple tokens (etcd's simple_token.go): token → user, each with a TTL that every use
 * restarts. Kept in memory only, on every member (assigned when Authenticate is applied). */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "auth/auth_int.h"
#include "auth/auth_jwt.h"
#include "base/alloc.h"
#include "cetcd/errors.h"

/* CLOCK_MONOTONIC in milliseconds. */
static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The store's clock. */
static uint64_t now(const auth_store_t *as) { return as->now_ms ? as->now_ms() : mono_ms(); }

void auth_set_clock(auth_store_t *as, uint64_t (*now_ms)(void)) { as->now_ms = now_ms; }

/* Removes token i (order is not kept). */
static void drop_at(auth_store_t *as, size_t i) {
  free(as->tokens[i].token);
  free(as->tokens[i].user);
  as->tokens[i] = as->tokens[--as->n_tokens];
}

/* Drops the expired tokens. */
static void sweep(auth_store_t *as) {
  uint64_t t = now(as);
  for (size_t i = 0; i < as->n_tokens;)
    if (as->tokens[i].expires_ms <= t)
      drop_at(as, i);
    else
      i++;
}

void auth_token_assign(auth_store_t *as, const char *token, const char *user) {
  sweep(as);
  if (as->n_tokens == as->cap_tokens) {
    as->cap_tokens = as->cap_tokens ? as->cap_tokens * 2 : 16;
    as->tokens = xrealloc(as->tokens, as->cap_tokens * sizeof(*as->tokens));
  }
  as->tokens[as->n_tokens++] = (auth_token_t){xstrdup(token), xstrdup(user), now(as) + as->ttl_ms};
}

void auth_token_drop_user(auth_store_t *as, const char *user) {
  for (size_t i = 0; i < as->n_tokens;)
    if (!strcmp(as->tokens[i].user, user))
      drop_at(as, i);
    else
      i++;
}

void auth_token_drop_all(auth_store_t *as) {
  while (as->n_tokens) drop_at(as, 0);
}

void auth_store_set_jwt(auth_store_t *as, const struct auth_jwt *jwt) { as->jwt = jwt; }

int auth_token_info(auth_store_t *as, const char *token, auth_info_t *ai) {
  if (as->jwt) {
    if (!auth_jwt_verify(as->jwt, token, (int64_t)time(NULL), as->jwt_user, sizeof(as->jwt_user),
                         &ai->revision))
      return CETCD_EAUTHBADTOKEN;
    ai->user = as->jwt_user;
    return 0;
  }
  uint64_t t = now(as);
  for (size_t i = 0; i < as->n_tokens; i++) {
    auth_token_t *tk = &as->tokens[i];
    if (strcmp(tk->token, token)) continue;
    if (tk->expires_ms <= t) {
      drop_at(as, i);
      break;
    }
    tk->expires_ms = t + as->ttl_ms;
    ai->user = tk->user;
    ai->revision = as->revision;
    return 0;
  }
  return CETCD_EAUTHBADTOKEN;
}

bool auth_token_index(const auth_store_t *as, const char *token, uint64_t *index) {
  const char *dot = strchr(token, '.');
  if (as->jwt || !dot || strchr(dot + 1, '.') || !dot[1]) return false;
  uint64_t v = 0;
  for (const char *p = dot + 1; *p; p++) {
    if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  *index = v;
  return true;
}

void auth_token_prefix(char out[17]) {
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  uint8_t r[16];
  size_t got = 0;
  while (got < sizeof(r)) { /* getrandom on the urandom pool does not block after boot */
    ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
    if (n > 0) got += (size_t)n;
  }
  for (int i = 0; i < 16; i++) out[i] = letters[r[i] % 52]; /* 256 % 52 bias: as good as etcd's needs */
  out[16] = 0;
}
