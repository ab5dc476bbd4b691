/* The "json" output format: what Go's encoding/json makes of etcd's protobuf response
 * structs (etcdctl prints them with json.Marshal): snake_case or Go field names as the
 * structs' tags say, zero values omitted where the tag has omitempty, integers as
 * numbers, bytes in standard base64. */
#include <inttypes.h>
#include <string.h>

#include "ctl/printer.h"

/* Writes ,"name":value for a non-zero signed value (omitempty). */
static void opt_i64(bool *first, const char *name, int64_t v) {
  if (!v) return;
  printf("%s\"%s\":%" PRId64, *first ? "" : ",", name, v);
  *first = false;
}

/* Same for an unsigned value. */
static void opt_u64(bool *first, const char *name, uint64_t v) {
  if (!v) return;
  printf("%s\"%s\":%" PRIu64, *first ? "" : ",", name, v);
  *first = false;
}

/* The header's fields, comma-separated without braces (for embedded *ResponseHeader). */
static bool hdr_fields(const cetcd_header_t *h, bool first) {
  opt_u64(&first, "cluster_id", h->cluster_id);
  opt_u64(&first, "member_id", h->member_id);
  opt_i64(&first, "revision", h->revision);
  opt_u64(&first, "raft_term", h->raft_term);
  return first;
}

/* {"cluster_id":...} */
static void hdr(const cetcd_header_t *h) {
  putchar('{');
  hdr_fields(h, true);
  putchar('}');
}

/* A mvccpb.KeyValue. */
static void kv(const cetcd_kv_t *k) {
  bool first = true;
  putchar('{');
  if (k->key_len) {
    printf("\"key\":");
    ctl_json_bytes(stdout, k->key, k->key_len);
    first = false;
  }
  opt_i64(&first, "create_revision", k->create_revision);
  opt_i64(&first, "mod_revision", k->mod_revision);
  opt_i64(&first, "version", k->version);
  if (k->value_len) {
    printf("%s\"value\":", first ? "" : ",");
    ctl_json_bytes(stdout, k->value, k->value_len);
    first = false;
  }
  opt_i64(&first, "lease", k->lease);
  putchar('}');
}

/* A list of kvs as ,"name":[...] (omitted when empty). */
static void kvs(const char *name, const cetcd_kv_t *v, size_t n) {
  if (!n) return;
  printf(",\"%s\":[", name);
  for (size_t i = 0; i < n; i++) {
    if (i) putchar(',');
    kv(&v[i]);
  }
  putchar(']');
}

/* RangeResponse body. */
static void range_obj(const cetcd_get_result_t *r) {
  printf("{\"header\":");
  hdr(&r->header);
  kvs("kvs", r->kvs, r->n_kvs);
  if (r->more) printf(",\"more\":true");
  if (r->count) printf(",\"count\":%" PRId64, r->count);
  putchar('}');
}

/* PutResponse body. */
static void put_obj(const cetcd_put_result_t *r) {
  printf("{\"header\":");
  hdr(&r->header);
  if (r->prev_kv) {
    printf(",\"prev_kv\":");
    kv(r->prev_kv);
  }
  putchar('}');
}

/* DeleteRangeResponse body. */
static void del_obj(const cetcd_delete_result_t *r) {
  printf("{\"header\":");
  hdr(&r->header);
  if (r->deleted) printf(",\"deleted\":%" PRId64, r->deleted);
  kvs("prev_kvs", r->prev_kvs, r->n_prev_kvs);
  putchar('}');
}

/* TxnResponse body (responses are oneof wrappers: {"Response":{"ResponsePut":{...}}}). */
static void txn_obj(const cetcd_txn_result_t *r) {
  printf("{\"header\":");
  hdr(&r->header);
  if (r->succeeded) printf(",\"succeeded\":true");
  if (r->n_results) {
    printf(",\"responses\":[");
    for (size_t i = 0; i < r->n_results; i++) {
      const cetcd_op_result_t *o = &r->results[i];
      printf("%s{\"Response\":{", i ? "," : "");
      switch (o->type) {
        case CETCD_OP_GET:
          printf("\"ResponseRange\":"), range_obj(o->get);
          break;
        case CETCD_OP_PUT:
          printf("\"ResponsePut\":"), put_obj(o->put);
          break;
        case CETCD_OP_DELETE:
          printf("\"ResponseDeleteRange\":"), del_obj(o->del);
          break;
        case CETCD_OP_TXN:
          printf("\"ResponseTxn\":"), txn_obj(o->txn);
          break;
      }
      printf("}}");
    }
    putchar(']');
  }
  putchar('}');
}

