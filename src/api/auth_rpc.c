/* etcdserverpb.Auth: every method but AuthStatus is proposed to the log and answered once
 * applied (etcd's raftRequest), where the proposer's rights are checked (auth/auth_apply.c).
 * bcrypt runs on libuv worker threads: UserAdd and UserChangePassword propose the hash,
 * never the password; Authenticate checks the password against the stored hash first, then
 * proposes a token prefix, and starts again if the auth store changed meanwhile. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "auth/auth.h"
#include "base/alloc.h"
#include "cetcd/errors.h"
#include "server/raft_node.h"

/* How often Authenticate starts over when the store changed while it checked. */
#define AUTH_TRIES 5

/* Every Auth*Response starts with its header. */
typedef struct any_resp {
  ProtobufCMessage base;
  Etcdserverpb__ResponseHeader *header;
} any_resp_t;

/* Replies to an applied auth request. */
static void auth_done(void *ctx, const apply_result_t *res) {
  grpc_call_t *call = ctx;
  if (res->err || !res->auth) {
    api_finish_error(call, res->err ? res->err : CETCD_EINVAL);
    return;
  }
  any_resp_t *r = (any_resp_t *)res->auth;
  r->header = api_header(call, r->header);
  api_reply(call, res->auth);
}

/* Proposes ir for the call with its token's user and revision. */
static void propose_cb_as(grpc_call_t *call, Cetcdinternal__InternalRequest *ir, propose_cb cb, void *ctx) {
  int rc = api_auth_stamp(call, ir);
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  server_propose(api_ctx(call)->srv, ir, grpc_call_arena(call), cb, ctx);
}

/* Proposes ir and answers with its applied result. */
static void propose(grpc_call_t *call, Cetcdinternal__InternalRequest *ir) {
  propose_cb_as(call, ir, auth_done, call);
}

/* One generic handler per request field of InternalRequest. */
#define PROPOSE_HANDLER(fn, field, type)                                       \
  static void fn(grpc_call_t *call, ProtobufCMessage *m) {                     \
    Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT; \
    ir.field = (type *)m;                                                      \
    propose(call, &ir);                                                        \
  }
PROPOSE_HANDLER(auth_enable, auth_enable, Etcdserverpb__AuthEnableRequest)
PROPOSE_HANDLER(auth_disable, auth_disable, Etcdserverpb__AuthDisableRequest)
PROPOSE_HANDLER(user_get, auth_user_get, Etcdserverpb__AuthUserGetRequest)
PROPOSE_HANDLER(user_list, auth_user_list, Etcdserverpb__AuthUserListRequest)
PROPOSE_HANDLER(user_delete, auth_user_delete, Etcdserverpb__AuthUserDeleteRequest)
PROPOSE_HANDLER(user_grant_role, auth_user_grant_role, Etcdserverpb__AuthUserGrantRoleRequest)
PROPOSE_HANDLER(user_revoke_role, auth_user_revoke_role, Etcdserverpb__AuthUserRevokeRoleRequest)
PROPOSE_HANDLER(role_add, auth_role_add, Etcdserverpb__AuthRoleAddRequest)
PROPOSE_HANDLER(role_get, auth_role_get, Etcdserverpb__AuthRoleGetRequest)
PROPOSE_HANDLER(role_list, auth_role_list, Etcdserverpb__AuthRoleListRequest)
PROPOSE_HANDLER(role_delete, auth_role_delete, Etcdserverpb__AuthRoleDeleteRequest)
PROPOSE_HANDLER(role_grant, auth_role_grant_permission, Etcdserverpb__AuthRoleGrantPermissionRequest)
PROPOSE_HANDLER(role_revoke, auth_role_revoke_permission, Etcdserverpb__AuthRoleRevokePermissionRequest)

/* AuthStatus: local state (etcd 3.5's answer; 3.4.23 does not implement it). */
static void auth_status_rpc(grpc_call_t *call, ProtobufCMessage *m) {
  (void)m;
  Etcdserverpb__AuthStatusResponse *r = arena_zalloc(grpc_call_arena(call), sizeof(*r));
  etcdserverpb__auth_status_response__init(r);
  bool on = false;
  auth_status(api_ctx(call)->auth, &on, &r->authrevision);
  r->enabled = on;
  r->header = api_header(call, NULL);
  api_reply(call, &r->base);
}

