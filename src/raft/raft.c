/* The public API: creating and restoring a member, message dispatch by term and role, and
 * the local inputs (ticks, proposals, reads, campaigns, transfers, reports, compaction). */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "raft/raft_int.h"

/* ==== lifecycle ==== */

/* Validates and installs the persisted state from rs. Returns 0 or CETCD_EINVAL. */
static int restore_state(raft_t *r, const raft_restore_t *rs) {
  raft_log_t *l = &r->log;
  for (size_t i = 0; i < rs->n_entries; i++)
    if (rs->entries[i].index != l->snap_index + 1 + i) return CETCD_EINVAL;
  raft_log_append(l, rs->entries, rs->n_entries);
  l->stable = raft_log_last(l);
  uint64_t commit = rs->hs.commit;
  if (commit > raft_log_last(l)) return CETCD_EINVAL;
  if (commit < l->snap_index) commit = l->snap_index;
  l->committed = commit;
  uint64_t applied = rs->applied > l->snap_index ? rs->applied : l->snap_index;
  if (applied > commit) applied = commit;
  /* Entries the state machine already reflects: replay their membership changes. */
  for (uint64_t i = l->snap_index + 1; i <= applied; i++) {
    raft_entry_t *e = raft_log_at(l, i);
    if (e->type == RAFT_ENTRY_CONF_CHANGE) raft_conf_apply_entry(r, e);
  }
  l->applied = applied;
  r->term = rs->hs.term;
  r->vote = rs->hs.vote;
  return 0;
}

raft_t *raft_new(const raft_config_t *cfg) {
  if (!cfg || cfg->id == RAFT_NONE || !cfg->rand || cfg->election_tick < 0 || cfg->heartbeat_tick < 0)
    return NULL;
  raft_t *r = xcalloc(1, sizeof(*r));
  r->id = cfg->id;
  r->election_timeout = cfg->election_tick ? cfg->election_tick : 10;
  r->heartbeat_timeout = cfg->heartbeat_tick ? cfg->heartbeat_tick : 1;
  if (r->heartbeat_timeout >= r->election_timeout) {
    free(r);
    return NULL;
  }
  r->pre_vote = cfg->pre_vote;
  r->check_quorum = cfg->check_quorum;
  r->no_forwarding = cfg->disable_proposal_forwarding;
  r->max_inflight = cfg->max_inflight ? cfg->max_inflight : 256;
  r->max_msg_bytes = cfg->max_size_per_msg ? cfg->max_size_per_msg : (1u << 20);
  r->rand = cfg->rand;
  r->rand_ctx = cfg->rand_ctx;

  const raft_restore_t *rs = cfg->restore;
  if (rs && rs->snapshot) {
    const raft_snapshot_t *s = rs->snapshot;
    r->snap =
        raft_snap_new(s->index, s->term, s->voters, s->n_voters, s->learners, s->n_learners, s->data, s->len);
  } else {
    r->snap = raft_snap_new(0, 0, cfg->voters, cfg->n_voters, cfg->learners, cfg->n_learners, NULL, 0);
  }
  raft_log_init(&r->log, r->snap->index, r->snap->term, &r->gy);
  raft_conf_reset(r, r->snap);
  if (rs && restore_state(r, rs) != 0) {
    raft_free(r);
    return NULL;
  }
  r->prev_hs = (raft_hard_state_t){.term = r->term, .vote = r->vote, .commit = r->log.committed};
  r->stable_hs = r->prev_hs;
  r->prev_ss = (raft_soft_state_t){.lead = RAFT_NONE, .role = RAFT_FOLLOWER};
  raft_become_follower(r, r->term, RAFT_NONE);
  return r;
}

void raft_free(raft_t *r) {
  if (!r) return;
  raft_ri_reset(r);
  free(r->reads);
  free(r->pending_reads);
  raft_log_destroy(&r->log);
  while (r->n_prs) raft_pr_remove(r, r->prs[r->n_prs - 1].id);
  free(r->prs);
  free(r->scratch);
  for (size_t i = 0; i < r->n_conf_hist; i++) free(r->conf_hist[i]);
  free(r->conf_hist);
  free(r->snap);
  raft_outbox_destroy(&r->ob);
  raft_outbox_destroy(&r->ob_out);
  raft_ptrvec_free_all(&r->gy);
  raft_ptrvec_free_all(&r->gy_out);
  free(r->gy.v);
  free(r->gy_out.v);
  free(r->rd_ents);
  free(r->rd_committed);
  free(r->conf_skips);
  free(r->urg_msgs);
  free(r->urg_ents);
  free(r->rd_merged);
  free(r);
}

