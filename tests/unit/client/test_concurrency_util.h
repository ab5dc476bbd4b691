/* Helpers for the concurrency tests: child processes (this same binary re-executed with
 * "child ..." arguments) that report timestamped lines through one shared pipe and take
 * one-letter commands on their stdin, plus small client helpers. */
#ifndef CETCD_TEST_CONCURRENCY_UTIL_H
#define CETCD_TEST_CONCURRENCY_UTIL_H

#include <inttypes.h>
#include <poll.h>

#include "cetcd/concurrency.h"
#include "client_test_util.h"

enum { CT_MAX_CHILDREN = 8, CT_REPORT_FD = 3 };

typedef struct ct_child {
  pid_t pid;
  int ctl; /* write end of the child's stdin */
} ct_child_t;

static int ct_report_r = -1, ct_report_w = -1; /* shared report pipe */
static ct_child_t ct_children[CT_MAX_CHILDREN];
static char ct_rbuf[8192];
static size_t ct_rlen;

static inline uint64_t ct_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- child side ---- */

/* Writes one report line "<tag> <id> <t_us> <extra>" (atomic: shorter than PIPE_BUF). */
static inline void ct_report(const char *tag, int id, long long extra) {
  char line[128];
  int n = snprintf(line, sizeof line, "%s %d %llu %lld\n", tag, id, (unsigned long long)ct_now_us(), extra);
  if (write(CT_REPORT_FD, line, (size_t)n) != n) _exit(3);
}

/* Reads one command letter from stdin; 0 on EOF. */
static inline int ct_command(void) {
  char ch;
  ssize_t n;
  while ((n = read(0, &ch, 1)) < 0 && errno == EINTR) {
  }
  return n == 1 ? ch : 0;
}

/* ---- parent side ---- */

static inline void ct_init(void) {
  if (ct_report_r >= 0) return;
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  ct_report_r = p[0];
  ct_report_w = p[1];
  ct_rlen = 0;
}

/* Starts "/proc/self/exe child <args...>" as child slot i. */
static inline void ct_spawn(int i, const char *const *args) {
  int c[2];
  assert_int_equal(pipe2(c, O_CLOEXEC), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(c[0], 0);
    dup2(ct_report_w, CT_REPORT_FD);
    char *argv[16];
    int n = 0;
    argv[n++] = "test_concurrency";
    argv[n++] = "child";
    for (int k = 0; args[k] && n < 15; k++) argv[n++] = (char *)args[k];
    argv[n] = NULL;
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  close(c[0]);
  ct_children[i].pid = pid;
  ct_children[i].ctl = c[1];
}

/* Sends a command letter to child i. */
static inline void ct_send(int i, char cmd) { assert_int_equal(write(ct_children[i].ctl, &cmd, 1), 1); }

/* Kills child i with sig (by PID) and reaps it. Returns the wait status. */
static inline int ct_kill(int i, int sig) {
  int st = 0;
  if (ct_children[i].pid <= 0) return 0;
  kill(ct_children[i].pid, sig);
  waitpid(ct_children[i].pid, &st, 0);
  ct_children[i].pid = 0;
  close(ct_children[i].ctl);
  return st;
}

/* Closes child i's stdin (it releases what it holds and exits) and reaps it, waiting up
 * to 10 s before SIGKILL. Returns the exit code (or -1). */
static inline int ct_finish(int i) {
  if (ct_children[i].pid <= 0) return 0;
  close(ct_children[i].ctl);
  uint64_t deadline = tu_now_ms() + 10000;
  int st = 0;
  while (waitpid(ct_children[i].pid, &st, WNOHANG) == 0) {
    if (tu_now_ms() > deadline) {
      kill(ct_children[i].pid, SIGKILL);
      waitpid(ct_children[i].pid, &st, 0);
      st = -1;
      break;
    }
    tu_sleep_ms(10);
  }
  ct_children[i].pid = 0;
  return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Kills every child still running (SIGKILL by PID). */
static inline void ct_kill_all(void) {
  for (int i = 0; i < CT_MAX_CHILDREN; i++)
    if (ct_children[i].pid > 0) ct_kill(i, SIGKILL);
}

typedef struct ct_line {
  char tag[32];
  int id;
  uint64_t t_us;
  long long extra;
} ct_line_t;

/* Reads the next report line, waiting up to timeout_ms. Returns true if one came. */
static inline bool ct_read(ct_line_t *l, int timeout_ms) {
  uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    char *nl = memchr(ct_rbuf, '\n', ct_rlen);
    if (nl) {
      *nl = '\0';
      memset(l, 0, sizeof *l);
      int n = sscanf(ct_rbuf, "%31s %d %" SCNu64 " %lld", l->tag, &l->id, &l->t_us, &l->extra);
      size_t used = (size_t)(nl - ct_rbuf) + 1;
      memmove(ct_rbuf, nl + 1, ct_rlen - used);
      ct_rlen -= used;
      if (n >= 3) return true;
      continue;
    }
    int64_t left = (int64_t)deadline - (int64_t)tu_now_ms();
    if (left <= 0) return false;
    struct pollfd pf = {.fd = ct_report_r, .events = POLLIN};
    if (poll(&pf, 1, (int)left) <= 0) continue;
    ssize_t n = read(ct_report_r, ct_rbuf + ct_rlen, sizeof ct_rbuf - 1 - ct_rlen);
    if (n > 0) ct_rlen += (size_t)n;
  }
}

/* Reads lines until one with tag (and id, unless id < 0) arrives; fails the test after
 * timeout_ms. Other lines are skipped. */
static inline ct_line_t ct_expect(const char *tag, int id, int timeout_ms) {
  ct_line_t l;
  uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    int64_t left = (int64_t)deadline - (int64_t)tu_now_ms();
    if (left < 0 || !ct_read(&l, (int)left)) fail_msg("no '%s %d' report within %d ms", tag, id, timeout_ms);
    if (!strcmp(l.tag, tag) && (id < 0 || l.id == id)) return l;
    if (!strcmp(l.tag, "error"))
      fail_msg("child %d reported error %lld (%s)", l.id, l.extra, cetcd_strerror((int)l.extra));
  }
}

