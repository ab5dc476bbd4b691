/* Membership: applying one-node conf changes, snapshot objects that carry a conf state, and
 * the history of conf states above the compaction point (so raft_compact can record the
 * membership as of any index it is given). */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "raft/raft_int.h"
#include "raftpb.pb-c.h"

raft_snapshot_t *raft_snap_new(uint64_t index, uint64_t term, const uint64_t *voters, size_t nv,
                               const uint64_t *learners, size_t nl, const uint8_t *data, size_t len) {
  size_t ids = (nv + nl) * sizeof(uint64_t);
  raft_snapshot_t *s = xmalloc(sizeof(*s) + ids + len);
  uint64_t *v = (uint64_t *)(s + 1);
  if (nv) memcpy(v, voters, nv * sizeof(uint64_t));
  if (nl) memcpy(v + nv, learners, nl * sizeof(uint64_t));
  uint8_t *d = (uint8_t *)(v + nv + nl);
  if (len) memcpy(d, data, len);
  *s = (raft_snapshot_t){.index = index,
                         .term = term,
                         .voters = v,
                         .n_voters = nv,
                         .learners = v + nv,
                         .n_learners = nl,
                         .data = len ? d : NULL,
                         .len = len};
  return s;
}

raft_snapshot_t *raft_conf_capture(raft_t *r, uint64_t index, uint64_t term, const uint8_t *data,
                                   size_t len) {
  uint64_t *ids = xmalloc((r->n_prs + 1) * sizeof(uint64_t));
  size_t nv = 0, nl = 0;
  for (size_t i = 0; i < r->n_prs; i++)
    if (!r->prs[i].learner) ids[nv++] = r->prs[i].id;
  for (size_t i = 0; i < r->n_prs; i++)
    if (r->prs[i].learner) ids[nv + nl++] = r->prs[i].id;
  raft_snapshot_t *s = raft_snap_new(index, term, ids, nv, ids + nv, nl, data, len);
  free(ids);
  return s;
}

void raft_conf_reset(raft_t *r, const raft_snapshot_t *s) {
  while (r->n_prs) raft_pr_remove(r, r->prs[r->n_prs - 1].id);
  for (size_t i = 0; i < s->n_voters; i++) raft_pr_add(r, s->voters[i], false);
  for (size_t i = 0; i < s->n_learners; i++) raft_pr_add(r, s->learners[i], true);
}

bool raft_promotable(raft_t *r) {
  raft_progress_t *pr = raft_pr_find(r, r->id);
  return pr && !pr->learner;
}

/* Decodes cc from entry data without an arena. Returns 0 or CETCD_EINVAL. */
static int decode_cc(const raft_entry_t *e, raft_conf_change_t *cc) {
  Cetcdraftpb__ConfChange *pb = cetcdraftpb__conf_change__unpack(NULL, e->len, e->data);
  if (!pb) return CETCD_EINVAL;
  *cc = (raft_conf_change_t){.type = (raft_cc_type_t)pb->type, .node_id = pb->node_id};
  cetcdraftpb__conf_change__free_unpacked(pb, NULL);
  return cc->node_id ? 0 : CETCD_EINVAL;
}

void raft_conf_apply_entry(raft_t *r, const raft_entry_t *e) {
  raft_conf_change_t cc;
  if (decode_cc(e, &cc) != 0) return; /* a malformed change changes nothing, everywhere alike */
  raft_progress_t *pr = raft_pr_find(r, cc.node_id);
  bool added = false;
  switch (cc.type) {
    case RAFT_CC_ADD_VOTER:
      if (pr)
        pr->learner = false;
      else
        added = raft_pr_add(r, cc.node_id, false) != NULL;
      break;
    case RAFT_CC_PROMOTE:
      if (pr) pr->learner = false;
      break;
    case RAFT_CC_ADD_LEARNER:
      if (pr)
        pr->learner = true;
      else
        added = raft_pr_add(r, cc.node_id, true) != NULL;
      break;
    case RAFT_CC_REMOVE_NODE:
      raft_pr_remove(r, cc.node_id);
      break;
    default:
      return;
  }
  if (r->n_conf_hist == r->cap_conf_hist) {
    r->cap_conf_hist = r->cap_conf_hist ? r->cap_conf_hist * 2 : 4;
    r->conf_hist = xrealloc(r->conf_hist, r->cap_conf_hist * sizeof(*r->conf_hist));
  }
  r->conf_hist[r->n_conf_hist++] = raft_conf_capture(r, e->index, e->term, NULL, 0);

  if (r->role != RAFT_LEADER) return;
  if (!raft_promotable(r)) {
    /* We were removed (or demoted): step down so the rest can elect a leader. */
    raft_become_follower(r, r->term, RAFT_NONE);
    return;
  }
  raft_progress_t *t = raft_pr_find(r, r->lead_transferee);
  if (r->lead_transferee && (!t || t->learner)) raft_abort_transfer(r);
  if (raft_maybe_commit(r)) raft_bcast_append(r);
  for (size_t i = 0; i < r->n_prs; i++) raft_send_append(r, &r->prs[i], false);
  if (added) {
    pr = raft_pr_find(r, cc.node_id);
    pr->recent_active = true;
    raft_send_append(r, pr, true); /* first probe to the new member */
  }
}

const raft_snapshot_t *raft_conf_at(raft_t *r, uint64_t index) {
  const raft_snapshot_t *cs = r->snap;
  for (size_t i = 0; i < r->n_conf_hist && r->conf_hist[i]->index <= index; i++) cs = r->conf_hist[i];
  return cs;
}

void raft_conf_trim(raft_t *r, uint64_t index) {
  size_t k = 0;
  while (k < r->n_conf_hist && r->conf_hist[k]->index <= index) raft_defer_free(r, r->conf_hist[k++]);
  if (k == 0) return;
  memmove(r->conf_hist, r->conf_hist + k, (r->n_conf_hist - k) * sizeof(*r->conf_hist));
  r->n_conf_hist -= k;
}

bool raft_conf_unapplied(const raft_t *r) {
  const raft_log_t *l = &r->log;
  uint64_t lo = l->applied > l->snap_index ? l->applied + 1 : l->snap_index + 1;
  for (uint64_t i = lo; i <= l->committed; i++)
    if (raft_log_at(l, i)->type == RAFT_ENTRY_CONF_CHANGE) return true;
  return false;
}

/* ==== encoding of conf change entries ==== */

int raft_conf_change_encode(const raft_conf_change_t *cc, buf_t *out) {
  Cetcdraftpb__ConfChange pb = CETCDRAFTPB__CONF_CHANGE__INIT;
  pb.type = (uint32_t)cc->type;
  pb.node_id = cc->node_id;
  pb.context.data = (uint8_t *)cc->context;
  pb.context.len = cc->context_len;
  size_t n = cetcdraftpb__conf_change__get_packed_size(&pb);
  buf_reserve(out, n);
  cetcdraftpb__conf_change__pack(&pb, out->data + out->len);
  out->len += n;
  return 0;
}

int raft_conf_change_decode(const uint8_t *buf, size_t len, arena_t *a, raft_conf_change_t *out) {
  Cetcdraftpb__ConfChange *pb = cetcdraftpb__conf_change__unpack(&a->pb, len, buf);
  if (!pb || pb->node_id == 0 || pb->type > RAFT_CC_PROMOTE) return CETCD_EINVAL;
  *out = (raft_conf_change_t){.type = (raft_cc_type_t)pb->type,
                              .node_id = pb->node_id,
                              .context = pb->context.data,
                              .context_len = pb->context.len};
  return 0;
}
