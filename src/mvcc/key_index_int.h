/* The in-memory key index: for every key, its generations of revisions (etcd's keyIndex),
 * kept in a B-tree ordered by key bytes (memcmp, a prefix sorts first).
 *
 * Complexity: point lookup and insert O(log n); a range scan O(log n + k); compaction
 * O(n) (it rewrites every key's history, then rebuilds the tree from the survivors, so
 * the tree itself needs no single-item delete). Memory: one allocation per key for keys
 * with one generation holding one revision (the common case), plus ~8 bytes of tree. */
#ifndef CETCD_MVCC_KEY_INDEX_INT_H
#define CETCD_MVCC_KEY_INDEX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mvcc/revision_int.h"

/* One life of a key: from its creating put to its tombstone (or still live). */
typedef struct mvcc_gen {
  int64_t ver;     /* number of revisions ever appended (survives compaction) */
  int64_t created; /* main revision of the creating put */
  uint32_t n;      /* revisions held */
  uint32_t cap;    /* <= 1: the revision is stored inline in u.one */
  union {
    mvcc_rev_t one;
    mvcc_rev_t *many;
  } u;
} mvcc_gen_t;

/* Revisions of a generation, oldest first. */
static inline mvcc_rev_t *mvcc_gen_revs(mvcc_gen_t *g) { return g->cap <= 1 ? &g->u.one : g->u.many; }

/* A key's history. Owned by the index. */
typedef struct mvcc_ki {
  mvcc_rev_t modified; /* last revision appended */
  int64_t lease;       /* lease of the latest live revision, 0 if none or deleted */
  mvcc_gen_t *gens;    /* points at g0 while gcap == 1 */
  uint32_t ngens, gcap;
  mvcc_gen_t g0;
  uint32_t klen;
  uint8_t key[];
} mvcc_ki_t;

/* Allocates an empty key index for key (copied). */
mvcc_ki_t *mvcc_ki_new(const uint8_t *key, size_t klen);
/* Frees a key index. */
void mvcc_ki_free(mvcc_ki_t *ki);
/* Appends a put at rev (must be after ki->modified). */
void mvcc_ki_put(mvcc_ki_t *ki, mvcc_rev_t rev);
/* Seeds an empty key index from a compacted record (etcd's restore). */
void mvcc_ki_restore(mvcc_ki_t *ki, int64_t created, mvcc_rev_t modified, int64_t ver);
/* Appends a tombstone at rev and starts a new empty generation. Returns 0, or
 * CETCD_EKEYNOTFOUND if the key is not live. */
int mvcc_ki_tombstone(mvcc_ki_t *ki, mvcc_rev_t rev);
/* Finds the key's state at main revision at_rev: the revision holding it, the creating
 * revision and the version. Returns false if the key did not exist then. */
bool mvcc_ki_get(mvcc_ki_t *ki, int64_t at_rev, mvcc_rev_t *mod, int64_t *created, int64_t *ver);
/* True if the key has no revisions at all. */
bool mvcc_ki_is_empty(const mvcc_ki_t *ki);
/* True if the key is live now (last generation non-empty). */
bool mvcc_ki_is_live(const mvcc_ki_t *ki);

/* A growable array of revisions (compaction's keep set). */
typedef struct mvcc_revset {
  mvcc_rev_t *v;
  size_t n, cap;
} mvcc_revset_t;

/* Appends r to the set. */
void mvcc_revset_add(mvcc_revset_t *s, mvcc_rev_t r);
/* Sorts the set so mvcc_revset_has can binary-search it. */
void mvcc_revset_sort(mvcc_revset_t *s);
/* True if the sorted set holds r. */
bool mvcc_revset_has(const mvcc_revset_t *s, mvcc_rev_t r);
/* Frees the storage. */
void mvcc_revset_free(mvcc_revset_t *s);

/* Compacts the key's history at at_rev (etcd's keyIndex.compact): adds the revisions
 * to keep (the latest one <= at_rev, when not a tombstone) to keep, drops older ones. */
void mvcc_ki_compact(mvcc_ki_t *ki, int64_t at_rev, mvcc_revset_t *keep);
/* Adds the revisions a compaction at at_rev would keep, without changing ki (etcd's keep). */
void mvcc_ki_keep(mvcc_ki_t *ki, int64_t at_rev, mvcc_revset_t *keep);

/* ---- the ordered tree ---- */

typedef struct mvcc_bt_node mvcc_bt_node_t;

typedef struct mvcc_btree {
  mvcc_bt_node_t *root;
  size_t count;
} mvcc_btree_t;

/* Compares key bytes: memcmp order, a prefix first. */
int mvcc_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* Initializes an empty tree. */
void mvcc_bt_init(mvcc_btree_t *t);
/* Frees the tree nodes and, if free_items, every key index. */
void mvcc_bt_clear(mvcc_btree_t *t, bool free_items);
/* Returns the key index for key, or NULL. */
mvcc_ki_t *mvcc_bt_find(const mvcc_btree_t *t, const uint8_t *key, size_t klen);
/* Inserts ki (its key must not be present). The tree owns ki. */
void mvcc_bt_insert(mvcc_btree_t *t, mvcc_ki_t *ki);
/* Calls fn on every key index with key >= key (NULL: from the first) in ascending order
 * until fn returns false. Returns false if stopped early. */
bool mvcc_bt_visit(const mvcc_btree_t *t, const uint8_t *key, size_t klen, bool (*fn)(void *, mvcc_ki_t *),
                   void *ctx);

#endif