/* ---- bcrypt off the loop ---- */

/* One password to hash or to check on a worker thread. */
typedef struct pw_job {
  uv_work_t work;
  grpc_call_t *call;
  api_ctx_t *api; /* the call's */
  ProtobufCMessage *req;
  char *password; /* malloc'd copy */
  size_t len;
  char *hash; /* in (verify) or out (hash), malloc'd */
  size_t hash_len;
  unsigned cost;
  bool verify, ok;
  int rc;
  uint64_t rev; /* auth revision the hash was read at (verify) */
  int tries;
  void (*done)(struct pw_job *job);
} pw_job_t;

/* Worker thread: runs bcrypt. */
static void pw_work(uv_work_t *w) {
  pw_job_t *j = w->data;
  if (j->verify)
    j->ok = auth_bcrypt_verify(j->password, j->len, j->hash, j->hash_len);
  else
    j->rc = auth_bcrypt_hash(j->password, j->len, j->cost, &j->hash);
}

/* Frees a job. */
static void pw_free(pw_job_t *j) {
  if (j->password) explicit_bzero(j->password, j->len);
  free(j->password);
  free(j->hash);
  free(j);
}

/* Loop thread: hands the result to the job's continuation. */
static void pw_after(uv_work_t *w, int status) {
  pw_job_t *j = w->data;
  if (status) j->rc = CETCD_ECANCELED;
  j->done(j);
}

/* Starts a job for call on the password given. */
static pw_job_t *pw_job(grpc_call_t *call, ProtobufCMessage *req, const char *pw, void (*done)(pw_job_t *)) {
  pw_job_t *j = xcalloc(1, sizeof(*j));
  j->call = call;
  j->api = api_ctx(call);
  j->req = req;
  j->len = strlen(pw);
  j->password = xmemdup(pw, j->len + 1);
  j->cost = j->api->cfg->bcrypt_cost;
  j->done = done;
  j->work.data = j;
  return j;
}

/* Queues a job. */
static void pw_start(pw_job_t *j) {
  int rc = uv_queue_work(j->api->loop, &j->work, pw_work, pw_after);
  if (rc) {
    api_finish_error(j->call, CETCD_EUNAVAILABLE);
    pw_free(j);
  }
}

/* The hash of a UserAdd is ready: propose it. */
static void user_add_hashed(pw_job_t *j) {
  if (j->rc) {
    api_finish_error(j->call, j->rc);
  } else {
    Etcdserverpb__AuthUserAddRequest *r = (Etcdserverpb__AuthUserAddRequest *)j->req;
    r->password = "";
    r->hashedpassword = arena_memdup(grpc_call_arena(j->call), j->hash, strlen(j->hash) + 1);
    Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
    ir.auth_user_add = r;
    propose(j->call, &ir);
  }
  pw_free(j);
}

/* UserAdd: hashed first unless the user has no password. */
static void user_add(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__AuthUserAddRequest *r = (Etcdserverpb__AuthUserAddRequest *)m;
  r->hashedpassword = "";
  if (r->options && r->options->no_password) {
    r->password = "";
    Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
    ir.auth_user_add = r;
    propose(call, &ir);
    return;
  }
  pw_start(pw_job(call, m, r->password, user_add_hashed));
}

/* The new hash of a UserChangePassword is ready: propose it. */
static void passwd_hashed(pw_job_t *j) {
  if (j->rc) {
    api_finish_error(j->call, j->rc);
  } else {
    Etcdserverpb__AuthUserChangePasswordRequest *r = (Etcdserverpb__AuthUserChangePasswordRequest *)j->req;
    r->password = "";
    r->hashedpassword = arena_memdup(grpc_call_arena(j->call), j->hash, strlen(j->hash) + 1);
    Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
    ir.auth_user_change_password = r;
    propose(j->call, &ir);
  }
  pw_free(j);
}

/* UserChangePassword: hashed, then proposed. */
static void user_passwd(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__AuthUserChangePasswordRequest *r = (Etcdserverpb__AuthUserChangePasswordRequest *)m;
  pw_start(pw_job(call, m, r->password, passwd_hashed));
}

/* ---- Authenticate ---- */

static void authn_check(pw_job_t *j);

