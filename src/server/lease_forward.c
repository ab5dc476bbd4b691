/* Lease requests answered by the leader's lessor, from any member (see lease_forward.h). */
#include "server/lease_forward.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "cetcd/errors.h"
#include "lease/lease.h"
#include "raftpb.pb-c.h"

enum { OP_RENEW = 1, OP_TTL = 2 };

/* One request waiting for the primary's answer. */
typedef struct fwd_req {
  struct fwd_req *next;
  uint64_t req;   /* id echoed by the answer */
  uint32_t op;    /* OP_RENEW or OP_TTL */
  int64_t id;     /* lease */
  bool keys;      /* OP_TTL: list keys */
  arena_t *arena; /* OP_TTL: where the keys go */
  lease_fwd_cb cb;
  void *ctx;
  uint64_t deadline;  /* fail after this */
  uint64_t resend_at; /* send (again) at or after this; 0 = now */
  uint64_t sent_to;   /* the leader it was last sent to, 0 if none */
} fwd_req_t;

struct lease_fwd {
  uint64_t self;
  lessor_t *le;
  uint64_t timeout_ms, retry_ms;
  lease_fwd_env_t env;
  fwd_req_t *reqs;
  uint64_t next_req;
  buf_t out; /* encoding scratch */
};

lease_fwd_t *lease_forward_new(uint64_t self_id, lessor_t *le, uint64_t timeout_ms, uint64_t retry_ms,
                               const lease_fwd_env_t *env) {
  lease_fwd_t *lf = xcalloc(1, sizeof(*lf));
  lf->self = self_id;
  lf->le = le;
  lf->timeout_ms = timeout_ms;
  lf->retry_ms = retry_ms ? retry_ms : 100;
  lf->env = *env;
  return lf;
}

/* Completes r with ans and frees it (r must be unlinked already). */
static void finish(fwd_req_t *r, const lease_fwd_answer_t *ans) {
  r->cb(r->ctx, ans);
  free(r);
}

void lease_forward_free(lease_fwd_t *lf) {
  if (!lf) return;
  fwd_req_t *r = lf->reqs;
  lf->reqs = NULL;
  while (r) {
    fwd_req_t *next = r->next;
    lease_fwd_answer_t a = {.err = CETCD_ESTOPPED};
    finish(r, &a);
    r = next;
  }
  buf_free(&lf->out);
  free(lf);
}

/* Answers a request from this member's lessor, which must be primary. Keys are copied into
 * arena a (OP_TTL with keys). */
static void answer_locally(lease_fwd_t *lf, uint32_t op, int64_t id, bool keys, arena_t *a,
                           lease_fwd_answer_t *ans) {
  memset(ans, 0, sizeof(*ans));
  if (op == OP_RENEW) {
    ans->err = lease_renew(lf->le, id, &ans->ttl);
    return;
  }
  lease_info_t info;
  ans->err = lease_lookup(lf->le, id, &info);
  if (ans->err) return;
  ans->ttl = info.ttl_remaining;
  ans->granted_ttl = info.granted_ttl;
  if (keys && a) lease_keys(lf->le, id, a, &ans->keys, &ans->n_keys);
}

/* True when this member can answer lease requests itself. */
static bool is_primary(lease_fwd_t *lf) {
  return lease_is_primary(lf->le) && lf->env.leader(lf->env.ctx) == lf->self;
}

bool lease_forward_can_answer(lease_fwd_t *lf) { return is_primary(lf); }

/* Sends r to the current leader if one other than this member is known. */
static void send_req(lease_fwd_t *lf, fwd_req_t *r, uint64_t leader, uint64_t now) {
  Cetcdraftpb__LeaseForward m = CETCDRAFTPB__LEASE_FORWARD__INIT;
  m.req = r->req;
  m.from = lf->self;
  m.op = r->op;
  m.id = r->id;
  m.keys = r->keys;
  size_t n = cetcdraftpb__lease_forward__get_packed_size(&m);
  buf_reset(&lf->out);
  buf_reserve(&lf->out, n);
  cetcdraftpb__lease_forward__pack(&m, lf->out.data);
  lf->env.send(lf->env.ctx, leader, lf->out.data, n);
  r->sent_to = leader;
  r->resend_at = now + lf->retry_ms;
}

/* Moves r forward: answered here when primary, else sent to the leader when one is known
 * and the resend time has come. Returns true if r was completed (and freed). */
static bool dispatch(lease_fwd_t *lf, fwd_req_t *r, uint64_t now) {
  if (is_primary(lf)) {
    lease_fwd_answer_t a;
    answer_locally(lf, r->op, r->id, r->keys, r->arena, &a);
    finish(r, &a);
    return true;
  }
  uint64_t leader = lf->env.leader(lf->env.ctx);
  if (leader != 0 && leader != lf->self && (leader != r->sent_to || now >= r->resend_at))
    send_req(lf, r, leader, now);
  return false;
}

/* Queues a request that this member cannot answer now, and sends it if it can. */
static void enqueue(lease_fwd_t *lf, uint32_t op, int64_t id, bool keys, arena_t *a, lease_fwd_cb cb,
                    void *ctx) {
  uint64_t now = lf->env.now_ms(lf->env.ctx);
  fwd_req_t *r = xcalloc(1, sizeof(*r));
  r->req = ++lf->next_req;
  r->op = op;
  r->id = id;
  r->keys = keys;
  r->arena = a;
  r->cb = cb;
  r->ctx = ctx;
  r->deadline = now + lf->timeout_ms;
  r->next = lf->reqs;
  lf->reqs = r;
  dispatch(lf, r, now);
}

