/* Minimal HTTP/1.1 request parser and response writer, without I/O, for the plain HTTP
 * endpoints served on the gRPC port (/health, /version, /metrics, the /v3/ gateway). */
#ifndef CETCD_GRPC_HTTP1_H
#define CETCD_GRPC_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"

enum { GRPC_HTTP1_MAX_HEAD = 16 * 1024 };

typedef struct grpc_http1_req {
  char method[16];     /* "GET" */
  char path[2048];     /* request target as sent, e.g. "/health?x=1" */
  const uint8_t *body; /* borrowed from the parsed input */
  size_t body_len;
} grpc_http1_req_t;

/* Parses one request from p[0..n). Returns the number of bytes it occupies (head + body)
 * once complete, 0 if more input is needed, or -(HTTP status) for a request to refuse:
 * -400 malformed, -413 body above max_body, -431 head above GRPC_HTTP1_MAX_HEAD,
 * -501 Transfer-Encoding (unsupported). req's body points into p. */
ssize_t grpc_http1_parse(const uint8_t *p, size_t n, size_t max_body, grpc_http1_req_t *req);
/* Appends a complete response with Content-Length and "Connection: close" to out. */
void grpc_http1_response(buf_t *out, int status, const char *content_type, const uint8_t *body, size_t len);
/* Reason phrase for a status code ("OK", "Not Found"...), static. */
const char *grpc_http1_reason(int status);

#endif
