/* v3electionpb.Election: server-side leader election (etcd's v3election service over the
 * Election recipe). Candidates are keys "<name>/<lease hex>"; the leader is the oldest.
 * Campaign waits by watching its predecessor only, so waiting consumes no revisions. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/recipe.h"
#include "auth/auth.h"
#include "base/alloc.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"
#include "v3election.pb-c.h"
#include "watch/watch.h"

static const char missing_leader[] = "\"leader\" field must be provided";

/* Nothing to report when a best-effort cleanup write finishes. */
static void ignore_result(void *ctx, const apply_result_t *res) {
  (void)ctx;
  (void)res;
}

/* Builds "<name>/" in the arena. */
static uint8_t *make_prefix(arena_t *a, const ProtobufCBinaryData *name, size_t *plen) {
  uint8_t *p = arena_alloc(a, name->len + 2);
  memcpy(p, name->data, name->len);
  p[name->len] = '/';
  *plen = name->len + 1;
  return p;
}

/* A header with ids filled in and the given revision. */
static Etcdserverpb__ResponseHeader *header_at(grpc_call_t *call, int64_t rev) {
  Etcdserverpb__ResponseHeader *h = arena_alloc(grpc_call_arena(call), sizeof(*h));
  etcdserverpb__response_header__init(h);
  h->revision = rev;
  return api_header(call, h);
}

/* ---- Campaign ----------------------------------------------------------------------- */

typedef struct campaign {
  grpc_call_t *call;
  api_ctx_t *api; /* the call's */
  V3electionpb__LeaderKey leader;
  uint8_t *prefix;
  size_t plen;
  uint8_t *value;
  size_t vlen;
  recipe_wait_t *wait;
  char *user; /* the caller's token user (auth), or NULL */
  bool in_flight;
  bool cancelled;
} campaign_t;

/* Runs a proposal as user (auth), at the store's revision now. */
static void as_user(api_ctx_t *api, Cetcdinternal__InternalRequest *ir, char *user) {
  ir->auth_user = user;
  ir->auth_revision = user ? auth_revision(api->auth) : 0;
}

/* Deletes the candidate key (the campaigner gave up). */
static void campaign_release(campaign_t *c) {
  arena_t a;
  arena_init(&a);
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.delete_range = recipe_op_delete(&a, c->leader.key.data, c->leader.key.len)->request_delete_range;
  as_user(c->api, &ir, c->user);
  server_propose(c->api->srv, &ir, NULL, ignore_result, NULL);
  arena_destroy(&a);
}

/* Answers Campaign with the leader key. */
static void campaign_reply(campaign_t *c, int64_t rev) {
  V3electionpb__CampaignResponse resp = V3ELECTIONPB__CAMPAIGN_RESPONSE__INIT;
  resp.header = header_at(c->call, rev);
  resp.leader = &c->leader;
  api_reply(c->call, &resp.base);
}

/* Every older candidate is gone: we lead if our key is still there. */
static void campaign_waited(void *ctx, int err, int64_t rev) {
  campaign_t *c = ctx;
  c->wait = NULL;
  if (err) {
    campaign_release(c);
    api_finish_error(c->call, err);
    return;
  }
  Mvccpb__KeyValue *kv = NULL;
  int64_t now = 0;
  int rc =
      recipe_read_key(c->api, grpc_call_arena(c->call), c->leader.key.data, c->leader.key.len, &kv, &now);
  if (rc)
    api_finish_error(c->call, rc);
  else if (!kv || kv->create_revision != c->leader.rev)
    grpc_call_finish(c->call, GRPC_UNKNOWN, "session: expired");
  else
    campaign_reply(c, rev);
}

/* Waits for older candidates, or answers at once when there are none. */
static void campaign_wait(campaign_t *c, int64_t rev) {
  if (c->cancelled) {
    campaign_release(c);
    grpc_call_finish(c->call, GRPC_CANCELLED, "context canceled");
    return;
  }
  c->wait = recipe_wait_deletes(c->api, c->prefix, c->plen, c->leader.rev - 1, campaign_waited, c);
  (void)rev;
}

/* The value of an existing candidate key was updated (re-campaign with a new value). */
static void campaign_proclaimed(void *ctx, const apply_result_t *res) {
  campaign_t *c = ctx;
  c->in_flight = false;
  if (res->err) {
    api_finish_error(c->call, res->err);
    return;
  }
  campaign_wait(c, res->txn->header->revision);
}

