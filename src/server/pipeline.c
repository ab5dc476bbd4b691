/* The write pipeline of a single member: propose → WAL append → group-commit fdatasync →
 * apply in log order (one LMDB transaction per durable batch) → reply.
 *
 * A single member is a one-member log: the index a proposal gets here is its log index, and
 * "durable" is "committed". Applying goes through apply_entries (server/apply.c), the same
 * loop a cluster member's committed raft entries go through. */
#include "server/pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "grpc/grpc_server.h"
#include "mvcc/mvcc.h"
#include "server/apply.h"
#include "server/raft_node.h"
#include "server/server.h"
#include "wal/wal.h"

/* Backend growth allowed for applying an entry of len logged bytes: the value written
 * twice over (record and copy-on-write) plus a few B-tree pages. */
static uint64_t entry_headroom(size_t len) { return 2 * (uint64_t)len + 16384; }

/* Free backend space new writes must leave behind, so that deletes, compaction and lease
 * revocations (which free space) still go through on a full disk. */
#define WRITE_MARGIN ((uint64_t)4 << 20)
/* The same for the WAL: when no new segment can be made, new writes leave this much of the
 * current segment's room to the requests that free space. */
#define WAL_WRITE_MARGIN ((size_t)64 << 10)

struct pending_entry {
  pending_entry_t *next;
  uint64_t index;
  uint64_t headroom; /* entry_headroom of this entry, in srv->unapplied_headroom */
  arena_t *arena;    /* where the response goes: the caller's, or `scratch` */
  arena_t scratch;   /* used when the caller passed no arena, and for decoding */
  propose_cb cb;
  void *ctx;
  apply_result_t res;
  size_t len;
  uint8_t data[]; /* the encoded InternalRequest, as logged */
};

/* Fails a proposal at once, without logging it. */
static void fail_now(propose_cb cb, void *ctx, int err) {
  apply_result_t res;
  memset(&res, 0, sizeof(res));
  res.err = err;
  cb(ctx, &res);
}

/* True for requests that only remove data (they may run into WRITE_MARGIN and
 * WAL_WRITE_MARGIN). */
static bool frees_space(const Cetcdinternal__InternalRequest *req) {
  return req->delete_range || req->compaction || req->lease_revoke || req->alarm;
}

/* Reserves backend space for a new entry of n bytes before it is logged; on a full disk
 * the request is refused with "no space left on device" and nothing is logged. */
static int reserve_for_proposal(server_t *srv, const Cetcdinternal__InternalRequest *req, size_t n) {
  uint64_t need = srv->unapplied_headroom + entry_headroom(n) + (frees_space(req) ? 0 : WRITE_MARGIN);
  const char *what = "backend";
  int rc = mvcc_ensure_space(srv->mvcc, need);
  if (!rc) {
    what = "WAL";
    rc = wal_check_room(srv->wal, n + (frees_space(req) ? 0 : WAL_WRITE_MARGIN));
    if (rc != -ENOSPC) return 0; /* a broken WAL answers later */
  }
  uint64_t now = uv_now(srv->loop);
  if (!srv->disk_full_logged_ms || now - srv->disk_full_logged_ms >= 10000) {
    srv->disk_full_logged_ms = now;
    LOGW(
        "msg=\"refusing writes: no space for the %s\" data-dir=%s error=\"%s\" fix=\"free disk space on "
        "the data dir's file system (or compact and defragment); writes resume by themselves\"",
        what, srv->cfg->data_dir, cetcd_strerror(rc));
  }
  return rc;
}

/* A durable entry cannot be applied for want of disk space: stop, naming the fix. */
static void die_no_space(server_t *srv, int rc) {
  LOGE(
      "msg=\"cannot apply durable entries: no backend space\" data-dir=%s error=\"%s\" fix=\"free disk space "
      "on the data dir's file system and start again; the entries are in the WAL and are applied then\"",
      srv->cfg->data_dir, cetcd_strerror(rc));
  exit(1);
}

void server_reserve_apply_space(server_t *srv, size_t len) {
  srv->apply_headroom += entry_headroom(len);
  int rc = mvcc_ensure_space(srv->mvcc, srv->apply_headroom);
  if (rc) die_no_space(srv, rc);
}

void server_apply_space_done(server_t *srv) { srv->apply_headroom = 0; }