/* ==== dispatch ==== */

/* Leader: appends proposed entries. */
static int leader_propose(raft_t *r, const raft_entry_t *ents, size_t n) {
  if (n == 0) return CETCD_EINVAL;
  if (!raft_promotable(r) || r->lead_transferee != RAFT_NONE) return CETCD_EPROPDROPPED;
  for (size_t i = 0; i < n; i++)
    if (ents[i].type == RAFT_ENTRY_CONF_CHANGE && r->pending_conf_index > r->log.applied)
      return CETCD_ECONFPENDING;
  for (size_t i = 0; i < n; i++) {
    uint64_t idx = raft_leader_append(r, ents[i].type, ents[i].data, ents[i].len);
    if (ents[i].type == RAFT_ENTRY_CONF_CHANGE) r->pending_conf_index = idx;
  }
  raft_bcast_append(r);
  return 0;
}

/* Follower: sends m on to the leader (from stays the original requester). */
static int forward(raft_t *r, const raft_msg_t *m) {
  if (r->lead == RAFT_NONE) return CETCD_ENOLEADER;
  if (r->no_forwarding && (m->from == r->id || m->from == RAFT_NONE)) return CETCD_ENOTLEADER;
  raft_msg_t f = *m;
  f.to = r->lead;
  raft_send(r, &f);
  return 0;
}

static int step_leader(raft_t *r, const raft_msg_t *m) {
  raft_progress_t *pr;
  switch (m->type) {
    case RAFT_MSG_PROP:
      return leader_propose(r, m->entries, m->n_entries);
    case RAFT_MSG_READ_INDEX:
      raft_ri_request(r, m->from, m->context, m->context_len);
      return 0;
    case RAFT_MSG_TRANSFER_LEADER:
      raft_handle_transfer(r, m->from);
      return 0;
    case RAFT_MSG_APP_RESP:
      if ((pr = raft_pr_find(r, m->from))) raft_handle_append_resp(r, pr, m);
      return 0;
    case RAFT_MSG_HEARTBEAT_RESP:
      if ((pr = raft_pr_find(r, m->from))) raft_handle_heartbeat_resp(r, pr, m);
      return 0;
    default:
      return 0;
  }
}

static int step_candidate(raft_t *r, const raft_msg_t *m) {
  raft_msg_type_t my_resp = r->role == RAFT_PRE_CANDIDATE ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP;
  switch (m->type) {
    case RAFT_MSG_PROP:
    case RAFT_MSG_READ_INDEX:
    case RAFT_MSG_TRANSFER_LEADER:
      return CETCD_ENOLEADER;
    case RAFT_MSG_APP:
      raft_become_follower(r, m->term, m->from);
      raft_handle_append(r, m);
      return 0;
    case RAFT_MSG_HEARTBEAT:
      raft_become_follower(r, m->term, m->from);
      raft_handle_heartbeat(r, m);
      return 0;
    case RAFT_MSG_SNAP:
      raft_become_follower(r, m->term, m->from);
      raft_handle_snapshot(r, m);
      return 0;
    default:
      if (m->type == my_resp) raft_handle_vote_resp(r, m);
      return 0;
  }
}

static int step_follower(raft_t *r, const raft_msg_t *m) {
  switch (m->type) {
    case RAFT_MSG_PROP:
    case RAFT_MSG_READ_INDEX:
    case RAFT_MSG_TRANSFER_LEADER:
      return forward(r, m);
    case RAFT_MSG_APP:
      r->election_elapsed = 0;
      r->lead = m->from;
      raft_handle_append(r, m);
      return 0;
    case RAFT_MSG_HEARTBEAT:
      r->election_elapsed = 0;
      r->lead = m->from;
      raft_handle_heartbeat(r, m);
      return 0;
    case RAFT_MSG_SNAP:
      r->election_elapsed = 0;
      r->lead = m->from;
      raft_handle_snapshot(r, m);
      return 0;
    case RAFT_MSG_TIMEOUT_NOW:
      raft_hup(r, true);
      return 0;
    case RAFT_MSG_READ_INDEX_RESP:
      raft_push_read_state(r, m->index, m->context, m->context_len);
      return 0;
    default:
      return 0;
  }
}

/* Checks what the handlers rely on. */
static bool well_formed(const raft_t *r, const raft_msg_t *m) {
  if (m->type < RAFT_MSG_PROP || m->type > RAFT_MSG_READ_INDEX_RESP) return false;
  if (m->from == RAFT_NONE || (m->to != r->id && m->to != RAFT_NONE)) return false;
  if (m->n_entries && !m->entries) return false;
  if (m->context_len && !m->context) return false;
  if (m->type == RAFT_MSG_APP)
    for (size_t i = 0; i < m->n_entries; i++)
      if (m->entries[i].index != m->index + 1 + i || m->entries[i].term > m->term) return false;
  if (m->type == RAFT_MSG_SNAP && (!m->snapshot || m->snapshot->index == 0)) return false;
  return true;
}

