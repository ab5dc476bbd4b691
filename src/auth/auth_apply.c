/* Applying auth requests (etcd's authStore methods behind authApplierV3): the proposer's
 * rights are checked first, then the change is made in memory and in the buckets and the
 * auth revision bumped. Deterministic: the entry carries hashes and token prefixes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth_int.h"
#include "auth/auth_jwt.h"
#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"

typedef Cetcdinternal__InternalRequest ireq_t;

/* A zeroed response message of type d in the arena. */
static void *resp_new(arena_t *a, const ProtobufCMessageDescriptor *d) {
  void *m = arena_zalloc(a, d->sizeof_message);
  protobuf_c_message_init(d, m);
  return m;
}

/* A string as protobuf bytes (borrowed). */
static ProtobufCBinaryData bytes_of(const char *s) { return (ProtobufCBinaryData){strlen(s), (uint8_t *)s}; }

/* Copies a name into the arena as a C string. */
static char *arena_name(arena_t *a, ProtobufCBinaryData n) {
  char *s = arena_alloc(a, n.len + 1);
  if (n.len) memcpy(s, n.data, n.len);
  s[n.len] = 0;
  return s;
}

/* AuthEnable: needs the root user with the root role; enabling twice is fine. */
static int enable(auth_store_t *as) {
  if (as->enabled) return 0;
  const Authpb__User *u = auth_user_get(as, AUTH_ROOT);
  if (!u) return CETCD_EAUTHROOTUSER;
  if (!auth_user_has_role(u, AUTH_ROOT)) return CETCD_EAUTHROOTROLE;
  int rc = auth_save_enabled(as, true);
  if (rc == 0) LOGI("msg=\"enabled authentication\"");
  return rc;
}

/* AuthDisable: bumps the revision and drops every token. */
static int disable(auth_store_t *as) {
  if (!as->enabled) return 0;
  int rc = auth_save_enabled(as, false);
  if (rc == 0) rc = auth_commit_revision(as);
  auth_token_drop_all(as);
  if (rc == 0) LOGI("msg=\"disabled authentication\"");
  return rc;
}

/* Authenticate (the proposer checked the password): assigns "<prefix>.<index>". */
static int authenticate(auth_store_t *as, const Cetcdinternal__AuthenticateRequest *r, uint64_t index,
                        arena_t *a, Etcdserverpb__AuthenticateResponse *resp) {
  if (!as->enabled) return CETCD_EAUTHNOTENABLED;
  const Authpb__User *u = auth_user_get(as, r->name);
  if (!u || (u->options && u->options->no_password)) return CETCD_EAUTHFAILED;
  if (as->jwt) { /* signed at the current revision; only the proposer's copy is answered */
    char *jt = NULL;
    int rc = auth_jwt_sign(as->jwt, r->name, as->revision, (int64_t)time(NULL), &jt);
    if (rc) return rc;
    resp->token = arena_memdup(a, jt, strlen(jt) + 1);
    free(jt);
    return 0;
  }
  size_t n = strlen(r->simple_token) + 24;
  char *tok = arena_alloc(a, n);
  snprintf(tok, n, "%s.%" PRIu64, r->simple_token, index);
  auth_token_assign(as, tok, r->name);
  resp->token = tok;
  return 0;
}

/* UserAdd with the proposer's hash (none for a no-password user). */
static int user_add(auth_store_t *as, const Etcdserverpb__AuthUserAddRequest *r) {
  if (!*r->name) return CETCD_EAUTHUSEREMPTY;
  if (auth_user_get(as, r->name)) return CETCD_EAUTHUSEREXISTS;
  Authpb__User u = AUTHPB__USER__INIT;
  Authpb__UserAddOptions opts = AUTHPB__USER_ADD_OPTIONS__INIT;
  opts.no_password = r->options && r->options->no_password;
  u.name = bytes_of(r->name);
  if (!opts.no_password) u.password = bytes_of(r->hashedpassword);
  u.options = &opts;
  int rc = auth_user_save(as, &u);
  return rc ? rc : auth_commit_revision(as);
}

