/* An in-memory B-tree of key indexes ordered by key (CLRS insert with pre-emptive
 * splits; no single-item delete: compaction rebuilds the tree). */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "mvcc/key_index_int.h"

enum { BT_T = 16, BT_MAXI = 2 * BT_T - 1 };

struct mvcc_bt_node {
  uint16_t n;
  bool leaf;
  /* The first 8 bytes of each item's key, big-endian and zero-padded (key_prefix): a
   * search compares these in the node and reads an item's key only when they are equal,
   * instead of a cache miss per comparison. */
  uint64_t pfx[BT_MAXI];
  mvcc_ki_t *items[BT_MAXI];
  mvcc_bt_node_t *kids[]; /* BT_MAXI + 1, internal nodes only */
};

int mvcc_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  size_t m = alen < blen ? alen : blen;
  int c = m ? memcmp(a, b, m) : 0;
  if (c) return c;
  return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* The first 8 bytes of key as a big-endian number, zero-padded. Two keys whose prefixes
 * differ are ordered as their prefixes are: at the first differing byte either both keys
 * have it, or the shorter key ended there and is a prefix of the longer one. */
static inline uint64_t key_prefix(const uint8_t *key, size_t klen) {
  uint64_t p = 0;
  size_t m = klen < 8 ? klen : 8;
  for (size_t i = 0; i < m; i++) p |= (uint64_t)key[i] << (56 - 8 * i);
  return p;
}

/* Compares item i of x with key (whose prefix is kp), like mvcc_key_cmp. */
static inline int item_cmp(const mvcc_bt_node_t *x, int i, uint64_t kp, const uint8_t *key, size_t klen) {
  if (x->pfx[i] != kp) return x->pfx[i] < kp ? -1 : 1;
  return mvcc_key_cmp(x->items[i]->key, x->items[i]->klen, key, klen);
}

/* Moves n items (and their prefixes) of x from index from to index to. */
static void move_items(mvcc_bt_node_t *x, int to, int from, int n) {
  memmove(x->items + to, x->items + from, (size_t)n * sizeof(mvcc_ki_t *));
  memmove(x->pfx + to, x->pfx + from, (size_t)n * sizeof(uint64_t));
}

/* Stores ki as item i of x. */
static void set_item(mvcc_bt_node_t *x, int i, mvcc_ki_t *ki) {
  x->items[i] = ki;
  x->pfx[i] = key_prefix(ki->key, ki->klen);
}

/* Allocates a node. */
static mvcc_bt_node_t *node_new(bool leaf) {
  size_t sz = sizeof(mvcc_bt_node_t) + (leaf ? 0 : (BT_MAXI + 1) * sizeof(mvcc_bt_node_t *));
  mvcc_bt_node_t *x = xmalloc(sz);
  x->n = 0;
  x->leaf = leaf;
  return x;
}

/* Index of the first item >= key in x (x->n if none); *eq set if equal. */
static int lower_bound(const mvcc_bt_node_t *x, uint64_t kp, const uint8_t *key, size_t klen, bool *eq) {
  int lo = 0, hi = x->n;
  *eq = false;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    int c = item_cmp(x, mid, kp, key, klen);
    if (c < 0) {
      lo = mid + 1;
    } else {
      if (c == 0) *eq = true;
      hi = mid;
    }
  }
  if (*eq && lo < x->n) *eq = item_cmp(x, lo, kp, key, klen) == 0;
  return lo;
}

void mvcc_bt_init(mvcc_btree_t *t) {
  t->root = NULL;
  t->count = 0;
}

/* Frees a subtree. */
static void node_free(mvcc_bt_node_t *x, bool free_items) {
  if (!x) return;
  if (!x->leaf)
    for (int i = 0; i <= x->n; i++) node_free(x->kids[i], free_items);
  if (free_items)
    for (int i = 0; i < x->n; i++) mvcc_ki_free(x->items[i]);
  free(x);
}

void mvcc_bt_clear(mvcc_btree_t *t, bool free_items) {
  node_free(t->root, free_items);
  mvcc_bt_init(t);
}

mvcc_ki_t *mvcc_bt_find(const mvcc_btree_t *t, const uint8_t *key, size_t klen) {
  const mvcc_bt_node_t *x = t->root;
  uint64_t kp = key_prefix(key, klen);
  while (x) {
    bool eq;
    int i = lower_bound(x, kp, key, klen, &eq);
    if (eq) return x->items[i];
    if (x->leaf) return NULL;
    x = x->kids[i];
  }
  return NULL;
}

/* Splits the full child i of x around its median. */
static void split_child(mvcc_bt_node_t *x, int i) {
  mvcc_bt_node_t *y = x->kids[i];
  mvcc_bt_node_t *z = node_new(y->leaf);
  z->n = BT_T - 1;
  memcpy(z->items, y->items + BT_T, (BT_T - 1) * sizeof(mvcc_ki_t *));
  memcpy(z->pfx, y->pfx + BT_T, (BT_T - 1) * sizeof(uint64_t));
  if (!y->leaf) memcpy(z->kids, y->kids + BT_T, BT_T * sizeof(mvcc_bt_node_t *));
  y->n = BT_T - 1;
  memmove(x->kids + i + 2, x->kids + i + 1, (size_t)(x->n - i) * sizeof(mvcc_bt_node_t *));
  x->kids[i + 1] = z;
  move_items(x, i + 1, i, x->n - i);
  x->items[i] = y->items[BT_T - 1];
  x->pfx[i] = y->pfx[BT_T - 1];
  x->n++;
}

void mvcc_bt_insert(mvcc_btree_t *t, mvcc_ki_t *ki) {
  t->count++;
  if (!t->root) {
    t->root = node_new(true);
    set_item(t->root, 0, ki);
    t->root->n = 1;
    return;
  }
  if (t->root->n == BT_MAXI) {
    mvcc_bt_node_t *s = node_new(false);
    s->kids[0] = t->root;
    t->root = s;
    split_child(s, 0);
  }
  mvcc_bt_node_t *x = t->root;
  uint64_t kp = key_prefix(ki->key, ki->klen);
  for (;;) {
    bool eq;
    int i = lower_bound(x, kp, ki->key, ki->klen, &eq);
    if (x->leaf) {
      move_items(x, i + 1, i, x->n - i);
      set_item(x, i, ki);
      x->n++;
      return;
    }
    if (x->kids[i]->n == BT_MAXI) {
      split_child(x, i);
      if (item_cmp(x, i, kp, ki->key, ki->klen) < 0) i++;
    }
    x = x->kids[i];
  }
}

/* In-order walk of x from the first item >= key (if has_lo). */
static bool visit(const mvcc_bt_node_t *x, const uint8_t *key, size_t klen, bool has_lo,
                  bool (*fn)(void *, mvcc_ki_t *), void *ctx) {
  int i = 0;
  if (has_lo) {
    bool eq;
    i = lower_bound(x, key_prefix(key, klen), key, klen, &eq);
  }
  for (; i <= x->n; i++) {
    if (!x->leaf && !visit(x->kids[i], key, klen, has_lo, fn, ctx)) return false;
    has_lo = false;
    if (i < x->n && !fn(ctx, x->items[i])) return false;
  }
  return true;
}

bool mvcc_bt_visit(const mvcc_btree_t *t, const uint8_t *key, size_t klen, bool (*fn)(void *, mvcc_ki_t *),
                   void *ctx) {
  if (!t->root) return true;
  return visit(t->root, key, klen, key != NULL, fn, ctx);
}
