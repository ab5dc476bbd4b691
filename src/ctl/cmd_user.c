/* user: etcdctl's "user add|delete|get|list|passwd|grant-role|revoke-role". */
#include <stdlib.h>
#include <string.h>

#include "ctl/auth_print.h"

static bool g_interactive = true, g_no_password, g_detail;
static char *g_new_password;

/* Resets the flags to etcdctl's defaults. */
static void user_reset(void) {
  g_interactive = true;
  g_no_password = g_detail = false;
  g_new_password = NULL;
}

/* etcdctl's readPasswordInteractive: asks twice on the terminal. Returns malloc'd. */
static char *ask_twice(const char *name) {
  char prompt[300], err[128];
  snprintf(prompt, sizeof prompt, "Password of %s: ", name);
  char *p1 = ctl_ask_password(prompt, err, sizeof err);
  if (!p1) ctl_die(EXIT_BADARGS, "failed to ask password: %s", err);
  if (!*p1) ctl_die(EXIT_BADARGS, "empty password");
  snprintf(prompt, sizeof prompt, "Type password of %s again for confirmation: ", name);
  char *p2 = ctl_ask_password(prompt, err, sizeof err);
  if (!p2) ctl_die(EXIT_BADARGS, "failed to ask password: %s", err);
  if (strcmp(p1, p2) != 0) ctl_die(EXIT_BADARGS, "given passwords are different");
  free(p2);
  return p1;
}

/* The password of `user add` / `user passwd` when not given inline. */
static char *read_password(const char *name) { return g_interactive ? ask_twice(name) : ctl_scan_word(); }

/* user add <user name or user:password> [options] */
static int run_add(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "user add command requires user name as its argument");
  char *user = a->pos[0], *password = NULL;
  if (!g_no_password) {
    char *colon = strchr(a->pos[0], ':');
    if (g_new_password && *g_new_password) {
      password = g_new_password;
    } else if (!colon) {
      password = read_password(user);
    } else {
      user = strndup(a->pos[0], (size_t)(colon - a->pos[0]));
      password = colon + 1;
      if (!*user) ctl_die(EXIT_BADARGS, "empty user name is not allowed");
    }
  }
  cetcd_client_t *c = ctl_client();
  cetcd_header_t h;
  int rc = cetcd_user_add(c, user, password, g_no_password, &h);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  char line[300];
  snprintf(line, sizeof line, "User %s created\n", user);
  ctl_auth_print_done(line, &h);
  return 0;
}

/* user delete <user name> */
static int run_delete(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "user delete command requires user name as its argument");
  cetcd_client_t *c = ctl_client();
  cetcd_header_t h;
  int rc = cetcd_user_delete(c, a->pos[0], &h);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  char line[300];
  snprintf(line, sizeof line, "User %s deleted\n", a->pos[0]);
  ctl_auth_print_done(line, &h);
  return 0;
}

/* user get <user name> [--detail] */
static int run_get(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "user get command requires user name as its argument");
  cetcd_client_t *c = ctl_client();
  cetcd_names_t *roles;
  int rc = cetcd_user_get(c, a->pos[0], &roles);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  if (!g_detail) {
    ctl_auth_print_user(a->pos[0], roles);
  } else {
    printf("User: %s\n", a->pos[0]);
    for (size_t i = 0; i < roles->n; i++) {
      printf("\n");
      cetcd_role_t *r;
      if ((rc = cetcd_role_get(c, roles->names[i], &r)) != 0) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
      ctl_auth_print_role(roles->names[i], r);
      cetcd_role_free(r);
    }
  }
  cetcd_names_free(roles);
  cetcd_client_free(c);
  return 0;
}

/* user list */
static int run_list(ctl_args_t *a) {
  if (a->npos != 0) ctl_die(EXIT_BADARGS, "user list command requires no arguments");
  cetcd_client_t *c = ctl_client();
  cetcd_names_t *users;
  int rc = cetcd_user_list(c, &users);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  ctl_auth_print_names("users", users, false);
  cetcd_names_free(users);
  return 0;
}

/* user passwd <user name> [--interactive=false] */
static int run_passwd(ctl_args_t *a) {
  if (a->npos != 1) ctl_die(EXIT_BADARGS, "user passwd command requires user name as its argument");
  char *password = read_password(a->pos[0]);
  cetcd_client_t *c = ctl_client();
  cetcd_header_t h;
  int rc = cetcd_user_change_password(c, a->pos[0], password, &h);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  ctl_auth_print_done("Password updated\n", &h);
  return 0;
}

/* user grant-role <user name> <role name> */
static int run_grant(ctl_args_t *a) {
  if (a->npos != 2)
    ctl_die(EXIT_BADARGS, "user grant command requires user name and role name as its argument");
  cetcd_client_t *c = ctl_client();
  cetcd_header_t h;
  int rc = cetcd_user_grant_role(c, a->pos[0], a->pos[1], &h);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  char line[600];
  snprintf(line, sizeof line, "Role %s is granted to user %s\n", a->pos[1], a->pos[0]);
  ctl_auth_print_done(line, &h);
  return 0;
}

/* user revoke-role <user name> <role name> */
static int run_revoke(ctl_args_t *a) {
  if (a->npos != 2)
    ctl_die(EXIT_BADARGS, "user revoke-role requires user name and role name as its argument");
  cetcd_client_t *c = ctl_client();
  cetcd_header_t h;
  int rc = cetcd_user_revoke_role(c, a->pos[0], a->pos[1], &h);
  if (rc) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  cetcd_client_free(c);
  char line[600];
  snprintf(line, sizeof line, "Role %s is revoked from user %s\n", a->pos[1], a->pos[0]);
  ctl_auth_print_done(line, &h);
  return 0;
}

static const ctl_flag_t add_flags[] = {
    {"interactive", 0, FLAG_BOOL, &g_interactive, "Read password from stdin instead of interactive terminal",
     NULL, "[=true]"},
    {"new-user-password", 0, FLAG_STRING, &g_new_password, "Supply password from the command line flag", NULL,
     NULL},
    {"no-password", 0, FLAG_BOOL, &g_no_password, "Create a user without password (CN based auth only)", NULL,
     NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const ctl_flag_t get_flags[] = {
    {"detail", 0, FLAG_BOOL, &g_detail, "Show permissions of roles granted to the user", NULL, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const ctl_flag_t passwd_flags[] = {
    {"interactive", 0, FLAG_BOOL, &g_interactive,
     "If true, read password from stdin instead of interactive terminal", NULL, "[=true]"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const ctl_cmd_t user_subs[] = {
    {"add", "add <user name or user:password> [options]", "Adds a new user", run_add, add_flags, NULL,
     user_reset},
    {"delete", "delete <user name>", "Deletes a user", run_delete, NULL, NULL, user_reset},
    {"get", "get <user name> [options]", "Gets detailed information of a user", run_get, get_flags, NULL,
     user_reset},
    {"grant-role", "grant-role <user name> <role name>", "Grants a role to a user", run_grant, NULL, NULL,
     user_reset},
    {"list", "list", "Lists all users", run_list, NULL, NULL, user_reset},
    {"passwd", "passwd <user name> [options]", "Changes password of user", run_passwd, passwd_flags, NULL,
     user_reset},
    {"revoke-role", "revoke-role <user name> <role name>", "Revokes a role from a user", run_revoke, NULL, NULL,
     user_reset},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

const ctl_cmd_t ctl_cmd_user = {"user", "user <subcommand>", "User related commands", NULL, NULL, user_subs,
                                NULL};
