/* The outbox and the Ready loop.
 *
 * Messages are built into an outbox whose arrays are reused from one Ready to the next
 * (no allocation per heartbeat once warmed up). raft_ready swaps the outbox with the handed
 * one, so inputs may keep arriving until raft_advance. Memory that messages or a Ready may
 * still point at (entry data of truncated/compacted entries, replaced snapshots, copies of
 * forwarded proposals) goes to a graveyard freed at the second advance after it was dropped,
 * when neither the outstanding Ready nor the outbox can refer to it. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "raft/raft_int.h"

/* ==== small vectors ==== */

void raft_ptrvec_push(raft_ptrvec_t *pv, void *p) {
  if (!p) return;
  if (pv->n == pv->cap) {
    pv->cap = pv->cap ? pv->cap * 2 : 16;
    pv->v = xrealloc(pv->v, pv->cap * sizeof(*pv->v));
  }
  pv->v[pv->n++] = p;
}

void raft_ptrvec_free_all(raft_ptrvec_t *pv) {
  for (size_t i = 0; i < pv->n; i++) free(pv->v[i]);
  pv->n = 0;
}

void raft_defer_free(raft_t *r, void *p) { raft_ptrvec_push(&r->gy, p); }

/* Grows *p (elements of size sz) to hold at least need elements. */
static void grow(void **p, size_t *cap, size_t need, size_t sz) {
  if (need <= *cap) return;
  size_t c = *cap ? *cap : 16;
  while (c < need) c *= 2;
  *p = xrealloc(*p, c * sz);
  *cap = c;
}

/* Copies n bytes into the outbox; returns their offset. */
static size_t put_bytes(raft_outbox_t *ob, const uint8_t *p, size_t n) {
  size_t off = ob->n_bytes;
  if (n) {
    grow((void **)&ob->bytes, &ob->cap_bytes, off + n, 1);
    memcpy(ob->bytes + off, p, n);
    ob->n_bytes += n;
  }
  return off;
}

/* ==== outbox ==== */

static bool is_vote_type(raft_msg_type_t t) {
  return t == RAFT_MSG_VOTE || t == RAFT_MSG_VOTE_RESP || t == RAFT_MSG_PRE_VOTE ||
         t == RAFT_MSG_PRE_VOTE_RESP;
}

void raft_send(raft_t *r, const raft_msg_t *m) {
  raft_outbox_t *ob = &r->ob;
  if (ob->n_msgs == ob->cap_msgs) {
    size_t cap = ob->cap_msgs;
    grow((void **)&ob->msgs, &cap, ob->n_msgs + 1, sizeof(*ob->msgs));
    cap = ob->cap_msgs;
    grow((void **)&ob->ent_off, &cap, ob->n_msgs + 1, sizeof(*ob->ent_off));
    cap = ob->cap_msgs;
    grow((void **)&ob->ctx_off, &cap, ob->n_msgs + 1, sizeof(*ob->ctx_off));
    ob->cap_msgs = cap;
  }
  size_t k = ob->n_msgs++;
  raft_msg_t *d = &ob->msgs[k];
  *d = *m;
  if (d->from == RAFT_NONE) d->from = r->id;
  if (!is_vote_type(d->type) && d->type != RAFT_MSG_PROP && d->type != RAFT_MSG_READ_INDEX) d->term = r->term;

  ob->ent_off[k] = ob->n_ents;
  if (m->n_entries) {
    grow((void **)&ob->ents, &ob->cap_ents, ob->n_ents + m->n_entries, sizeof(*ob->ents));
    raft_entry_t *e = ob->ents + ob->n_ents;
    memcpy(e, m->entries, m->n_entries * sizeof(*e));
    if (d->type == RAFT_MSG_PROP) {
      /* A forwarded proposal borrows the caller's data: keep a copy until sent. */
      for (size_t i = 0; i < m->n_entries; i++)
        if (e[i].len) {
          e[i].data = xmemdup(e[i].data, e[i].len);
          raft_defer_free(r, (void *)e[i].data);
        }
    }
    ob->n_ents += m->n_entries;
  }
  ob->ctx_off[k] = put_bytes(ob, m->context, m->context_len);
  d->entries = NULL;
  d->context = NULL;
}

void raft_push_read_state(raft_t *r, uint64_t index, const uint8_t *ctx, size_t len) {
  raft_outbox_t *ob = &r->ob;
  if (ob->n_rs == ob->cap_rs) {
    size_t cap = ob->cap_rs;
    grow((void **)&ob->rs, &cap, ob->n_rs + 1, sizeof(*ob->rs));
    cap = ob->cap_rs;
    grow((void **)&ob->rs_off, &cap, ob->n_rs + 1, sizeof(*ob->rs_off));
    ob->cap_rs = cap;
  }
  ob->rs[ob->n_rs] = (raft_read_state_t){.index = index, .ctx = NULL, .ctx_len = len};
  ob->rs_off[ob->n_rs] = put_bytes(ob, ctx, len);
  ob->n_rs++;
}