/* UserDelete (never root while enabled); drops the user's tokens. */
static int user_delete(auth_store_t *as, const char *name) {
  if (as->enabled && !strcmp(name, AUTH_ROOT)) return CETCD_EAUTHBADMGMT;
  if (!auth_user_get(as, name)) return CETCD_EAUTHUSERNOTFOUND;
  int rc = auth_user_remove(as, name);
  if (rc == 0) rc = auth_commit_revision(as);
  auth_token_drop_user(as, name);
  return rc;
}

/* UserChangePassword with the proposer's hash; drops the user's tokens. */
static int user_passwd(auth_store_t *as, const Etcdserverpb__AuthUserChangePasswordRequest *r) {
  const Authpb__User *old = auth_user_get(as, r->name);
  if (!old) return CETCD_EAUTHUSERNOTFOUND;
  Authpb__User u = *old;
  u.password = bytes_of(r->hashedpassword);
  int rc = auth_user_save(as, &u);
  if (rc == 0) rc = auth_commit_revision(as);
  auth_token_drop_user(as, r->name);
  return rc;
}

/* UserGrantRole: roles kept sorted; "root" needs no role record; a repeat is ignored. */
static int user_grant(auth_store_t *as, const Etcdserverpb__AuthUserGrantRoleRequest *r) {
  const Authpb__User *old = auth_user_get(as, r->user);
  if (!old) return CETCD_EAUTHUSERNOTFOUND;
  if (strcmp(r->role, AUTH_ROOT) && !auth_role_get(as, r->role)) return CETCD_EAUTHROLENOTFOUND;
  size_t i = 0;
  while (i < old->n_roles && strcmp(old->roles[i], r->role) < 0) i++;
  if (i < old->n_roles && !strcmp(old->roles[i], r->role)) return 0; /* etcd ignores it */
  Authpb__User u = *old;
  u.roles = xmalloc((old->n_roles + 1) * sizeof(char *));
  if (i) memcpy(u.roles, old->roles, i * sizeof(char *));
  u.roles[i] = r->role;
  if (old->n_roles > i) memcpy(u.roles + i + 1, old->roles + i, (old->n_roles - i) * sizeof(char *));
  u.n_roles = old->n_roles + 1;
  int rc = auth_user_save(as, &u);
  free(u.roles);
  return rc ? rc : auth_commit_revision(as);
}

/* Saves user `old` without role `role`; *removed tells whether it had it. */
static int user_drop_role(auth_store_t *as, const Authpb__User *old, const char *role, bool *removed) {
  Authpb__User u = *old;
  u.roles = xmalloc((old->n_roles ? old->n_roles : 1) * sizeof(char *));
  u.n_roles = 0;
  for (size_t i = 0; i < old->n_roles; i++)
    if (strcmp(old->roles[i], role)) u.roles[u.n_roles++] = old->roles[i];
  *removed = u.n_roles != old->n_roles;
  int rc = *removed ? auth_user_save(as, &u) : 0;
  free(u.roles);
  return rc;
}

/* UserRevokeRole (never root's root role while enabled). */
static int user_revoke(auth_store_t *as, const Etcdserverpb__AuthUserRevokeRoleRequest *r) {
  if (as->enabled && !strcmp(r->name, AUTH_ROOT) && !strcmp(r->role, AUTH_ROOT)) return CETCD_EAUTHBADMGMT;
  const Authpb__User *old = auth_user_get(as, r->name);
  if (!old) return CETCD_EAUTHUSERNOTFOUND;
  bool removed;
  int rc = user_drop_role(as, old, r->role, &removed);
  if (rc) return rc;
  return removed ? auth_commit_revision(as) : CETCD_EAUTHROLENOTGRANTED;
}

/* UserGet: the user's roles. */
static int user_get(auth_store_t *as, const char *name, arena_t *a, Etcdserverpb__AuthUserGetResponse *resp) {
  const Authpb__User *u = auth_user_get(as, name);
  if (!u) return CETCD_EAUTHUSERNOTFOUND;
  resp->roles = arena_alloc(a, (u->n_roles ? u->n_roles : 1) * sizeof(char *));
  for (size_t i = 0; i < u->n_roles; i++)
    resp->roles[i] = arena_memdup(a, u->roles[i], strlen(u->roles[i]) + 1);
  resp->n_roles = u->n_roles;
  return 0;
}

