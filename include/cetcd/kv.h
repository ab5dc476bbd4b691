/* libcetcd key-value API: get (Range), put, delete (DeleteRange), compact and a Txn
 * builder. All functions are blocking unary calls bounded by the client's request
 * timeout, callable from any thread (not from callbacks). Besides the codes listed per
 * function, every call may return CETCD_ENOMEM, CETCD_ETIMEOUT (deadline exceeded),
 * CETCD_EUNAVAILABLE (no endpoint reachable, or connection lost during a write),
 * CETCD_ECANCELED (client being freed), CETCD_EINVAL (bad arguments, or called from a
 * callback) and CETCD_EGRPC (any other server error; see cetcd_client_last_error). */
#ifndef CETCD_KV_H
#define CETCD_KV_H

#include "cetcd/client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- get ------------------------------------------------------------------------------ */

typedef enum cetcd_sort_order {
  CETCD_SORT_NONE = 0,
  CETCD_SORT_ASCEND = 1,
  CETCD_SORT_DESCEND = 2
} cetcd_sort_order_t;

typedef enum cetcd_sort_target {
  CETCD_SORT_KEY = 0,
  CETCD_SORT_VERSION = 1,
  CETCD_SORT_CREATE = 2,
  CETCD_SORT_MOD = 3,
  CETCD_SORT_VALUE = 4
} cetcd_sort_target_t;

/* Options of cetcd_get; NULL or all-zero means a single-key linearizable read at the
 * latest revision. At most one of range_end, prefix and from_key may be set. */
typedef struct cetcd_get_opts {
  const void *range_end; /* explicit end of the range [key, range_end) (borrowed) */
  size_t range_end_len;
  bool prefix;      /* every key starting with key (an empty key: every key) */
  bool from_key;    /* every key >= key */
  int64_t limit;    /* 0 = no limit */
  int64_t revision; /* <= 0 = latest */
  cetcd_sort_order_t sort_order;
  cetcd_sort_target_t sort_target;
  bool serializable; /* answer from the member's local state, without a quorum read */
  bool keys_only;
  bool count_only;
  int64_t min_mod_revision; /* 0 = no bound (for all four) */
  int64_t max_mod_revision;
  int64_t min_create_revision;
  int64_t max_create_revision;
} cetcd_get_opts_t;

/* Result of cetcd_get, owned by the caller; free with cetcd_get_result_free. */
typedef struct cetcd_get_result {
  cetcd_header_t header;
  cetcd_kv_t *kvs; /* n_kvs entries, in the requested order */
  size_t n_kvs;
  int64_t count; /* number of keys in the range (before limit) */
  bool more;     /* more keys remain in the range beyond limit */
} cetcd_get_result_t;

/* Reads key (klen bytes, borrowed) or a range of keys. On success stores the result in
 * *out. Returns 0, CETCD_ECOMPACTED, CETCD_EFUTUREREV, or the common codes. */
CETCD_EXPORT int cetcd_get(cetcd_client_t *client, const void *key, size_t klen, const cetcd_get_opts_t *opts,
                           cetcd_get_result_t **out);
/* Frees a get result and every kv in it. NULL is a no-op. */
CETCD_EXPORT void cetcd_get_result_free(cetcd_get_result_t *r);

/* ---- put ------------------------------------------------------------------------------ */

/* Options of cetcd_put (NULL = all zero). */
typedef struct cetcd_put_opts {
  int64_t lease;     /* attach the key to this lease (0 = none) */
  bool prev_kv;      /* return the previous key-value pair */
  bool ignore_value; /* keep the current value (value must be empty) */
  bool ignore_lease; /* keep the current lease (lease must be 0) */
} cetcd_put_opts_t;

/* Result of cetcd_put, owned by the caller; free with cetcd_put_result_free. */
typedef struct cetcd_put_result {
  cetcd_header_t header; /* header.revision is the revision of this put */
  cetcd_kv_t *prev_kv;   /* previous pair (opts->prev_kv and the key existed), else NULL */
} cetcd_put_result_t;

