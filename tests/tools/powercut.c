/* Power-cut simulator (test helper, LD_PRELOAD). It keeps, outside the watched tree, the
 * durable image of every file and directory under CETCD_POWERCUT_DIR:
 *   $CETCD_POWERCUT_SHADOW/files/<ino>.<gen>  a file's content and size at its last sync
 *   $CETCD_POWERCUT_SHADOW/dirs/<ino>.<gen>   a directory's entries at its last fsync
 *   $CETCD_POWERCUT_SHADOW/root               the key of the watched directory
 * At start the whole tree is copied (what is on disk before the process is durable). Writes
 * (write, pwrite, pwritev, ftruncate, fallocate punch/zero, open with O_TRUNC) mark byte ranges
 * dirty; fsync, fdatasync, sync_file_range(WAIT_AFTER), msync(MS_SYNC) and O_SYNC/O_DSYNC
 * writes copy the dirty ranges and the size into the image. Files changed through a shared
 * writable map (LMDB with MDB_WRITEMAP) cannot be watched, so their sync compares the whole
 * file with the image. A directory's fsync records its entries; a name created, renamed or
 * removed since is undone by the rollback, a file created and never listed disappears.
 * After SIGKILL the test rebuilds the tree from the image (tests/integration/powercut.py):
 * nothing that was not synced survives. Thread-safe: one mutex; the inode table is read
 * without it so that writes to sockets and untracked files never wait. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_INODES 8192
#define MAX_MAPS 64
#define MAX_RANGES 1024

typedef struct range {
  uint64_t lo, hi;
} range_t;

typedef struct inode {
  _Atomic uint64_t ino; /* 0: empty slot; published last */
  uint64_t gen;
  int is_dir, mapped;
  unsigned char *mirror; /* a mapped file's image [0, mirror_len) in memory, or NULL */
  size_t mirror_len;
  int nr;
  range_t ranges[MAX_RANGES]; /* dirty since the last sync, merged when adjacent */
} inode_t;

typedef struct map {
  uintptr_t addr;
  size_t len;
  off_t off;
  uint64_t ino;
  int fd; /* a private descriptor (own offset) of the mapped file, for msync */
} map_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static inode_t *table;
static map_t maps[MAX_MAPS];
static int enabled;
static dev_t root_dev;
static uint64_t next_gen;
static char shadow[PATH_MAX];