void server_propose(server_t *srv, Cetcdinternal__InternalRequest *req, arena_t *arena, propose_cb cb,
                    void *ctx) {
  if (srv->stopping || srv->wal_failed) {
    fail_now(cb, ctx, CETCD_ESTOPPED);
    return;
  }
  req->id = ++srv->next_request_id;
  size_t n = protobuf_c_message_get_packed_size(&req->base);
  if (n > srv->cfg->max_request_bytes) {
    fail_now(cb, ctx, CETCD_ETOOLARGE);
    return;
  }
  int space = reserve_for_proposal(srv, req, n);
  if (space) {
    fail_now(cb, ctx, space);
    return;
  }
  if (srv->rn) { /* clustered: through raft, answered once applied here */
    uint8_t *buf = xmalloc(n ? n : 1);
    size_t len = protobuf_c_message_pack(&req->base, buf);
    raft_node_propose(srv->rn, buf, len, req->id, arena, cb, ctx);
    free(buf);
    return;
  }
  pending_entry_t *p = xmalloc(sizeof(*p) + n);
  memset(p, 0, sizeof(*p));
  p->len = protobuf_c_message_pack(&req->base, p->data);
  p->index = ++srv->last_index;
  arena_init(&p->scratch);
  p->arena = arena ? arena : &p->scratch;
  p->cb = cb;
  p->ctx = ctx;
  p->headroom = entry_headroom(n);
  int rc = wal_append_entry(srv->wal, p->index, srv->term, p->data, p->len);
  if (rc) {
    srv->last_index--;
    arena_destroy(&p->scratch);
    free(p);
    LOGE("msg=\"WAL append failed\" error=\"%s\"", cetcd_strerror(rc));
    fail_now(cb, ctx, rc);
    return;
  }
  if (srv->pending_tail)
    srv->pending_tail->next = p;
  else
    srv->pending_head = p;
  srv->pending_tail = p;
  srv->unapplied_headroom += p->headroom;
  if (srv->wal_flush_on) uv_prepare_start(&srv->wal_flush, server_wal_flush_cb);
}

/* The detached entries being applied, for the apply_sink callbacks. */
typedef struct pipe_apply {
  server_t *srv;
  pending_entry_t *cursor; /* the next entry to claim */
} pipe_apply_t;

/* apply_sink claim: entries are applied in the order they were proposed here, so the
 * entry at index is the next of the detached list. */
static arena_t *pipe_claim(void *ctx, uint64_t index, uint64_t req_id, void **token) {
  (void)req_id;
  pipe_apply_t *pa = ctx;
  pending_entry_t *p = pa->cursor;
  if (!p || p->index != index) return NULL; /* cannot happen: every durable entry is ours */
  pa->cursor = p->next;
  *token = p;
  return p->arena;
}

/* apply_sink answer: the proposer gets its result; the entry's memory goes. */
static void pipe_answer(void *ctx, void *token, const apply_result_t *res) {
  pipe_apply_t *pa = ctx;
  pending_entry_t *p = token;
  pa->srv->unapplied_headroom -= p->headroom;
  p->cb(p->ctx, res);
  arena_destroy(&p->scratch);
  free(p);
}

/* Applies every pending entry up to `durable` through the shared apply loop (one mvcc
 * batch), then answers the proposers in log order. */
void server_on_durable(server_t *srv, uint64_t durable) {
  pending_entry_t *head = srv->pending_head;
  if (!head || head->index > durable) return;
  size_t n = 0;
  pending_entry_t *last = NULL;
  for (pending_entry_t *p = head; p && p->index <= durable; p = p->next) last = p, n++;
  /* detached first: answering may propose again, which appends to the list */
  srv->pending_head = last->next;
  if (!srv->pending_head) srv->pending_tail = NULL;
  last->next = NULL;
  apply_entry_t stack_ents[64];
  apply_entry_t *ents = n <= 64 ? stack_ents : xmalloc(n * sizeof(*ents));
  size_t k = 0;
  for (pending_entry_t *p = head; p; p = p->next)
    ents[k++] = (apply_entry_t){.index = p->index, .data = p->data, .len = p->len};
  pipe_apply_t pa = {.srv = srv, .cursor = head};
  apply_sink_t sink = {.claim = pipe_claim, .answer = pipe_answer, .ctx = &pa};
  apply_entries(srv, ents, n, &sink);
  if (ents != stack_ents) free(ents);
}

/* Inline rounds per prepare phase before the writer thread takes over. */
#define MAX_INLINE_ROUNDS 16

void server_wal_flush_cb(uv_prepare_t *h) {
  server_t *srv = h->data;
  /* Answering a proposal may propose again (Campaign re-proclaiming, a quota alarm):
   * restarting this handle from inside its own callback would only run it after the loop's
   * next wake-up, so the new entries are flushed here, in rounds, before the loop sleeps. */
  for (int round = 0;; round++) {
    uv_prepare_stop(h);
    uint64_t durable;
    if (wal_flush(srv->wal, &durable, round < MAX_INLINE_ROUNDS) != 1) return; /* the writer has it */
    if (!durable) return;
    server_on_durable(srv, durable);
    grpc_server_flush(srv->grpc);                  /* the answers go out before the loop sleeps */
    if (srv->spin_on) loop_spin_touch(&srv->spin); /* the next write often follows within µs */
  }
}

void server_fail_pending(server_t *srv, int err) {
  pending_entry_t *p = srv->pending_head;
  srv->pending_head = srv->pending_tail = NULL;
  srv->unapplied_headroom = 0;
  while (p) {
    pending_entry_t *next = p->next;
    fail_now(p->cb, p->ctx, err);
    arena_destroy(&p->scratch);
    free(p);
    p = next;
  }
}
