/* The "fields" output format: one `"Name" : value` line per field, strings Go-quoted. */
#include <inttypes.h>
#include <string.h>

#include "ctl/printer.h"

/* Prints a "Name" : "quoted" line. */
static void qline(const char *name, const char *p, size_t n) {
  printf("\"%s\" : ", name);
  ctl_fquote(stdout, p, n);
  putchar('\n');
}

/* The response header. */
static void hdr(const cetcd_header_t *h) {
  printf("\"ClusterID\" : %" PRIu64 "\n\"MemberID\" : %" PRIu64 "\n\"Revision\" : %" PRId64
         "\n\"RaftTerm\" : %" PRIu64 "\n",
         h->cluster_id, h->member_id, h->revision, h->raft_term);
}

/* A key-value with an optional name prefix ("Prev"). */
static void kv(const char *pfx, const cetcd_kv_t *k) {
  char n[32];
  snprintf(n, sizeof(n), "%sKey", pfx);
  qline(n, k->key, k->key_len);
  printf("\"%sCreateRevision\" : %" PRId64 "\n\"%sModRevision\" : %" PRId64 "\n\"%sVersion\" : %" PRId64 "\n",
         pfx, k->create_revision, pfx, k->mod_revision, pfx, k->version);
  snprintf(n, sizeof(n), "%sValue", pfx);
  qline(n, k->value, k->value_len);
  printf("\"%sLease\" : %" PRId64 "\n", pfx, k->lease);
}

static void f_del(const cetcd_delete_result_t *r) {
  hdr(&r->header);
  printf("\"Deleted\" : %" PRId64 "\n", r->deleted);
  for (size_t i = 0; i < r->n_prev_kvs; i++) kv("Prev", &r->prev_kvs[i]);
}

static void f_get(const cetcd_get_result_t *r) {
  hdr(&r->header);
  for (size_t i = 0; i < r->n_kvs; i++) kv("", &r->kvs[i]);
  printf("\"More\" : %s\n\"Count\" : %" PRId64 "\n", r->more ? "true" : "false", r->count);
}

static void f_put(const cetcd_put_result_t *r) {
  hdr(&r->header);
  if (r->prev_kv) kv("Prev", r->prev_kv);
}

static void f_txn(const cetcd_txn_result_t *r) {
  hdr(&r->header);
  printf("\"Succeeded\" : %s\n", r->succeeded ? "true" : "false");
  for (size_t i = 0; i < r->n_results; i++) {
    const cetcd_op_result_t *o = &r->results[i];
    if (o->type == CETCD_OP_DELETE)
      f_del(o->del);
    else if (o->type == CETCD_OP_PUT)
      f_put(o->put);
    else if (o->type == CETCD_OP_GET)
      f_get(o->get);
    else
      printf("\"Unknown\" : \"txn\"\n");
  }
}

static void f_watch(const cetcd_watch_event_batch_t *b) {
  hdr(&b->header);
  for (size_t i = 0; i < b->n_events; i++) {
    const cetcd_watch_event_t *e = &b->events[i];
    printf("\"Type\" : %s\n", e->type == CETCD_EVENT_DELETE ? "DELETE" : "PUT");
    if (e->prev_kv) kv("Prev", e->prev_kv);
    kv("", &e->kv);
  }
}

static void f_grant(const cetcd_header_t *h, int64_t id, int64_t ttl) {
  hdr(h);
  printf("\"ID\" : %" PRId64 "\n\"TTL\" : %" PRId64 "\n", id, ttl);
}

static void f_revoke(const cetcd_header_t *h, int64_t id) {
  (void)id;
  hdr(h);
}

static void f_timetolive(const cetcd_lease_ttl_t *r, bool keys) {
  (void)keys;
  hdr(&r->header);
  printf("\"ID\" : %" PRId64 "\n\"TTL\" : %" PRId64 "\n\"GrantedTTL\" : %" PRId64 "\n", r->id, r->ttl,
         r->granted_ttl);
  for (size_t i = 0; i < r->n_keys; i++) qline("Key", r->keys[i], r->key_lens[i]);
}

