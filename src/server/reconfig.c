/* Cluster membership on the Raft path. See reconfig.h. */
#include "server/reconfig.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "grpc/grpc_server.h"
#include "mvcc/mvcc.h"
#include "server/ids.h"
#include "server/leadership.h"
#include "server/membership.h"
#include "server/peer.h"
#include "server/raft_node.h"
#include "server/urls.h"

#define PROBE_INTERVAL_MS 500
#define PEER_DEAD_MS 2000       /* no message for this long: the peer is not connected */
#define HEALTH_INTERVAL_MS 5000 /* etcd's HealthInterval: connected at least this long */
#define PUBLISH_RETRY_MS 500
#define READY_PERCENT 0.9 /* etcd's readyPercent for promoting a learner */

typedef struct peer_seen {
  uint64_t id;
  uint64_t since; /* start of the current run of messages (ms) */
  uint64_t last;  /* last message (ms) */
} peer_seen_t;

struct reconfig {
  server_t *srv;
  uv_timer_t probe;
  uv_timer_t publish_retry;
  bool timers_open;
  bool publishing, published, removed;
  peer_seen_t *seen;
  size_t n_seen, cap_seen;
};

/* The process's state (one server per process). */
static struct reconfig *rc_of(server_t *srv) { return srv->reconfig; }

/* ---- ids and the membership at start ------------------------------------------------ */

/* True if the two URL lists hold the same strings (any order). */
static bool same_urls(char *const *a, size_t na, char *const *b, size_t nb) {
  if (na != nb) return false;
  for (size_t i = 0; i < na; i++) {
    bool found = false;
    for (size_t j = 0; j < nb && !found; j++) found = !strcmp(a[i], b[j]);
    if (!found) return false;
  }
  return true;
}

/* Copies a protobuf member into the membership. */
static int put_pb_member(membership_t *ms, const Etcdserverpb__Member *pm) {
  member_t m = {.id = pm->id,
                .name = pm->name,
                .peer_urls = pm->peerurls,
                .n_peer_urls = pm->n_peerurls,
                .client_urls = pm->clienturls,
                .n_client_urls = pm->n_clienturls,
                .learner = pm->islearner};
  return membership_put(ms, &m);
}

