/* auth: users, roles, key-range permissions and simple tokens (etcd's auth package).
 *
 * State lives in memory (users and roles as decoded authpb messages, sorted by name) and in
 * the backend's buckets in etcd's layout: `auth` (authEnabled: one byte 1/0, authRevision:
 * 8-byte big-endian), `authUsers` (name → authpb.User), `authRoles` (name → authpb.Role),
 * written inside the apply batch, so snapshots carry them. Every change bumps the auth
 * revision as etcd does (AuthEnable does not).
 *
 * Simple tokens ("<16 letters>.<raft index>") are assigned when an Authenticate entry is
 * applied, on every member, and kept in memory only; a token not used for the TTL expires,
 * and a user's tokens die when the user is deleted or its password changes.
 *
 * Everything runs on the loop thread; bcrypt (auth_bcrypt.c) is safe on worker threads.
 * Errors are negative CETCD_EAUTH* codes (cetcd/errors.h), mapped to etcd's strings in api/. */
#ifndef CETCD_AUTH_H
#define CETCD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "internal.pb-c.h"

typedef struct auth_store auth_store_t;
typedef struct mvcc_store mvcc_store_t;
typedef struct lessor lessor_t;

/* Who a request comes from: the token's user (NULL/empty when no token) and the auth
 * revision the token was resolved at (0 when no token). user is borrowed. */
typedef struct auth_info {
  const char *user;
  uint64_t revision;
} auth_info_t;

/* Loads the auth state from the backend (borrowed for the store's life); token_ttl_s is
 * --auth-token-ttl (0 = etcd's 300 s). Returns 0 or CETCD_ECORRUPT / a backend code. */
int auth_store_open(mvcc_store_t *mvcc, uint32_t token_ttl_s, auth_store_t **out);
/* Frees the store (NULL is fine). */
void auth_store_free(auth_store_t *as);

/* Whether authentication is enabled. */
bool auth_is_enabled(const auth_store_t *as);
/* The auth revision (1 for a store that never changed). */
uint64_t auth_revision(const auth_store_t *as);

/* ---- tokens (auth_token.c) ---- */

/* Resolves a token: fills ai (user borrowed from the store until the next change) with the
 * current revision and restarts the token's TTL. CETCD_EAUTHBADTOKEN when unknown/expired. */
int auth_token_info(auth_store_t *as, const char *token, auth_info_t *ai);
/* The log index a simple token ("<prefix>.<index>") was assigned at, into *index: a member
 * that has not applied it yet may not know the token yet. False for a JWT provider or a
 * token of another shape. */
bool auth_token_index(const auth_store_t *as, const char *token, uint64_t *index);
/* Writes 16 random letters and a NUL into out (a token's prefix). */
void auth_token_prefix(char out[17]);
/* Switches the store to JWT tokens (etcd's --auth-token jwt): jwt is borrowed for the
 * store's life (auth/auth_jwt.h). A JWT resolves to the revision it was signed at, so any
 * auth change since refuses it with CETCD_EAUTHOLDREV. */
struct auth_jwt;
void auth_store_set_jwt(auth_store_t *as, const struct auth_jwt *jwt);
/* Test hook: the clock (monotonic ms) tokens expire by; NULL restores the real one. */
void auth_set_clock(auth_store_t *as, uint64_t (*now_ms)(void));

/* ---- checks (auth_check.c), etcd's isOpPermitted / IsAdminPermitted ---- */

/* Read access to [key, end) (one key when end_len is 0). 0, CETCD_EAUTHUSEREMPTY (no
 * token), CETCD_EAUTHOLDREV (token older than the store), CETCD_EAUTHDENIED. Always 0 while
 * auth is disabled. */
int auth_check_range(auth_store_t *as, const auth_info_t *ai, const uint8_t *key, size_t klen,
                     const uint8_t *end, size_t elen);
/* Write access to one key. Codes as auth_check_range. */
int auth_check_put(auth_store_t *as, const auth_info_t *ai, const uint8_t *key, size_t klen);
/* Write access to a range (DeleteRange). Codes as auth_check_range. */
int auth_check_delete(auth_store_t *as, const auth_info_t *ai, const uint8_t *key, size_t klen,
                      const uint8_t *end, size_t elen);
/* Every compare and operation of a txn (nested), as etcd's checkTxnAuth. */
int auth_check_txn(auth_store_t *as, const auth_info_t *ai, const Etcdserverpb__TxnRequest *txn);
/* Write access to every key attached to a lease (LeaseRevoke, a Put attaching it). */
int auth_check_lease(auth_store_t *as, const auth_info_t *ai, const lessor_t *le, int64_t lease);
/* Root role needed: 0, CETCD_EAUTHUSEREMPTY, CETCD_EAUTHUSERNOTFOUND, CETCD_EAUTHDENIED. */
int auth_check_admin(auth_store_t *as, const auth_info_t *ai);

/* ---- passwords (auth_bcrypt.c; thread-safe) ---- */

/* Hashes password with bcrypt ("$2b$", cost 4..31) into a malloc'd string (*out). 0 or
 * -EINVAL / -ENOMEM. */
int auth_bcrypt_hash(const char *password, size_t len, unsigned cost, char **out);
/* Whether password matches a bcrypt hash ("$2a$"/"$2b$"/"$2y$", e.g. one etcd wrote). */
bool auth_bcrypt_verify(const char *password, size_t len, const char *hash, size_t hash_len);
/* Before the password check (off the loop): copies the user's hash (malloc'd, *hash) and
 * the revision it was read at. CETCD_EAUTHNOTENABLED, CETCD_EAUTHFAILED (no such user),
 * CETCD_EAUTHNOPASSWORD (user without password). */
int auth_password_of(auth_store_t *as, const char *user, char **hash, size_t *hash_len, uint64_t *rev);

/* ---- apply (auth_apply.c) ---- */

/* Whether req is one of the auth requests auth_apply handles. */
bool auth_is_request(const Cetcdinternal__InternalRequest *req);
/* Applies an auth request at log index `index` inside the open batch, checking the
 * proposer's rights (req->auth_user / auth_revision) as etcd's authApplierV3 does. The
 * response (in arena) goes to *resp. Returns 0 or a CETCD_E* code. */
int auth_apply(auth_store_t *as, const Cetcdinternal__InternalRequest *req, uint64_t index, arena_t *arena,
               ProtobufCMessage **resp);
/* AuthStatus, answered from local state (etcd 3.5's fields). */
void auth_status(const auth_store_t *as, bool *enabled, uint64_t *revision);

#endif
