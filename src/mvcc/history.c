/* History: the events of a span of revisions, read back from the `key` bucket in revision
 * order (what a watcher that starts in the past, or fell behind, catches up from). */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "mvcc/store_int.h"

/* Grows the output array to hold one more event. */
static void evs_push(Mvccpb__Event ***evs, size_t *n, size_t *cap, Mvccpb__Event *ev) {
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 64;
    *evs = xrealloc(*evs, *cap * sizeof(**evs));
  }
  (*evs)[(*n)++] = ev;
}

/* Fills ev->prev_kv with the key's state at rev-1, when it existed then (and the
 * revision is still in the index; a compacted one yields no prev_kv, as in etcd). */
static int fill_prev(mvcc_store_t *s, Mvccpb__Event *ev, int64_t rev, arena_t *arena) {
  mvcc_ki_t *ki = mvcc_bt_find(&s->idx, ev->kv->key.data, ev->kv->key.len);
  mvcc_rev_t mod;
  if (!ki || rev <= 1 || !mvcc_ki_get(ki, rev - 1, &mod, NULL, NULL)) return 0;
  int rc = mvcc_read_kv(s, mod, false, arena, &ev->prev_kv);
  if (rc == CETCD_ECORRUPT) {
    ev->prev_kv = NULL; /* compacted away underneath: no prev_kv */
    return 0;
  }
  return rc;
}

int mvcc_events_range(mvcc_store_t *s, const mvcc_events_query_t *q, arena_t *arena, mvcc_events_t *out) {
  memset(out, 0, sizeof(*out));
  out->next_rev = q->from_rev;
  if (q->from_rev <= 0 || q->to_rev < q->from_rev) return CETCD_EINVAL;
  if (q->from_rev < s->compact_rev) return CETCD_ECOMPACTED;
  int64_t to = q->to_rev < s->rev ? q->to_rev : s->rev;
  if (to < q->from_rev) return 0;
  size_t max_revs = q->max_revs ? q->max_revs : 1000;
  size_t max_bytes = q->max_bytes ? q->max_bytes : (size_t)8 << 20;

  int rc = mvcc_read_begin(s);
  if (rc) return rc;
  MDB_cursor *c = NULL;
  rc = mdb_cursor_open(mvcc_txn(s), s->be.key_dbi, &c);
  if (rc) {
    mvcc_read_end(s);
    return mvcc_be_err(rc);
  }
  uint8_t start[MVCC_REV_BYTES];
  mvcc_rev_encode((mvcc_rev_t){q->from_rev, 0}, false, start);
  MDB_val k = {sizeof(start), start}, v;
  size_t nrevs = 0, bytes = 0, cap = 0;
  int64_t cur = 0; /* main revision being read */
  int64_t next = to + 1;
  int r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  for (; r == 0; r = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    if (k.mv_size < MVCC_REV_BYTES) continue;
    mvcc_rev_t rev = mvcc_rev_decode(k.mv_data);
    if (rev.main > to) break;
    if (rev.main != cur) {
      /* a new revision: stop here if the budget is spent (whole revisions only) */
      if (cur && (nrevs >= max_revs || bytes >= max_bytes)) {
        next = rev.main;
        break;
      }
      cur = rev.main;
      nrevs++;
    }
    mvcc_kv_view_t view;
    if (mvcc_kv_decode(v.mv_data, v.mv_size, &view)) {
      rc = CETCD_ECORRUPT;
      break;
    }
    if (q->match && !q->match(q->match_ctx, view.key, view.klen)) continue;
    bytes += v.mv_size;
    Mvccpb__Event *ev = ARENA_NEW(arena, Mvccpb__Event);
    mvccpb__event__init(ev);
    Mvccpb__KeyValue *kv = mvcc_kv_decode_arena(v.mv_data, v.mv_size, false, arena);
    if (!kv) {
      rc = CETCD_ECORRUPT;
      break;
    }
    if (mvcc_rev_is_tomb(k.mv_data, k.mv_size)) {
      ev->type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
      kv->mod_revision = rev.main;
    } else {
      ev->type = MVCCPB__EVENT__EVENT_TYPE__PUT;
    }
    ev->kv = kv;
    if (q->prev_kv &&
        !(ev->type == MVCCPB__EVENT__EVENT_TYPE__PUT && kv->create_revision == kv->mod_revision) &&
        (rc = fill_prev(s, ev, rev.main, arena)))
      break;
    evs_push(&out->evs, &out->n, &cap, ev);
  }
  if (!rc && r != 0 && r != MDB_NOTFOUND) rc = mvcc_be_err(r);
  mdb_cursor_close(c);
  mvcc_read_end(s);
  if (rc) {
    mvcc_events_free(out);
    return rc;
  }
  out->next_rev = next;
  return 0;
}

void mvcc_events_free(mvcc_events_t *out) {
  free(out->evs);
  out->evs = NULL;
  out->n = 0;
}
