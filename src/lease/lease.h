/* lease: the lessor (etcd's lease package). Leases map an id to a TTL and a set of keys;
 * the leader keeps an expiry time per lease in a min-heap and hands expired leases to the
 * server's expiry driver (server/lease_expiry.c), which proposes their revokes; applying
 * grant/revoke/checkpoint is deterministic and never reads the clock's verdict, only stores state.
 *
 * Time comes from an injected clock (monotonic milliseconds), so expiry is testable.
 * Everything runs on the loop thread. Leases are persisted in the backend's `lease` bucket
 * in etcd's format (8-byte big-endian id → leasepb.Lease) inside the apply batch. */
#ifndef CETCD_LEASE_H
#define CETCD_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "rpc.pb-c.h"

typedef struct lessor lessor_t;
typedef struct mvcc_store mvcc_store_t;

/* The largest TTL a lease may be granted, in seconds (etcd's MaxLeaseTTL). */
#define LEASE_MAX_TTL 9000000000LL
/* Revokes proposed per second at most (etcd's leaseRevokeRate). */
#define LEASE_REVOKE_RATE 1000

/* A monotonic clock in milliseconds. */
typedef uint64_t (*lease_clock_fn)(void *ctx);

/* Lessor options. Zero-initialize. */
typedef struct lease_opts {
  int64_t min_ttl;      /* seconds; smaller TTLs are raised to it (0 = no minimum) */
  lease_clock_fn clock; /* NULL = CLOCK_MONOTONIC */
  void *clock_ctx;      /* passed to clock */
  uint64_t retry_ms;    /* re-propose a revoke not applied after this long; 0 = 3000 */
} lease_opts_t;

/* What lease_lookup reports about a lease. */
typedef struct lease_info {
  int64_t ttl_remaining; /* whole seconds left, truncated like etcd (may be 0 or less) */
  int64_t granted_ttl;   /* the TTL in force (after the minimum was applied) */
  size_t n_keys;         /* keys attached */
} lease_info_t;

/* etcd's minimum lease TTL in seconds: ceil((3 * electionTicks / 2) * heartbeat), where
 * electionTicks = election_ms / heartbeat_ms (integer division). 2 with the defaults. */
int64_t lease_min_ttl(uint32_t election_ms, uint32_t heartbeat_ms);

/* Creates an empty lessor (opts copied; NULL = defaults). It is not primary until
 * lease_promote, and has no store until lease_restore / lease_set_store. Owned by the
 * caller (lease_free). Never returns NULL (aborts on allocation failure). */
lessor_t *lease_new(const lease_opts_t *opts);
/* Frees the lessor and every lease (the expiry driver must have been stopped). */
void lease_free(lessor_t *le);
/* Sets the store (borrowed) that persists leases and from which revokes delete keys. */
void lease_set_store(lessor_t *le, mvcc_store_t *s);
/* Loads the leases persisted in s's `lease` bucket (TTLs below the minimum are raised) and
 * sets s as the store. Keys attached before (by mvcc_open's lease_attach replay) stay with
 * their lease; keys attached to a lease that is not persisted are dropped with a warning.
 * Restored leases never expire until lease_promote. Returns 0, CETCD_ECORRUPT or a
 * backend code. */
int lease_restore(lessor_t *le, mvcc_store_t *s);
/* Forgets every lease and the store, before the backend is replaced by a raft snapshot:
 * then the new backend's keys attach again (mvcc's lease_attach hook) and lease_restore
 * loads its leases. The expiry timer and options stay. */
void lease_reset(lessor_t *le);
/* Makes the lessor primary (the leader): every lease expires its remaining TTL plus
 * extend_ms from now (etcd's Promote; remaining = the full TTL unless checkpointed). With
 * LEASE_REVOKE_RATE leases or more, expiries that pile up in one second are pushed back so
 * that at most 3/4 of the revoke rate fall in any second. */
void lease_promote(lessor_t *le, uint64_t extend_ms);
/* Stops expiring (etcd's Demote): every lease's expiry becomes "forever". */
void lease_demote(lessor_t *le);
/* True while primary. */
bool lease_is_primary(const lessor_t *le);
/* The lessor's clock, in milliseconds. */
uint64_t lease_now(const lessor_t *le);

/* ---- apply (deterministic; called inside the apply batch) ---- */

/* Grants lease id (!= 0) with ttl seconds. *granted_ttl (optional) gets the effective TTL
 * (raised to the minimum). Persists the lease in the open batch. Returns 0,
 * CETCD_ELEASENOTFOUND (id 0), CETCD_ETTLTOOLARGE, CETCD_ELEASEEXISTS, or a backend code. */
