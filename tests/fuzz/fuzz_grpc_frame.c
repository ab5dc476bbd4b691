/* libFuzzer target: the gRPC message deframer fed arbitrary bytes in arbitrary chunks.
 * The first input byte picks the size limit and the chunk size; the rest is the stream. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/grpc_frame.h"

/* Checks each delivered message lies in readable memory of the announced size. */
static int on_msg(void *ctx, const uint8_t *p, size_t n) {
  size_t *total = ctx;
  volatile uint8_t x = 0;
  for (size_t i = 0; i < n; i++) x ^= p[i];
  (void)x;
  *total += n;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t max = (size_t)(data[0] & 0x0f) << 8; /* 0 = unlimited */
  size_t chunk = (size_t)(data[0] >> 4) + 1;
  data++, size--;
  grpc_deframer_t d;
  grpc_deframer_init(&d, max);
  size_t total = 0, off = 0;
  int rc = GRPC_DEFRAME_OK;
  while (off < size && rc >= 0) {
    size_t k = size - off < chunk ? size - off : chunk;
    rc = grpc_deframer_feed(&d, data + off, k, on_msg, &total);
    off += k;
  }
  /* a whole-buffer feed must agree with the chunked one */
  grpc_deframer_t d2;
  grpc_deframer_init(&d2, max);
  size_t total2 = 0;
  int rc2 = grpc_deframer_feed(&d2, data, size, on_msg, &total2);
  if ((rc < 0) != (rc2 < 0) || (rc >= 0 && total != total2)) abort();
  if (rc >= 0 && grpc_deframer_idle(&d) != grpc_deframer_idle(&d2)) abort();
  grpc_deframer_reset(&d);
  grpc_deframer_reset(&d2);
  return 0;
}
