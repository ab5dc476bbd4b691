/* Output of cetcdctl's auth, user and role commands (printer_auth.c). */
#ifndef CETCD_CTL_AUTH_PRINT_H
#define CETCD_CTL_AUTH_PRINT_H

#include "ctl/ctl.h"

/* A call whose response is only a header: simple prints the sentence `simple` (with its
 * newline), json and fields the header; table exits "not supported". */
void ctl_auth_print_done(const char *simple, const cetcd_header_t *h);
/* User or role list: one name a line (simple), json with the array under `field`, fields
 * with a "Roles" line (only when fields_ok, as etcdctl: role list yes, user list no). */
void ctl_auth_print_names(const char *field, const cetcd_names_t *l, bool fields_ok);
/* user get: "User: name" and "Roles: ..." (simple); json {"header","roles"}; fields and
 * table not supported. */
void ctl_auth_print_user(const char *name, const cetcd_names_t *roles);
/* role get: etcdctl's "KV Read:" / "KV Write:" ranges (simple), json, fields. */
void ctl_auth_print_role(const char *name, const cetcd_role_t *r);

#endif
