/* libcetcd maintenance and cluster calls. */
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"

#define MAINT_PATH(m) "/etcdserverpb.Maintenance/" m

enum { DEFRAG_MIN_TIMEOUT_MS = 60000 };

/* Duplicates a C string (NULL → ""). */
static char *str_dup(const char *s) { return cc_memdup(s ? s : "", s ? strlen(s) : 0); }

/* Duplicates n strings into *out. Returns 0 or CETCD_ENOMEM (nothing allocated). */
static int strs_dup(char ***out, size_t *n_out, char **src, size_t n) {
  *out = NULL;
  *n_out = 0;
  if (!n) return 0;
  char **a = cc_calloc(n, sizeof(char *));
  if (!a) return CETCD_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    a[i] = str_dup(src[i]);
    if (!a[i]) {
      for (size_t j = 0; j < i; j++) cc_free(a[j]);
      cc_free(a);
      return CETCD_ENOMEM;
    }
  }
  *out = a;
  *n_out = n;
  return 0;
}

static void strs_free(char **a, size_t n) {
  for (size_t i = 0; a && i < n; i++) cc_free(a[i]);
  cc_free(a);
}

/* ---- status ----------------------------------------------------------------------------- */

void cetcd_status_free(cetcd_status_t *s) {
  if (!s) return;
  cc_free(s->version);
  strs_free(s->errors, s->n_errors);
  cc_free(s);
}

int cetcd_status(cetcd_client_t *c, const char *endpoint, cetcd_status_t **out) {
  if (!out) return cc_error(CETCD_EINVAL, 0, NULL);
  *out = NULL;
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  int ch;
  int rc = cc_channel_for(c, endpoint, &ch);
  if (rc) return rc;
  Etcdserverpb__StatusRequest r = ETCDSERVERPB__STATUS_REQUEST__INIT;
  ProtobufCMessage *m;
  rc =
      cc_unary(c, MAINT_PATH("Status"), ch, &r.base, &etcdserverpb__status_response__descriptor, true, 0, &m);
  if (rc) return rc;
  Etcdserverpb__StatusResponse *sr = (Etcdserverpb__StatusResponse *)m;
  cetcd_status_t *s = cc_calloc(1, sizeof(*s));
  if (s) s->version = str_dup(sr->version);
  if (!s || !s->version || strs_dup(&s->errors, &s->n_errors, sr->errors, sr->n_errors)) {
    cetcd_status_free(s);
    protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
    return cc_error(CETCD_ENOMEM, 0, NULL);
  }
  cc_header(&s->header, sr->header);
  s->db_size = sr->dbsize;
  s->db_size_in_use = sr->dbsizeinuse;
  s->leader = sr->leader;
  s->raft_index = sr->raftindex;
  s->raft_term = sr->raftterm;
  s->raft_applied_index = sr->raftappliedindex;
  s->is_learner = sr->islearner;
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  *out = s;
  return 0;
}

int cetcd_move_leader(cetcd_client_t *c, const char *endpoint, uint64_t target) {
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  int ch;
  int rc = cc_channel_for(c, endpoint, &ch);
  if (rc) return rc;
  Etcdserverpb__MoveLeaderRequest r = ETCDSERVERPB__MOVE_LEADER_REQUEST__INIT;
  r.targetid = target;
  ProtobufCMessage *m;
  rc = cc_unary(c, MAINT_PATH("MoveLeader"), ch, &r.base, &etcdserverpb__move_leader_response__descriptor,
                false, 0, &m);
  if (rc) return rc;
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return 0;
}

/* ---- members ---------------------------------------------------------------------------- */

void cetcd_member_list_free(cetcd_member_list_t *l) {
  if (!l) return;
  for (size_t i = 0; l->members && i < l->n_members; i++) {
    cc_free(l->members[i].name);
    strs_free(l->members[i].peer_urls, l->members[i].n_peer_urls);
    strs_free(l->members[i].client_urls, l->members[i].n_client_urls);
  }
  cc_free(l->members);
  cc_free(l);
}

