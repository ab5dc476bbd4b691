/* Revisions (main, sub) and their 17/18-byte on-disk form, plus the mvccpb.KeyValue
 * wire codec used on the hot path. Private to src/mvcc. */
#ifndef CETCD_MVCC_REVISION_INT_H
#define CETCD_MVCC_REVISION_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "kv.pb-c.h"

/* A revision: main is the store revision of a request, sub the index of the write in it. */
typedef struct mvcc_rev {
  int64_t main;
  int64_t sub;
} mvcc_rev_t;

enum {
  MVCC_REV_BYTES = 17,      /* 8-byte BE main, '_', 8-byte BE sub */
  MVCC_REV_BYTES_TOMB = 18, /* ... plus 't' for a tombstone */
};

/* Returns <0, 0, >0 as a is before, equal to, after b. */
static inline int mvcc_rev_cmp(mvcc_rev_t a, mvcc_rev_t b) {
  if (a.main != b.main) return a.main < b.main ? -1 : 1;
  if (a.sub != b.sub) return a.sub < b.sub ? -1 : 1;
  return 0;
}

/* Writes the 17-byte encoding of r into out (18 with the tombstone mark if tomb). Returns
 * the number of bytes written. */
static inline size_t mvcc_rev_encode(mvcc_rev_t r, bool tomb, uint8_t *out) {
  uint64_t m = (uint64_t)r.main, s = (uint64_t)r.sub;
  for (int i = 0; i < 8; i++) out[i] = (uint8_t)(m >> (56 - 8 * i));
  out[8] = '_';
  for (int i = 0; i < 8; i++) out[9 + i] = (uint8_t)(s >> (56 - 8 * i));
  if (tomb) out[17] = 't';
  return tomb ? MVCC_REV_BYTES_TOMB : MVCC_REV_BYTES;
}

/* Decodes the first 17 bytes of p (the caller checked the length). */
static inline mvcc_rev_t mvcc_rev_decode(const uint8_t *p) {
  uint64_t m = 0, s = 0;
  for (int i = 0; i < 8; i++) m = m << 8 | p[i];
  for (int i = 0; i < 8; i++) s = s << 8 | p[9 + i];
  return (mvcc_rev_t){(int64_t)m, (int64_t)s};
}

/* True if the on-disk revision key marks a tombstone. */
static inline bool mvcc_rev_is_tomb(const uint8_t *p, size_t n) {
  return n == MVCC_REV_BYTES_TOMB && p[MVCC_REV_BYTES] == 't';
}

/* A decoded KeyValue whose key and value point into the bytes it was decoded from. */
typedef struct mvcc_kv_view {
  const uint8_t *key;
  size_t klen;
  const uint8_t *value;
  size_t vlen;
  int64_t create_rev, mod_rev, version, lease;
} mvcc_kv_view_t;

/* Returns the encoded size of a KeyValue with these fields (proto3: zero fields omitted). */
size_t mvcc_kv_encoded_size(const mvcc_kv_view_t *kv);
/* Encodes kv into out (which has mvcc_kv_encoded_size bytes); byte-identical to etcd's
 * gogoproto Marshal. Returns the bytes written. */
size_t mvcc_kv_encode(const mvcc_kv_view_t *kv, uint8_t *out);
/* Decodes an encoded KeyValue without copying. Returns 0 or CETCD_ECORRUPT. */
int mvcc_kv_decode(const uint8_t *p, size_t n, mvcc_kv_view_t *kv);
/* Decodes an encoded KeyValue into a new Mvccpb__KeyValue owned by arena (key and value
 * copied; the value skipped if keys_only). Returns NULL on malformed input. */
Mvccpb__KeyValue *mvcc_kv_decode_arena(const uint8_t *p, size_t n, bool keys_only, arena_t *arena);

#endif
