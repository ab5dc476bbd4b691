/* Server-side concurrency recipes shared by the Lock and Election services (COMPAT §5):
 * create a key under a prefix if absent, find who is first, and wait — by watching only the
 * predecessor, never by polling or writing — until every key created before ours is gone.
 *
 * Everything runs on the loop thread. Requests built here live in the caller's arena. */
#ifndef CETCD_API_RECIPE_H
#define CETCD_API_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api_ctx.h"
#include "base/arena.h"
#include "rpc.pb-c.h"

typedef struct recipe_wait recipe_wait_t;

/* Runs when waiting ends: err 0 when no key created at or below the revision remains under
 * the prefix (`rev` is the store revision at which that was observed), or a negative
 * CETCD_E* code. */
typedef void (*recipe_wait_fn)(void *ctx, int err, int64_t rev);

/* Waits until no key under `prefix` (plen bytes, copied) has a create revision <=
 * max_create_rev, watching one predecessor at a time (etcd's waitDeletes). The callback
 * runs once, never from inside this call. Returns the wait handle (owned until the
 * callback runs or recipe_wait_cancel). */
recipe_wait_t *recipe_wait_deletes(api_ctx_t *api, const uint8_t *prefix, size_t plen, int64_t max_create_rev,
                                   recipe_wait_fn cb, void *ctx);
/* Stops waiting; the callback does not run. */
void recipe_wait_cancel(recipe_wait_t *w);

/* Fills `end` (capacity plen) with the prefix's range end (last byte + 1, carrying);
 * returns its length (1 with "\0" when every byte is 0xff). */
size_t recipe_prefix_end(const uint8_t *prefix, size_t plen, uint8_t *end);

/* Builds a Range op for the first-created key under prefix (sort CREATE ascending,
 * limit 1), in arena. */
Etcdserverpb__RangeRequest *recipe_first_created(arena_t *a, const uint8_t *prefix, size_t plen);
/* Builds a RequestOp wrapping a range / put / delete. */
Etcdserverpb__RequestOp *recipe_op_range(arena_t *a, Etcdserverpb__RangeRequest *r);
Etcdserverpb__RequestOp *recipe_op_put(arena_t *a, const uint8_t *key, size_t klen, const uint8_t *val,
                                       size_t vlen, int64_t lease, bool ignore_lease);
Etcdserverpb__RequestOp *recipe_op_get(arena_t *a, const uint8_t *key, size_t klen);
Etcdserverpb__RequestOp *recipe_op_delete(arena_t *a, const uint8_t *key, size_t klen);
/* Builds a Compare on the key's create revision: EQUAL to rev. */
Etcdserverpb__Compare *recipe_cmp_create(arena_t *a, const uint8_t *key, size_t klen, int64_t rev);

/* Reads the first-created key under prefix from the api's store. Returns 0 and sets *kv (NULL
 * when there is none, arena-owned) and *rev (store revision), or a negative code. */
int recipe_read_first(api_ctx_t *api, arena_t *a, const uint8_t *prefix, size_t plen, Mvccpb__KeyValue **kv,
                      int64_t *rev);
/* Reads one key from local state: *kv NULL when absent. */
int recipe_read_key(api_ctx_t *api, arena_t *a, const uint8_t *key, size_t klen, Mvccpb__KeyValue **kv,
                    int64_t *rev);

/* "<name>/<lease id in lower-case hex>", as etcd's recipes name a waiter's key. */
size_t recipe_waiter_key(arena_t *a, const uint8_t *name, size_t nlen, int64_t lease, uint8_t **key);

#endif
