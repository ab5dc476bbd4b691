/* bbolt (go.etcd.io/bbolt, file format version 2) writer and reader: just enough of the
 * format for etcd snapshots, i.e. one level of named buckets holding sorted key/value
 * records.
 *
 * File layout written: page 0 and 1 meta pages (txid 0 and 1, identical otherwise), page
 * 2 an empty freelist, then every bucket's B+tree (leaves first, then branch levels, pages
 * filled up to the page size, a record too large for a page gets overflow pages), then the
 * root bucket's tree. Small buckets (leaf under a quarter page) are stored inline in the
 * root bucket's leaf, like bbolt does. All integers are little-endian (bbolt on amd64).
 *
 * Thread-safety: a writer or reader is used by one thread at a time; no global state. */
#ifndef CETCD_SNAPSHOT_BBOLT_H
#define CETCD_SNAPSHOT_BBOLT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
  BBOLT_PAGE_SIZE = 4096,   /* page size of files written here */
  BBOLT_MAX_KEY = 32768,    /* bbolt's MaxKeySize */
  BBOLT_MAGIC = 0xED0CDAED, /* meta magic */
  BBOLT_VERSION = 2,        /* data file format version */
};

/* ---- writer ---- */

typedef struct bbolt_writer bbolt_writer_t;

/* Starts a new bbolt file on fd (borrowed; written with pwrite from offset 0, the file
 * should be empty). *out is owned by the caller: bbolt_writer_finish or _free. Returns 0. */
int bbolt_writer_open(int fd, bbolt_writer_t **out);
/* Starts bucket `name` (1..BBOLT_MAX_KEY bytes, copied). Buckets may come in any order but
 * each name once. Returns 0, CETCD_EINVAL (bad name, a bucket already open, duplicate) or
 * the sticky I/O error. */
int bbolt_writer_bucket_begin(bbolt_writer_t *w, const void *name, size_t nlen);
/* Adds a record to the open bucket (bytes copied). Keys must be strictly increasing
 * (memcmp order) and 1..BBOLT_MAX_KEY bytes. Returns 0, CETCD_EINVAL or a -errno from
 * writing (sticky: later calls return it too). */
int bbolt_writer_put(bbolt_writer_t *w, const void *key, size_t klen, const void *val, size_t vlen);
/* Ends the open bucket. Returns 0, CETCD_EINVAL (none open) or the sticky error. */
int bbolt_writer_bucket_end(bbolt_writer_t *w);
/* Writes the root bucket, the freelist and both meta pages, and frees w (always).
 * *size (optional) gets the file size in bytes. Returns 0 or a negative code. */
int bbolt_writer_finish(bbolt_writer_t *w, uint64_t *size);
/* Frees a writer without finishing the file (NULL is fine). */
void bbolt_writer_free(bbolt_writer_t *w);

/* ---- reader ---- */

typedef struct bbolt_reader bbolt_reader_t;

/* Opens the bbolt file at path read-only (mmap). Bytes past the high-water mark (e.g. the
 * sha256 etcd appends to snapshots) are ignored. Picks the valid meta page with the higher
 * txid. On success *out is owned by the caller (bbolt_reader_close). Returns 0, -errno,
 * or CETCD_ECORRUPT with a message in err (errlen bytes, may be NULL). */
int bbolt_reader_open(const char *path, bbolt_reader_t **out, char *err, size_t errlen);
/* Like bbolt_reader_open over len bytes at data (borrowed; must outlive the reader). */
int bbolt_reader_open_mem(const void *data, size_t len, bbolt_reader_t **out, char *err, size_t errlen);
/* Closes the reader (NULL is fine). Data handed to callbacks is invalid afterwards. */
void bbolt_reader_close(bbolt_reader_t *r);
/* The txid of the meta page in use. */
uint64_t bbolt_reader_txid(const bbolt_reader_t *r);
/* The high-water page id (file bytes in use = pgid * page size). */
uint64_t bbolt_reader_pgid(const bbolt_reader_t *r);
/* The last error message (empty if none); valid until the next call. */
const char *bbolt_reader_error(const bbolt_reader_t *r);

/* Called once per top-level bucket, in key order, before its records. Non-zero stops. */
typedef int (*bbolt_bucket_fn)(void *ctx, const uint8_t *name, size_t nlen);
/* Called per record of a top-level bucket in key order; bucket/key/value bytes are
 * borrowed from the file. Nested buckets are skipped. Non-zero stops the walk. */
typedef int (*bbolt_record_fn)(void *ctx, const uint8_t *bucket, size_t blen, const uint8_t *key, size_t klen,
                               const uint8_t *val, size_t vlen);

/* Walks every top-level bucket (bucket_fn may be NULL) and its records, checking page
 * bounds, types, element bounds and key order. Returns 0, what a callback returned, or
 * CETCD_ECORRUPT (message in bbolt_reader_error). */
int bbolt_reader_walk(bbolt_reader_t *r, bbolt_bucket_fn bucket_fn, bbolt_record_fn record_fn, void *ctx);

/* Looks up key in top-level bucket `bucket`; *val and *vlen get borrowed bytes. Returns 0,
 * CETCD_EKEYNOTFOUND (no such bucket or key) or CETCD_ECORRUPT. */
int bbolt_reader_get(bbolt_reader_t *r, const char *bucket, const void *key, size_t klen, const uint8_t **val,
                     size_t *vlen);

#endif
