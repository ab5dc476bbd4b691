/* bbolt on-disk constants and little-endian field helpers shared by the writer and the
 * reader. Private to src/snapshot. */
#ifndef CETCD_SNAPSHOT_BBOLT_INT_H
#define CETCD_SNAPSHOT_BBOLT_INT_H

#include <stdint.h>
#include <string.h>

enum {
  BB_PAGE_HDR = 16,    /* id u64, flags u16, count u16, overflow u32 */
  BB_ELEM_SIZE = 16,   /* leaf: flags,pos,ksize,vsize u32; branch: pos,ksize u32, pgid u64 */
  BB_BUCKET_HDR = 16,  /* root pgid u64, sequence u64 */
  BB_META_SIZE = 64,   /* meta fields incl. checksum */
  BB_META_SUMMED = 56, /* bytes covered by the meta checksum */
  BB_BRANCH_PAGE = 0x01,
  BB_LEAF_PAGE = 0x02,
  BB_META_PAGE = 0x04,
  BB_FREELIST_PAGE = 0x10,
  BB_BUCKET_LEAF_FLAG = 0x01,
};

/* A decoded meta page body. */
typedef struct bb_meta {
  uint32_t magic, version, page_size, flags;
  uint64_t root, sequence, freelist, pgid, txid, checksum;
} bb_meta_t;

static inline void bb_put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void bb_put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void bb_put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t bb_get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t bb_get32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static inline uint64_t bb_get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* FNV-1a 64 of n bytes (bbolt's meta checksum). */
static inline uint64_t bb_fnv1a64(const uint8_t *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

/* Encodes m into 64 bytes at p, computing the checksum (m->checksum is ignored). */
static inline void bb_meta_encode(const bb_meta_t *m, uint8_t *p) {
  bb_put32(p, m->magic);
  bb_put32(p + 4, m->version);
  bb_put32(p + 8, m->page_size);
  bb_put32(p + 12, m->flags);
  bb_put64(p + 16, m->root);
  bb_put64(p + 24, m->sequence);
  bb_put64(p + 32, m->freelist);
  bb_put64(p + 40, m->pgid);
  bb_put64(p + 48, m->txid);
  bb_put64(p + 56, bb_fnv1a64(p, BB_META_SUMMED));
}

/* Decodes 64 bytes at p into m. */
static inline void bb_meta_decode(const uint8_t *p, bb_meta_t *m) {
  m->magic = bb_get32(p);
  m->version = bb_get32(p + 4);
  m->page_size = bb_get32(p + 8);
  m->flags = bb_get32(p + 12);
  m->root = bb_get64(p + 16);
  m->sequence = bb_get64(p + 24);
  m->freelist = bb_get64(p + 32);
  m->pgid = bb_get64(p + 40);
  m->txid = bb_get64(p + 48);
  m->checksum = bb_get64(p + 56);
}

#endif
