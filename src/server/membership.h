/* The cluster's membership as applied from the log (etcd's membership.RaftCluster): every
 * member with its id, name, peer and client URLs and learner flag, and the ids of removed
 * members (never reused). Persisted in the backend's `members` bucket (key: the id in hex as
 * etcd prints it, value: etcd's JSON) and `members_removed` (key: the id, value "removed"),
 * inside the apply batch, so the membership always matches the consistent index.
 *
 * Loop thread only. Pointers returned are borrowed until the next change. */
#ifndef CETCD_SERVER_MEMBERSHIP_H
#define CETCD_SERVER_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "rpc.pb-c.h"

typedef struct mvcc_store mvcc_store_t;

/* One member. Strings are owned by the membership. */
typedef struct member {
  uint64_t id;
  char *name; /* "" until the member published itself */
  char **peer_urls;
  size_t n_peer_urls;
  char **client_urls;
  size_t n_client_urls;
  bool learner;
} member_t;

typedef struct membership membership_t;

/* Loads the membership from mvcc's buckets (empty for a new data dir). *out is owned by the
 * caller (membership_free). Returns 0 or CETCD_ECORRUPT (a record that does not parse). */
int membership_open(mvcc_store_t *mvcc, membership_t **out);
/* Frees ms (NULL is fine). */
void membership_free(membership_t *ms);

/* Number of members, and the i-th in id order (etcd's MembersByID). */
size_t membership_count(const membership_t *ms);
const member_t *membership_at(const membership_t *ms, size_t i);
/* The member with id, or NULL. */
const member_t *membership_find(const membership_t *ms, uint64_t id);
/* True if id was removed from the cluster. */
bool membership_is_removed(const membership_t *ms, uint64_t id);
/* Number of learners. */
size_t membership_learners(const membership_t *ms);

/* Adds or replaces member m (copied) and persists it. Returns 0 or a backend code. */
int membership_put(membership_t *ms, const member_t *m);
/* Removes id (absent is fine) and records it as removed. Returns 0 or a backend code. */
int membership_remove(membership_t *ms, uint64_t id);
/* Sets a member's name and client URLs (a removed or unknown member is skipped, as etcd
 * does). Returns 0 or a backend code. */
int membership_set_attrs(membership_t *ms, uint64_t id, const char *name, char *const *client_urls, size_t n);
/* Sets a member's peer URLs (unknown: skipped). Returns 0 or a backend code. */
int membership_set_peer_urls(membership_t *ms, uint64_t id, char *const *urls, size_t n);
/* Clears a member's learner flag (unknown: skipped). Returns 0 or a backend code. */
int membership_promote(membership_t *ms, uint64_t id);

/* True if any member other than except uses one of urls as a peer URL. */
bool membership_peer_url_used(const membership_t *ms, char *const *urls, size_t n, uint64_t except);

/* etcd's JSON of a member (the `members` bucket value), appended to out. */
void membership_member_json(const member_t *m, buf_t *out);
/* Parses a member from etcd's JSON into m, whose strings live in a. Returns 0 or
 * CETCD_EINVAL. */
int membership_member_parse(const uint8_t *json, size_t len, arena_t *a, member_t *m);

/* Fills an etcdserverpb.Member from m (strings borrowed from m). */
void membership_to_pb(const member_t *m, Etcdserverpb__Member *out);
/* Fills out with every member in id order (array and messages in a, strings borrowed). */
void membership_list_pb(const membership_t *ms, arena_t *a, Etcdserverpb__Member ***out, size_t *n);

#endif