/* Turns the offsets of a handed outbox into pointers. */
static void fix_pointers(raft_outbox_t *ob) {
  for (size_t i = 0; i < ob->n_msgs; i++) {
    raft_msg_t *m = &ob->msgs[i];
    m->entries = m->n_entries ? ob->ents + ob->ent_off[i] : NULL;
    m->context = m->context_len ? ob->bytes + ob->ctx_off[i] : NULL;
  }
  for (size_t i = 0; i < ob->n_rs; i++) ob->rs[i].ctx = ob->rs[i].ctx_len ? ob->bytes + ob->rs_off[i] : NULL;
}

static void outbox_clear(raft_outbox_t *ob) { ob->n_msgs = ob->n_ents = ob->n_bytes = ob->n_rs = 0; }

void raft_outbox_destroy(raft_outbox_t *ob) {
  free(ob->msgs);
  free(ob->ent_off);
  free(ob->ctx_off);
  free(ob->ents);
  free(ob->bytes);
  free(ob->rs);
  free(ob->rs_off);
  memset(ob, 0, sizeof(*ob));
}

/* Drops each append ack that a later ack in the same outbox covers (same member, same term,
 * an index as high): acks are cumulative, and a follower that took many appends during one
 * WAL sync would otherwise answer each of them. Rejections always stay. */
static void drop_superseded_acks(raft_outbox_t *ob) {
  enum { MAX_SEEN = 16 };
  struct {
    uint64_t to, term, index;
  } seen[MAX_SEEN];
  size_t n_seen = 0, kept = ob->n_msgs;
  bool drop_any = false;
  bool *drop = NULL;
  for (size_t k = ob->n_msgs; k-- > 0;) {
    const raft_msg_t *m = &ob->msgs[k];
    if (m->type != RAFT_MSG_APP_RESP || m->reject) continue;
    size_t i = 0;
    while (i < n_seen && (seen[i].to != m->to || seen[i].term != m->term)) i++;
    if (i < n_seen && seen[i].index >= m->index) {
      if (!drop) drop = xcalloc(ob->n_msgs, sizeof(*drop));
      drop[k] = drop_any = true;
      kept--;
    } else if (i < n_seen) {
      seen[i].index = m->index;
    } else if (n_seen < MAX_SEEN) {
      seen[n_seen].to = m->to;
      seen[n_seen].term = m->term;
      seen[n_seen].index = m->index;
      n_seen++;
    }
  }
  if (!drop_any) return;
  size_t w = 0;
  for (size_t k = 0; k < ob->n_msgs; k++)
    if (!drop[k]) ob->msgs[w++] = ob->msgs[k];
  ob->n_msgs = kept;
  free(drop);
}

/* Merges runs of appends to the same member (same term, each starting where the previous
 * ended, within the message size limit) into the first of the run, in place: proposals that arrive
 * one by one are otherwise sent, decoded and acked one message each. The merged entries are
 * copied into *ents (grown once, before any pointer into it is taken). Returns the new count;
 * the order of the messages to each member is kept. */
static size_t merge_appends(const raft_t *r, raft_msg_t *msgs, size_t n, raft_entry_t **ents, size_t *cap) {
  size_t total = 0, apps = 0;
  for (size_t k = 0; k < n; k++)
    if (msgs[k].type == RAFT_MSG_APP) total += msgs[k].n_entries, apps++;
  if (apps < 2) return n;
  grow((void **)ents, cap, total, sizeof(**ents));
  size_t used = 0, w = 0;
  for (size_t i = 0; i < n; i++) {
    raft_msg_t m = msgs[i];
    if (m.type == 0) continue; /* merged into an earlier one */
    if (m.type == RAFT_MSG_APP) {
      raft_entry_t *run = *ents + used;
      size_t bytes = 0;
      for (size_t e = 0; e < m.n_entries; e++) run[e] = m.entries[e], bytes += m.entries[e].len;
      for (size_t j = i + 1; j < n; j++) {
        const raft_msg_t *u = &msgs[j];
        if (u->type != RAFT_MSG_APP || u->to != m.to) continue;
        uint64_t last_term = m.n_entries ? run[m.n_entries - 1].term : m.log_term;
        size_t ub = 0;
        for (size_t e = 0; e < u->n_entries; e++) ub += u->entries[e].len;
        if (u->term != m.term || u->index != m.index + m.n_entries || u->log_term != last_term ||
            (m.n_entries && bytes + ub > r->max_msg_bytes))
          break; /* not a continuation: it goes in its own turn, after this run */
        for (size_t e = 0; e < u->n_entries; e++) run[m.n_entries + e] = u->entries[e];
        m.n_entries += u->n_entries;
        m.commit = u->commit;
        bytes += ub;
        msgs[j].type = 0;
      }
      m.entries = m.n_entries ? run : NULL;
      used += m.n_entries;
    }
    msgs[w++] = m;
  }
  return w;
}

