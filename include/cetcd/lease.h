/* libcetcd leases: grant, revoke, time-to-live, list, and automatic keep-alive.
 *
 * Automatic keep-alives of one client share a single LeaseKeepAlive stream, run on the
 * I/O thread: each lease is renewed every TTL/3 (at least every 500 ms). A lease is
 * reported lost (once, then the keep-alive stops) when a renewal answers TTL <= 0 (the
 * lease is gone: revoked or expired) or when no renewal succeeded before the last known
 * expiry time. The stream is reopened after connection failures. Blocking calls carry the
 * common codes of kv.h. */
#ifndef CETCD_LEASE_H
#define CETCD_LEASE_H

#include "cetcd/client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Grants a lease of ttl seconds. id 0 lets the server choose the id. id_out and ttl_out
 * (may be NULL) receive the granted id and TTL. Returns 0, CETCD_ELEASEEXISTS,
 * CETCD_ETTLTOOLARGE, CETCD_ENOSPACE, or the common codes. */
CETCD_EXPORT int cetcd_lease_grant(cetcd_client_t *client, int64_t ttl, int64_t id, int64_t *id_out,
                                   int64_t *ttl_out);

/* Revokes lease id, deleting every key attached to it. Returns 0, CETCD_ELEASENOTFOUND,
 * or the common codes. */
CETCD_EXPORT int cetcd_lease_revoke(cetcd_client_t *client, int64_t id);

/* Information about one lease, owned by the caller; free with cetcd_lease_ttl_free. */
typedef struct cetcd_lease_ttl {
  cetcd_header_t header;
  int64_t id;
  int64_t ttl;         /* remaining seconds; -1 when the lease does not exist */
  int64_t granted_ttl; /* TTL at grant or last renewal */
  char **keys;         /* attached keys when asked for (NUL-terminated copies) */
  size_t *key_lens;
  size_t n_keys;
} cetcd_lease_ttl_t;

/* Queries lease id; with_keys also lists its keys. Stores the result in *out. An unknown
 * lease is not an error (ttl -1, as etcd answers). Returns 0 or the common codes. */
CETCD_EXPORT int cetcd_lease_timetolive(cetcd_client_t *client, int64_t id, bool with_keys,
                                        cetcd_lease_ttl_t **out);
/* Frees a time-to-live result. NULL is a no-op. */
CETCD_EXPORT void cetcd_lease_ttl_free(cetcd_lease_ttl_t *r);

/* Lists all lease ids: stores an owned array (free with cetcd_free; NULL when empty) in
 * *ids and its length in *n. Returns 0 or the common codes. */
CETCD_EXPORT int cetcd_lease_leases(cetcd_client_t *client, int64_t **ids, size_t *n);

/* Renews lease id once over a short-lived stream. ttl_out (may be NULL) receives the new
 * TTL. Returns 0, CETCD_ELEASENOTFOUND (the server answered TTL <= 0), or the common
 * codes. */
CETCD_EXPORT int cetcd_lease_keepalive_once(cetcd_client_t *client, int64_t id, int64_t *ttl_out);

/* An automatic keep-alive. Opaque; stop and free with cetcd_lease_keepalive_stop. */
typedef struct cetcd_keepalive cetcd_keepalive_t;

/* Called once on the I/O thread when the lease is lost: err is CETCD_ELEASENOTFOUND (the
 * server answered TTL <= 0) or CETCD_ETIMEOUT (not renewed before it expired). Must not
 * block; may not free the keep-alive (call cetcd_lease_keepalive_stop from another
 * thread later). */
typedef void (*cetcd_keepalive_lost_cb)(void *ctx, int64_t lease_id, int err);

/* Starts renewing lease id automatically. Sends a first renewal right away and waits for
 * its answer (bounded by the request timeout). on_lost (may be NULL) gets ctx. Stores
 * the handle (owned) in *out. Returns 0, CETCD_ELEASENOTFOUND, or the common codes. */
CETCD_EXPORT int cetcd_lease_keepalive_start(cetcd_client_t *client, int64_t id,
                                             cetcd_keepalive_lost_cb on_lost, void *ctx,
                                             cetcd_keepalive_t **out);

/* Returns the TTL of the last successful renewal (0 once the lease is lost). */
CETCD_EXPORT int64_t cetcd_lease_keepalive_ttl(const cetcd_keepalive_t *ka);

/* Returns true once the lease has been reported lost. */
CETCD_EXPORT bool cetcd_lease_keepalive_lost(const cetcd_keepalive_t *ka);

/* Stops renewing (does not revoke the lease) and frees the handle. When it returns the
 * on_lost callback is not running and will not run. Must not be called from a callback.
 * NULL is a no-op. */
CETCD_EXPORT void cetcd_lease_keepalive_stop(cetcd_keepalive_t *ka);

#ifdef __cplusplus
}
#endif

#endif
