/* role: etcdctl's "role add|delete|get|list|grant-permission|revoke-permission". */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl/auth_print.h"

static bool g_prefix, g_from_key;

/* Resets the flags to etcdctl's defaults. */
static void role_reset(void) { g_prefix = g_from_key = false; }

/* A permission's range as etcdctl's permRange computes it from [key [endkey]] and the
 * --prefix/--from-key flags. end is malloc'd or a static string; *elen its length. */
typedef struct perm_range {
  const char *key;
  size_t klen;
  char *end;
  size_t elen;
} perm_range_t;

/* etcdctl's permRange + rangeEndFromPermFlags. Dies with its messages. */
static perm_range_t perm_range(char **args, int n) {
  static char zero[1] = {0};
  perm_range_t r = {args[0], strlen(args[0]), NULL, 0};
  if (g_prefix && g_from_key && (!r.klen || n == 1))
    ctl_die(EXIT_BADARGS, "--from-key and --prefix flags are mutually exclusive");
  if (!r.klen) {
    r.key = zero;
    r.klen = 1;
    if (g_prefix || g_from_key) r.end = zero, r.elen = 1;
    return r;
  }
  if (n == 1) {
    if (g_prefix) r.elen = ctl_prefix_end(r.key, r.klen, &r.end);
    if (g_from_key) r.end = zero, r.elen = 1;
    return r;
  }
  if (g_prefix) ctl_die(EXIT_BADARGS, "unexpected endkey argument with --prefix flag");
  if (g_from_key) ctl_die(EXIT_BADARGS, "unexpected endkey argument with --from-key flag");
  r.end = args[1];
  r.elen = strlen(args[1]);
  return r;
}

/* role add <role name> */
static int run_add(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "role add command requires role name as its argument");
  cetcd_client_t *c = ctl_client();
  cetcd_header_t h;
  int rc = cetcd_role_add(c, a->pos[0], &h);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  char line[300];
  snprintf(line, sizeof line, "Role %s created\n", a->pos[0]);
  ctl_auth_print_done(line, &h);
  return 0;
}

/* role delete <role name> */
static int run_delete(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "role delete command requires role name as its argument");
  cetcd_client_t *c = ctl_client();
  cetcd_header_t h;
  int rc = cetcd_role_delete(c, a->pos[0], &h);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  char line[300];
  snprintf(line, sizeof line, "Role %s deleted\n", a->pos[0]);
  ctl_auth_print_done(line, &h);
  return 0;
}

/* role get <role name> */
static int run_get(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "role get command requires role name as its argument");
  cetcd_client_t *c = ctl_client();
  cetcd_role_t *r;
  int rc = cetcd_role_get(c, a->pos[0], &r);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  ctl_auth_print_role(a->pos[0], r);
  cetcd_role_free(r);
  return 0;
}

/* role list */
static int run_list(ctl_args_t *a) {
  if (a->npos != 0) ctl_die(EXIT_BADARGS, "role list command requires no arguments");
  cetcd_client_t *c = ctl_client();
  cetcd_names_t *roles;
  int rc = cetcd_role_list(c, &roles);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  ctl_auth_print_names("roles", roles, true);
  cetcd_names_free(roles);
  return 0;
}

/* role grant-permission [options] <role name> <permission type> <key> [endkey] */
static int run_grant(ctl_args_t *a) {
  if (a->npos < 3)
    ctl_die(EXIT_BADARGS,
            "role grant command requires role name, permission type, and key [endkey] as its argument");
  static const char *const types[] = {"READ", "WRITE", "READWRITE"};
  int type = -1;
  for (int i = 0; i < 3; i++)
    if (!strcasecmp(a->pos[1], types[i])) type = i;
  if (type < 0) ctl_die(EXIT_BADARGS, "invalid permission type: %s", a->pos[1]);
  perm_range_t r = perm_range(a->pos + 2, a->npos - 2);
  cetcd_client_t *c = ctl_client();
  cetcd_header_t h;
  int rc = cetcd_role_grant_permission(c, a->pos[0], r.key, r.klen, r.end, r.elen, (cetcd_perm_type_t)type, &h);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  char line[300];
  snprintf(line, sizeof line, "Role %s updated\n", a->pos[0]);
  ctl_auth_print_done(line, &h);
  return 0;
}

/* role revoke-permission <role name> <key> [endkey] */
static int run_revoke(ctl_args_t *a) {
  if (a->npos < 2)
    ctl_die(EXIT_BADARGS, "role revoke-permission command requires role name and key [endkey] as its argument");
  perm_range_t r = perm_range(a->pos + 1, a->npos - 1);
  cetcd_client_t *c = ctl_client();
  cetcd_header_t h;
  int rc = cetcd_role_revoke_permission(c, a->pos[0], r.key, r.klen, r.end, r.elen, &h);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  char line[1200];
  const char *role = a->pos[0], *key = a->pos[1];
  if (!r.elen)
    snprintf(line, sizeof line, "Permission of key %s is revoked from role %s\n", key, role);
  else if (r.elen == 1 && r.end[0] == 0)
    snprintf(line, sizeof line, "Permission of range [%s, <open ended> is revoked from role %s\n", key, role);
  else
    snprintf(line, sizeof line, "Permission of range [%s, %.*s) is revoked from role %s\n", key, (int)r.elen,
             r.end, role);
  ctl_auth_print_done(line, &h);
  return 0;
}

static const ctl_flag_t grant_flags[] = {
    {"from-key", 0, FLAG_BOOL, &g_from_key,
     "grant a permission of keys that are greater than or equal to the given key using byte compare", NULL,
     NULL},
    {"prefix", 0, FLAG_BOOL, &g_prefix, "grant a prefix permission", NULL, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const ctl_flag_t revoke_flags[] = {
    {"from-key", 0, FLAG_BOOL, &g_from_key,
     "revoke a permission of keys that are greater than or equal to the given key using byte compare", NULL,
     NULL},
    {"prefix", 0, FLAG_BOOL, &g_prefix, "revoke a prefix permission", NULL, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const ctl_cmd_t role_subs[] = {
    {"add", "add <role name>", "Adds a new role", run_add, NULL, NULL, role_reset},
    {"delete", "delete <role name>", "Deletes a role", run_delete, NULL, NULL, role_reset},
    {"get", "get <role name>", "Gets detailed information of a role", run_get, NULL, NULL, role_reset},
    {"grant-permission", "grant-permission [options] <role name> <permission type> <key> [endkey]",
     "Grants a key to a role", run_grant, grant_flags, NULL, role_reset},
    {"list", "list", "Lists all roles", run_list, NULL, NULL, role_reset},
    {"revoke-permission", "revoke-permission <role name> <key> [endkey]", "Revokes a key from a role",
     run_revoke, revoke_flags, NULL, role_reset},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

const ctl_cmd_t ctl_cmd_role = {"role", "role <subcommand>", "Role related commands", NULL, NULL, role_subs,
                                NULL};
