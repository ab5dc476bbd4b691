/* Output of the user and role commands in etcdctl 3.4's formats: simple (its sentences),
 * json (the response struct through encoding/json), fields (header lines; user get and
 * user list are not supported there) and table (no auth output: "not supported"). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/auth_print.h"
#include "ctl/printer.h"

/* {"cluster_id":...} for a header (zero fields omitted). */
static void json_hdr(const cetcd_header_t *h) {
  const char *sep = "";
  printf("{\"header\":{");
  if (h->cluster_id) printf("%s\"cluster_id\":%" PRIu64, sep, h->cluster_id), sep = ",";
  if (h->member_id) printf("%s\"member_id\":%" PRIu64, sep, h->member_id), sep = ",";
  if (h->revision) printf("%s\"revision\":%" PRId64, sep, h->revision), sep = ",";
  if (h->raft_term) printf("%s\"raft_term\":%" PRIu64, sep, h->raft_term);
  putchar('}');
}

/* The fields format's header lines. */
static void fields_hdr(const cetcd_header_t *h) {
  printf("\"ClusterID\" : %" PRIu64 "\n\"MemberID\" : %" PRIu64 "\n\"Revision\" : %" PRId64
         "\n\"RaftTerm\" : %" PRIu64 "\n",
         h->cluster_id, h->member_id, h->revision, h->raft_term);
}

void ctl_auth_print_done(const char *simple, const cetcd_header_t *h) {
  switch (g_ctl.fmt) {
    case FMT_SIMPLE:
      fputs(simple, stdout);
      break;
    case FMT_JSON:
      json_hdr(h);
      printf("}\n");
      break;
    case FMT_FIELDS:
      fields_hdr(h);
      break;
    default:
      ctl_require_format(false);
  }
}

void ctl_auth_print_names(const char *field, const cetcd_names_t *l, bool fields_ok) {
  switch (g_ctl.fmt) {
    case FMT_SIMPLE:
      for (size_t i = 0; i < l->n; i++) printf("%s\n", l->names[i]);
      break;
    case FMT_JSON:
      json_hdr(&l->header);
      if (l->n) {
        printf(",\"%s\":[", field);
        for (size_t i = 0; i < l->n; i++) {
          if (i) putchar(',');
          ctl_json_str(stdout, l->names[i]);
        }
        putchar(']');
      }
      printf("}\n");
      break;
    case FMT_FIELDS:
      ctl_require_format(fields_ok);
      fields_hdr(&l->header);
      printf("\"Roles\" :");
      for (size_t i = 0; i < l->n; i++) {
        putchar(' ');
        ctl_fquote(stdout, l->names[i], strlen(l->names[i]));
      }
      putchar('\n');
      break;
    default:
      ctl_require_format(false);
  }
}

void ctl_auth_print_user(const char *name, const cetcd_names_t *roles) {
  if (g_ctl.fmt != FMT_SIMPLE) {
    ctl_auth_print_names("roles", roles, false);
    return;
  }
  printf("User: %s\nRoles:", name);
  for (size_t i = 0; i < roles->n; i++) printf(" %s", roles->names[i]);
  putchar('\n');
}

/* Writes n raw bytes (Go's %s of a string: NULs included). */
static void raw(const char *p, size_t n) { fwrite(p, 1, n, stdout); }

/* One permission range in the simple format ("\t[k, e)" and " (prefix k)"). */
static void simple_range(const cetcd_perm_t *p) {
  putchar('\t');
  if (!p->range_end_len) {
    raw(p->key, p->key_len);
    putchar('\n');
    return;
  }
  putchar('[');
  raw(p->key, p->key_len);
  if (p->range_end_len == 1 && p->range_end[0] == 0) {
    fputs(", <open ended>", stdout);
  } else {
    fputs(", ", stdout);
    raw(p->range_end, p->range_end_len);
    putchar(')');
  }
  char *pe = NULL;
  size_t pn = ctl_prefix_end(p->key, p->key_len, &pe);
  if (pn == p->range_end_len && !memcmp(pe, p->range_end, pn)) {
    fputs(" (prefix ", stdout);
    raw(p->key, p->key_len);
    putchar(')');
  }
  free(pe);
  putchar('\n');
}

static const char *const perm_names[] = {"READ", "WRITE", "READWRITE"};

void ctl_auth_print_role(const char *name, const cetcd_role_t *r) {
  switch (g_ctl.fmt) {
    case FMT_SIMPLE:
      printf("Role %s\nKV Read:\n", name);
      for (size_t i = 0; i < r->n_perms; i++)
        if (r->perms[i].type == CETCD_PERM_READ || r->perms[i].type == CETCD_PERM_READWRITE)
          simple_range(&r->perms[i]);
      printf("KV Write:\n");
      for (size_t i = 0; i < r->n_perms; i++)
        if (r->perms[i].type == CETCD_PERM_WRITE || r->perms[i].type == CETCD_PERM_READWRITE)
          simple_range(&r->perms[i]);
      break;
    case FMT_JSON:
      json_hdr(&r->header);
      if (r->n_perms) printf(",\"perm\":[");
      for (size_t i = 0; i < r->n_perms; i++) {
        const cetcd_perm_t *p = &r->perms[i];
        const char *sep = "";
        printf("%s{", i ? "," : "");
        if (p->type) printf("\"permType\":%d", (int)p->type), sep = ",";
        if (p->key_len) printf("%s\"key\":", sep), ctl_json_bytes(stdout, p->key, p->key_len), sep = ",";
        if (p->range_end_len) printf("%s\"range_end\":", sep), ctl_json_bytes(stdout, p->range_end, p->range_end_len);
        putchar('}');
      }
      printf("%s}\n", r->n_perms ? "]" : "");
      break;
    case FMT_FIELDS:
      fields_hdr(&r->header);
      for (size_t i = 0; i < r->n_perms; i++) {
        const cetcd_perm_t *p = &r->perms[i];
        printf("\"PermType\" :  %s\n\"Key\" : ", (unsigned)p->type < 3 ? perm_names[p->type] : "?");
        ctl_fquote(stdout, p->key, p->key_len);
        printf("\n\"RangeEnd\" : ");
        ctl_fquote(stdout, p->range_end, p->range_end_len);
        putchar('\n');
      }
      break;
    default:
      ctl_require_format(false);
  }
}