int cetcd_member_list(cetcd_client_t *c, cetcd_member_list_t **out) {
  if (!out) return cc_error(CETCD_EINVAL, 0, NULL);
  *out = NULL;
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  Etcdserverpb__MemberListRequest r = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
  ProtobufCMessage *m;
  int rc = cc_unary(c, "/etcdserverpb.Cluster/MemberList", -1, &r.base,
                    &etcdserverpb__member_list_response__descriptor, true, 0, &m);
  if (rc) return rc;
  Etcdserverpb__MemberListResponse *mr = (Etcdserverpb__MemberListResponse *)m;
  cetcd_member_list_t *l = cc_calloc(1, sizeof(*l));
  if (!l) goto oom;
  cc_header(&l->header, mr->header);
  if (mr->n_members) {
    l->members = cc_calloc(mr->n_members, sizeof(cetcd_member_t));
    if (!l->members) goto oom;
  }
  for (size_t i = 0; i < mr->n_members; i++) {
    const Etcdserverpb__Member *src = mr->members[i];
    cetcd_member_t *d = &l->members[i];
    l->n_members = i + 1;
    d->id = src->id;
    d->is_learner = src->islearner;
    d->name = str_dup(src->name);
    if (!d->name || strs_dup(&d->peer_urls, &d->n_peer_urls, src->peerurls, src->n_peerurls) ||
        strs_dup(&d->client_urls, &d->n_client_urls, src->clienturls, src->n_clienturls))
      goto oom;
  }
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  *out = l;
  return 0;
oom:
  cetcd_member_list_free(l);
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return cc_error(CETCD_ENOMEM, 0, NULL);
}

/* ---- alarms ----------------------------------------------------------------------------- */

/* One Alarm RPC; on success with alarms/n non-NULL returns the alarm list. */
static int alarm_call(cetcd_client_t *c, Etcdserverpb__AlarmRequest__AlarmAction action, uint64_t member,
                      cetcd_alarm_type_t type, cetcd_alarm_t **alarms, size_t *n) {
  Etcdserverpb__AlarmRequest r = ETCDSERVERPB__ALARM_REQUEST__INIT;
  r.action = action;
  r.memberid = member;
  r.alarm = (Etcdserverpb__AlarmType)type;
  ProtobufCMessage *m;
  int rc = cc_unary(c, MAINT_PATH("Alarm"), -1, &r.base, &etcdserverpb__alarm_response__descriptor,
                    action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET, 0, &m);
  if (rc) return rc;
  Etcdserverpb__AlarmResponse *ar = (Etcdserverpb__AlarmResponse *)m;
  if (alarms && ar->n_alarms) {
    cetcd_alarm_t *a = cc_calloc(ar->n_alarms, sizeof(*a));
    if (!a) {
      protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
      return cc_error(CETCD_ENOMEM, 0, NULL);
    }
    for (size_t i = 0; i < ar->n_alarms; i++) {
      a[i].member_id = ar->alarms[i]->memberid;
      a[i].alarm = (cetcd_alarm_type_t)ar->alarms[i]->alarm;
    }
    *alarms = a;
    *n = ar->n_alarms;
  }
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return 0;
}

int cetcd_alarm_list(cetcd_client_t *c, cetcd_alarm_t **alarms, size_t *n) {
  if (!alarms || !n) return cc_error(CETCD_EINVAL, 0, NULL);
  *alarms = NULL;
  *n = 0;
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  return alarm_call(c, ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET, 0, CETCD_ALARM_NONE, alarms, n);
}

int cetcd_alarm_disarm(cetcd_client_t *c, const cetcd_alarm_t *alarm) {
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  if (alarm)
    return alarm_call(c, ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE, alarm->member_id,
                      alarm->alarm, NULL, NULL);
  cetcd_alarm_t *all;
  size_t n;
  int rc = cetcd_alarm_list(c, &all, &n);
  if (rc) return rc;
  for (size_t i = 0; i < n && !rc; i++)
    rc = alarm_call(c, ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE, all[i].member_id, all[i].alarm,
                    NULL, NULL);
  cc_free(all);
  return rc;
}

