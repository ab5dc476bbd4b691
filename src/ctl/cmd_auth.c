/* auth: etcdctl's "auth enable|disable" and etcdctl 3.5's "auth status". */
#include <inttypes.h>

#include "ctl/auth_print.h"

enum { ENABLE_TRIES = 3 };

/* auth enable: like etcdctl, creates the root role and grants it to root when the server
 * says root lacks it, then tries again (bounded). */
static int run_enable(ctl_args_t *a) {
  if (a->npos != 0) ctl_die(EXIT_BADARGS, "auth enable command does not accept any arguments");
  cetcd_client_t *c = ctl_client();
  int rc = 0;
  for (int i = 0; i < ENABLE_TRIES; i++) {
    rc = cetcd_auth_enable(c, NULL);
    if (rc != CETCD_EAUTHROOTROLE) break;
    if ((rc = cetcd_role_add(c, "root", NULL)) != 0) break;
    if ((rc = cetcd_user_grant_role(c, "root", "root", NULL)) != 0) break;
  }
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  printf("Authentication Enabled\n");
  return 0;
}

/* auth disable */
static int run_disable(ctl_args_t *a) {
  if (a->npos != 0) ctl_die(EXIT_BADARGS, "auth disable command does not accept any arguments");
  cetcd_client_t *c = ctl_client();
  int rc = cetcd_auth_disable(c, NULL);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  printf("Authentication Disabled\n");
  return 0;
}

/* auth status (etcd 3.5's AuthStatus RPC; etcd 3.4 servers answer Unimplemented) */
static int run_status(ctl_args_t *a) {
  if (a->npos != 0) ctl_die(EXIT_BADARGS, "auth status command does not accept any arguments");
  cetcd_client_t *c = ctl_client();
  bool on = false;
  uint64_t rev = 0;
  cetcd_header_t h;
  int rc = cetcd_auth_status(c, &on, &rev, &h);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  switch (g_ctl.fmt) {
    case FMT_SIMPLE:
      printf("Authentication Status: %s\nAuthRevision: %" PRIu64 "\n", on ? "true" : "false", rev);
      break;
    case FMT_JSON:
      printf("{\"header\":{\"cluster_id\":%" PRIu64 ",\"member_id\":%" PRIu64 ",\"revision\":%" PRId64
             ",\"raft_term\":%" PRIu64 "}",
             h.cluster_id, h.member_id, h.revision, h.raft_term);
      if (on) printf(",\"enabled\":true");
      if (rev) printf(",\"authRevision\":%" PRIu64, rev);
      printf("}\n");
      break;
    case FMT_FIELDS:
      printf("\"ClusterID\" : %" PRIu64 "\n\"MemberID\" : %" PRIu64 "\n\"Revision\" : %" PRId64
             "\n\"RaftTerm\" : %" PRIu64 "\n\"Enabled\" : %s\n\"AuthRevision\" : %" PRIu64 "\n",
             h.cluster_id, h.member_id, h.revision, h.raft_term, on ? "true" : "false", rev);
      break;
    default:
      ctl_require_format(false);
  }
  return 0;
}

static const ctl_cmd_t auth_subs[] = {
    {"disable", "disable", "Disables authentication", run_disable, NULL, NULL, NULL},
    {"enable", "enable", "Enables authentication", run_enable, NULL, NULL, NULL},
    {"status", "status", "Returns authentication status", run_status, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

const ctl_cmd_t ctl_cmd_auth = {"auth", "auth <enable or disable>", "Enable or disable authentication", NULL,
                                NULL, auth_subs, NULL};
