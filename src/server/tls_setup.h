/* The TLS contexts of the client (and later peer) listeners, from the configuration. */
#ifndef CETCD_SERVER_TLS_SETUP_H
#define CETCD_SERVER_TLS_SETUP_H

#include "net/tls.h"
#include "server/config.h"

/* The client listeners' context: NULL in *out when no --listen-client-urls is https.
 * Returns 0, or -1 after logging the cause and the fix (an https URL without a certificate,
 * unreadable files, a key that does not match, an unknown cipher suite). */
int tls_setup_client(const cetcd_config_t *cfg, tls_ctx_t **out);

#endif
