/* libcetcd concurrency recipes: sessions, distributed mutexes and leader elections,
 * built only on the public KV, watch and lease API and compatible with etcd's clientv3
 * concurrency package (same key layout: "<prefix>/<lease id in hex>"), so C and Go
 * processes can share one lock or election.
 *
 * Session: a lease kept alive automatically. When the lease is lost (revoked, expired,
 * or not renewed in time) the session reports it once: cetcd_session_done() turns true,
 * cetcd_session_fd() becomes readable and the optional on_lost callback runs.
 *
 * Mutex: Lock creates the caller's key (attached to the session's lease) and, unless it
 * is the first-created key under the prefix, waits for the deletion of the one key
 * created just before it (a watch on that single key, never polling), then re-checks.
 * Waiting consumes no revision. TryLock first reads the owner and writes nothing when the
 * lock is held, so a contended TryLock consumes 0 revisions (etcd's costs 2).
 * The key's create revision (cetcd_mutex_rev) is a fencing token: writes made on behalf
 * of the lock holder should be guarded with cetcd_mutex_guard.
 *
 * Election: like a mutex whose key carries a value (the leader's proclamation).
 * Observe reports every leader change, proclamation and "no leader".
 *
 * Ownership and threads: objects returned through `**out` are owned by the caller. A
 * session must outlive the mutexes and elections made from it, and its client must
 * outlive the session. Session functions are thread-safe (except cetcd_session_close /
 * cetcd_session_free, which must be last). A mutex, an election and an observer are used
 * by one thread at a time, except cetcd_mutex_cancel / cetcd_election_cancel, which may
 * be called from any thread. None of these blocking functions may be called from a
 * libcetcd callback (they return CETCD_EINVAL there). All functions return 0 or a negative
 * CETCD_E* code, and never abort on allocation failure (CETCD_ENOMEM). */
#ifndef CETCD_CONCURRENCY_H
#define CETCD_CONCURRENCY_H

#include "cetcd/client.h"
#include "cetcd/kv.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- session ---------------------------------------------------------------------------- */

/* A lease with automatic keep-alive. Opaque. */
typedef struct cetcd_session cetcd_session_t;

/* Called once, on the client's I/O thread, when the session's lease is lost: err is
 * CETCD_ELEASENOTFOUND (revoked or expired on the server) or CETCD_ETIMEOUT (not renewed
 * before its expiry). Must not block nor call blocking libcetcd functions. */
typedef void (*cetcd_session_lost_cb)(void *ctx, int64_t lease_id, int err);

/* Options of cetcd_session_new (NULL = all zero). */
typedef struct cetcd_session_opts {
  int64_t lease;                 /* keep this existing lease alive instead of granting one */
  cetcd_session_lost_cb on_lost; /* may be NULL */
  void *ctx;                     /* passed to on_lost (borrowed; must outlive the session) */
} cetcd_session_opts_t;

/* Grants a lease of ttl seconds (<= 0: 60) -- or adopts opts->lease -- and keeps it
 * alive. Stores the session (owned; cetcd_session_close) in *out. Returns 0,
 * CETCD_ELEASENOTFOUND (opts->lease does not exist), CETCD_ETTLTOOLARGE, CETCD_ENOMEM,
 * CETCD_EINVAL, or the common codes of kv.h. */
CETCD_EXPORT int cetcd_session_new(cetcd_client_t *client, int64_t ttl, const cetcd_session_opts_t *opts,
                                   cetcd_session_t **out);

/* Returns the session's lease id. */
CETCD_EXPORT int64_t cetcd_session_lease(const cetcd_session_t *s);

/* Returns the TTL granted to the session's lease, in seconds. */
CETCD_EXPORT int64_t cetcd_session_ttl(const cetcd_session_t *s);

/* Returns the client the session was created with. */
CETCD_EXPORT cetcd_client_t *cetcd_session_client(const cetcd_session_t *s);

/* Returns true once the lease has been lost (the session is then useless). */
CETCD_EXPORT bool cetcd_session_done(const cetcd_session_t *s);

/* Returns a file descriptor (owned by the session; do not read or close it) that poll
 * reports readable once the session is lost (after on_lost has returned). */
CETCD_EXPORT int cetcd_session_fd(const cetcd_session_t *s);

/* Stops the keep-alive, revokes the lease (deleting every key of the session, so every
 * lock and candidacy it held is released at once) and frees the session. Returns the
 * revoke's result (0 also when the lease was already gone); the session is freed in any
 * case. Not from a callback. NULL is a no-op returning 0. */
