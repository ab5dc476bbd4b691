/* gRPC status helpers without I/O: grpc-message percent-encoding and grpc-timeout. */
#ifndef CETCD_GRPC_STATUS_H
#define CETCD_GRPC_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Appends `msg` (n bytes) to out percent-encoded as the gRPC spec requires for
 * grpc-message: bytes outside 0x20..0x7E and '%' become "%XX" (upper-case hex). No NUL is
 * appended. */
void grpc_percent_encode(buf_t *out, const char *msg, size_t n);
/* Decodes a percent-encoded grpc-message into out (NUL-terminated, NUL not counted).
 * Malformed escapes are copied through unchanged, as the spec asks. */
void grpc_percent_decode(buf_t *out, const char *s, size_t n);
/* Parses a grpc-timeout value (1..8 ASCII digits followed by one of H M S m u n) into
 * milliseconds, rounding up so that any positive timeout is at least 1 ms. Returns true on
 * success, false if the value is malformed. */
bool grpc_timeout_parse(const char *s, size_t n, uint64_t *ms);
/* Formats a timeout in milliseconds as a grpc-timeout value into out (at least 16 bytes),
 * using the finest unit that fits in 8 digits. Returns out. */
char *grpc_timeout_format(uint64_t ms, char out[16]);
/* Returns grpc-go's name of a status code ("DeadlineExceeded"); "Unknown" for codes out of
 * range. The string is static. */
const char *grpc_status_name(int code);

#endif
