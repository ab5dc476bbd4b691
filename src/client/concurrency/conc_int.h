/* Internals shared by the concurrency recipes (session.c, mutex.c, election.c). Built only
 * on libcetcd's public API. */
#ifndef CETCD_CONC_INT_H
#define CETCD_CONC_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cetcd/cetcd.h"
#include "cetcd/concurrency.h"

struct cetcd_session {
  cetcd_client_t *client;
  int64_t lease;
  int64_t ttl;
  cetcd_keepalive_t *ka;
  int lost_fd; /* eventfd, written once when the lease is lost (never read: stays readable) */
  atomic_bool lost;
  cetcd_session_lost_cb on_lost;
  void *ctx;
};

/* Current CLOCK_MONOTONIC time in ms. */
int64_t conc_now_ms(void);
/* Absolute deadline for a relative timeout (negative timeout: -1 = none). */
int64_t conc_deadline(int timeout_ms);

/* Builds "<prefix>/" (*pfx) and, when lease != 0, "<prefix>/<lease hex>" (*key); both
 * owned, NUL-terminated. Returns 0, CETCD_EINVAL or CETCD_ENOMEM. */
int conc_keys(const char *prefix, int64_t lease, char **pfx, size_t *pfxlen, char **key, size_t *keylen);

/* Creates a nonblocking eventfd (returns it, or a negative errno). */
int conc_eventfd(void);
/* Makes an eventfd readable. */
void conc_signal(int fd);
/* Empties an eventfd. */
void conc_drain(int fd);

/* Options for "the first-created key under pfx" (limit 1, by create revision ascending). */
void conc_first_created_opts(cetcd_get_opts_t *o);

/* Waits until no key under pfx has a create revision <= max_rev: repeatedly finds the
 * last-created such key and watches only that key until it is deleted. Gives up at
 * deadline (-1 = never: CETCD_ETIMEOUT), when cancel_fd becomes readable
 * (CETCD_ECANCELED) or when the session is lost (CETCD_ESESSIONEXPIRED). */
int conc_wait_deletes(cetcd_session_t *s, const char *pfx, size_t pfxlen, int64_t max_rev, int64_t deadline,
                      int cancel_fd);

/* Checks that key still exists with create revision rev: 0, CETCD_ESESSIONEXPIRED or an
 * error. */
int conc_check_key(cetcd_client_t *c, const char *key, size_t keylen, int64_t rev);

#endif