#define REAL(ret, name, ...)                                                      \
  static ret (*real_##name)(__VA_ARGS__);                                         \
  static ret (*get_##name(void))(__VA_ARGS__) {                                   \
    if (!real_##name) real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name); \
    return real_##name;                                                           \
  }

REAL(ssize_t, write, int, const void *, size_t)
REAL(ssize_t, pwrite, int, const void *, size_t, off_t)
REAL(ssize_t, pwrite64, int, const void *, size_t, off_t)
REAL(ssize_t, writev, int, const struct iovec *, int)
REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t)
REAL(ssize_t, pwritev64, int, const struct iovec *, int, off_t)
REAL(ssize_t, pwritev2, int, const struct iovec *, int, off_t, int)
REAL(ssize_t, pwritev64v2, int, const struct iovec *, int, off_t, int)
REAL(int, open, const char *, int, ...)
REAL(int, open64, const char *, int, ...)
REAL(int, openat, int, const char *, int, ...)
REAL(int, openat64, int, const char *, int, ...)
REAL(int, ftruncate, int, off_t)
REAL(int, ftruncate64, int, off_t)
REAL(int, fallocate, int, int, off_t, off_t)
REAL(int, fallocate64, int, int, off_t, off_t)
REAL(int, fsync, int)
REAL(int, fdatasync, int)
REAL(int, msync, void *, size_t, int)
REAL(int, sync_file_range, int, off_t, off_t, unsigned int)
REAL(void, sync, void)
REAL(int, syncfs, int)
REAL(void *, mmap, void *, size_t, int, int, int, off_t)
REAL(void *, mmap64, void *, size_t, int, int, int, off_t)
REAL(int, munmap, void *, size_t)
REAL(int, mkdir, const char *, mode_t)
REAL(int, mkdirat, int, const char *, mode_t)

/* Stops the process: the simulator cannot keep its promise. */
static void die(const char *what) {
  char msg[512];
  int n = snprintf(msg, sizeof(msg), "powercut: %s: %s\n", what, strerror(errno));
  if (n > 0) get_write()(2, msg, (size_t)n);
  abort();
}

/* The slot of ino, or NULL. Safe without mu. */
static inode_t *find(uint64_t ino) {
  if (!table) return NULL;
  for (uint64_t i = ino % MAX_INODES, n = 0; n < MAX_INODES; i = (i + 1) % MAX_INODES, n++) {
    uint64_t v = atomic_load_explicit(&table[i].ino, memory_order_acquire);
    if (v == ino) return &table[i];
    if (v == 0) return NULL;
  }
  return NULL;
}

/* Adds ino (under mu) as a new file or directory generation with an empty image. */
static inode_t *add(uint64_t ino, int is_dir) {
  inode_t *e = find(ino);
  if (!e) {
    uint64_t i = ino % MAX_INODES, n = 0;
    while (atomic_load(&table[i].ino) != 0) {
      if (++n == MAX_INODES) die("inode table full");
      i = (i + 1) % MAX_INODES;
    }
    e = &table[i];
  }
  e->gen = ++next_gen;
  e->is_dir = is_dir;
  e->mapped = 0;
  e->nr = 0;
  free(e->mirror);
  e->mirror = NULL;
  e->mirror_len = 0;
  atomic_store_explicit(&e->ino, ino, memory_order_release);
  return e;
}

/* The path of the image of e in sub ("files" or "dirs"). */
static void image_path(char *out, size_t n, const char *sub, const inode_t *e) {
  snprintf(out, n, "%s/%s/%llu.%llu", shadow, sub, (unsigned long long)atomic_load(&e->ino),
           (unsigned long long)e->gen);
}

/* The tracked inode behind fd, or NULL (sockets, pipes, files outside the tree). */
static inode_t *tracked(int fd, struct stat *st) {
  if (!enabled || fstat(fd, st) != 0) return NULL;
  if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) return NULL;
  if (st->st_dev != root_dev) return NULL;
  return find((uint64_t)st->st_ino);
}

/* Marks [lo, hi) of e dirty (under mu). */
static void mark(inode_t *e, uint64_t lo, uint64_t hi) {
  if (hi <= lo) return;
  for (int i = 0; i < e->nr; i++) {
    range_t *r = &e->ranges[i];
    if (lo <= r->hi && hi >= r->lo) {
      if (lo < r->lo) r->lo = lo;
      if (hi > r->hi) r->hi = hi;
      return;
    }
  }
  if (e->nr == MAX_RANGES) { /* too many: one range covering them all */
    for (int i = 1; i < e->nr; i++) {
      if (e->ranges[i].lo < e->ranges[0].lo) e->ranges[0].lo = e->ranges[i].lo;
      if (e->ranges[i].hi > e->ranges[0].hi) e->ranges[0].hi = e->ranges[i].hi;
    }
    e->nr = 1;
    mark(e, lo, hi);
    return;
  }
  e->ranges[e->nr++] = (range_t){lo, hi};
}

/* Opens e's file image for writing. */
static int open_image(const inode_t *e) {
  char p[PATH_MAX + 64];
  image_path(p, sizeof(p), "files", e);
  int fd = get_open()(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) die(p);
  return fd;
}