int reconfig_join(server_t *srv) {
  cetcd_config_t *cfg = srv->cfg;
  if (!srv->rn || !cfg->initial_cluster_existing) return 0;
  uint8_t ids[16];
  size_t n = sizeof(ids);
  if (mvcc_meta_get(srv->mvcc, "cetcd_ids", ids, &n) == 0) return 0; /* joined before */
  const ids_cluster_t *c = raft_node_cluster(srv->rn);
  char **urls = xcalloc(c->n_members + 1, sizeof(char *));
  size_t nu = 0;
  for (size_t i = 0; i < c->n_members; i++)
    if (!same_urls(c->members[i].peer_urls, c->members[i].n_peer_urls, srv->peer_urls, srv->n_peer_urls))
      urls[nu++] = c->members[i].peer_urls[0];
  Etcdserverpb__MemberListRequest req = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
  uint8_t reqb[16];
  size_t reql = etcdserverpb__member_list_request__pack(&req, reqb);
  uint8_t *resp = NULL;
  size_t resp_len = 0;
  int rc = CETCD_EUNAVAILABLE;
  for (int attempt = 0; attempt < 5 && rc; attempt++) /* the cluster may be electing */
    rc = peer_call(urls, nu, "/etcdserverpb.Cluster/MemberList", reqb, reql, &resp, &resp_len);
  free(urls);
  if (rc) {
    LOGE(
        "msg=\"cannot fetch cluster info from peer urls\" error=\"%s\" fix=\"start the running members "
        "first; --initial-cluster must list them\"",
        cetcd_strerror(rc));
    return CETCD_EINVAL;
  }
  Etcdserverpb__MemberListResponse *ml = etcdserverpb__member_list_response__unpack(NULL, resp_len, resp);
  free(resp);
  if (!ml || !ml->header) {
    if (ml) etcdserverpb__member_list_response__free_unpacked(ml, NULL);
    LOGE("msg=\"cannot decode the cluster's member list\"");
    return CETCD_EINVAL;
  }
  const Etcdserverpb__Member *self = NULL;
  for (size_t i = 0; i < ml->n_members; i++)
    if (same_urls(ml->members[i]->peerurls, ml->members[i]->n_peerurls, srv->peer_urls, srv->n_peer_urls))
      self = ml->members[i];
  if (!self) {
    LOGE(
        "msg=\"failed to join the cluster: no member has this member's peer URLs\" fix=\"add it first with "
        "etcdctl member add --peer-urls\"");
    etcdserverpb__member_list_response__free_unpacked(ml, NULL);
    return CETCD_EINVAL;
  }
  srv->member_id = self->id;
  srv->cluster_id = ml->header->cluster_id;
  for (int i = 0; i < 8; i++) ids[i] = (uint8_t)(srv->member_id >> (56 - 8 * i));
  for (int i = 0; i < 8; i++) ids[8 + i] = (uint8_t)(srv->cluster_id >> (56 - 8 * i));
  membership_t *ms;
  rc = membership_open(srv->mvcc, &ms);
  if (!rc) {
    mvcc_batch_begin(srv->mvcc);
    for (size_t i = 0; i < ml->n_members && !rc; i++) rc = put_pb_member(ms, ml->members[i]);
    if (!rc) rc = mvcc_meta_put(srv->mvcc, "cetcd_ids", ids, 16);
    if (rc)
      mvcc_batch_abort(srv->mvcc);
    else
      rc = mvcc_batch_commit(srv->mvcc, mvcc_consistent_index(srv->mvcc));
    membership_free(ms);
  }
  LOGI("msg=\"joining an existing cluster\" local-member-id=%016" PRIx64 " cluster-id=%016" PRIx64
       " members=%zu",
       srv->member_id, srv->cluster_id, ml->n_members);
  etcdserverpb__member_list_response__free_unpacked(ml, NULL);
  return rc;
}

/* Probe timer: a message to every peer, so that each member knows who it is connected to. */
static void on_probe(uv_timer_t *t) {
  struct reconfig *r = t->data;
  server_t *srv = r->srv;
  if (!srv->rn || r->removed) return;
  for (size_t i = 0; i < membership_count(srv->members); i++) {
    const member_t *m = membership_at(srv->members, i);
    if (m->id != srv->member_id) raft_node_send_probe(srv->rn, m->id);
  }
}

int reconfig_open(server_t *srv) {
  int rc = membership_open(srv->mvcc, &srv->members);
  if (rc) {
    LOGE("msg=\"cannot load the membership\" error=\"%s\"", cetcd_strerror(rc));
    return rc;
  }
  if (membership_count(srv->members) == 0 && srv->rn) { /* a new cluster: --initial-cluster */
    const ids_cluster_t *c = raft_node_cluster(srv->rn);
    mvcc_batch_begin(srv->mvcc);
    for (size_t i = 0; i < c->n_members && !rc; i++) {
      member_t m = {.id = c->members[i].id,
                    .name = c->members[i].name,
                    .peer_urls = c->members[i].peer_urls,
                    .n_peer_urls = c->members[i].n_peer_urls};
      rc = membership_put(srv->members, &m);
    }
    if (rc) {
      mvcc_batch_abort(srv->mvcc);
      return rc;
    }
    if ((rc = mvcc_batch_commit(srv->mvcc, mvcc_consistent_index(srv->mvcc)))) return rc;
  }
  struct reconfig *r = xcalloc(1, sizeof(*r));
  r->srv = srv;
  srv->reconfig = r;
  if (!srv->rn) return 0;
  for (size_t i = 0; i < membership_count(srv->members); i++) {
    const member_t *m = membership_at(srv->members, i);
    LOGI("msg=\"recovered/added member from store\" cluster-id=%016" PRIx64 " local-member-id=%016" PRIx64
         " recovered-remote-peer-id=%016" PRIx64 " recovered-remote-peer-urls=%s",
         srv->cluster_id, srv->member_id, m->id, m->n_peer_urls ? m->peer_urls[0] : "");
  }
  uv_timer_init(srv->loop, &r->probe);
  uv_timer_init(srv->loop, &r->publish_retry);
  r->probe.data = r->publish_retry.data = r;
  r->timers_open = true;
  uv_timer_start(&r->probe, on_probe, PROBE_INTERVAL_MS, PROBE_INTERVAL_MS);
  return 0;
}

