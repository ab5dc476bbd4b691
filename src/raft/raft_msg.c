/* Encoding of raft messages between members (proto/raftpb.proto, protobuf-c). */
#include <stdlib.h>
#include <string.h>

#include "cetcd/errors.h"
#include "raft/raft_int.h"
#include "raftpb.pb-c.h"

int raft_msg_encode(const raft_msg_t *m, buf_t *out) {
  Cetcdraftpb__Message pb = CETCDRAFTPB__MESSAGE__INIT;
  pb.type = (uint32_t)m->type;
  pb.from = m->from;
  pb.to = m->to;
  pb.term = m->term;
  pb.log_term = m->log_term;
  pb.index = m->index;
  pb.commit = m->commit;
  pb.reject = m->reject;
  pb.reject_hint = m->reject_hint;
  pb.context.data = (uint8_t *)m->context;
  pb.context.len = m->context_len;

  Cetcdraftpb__Entry stack_ents[16], *stack_ptrs[16];
  Cetcdraftpb__Entry *ents = stack_ents, **ptrs = stack_ptrs;
  if (m->n_entries > 16) {
    ents = calloc(m->n_entries, sizeof(*ents));
    ptrs = calloc(m->n_entries, sizeof(*ptrs));
    if (!ents || !ptrs) abort();
  }
  for (size_t i = 0; i < m->n_entries; i++) {
    const raft_entry_t *e = &m->entries[i];
    Cetcdraftpb__Entry x = CETCDRAFTPB__ENTRY__INIT;
    x.term = e->term;
    x.index = e->index;
    x.type = (uint32_t)e->type;
    x.data.data = (uint8_t *)e->data;
    x.data.len = e->len;
    ents[i] = x;
    ptrs[i] = &ents[i];
  }
  pb.n_entries = m->n_entries;
  pb.entries = ptrs;

  Cetcdraftpb__Snapshot snap = CETCDRAFTPB__SNAPSHOT__INIT;
  if (m->snapshot) {
    const raft_snapshot_t *s = m->snapshot;
    snap.index = s->index;
    snap.term = s->term;
    snap.n_voters = s->n_voters;
    snap.voters = (uint64_t *)s->voters;
    snap.n_learners = s->n_learners;
    snap.learners = (uint64_t *)s->learners;
    snap.data.data = (uint8_t *)s->data;
    snap.data.len = s->len;
    pb.snapshot = &snap;
  }

  size_t n = cetcdraftpb__message__get_packed_size(&pb);
  buf_reserve(out, n);
  cetcdraftpb__message__pack(&pb, out->data + out->len);
  out->len += n;
  if (ents != stack_ents) {
    free(ents);
    free(ptrs);
  }
  return 0;
}

int raft_msg_decode(const uint8_t *buf, size_t len, arena_t *a, raft_msg_t *out) {
  Cetcdraftpb__Message *pb = cetcdraftpb__message__unpack(&a->pb, len, buf);
  return pb ? raft_msg_from_pb(pb, a, out) : CETCD_EINVAL;
}

int raft_msg_from_pb(const Cetcdraftpb__Message *pb, arena_t *a, raft_msg_t *out) {
  if (pb->type < RAFT_MSG_PROP || pb->type > RAFT_MSG_READ_INDEX_RESP) return CETCD_EINVAL;
  memset(out, 0, sizeof(*out));
  out->type = (raft_msg_type_t)pb->type;
  out->from = pb->from;
  out->to = pb->to;
  out->term = pb->term;
  out->log_term = pb->log_term;
  out->index = pb->index;
  out->commit = pb->commit;
  out->reject = pb->reject;
  out->reject_hint = pb->reject_hint;
  out->context = pb->context.len ? pb->context.data : NULL;
  out->context_len = pb->context.len;
  if (pb->n_entries) {
    raft_entry_t *ents = arena_alloc(a, pb->n_entries * sizeof(*ents));
    for (size_t i = 0; i < pb->n_entries; i++) {
      const Cetcdraftpb__Entry *e = pb->entries[i];
      if (e->type > RAFT_ENTRY_CONF_CHANGE) return CETCD_EINVAL;
      ents[i] = (raft_entry_t){.term = e->term,
                               .index = e->index,
                               .type = (raft_entry_type_t)e->type,
                               .data = e->data.len ? e->data.data : NULL,
                               .len = e->data.len};
    }
    out->entries = ents;
    out->n_entries = pb->n_entries;
  }
  if (pb->snapshot) {
    const Cetcdraftpb__Snapshot *s = pb->snapshot;
    raft_snapshot_t *snap = ARENA_NEW(a, raft_snapshot_t);
    *snap = (raft_snapshot_t){.index = s->index,
                              .term = s->term,
                              .voters = s->voters,
                              .n_voters = s->n_voters,
                              .learners = s->learners,
                              .n_learners = s->n_learners,
                              .data = s->data.len ? s->data.data : NULL,
                              .len = s->data.len};
    out->snapshot = snap;
  }
  return 0;
}
