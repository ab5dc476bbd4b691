/* Write primitives: one write request = at most one new main revision, its puts and
 * tombstones numbered by sub revision; events delivered when the request ends. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "mvcc/store_int.h"

int mvcc_w_begin(mvcc_store_t *s) {
  s->w_auto_batch = false;
  if (!s->in_batch) {
    int rc = mvcc_batch_begin(s);
    if (rc) return rc;
    s->w_auto_batch = true;
  }
  s->w_active = true;
  s->w_begin = s->rev;
  s->w_changes = 0;
  s->nevs = 0;
  return 0;
}

/* True if this write should produce events (someone listens). */
static bool mvcc_want_events(mvcc_store_t *s) {
  return s->opts.on_events && (!s->opts.events_wanted || s->opts.events_wanted(s->opts.hook_ctx));
}

/* True if this write's events should carry prev_kv. */
static bool mvcc_want_prev(mvcc_store_t *s) {
  return mvcc_want_events(s) && (!s->opts.prev_wanted || s->opts.prev_wanted(s->opts.hook_ctx));
}

/* Appends an event (arena-owned) for on_events. */
static Mvccpb__Event *add_event(mvcc_store_t *s) {
  if (s->nevs == s->evcap) {
    s->evcap = s->evcap ? s->evcap * 2 : 16;
    s->evs = xrealloc(s->evs, s->evcap * sizeof(*s->evs));
  }
  Mvccpb__Event *ev = ARENA_NEW(&s->ev_arena, Mvccpb__Event);
  mvccpb__event__init(ev);
  s->evs[s->nevs++] = ev;
  return ev;
}

int mvcc_w_put(mvcc_store_t *s, mvcc_ki_t *ki, const uint8_t *key, size_t klen, const uint8_t *val,
               size_t vlen, int64_t lease, Mvccpb__KeyValue *prev) {
  mvcc_rev_t rev = {s->w_begin + 1, s->w_changes};
  mvcc_rev_t mod;
  int64_t created = rev.main, ver = 0, old_lease = 0;
  bool found = ki && mvcc_ki_get(ki, rev.main, &mod, &created, &ver);
  if (!found) {
    created = rev.main;
    ver = 0;
  } else {
    old_lease = ki->lease;
  }
  if (!found) prev = NULL;
  if (!mvcc_want_prev(s)) {
    prev = NULL;
  } else if (found && !prev) {
    int rc = mvcc_read_kv(s, mod, false, &s->ev_arena, &prev);
    if (rc) return rc;
  }
  mvcc_kv_view_t kv = {key, klen, val, vlen, created, rev.main, ver + 1, lease};
  uint8_t rk[MVCC_REV_BYTES];
  mvcc_rev_encode(rev, false, rk);
  size_t n = mvcc_kv_encoded_size(&kv);
  uint8_t *p = mvcc_be_reserve(&s->be, s->be.key_dbi, rk, sizeof(rk), n, MDB_APPEND);
  mvcc_kv_encode(&kv, p);
  int rc = mvcc_be_put_reserved(&s->be);
  if (rc) return rc;
  if (!ki) {
    ki = mvcc_ki_new(key, klen);
    mvcc_bt_insert(&s->idx, ki);
  }
  if (!mvcc_ki_is_live(ki)) s->live++;
  mvcc_ki_put(ki, rev);
  ki->lease = lease;
  s->w_changes++;
  if (old_lease != lease) { /* an overwrite with the same lease stays attached */
    if (old_lease && s->opts.lease_detach) s->opts.lease_detach(s->opts.hook_ctx, old_lease, key, klen);
    if (lease && s->opts.lease_attach) s->opts.lease_attach(s->opts.hook_ctx, lease, key, klen);
  }
  if (mvcc_want_events(s)) {
    Mvccpb__Event *ev = add_event(s);
    ev->type = MVCCPB__EVENT__EVENT_TYPE__PUT;
    Mvccpb__KeyValue *k = ARENA_NEW(&s->ev_arena, Mvccpb__KeyValue);
    mvccpb__key_value__init(k);
    k->key.data = arena_memdup(&s->ev_arena, key, klen);
    k->key.len = klen;
    k->value.data = vlen ? arena_memdup(&s->ev_arena, val, vlen) : NULL;
    k->value.len = vlen;
    k->create_revision = created;
    k->mod_revision = rev.main;
    k->version = ver + 1;
    k->lease = lease;
    ev->kv = k;
    ev->prev_kv = prev;
  }
  return 0;
}

int mvcc_w_delete(mvcc_store_t *s, mvcc_ki_t *ki, Mvccpb__KeyValue *prev) {
  mvcc_rev_t rev = {s->w_begin + 1, s->w_changes};
  if (!mvcc_want_prev(s)) {
    prev = NULL;
  } else if (!prev) {
    mvcc_rev_t mod;
    if (mvcc_ki_get(ki, rev.main, &mod, NULL, NULL)) {
      int rc = mvcc_read_kv(s, mod, false, &s->ev_arena, &prev);
      if (rc) return rc;
    }
  }
  mvcc_kv_view_t kv = {.key = ki->key, .klen = ki->klen};
  uint8_t rk[MVCC_REV_BYTES_TOMB];
  mvcc_rev_encode(rev, true, rk);
  size_t n = mvcc_kv_encoded_size(&kv);
  uint8_t *p = mvcc_be_reserve(&s->be, s->be.key_dbi, rk, sizeof(rk), n, MDB_APPEND);
  mvcc_kv_encode(&kv, p);
  int rc = mvcc_be_put_reserved(&s->be);
  if (rc) return rc;
  int64_t lease = ki->lease;
  if (mvcc_ki_tombstone(ki, rev) != 0) {
    LOGE("msg=\"tombstone on a key that is not live\" revision=%lld", (long long)rev.main);
    return CETCD_ECORRUPT;
  }
  s->live--;
  s->w_changes++;
  if (lease && s->opts.lease_detach) s->opts.lease_detach(s->opts.hook_ctx, lease, ki->key, ki->klen);
  if (mvcc_want_events(s)) {
    Mvccpb__Event *ev = add_event(s);
    ev->type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
    Mvccpb__KeyValue *k = ARENA_NEW(&s->ev_arena, Mvccpb__KeyValue);
    mvccpb__key_value__init(k);
    k->key.data = arena_memdup(&s->ev_arena, ki->key, ki->klen);
    k->key.len = ki->klen;
    k->mod_revision = rev.main;
    ev->kv = k;
    ev->prev_kv = prev;
  }
  return 0;
}

int mvcc_w_end(mvcc_store_t *s, int err) {
  s->w_active = false;
  if (s->w_changes > 0) {
    s->rev = s->w_begin + 1;
    if (s->opts.on_events && s->nevs)
      s->opts.on_events(s->opts.hook_ctx, s->rev, (const Mvccpb__Event *const *)s->evs, s->nevs);
  }
  if (s->nevs || s->ev_arena.head) {
    arena_destroy(&s->ev_arena);
    arena_init(&s->ev_arena);
  }
  s->nevs = 0;
  mvcc_scratch_trim(s);
  if (s->w_auto_batch) {
    s->w_auto_batch = false;
    if (err && s->w_changes == 0) {
      mvcc_be_abort(&s->be);
      s->in_batch = false;
    } else {
      int rc = mvcc_batch_commit(s, s->ci);
      if (!err) err = rc;
    }
  }
  return err;
}