static void j_get(const cetcd_get_result_t *r) { range_obj(r), putchar('\n'); }
static void j_put(const cetcd_put_result_t *r) { put_obj(r), putchar('\n'); }
static void j_del(const cetcd_delete_result_t *r) { del_obj(r), putchar('\n'); }
static void j_txn(const cetcd_txn_result_t *r) { txn_obj(r), putchar('\n'); }

/* clientv3.WatchResponse: exported Go fields without json tags. */
static void j_watch(const cetcd_watch_event_batch_t *b) {
  printf("{\"Header\":");
  hdr(&b->header);
  printf(",\"Events\":");
  if (!b->n_events) {
    printf("null");
  } else {
    putchar('[');
    for (size_t i = 0; i < b->n_events; i++) {
      const cetcd_watch_event_t *e = &b->events[i];
      printf("%s{", i ? "," : "");
      if (e->type == CETCD_EVENT_DELETE) printf("\"type\":1,");
      printf("\"kv\":");
      kv(&e->kv);
      if (e->prev_kv) {
        printf(",\"prev_kv\":");
        kv(e->prev_kv);
      }
      putchar('}');
    }
    putchar(']');
  }
  printf(",\"CompactRevision\":%" PRId64 ",\"Canceled\":%s,\"Created\":false}\n", b->compact_revision,
         b->canceled ? "true" : "false");
}

/* LeaseGrantResponse: embedded header, then ID, TTL, Error. */
static void j_grant(const cetcd_header_t *h, int64_t id, int64_t ttl) {
  putchar('{');
  bool first = hdr_fields(h, true);
  printf("%s\"ID\":%" PRId64 ",\"TTL\":%" PRId64 ",\"Error\":\"\"}\n", first ? "" : ",", id, ttl);
}

/* LeaseRevokeResponse. */
static void j_revoke(const cetcd_header_t *h, int64_t id) {
  (void)id;
  printf("{\"header\":");
  hdr(h);
  printf("}\n");
}

/* LeaseKeepAliveResponse. */
static void j_keepalive(const cetcd_header_t *h, int64_t id, int64_t ttl) {
  putchar('{');
  bool first = hdr_fields(h, true);
  printf("%s\"ID\":%" PRId64 ",\"TTL\":%" PRId64 "}\n", first ? "" : ",", id, ttl);
}

/* LeaseTimeToLiveResponse. */
static void j_timetolive(const cetcd_lease_ttl_t *r, bool keys) {
  (void)keys;
  putchar('{');
  bool first = hdr_fields(&r->header, true);
  printf("%s\"id\":%" PRId64 ",\"ttl\":%" PRId64 ",\"granted-ttl\":%" PRId64 ",\"keys\":", first ? "" : ",",
         r->id, r->ttl, r->granted_ttl);
  if (!r->n_keys) {
    printf("null");
  } else {
    putchar('[');
    for (size_t i = 0; i < r->n_keys; i++) {
      if (i) putchar(',');
      ctl_json_bytes(stdout, r->keys[i], r->key_lens[i]);
    }
    putchar(']');
  }
  printf("}\n");
}

/* LeaseLeasesResponse. */
static void j_leases(const cetcd_header_t *h, const int64_t *ids, size_t n) {
  putchar('{');
  bool first = hdr_fields(h, true);
  printf("%s\"leases\":[", first ? "" : ",");
  for (size_t i = 0; i < n; i++) printf("%s{\"id\":%" PRId64 "}", i ? "," : "", ids[i]);
  printf("]}\n");
}

/* A list of strings as ,"name":[...] (omitted when empty). */
static void strs(const char *name, char *const *v, size_t n) {
  if (!n) return;
  printf(",\"%s\":[", name);
  for (size_t i = 0; i < n; i++) {
    if (i) putchar(',');
    ctl_json_str(stdout, v[i]);
  }
  putchar(']');
}