/* UserList: every user name, sorted. */
static int user_list(auth_store_t *as, arena_t *a, Etcdserverpb__AuthUserListResponse *resp) {
  resp->users = arena_alloc(a, (as->n_users ? as->n_users : 1) * sizeof(char *));
  for (size_t i = 0; i < as->n_users; i++) resp->users[i] = arena_name(a, as->users[i]->name);
  resp->n_users = as->n_users;
  return 0;
}

/* RoleAdd. */
static int role_add(auth_store_t *as, const char *name) {
  if (!*name) return CETCD_EAUTHROLEEMPTY;
  if (auth_role_get(as, name)) return CETCD_EAUTHROLEEXISTS;
  Authpb__Role r = AUTHPB__ROLE__INIT;
  r.name = bytes_of(name);
  int rc = auth_role_save(as, &r);
  return rc ? rc : auth_commit_revision(as);
}

/* Copies binary data into the arena (empty stays empty). */
static ProtobufCBinaryData bin_copy(arena_t *a, ProtobufCBinaryData b) {
  return (ProtobufCBinaryData){b.len, b.len ? arena_memdup(a, b.data, b.len) : NULL};
}

/* RoleGet: the role's permissions, copied into the arena. */
static int role_get(auth_store_t *as, const char *name, arena_t *a, Etcdserverpb__AuthRoleGetResponse *resp) {
  const Authpb__Role *r = auth_role_get(as, name);
  if (!r) return CETCD_EAUTHROLENOTFOUND;
  resp->perm = arena_alloc(a, (r->n_keypermission ? r->n_keypermission : 1) * sizeof(*resp->perm));
  for (size_t i = 0; i < r->n_keypermission; i++) {
    const Authpb__Permission *p = r->keypermission[i];
    Authpb__Permission *q = resp_new(a, &authpb__permission__descriptor);
    q->permtype = p->permtype;
    q->key = bin_copy(a, p->key);
    q->range_end = bin_copy(a, p->range_end);
    resp->perm[i] = q;
  }
  resp->n_perm = r->n_keypermission;
  return 0;
}

/* RoleList: every role name, sorted. */
static int role_list(auth_store_t *as, arena_t *a, Etcdserverpb__AuthRoleListResponse *resp) {
  resp->roles = arena_alloc(a, (as->n_roles ? as->n_roles : 1) * sizeof(char *));
  for (size_t i = 0; i < as->n_roles; i++) resp->roles[i] = arena_name(a, as->roles[i]->name);
  resp->n_roles = as->n_roles;
  return 0;
}

/* RoleDelete (never root while enabled); the role leaves every user too. */
static int role_delete(auth_store_t *as, const char *name) {
  if (as->enabled && !strcmp(name, AUTH_ROOT)) return CETCD_EAUTHBADMGMT;
  if (!auth_role_get(as, name)) return CETCD_EAUTHROLENOTFOUND;
  int rc = auth_role_remove(as, name);
  for (size_t i = 0; i < as->n_users && rc == 0; i++) {
    bool removed;
    rc = user_drop_role(as, as->users[i], name, &removed);
  }
  return rc ? rc : auth_commit_revision(as);
}

/* Byte order of two binary values. */
static int bin_cmp(ProtobufCBinaryData a, ProtobufCBinaryData b) {
  size_t m = a.len < b.len ? a.len : b.len;
  int c = m ? memcmp(a.data, b.data, m) : 0; /* empty data may be NULL */
  return c ? c : (a.len < b.len ? -1 : a.len > b.len);
}