/* Copies [lo, hi) of src into img where they differ (4 KiB pages). */
static void copy_range(int src, int img, uint64_t lo, uint64_t hi) {
  enum { CHUNK = 1 << 18, PAGE = 4096 };
  static char a[CHUNK], b[CHUNK]; /* under mu */
  for (uint64_t off = lo; off < hi;) {
    size_t want = hi - off < CHUNK ? (size_t)(hi - off) : CHUNK;
    ssize_t n = pread(src, a, want, (off_t)off);
    if (n < 0) die("read file");
    if (n == 0) break;
    ssize_t m = pread(img, b, (size_t)n, (off_t)off);
    if (m < 0) die("read image");
    if (m < n) memset(b + m, 0xa5, (size_t)(n - m)); /* never equal: forces the copy */
    for (ssize_t p = 0; p < n; p += PAGE) {
      size_t l = n - p < PAGE ? (size_t)(n - p) : PAGE;
      if (memcmp(a + p, b + p, l) == 0) continue;
      if (get_pwrite()(img, a + p, l, (off_t)off + p) != (ssize_t)l) die("write image");
    }
    off += (uint64_t)n;
  }
}

/* Makes [lo, hi) of the image equal to the file, visiting only the file's data extents and
 * punching holes in the image where the file has them. */
static void copy_extents(int src, int img, uint64_t lo, uint64_t hi) {
  for (uint64_t off = lo; off < hi;) {
    off_t d = lseek(src, (off_t)off, SEEK_DATA);
    uint64_t dlo = d < 0 ? hi : (uint64_t)d < hi ? (uint64_t)d : hi;
    if (dlo > off) fallocate(img, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)(dlo - off));
    if (dlo >= hi) break;
    off_t h = lseek(src, (off_t)dlo, SEEK_HOLE);
    uint64_t dhi = h < 0 || (uint64_t)h > hi ? hi : (uint64_t)h;
    copy_range(src, img, dlo, dhi);
    off = dhi;
  }
}

/* A private read descriptor of fd's file (its own offset, for lseek). */
static int reopen(int fd) {
  char p[64];
  snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
  int r = get_open()(p, O_RDONLY | O_CLOEXEC);
  if (r < 0) die("reopen");
  return r;
}

/* Writes dir fd's entries as the durable listing of e (under mu). */
static void list_dir(int fd, inode_t *e) {
  char p[PATH_MAX + 64], tmp[PATH_MAX + 80];
  image_path(p, sizeof(p), "dirs", e);
  snprintf(tmp, sizeof(tmp), "%s.tmp", p);
  FILE *out = fopen(tmp, "w");
  if (!out) die(tmp);
  int dfd = get_openat()(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
  if (!d) die("opendir");
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    struct stat st;
    if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) continue; /* not modelled */
    inode_t *c = find((uint64_t)st.st_ino);
    if (!c) c = add((uint64_t)st.st_ino, S_ISDIR(st.st_mode)); /* made behind our back: empty */
    fprintf(out, "%c %llu.%llu %s\n", S_ISDIR(st.st_mode) ? 'd' : 'f', (unsigned long long)st.st_ino,
            (unsigned long long)c->gen, de->d_name);
  }
  closedir(d);
  if (fclose(out) != 0 || rename(tmp, p) != 0) die("write listing");
}

/* Makes [off, off+n) of the image (img, mirrored in e->mirror) equal to the mapped memory
 * at mem: compares in memory, writes the pages that differ. */
static void copy_mapped(inode_t *e, int img, const unsigned char *mem, uint64_t off, size_t n) {
  enum { BLOCK = 1 << 16, PAGE = 4096 };
  if (e->mirror_len < off + n) { /* extend the mirror from the image */
    unsigned char *m = realloc(e->mirror, off + n);
    if (!m) die("realloc");
    ssize_t r = pread(img, m + e->mirror_len, off + n - e->mirror_len, (off_t)e->mirror_len);
    if (r < 0) die("read image");
    memset(m + e->mirror_len + r, 0, off + n - e->mirror_len - (size_t)r);
    e->mirror = m;
    e->mirror_len = off + n;
  }
  for (size_t b = 0; b < n; b += BLOCK) {
    size_t bl = n - b < BLOCK ? n - b : BLOCK;
    if (memcmp(mem + b, e->mirror + off + b, bl) == 0) continue;
    for (size_t p = b; p < b + bl; p += PAGE) {
      size_t l = b + bl - p < PAGE ? b + bl - p : PAGE;
      if (memcmp(mem + p, e->mirror + off + p, l) == 0) continue;
      memcpy(e->mirror + off + p, mem + p, l);
      if (get_pwrite()(img, mem + p, l, (off_t)(off + p)) != (ssize_t)l) die("write image");
    }
  }
}

