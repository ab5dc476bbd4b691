/* bbolt writer: builds each bucket's B+tree bottom-up (leaves in key order, then branch
 * levels over the first keys of the level below), appending pages sequentially. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "cetcd/errors.h"
#include "snapshot/bbolt.h"
#include "snapshot/bbolt_int.h"

enum { OUT_FLUSH = 1 << 20, FIRST_DATA_PGID = 3, FREELIST_PGID = 2 };

/* One element staged for the page being built (key, then value for leaves, in data). */
typedef struct item {
  uint32_t flags;
  uint32_t klen, vlen;
  uint64_t pgid; /* branch elements */
  size_t off;    /* offset of the key in the builder's data */
} item_t;

/* A page under construction. */
typedef struct builder {
  bool leaf;
  item_t *items;
  size_t n, cap;
  buf_t data;
  size_t bytes; /* header + elements + data */
} builder_t;

/* The pages of one tree level: their ids and first keys. */
typedef struct level {
  uint64_t *pgids;
  size_t *koff, *klen;
  size_t n, cap;
  buf_t keys;
} level_t;

/* A finished top-level bucket: name and the value for the root bucket's leaf. */
typedef struct entry {
  size_t noff, nlen, voff, vlen;
} entry_t;

struct bbolt_writer {
  int fd;
  int err;
  uint64_t next_pgid;
  buf_t out; /* pages not yet written, starting at out_pgid */
  uint64_t out_pgid;
  bool in_bucket;
  builder_t b;
  level_t lv;
  buf_t last; /* previous key of the open bucket */
  bool has_last;
  buf_t names; /* entry names and values */
  entry_t *ents;
  size_t nents, entcap;
};

int bbolt_writer_open(int fd, bbolt_writer_t **out) {
  bbolt_writer_t *w = xcalloc(1, sizeof(*w));
  w->fd = fd;
  w->next_pgid = w->out_pgid = FIRST_DATA_PGID;
  *out = w;
  return 0;
}

static void level_free(level_t *l) {
  free(l->pgids);
  free(l->koff);
  free(l->klen);
  buf_free(&l->keys);
  memset(l, 0, sizeof(*l));
}

void bbolt_writer_free(bbolt_writer_t *w) {
  if (!w) return;
  free(w->b.items);
  buf_free(&w->b.data);
  level_free(&w->lv);
  buf_free(&w->out);
  buf_free(&w->last);
  buf_free(&w->names);
  free(w->ents);
  free(w);
}

/* Writes the buffered pages with pwrite. */
static int out_flush(bbolt_writer_t *w) {
  size_t off = 0;
  while (off < w->out.len) {
    ssize_t n =
        pwrite(w->fd, w->out.data + off, w->out.len - off, (off_t)(w->out_pgid * BBOLT_PAGE_SIZE + off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return w->err = -errno;
    }
    off += (size_t)n;
  }
  w->out_pgid += w->out.len / BBOLT_PAGE_SIZE;
  buf_reset(&w->out);
  return 0;
}

static void level_add(level_t *l, uint64_t pgid, const void *key, size_t klen) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->pgids = xrealloc(l->pgids, l->cap * sizeof(*l->pgids));
    l->koff = xrealloc(l->koff, l->cap * sizeof(*l->koff));
    l->klen = xrealloc(l->klen, l->cap * sizeof(*l->klen));
  }
  l->pgids[l->n] = pgid;
  l->koff[l->n] = l->keys.len;
  l->klen[l->n] = klen;
  buf_append(&l->keys, key, klen);
  l->n++;
}

/* Lays out the builder's elements as a page image (header id = pgid) appended to dst.
 * Returns the number of pages it spans. */
static size_t builder_render(const builder_t *b, uint64_t pgid, buf_t *dst) {
  size_t npages = (b->bytes + BBOLT_PAGE_SIZE - 1) / BBOLT_PAGE_SIZE;
  if (npages == 0) npages = 1;
  size_t span = npages * BBOLT_PAGE_SIZE;
  buf_reserve(dst, span);
  uint8_t *p = dst->data + dst->len;
  memset(p, 0, span);
  bb_put64(p, pgid);
  bb_put16(p + 8, b->leaf ? BB_LEAF_PAGE : BB_BRANCH_PAGE);
  bb_put16(p + 10, (uint16_t)b->n);
  bb_put32(p + 12, (uint32_t)(npages - 1));
  size_t dpos = BB_PAGE_HDR + b->n * BB_ELEM_SIZE;
  for (size_t i = 0; i < b->n; i++) {
    const item_t *it = &b->items[i];
    uint8_t *e = p + BB_PAGE_HDR + i * BB_ELEM_SIZE;
    uint32_t pos = (uint32_t)(dpos - (BB_PAGE_HDR + i * BB_ELEM_SIZE));
    size_t n = it->klen + (b->leaf ? it->vlen : 0);
    if (b->leaf) {
      bb_put32(e, it->flags);
      bb_put32(e + 4, pos);
      bb_put32(e + 8, it->klen);
      bb_put32(e + 12, it->vlen);
    } else {
      bb_put32(e, pos);
      bb_put32(e + 4, it->klen);
      bb_put64(e + 8, it->pgid);
    }
    memcpy(p + dpos, b->data.data + it->off, n);
    dpos += n;
  }
  dst->len += span;
  return npages;
}

