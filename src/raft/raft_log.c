/* The in-memory raft log: entries after the last compaction point, commit/applied/stable
 * indexes, matching and conflict search. Dropped entry data goes to the graveyard so that a
 * Ready or a queued message pointing at it stays valid. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "raft/raft_int.h"

void raft_log_init(raft_log_t *l, uint64_t snap_index, uint64_t snap_term, raft_ptrvec_t *gy) {
  memset(l, 0, sizeof(*l));
  l->snap_index = snap_index;
  l->snap_term = snap_term;
  l->committed = l->applied = l->stable = snap_index;
  l->gy = gy;
}

void raft_log_destroy(raft_log_t *l) {
  for (size_t i = 0; i < l->len; i++) free((void *)l->ents[l->head + i].data);
  free(l->ents);
  l->ents = NULL;
  l->len = l->head = l->cap = 0;
}

int raft_log_term(const raft_log_t *l, uint64_t i, uint64_t *t) {
  if (i == l->snap_index) {
    *t = l->snap_term;
    return 0;
  }
  if (i < l->snap_index) return CETCD_ERAFTCOMPACTED;
  if (i > raft_log_last(l)) return CETCD_ERAFTUNAVAIL;
  *t = raft_log_at(l, i)->term;
  return 0;
}

uint64_t raft_log_term0(const raft_log_t *l, uint64_t i) {
  uint64_t t = 0;
  return raft_log_term(l, i, &t) == 0 ? t : 0;
}

bool raft_log_match_term(const raft_log_t *l, uint64_t i, uint64_t t) {
  uint64_t have;
  return raft_log_term(l, i, &have) == 0 && have == t;
}

bool raft_log_up_to_date(const raft_log_t *l, uint64_t last_index, uint64_t last_term) {
  uint64_t lt = raft_log_last_term(l);
  return last_term > lt || (last_term == lt && last_index >= raft_log_last(l));
}

/* Drops entries from index i on (data to the graveyard). */
static void truncate_from(raft_log_t *l, uint64_t i) {
  uint64_t last = raft_log_last(l);
  for (uint64_t k = i; k <= last; k++) {
    raft_entry_t *e = raft_log_at(l, k);
    if (e->data) raft_ptrvec_push(l->gy, (void *)e->data);
  }
  l->len = (size_t)(i - l->snap_index - 1);
  if (l->stable >= i) l->stable = i - 1;
}

/* Makes room for one more entry at the end, sliding live entries to the front when the dead
 * prefix is at least as large as the live part (amortized O(1)). */
static void reserve_one(raft_log_t *l) {
  if (l->head + l->len < l->cap) return;
  if (l->head > 0 && l->head >= l->len) {
    memmove(l->ents, l->ents + l->head, l->len * sizeof(*l->ents));
    l->head = 0;
    return;
  }
  l->cap = l->cap ? l->cap * 2 : 64;
  l->ents = xrealloc(l->ents, l->cap * sizeof(*l->ents));
}

/* Copies e (and its data) to the end of the log. */
static void push_copy(raft_log_t *l, uint64_t term, raft_entry_type_t type, const uint8_t *data, size_t len) {
  reserve_one(l);
  raft_entry_t *d = &l->ents[l->head + l->len];
  d->term = term;
  d->index = raft_log_last(l) + 1;
  d->type = type;
  d->len = len;
  d->data = len ? xmemdup(data, len) : NULL;
  l->len++;
}

void raft_log_append(raft_log_t *l, const raft_entry_t *ents, size_t n) {
  if (n == 0) return;
  uint64_t first = ents[0].index;
  if (first <= raft_log_last(l)) truncate_from(l, first);
  for (size_t i = 0; i < n; i++) push_copy(l, ents[i].term, ents[i].type, ents[i].data, ents[i].len);
}

uint64_t raft_log_append_one(raft_log_t *l, uint64_t term, raft_entry_type_t type, const uint8_t *data,
                             size_t len) {
  push_copy(l, term, type, data, len);
  return raft_log_last(l);
}

/* Index of the first entry of ents that is new or conflicts with ours; 0 if all match. */
static uint64_t find_conflict(const raft_log_t *l, const raft_entry_t *ents, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!raft_log_match_term(l, ents[i].index, ents[i].term)) return ents[i].index;
  return 0;
}

bool raft_log_maybe_append(raft_log_t *l, uint64_t index, uint64_t log_term, uint64_t committed,
                           const raft_entry_t *ents, size_t n, uint64_t *lastnew) {
  if (!raft_log_match_term(l, index, log_term)) return false;
  uint64_t last_new = index + n;
  uint64_t ci = find_conflict(l, ents, n);
  if (ci != 0) {
    /* A conflict at or below commit would break Raft's safety: never truncate it. */
    if (ci <= l->committed) abort();
    size_t off = (size_t)(ci - index - 1);
    raft_log_append(l, ents + off, n - off);
  }
  raft_log_commit_to(l, committed < last_new ? committed : last_new);
  *lastnew = last_new;
  return true;
}

uint64_t raft_log_find_conflict_by_term(const raft_log_t *l, uint64_t index, uint64_t term) {
  if (index > raft_log_last(l)) index = raft_log_last(l);
  while (index > 0) {
    uint64_t t;
    if (raft_log_term(l, index, &t) != 0 || t <= term) break;
    index--;
  }
  return index;
}

void raft_log_commit_to(raft_log_t *l, uint64_t c) {
  if (c <= l->committed) return;
  if (c > raft_log_last(l)) abort(); /* commit beyond the log: a caller bug */
  l->committed = c;
}

bool raft_log_maybe_commit(raft_log_t *l, uint64_t max, uint64_t term) {
  if (max > l->committed && raft_log_term0(l, max) == term) {
    raft_log_commit_to(l, max);
    return true;
  }
  return false;
}

size_t raft_log_limit(const raft_log_t *l, uint64_t lo, size_t max_bytes) {
  uint64_t last = raft_log_last(l);
  size_t n = 0, bytes = 0;
  for (uint64_t i = lo; i <= last; i++) {
    bytes += raft_log_at(l, i)->len + 16;
    if (n > 0 && bytes > max_bytes) break;
    n++;
  }
  return n;
}

void raft_log_compact(raft_log_t *l, uint64_t i) {
  uint64_t t = raft_log_term0(l, i);
  size_t drop = (size_t)(i - l->snap_index);
  for (size_t k = 0; k < drop; k++) {
    raft_entry_t *e = &l->ents[l->head + k];
    if (e->data) raft_ptrvec_push(l->gy, (void *)e->data);
  }
  l->head += drop;
  l->len -= drop;
  if (l->len == 0) l->head = 0;
  l->snap_index = i;
  l->snap_term = t;
  if (l->stable < i) l->stable = i;
}

void raft_log_restore(raft_log_t *l, uint64_t index, uint64_t term) {
  truncate_from(l, l->snap_index + 1);
  l->head = 0;
  l->snap_index = index;
  l->snap_term = term;
  l->committed = index;
  l->stable = index;
  if (l->applied > index) l->applied = index;
}