/* ---- defragment, hashkv ----------------------------------------------------------------- */

int cetcd_defrag(cetcd_client_t *c, const char *endpoint) {
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  int ch;
  int rc = cc_channel_for(c, endpoint, &ch);
  if (rc) return rc;
  Etcdserverpb__DefragmentRequest r = ETCDSERVERPB__DEFRAGMENT_REQUEST__INIT;
  uint64_t tmo = c->request_timeout_ms;
  if (tmo && tmo < DEFRAG_MIN_TIMEOUT_MS) tmo = DEFRAG_MIN_TIMEOUT_MS;
  ProtobufCMessage *m;
  rc = cc_unary(c, MAINT_PATH("Defragment"), ch, &r.base, &etcdserverpb__defragment_response__descriptor,
                false, tmo, &m);
  if (rc) return rc;
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return 0;
}

int cetcd_hashkv(cetcd_client_t *c, const char *endpoint, int64_t rev, uint32_t *hash,
                 int64_t *compact_revision, cetcd_header_t *header) {
  if (!c) return cc_error(CETCD_EINVAL, 0, NULL);
  int ch;
  int rc = cc_channel_for(c, endpoint, &ch);
  if (rc) return rc;
  Etcdserverpb__HashKVRequest r = ETCDSERVERPB__HASH_KVREQUEST__INIT;
  r.revision = rev;
  ProtobufCMessage *m;
  rc =
      cc_unary(c, MAINT_PATH("HashKV"), ch, &r.base, &etcdserverpb__hash_kvresponse__descriptor, true, 0, &m);
  if (rc) return rc;
  Etcdserverpb__HashKVResponse *h = (Etcdserverpb__HashKVResponse *)m;
  if (hash) *hash = h->hash;
  if (compact_revision) *compact_revision = h->compact_revision;
  if (header) cc_header(header, h->header);
  protobuf_c_message_free_unpacked(m, &cc_pb_alloc);
  return 0;
}

/* ---- snapshot --------------------------------------------------------------------------- */

typedef struct chunk {
  struct chunk *next;
  size_t len;
  uint8_t data[];
} chunk_t;

typedef struct snap {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  chunk_t *head, *tail;
  bool closed;
  int err;
  int status;
  char msg[256];
  grpc_cstream_t *s;
  uint64_t idle_ms;
  int open_err;
} snap_t;

static void snap_close(snap_t *sn, int err, int status, const char *msg) {
  pthread_mutex_lock(&sn->mu);
  if (!sn->closed) {
    sn->closed = true;
    sn->err = err;
    sn->status = status;
    snprintf(sn->msg, sizeof sn->msg, "%s", msg ? msg : "");
  }
  pthread_cond_broadcast(&sn->cond);
  pthread_mutex_unlock(&sn->mu);
}

static int snap_on_message(void *ctx, grpc_cstream_t *s, const uint8_t *msg, size_t len) {
  (void)s;
  snap_t *sn = ctx;
  Etcdserverpb__SnapshotResponse *r = etcdserverpb__snapshot_response__unpack(&cc_pb_alloc, len, msg);
  chunk_t *ck = r ? cc_malloc(sizeof(chunk_t) + r->blob.len) : NULL;
  if (!ck) {
    bool oom = cc_pb_oom_take() || r;
    if (r) protobuf_c_message_free_unpacked(&r->base, &cc_pb_alloc);
    sn->s = NULL;
    snap_close(sn, oom ? CETCD_ENOMEM : CETCD_EGRPC, 0,
               oom ? "out of memory" : "malformed snapshot response");
    return 1;
  }
  ck->next = NULL;
  ck->len = r->blob.len;
  if (ck->len) memcpy(ck->data, r->blob.data, ck->len);
  protobuf_c_message_free_unpacked(&r->base, &cc_pb_alloc);
  pthread_mutex_lock(&sn->mu);
  if (sn->tail)
    sn->tail->next = ck;
  else
    sn->head = ck;
  sn->tail = ck;
  pthread_cond_broadcast(&sn->cond);
  pthread_mutex_unlock(&sn->mu);
  return 0;
}

