/* The auth store's state: users and roles in memory and in the backend's buckets, the
 * enabled flag and the revision (see auth.h). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"

#define B_AUTH "auth"
#define B_USERS "authUsers"
#define B_ROLES "authRoles"

/* Compares a stored name with a C string. */
static int name_cmp(ProtobufCBinaryData n, const char *s) {
  size_t sl = strlen(s);
  size_t m = n.len < sl ? n.len : sl;
  int c = m ? memcmp(n.data, s, m) : 0; /* empty data may be NULL */
  return c ? c : (n.len < sl ? -1 : n.len > sl);
}

/* Binary search over an array of messages whose `name` field sits at name_off: the index
 * of `name` or where it would go; *found tells which. */
static size_t find_at(void *const *arr, size_t n, size_t name_off, const char *name, bool *found) {
  size_t lo = 0, hi = n;
  *found = false;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = name_cmp(*(const ProtobufCBinaryData *)((const char *)arr[mid] + name_off), name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

#define FIND_USER(as, nm, f) \
  find_at((void *const *)(as)->users, (as)->n_users, offsetof(Authpb__User, name), nm, f)
#define FIND_ROLE(as, nm, f) \
  find_at((void *const *)(as)->roles, (as)->n_roles, offsetof(Authpb__Role, name), nm, f)

Authpb__User *auth_user_get(const auth_store_t *as, const char *name) {
  bool f;
  size_t i = FIND_USER(as, name, &f);
  return f ? as->users[i] : NULL;
}

Authpb__Role *auth_role_get(const auth_store_t *as, const char *name) {
  bool f;
  size_t i = FIND_ROLE(as, name, &f);
  return f ? as->roles[i] : NULL;
}

bool auth_user_has_role(const Authpb__User *u, const char *role) {
  for (size_t i = 0; i < u->n_roles; i++)
    if (!strcmp(u->roles[i], role)) return true;
  return false;
}

/* Inserts or replaces p (owned) in a sorted pointer array keyed by name. */
static void arr_set(void ***arr, size_t *n, size_t *cap, void *p, size_t i, bool found,
                    void (*free_fn)(void *)) {
  if (found) {
    free_fn((*arr)[i]);
    (*arr)[i] = p;
    return;
  }
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 8;
    *arr = xrealloc(*arr, *cap * sizeof(void *));
  }
  if (*n > i) memmove(*arr + i + 1, *arr + i, (*n - i) * sizeof(void *));
  (*arr)[i] = p;
  (*n)++;
}

/* Frees an unpacked user / role. */
static void user_free(void *p) { authpb__user__free_unpacked(p, NULL); }
static void role_free(void *p) { authpb__role__free_unpacked(p, NULL); }

/* Copies a NUL-terminated name out of binary data. */
static char *name_str(ProtobufCBinaryData n) {
  char *s = xmalloc(n.len + 1);
  if (n.len) memcpy(s, n.data, n.len);
  s[n.len] = 0;
  return s;
}

/* Keeps an owned user in memory. */
static void mem_user(auth_store_t *as, Authpb__User *u) {
  char *name = name_str(u->name);
  bool f;
  size_t i = FIND_USER(as, name, &f);
  arr_set((void ***)&as->users, &as->n_users, &as->cap_users, u, i, f, user_free);
  free(name);
}

/* Keeps an owned role in memory. */
static void mem_role(auth_store_t *as, Authpb__Role *r) {
  char *name = name_str(r->name);
  bool f;
  size_t i = FIND_ROLE(as, name, &f);
  arr_set((void ***)&as->roles, &as->n_roles, &as->cap_roles, r, i, f, role_free);
  free(name);
}

int auth_user_save(auth_store_t *as, const Authpb__User *u) {
  size_t len = authpb__user__get_packed_size(u);
  uint8_t *buf = xmalloc(len ? len : 1);
  authpb__user__pack(u, buf);
  int rc = mvcc_bucket_put(as->mvcc, B_USERS, u->name.data, u->name.len, buf, len);
  if (rc == 0) mem_user(as, authpb__user__unpack(NULL, len, buf));
  free(buf);
  return rc;
}

int auth_role_save(auth_store_t *as, const Authpb__Role *r) {
  size_t len = authpb__role__get_packed_size(r);
  uint8_t *buf = xmalloc(len ? len : 1);
  authpb__role__pack(r, buf);
  int rc = mvcc_bucket_put(as->mvcc, B_ROLES, r->name.data, r->name.len, buf, len);
  if (rc == 0) mem_role(as, authpb__role__unpack(NULL, len, buf));
  free(buf);
  return rc;
}

int auth_user_remove(auth_store_t *as, const char *name) {
  bool f;
  size_t i = FIND_USER(as, name, &f);
  if (!f) return 0;
  int rc = mvcc_bucket_del(as->mvcc, B_USERS, name, strlen(name));
  if (rc) return rc;
  user_free(as->users[i]);
  if (as->n_users > i + 1)
    memmove(as->users + i, as->users + i + 1, (as->n_users - i - 1) * sizeof(*as->users));
  as->n_users--;
  return 0;
}

int auth_role_remove(auth_store_t *as, const char *name) {
  bool f;
  size_t i = FIND_ROLE(as, name, &f);
  if (!f) return 0;
  int rc = mvcc_bucket_del(as->mvcc, B_ROLES, name, strlen(name));
  if (rc) return rc;
  role_free(as->roles[i]);
  if (as->n_roles > i + 1)
    memmove(as->roles + i, as->roles + i + 1, (as->n_roles - i - 1) * sizeof(*as->roles));
  as->n_roles--;
  return 0;
}

int auth_commit_revision(auth_store_t *as) {
  uint8_t b[8];
  uint64_t r = as->revision + 1;
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(r >> (56 - 8 * i));
  int rc = mvcc_bucket_put(as->mvcc, B_AUTH, "authRevision", 12, b, 8);
  if (rc == 0) as->revision = r;
  return rc;
}

int auth_save_enabled(auth_store_t *as, bool on) {
  uint8_t v = on ? 1 : 0;
  int rc = mvcc_bucket_put(as->mvcc, B_AUTH, "authEnabled", 11, &v, 1);
  if (rc == 0) as->enabled = on;
  return rc;
}

/* Loads one authUsers record. */
static int load_user(void *ctx, const void *key, size_t klen, const void *val, size_t vlen) {
  (void)key;
  Authpb__User *u = authpb__user__unpack(NULL, vlen, val);
  if (!u) {
    LOGE("msg=\"cannot decode a persisted user\" bucket=authUsers key-bytes=%zu", klen);
    return CETCD_ECORRUPT;
  }
  mem_user(ctx, u);
  return 0;
}

/* Loads one authRoles record. */
static int load_role(void *ctx, const void *key, size_t klen, const void *val, size_t vlen) {
  (void)key;
  Authpb__Role *r = authpb__role__unpack(NULL, vlen, val);
  if (!r) {
    LOGE("msg=\"cannot decode a persisted role\" bucket=authRoles key-bytes=%zu", klen);
    return CETCD_ECORRUPT;
  }
  mem_role(ctx, r);
  return 0;
}

/* Reads authEnabled and authRevision (absent: disabled, revision 1 as etcd starts). */
static int load_flags(auth_store_t *as) {
  uint8_t b[8];
  size_t n = sizeof(b);
  int rc = mvcc_bucket_get(as->mvcc, B_AUTH, "authEnabled", 11, b, &n);
  if (rc == 0)
    as->enabled = n == 1 && b[0] == 1;
  else if (rc != CETCD_EKEYNOTFOUND)
    return rc;
  n = sizeof(b);
  rc = mvcc_bucket_get(as->mvcc, B_AUTH, "authRevision", 12, b, &n);
  as->revision = 0;
  if (rc == 0 && n == 8)
    for (int i = 0; i < 8; i++) as->revision = as->revision << 8 | b[i];
  else if (rc && rc != CETCD_EKEYNOTFOUND)
    return rc;
  if (as->revision == 0) as->revision = 1;
  return 0;
}

int auth_store_open(mvcc_store_t *mvcc, uint32_t token_ttl_s, auth_store_t **out) {
  auth_store_t *as = xcalloc(1, sizeof(*as));
  as->mvcc = mvcc;
  as->ttl_ms = (uint64_t)(token_ttl_s ? token_ttl_s : 300) * 1000;
  int rc = load_flags(as);
  if (rc == 0) rc = mvcc_bucket_foreach(mvcc, B_USERS, load_user, as);
  if (rc == 0) rc = mvcc_bucket_foreach(mvcc, B_ROLES, load_role, as);
  if (rc) {
    auth_store_free(as);
    *out = NULL;
    return rc;
  }
  if (as->enabled)
    LOGI("msg=\"authentication is enabled\" users=%zu roles=%zu auth-revision=%llu", as->n_users, as->n_roles,
         (unsigned long long)as->revision);
  *out = as;
  return 0;
}

void auth_store_free(auth_store_t *as) {
  if (!as) return;
  for (size_t i = 0; i < as->n_users; i++) user_free(as->users[i]);
  for (size_t i = 0; i < as->n_roles; i++) role_free(as->roles[i]);
  free(as->users);
  free(as->roles);
  auth_token_drop_all(as);
  free(as->tokens);
  free(as);
}

bool auth_is_enabled(const auth_store_t *as) { return as && as->enabled; }

uint64_t auth_revision(const auth_store_t *as) { return as ? as->revision : 0; }

void auth_status(const auth_store_t *as, bool *enabled, uint64_t *revision) {
  *enabled = auth_is_enabled(as);
  *revision = auth_revision(as);
}
