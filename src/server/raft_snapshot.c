/* Raft snapshot metadata files (see raft_snapshot.h). */
#include "server/raft_snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "wal/wal.h"

#define RSNAP_MAGIC "CSNAP\0\0\1"
#define RSNAP_MAX_IDS 4096 /* far above any cluster's size: a bigger count is damage */

/* Appends a little-endian u64 to p and returns the position after it. */
static uint8_t *put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
  return p + 8;
}

/* Reads a little-endian u64. */
static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* Writes n bytes at p to fd, retrying short writes. Returns 0 or -errno. */
static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* fsyncs the directory dir. Returns 0 or -errno. */
static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = fsync(fd) ? -errno : 0;
  close(fd);
  return rc;
}

int rsnap_save(const char *dir, const raft_snapshot_t *s) {
  size_t n_ids = s->n_voters + s->n_learners;
  size_t body = 8 + 4 * 8 + n_ids * 8;
  uint8_t *buf = xmalloc(body + SHA256_DIGEST_SIZE);
  uint8_t *p = buf;
  memcpy(p, RSNAP_MAGIC, 8);
  p = put_u64(p + 8, s->index);
  p = put_u64(p, s->term);
  p = put_u64(p, s->n_voters);
  p = put_u64(p, s->n_learners);
  for (size_t i = 0; i < s->n_voters; i++) p = put_u64(p, s->voters[i]);
  for (size_t i = 0; i < s->n_learners; i++) p = put_u64(p, s->learners[i]);
  struct sha256_ctx h;
  sha256_init(&h);
  sha256_update(&h, body, buf);
  sha256_digest(&h, SHA256_DIGEST_SIZE, p);
  char path[PATH_MAX], tmp[PATH_MAX + 8];
  snprintf(path, sizeof(path), "%s/%016" PRIx64 "-%016" PRIx64 ".snap", dir, s->term, s->index);
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int rc = 0;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) rc = -errno;
  if (!rc) rc = write_all(fd, buf, body + SHA256_DIGEST_SIZE);
  if (!rc && fsync(fd)) rc = -errno;
  if (fd >= 0) close(fd);
  if (!rc && rename(tmp, path)) rc = -errno;
  if (!rc) rc = sync_dir(dir);
  if (rc) {
    LOGW("msg=\"failed to write a snap file\" path=%s error=\"%s\"", path, strerror(-rc));
    unlink(tmp);
  }
  free(buf);
  return rc;
}

/* Parses a snap file's bytes into out. Returns 0 or CETCD_ECORRUPT. */
static int parse(const uint8_t *b, size_t n, rsnap_meta_t *out) {
  memset(out, 0, sizeof(*out));
  if (n < 8 + 32 + SHA256_DIGEST_SIZE || memcmp(b, RSNAP_MAGIC, 8)) return CETCD_ECORRUPT;
  uint64_t nv = get_u64(b + 24), nl = get_u64(b + 32);
  if (nv > RSNAP_MAX_IDS || nl > RSNAP_MAX_IDS) return CETCD_ECORRUPT;
  size_t body = 8 + 32 + (size_t)(nv + nl) * 8;
  if (n != body + SHA256_DIGEST_SIZE) return CETCD_ECORRUPT;
  uint8_t d[SHA256_DIGEST_SIZE];
  struct sha256_ctx h;
  sha256_init(&h);
  sha256_update(&h, body, b);
  sha256_digest(&h, sizeof(d), d);
  if (memcmp(d, b + body, sizeof(d))) return CETCD_ECORRUPT;
  out->index = get_u64(b + 8);
  out->term = get_u64(b + 16);
  out->n_voters = nv;
  out->n_learners = nl;
  out->voters = xcalloc(nv ? nv : 1, sizeof(uint64_t));
  out->learners = xcalloc(nl ? nl : 1, sizeof(uint64_t));
  const uint8_t *p = b + 40;
  for (size_t i = 0; i < nv; i++, p += 8) out->voters[i] = get_u64(p);
  for (size_t i = 0; i < nl; i++, p += 8) out->learners[i] = get_u64(p);
  return 0;
}

