/* get, put and del (also the op parsers used by txn). */
#include <stdlib.h>
#include <string.h>

#include "ctl/kvop.h"
#include "ctl/printer.h"

/* ---- flags ---- */

static char *g_consistency, *g_order, *g_sort_by, *g_lease;
static int64_t g_limit, g_rev;
static bool g_prefix, g_from_key, g_keys_only, g_count_only, g_value_only, g_prev_kv, g_ignore_value,
    g_ignore_lease;

/* Resets every kv flag to its default. */
static void kv_reset(void) {
  g_consistency = "l";
  g_order = g_sort_by = "";
  g_lease = "0";
  g_limit = g_rev = 0;
  g_prefix = g_from_key = g_keys_only = g_count_only = g_value_only = false;
  g_prev_kv = g_ignore_value = g_ignore_lease = false;
}

static const ctl_flag_t get_flags[] = {
    {"consistency", 0, FLAG_STRING, &g_consistency, "Linearizable(l) or Serializable(s)", NULL, "=\"l\""},
    {"count-only", 0, FLAG_BOOL, &g_count_only, "Get only the count", NULL, NULL},
    {"from-key", 0, FLAG_BOOL, &g_from_key,
     "Get keys that are greater than or equal to the given key using byte compare", NULL, NULL},
    {"keys-only", 0, FLAG_BOOL, &g_keys_only, "Get only the keys", NULL, NULL},
    {"limit", 0, FLAG_INT64, &g_limit, "Maximum number of results", NULL, NULL},
    {"order", 0, FLAG_STRING, &g_order, "Order of results; ASCEND or DESCEND (ASCEND by default)", NULL,
     NULL},
    {"prefix", 0, FLAG_BOOL, &g_prefix, "Get keys with matching prefix", NULL, NULL},
    {"print-value-only", 0, FLAG_BOOL, &g_value_only,
     "Only write values when using the \"simple\" output format", NULL, NULL},
    {"rev", 0, FLAG_INT64, &g_rev, "Specify the kv revision", NULL, NULL},
    {"sort-by", 0, FLAG_STRING, &g_sort_by, "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION", NULL,
     NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const ctl_flag_t put_flags[] = {
    {"ignore-lease", 0, FLAG_BOOL, &g_ignore_lease, "updates the key using its current lease", NULL, NULL},
    {"ignore-value", 0, FLAG_BOOL, &g_ignore_value, "updates the key using its current value", NULL, NULL},
    {"lease", 0, FLAG_STRING, &g_lease, "lease ID (in hexadecimal) to attach to the key", NULL, "=\"0\""},
    {"prev-kv", 0, FLAG_BOOL, &g_prev_kv, "return the previous key-value pair before modification", NULL,
     NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const ctl_flag_t del_flags[] = {
    {"from-key", 0, FLAG_BOOL, &g_from_key,
     "delete keys that are greater than or equal to the given key using byte compare", NULL, NULL},
    {"prefix", 0, FLAG_BOOL, &g_prefix, "delete keys with matching prefix", NULL, NULL},
    {"prev-kv", 0, FLAG_BOOL, &g_prev_kv, "return deleted key-value pairs", NULL, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

const ctl_flag_t *ctl_kvop_flags(int type) {
  return type == CETCD_OP_GET ? get_flags : type == CETCD_OP_PUT ? put_flags : del_flags;
}

void ctl_kvop_reset(void) { kv_reset(); }

/* Upper-cases s into buf. */
static const char *upper(const char *s, char *buf, size_t len) {
  size_t i = 0;
  for (; s[i] && i + 1 < len; i++) buf[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
  buf[i] = 0;
  return buf;
}

/* Merges positional arguments before and after "--" (cobra treats both alike). */
static void merge(ctl_args_t *a) {
  for (int i = 0; i < a->nexec; i++) a->pos[a->npos++] = a->exec[i];
  a->nexec = 0;
}

/* Sets the op's key, handling etcdctl's "\x00" for an empty key with --prefix/--from-key. */
static void set_key(ctl_kvop_t *op, const char *key, bool open) {
  if (open && !key[0]) {
    op->key = "\0";
    op->klen = 1;
  } else {
    op->key = key;
    op->klen = strlen(key);
  }
}

void ctl_kvop_get(ctl_args_t *a, ctl_kvop_t *op) {
  merge(a);
  memset(op, 0, sizeof(*op));
  op->type = CETCD_OP_GET;
  if (a->npos == 0)
    ctl_die(EXIT_BADARGS, "get command needs one argument as key and an optional argument as range_end");
  if (g_prefix && g_from_key)
    ctl_die(EXIT_BADARGS, "`--prefix` and `--from-key` cannot be set at the same time, choose one");
  cetcd_get_opts_t *o = &op->get;
  if (strcmp(g_consistency, "s") == 0)
    o->serializable = true;
  else if (strcmp(g_consistency, "l") != 0)
    ctl_die(EXIT_BADFEATURE, "unknown consistency flag \"%s\"", g_consistency);
  if (a->npos > 1) {
    if (g_prefix || g_from_key)
      ctl_die(EXIT_BADARGS,
              "too many arguments, only accept one argument when `--prefix` or `--from-key` is set");
    o->range_end = a->pos[1];
    o->range_end_len = strlen(a->pos[1]);
  }
  o->limit = g_limit;
  if (g_rev > 0) o->revision = g_rev;
  char b[32];
  upper(g_order, b, sizeof(b));
  if (strcmp(b, "ASCEND") == 0)
    o->sort_order = CETCD_SORT_ASCEND;
  else if (strcmp(b, "DESCEND") == 0)
    o->sort_order = CETCD_SORT_DESCEND;
  else if (b[0])
    ctl_die(EXIT_BADFEATURE, "bad sort order %s", g_order);
  upper(g_sort_by, b, sizeof(b));
  if (strcmp(b, "CREATE") == 0)
    o->sort_target = CETCD_SORT_CREATE;
  else if (strcmp(b, "KEY") == 0)
    o->sort_target = CETCD_SORT_KEY;
  else if (strcmp(b, "MODIFY") == 0)
    o->sort_target = CETCD_SORT_MOD;
  else if (strcmp(b, "VALUE") == 0)
    o->sort_target = CETCD_SORT_VALUE;
  else if (strcmp(b, "VERSION") == 0)
    o->sort_target = CETCD_SORT_VERSION;
  else if (b[0])
    ctl_die(EXIT_BADFEATURE, "bad sort target %s", g_sort_by);
  if (o->sort_target == CETCD_SORT_KEY && o->sort_order == CETCD_SORT_ASCEND) o->sort_order = CETCD_SORT_NONE;
  set_key(op, a->pos[0], g_prefix || g_from_key);
  if (g_prefix) {
    if (!a->pos[0][0])
      o->from_key = true;
    else
      o->prefix = true;
  }
  if (g_from_key) o->from_key = true;
  o->keys_only = g_keys_only;
  o->count_only = g_count_only;
  op->value_only = g_value_only;
}

void ctl_kvop_put(ctl_args_t *a, ctl_kvop_t *op) {
  merge(a);
  memset(op, 0, sizeof(*op));
  op->type = CETCD_OP_PUT;
  static const char *need = "put command needs 1 argument and input from stdin or 2 arguments";
  if (a->npos == 0) ctl_die(EXIT_BADARGS, "%s", need);
  op->key = a->pos[0];
  op->klen = strlen(op->key);
  if (g_ignore_value && a->npos > 1)
    ctl_die(EXIT_BADARGS, "put command needs only 1 argument when 'ignore-value' is set");
  if (!g_ignore_value) {
    if (a->npos > 1) {
      op->value = a->pos[1];
      op->vlen = strlen(a->pos[1]);
    } else {
      char *v;
      size_t n = ctl_read_stdin(&v);
      if (n == 0) ctl_die(EXIT_BADARGS, "%s", need);
      op->value = v;
      op->vlen = n;
    }
  } else {
    op->value = "";
  }
  int64_t id;
  char err[256];
  if (ctl_parse_int(g_lease, 16, &id, err, sizeof(err)) != 0)
    ctl_die(EXIT_BADARGS, "bad lease ID (%s), expecting ID in Hex", err);
  op->put.lease = id;
  op->put.prev_kv = g_prev_kv;
  op->put.ignore_value = g_ignore_value;
  op->put.ignore_lease = g_ignore_lease;
}

void ctl_kvop_del(ctl_args_t *a, ctl_kvop_t *op) {
  merge(a);
  memset(op, 0, sizeof(*op));
  op->type = CETCD_OP_DELETE;
  if (a->npos == 0 || a->npos > 2)
    ctl_die(EXIT_BADARGS, "del command needs one argument as key and an optional argument as range_end");
  if (g_prefix && g_from_key)
    ctl_die(EXIT_BADARGS, "`--prefix` and `--from-key` cannot be set at the same time, choose one");
  if (a->npos > 1) {
    if (g_prefix || g_from_key)
      ctl_die(EXIT_BADARGS,
              "too many arguments, only accept one argument when `--prefix` or `--from-key` is set");
    op->del.range_end = a->pos[1];
    op->del.range_end_len = strlen(a->pos[1]);
  }
  set_key(op, a->pos[0], g_prefix || g_from_key);
  if (g_prefix) {
    if (!a->pos[0][0])
      op->del.from_key = true;
    else
      op->del.prefix = true;
  }
  if (g_from_key) op->del.from_key = true;
  op->del.prev_kv = g_prev_kv;
}

/* get [options] <key> [range_end] */
static int run_get(ctl_args_t *a) {
  ctl_kvop_t op;
  ctl_kvop_get(a, &op);
  cetcd_client_t *c = ctl_client();
  cetcd_get_result_t *r = NULL;
  int rc = cetcd_get(c, op.key, op.klen, &op.get, &r);
  if (rc != 0) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  if (op.value_only) {
    if (g_ctl.fmt != FMT_SIMPLE) ctl_die(EXIT_BADARGS, "print-value-only is only for `--write-out=simple`");
    ctl_value_only = true;
  }
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->get != NULL);
  p->get(r);
  cetcd_get_result_free(r);
  cetcd_client_free(c);
  return 0;
}

/* put [options] <key> <value> */
static int run_put(ctl_args_t *a) {
  ctl_kvop_t op;
  ctl_kvop_put(a, &op);
  cetcd_client_t *c = ctl_client();
  cetcd_put_result_t *r = NULL;
  int rc = cetcd_put(c, op.key, op.klen, op.value, op.vlen, &op.put, &r);
  if (rc != 0) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->put != NULL);
  p->put(r);
  cetcd_put_result_free(r);
  cetcd_client_free(c);
  return 0;
}

/* del [options] <key> [range_end] */
static int run_del(ctl_args_t *a) {
  ctl_kvop_t op;
  ctl_kvop_del(a, &op);
  cetcd_client_t *c = ctl_client();
  cetcd_delete_result_t *r = NULL;
  int rc = cetcd_delete(c, op.key, op.klen, &op.del, &r);
  if (rc != 0) ctl_die_call(EXIT_ERR, rc, NULL, NULL);
  const ctl_printer_t *p = ctl_printer();
  ctl_require_format(p->del != NULL);
  p->del(r);
  cetcd_delete_result_free(r);
  cetcd_client_free(c);
  return 0;
}

const ctl_cmd_t ctl_cmd_get = {
    "get",   "get [options] <key> [range_end]", "Gets the key or a range of keys", run_get, get_flags, NULL,
    kv_reset};
const ctl_cmd_t ctl_cmd_put = {"put",
                               "put [options] <key> <value> (<value> can also be given from stdin)",
                               "Puts the given key into the store",
                               run_put,
                               put_flags,
                               NULL,
                               kv_reset};
const ctl_cmd_t ctl_cmd_del = {"del",
                               "del [options] <key> [range_end]",
                               "Removes the specified key or range of keys [key, range_end)",
                               run_del,
                               del_flags,
                               NULL,
                               kv_reset};
