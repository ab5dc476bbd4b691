/* Helpers for libcetcd tests: start a real server (cetcd, or etcd when
 * CETCD_TEST_SERVER=/usr/bin/etcd) on free loopback ports with a temporary data dir, the
 * same flags as tests/integration/harness.py, and stop/restart it by PID.
 *
 * Environment: CETCD_TEST_SERVER (server binary to test against, e.g. /usr/bin/etcd),
 * CETCD_BIN (cetcd binary; ctest sets the default at build time), CETCD_TEST_KEEP=1 (keep
 * the temp dir). */
#ifndef CETCD_CLIENT_TEST_UTIL_H
#define CETCD_CLIENT_TEST_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka needs setjmp.h, stdarg.h and stddef.h first */
#include <cmocka.h>

#include "cetcd/cetcd.h"

#ifndef CETCD_BIN_DEFAULT
#define CETCD_BIN_DEFAULT "cetcd"
#endif

/* Internal test hooks of libcetcd (static library only). */
void cetcd__alloc_fail_at(long n);
long cetcd__alloc_count(void);
bool cetcd__alloc_failed(void);

typedef struct test_server {
  char bin[512];
  char root[256];
  char data[300];
  char log[300];
  int client_port, peer_port;
  char endpoint[64];
  pid_t pid;
  bool tls;              /* serve https:// client URLs (set before tu_server_start) */
  const char *extra[16]; /* more server flags, NULL-terminated (borrowed) */
} test_server_t;

static inline uint64_t tu_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void tu_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

/* True when the tests run against real etcd. */
static inline bool tu_real_etcd(void) {
  const char *s = getenv("CETCD_TEST_SERVER");
  return s && *s && strstr(s, "etcd") && !strstr(s, "cetcd");
}

static inline bool tu_port_free(int p) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

/* A free port in 21000-31999 (below the ephemeral range, like the harness). */
static inline int tu_free_port(void) {
  static unsigned seed;
  if (!seed) seed = (unsigned)getpid() ^ (unsigned)tu_now_ms();
  for (int i = 0; i < 1000; i++) {
    int p = 21000 + (int)(rand_r(&seed) % 11000);
    if (tu_port_free(p)) return p;
  }
  return -1;
}

static inline bool tu_file_contains(const char *path, const char *needle, long from) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  fseek(f, from, SEEK_SET);
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return strstr(buf, needle) != NULL;
}

static inline long tu_file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static inline bool tu_tcp_ok(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

/* Prints the last bytes of the server's log to stderr (why it did not start). */
static inline void tu_print_log_tail(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return;
  long size = tu_file_size(path);
  fseek(f, size > 3000 ? size - 3000 : 0, SEEK_SET);
  char buf[3001];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  fprintf(stderr, "---- end of %s ----\n%s\n----\n", path, buf);
}

/* Starts (or restarts) the server process; waits for readiness. Returns 0 or -1. */
static inline int tu_server_start(test_server_t *s) {
  long off = tu_file_size(s->log);
  char curl[64], purl[64], cluster[96];
  snprintf(curl, sizeof curl, "%s://127.0.0.1:%d", s->tls ? "https" : "http", s->client_port);
  snprintf(purl, sizeof purl, "http://127.0.0.1:%d", s->peer_port);
  snprintf(cluster, sizeof cluster, "default=%s", purl);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    extern char **environ;
    static char *env[512];
    size_t ne = 0;
    for (char **e = environ; *e && ne + 1 < sizeof env / sizeof env[0]; e++)
      if (strncmp(*e, "ETCD_", 5) && strncmp(*e, "ETCDCTL_", 8)) env[ne++] = *e;
    env[ne] = NULL;
    if (chdir(s->root) != 0) _exit(126);
    char *argv[48] = {s->bin,    "--name",
                      "default", "--data-dir",
                      s->data,   "--listen-client-urls",
                      curl,      "--advertise-client-urls",
                      curl,      "--listen-peer-urls",
                      purl,      "--initial-advertise-peer-urls",
                      purl,      "--initial-cluster",
                      cluster,   NULL};
    for (size_t i = 0, n = 15; i < 16 && s->extra[i] && n + 1 < 48; i++) argv[n++] = (char *)s->extra[i];
    execve(s->bin, argv, env);
    _exit(127);
  }
  s->pid = pid;
  uint64_t deadline = tu_now_ms() + 20000;
  while (tu_now_ms() < deadline) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      s->pid = 0;
      fprintf(stderr, "server %s exited during startup (see %s)\n", s->bin, s->log);
      tu_print_log_tail(s->log);
      return -1;
    }
    if (tu_file_contains(s->log, "ready to serve client requests", off) && tu_tcp_ok(s->client_port))
      return 0;
    tu_sleep_ms(30);
  }
  fprintf(stderr, "server %s not ready in time (see %s)\n", s->bin, s->log);
  tu_print_log_tail(s->log);
  return -1;
}

