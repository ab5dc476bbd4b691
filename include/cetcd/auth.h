/* libcetcd auth calls: enabling authentication, users, roles and their key permissions
 * (etcd's Auth service). Logging in is a client option (cetcd_client_opts_t username and
 * password, see client.h); cetcd_authenticate is the bare RPC.
 *
 * Every call is blocking and takes an optional header out pointer (NULL = not wanted).
 * Strings are borrowed. Besides the common codes of kv.h, calls return the codes mapped
 * from etcd's auth errors: CETCD_EAUTHNOTENABLED, CETCD_EAUTHUSERNOTFOUND, CETCD_EAUTHROLENOTFOUND,
 * CETCD_EAUTHUSEREXISTS, CETCD_EAUTHROLEEXISTS, CETCD_EAUTHROOTUSER, CETCD_EAUTHROOTROLE,
 * CETCD_EAUTHUSEREMPTY, CETCD_EAUTHROLEEMPTY, CETCD_EAUTHROLENOTGRANTED, CETCD_EAUTHPERMNOTGRANTED,
 * CETCD_EAUTHDENIED, CETCD_EAUTHFAILED, CETCD_EAUTHBADTOKEN, CETCD_EAUTHBADMGMT; the server's
 * message is in cetcd_client_last_error. */
#ifndef CETCD_AUTH_H
#define CETCD_AUTH_H

#include "cetcd/client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A list of names (users or roles), owned by the caller; free with cetcd_names_free. */
typedef struct cetcd_names {
  cetcd_header_t header;
  char **names; /* NUL-terminated, owned by the list */
  size_t n;
} cetcd_names_t;

/* Frees a name list. NULL is a no-op. */
CETCD_EXPORT void cetcd_names_free(cetcd_names_t *l);

typedef enum cetcd_perm_type {
  CETCD_PERM_READ = 0,
  CETCD_PERM_WRITE = 1,
  CETCD_PERM_READWRITE = 2
} cetcd_perm_type_t;

/* One key permission of a role: [key, range_end); range_end_len 0 means the single key,
 * "\0" means every key >= key. Byte strings are NUL-terminated copies (NUL not counted). */
typedef struct cetcd_perm {
  cetcd_perm_type_t type;
  char *key;
  size_t key_len;
  char *range_end;
  size_t range_end_len;
} cetcd_perm_t;

/* Result of cetcd_role_get, owned by the caller; free with cetcd_role_free. */
typedef struct cetcd_role {
  cetcd_header_t header;
  cetcd_perm_t *perms;
  size_t n_perms;
} cetcd_role_t;

/* Frees a role. NULL is a no-op. */
CETCD_EXPORT void cetcd_role_free(cetcd_role_t *r);

/* Enables authentication (the server requires a user "root" with role "root"). */
CETCD_EXPORT int cetcd_auth_enable(cetcd_client_t *client, cetcd_header_t *header);
/* Disables authentication (root only once enabled). */
CETCD_EXPORT int cetcd_auth_disable(cetcd_client_t *client, cetcd_header_t *header);
/* Reports whether authentication is enabled and the auth store's revision; enabled and
 * revision may be NULL. */
CETCD_EXPORT int cetcd_auth_status(cetcd_client_t *client, bool *enabled, uint64_t *revision,
                                   cetcd_header_t *header);
/* Asks for a token for name/password. Stores an owned NUL-terminated token (free with
 * cetcd_free) in *token. The client does this itself when given credentials. */
CETCD_EXPORT int cetcd_authenticate(cetcd_client_t *client, const char *name, const char *password,
                                    char **token);

/* Adds a user. With no_password the user has no password (certificate CN login only) and
 * password must be NULL or empty. */
CETCD_EXPORT int cetcd_user_add(cetcd_client_t *client, const char *name, const char *password,
                                bool no_password, cetcd_header_t *header);
/* Gets the roles of a user into *out (owned; free with cetcd_names_free). */
CETCD_EXPORT int cetcd_user_get(cetcd_client_t *client, const char *name, cetcd_names_t **out);
/* Lists all users into *out (owned; free with cetcd_names_free). */
CETCD_EXPORT int cetcd_user_list(cetcd_client_t *client, cetcd_names_t **out);
/* Deletes a user. */
CETCD_EXPORT int cetcd_user_delete(cetcd_client_t *client, const char *name, cetcd_header_t *header);
/* Changes a user's password. */
CETCD_EXPORT int cetcd_user_change_password(cetcd_client_t *client, const char *name, const char *password,
                                            cetcd_header_t *header);
/* Grants role to user. */
CETCD_EXPORT int cetcd_user_grant_role(cetcd_client_t *client, const char *user, const char *role,
                                       cetcd_header_t *header);
/* Revokes role from user. */
CETCD_EXPORT int cetcd_user_revoke_role(cetcd_client_t *client, const char *user, const char *role,
                                        cetcd_header_t *header);

/* Adds a role. */
CETCD_EXPORT int cetcd_role_add(cetcd_client_t *client, const char *name, cetcd_header_t *header);
/* Gets a role's permissions into *out (owned; free with cetcd_role_free). */
CETCD_EXPORT int cetcd_role_get(cetcd_client_t *client, const char *name, cetcd_role_t **out);
/* Lists all roles into *out (owned; free with cetcd_names_free). */
CETCD_EXPORT int cetcd_role_list(cetcd_client_t *client, cetcd_names_t **out);
/* Deletes a role. */
CETCD_EXPORT int cetcd_role_delete(cetcd_client_t *client, const char *name, cetcd_header_t *header);
/* Grants role the permission type on [key, range_end) (range_end_len 0: key alone;
 * "\0": every key >= key). Byte strings are borrowed. */
CETCD_EXPORT int cetcd_role_grant_permission(cetcd_client_t *client, const char *role, const void *key,
                                             size_t key_len, const void *range_end, size_t range_end_len,
                                             cetcd_perm_type_t type, cetcd_header_t *header);
/* Revokes role's permission on exactly [key, range_end) as granted. */
CETCD_EXPORT int cetcd_role_revoke_permission(cetcd_client_t *client, const char *role, const void *key,
                                              size_t key_len, const void *range_end, size_t range_end_len,
                                              cetcd_header_t *header);

#ifdef __cplusplus
}
#endif

#endif