/* MemberListResponse. */
static void j_member_list(const cetcd_member_list_t *l) {
  printf("{\"header\":");
  hdr(&l->header);
  if (l->n_members) {
    printf(",\"members\":[");
    for (size_t i = 0; i < l->n_members; i++) {
      const cetcd_member_t *m = &l->members[i];
      printf("%s{", i ? "," : "");
      bool first = true;
      opt_u64(&first, "ID", m->id);
      if (m->name && m->name[0]) {
        printf("%s\"name\":", first ? "" : ",");
        ctl_json_str(stdout, m->name);
        first = false;
      }
      strs("peerURLs", m->peer_urls, m->n_peer_urls);
      strs("clientURLs", m->client_urls, m->n_client_urls);
      if (m->is_learner) printf(",\"isLearner\":true");
      putchar('}');
    }
    putchar(']');
  }
  printf("}\n");
}

/* [epHealth]. */
static void j_ep_health(const ep_health_t *hs, size_t n) {
  putchar('[');
  for (size_t i = 0; i < n; i++) {
    printf("%s{\"endpoint\":", i ? "," : "");
    ctl_json_str(stdout, hs[i].ep);
    printf(",\"health\":%s,\"took\":", hs[i].health ? "true" : "false");
    ctl_json_str(stdout, hs[i].took);
    if (hs[i].error[0]) {
      printf(",\"error\":");
      ctl_json_str(stdout, hs[i].error);
    }
    putchar('}');
  }
  printf("]\n");
}

/* [epStatus]. */
static void j_ep_status(const ep_status_t *s, size_t n) {
  putchar('[');
  for (size_t i = 0; i < n; i++) {
    const cetcd_status_t *st = s[i].st;
    printf("%s{\"Endpoint\":", i ? "," : "");
    ctl_json_str(stdout, s[i].ep);
    printf(",\"Status\":{\"header\":");
    hdr(&st->header);
    if (st->version && st->version[0]) {
      printf(",\"version\":");
      ctl_json_str(stdout, st->version);
    }
    if (st->db_size) printf(",\"dbSize\":%" PRId64, st->db_size);
    if (st->leader) printf(",\"leader\":%" PRIu64, st->leader);
    if (st->raft_index) printf(",\"raftIndex\":%" PRIu64, st->raft_index);
    if (st->raft_term) printf(",\"raftTerm\":%" PRIu64, st->raft_term);
    if (st->raft_applied_index) printf(",\"raftAppliedIndex\":%" PRIu64, st->raft_applied_index);
    strs("errors", st->errors, st->n_errors);
    if (st->db_size_in_use) printf(",\"dbSizeInUse\":%" PRId64, st->db_size_in_use);
    if (st->is_learner) printf(",\"isLearner\":true");
    printf("}}");
  }
  printf("]\n");
}

/* [epHashKV]. */
static void j_ep_hashkv(const ep_hashkv_t *h, size_t n) {
  putchar('[');
  for (size_t i = 0; i < n; i++) {
    printf("%s{\"Endpoint\":", i ? "," : "");
    ctl_json_str(stdout, h[i].ep);
    printf(",\"HashKV\":{\"header\":");
    hdr(&h[i].header);
    if (h[i].hash) printf(",\"hash\":%" PRIu32, h[i].hash);
    if (h[i].compact_revision) printf(",\"compact_revision\":%" PRId64, h[i].compact_revision);
    printf("}}");
  }
  printf("]\n");
}

/* AlarmResponse (etcd leaves its header unset). */
static void j_alarm(const cetcd_alarm_t *a, size_t n) {
  putchar('{');
  if (n) {
    printf("\"alarms\":[");
    for (size_t i = 0; i < n; i++) {
      printf("%s{", i ? "," : "");
      bool first = true;
      opt_u64(&first, "memberID", a[i].member_id);
      opt_i64(&first, "alarm", a[i].alarm);
      putchar('}');
    }
    putchar(']');
  }
  printf("}\n");
}

/* snapshot.Status. */
static void j_db_status(const db_status_t *s) {
  printf("{\"hash\":%" PRIu32 ",\"revision\":%" PRId64 ",\"totalKey\":%" PRId64 ",\"totalSize\":%" PRId64
         "}\n",
         s->hash, s->revision, s->total_key, s->total_size);
}

const ctl_printer_t ctl_printer_json = {
    .get = j_get,
    .put = j_put,
    .del = j_del,
    .txn = j_txn,
    .watch = j_watch,
    .grant = j_grant,
    .revoke = j_revoke,
    .keepalive = j_keepalive,
    .timetolive = j_timetolive,
    .leases = j_leases,
    .member_list = j_member_list,
    .ep_health = j_ep_health,
    .ep_status = j_ep_status,
    .ep_hashkv = j_ep_hashkv,
    .alarm = j_alarm,
    .db_status = j_db_status,
};
