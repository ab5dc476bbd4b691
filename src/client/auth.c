/* libcetcd auth: the token the client logs in with (refresh after a token error, as
 * clientv3's retry interceptor does) and the Auth service's calls. */
#include <string.h>

#include "client/client_int.h"

#define AUTH_PATH(m) "/etcdserverpb.Auth/" m

/* ===================================================================================== */
/* Token                                                                                 */
/* ===================================================================================== */

bool cc_auth_token_error(const char *msg) {
  return msg && (!strcmp(msg, "etcdserver: invalid auth token") ||
                 !strcmp(msg, "etcdserver: revision of auth store is old") ||
                 !strcmp(msg, "etcdserver: user name is empty"));
}

uint64_t cc_auth_gen(cetcd_client_t *c) {
  pthread_mutex_lock(&c->auth_mu);
  uint64_t g = c->token_gen;
  pthread_mutex_unlock(&c->auth_mu);
  return g;
}

int cc_auth_refresh(cetcd_client_t *c, uint64_t gen) {
  if (!c->user) return cc_error(CETCD_EINVAL, 0, "the client has no credentials");
  pthread_mutex_lock(&c->auth_mu);
  if (gen != UINT64_MAX && c->token_gen != gen && c->authed) {
    pthread_mutex_unlock(&c->auth_mu); /* another thread got a new token meanwhile */
    return 0;
  }
  char *token = NULL;
  int rc = cetcd_authenticate(c, c->user, c->password, &token);
  if (rc == CETCD_EAUTHNOTENABLED) rc = 0; /* clientv3 goes on without a token */
  if (rc == 0) rc = grpc_client_set_token(c->gc, token);
  if (rc == 0) {
    c->authed = true;
    c->token_gen++;
  } else if (rc == CETCD_ENOMEM || rc == CETCD_ECANCELED) {
    cc_error(rc, 0, NULL);
  }
  cc_free(token);
  pthread_mutex_unlock(&c->auth_mu);
  return rc;
}

int cetcd_client_authenticate(cetcd_client_t *c) {
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  return cc_auth_refresh(c, UINT64_MAX);
}

/* ===================================================================================== */
/* Calls                                                                                 */
/* ===================================================================================== */

/* The header of any Auth response (every one has it as field 1). */
static const Etcdserverpb__ResponseHeader *resp_header(const ProtobufCMessage *m) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(m->descriptor, 1);
  if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE) return NULL;
  return *(Etcdserverpb__ResponseHeader *const *)((const char *)m + f->offset);
}

/* One Auth call whose answer is only a header. Returns 0 or the call's code. */
static int simple_call(cetcd_client_t *c, const char *path, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *desc, bool idempotent, cetcd_header_t *header) {
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  ProtobufCMessage *m;
  int rc = cc_unary(c, path, -1, req, desc, idempotent, 0, &m);
  if (rc) return rc;
  if (header) cc_header(header, resp_header(m));
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return 0;
}

/* Copies n strings into a new name list *out. Returns 0 or CETCD_ENOMEM (recorded). */
static int names_copy(cetcd_names_t **out, const ProtobufCMessage *m, char **src, size_t n) {
  cetcd_names_t *l = cc_calloc(1, sizeof(*l));
  if (!l) return cc_error(CETCD_ENOMEM, 0, NULL);
  cc_header(&l->header, resp_header(m));
  if (n && !(l->names = cc_calloc(n, sizeof(char *)))) goto oom;
  for (size_t i = 0; i < n; i++) {
    if (!(l->names[i] = cc_memdup(src[i], strlen(src[i])))) goto oom;
    l->n = i + 1;
  }
  *out = l;
  return 0;
oom:
  cetcd_names_free(l);
  return cc_error(CETCD_ENOMEM, 0, NULL);
}

void cetcd_names_free(cetcd_names_t *l) {
  if (!l) return;
  for (size_t i = 0; i < l->n; i++) cc_free(l->names[i]);
  cc_free(l->names);
  cc_free(l);
}