/* RoleGrantPermission: same key and range end updates the type, else inserted by key. */
static int role_grant(auth_store_t *as, const Etcdserverpb__AuthRoleGrantPermissionRequest *r) {
  const Authpb__Role *old = auth_role_get(as, r->name);
  if (!old) return CETCD_EAUTHROLENOTFOUND;
  if (!r->perm) return CETCD_EINVAL;
  size_t i = 0, n = old->n_keypermission;
  while (i < n && bin_cmp(old->keypermission[i]->key, r->perm->key) < 0) i++;
  Authpb__Role nr = *old;
  nr.keypermission = xmalloc((n + 1) * sizeof(*nr.keypermission));
  if (n) memcpy(nr.keypermission, old->keypermission, n * sizeof(*nr.keypermission));
  Authpb__Permission upd;
  if (i < n && !bin_cmp(old->keypermission[i]->key, r->perm->key) &&
      !bin_cmp(old->keypermission[i]->range_end, r->perm->range_end)) {
    upd = *old->keypermission[i]; /* same range: the type is updated */
    upd.permtype = r->perm->permtype;
    nr.keypermission[i] = &upd;
  } else {
    memmove(nr.keypermission + i + 1, nr.keypermission + i, (n - i) * sizeof(*nr.keypermission));
    nr.keypermission[i] = r->perm;
    nr.n_keypermission = n + 1;
  }
  int rc = auth_role_save(as, &nr);
  free(nr.keypermission);
  return rc ? rc : auth_commit_revision(as);
}

/* RoleRevokePermission: removes the permission with that key and range end. */
static int role_revoke(auth_store_t *as, const Etcdserverpb__AuthRoleRevokePermissionRequest *r) {
  const Authpb__Role *old = auth_role_get(as, r->role);
  if (!old) return CETCD_EAUTHROLENOTFOUND;
  Authpb__Role nr = *old;
  nr.keypermission = xmalloc((old->n_keypermission ? old->n_keypermission : 1) * sizeof(*nr.keypermission));
  nr.n_keypermission = 0;
  for (size_t i = 0; i < old->n_keypermission; i++) {
    const Authpb__Permission *p = old->keypermission[i];
    if (bin_cmp(p->key, r->key) || bin_cmp(p->range_end, r->range_end))
      nr.keypermission[nr.n_keypermission++] = old->keypermission[i];
  }
  int rc = nr.n_keypermission == old->n_keypermission ? CETCD_EAUTHPERMNOTGRANTED : auth_role_save(as, &nr);
  free(nr.keypermission);
  return rc ? rc : auth_commit_revision(as);
}

bool auth_is_request(const ireq_t *q) {
  return q->auth_enable || q->auth_disable || q->auth_status || q->authenticate || q->auth_user_add ||
         q->auth_user_delete || q->auth_user_change_password || q->auth_user_grant_role ||
         q->auth_user_revoke_role || q->auth_user_get || q->auth_user_list || q->auth_role_add ||
         q->auth_role_grant_permission || q->auth_role_get || q->auth_role_list || q->auth_role_delete ||
         q->auth_role_revoke_permission;
}

/* etcd's needAdminPermission. */
static bool needs_admin(const ireq_t *q) {
  return q->auth_enable || q->auth_disable || q->auth_user_add || q->auth_user_delete ||
         q->auth_user_change_password || q->auth_user_grant_role || q->auth_user_revoke_role ||
         q->auth_role_add || q->auth_role_grant_permission || q->auth_role_revoke_permission ||
         q->auth_role_delete || q->auth_user_list || q->auth_role_list;
}

/* The response type of an auth request. */
static const ProtobufCMessageDescriptor *resp_desc(const ireq_t *q) {
  if (q->auth_enable) return &etcdserverpb__auth_enable_response__descriptor;
  if (q->auth_disable) return &etcdserverpb__auth_disable_response__descriptor;
  if (q->auth_status) return &etcdserverpb__auth_status_response__descriptor;
  if (q->authenticate) return &etcdserverpb__authenticate_response__descriptor;
  if (q->auth_user_add) return &etcdserverpb__auth_user_add_response__descriptor;
  if (q->auth_user_delete) return &etcdserverpb__auth_user_delete_response__descriptor;
  if (q->auth_user_change_password) return &etcdserverpb__auth_user_change_password_response__descriptor;
  if (q->auth_user_grant_role) return &etcdserverpb__auth_user_grant_role_response__descriptor;
  if (q->auth_user_revoke_role) return &etcdserverpb__auth_user_revoke_role_response__descriptor;
  if (q->auth_user_get) return &etcdserverpb__auth_user_get_response__descriptor;
  if (q->auth_user_list) return &etcdserverpb__auth_user_list_response__descriptor;
  if (q->auth_role_add) return &etcdserverpb__auth_role_add_response__descriptor;
  if (q->auth_role_grant_permission) return &etcdserverpb__auth_role_grant_permission_response__descriptor;
  if (q->auth_role_get) return &etcdserverpb__auth_role_get_response__descriptor;
  if (q->auth_role_list) return &etcdserverpb__auth_role_list_response__descriptor;
  if (q->auth_role_delete) return &etcdserverpb__auth_role_delete_response__descriptor;
  return &etcdserverpb__auth_role_revoke_permission_response__descriptor;
}

