/* libcetcd internals shared by the files of src/client (not installed). */
#ifndef CETCD_CLIENT_INT_H
#define CETCD_CLIENT_INT_H

#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cetcd/cetcd.h"
#include "client/transport/grpc_client.h"
#include "kv.pb-c.h"
#include "rpc.pb-c.h"

/* ---- allocation (client_alloc.c) ------------------------------------------------------ */

/* malloc/calloc/realloc/free used by the whole library; they return NULL on failure (and
 * when the test hook below injects one). */
void *cc_malloc(size_t n);
void *cc_calloc(size_t count, size_t size);
void *cc_realloc(void *p, size_t n);
void cc_free(void *p);
/* Copies n bytes into a new NUL-terminated buffer (NUL not counted). NULL on failure. */
char *cc_memdup(const void *p, size_t n);
/* protobuf-c allocator over cc_malloc/cc_free. */
extern ProtobufCAllocator cc_pb_alloc;
/* True (once) if a cc_pb_alloc allocation failed on this thread since the last call:
 * tells an unpack failure from lack of memory apart from a malformed message. */
bool cc_pb_oom_take(void);

/* Test hooks (exported from the static library only; the shared library hides them).
 * cetcd__alloc_fail_at(n): make the n-th (1-based) allocation from now on made by the
 * calling thread fail (0 disables). cetcd__alloc_count(): allocations made by the calling
 * thread since the last cetcd__alloc_fail_at. cetcd__alloc_failed(): whether the
 * injected failure has happened. */
void cetcd__alloc_fail_at(long n);
long cetcd__alloc_count(void);
bool cetcd__alloc_failed(void);

/* ---- client ---------------------------------------------------------------------------- */

typedef struct ka_mgr ka_mgr_t;

struct cetcd_client {
  grpc_client_t *gc;
  uint64_t request_timeout_ms; /* 0 = none */
  ka_mgr_t *ka;                /* keep-alive manager (I/O thread), created on demand */
  pthread_mutex_t ka_mu;       /* guards creation of ka */
  struct grpc_tls_ctx *tls; /* TLS settings, or NULL */
  /* authentication (auth.c): credentials, or NULL when none were given */
  char *user, *password;
  pthread_mutex_t auth_mu; /* serializes token refreshes */
  bool authed;             /* a token was obtained (or the server has auth disabled); under auth_mu */
  uint64_t token_gen;      /* bumped by every refresh; under auth_mu */
};

/* ---- authentication (auth.c) ------------------------------------------------------------- */

/* Gets a token with the client's credentials unless a refresh newer than gen already
 * happened (gen = the token generation the failed call used; UINT64_MAX forces one).
 * Returns 0 (also when the server has auth disabled) or a CETCD_E* code (recorded). */
int cc_auth_refresh(cetcd_client_t *c, uint64_t gen);
/* Gets the first token of a client with credentials that has none yet (lazy connect);
 * blocking, so not on the I/O thread. Returns 0 or a recorded code. */
int cc_auth_first(cetcd_client_t *c);
/* The current token generation (for cc_auth_refresh after a token error). */
uint64_t cc_auth_gen(cetcd_client_t *c);
/* True when msg is one of the errors after which clientv3 gets a new token and retries. */
bool cc_auth_token_error(const char *msg);

/* Records an error for cetcd_client_last_error and returns code. msg may be NULL. */
int cc_error(int code, int grpc_status, const char *msg);
/* Maps a gRPC status and etcd message to a CETCD_E* code. */
int cc_map_status(int status, const char *msg);

/* One unary call: packs req, sends it to path over channel (-1 = failover), retries as
 * described in client.h (idempotent: read-only), unpacks the answer with resp_desc into
 * *resp (free with protobuf_c_message_free_unpacked(*resp, &cc_pb_alloc)). timeout_ms 0
 * uses the client's request timeout. Returns 0 or a CETCD_E* code (error recorded). */
int cc_unary(cetcd_client_t *c, const char *path, int channel, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *resp_desc, bool idempotent, uint64_t timeout_ms,
             ProtobufCMessage **resp);
/* Resolves an endpoint argument to a channel (-1 for NULL). Returns CETCD_EINVAL when not
 * one of the client's endpoints. */
int cc_channel_for(cetcd_client_t *c, const char *endpoint, int *channel);

/* Copies a header (NULL-safe). */
void cc_header(cetcd_header_t *dst, const Etcdserverpb__ResponseHeader *src);
/* Deep-copies a KeyValue into dst. Returns 0 or CETCD_ENOMEM (dst then holds nothing). */
int cc_kv_copy(cetcd_kv_t *dst, const Mvccpb__KeyValue *src);
/* Frees the strings of a kv (not the struct). */
void cc_kv_clear(cetcd_kv_t *kv);
/* Allocates *out as a deep copy of src (NULL src: *out = NULL). 0 or CETCD_ENOMEM. */
int cc_kv_dup(cetcd_kv_t **out, const Mvccpb__KeyValue *src);
/* Frees an array of n kvs and their strings. */
void cc_kvs_free(cetcd_kv_t *kvs, size_t n);
/* Copies an array of KeyValues. 0 or CETCD_ENOMEM. */
int cc_kvs_copy(cetcd_kv_t **out, size_t *n_out, Mvccpb__KeyValue **src, size_t n);

/* Computes the [key, range_end) bytes for range options: end_buf receives an owned
 * buffer (or NULL) that backs *end. Key becomes "\0" for an empty key with prefix or
 * from_key. Returns 0, CETCD_EINVAL or CETCD_ENOMEM. */
int cc_range(const void *key, size_t klen, const void *range_end, size_t range_end_len, bool prefix,
             bool from_key, ProtobufCBinaryData *k, ProtobufCBinaryData *end, uint8_t **end_buf);

/* Conversions of KV responses into public results (kv.c), used by txn. */
int cc_get_result(const Etcdserverpb__RangeResponse *r, cetcd_get_result_t **out);
int cc_put_result(const Etcdserverpb__PutResponse *r, cetcd_put_result_t **out);
int cc_delete_result(const Etcdserverpb__DeleteRangeResponse *r, cetcd_delete_result_t **out);

/* Stops the keep-alive manager (client free). */
void cc_ka_shutdown(cetcd_client_t *c);

#endif