void cetcd_role_free(cetcd_role_t *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n_perms; i++) {
    cc_free(r->perms[i].key);
    cc_free(r->perms[i].range_end);
  }
  cc_free(r->perms);
  cc_free(r);
}

int cetcd_auth_enable(cetcd_client_t *c, cetcd_header_t *header) {
  Etcdserverpb__AuthEnableRequest r = ETCDSERVERPB__AUTH_ENABLE_REQUEST__INIT;
  return simple_call(c, AUTH_PATH("AuthEnable"), &r.base, &etcdserverpb__auth_enable_response__descriptor,
                     false, header);
}

int cetcd_auth_disable(cetcd_client_t *c, cetcd_header_t *header) {
  Etcdserverpb__AuthDisableRequest r = ETCDSERVERPB__AUTH_DISABLE_REQUEST__INIT;
  return simple_call(c, AUTH_PATH("AuthDisable"), &r.base, &etcdserverpb__auth_disable_response__descriptor,
                     false, header);
}

int cetcd_auth_status(cetcd_client_t *c, bool *enabled, uint64_t *revision, cetcd_header_t *header) {
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__AuthStatusRequest r = ETCDSERVERPB__AUTH_STATUS_REQUEST__INIT;
  ProtobufCMessage *m;
  int rc = cc_unary(c, AUTH_PATH("AuthStatus"), -1, &r.base, &etcdserverpb__auth_status_response__descriptor,
                    true, 0, &m);
  if (rc) return rc;
  Etcdserverpb__AuthStatusResponse *sr = (Etcdserverpb__AuthStatusResponse *)m;
  if (enabled) *enabled = sr->enabled;
  if (revision) *revision = sr->authrevision;
  if (header) cc_header(header, sr->header);
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return 0;
}

int cetcd_authenticate(cetcd_client_t *c, const char *name, const char *password, char **token) {
  if (!c || !name || !password || !token) return cc_error(CETCD_EINVAL, 0, NULL);
  *token = NULL;
  Etcdserverpb__AuthenticateRequest r = ETCDSERVERPB__AUTHENTICATE_REQUEST__INIT;
  r.name = (char *)name;
  r.password = (char *)password;
  ProtobufCMessage *m;
  int rc = cc_unary(c, GRPC_AUTHENTICATE_PATH, -1, &r.base, &etcdserverpb__authenticate_response__descriptor,
                    true, 0, &m);
  if (rc) return rc;
  const char *t = ((Etcdserverpb__AuthenticateResponse *)m)->token;
  *token = cc_memdup(t ? t : "", t ? strlen(t) : 0);
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return *token ? 0 : cc_error(CETCD_ENOMEM, 0, NULL);
}

int cetcd_user_add(cetcd_client_t *c, const char *name, const char *password, bool no_password,
                   cetcd_header_t *header) {
  if (!name || (no_password && password && *password)) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__AuthUserAddRequest r = ETCDSERVERPB__AUTH_USER_ADD_REQUEST__INIT;
  Authpb__UserAddOptions o = AUTHPB__USER_ADD_OPTIONS__INIT;
  o.no_password = no_password;
  r.name = (char *)name;
  r.password = (char *)(password ? password : "");
  r.options = &o;
  return simple_call(c, AUTH_PATH("UserAdd"), &r.base, &etcdserverpb__auth_user_add_response__descriptor, false,
                     header);
}

int cetcd_user_get(cetcd_client_t *c, const char *name, cetcd_names_t **out) {
  if (!c || !name || !out) return cc_error(CETCD_EINVAL, 0, NULL);
  *out = NULL;
  Etcdserverpb__AuthUserGetRequest r = ETCDSERVERPB__AUTH_USER_GET_REQUEST__INIT;
  r.name = (char *)name;
  ProtobufCMessage *m;
  int rc = cc_unary(c, AUTH_PATH("UserGet"), -1, &r.base, &etcdserverpb__auth_user_get_response__descriptor,
                    true, 0, &m);
  if (rc) return rc;
  Etcdserverpb__AuthUserGetResponse *ur = (Etcdserverpb__AuthUserGetResponse *)m;
  rc = names_copy(out, m, ur->roles, ur->n_roles);
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return rc;
}