void reconfig_reload(server_t *srv) {
  membership_t *ms;
  int rc = membership_open(srv->mvcc, &ms);
  if (rc) {
    LOGE("msg=\"cannot reload the membership from the snapshot\" error=\"%s\"", cetcd_strerror(rc));
    return;
  }
  membership_free(srv->members);
  srv->members = ms;
  if (srv->rn) raft_node_peers_changed(srv->rn);
}

bool reconfig_has_cluster(mvcc_store_t *mvcc) {
  membership_t *ms;
  if (membership_open(mvcc, &ms)) return false;
  bool several = membership_count(ms) > 1;
  membership_free(ms);
  return several;
}

int reconfig_become_cluster(server_t *srv) {
  if (srv->rn) return 0;
  if (srv->pending_head) return CETCD_ETIMEOUT; /* writes in flight: the client retries */
  raft_node_t *rn;
  int rc = raft_node_create_single(srv, &rn);
  if (rc) return rc;
  LOGI(
      "msg=\"a membership change on a single member: switching to the raft path\" local-member-id=%016" PRIx64
      " term=%" PRIu64 " applied-index=%" PRIu64,
      srv->member_id, srv->term, srv->applied_index);
  server_single_path_stop(srv);
  raft_node_restore_single(rn, srv->term, srv->last_index);
  srv->rn = rn;
  if ((rc = reconfig_open(srv))) return rc;
  /* it published itself at start: its attributes go in locally (others get them with the
   * snapshot of this backend that a new member receives) */
  rc = membership_set_attrs(srv->members, srv->member_id, srv->cfg->name, srv->client_urls,
                            srv->n_client_urls);
  if (rc) return rc;
  rc_of(srv)->published = true;
  if ((rc = raft_node_start(rn))) return rc;
  leadership_monitor_start(srv);
  raft_node_campaign(rn);
  return 0;
}

/* libuv close callback of the last timer: frees the state. */
static void timers_closed(uv_handle_t *h) {
  struct reconfig *r = h->data;
  free(r->seen);
  free(r);
}

void reconfig_close(server_t *srv) {
  struct reconfig *r = rc_of(srv);
  srv->reconfig = NULL;
  membership_free(srv->members);
  srv->members = NULL;
  if (!r) return;
  if (!r->timers_open) {
    free(r->seen);
    free(r);
    return;
  }
  uv_close((uv_handle_t *)&r->probe, NULL);
  uv_close((uv_handle_t *)&r->publish_retry, timers_closed);
}

void reconfig_conf_state(server_t *srv, uint64_t **voters, size_t *nv, uint64_t **learners, size_t *nl) {
  size_t n = membership_count(srv->members);
  *voters = xcalloc(n + 1, sizeof(uint64_t));
  *learners = xcalloc(n + 1, sizeof(uint64_t));
  *nv = *nl = 0;
  for (size_t i = 0; i < n; i++) {
    const member_t *m = membership_at(srv->members, i);
    if (m->learner)
      (*learners)[(*nl)++] = m->id;
    else
      (*voters)[(*nv)++] = m->id;
  }
}

void reconfig_peers(server_t *srv, uint64_t **ids, char ***urls, size_t *n) {
  size_t total = membership_count(srv->members);
  *ids = xcalloc(total + 1, sizeof(uint64_t));
  *urls = xcalloc(total + 1, sizeof(char *));
  *n = 0;
  for (size_t i = 0; i < total; i++) {
    const member_t *m = membership_at(srv->members, i);
    if (m->id == srv->member_id || !m->n_peer_urls) continue;
    (*ids)[*n] = m->id;
    (*urls)[(*n)++] = m->peer_urls[0];
  }
}