CETCD_EXPORT int cetcd_session_close(cetcd_session_t *s);

/* Stops the keep-alive and frees the session WITHOUT revoking the lease: its keys expire
 * after the TTL (like a crashed process). NULL is a no-op. */
CETCD_EXPORT void cetcd_session_free(cetcd_session_t *s);

/* ---- mutex ------------------------------------------------------------------------------ */

/* A distributed mutex. Opaque. */
typedef struct cetcd_mutex cetcd_mutex_t;

/* Creates a mutex on prefix (NUL-terminated, borrowed; keys are "<prefix>/<lease hex>")
 * for session s (borrowed; must outlive the mutex). Writes nothing. Stores it (owned;
 * cetcd_mutex_free) in *out. Returns 0, CETCD_EINVAL or CETCD_ENOMEM. */
CETCD_EXPORT int cetcd_mutex_new(cetcd_session_t *s, const char *prefix, cetcd_mutex_t **out);

/* Frees the mutex without unlocking it (the key stays until unlock by another mutex of
 * the same session, or until the session ends). NULL is a no-op. */
CETCD_EXPORT void cetcd_mutex_free(cetcd_mutex_t *m);

/* Acquires the lock, waiting up to timeout_ms (negative = forever) for the previous
 * holders to release it. Returns 0 (owner), CETCD_ETIMEOUT or CETCD_ECANCELED (my key is
 * deleted again, as etcd does), CETCD_ESESSIONEXPIRED (the session was lost while
 * waiting), or the common codes. Re-locking with the same session is not an error. */
CETCD_EXPORT int cetcd_mutex_lock(cetcd_mutex_t *m, int timeout_ms);

/* Acquires the lock only if it is free, never waiting. Reads the current owner first
 * and returns CETCD_ELOCKED without any write when another session holds it (0
 * revisions); otherwise creates the key, and if someone else won the race in between,
 * deletes it again and returns CETCD_ELOCKED. Returns 0, CETCD_ELOCKED, or the common
 * codes. */
CETCD_EXPORT int cetcd_mutex_trylock(cetcd_mutex_t *m);

/* Releases the lock (deletes the key). Returns 0 (also when not held) or the common
 * codes. */
CETCD_EXPORT int cetcd_mutex_unlock(cetcd_mutex_t *m);

/* Wakes a cetcd_mutex_lock blocked in another thread, which returns CETCD_ECANCELED. A
 * cancel issued while no lock call waits has no effect. Thread-safe. Returns 0. */
CETCD_EXPORT int cetcd_mutex_cancel(cetcd_mutex_t *m);

/* Asks the server whether this mutex holds the lock now: its key still exists with the
 * create revision obtained by the last lock, and it is the first-created key under the
 * prefix (one read-only txn). Stores the answer in *owner. Returns 0 or the common
 * codes. */
CETCD_EXPORT int cetcd_mutex_is_owner(cetcd_mutex_t *m, bool *owner);

/* Returns the mutex's key ("<prefix>/<lease hex>", NUL-terminated, owned by the mutex). */
CETCD_EXPORT const char *cetcd_mutex_key(const cetcd_mutex_t *m);

/* Returns the fencing token: the create revision of the key while locked, else 0. */
CETCD_EXPORT int64_t cetcd_mutex_rev(const cetcd_mutex_t *m);

/* Adds the condition "create_revision(key) == fencing token" to txn, so its then-branch
 * runs only while this mutex still holds the lock. Returns 0, CETCD_EINVAL (not
 * locked) or CETCD_ENOMEM. */
CETCD_EXPORT int cetcd_mutex_guard(const cetcd_mutex_t *m, cetcd_txn_t *txn);

/* ---- election --------------------------------------------------------------------------- */

/* A leader election. Opaque. */
typedef struct cetcd_election cetcd_election_t;

/* The leader of an election, owned by the caller; free with cetcd_leader_free. */
typedef struct cetcd_leader {
  bool has_leader;  /* false: no candidate at all ("no leader") */
  int64_t revision; /* store revision at which this state was observed */
  cetcd_kv_t kv;    /* with has_leader: the leader's key, value (proclamation), create
                       revision (its term's fencing token), mod revision and lease */
} cetcd_leader_t;

