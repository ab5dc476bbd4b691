/* A key's history (etcd's keyIndex): generations of revisions, version counting,
 * point-in-time lookup and compaction. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "mvcc/key_index_int.h"

mvcc_ki_t *mvcc_ki_new(const uint8_t *key, size_t klen) {
  mvcc_ki_t *ki = xmalloc(sizeof(*ki) + klen);
  memset(ki, 0, sizeof(*ki));
  ki->gens = &ki->g0;
  ki->ngens = 1;
  ki->gcap = 1;
  ki->klen = (uint32_t)klen;
  if (klen) memcpy(ki->key, key, klen);
  return ki;
}

/* Frees a generation's out-of-line revisions. */
static void gen_release(mvcc_gen_t *g) {
  if (g->cap > 1) free(g->u.many);
  g->cap = 0;
  g->n = 0;
}

void mvcc_ki_free(mvcc_ki_t *ki) {
  if (!ki) return;
  for (uint32_t i = 0; i < ki->ngens; i++) gen_release(&ki->gens[i]);
  if (ki->gens != &ki->g0) free(ki->gens);
  free(ki);
}

/* Appends r to g, growing its storage. */
static void gen_push(mvcc_gen_t *g, mvcc_rev_t r) {
  if (g->cap <= 1) {
    if (g->n == 0) {
      g->u.one = r;
      g->n = 1;
      g->cap = 1;
      return;
    }
    mvcc_rev_t *m = xmalloc(4 * sizeof(*m));
    m[0] = g->u.one;
    g->u.many = m;
    g->cap = 4;
  } else if (g->n == g->cap) {
    g->cap *= 2;
    g->u.many = xrealloc(g->u.many, g->cap * sizeof(mvcc_rev_t));
  }
  g->u.many[g->n++] = r;
}

/* Appends an empty generation. */
static void ki_push_gen(mvcc_ki_t *ki) {
  if (ki->ngens == ki->gcap) {
    if (ki->gens == &ki->g0) {
      mvcc_gen_t *g = xmalloc(4 * sizeof(*g));
      g[0] = ki->g0;
      ki->gens = g;
      ki->gcap = 4;
    } else {
      ki->gcap *= 2;
      ki->gens = xrealloc(ki->gens, ki->gcap * sizeof(mvcc_gen_t));
    }
  }
  memset(&ki->gens[ki->ngens++], 0, sizeof(mvcc_gen_t));
}

void mvcc_ki_put(mvcc_ki_t *ki, mvcc_rev_t rev) {
  mvcc_gen_t *g = &ki->gens[ki->ngens - 1];
  if (g->n == 0) g->created = rev.main;
  gen_push(g, rev);
  g->ver++;
  ki->modified = rev;
}

void mvcc_ki_restore(mvcc_ki_t *ki, int64_t created, mvcc_rev_t modified, int64_t ver) {
  mvcc_gen_t *g = &ki->gens[ki->ngens - 1];
  g->created = created;
  g->ver = ver;
  gen_push(g, modified);
  ki->modified = modified;
}

bool mvcc_ki_is_empty(const mvcc_ki_t *ki) { return ki->ngens == 1 && ki->gens[0].n == 0; }

bool mvcc_ki_is_live(const mvcc_ki_t *ki) { return ki->gens[ki->ngens - 1].n != 0; }

int mvcc_ki_tombstone(mvcc_ki_t *ki, mvcc_rev_t rev) {
  if (!mvcc_ki_is_live(ki)) return CETCD_EKEYNOTFOUND;
  mvcc_ki_put(ki, rev);
  ki_push_gen(ki);
  ki->lease = 0;
  return 0;
}

/* The generation holding the key's state at rev, or NULL (etcd's findGeneration). */
static mvcc_gen_t *find_generation(mvcc_ki_t *ki, int64_t rev) {
  int lastg = (int)ki->ngens - 1;
  for (int cg = lastg; cg >= 0; cg--) {
    mvcc_gen_t *g = &ki->gens[cg];
    if (g->n == 0) continue;
    mvcc_rev_t *revs = mvcc_gen_revs(g);
    if (cg != lastg && revs[g->n - 1].main <= rev) return NULL;
    if (revs[0].main <= rev) return g;
  }
  return NULL;
}

