/* primary_standby: run one copy per node; exactly one becomes primary, the others stand
 * by and take over when it stops or dies. The incident's program, written correctly:
 *  - waiting costs the store nothing: TryLock reads before it writes (0 revisions per
 *    failed try; etcd's clientv3 TryLock costs 2). cetcd_mutex_lock, which watches only
 *    the previous holder's key, is the blocking alternative;
 *  - the lock key lives on a session lease: a dead primary is replaced after the TTL;
 *  - the primary stops acting as primary as soon as its session is lost, and fences its
 *    writes with the lock's create revision, so a stale primary cannot overwrite;
 *  - SIGTERM/SIGINT release the lock at once (handover in milliseconds).
 * Usage: primary_standby [endpoint] [name] [ttl_s] [poll_ms] */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>

#include "cetcd/cetcd.h"
#include "cetcd/concurrency.h"

static int fail(const char *what, int rc) {
  fprintf(stderr, "%s: %s\n", what, cetcd_strerror(rc));
  return 1;
}

int main(int argc, char **argv) {
  const char *ep = argc > 1 ? argv[1] : "127.0.0.1:2379", *name = argc > 2 ? argv[2] : "node";
  int ttl = argc > 3 ? atoi(argv[3]) : 5, poll_ms = argc > 4 ? atoi(argv[4]) : 50;
  if (poll_ms <= 0) poll_ms = 50;
  setvbuf(stdout, NULL, _IOLBF, 0);
  sigset_t sigs; /* SIGINT/SIGTERM become readable on a signalfd: graceful release */
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  int sfd = signalfd(-1, &sigs, 0);

  cetcd_client_opts_t o = {.endpoints = &ep, .n_endpoints = 1};
  cetcd_client_t *c = NULL;
  cetcd_session_t *s = NULL;
  cetcd_mutex_t *m = NULL;
  int rc = cetcd_client_new(&o, &c);
  if (rc) return fail("connect", rc);
  if ((rc = cetcd_session_new(c, ttl, NULL, &s)) || (rc = cetcd_mutex_new(s, "/locks/primary", &m)))
    return fail("session", rc);
  printf("STANDBY %s\n", name);
  struct pollfd pf[2] = {{.fd = sfd, .events = POLLIN}, {.fd = cetcd_session_fd(s), .events = POLLIN}};
  for (;;) { /* stand by until the lock is ours, a signal arrives or the session dies */
    if ((rc = cetcd_mutex_trylock(m)) == 0) break;
    if (rc != CETCD_ELOCKED) fprintf(stderr, "trylock: %s (retrying)\n", cetcd_strerror(rc));
    if (poll(pf, 2, poll_ms) > 0) goto out;
  }
  printf("PRIMARY %s token=%lld\n", name, (long long)cetcd_mutex_rev(m));
  cetcd_txn_t *t = NULL; /* a fenced write: applied only while we still hold the lock */
  if (!cetcd_txn_new(&t) && !cetcd_mutex_guard(m, t) &&
      !cetcd_txn_then_put(t, "/service/primary", 16, name, strlen(name), NULL))
    rc = cetcd_txn_commit(c, t, NULL);
  cetcd_txn_free(t);
  if (rc) fprintf(stderr, "announce: %s\n", cetcd_strerror(rc));
  poll(pf, 2, -1); /* serve until told to stop or the lease is lost */
  if (cetcd_session_done(s)) printf("LOST %s: no longer primary\n", name);
out:
  if (!cetcd_session_done(s)) cetcd_mutex_unlock(m);
  cetcd_mutex_free(m);
  cetcd_session_close(s); /* revokes the lease: nothing left behind */
  cetcd_client_free(c);
  printf("EXIT %s\n", name);
  return 0;
}
