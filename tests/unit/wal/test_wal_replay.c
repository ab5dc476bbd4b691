/* WAL files on disk: round trips across segments, torn tails, corruption, hard state,
 * snapshot markers, raft overwrites, segment release and open errors. These tests use
 * the WAL without a loop and wal_sync_now for durability. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
// clang-format off
#include <cmocka.h>
// clang-format on

#include "cetcd/errors.h"
#include "wal/wal.h"
#include "wal/wal_int.h"
#include "wal_test_util.h"

#define SMALL_SEG 4096

/* Entry i's payload: a tag findable in the file, some filler, a non-zero last byte. Its
 * length is a multiple of 8 so a record ends with a non-zero byte. */
static size_t payload(uint64_t i, char *out) {
  size_t len = 24 + (i % 5) * 8;
  memset(out, 'a' + (int)(i % 26), len);
  snprintf(out, len, "payload-%06llu-", (unsigned long long)i);
  out[strlen(out)] = '#';
  out[len - 1] = 'Z';
  return len;
}

static wal_t *open_ok(const char *dir, uint64_t seg, coll_t *c) {
  wal_options_t o = {.segment_size = seg};
  wal_replay_t r = coll_replay(c);
  wal_t *w = NULL;
  assert_int_equal(wal_open(dir, &o, &r, &w), 0);
  return w;
}

static int open_rc(const char *dir, uint64_t seg, coll_t *c) {
  wal_options_t o = {.segment_size = seg};
  wal_replay_t r = coll_replay(c);
  wal_t *w = NULL;
  int rc = wal_open(dir, &o, &r, &w);
  if (!rc) wal_close(w);
  return rc;
}

/* Appends entries [from, to] with term 1, syncing every sync_every appends. */
static void append_range(wal_t *w, uint64_t from, uint64_t to, int sync_every) {
  char buf[128];
  for (uint64_t i = from; i <= to; i++) {
    size_t len = payload(i, buf);
    assert_int_equal(wal_append_entry(w, i, 1, buf, len), 0);
    if (sync_every && (i - from + 1) % (uint64_t)sync_every == 0) assert_int_equal(wal_sync_now(w), 0);
  }
  assert_int_equal(wal_sync_now(w), 0);
}

/* Checks that c holds exactly entries [from, to] with their payloads. */
static void check_range(const coll_t *c, uint64_t from, uint64_t to) {
  assert_int_equal(c->n, to - from + 1);
  char buf[128];
  for (size_t k = 0; k < c->n; k++) {
    size_t len = payload(from + k, buf);
    assert_int_equal(c->e[k].index, from + k);
    assert_int_equal(c->e[k].term, 1);
    assert_int_equal(c->e[k].len, len);
    assert_memory_equal(c->e[k].data, buf, len);
  }
}

static void test_roundtrip_segments(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  coll_t c = {0};
  wal_t *w = open_ok(dir, SMALL_SEG, &c);
  assert_int_equal(c.n, 0);
  append_range(w, 1, 500, 7);
  assert_true(wal_segment_count(w) > 3);
  assert_int_equal(wal_durable_index(w), 500);
  assert_int_equal(wal_close(w), 0);
  int nfiles = list_segments(dir, NULL, 0);
  assert_true(nfiles > 3);

  w = open_ok(dir, SMALL_SEG, &c);
  check_range(&c, 1, 500);
  assert_int_equal((int)wal_segment_count(w), nfiles);
  append_range(w, 501, 600, 0);
  assert_int_equal(wal_close(w), 0);
  coll_free(&c);

  /* A different (larger) segment size on reopen is fine. */
  w = open_ok(dir, 1 << 20, &c);
  check_range(&c, 1, 600);
  assert_int_equal(wal_close(w), 0);
  coll_free(&c);
  rm_tmpdir(dir);
}

/* A segment found full at open (the process stopped before rotating) is sealed and a
 * new one started. */
static void test_rotate_at_open(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  coll_t c = {0};
  wal_t *w = open_ok(dir, 1 << 20, &c);
  append_range(w, 1, 100, 0);
  assert_int_equal(wal_close(w), 0);
  w = open_ok(dir, SMALL_SEG, &c);
  check_range(&c, 1, 100);
  coll_free(&c);
  assert_int_equal(wal_segment_count(w), 2);
  char first[512];
  snprintf(first, sizeof(first), "%s/0000000000000000-0000000000000000.wal", dir);
  struct stat st;
  assert_int_equal(stat(first, &st), 0);
  assert_int_equal((size_t)st.st_size, data_end(first)); /* sealed: cut to its records */
  append_range(w, 101, 110, 0);
  assert_int_equal(wal_close(w), 0);
  w = open_ok(dir, SMALL_SEG, &c);
  check_range(&c, 1, 110);
  assert_int_equal(wal_close(w), 0);
  coll_free(&c);
  rm_tmpdir(dir);
}