/* The token entry was applied: answer, or start over if the store changed since the
 * password was checked (etcd's loop in EtcdServer.Authenticate). */
static void authn_applied(void *ctx, const apply_result_t *res) {
  pw_job_t *j = ctx;
  if (res->err == 0 && j->rev != auth_revision(j->api->auth) && ++j->tries < AUTH_TRIES) {
    authn_check(j);
    return;
  }
  auth_done(j->call, res);
  pw_free(j);
}

/* The password was checked: propose a token prefix. */
static void authn_verified(pw_job_t *j) {
  if (j->rc || !j->ok) {
    api_finish_error(j->call, j->rc ? j->rc : CETCD_EAUTHFAILED);
    pw_free(j);
    return;
  }
  Etcdserverpb__AuthenticateRequest *r = (Etcdserverpb__AuthenticateRequest *)j->req;
  Cetcdinternal__AuthenticateRequest *a = arena_zalloc(grpc_call_arena(j->call), sizeof(*a));
  cetcdinternal__authenticate_request__init(a);
  a->name = r->name;
  a->simple_token = arena_alloc(grpc_call_arena(j->call), 17);
  auth_token_prefix(a->simple_token);
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.authenticate = a;
  int rc = api_auth_stamp(j->call, &ir);
  if (rc) {
    api_finish_error(j->call, rc);
    pw_free(j);
    return;
  }
  server_propose(j->api->srv, &ir, grpc_call_arena(j->call), authn_applied, j);
}

/* Reads the user's hash and checks the password on a worker. */
static void authn_check(pw_job_t *j) {
  Etcdserverpb__AuthenticateRequest *r = (Etcdserverpb__AuthenticateRequest *)j->req;
  free(j->hash);
  j->hash = NULL;
  int rc = auth_password_of(j->api->auth, r->name, &j->hash, &j->hash_len, &j->rev);
  if (rc) {
    api_finish_error(j->call, rc);
    pw_free(j);
    return;
  }
  j->verify = true;
  j->done = authn_verified;
  pw_start(j);
}

/* A cluster member's read index is applied (etcd's linearizableReadNotify). */
static void authn_read_ready(void *ctx, int err) {
  pw_job_t *j = ctx;
  if (err) {
    api_finish_error(j->call, err);
    pw_free(j);
    return;
  }
  authn_check(j);
}

/* Authenticate: linearized on a cluster, the password checked, then a token proposed. */
static void authenticate(grpc_call_t *call, ProtobufCMessage *m) {
  Etcdserverpb__AuthenticateRequest *r = (Etcdserverpb__AuthenticateRequest *)m;
  pw_job_t *j = pw_job(call, m, r->password, authn_verified);
  server_t *srv = j->api->srv;
  if (srv->rn)
    raft_node_read_index(srv->rn, authn_read_ready, j);
  else
    authn_check(j);
}

#define M(name, fn, req) \
  { "/etcdserverpb.Auth/" name, GRPC_UNARY, &etcdserverpb__##req##__descriptor, fn, NULL, NULL }
const grpc_method_t api_auth_methods[] = {
    M("AuthEnable", auth_enable, auth_enable_request),
    M("AuthDisable", auth_disable, auth_disable_request),
    M("AuthStatus", auth_status_rpc, auth_status_request),
    M("Authenticate", authenticate, authenticate_request),
    M("UserAdd", user_add, auth_user_add_request),
    M("UserGet", user_get, auth_user_get_request),
    M("UserList", user_list, auth_user_list_request),
    M("UserDelete", user_delete, auth_user_delete_request),
    M("UserChangePassword", user_passwd, auth_user_change_password_request),
    M("UserGrantRole", user_grant_role, auth_user_grant_role_request),
    M("UserRevokeRole", user_revoke_role, auth_user_revoke_role_request),
    M("RoleAdd", role_add, auth_role_add_request),
    M("RoleGet", role_get, auth_role_get_request),
    M("RoleList", role_list, auth_role_list_request),
    M("RoleDelete", role_delete, auth_role_delete_request),
    M("RoleGrantPermission", role_grant, auth_role_grant_permission_request),
    M("RoleRevokePermission", role_revoke, auth_role_revoke_permission_request),
};
const size_t api_auth_methods_len = sizeof(api_auth_methods) / sizeof(*api_auth_methods);