int cetcd_user_list(cetcd_client_t *c, cetcd_names_t **out) {
  if (!c || !out) return cc_error(CETCD_EINVAL, 0, NULL);
  *out = NULL;
  Etcdserverpb__AuthUserListRequest r = ETCDSERVERPB__AUTH_USER_LIST_REQUEST__INIT;
  ProtobufCMessage *m;
  int rc = cc_unary(c, AUTH_PATH("UserList"), -1, &r.base, &etcdserverpb__auth_user_list_response__descriptor,
                    true, 0, &m);
  if (rc) return rc;
  Etcdserverpb__AuthUserListResponse *ur = (Etcdserverpb__AuthUserListResponse *)m;
  rc = names_copy(out, m, ur->users, ur->n_users);
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return rc;
}

int cetcd_user_delete(cetcd_client_t *c, const char *name, cetcd_header_t *header) {
  if (!name) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__AuthUserDeleteRequest r = ETCDSERVERPB__AUTH_USER_DELETE_REQUEST__INIT;
  r.name = (char *)name;
  return simple_call(c, AUTH_PATH("UserDelete"), &r.base, &etcdserverpb__auth_user_delete_response__descriptor,
                     false, header);
}

int cetcd_user_change_password(cetcd_client_t *c, const char *name, const char *password,
                               cetcd_header_t *header) {
  if (!name || !password) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__AuthUserChangePasswordRequest r = ETCDSERVERPB__AUTH_USER_CHANGE_PASSWORD_REQUEST__INIT;
  r.name = (char *)name;
  r.password = (char *)password;
  return simple_call(c, AUTH_PATH("UserChangePassword"), &r.base,
                     &etcdserverpb__auth_user_change_password_response__descriptor, false, header);
}

int cetcd_user_grant_role(cetcd_client_t *c, const char *user, const char *role, cetcd_header_t *header) {
  if (!user || !role) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__AuthUserGrantRoleRequest r = ETCDSERVERPB__AUTH_USER_GRANT_ROLE_REQUEST__INIT;
  r.user = (char *)user;
  r.role = (char *)role;
  return simple_call(c, AUTH_PATH("UserGrantRole"), &r.base,
                     &etcdserverpb__auth_user_grant_role_response__descriptor, false, header);
}

int cetcd_user_revoke_role(cetcd_client_t *c, const char *user, const char *role, cetcd_header_t *header) {
  if (!user || !role) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__AuthUserRevokeRoleRequest r = ETCDSERVERPB__AUTH_USER_REVOKE_ROLE_REQUEST__INIT;
  r.name = (char *)user;
  r.role = (char *)role;
  return simple_call(c, AUTH_PATH("UserRevokeRole"), &r.base,
                     &etcdserverpb__auth_user_revoke_role_response__descriptor, false, header);
}

int cetcd_role_add(cetcd_client_t *c, const char *name, cetcd_header_t *header) {
  if (!name) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__AuthRoleAddRequest r = ETCDSERVERPB__AUTH_ROLE_ADD_REQUEST__INIT;
  r.name = (char *)name;
  return simple_call(c, AUTH_PATH("RoleAdd"), &r.base, &etcdserverpb__auth_role_add_response__descriptor, false,
                     header);
}

