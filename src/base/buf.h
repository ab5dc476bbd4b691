/* A growable byte buffer. The buffer owns its storage; buf_free releases it. */
#ifndef CETCD_BASE_BUF_H
#define CETCD_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
  uint8_t *data;
  size_t len;
  size_t cap;
} buf_t;

/* Ensures room for n more bytes. */
void buf_reserve(buf_t *b, size_t n);
/* Appends n bytes from p. */
void buf_append(buf_t *b, const void *p, size_t n);
/* Appends a formatted string (no NUL is counted in len). */
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s (NULL = "") as a quoted JSON string, escaping quotes, backslashes and
 * control characters. */
void buf_append_json_str(buf_t *b, const char *s);
/* Drops the first n bytes, moving the rest to the front. */
void buf_consume(buf_t *b, size_t n);
/* Empties the buffer, keeping its storage. */
static inline void buf_reset(buf_t *b) { b->len = 0; }
/* Frees the storage and zeroes the struct. */
void buf_free(buf_t *b);

#endif