/* Stores value (vlen bytes) under key (klen bytes); both borrowed. out may be NULL when
 * the result is not needed. Returns 0, CETCD_EKEYEMPTY, CETCD_EKEYNOTFOUND (ignore_*
 * on a missing key), CETCD_EVALUEPROVIDED, CETCD_ELEASEPROVIDED, CETCD_ELEASENOTFOUND,
 * CETCD_ENOSPACE, CETCD_ETOOLARGE, or the common codes. */
CETCD_EXPORT int cetcd_put(cetcd_client_t *client, const void *key, size_t klen, const void *value,
                           size_t vlen, const cetcd_put_opts_t *opts, cetcd_put_result_t **out);
/* Frees a put result. NULL is a no-op. */
CETCD_EXPORT void cetcd_put_result_free(cetcd_put_result_t *r);

/* ---- asynchronous get and put ---------------------------------------------------------- */

/* Completion callbacks of cetcd_get_async and cetcd_put_async. rc is 0 or an error code
 * as returned by cetcd_get / cetcd_put (inside the callback, cetcd_client_last_error
 * describes it). result is non-NULL exactly when rc is 0 and is then owned by the
 * callback, which frees it (now or later, from any thread) with cetcd_get_result_free /
 * cetcd_put_result_free. */
typedef void (*cetcd_get_cb)(void *ctx, int rc, cetcd_get_result_t *result);
typedef void (*cetcd_put_cb)(void *ctx, int rc, cetcd_put_result_t *result);

/* Asynchronous get and put: same requests, options and errors as cetcd_get and cetcd_put,
 * but they return as soon as the request is queued; any number may be in flight per
 * client (they share its connection). key, value and opts are copied before the call
 * returns. The request is bounded by the client's request timeout and is not retried
 * (an unavailable endpoint is reported as CETCD_EUNAVAILABLE; nor after a token error,
 * CETCD_EAUTHBADTOKEN: the next blocking call or cetcd_client_authenticate gets a new
 * token). A client with credentials that has no token yet gets one first (blocking, unless
 * called from a callback).
 *
 * Thread-safety: callable from any thread, including from inside a libcetcd callback
 * (the cheapest way to keep a window of requests in flight is to submit the next request
 * from the completion callback).
 *
 * Callbacks: cb(ctx, rc, result) runs exactly once on the client's I/O thread when the
 * call returned 0, never when it returned an error. It must not block and must not call
 * blocking libcetcd functions or cetcd_client_free; requests still in flight when the
 * client is freed complete with CETCD_ECANCELED during cetcd_client_free. Callbacks of one
 * client run one at a time, in no guaranteed order.
 *
 * Returns 0 (cb will run), CETCD_EINVAL (bad arguments), CETCD_ENOMEM or CETCD_ECANCELED
 * (client being freed). */
CETCD_EXPORT int cetcd_get_async(cetcd_client_t *client, const void *key, size_t klen,
                                 const cetcd_get_opts_t *opts, cetcd_get_cb cb, void *ctx);
CETCD_EXPORT int cetcd_put_async(cetcd_client_t *client, const void *key, size_t klen, const void *value,
                                 size_t vlen, const cetcd_put_opts_t *opts, cetcd_put_cb cb, void *ctx);

/* ---- delete --------------------------------------------------------------------------- */

/* Options of cetcd_delete (NULL = single key, no prev_kv). At most one of range_end,
 * prefix and from_key may be set. */
typedef struct cetcd_delete_opts {
  const void *range_end; /* borrowed */
  size_t range_end_len;
  bool prefix;
  bool from_key;
  bool prev_kv; /* return the deleted pairs */
} cetcd_delete_opts_t;