/* ---- client helpers ---- */

/* The store's current revision (a read: consumes none). */
static inline int64_t ct_rev(cetcd_client_t *c) {
  cetcd_get_result_t *g = NULL;
  assert_int_equal(cetcd_get(c, "/ct/rev-probe", 13, NULL, &g), 0);
  int64_t r = g->header.revision;
  cetcd_get_result_free(g);
  return r;
}

/* Number of keys under prefix. */
static inline int64_t ct_count(cetcd_client_t *c, const char *prefix) {
  cetcd_get_opts_t o = {.prefix = true, .count_only = true};
  cetcd_get_result_t *g = NULL;
  assert_int_equal(cetcd_get(c, prefix, strlen(prefix), &o, &g), 0);
  int64_t n = g->count;
  cetcd_get_result_free(g);
  return n;
}

/* Waits up to timeout_ms until prefix holds n keys. */
static inline void ct_wait_count(cetcd_client_t *c, const char *prefix, int64_t n, int timeout_ms) {
  uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
  int64_t have;
  while ((have = ct_count(c, prefix)) != n) {
    if (tu_now_ms() > deadline)
      fail_msg("%s: %lld keys, expected %lld", prefix, (long long)have, (long long)n);
    tu_sleep_ms(5);
  }
}

/* Child setup shared by every child mode: client + session. Exits on failure. */
static inline void ct_child_session(const char *ep, int ttl, int id, cetcd_client_t **c,
                                    cetcd_session_t **s) {
  const char *eps[] = {ep};
  cetcd_client_opts_t o = {
      .endpoints = eps, .n_endpoints = 1, .dial_timeout_ms = 3000, .request_timeout_ms = 5000};
  int rc = cetcd_client_new(&o, c);
  if (!rc) rc = cetcd_session_new(*c, ttl, NULL, s);
  if (rc) {
    ct_report("error", id, rc);
    _exit(2);
  }
}

static inline const char *ct_server_label(void) { return tu_real_etcd() ? "etcd" : "cetcd"; }

#endif