/* Reads the file at path (at most 1 MiB) into out. Returns 0, CETCD_ECORRUPT or -errno. */
static int load_file(const char *path, rsnap_meta_t *out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t cap = 1u << 20, n = 0;
  uint8_t *b = xmalloc(cap);
  int rc = 0;
  for (;;) {
    ssize_t r = read(fd, b + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) rc = -errno;
    if (r <= 0) break;
    n += (size_t)r;
    if (n == cap) {
      rc = CETCD_ECORRUPT;
      break;
    }
  }
  close(fd);
  if (!rc) rc = parse(b, n, out);
  free(b);
  return rc;
}

/* A snap file name: term and index. */
typedef struct snap_name {
  uint64_t term, index;
} snap_name_t;

/* Sorts names by index, newest first. */
static int cmp_newest(const void *a, const void *b) {
  const snap_name_t *x = a, *y = b;
  if (x->index != y->index) return x->index < y->index ? 1 : -1;
  return x->term < y->term ? 1 : x->term > y->term ? -1 : 0;
}

/* Lists the snap files of dir, newest first, into *out (owned). Returns the count or -errno. */
static long list_snaps(const char *dir, snap_name_t **out) {
  *out = NULL;
  DIR *d = opendir(dir);
  if (!d) return -errno;
  size_t n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    snap_name_t s;
    char tail[8];
    if (strlen(de->d_name) != 38 ||
        sscanf(de->d_name, "%16" SCNx64 "-%16" SCNx64 "%5s", &s.term, &s.index, tail) != 3 ||
        strcmp(tail, ".snap"))
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 8;
      *out = xrealloc(*out, cap * sizeof(**out));
    }
    (*out)[n++] = s;
  }
  closedir(d);
  if (n) qsort(*out, n, sizeof(**out), cmp_newest);
  return (long)n;
}

int rsnap_load_newest(const char *dir, uint64_t max_index, bool (*accept)(void *ctx, const rsnap_meta_t *m),
                      void *ctx, rsnap_meta_t *out) {
  snap_name_t *names;
  long n = list_snaps(dir, &names);
  if (n < 0) return (int)n;
  int rc = CETCD_EKEYNOTFOUND;
  for (long i = 0; i < n && rc == CETCD_EKEYNOTFOUND; i++) {
    if (names[i].index > max_index) continue;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%016" PRIx64 "-%016" PRIx64 ".snap", dir, names[i].term, names[i].index);
    rsnap_meta_t m;
    int lr = load_file(path, &m);
    if (lr == CETCD_ECORRUPT) {
      char broken[PATH_MAX + 8];
      snprintf(broken, sizeof(broken), "%s.broken", path);
      rename(path, broken);
      LOGW("msg=\"renamed to a broken snap file\" path=%s broken-path=%s", path, broken);
      continue;
    }
    if (lr) {
      LOGW("msg=\"failed to read a snap file\" path=%s error=\"%s\"", path, strerror(-lr));
      continue;
    }
    if (accept(ctx, &m)) {
      *out = m;
      rc = 0;
    } else {
      rsnap_meta_free(&m);
    }
  }
  free(names);
  return rc;
}

void rsnap_purge(const char *dir, size_t keep) {
  snap_name_t *names;
  long n = list_snaps(dir, &names);
  for (long i = (long)keep; i < n; i++) {
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%016" PRIx64 "-%016" PRIx64 ".snap", dir, names[i].term, names[i].index);
    if (unlink(path) == 0) LOGI("msg=\"purged file\" path=%s", path);
  }
  free(names);
}

void rsnap_meta_free(rsnap_meta_t *m) {
  free(m->voters);
  free(m->learners);
  m->voters = m->learners = NULL;
}

raft_snapshot_t rsnap_as_raft(const rsnap_meta_t *m) {
  return (raft_snapshot_t){.index = m->index,
                           .term = m->term,
                           .voters = m->voters,
                           .n_voters = m->n_voters,
                           .learners = m->learners,
                           .n_learners = m->n_learners};
}

