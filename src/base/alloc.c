/* Allocation wrappers that abort on failure. */
#include "base/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reports an allocation failure and aborts the process. */
static void out_of_memory(size_t n) {
  fprintf(stderr, "cetcd: fatal: out of memory allocating %zu bytes\n", n);
  abort();
}

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) out_of_memory(n);
  return p;
}

void *xcalloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) out_of_memory(count * size);
  return p;
}

void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) out_of_memory(n);
  return q;
}

char *xstrdup(const char *s) {
  size_t n = strlen(s);
  return xmemdup(s, n);
}

void *xmemdup(const void *p, size_t n) {
  char *q = xmalloc(n + 1);
  if (n) memcpy(q, p, n);
  q[n] = 0;
  return q;
}