static void snap_on_close(void *ctx, grpc_cstream_t *s, const grpc_close_info_t *info) {
  (void)s;
  snap_t *sn = ctx;
  sn->s = NULL;
  snap_close(sn, info->err, info->status, info->message);
}

static const grpc_cstream_cbs_t snap_cbs = {snap_on_message, snap_on_close};

static void snap_start(grpc_client_t *gc, void *arg) {
  snap_t *sn = arg;
  Etcdserverpb__SnapshotRequest r = ETCDSERVERPB__SNAPSHOT_REQUEST__INIT;
  uint8_t buf[8];
  size_t n = etcdserverpb__snapshot_request__pack(&r, buf);
  sn->s = grpc_cstream_open(gc, MAINT_PATH("Snapshot"), -1, 0, &snap_cbs, sn);
  if (!sn->s) {
    sn->open_err = CETCD_ENOMEM;
    return;
  }
  if (sn->idle_ms) grpc_cstream_set_idle_timeout(sn->s, sn->idle_ms);
  int rc = grpc_cstream_send(sn->s, buf, n, true);
  if (rc) {
    grpc_cstream_cancel(sn->s);
    sn->s = NULL;
    sn->open_err = rc;
  }
}

static void snap_cancel(grpc_client_t *gc, void *arg) {
  (void)gc;
  snap_t *sn = arg;
  if (sn->s) grpc_cstream_cancel(sn->s);
  sn->s = NULL;
}

int cetcd_snapshot(cetcd_client_t *c, cetcd_snapshot_write_cb write_cb, void *ctx) {
  if (!c || !write_cb) return cc_error(CETCD_EINVAL, 0, NULL);
  if (grpc_client_on_io_thread(c->gc))
    return cc_error(CETCD_EINVAL, 0, "blocking call from a libcetcd callback");
  snap_t sn;
  memset(&sn, 0, sizeof sn);
  pthread_mutex_init(&sn.mu, NULL);
  pthread_cond_init(&sn.cond, NULL);
  sn.idle_ms = c->request_timeout_ms;
  int rc = grpc_client_run_sync(c->gc, snap_start, &sn);
  if (!rc) rc = sn.open_err;
  bool aborted = false;
  if (!rc) {
    pthread_mutex_lock(&sn.mu);
    for (;;) {
      while (!sn.head && !sn.closed) pthread_cond_wait(&sn.cond, &sn.mu);
      chunk_t *ck = sn.head;
      if (!ck) break; /* closed and drained */
      sn.head = ck->next;
      if (!sn.head) sn.tail = NULL;
      pthread_mutex_unlock(&sn.mu);
      int stop = ck->len ? write_cb(ctx, ck->data, ck->len) : 0;
      cc_free(ck);
      pthread_mutex_lock(&sn.mu);
      if (stop) {
        aborted = true;
        break;
      }
    }
    pthread_mutex_unlock(&sn.mu);
    if (aborted && grpc_client_run_sync(c->gc, snap_cancel, &sn) != 0) {
      /* the client is shutting down and will close the stream itself: wait for that */
      pthread_mutex_lock(&sn.mu);
      while (!sn.closed) pthread_cond_wait(&sn.cond, &sn.mu);
      pthread_mutex_unlock(&sn.mu);
    }
  }
  for (chunk_t *ck = sn.head, *nx; ck; ck = nx) {
    nx = ck->next;
    cc_free(ck);
  }
  pthread_mutex_destroy(&sn.mu);
  pthread_cond_destroy(&sn.cond);
  if (rc) return cc_error(rc, 0, NULL);
  if (aborted) return cc_error(CETCD_ECANCELED, 0, "snapshot aborted by the write callback");
  if (sn.err) return cc_error(sn.err, 0, sn.msg);
  if (sn.status) return cc_error(cc_map_status(sn.status, sn.msg), sn.status, sn.msg);
  return 0;
}