bool mvcc_ki_get(mvcc_ki_t *ki, int64_t at_rev, mvcc_rev_t *mod, int64_t *created, int64_t *ver) {
  mvcc_gen_t *g = find_generation(ki, at_rev);
  if (!g) return false;
  mvcc_rev_t *revs = mvcc_gen_revs(g);
  for (int64_t i = (int64_t)g->n - 1; i >= 0; i--) {
    if (revs[i].main <= at_rev) {
      if (mod) *mod = revs[i];
      if (created) *created = g->created;
      if (ver) *ver = g->ver - ((int64_t)g->n - i - 1);
      return true;
    }
  }
  return false;
}

/* etcd's doCompact: finds the first generation not entirely at or below at_rev and, in
 * it, the latest revision <= at_rev (added to keep). Returns that revision's index or -1. */
static int64_t do_compact(mvcc_ki_t *ki, int64_t at_rev, mvcc_revset_t *keep, uint32_t *gen_idx) {
  uint32_t gi = 0;
  while (gi < ki->ngens - 1) {
    mvcc_gen_t *g = &ki->gens[gi];
    if (g->n && mvcc_gen_revs(g)[g->n - 1].main > at_rev) break;
    gi++;
  }
  *gen_idx = gi;
  mvcc_gen_t *g = &ki->gens[gi];
  mvcc_rev_t *revs = mvcc_gen_revs(g);
  for (int64_t i = (int64_t)g->n - 1; i >= 0; i--) {
    if (revs[i].main <= at_rev) {
      mvcc_revset_add(keep, revs[i]);
      return i;
    }
  }
  return -1;
}

void mvcc_ki_compact(mvcc_ki_t *ki, int64_t at_rev, mvcc_revset_t *keep) {
  uint32_t gi;
  int64_t ri = do_compact(ki, at_rev, keep, &gi);
  mvcc_gen_t *g = &ki->gens[gi];
  if (g->n) {
    if (ri > 0) {
      mvcc_rev_t *revs = mvcc_gen_revs(g);
      memmove(revs, revs + ri, (size_t)(g->n - ri) * sizeof(*revs));
      g->n -= (uint32_t)ri;
      if (g->n == 1 && g->cap > 1) {
        mvcc_rev_t r = revs[0];
        free(g->u.many);
        g->u.one = r;
        g->cap = 1;
      }
    }
    if (g->n == 1 && gi != ki->ngens - 1) {
      if (ri != -1) keep->n--; /* the tombstone just added is not kept */
      gi++;
    }
  }
  if (gi == 0) return;
  for (uint32_t i = 0; i < gi; i++) gen_release(&ki->gens[i]);
  memmove(ki->gens, ki->gens + gi, (ki->ngens - gi) * sizeof(mvcc_gen_t));
  ki->ngens -= gi;
  if (ki->ngens == 1 && ki->gens != &ki->g0) {
    ki->g0 = ki->gens[0];
    free(ki->gens);
    ki->gens = &ki->g0;
    ki->gcap = 1;
  }
}

void mvcc_ki_keep(mvcc_ki_t *ki, int64_t at_rev, mvcc_revset_t *keep) {
  if (mvcc_ki_is_empty(ki)) return;
  uint32_t gi;
  int64_t ri = do_compact(ki, at_rev, keep, &gi);
  mvcc_gen_t *g = &ki->gens[gi];
  if (g->n && ri == (int64_t)g->n - 1 && gi != ki->ngens - 1) keep->n--;
}

/* ---- revision sets ---- */

void mvcc_revset_add(mvcc_revset_t *s, mvcc_rev_t r) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 256;
    s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
  }
  s->v[s->n++] = r;
}

/* qsort comparator for revisions. */
static int rev_qcmp(const void *a, const void *b) {
  return mvcc_rev_cmp(*(const mvcc_rev_t *)a, *(const mvcc_rev_t *)b);
}

void mvcc_revset_sort(mvcc_revset_t *s) {
  if (s->n > 1) qsort(s->v, s->n, sizeof(*s->v), rev_qcmp);
}

bool mvcc_revset_has(const mvcc_revset_t *s, mvcc_rev_t r) {
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = mvcc_rev_cmp(s->v[mid], r);
    if (c == 0) return true;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return false;
}

void mvcc_revset_free(mvcc_revset_t *s) {
  free(s->v);
  memset(s, 0, sizeof(*s));
}