/* ---- publish ---------------------------------------------------------------------------- */

static void publish_now(struct reconfig *r);

/* Publish retry timer. */
static void on_publish_retry(uv_timer_t *t) { publish_now(t->data); }

/* The attributes entry was applied (or failed): retry on failure, as etcd's publish does. */
static void publish_done(void *ctx, const apply_result_t *res) {
  struct reconfig *r = ctx;
  r->publishing = false;
  if (r->published || r->srv->stopping || res->err == CETCD_ESTOPPED) return;
  LOGW("msg=\"failed to publish local member to cluster through raft\" local-member-id=%016" PRIx64
       " error=\"%s\"",
       r->srv->member_id, cetcd_strerror(res->err));
  uv_timer_start(&r->publish_retry, on_publish_retry, PUBLISH_RETRY_MS, 0);
}

/* Proposes this member's name and client URLs. */
static void publish_now(struct reconfig *r) {
  server_t *srv = r->srv;
  if (r->published || r->publishing || srv->stopping) return;
  r->publishing = true;
  Cetcdinternal__MemberAttrRequest attr = CETCDINTERNAL__MEMBER_ATTR_REQUEST__INIT;
  attr.member_id = srv->member_id;
  attr.name = srv->cfg->name;
  attr.client_urls = srv->client_urls;
  attr.n_client_urls = srv->n_client_urls;
  Cetcdinternal__InternalRequest req = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  req.member_attr = &attr;
  server_propose(srv, &req, NULL, publish_done, r);
}

void reconfig_publish(server_t *srv) {
  struct reconfig *r = rc_of(srv);
  if (r) publish_now(r);
}

int reconfig_apply_attr(server_t *srv, const Cetcdinternal__MemberAttrRequest *req) {
  if (!srv->members) return 0;
  int rc =
      membership_set_attrs(srv->members, req->member_id, req->name, req->client_urls, req->n_client_urls);
  struct reconfig *r = rc_of(srv);
  if (rc || !r || req->member_id != srv->member_id || r->published) return rc;
  r->published = true;
  LOGI("msg=\"published local member to cluster through raft\" local-member-id=%016" PRIx64
       " local-member-attributes=\"{Name:%s ClientURLs:[%s]}\" cluster-id=%016" PRIx64,
       srv->member_id, req->name, req->n_client_urls ? req->client_urls[0] : "", srv->cluster_id);
  LOGI("msg=\"ready to serve client requests\"");
  return 0;
}

/* ---- peers' health ---------------------------------------------------------------------- */

/* The record of peer id, or NULL. */
static peer_seen_t *seen_of(struct reconfig *r, uint64_t id) {
  for (size_t i = 0; i < r->n_seen; i++)
    if (r->seen[i].id == id) return &r->seen[i];
  return NULL;
}

bool reconfig_heard(server_t *srv, uint64_t from) {
  struct reconfig *r = rc_of(srv);
  if (!r) return false;
  if (srv->members && membership_is_removed(srv->members, from)) return true;
  uint64_t now = uv_now(srv->loop);
  peer_seen_t *p = seen_of(r, from);
  if (!p) {
    if (r->n_seen == r->cap_seen) {
      r->cap_seen = r->cap_seen ? 2 * r->cap_seen : 8;
      r->seen = xrealloc(r->seen, r->cap_seen * sizeof(*r->seen));
    }
    p = &r->seen[r->n_seen++];
    *p = (peer_seen_t){.id = from, .since = now, .last = now};
  }
  if (now - p->last > PEER_DEAD_MS) p->since = now;
  p->last = now;
  return false;
}