/* Writes the builder's page at the next page id, records it in level l, empties it. */
static int builder_flush(bbolt_writer_t *w, builder_t *b, level_t *l) {
  if (b->n == 0) return 0;
  uint64_t pgid = w->next_pgid;
  w->next_pgid += builder_render(b, pgid, &w->out);
  level_add(l, pgid, b->data.data + b->items[0].off, b->items[0].klen);
  b->n = 0;
  b->bytes = 0;
  buf_reset(&b->data);
  if (w->out.len >= OUT_FLUSH) return out_flush(w);
  return 0;
}

/* Adds an element, flushing the page first when it would not fit. */
static int builder_add(bbolt_writer_t *w, builder_t *b, level_t *l, uint32_t flags, const void *k,
                       size_t klen, const void *v, size_t vlen, uint64_t pgid) {
  size_t need = BB_ELEM_SIZE + klen + vlen;
  if (b->n > 0 && (b->bytes + need > BBOLT_PAGE_SIZE || b->n == 0xffff)) {
    int rc = builder_flush(w, b, l);
    if (rc) return rc;
  }
  if (b->n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 64;
    b->items = xrealloc(b->items, b->cap * sizeof(*b->items));
  }
  if (b->n == 0) b->bytes = BB_PAGE_HDR;
  item_t *it = &b->items[b->n++];
  it->flags = flags;
  it->klen = (uint32_t)klen;
  it->vlen = (uint32_t)vlen;
  it->pgid = pgid;
  it->off = b->data.len;
  buf_append(&b->data, k, klen);
  if (vlen) buf_append(&b->data, v, vlen);
  b->bytes += need;
  return 0;
}

/* Builds branch levels over l until one page remains; returns its id (l is consumed). */
static int build_branches(bbolt_writer_t *w, level_t *l, uint64_t *root) {
  builder_t bb = {.leaf = false};
  int rc = 0;
  while (l->n > 1 && rc == 0) {
    level_t up = {0};
    for (size_t i = 0; i < l->n && rc == 0; i++)
      rc = builder_add(w, &bb, &up, 0, l->keys.data + l->koff[i], l->klen[i], NULL, 0, l->pgids[i]);
    if (rc == 0) rc = builder_flush(w, &bb, &up);
    level_free(l);
    *l = up;
  }
  if (rc == 0) *root = l->pgids[0];
  free(bb.items);
  buf_free(&bb.data);
  level_free(l);
  return rc;
}

int bbolt_writer_bucket_begin(bbolt_writer_t *w, const void *name, size_t nlen) {
  if (w->err) return w->err;
  if (w->in_bucket || nlen == 0 || nlen > BBOLT_MAX_KEY) return CETCD_EINVAL;
  for (size_t i = 0; i < w->nents; i++)
    if (w->ents[i].nlen == nlen && !memcmp(w->names.data + w->ents[i].noff, name, nlen)) return CETCD_EINVAL;
  if (w->nents == w->entcap) {
    w->entcap = w->entcap ? w->entcap * 2 : 16;
    w->ents = xrealloc(w->ents, w->entcap * sizeof(*w->ents));
  }
  entry_t *e = &w->ents[w->nents];
  e->noff = w->names.len;
  e->nlen = nlen;
  buf_append(&w->names, name, nlen);
  w->in_bucket = true;
  w->has_last = false;
  w->b.leaf = true;
  return 0;
}

int bbolt_writer_put(bbolt_writer_t *w, const void *key, size_t klen, const void *val, size_t vlen) {
  if (w->err) return w->err;
  if (!w->in_bucket || klen == 0 || klen > BBOLT_MAX_KEY || vlen > 0x7ffffffe) return CETCD_EINVAL;
  if (w->has_last) {
    size_t m = klen < w->last.len ? klen : w->last.len;
    int c = memcmp(w->last.data, key, m);
    if (c > 0 || (c == 0 && w->last.len >= klen)) return CETCD_EINVAL;
  }
  buf_reset(&w->last);
  buf_append(&w->last, key, klen);
  w->has_last = true;
  return builder_add(w, &w->b, &w->lv, 0, key, klen, val, vlen, 0);
}