/* Step after validation; also used by the local inputs. */
static int step(raft_t *r, const raft_msg_t *m) {
  bool vote_req = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE;
  if (m->term == 0) {
    /* local or forwarded proposal / read: no term semantics */
  } else if (m->term > r->term) {
    if (vote_req) {
      bool force = m->context_len == RAFT_CAMPAIGN_TRANSFER_LEN &&
                   memcmp(m->context, RAFT_CAMPAIGN_TRANSFER, RAFT_CAMPAIGN_TRANSFER_LEN) == 0;
      bool in_lease = r->check_quorum && r->lead != RAFT_NONE && r->election_elapsed < r->election_timeout;
      /* Leader stickiness: while we hear from a leader, ignore disruptive candidates. */
      if (!force && in_lease) return 0;
    }
    if (m->type == RAFT_MSG_PRE_VOTE) {
      /* a pre-vote never changes our term */
    } else if (m->type == RAFT_MSG_PRE_VOTE_RESP && !m->reject) {
      /* granted pre-votes carry the term we would campaign in */
    } else if (m->type == RAFT_MSG_APP || m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_SNAP) {
      raft_become_follower(r, m->term, m->from);
    } else {
      raft_become_follower(r, m->term, RAFT_NONE);
    }
  } else if (m->term < r->term) {
    if ((r->check_quorum || r->pre_vote) && (m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_APP)) {
      /* A stale leader (e.g. after a partition) learns our term and steps down; without this
       * our pre-votes or its lease could keep the cluster from ever electing it out. */
      raft_msg_t resp = {.type = RAFT_MSG_APP_RESP, .to = m->from};
      raft_send(r, &resp);
    } else if (m->type == RAFT_MSG_PRE_VOTE) {
      raft_msg_t resp = {.type = RAFT_MSG_PRE_VOTE_RESP, .to = m->from, .term = r->term, .reject = true};
      raft_send(r, &resp);
    }
    return 0;
  }
  if (vote_req) {
    raft_handle_vote(r, m);
    return 0;
  }
  switch (r->role) {
    case RAFT_LEADER:
      return step_leader(r, m);
    case RAFT_FOLLOWER:
      return step_follower(r, m);
    default:
      return step_candidate(r, m);
  }
}

int raft_step(raft_t *r, const raft_msg_t *m) {
  if (!m || !well_formed(r, m)) return CETCD_EINVAL;
  return step(r, m);
}

/* ==== local inputs ==== */

void raft_tick(raft_t *r) {
  if (r->role == RAFT_LEADER)
    raft_tick_heartbeat(r);
  else
    raft_tick_election(r);
}

/* Proposes one entry of the given type through the normal path. */
static int propose_entry(raft_t *r, raft_entry_type_t type, const uint8_t *data, size_t len) {
  raft_entry_t e = {.type = type, .data = data, .len = len};
  raft_msg_t m = {.type = RAFT_MSG_PROP, .from = r->id, .to = r->id, .entries = &e, .n_entries = 1};
  return step(r, &m);
}

int raft_propose(raft_t *r, const uint8_t *data, size_t len) {
  if (len && !data) return CETCD_EINVAL;
  return propose_entry(r, RAFT_ENTRY_NORMAL, data, len);
}

int raft_propose_conf_change(raft_t *r, const raft_conf_change_t *cc) {
  if (!cc || cc->node_id == RAFT_NONE || cc->type > RAFT_CC_PROMOTE) return CETCD_EINVAL;
  if (r->role == RAFT_LEADER && r->pending_conf_index > r->log.applied) return CETCD_ECONFPENDING;
  buf_t b = {0};
  raft_conf_change_encode(cc, &b);
  int rc = propose_entry(r, RAFT_ENTRY_CONF_CHANGE, b.data, b.len);
  buf_free(&b);
  return rc;
}

int raft_read_index(raft_t *r, const uint8_t *ctx, size_t len) {
  if (len && !ctx) return CETCD_EINVAL;
  raft_msg_t m = {
      .type = RAFT_MSG_READ_INDEX, .from = r->id, .to = r->id, .context = ctx, .context_len = len};
  return step(r, &m);
}