static void test_empty_and_zero_tail(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  coll_t c = {0};
  /* A new WAL is one preallocated, zero-filled segment. */
  wal_t *w = open_ok(dir, SMALL_SEG, &c);
  assert_int_equal(wal_close(w), 0);
  char last[512];
  assert_int_equal(list_segments(dir, last, sizeof(last)), 1);
  struct stat st;
  assert_int_equal(stat(last, &st), 0);
  assert_int_equal(st.st_size, SMALL_SEG);
  w = open_ok(dir, SMALL_SEG, &c);
  assert_int_equal(c.n, 0);
  assert_int_equal(c.nhs, 0);
  /* Fill exactly until a rotation leaves an empty current segment. */
  char buf[128];
  uint64_t i = 1;
  while (wal_segment_count(w) < 2) {
    size_t len = payload(i, buf);
    assert_int_equal(wal_append_entry(w, i++, 1, buf, len), 0);
    assert_int_equal(wal_sync_now(w), 0);
  }
  assert_int_equal(wal_close(w), 0);
  assert_int_equal(list_segments(dir, last, sizeof(last)), 2);
  assert_int_equal(data_end(last), 0); /* no hard state to carry: all zeros */
  /* A leftover temporary segment from an interrupted rotation is removed. */
  char tmp[600];
  snprintf(tmp, sizeof(tmp), "%s/0000000000000002-0000000000000099.wal.tmp", dir);
  FILE *f = fopen(tmp, "w");
  fputs("junk", f);
  fclose(f);
  w = open_ok(dir, SMALL_SEG, &c);
  check_range(&c, 1, i - 1);
  assert_int_equal(access(tmp, F_OK), -1);
  assert_int_equal(wal_close(w), 0);
  coll_free(&c);
  rm_tmpdir(dir);
}

/* Writes entries 1..n, one batch each, into a WAL with big segments; returns the path of
 * its only segment in last. */
static void write_synced(const char *dir, uint64_t n, char *last, size_t lastn) {
  coll_t c = {0};
  wal_t *w = open_ok(dir, 1 << 20, &c);
  append_range(w, 1, n, 1);
  assert_int_equal(wal_close(w), 0);
  assert_int_equal(list_segments(dir, last, lastn), 1);
  coll_free(&c);
}

static void test_torn_last_record(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  char last[512];
  write_synced(dir, 50, last, sizeof(last));
  size_t end = data_end(last);
  assert_true(end > 0);
  /* The file ends in the middle of the last record. */
  assert_int_equal(truncate(last, (off_t)(end - 10)), 0);
  coll_t c = {0};
  wal_t *w = open_ok(dir, 1 << 20, &c);
  check_range(&c, 1, 49);
  coll_free(&c);
  append_range(w, 50, 60, 3);
  assert_int_equal(wal_close(w), 0);
  w = open_ok(dir, 1 << 20, &c);
  check_range(&c, 1, 60);
  assert_int_equal(wal_close(w), 0);
  coll_free(&c);
  rm_tmpdir(dir);
}

static void test_bad_crc_last_record_is_torn(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  char last[512];
  write_synced(dir, 50, last, sizeof(last));
  size_t end = data_end(last);
  write_at(last, end - 3, "X", 1);
  coll_t c = {0};
  wal_t *w = open_ok(dir, 1 << 20, &c);
  check_range(&c, 1, 49);
  coll_free(&c);
  /* The damaged bytes were zeroed: appends and a second reopen work. */
  append_range(w, 50, 52, 1);
  assert_int_equal(wal_close(w), 0);
  w = open_ok(dir, 1 << 20, &c);
  check_range(&c, 1, 52);
  assert_int_equal(wal_close(w), 0);
  coll_free(&c);
  rm_tmpdir(dir);
}

static void test_bad_crc_in_middle_is_corruption(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  char last[512];
  write_synced(dir, 50, last, sizeof(last));
  size_t off = find_in_file(last, "payload-000020-");
  assert_true(off != (size_t)-1);
  write_at(last, off + 3, "X", 1);
  coll_t c = {0};
  assert_int_equal(open_rc(dir, 1 << 20, &c), CETCD_ECORRUPT);
  coll_free(&c);
  /* Zeroed instead of flipped (a lost sector in an old batch): still corruption. */
  char zeros[64] = {0};
  write_at(last, off - 32, zeros, sizeof(zeros));
  assert_int_equal(open_rc(dir, 1 << 20, &c), CETCD_ECORRUPT);
  coll_free(&c);
  rm_tmpdir(dir);
}

