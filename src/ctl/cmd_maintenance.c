/* Cluster and maintenance commands: compaction, defrag, endpoint health/status/hashkv,
 * alarm list/disarm, member list, version. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl/printer.h"

static bool g_cluster, g_physical;
static int64_t g_hash_rev;
static char *g_data_dir;

/* Resets the flags of this file. */
static void maint_reset(void) {
  g_cluster = g_physical = false;
  g_hash_rev = 0;
  g_data_dir = "";
}

static const ctl_flag_t cluster_flags[] = {
    {"cluster", 0, FLAG_BOOL, &g_cluster, "use all endpoints from the cluster member list", NULL, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};
static const ctl_flag_t hashkv_flags[] = {
    {"cluster", 0, FLAG_BOOL, &g_cluster, "use all endpoints from the cluster member list", NULL, NULL},
    {"rev", 0, FLAG_INT64, &g_hash_rev, "maximum revision to hash (default: all revisions)", NULL, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};
static const ctl_flag_t defrag_flags[] = {
    {"cluster", 0, FLAG_BOOL, &g_cluster, "use all endpoints from the cluster member list", NULL, NULL},
    {"data-dir", 0, FLAG_STRING, &g_data_dir,
     "Optional. If present, defragments a data directory not in use by etcd.", NULL, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};
static const ctl_flag_t compaction_flags[] = {
    {"physical", 0, FLAG_BOOL, &g_physical,
     "'true' to wait for compaction to physically remove all old revisions", NULL, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

/* The endpoints to act on: --endpoints, or with --cluster every member's client URLs. */
static char **endpoints(size_t *n) {
  if (!g_cluster) {
    *n = g_ctl.n_endpoints;
    return g_ctl.endpoints;
  }
  cetcd_client_t *c = ctl_client();
  cetcd_member_list_t *l = NULL;
  int rc = cetcd_member_list(c, &l);
  if (rc != 0)
    ctl_die(EXIT_ERR, "failed to fetch endpoints from etcd cluster member list: %s", ctl_errmsg(rc));
  size_t cnt = 0;
  for (size_t i = 0; i < l->n_members; i++) cnt += l->members[i].n_client_urls;
  char **eps = calloc(cnt + 1, sizeof(char *));
  if (!eps) abort();
  cnt = 0;
  for (size_t i = 0; i < l->n_members; i++)
    for (size_t j = 0; j < l->members[i].n_client_urls; j++)
      eps[cnt++] = strdup(l->members[i].client_urls[j]);
  cetcd_member_list_free(l);
  cetcd_client_free(c);
  *n = cnt;
  return eps;
}

/* compaction [options] <revision> */
static int run_compaction(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "compaction command needs 1 argument");
  int64_t rev;
  char err[256];
  if (ctl_parse_int(a->pos[0], 10, &rev, err, sizeof(err)) != 0) ctl_die(EXIT_ERR, "%s", err);
  cetcd_client_t *c = ctl_client();
  int rc = cetcd_compact(c, rev, g_physical);
  if (rc != 0) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  printf("compacted revision %lld\n", (long long)rev);
  cetcd_client_free(c);
  return 0;
}

/* Progress of a long defragmentation, shown on a terminal only. */
typedef struct defrag_progress {
  const char *ep;
  int64_t start;
  volatile bool done;
} defrag_progress_t;

/* Prints the elapsed time of the running defragmentation every second. */
static void *defrag_ticker(void *arg) {
  defrag_progress_t *p = arg;
  while (!p->done) {
    usleep(200000);
    int64_t el = (ctl_now_ns() - p->start) / 1000000000;
    if (!p->done && el >= 1) fprintf(stderr, "\rdefragmenting %s ... %llds", p->ep, (long long)el);
  }
  fprintf(stderr, "\r\033[K");
  return NULL;
}

/* defrag [--cluster] */
static int run_defrag(ctl_args_t *a) {
  (void)a;
  if (g_data_dir[0]) {
    fprintf(stderr,
            "Failed to defragment etcd data[%s] (not supported by cetcdctl: defragment a running member)\n",
            g_data_dir);
    return EXIT_ERR;
  }
  size_t n;
  char **eps = endpoints(&n);
  int failures = 0;
  bool tty = isatty(2);
  for (size_t i = 0; i < n; i++) {
    cetcd_client_t *c;
    int rc = ctl_client_for(eps[i], g_ctl.command_timeout_ms, &c);
    defrag_progress_t prog = {eps[i], ctl_now_ns(), false};
    pthread_t t;
    if (tty) pthread_create(&t, NULL, defrag_ticker, &prog);
    if (rc == 0) rc = cetcd_defrag(c, NULL);
    prog.done = true;
    if (tty) pthread_join(t, NULL);
    if (rc != 0) {
      ctl_warn_unary(rc, eps[i]);
      fprintf(stderr, "Failed to defragment etcd member[%s] (%s)\n", eps[i], ctl_errmsg(rc));
      failures++;
    } else {
      printf("Finished defragmenting etcd member[%s]\n", eps[i]);
    }
    cetcd_client_free(c);
  }
  return failures ? EXIT_ERR : 0;
}

/* endpoint health: a linearizable get of "health" through a client per endpoint. */
static int run_health(ctl_args_t *a) {
  (void)a;
  size_t n;
  char **eps = endpoints(&n);
  ep_health_t *hs = calloc(n + 1, sizeof(*hs));
  if (!hs) abort();
  bool errs = false;
  for (size_t i = 0; i < n; i++) {
    hs[i].ep = eps[i];
    cetcd_client_t *c;
    int64_t st = ctl_now_ns();
    int rc = ctl_client_for(eps[i], g_ctl.command_timeout_ms, &c);
    if (rc == 0) {
      cetcd_get_result_t *r = NULL;
      rc = cetcd_get(c, "health", 6, NULL, &r);
      cetcd_get_result_free(r);
      if (rc != 0) ctl_warn_unary(rc, eps[i]);
    }
    ctl_go_duration(ctl_now_ns() - st, hs[i].took, sizeof(hs[i].took));
    const cetcd_error_info_t *e = cetcd_client_last_error(NULL);
    if (rc == 0 || (e->code == rc && e->grpc_status == 7 /* PermissionDenied */)) {
      hs[i].health = true;
    } else {
      snprintf(hs[i].error, sizeof(hs[i].error), "%s", ctl_errmsg(rc));
      errs = true;
    }
    cetcd_client_free(c);
  }
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->ep_health != NULL);
  p->ep_health(hs, n);
  if (errs) ctl_die(EXIT_ERR, "unhealthy cluster");
  return 0;
}

/* endpoint status */
static int run_status(ctl_args_t *a) {
  (void)a;
  size_t n;
  char **eps = endpoints(&n);
  ep_status_t *ss = calloc(n + 1, sizeof(*ss));
  size_t ns = 0;
  bool err = false;
  if (!ss) abort();
  for (size_t i = 0; i < n; i++) {
    cetcd_client_t *c;
    int rc = ctl_client_for(eps[i], g_ctl.command_timeout_ms, &c);
    cetcd_status_t *st = NULL;
    if (rc == 0) rc = cetcd_status(c, NULL, &st);
    if (rc != 0) {
      ctl_warn_unary(rc, eps[i]);
      fprintf(stderr, "Failed to get the status of endpoint %s (%s)\n", eps[i], ctl_errmsg(rc));
      err = true;
    } else {
      ss[ns].ep = eps[i];
      ss[ns++].st = st;
    }
    cetcd_client_free(c);
  }
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->ep_status != NULL);
  p->ep_status(ss, ns);
  for (size_t i = 0; i < ns; i++) cetcd_status_free(ss[i].st);
  free(ss);
  return err ? EXIT_ERR : 0;
}

/* endpoint hashkv [--rev R] */
static int run_hashkv(ctl_args_t *a) {
  (void)a;
  size_t n;
  char **eps = endpoints(&n);
  ep_hashkv_t *hs = calloc(n + 1, sizeof(*hs));
  size_t nh = 0;
  int last = 0;
  if (!hs) abort();
  for (size_t i = 0; i < n; i++) {
    cetcd_client_t *c;
    int rc = ctl_client_for(eps[i], g_ctl.command_timeout_ms, &c);
    ep_hashkv_t *h = &hs[nh];
    if (rc == 0) rc = cetcd_hashkv(c, NULL, g_hash_rev, &h->hash, &h->compact_revision, &h->header);
    if (rc != 0) {
      ctl_warn_unary(rc, eps[i]);
      fprintf(stderr, "Failed to get the hash of endpoint %s (%s)\n", eps[i], ctl_errmsg(rc));
      last = rc;
    } else {
      h->ep = eps[i];
      nh++;
    }
    cetcd_client_free(c);
  }
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->ep_hashkv != NULL);
  p->ep_hashkv(hs, nh);
  if (last) ctl_die(EXIT_ERR, "%s", ctl_errmsg(last));
  return 0;
}

/* alarm list */
static int run_alarm_list(ctl_args_t *a) {
  if (a->npos) ctl_die(EXIT_BADARGS, "alarm list command accepts no arguments");
  cetcd_client_t *c = ctl_client();
  cetcd_alarm_t *al = NULL;
  size_t n = 0;
  int rc = cetcd_alarm_list(c, &al, &n);
  if (rc != 0) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->alarm != NULL);
  p->alarm(al, n);
  cetcd_free(al);
  cetcd_client_free(c);
  return 0;
}

