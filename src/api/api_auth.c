/* Who a call comes from (etcd's AuthInfoFromCtx): the `token` metadata (the gateway maps
 * `Authorization` to it) resolved by the auth store, else the CN of a verified client
 * certificate (--client-cert-auth), and the checks the api layer makes
 * before serving a read or proposing a write. */
#include <string.h>

#include "api/api.h"
#include "auth/auth.h"
#include "cetcd/errors.h"

/* The call's token: `token` metadata, or `authorization` (etcd's swagger field name). */
static const char *call_token(grpc_call_t *call) {
  const char *tok = grpc_call_metadata(call, "token");
  return tok ? tok : grpc_call_metadata(call, "authorization");
}

bool api_auth_hold(grpc_call_t *call) {
  api_ctx_t *api = api_ctx(call);
  const char *tok = call_token(call);
  uint64_t index;
  return tok && api->auth && auth_token_index(api->auth, tok, &index) && index > api->srv->applied_index;
}

int api_auth_info(grpc_call_t *call, auth_info_t *ai) {
  ai->user = NULL;
  ai->revision = 0;
  const char *tok = call_token(call);
  if (tok) return auth_token_info(api_ctx(call)->auth, tok, ai);
  /* etcd's AuthInfoFromTLS: without a token, the verified client certificate's CN is the
   * user, at the store's current revision */
  const char *cn = grpc_call_peer_cn(call);
  if (cn) {
    ai->user = cn;
    ai->revision = auth_revision(api_ctx(call)->auth);
  }
  return 0;
}

int api_auth_stamp(grpc_call_t *call, Cetcdinternal__InternalRequest *ir) {
  auth_info_t ai;
  int rc = api_auth_info(call, &ai);
  if (rc) return rc;
  if (ai.user) ir->auth_user = arena_memdup(grpc_call_arena(call), ai.user, strlen(ai.user) + 1);
  ir->auth_revision = ai.revision;
  return 0;
}

int api_auth_admin(grpc_call_t *call) {
  auth_info_t ai;
  int rc = api_auth_info(call, &ai);
  return rc ? rc : auth_check_admin(api_ctx(call)->auth, &ai);
}

int api_auth_range(grpc_call_t *call, const ProtobufCBinaryData *key, const ProtobufCBinaryData *end) {
  auth_info_t ai;
  int rc = api_auth_info(call, &ai);
  return rc ? rc : auth_check_range(api_ctx(call)->auth, &ai, key->data, key->len, end->data, end->len);
}

int api_auth_txn(grpc_call_t *call, const Etcdserverpb__TxnRequest *txn) {
  auth_info_t ai;
  int rc = api_auth_info(call, &ai);
  return rc ? rc : auth_check_txn(api_ctx(call)->auth, &ai, txn);
}

/* etcd's authMaintenanceServer returns the auth package's own errors, which gRPC sends as
 * Unknown with Go's text. */
static void finish_raw(grpc_call_t *call, int rc) {
  const char *msg = rc == CETCD_EAUTHUSEREMPTY      ? "auth: user name is empty"
                    : rc == CETCD_EAUTHUSERNOTFOUND ? "auth: user not found"
                    : rc == CETCD_EAUTHBADTOKEN     ? "auth: invalid auth token"
                                                    : "auth: permission denied";
  grpc_call_finish(call, GRPC_UNKNOWN, msg);
}

bool api_auth_refuse_non_admin_raw(grpc_call_t *call) {
  int rc = api_auth_admin(call);
  if (rc) finish_raw(call, rc);
  return rc != 0;
}

bool api_auth_refuse_non_admin(grpc_call_t *call) {
  int rc = api_auth_admin(call);
  if (rc) api_finish_error(call, rc);
  return rc != 0;
}