/* etcd's transport.ActiveSince: when the current connection to id began, or 0. */
static uint64_t active_since(struct reconfig *r, uint64_t id) {
  peer_seen_t *p = seen_of(r, id);
  uint64_t now = uv_now(r->srv->loop);
  if (!p || now - p->last > PEER_DEAD_MS) return 0;
  return p->since ? p->since : 1;
}

/* True if id has been connected for at least HEALTH_INTERVAL_MS (self always is). */
static bool connected_long(struct reconfig *r, uint64_t id) {
  if (id == r->srv->member_id) return true;
  uint64_t since = active_since(r, id), now = uv_now(r->srv->loop);
  return since && since + HEALTH_INTERVAL_MS <= now;
}

/* ---- removal of this member ------------------------------------------------------------- */

void reconfig_removed(server_t *srv) {
  struct reconfig *r = rc_of(srv);
  if (!r || r->removed || srv->stopping) return;
  r->removed = true;
  LOGW("msg=\"server error\" error=\"the member has been permanently removed from the cluster\"");
  LOGW("msg=\"data-dir used by this member must be removed\"");
  server_stop(srv);
}

/* ---- apply ------------------------------------------------------------------------------ */

/* Rebuilds the peer transport's table from the membership (after the current Ready). */
static void peers_changed(server_t *srv) {
  if (srv->rn) raft_node_peers_changed(srv->rn);
}

/* etcd's ValidateConfigurationChange: a committed change that is no longer valid against
 * the applied membership (another change got in first, e.g. a second learner added through
 * a member that had not applied the first yet) changes nothing, on every member alike.
 * Returns 0 or the error its proposer gets. */
static int validate_conf_change(server_t *srv, const raft_conf_change_t *cc,
                                const Cetcdinternal__MemberRecord *rec) {
  if (membership_is_removed(srv->members, cc->node_id)) return CETCD_EMEMBERNOTFOUND;
  const member_t *m = membership_find(srv->members, cc->node_id);
  switch (cc->type) {
    case RAFT_CC_ADD_VOTER:
    case RAFT_CC_ADD_LEARNER:
      if (m) return CETCD_EMEMBEREXISTS;
      if (rec && membership_peer_url_used(srv->members, rec->peerurls, rec->n_peerurls, 0))
        return CETCD_EPEERURLEXISTS;
      if (cc->type == RAFT_CC_ADD_LEARNER && membership_learners(srv->members) + 1 > 1)
        return CETCD_ETOOMANYLEARNERS;
      return 0;
    case RAFT_CC_PROMOTE:
      if (!m) return CETCD_EMEMBERNOTFOUND;
      return m->learner ? 0 : CETCD_EMEMBERNOTLEARNER;
    case RAFT_CC_REMOVE_NODE:
      return m ? 0 : CETCD_EMEMBERNOTFOUND;
  }
  return 0;
}

