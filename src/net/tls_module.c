/* The entry point of cetcd-tls.so: the table of net/tls.c's and auth/auth_jws.c's functions
 * (see tls_module.h). */
#include "net/tls_module.h"

/* Returns the table; the only symbol the module exports. */
__attribute__((visibility("default"))) const tls_api_t *cetcd_tls_api(void) {
  static const tls_api_t api = {
      .size = sizeof(tls_api_t),
      .server_ctx_new = tls_server_ctx_new,
      .client_ctx_new = tls_client_ctx_new,
      .ctx_free = tls_ctx_free,
      .ctx_reload_if_changed = tls_ctx_reload_if_changed,
      .conn_new = tls_conn_new,
      .conn_free = tls_conn_free,
      .conn_set_host = tls_conn_set_host,
      .conn_feed = tls_conn_feed,
      .conn_read = tls_conn_read,
      .conn_write = tls_conn_write,
      .conn_pending = tls_conn_pending,
      .conn_take = tls_conn_take,
      .conn_connect = tls_conn_connect,
      .conn_handshake_done = tls_conn_handshake_done,
      .conn_closed = tls_conn_closed,
      .conn_error = tls_conn_error,
      .conn_alpn_is_h2 = tls_conn_alpn_is_h2,
      .conn_peer_cn = tls_conn_peer_cn,
      .self_cert = tls_self_cert,
      .cipher_list = tls_cipher_list,
      .jws_key_open = auth_jws_key_open,
      .jws_key_free = auth_jws_key_free,
      .jws_can_sign = auth_jws_can_sign,
      .jws_sign = auth_jws_sign,
      .jws_verify = auth_jws_verify,
  };
  return &api;
}
