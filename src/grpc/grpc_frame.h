/* gRPC message framing (length-prefixed messages), without I/O.
 *
 * On the wire every gRPC message is a 5-byte prefix (1 byte compressed flag, 4 bytes
 * big-endian length) followed by the payload. HTTP/2 DATA frames carry these messages
 * with no alignment: a message may span many frames and a frame may hold several
 * messages. The deframer below accepts arbitrary chunks and reports whole messages. It is
 * shared by the server and the client side. */
#ifndef CETCD_GRPC_FRAME_H
#define CETCD_GRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

enum { GRPC_FRAME_PREFIX = 5 };

/* Results of grpc_deframer_feed. */
enum grpc_deframe_result {
  GRPC_DEFRAME_OK = 0,
  GRPC_DEFRAME_STOPPED = 1,     /* the callback asked to stop */
  GRPC_DEFRAME_TOO_LARGE = -1,  /* a prefix announced more than max_len bytes */
  GRPC_DEFRAME_COMPRESSED = -2, /* compressed flag 1 (we support identity only) */
  GRPC_DEFRAME_BAD_FLAG = -3,   /* compressed flag neither 0 nor 1 */
  GRPC_DEFRAME_FAILED = -4,     /* an earlier error: the deframer accepts nothing more */
};

/* Incremental parser state. Zero-initialize (or grpc_deframer_init) before use. */
typedef struct grpc_deframer {
  uint8_t hdr[GRPC_FRAME_PREFIX];
  uint8_t hdr_len;  /* prefix bytes collected so far */
  bool in_body;     /* prefix complete, payload pending */
  bool failed;      /* sticky error */
  uint8_t flag;     /* compressed flag of the current or failing message */
  uint32_t msg_len; /* payload length of the current or failing message */
  size_t max_len;   /* largest payload accepted (0 = 4 GiB - 1) */
  buf_t body;       /* partial payload collected across chunks (owned) */
} grpc_deframer_t;

/* Called once per complete message with a borrowed payload valid only during the call.
 * Return 0 to continue or nonzero to stop feeding (the rest of the chunk is dropped). */
typedef int (*grpc_deframe_cb)(void *ctx, const uint8_t *msg, size_t len);

/* Initializes a deframer that accepts payloads of at most max_len bytes. */
void grpc_deframer_init(grpc_deframer_t *d, size_t max_len);
/* Feeds n bytes (borrowed). Calls cb for every message completed by them; a message
 * contained whole in the chunk is passed without copying. Returns GRPC_DEFRAME_OK,
 * GRPC_DEFRAME_STOPPED, or a negative grpc_deframe_result; after an error d->msg_len and
 * d->flag describe the offending prefix and every later feed fails. */
int grpc_deframer_feed(grpc_deframer_t *d, const uint8_t *p, size_t n, grpc_deframe_cb cb, void *ctx);
/* True when no partial message is buffered (a clean place for the stream to end). */
bool grpc_deframer_idle(const grpc_deframer_t *d);
/* Resets the parser state and frees its buffer (keeps max_len). */
void grpc_deframer_reset(grpc_deframer_t *d);

/* Writes the 5-byte prefix for an uncompressed message of len bytes into out. */
void grpc_frame_prefix(uint8_t out[GRPC_FRAME_PREFIX], uint32_t len);

#endif