/* Makes e's image equal to the file's synced state in [lo, hi) (under mu); with_size also
 * records the size. mem: the mapped memory of [lo, hi) when an msync asks, else NULL. */
static void sync_file(int fd, inode_t *e, uint64_t lo, uint64_t hi, int with_size, const void *mem) {
  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat");
  if (e->is_dir) {
    list_dir(fd, e);
    return;
  }
  int img = open_image(e);
  int own = (fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY; /* then read through our own */
  if (own) fd = reopen(fd);
  uint64_t end = hi < (uint64_t)st.st_size ? hi : (uint64_t)st.st_size;
  if (mem) { /* fd is private to the shim: its offset is ours */
    for (uint64_t off = lo; off < end;) {
      off_t d = lseek(fd, (off_t)off, SEEK_DATA);
      if (d < 0 || (uint64_t)d >= end) break;
      off_t h = lseek(fd, d, SEEK_HOLE);
      uint64_t dhi = h < 0 || (uint64_t)h > end ? end : (uint64_t)h;
      copy_mapped(e, img, (const unsigned char *)mem + ((uint64_t)d - lo), (uint64_t)d,
                  (size_t)(dhi - (uint64_t)d));
      off = dhi;
    }
  } else if (e->mapped) {
    int r = reopen(fd);
    copy_extents(r, img, lo, end);
    close(r);
    free(e->mirror); /* the image changed behind the mirror */
    e->mirror = NULL;
    e->mirror_len = 0;
  }
  int kept = 0;
  for (int i = 0; i < e->nr; i++) {
    uint64_t a = e->ranges[i].lo > lo ? e->ranges[i].lo : lo;
    uint64_t b = e->ranges[i].hi < end ? e->ranges[i].hi : end;
    if (a < b) {
      copy_range(fd, img, a, b);
      if (a < e->mirror_len) { /* keep the mirror equal to the image */
        size_t l = b < e->mirror_len ? (size_t)(b - a) : (size_t)(e->mirror_len - a);
        if (pread(img, e->mirror + a, l, (off_t)a) != (ssize_t)l) die("read image");
      }
    }
    if (e->ranges[i].lo < lo || e->ranges[i].hi > hi) e->ranges[kept++] = e->ranges[i]; /* not covered */
  }
  e->nr = kept;
  if (with_size) {
    if (get_ftruncate()(img, st.st_size) != 0) die("truncate image");
    if (e->mirror_len > (size_t)st.st_size) e->mirror_len = (size_t)st.st_size;
  }
  if (own) close(fd);
  close(img);
}

/* Copies the tree under dir fd (whose inode is e) into the image at start-up. */
static void snapshot_tree(int fd, inode_t *e) {
  list_dir(fd, e);
  int dfd = get_openat()(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
  if (!d) die("opendir");
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    struct stat st;
    if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    inode_t *c = find((uint64_t)st.st_ino);
    if (!c || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) continue;
    int cfd = get_openat()(dfd, de->d_name, O_RDONLY | O_CLOEXEC | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
    if (cfd < 0) die(de->d_name);
    if (S_ISDIR(st.st_mode)) {
      snapshot_tree(cfd, c);
    } else {
      int img = open_image(c);
      copy_extents(cfd, img, 0, (uint64_t)st.st_size);
      if (get_ftruncate()(img, st.st_size) != 0) die("truncate image");
      close(img);
    }
    close(cfd);
  }
  closedir(d);
}

/* Removes everything under path (the image of an earlier run). */
static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char p[PATH_MAX + 256];
    snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
    if (de->d_type == DT_DIR) {
      remove_tree(p);
      rmdir(p);
    } else {
      unlink(p);
    }
  }
  closedir(d);
}

