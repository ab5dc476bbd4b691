/* Key-range permission checks (etcd's range_perm_cache.go and pkg/adt semantics), pure:
 * no state, no I/O, so unit tests drive it directly.
 *
 * etcd compares keys as "affine" byte strings: an empty key is greater than every other
 * key (+infinity), at the start of an interval as well as at its end. A permission whose
 * range_end is empty covers one key ([key, key\0)); a range_end of "\0" means "to the end"
 * (+infinity); otherwise [key, range_end). */
#ifndef CETCD_AUTH_PERM_H
#define CETCD_AUTH_PERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.pb-c.h"

/* The two kinds of access a request asks for. */
enum { AUTH_PERM_READ = 0, AUTH_PERM_WRITE = 1 };

/* Compares two affine keys (empty = +infinity): <0, 0, >0. */
int auth_affine_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);

/* Whether the permissions (borrowed; several roles' lists concatenated, any order) grant
 * `type` access to the request: one key when end_len is 0, else the interval [key, end)
 * with end "\0" meaning +infinity. A point needs one permission of the type overlapping
 * it; an interval needs the overlapping permissions of the type to cover it without a
 * gap (etcd's IntervalTree.Contains). */
bool auth_perm_allows(Authpb__Permission *const *perms, size_t n, int type, const uint8_t *key,
                      size_t key_len, const uint8_t *end, size_t end_len);

#endif