/* Result of cetcd_delete, owned by the caller; free with cetcd_delete_result_free. */
typedef struct cetcd_delete_result {
  cetcd_header_t header;
  int64_t deleted;      /* number of keys deleted */
  cetcd_kv_t *prev_kvs; /* the deleted pairs when opts->prev_kv */
  size_t n_prev_kvs;
} cetcd_delete_result_t;

/* Deletes key (borrowed) or a range. out may be NULL. Returns 0, CETCD_EKEYEMPTY, or the
 * common codes. */
CETCD_EXPORT int cetcd_delete(cetcd_client_t *client, const void *key, size_t klen,
                              const cetcd_delete_opts_t *opts, cetcd_delete_result_t **out);
/* Frees a delete result. NULL is a no-op. */
CETCD_EXPORT void cetcd_delete_result_free(cetcd_delete_result_t *r);

/* ---- compact -------------------------------------------------------------------------- */

/* Compacts the key-value history up to revision rev. physical: wait until the compaction
 * is physically applied. Returns 0, CETCD_ECOMPACTED (already compacted at or beyond
 * rev), CETCD_EFUTUREREV, or the common codes. */
CETCD_EXPORT int cetcd_compact(cetcd_client_t *client, int64_t rev, bool physical);

/* ---- txn ------------------------------------------------------------------------------ */

/* Comparison operators of txn conditions. */
typedef enum cetcd_cmp_op {
  CETCD_CMP_EQUAL = 0,
  CETCD_CMP_GREATER = 1,
  CETCD_CMP_LESS = 2,
  CETCD_CMP_NOT_EQUAL = 3
} cetcd_cmp_op_t;

/* A transaction under construction: conditions, then-ops, else-ops. Opaque. A builder is
 * not thread-safe but may be committed any number of times, from any thread, by one
 * thread at a time. Builder functions copy their arguments. If one fails (CETCD_ENOMEM,
 * CETCD_EINVAL) the builder remembers the error and cetcd_txn_commit returns it. */
typedef struct cetcd_txn cetcd_txn_t;

/* Creates an empty transaction builder in *out (owned; free with cetcd_txn_free).
 * Returns 0 or CETCD_ENOMEM. */
CETCD_EXPORT int cetcd_txn_new(cetcd_txn_t **out);
/* Frees a builder. NULL is a no-op. */
CETCD_EXPORT void cetcd_txn_free(cetcd_txn_t *txn);

/* Adds the condition "version(key) op v". Returns 0, CETCD_ENOMEM or CETCD_EINVAL. */
CETCD_EXPORT int cetcd_txn_cmp_version(cetcd_txn_t *txn, const void *key, size_t klen, cetcd_cmp_op_t op,
                                       int64_t v);
/* Adds "create_revision(key) op rev" (0 = the key does not exist). Same returns. */
CETCD_EXPORT int cetcd_txn_cmp_create(cetcd_txn_t *txn, const void *key, size_t klen, cetcd_cmp_op_t op,
                                      int64_t rev);
/* Adds "mod_revision(key) op rev". */
CETCD_EXPORT int cetcd_txn_cmp_mod(cetcd_txn_t *txn, const void *key, size_t klen, cetcd_cmp_op_t op,
                                   int64_t rev);
/* Adds "value(key) op value" (vlen bytes, bytewise comparison). */
CETCD_EXPORT int cetcd_txn_cmp_value(cetcd_txn_t *txn, const void *key, size_t klen, cetcd_cmp_op_t op,
                                     const void *value, size_t vlen);
/* Adds "lease(key) op lease". */
CETCD_EXPORT int cetcd_txn_cmp_lease(cetcd_txn_t *txn, const void *key, size_t klen, cetcd_cmp_op_t op,
                                     int64_t lease);
/* Turns the last added condition into a range condition over [key, range_end): it
 * holds when it holds for every key in the range. prefix=true derives range_end from the
 * key as a prefix (range_end then ignored). Returns 0, CETCD_EINVAL (no condition yet)
 * or CETCD_ENOMEM. */