/* Reads the environment, starts a fresh image of the tree. */
__attribute__((constructor)) static void powercut_init(void) {
  const char *dir = getenv("CETCD_POWERCUT_DIR"), *sh = getenv("CETCD_POWERCUT_SHADOW");
  if (!dir || !sh) return;
  snprintf(shadow, sizeof(shadow), "%s", sh);
  table = calloc(MAX_INODES, sizeof(*table));
  if (!table) die("calloc");
  get_mkdir()(dir, 0700);
  get_mkdir()(shadow, 0700);
  remove_tree(shadow);
  char p[PATH_MAX + 16];
  snprintf(p, sizeof(p), "%s/files", shadow);
  if (get_mkdir()(p, 0700) != 0) die(p);
  snprintf(p, sizeof(p), "%s/dirs", shadow);
  if (get_mkdir()(p, 0700) != 0) die(p);
  int fd = get_open()(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) die(dir);
  root_dev = st.st_dev;
  inode_t *root = add((uint64_t)st.st_ino, 1);
  snapshot_tree(fd, root);
  close(fd);
  snprintf(p, sizeof(p), "%s/root", shadow);
  FILE *f = fopen(p, "w");
  if (!f || fprintf(f, "%llu.%llu\n", (unsigned long long)st.st_ino, (unsigned long long)root->gen) < 0 ||
      fclose(f) != 0)
    die(p);
  enabled = 1;
}

/* After a successful write of n bytes at off to fd. */
static void wrote(int fd, int64_t off, ssize_t n) {
  struct stat st;
  inode_t *e;
  if (n <= 0 || !(e = tracked(fd, &st))) return;
  if (off < 0) off = (int64_t)lseek(fd, 0, SEEK_CUR) - n; /* write/writev: the offset moved */
  pthread_mutex_lock(&mu);
  mark(e, (uint64_t)off, (uint64_t)off + (uint64_t)n);
  if (fcntl(fd, F_GETFL) & (O_SYNC | O_DSYNC)) sync_file(fd, e, 0, UINT64_MAX, 1, NULL);
  pthread_mutex_unlock(&mu);
}

ssize_t write(int fd, const void *b, size_t n) {
  ssize_t r = get_write()(fd, b, n);
  wrote(fd, -1, r);
  return r;
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off) {
  ssize_t r = get_pwrite()(fd, b, n, off);
  wrote(fd, off, r);
  return r;
}

ssize_t pwrite64(int fd, const void *b, size_t n, off_t off) {
  ssize_t r = get_pwrite64()(fd, b, n, off);
  wrote(fd, off, r);
  return r;
}

ssize_t writev(int fd, const struct iovec *v, int c) {
  ssize_t r = get_writev()(fd, v, c);
  wrote(fd, -1, r);
  return r;
}

ssize_t pwritev(int fd, const struct iovec *v, int c, off_t off) {
  ssize_t r = get_pwritev()(fd, v, c, off);
  wrote(fd, off, r);
  return r;
}

ssize_t pwritev64(int fd, const struct iovec *v, int c, off_t off) {
  ssize_t r = get_pwritev64()(fd, v, c, off);
  wrote(fd, off, r);
  return r;
}

ssize_t pwritev2(int fd, const struct iovec *v, int c, off_t off, int fl) {
  ssize_t r = get_pwritev2()(fd, v, c, off, fl);
  wrote(fd, off, r);
  return r;
}