int raft_campaign(raft_t *r) {
  if (!raft_promotable(r)) return CETCD_EINVAL;
  raft_hup(r, false);
  return 0;
}

int raft_transfer_leader(raft_t *r, uint64_t transferee) {
  if (transferee == RAFT_NONE) return CETCD_EINVAL;
  if (r->role == RAFT_LEADER) {
    raft_handle_transfer(r, transferee);
    return 0;
  }
  if (r->lead == RAFT_NONE) return CETCD_ENOLEADER;
  raft_msg_t m = {.type = RAFT_MSG_TRANSFER_LEADER, .from = transferee, .to = r->lead};
  raft_send(r, &m);
  return 0;
}

void raft_report_unreachable(raft_t *r, uint64_t id) {
  if (r->role != RAFT_LEADER) return;
  raft_progress_t *pr = raft_pr_find(r, id);
  if (pr && pr->state == RAFT_PR_REPLICATE) raft_pr_become_probe(pr);
}

void raft_report_snapshot(raft_t *r, uint64_t id, bool ok) {
  if (r->role != RAFT_LEADER) return;
  raft_progress_t *pr = raft_pr_find(r, id);
  if (!pr || pr->state != RAFT_PR_SNAPSHOT) return;
  if (!ok) pr->pending_snapshot = 0;
  /* Either way wait for the follower's append response (or the next heartbeat) before
   * sending more. */
  raft_pr_become_probe(pr);
  pr->probe_sent = true;
}

int raft_compact(raft_t *r, uint64_t index, const uint8_t *data, size_t len) {
  raft_log_t *l = &r->log;
  if (index <= l->snap_index) return CETCD_ERAFTCOMPACTED;
  if (index > l->applied || r->snap_pending || (len && !data)) return CETCD_EINVAL;
  const raft_snapshot_t *cs = raft_conf_at(r, index);
  raft_snapshot_t *s = raft_snap_new(index, raft_log_term0(l, index), cs->voters, cs->n_voters, cs->learners,
                                     cs->n_learners, data, len);
  raft_conf_trim(r, index);
  raft_defer_free(r, r->snap);
  r->snap = s;
  raft_log_compact(l, index);
  return 0;
}

/* ==== inspection ==== */

void raft_status(const raft_t *r, raft_status_t *st) {
  memset(st, 0, sizeof(*st));
  st->id = r->id;
  st->term = r->term;
  st->vote = r->vote;
  st->lead = r->lead;
  st->lead_transferee = r->lead_transferee;
  st->role = r->role;
  st->voter = raft_promotable((raft_t *)r);
  st->commit = r->log.committed;
  st->applied = r->log.applied;
  st->first_index = raft_log_first(&r->log);
  st->last_index = raft_log_last(&r->log);
  for (size_t i = 0; i < r->n_prs; i++) {
    if (r->prs[i].learner)
      st->n_learners++;
    else
      st->n_voters++;
  }
}

const raft_snapshot_t *raft_last_snapshot(const raft_t *r) { return r->snap; }

int raft_entry_at(const raft_t *r, uint64_t index, raft_entry_t *out) {
  if (index <= r->log.snap_index) return CETCD_ERAFTCOMPACTED;
  if (index > raft_log_last(&r->log)) return CETCD_ERAFTUNAVAIL;
  *out = *raft_log_at(&r->log, index);
  return 0;
}

int raft_progress_match(const raft_t *r, uint64_t id, uint64_t *match) {
  if (r->role != RAFT_LEADER) return CETCD_ENOTLEADER;
  raft_progress_t *pr = raft_pr_find((raft_t *)r, id);
  if (!pr) return CETCD_EINVAL;
  *match = pr->match;
  return 0;
}

bool raft_is_voter(const raft_t *r, uint64_t id) {
  raft_progress_t *pr = raft_pr_find((raft_t *)r, id);
  return pr && !pr->learner;
}

bool raft_is_learner(const raft_t *r, uint64_t id) {
  raft_progress_t *pr = raft_pr_find((raft_t *)r, id);
  return pr && pr->learner;
}

int raft_best_transferee(const raft_t *r, uint64_t *id) {
  *id = RAFT_NONE;
  if (r->role != RAFT_LEADER) return CETCD_ENOTLEADER;
  const raft_progress_t *best = NULL;
  for (size_t i = 0; i < r->n_prs; i++) {
    const raft_progress_t *pr = &r->prs[i];
    if (pr->id == r->id || pr->learner) continue;
    if (best && (best->recent_active > pr->recent_active ||
                 (best->recent_active == pr->recent_active && best->match >= pr->match)))
      continue;
    best = pr;
  }
  if (best) *id = best->id;
  return 0;
}
