/* Minimal HTTP/1.1 request parsing and response formatting. */
#include "grpc/http1.h"

#include <string.h>
#include <strings.h>

/* Finds the end of the head ("\r\n\r\n"); returns its length including the blank line or 0. */
static size_t head_end(const uint8_t *p, size_t n) {
  for (size_t i = 3; i < n; i++)
    if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r') return i + 1;
  return 0;
}

/* Copies [s, e) into dst (size cap) with a NUL; returns false if it does not fit or is empty. */
static bool copy_token(char *dst, size_t cap, const uint8_t *s, const uint8_t *e) {
  size_t n = (size_t)(e - s);
  if (n == 0 || n >= cap) return false;
  memcpy(dst, s, n);
  dst[n] = 0;
  return true;
}

/* True if the comma-separated header value [s, e) holds token tok (without case). */
static bool has_token(const uint8_t *s, const uint8_t *e, const char *tok) {
  size_t k = strlen(tok);
  while (s < e) {
    while (s < e && (*s == ' ' || *s == '\t' || *s == ',')) s++;
    const uint8_t *t = s;
    while (t < e && *t != ',') t++;
    const uint8_t *te = t;
    while (te > s && (te[-1] == ' ' || te[-1] == '\t')) te--;
    if ((size_t)(te - s) == k && !strncasecmp((const char *)s, tok, k)) return true;
    s = t;
  }
  return false;
}

/* Parses the request line "METHOD SP TARGET SP HTTP/1.x" ending at eol. */
static bool parse_request_line(const uint8_t *p, const uint8_t *eol, grpc_http1_req_t *req) {
  const uint8_t *sp1 = memchr(p, ' ', (size_t)(eol - p));
  if (!sp1) return false;
  const uint8_t *sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
  if (!sp2) return false;
  if (!copy_token(req->method, sizeof(req->method), p, sp1)) return false;
  if (!copy_token(req->path, sizeof(req->path), sp1 + 1, sp2)) return false;
  size_t vlen = (size_t)(eol - sp2 - 1);
  if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0) return false;
  req->keep_alive = sp2[8] == '1'; /* HTTP/1.1 defaults to keep-alive, 1.0 to close */
  for (const char *m = req->method; *m; m++)
    if (*m < 'A' || *m > 'Z') return false;
  return req->path[0] == '/' || req->path[0] == '*' || req->path[0] == 'h';
}

/* Parses a decimal Content-Length value; false if malformed. */
static bool parse_length(const uint8_t *s, const uint8_t *e, size_t *out) {
  while (s < e && (*s == ' ' || *s == '\t')) s++;
  while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
  if (s == e || e - s > 15) return false;
  size_t v = 0;
  for (; s < e; s++) {
    if (*s < '0' || *s > '9') return false;
    v = v * 10 + (size_t)(*s - '0');
  }
  *out = v;
  return true;
}

/* True if an incomplete head already cannot be a request: the method is not upper-case
 * letters followed by a space, or a control byte other than CR, LF or TAB appears. */
static bool hopeless(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n && i < 16 && p[i] >= 'A' && p[i] <= 'Z') i++;
  if (i < n && (i == 0 || i == 16 || p[i] != ' ')) return true;
  for (; i < n; i++)
    if ((p[i] < 0x20 && p[i] != '\r' && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f) return true;
  return false;
}

ssize_t grpc_http1_parse(const uint8_t *p, size_t n, size_t max_body, grpc_http1_req_t *req) {
  size_t head = head_end(p, n < GRPC_HTTP1_MAX_HEAD ? n : GRPC_HTTP1_MAX_HEAD);
  if (!head) {
    if (hopeless(p, n < GRPC_HTTP1_MAX_HEAD ? n : GRPC_HTTP1_MAX_HEAD)) return -400;
    return n >= GRPC_HTTP1_MAX_HEAD ? -431 : 0;
  }
  memset(req, 0, sizeof(*req));
  const uint8_t *end = p + head - 2; /* points at the final CRLF */
  const uint8_t *eol = memchr(p, '\r', head);
  if (!eol || eol[1] != '\n' || !parse_request_line(p, eol, req)) return -400;
  size_t clen = 0;
  bool have_len = false;
  for (const uint8_t *line = eol + 2; line < end;) {
    const uint8_t *le = memchr(line, '\r', (size_t)(end - line) + 1);
    if (!le || le[1] != '\n') return -400;
    const uint8_t *colon = memchr(line, ':', (size_t)(le - line));
    if (!colon || colon == line) return -400;
    size_t nlen = (size_t)(colon - line);
    if (req->n_hdr == GRPC_HTTP1_MAX_HEADERS) return -431;
    const uint8_t *vs = colon + 1, *ve = le;
    while (vs < ve && (*vs == ' ' || *vs == '\t')) vs++;
    while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    req->hdr[req->n_hdr++] = (grpc_http1_hdr_t){line, vs, nlen, (size_t)(ve - vs)};
    if (nlen == 10 && !strncasecmp((const char *)line, "connection", 10)) {
      if (has_token(vs, ve, "close"))
        req->keep_alive = false;
      else if (has_token(vs, ve, "keep-alive"))
        req->keep_alive = true;
    } else if (nlen == 14 && !strncasecmp((const char *)line, "content-length", 14)) {
      size_t v;
      if (!parse_length(colon + 1, le, &v) || (have_len && v != clen)) return -400;
      clen = v;
      have_len = true;
    } else if (nlen == 17 && !strncasecmp((const char *)line, "transfer-encoding", 17)) {
      return -501;
    }
    line = le + 2;
  }
  if (clen > max_body) return -413;
  if (n - head < clen) return 0;
  req->body = p + head;
  req->body_len = clen;
  return (ssize_t)(head + clen);
}

const char *grpc_http1_reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

void grpc_http1_response(buf_t *out, int status, const char *content_type, const uint8_t *body, size_t len,
                         bool keep_alive) {
  buf_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", status,
             grpc_http1_reason(status), content_type ? content_type : "text/plain; charset=utf-8", len,
             keep_alive ? "" : "Connection: close\r\n");
  if (len) buf_append(out, body, len);
}

void grpc_http1_chunked_head(buf_t *out, const char *content_type, bool keep_alive) {
  buf_printf(out, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n%s\r\n", content_type,
             keep_alive ? "" : "Connection: close\r\n");
}

void grpc_http1_chunk(buf_t *out, const uint8_t *data, size_t len) {
  buf_printf(out, "%zx\r\n", len);
  buf_append(out, data, len);
  buf_append(out, "\r\n", 2);
}

void grpc_http1_chunked_end(buf_t *out) { buf_append(out, "0\r\n\r\n", 5); }