int bbolt_writer_bucket_end(bbolt_writer_t *w) {
  if (w->err) return w->err;
  if (!w->in_bucket) return CETCD_EINVAL;
  entry_t *e = &w->ents[w->nents];
  uint8_t hdr[BB_BUCKET_HDR];
  memset(hdr, 0, sizeof(hdr));
  e->voff = w->names.len;
  if (w->lv.n == 0 && w->b.bytes <= BBOLT_PAGE_SIZE / 4) {
    /* inline: header with root 0, then the leaf page image (id 0) */
    buf_append(&w->names, hdr, sizeof(hdr));
    buf_t img = {0};
    builder_render(&w->b, 0, &img);
    size_t used = w->b.n ? w->b.bytes : BB_PAGE_HDR;
    buf_append(&w->names, img.data, used);
    buf_free(&img);
    w->b.n = 0;
    w->b.bytes = 0;
    buf_reset(&w->b.data);
  } else {
    uint64_t root = 0;
    int rc = builder_flush(w, &w->b, &w->lv);
    if (rc == 0 && w->lv.n == 0) { /* cannot happen (empty buckets are inline) */
      rc = CETCD_EINVAL;
    }
    if (rc == 0) rc = build_branches(w, &w->lv, &root);
    if (rc) return w->err = rc;
    bb_put64(hdr, root);
    buf_append(&w->names, hdr, sizeof(hdr));
  }
  e->vlen = w->names.len - e->voff;
  w->nents++;
  w->in_bucket = false;
  return 0;
}

/* qsort_r comparator: entries by name (ctx is the names buffer). */
static int ent_cmp(const void *a, const void *b, void *ctx) {
  const entry_t *x = a, *y = b;
  const uint8_t *names = ctx;
  size_t m = x->nlen < y->nlen ? x->nlen : y->nlen;
  int c = memcmp(names + x->noff, names + y->noff, m);
  if (c) return c;
  return x->nlen < y->nlen ? -1 : x->nlen > y->nlen;
}

/* Writes one page at pgid with pwrite. */
static int write_page(int fd, const uint8_t *p, uint64_t pgid) {
  size_t off = 0;
  while (off < BBOLT_PAGE_SIZE) {
    ssize_t n = pwrite(fd, p + off, BBOLT_PAGE_SIZE - off, (off_t)(pgid * BBOLT_PAGE_SIZE + off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    off += (size_t)n;
  }
  return 0;
}

int bbolt_writer_finish(bbolt_writer_t *w, uint64_t *size) {
  int rc = w->err;
  if (rc == 0 && w->in_bucket) rc = CETCD_EINVAL;
  uint64_t root = 0;
  if (rc == 0) {
    /* the root bucket: bucket names -> headers, sorted by name */
    if (w->nents) qsort_r(w->ents, w->nents, sizeof(*w->ents), ent_cmp, w->names.data);
    builder_t *b = &w->b;
    b->leaf = true;
    b->n = 0;
    b->bytes = 0;
    buf_reset(&b->data);
    for (size_t i = 0; i < w->nents && rc == 0; i++) {
      const entry_t *e = &w->ents[i];
      rc = builder_add(w, b, &w->lv, BB_BUCKET_LEAF_FLAG, w->names.data + e->noff, e->nlen,
                       w->names.data + e->voff, e->vlen, 0);
    }
    if (rc == 0 && b->n == 0) { /* no buckets: an empty root leaf */
      uint64_t pgid = w->next_pgid++;
      builder_render(b, pgid, &w->out);
      level_add(&w->lv, pgid, "", 0);
    }
    if (rc == 0) rc = builder_flush(w, b, &w->lv);
    if (rc == 0) rc = build_branches(w, &w->lv, &root);
  }
  if (rc == 0) rc = out_flush(w);
  uint8_t page[BBOLT_PAGE_SIZE];
  if (rc == 0) { /* the (empty) freelist */
    memset(page, 0, sizeof(page));
    bb_put64(page, FREELIST_PGID);
    bb_put16(page + 8, BB_FREELIST_PAGE);
    rc = write_page(w->fd, page, FREELIST_PGID);
  }
  for (uint64_t txid = 0; txid < 2 && rc == 0; txid++) {
    memset(page, 0, sizeof(page));
    bb_put64(page, txid);
    bb_put16(page + 8, BB_META_PAGE);
    bb_meta_t m = {.magic = BBOLT_MAGIC,
                   .version = BBOLT_VERSION,
                   .page_size = BBOLT_PAGE_SIZE,
                   .root = root,
                   .freelist = FREELIST_PGID,
                   .pgid = w->next_pgid,
                   .txid = txid};
    bb_meta_encode(&m, page + BB_PAGE_HDR);
    rc = write_page(w->fd, page, txid);
  }
  if (rc == 0 && size) *size = w->next_pgid * BBOLT_PAGE_SIZE;
  bbolt_writer_free(w);
  return rc;
}
