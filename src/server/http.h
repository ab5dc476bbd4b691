/* Plain HTTP endpoints on the client port: /health, /version, /metrics and the /v3/ JSON
 * gateway. */
#ifndef CETCD_SERVER_HTTP_H
#define CETCD_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc/grpc_server.h"

/* grpc_http1_handler_fn for the client port; ctx is the server_t. Answers /health,
 * /version and /metrics at once, hands other requests to the layer above (its http hook:
 * the JSON gateway, which answers later) and answers 404 to what that does not take. */
void http_handle(void *ctx, grpc_http_req_t *req, const char *method, const char *path,
                 const uint8_t *req_body, size_t req_len);

#endif