static void f_leases(const cetcd_header_t *h, const int64_t *ids, size_t n) {
  hdr(h);
  for (size_t i = 0; i < n; i++) printf("\"ID\" : %" PRId64 "\n", ids[i]);
}

static void f_member_list(const cetcd_member_list_t *l) {
  hdr(&l->header);
  for (size_t i = 0; i < l->n_members; i++) {
    const cetcd_member_t *m = &l->members[i];
    printf("\"ID\" : %" PRIu64 "\n", m->id);
    qline("Name", m->name ? m->name : "", m->name ? strlen(m->name) : 0);
    for (size_t j = 0; j < m->n_peer_urls; j++) qline("PeerURL", m->peer_urls[j], strlen(m->peer_urls[j]));
    for (size_t j = 0; j < m->n_client_urls; j++)
      qline("ClientURL", m->client_urls[j], strlen(m->client_urls[j]));
    printf("\"IsLearner\" : %s\n\n", m->is_learner ? "true" : "false");
  }
}

static void f_ep_health(const ep_health_t *hs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    qline("Endpoint", hs[i].ep, strlen(hs[i].ep));
    printf("\"Health\" : %s\n\"Took\" : %s\n\"Error\" : %s\n\n", hs[i].health ? "true" : "false", hs[i].took,
           hs[i].error);
  }
}

static void f_ep_status(const ep_status_t *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const cetcd_status_t *st = s[i].st;
    hdr(&st->header);
    qline("Version", st->version ? st->version : "", st->version ? strlen(st->version) : 0);
    printf("\"DBSize\" : %" PRId64 "\n\"Leader\" : %" PRIu64 "\n\"IsLearner\" : %s\n\"RaftIndex\" : %" PRIu64
           "\n\"RaftTerm\" : %" PRIu64 "\n\"RaftAppliedIndex\" : %" PRIu64 "\n\"Errors\" : [",
           st->db_size, st->leader, st->is_learner ? "true" : "false", st->raft_index, st->raft_term,
           st->raft_applied_index);
    for (size_t j = 0; j < st->n_errors; j++) printf("%s%s", j ? " " : "", st->errors[j]);
    printf("]\n");
    qline("Endpoint", s[i].ep, strlen(s[i].ep));
    putchar('\n');
  }
}

static void f_ep_hashkv(const ep_hashkv_t *h, size_t n) {
  for (size_t i = 0; i < n; i++) {
    hdr(&h[i].header);
    qline("Endpoint", h[i].ep, strlen(h[i].ep));
    printf("\"Hash\" : %" PRIu32 "\n\n", h[i].hash);
  }
}

/* alarms (etcd sends no header here, on which etcdctl 3.4 crashes; cetcdctl skips it). */
static void f_alarm(const cetcd_alarm_t *a, size_t n) {
  for (size_t i = 0; i < n; i++)
    printf("\"MemberID\" : %" PRIu64 "\n\"AlarmType\" : %s\n\n", a[i].member_id, ctl_alarm_name(a[i].alarm));
}

static void f_db_status(const db_status_t *s) {
  printf("\"Hash\" : %" PRIu32 "\n\"Revision\" : %" PRId64 "\n\"Keys\" : %" PRId64 "\n\"Size\" : %" PRId64
         "\n",
         s->hash, s->revision, s->total_key, s->total_size);
}

const ctl_printer_t ctl_printer_fields = {
    .get = f_get,
    .put = f_put,
    .del = f_del,
    .txn = f_txn,
    .watch = f_watch,
    .grant = f_grant,
    .revoke = f_revoke,
    .keepalive = f_grant,
    .timetolive = f_timetolive,
    .leases = f_leases,
    .member_list = f_member_list,
    .ep_health = f_ep_health,
    .ep_status = f_ep_status,
    .ep_hashkv = f_ep_hashkv,
    .alarm = f_alarm,
    .db_status = f_db_status,
};
