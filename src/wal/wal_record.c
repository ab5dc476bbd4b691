/* Record encoding and decoding: pure functions over byte buffers (format in wal_int.h). */
#include <string.h>

#include "wal/wal_int.h"

static void put_header(uint8_t *out, int type, size_t len) {
  wal_put_u32(out + 4, (uint32_t)len);
  out[8] = (uint8_t)type;
  out[9] = WAL_MAGIC;
  memset(out + 10, 0, 6);
}

void wal_record_prefix(uint8_t *out, int type, const uint8_t *fixed, size_t nfixed, const void *tail,
                       size_t ntail) {
  put_header(out, type, nfixed + ntail);
  if (nfixed) memcpy(out + WAL_HDR_SIZE, fixed, nfixed);
  uint32_t crc = wal_crc32c(0, out + 4, WAL_HDR_SIZE - 4 + nfixed);
  if (ntail) crc = wal_crc32c(crc, tail, ntail);
  wal_put_u32(out, crc);
}

size_t wal_record_encode(uint8_t *out, int type, const uint8_t *fixed, size_t nfixed, const void *tail,
                         size_t ntail) {
  wal_record_prefix(out, type, fixed, nfixed, tail, ntail);
  size_t pos = WAL_HDR_SIZE + nfixed;
  if (ntail) memcpy(out + pos, tail, ntail);
  pos += ntail;
  size_t total = wal_record_size(nfixed + ntail);
  memset(out + pos, 0, total - pos);
  return total;
}

/* Is len a valid payload length for type? */
static bool len_ok(int type, uint32_t len) {
  switch (type) {
    case WAL_REC_ENTRY:
    case WAL_REC_CONF_ENTRY:
      return len >= 16 && len <= WAL_MAX_PAYLOAD;
    case WAL_REC_HARDSTATE:
      return len == 24;
    case WAL_REC_SNAPSHOT:
      return len == 16;
    case WAL_REC_BATCH:
      return len == 24;
    default:
      return false;
  }
}

int wal_record_decode(const uint8_t *p, size_t avail, wal_record_t *rec) {
  if (avail < WAL_HDR_SIZE) return WAL_DEC_SHORT;
  uint32_t len = wal_get_u32(p + 4);
  int type = p[8];
  if (p[9] != WAL_MAGIC || !len_ok(type, len)) return WAL_DEC_BADHDR;
  for (int i = 10; i < WAL_HDR_SIZE; i++)
    if (p[i]) return WAL_DEC_BADHDR;
  size_t size = wal_record_size(len);
  if (size > avail) return WAL_DEC_SHORT;
  if (wal_crc32c(0, p + 4, WAL_HDR_SIZE - 4 + (size_t)len) != wal_get_u32(p)) return WAL_DEC_BADCRC;
  rec->type = type;
  rec->payload = p + WAL_HDR_SIZE;
  rec->len = len;
  rec->size = size;
  return WAL_DEC_OK;
}
