/* The store's internals shared by the files of src/mvcc: the struct, the write
 * primitives (one request = one write = at most one revision) and the range engine. */
#ifndef CETCD_MVCC_STORE_INT_H
#define CETCD_MVCC_STORE_INT_H

#include <stdlib.h>

#include "mvcc/backend_int.h"
#include "mvcc/key_index_int.h"
#include "mvcc/mvcc.h"
#include "mvcc/revision_int.h"

/* One key found by a range: its index entry and state at the range's revision. */
typedef struct mvcc_ent {
  mvcc_ki_t *ki;
  mvcc_rev_t mod;
  int64_t created, ver;
  uint32_t pos;         /* position in key order, for stable sorting */
  Mvccpb__KeyValue *kv; /* filled once read from the backend */
} mvcc_ent_t;

typedef struct mvcc_entvec {
  mvcc_ent_t *v;
  size_t n, cap;
} mvcc_entvec_t;

/* A key range as etcd's requests give it. */
typedef struct mvcc_span {
  const uint8_t *key;
  size_t klen;
  const uint8_t *end; /* NULL: the single key; end_inf: every key >= key */
  size_t elen;
  bool end_inf;
} mvcc_span_t;

struct mvcc_store {
  mvcc_backend_t be;
  mvcc_btree_t idx;
  mvcc_opts_t opts;
  int64_t rev;         /* current revision */
  int64_t compact_rev; /* -1: never compacted */
  uint64_t ci;         /* consistent index of the last committed batch */
  size_t live;         /* live keys */
  bool in_batch;
  bool deferred;    /* committed batches wait in the open LMDB transaction (mvcc_flush) */
  size_t batch_off; /* redo-log offset where the open batch began (rollback point) */
  /* the write request being applied */
  bool w_active, w_auto_batch;
  int64_t w_begin; /* revision before the request */
  int64_t w_changes;
  /* events of the current write */
  arena_t ev_arena;
  Mvccpb__Event **evs;
  size_t nevs, evcap;
  mvcc_entvec_t scratch; /* entries of the current range */
};

/* Frees the range scratch space after an unusually large range. */
static inline void mvcc_scratch_trim(mvcc_store_t *s) {
  if (s->scratch.cap > 65536) {
    free(s->scratch.v);
    s->scratch.v = NULL;
    s->scratch.cap = s->scratch.n = 0;
  }
}

/* Builds a span from a request's key and range_end (range_end "\0": all keys >= key). */
mvcc_span_t mvcc_span(ProtobufCBinaryData key, ProtobufCBinaryData range_end);

/* The transaction to read from (the open batch or the read txn; call mvcc_read_begin
 * first). Never cache it across writes: growing the map replaces the batch txn. */
static inline MDB_txn *mvcc_txn(mvcc_store_t *s) { return s->be.wtxn ? s->be.wtxn : s->be.rtxn; }
/* Starts a read (see mvcc_be_read_begin). Returns 0 or -EIO. */
int mvcc_read_begin(mvcc_store_t *s);
/* Ends a read started by mvcc_read_begin. */
void mvcc_read_end(mvcc_store_t *s);

/* Collects into v the keys of span live at at_rev, in key order; *count gets how many
 * exist. With limit > 0 only the first limit are collected (all are counted). */
void mvcc_collect(mvcc_store_t *s, const mvcc_span_t *span, int64_t at_rev, int64_t limit, mvcc_entvec_t *v,
                  int64_t *count);
/* Reads the record at rev (a put) into an arena-owned KeyValue. Returns 0,
 * CETCD_ECORRUPT or a backend code. */
int mvcc_read_kv(mvcc_store_t *s, mvcc_rev_t rev, bool keys_only, arena_t *arena, Mvccpb__KeyValue **out);
/* Range with etcd's applier semantics at cur_rev (the store revision as the request sees
 * it). *resp is arena-owned. */
int mvcc_range_at(mvcc_store_t *s, const Etcdserverpb__RangeRequest *req, int64_t cur_rev, arena_t *arena,
                  Etcdserverpb__RangeResponse **resp);

/* Starts a write request (opening a batch of its own if none is open). */
int mvcc_w_begin(mvcc_store_t *s);
/* The revision reads inside the write see (the new one once something was written). */
static inline int64_t mvcc_w_rev(const mvcc_store_t *s) { return s->w_begin + (s->w_changes > 0); }
/* Writes key=val with lease at the next sub revision. ki is the key's index entry (NULL if
 * the key was never written); prev (optional, borrowed until mvcc_w_end) is its current
 * KeyValue when the caller has read it already. */
int mvcc_w_put(mvcc_store_t *s, mvcc_ki_t *ki, const uint8_t *key, size_t klen, const uint8_t *val,
               size_t vlen, int64_t lease, Mvccpb__KeyValue *prev);
/* Writes a tombstone for the live key ki; prev (optional) is its current KeyValue. */
int mvcc_w_delete(mvcc_store_t *s, mvcc_ki_t *ki, Mvccpb__KeyValue *prev);
/* Ends the write: bumps the revision if anything changed, delivers events, commits an
 * own batch. err is the request's result so far; returns it or a commit error. */
int mvcc_w_end(mvcc_store_t *s, int err);

/* The put/delete/range bodies shared by the top-level requests and Txn (inside a write
 * started with mvcc_w_begin; in_txn skips the lease check done by Txn's pre-check). */
int mvcc_put_op(mvcc_store_t *s, const Etcdserverpb__PutRequest *req, bool in_txn, arena_t *arena,
                Etcdserverpb__PutResponse **resp);
int mvcc_delete_op(mvcc_store_t *s, const Etcdserverpb__DeleteRangeRequest *req, arena_t *arena,
                   Etcdserverpb__DeleteRangeResponse **resp);

/* Runs a compaction at rev in the open batch (no checks). */
int mvcc_compact_run(mvcc_store_t *s, int64_t rev);
/* Rebuilds the key index from LMDB (open and abort). */
int mvcc_restore(mvcc_store_t *s);

#endif
