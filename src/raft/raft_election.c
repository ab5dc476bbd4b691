/* Roles and elections: role transitions, (pre-)campaigns, granting votes, counting them,
 * election and heartbeat ticks, check-quorum. */
#include <string.h>

#include "raft/raft_int.h"

void raft_reset_randomized_timeout(raft_t *r) {
  uint64_t x = r->rand(r->rand_ctx);
  r->randomized_timeout = r->election_timeout + (int)(x % (uint64_t)r->election_timeout);
}

/* State shared by every role change: new term clears the vote; timers, transfer, progress
 * and read queues start over. */
static void reset(raft_t *r, uint64_t term) {
  if (r->term != term) {
    r->term = term;
    r->vote = RAFT_NONE;
  }
  r->lead = RAFT_NONE;
  r->election_elapsed = 0;
  r->heartbeat_elapsed = 0;
  raft_reset_randomized_timeout(r);
  raft_abort_transfer(r);
  raft_pr_reset_all(r);
  r->pending_conf_index = 0;
  raft_ri_reset(r);
}

void raft_become_follower(raft_t *r, uint64_t term, uint64_t lead) {
  reset(r, term);
  r->lead = lead;
  r->role = RAFT_FOLLOWER;
}

void raft_become_pre_candidate(raft_t *r) {
  /* No term change and no vote: a pre-candidate only asks whether it could win. */
  for (size_t i = 0; i < r->n_prs; i++) r->prs[i].vote = 0;
  r->lead = RAFT_NONE;
  r->role = RAFT_PRE_CANDIDATE;
}

void raft_become_candidate(raft_t *r) {
  reset(r, r->term + 1);
  r->vote = r->id;
  r->role = RAFT_CANDIDATE;
}

void raft_become_leader(raft_t *r) {
  reset(r, r->term);
  r->lead = r->id;
  r->role = RAFT_LEADER;
  raft_progress_t *self = raft_pr_find(r, r->id);
  if (self) raft_pr_become_replicate(self);
  /* Any entry not yet applied may be a conf change: hold new ones until all are applied. */
  r->pending_conf_index = raft_log_last(&r->log);
  /* An empty entry of the new term lets us commit everything before it (Raft §5.4.2). */
  raft_leader_append(r, RAFT_ENTRY_NORMAL, NULL, 0);
}

void raft_campaign_now(raft_t *r, bool pre, bool transfer) {
  if (!raft_promotable(r)) return;
  uint64_t term;
  raft_msg_type_t type;
  if (pre) {
    raft_become_pre_candidate(r);
    type = RAFT_MSG_PRE_VOTE;
    term = r->term + 1;
  } else {
    raft_become_candidate(r);
    type = RAFT_MSG_VOTE;
    term = r->term;
  }
  raft_pr_find(r, r->id)->vote = 1;
  if (raft_pr_tally(r) == RAFT_VOTE_WON) { /* a single voter wins at once */
    if (pre) {
      raft_campaign_now(r, false, transfer);
    } else {
      raft_become_leader(r);
      raft_bcast_append(r);
    }
    return;
  }
  raft_msg_t m = {
      .type = type, .term = term, .index = raft_log_last(&r->log), .log_term = raft_log_last_term(&r->log)};
  if (transfer) {
    m.context = (const uint8_t *)RAFT_CAMPAIGN_TRANSFER;
    m.context_len = RAFT_CAMPAIGN_TRANSFER_LEN;
  }
  for (size_t i = 0; i < r->n_prs; i++) {
    if (r->prs[i].learner || r->prs[i].id == r->id) continue;
    m.to = r->prs[i].id;
    raft_send(r, &m);
  }
}

void raft_hup(raft_t *r, bool transfer) {
  if (r->role == RAFT_LEADER || !raft_promotable(r)) return;
  /* A committed but unapplied conf change may change who votes: wait for it. */
  if (raft_conf_unapplied(r)) return;
  raft_campaign_now(r, transfer ? false : r->pre_vote, transfer);
}

void raft_handle_vote(raft_t *r, const raft_msg_t *m) {
  bool pre = m->type == RAFT_MSG_PRE_VOTE;
  /* We can vote for whom we already voted for, or for anyone if we have neither voted nor
   * heard of a leader this term; a pre-vote for a later term is always fair game. */
  bool can_vote =
      r->vote == m->from || (r->vote == RAFT_NONE && r->lead == RAFT_NONE) || (pre && m->term > r->term);
  raft_msg_t resp = {.type = pre ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP, .to = m->from};
  if (can_vote && raft_log_up_to_date(&r->log, m->index, m->log_term)) {
    resp.term = m->term;
    raft_send(r, &resp);
    if (!pre) {
      r->election_elapsed = 0;
      r->vote = m->from;
    }
  } else {
    resp.term = r->term;
    resp.reject = true;
    raft_send(r, &resp);
  }
}

void raft_handle_vote_resp(raft_t *r, const raft_msg_t *m) {
  raft_progress_t *pr = raft_pr_find(r, m->from);
  if (!pr || pr->learner) return;
  if (pr->vote == 0) pr->vote = m->reject ? -1 : 1;
  switch (raft_pr_tally(r)) {
    case RAFT_VOTE_WON:
      if (r->role == RAFT_PRE_CANDIDATE) {
        raft_campaign_now(r, false, false);
      } else {
        raft_become_leader(r);
        raft_bcast_append(r);
      }
      break;
    case RAFT_VOTE_LOST:
      raft_become_follower(r, r->term, RAFT_NONE);
      break;
    default:
      break;
  }
}

void raft_tick_election(raft_t *r) {
  r->election_elapsed++;
  if (raft_promotable(r) && r->election_elapsed >= r->randomized_timeout) {
    r->election_elapsed = 0;
    raft_hup(r, false);
  }
}

void raft_tick_heartbeat(raft_t *r) {
  r->heartbeat_elapsed++;
  r->election_elapsed++;
  if (r->election_elapsed >= r->election_timeout) {
    r->election_elapsed = 0;
    if (r->check_quorum && !raft_pr_quorum_active(r)) {
      raft_become_follower(r, r->term, RAFT_NONE);
      return;
    }
    /* A transfer that did not finish within an election timeout is abandoned. */
    raft_abort_transfer(r);
  }
  if (r->heartbeat_elapsed >= r->heartbeat_timeout) {
    r->heartbeat_elapsed = 0;
    raft_bcast_heartbeat(r);
  }
}
