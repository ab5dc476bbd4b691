/* Unit tests for raft snapshot metadata files and the snapshot policy (server/raft_snapshot.c):
 * save/load round trip, newest-fitting selection, a damaged file set aside, purge, and the
 * trigger/compaction/release rules on a real raft core. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka must come after the headers above
#include <cmocka.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cetcd/errors.h"
#include "raft/raft.h"
#include "server/raft_snapshot.h"
#include "wal/wal.h"

/* nftw callback removing one entry. */
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

/* A fresh temp dir for one test (freed by teardown). */
static int setup(void **state) {
  char *dir = strdup("/tmp/cetcd-rsnap-XXXXXX");
  assert_non_null(mkdtemp(dir));
  *state = dir;
  return 0;
}

static int teardown(void **state) {
  nftw(*state, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(*state);
  return 0;
}

/* rsnap_load_newest filter accepting everything. */
static bool accept_all(void *ctx, const rsnap_meta_t *m) {
  (void)ctx, (void)m;
  return true;
}

/* rsnap_load_newest filter accepting only an index != *ctx. */
static bool accept_not(void *ctx, const rsnap_meta_t *m) { return m->index != *(uint64_t *)ctx; }

/* Counts the *.snap files in dir. */
static int count_snaps(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l > 5 && !strcmp(de->d_name + l - 5, ".snap")) n++;
  }
  closedir(d);
  return n;
}

/* Saves a snapshot with the given index and a fixed membership. */
static void save(const char *dir, uint64_t index, uint64_t term) {
  static const uint64_t voters[] = {11, 22, 33}, learners[] = {44};
  raft_snapshot_t s = {
      .index = index, .term = term, .voters = voters, .n_voters = 3, .learners = learners, .n_learners = 1};
  assert_int_equal(rsnap_save(dir, &s), 0);
}

static void test_round_trip_and_newest(void **state) {
  const char *dir = *state;
  rsnap_meta_t m;
  assert_int_equal(rsnap_load_newest(dir, UINT64_MAX, accept_all, NULL, &m), CETCD_EKEYNOTFOUND);
  save(dir, 100, 2);
  save(dir, 300, 3);
  save(dir, 200, 3);
  assert_int_equal(rsnap_load_newest(dir, UINT64_MAX, accept_all, NULL, &m), 0);
  assert_int_equal(m.index, 300);
  assert_int_equal(m.term, 3);
  assert_int_equal(m.n_voters, 3);
  assert_int_equal(m.voters[2], 33);
  assert_int_equal(m.n_learners, 1);
  assert_int_equal(m.learners[0], 44);
  rsnap_meta_free(&m);
  /* capped by the backend's index, and by the filter */
  assert_int_equal(rsnap_load_newest(dir, 250, accept_all, NULL, &m), 0);
  assert_int_equal(m.index, 200);
  rsnap_meta_free(&m);
  uint64_t skip = 300;
  assert_int_equal(rsnap_load_newest(dir, UINT64_MAX, accept_not, &skip, &m), 0);
  assert_int_equal(m.index, 200);
  rsnap_meta_free(&m);
}

static void test_damaged_file_is_set_aside(void **state) {
  const char *dir = *state;
  save(dir, 100, 2);
  save(dir, 200, 2);
  char path[512];
  snprintf(path, sizeof(path), "%s/%016x-%016x.snap", dir, 2, 200);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, 20, SEEK_SET);
  fputc(0x5a, f);
  fclose(f);
  rsnap_meta_t m;
  assert_int_equal(rsnap_load_newest(dir, UINT64_MAX, accept_all, NULL, &m), 0);
  assert_int_equal(m.index, 100);
  rsnap_meta_free(&m);
  char broken[600];
  snprintf(broken, sizeof(broken), "%s.broken", path);
  assert_int_equal(access(broken, F_OK), 0);
  assert_int_equal(count_snaps(dir), 1);
}

