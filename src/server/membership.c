/* The applied membership and its buckets. See membership.h. */
#include "server/membership.h"

#include <stdlib.h>
#include <string.h>

#include "base/pbjson.h"
#include "base/alloc.h"
#include "cetcd/errors.h"
#include "internal.pb-c.h"
#include "mvcc/mvcc.h"
#include "server/ids.h"

struct membership {
  mvcc_store_t *mvcc;
  member_t *m; /* sorted by id */
  size_t n, cap;
  uint64_t *removed;
  size_t n_removed, cap_removed;
};

/* ---- strings ---------------------------------------------------------------------------- */

/* Copies n strings into a new owned array. */
static char **strv_dup(char *const *v, size_t n) {
  char **out = xcalloc(n ? n : 1, sizeof(char *));
  for (size_t i = 0; i < n; i++) out[i] = xstrdup(v[i]);
  return out;
}

/* Frees an owned string array. */
static void strv_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* Frees what m owns. */
static void member_clear(member_t *m) {
  free(m->name);
  strv_free(m->peer_urls, m->n_peer_urls);
  strv_free(m->client_urls, m->n_client_urls);
  memset(m, 0, sizeof(*m));
}

/* ---- JSON (etcd's json.Marshal of membership.Member) ---------------------------------- */

/* Appends a JSON array of strings. */
static void json_strv(buf_t *b, char *const *v, size_t n) {
  buf_append(b, "[", 1);
  for (size_t i = 0; i < n; i++) {
    if (i) buf_append(b, ",", 1);
    pbjson_string(b, v[i], strlen(v[i]));
  }
  buf_append(b, "]", 1);
}

void membership_member_json(const member_t *m, buf_t *out) {
  buf_printf(out, "{\"id\":%llu,\"peerURLs\":", (unsigned long long)m->id);
  json_strv(out, m->peer_urls, m->n_peer_urls);
  if (m->learner) buf_printf(out, ",\"isLearner\":true");
  if (m->name && *m->name) {
    buf_printf(out, ",\"name\":");
    pbjson_string(out, m->name, strlen(m->name));
  }
  if (m->n_client_urls) {
    buf_printf(out, ",\"clientURLs\":");
    json_strv(out, m->client_urls, m->n_client_urls);
  }
  buf_append(out, "}", 1);
}

int membership_member_parse(const uint8_t *json, size_t len, arena_t *a, member_t *m) {
  ProtobufCMessage *msg;
  char err[128];
  if (pbjson_decode(&cetcdinternal__member_record__descriptor, (const char *)json, len, a, &msg, err,
                    sizeof(err)))
    return CETCD_EINVAL;
  Cetcdinternal__MemberRecord *r = (Cetcdinternal__MemberRecord *)msg;
  *m = (member_t){.id = r->id,
                  .name = r->name,
                  .peer_urls = r->peerurls,
                  .n_peer_urls = r->n_peerurls,
                  .client_urls = r->clienturls,
                  .n_client_urls = r->n_clienturls,
                  .learner = r->islearner};
  return m->id ? 0 : CETCD_EINVAL;
}

/* ---- persistence ---------------------------------------------------------------------- */

/* Writes m to the members bucket. */
static int persist(membership_t *ms, const member_t *m) {
  if (!ms->mvcc) return 0;
  char key[17];
  ids_format(m->id, key);
  buf_t b = {0};
  membership_member_json(m, &b);
  int rc = mvcc_bucket_put(ms->mvcc, "members", key, strlen(key), b.data, b.len);
  buf_free(&b);
  return rc;
}

