/* Plain HTTP/1.1 endpoints on the client port: /health, /version, /metrics. */
#ifndef CETCD_SERVER_HTTP_H
#define CETCD_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* grpc_http1_handler_fn for the client port; ctx is the server_t. */
bool http_handle(void *ctx, const char *method, const char *path, const uint8_t *req_body, size_t req_len,
                 int *status, const char **content_type, buf_t *body);

#endif