void lease_forward_renew(lease_fwd_t *lf, int64_t id, lease_fwd_cb cb, void *ctx) {
  if (is_primary(lf)) {
    lease_fwd_answer_t a;
    answer_locally(lf, OP_RENEW, id, false, NULL, &a);
    cb(ctx, &a);
    return;
  }
  enqueue(lf, OP_RENEW, id, false, NULL, cb, ctx);
}

void lease_forward_ttl(lease_fwd_t *lf, int64_t id, bool keys, arena_t *a, lease_fwd_cb cb, void *ctx) {
  if (is_primary(lf)) {
    lease_fwd_answer_t ans;
    answer_locally(lf, OP_TTL, id, keys, a, &ans);
    cb(ctx, &ans);
    return;
  }
  enqueue(lf, OP_TTL, id, keys, a, cb, ctx);
}

/* Leader side: answers a forwarded request (refuses with CETCD_ENOLEADER unless primary). */
static void serve_peer(lease_fwd_t *lf, const Cetcdraftpb__LeaseForward *q) {
  arena_t a;
  arena_init(&a);
  lease_fwd_answer_t ans = {.err = CETCD_ENOLEADER};
  if (is_primary(lf)) answer_locally(lf, q->op, q->id, q->keys, &a, &ans);
  Cetcdraftpb__LeaseForward m = CETCDRAFTPB__LEASE_FORWARD__INIT;
  m.req = q->req;
  m.from = lf->self;
  m.op = q->op;
  m.id = q->id;
  m.answer = true;
  m.err = ans.err;
  m.ttl = ans.ttl;
  m.granted_ttl = ans.granted_ttl;
  m.key_list = ans.keys;
  m.n_key_list = ans.n_keys;
  size_t n = cetcdraftpb__lease_forward__get_packed_size(&m);
  buf_reset(&lf->out);
  buf_reserve(&lf->out, n);
  cetcdraftpb__lease_forward__pack(&m, lf->out.data);
  lf->env.send(lf->env.ctx, q->from, lf->out.data, n);
  arena_destroy(&a);
}

/* Requester side: the leader answered request q->req. */
static void take_answer(lease_fwd_t *lf, const Cetcdraftpb__LeaseForward *q) {
  for (fwd_req_t **pp = &lf->reqs; *pp; pp = &(*pp)->next) {
    fwd_req_t *r = *pp;
    if (r->req != q->req) continue;
    if (q->err == CETCD_ENOLEADER) {
      /* that member is not (or not yet) the primary: ask again a little later */
      r->sent_to = q->from;
      r->resend_at = lf->env.now_ms(lf->env.ctx) + lf->retry_ms;
      return;
    }
    *pp = r->next;
    lease_fwd_answer_t ans = {.err = q->err, .ttl = q->ttl, .granted_ttl = q->granted_ttl};
    if (r->op == OP_TTL && r->keys && r->arena && q->n_key_list) {
      ans.keys = arena_alloc(r->arena, q->n_key_list * sizeof(*ans.keys));
      for (size_t i = 0; i < q->n_key_list; i++) {
        ans.keys[i].len = q->key_list[i].len;
        ans.keys[i].data = arena_alloc(r->arena, q->key_list[i].len ? q->key_list[i].len : 1);
        if (q->key_list[i].len) memcpy(ans.keys[i].data, q->key_list[i].data, q->key_list[i].len);
      }
      ans.n_keys = q->n_key_list;
    }
    finish(r, &ans);
    return;
  }
  /* an answer to a request that timed out meanwhile: nothing waits for it */
}

void lease_forward_on_message(lease_fwd_t *lf, const ProtobufCMessage *msg) {
  const Cetcdraftpb__LeaseForward *q = (const Cetcdraftpb__LeaseForward *)msg;
  if (q->op != OP_RENEW && q->op != OP_TTL) return;
  if (q->answer)
    take_answer(lf, q);
  else
    serve_peer(lf, q);
}

/* Dispatches every waiting request and fails those past their deadline. */
static void sweep(lease_fwd_t *lf) {
  uint64_t now = lf->env.now_ms(lf->env.ctx);
  fwd_req_t **pp = &lf->reqs;
  while (*pp) {
    fwd_req_t *r = *pp;
    if (now >= r->deadline) {
      *pp = r->next;
      lease_fwd_answer_t a = {.err = lf->env.leader(lf->env.ctx) ? CETCD_ETIMEOUT : CETCD_ENOLEADER};
      finish(r, &a);
      continue;
    }
    *pp = r->next; /* unlinked while dispatching: it may complete and be freed */
    if (dispatch(lf, r, now)) continue;
    r->next = *pp;
    *pp = r;
    pp = &r->next;
  }
}

void lease_forward_kick(lease_fwd_t *lf) { sweep(lf); }

void lease_forward_tick(lease_fwd_t *lf) { sweep(lf); }

size_t lease_forward_pending(const lease_fwd_t *lf) {
  size_t n = 0;
  for (const fwd_req_t *r = lf->reqs; r; r = r->next) n++;
  return n;
}
