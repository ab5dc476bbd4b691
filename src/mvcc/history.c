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

/* Bytes a length-delimited protobuf field of n bytes takes (tag, length varint, n). */
static size_t field_size(size_t n) {
  size_t v = 1;
  for (size_t x = n; x >= 0x80; x >>= 7) v++;
  return 1 + v + n;
}

/* Bytes ev adds to a WatchResponse (its events field). */
static size_t event_size(const Mvccpb__Event *ev) {
  return field_size(protobuf_c_message_get_packed_size(&ev->base));
}

/* Cursor state of one mvcc_events_range: where the revision being read began. */
typedef struct span {
  size_t nrevs, bytes;     /* revisions started, response bytes of the events kept */
  int64_t cur;             /* main revision being read (0 before the first) */
  size_t cur_n, cur_bytes; /* events and bytes before it */
} span_t;

/* Closes the revision being read before the one at `next`: true if the read stops here.
 * A revision that overflows max_bytes is dropped (read again next time) unless it is the
 * first, so a batch is whole revisions that fit, or one revision alone. */
static bool span_close(span_t *sp, mvcc_events_t *out, size_t max_bytes, size_t max_revs, int64_t next,
                       int64_t *stop) {
  if (!sp->cur) return false;
  if (sp->bytes > max_bytes && sp->nrevs > 1) {
    out->n = sp->cur_n;
    sp->bytes = sp->cur_bytes;
    *stop = sp->cur;
    return true;
  }
  if (sp->bytes >= max_bytes || sp->nrevs >= max_revs) {
    *stop = next;
    return true;
  }
  return false;
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
  size_t cap = 0;
  span_t sp = {0};
  int64_t next = to + 1;
  bool stopped = false;
  int r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  for (; r == 0; r = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    if (k.mv_size < MVCC_REV_BYTES) continue;
    mvcc_rev_t rev = mvcc_rev_decode(k.mv_data);
    if (rev.main > to) break;
    if (rev.main != sp.cur) {
      if ((stopped = span_close(&sp, out, max_bytes, max_revs, rev.main, &next))) break;
      sp.cur = rev.main;
      sp.cur_n = out->n;
      sp.cur_bytes = sp.bytes;
      sp.nrevs++;
    }
    mvcc_kv_view_t view;
    if (mvcc_kv_decode(v.mv_data, v.mv_size, &view)) {
      rc = CETCD_ECORRUPT;
      break;
    }
    if (q->match && !q->match(q->match_ctx, view.key, view.klen)) continue;
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
    sp.bytes += event_size(ev);
    evs_push(&out->evs, &out->n, &cap, ev);
  }
  if (!rc && r != 0 && r != MDB_NOTFOUND) rc = mvcc_be_err(r);
  if (!rc && !stopped) span_close(&sp, out, max_bytes, SIZE_MAX, to + 1, &next);
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