/* The create-or-get txn was applied. */
static void campaign_txn(void *ctx, const apply_result_t *res) {
  campaign_t *c = ctx;
  c->in_flight = false;
  if (res->err) {
    api_finish_error(c->call, res->err);
    return;
  }
  Etcdserverpb__TxnResponse *t = res->txn;
  c->leader.rev = t->header->revision;
  if (!t->succeeded) {
    Etcdserverpb__RangeResponse *mine = t->n_responses ? t->responses[0]->response_range : NULL;
    if (!mine || !mine->n_kvs) {
      api_finish_error(c->call, CETCD_EINVAL);
      return;
    }
    Mvccpb__KeyValue *kv = mine->kvs[0];
    c->leader.rev = kv->create_revision;
    if (!c->cancelled && (kv->value.len != c->vlen || memcmp(kv->value.data, c->value, c->vlen))) {
      /* etcd's Campaign proclaims the new value when the key already exists */
      arena_t *a = grpc_call_arena(c->call);
      Etcdserverpb__Compare *cmp[] = {
          recipe_cmp_create(a, c->leader.key.data, c->leader.key.len, c->leader.rev)};
      Etcdserverpb__RequestOp *ops[] = {
          recipe_op_put(a, c->leader.key.data, c->leader.key.len, c->value, c->vlen, 0, true)};
      Etcdserverpb__TxnRequest *txn = arena_alloc(a, sizeof(*txn));
      etcdserverpb__txn_request__init(txn);
      txn->compare = cmp;
      txn->n_compare = 1;
      txn->success = ops;
      txn->n_success = 1;
      Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
      ir.txn = txn;
      as_user(c->api, &ir, c->user);
      c->in_flight = true;
      server_propose(c->api->srv, &ir, a, campaign_proclaimed, c);
      return;
    }
  }
  campaign_wait(c, t->header->revision);
}

/* Campaign(name, lease, value): become a candidate and wait to lead. */
static void el_campaign(grpc_call_t *call, ProtobufCMessage *m) {
  V3electionpb__CampaignRequest *req = (V3electionpb__CampaignRequest *)m;
  arena_t *a = grpc_call_arena(call);
  campaign_t *c = arena_zalloc(a, sizeof(*c));
  c->call = call;
  c->api = api_ctx(call);
  grpc_call_set_user(call, c);
  v3electionpb__leader_key__init(&c->leader);
  c->leader.name = req->name;
  c->leader.lease = req->lease;
  c->prefix = make_prefix(a, &req->name, &c->plen);
  c->leader.key.len = recipe_waiter_key(a, req->name.data, req->name.len, req->lease, &c->leader.key.data);
  c->value = req->value.data;
  c->vlen = req->value.len;
  Etcdserverpb__Compare *cmp[] = {recipe_cmp_create(a, c->leader.key.data, c->leader.key.len, 0)};
  Etcdserverpb__RequestOp *success[] = {
      recipe_op_put(a, c->leader.key.data, c->leader.key.len, c->value, c->vlen, req->lease, false)};
  Etcdserverpb__RequestOp *failure[] = {recipe_op_get(a, c->leader.key.data, c->leader.key.len)};
  Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
  txn.compare = cmp;
  txn.n_compare = 1;
  txn.success = success;
  txn.n_success = 1;
  txn.failure = failure;
  txn.n_failure = 1;
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.txn = &txn;
  int rc = api_auth_stamp(call, &ir); /* runs as the caller, as etcd's v3election client does */
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  c->user = *ir.auth_user ? ir.auth_user : NULL;
  c->in_flight = true;
  server_propose(c->api->srv, &ir, a, campaign_txn, c);
}

/* The campaigner went away: stop waiting and withdraw the candidacy. */
static void el_campaign_cancel(grpc_call_t *call) {
  campaign_t *c = grpc_call_user(call);
  if (!c) return;
  c->cancelled = true;
  if (c->in_flight) return; /* the txn callback releases and finishes */
  if (c->wait) {
    recipe_wait_cancel(c->wait);
    c->wait = NULL;
    campaign_release(c);
    grpc_call_finish(call, GRPC_CANCELLED, "context canceled");
  }
}

/* ---- Proclaim / Resign: guarded writes on the leader key ----------------------------- */

/* Proclaim applied: not leader when the guard failed. */
static void proclaim_done(void *ctx, const apply_result_t *res) {
  grpc_call_t *call = ctx;
  if (res->err) {
    api_finish_error(call, res->err);
    return;
  }
  if (!res->txn->succeeded) {
    grpc_call_finish(call, GRPC_UNKNOWN, "election: not leader");
    return;
  }
  V3electionpb__ProclaimResponse resp = V3ELECTIONPB__PROCLAIM_RESPONSE__INIT;
  resp.header = api_header(call, res->txn->header);
  api_reply(call, &resp.base);
}