static void test_corruption_in_sealed_segment(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  coll_t c = {0};
  wal_t *w = open_ok(dir, SMALL_SEG, &c);
  append_range(w, 1, 300, 0);
  assert_int_equal(wal_close(w), 0);
  char first[512];
  snprintf(first, sizeof(first), "%s/0000000000000000-0000000000000000.wal", dir);
  size_t end = data_end(first);
  /* Even the last record of a sealed segment: the next segment proves it was synced. */
  write_at(first, end - 3, "X", 1);
  assert_int_equal(open_rc(dir, SMALL_SEG, &c), CETCD_ECORRUPT);
  coll_free(&c);
  rm_tmpdir(dir);
}

static void test_missing_segment_is_corruption(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  coll_t c = {0};
  wal_t *w = open_ok(dir, SMALL_SEG, &c);
  append_range(w, 1, 300, 5);
  assert_true(wal_segment_count(w) >= 3);
  assert_int_equal(wal_close(w), 0);
  char path[512];
  snprintf(path, sizeof(path), "%s/0000000000000001-", dir);
  DIR *d = opendir(dir);
  struct dirent *de;
  while ((de = readdir(d)))
    if (!strncmp(de->d_name, "0000000000000001-", 17)) snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
  closedir(d);
  assert_int_equal(unlink(path), 0);
  assert_int_equal(open_rc(dir, SMALL_SEG, &c), CETCD_ECORRUPT);
  coll_free(&c);
  rm_tmpdir(dir);
}

/* A torn write of the last batch can leave later sectors on disk and lose earlier ones:
 * a hole followed by valid records of the same batch is a torn tail, not corruption. */
static void test_hole_in_last_batch_is_torn(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  coll_t c = {0};
  wal_t *w = open_ok(dir, 1 << 20, &c);
  append_range(w, 1, 10, 1);   /* ten batches */
  append_range(w, 11, 300, 0); /* appended faster than a sync: few batches */
  assert_int_equal(wal_close(w), 0);
  char last[512];
  list_segments(dir, last, sizeof(last));
  /* Walk the file to find the last batch and the entries in it. */
  size_t n;
  uint8_t *p = read_file(last, &n);
  size_t pos = 0, batch_pos = 0, batch_first = 0, nentries = 0;
  wal_record_t r;
  while (wal_record_decode(p + pos, n - pos, &r) == WAL_DEC_OK) {
    if (r.type == WAL_REC_BATCH) batch_pos = pos, batch_first = nentries;
    if (r.type == WAL_REC_ENTRY) nentries++;
    pos += r.size;
  }
  assert_int_equal(nentries, 300);
  size_t in_batch = nentries - batch_first;
  assert_true(in_batch >= 3);
  /* Zero the header of the middle entry of the last batch. */
  size_t target = batch_first + in_batch / 2, k = batch_first;
  pos = batch_pos + WAL_BATCH_REC_SIZE;
  while (k < target) {
    assert_int_equal(wal_record_decode(p + pos, n - pos, &r), WAL_DEC_OK);
    pos += r.size;
    k++;
  }
  free(p);
  char zeros[WAL_HDR_SIZE] = {0};
  write_at(last, pos, zeros, sizeof(zeros));
  w = open_ok(dir, 1 << 20, &c);
  check_range(&c, 1, target);
  coll_free(&c);
  append_range(w, target + 1, target + 6, 2);
  assert_int_equal(wal_close(w), 0);
  w = open_ok(dir, 1 << 20, &c);
  check_range(&c, 1, target + 6);
  assert_int_equal(wal_close(w), 0);
  coll_free(&c);
  rm_tmpdir(dir);
}