/* Frees a leader. NULL is a no-op. */
CETCD_EXPORT void cetcd_leader_free(cetcd_leader_t *l);

/* Creates an election on prefix (NUL-terminated, borrowed) for session s (borrowed; must
 * outlive the election). Writes nothing. Stores it (owned; cetcd_election_free) in *out.
 * Returns 0, CETCD_EINVAL or CETCD_ENOMEM. */
CETCD_EXPORT int cetcd_election_new(cetcd_session_t *s, const char *prefix, cetcd_election_t **out);

/* Creates an election without a session, for cetcd_election_leader and
 * cetcd_election_observe only (the other calls return CETCD_EINVAL). client is borrowed. */
CETCD_EXPORT int cetcd_election_new_observer(cetcd_client_t *client, const char *prefix,
                                             cetcd_election_t **out);

/* Frees the election without resigning. NULL is a no-op. */
CETCD_EXPORT void cetcd_election_free(cetcd_election_t *e);

/* Becomes a candidate with value (vlen bytes, borrowed) and waits up to timeout_ms
 * (negative = forever) until elected. If this session is already a candidate with another
 * value, proclaims value. Returns 0 (leader), CETCD_ETIMEOUT / CETCD_ECANCELED (the
 * candidacy is withdrawn), CETCD_ESESSIONEXPIRED, or the common codes. */
CETCD_EXPORT int cetcd_election_campaign(cetcd_election_t *e, const void *value, size_t vlen, int timeout_ms);

/* Publishes a new value while leader (a put guarded by the leader key's create revision).
 * Returns 0, CETCD_EELECTIONNOTLEADER (not, or no longer, the leader), or the common
 * codes. */
CETCD_EXPORT int cetcd_election_proclaim(cetcd_election_t *e, const void *value, size_t vlen);

/* Gives up leadership or candidacy (a guarded delete of the key). Returns 0 (also when
 * not a candidate) or the common codes. */
CETCD_EXPORT int cetcd_election_resign(cetcd_election_t *e);

/* Wakes a cetcd_election_campaign blocked in another thread (it returns CETCD_ECANCELED).
 * Thread-safe. Returns 0. */
CETCD_EXPORT int cetcd_election_cancel(cetcd_election_t *e);

/* Reads the current leader (the first-created key under the prefix). Stores it (owned)
 * in *out. Returns 0, CETCD_EELECTIONNOLEADER (*out = NULL), or the common codes. */
CETCD_EXPORT int cetcd_election_leader(cetcd_election_t *e, cetcd_leader_t **out);

/* Returns this election's key while a candidate or leader, else NULL (owned). */
CETCD_EXPORT const char *cetcd_election_key(const cetcd_election_t *e);

/* Returns the create revision of this election's key while leader, else 0. */
CETCD_EXPORT int64_t cetcd_election_rev(const cetcd_election_t *e);

/* A stream of leader changes of one election. Opaque; free with cetcd_observer_free. */
typedef struct cetcd_observer cetcd_observer_t;

/* Starts observing e's prefix (e must outlive the observer). The first
 * cetcd_observer_next returns the current state (a leader or "no leader"); every later
 * one returns the next change, in order: new leader, new proclamation by the leader, or
 * "no leader" when the last candidate went away. No change is skipped (changes made in
 * one transaction count as one). Stores the observer (owned) in *out. Returns 0,
 * CETCD_ENOMEM, or the common codes. */
CETCD_EXPORT int cetcd_election_observe(cetcd_election_t *e, cetcd_observer_t **out);

/* Returns a file descriptor (owned by the observer) that poll reports readable when the
 * observer has news to process; cetcd_observer_next(o, 0, ...) may still answer
 * CETCD_ETIMEOUT if the news did not change the leader. */
CETCD_EXPORT int cetcd_observer_fd(const cetcd_observer_t *o);

/* Waits up to timeout_ms (0 = no wait, negative = forever) for the next leader state and
 * stores it (owned) in *out. Returns 0, CETCD_ETIMEOUT, CETCD_ENOMEM, or the common codes
 * (the observer re-synchronizes by itself after a compacted watch). */
CETCD_EXPORT int cetcd_observer_next(cetcd_observer_t *o, int timeout_ms, cetcd_leader_t **out);

/* Stops observing and frees the observer. NULL is a no-op. */
CETCD_EXPORT void cetcd_observer_free(cetcd_observer_t *o);

#ifdef __cplusplus
}
#endif

#endif
