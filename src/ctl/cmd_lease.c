/* lease grant / revoke / timetolive / list / keep-alive.
 *
 * libcetcd's lease calls do not return the response header; for the json and fields
 * formats cetcdctl reads one with a serializable count-only get right after the call
 * (same cluster, member and term; the revision is the store's revision at that time). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/printer.h"

static bool g_keys, g_once;

/* Resets lease flags. */
static void lease_reset(void) { g_keys = g_once = false; }

static const ctl_flag_t ttl_flags[] = {
    {"keys", 0, FLAG_BOOL, &g_keys, "Get keys attached to this lease", NULL, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};
static const ctl_flag_t ka_flags[] = {
    {"once", 0, FLAG_BOOL, &g_once, "Resets the keep-alive time to its original value and exits immediately",
     NULL, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

/* A header for printers that show one (not needed by the simple format). */
static cetcd_header_t header_for_print(cetcd_client_t *c) {
  cetcd_header_t h = {0};
  if (g_ctl.fmt == FMT_JSON || g_ctl.fmt == FMT_FIELDS) ctl_header(c, &h);
  return h;
}

/* Parses a hex lease id argument like etcdctl's leaseFromArgs. */
static int64_t lease_arg(const char *s) {
  int64_t id;
  char err[256];
  if (ctl_parse_int(s, 16, &id, err, sizeof(err)) != 0)
    ctl_die(EXIT_BADARGS, "bad lease ID arg (%s), expecting ID in Hex", err);
  return id;
}

/* lease grant <ttl> */
static int run_grant(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "lease grant command needs TTL argument");
  int64_t ttl, id, got;
  char err[256];
  if (ctl_parse_int(a->pos[0], 10, &ttl, err, sizeof(err)) != 0) ctl_die(EXIT_BADARGS, "bad TTL (%s)", err);
  cetcd_client_t *c = ctl_client();
  int rc = cetcd_lease_grant(c, ttl, 0, &id, &got);
  if (rc != 0) ctl_die_call(EXIT_ERR, rc, "failed to grant lease (", ")");
  cetcd_header_t h = header_for_print(c);
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->grant != NULL);
  p->grant(&h, id, got);
  cetcd_client_free(c);
  return 0;
}

/* lease revoke <leaseID> */
static int run_revoke(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "lease revoke command needs 1 argument");
  int64_t id = lease_arg(a->pos[0]);
  cetcd_client_t *c = ctl_client();
  int rc = cetcd_lease_revoke(c, id);
  if (rc != 0) ctl_die_call(EXIT_ERR, rc, "failed to revoke lease (", ")");
  cetcd_header_t h = header_for_print(c);
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->revoke != NULL);
  p->revoke(&h, id);
  cetcd_client_free(c);
  return 0;
}

/* lease timetolive <leaseID> [--keys] */
static int run_timetolive(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "lease timetolive command needs lease ID as argument");
  int64_t id = lease_arg(a->pos[0]);
  cetcd_client_t *c = ctl_client();
  cetcd_lease_ttl_t *r = NULL;
  int rc = cetcd_lease_timetolive(c, id, g_keys, &r);
  if (rc != 0) ctl_die_call(EXIT_BADCONN, rc, NULL, NULL);
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->timetolive != NULL);
  p->timetolive(r, g_keys);
  cetcd_lease_ttl_free(r);
  cetcd_client_free(c);
  return 0;
}

/* lease list */
static int run_list(ctl_args_t *a) {
  (void)a;
  cetcd_client_t *c = ctl_client();
  int64_t *ids = NULL;
  size_t n = 0;
  int rc = cetcd_lease_leases(c, &ids, &n);
  if (rc != 0) ctl_die_call(EXIT_BADCONN, rc, NULL, NULL);
  cetcd_header_t h = header_for_print(c);
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->leases != NULL);
  p->leases(&h, ids, n);
  cetcd_free(ids);
  cetcd_client_free(c);
  return 0;
}

/* Sleeps ms milliseconds. */
static void sleep_ms(int64_t ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* lease keep-alive [--once] <leaseID>: renews every TTL/3 and prints each answer. */
static int run_keepalive(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "lease keep-alive command needs lease ID as argument");
  int64_t id = lease_arg(a->pos[0]);
  cetcd_client_t *c = ctl_client();
  const ctl_printer_t *p = ctl_printer();
  if (g_once) {
    int64_t ttl;
    int rc = cetcd_lease_keepalive_once(c, id, &ttl);
    if (rc != 0) ctl_die(EXIT_BADCONN, "%s", ctl_errmsg(rc));
    cetcd_header_t h = header_for_print(c);
    ctl_require_format(p->keepalive != NULL);
    p->keepalive(&h, id, ttl);
    cetcd_client_free(c);
    return 0;
  }
  for (;;) {
    int64_t ttl = 0;
    int rc = cetcd_lease_keepalive_once(c, id, &ttl);
    if (rc == CETCD_ELEASENOTFOUND) break;
    if (rc != 0) {
      sleep_ms(500);
      continue;
    }
    cetcd_header_t h = header_for_print(c);
    ctl_require_format(p->keepalive != NULL);
    p->keepalive(&h, id, ttl);
    fflush(stdout);
    int64_t ms = ttl * 1000 / 3;
    sleep_ms(ms < 500 ? 500 : ms);
  }
  if (g_ctl.fmt == FMT_SIMPLE) printf("lease %016llx expired or revoked.\n", (unsigned long long)id);
  cetcd_client_free(c);
  return 0;
}

static const ctl_cmd_t lease_subs[] = {
    {"grant", "grant <ttl>", "Creates leases", run_grant, NULL, NULL, lease_reset},
    {"keep-alive", "keep-alive [options] <leaseID>", "Keeps leases alive (renew)", run_keepalive, ka_flags,
     NULL, lease_reset},
    {"list", "list", "List all active leases", run_list, NULL, NULL, lease_reset},
    {"revoke", "revoke <leaseID>", "Revokes leases", run_revoke, NULL, NULL, lease_reset},
    {"timetolive", "timetolive <leaseID> [options]", "Get lease information", run_timetolive, ttl_flags, NULL,
     lease_reset},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

const ctl_cmd_t ctl_cmd_lease = {
    "lease", "lease <subcommand>", "Lease related commands", NULL, NULL, lease_subs, NULL};
