/* Helpers shared by the WAL tests: temporary directories, a replay collector, and
 * byte-level access to segment files. */
#ifndef CETCD_TESTS_WAL_TEST_UTIL_H
#define CETCD_TESTS_WAL_TEST_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "wal/wal.h"

typedef struct coll_entry {
  uint64_t index, term;
  uint8_t *data;
  size_t len;
} coll_entry_t;

/* Everything replay delivered. */
typedef struct coll {
  coll_entry_t *e;
  size_t n, cap;
  size_t nhs, nsnap;
  uint64_t hs[3], snap[2];
} coll_t;

static inline int coll_entry(void *ctx, uint64_t index, uint64_t term, const uint8_t *data, size_t len) {
  coll_t *c = ctx;
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 64;
    c->e = xrealloc(c->e, c->cap * sizeof(*c->e));
  }
  c->e[c->n++] = (coll_entry_t){index, term, xmemdup(data, len), len};
  return 0;
}

static inline int coll_hs(void *ctx, uint64_t term, uint64_t vote, uint64_t commit) {
  coll_t *c = ctx;
  c->nhs++;
  c->hs[0] = term, c->hs[1] = vote, c->hs[2] = commit;
  return 0;
}

static inline int coll_snap(void *ctx, uint64_t index, uint64_t term) {
  coll_t *c = ctx;
  c->nsnap++;
  c->snap[0] = index, c->snap[1] = term;
  return 0;
}

static inline void coll_free(coll_t *c) {
  for (size_t i = 0; i < c->n; i++) free(c->e[i].data);
  free(c->e);
  memset(c, 0, sizeof(*c));
}

static inline wal_replay_t coll_replay(coll_t *c) {
  return (wal_replay_t){.entry = coll_entry, .hardstate = coll_hs, .snapshot = coll_snap, .ctx = c};
}

/* Reads back the whole WAL in dir into col (the WAL is opened and closed again). */
static inline void replay_dir(const char *dir, coll_t *col) {
  wal_replay_t r = coll_replay(col);
  wal_t *w;
  if (wal_open(dir, NULL, &r, &w) != 0 || wal_close(w) != 0) abort();
}

static inline char *make_tmpdir(void) {
  char *d = xstrdup("/tmp/cetcd-wal-test-XXXXXX");
  if (!mkdtemp(d)) abort();
  return d;
}

static inline int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f) {
  (void)st, (void)flag, (void)f;
  return remove(p);
}

static inline void rm_tmpdir(char *d) {
  nftw(d, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(d);
}

/* Number of *.wal files in dir, and the path of the last one (by name) in last. */
static inline int list_segments(const char *dir, char *last, size_t n) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int cnt = 0;
  char best[256] = "";
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l < 4 || strcmp(de->d_name + l - 4, ".wal")) continue;
    cnt++;
    if (strcmp(de->d_name, best) > 0) snprintf(best, sizeof(best), "%s", de->d_name);
  }
  closedir(d);
  if (last) snprintf(last, n, "%s/%s", dir, best);
  return cnt;
}

/* Reads a whole file; *len gets its size. */
static inline uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) abort();
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = xmalloc((size_t)n + 1);
  if (fread(p, 1, (size_t)n, f) != (size_t)n) abort();
  fclose(f);
  *len = (size_t)n;
  return p;
}

static inline void write_at(const char *path, size_t off, const void *p, size_t n) {
  int fd = open(path, O_WRONLY);
  if (fd < 0 || pwrite(fd, p, n, (off_t)off) != (ssize_t)n) abort();
  close(fd);
}

/* Offset just past the last non-zero byte of the file. */
static inline size_t data_end(const char *path) {
  size_t n = 0;
  uint8_t *p = read_file(path, &n);
  while (n && !p[n - 1]) n--;
  free(p);
  return n;
}

/* Offset of the first occurrence of needle in the file, or (size_t)-1. */
static inline size_t find_in_file(const char *path, const char *needle) {
  size_t n = 0;
  uint8_t *p = read_file(path, &n);
  uint8_t *q = memmem(p, n, needle, strlen(needle));
  size_t off = q ? (size_t)(q - p) : (size_t)-1;
  free(p);
  return off;
}

#endif
