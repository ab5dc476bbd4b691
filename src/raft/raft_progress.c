/* Leader-side tracking of each member: match/next, probe/replicate/snapshot states, the
 * in-flight window for flow control, and quorum arithmetic (commit index, votes, activity). */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "raft/raft_int.h"

/* ==== inflights ==== */

void raft_inflights_add(raft_inflights_t *in, uint64_t last) {
  if (in->count == in->cap) return; /* callers check full first */
  in->buf[(in->start + in->count) % in->cap] = last;
  in->count++;
}

void raft_inflights_free_le(raft_inflights_t *in, uint64_t to) {
  while (in->count > 0 && in->buf[in->start] <= to) {
    in->start = (in->start + 1) % in->cap;
    in->count--;
  }
  if (in->count == 0) in->start = 0;
}

void raft_inflights_free_first(raft_inflights_t *in) {
  if (in->count == 0) return;
  in->start = (in->start + 1) % in->cap;
  in->count--;
}

static void inflights_reset(raft_inflights_t *in) { in->start = in->count = 0; }

/* ==== state transitions ==== */

/* Common part of every state change. */
static void pr_reset_state(raft_progress_t *pr, raft_pr_state_t st) {
  pr->probe_sent = false;
  pr->pending_snapshot = 0;
  pr->state = st;
  inflights_reset(&pr->ins);
}

bool raft_pr_is_paused(const raft_progress_t *pr) {
  switch (pr->state) {
    case RAFT_PR_PROBE:
      return pr->probe_sent;
    case RAFT_PR_REPLICATE:
      return raft_inflights_full(&pr->ins);
    default:
      return true;
  }
}

void raft_pr_become_probe(raft_progress_t *pr) {
  if (pr->state == RAFT_PR_SNAPSHOT) {
    /* Resume after the snapshot if it was delivered; match tells us otherwise. */
    uint64_t ps = pr->pending_snapshot;
    pr_reset_state(pr, RAFT_PR_PROBE);
    pr->next = (pr->match + 1 > ps + 1) ? pr->match + 1 : ps + 1;
  } else {
    pr_reset_state(pr, RAFT_PR_PROBE);
    pr->next = pr->match + 1;
  }
}

void raft_pr_become_replicate(raft_progress_t *pr) {
  pr_reset_state(pr, RAFT_PR_REPLICATE);
  pr->next = pr->match + 1;
}

void raft_pr_become_snapshot(raft_progress_t *pr, uint64_t index) {
  pr_reset_state(pr, RAFT_PR_SNAPSHOT);
  pr->pending_snapshot = index;
}

bool raft_pr_maybe_update(raft_progress_t *pr, uint64_t n) {
  bool updated = false;
  if (pr->match < n) {
    pr->match = n;
    updated = true;
    pr->probe_sent = false;
  }
  if (pr->next < n + 1) pr->next = n + 1;
  return updated;
}

bool raft_pr_maybe_decr_to(raft_progress_t *pr, uint64_t rejected, uint64_t match_hint) {
  if (pr->state == RAFT_PR_REPLICATE) {
    if (rejected <= pr->match) return false; /* stale */
    pr->next = pr->match + 1;
    return true;
  }
  if (pr->next - 1 != rejected) return false; /* not the probe we are waiting for */
  uint64_t n = rejected < match_hint + 1 ? rejected : match_hint + 1;
  if (n < pr->match + 1) n = pr->match + 1;
  pr->next = n;
  pr->probe_sent = false;
  return true;
}

/* ==== the set of members ==== */

raft_progress_t *raft_pr_find(raft_t *r, uint64_t id) {
  for (size_t i = 0; i < r->n_prs; i++)
    if (r->prs[i].id == id) return &r->prs[i];
  return NULL;
}

raft_progress_t *raft_pr_add(raft_t *r, uint64_t id, bool learner) {
  raft_progress_t *pr = raft_pr_find(r, id);
  if (pr) {
    pr->learner = learner;
    return pr;
  }
  if (r->n_prs == r->cap_prs) {
    r->cap_prs = r->cap_prs ? r->cap_prs * 2 : 8;
    r->prs = xrealloc(r->prs, r->cap_prs * sizeof(*r->prs));
    r->scratch = xrealloc(r->scratch, r->cap_prs * sizeof(*r->scratch));
  }
  pr = &r->prs[r->n_prs++];
  memset(pr, 0, sizeof(*pr));
  pr->id = id;
  pr->learner = learner;
  pr->next = raft_log_last(&r->log) + 1;
  pr->recent_active = true; /* a new member is not counted as lost before it could answer */
  pr->ins.cap = r->max_inflight;
  pr->ins.buf = xcalloc(r->max_inflight, sizeof(uint64_t));
  if (id == r->id) pr->match = raft_self_durable(r);
  return pr;
}

void raft_pr_remove(raft_t *r, uint64_t id) {
  raft_progress_t *pr = raft_pr_find(r, id);
  if (!pr) return;
  free(pr->ins.buf);
  size_t i = (size_t)(pr - r->prs);
  memmove(&r->prs[i], &r->prs[i + 1], (r->n_prs - i - 1) * sizeof(*r->prs));
  r->n_prs--;
}

size_t raft_pr_voters(const raft_t *r) {
  size_t n = 0;
  for (size_t i = 0; i < r->n_prs; i++) n += !r->prs[i].learner;
  return n;
}

uint64_t raft_pr_quorum_match(raft_t *r) {
  size_t n = 0;
  for (size_t i = 0; i < r->n_prs; i++)
    if (!r->prs[i].learner) {
      /* insertion sort, descending: member counts are tiny */
      uint64_t m = r->prs[i].match;
      size_t j = n++;
      while (j > 0 && r->scratch[j - 1] < m) {
        r->scratch[j] = r->scratch[j - 1];
        j--;
      }
      r->scratch[j] = m;
    }
  return n ? r->scratch[n / 2] : 0;
}

raft_vote_result_t raft_pr_tally(const raft_t *r) {
  size_t n = 0, granted = 0, rejected = 0;
  for (size_t i = 0; i < r->n_prs; i++) {
    const raft_progress_t *pr = &r->prs[i];
    if (pr->learner) continue;
    n++;
    granted += pr->vote > 0;
    rejected += pr->vote < 0;
  }
  size_t q = n / 2 + 1;
  if (granted >= q) return RAFT_VOTE_WON;
  if (n - rejected < q) return RAFT_VOTE_LOST;
  return RAFT_VOTE_PENDING;
}

bool raft_pr_quorum_active(raft_t *r) {
  size_t n = 0, active = 0;
  for (size_t i = 0; i < r->n_prs; i++) {
    raft_progress_t *pr = &r->prs[i];
    if (pr->id == r->id) {
      pr->recent_active = true;
    } else {
      if (!pr->learner && pr->recent_active) active++;
      pr->recent_active = false;
    }
    if (!pr->learner) n++;
  }
  if (raft_pr_find(r, r->id) && !raft_pr_find(r, r->id)->learner) active++;
  return active >= n / 2 + 1;
}

void raft_pr_reset_all(raft_t *r) {
  uint64_t last = raft_log_last(&r->log);
  for (size_t i = 0; i < r->n_prs; i++) {
    raft_progress_t *pr = &r->prs[i];
    pr_reset_state(pr, RAFT_PR_PROBE);
    pr->match = 0;
    pr->next = last + 1;
    pr->vote = 0;
    pr->recent_active = false;
    if (pr->id == r->id) {
      pr->match = raft_self_durable(r);
      pr->recent_active = true;
    }
  }
}
