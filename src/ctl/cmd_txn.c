/* txn [-i]: reads compares, success requests and failure requests from stdin (each block
 * ended by an empty line), like etcdctl's txn. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/kvop.h"
#include "ctl/printer.h"

static bool g_interactive;

static const ctl_flag_t txn_flags[] = {
    {"interactive", 'i', FLAG_BOOL, &g_interactive, "Input transaction in interactive mode", NULL, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

/* Resets txn's flags. */
static void txn_reset(void) { g_interactive = false; }

/* Reads one line like Go's bufio ReadString('\n'): EOF before a newline is an error. */
static char *read_line(void) {
  static char *buf;
  static size_t cap;
  ssize_t n = getline(&buf, &cap, stdin);
  if (n < 0 || buf[n - 1] != '\n') ctl_die(EXIT_INVALID_INPUT, "EOF");
  return buf;
}

/* Trims ASCII whitespace in place. */
static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
  return s;
}

/* Parses a Go quoted string (double-quoted with escapes, or back-quoted) at *p into a
 * malloc'd string. Returns 0 and advances *p, or -1. */
static int scan_quoted(const char **p, char **out) {
  const char *s = *p;
  while (*s == ' ' || *s == '\t') s++;
  char *o = malloc(strlen(s) + 1), *w = o;
  if (!o) abort();
  if (*s == '`') {
    const char *e = strchr(s + 1, '`');
    if (!e) goto fail;
    memcpy(o, s + 1, (size_t)(e - s - 1));
    o[e - s - 1] = 0;
    *p = e + 1;
    *out = o;
    return 0;
  }
  if (*s != '"') goto fail;
  for (s++; *s && *s != '"'; s++) {
    if (*s != '\\') {
      *w++ = *s;
      continue;
    }
    s++;
    switch (*s) {
      case 'n':
        *w++ = '\n';
        break;
      case 't':
        *w++ = '\t';
        break;
      case 'r':
        *w++ = '\r';
        break;
      case 'a':
        *w++ = '\a';
        break;
      case 'b':
        *w++ = '\b';
        break;
      case 'f':
        *w++ = '\f';
        break;
      case 'v':
        *w++ = '\v';
        break;
      case '\\':
        *w++ = '\\';
        break;
      case '"':
        *w++ = '"';
        break;
      case '\'':
        *w++ = '\'';
        break;
      case 'x': {
        char h[3] = {s[1], s[1] ? s[2] : 0, 0};
        if (!isxdigit((unsigned char)h[0]) || !isxdigit((unsigned char)h[1])) goto fail;
        *w++ = (char)strtol(h, NULL, 16);
        s += 2;
        break;
      }
      default:
        if (*s >= '0' && *s <= '7' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7') {
          *w++ = (char)((s[0] - '0') * 64 + (s[1] - '0') * 8 + (s[2] - '0'));
          s += 2;
          break;
        }
        goto fail;
    }
  }
  if (*s != '"') goto fail;
  *w = 0;
  *p = s + 1;
  *out = o;
  return 0;
fail:
  free(o);
  return -1;
}

/* Builds the "malformed comparison: LINE; got T(K) OP V" message. */
static _Noreturn void malformed(const char *line, const char *target, const char *key, const char *op,
                                const char *val) {
  char *msg = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&msg, &len);
  fprintf(f, "malformed comparison: %s; got %s(", line, target);
  ctl_fquote(f, key, strlen(key));
  fprintf(f, ") %s ", op);
  ctl_fquote(f, val, strlen(val));
  fclose(f);
  ctl_die(EXIT_INVALID_INPUT, "%s", msg);
}

/* Parses one comparison line and adds it to txn. */
static void parse_compare(cetcd_txn_t *txn, char *line) {
  char *lp = strchr(line, '(');
  if (!lp) ctl_die(EXIT_INVALID_INPUT, "malformed comparison: %s", line);
  char target[64];
  snprintf(target, sizeof(target), "%.*s", (int)(lp - line), line);
  const char *p = lp + 1;
  char *key = NULL, *val = NULL, op[16] = "";
  if (scan_quoted(&p, &key) != 0) malformed(line, target, "", "", "");
  if (*p != ')') malformed(line, target, key, "", "");
  p++;
  while (*p == ' ' || *p == '\t') p++;
  size_t n = strcspn(p, " \t");
  if (n == 0 || n >= sizeof(op)) malformed(line, target, key, "", "");
  memcpy(op, p, n);
  op[n] = 0;
  p += n;
  if (scan_quoted(&p, &val) != 0) malformed(line, target, key, op, "");
  cetcd_cmp_op_t cop;
  if (strcmp(op, "=") == 0)
    cop = CETCD_CMP_EQUAL;
  else if (strcmp(op, "!=") == 0)
    cop = CETCD_CMP_NOT_EQUAL;
  else if (strcmp(op, ">") == 0)
    cop = CETCD_CMP_GREATER;
  else if (strcmp(op, "<") == 0)
    cop = CETCD_CMP_LESS;
  else
    ctl_die(EXIT_INVALID_INPUT, "malformed comparison: %s (unknown result op %s)", line, op);
  int64_t v = 0;
  char err[256];
  bool numeric = strcmp(target, "val") != 0 && strcmp(target, "value") != 0;
  if (numeric && ctl_parse_int(val, 10, &v, err, sizeof(err)) != 0 &&
      (strcmp(target, "lease") != 0 || ctl_parse_int(val, 16, &v, err, sizeof(err)) != 0))
    ctl_die(EXIT_INVALID_INPUT, "invalid txn compare request: %s", line);
  size_t kl = strlen(key);
  if (strcmp(target, "ver") == 0 || strcmp(target, "version") == 0)
    cetcd_txn_cmp_version(txn, key, kl, cop, v);
  else if (strcmp(target, "c") == 0 || strcmp(target, "create") == 0)
    cetcd_txn_cmp_create(txn, key, kl, cop, v);
  else if (strcmp(target, "m") == 0 || strcmp(target, "mod") == 0)
    cetcd_txn_cmp_mod(txn, key, kl, cop, v);
  else if (!numeric)
    cetcd_txn_cmp_value(txn, key, kl, cop, val, strlen(val));
  else if (strcmp(target, "lease") == 0)
    cetcd_txn_cmp_lease(txn, key, kl, cop, v);
  else
    ctl_die(EXIT_INVALID_INPUT, "malformed comparison: %s (unknown target %s)", line, target);
}

