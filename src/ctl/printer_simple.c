/* The "simple" output format (etcdctl's default): keys and values on their own lines,
 * "OK", "SUCCESS"/"FAILURE", comma-separated rows for cluster commands. */
#include <inttypes.h>
#include <string.h>

#include "ctl/printer.h"

bool ctl_value_only;

/* Prints bytes raw, or as \xNN escapes with --hex. */
static void print_bytes(const char *p, size_t n) {
  if (g_ctl.hex) {
    for (size_t i = 0; i < n; i++) printf("\\x%02x", (unsigned char)p[i]);
  } else {
    fwrite(p, 1, n, stdout);
  }
  putchar('\n');
}

void ctl_print_kv_simple(const cetcd_kv_t *kv) {
  if (!ctl_value_only) print_bytes(kv->key, kv->key_len);
  print_bytes(kv->value, kv->value_len);
}

const char *ctl_alarm_name(int a) {
  switch (a) {
    case CETCD_ALARM_NONE:
      return "NONE";
    case CETCD_ALARM_NOSPACE:
      return "NOSPACE";
    case CETCD_ALARM_CORRUPT:
      return "CORRUPT";
    default:
      return "UNKNOWN";
  }
}

/* get: every key and value. */
static void s_get(const cetcd_get_result_t *r) {
  for (size_t i = 0; i < r->n_kvs; i++) ctl_print_kv_simple(&r->kvs[i]);
}

/* put: "OK" and the previous pair. */
static void s_put(const cetcd_put_result_t *r) {
  puts("OK");
  if (r->prev_kv) ctl_print_kv_simple(r->prev_kv);
}

/* del: the count and the deleted pairs. */
static void s_del(const cetcd_delete_result_t *r) {
  printf("%" PRId64 "\n", r->deleted);
  for (size_t i = 0; i < r->n_prev_kvs; i++) ctl_print_kv_simple(&r->prev_kvs[i]);
}

/* txn: SUCCESS/FAILURE, then each response after a blank line. */
static void s_txn(const cetcd_txn_result_t *r) {
  puts(r->succeeded ? "SUCCESS" : "FAILURE");
  for (size_t i = 0; i < r->n_results; i++) {
    const cetcd_op_result_t *o = &r->results[i];
    putchar('\n');
    if (o->type == CETCD_OP_DELETE)
      s_del(o->del);
    else if (o->type == CETCD_OP_PUT)
      s_put(o->put);
    else if (o->type == CETCD_OP_GET)
      s_get(o->get);
    else
      printf("unexpected response %s\n", "txn");
  }
}

/* watch: event type, previous pair, pair. */
static void s_watch(const cetcd_watch_event_batch_t *b) {
  for (size_t i = 0; i < b->n_events; i++) {
    const cetcd_watch_event_t *e = &b->events[i];
    puts(e->type == CETCD_EVENT_DELETE ? "DELETE" : "PUT");
    if (e->prev_kv) ctl_print_kv_simple(e->prev_kv);
    ctl_print_kv_simple(&e->kv);
  }
}

/* lease grant. */
static void s_grant(const cetcd_header_t *h, int64_t id, int64_t ttl) {
  (void)h;
  printf("lease %016" PRIx64 " granted with TTL(%" PRId64 "s)\n", (uint64_t)id, ttl);
}

/* lease revoke. */
static void s_revoke(const cetcd_header_t *h, int64_t id) {
  (void)h;
  printf("lease %016" PRIx64 " revoked\n", (uint64_t)id);
}

/* one keep-alive answer. */
static void s_keepalive(const cetcd_header_t *h, int64_t id, int64_t ttl) {
  (void)h;
  printf("lease %016" PRIx64 " keepalived with TTL(%" PRId64 ")\n", (uint64_t)id, ttl);
}

/* lease timetolive. */
static void s_timetolive(const cetcd_lease_ttl_t *r, bool keys) {
  if (r->granted_ttl == 0 && r->ttl == -1) {
    printf("lease %016" PRIx64 " already expired\n", (uint64_t)r->id);
    return;
  }
  printf("lease %016" PRIx64 " granted with TTL(%" PRId64 "s), remaining(%" PRId64 "s)", (uint64_t)r->id,
         r->granted_ttl, r->ttl);
  if (keys) {
    printf(", attached keys([");
    for (size_t i = 0; i < r->n_keys; i++) {
      if (i) putchar(' ');
      fwrite(r->keys[i], 1, r->key_lens[i], stdout);
    }
    printf("])");
  }
  putchar('\n');
}

/* lease list. */
static void s_leases(const cetcd_header_t *h, const int64_t *ids, size_t n) {
  (void)h;
  printf("found %zu leases\n", n);
  for (size_t i = 0; i < n; i++) printf("%016" PRIx64 "\n", (uint64_t)ids[i]);
}

/* Prints table rows joined by ", ". */
static void rows(ctl_table_t *t) {
  for (size_t r = 0; r < t->nrows; r++) {
    for (size_t c = 0; c < t->ncols; c++) printf("%s%s", c ? ", " : "", t->rows[r][c]);
    putchar('\n');
  }
  ctl_table_free(t);
}

/* member list. */
static void s_member_list(const cetcd_member_list_t *l) {
  ctl_table_t t;
  ctl_table_member_list(l, &t);
  rows(&t);
}

/* endpoint health: one line per endpoint on stderr. */
static void s_ep_health(const ep_health_t *hs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (!hs[i].error[0])
      fprintf(stderr, "%s is healthy: successfully committed proposal: took = %s\n", hs[i].ep, hs[i].took);
    else
      fprintf(stderr, "%s is unhealthy: failed to commit proposal: %s\n", hs[i].ep, hs[i].error);
  }
}

/* endpoint status. */
static void s_ep_status(const ep_status_t *s, size_t n) {
  ctl_table_t t;
  ctl_table_ep_status(s, n, &t);
  rows(&t);
}

/* endpoint hashkv. */
static void s_ep_hashkv(const ep_hashkv_t *h, size_t n) {
  ctl_table_t t;
  ctl_table_ep_hashkv(h, n, &t);
  rows(&t);
}

/* alarm list/disarm: Go's %+v of the protobuf message (its text form). */
static void s_alarm(const cetcd_alarm_t *a, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (a[i].member_id) printf("memberID:%" PRIu64 " ", a[i].member_id);
    if (a[i].alarm) printf("alarm:%s ", ctl_alarm_name(a[i].alarm));
    putchar('\n');
  }
}

/* snapshot status. */
static void s_db_status(const db_status_t *s) {
  ctl_table_t t;
  ctl_table_db_status(s, &t);
  rows(&t);
}

const ctl_printer_t ctl_printer_simple = {
    .get = s_get,
    .put = s_put,
    .del = s_del,
    .txn = s_txn,
    .watch = s_watch,
    .grant = s_grant,
    .revoke = s_revoke,
    .keepalive = s_keepalive,
    .timetolive = s_timetolive,
    .leases = s_leases,
    .member_list = s_member_list,
    .ep_health = s_ep_health,
    .ep_status = s_ep_status,
    .ep_hashkv = s_ep_hashkv,
    .alarm = s_alarm,
    .db_status = s_db_status,
};

const ctl_printer_t *ctl_printer(void) {
  switch (g_ctl.fmt) {
    case FMT_JSON:
      return &ctl_printer_json;
    case FMT_FIELDS:
      return &ctl_printer_fields;
    case FMT_TABLE:
      return &ctl_printer_table;
    default:
      return &ctl_printer_simple;
  }
}
