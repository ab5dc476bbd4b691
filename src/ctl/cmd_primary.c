/* primary [--ttl 10] [--grace D] NAME -- CMD [ARGS...]: runs CMD only while this process
 * is the elected primary of election NAME.
 *
 * - Standbys campaign once (one put for their candidate key) and then wait on a watch of
 *   the candidate ahead of them: no revision is consumed while waiting.
 * - Once elected, CMD runs in its own process group with CETCD_PRIMARY_NAME,
 *   CETCD_PRIMARY_KEY (the leader key), CETCD_PRIMARY_REV (its create revision: the
 *   fencing token) and CETCD_PRIMARY_LEASE (hex) in its environment. It is started with
 *   PR_SET_PDEATHSIG=SIGKILL, so it dies with cetcdctl even on kill -9.
 * - A prober renews the lease every TTL/4 and remembers when the last successful renewal
 *   was sent: the server's expiry is at least that time + TTL. Without a newer success,
 *   CMD gets SIGTERM at (that + TTL - margin - grace) and SIGKILL at (that + TTL - margin),
 *   margin = max(TTL/10, 200 ms): CMD is gone before the lease can expire and before any
 *   standby can be elected. Losing the session (lease revoked or expired) does the same
 *   at once.
 * - SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded to CMD. When CMD
 *   ends, cetcdctl resigns (revokes its lease) and exits with CMD's status, or dies of
 *   the same signal. When the session is lost it exits 1 after stopping CMD. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cetcd/concurrency.h"
#include "ctl/printer.h"

static int g_ttl;
static int64_t g_grace_ms;

/* Resets primary's flags. */
static void primary_reset(void) {
  g_ttl = 10;
  g_grace_ms = -1;
}

