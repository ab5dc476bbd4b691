/* Segment files: naming, listing, creation with preallocation, cutting, removal. Every
 * change to the directory is followed by an fsync of the directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "wal/wal_int.h"

#define NAME_LEN 37 /* 16 hex, '-', 16 hex, ".wal" */

void wal_segment_name(char *out, size_t n, uint64_t seq, uint64_t first_index) {
  snprintf(out, n, "%016" PRIx64 "-%016" PRIx64 ".wal", seq, first_index);
}

int wal_fsync_fd(int fd, bool data_only) {
  int rc;
  do rc = data_only ? fdatasync(fd) : fsync(fd);
  while (rc < 0 && errno == EINTR);
  return rc < 0 ? -errno : 0;
}

/* Parses 16 lower-case hex digits. */
static bool parse_hex16(const char *s, uint64_t *v) {
  uint64_t x = 0;
  for (int i = 0; i < 16; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    x = x << 4 | (uint64_t)d;
  }
  *v = x;
  return true;
}

static bool parse_name(const char *name, uint64_t *seq, uint64_t *first) {
  return strlen(name) == NAME_LEN && name[16] == '-' && !strcmp(name + 33, ".wal") &&
         parse_hex16(name, seq) && parse_hex16(name + 17, first);
}

static int cmp_seg(const void *a, const void *b) {
  const wal_seg_t *x = a, *y = b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int wal_segment_list(int dirfd, const char *dir, wal_seg_t **segs, size_t *n) {
  int fd = dup(dirfd);
  if (fd < 0) return -errno;
  DIR *d = fdopendir(fd);
  if (!d) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  rewinddir(d);
  wal_seg_t *v = NULL;
  size_t cnt = 0, cap = 0;
  bool removed = false;
  struct dirent *de;
  while ((de = readdir(d))) {
    uint64_t seq, first;
    size_t l = strlen(de->d_name);
    if (l > 8 && !strcmp(de->d_name + l - 8, ".wal.tmp")) {
      /* A segment whose creation did not finish; it never held records. */
      LOGW("wal: removing unfinished segment dir=%s file=%s", dir, de->d_name);
      if (unlinkat(dirfd, de->d_name, 0) == 0) removed = true;
      continue;
    }
    if (!parse_name(de->d_name, &seq, &first)) continue;
    if (cnt == cap) {
      cap = cap ? cap * 2 : 16;
      v = xrealloc(v, cap * sizeof(*v));
    }
    v[cnt++] = (wal_seg_t){.seq = seq, .first_index = first};
  }
  closedir(d);
  if (removed) wal_fsync_fd(dirfd, false);
  if (cnt) qsort(v, cnt, sizeof(*v), cmp_seg);
  for (size_t i = 1; i < cnt; i++) {
    if (v[i].seq != v[i - 1].seq + 1) {
      LOGE("wal: missing segment dir=%s after-seq=%" PRIu64 " next-seq=%" PRIu64, dir, v[i - 1].seq,
           v[i].seq);
      free(v);
      return CETCD_ECORRUPT;
    }
  }
  *segs = v;
  *n = cnt;
  return 0;
}

/* Preallocates [off, off+len) of fd, falling back to extending the size (a sparse file
 * still reads as zeros) where fallocate is unsupported. */
static int prealloc(int fd, uint64_t off, uint64_t len) {
  if (fallocate(fd, 0, (off_t)off, (off_t)len) == 0) return 0;
  if (errno != EOPNOTSUPP && errno != ENOSYS) return -errno;
  return ftruncate(fd, (off_t)(off + len)) == 0 ? 0 : -errno;
}

int wal_segment_prepare(int dirfd, const char *dir, uint64_t seq, uint64_t first_index, uint64_t size,
                        int *fdp) {
  char name[64], tmp[72];
  wal_segment_name(name, sizeof(name), seq, first_index);
  snprintf(tmp, sizeof(tmp), "%s.tmp", name);
  int fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    int rc = -errno;
    LOGE("wal: cannot create segment dir=%s file=%s err=\"%s\"", dir, tmp, strerror(-rc));
    return rc;
  }
  const char *what = "fallocate";
  int rc = prealloc(fd, 0, size);
  if (!rc) what = "fsync", rc = wal_fsync_fd(fd, false);
  if (rc) {
    if (rc != -ENOSPC && rc != -EDQUOT) /* the caller reports a full disk its own way */
      LOGE("wal: cannot create segment dir=%s file=%s step=%s err=\"%s\"", dir, tmp, what, strerror(-rc));
    close(fd);
    unlinkat(dirfd, tmp, 0);
    return rc;
  }
  *fdp = fd;
  return 0;
}

int wal_segment_publish(int dirfd, const char *dir, uint64_t seq, uint64_t first_index) {
  char name[64], tmp[72];
  wal_segment_name(name, sizeof(name), seq, first_index);
  snprintf(tmp, sizeof(tmp), "%s.tmp", name);
  const char *what = "rename";
  int rc = renameat(dirfd, tmp, dirfd, name) == 0 ? 0 : -errno;
  if (!rc) what = "fsync-dir", rc = wal_fsync_fd(dirfd, false);
  if (rc)
    LOGE("wal: cannot create segment dir=%s file=%s step=%s err=\"%s\"", dir, name, what, strerror(-rc));
  return rc;
}

int wal_segment_create(int dirfd, const char *dir, uint64_t seq, uint64_t first_index, uint64_t size,
                       int *fdp) {
  int fd, rc = wal_segment_prepare(dirfd, dir, seq, first_index, size, &fd);
  if (rc) {
    if (rc == -ENOSPC || rc == -EDQUOT)
      LOGE("wal: cannot create segment dir=%s err=\"%s\"", dir, strerror(-rc));
    return rc;
  }
  if ((rc = wal_segment_publish(dirfd, dir, seq, first_index))) {
    close(fd);
    return rc;
  }
  *fdp = fd;
  return 0;
}

int wal_segment_open(int dirfd, const char *dir, const wal_seg_t *s, int *fdp) {
  char name[64];
  wal_segment_name(name, sizeof(name), s->seq, s->first_index);
  int fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int rc = -errno;
    LOGE("wal: cannot open segment dir=%s file=%s err=\"%s\"", dir, name, strerror(-rc));
    return rc;
  }
  *fdp = fd;
  return 0;
}

int wal_segment_cut(int fd, uint64_t off, uint64_t size) {
  if (ftruncate(fd, (off_t)off) < 0) return -errno;
  if (size > off) {
    int rc = prealloc(fd, off, size - off);
    if (rc) return rc;
  }
  return wal_fsync_fd(fd, false);
}

int wal_segment_remove(int dirfd, const char *dir, const wal_seg_t *s) {
  char name[64];
  wal_segment_name(name, sizeof(name), s->seq, s->first_index);
  if (unlinkat(dirfd, name, 0) < 0) {
    int rc = -errno;
    LOGW("wal: cannot remove segment dir=%s file=%s err=\"%s\"", dir, name, strerror(-rc));
    return rc;
  }
  return 0;
}