static void test_hardstate_and_snapshot(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  coll_t c = {0};
  wal_t *w = open_ok(dir, SMALL_SEG, &c);
  assert_int_equal(wal_append_snapshot(w, 3, 1), 0);
  assert_int_equal(wal_append_hardstate(w, 5, 2, 10), 0);
  append_range(w, 4, 20, 0);
  assert_int_equal(wal_append_hardstate(w, 6, 3, 12), 0);
  assert_int_equal(wal_sync_now(w), 0);
  assert_int_equal(wal_close(w), 0);
  w = open_ok(dir, SMALL_SEG, &c);
  assert_int_equal(c.nhs, 2);
  assert_int_equal(c.hs[0], 6);
  assert_int_equal(c.hs[1], 3);
  assert_int_equal(c.hs[2], 12);
  assert_int_equal(c.nsnap, 1);
  assert_int_equal(c.snap[0], 3);
  assert_int_equal(c.snap[1], 1);
  check_range(&c, 4, 20);
  coll_free(&c);
  /* Rotate through many segments and release the old ones: the latest hard state and
   * snapshot marker survive because each segment starts with a copy. */
  append_range(w, 21, 400, 5);
  assert_true(wal_segment_count(w) > 3);
  assert_int_equal(wal_release_before(w, 1000), 0);
  assert_int_equal(wal_sync_now(w), 0);
  assert_int_equal(wal_segment_count(w), 1);
  assert_int_equal(wal_close(w), 0);
  w = open_ok(dir, SMALL_SEG, &c);
  assert_true(c.nhs >= 1);
  assert_int_equal(c.hs[0], 6);
  assert_int_equal(c.hs[2], 12);
  assert_int_equal(c.snap[0], 3);
  assert_int_equal(wal_close(w), 0);
  coll_free(&c);
  rm_tmpdir(dir);
}

/* Entries overwritten by a later leader are reported in log order. */
static void test_overwrite_reported_in_order(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  coll_t c = {0};
  wal_t *w = open_ok(dir, SMALL_SEG, &c);
  for (uint64_t i = 1; i <= 10; i++) assert_int_equal(wal_append_entry(w, i, 1, "a", 1), 0);
  assert_int_equal(wal_sync_now(w), 0);
  for (uint64_t i = 6; i <= 8; i++) assert_int_equal(wal_append_entry(w, i, 2, "b", 1), 0);
  assert_int_equal(wal_sync_now(w), 0);
  assert_int_equal(wal_durable_index(w), 8);
  assert_int_equal(wal_close(w), 0);
  w = open_ok(dir, SMALL_SEG, &c);
  assert_int_equal(c.n, 13);
  for (size_t k = 0; k < 10; k++) assert_int_equal(c.e[k].index, k + 1);
  for (size_t k = 10; k < 13; k++) {
    assert_int_equal(c.e[k].index, k - 4);
    assert_int_equal(c.e[k].term, 2);
    assert_memory_equal(c.e[k].data, "b", 1);
  }
  assert_int_equal(wal_close(w), 0);
  coll_free(&c);
  rm_tmpdir(dir);
}

/* Replay of a conf change entry: its own callback, or the entry callback when unset. */
typedef struct typed {
  char kinds[16]; /* 'e' entry, 'c' conf entry, in log order */
  size_t n;
} typed_t;

static int typed_entry(void *ctx, uint64_t index, uint64_t term, const uint8_t *data, size_t len) {
  typed_t *t = ctx;
  (void)term, (void)data, (void)len;
  assert_int_equal(index, t->n + 1);
  t->kinds[t->n++] = 'e';
  return 0;
}

static int typed_conf(void *ctx, uint64_t index, uint64_t term, const uint8_t *data, size_t len) {
  typed_t *t = ctx;
  (void)term;
  assert_int_equal(index, t->n + 1);
  assert_int_equal(len, 2);
  assert_memory_equal(data, "cc", 2);
  t->kinds[t->n++] = 'c';
  return 0;
}

static void test_conf_entries_keep_their_type(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  coll_t c = {0};
  wal_t *w = open_ok(dir, SMALL_SEG, &c);
  assert_int_equal(wal_append_entry(w, 1, 1, "a", 1), 0);
  assert_int_equal(wal_append_conf_entry(w, 2, 1, "cc", 2), 0);
  assert_int_equal(wal_append_entry(w, 3, 1, "b", 1), 0);
  assert_int_equal(wal_sync_now(w), 0);
  assert_int_equal(wal_durable_index(w), 3);
  assert_int_equal(wal_close(w), 0);
  typed_t t = {0};
  wal_replay_t r = {.entry = typed_entry, .conf_entry = typed_conf, .ctx = &t};
  wal_options_t o = {.segment_size = SMALL_SEG};
  assert_int_equal(wal_open(dir, &o, &r, &w), 0);
  assert_int_equal(t.n, 3);
  assert_memory_equal(t.kinds, "ece", 3);
  assert_int_equal(wal_close(w), 0);
  w = open_ok(dir, SMALL_SEG, &c); /* no conf_entry callback: delivered as an entry */
  assert_int_equal(c.n, 3);
  assert_int_equal(c.e[1].index, 2);
  assert_memory_equal(c.e[1].data, "cc", 2);
  assert_int_equal(wal_close(w), 0);
  coll_free(&c);
  rm_tmpdir(dir);
}