ssize_t pwritev64v2(int fd, const struct iovec *v, int c, off_t off, int fl) {
  ssize_t r = get_pwritev64v2()(fd, v, c, off, fl);
  wrote(fd, off, r);
  return r;
}

/* Before an open of path (relative to dirfd): whether it existed and its size. */
static int pre_open(int dirfd, const char *path, int flags, struct stat *st) {
  if (!enabled || !(flags & (O_CREAT | O_TRUNC)) || (flags & __O_TMPFILE) == __O_TMPFILE) return 0;
  return fstatat(dirfd, path, st, 0) == 0 ? 1 : -1;
}

/* Whether the directory holding path (relative to dirfd) is tracked. */
static int parent_tracked(int dirfd, const char *path, int is_tmpfile) {
  char p[PATH_MAX];
  snprintf(p, sizeof(p), "%s", path);
  const char *dir = p;
  if (!is_tmpfile) {
    char *s = strrchr(p, '/');
    if (!s)
      dir = ".";
    else if (s == p)
      p[1] = 0;
    else
      *s = 0;
  }
  struct stat st;
  if (fstatat(dirfd, dir, &st, 0) != 0 || st.st_dev != root_dev) return 0;
  return find((uint64_t)st.st_ino) != NULL;
}

/* After an open: a new file gets a new, empty image; O_TRUNC dirties the old bytes. */
static int post_open(int dirfd, const char *path, int flags, int existed, const struct stat *pre, int fd) {
  int tmpfile = (flags & __O_TMPFILE) == __O_TMPFILE;
  if (fd < 0 || !enabled || !(existed || tmpfile || (flags & O_CREAT))) return fd;
  int saved = errno;
  struct stat st;
  pthread_mutex_lock(&mu);
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_dev == root_dev) {
    inode_t *e = find((uint64_t)st.st_ino);
    if ((tmpfile || existed < 0) && parent_tracked(dirfd, path, tmpfile)) {
      add((uint64_t)st.st_ino, 0);
    } else if (e && existed > 0 && (flags & O_TRUNC)) {
      mark(e, 0, (uint64_t)pre->st_size);
    }
  }
  pthread_mutex_unlock(&mu);
  errno = saved;
  return fd;
}

/* The mode argument of open, when the flags need one. */
#define MODE_ARG(flags)                    \
  mode_t mode = 0;                         \
  if ((flags) & (O_CREAT | __O_TMPFILE)) { \
    va_list ap;                            \
    va_start(ap, flags);                   \
    mode = (mode_t)va_arg(ap, int);        \
    va_end(ap);                            \
  }

int open(const char *path, int flags, ...) {
  MODE_ARG(flags);
  struct stat pre;
  int ex = pre_open(AT_FDCWD, path, flags, &pre);
  return post_open(AT_FDCWD, path, flags, ex, &pre, get_open()(path, flags, mode));
}

int open64(const char *path, int flags, ...) {
  MODE_ARG(flags);
  struct stat pre;
  int ex = pre_open(AT_FDCWD, path, flags, &pre);
  return post_open(AT_FDCWD, path, flags, ex, &pre, get_open64()(path, flags, mode));
}

int openat(int dirfd, const char *path, int flags, ...) {
  MODE_ARG(flags);
  struct stat pre;
  int ex = pre_open(dirfd, path, flags, &pre);
  return post_open(dirfd, path, flags, ex, &pre, get_openat()(dirfd, path, flags, mode));
}

int openat64(int dirfd, const char *path, int flags, ...) {
  MODE_ARG(flags);
  struct stat pre;
  int ex = pre_open(dirfd, path, flags, &pre);
  return post_open(dirfd, path, flags, ex, &pre, get_openat64()(dirfd, path, flags, mode));
}

int __open_2(const char *path, int flags) { return open(path, flags); }

int __open64_2(const char *path, int flags) { return open64(path, flags); }

int __openat_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }

int __openat64_2(int dirfd, const char *path, int flags) { return openat64(dirfd, path, flags); }