/* Resign applied (a no-op when no longer leader, like etcd). */
static void resign_done(void *ctx, const apply_result_t *res) {
  grpc_call_t *call = ctx;
  if (res->err) {
    api_finish_error(call, res->err);
    return;
  }
  V3electionpb__ResignResponse resp = V3ELECTIONPB__RESIGN_RESPONSE__INIT;
  resp.header = api_header(call, res->txn->header);
  api_reply(call, &resp.base);
}

/* Proposes "if the leader key still has create revision rev then op". */
static void guarded(grpc_call_t *call, V3electionpb__LeaderKey *l, Etcdserverpb__RequestOp *op,
                    propose_cb cb) {
  arena_t *a = grpc_call_arena(call);
  Etcdserverpb__Compare *cmp[] = {recipe_cmp_create(a, l->key.data, l->key.len, l->rev)};
  Etcdserverpb__RequestOp *ops[] = {op};
  Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
  txn.compare = cmp;
  txn.n_compare = 1;
  txn.success = ops;
  txn.n_success = 1;
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.txn = &txn;
  int rc = api_auth_stamp(call, &ir);
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  server_propose(api_ctx(call)->srv, &ir, a, cb, call);
}

/* Proclaim(leader, value): update the leader's value if it still leads. */
static void el_proclaim(grpc_call_t *call, ProtobufCMessage *m) {
  V3electionpb__ProclaimRequest *req = (V3electionpb__ProclaimRequest *)m;
  if (!req->leader) {
    grpc_call_finish(call, GRPC_UNKNOWN, missing_leader);
    return;
  }
  V3electionpb__LeaderKey *l = req->leader;
  guarded(
      call, l,
      recipe_op_put(grpc_call_arena(call), l->key.data, l->key.len, req->value.data, req->value.len, 0, true),
      proclaim_done);
}

/* Resign(leader): delete the leader key if it still leads. */
static void el_resign(grpc_call_t *call, ProtobufCMessage *m) {
  V3electionpb__ResignRequest *req = (V3electionpb__ResignRequest *)m;
  if (!req->leader) {
    grpc_call_finish(call, GRPC_UNKNOWN, missing_leader);
    return;
  }
  V3electionpb__LeaderKey *l = req->leader;
  guarded(call, l, recipe_op_delete(grpc_call_arena(call), l->key.data, l->key.len), resign_done);
}

/* ---- Leader / Observe --------------------------------------------------------------- */

/* Read access to the election's keys (etcd's recipe reads them as the caller). */
static int prefix_readable(grpc_call_t *call, const uint8_t *prefix, size_t plen) {
  uint8_t *end = arena_alloc(grpc_call_arena(call), plen + 1);
  ProtobufCBinaryData k = {plen, (uint8_t *)prefix}, e = {recipe_prefix_end(prefix, plen, end), end};
  return api_auth_range(call, &k, &e);
}

/* Leader(name): the oldest candidate's key-value. */
static void el_leader(grpc_call_t *call, ProtobufCMessage *m) {
  V3electionpb__LeaderRequest *req = (V3electionpb__LeaderRequest *)m;
  arena_t *a = grpc_call_arena(call);
  size_t plen;
  uint8_t *prefix = make_prefix(a, &req->name, &plen);
  Mvccpb__KeyValue *kv = NULL;
  int64_t rev = 0;
  int rc = prefix_readable(call, prefix, plen);
  if (rc == 0) rc = recipe_read_first(api_ctx(call), a, prefix, plen, &kv, &rev);
  if (rc) {
    api_finish_error(call, rc);
    return;
  }
  if (!kv) {
    grpc_call_finish(call, GRPC_UNKNOWN, "election: no leader");
    return;
  }
  V3electionpb__LeaderResponse resp = V3ELECTIONPB__LEADER_RESPONSE__INIT;
  resp.header = header_at(call, rev);
  resp.kv = kv;
  api_reply(call, &resp.base);
}

typedef struct observe {
  grpc_call_t *call;
  api_ctx_t *api; /* the call's */
  uint8_t *prefix;
  size_t plen;
  watcher_t *watcher;
  uv_timer_t step;               /* re-reads the leader outside watch callbacks */
  int64_t last_create, last_mod; /* the leader last reported (0 = none) */
  bool closing;
} observe_t;

/* Frees the observer once its timer has closed, then ends the call. */
static void observe_free(uv_handle_t *h) {
  observe_t *o = h->data;
  grpc_call_t *call = o->call;
  free(o);
  grpc_call_finish(call, GRPC_CANCELLED, "context canceled");
}