CETCD_EXPORT int cetcd_txn_cmp_range(cetcd_txn_t *txn, const void *range_end, size_t range_end_len,
                                     bool prefix);

/* Adds a put to the then-branch (executed when every condition holds). opts may be NULL. */
CETCD_EXPORT int cetcd_txn_then_put(cetcd_txn_t *txn, const void *key, size_t klen, const void *value,
                                    size_t vlen, const cetcd_put_opts_t *opts);
/* Adds a get to the then-branch. opts may be NULL. */
CETCD_EXPORT int cetcd_txn_then_get(cetcd_txn_t *txn, const void *key, size_t klen,
                                    const cetcd_get_opts_t *opts);
/* Adds a delete to the then-branch. opts may be NULL. */
CETCD_EXPORT int cetcd_txn_then_delete(cetcd_txn_t *txn, const void *key, size_t klen,
                                       const cetcd_delete_opts_t *opts);
/* Adds a nested transaction (copied; sub stays owned by the caller) to the then-branch. */
CETCD_EXPORT int cetcd_txn_then_txn(cetcd_txn_t *txn, const cetcd_txn_t *sub);
/* Adds a put to the else-branch (executed when some condition fails). opts may be NULL. */
CETCD_EXPORT int cetcd_txn_else_put(cetcd_txn_t *txn, const void *key, size_t klen, const void *value,
                                    size_t vlen, const cetcd_put_opts_t *opts);
/* Adds a get to the else-branch. opts may be NULL. */
CETCD_EXPORT int cetcd_txn_else_get(cetcd_txn_t *txn, const void *key, size_t klen,
                                    const cetcd_get_opts_t *opts);
/* Adds a delete to the else-branch. opts may be NULL. */
CETCD_EXPORT int cetcd_txn_else_delete(cetcd_txn_t *txn, const void *key, size_t klen,
                                       const cetcd_delete_opts_t *opts);
/* Adds a nested transaction (copied) to the else-branch. */
CETCD_EXPORT int cetcd_txn_else_txn(cetcd_txn_t *txn, const cetcd_txn_t *sub);

/* Kinds of per-operation results. */
typedef enum cetcd_op_type {
  CETCD_OP_GET = 0,
  CETCD_OP_PUT = 1,
  CETCD_OP_DELETE = 2,
  CETCD_OP_TXN = 3
} cetcd_op_type_t;

struct cetcd_txn_result;

/* Result of one operation of the executed branch; exactly the member matching type is
 * non-NULL. Owned by the enclosing txn result. */
typedef struct cetcd_op_result {
  cetcd_op_type_t type;
  cetcd_get_result_t *get;
  cetcd_put_result_t *put;
  cetcd_delete_result_t *del;
  struct cetcd_txn_result *txn;
} cetcd_op_result_t;

/* Result of cetcd_txn_commit, owned by the caller; free with cetcd_txn_result_free. */
typedef struct cetcd_txn_result {
  cetcd_header_t header;      /* header.revision: the txn's revision if it wrote */
  bool succeeded;             /* the conditions held: the then-branch ran */
  cetcd_op_result_t *results; /* one per op of the executed branch, in order */
  size_t n_results;
} cetcd_txn_result_t;

/* Executes the transaction. out may be NULL. A txn without writes is retried like a get.
 * Returns 0 (whichever branch ran), a builder error, CETCD_ETOOMANYOPS, CETCD_EDUPKEY,
 * CETCD_ECOMPACTED, CETCD_EFUTUREREV, CETCD_ELEASENOTFOUND, CETCD_ENOSPACE,
 * CETCD_EKEYNOTFOUND, or the common codes. */
CETCD_EXPORT int cetcd_txn_commit(cetcd_client_t *client, const cetcd_txn_t *txn, cetcd_txn_result_t **out);
/* Frees a txn result and all nested results. NULL is a no-op. */
CETCD_EXPORT void cetcd_txn_result_free(cetcd_txn_result_t *r);

#ifdef __cplusplus
}
#endif

#endif
