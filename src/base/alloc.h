/* Allocation wrappers for the server: on failure they log and abort, so callers never
 * check for NULL (DESIGN §6.3). The client library must not use these. */
#ifndef CETCD_BASE_ALLOC_H
#define CETCD_BASE_ALLOC_H

#include <stddef.h>

/* malloc that aborts on failure. Returns owned memory. */
void *xmalloc(size_t n);
/* calloc that aborts on failure. Returns owned zeroed memory. */
void *xcalloc(size_t count, size_t size);
/* realloc that aborts on failure. */
void *xrealloc(void *p, size_t n);
/* strdup that aborts on failure. */
char *xstrdup(const char *s);
/* Copies n bytes into a new owned buffer with a trailing NUL (not counted in n). */
void *xmemdup(const void *p, size_t n);

#endif
