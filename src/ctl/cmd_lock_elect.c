/* lock <lockname> [exec-command arg1 arg2 ...] and elect <election-name> [proposal] / elect -l,
 * on libcetcd's concurrency API (same key layout as etcd's clientv3 concurrency package,
 * so cetcdctl and etcdctl can contend for the same lock or election). */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cetcd/concurrency.h"
#include "ctl/printer.h"

static int g_lock_ttl;
static bool g_listen;

/* Resets the flags of lock and elect. */
static void le_reset(void) {
  g_lock_ttl = 10;
  g_listen = false;
}

static const ctl_flag_t lock_flags[] = {
    {"ttl", 0, FLAG_INT, &g_lock_ttl, "timeout for session", NULL, "=10"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};
static const ctl_flag_t elect_flags[] = {
    {"listen", 'l', FLAG_BOOL, &g_listen, "observation mode", NULL, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const int k_sigs[] = {SIGINT, SIGTERM};

/* What a signal must wake: a waiting lock or campaign. */
typedef struct waker {
  cetcd_mutex_t *volatile m;
  cetcd_election_t *volatile e;
  volatile int signo;
} waker_t;

/* Signal callback: remembers the signal and cancels the blocking call. */
static void on_signal(int signo, void *ctx) {
  waker_t *w = ctx;
  w->signo = signo;
  if (w->m) cetcd_mutex_cancel(w->m);
  if (w->e) cetcd_election_cancel(w->e);
}

/* Prints a kv the way the selected printer prints a single-key get response. */
static void display_kv(const cetcd_header_t *h, const cetcd_kv_t *kv) {
  cetcd_get_result_t r = {0};
  r.header = *h;
  r.kvs = (cetcd_kv_t *)kv;
  r.n_kvs = 1;
  r.count = 1;
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->get != NULL);
  p->get(&r);
  fflush(stdout);
}

/* Reads key and prints it like etcdctl's display.Get of a Get response. */
static int display_key(cetcd_client_t *c, const char *key) {
  cetcd_get_result_t *r = NULL;
  int rc = cetcd_get(c, key, strlen(key), NULL, &r);
  if (rc != 0) return rc;
  if (r->n_kvs == 0) {
    cetcd_get_result_free(r);
    return 1;
  }
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->get != NULL);
  p->get(r);
  fflush(stdout);
  cetcd_get_result_free(r);
  return 0;
}

/* Waits until a signal arrives (returns it) or the session is lost (returns 0). */
static int wait_signal_or_loss(int sigfd, cetcd_session_t *s) {
  struct pollfd pf[2] = {{sigfd, POLLIN, 0}, {cetcd_session_fd(s), POLLIN, 0}};
  for (;;) {
    if (poll(pf, 2, -1) < 0) continue;
    if (pf[0].revents) {
      unsigned char b;
      if (read(sigfd, &b, 1) == 1) return b;
    }
    if (pf[1].revents || cetcd_session_done(s)) return 0;
  }
}

/* lock <lockname> [exec-command arg1 arg2 ...] */
static int run_lock(ctl_args_t *a) {
  if (a->npos == 0)
    ctl_die(EXIT_BADARGS, "lock takes a lock name argument and an optional command to execute");
  for (int i = 0; i < a->nexec; i++) a->pos[a->npos++] = a->exec[i];
  static waker_t wk;
  int sigfd = ctl_signals(k_sigs, 2, on_signal, &wk);
  cetcd_client_t *c = ctl_client();
  cetcd_session_t *s = NULL;
  int rc = cetcd_session_new(c, g_lock_ttl, NULL, &s);
  if (rc != 0) ctl_die(EXIT_ERR, "%s", ctl_errmsg(rc));
  cetcd_mutex_t *m = NULL;
  if ((rc = cetcd_mutex_new(s, a->pos[0], &m)) != 0) ctl_die(EXIT_ERR, "%s", ctl_errmsg(rc));
  wk.m = m;
  if (wk.signo) rc = CETCD_ECANCELED;
  if (rc == 0) rc = cetcd_mutex_lock(m, -1);
  wk.m = NULL;
  if (rc != 0) {
    cetcd_session_close(s);
    ctl_die(EXIT_ERR, "%s", rc == CETCD_ECANCELED ? "context canceled" : ctl_errmsg(rc));
  }
  if (a->npos > 1) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      char buf[64];
      ctl_signals_restore();
      setenv("ETCD_LOCK_KEY", cetcd_mutex_key(m), 1);
      snprintf(buf, sizeof(buf), "%lld", (long long)cetcd_mutex_rev(m));
      setenv("ETCD_LOCK_REV", buf, 1);
      execvp(a->pos[1], a->pos + 1);
      fprintf(stderr, "Error: exec: \"%s\": executable file not found in $PATH\n", a->pos[1]);
      _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
    }
    int urc = cetcd_mutex_unlock(m);
    cetcd_mutex_free(m);
    cetcd_session_close(s);
    if (WIFSIGNALED(st)) ctl_die(EXIT_ERR, "signal: %s", strsignal(WTERMSIG(st)));
    if (WEXITSTATUS(st) != 0) ctl_die(EXIT_ERR, "exit status %d", WEXITSTATUS(st));
    if (urc != 0) ctl_die(EXIT_ERR, "%s", ctl_errmsg(urc));
    return 0;
  }
  rc = display_key(c, cetcd_mutex_key(m));
  if (rc != 0) ctl_die(EXIT_ERR, "%s", rc == 1 ? "lock lost on init" : ctl_errmsg(rc));
  int sig = wk.signo ? wk.signo : wait_signal_or_loss(sigfd, s);
  if (!sig) ctl_die(EXIT_ERR, "session expired");
  rc = cetcd_mutex_unlock(m);
  cetcd_mutex_free(m);
  cetcd_session_close(s);
  if (rc != 0) ctl_die(EXIT_ERR, "%s", ctl_errmsg(rc));
  return 0;
}