int creat(const char *path, mode_t mode) { return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode); }

int creat64(const char *path, mode_t mode) { return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode); }

/* Before a size change of fd to len: a shrink dirties what it cuts off. */
static void resized(int fd, off_t len) {
  struct stat st;
  inode_t *e = tracked(fd, &st);
  if (!e || (uint64_t)len >= (uint64_t)st.st_size) return;
  pthread_mutex_lock(&mu);
  mark(e, (uint64_t)len, (uint64_t)st.st_size);
  pthread_mutex_unlock(&mu);
}

int ftruncate(int fd, off_t len) {
  resized(fd, len);
  return get_ftruncate()(fd, len);
}

int ftruncate64(int fd, off_t len) {
  resized(fd, len);
  return get_ftruncate64()(fd, len);
}

int truncate(const char *path, off_t len) {
  int fd = get_open()(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = ftruncate(fd, len);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

/* After fallocate: punching or zeroing changes content. */
static void allocated(int fd, int mode, off_t off, off_t len, int rc) {
  struct stat st;
  inode_t *e;
  if (rc != 0 ||
      !(mode &
        (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)) ||
      !(e = tracked(fd, &st)))
    return;
  pthread_mutex_lock(&mu);
  if (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)) /* shifts everything after off */
    mark(e, (uint64_t)off, UINT64_MAX / 2);
  else
    mark(e, (uint64_t)off, (uint64_t)off + (uint64_t)len);
  pthread_mutex_unlock(&mu);
}

int fallocate(int fd, int mode, off_t off, off_t len) {
  int rc = get_fallocate()(fd, mode, off, len);
  int saved = errno;
  allocated(fd, mode, off, len, rc);
  errno = saved;
  return rc;
}

int fallocate64(int fd, int mode, off_t off, off_t len) {
  int rc = get_fallocate64()(fd, mode, off, len);
  int saved = errno;
  allocated(fd, mode, off, len, rc);
  errno = saved;
  return rc;
}

/* After a successful fsync/fdatasync of fd. */
static void synced(int fd) {
  struct stat st;
  inode_t *e = tracked(fd, &st);
  if (!e) return;
  pthread_mutex_lock(&mu);
  sync_file(fd, e, 0, UINT64_MAX, 1, NULL);
  pthread_mutex_unlock(&mu);
}

int fsync(int fd) {
  int rc = get_fsync()(fd);
  int saved = errno;
  if (rc == 0) synced(fd);
  errno = saved;
  return rc;
}

int fdatasync(int fd) {
  int rc = get_fdatasync()(fd);
  int saved = errno;
  if (rc == 0) synced(fd);
  errno = saved;
  return rc;
}

int sync_file_range(int fd, off_t off, off_t n, unsigned int flags) {
  int rc = get_sync_file_range()(fd, off, n, flags);
  int saved = errno;
  struct stat st;
  inode_t *e;
  if (rc == 0 && (flags & SYNC_FILE_RANGE_WRITE) && (flags & SYNC_FILE_RANGE_WAIT_AFTER) &&
      (e = tracked(fd, &st))) {
    pthread_mutex_lock(&mu); /* data only: the size is not made durable */
    sync_file(fd, e, (uint64_t)off, n ? (uint64_t)(off + n) : UINT64_MAX, 0, NULL);
    pthread_mutex_unlock(&mu);
  }
  errno = saved;
  return rc;
}

/* Syncs every mapped file and every directory, and files with dirty ranges, by path. */
static void sync_everything(void) {
  if (!enabled) return;
  pthread_mutex_lock(&mu);
  for (int i = 0; i < MAX_MAPS; i++) {
    inode_t *e = maps[i].len ? find(maps[i].ino) : NULL;
    if (e) sync_file(maps[i].fd, e, 0, UINT64_MAX, 1, NULL);
  }
  pthread_mutex_unlock(&mu);
  /* files written through descriptors: found through /proc/self/fd */
  DIR *d = opendir("/proc/self/fd");
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    int fd = atoi(de->d_name);
    if (de->d_name[0] != '.' && fd != dirfd(d)) synced(fd);
  }
  closedir(d);
}

