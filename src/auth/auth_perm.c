/* Key-range permission checks: affine intervals, overlap and coverage (see auth_perm.h). */
#include "auth/auth_perm.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

/* A half-open interval of affine keys (len 0 = +infinity). */
typedef struct ivl {
  const uint8_t *b, *e;
  size_t bl, el;
  uint8_t *own; /* a point's end (key + "\0"), malloc'd, or NULL */
} ivl_t;

int auth_affine_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
  if (al == 0) return bl == 0 ? 0 : 1;
  if (bl == 0) return -1;
  size_t m = al < bl ? al : bl;
  int c = m ? memcmp(a, b, m) : 0; /* an empty key may be NULL */
  if (c) return c;
  return al < bl ? -1 : al > bl;
}

/* Makes the point interval [key, key\0) (end allocated into iv->own). */
static void point(ivl_t *iv, const uint8_t *key, size_t kl) {
  uint8_t *end = xmalloc(kl + 1);
  if (kl) memcpy(end, key, kl);
  end[kl] = 0;
  *iv = (ivl_t){.b = key, .bl = kl, .e = end, .el = kl + 1, .own = end};
}

/* The interval a permission covers. */
static void perm_ivl(const Authpb__Permission *p, ivl_t *iv) {
  memset(iv, 0, sizeof(*iv));
  if (p->range_end.len == 0) {
    point(iv, p->key.data, p->key.len);
    return;
  }
  bool to_end = p->range_end.len == 1 && p->range_end.data[0] == 0;
  *iv = (ivl_t){.b = p->key.data,
                .bl = p->key.len,
                .e = to_end ? NULL : p->range_end.data,
                .el = to_end ? 0 : p->range_end.len};
}

/* Whether two intervals overlap (etcd's Interval.Compare == 0). */
static bool overlaps(const ivl_t *x, const ivl_t *y) {
  bool left = auth_affine_cmp(x->b, x->bl, y->b, y->bl) < 0 && auth_affine_cmp(x->e, x->el, y->b, y->bl) <= 0;
  bool right = auth_affine_cmp(x->b, x->bl, y->e, y->el) >= 0;
  return !left && !right;
}

/* Whether a permission of this type grants the access type asked for. */
static bool type_matches(int ptype, int want) {
  if (ptype == AUTHPB__PERMISSION__TYPE__READWRITE) return true;
  return want == AUTH_PERM_READ ? ptype == AUTHPB__PERMISSION__TYPE__READ
                                : ptype == AUTHPB__PERMISSION__TYPE__WRITE;
}

/* qsort order: by start key. */
static int by_begin(const void *a, const void *b) {
  const ivl_t *x = a, *y = b;
  return auth_affine_cmp(x->b, x->bl, y->b, y->bl);
}

/* Whether the intervals (sorted by start) cover req without a gap. */
static bool covers(const ivl_t *v, size_t n, const ivl_t *req) {
  if (n == 0) return false;
  const ivl_t *max_end = &v[0];
  for (size_t i = 1; i < n; i++) {
    if (auth_affine_cmp(max_end->e, max_end->el, v[i].b, v[i].bl) < 0) return false;
    if (auth_affine_cmp(v[i].e, v[i].el, max_end->e, max_end->el) > 0) max_end = &v[i];
  }
  return auth_affine_cmp(max_end->e, max_end->el, req->e, req->el) >= 0 &&
         auth_affine_cmp(v[0].b, v[0].bl, req->b, req->bl) <= 0;
}

bool auth_perm_allows(Authpb__Permission *const *perms, size_t n, int type, const uint8_t *key,
                      size_t key_len, const uint8_t *end, size_t end_len) {
  ivl_t req;
  memset(&req, 0, sizeof(req));
  bool is_point = end_len == 0;
  if (is_point)
    point(&req, key, key_len);
  else if (end_len == 1 && end[0] == 0)
    req = (ivl_t){.b = key, .bl = key_len};
  else
    req = (ivl_t){.b = key, .bl = key_len, .e = end, .el = end_len};
  ivl_t *hits = xcalloc(n ? n : 1, sizeof(*hits));
  size_t nh = 0;
  bool ok = false;
  for (size_t i = 0; i < n && !(is_point && ok); i++) {
    if (!type_matches(perms[i]->permtype, type)) continue;
    ivl_t iv;
    perm_ivl(perms[i], &iv);
    if (overlaps(&req, &iv)) {
      if (is_point) ok = true;
      hits[nh++] = iv;
    } else {
      free(iv.own);
    }
  }
  if (!is_point) {
    qsort(hits, nh, sizeof(*hits), by_begin);
    ok = covers(hits, nh, &req);
  }
  for (size_t i = 0; i < nh; i++) free(hits[i].own);
  free(hits);
  free(req.own);
  return ok;
}
