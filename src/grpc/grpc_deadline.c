/* Call deadlines (grpc-timeout): a min-heap of calls and one libuv timer per server.
 * The timer is armed for the earliest deadline; removing the earliest call does not
 * re-arm it (the timer fires early, finds nothing due and re-arms), which keeps the
 * common path — every etcdctl request carries a timeout — to a heap push and pop. */
#include "base/alloc.h"
#include "grpc/grpc_int.h"

/* Stores c at heap[i] and records the index in the call. */
static void heap_set(grpc_server_t *s, size_t i, grpc_call_t *c) {
  s->heap[i] = c;
  c->heap_idx = i;
}

/* Restores the heap property upwards from i. */
static void sift_up(grpc_server_t *s, size_t i) {
  grpc_call_t *c = s->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (s->heap[p]->deadline <= c->deadline) break;
    heap_set(s, i, s->heap[p]);
    i = p;
  }
  heap_set(s, i, c);
}

/* Restores the heap property downwards from i. */
static void sift_down(grpc_server_t *s, size_t i) {
  grpc_call_t *c = s->heap[i];
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    uint64_t best = c->deadline;
    if (l < s->heap_len && s->heap[l]->deadline < best) m = l, best = s->heap[l]->deadline;
    if (l + 1 < s->heap_len && s->heap[l + 1]->deadline < best) m = l + 1;
    if (m == i) break;
    heap_set(s, i, s->heap[m]);
    i = m;
  }
  heap_set(s, i, c);
}

/* Arms the timer for the earliest deadline unless it already fires no later. */
static void arm(grpc_server_t *s) {
  if (s->heap_len == 0 || s->handles_closing) return;
  uint64_t due = s->heap[0]->deadline;
  if (s->timer_due && s->timer_due <= due) return;
  uint64_t now = uv_now(s->loop);
  uv_timer_start(&s->deadline_timer, grpc_deadline_fire, due > now ? due - now : 0, 0);
  s->timer_due = due;
}

void grpc_deadline_add(grpc_server_t *s, grpc_call_t *c) {
  if (s->heap_len == s->heap_cap) {
    s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 64;
    s->heap = xrealloc(s->heap, s->heap_cap * sizeof(*s->heap));
  }
  s->heap[s->heap_len++] = c;
  sift_up(s, s->heap_len - 1);
  arm(s);
}

void grpc_deadline_remove(grpc_server_t *s, grpc_call_t *c) {
  size_t i = c->heap_idx;
  if (i == SIZE_MAX) return;
  c->heap_idx = SIZE_MAX;
  grpc_call_t *last = s->heap[--s->heap_len];
  if (i == s->heap_len) return;
  heap_set(s, i, last);
  sift_up(s, i);
  sift_down(s, last->heap_idx);
}

void grpc_deadline_fire(uv_timer_t *t) {
  grpc_server_t *s = t->data;
  s->timer_due = 0;
  uint64_t now = uv_now(s->loop);
  while (s->heap_len > 0 && s->heap[0]->deadline <= now) {
    grpc_call_t *c = s->heap[0];
    grpc_deadline_remove(s, c);
    grpc_call_abort(c, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
  }
  arm(s);
}
