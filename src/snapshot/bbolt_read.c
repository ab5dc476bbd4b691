/* bbolt reader over an mmapped (or caller-provided) image, with bounds checks on every
 * page, element and key so that a corrupt file yields CETCD_ECORRUPT, never a crash. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "snapshot/bbolt.h"
#include "snapshot/bbolt_int.h"

enum { MAX_DEPTH = 64 };
#define NO_FREELIST UINT64_MAX

struct bbolt_reader {
  const uint8_t *data;
  size_t len;
  void *map; /* mmapped file, or NULL */
  size_t maplen;
  uint32_t psize;
  bb_meta_t meta;
  char err[256];
};

/* Records a message and returns CETCD_ECORRUPT. */
__attribute__((format(printf, 2, 3))) static int corrupt(bbolt_reader_t *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err, sizeof(r->err), fmt, ap);
  va_end(ap);
  return CETCD_ECORRUPT;
}

/* Checks a meta candidate at byte offset off; returns 0 or a reason (static string). */
static const char *meta_check(const bbolt_reader_t *r, size_t off, uint32_t want_psize, bb_meta_t *m) {
  if (off + BB_PAGE_HDR + BB_META_SIZE > r->len) return "file too short for a meta page";
  const uint8_t *p = r->data + off;
  if (!(bb_get16(p + 8) & BB_META_PAGE)) return "not a meta page";
  bb_meta_decode(p + BB_PAGE_HDR, m);
  if (m->magic != BBOLT_MAGIC) return "bad magic (not a bbolt file)";
  if (m->version != BBOLT_VERSION) return "unsupported bbolt version";
  if (m->checksum != 0 && m->checksum != bb_fnv1a64(p + BB_PAGE_HDR, BB_META_SUMMED))
    return "meta checksum mismatch";
  if (m->page_size < 512 || m->page_size > 65536 || (m->page_size & (m->page_size - 1)))
    return "invalid page size";
  if (want_psize && m->page_size != want_psize) return "page size differs from the other meta";
  if (m->pgid < 3 || m->root < 2 || m->root >= m->pgid) return "root page out of range";
  if (m->freelist != NO_FREELIST && (m->freelist < 2 || m->freelist >= m->pgid))
    return "freelist page out of range";
  if (m->pgid > (uint64_t)(r->len / m->page_size))
    return "file truncated (shorter than the meta's high-water mark)";
  return NULL;
}

/* Picks the valid meta with the higher txid. */
static int pick_meta(bbolt_reader_t *r) {
  bb_meta_t m0, m1;
  const char *e0 = meta_check(r, 0, 0, &m0);
  const char *e1 = "not checked";
  uint32_t ps = e0 ? 0 : m0.page_size;
  if (ps) {
    e1 = meta_check(r, ps, ps, &m1);
  } else {
    /* meta 0 is unusable: find meta 1 at the common page sizes */
    static const uint32_t sizes[] = {4096, 512, 1024, 2048, 8192, 16384, 32768, 65536};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
      const char *e = meta_check(r, sizes[i], sizes[i], &m1);
      if (i == 0 || !e) e1 = e; /* report what the default page size found */
      if (!e) break;
    }
  }
  if (e0 && e1) return corrupt(r, "bbolt: no valid meta page (meta 0: %s; meta 1: %s)", e0, e1);
  if (!e0 && (e1 || m0.txid >= m1.txid))
    r->meta = m0;
  else
    r->meta = m1;
  r->psize = r->meta.page_size;
  return 0;
}

int bbolt_reader_open_mem(const void *data, size_t len, bbolt_reader_t **out, char *err, size_t errlen) {
  bbolt_reader_t *r = xcalloc(1, sizeof(*r));
  r->data = data;
  r->len = len;
  int rc = pick_meta(r);
  if (rc) {
    if (err && errlen) snprintf(err, errlen, "%s", r->err);
    bbolt_reader_close(r);
    return rc;
  }
  *out = r;
  return 0;
}

int bbolt_reader_open(const char *path, bbolt_reader_t **out, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (err && errlen) snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
    return -e;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    if (err && errlen) snprintf(err, errlen, "cannot stat %s: %s", path, strerror(e));
    return -e;
  }
  size_t len = (size_t)st.st_size;
  void *map = NULL;
  if (len > 0) {
    map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      int e = errno;
      close(fd);
      if (err && errlen) snprintf(err, errlen, "cannot mmap %s: %s", path, strerror(e));
      return -e;
    }
  }
  close(fd);
  int rc = bbolt_reader_open_mem(map ? map : "", len, out, err, errlen);
  if (rc) {
    if (map) munmap(map, len);
    return rc;
  }
  (*out)->map = map;
  (*out)->maplen = len;
  return 0;
}

