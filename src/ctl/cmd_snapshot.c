/* snapshot save <file> (streams the backend with progress logs to stderr) and snapshot
 * status <file> (reads the bbolt file: hash, revision, total keys, total size, computed
 * like etcd's snapshot.Status: CRC-32C over bucket names, keys and values in order). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl/printer.h"
#include "snapshot/bbolt.h"

/* Go-style error text: strerror with a lower-case first letter. */
static const char *go_strerror(int e) {
  static char buf[128];
  snprintf(buf, sizeof(buf), "%s", strerror(e));
  if (buf[0] >= 'A' && buf[0] <= 'Z') buf[0] = (char)(buf[0] + 32);
  return buf;
}

/* Writes one zap-style info line (JSON) to stderr; extra is `,"k":v...` or "". */
static void log_info(const char *msg, const char *extra) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  fprintf(stderr,
          "{\"level\":\"info\",\"ts\":%lld.%06ld,\"caller\":\"cetcdctl/snapshot\",\"msg\":\"%s\"%s}\n",
          (long long)ts.tv_sec, ts.tv_nsec / 1000, msg, extra);
}

typedef struct save_ctx {
  int fd;
  uint64_t bytes;
  int64_t start, last_report;
  int err;
} save_ctx_t;

/* Writes a snapshot chunk and reports progress about once a second. */
static int save_chunk(void *arg, const void *data, size_t len) {
  save_ctx_t *s = arg;
  const char *p = data;
  while (len) {
    ssize_t w = write(s->fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      s->err = errno;
      return 1;
    }
    p += w;
    len -= (size_t)w;
    s->bytes += (uint64_t)w;
  }
  int64_t now = ctl_now_ns();
  if (now - s->last_report >= 1000000000) {
    s->last_report = now;
    char sz[32], extra[128];
    ctl_humanize_bytes(s->bytes, sz, sizeof(sz));
    snprintf(extra, sizeof(extra), ",\"received\":\"%s\",\"bytes\":%llu", sz, (unsigned long long)s->bytes);
    log_info("receiving snapshot", extra);
  }
  return 0;
}

/* snapshot save <filename> */
static int run_save(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "snapshot save expects one argument");
  if (g_ctl.n_endpoints != 1)
    ctl_die(EXIT_INTERRUPTED, "snapshot must be requested to one selected node, not multiple [%s ...]",
            g_ctl.endpoints[0]);
  const char *path = a->pos[0];
  char *part = NULL, extra[1024];
  if (asprintf(&part, "%s.part", path) < 0) abort();
  save_ctx_t s = {0};
  s.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (s.fd < 0) ctl_die(EXIT_INTERRUPTED, "could not open %s (open %s: %s)", part, part, go_strerror(errno));
  snprintf(extra, sizeof(extra), ",\"path\":\"%s\"", part);
  log_info("created temporary db file", extra);
  if (!g_ctl.command_timeout_set) g_ctl.command_timeout_ms = 60000; /* silence limit of the stream */
  cetcd_client_t *c = ctl_client();
  snprintf(extra, sizeof(extra), ",\"endpoint\":\"%s\"", g_ctl.endpoints[0]);
  log_info("fetching snapshot", extra);
  s.start = s.last_report = ctl_now_ns();
  int rc = cetcd_snapshot(c, save_chunk, &s);
  if (rc == 0 && fsync(s.fd) != 0) s.err = errno;
  close(s.fd);
  if (s.err) {
    unlink(part);
    ctl_die(EXIT_INTERRUPTED, "could not write %s (%s)", part, go_strerror(s.err));
  }
  if (rc != 0) {
    unlink(part);
    ctl_die(EXIT_INTERRUPTED, "%s", ctl_errmsg(rc));
  }
  char sz[32];
  ctl_humanize_bytes(s.bytes, sz, sizeof(sz));
  snprintf(extra, sizeof(extra), ",\"endpoint\":\"%s\",\"size\":\"%s\",\"took\":%.6f", g_ctl.endpoints[0], sz,
           (double)(ctl_now_ns() - s.start) / 1e9);
  log_info("fetched snapshot", extra);
  if (rename(part, path) != 0)
    ctl_die(EXIT_INTERRUPTED, "could not rename %s to %s (%s)", part, path, go_strerror(errno));
  snprintf(extra, sizeof(extra), ",\"path\":\"%s\"", path);
  log_info("saved", extra);
  printf("Snapshot saved at %s\n", path);
  cetcd_client_free(c);
  free(part);
  return 0;
}

/* CRC-32C (Castagnoli), reflected, as Go's crc32.MakeTable(crc32.Castagnoli). */
static uint32_t crc32c(uint32_t crc, const uint8_t *p, size_t n) {
  static uint32_t tbl[256];
  if (!tbl[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      tbl[i] = c;
    }
  crc = ~crc;
  while (n--) crc = tbl[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

typedef struct status_ctx {
  uint32_t crc;
  db_status_t st;
} status_ctx_t;

/* Hashes a bucket name. */
static int st_bucket(void *arg, const uint8_t *name, size_t n) {
  status_ctx_t *s = arg;
  s->crc = crc32c(s->crc, name, n);
  return 0;
}

/* Hashes a record; keys of the "key" bucket carry the revision (8 bytes big-endian). */
static int st_record(void *arg, const uint8_t *b, size_t blen, const uint8_t *k, size_t klen,
                     const uint8_t *v, size_t vlen) {
  status_ctx_t *s = arg;
  s->crc = crc32c(s->crc, k, klen);
  s->crc = crc32c(s->crc, v, vlen);
  if (blen == 3 && memcmp(b, "key", 3) == 0 && klen >= 8) {
    int64_t rev = 0;
    for (int i = 0; i < 8; i++) rev = (rev << 8) | k[i];
    s->st.revision = rev;
  }
  s->st.total_key++;
  return 0;
}

/* snapshot status <filename> */
static int run_status(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "snapshot status requires exactly one argument");
  const char *path = a->pos[0];
  struct stat sb;
  if (stat(path, &sb) != 0) ctl_die(EXIT_ERR, "stat %s: %s", path, go_strerror(errno));
  bbolt_reader_t *r = NULL;
  char err[512] = "";
  int rc = bbolt_reader_open(path, &r, err, sizeof(err));
  if (rc != 0) ctl_die(EXIT_ERR, "%s", err[0] ? err : "invalid database");
  status_ctx_t s = {0};
  rc = bbolt_reader_walk(r, st_bucket, st_record, &s);
  if (rc != 0) ctl_die(EXIT_ERR, "snapshot file integrity check failed. %s", bbolt_reader_error(r));
  uint32_t psize = 4096;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  uint8_t b[4];
  if (fd >= 0 && pread(fd, b, 4, 24) == 4)
    psize = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  if (fd >= 0) close(fd);
  s.st.total_size = (int64_t)(bbolt_reader_pgid(r) * psize);
  s.st.hash = s.crc;
  bbolt_reader_close(r);
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->db_status != NULL);
  p->db_status(&s.st);
  return 0;
}

static const ctl_cmd_t snap_subs[] = {
    {"save", "save <filename>", "Stores an etcd node backend snapshot to a given file", run_save, NULL, NULL,
     NULL},
    {"status", "status <filename>", "Gets backend snapshot status of a given file", run_status, NULL, NULL,
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
const ctl_cmd_t ctl_cmd_snapshot = {
    "snapshot", "snapshot <subcommand>", "Manages etcd node snapshots", NULL, NULL, snap_subs, NULL};
