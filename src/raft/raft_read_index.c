/* ReadIndex (Raft thesis §6.4): the leader records its commit index for a read, confirms it
 * is still leader with a round of heartbeats acked by a quorum, and only then hands out the
 * read state. Heartbeats carry an 8-byte sequence number, not the client's context, so the
 * client's contexts need not be unique to us. Reads that arrive before the leader committed
 * an entry of its own term wait for that commit (its commit index may be stale before). */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "raft/raft_int.h"

/* Bounds on queued reads; beyond them requests are dropped and the server retries. */
#define RAFT_MAX_QUEUED_READS 4096

static void put_u64(uint8_t b[8], uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) b[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t b[8]) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | b[i];
  return v;
}

static void req_free(raft_readreq_t *q) {
  free(q->ctx);
  free(q->acks);
}

void raft_ri_respond(raft_t *r, uint64_t from, uint64_t index, const uint8_t *ctx, size_t len) {
  if (from == r->id || from == RAFT_NONE) {
    raft_push_read_state(r, index, ctx, len);
    return;
  }
  raft_msg_t m = {
      .type = RAFT_MSG_READ_INDEX_RESP, .to = from, .index = index, .context = ctx, .context_len = len};
  raft_send(r, &m);
}

/* Records an ack from id for q. Returns the number of voters that acked. */
static size_t req_ack(raft_t *r, raft_readreq_t *q, uint64_t id) {
  raft_progress_t *pr = raft_pr_find(r, id);
  bool known = false;
  for (size_t i = 0; i < q->n_acks; i++) known |= q->acks[i] == id;
  if (!known && pr && !pr->learner) {
    if (q->n_acks == q->cap_acks) {
      q->cap_acks = q->cap_acks ? q->cap_acks * 2 : 4;
      q->acks = xrealloc(q->acks, q->cap_acks * sizeof(*q->acks));
    }
    q->acks[q->n_acks++] = id;
  }
  size_t n = 0;
  for (size_t i = 0; i < q->n_acks; i++) {
    raft_progress_t *p = raft_pr_find(r, q->acks[i]);
    n += p && !p->learner;
  }
  return n;
}

/* Queues a read at the current commit index (no heartbeat sent yet). */
static void enqueue(raft_t *r, uint64_t from, const uint8_t *ctx, size_t len) {
  if (r->n_reads >= RAFT_MAX_QUEUED_READS) return;
  if (r->n_reads == r->cap_reads) {
    r->cap_reads = r->cap_reads ? r->cap_reads * 2 : 8;
    r->reads = xrealloc(r->reads, r->cap_reads * sizeof(*r->reads));
  }
  raft_readreq_t *q = &r->reads[r->n_reads++];
  memset(q, 0, sizeof(*q));
  q->seq = ++r->read_seq;
  q->index = r->log.committed;
  q->from = from;
  q->ctx = len ? xmemdup(ctx, len) : NULL;
  q->ctx_len = len;
  req_ack(r, q, r->id);
}

void raft_ri_request(raft_t *r, uint64_t from, const uint8_t *ctx, size_t len) {
  raft_progress_t *self = raft_pr_find(r, r->id);
  if (self && !self->learner && raft_pr_voters(r) == 1) {
    /* A single voter is the quorum: its commit index is current. */
    raft_ri_respond(r, from, r->log.committed, ctx, len);
    return;
  }
  if (raft_log_term0(&r->log, r->log.committed) != r->term) {
    if (r->n_pending_reads >= RAFT_MAX_QUEUED_READS) return;
    if (r->n_pending_reads == r->cap_pending_reads) {
      r->cap_pending_reads = r->cap_pending_reads ? r->cap_pending_reads * 2 : 8;
      r->pending_reads = xrealloc(r->pending_reads, r->cap_pending_reads * sizeof(*r->pending_reads));
    }
    raft_readreq_t *q = &r->pending_reads[r->n_pending_reads++];
    memset(q, 0, sizeof(*q));
    q->from = from;
    q->ctx = len ? xmemdup(ctx, len) : NULL;
    q->ctx_len = len;
    return;
  }
  enqueue(r, from, ctx, len);
  raft_bcast_heartbeat(r);
}

void raft_ri_release_pending(raft_t *r) {
  if (r->role != RAFT_LEADER || raft_log_term0(&r->log, r->log.committed) != r->term) return;
  size_t n = r->n_pending_reads;
  r->n_pending_reads = 0;
  raft_progress_t *self = raft_pr_find(r, r->id);
  bool single = self && !self->learner && raft_pr_voters(r) == 1;
  for (size_t i = 0; i < n; i++) {
    raft_readreq_t *p = &r->pending_reads[i];
    if (single)
      raft_ri_respond(r, p->from, r->log.committed, p->ctx, p->ctx_len);
    else
      enqueue(r, p->from, p->ctx, p->ctx_len);
    req_free(p);
  }
  if (n && !single) raft_bcast_heartbeat(r);
}

void raft_ri_ack(raft_t *r, uint64_t from, const uint8_t *ctx, size_t len) {
  if (len != 8 || r->n_reads == 0) return;
  uint64_t seq = get_u64(ctx);
  if (seq < r->reads[0].seq || seq > r->reads[r->n_reads - 1].seq) return;
  size_t at = (size_t)(seq - r->reads[0].seq); /* seqs in the queue are consecutive */
  raft_readreq_t *q = &r->reads[at];
  if (q->seq != seq) return;
  if (req_ack(r, q, from) < raft_pr_voters(r) / 2 + 1) return;
  /* Leadership was confirmed after every read queued up to q: release them all, in order. */
  for (size_t i = 0; i <= at; i++) {
    raft_readreq_t *d = &r->reads[i];
    raft_ri_respond(r, d->from, d->index, d->ctx, d->ctx_len);
    req_free(d);
  }
  memmove(r->reads, r->reads + at + 1, (r->n_reads - at - 1) * sizeof(*r->reads));
  r->n_reads -= at + 1;
}

size_t raft_ri_last_ctx(const raft_t *r, uint8_t buf[8]) {
  if (r->n_reads == 0) return 0;
  put_u64(buf, r->reads[r->n_reads - 1].seq);
  return 8;
}

void raft_ri_reset(raft_t *r) {
  for (size_t i = 0; i < r->n_reads; i++) req_free(&r->reads[i]);
  for (size_t i = 0; i < r->n_pending_reads; i++) req_free(&r->pending_reads[i]);
  r->n_reads = r->n_pending_reads = 0;
}