int reconfig_apply_conf_change(server_t *srv, const uint8_t *data, size_t len, arena_t *a,
                               raft_conf_change_t *cc) {
  int rc = raft_conf_change_decode(data, len, a, cc);
  if (rc || !srv->members) return rc;
  Cetcdinternal__MemberRecord *rec =
      cc->context_len ? cetcdinternal__member_record__unpack(&a->pb, cc->context_len, cc->context) : NULL;
  if ((rc = validate_conf_change(srv, cc, rec)) != 0) {
    LOGW("msg=\"membership change rejected at apply\" local-member-id=%016" PRIx64 " peer-id=%016" PRIx64
         " error=\"%s\"",
         srv->member_id, cc->node_id, cetcd_strerror(rc));
    return rc;
  }
  switch (cc->type) {
    case RAFT_CC_ADD_VOTER:
    case RAFT_CC_ADD_LEARNER: {
      member_t m = {.id = cc->node_id, .learner = cc->type == RAFT_CC_ADD_LEARNER};
      if (rec) {
        m.peer_urls = rec->peerurls;
        m.n_peer_urls = rec->n_peerurls;
        m.name = rec->name;
        m.client_urls = rec->clienturls;
        m.n_client_urls = rec->n_clienturls;
      }
      rc = membership_put(srv->members, &m);
      LOGI("msg=\"added member\" cluster-id=%016" PRIx64 " local-member-id=%016" PRIx64
           " added-peer-id=%016" PRIx64 " added-peer-peer-urls=%s is-learner=%s",
           srv->cluster_id, srv->member_id, m.id, m.n_peer_urls ? m.peer_urls[0] : "",
           m.learner ? "true" : "false");
      peers_changed(srv);
      break;
    }
    case RAFT_CC_PROMOTE:
      rc = membership_promote(srv->members, cc->node_id);
      LOGI("msg=\"promote member\" cluster-id=%016" PRIx64 " local-member-id=%016" PRIx64
           " promoted-member-id=%016" PRIx64,
           srv->cluster_id, srv->member_id, cc->node_id);
      break;
    case RAFT_CC_REMOVE_NODE:
      rc = membership_remove(srv->members, cc->node_id);
      LOGI("msg=\"removed member\" cluster-id=%016" PRIx64 " local-member-id=%016" PRIx64
           " removed-remote-peer-id=%016" PRIx64,
           srv->cluster_id, srv->member_id, cc->node_id);
      if (cc->node_id == srv->member_id) {
        if (srv->rn) raft_node_self_removed(srv->rn);
      } else {
        peers_changed(srv);
      }
      break;
  }
  return rc;
}

int reconfig_apply_update(server_t *srv, const Etcdserverpb__MemberUpdateRequest *req) {
  if (!srv->members) return 0;
  int rc = membership_set_peer_urls(srv->members, req->id, req->peerurls, req->n_peerurls);
  LOGI("msg=\"updated member\" cluster-id=%016" PRIx64 " local-member-id=%016" PRIx64
       " updated-remote-peer-id=%016" PRIx64 " updated-remote-peer-urls=%s",
       srv->cluster_id, srv->member_id, req->id, req->n_peerurls ? req->peerurls[0] : "");
  if (req->id != srv->member_id) peers_changed(srv);
  return rc;
}

/* ---- checks (etcd's mayAddMember / mayRemoveMember / mayPromoteMember) ---------------- */

/* etcd's IsReadyToAddVotingMember / IsReadyToRemoveVotingMember / IsReadyToPromoteMember:
 * members that published themselves (started) must stay a quorum. extra is the number of
 * voters the change adds (1) or removes (-1, skipping id). */
static bool enough_started(server_t *srv, int extra, uint64_t skip) {
  size_t members = extra > 0 ? 1 : 0, started = 0;
  for (size_t i = 0; i < membership_count(srv->members); i++) {
    const member_t *m = membership_at(srv->members, i);
    if (m->learner || (extra < 0 && m->id == skip)) continue;
    members++;
    started += m->name && *m->name;
  }
  if (extra > 0 && skip) started++; /* promote: the learner counts as started */
  if (extra > 0 && !skip && started == 1 && members == 2) return true; /* restoring a 1-member cluster */
  return started >= members / 2 + 1;
}

/* etcd's isConnectedFullySince: every voter connected for the health interval. */
static bool connected_fully(struct reconfig *r) {
  server_t *srv = r->srv;
  for (size_t i = 0; i < membership_count(srv->members); i++) {
    const member_t *m = membership_at(srv->members, i);
    if (!m->learner && !connected_long(r, m->id)) return false;
  }
  return true;
}

/* The strict checks of a removal (etcd's mayRemoveMember). */
static int may_remove(struct reconfig *r, uint64_t id) {
  server_t *srv = r->srv;
  if (!srv->cfg->strict_reconfig_check) return 0;
  const member_t *target = membership_find(srv->members, id);
  if (target && target->learner) return 0;
  if (!enough_started(srv, -1, id)) return CETCD_ENOTENOUGHSTARTED;
  /* a down member (or one the transport does not know) is safe to remove */
  if (id != srv->member_id && (!target || !active_since(r, id))) return 0;
  size_t voters = 0, active = 0;
  for (size_t i = 0; i < membership_count(srv->members); i++) {
    const member_t *m = membership_at(srv->members, i);
    if (m->learner) continue;
    voters++;
    active += connected_long(r, m->id);
  }
  if (active < 1 + 1 + (voters - 1) / 2) return CETCD_EUNHEALTHY;
  return 0;
}

