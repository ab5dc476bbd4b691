/* Log replication: the leader's appends, heartbeats, snapshots and commit rule; the
 * follower's append/heartbeat/snapshot handling with conflict hints for fast backtracking. */
#include <string.h>

#include "cetcd/errors.h"
#include "raft/raft_int.h"

/* ==== leader side ==== */

bool raft_send_append(raft_t *r, raft_progress_t *pr, bool send_if_empty) {
  if (pr->id == r->id || raft_pr_is_paused(pr)) return false;
  raft_log_t *l = &r->log;
  uint64_t prev = pr->next - 1, prev_term = 0;
  int err = raft_log_term(l, prev, &prev_term);
  if (err == CETCD_ERAFTUNAVAIL) return false; /* cannot happen while we lead; be defensive */
  if (err == CETCD_ERAFTCOMPACTED) {
    /* The follower needs entries we no longer have: ship the snapshot, but only to a member
     * that answered recently (the server's snapshot transfer is expensive). */
    if (!pr->recent_active) return false;
    raft_msg_t m = {.type = RAFT_MSG_SNAP, .to = pr->id, .snapshot = r->snap};
    raft_send(r, &m);
    raft_pr_become_snapshot(pr, r->snap->index);
    return true;
  }
  size_t n = pr->next <= raft_log_last(l) ? raft_log_limit(l, pr->next, r->max_msg_bytes) : 0;
  if (n == 0 && !send_if_empty) return false;
  raft_msg_t m = {.type = RAFT_MSG_APP,
                  .to = pr->id,
                  .index = prev,
                  .log_term = prev_term,
                  .entries = n ? raft_log_at(l, pr->next) : NULL,
                  .n_entries = n,
                  .commit = l->committed};
  raft_send(r, &m);
  if (pr->state == RAFT_PR_REPLICATE) {
    if (n) {
      uint64_t last = prev + n;
      pr->next = last + 1;
      raft_inflights_add(&pr->ins, last);
    }
  } else if (pr->state == RAFT_PR_PROBE) {
    pr->probe_sent = true; /* one probe at a time until it is answered */
  }
  return true;
}

void raft_bcast_append(raft_t *r) {
  for (size_t i = 0; i < r->n_prs; i++) raft_send_append(r, &r->prs[i], true);
}

void raft_bcast_heartbeat(raft_t *r) {
  uint8_t ctx[8];
  size_t ctx_len = raft_ri_last_ctx(r, ctx);
  for (size_t i = 0; i < r->n_prs; i++) {
    raft_progress_t *pr = &r->prs[i];
    if (pr->id == r->id) continue;
    /* Never tell a follower to commit past what it is known to hold. */
    uint64_t commit = pr->match < r->log.committed ? pr->match : r->log.committed;
    raft_msg_t m = {.type = RAFT_MSG_HEARTBEAT, .to = pr->id, .commit = commit};
    if (ctx_len) {
      m.context = ctx;
      m.context_len = ctx_len;
    }
    raft_send(r, &m);
  }
}

bool raft_maybe_commit(raft_t *r) {
  if (!raft_log_maybe_commit(&r->log, raft_pr_quorum_match(r), r->term)) return false;
  if (r->n_pending_reads) raft_ri_release_pending(r);
  return true;
}

uint64_t raft_leader_append(raft_t *r, raft_entry_type_t type, const uint8_t *data, size_t len) {
  /* The leader counts itself for an entry only once the entry is durable here
   * (raft_self_persisted): it may send the entry to followers before its own disk write
   * finished, and an entry on one disk only must never count as committed. */
  return raft_log_append_one(&r->log, r->term, type, data, len);
}

void raft_self_persisted(raft_t *r) {
  if (r->role != RAFT_LEADER) return;
  raft_progress_t *self = raft_pr_find(r, r->id);
  if (!self || !raft_pr_maybe_update(self, r->log.stable)) return;
  if (raft_maybe_commit(r)) raft_bcast_append(r); /* followers learn the new commit index */
}

void raft_send_timeout_now(raft_t *r, uint64_t id) {
  raft_msg_t m = {.type = RAFT_MSG_TIMEOUT_NOW, .to = id};
  raft_send(r, &m);
}

