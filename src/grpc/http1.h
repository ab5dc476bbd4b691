/* Minimal HTTP/1.1 request parser and response writer, without I/O, for the plain HTTP
 * endpoints served on the gRPC port (/health, /version, /metrics, the /v3/ gateway). */
#ifndef CETCD_GRPC_HTTP1_H
#define CETCD_GRPC_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"

enum { GRPC_HTTP1_MAX_HEAD = 16 * 1024, GRPC_HTTP1_MAX_HEADERS = 64 };

/* One header line, borrowed from the parsed input (value without surrounding blanks). */
typedef struct grpc_http1_hdr {
  const uint8_t *name, *value;
  size_t nlen, vlen;
} grpc_http1_hdr_t;

typedef struct grpc_http1_req {
  char method[16];     /* "GET" */
  char path[2048];     /* request target as sent, e.g. "/health?x=1" */
  const uint8_t *body; /* borrowed from the parsed input */
  size_t body_len;
  bool keep_alive; /* HTTP/1.1 without "Connection: close", or HTTP/1.0 with keep-alive */
  grpc_http1_hdr_t hdr[GRPC_HTTP1_MAX_HEADERS];
  size_t n_hdr;
} grpc_http1_req_t;

/* Parses one request from p[0..n). Returns the number of bytes it occupies (head + body)
 * once complete, 0 if more input is needed, or -(HTTP status) for a request to refuse:
 * -400 malformed, -413 body above max_body, -431 head above GRPC_HTTP1_MAX_HEAD or more
 * than GRPC_HTTP1_MAX_HEADERS lines, -501 Transfer-Encoding (unsupported). req's body and
 * headers point into p. */
ssize_t grpc_http1_parse(const uint8_t *p, size_t n, size_t max_body, grpc_http1_req_t *req);
/* Appends a complete response with Content-Length (and "Connection: close" unless
 * keep_alive) to out. */
void grpc_http1_response(buf_t *out, int status, const char *content_type, const uint8_t *body, size_t len,
                         bool keep_alive);
/* Appends the head of a chunked 200 response to out. */
void grpc_http1_chunked_head(buf_t *out, const char *content_type, bool keep_alive);
/* Appends one chunk (len > 0) to out. */
void grpc_http1_chunk(buf_t *out, const uint8_t *data, size_t len);
/* Appends the last (empty) chunk to out. */
void grpc_http1_chunked_end(buf_t *out);
/* Reason phrase for a status code ("OK", "Not Found"...), static. */
const char *grpc_http1_reason(int status);

#endif