/* alarm disarm: disarms every raised alarm and prints the ones disarmed. */
static int run_alarm_disarm(ctl_args_t *a) {
  if (a->npos) ctl_die(EXIT_BADARGS, "alarm disarm command accepts no arguments");
  cetcd_client_t *c = ctl_client();
  cetcd_alarm_t *al = NULL;
  size_t n = 0;
  int rc = cetcd_alarm_list(c, &al, &n);
  if (rc == 0) rc = cetcd_alarm_disarm(c, NULL);
  if (rc != 0) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->alarm != NULL);
  p->alarm(al, n);
  cetcd_free(al);
  cetcd_client_free(c);
  return 0;
}

/* member list */
static int run_member_list(ctl_args_t *a) {
  (void)a;
  cetcd_client_t *c = ctl_client();
  cetcd_member_list_t *l = NULL;
  int rc = cetcd_member_list(c, &l);
  if (rc != 0) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->member_list != NULL);
  p->member_list(l);
  cetcd_member_list_free(l);
  cetcd_client_free(c);
  return 0;
}

/* version */
static int run_version(ctl_args_t *a) {
  (void)a;
  printf("cetcdctl version: 0.1.0\nAPI version: 3.4\n");
  return 0;
}

const ctl_cmd_t ctl_cmd_compaction = {"compaction",
                                      "compaction [options] <revision>",
                                      "Compacts the event history in etcd",
                                      run_compaction,
                                      compaction_flags,
                                      NULL,
                                      maint_reset};