int cetcd_role_get(cetcd_client_t *c, const char *name, cetcd_role_t **out) {
  if (!c || !name || !out) return cc_error(CETCD_EINVAL, 0, NULL);
  *out = NULL;
  Etcdserverpb__AuthRoleGetRequest r = ETCDSERVERPB__AUTH_ROLE_GET_REQUEST__INIT;
  r.role = (char *)name;
  ProtobufCMessage *m;
  int rc = cc_unary(c, AUTH_PATH("RoleGet"), -1, &r.base, &etcdserverpb__auth_role_get_response__descriptor,
                    true, 0, &m);
  if (rc) return rc;
  Etcdserverpb__AuthRoleGetResponse *gr = (Etcdserverpb__AuthRoleGetResponse *)m;
  cetcd_role_t *role = cc_calloc(1, sizeof(*role));
  if (!role || (gr->n_perm && !(role->perms = cc_calloc(gr->n_perm, sizeof(cetcd_perm_t))))) goto oom;
  cc_header(&role->header, gr->header);
  for (size_t i = 0; i < gr->n_perm; i++) {
    const Authpb__Permission *p = gr->perm[i];
    cetcd_perm_t *d = &role->perms[i];
    role->n_perms = i + 1;
    d->type = (cetcd_perm_type_t)p->permtype;
    d->key = cc_memdup(p->key.data, p->key.len);
    d->range_end = cc_memdup(p->range_end.data, p->range_end.len);
    if (!d->key || !d->range_end) goto oom;
    d->key_len = p->key.len;
    d->range_end_len = p->range_end.len;
  }
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  *out = role;
  return 0;
oom:
  cetcd_role_free(role);
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return cc_error(CETCD_ENOMEM, 0, NULL);
}

int cetcd_role_list(cetcd_client_t *c, cetcd_names_t **out) {
  if (!c || !out) return cc_error(CETCD_EINVAL, 0, NULL);
  *out = NULL;
  Etcdserverpb__AuthRoleListRequest r = ETCDSERVERPB__AUTH_ROLE_LIST_REQUEST__INIT;
  ProtobufCMessage *m;
  int rc = cc_unary(c, AUTH_PATH("RoleList"), -1, &r.base, &etcdserverpb__auth_role_list_response__descriptor,
                    true, 0, &m);
  if (rc) return rc;
  Etcdserverpb__AuthRoleListResponse *lr = (Etcdserverpb__AuthRoleListResponse *)m;
  rc = names_copy(out, m, lr->roles, lr->n_roles);
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return rc;
}

int cetcd_role_delete(cetcd_client_t *c, const char *name, cetcd_header_t *header) {
  if (!name) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__AuthRoleDeleteRequest r = ETCDSERVERPB__AUTH_ROLE_DELETE_REQUEST__INIT;
  r.role = (char *)name;
  return simple_call(c, AUTH_PATH("RoleDelete"), &r.base, &etcdserverpb__auth_role_delete_response__descriptor,
                     false, header);
}

int cetcd_role_grant_permission(cetcd_client_t *c, const char *role, const void *key, size_t key_len,
                                const void *range_end, size_t range_end_len, cetcd_perm_type_t type,
                                cetcd_header_t *header) {
  if (!role || (key_len && !key) || (range_end_len && !range_end) || type < CETCD_PERM_READ ||
      type > CETCD_PERM_READWRITE)
    return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__AuthRoleGrantPermissionRequest r = ETCDSERVERPB__AUTH_ROLE_GRANT_PERMISSION_REQUEST__INIT;
  Authpb__Permission p = AUTHPB__PERMISSION__INIT;
  p.permtype = (Authpb__Permission__Type)type;
  p.key = (ProtobufCBinaryData){key_len, (uint8_t *)key};
  p.range_end = (ProtobufCBinaryData){range_end_len, (uint8_t *)range_end};
  r.name = (char *)role;
  r.perm = &p;
  return simple_call(c, AUTH_PATH("RoleGrantPermission"), &r.base,
                     &etcdserverpb__auth_role_grant_permission_response__descriptor, false, header);
}

int cetcd_role_revoke_permission(cetcd_client_t *c, const char *role, const void *key, size_t key_len,
                                 const void *range_end, size_t range_end_len, cetcd_header_t *header) {
  if (!role || (key_len && !key) || (range_end_len && !range_end)) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__AuthRoleRevokePermissionRequest r = ETCDSERVERPB__AUTH_ROLE_REVOKE_PERMISSION_REQUEST__INIT;
  r.role = (char *)role;
  r.key = (ProtobufCBinaryData){key_len, (uint8_t *)key};
  r.range_end = (ProtobufCBinaryData){range_end_len, (uint8_t *)range_end};
  return simple_call(c, AUTH_PATH("RoleRevokePermission"), &r.base,
                     &etcdserverpb__auth_role_revoke_permission_response__descriptor, false, header);
}
