/* Lease requests that only the leader can answer, from any member of a cluster.
 *
 * Keep-alives (renewals) and TimeToLive do not go through the raft log: only the leader's
 * lessor is primary and knows when a lease expires. A member that is not the primary asks
 * the leader over the peer transport (a LeaseForward message on the peer's lease stream)
 * and answers its client with the leader's TTL, as etcd's followers do over HTTP. While no
 * leader is known, or the leader has not become primary yet (it promotes its lessor once it
 * applied its first entry of the term), the request waits and is retried; after the request
 * timeout it fails with CETCD_ENOLEADER (no leader known then) or CETCD_ETIMEOUT (etcd's
 * ErrNoLeader and ErrTimeout).
 *
 * Everything runs on the loop thread. The leader's side answers forwarded requests from its
 * own lessor (lease_forward_on_message). */
#ifndef CETCD_SERVER_LEASE_FORWARD_H
#define CETCD_SERVER_LEASE_FORWARD_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"

typedef struct lessor lessor_t;
typedef struct lease_fwd lease_fwd_t;

/* An answer: err is 0, CETCD_ELEASENOTFOUND, CETCD_ENOLEADER, CETCD_ETIMEOUT or
 * CETCD_ESTOPPED. For a renewal ttl is the granted TTL; for TimeToLive ttl is the remaining
 * whole seconds, granted_ttl the granted TTL and keys (in the arena the caller passed) the
 * attached keys when asked for. Borrowed during the callback. */
typedef struct lease_fwd_answer {
  int err;
  int64_t ttl;
  int64_t granted_ttl;
  ProtobufCBinaryData *keys;
  size_t n_keys;
} lease_fwd_answer_t;

typedef void (*lease_fwd_cb)(void *ctx, const lease_fwd_answer_t *ans);

/* What the forwarder needs from the raft node. */
typedef struct lease_fwd_env {
  uint64_t (*leader)(void *ctx);                                         /* 0 = none known */
  void (*send)(void *ctx, uint64_t to, const uint8_t *data, size_t len); /* a LeaseForward */
  uint64_t (*now_ms)(void *ctx);                                         /* monotonic */
  void *ctx;
} lease_fwd_env_t;

/* Creates the forwarder of member self_id over lessor le (borrowed). Requests not answered
 * within timeout_ms fail; unanswered forwards are sent again every retry_ms. env is copied. */
lease_fwd_t *lease_forward_new(uint64_t self_id, lessor_t *le, uint64_t timeout_ms, uint64_t retry_ms,
                               const lease_fwd_env_t *env);
/* Fails every waiting request with CETCD_ESTOPPED and frees the forwarder. NULL is a no-op. */
void lease_forward_free(lease_fwd_t *lf);

/* True when this member's lessor is the primary: requests are answered before the call
 * returns. */
bool lease_forward_can_answer(lease_fwd_t *lf);
/* Renews lease id. cb runs before this returns when this member is the primary (no
 * allocation), else later. */
void lease_forward_renew(lease_fwd_t *lf, int64_t id, lease_fwd_cb cb, void *ctx);
/* Asks for lease id's remaining TTL (and keys, copied into arena a, which must outlive the
 * callback). cb runs now on the primary, else later. */
void lease_forward_ttl(lease_fwd_t *lf, int64_t id, bool keys, arena_t *a, lease_fwd_cb cb, void *ctx);

/* A LeaseForward arrived from a peer (a decoded Cetcdraftpb__LeaseForward, borrowed): a
 * request is answered from this member's lessor (or refused when it is not primary); an
 * answer completes the waiting request. */
void lease_forward_on_message(lease_fwd_t *lf, const ProtobufCMessage *msg);
/* The leader changed or this member's lessor became primary: waiting requests go out now. */
void lease_forward_kick(lease_fwd_t *lf);
/* Periodic (every raft tick): resends unanswered forwards and fails expired requests. */
void lease_forward_tick(lease_fwd_t *lf);
/* Requests waiting for an answer (for tests and metrics). */
size_t lease_forward_pending(const lease_fwd_t *lf);

#endif