/* Splits a request line into arguments like etcdctl's argify (quotes honoured). */
int ctl_argify(const char *s, char ***out) {
  char **v = calloc(strlen(s) + 2, sizeof(char *));
  int n = 0;
  if (!v) abort();
  while (*s) {
    while (isspace((unsigned char)*s)) s++;
    if (!*s) break;
    if (*s == '"') {
      const char *p = s;
      char *q;
      if (scan_quoted(&p, &q) == 0) {
        v[n++] = q;
        s = p;
        continue;
      }
      s++;
      continue;
    }
    if (*s == '\'') {
      const char *e = strchr(s + 1, '\'');
      if (e) {
        v[n++] = strndup(s + 1, (size_t)(e - s - 1));
        s = e + 1;
        continue;
      }
      s++;
      continue;
    }
    size_t l = 0;
    while (s[l] && !isspace((unsigned char)s[l])) l++;
    v[n++] = strndup(s, l);
    s += l;
  }
  *out = v;
  return n;
}

/* Parses one request line and adds it to the then (success) or else branch. */
static void parse_request(cetcd_txn_t *txn, bool success, char *line) {
  char **args;
  int n = ctl_argify(line, &args);
  if (n < 2) ctl_die(EXIT_INVALID_INPUT, "invalid txn compare request: %s", line);
  int type;
  if (strcmp(args[0], "put") == 0)
    type = CETCD_OP_PUT;
  else if (strcmp(args[0], "get") == 0)
    type = CETCD_OP_GET;
  else if (strcmp(args[0], "del") == 0)
    type = CETCD_OP_DELETE;
  else
    ctl_die(EXIT_INVALID_INPUT, "invalid txn request: %s", line);
  ctl_kvop_reset();
  ctl_args_t a;
  char err[256];
  if (ctl_parse_flags(ctl_kvop_flags(type), false, n - 1, args + 1, &a, err, sizeof(err)) != 0)
    ctl_die(EXIT_INVALID_INPUT, "invalid txn request: %s", line);
  ctl_kvop_t op;
  if (type == CETCD_OP_PUT) {
    ctl_kvop_put(&a, &op);
    if (success)
      cetcd_txn_then_put(txn, op.key, op.klen, op.value, op.vlen, &op.put);
    else
      cetcd_txn_else_put(txn, op.key, op.klen, op.value, op.vlen, &op.put);
  } else if (type == CETCD_OP_GET) {
    ctl_kvop_get(&a, &op);
    if (success)
      cetcd_txn_then_get(txn, op.key, op.klen, &op.get);
    else
      cetcd_txn_else_get(txn, op.key, op.klen, &op.get);
  } else {
    ctl_kvop_del(&a, &op);
    if (success)
      cetcd_txn_then_delete(txn, op.key, op.klen, &op.del);
    else
      cetcd_txn_else_delete(txn, op.key, op.klen, &op.del);
  }
  ctl_args_free(&a);
}

/* txn [options] */
static int run_txn(ctl_args_t *a) {
  if (a->npos + a->nexec != 0) ctl_die(EXIT_BADARGS, "txn command does not accept argument");
  cetcd_client_t *c = ctl_client();
  cetcd_txn_t *txn;
  if (cetcd_txn_new(&txn) != 0) ctl_die(EXIT_ERR, "out of memory");
  if (g_interactive) puts("compares:");
  for (char *l; *(l = trim(read_line()));) parse_compare(txn, l);
  if (g_interactive) puts("success requests (get, put, del):");
  for (char *l; *(l = trim(read_line()));) parse_request(txn, true, l);
  if (g_interactive) puts("failure requests (get, put, del):");
  for (char *l; *(l = trim(read_line()));) parse_request(txn, false, l);
  cetcd_txn_result_t *r = NULL;
  int rc = cetcd_txn_commit(c, txn, &r);
  if (rc != 0) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->txn != NULL);
  p->txn(r);
  cetcd_txn_result_free(r);
  cetcd_txn_free(txn);
  cetcd_client_free(c);
  return 0;
}

const ctl_cmd_t ctl_cmd_txn = {"txn",    "txn [options]", "Txn processes all the requests in one transaction",
                               run_txn,  txn_flags,       NULL,
                               txn_reset};
