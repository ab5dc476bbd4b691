/* mvccpb.KeyValue wire codec: hand-written because it is on every Put and Range. */
#include <string.h>

#include "cetcd/errors.h"
#include "mvcc/revision_int.h"

/* Bytes needed for v as a varint. */
static size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* Writes v as a varint; returns the bytes written. */
static size_t varint_put(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

/* Reads a varint at *pp (bounded by end); returns false if truncated. */
static bool varint_get(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  const uint8_t *p = *pp;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p >= end) return false;
    uint8_t b = *p++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *pp = p;
      *out = v;
      return true;
    }
  }
  return false;
}

size_t mvcc_kv_encoded_size(const mvcc_kv_view_t *kv) {
  size_t n = 0;
  if (kv->klen) n += 1 + varint_size(kv->klen) + kv->klen;
  if (kv->create_rev) n += 1 + varint_size((uint64_t)kv->create_rev);
  if (kv->mod_rev) n += 1 + varint_size((uint64_t)kv->mod_rev);
  if (kv->version) n += 1 + varint_size((uint64_t)kv->version);
  if (kv->vlen) n += 1 + varint_size(kv->vlen) + kv->vlen;
  if (kv->lease) n += 1 + varint_size((uint64_t)kv->lease);
  return n;
}

size_t mvcc_kv_encode(const mvcc_kv_view_t *kv, uint8_t *out) {
  uint8_t *p = out;
  if (kv->klen) {
    *p++ = 0x0a;
    p += varint_put(p, kv->klen);
    memcpy(p, kv->key, kv->klen);
    p += kv->klen;
  }
  if (kv->create_rev) {
    *p++ = 0x10;
    p += varint_put(p, (uint64_t)kv->create_rev);
  }
  if (kv->mod_rev) {
    *p++ = 0x18;
    p += varint_put(p, (uint64_t)kv->mod_rev);
  }
  if (kv->version) {
    *p++ = 0x20;
    p += varint_put(p, (uint64_t)kv->version);
  }
  if (kv->vlen) {
    *p++ = 0x2a;
    p += varint_put(p, kv->vlen);
    memcpy(p, kv->value, kv->vlen);
    p += kv->vlen;
  }
  if (kv->lease) {
    *p++ = 0x30;
    p += varint_put(p, (uint64_t)kv->lease);
  }
  return (size_t)(p - out);
}

int mvcc_kv_decode(const uint8_t *p, size_t n, mvcc_kv_view_t *kv) {
  memset(kv, 0, sizeof(*kv));
  const uint8_t *end = p + n;
  while (p < end) {
    uint64_t tag, v;
    if (!varint_get(&p, end, &tag)) return CETCD_ECORRUPT;
    unsigned field = (unsigned)(tag >> 3), wt = (unsigned)(tag & 7);
    if (wt == 0) {
      if (!varint_get(&p, end, &v)) return CETCD_ECORRUPT;
      switch (field) {
        case 2:
          kv->create_rev = (int64_t)v;
          break;
        case 3:
          kv->mod_rev = (int64_t)v;
          break;
        case 4:
          kv->version = (int64_t)v;
          break;
        case 6:
          kv->lease = (int64_t)v;
          break;
        default:
          break;
      }
    } else if (wt == 2) {
      if (!varint_get(&p, end, &v) || v > (uint64_t)(end - p)) return CETCD_ECORRUPT;
      if (field == 1) {
        kv->key = p;
        kv->klen = (size_t)v;
      } else if (field == 5) {
        kv->value = p;
        kv->vlen = (size_t)v;
      }
      p += v;
    } else if (wt == 1) {
      if (end - p < 8) return CETCD_ECORRUPT;
      p += 8;
    } else if (wt == 5) {
      if (end - p < 4) return CETCD_ECORRUPT;
      p += 4;
    } else {
      return CETCD_ECORRUPT;
    }
  }
  return 0;
}

Mvccpb__KeyValue *mvcc_kv_decode_arena(const uint8_t *p, size_t n, bool keys_only, arena_t *arena) {
  mvcc_kv_view_t v;
  if (mvcc_kv_decode(p, n, &v)) return NULL;
  size_t vlen = keys_only ? 0 : v.vlen;
  /* one allocation: struct, key, value */
  size_t hdr = (sizeof(Mvccpb__KeyValue) + 15) & ~(size_t)15;
  uint8_t *mem = arena_alloc(arena, hdr + v.klen + vlen + 1);
  Mvccpb__KeyValue *kv = (Mvccpb__KeyValue *)mem;
  mvccpb__key_value__init(kv);
  uint8_t *data = mem + hdr;
  if (v.klen) memcpy(data, v.key, v.klen);
  kv->key.data = v.klen ? data : NULL;
  kv->key.len = v.klen;
  if (vlen) memcpy(data + v.klen, v.value, vlen);
  kv->value.data = vlen ? data + v.klen : NULL;
  kv->value.len = vlen;
  data[v.klen + vlen] = 0;
  kv->create_revision = v.create_rev;
  kv->mod_revision = v.mod_rev;
  kv->version = v.version;
  kv->lease = v.lease;
  return kv;
}