/* elect -l <name>: prints every new leader (key and proclamation) until interrupted. */
static int observe(cetcd_client_t *c, const char *name, int sigfd) {
  cetcd_election_t *e = NULL;
  int rc = cetcd_election_new_observer(c, name, &e);
  cetcd_observer_t *o = NULL;
  if (rc == 0) rc = cetcd_election_observe(e, &o);
  if (rc != 0) ctl_die(EXIT_ERR, "%s", ctl_errmsg(rc));
  struct pollfd pf[2] = {{sigfd, POLLIN, 0}, {cetcd_observer_fd(o), POLLIN, 0}};
  for (;;) {
    cetcd_leader_t *l = NULL;
    rc = cetcd_observer_next(o, 0, &l);
    if (rc == 0) {
      if (l->has_leader) {
        cetcd_header_t h = {0};
        h.revision = l->revision;
        display_kv(&h, &l->kv);
      }
      cetcd_leader_free(l);
      continue;
    }
    if (rc != CETCD_ETIMEOUT) ctl_die(EXIT_ERR, "elect: observer lost");
    if (poll(pf, 2, -1) < 0) continue;
    if (pf[0].revents) break;
  }
  cetcd_observer_free(o);
  cetcd_election_free(e);
  return 0;
}

/* elect <name> <proposal>: campaigns, prints the leader key once elected, resigns on
 * SIGINT/SIGTERM. */
static int campaign(cetcd_client_t *c, const char *name, const char *prop, int sigfd, waker_t *wk) {
  cetcd_session_t *s = NULL;
  int rc = cetcd_session_new(c, 60, NULL, &s);
  if (rc != 0) ctl_die(EXIT_ERR, "%s", ctl_errmsg(rc));
  cetcd_election_t *e = NULL;
  if ((rc = cetcd_election_new(s, name, &e)) != 0) ctl_die(EXIT_ERR, "%s", ctl_errmsg(rc));
  wk->e = e;
  if (wk->signo) rc = CETCD_ECANCELED;
  if (rc == 0) rc = cetcd_election_campaign(e, prop, strlen(prop), -1);
  wk->e = NULL;
  if (rc != 0) {
    cetcd_session_close(s);
    ctl_die(EXIT_ERR, "%s", rc == CETCD_ECANCELED ? "context canceled" : ctl_errmsg(rc));
  }
  rc = display_key(c, cetcd_election_key(e));
  if (rc < 0) ctl_die(EXIT_ERR, "%s", ctl_errmsg(rc));
  int sig = wk->signo ? wk->signo : wait_signal_or_loss(sigfd, s);
  if (!sig) ctl_die(EXIT_ERR, "elect: session expired");
  rc = cetcd_election_resign(e);
  cetcd_election_free(e);
  cetcd_session_close(s);
  if (rc != 0) ctl_die(EXIT_ERR, "%s", ctl_errmsg(rc));
  return 0;
}

/* elect <election-name> [proposal] */
static int run_elect(ctl_args_t *a) {
  for (int i = 0; i < a->nexec; i++) a->pos[a->npos++] = a->exec[i];
  if (a->npos != 1 && a->npos != 2)
    ctl_die(EXIT_BADARGS, "elect takes one election name argument and an optional proposal argument");
  if (a->npos == 1 && !g_listen) ctl_die(EXIT_BADARGS, "no proposal argument but -l not set");
  if (a->npos == 2 && g_listen) ctl_die(EXIT_BADARGS, "proposal given but -l is set");
  static waker_t wk;
  int sigfd = ctl_signals(k_sigs, 2, on_signal, &wk);
  cetcd_client_t *c = ctl_client();
  int rc = a->npos == 1 ? observe(c, a->pos[0], sigfd) : campaign(c, a->pos[0], a->pos[1], sigfd, &wk);
  cetcd_client_free(c);
  return rc;
}

const ctl_cmd_t ctl_cmd_lock = {"lock",
                                "lock <lockname> [exec-command arg1 arg2 ...]",
                                "Acquires a named lock",
                                run_lock,
                                lock_flags,
                                NULL,
                                le_reset};
const ctl_cmd_t ctl_cmd_elect = {"elect",
                                 "elect <election-name> [proposal]",
                                 "Observes and participates in leader election",
                                 run_elect,
                                 elect_flags,
                                 NULL,
                                 le_reset};