const ctl_cmd_t ctl_cmd_defrag = {
    "defrag",   "defrag",     "Defragments the storage of the etcd members with given endpoints",
    run_defrag, defrag_flags, NULL,
    maint_reset};

static const ctl_cmd_t ep_subs[] = {
    {"health", "health", "Checks the healthiness of endpoints specified in `--endpoints` flag", run_health,
     cluster_flags, NULL, maint_reset},
    {"status", "status", "Prints out the status of endpoints specified in `--endpoints` flag", run_status,
     cluster_flags, NULL, maint_reset},
    {"hashkv", "hashkv", "Prints the KV history hash for each endpoint in --endpoints", run_hashkv,
     hashkv_flags, NULL, maint_reset},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
const ctl_cmd_t ctl_cmd_endpoint = {
    "endpoint", "endpoint <subcommand>", "Endpoint related commands", NULL, NULL, ep_subs, NULL};

static const ctl_cmd_t alarm_subs[] = {
    {"disarm", "disarm", "Disarms all alarms", run_alarm_disarm, NULL, NULL, maint_reset},
    {"list", "list", "Lists all alarms", run_alarm_list, NULL, NULL, maint_reset},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
const ctl_cmd_t ctl_cmd_alarm = {
    "alarm", "alarm <subcommand>", "Alarm related commands", NULL, NULL, alarm_subs, NULL};

static const ctl_cmd_t member_subs[] = {
    {"list", "list", "Lists all members in the cluster", run_member_list, NULL, NULL, maint_reset},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
const ctl_cmd_t ctl_cmd_member = {
    "member", "member <subcommand>", "Membership related commands", NULL, NULL, member_subs, NULL};

const ctl_cmd_t ctl_cmd_version = {"version", "version", "Prints the version of cetcdctl", run_version, NULL,
                                   NULL,      NULL};
