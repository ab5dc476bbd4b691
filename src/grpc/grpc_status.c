/* grpc-message percent-encoding, grpc-timeout parsing and status names. */
#include "grpc/grpc_status.h"

#include <stdio.h>

void grpc_percent_encode(buf_t *out, const char *msg, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  buf_reserve(out, n);
  for (size_t i = 0; i < n; i++) {
    uint8_t c = (uint8_t)msg[i];
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      buf_append(out, &c, 1);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      buf_append(out, e, 3);
    }
  }
}

/* Value of one hex digit, or -1. */
static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void grpc_percent_decode(buf_t *out, const char *s, size_t n) {
  buf_reserve(out, n + 1);
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      uint8_t c = (uint8_t)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
      buf_append(out, &c, 1);
      i += 2;
    } else {
      buf_append(out, &s[i], 1);
    }
  }
  buf_reserve(out, 1);
  out->data[out->len] = 0;
}

bool grpc_timeout_parse(const char *s, size_t n, uint64_t *ms) {
  if (n < 2 || n > 9) return false;
  uint64_t v = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  uint64_t r;
  switch (s[n - 1]) {
    case 'H':
      r = v * 3600000u;
      break;
    case 'M':
      r = v * 60000u;
      break;
    case 'S':
      r = v * 1000u;
      break;
    case 'm':
      r = v;
      break;
    case 'u':
      r = (v + 999u) / 1000u;
      break;
    case 'n':
      r = (v + 999999u) / 1000000u;
      break;
    default:
      return false;
  }
  *ms = r;
  return true;
}

char *grpc_timeout_format(uint64_t ms, char out[16]) {
  if (ms < 100000000u)
    snprintf(out, 16, "%llum", (unsigned long long)ms);
  else if (ms / 1000 < 100000000u)
    snprintf(out, 16, "%lluS", (unsigned long long)((ms + 999) / 1000));
  else if (ms / 60000 < 100000000u)
    snprintf(out, 16, "%lluM", (unsigned long long)((ms + 59999) / 60000));
  else
    snprintf(out, 16, "%lluH",
             (unsigned long long)(ms / 3600000 < 99999999u ? (ms + 3599999) / 3600000 : 99999999u));
  return out;
}

const char *grpc_status_name(int code) {
  static const char *names[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  if (code < 0 || code > 16) return "Unknown";
  return names[code];
}
