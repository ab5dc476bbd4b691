/* Private to src/auth/: the store's layout and its in-memory/backend helpers. */
#ifndef CETCD_AUTH_INT_H
#define CETCD_AUTH_INT_H

#include "auth.pb-c.h"
#include "auth/auth.h"

#define AUTH_ROOT "root"

/* One simple token (owned strings). */
typedef struct auth_token {
  char *token;
  char *user;
  uint64_t expires_ms;
} auth_token_t;

struct auth_store {
  mvcc_store_t *mvcc;
  bool enabled;
  uint64_t revision;
  Authpb__User **users; /* owned (unpacked with the default allocator), sorted by name */
  size_t n_users, cap_users;
  Authpb__Role **roles; /* the same for roles */
  size_t n_roles, cap_roles;
  auth_token_t *tokens;
  size_t n_tokens, cap_tokens;
  uint64_t ttl_ms;
  uint64_t (*now_ms)(void);
  const struct auth_jwt *jwt; /* JWT provider (borrowed), or NULL for simple tokens */
  char jwt_user[256];         /* the user of the last JWT resolved */
};

/* The user / role called name (borrowed), or NULL. */
Authpb__User *auth_user_get(const auth_store_t *as, const char *name);
Authpb__Role *auth_role_get(const auth_store_t *as, const char *name);
/* Stores u (borrowed: it is copied) in memory and in authUsers, replacing a user of that
 * name. Returns 0 or a backend code. */
int auth_user_save(auth_store_t *as, const Authpb__User *u);
/* Removes user / role `name` from memory and its bucket. */
int auth_user_remove(auth_store_t *as, const char *name);
int auth_role_save(auth_store_t *as, const Authpb__Role *r);
int auth_role_remove(auth_store_t *as, const char *name);
/* Bumps the revision and stores it (etcd's commitRevision). */
int auth_commit_revision(auth_store_t *as);
/* Stores the enabled flag. */
int auth_save_enabled(auth_store_t *as, bool on);
/* Whether the user has role `role` (roles are kept sorted). */
bool auth_user_has_role(const Authpb__User *u, const char *role);

/* Tokens (auth_token.c): assigns token to user; drops a user's tokens; drops all. */
void auth_token_assign(auth_store_t *as, const char *token, const char *user);
void auth_token_drop_user(auth_store_t *as, const char *user);
void auth_token_drop_all(auth_store_t *as);

#endif