void sync(void) {
  get_sync()();
  sync_everything();
}

int syncfs(int fd) {
  int rc = get_syncfs()(fd);
  int saved = errno;
  if (rc == 0) sync_everything();
  errno = saved;
  return rc;
}

/* After a shared writable mmap of a tracked file: remembers the map. */
static void *mapped(void *r, size_t len, int prot, int flags, int fd, off_t off) {
  struct stat st;
  inode_t *e;
  if (r == MAP_FAILED || !(prot & PROT_WRITE) || !(flags & MAP_SHARED) || fd < 0 || !(e = tracked(fd, &st)))
    return r;
  int saved = errno;
  pthread_mutex_lock(&mu);
  int i = 0;
  while (i < MAX_MAPS && maps[i].len) i++;
  if (i == MAX_MAPS) die("too many maps");
  e->mapped = 1;
  maps[i] = (map_t){(uintptr_t)r, len, off, (uint64_t)st.st_ino, reopen(fd)};
  pthread_mutex_unlock(&mu);
  errno = saved;
  return r;
}

void *mmap(void *a, size_t len, int prot, int flags, int fd, off_t off) {
  return mapped(get_mmap()(a, len, prot, flags, fd, off), len, prot, flags, fd, off);
}

void *mmap64(void *a, size_t len, int prot, int flags, int fd, off_t off) {
  return mapped(get_mmap64()(a, len, prot, flags, fd, off), len, prot, flags, fd, off);
}

int munmap(void *a, size_t len) {
  if (enabled) {
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MAX_MAPS; i++)
      if (maps[i].len && maps[i].addr == (uintptr_t)a) {
        close(maps[i].fd);
        maps[i].len = 0;
      }
    pthread_mutex_unlock(&mu);
  }
  return get_munmap()(a, len);
}

int msync(void *a, size_t len, int flags) {
  int rc = get_msync()(a, len, flags);
  if (rc != 0 || !(flags & MS_SYNC) || !enabled) return rc;
  int saved = errno;
  uintptr_t lo = (uintptr_t)a, hi = lo + len;
  pthread_mutex_lock(&mu);
  for (int i = 0; i < MAX_MAPS; i++) {
    map_t *m = &maps[i];
    inode_t *e = m->len ? find(m->ino) : NULL;
    if (!e || hi <= m->addr || lo >= m->addr + m->len) continue;
    uintptr_t s = lo > m->addr ? lo : m->addr, t = hi < m->addr + m->len ? hi : m->addr + m->len;
    /* msync(MS_SYNC) is a data sync of the range: the size is made durable too */
    sync_file(m->fd, e, (uint64_t)m->off + (s - m->addr), (uint64_t)m->off + (t - m->addr), 1,
              (const void *)s);
  }
  pthread_mutex_unlock(&mu);
  errno = saved;
  return rc;
}

/* After mkdir: a directory made in a tracked one is tracked, empty until listed. */
static int made_dir(int dirfd, const char *path, int rc) {
  if (rc != 0 || !enabled) return rc;
  int saved = errno;
  struct stat st;
  pthread_mutex_lock(&mu);
  if (parent_tracked(dirfd, path, 0) && fstatat(dirfd, path, &st, 0) == 0) add((uint64_t)st.st_ino, 1);
  pthread_mutex_unlock(&mu);
  errno = saved;
  return rc;
}

int mkdir(const char *path, mode_t mode) { return made_dir(AT_FDCWD, path, get_mkdir()(path, mode)); }

int mkdirat(int dirfd, const char *path, mode_t mode) {
  return made_dir(dirfd, path, get_mkdirat()(dirfd, path, mode));
}