/* The proposer's rights (authApplierV3.Apply, UserGet, RoleGet). */
static int check_rights(auth_store_t *as, const ireq_t *q) {
  auth_info_t ai = {.user = q->auth_user, .revision = q->auth_revision};
  if (needs_admin(q)) return auth_check_admin(as, &ai);
  int rc = 0;
  if (q->auth_user_get || q->auth_role_get) rc = auth_check_admin(as, &ai);
  if (rc && q->auth_user_get && ai.user && !strcmp(q->auth_user_get->name, ai.user)) rc = 0;
  if (rc && q->auth_role_get && ai.user) {
    const Authpb__User *u = auth_user_get(as, ai.user);
    if (u && auth_user_has_role(u, q->auth_role_get->role)) rc = 0;
  }
  return rc;
}

int auth_apply(auth_store_t *as, const ireq_t *q, uint64_t index, arena_t *a, ProtobufCMessage **resp) {
  *resp = NULL;
  int rc = check_rights(as, q);
  if (rc) return rc;
  void *r = resp_new(a, resp_desc(q));
  if (q->auth_enable)
    rc = enable(as);
  else if (q->auth_disable)
    rc = disable(as);
  else if (q->auth_status) {
    Etcdserverpb__AuthStatusResponse *s = r;
    s->enabled = as->enabled;
    s->authrevision = as->revision;
  } else if (q->authenticate)
    rc = authenticate(as, q->authenticate, index, a, r);
  else if (q->auth_user_add)
    rc = user_add(as, q->auth_user_add);
  else if (q->auth_user_delete)
    rc = user_delete(as, q->auth_user_delete->name);
  else if (q->auth_user_change_password)
    rc = user_passwd(as, q->auth_user_change_password);
  else if (q->auth_user_grant_role)
    rc = user_grant(as, q->auth_user_grant_role);
  else if (q->auth_user_revoke_role)
    rc = user_revoke(as, q->auth_user_revoke_role);
  else if (q->auth_user_get)
    rc = user_get(as, q->auth_user_get->name, a, r);
  else if (q->auth_user_list)
    rc = user_list(as, a, r);
  else if (q->auth_role_add)
    rc = role_add(as, q->auth_role_add->name);
  else if (q->auth_role_grant_permission)
    rc = role_grant(as, q->auth_role_grant_permission);
  else if (q->auth_role_get)
    rc = role_get(as, q->auth_role_get->role, a, r);
  else if (q->auth_role_list)
    rc = role_list(as, a, r);
  else if (q->auth_role_delete)
    rc = role_delete(as, q->auth_role_delete->role);
  else if (q->auth_role_revoke_permission)
    rc = role_revoke(as, q->auth_role_revoke_permission);
  else
    rc = CETCD_EINVAL;
  if (rc == 0) *resp = r;
  return rc;
}

int auth_password_of(auth_store_t *as, const char *user, char **hash, size_t *hash_len, uint64_t *rev) {
  *hash = NULL;
  if (!as->enabled) return CETCD_EAUTHNOTENABLED;
  const Authpb__User *u = auth_user_get(as, user);
  if (!u) return CETCD_EAUTHFAILED;
  if (u->options && u->options->no_password) return CETCD_EAUTHNOPASSWORD;
  *hash = xmalloc(u->password.len + 1);
  if (u->password.len) memcpy(*hash, u->password.data, u->password.len);
  (*hash)[u->password.len] = 0;
  *hash_len = u->password.len;
  *rev = as->revision;
  return 0;
}