/* True if m may leave before the outstanding Ready is persisted: it promises nothing about
 * this member's disk (a follower's append ack and any vote do), and a leader's appends may
 * overlap its own write (it counts itself only once the entries are durable). */
static bool is_urgent(const raft_msg_t *m) {
  switch (m->type) {
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_READ_INDEX:
    case RAFT_MSG_READ_INDEX_RESP:
    case RAFT_MSG_PROP:
    case RAFT_MSG_TIMEOUT_NOW:
    case RAFT_MSG_APP: /* only a leader sends appends */
      return true;
    default:
      return false;
  }
}

void raft_take_urgent(raft_t *r, raft_urgent_cb on_msg, raft_read_state_cb on_read, void *ctx) {
  raft_outbox_t *ob = &r->ob;
  /* a term or vote not yet on disk must not be shown to anyone */
  if (r->term != r->stable_hs.term || r->vote != r->stable_hs.vote) return;
  grow((void **)&r->urg_msgs, &r->cap_urg_msgs, ob->n_msgs, sizeof(*r->urg_msgs));
  size_t w = 0, nu = 0;
  for (size_t k = 0; k < ob->n_msgs; k++) {
    raft_msg_t *m = &ob->msgs[k];
    if (is_urgent(m)) {
      raft_msg_t *c = &r->urg_msgs[nu++];
      *c = *m;
      c->entries = c->n_entries ? ob->ents + ob->ent_off[k] : NULL;
      c->context = c->context_len ? ob->bytes + ob->ctx_off[k] : NULL;
      continue;
    }
    if (w != k) {
      ob->msgs[w] = *m;
      ob->ent_off[w] = ob->ent_off[k];
      ob->ctx_off[w] = ob->ctx_off[k];
    }
    w++;
  }
  ob->n_msgs = w;
  nu = merge_appends(r, r->urg_msgs, nu, &r->urg_ents, &r->cap_urg_ents);
  for (size_t k = 0; k < nu; k++) on_msg(ctx, &r->urg_msgs[k]);
  for (size_t k = 0; k < ob->n_rs; k++) {
    raft_read_state_t rs = ob->rs[k];
    rs.ctx = rs.ctx_len ? ob->bytes + ob->rs_off[k] : NULL;
    on_read(ctx, &rs);
  }
  ob->n_rs = 0;
  if (!ob->n_msgs) ob->n_ents = ob->n_bytes = 0;
}

bool raft_ready_send_early(const raft_t *r, const raft_ready_t *rd, const raft_msg_t *m) {
  if (rd->hs_changed && (rd->hs.term != r->stable_hs.term || rd->hs.vote != r->stable_hs.vote)) return false;
  return is_urgent(m);
}

/* ==== Ready ==== */

static raft_hard_state_t hard_state(const raft_t *r) {
  return (raft_hard_state_t){.term = r->term, .vote = r->vote, .commit = r->log.committed};
}

/* First index to hand out for applying. */
static uint64_t apply_from(const raft_t *r) {
  const raft_log_t *l = &r->log;
  return (l->applied > l->snap_index ? l->applied : l->snap_index) + 1;
}

bool raft_has_ready(const raft_t *r) {
  if (r->ready_out) return false;
  raft_hard_state_t hs = hard_state(r);
  if (hs.term != r->prev_hs.term || hs.vote != r->prev_hs.vote || hs.commit != r->prev_hs.commit) return true;
  if (r->lead != r->prev_ss.lead || r->role != r->prev_ss.role) return true;
  if (r->snap_pending || raft_log_last(&r->log) > r->log.stable) return true;
  if (r->ob.n_msgs || r->ob.n_rs) return true;
  return r->log.committed >= apply_from(r);
}

/* Copies log entries [lo, hi] into *dst (grown as needed). Returns the count. */
static size_t copy_range(const raft_log_t *l, uint64_t lo, uint64_t hi, raft_entry_t **dst, size_t *cap) {
  if (hi < lo) return 0;
  size_t n = (size_t)(hi - lo + 1);
  grow((void **)dst, cap, n, sizeof(**dst));
  memcpy(*dst, raft_log_at(l, lo), n * sizeof(**dst));
  return n;
}

