/* The alarm store: raised alarms in memory (a small sorted array) and in the backend's
 * `alarm` bucket, plus the apply-time gates of etcd's capped and corrupt appliers. */
#include "server/alarm.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"
#include "server/quota.h"

typedef struct alarm_ent {
  int type;
  uint64_t member;
} alarm_ent_t;

struct alarm_store {
  mvcc_store_t *mvcc;
  alarm_ent_t *v;
  size_t n, cap;
};

/* Orders entries by type, then member id. */
static int ent_cmp(const alarm_ent_t *a, int type, uint64_t member) {
  if (a->type != type) return a->type < type ? -1 : 1;
  if (a->member != member) return a->member < member ? -1 : 1;
  return 0;
}

/* Index of (member, type) or of where it would go; *found tells which. */
static size_t find(const alarm_store_t *as, uint64_t member, int type, bool *found) {
  size_t lo = 0, hi = as->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = ent_cmp(&as->v[mid], type, member);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

/* Adds (member, type) to the in-memory set; returns false if it was there. */
static bool mem_add(alarm_store_t *as, uint64_t member, int type) {
  bool found;
  size_t i = find(as, member, type, &found);
  if (found) return false;
  if (as->n == as->cap) {
    as->cap = as->cap ? as->cap * 2 : 4;
    as->v = xrealloc(as->v, as->cap * sizeof(*as->v));
  }
  memmove(as->v + i + 1, as->v + i, (as->n - i) * sizeof(*as->v));
  as->v[i] = (alarm_ent_t){type, member};
  as->n++;
  return true;
}

/* Encodes the bucket key: the AlarmMember message, as etcd stores it. */
static size_t encode_key(uint64_t member, int type, uint8_t *buf) {
  Etcdserverpb__AlarmMember m = ETCDSERVERPB__ALARM_MEMBER__INIT;
  m.memberid = member;
  m.alarm = (Etcdserverpb__AlarmType)type;
  return etcdserverpb__alarm_member__pack(&m, buf); /* at most 2 + 10 + 1 + 10 bytes */
}

/* Loads one persisted alarm. */
static int restore_one(void *ctx, const void *key, size_t klen, const void *val, size_t vlen) {
  (void)val;
  (void)vlen;
  alarm_store_t *as = ctx;
  Etcdserverpb__AlarmMember *m = etcdserverpb__alarm_member__unpack(NULL, klen, key);
  if (!m) {
    LOGE("msg=\"cannot decode a persisted alarm\" bucket=alarm key-bytes=%zu", klen);
    return CETCD_ECORRUPT;
  }
  mem_add(as, m->memberid, (int)m->alarm);
  etcdserverpb__alarm_member__free_unpacked(m, NULL);
  return 0;
}

int alarm_store_open(mvcc_store_t *mvcc, alarm_store_t **out) {
  alarm_store_t *as = xcalloc(1, sizeof(*as));
  as->mvcc = mvcc;
  int rc = mvcc_bucket_foreach(mvcc, "alarm", restore_one, as);
  if (rc) {
    alarm_store_free(as);
    *out = NULL;
    return rc;
  }
  char name[12], text[64];
  for (size_t i = 0; i < as->n; i++) {
    alarm_member_string(as->v[i].member, as->v[i].type, text, sizeof(text));
    LOGW("msg=\"restored a raised alarm\" alarm=%s member=\"%s\"", alarm_type_name(as->v[i].type, name),
         text);
  }
  *out = as;
  return 0;
}

void alarm_store_free(alarm_store_t *as) {
  if (!as) return;
  free(as->v);
  free(as);
}

int alarm_activate(alarm_store_t *as, uint64_t member, int type, bool *added) {
  bool found;
  find(as, member, type, &found);
  if (added) *added = !found;
  if (found) return 0;
  uint8_t key[32];
  size_t klen = encode_key(member, type, key);
  int rc = mvcc_bucket_put(as->mvcc, "alarm", key, klen, NULL, 0);
  if (rc) return rc;
  mem_add(as, member, type);
  return 0;
}

int alarm_deactivate(alarm_store_t *as, uint64_t member, int type, bool *removed) {
  bool found;
  size_t i = find(as, member, type, &found);
  if (removed) *removed = found;
  if (!found) return 0;
  uint8_t key[32];
  size_t klen = encode_key(member, type, key);
  int rc = mvcc_bucket_del(as->mvcc, "alarm", key, klen);
  if (rc) return rc;
  memmove(as->v + i, as->v + i + 1, (as->n - i - 1) * sizeof(*as->v));
  as->n--;
  return 0;
}

size_t alarm_count(const alarm_store_t *as, int type) {
  if (!as) return 0;
  if (type == ETCDSERVERPB__ALARM_TYPE__NONE) return as->n;
  size_t n = 0;
  for (size_t i = 0; i < as->n; i++) n += as->v[i].type == type;
  return n;
}

bool alarm_is_raised(const alarm_store_t *as, uint64_t member, int type) {
  bool found = false;
  if (as) find(as, member, type, &found);
  return found;
}

void alarm_get(const alarm_store_t *as, size_t i, uint64_t *member, int *type) {
  *member = as->v[i].member;
  *type = as->v[i].type;
}

const char *alarm_type_name(int type, char *buf) {
  switch (type) {
    case ETCDSERVERPB__ALARM_TYPE__NONE:
      return "NONE";
    case ETCDSERVERPB__ALARM_TYPE__NOSPACE:
      return "NOSPACE";
    case ETCDSERVERPB__ALARM_TYPE__CORRUPT:
      return "CORRUPT";
    default:
      snprintf(buf, 12, "%d", type);
      return buf;
  }
}

int alarm_member_string(uint64_t member, int type, char *buf, size_t n) {
  char name[12];
  char m[32] = "", a[32] = "";
  if (member) snprintf(m, sizeof(m), "memberID:%" PRIu64 " ", member);
  if (type) snprintf(a, sizeof(a), "alarm:%s ", alarm_type_name(type, name));
  return snprintf(buf, n, "%s%s", m, a);
}

/* Appends (member, type) to the response's list. */
static void resp_add(Etcdserverpb__AlarmResponse *r, arena_t *arena, size_t cap, uint64_t member, int type) {
  if (!r->alarms) r->alarms = arena_alloc(arena, (cap ? cap : 1) * sizeof(*r->alarms));
  Etcdserverpb__AlarmMember *m = arena_alloc(arena, sizeof(*m));
  etcdserverpb__alarm_member__init(m);
  m->memberid = member;
  m->alarm = (Etcdserverpb__AlarmType)type;
  r->alarms[r->n_alarms++] = m;
}

int alarm_apply(alarm_store_t *as, const Etcdserverpb__AlarmRequest *req, arena_t *arena,
                Etcdserverpb__AlarmResponse **resp) {
  Etcdserverpb__AlarmResponse *r = arena_alloc(arena, sizeof(*r));
  etcdserverpb__alarm_response__init(r);
  *resp = r;
  int type = (int)req->alarm;
  char name[12], from[20];
  snprintf(from, sizeof(from), "%" PRIx64, req->memberid);
  int rc = 0;
  switch (req->action) {
    case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET: {
      size_t n = alarm_count(as, type);
      for (size_t i = 0; i < as->n; i++)
        if (type == ETCDSERVERPB__ALARM_TYPE__NONE || as->v[i].type == type)
          resp_add(r, arena, n, as->v[i].member, as->v[i].type);
      break;
    }
    case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE: {
      if (type == ETCDSERVERPB__ALARM_TYPE__NONE) break; /* nothing to raise */
      size_t before = alarm_count(as, type);
      bool added;
      if ((rc = alarm_activate(as, req->memberid, type, &added))) break;
      resp_add(r, arena, 1, req->memberid, type);
      if (added && before == 0)
        LOGW("msg=\"alarm raised\" alarm=%s from=%s", alarm_type_name(type, name), from);
      break;
    }
    case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE: {
      bool removed;
      if ((rc = alarm_deactivate(as, req->memberid, type, &removed)) || !removed) break;
      resp_add(r, arena, 1, req->memberid, type);
      if (alarm_count(as, type) == 0)
        LOGW("msg=\"alarm disarmed\" alarm=%s from=%s", alarm_type_name(type, name), from);
      break;
    }
    default:
      break;
  }
  return rc;
}

int alarm_apply_gate(const alarm_store_t *as, const Cetcdinternal__InternalRequest *req) {
  if (!as || as->n == 0) return 0;
  if (alarm_count(as, ETCDSERVERPB__ALARM_TYPE__CORRUPT) &&
      (req->put || req->delete_range || req->txn || req->compaction || req->lease_grant || req->lease_revoke))
    return CETCD_ECORRUPT;
  if (alarm_count(as, ETCDSERVERPB__ALARM_TYPE__NOSPACE) &&
      (req->put || req->lease_grant || (req->txn && quota_cost_txn(req->txn) > 0)))
    return CETCD_ENOSPACE;
  return 0;
}