/* ---- proposals -------------------------------------------------------------------------- */

typedef struct change {
  reconfig_cb cb;
  void *ctx;
} change_t;

/* A conf change or update was applied or failed. */
static void change_done(void *ctx, int err) {
  change_t *c = ctx;
  c->cb(c->ctx, err);
  free(c);
}

/* A normal entry (update) was applied or failed. */
static void update_done(void *ctx, const apply_result_t *res) { change_done(ctx, res->err); }

/* Proposes a conf change about member (context: its record). */
static void propose_cc(server_t *srv, raft_cc_type_t type, uint64_t id,
                       const Cetcdinternal__MemberRecord *rec, reconfig_cb cb, void *ctx) {
  uint8_t *buf = NULL;
  size_t len = 0;
  if (rec) {
    len = cetcdinternal__member_record__get_packed_size(rec);
    buf = xmalloc(len ? len : 1);
    cetcdinternal__member_record__pack(rec, buf);
  }
  raft_conf_change_t cc = {.type = type, .node_id = id, .context = buf, .context_len = len};
  change_t *c = xmalloc(sizeof(*c));
  *c = (change_t){.cb = cb, .ctx = ctx};
  raft_node_propose_conf(srv->rn, &cc, change_done, c);
  free(buf);
}

/* Checks peer URLs as etcd's types.NewURLs does and copies their normalized form into
 * out (strings in a). Returns 0 or CETCD_EMEMBERBADURLS. */
static int check_urls(char *const *urls, size_t n, arena_t *a, char ***out) {
  if (n == 0) return CETCD_EMEMBERBADURLS;
  char **v = arena_alloc(a, n * sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    url_t u;
    char err[256];
    if (urls_parse_one(urls[i], &u, err, sizeof(err))) return CETCD_EMEMBERBADURLS;
    size_t l = strlen(u.str);
    v[i] = arena_memdup(a, u.str, l + 1);
    urls_free_one(&u);
  }
  *out = v;
  return 0;
}

void reconfig_member_add(server_t *srv, char *const *peer_urls, size_t n, bool learner, uint64_t *id,
                         reconfig_cb cb, void *ctx) {
  struct reconfig *r = rc_of(srv);
  if (!r || !srv->rn) {
    cb(ctx, CETCD_EUNAVAILABLE);
    return;
  }
  arena_t a;
  arena_init(&a);
  char **urls;
  int err = check_urls(peer_urls, n, &a, &urls);
  int64_t now = (int64_t)time(NULL);
  if (!err) *id = ids_member_id(urls, n, "", &now);
  if (!err && srv->cfg->strict_reconfig_check) { /* the quorum check is for voters only */
    if (!learner && !enough_started(srv, 1, 0))
      err = CETCD_ENOTENOUGHSTARTED;
    else if (!connected_fully(r))
      err = CETCD_EUNHEALTHY;
  }
  /* Whether the member exists, its URLs are free and a learner slot is open is decided
   * when the change is applied (validate_conf_change), as etcd does: this member's applied
   * state may be behind a change another member just made. */
  if (err) {
    arena_destroy(&a);
    cb(ctx, err);
    return;
  }
  Cetcdinternal__MemberRecord rec = CETCDINTERNAL__MEMBER_RECORD__INIT;
  rec.id = *id;
  rec.peerurls = urls;
  rec.n_peerurls = n;
  rec.islearner = learner;
  propose_cc(srv, learner ? RAFT_CC_ADD_LEARNER : RAFT_CC_ADD_VOTER, *id, &rec, cb, ctx);
  arena_destroy(&a);
}