/* Stops the server: SIGTERM (or SIGKILL with kill9), then reaps it. */
static inline void tu_server_stop(test_server_t *s, bool kill9) {
  if (s->pid <= 0) return;
  kill(s->pid, kill9 ? SIGKILL : SIGTERM);
  uint64_t deadline = tu_now_ms() + 5000;
  for (;;) {
    int st;
    if (waitpid(s->pid, &st, WNOHANG) == s->pid) break;
    if (tu_now_ms() > deadline) {
      kill(s->pid, SIGKILL);
      waitpid(s->pid, &st, 0);
      break;
    }
    tu_sleep_ms(20);
  }
  s->pid = 0;
}

/* Creates the temp dir and picks ports (server not started; set tls/extra, then call
 * tu_server_start). Returns 0 or -1. */
static inline int tu_server_prepare(test_server_t *s) {
  memset(s, 0, sizeof(*s));
  const char *bin = getenv("CETCD_TEST_SERVER");
  if (!bin || !*bin) bin = getenv("CETCD_BIN");
  if (!bin || !*bin) bin = CETCD_BIN_DEFAULT;
  snprintf(s->bin, sizeof s->bin, "%s", bin);
  snprintf(s->root, sizeof s->root, "/tmp/cetcd-client-test-XXXXXX");
  if (!mkdtemp(s->root)) return -1;
  snprintf(s->data, sizeof s->data, "%s/data", s->root);
  snprintf(s->log, sizeof s->log, "%s/server.log", s->root);
  s->client_port = tu_free_port();
  do {
    s->peer_port = tu_free_port();
  } while (s->peer_port == s->client_port);
  snprintf(s->endpoint, sizeof s->endpoint, "127.0.0.1:%d", s->client_port);
  return 0;
}

static inline void tu_server_free(test_server_t *s);

/* Creates the temp dir, picks ports and starts the server under test. Ports are checked
 * free when picked, but another test running beside this one may bind one before the
 * server does: then the start is retried on new ports (at most 3 tries). */
static inline int tu_server_new(test_server_t *s) {
  for (int attempt = 1;; attempt++) {
    if (tu_server_prepare(s)) return -1;
    if (tu_server_start(s) == 0) return 0;
    bool taken = tu_file_contains(s->log, "address already in use", 0);
    if (!taken || attempt == 3) return -1;
    fprintf(stderr, "a port was taken before the server bound it; retrying on new ports\n");
    tu_server_free(s);
  }
}

/* Stops the server and removes its temp dir (unless CETCD_TEST_KEEP). */
static inline void tu_server_free(test_server_t *s) {
  tu_server_stop(s, false);
  if (getenv("CETCD_TEST_KEEP")) {
    fprintf(stderr, "keeping %s\n", s->root);
    return;
  }
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->root);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", s->root);
}

/* A client for the given endpoints with short timeouts. */
static inline cetcd_client_t *tu_client(const char *const *eps, size_t n, bool lazy) {
  cetcd_client_opts_t o = {.endpoints = eps,
                           .n_endpoints = n,
                           .dial_timeout_ms = 2000,
                           .request_timeout_ms = 5000,
                           .lazy_connect = lazy};
  cetcd_client_t *c = NULL;
  int rc = cetcd_client_new(&o, &c);
  if (rc)
    fprintf(stderr, "cetcd_client_new: %s (%s)\n", cetcd_strerror(rc),
            cetcd_client_last_error(NULL)->message);
  return c;
}

/* A test group's fixture: starts the server under test and one client on it. Returns 0,
 * or -1 (cmocka then skips the group's tests and reports the failure). */
static inline int tu_start_with_client(test_server_t *s, cetcd_client_t **c) {
  if (tu_server_new(s)) return -1;
  const char *eps[] = {s->endpoint};
  *c = tu_client(eps, 1, false);
  return *c ? 0 : -1;
}

/* Undoes tu_start_with_client. */
static inline void tu_stop_with_client(test_server_t *s, cetcd_client_t *c) {
  cetcd_client_free(c);
  tu_server_free(s);
}

/* Put helper: asserts success, returns the revision. */
static inline int64_t tu_put(cetcd_client_t *c, const char *k, const char *v) {
  cetcd_put_result_t *r = NULL;
  int rc = cetcd_put(c, k, strlen(k), v, strlen(v), NULL, &r);
  if (rc) fprintf(stderr, "put %s: %s (%s)\n", k, cetcd_strerror(rc), cetcd_client_last_error(c)->message);
  assert_int_equal(rc, 0);
  int64_t rev = r->header.revision;
  cetcd_put_result_free(r);
  return rev;
}

#endif