/* Index where id is or would go. */
static size_t lower_bound(const membership_t *ms, uint64_t id) {
  size_t lo = 0, hi = ms->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (ms->m[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* The member with id (mutable), or NULL. */
static member_t *find(membership_t *ms, uint64_t id) {
  size_t i = lower_bound(ms, id);
  return i < ms->n && ms->m[i].id == id ? &ms->m[i] : NULL;
}

/* Inserts a copy of m in memory only (replacing one with the same id). */
static member_t *insert(membership_t *ms, const member_t *m) {
  size_t i = lower_bound(ms, m->id);
  if (i < ms->n && ms->m[i].id == m->id) {
    member_clear(&ms->m[i]);
  } else {
    if (ms->n == ms->cap) {
      ms->cap = ms->cap ? 2 * ms->cap : 8;
      ms->m = xrealloc(ms->m, ms->cap * sizeof(member_t));
    }
    memmove(&ms->m[i + 1], &ms->m[i], (ms->n - i) * sizeof(member_t));
    ms->n++;
  }
  member_t *d = &ms->m[i];
  *d = (member_t){.id = m->id,
                  .name = xstrdup(m->name ? m->name : ""),
                  .peer_urls = strv_dup(m->peer_urls, m->n_peer_urls),
                  .n_peer_urls = m->n_peer_urls,
                  .client_urls = strv_dup(m->client_urls, m->n_client_urls),
                  .n_client_urls = m->n_client_urls,
                  .learner = m->learner};
  return d;
}

/* Records id as removed in memory. */
static void mark_removed(membership_t *ms, uint64_t id) {
  if (membership_is_removed(ms, id)) return;
  if (ms->n_removed == ms->cap_removed) {
    ms->cap_removed = ms->cap_removed ? 2 * ms->cap_removed : 8;
    ms->removed = xrealloc(ms->removed, ms->cap_removed * sizeof(uint64_t));
  }
  ms->removed[ms->n_removed++] = id;
}

/* mvcc_bucket_foreach callback: one `members` record. */
static int load_member(void *ctx, const void *key, size_t klen, const void *val, size_t vlen) {
  (void)key;
  (void)klen;
  arena_t a;
  arena_init(&a);
  member_t m;
  int rc = membership_member_parse(val, vlen, &a, &m);
  if (rc == 0) insert(ctx, &m);
  arena_destroy(&a);
  return rc ? CETCD_ECORRUPT : 0;
}

/* mvcc_bucket_foreach callback: one `members_removed` record. */
static int load_removed(void *ctx, const void *key, size_t klen, const void *val, size_t vlen) {
  (void)val;
  (void)vlen;
  char s[17];
  uint64_t id;
  if (klen == 0 || klen > 16) return CETCD_ECORRUPT;
  memcpy(s, key, klen);
  s[klen] = 0;
  if (ids_parse(s, &id)) return CETCD_ECORRUPT;
  mark_removed(ctx, id);
  return 0;
}

int membership_open(mvcc_store_t *mvcc, membership_t **out) {
  membership_t *ms = xcalloc(1, sizeof(*ms));
  int rc = 0;
  if (mvcc) {
    rc = mvcc_bucket_foreach(mvcc, "members", load_member, ms);
    if (!rc) rc = mvcc_bucket_foreach(mvcc, "members_removed", load_removed, ms);
  }
  if (rc) {
    membership_free(ms);
    return rc;
  }
  ms->mvcc = mvcc;
  *out = ms;
  return 0;
}

void membership_free(membership_t *ms) {
  if (!ms) return;
  for (size_t i = 0; i < ms->n; i++) member_clear(&ms->m[i]);
  free(ms->m);
  free(ms->removed);
  free(ms);
}

/* ---- queries -------------------------------------------------------------------------- */

size_t membership_count(const membership_t *ms) { return ms->n; }

const member_t *membership_at(const membership_t *ms, size_t i) { return i < ms->n ? &ms->m[i] : NULL; }

const member_t *membership_find(const membership_t *ms, uint64_t id) { return find((membership_t *)ms, id); }

bool membership_is_removed(const membership_t *ms, uint64_t id) {
  for (size_t i = 0; i < ms->n_removed; i++)
    if (ms->removed[i] == id) return true;
  return false;
}

size_t membership_learners(const membership_t *ms) {
  size_t n = 0;
  for (size_t i = 0; i < ms->n; i++) n += ms->m[i].learner;
  return n;
}

bool membership_peer_url_used(const membership_t *ms, char *const *urls, size_t n, uint64_t except) {
  for (size_t i = 0; i < ms->n; i++) {
    if (ms->m[i].id == except) continue;
    for (size_t j = 0; j < ms->m[i].n_peer_urls; j++)
      for (size_t k = 0; k < n; k++)
        if (!strcmp(ms->m[i].peer_urls[j], urls[k])) return true;
  }
  return false;
}

/* ---- changes -------------------------------------------------------------------------- */

int membership_put(membership_t *ms, const member_t *m) { return persist(ms, insert(ms, m)); }

int membership_remove(membership_t *ms, uint64_t id) {
  size_t i = lower_bound(ms, id);
  if (i < ms->n && ms->m[i].id == id) {
    member_clear(&ms->m[i]);
    memmove(&ms->m[i], &ms->m[i + 1], (ms->n - i - 1) * sizeof(member_t));
    ms->n--;
  }
  mark_removed(ms, id);
  if (!ms->mvcc) return 0;
  char key[17];
  ids_format(id, key);
  int rc = mvcc_bucket_del(ms->mvcc, "members", key, strlen(key));
  if (!rc) rc = mvcc_bucket_put(ms->mvcc, "members_removed", key, strlen(key), "removed", 7);
  return rc;
}

int membership_set_attrs(membership_t *ms, uint64_t id, const char *name, char *const *client_urls,
                         size_t n) {
  member_t *m = find(ms, id);
  if (!m) return 0;
  free(m->name);
  m->name = xstrdup(name ? name : "");
  strv_free(m->client_urls, m->n_client_urls);
  m->client_urls = strv_dup(client_urls, n);
  m->n_client_urls = n;
  return persist(ms, m);
}

int membership_set_peer_urls(membership_t *ms, uint64_t id, char *const *urls, size_t n) {
  member_t *m = find(ms, id);
  if (!m) return 0;
  strv_free(m->peer_urls, m->n_peer_urls);
  m->peer_urls = strv_dup(urls, n);
  m->n_peer_urls = n;
  return persist(ms, m);
}

int membership_promote(membership_t *ms, uint64_t id) {
  member_t *m = find(ms, id);
  if (!m) return 0;
  m->learner = false;
  return persist(ms, m);
}

/* ---- protobuf views ------------------------------------------------------------------- */

void membership_to_pb(const member_t *m, Etcdserverpb__Member *out) {
  etcdserverpb__member__init(out);
  out->id = m->id;
  out->name = m->name;
  out->peerurls = m->peer_urls;
  out->n_peerurls = m->n_peer_urls;
  out->clienturls = m->client_urls;
  out->n_clienturls = m->n_client_urls;
  out->islearner = m->learner;
}

void membership_list_pb(const membership_t *ms, arena_t *a, Etcdserverpb__Member ***out, size_t *n) {
  Etcdserverpb__Member **v = arena_alloc(a, (ms->n ? ms->n : 1) * sizeof(*v));
  for (size_t i = 0; i < ms->n; i++) {
    v[i] = arena_alloc(a, sizeof(Etcdserverpb__Member));
    membership_to_pb(&ms->m[i], v[i]);
  }
  *out = v;
  *n = ms->n;
}
