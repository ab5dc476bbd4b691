/* The TLS contexts of the client and peer listeners, from the configuration. */
#ifndef CETCD_SERVER_TLS_SETUP_H
#define CETCD_SERVER_TLS_SETUP_H

#include "client/transport/grpc_client_tls.h"
#include "net/tls.h"
#include "server/config.h"

/* The client listeners' context: NULL in *out when no --listen-client-urls is https.
 * Returns 0, or -1 after logging the cause and the fix (an https URL without a certificate,
 * unreadable files, a key that does not match, an unknown cipher suite). */
int tls_setup_client(const cetcd_config_t *cfg, tls_ctx_t **out);
/* The peer side, from the --peer-* flags: the listeners' context in *server (NULL when no
 * --listen-peer-urls is https; --peer-cert-allowed-cn and --peer-cert-allowed-hostname are
 * checked on the certificates peers present) and the context for dialing peers in *dialer
 * (NULL without peer TLS settings). Returns 0, or -1 after logging the cause and the fix. */
int tls_setup_peer(const cetcd_config_t *cfg, tls_ctx_t **server, grpc_tls_ctx_t **dialer);

#endif