int lease_grant(lessor_t *le, int64_t id, int64_t ttl, int64_t *granted_ttl);
/* Revokes lease id: deletes its attached keys (sorted) in one revision, then the lease and
 * its persisted record. Returns 0, CETCD_ELEASENOTFOUND, or a backend code. */
int lease_revoke(lessor_t *le, int64_t id);
/* Records a checkpointed remaining TTL (seconds; 0 clears it) for lease id; unknown ids
 * are ignored. Returns 0. */
int lease_checkpoint(lessor_t *le, int64_t id, int64_t remaining_ttl);

/* Applies a logged LeaseGrant (req->id chosen by the proposer): *resp (arena-owned) gets
 * the id, the effective TTL and a header whose revision is the store's. Returns what
 * lease_grant returns. */
int lease_apply_grant(lessor_t *le, const Etcdserverpb__LeaseGrantRequest *req, arena_t *arena,
                      Etcdserverpb__LeaseGrantResponse **resp);
/* Applies a logged LeaseRevoke: *resp (arena-owned) has a header with the revision after
 * the keys were deleted. Returns what lease_revoke returns. */
int lease_apply_revoke(lessor_t *le, const Etcdserverpb__LeaseRevokeRequest *req, arena_t *arena,
                       Etcdserverpb__LeaseRevokeResponse **resp);
/* Applies a logged LeaseCheckpointRequest (every checkpoint in order). Returns 0. */
int lease_apply_checkpoint(lessor_t *le, const Etcdserverpb__LeaseCheckpointRequest *req);

/* ---- mvcc hooks (key ↔ lease bookkeeping) ---- */

/* True if lease id is granted (placeholders from the open-time replay do not count). */
bool lease_exists(const lessor_t *le, int64_t id);
/* Attaches key (copied) to lease id. An unknown id gets a placeholder that lease_restore
 * resolves (this happens only while mvcc_open replays attachments); otherwise ignored. */
void lease_attach(lessor_t *le, int64_t id, const uint8_t *key, size_t klen);
/* Detaches key from lease id (no-op if either is unknown). */
void lease_detach(lessor_t *le, int64_t id, const uint8_t *key, size_t klen);

/* ---- leader-side queries (not logged) ---- */

/* Renews lease id: its expiry becomes now + TTL. O(log n), no allocation. *ttl gets the
 * granted TTL. Returns 0, CETCD_ELEASENOTFOUND (unknown or already expired), or
 * CETCD_ENOLEADER when not primary. */
int lease_renew(lessor_t *le, int64_t id, int64_t *ttl);
/* Fills *info for lease id. Returns 0 or CETCD_ELEASENOTFOUND. */
int lease_lookup(const lessor_t *le, int64_t id, lease_info_t *info);
/* Copies lease id's keys, sorted, into arena a: *keys gets an array of *n entries.
 * Returns 0 or CETCD_ELEASENOTFOUND. */
int lease_keys(const lessor_t *le, int64_t id, arena_t *a, ProtobufCBinaryData **keys, size_t *n);
/* Number of granted leases. */
size_t lease_count(const lessor_t *le);
/* Writes up to max granted lease ids (in no particular order) to ids; returns how many. */
size_t lease_list(const lessor_t *le, int64_t *ids, size_t max);

/* ---- expiry (primary only) ---- */

/* Finds up to max leases whose expiry has passed and whose revoke is not in flight, marks
 * them in flight (they are offered again after retry_ms if still present), writes their
 * ids to ids and returns how many. Returns 0 when not primary. */
size_t lease_find_expired(lessor_t *le, int64_t *ids, size_t max);
/* A proposed revoke of id failed: it may be proposed again once its retry time passes. */
void lease_revoke_failed(lessor_t *le, int64_t id);
/* Milliseconds until the earliest expiry (0 if one is due, UINT64_MAX if none). */
uint64_t lease_next_expiry_in(const lessor_t *le);

/* ---- ids ---- */

/* etcd's request id generator (idutil): 2 bytes of member id, then 5 bytes of unix
 * milliseconds and a 1-byte counter that carries into the time bits. */
typedef struct lease_idgen {
  uint64_t prefix;
  uint64_t suffix;
} lease_idgen_t;

/* Seeds g from member_id's low 16 bits and the wall clock in unix milliseconds. */
void lease_idgen_init(lease_idgen_t *g, uint64_t member_id, uint64_t unix_ms);
/* The next id as a positive int64 (never 0), as etcd's LeaseGrant picks one. */
int64_t lease_idgen_next(lease_idgen_t *g);

#endif