/* Reports the leader when it changed (a new leader or a new value). */
static void observe_check(uv_timer_t *t) {
  observe_t *o = t->data;
  if (o->closing) return;
  arena_t a;
  arena_init(&a);
  Mvccpb__KeyValue *kv = NULL;
  int64_t rev = 0;
  if (recipe_read_first(o->api, &a, o->prefix, o->plen, &kv, &rev) == 0 && kv &&
      (kv->create_revision != o->last_create || kv->mod_revision != o->last_mod)) {
    o->last_create = kv->create_revision;
    o->last_mod = kv->mod_revision;
    V3electionpb__LeaderResponse resp = V3ELECTIONPB__LEADER_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    h.revision = rev;
    resp.header = api_header(o->call, &h);
    resp.kv = kv;
    grpc_call_send(o->call, &resp.base);
  } else if (kv == NULL) {
    o->last_create = o->last_mod = 0;
  }
  arena_destroy(&a);
}

/* Any change under the prefix may change the leader: re-check soon. */
static void observe_events(void *ctx, watcher_t *w, const Mvccpb__Event *const *events, size_t n,
                           int64_t rev) {
  observe_t *o = ctx;
  (void)w;
  (void)events;
  (void)n;
  (void)rev;
  if (!o->closing) uv_timer_start(&o->step, observe_check, 0, 0);
}

/* Observe started below the compacted revision cannot happen (we start at now); re-read. */
static void observe_compacted(void *ctx, watcher_t *w, int64_t compact_rev) {
  observe_t *o = ctx;
  (void)w;
  (void)compact_rev;
  o->watcher = NULL;
  if (!o->closing) uv_timer_start(&o->step, observe_check, 0, 0);
}

/* Observe(name): streams the leader now and at every change until the client leaves. */
static void el_observe(grpc_call_t *call, ProtobufCMessage *m) {
  V3electionpb__LeaderRequest *req = (V3electionpb__LeaderRequest *)m;
  api_ctx_t *api = api_ctx(call);
  size_t plen;
  uint8_t *prefix = make_prefix(grpc_call_arena(call), &req->name, &plen);
  int arc = prefix_readable(call, prefix, plen);
  if (arc) {
    api_finish_error(call, arc);
    return;
  }
  observe_t *o = xcalloc(1, sizeof(*o));
  o->call = call;
  o->api = api;
  o->prefix = make_prefix(grpc_call_arena(call), &req->name, &o->plen);
  grpc_call_set_user(call, o);
  uv_timer_init(api->loop, &o->step);
  o->step.data = o;
  uint8_t *end = arena_alloc(grpc_call_arena(call), o->plen + 1);
  size_t elen = recipe_prefix_end(o->prefix, o->plen, end);
  watch_opts_t wo = {.key = o->prefix,
                     .key_len = o->plen,
                     .range_end = end,
                     .range_end_len = elen,
                     .start_rev = mvcc_rev(api->mvcc) + 1,
                     .on_events = observe_events,
                     .on_compacted = observe_compacted,
                     .ctx = o};
  o->watcher = watch_add(api->watch, &wo);
  uv_timer_start(&o->step, observe_check, 0, 0);
}

/* The observer left: stop watching and end the call once the timer has closed. */
static void el_observe_cancel(grpc_call_t *call) {
  observe_t *o = grpc_call_user(call);
  if (!o || o->closing) return;
  o->closing = true;
  if (o->watcher) watch_cancel(o->watcher);
  o->watcher = NULL;
  uv_timer_stop(&o->step);
  uv_close((uv_handle_t *)&o->step, observe_free);
}

const grpc_method_t api_election_methods[] = {
    {"/v3electionpb.Election/Campaign", GRPC_UNARY, &v3electionpb__campaign_request__descriptor, el_campaign,
     NULL, el_campaign_cancel},
    {"/v3electionpb.Election/Proclaim", GRPC_UNARY, &v3electionpb__proclaim_request__descriptor, el_proclaim,
     NULL, NULL},
    {"/v3electionpb.Election/Leader", GRPC_UNARY, &v3electionpb__leader_request__descriptor, el_leader, NULL,
     NULL},
    {"/v3electionpb.Election/Observe", GRPC_SERVER_STREAM, &v3electionpb__leader_request__descriptor,
     el_observe, NULL, el_observe_cancel},
    {"/v3electionpb.Election/Resign", GRPC_UNARY, &v3electionpb__resign_request__descriptor, el_resign, NULL,
     NULL},
};
const size_t api_election_methods_len = sizeof(api_election_methods) / sizeof(*api_election_methods);