void bbolt_reader_close(bbolt_reader_t *r) {
  if (!r) return;
  if (r->map) munmap(r->map, r->maplen);
  free(r);
}

uint64_t bbolt_reader_txid(const bbolt_reader_t *r) { return r->meta.txid; }
uint64_t bbolt_reader_pgid(const bbolt_reader_t *r) { return r->meta.pgid; }
const char *bbolt_reader_error(const bbolt_reader_t *r) { return r->err; }

/* A page: its bytes and span (header included). */
typedef struct pg {
  const uint8_t *p;
  size_t span;
  uint16_t flags, count;
} pg_t;

/* Resolves a B+tree page id with bounds, id and type checks. */
static int get_page(bbolt_reader_t *r, uint64_t id, pg_t *out) {
  if (id < 2 || id >= r->meta.pgid)
    return corrupt(r, "bbolt: page id %" PRIu64 " out of range [2, %" PRIu64 ")", id, r->meta.pgid);
  const uint8_t *p = r->data + id * r->psize;
  uint32_t ovf = bb_get32(p + 12);
  if ((uint64_t)ovf >= r->meta.pgid - id)
    return corrupt(r, "bbolt: page %" PRIu64 " overflow %" PRIu32 " runs past the high-water mark", id, ovf);
  if (bb_get64(p) != id) return corrupt(r, "bbolt: page %" PRIu64 " carries id %" PRIu64, id, bb_get64(p));
  out->p = p;
  out->span = ((size_t)ovf + 1) * r->psize;
  out->flags = bb_get16(p + 8);
  out->count = bb_get16(p + 10);
  return 0;
}

/* Per-tree walk state: the element callback and the previous key for order checks. */
typedef struct tree_walk {
  bbolt_reader_t *r;
  int (*elem)(void *ctx, uint32_t flags, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen);
  void *ctx;
  const uint8_t *prev;
  size_t prevlen;
  bool has_prev;
} tree_walk_t;

/* Visits the page's elements (recursing into branches) in order. */
static int walk_page(tree_walk_t *tw, const pg_t *pg, int depth) {
  bbolt_reader_t *r = tw->r;
  if (depth > MAX_DEPTH) return corrupt(r, "bbolt: tree deeper than %d levels (cycle?)", MAX_DEPTH);
  if ((size_t)BB_PAGE_HDR + (size_t)pg->count * BB_ELEM_SIZE > pg->span)
    return corrupt(r, "bbolt: page element count %u does not fit the page", pg->count);
  if (pg->flags & BB_BRANCH_PAGE) {
    if (pg->count == 0) return corrupt(r, "bbolt: empty branch page");
    for (uint16_t i = 0; i < pg->count; i++) {
      size_t eoff = BB_PAGE_HDR + (size_t)i * BB_ELEM_SIZE;
      const uint8_t *e = pg->p + eoff;
      uint64_t pos = bb_get32(e), ks = bb_get32(e + 4);
      if (eoff + pos + ks > pg->span) return corrupt(r, "bbolt: branch element key out of page bounds");
      pg_t child;
      int rc = get_page(r, bb_get64(e + 8), &child);
      if (rc) return rc;
      if (!(child.flags & (BB_BRANCH_PAGE | BB_LEAF_PAGE)))
        return corrupt(r, "bbolt: page %" PRIu64 " has invalid type 0x%x", bb_get64(e + 8), child.flags);
      if ((rc = walk_page(tw, &child, depth + 1))) return rc;
    }
    return 0;
  }
  if (!(pg->flags & BB_LEAF_PAGE)) return corrupt(r, "bbolt: tree page has invalid type 0x%x", pg->flags);
  for (uint16_t i = 0; i < pg->count; i++) {
    size_t eoff = BB_PAGE_HDR + (size_t)i * BB_ELEM_SIZE;
    const uint8_t *e = pg->p + eoff;
    uint32_t flags = bb_get32(e);
    uint64_t pos = bb_get32(e + 4), ks = bb_get32(e + 8), vs = bb_get32(e + 12);
    if (eoff + pos + ks + vs > pg->span) return corrupt(r, "bbolt: leaf element out of page bounds");
    const uint8_t *k = e + pos;
    if (tw->has_prev) {
      size_t m = ks < tw->prevlen ? ks : tw->prevlen;
      int c = memcmp(tw->prev, k, m);
      if (c > 0 || (c == 0 && tw->prevlen >= ks)) return corrupt(r, "bbolt: keys out of order");
    }
    tw->prev = k;
    tw->prevlen = ks;
    tw->has_prev = true;
    int rc = tw->elem(tw->ctx, flags, k, ks, k + ks, vs);
    if (rc) return rc;
  }
  return 0;
}

