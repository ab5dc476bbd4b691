/* The writer keeps written zeros ahead of the records (wal_writer.c, zero_ahead), so that
 * an fdatasync after an append finds no unwritten extent to convert: checked with FIEMAP
 * on a real file system (the test's directory is made in its working directory, on the
 * build tree's disk: tmpfs has no extents and the test says so). */
#include <errno.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
// clang-format off
#include <cmocka.h>
// clang-format on

#include "wal/wal.h"
#include "wal_test_util.h"

#define SEG (1u << 20)
#define CHUNK (256u * 1024) /* ZERO_CHUNK in wal_writer.c */
#define ENTRY 1000

/* A new directory in the working directory (the build tree: a disk, not tmpfs). */
static char *make_disk_dir(void) {
  char *d = xstrdup("cetcd-wal-zero-XXXXXX");
  if (!mkdtemp(d)) fail_msg("mkdtemp in %s: %s", getcwd(NULL, 0), strerror(errno));
  return d;
}

/* Path of the segment with sequence number seq in dir (caller frees). */
static char *segment_path(const char *dir, uint64_t seq) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  char prefix[20], *out = NULL;
  snprintf(prefix, sizeof(prefix), "%016llx-", (unsigned long long)seq);
  struct dirent *de;
  while ((de = readdir(d)))
    if (!strncmp(de->d_name, prefix, 17) && strstr(de->d_name, ".wal") && !strstr(de->d_name, ".tmp")) {
      out = xmalloc(strlen(dir) + strlen(de->d_name) + 2);
      sprintf(out, "%s/%s", dir, de->d_name);
    }
  closedir(d);
  if (!out) fail_msg("no segment %llu in %s", (unsigned long long)seq, dir);
  return out;
}

/* Bytes of [from, to) of the file that lie in unwritten (preallocated, never written)
 * extents, from FIEMAP. */
static uint64_t unwritten_bytes(const char *path, uint64_t from, uint64_t to) {
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  enum { MAX_EXT = 256 };
  struct fiemap *fm = calloc(1, sizeof(*fm) + MAX_EXT * sizeof(struct fiemap_extent));
  fm->fm_start = 0;
  fm->fm_length = FIEMAP_MAX_OFFSET;
  fm->fm_flags = FIEMAP_FLAG_SYNC;
  fm->fm_extent_count = MAX_EXT;
  if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0)
    fail_msg("FIEMAP on %s failed (%s): this test needs a file system with extents (ext4, xfs, btrfs) "
             "under its working directory",
             path, strerror(errno));
  uint64_t n = 0;
  for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
    struct fiemap_extent *e = &fm->fm_extents[i];
    if (!(e->fe_flags & FIEMAP_EXTENT_UNWRITTEN)) continue;
    uint64_t a = e->fe_logical > from ? e->fe_logical : from;
    uint64_t b = e->fe_logical + e->fe_length < to ? e->fe_logical + e->fe_length : to;
    if (b > a) n += b - a;
  }
  free(fm);
  close(fd);
  return n;
}

/* Offset just past the last non-zero byte of the file: where the records end, give or
 * take the trailing zero bytes of the last record. */
static uint64_t records_end(const char *path) {
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  uint8_t *b = xmalloc(SEG);
  ssize_t n = pread(fd, b, SEG, 0);
  assert_true(n > 0);
  uint64_t end = 0;
  for (ssize_t i = 0; i < n; i++)
    if (b[i]) end = (uint64_t)i + 1;
  free(b);
  close(fd);
  return end;
}

/* Appends entries from..to (ENTRY bytes of 'x' each), syncing every `every`. */
static void append(wal_t *w, uint64_t from, uint64_t to, int every) {
  char data[ENTRY];
  memset(data, 'x', sizeof(data));
  for (uint64_t i = from; i <= to; i++) {
    assert_int_equal(wal_append_entry(w, i, 1, data, sizeof(data)), 0);
    if ((i - from + 1) % (uint64_t)every == 0) assert_int_equal(wal_sync_now(w), 0);
  }
  assert_int_equal(wal_sync_now(w), 0);
}

/* After every synced batch at least one chunk of written zeros lies ahead of the records,
 * and the rest of the segment is still only preallocated (no zero-fill stall up front). */
static void test_zeros_ahead_of_records(void **state) {
  (void)state;
  char *dir = make_disk_dir();
  wal_options_t o = {.segment_size = SEG};
  wal_t *w;
  assert_int_equal(wal_open(dir, &o, NULL, &w), 0);
  char *seg = segment_path(dir, 0);
  uint64_t last = 0;
  for (int round = 1; round <= 4; round++) { /* ~100 KB per round, 4 rounds in a 1 MiB segment */
    append(w, last + 1, last + 100, 10);
    last += 100;
    uint64_t end = records_end(seg);
    assert_true(end > (uint64_t)round * 100 * ENTRY);
    assert_int_equal(unwritten_bytes(seg, 0, end + CHUNK), 0);
    if (end + 2 * CHUNK < SEG) assert_true(unwritten_bytes(seg, end + 2 * CHUNK, SEG) > 0);
  }
  free(seg);
  assert_int_equal(wal_close(w), 0);

  /* The zeros read as the end of the log: every entry comes back, and appends go on. */
  coll_t c = {0};
  wal_replay_t r = coll_replay(&c);
  assert_int_equal(wal_open(dir, &o, &r, &w), 0);
  assert_int_equal(c.n, last);
  for (size_t i = 0; i < c.n; i++) {
    assert_int_equal(c.e[i].index, i + 1);
    assert_int_equal(c.e[i].len, ENTRY);
  }
  coll_free(&c);

  /* Past the segment's end: the next segment gets its zeros ahead too. */
  append(w, last + 1, last + 800, 50);
  last += 800;
  char *seg1 = segment_path(dir, 1);
  uint64_t end = records_end(seg1);
  assert_int_equal(unwritten_bytes(seg1, 0, end + CHUNK), 0);
  free(seg1);
  assert_int_equal(wal_close(w), 0);
  rm_tmpdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_zeros_ahead_of_records)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
