/* move-leader: etcdctl's "move-leader <transferee-member-id>". It asks each endpoint for
 * its status until it finds the leader, then asks the leader to hand leadership over. */
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

/* Go's strconv.ParseUint(s, 16, 64): hex digits only, no sign or prefix. Returns 0, or -1
 * with Go's message in err. */
static int parse_hex_u64(const char *s, uint64_t *out, char *err, size_t errlen) {
  uint64_t v = 0;
  const char *why = *s ? NULL : "invalid syntax";
  for (const char *p = s; *p && !why; p++) {
    int d = *p >= '0' && *p <= '9'   ? *p - '0'
            : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
            : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
                                     : -1;
    if (d < 0)
      why = "invalid syntax";
    else if (v >> 60)
      why = "value out of range";
    else
      v = v << 4 | (uint64_t)d;
  }
  if (why) {
    snprintf(err, errlen, "strconv.ParseUint: parsing \"%s\": %s", s, why);
    return -1;
  }
  *out = v;
  return 0;
}

/* Dies with etcdctl's "no leader endpoint given at [ep1 ep2 ...]". */
_Noreturn static void no_leader(void) {
  size_t len = 3;
  for (size_t i = 0; i < g_ctl.n_endpoints; i++) len += strlen(g_ctl.endpoints[i]) + 1;
  char *list = calloc(1, len);
  if (!list) abort();
  strcat(list, "[");
  for (size_t i = 0; i < g_ctl.n_endpoints; i++) {
    if (i) strcat(list, " ");
    strcat(list, g_ctl.endpoints[i]);
  }
  strcat(list, "]");
  ctl_die(EXIT_BADARGS, "no leader endpoint given at %s", list);
}

/* move-leader <transferee-member-id> */
static int run_move_leader(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "move-leader command needs 1 argument");
  uint64_t target;
  char err[256];
  if (parse_hex_u64(a->pos[0], &target, err, sizeof(err))) ctl_die(EXIT_BADARGS, "%s", err);
  cetcd_client_t *leader = NULL;
  uint64_t leader_id = 0;
  for (size_t i = 0; i < g_ctl.n_endpoints && !leader; i++) {
    cetcd_client_t *c = NULL;
    cetcd_status_t *st = NULL;
    int rc = ctl_client_for(g_ctl.endpoints[i], g_ctl.command_timeout_ms, &c);
    if (rc == 0) rc = cetcd_status(c, NULL, &st);
    if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
    if (st->header.member_id == st->leader) {
      leader = c;
      leader_id = st->leader;
    } else {
      cetcd_client_free(c);
    }
    cetcd_status_free(st);
  }
  if (!leader) no_leader();
  int rc = cetcd_move_leader(leader, NULL, target);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(leader);
  switch (g_ctl.fmt) {
    case FMT_SIMPLE:
      printf("Leadership transferred from %llx to %llx\n", (unsigned long long)leader_id,
             (unsigned long long)target);
      break;
    case FMT_JSON:
      printf("{}\n");
      break; /* etcd's MoveLeaderResponse carries nothing */
    case FMT_PROTOBUF:
      break; /* an empty message is no bytes */
    default:
      ctl_require_format(false);
  }
  return 0;
}

const ctl_cmd_t ctl_cmd_move_leader = {"move-leader",
                                       "move-leader <transferee-member-id>",
                                       "Transfers leadership to another etcd cluster member.",
                                       run_move_leader,
                                       NULL,
                                       NULL,
                                       NULL};