static void test_release_before(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  coll_t c = {0};
  wal_t *w = open_ok(dir, SMALL_SEG, &c);
  append_range(w, 1, 300, 5);
  size_t before = wal_segment_count(w);
  assert_true(before > 4);
  assert_int_equal(list_segments(dir, NULL, 0), (int)before);
  assert_int_equal(wal_release_before(w, 100), 0);
  assert_int_equal(wal_sync_now(w), 0);
  size_t after = wal_segment_count(w);
  assert_true(after < before);
  assert_true(after > 1);
  assert_int_equal(list_segments(dir, NULL, 0), (int)after);
  assert_int_equal(wal_close(w), 0);
  w = open_ok(dir, SMALL_SEG, &c);
  /* The first kept segment holds entry 99 at the latest; all after it are there. */
  assert_true(c.n > 0);
  assert_true(c.e[0].index <= 100);
  assert_true(c.e[0].index > 1);
  check_range(&c, c.e[0].index, 300);
  /* Releasing everything keeps the current segment. */
  assert_int_equal(wal_release_before(w, UINT64_MAX), 0);
  assert_int_equal(wal_sync_now(w), 0);
  assert_int_equal(wal_segment_count(w), 1);
  assert_int_equal(list_segments(dir, NULL, 0), 1);
  append_range(w, 301, 310, 0);
  assert_int_equal(wal_close(w), 0);
  coll_free(&c);
  w = open_ok(dir, SMALL_SEG, &c);
  assert_int_equal(c.e[c.n - 1].index, 310);
  assert_int_equal(wal_close(w), 0);
  coll_free(&c);
  rm_tmpdir(dir);
}

static int fail_at_5(void *ctx, uint64_t index, uint64_t term, const uint8_t *data, size_t len) {
  (void)ctx, (void)term, (void)data, (void)len;
  return index == 5 ? CETCD_EINVAL : 0;
}

static void test_open_errors(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  char path[600];
  coll_t c = {0};
  /* The parent is a regular file. */
  snprintf(path, sizeof(path), "%s/file", dir);
  FILE *f = fopen(path, "w");
  fclose(f);
  snprintf(path, sizeof(path), "%s/file/wal", dir);
  assert_int_equal(open_rc(path, SMALL_SEG, &c), -ENOTDIR);
  /* A directory we may not write to (only meaningful when not root). */
  snprintf(path, sizeof(path), "%s/ro", dir);
  mkdir(path, 0500);
  if (geteuid() != 0) assert_int_equal(open_rc(path, SMALL_SEG, &c), -EACCES);
  chmod(path, 0700);
  /* Bad options. */
  assert_int_equal(open_rc(dir, 100, &c), CETCD_EINVAL);
  /* A second open of the same WAL. */
  snprintf(path, sizeof(path), "%s/wal", dir);
  wal_t *w = open_ok(path, SMALL_SEG, &c);
  assert_int_equal(open_rc(path, SMALL_SEG, &c), -EBUSY);
  append_range(w, 1, 10, 0);
  assert_int_equal(wal_close(w), 0);
  /* A replay callback's error aborts the open. */
  wal_replay_t r = {.entry = fail_at_5};
  assert_int_equal(wal_open(path, &(wal_options_t){.segment_size = SMALL_SEG}, &r, &w), CETCD_EINVAL);
  /* Too large an entry. */
  w = open_ok(path, SMALL_SEG, &c);
  assert_int_equal(wal_append_entry(w, 11, 1, "", (size_t)WAL_MAX_ENTRY_SIZE + 1), CETCD_ETOOLARGE);
  assert_int_equal(wal_close(w), 0);
  coll_free(&c);
  rm_tmpdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_segments),
      cmocka_unit_test(test_rotate_at_open),
      cmocka_unit_test(test_empty_and_zero_tail),
      cmocka_unit_test(test_torn_last_record),
      cmocka_unit_test(test_bad_crc_last_record_is_torn),
      cmocka_unit_test(test_bad_crc_in_middle_is_corruption),
      cmocka_unit_test(test_corruption_in_sealed_segment),
      cmocka_unit_test(test_missing_segment_is_corruption),
      cmocka_unit_test(test_hole_in_last_batch_is_torn),
      cmocka_unit_test(test_hardstate_and_snapshot),
      cmocka_unit_test(test_overwrite_reported_in_order),
      cmocka_unit_test(test_conf_entries_keep_their_type),
      cmocka_unit_test(test_release_before),
      cmocka_unit_test(test_open_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