static const ctl_flag_t primary_flags[] = {
    {"grace", 0, FLAG_DURATION, &g_grace_ms,
     "time between SIGTERM and SIGKILL when the session is lost (default TTL/4)", NULL, NULL},
    {"ttl", 0, FLAG_INT, &g_ttl, "session (lease) TTL in seconds", NULL, "=10"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const int k_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD};

typedef struct primary {
  cetcd_client_t *c;
  int64_t lease;
  int64_t ttl_ms;
  _Atomic int64_t last_ok_ns; /* send time of the last successful renewal */
  atomic_bool lost;           /* the server said the lease is gone */
  atomic_bool stop;
  cetcd_election_t *volatile e;
  volatile int signo;
} primary_t;

static primary_t g_p;

/* Signal callback: a signal before election cancels the campaign. */
static void on_signal(int signo, void *ctx) {
  primary_t *p = ctx;
  if (signo == SIGCHLD) return;
  p->signo = signo;
  if (p->e) cetcd_election_cancel(p->e);
}

/* Renews the lease every TTL/4 and records the send time of each success. */
static void *prober(void *arg) {
  primary_t *p = arg;
  while (!atomic_load(&p->stop)) {
    int64_t sent = ctl_now_ns();
    int64_t ttl = 0;
    int rc = cetcd_lease_keepalive_once(p->c, p->lease, &ttl);
    if (rc == 0 && ttl > 0)
      atomic_store(&p->last_ok_ns, sent);
    else if (rc == CETCD_ELEASENOTFOUND)
      atomic_store(&p->lost, true);
    int64_t next = sent + p->ttl_ms * 1000000 / 4;
    while (!atomic_load(&p->stop) && ctl_now_ns() < next) usleep(20000);
  }
  return NULL;
}

/* Logs a line to stderr with the command's prefix. */
static void plog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void plog(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "cetcdctl primary: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* Starts CMD for the elected primary; returns its pid. */
static pid_t start_cmd(char **argv, const char *name, const char *key, int64_t rev, int64_t lease) {
  fflush(stdout);
  fflush(stderr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) ctl_die(EXIT_ERR, "fork: %s", strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1); /* parent died before prctl */
    ctl_signals_restore();
    char buf[64];
    setenv("CETCD_PRIMARY_NAME", name, 1);
    setenv("CETCD_PRIMARY_KEY", key, 1);
    snprintf(buf, sizeof(buf), "%" PRId64, rev);
    setenv("CETCD_PRIMARY_REV", buf, 1);
    snprintf(buf, sizeof(buf), "%" PRIx64, (uint64_t)lease);
    setenv("CETCD_PRIMARY_LEASE", buf, 1);
    execvp(argv[0], argv);
    fprintf(stderr, "Error: exec: \"%s\": %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid);
  return pid;
}

/* Reaps the child if it has exited; stores its status. */
static bool reaped(pid_t pid, int *st) {
  pid_t r = waitpid(pid, st, WNOHANG);
  return r == pid || (r < 0 && errno == ECHILD);
}

/* Stops CMD: SIGTERM to its group now, SIGKILL at kill_at_ns if still running. */
static int stop_cmd(pid_t pid, int64_t kill_at_ns) {
  int st = 0;
  kill(-pid, SIGTERM);
  kill(pid, SIGTERM);
  for (;;) {
    if (reaped(pid, &st)) break;
    if (ctl_now_ns() >= kill_at_ns) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    usleep(10000);
  }
  kill(-pid, SIGKILL); /* leftovers of the group */
  return st;
}

/* primary [--ttl N] NAME -- CMD [ARGS...] */
static int run_primary(ctl_args_t *a) {
  if (a->npos != 1 || a->nexec < 1)
    ctl_die(EXIT_BADARGS, "primary takes an election name, then -- and a command to run");
  if (g_ttl < 1) ctl_die(EXIT_BADARGS, "--ttl must be at least 1 second");
  primary_t *p = &g_p;
  p->ttl_ms = (int64_t)g_ttl * 1000;
  int64_t margin = p->ttl_ms / 10 < 200 ? 200 : p->ttl_ms / 10;
  int64_t grace = g_grace_ms >= 0 ? g_grace_ms : p->ttl_ms / 4;
  if (grace + margin >= p->ttl_ms) grace = p->ttl_ms - margin - 100 > 0 ? p->ttl_ms - margin - 100 : 0;
  int sigfd = ctl_signals(k_sigs, sizeof(k_sigs) / sizeof(k_sigs[0]), on_signal, p);
  if (!g_ctl.command_timeout_set && g_ctl.command_timeout_ms > p->ttl_ms / 2)
    g_ctl.command_timeout_ms = p->ttl_ms / 2;
  p->c = ctl_client();
  cetcd_session_t *s = NULL;
  int rc = cetcd_session_new(p->c, g_ttl, NULL, &s);
  if (rc != 0) ctl_die(EXIT_ERR, "%s", ctl_errmsg(rc));
  p->lease = cetcd_session_lease(s);
  atomic_store(&p->last_ok_ns, ctl_now_ns());
  pthread_t pt;
  pthread_create(&pt, NULL, prober, p);
  cetcd_election_t *e = NULL;
  if ((rc = cetcd_election_new(s, a->pos[0], &e)) != 0) ctl_die(EXIT_ERR, "%s", ctl_errmsg(rc));
  char host[128] = "";
  gethostname(host, sizeof(host) - 1);
  char val[192];
  snprintf(val, sizeof(val), "%s:%d", host, (int)getpid());
  p->e = e;
  if (!p->signo) rc = cetcd_election_campaign(e, val, strlen(val), -1);
  p->e = NULL;
  if (p->signo || rc != 0) {
    atomic_store(&p->stop, true);
    pthread_join(pt, NULL);
    cetcd_election_resign(e);
    cetcd_session_close(s);
    if (p->signo) ctl_reraise(p->signo);
    ctl_die(EXIT_ERR, "%s", ctl_errmsg(rc));
  }
  const char *key = cetcd_election_key(e);
  int64_t rev = cetcd_election_rev(e);
  plog("elected primary of %s (key %s, fencing token %" PRId64 "); starting %s", a->pos[0], key, rev,
       a->exec[0]);
  pid_t pid = start_cmd(a->exec, a->pos[0], key, rev, p->lease);
  struct pollfd pf[2] = {{sigfd, POLLIN, 0}, {cetcd_session_fd(s), POLLIN, 0}};
  int st = 0;
  bool lost = false;
  for (;;) {
    poll(pf, 2, 20);
    if (pf[0].revents) {
      unsigned char b;
      if (read(sigfd, &b, 1) == 1 && b != SIGCHLD) {
        kill(pid, b);
      }
    }
    if (reaped(pid, &st)) break;
    int64_t expiry = atomic_load(&p->last_ok_ns) + p->ttl_ms * 1000000;
    int64_t kill_at = expiry - margin * 1000000, term_at = kill_at - grace * 1000000;
    if (cetcd_session_done(s) || atomic_load(&p->lost) || ctl_now_ns() >= term_at) {
      plog("session of %s is being lost (lease %" PRIx64 "): stopping %s", a->pos[0], (uint64_t)p->lease,
           a->exec[0]);
      st = stop_cmd(pid, kill_at);
      lost = true;
      break;
    }
  }
  atomic_store(&p->stop, true);
  pthread_join(pt, NULL);
  if (!lost) cetcd_election_resign(e);
  cetcd_election_free(e);
  if (lost)
    cetcd_session_free(s);
  else
    cetcd_session_close(s);
  cetcd_client_free(p->c);
  if (lost) ctl_die(EXIT_ERR, "primary: session lost; %s stopped", a->exec[0]);
  if (WIFSIGNALED(st)) ctl_reraise(WTERMSIG(st));
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

const ctl_cmd_t ctl_cmd_primary = {"primary",
                                   "primary [--ttl N] NAME -- CMD [ARGS...]",
                                   "Runs a command only while this process is the elected primary",
                                   run_primary,
                                   primary_flags,
                                   NULL,
                                   primary_reset};