void reconfig_member_remove(server_t *srv, uint64_t id, reconfig_cb cb, void *ctx) {
  struct reconfig *r = rc_of(srv);
  if (!r || !srv->rn) {
    cb(ctx, CETCD_EUNAVAILABLE);
    return;
  }
  int err = may_remove(r, id); /* whether the member exists is decided when applied */
  if (err) {
    cb(ctx, err);
    return;
  }
  propose_cc(srv, RAFT_CC_REMOVE_NODE, id, NULL, cb, ctx);
}

void reconfig_member_update(server_t *srv, uint64_t id, char *const *peer_urls, size_t n, reconfig_cb cb,
                            void *ctx) {
  if (!rc_of(srv) || !srv->rn) {
    cb(ctx, CETCD_EUNAVAILABLE);
    return;
  }
  arena_t a;
  arena_init(&a);
  char **urls;
  int err = check_urls(peer_urls, n, &a, &urls);
  if (!err && (membership_is_removed(srv->members, id) || !membership_find(srv->members, id)))
    err = CETCD_EMEMBERNOTFOUND;
  if (!err && membership_peer_url_used(srv->members, urls, n, id)) err = CETCD_EPEERURLEXISTS;
  if (err) {
    arena_destroy(&a);
    cb(ctx, err);
    return;
  }
  Etcdserverpb__MemberUpdateRequest up = ETCDSERVERPB__MEMBER_UPDATE_REQUEST__INIT;
  up.id = id;
  up.peerurls = urls;
  up.n_peerurls = n;
  Cetcdinternal__InternalRequest req = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  req.member_update = &up;
  change_t *c = xmalloc(sizeof(*c));
  *c = (change_t){.cb = cb, .ctx = ctx};
  server_propose(srv, &req, NULL, update_done, c);
  arena_destroy(&a);
}

void reconfig_member_promote(server_t *srv, uint64_t id, reconfig_cb cb, void *ctx) {
  if (!rc_of(srv) || !srv->rn) {
    cb(ctx, CETCD_EUNAVAILABLE);
    return;
  }
  /* etcd's isLearnerReady: only the leader knows the learner's progress */
  uint64_t match = 0, lead_match = 0;
  int err = raft_node_match(srv->rn, id, &match, &lead_match);
  if (err == CETCD_ENOTLEADER) {
    cb(ctx, err);
    return;
  }
  /* an id raft does not know is reported by the membership checks below */
  err = err == 0 && (double)match < (double)lead_match * READY_PERCENT ? CETCD_ELEARNERNOTREADY : 0;
  if (!err && srv->cfg->strict_reconfig_check && !enough_started(srv, 1, id)) err = CETCD_ENOTENOUGHSTARTED;
  const member_t *m = membership_find(srv->members, id);
  if (!err && (!m || membership_is_removed(srv->members, id))) err = CETCD_EMEMBERNOTFOUND;
  if (!err && !m->learner) err = CETCD_EMEMBERNOTLEARNER;
  if (err) {
    cb(ctx, err);
    return;
  }
  Cetcdinternal__MemberRecord rec = CETCDINTERNAL__MEMBER_RECORD__INIT;
  rec.id = id;
  rec.peerurls = m->peer_urls;
  rec.n_peerurls = m->n_peer_urls;
  propose_cc(srv, RAFT_CC_PROMOTE, id, &rec, cb, ctx);
}

int reconfig_learner_gate(server_t *srv, const char *path, const ProtobufCMessage *msg,
                          const char **message) {
  if (!reconfig_is_learner(srv)) return 0;
  if (!strcmp(path, "/etcdserverpb.Maintenance/Status")) return 0;
  if (!strcmp(path, "/etcdserverpb.KV/Range") && msg &&
      ((const Etcdserverpb__RangeRequest *)msg)->serializable)
    return 0;
  *message = "etcdserver: rpc not supported for learner";
  return GRPC_UNAVAILABLE;
}

bool reconfig_is_learner(server_t *srv) {
  if (!srv->members || !srv->rn) return false;
  const member_t *m = membership_find(srv->members, srv->member_id);
  return m && m->learner;
}
