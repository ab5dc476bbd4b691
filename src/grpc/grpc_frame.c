/* gRPC length-prefixed message deframer. */
#include "grpc/grpc_frame.h"

#include <string.h>

/* Largest reassembly buffer kept between messages. */
enum { BODY_KEEP = 256 * 1024 };

void grpc_deframer_init(grpc_deframer_t *d, size_t max_len) {
  memset(d, 0, sizeof(*d));
  d->max_len = max_len;
}

/* Validates a complete prefix and records the message length. */
static int check_prefix(grpc_deframer_t *d) {
  d->flag = d->hdr[0];
  d->msg_len = (uint32_t)d->hdr[1] << 24 | (uint32_t)d->hdr[2] << 16 | (uint32_t)d->hdr[3] << 8 | d->hdr[4];
  if (d->flag == 1) return GRPC_DEFRAME_COMPRESSED;
  if (d->flag != 0) return GRPC_DEFRAME_BAD_FLAG;
  if (d->max_len && d->msg_len > d->max_len) return GRPC_DEFRAME_TOO_LARGE;
  return GRPC_DEFRAME_OK;
}

int grpc_deframer_feed(grpc_deframer_t *d, const uint8_t *p, size_t n, grpc_deframe_cb cb, void *ctx) {
  if (d->failed) return GRPC_DEFRAME_FAILED;
  while (n > 0) {
    if (!d->in_body) {
      size_t take = GRPC_FRAME_PREFIX - d->hdr_len;
      if (take > n) take = n;
      memcpy(d->hdr + d->hdr_len, p, take);
      d->hdr_len += (uint8_t)take;
      p += take;
      n -= take;
      if (d->hdr_len < GRPC_FRAME_PREFIX) break;
      int rc = check_prefix(d);
      if (rc != GRPC_DEFRAME_OK) {
        d->failed = true;
        buf_free(&d->body);
        return rc;
      }
      d->in_body = true;
      d->body.len = 0;
      if (d->msg_len == 0) goto deliver_empty;
    }
    /* payload bytes */
    if (d->body.len == 0 && n >= d->msg_len) {
      /* whole payload in this chunk: no copy */
      const uint8_t *msg = p;
      size_t len = d->msg_len;
      p += len;
      n -= len;
      d->in_body = false;
      d->hdr_len = 0;
      if (cb(ctx, msg, len)) return GRPC_DEFRAME_STOPPED;
      continue;
    }
    size_t need = d->msg_len - d->body.len;
    size_t take = need < n ? need : n;
    if (d->body.len == 0 && d->max_len) buf_reserve(&d->body, d->msg_len); /* bounded by max_len */
    buf_append(&d->body, p, take);
    p += take;
    n -= take;
    if (d->body.len < d->msg_len) break;
    d->in_body = false;
    d->hdr_len = 0;
    d->body.len = 0; /* storage stays valid until the next append */
    int stop = cb(ctx, d->body.data, d->msg_len);
    if (d->body.cap > BODY_KEEP) buf_free(&d->body); /* do not pin big buffers on long streams */
    if (stop) return GRPC_DEFRAME_STOPPED;
    continue;
  deliver_empty:
    d->in_body = false;
    d->hdr_len = 0;
    if (cb(ctx, (const uint8_t *)"", 0)) return GRPC_DEFRAME_STOPPED;
  }
  return GRPC_DEFRAME_OK;
}

bool grpc_deframer_idle(const grpc_deframer_t *d) { return !d->failed && !d->in_body && d->hdr_len == 0; }

void grpc_deframer_reset(grpc_deframer_t *d) {
  size_t max = d->max_len;
  buf_free(&d->body);
  grpc_deframer_init(d, max);
}

void grpc_frame_prefix(uint8_t out[GRPC_FRAME_PREFIX], uint32_t len) {
  out[0] = 0;
  out[1] = (uint8_t)(len >> 24);
  out[2] = (uint8_t)(len >> 16);
  out[3] = (uint8_t)(len >> 8);
  out[4] = (uint8_t)len;
}
