/* libcetcd maintenance and cluster calls: status, member list, alarms, defragment,
 * hashkv and snapshot. `endpoint` parameters name one of the client's endpoints (as given
 * to cetcd_client_new, with or without "http://"); NULL means the current connection.
 * Blocking calls carry the common codes of kv.h; an endpoint not in the client's list
 * gives CETCD_EINVAL. */
#ifndef CETCD_MAINTENANCE_H
#define CETCD_MAINTENANCE_H

#include "cetcd/client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Status of one member, owned by the caller; free with cetcd_status_free. */
typedef struct cetcd_status {
  cetcd_header_t header;
  char *version; /* server version, e.g. "3.4.23" */
  int64_t db_size;
  int64_t db_size_in_use;
  uint64_t leader;
  uint64_t raft_index;
  uint64_t raft_term;
  uint64_t raft_applied_index;
  char **errors; /* e.g. "memberID:... alarm:NOSPACE" */
  size_t n_errors;
  bool is_learner;
} cetcd_status_t;

/* Asks endpoint (or the current one) for its status. Returns 0 or the common codes. */
CETCD_EXPORT int cetcd_status(cetcd_client_t *client, const char *endpoint, cetcd_status_t **out);
/* Frees a status. NULL is a no-op. */
CETCD_EXPORT void cetcd_status_free(cetcd_status_t *s);

/* Asks endpoint (or the current connection), which must be the leader, to hand leadership
 * to member target; returns once target leads. Returns 0 or the common codes (the server's
 * "etcdserver: not leader" and "etcdserver: bad leader transferee" come as CETCD_EGRPC with
 * the message in cetcd_client_last_error). */
CETCD_EXPORT int cetcd_move_leader(cetcd_client_t *client, const char *endpoint, uint64_t target);

/* One cluster member. Strings are NUL-terminated, owned by the member list. */
typedef struct cetcd_member {
  uint64_t id;
  char *name;
  char **peer_urls;
  size_t n_peer_urls;
  char **client_urls;
  size_t n_client_urls;
  bool is_learner;
} cetcd_member_t;

/* Result of cetcd_member_list, owned by the caller; free with cetcd_member_list_free. */
typedef struct cetcd_member_list {
  cetcd_header_t header;
  cetcd_member_t *members;
  size_t n_members;
} cetcd_member_list_t;

/* Lists the cluster's members. Returns 0 or the common codes. */
CETCD_EXPORT int cetcd_member_list(cetcd_client_t *client, cetcd_member_list_t **out);
/* Frees a member list. NULL is a no-op. */
CETCD_EXPORT void cetcd_member_list_free(cetcd_member_list_t *l);

typedef enum cetcd_alarm_type {
  CETCD_ALARM_NONE = 0,
  CETCD_ALARM_NOSPACE = 1,
  CETCD_ALARM_CORRUPT = 2
} cetcd_alarm_type_t;

/* One raised alarm. */
typedef struct cetcd_alarm {
  uint64_t member_id;
  cetcd_alarm_type_t alarm;
} cetcd_alarm_t;

/* Lists raised alarms: stores an owned array (free with cetcd_free; NULL when none) in
 * *alarms and its length in *n. Returns 0 or the common codes. */
CETCD_EXPORT int cetcd_alarm_list(cetcd_client_t *client, cetcd_alarm_t **alarms, size_t *n);

/* Disarms one alarm, or every raised alarm when alarm is NULL (as etcdctl alarm disarm
 * does). Returns 0 or the common codes. */
CETCD_EXPORT int cetcd_alarm_disarm(cetcd_client_t *client, const cetcd_alarm_t *alarm);

/* Defragments the backend of endpoint (or the current one). Uses a deadline of at least
 * 60 s. Returns 0 or the common codes. */
CETCD_EXPORT int cetcd_defrag(cetcd_client_t *client, const char *endpoint);

/* Hash of the key-value store of endpoint (or the current one) up to revision rev
 * (0 = latest). Any out pointer may be NULL. Returns 0, CETCD_ECOMPACTED,
 * CETCD_EFUTUREREV, or the common codes. */
CETCD_EXPORT int cetcd_hashkv(cetcd_client_t *client, const char *endpoint, int64_t rev, uint32_t *hash,
                              int64_t *compact_revision, cetcd_header_t *header);

/* Receives one chunk of a snapshot on the calling thread (data borrowed for the call).
 * Return 0 to continue or nonzero to abort the snapshot. */
typedef int (*cetcd_snapshot_write_cb)(void *ctx, const void *data, size_t len);

/* Streams a backend snapshot from the current endpoint, calling write_cb (on the calling
 * thread) for every chunk in order. No overall deadline applies; the stream fails if the
 * server stays silent for request_timeout_ms. Returns 0 when the whole snapshot was
 * written, CETCD_ECANCELED if write_cb aborted, or the common codes. */
CETCD_EXPORT int cetcd_snapshot(cetcd_client_t *client, cetcd_snapshot_write_cb write_cb, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