void raft_handle_append_resp(raft_t *r, raft_progress_t *pr, const raft_msg_t *m) {
  pr->recent_active = true;
  if (m->reject) {
    /* The follower's hint names its last index whose term is <= m->log_term; skip every
     * entry of ours above that with a larger term (one round trip per term, not per entry). */
    uint64_t hint = m->reject_hint;
    if (m->log_term > 0) hint = raft_log_find_conflict_by_term(&r->log, m->reject_hint, m->log_term);
    if (raft_pr_maybe_decr_to(pr, m->index, hint)) {
      if (pr->state == RAFT_PR_REPLICATE) raft_pr_become_probe(pr);
      raft_send_append(r, pr, true);
    }
    return;
  }
  bool was_paused = raft_pr_is_paused(pr);
  if (!raft_pr_maybe_update(pr, m->index)) return;
  switch (pr->state) {
    case RAFT_PR_PROBE:
      raft_pr_become_replicate(pr);
      break;
    case RAFT_PR_SNAPSHOT:
      if (pr->match >= pr->pending_snapshot) raft_pr_become_probe(pr);
      break;
    case RAFT_PR_REPLICATE:
      raft_inflights_free_le(&pr->ins, m->index);
      break;
  }
  if (raft_maybe_commit(r)) {
    raft_bcast_append(r);
  } else if (was_paused) {
    raft_send_append(r, pr, true);
  }
  while (raft_send_append(r, pr, false)) {
  }
  if (m->from == r->lead_transferee && pr->match == raft_log_last(&r->log)) raft_send_timeout_now(r, m->from);
}

void raft_handle_heartbeat_resp(raft_t *r, raft_progress_t *pr, const raft_msg_t *m) {
  pr->recent_active = true;
  pr->probe_sent = false;
  if (pr->state == RAFT_PR_REPLICATE && raft_inflights_full(&pr->ins)) raft_inflights_free_first(&pr->ins);
  if (pr->match < raft_log_last(&r->log)) raft_send_append(r, pr, true);
  if (m->context_len) raft_ri_ack(r, m->from, m->context, m->context_len);
}

void raft_handle_transfer(raft_t *r, uint64_t transferee) {
  raft_progress_t *pr = raft_pr_find(r, transferee);
  if (!pr || pr->learner) return;
  if (r->lead_transferee != RAFT_NONE) {
    if (r->lead_transferee == transferee) return;
    raft_abort_transfer(r);
  }
  if (transferee == r->id) return;
  r->election_elapsed = 0; /* the transfer must finish within one election timeout */
  r->lead_transferee = transferee;
  if (pr->match == raft_log_last(&r->log))
    raft_send_timeout_now(r, transferee);
  else
    raft_send_append(r, pr, true);
}

/* ==== follower side ==== */

void raft_handle_append(raft_t *r, const raft_msg_t *m) {
  raft_log_t *l = &r->log;
  raft_msg_t resp = {.type = RAFT_MSG_APP_RESP, .to = m->from};
  if (m->index < l->committed) {
    resp.index = l->committed;
    raft_send(r, &resp);
    return;
  }
  uint64_t lastnew;
  if (raft_log_maybe_append(l, m->index, m->log_term, m->commit, m->entries, m->n_entries, &lastnew)) {
    resp.index = lastnew;
  } else {
    uint64_t hint = m->index < raft_log_last(l) ? m->index : raft_log_last(l);
    hint = raft_log_find_conflict_by_term(l, hint, m->log_term);
    resp.index = m->index;
    resp.reject = true;
    resp.reject_hint = hint;
    resp.log_term = raft_log_term0(l, hint);
  }
  raft_send(r, &resp);
}

void raft_handle_heartbeat(raft_t *r, const raft_msg_t *m) {
  if (m->commit <= raft_log_last(&r->log)) raft_log_commit_to(&r->log, m->commit);
  raft_msg_t resp = {
      .type = RAFT_MSG_HEARTBEAT_RESP, .to = m->from, .context = m->context, .context_len = m->context_len};
  raft_send(r, &resp);
}

/* Installs s unless we already have it; returns true if the log was replaced. */
static bool restore(raft_t *r, const raft_snapshot_t *s) {
  raft_log_t *l = &r->log;
  if (s->index <= l->committed) return false;
  /* A snapshot taken before we joined does not list us; the entries after it add us. */
  if (raft_log_match_term(l, s->index, s->term)) {
    /* We have the entry: just fast-forward the commit index. */
    raft_log_commit_to(l, s->index);
    return false;
  }
  raft_log_restore(l, s->index, s->term);
  raft_snapshot_t *copy =
      raft_snap_new(s->index, s->term, s->voters, s->n_voters, s->learners, s->n_learners, s->data, s->len);
  raft_defer_free(r, r->snap);
  r->snap = copy;
  r->snap_pending = true;
  raft_conf_trim(r, UINT64_MAX);
  raft_conf_reset(r, copy);
  return true;
}

void raft_handle_snapshot(raft_t *r, const raft_msg_t *m) {
  raft_msg_t resp = {.type = RAFT_MSG_APP_RESP, .to = m->from};
  if (m->snapshot && restore(r, m->snapshot))
    resp.index = raft_log_last(&r->log);
  else
    resp.index = r->log.committed;
  raft_send(r, &resp);
}
