/* Member and cluster ids derived exactly like etcd 3.4 (etcdserver/api/membership):
 *   member id  = first 8 bytes, big-endian, of sha1(sorted peer URLs concatenated
 *                + cluster token [+ decimal unix time, for members added at runtime])
 *   cluster id = first 8 bytes, big-endian, of sha1(the sorted member ids, each as
 *                8 big-endian bytes, concatenated)
 * plus parsing and checking of --initial-cluster ("n1=http://a:2380,n2=http://b:2380"). */
#ifndef CETCD_SERVER_IDS_H
#define CETCD_SERVER_IDS_H

#include <stddef.h>
#include <stdint.h>

#include "server/config.h"

/* One member of the initial cluster. Strings are owned by the enclosing ids_cluster_t. */
typedef struct ids_member {
  char *name;
  char **peer_urls; /* normalized, sorted, de-duplicated */
  size_t n_peer_urls;
  uint64_t id;
} ids_member_t;

/* The initial cluster: members in order of first appearance, and the cluster id. */
typedef struct ids_cluster {
  ids_member_t *members;
  size_t n_members;
  uint64_t cluster_id;
} ids_cluster_t;

/* Member id from peer URLs (normalized strings; sorted internally, input untouched), the
 * cluster token ("" for members added at runtime, as etcd's MemberAdd does) and optionally
 * a unix time in seconds (NULL at bootstrap). */
uint64_t ids_member_id(char *const *peer_urls, size_t n, const char *token, const int64_t *unix_time);

/* Cluster id from member ids (any order; sorted internally, input untouched). */
uint64_t ids_cluster_id(const uint64_t *member_ids, size_t n);

/* Parses an --initial-cluster string with etcd's rules (types.NewURLsMap): entries are
 * comma-separated name=url, a name may repeat to give several URLs, empty entries are
 * skipped. Computes member ids with token and the cluster id. Fails on bad URLs, a URL
 * used twice ("initial cluster ... has duplicate url") or colliding ids. Returns 0 or
 * CETCD_EINVAL with a message in err; *out is owned by the caller (ids_cluster_free). */
int ids_parse_initial_cluster(const char *s, const char *token, ids_cluster_t *out, char *err, size_t errlen);

/* Finds a member by name; returns a borrowed pointer or NULL. */
const ids_member_t *ids_cluster_find(const ids_cluster_t *c, const char *name);

/* etcd's bootstrap checks (ServerConfig.VerifyBootstrap / VerifyJoinExisting): name must be
 * in the cluster and, unless existing, its URLs must equal the advertised peer URLs (host
 * names are resolved when the strings differ). Returns 0 or CETCD_EINVAL with etcd's
 * message ("couldn't find local name ...", "--initial-cluster has ... but missing from
 * --initial-advertise-peer-urls=..."). ap_urls are borrowed. */
int ids_verify_bootstrap(const ids_cluster_t *c, const char *name, char *const *ap_urls, size_t n_ap,
                         int existing, char *err, size_t errlen);

/* Frees *c's contents and zeroes it. */
void ids_cluster_free(ids_cluster_t *c);

/* Parses, verifies and derives this member's and the cluster's ids from cfg
 * (--initial-cluster, --name, --initial-advertise-peer-urls, --initial-cluster-token,
 * --initial-cluster-state). Returns 0, or CETCD_EINVAL with the message in err. */
int ids_from_config(const cetcd_config_t *cfg, uint64_t *member_id, uint64_t *cluster_id, char *err,
                    size_t errlen);

/* ids_from_config that logs the error (with LOGE) instead of returning it in a buffer. */
int ids_for_config(const cetcd_config_t *cfg, uint64_t *member_id, uint64_t *cluster_id);

/* Formats an id like etcd's types.ID.String(): lower-case hex without leading zeros. out
 * must hold 17 bytes. Returns out. */
char *ids_format(uint64_t id, char out[17]);

/* Parses a hex id as printed by etcd/etcdctl (no 0x prefix). Returns 0 or CETCD_EINVAL. */
int ids_parse(const char *s, uint64_t *id);

#endif