/* Walks a bucket given its header value (root page id, or an inline page after it). */
static int walk_bucket(bbolt_reader_t *r, const uint8_t *v, size_t vlen, tree_walk_t *tw) {
  if (vlen < BB_BUCKET_HDR) return corrupt(r, "bbolt: bucket header too short (%zu bytes)", vlen);
  uint64_t root = bb_get64(v);
  pg_t pg;
  if (root == 0) {
    if (vlen < BB_BUCKET_HDR + BB_PAGE_HDR) return corrupt(r, "bbolt: inline bucket too short");
    pg.p = v + BB_BUCKET_HDR;
    pg.span = vlen - BB_BUCKET_HDR;
    pg.flags = bb_get16(pg.p + 8);
    pg.count = bb_get16(pg.p + 10);
    if (!(pg.flags & BB_LEAF_PAGE)) return corrupt(r, "bbolt: inline bucket page is not a leaf");
  } else {
    int rc = get_page(r, root, &pg);
    if (rc) return rc;
  }
  return walk_page(tw, &pg, 0);
}

/* State of a full walk. */
typedef struct full_walk {
  bbolt_reader_t *r;
  bbolt_bucket_fn bucket_fn;
  bbolt_record_fn record_fn;
  void *ctx;
  const uint8_t *bname;
  size_t blen;
} full_walk_t;

/* Element of a top-level bucket: a record (nested buckets are skipped). */
static int record_elem(void *ctx, uint32_t flags, const uint8_t *k, size_t klen, const uint8_t *v,
                       size_t vlen) {
  full_walk_t *fw = ctx;
  if (flags & BB_BUCKET_LEAF_FLAG) return 0;
  return fw->record_fn ? fw->record_fn(fw->ctx, fw->bname, fw->blen, k, klen, v, vlen) : 0;
}

/* Element of the root bucket: a top-level bucket. */
static int root_elem(void *ctx, uint32_t flags, const uint8_t *k, size_t klen, const uint8_t *v,
                     size_t vlen) {
  full_walk_t *fw = ctx;
  if (!(flags & BB_BUCKET_LEAF_FLAG)) return 0; /* bbolt keeps no plain values at the root */
  if (fw->bucket_fn) {
    int rc = fw->bucket_fn(fw->ctx, k, klen);
    if (rc) return rc;
  }
  fw->bname = k;
  fw->blen = klen;
  tree_walk_t tw = {.r = fw->r, .elem = record_elem, .ctx = fw};
  return walk_bucket(fw->r, v, vlen, &tw);
}

int bbolt_reader_walk(bbolt_reader_t *r, bbolt_bucket_fn bucket_fn, bbolt_record_fn record_fn, void *ctx) {
  r->err[0] = 0;
  full_walk_t fw = {.r = r, .bucket_fn = bucket_fn, .record_fn = record_fn, .ctx = ctx};
  tree_walk_t tw = {.r = r, .elem = root_elem, .ctx = &fw};
  pg_t pg;
  int rc = get_page(r, r->meta.root, &pg);
  if (rc == 0) rc = walk_page(&tw, &pg, 0);
  return rc;
}

/* State of a lookup. */
typedef struct get_ctx {
  const void *want;
  size_t wlen;
  bool found;
  const uint8_t *v;
  size_t vlen;
  uint32_t flags;
} get_ctx_t;

enum { STOP = 1 };

/* Element visitor of a lookup: stops at the wanted key. */
static int get_elem(void *ctx, uint32_t flags, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen) {
  get_ctx_t *g = ctx;
  if (klen != g->wlen || memcmp(k, g->want, klen)) return 0;
  g->found = true;
  g->v = v;
  g->vlen = vlen;
  g->flags = flags;
  return STOP;
}

int bbolt_reader_get(bbolt_reader_t *r, const char *bucket, const void *key, size_t klen, const uint8_t **val,
                     size_t *vlen) {
  r->err[0] = 0;
  get_ctx_t g = {.want = bucket, .wlen = strlen(bucket)};
  tree_walk_t tw = {.r = r, .elem = get_elem, .ctx = &g};
  pg_t pg;
  int rc = get_page(r, r->meta.root, &pg);
  if (rc == 0) rc = walk_page(&tw, &pg, 0);
  if (rc < 0) return rc;
  if (!g.found || !(g.flags & BB_BUCKET_LEAF_FLAG)) return CETCD_EKEYNOTFOUND;
  const uint8_t *bv = g.v;
  size_t bvlen = g.vlen;
  get_ctx_t g2 = {.want = key, .wlen = klen};
  tree_walk_t tw2 = {.r = r, .elem = get_elem, .ctx = &g2};
  rc = walk_bucket(r, bv, bvlen, &tw2);
  if (rc < 0) return rc;
  if (!g2.found || (g2.flags & BB_BUCKET_LEAF_FLAG)) return CETCD_EKEYNOTFOUND;
  *val = g2.v;
  *vlen = g2.vlen;
  return 0;
}