int raft_ready(raft_t *r, raft_ready_t *rd) {
  if (r->ready_out) return CETCD_EINVAL;
  memset(rd, 0, sizeof(*rd));
  raft_log_t *l = &r->log;

  raft_soft_state_t ss = {.lead = r->lead, .role = r->role};
  if (ss.lead != r->prev_ss.lead || ss.role != r->prev_ss.role) {
    rd->soft_changed = true;
    rd->soft = ss;
    r->prev_ss = ss;
  }
  raft_hard_state_t hs = hard_state(r);
  if (hs.term != r->prev_hs.term || hs.vote != r->prev_hs.vote || hs.commit != r->prev_hs.commit) {
    rd->hs_changed = true;
    rd->hs = hs;
    rd->must_sync = hs.term != r->prev_hs.term || hs.vote != r->prev_hs.vote;
    r->prev_hs = hs;
  }
  r->handed.hs = r->prev_hs;

  r->handed.snap = NULL;
  r->handed.snap_index = 0;
  if (r->snap_pending) {
    rd->snapshot = r->snap;
    r->handed.snap = r->snap;
    r->handed.snap_index = r->snap->index;
    rd->must_sync = true;
  }

  uint64_t last = raft_log_last(l);
  rd->n_entries = copy_range(l, l->stable + 1, last, &r->rd_ents, &r->cap_rd_ents);
  rd->entries = rd->n_entries ? r->rd_ents : NULL;
  r->handed.ent_hi = rd->n_entries ? last : 0;
  r->handed.ent_hi_term = rd->n_entries ? raft_log_last_term(l) : 0;
  if (rd->n_entries) rd->must_sync = true;

  rd->n_committed = copy_range(l, apply_from(r), l->committed, &r->rd_committed, &r->cap_rd_committed);
  rd->committed = rd->n_committed ? r->rd_committed : NULL;
  r->handed.n_committed = rd->n_committed;

  raft_outbox_t tob = r->ob_out;
  r->ob_out = r->ob;
  r->ob = tob;
  raft_ptrvec_t tgy = r->gy_out;
  r->gy_out = r->gy;
  r->gy = tgy;
  fix_pointers(&r->ob_out);
  drop_superseded_acks(&r->ob_out);
  r->ob_out.n_msgs = merge_appends(r, r->ob_out.msgs, r->ob_out.n_msgs, &r->rd_merged, &r->cap_rd_merged);
  rd->msgs = r->ob_out.n_msgs ? r->ob_out.msgs : NULL;
  rd->n_msgs = r->ob_out.n_msgs;
  rd->read_states = r->ob_out.n_rs ? r->ob_out.rs : NULL;
  rd->n_read_states = r->ob_out.n_rs;
  r->ready_out = true;
  return 0;
}

void raft_conf_skip(raft_t *r, uint64_t index) {
  grow((void **)&r->conf_skips, &r->cap_conf_skips, r->n_conf_skips + 1, sizeof(*r->conf_skips));
  r->conf_skips[r->n_conf_skips++] = index;
}

/* True if the state machine refused the conf change at index (raft_conf_skip). */
static bool conf_skipped(const raft_t *r, uint64_t index) {
  for (size_t i = 0; i < r->n_conf_skips; i++)
    if (r->conf_skips[i] == index) return true;
  return false;
}

void raft_advance(raft_t *r, const raft_ready_t *rd) {
  (void)rd;
  if (!r->ready_out) return;
  raft_log_t *l = &r->log;
  if (r->handed.snap) {
    if (r->snap == r->handed.snap) r->snap_pending = false;
    if (l->applied < r->handed.snap_index) l->applied = r->handed.snap_index;
  }
  /* The entries were persisted unless the tail was replaced meanwhile (then the term of the
   * last handed index differs and the new tail goes out in the next Ready). */
  if (r->handed.ent_hi > l->stable && r->handed.ent_hi <= raft_log_last(l) &&
      raft_log_term0(l, r->handed.ent_hi) == r->handed.ent_hi_term)
    l->stable = r->handed.ent_hi;
  r->stable_hs = r->handed.hs;
  raft_self_persisted(r);
  for (size_t i = 0; i < r->handed.n_committed; i++) {
    const raft_entry_t *e = &r->rd_committed[i];
    if (e->index <= l->applied) continue;
    /* A snapshot installed meanwhile already carries the membership of older entries. */
    if (e->type == RAFT_ENTRY_CONF_CHANGE && e->index > l->snap_index && !conf_skipped(r, e->index))
      raft_conf_apply_entry(r, e);
    l->applied = e->index;
  }
  r->n_conf_skips = 0;
  raft_ptrvec_free_all(&r->gy_out);
  outbox_clear(&r->ob_out);
  r->ready_out = false;
}