static void test_purge_keeps_newest(void **state) {
  const char *dir = *state;
  for (uint64_t i = 1; i <= 8; i++) save(dir, i * 10, 1);
  rsnap_purge(dir, 5);
  assert_int_equal(count_snaps(dir), 5);
  rsnap_meta_t m;
  assert_int_equal(rsnap_load_newest(dir, 35, accept_all, NULL, &m), CETCD_EKEYNOTFOUND);
  assert_int_equal(rsnap_load_newest(dir, 45, accept_all, NULL, &m), 0);
  assert_int_equal(m.index, 40);
  rsnap_meta_free(&m);
}

/* Fixed random source for the raft core. */
static uint64_t fixed_rand(void *ctx) {
  (void)ctx;
  return 7;
}

/* Drains r's Ready loop (a single voter commits its own entries). */
static void drain(raft_t *r) {
  while (raft_has_ready(r)) {
    raft_ready_t rd;
    assert_int_equal(raft_ready(r, &rd), 0);
    raft_advance(r, &rd);
  }
}

static void test_policy_compacts_saves_and_releases(void **state) {
  const char *dir = *state;
  char member_dir[512], snap_dir[600], wal_dir[600];
  snprintf(member_dir, sizeof(member_dir), "%s/member", dir);
  snprintf(snap_dir, sizeof(snap_dir), "%s/snap", member_dir);
  snprintf(wal_dir, sizeof(wal_dir), "%s/wal", member_dir);
  assert_int_equal(mkdir(member_dir, 0700), 0);
  assert_int_equal(mkdir(snap_dir, 0700), 0);
  setenv("CETCD_TEST_SNAPSHOT_CATCHUP_ENTRIES", "30", 1);
  rsnap_state_t st;
  rsnap_state_init(&st, dir, 50, 1);
  unsetenv("CETCD_TEST_SNAPSHOT_CATCHUP_ENTRIES");
  assert_int_equal(st.catch_up, 30);
  rsnap_state_t dflt;
  rsnap_state_init(&dflt, dir, 0, 1); /* etcd: 0 means the default */
  assert_int_equal(dflt.count, 100000);
  assert_int_equal(dflt.catch_up, 5000);
  rsnap_state_free(&dflt);
  wal_t *w;
  wal_options_t wo = {0};
  assert_int_equal(wal_open(wal_dir, &wo, NULL, &w), 0);
  const uint64_t voters[] = {1};
  raft_config_t rc = {.id = 1, .voters = voters, .n_voters = 1, .rand = fixed_rand};
  raft_t *r = raft_new(&rc);
  assert_non_null(r);
  assert_int_equal(raft_campaign(r), 0);
  drain(r);
  uint64_t applied = 0;
  for (int i = 0; i < 120; i++) {
    assert_int_equal(raft_propose(r, (const uint8_t *)"x", 1), 0);
    drain(r);
    rsnap_maybe_snapshot(&st, r, w);
    raft_status_t rs;
    raft_status(r, &rs);
    applied = rs.applied;
    /* never more than count + catch_up entries stay in the log */
    assert_true(rs.last_index - rs.first_index + 1 <= 50 + 30);
  }
  /* triggered at 50 and 100 (applied counts the leader's empty entry): compacted 30 behind */
  assert_int_equal(applied, 121);
  assert_int_equal(st.snap_index, 100 - 30);
  assert_int_equal(st.prev_index, 50 - 30);
  assert_int_equal(raft_last_snapshot(r)->index, 70);
  assert_int_equal(count_snaps(snap_dir), 2);
  /* WAL release waits for the backend to be durable past a saved snapshot */
  assert_int_equal(rsnap_release_index(&st, 19), 0);
  assert_int_equal(rsnap_release_index(&st, 20), 21);
  assert_int_equal(rsnap_release_index(&st, 69), 21);
  assert_int_equal(rsnap_release_index(&st, 121), 71);
  /* a restart from the snapshot at 70 with the backend at 121 triggers again at 150 */
  rsnap_state_restored(&st, 70, 121);
  assert_int_equal(st.last_trigger, 100);
  assert_int_equal(wal_close(w), 0);
  raft_free(r);
  rsnap_state_free(&st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip_and_newest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_damaged_file_is_set_aside, setup, teardown),
      cmocka_unit_test_setup_teardown(test_purge_keeps_newest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_policy_compacts_saves_and_releases, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