void rsnap_state_init(rsnap_state_t *st, const char *data_dir, uint64_t count, uint64_t member_id) {
  memset(st, 0, sizeof(*st));
  size_t n = strlen(data_dir) + sizeof("/member/snap");
  st->dir = xmalloc(n);
  snprintf(st->dir, n, "%s/member/snap", data_dir);
  if (!count) { /* etcd's rule */
    LOGI("msg=\"updating snapshot-count to default\" given-snapshot-count=0 updated-snapshot-count=%d",
         RSNAP_DEFAULT_COUNT);
    count = RSNAP_DEFAULT_COUNT;
  }
  st->count = count;
  st->catch_up = RSNAP_CATCH_UP_ENTRIES;
  const char *env = getenv("CETCD_TEST_SNAPSHOT_CATCHUP_ENTRIES");
  if (env && *env) st->catch_up = strtoull(env, NULL, 10);
  st->member_id = member_id;
}

void rsnap_state_free(rsnap_state_t *st) {
  free(st->dir);
  st->dir = NULL;
}

void rsnap_state_restored(rsnap_state_t *st, uint64_t index, uint64_t applied) {
  st->snap_index = index;
  /* the snapshot was taken catch_up entries behind the trigger */
  st->last_trigger = index && index + st->catch_up < applied ? index + st->catch_up : applied;
}

void rsnap_maybe_snapshot(rsnap_state_t *st, raft_t *r, wal_t *w) {
  raft_status_t rs;
  raft_status(r, &rs);
  if (rs.applied < st->last_trigger + st->count) return;
  LOGI("msg=\"triggering snapshot\" local-member-id=%016" PRIx64 " local-member-applied-index=%" PRIu64
       " local-member-snapshot-index=%" PRIu64 " local-member-snapshot-count=%" PRIu64,
       st->member_id, rs.applied, st->snap_index, st->count);
  st->last_trigger = rs.applied;
  if (st->inflight) {
    LOGI("msg=\"skip compaction since there is an inflight snapshot\"");
    return;
  }
  if (rs.applied <= st->catch_up) return; /* nothing old enough to drop yet */
  uint64_t ci = rs.applied - st->catch_up;
  if (ci < rs.first_index) return; /* already compacted there */
  int rc = raft_compact(r, ci, NULL, 0);
  if (rc) {
    LOGW("msg=\"failed to compact\" compact-index=%" PRIu64 " error=\"%s\"", ci, cetcd_strerror(rc));
    return;
  }
  const raft_snapshot_t *s = raft_last_snapshot(r);
  if (rsnap_save(st->dir, s)) return; /* the WAL keeps everything until a snapshot is saved */
  if ((rc = wal_append_snapshot(w, s->index, s->term))) {
    LOGW("msg=\"failed to save snapshot\" error=\"%s\"", cetcd_strerror(rc));
    return;
  }
  LOGI("msg=\"saved snapshot\" snapshot-index=%" PRIu64, s->index);
  LOGI("msg=\"compacted Raft logs\" compact-index=%" PRIu64, s->index);
  st->prev_index = st->snap_index;
  st->snap_index = s->index;
  rsnap_purge(st->dir, RSNAP_KEEP_FILES);
}

int rsnap_persist_received(rsnap_state_t *st, const raft_snapshot_t *s, wal_t *w, uint64_t applied) {
  if (applied < s->index)
    LOGE("msg=\"raft restored a snapshot the backend does not reflect\" snapshot-index=%" PRIu64
         " applied-index=%" PRIu64,
         s->index, applied);
  int rc = rsnap_save(st->dir, s);
  if (!rc) rc = wal_append_snapshot(w, s->index, s->term);
  if (rc) return rc;
  LOGI("msg=\"saved snapshot\" snapshot-index=%" PRIu64, s->index);
  st->prev_index = st->snap_index;
  st->snap_index = s->index;
  st->last_trigger = applied;
  rsnap_purge(st->dir, RSNAP_KEEP_FILES);
  return 0;
}

uint64_t rsnap_release_index(const rsnap_state_t *st, uint64_t synced) {
  if (st->snap_index && st->snap_index <= synced) return st->snap_index + 1;
  if (st->prev_index && st->prev_index <= synced) return st->prev_index + 1;
  return 0;
}
