/* Held calls (grpc_server_opts_t.hold): calls that must not reach their handler yet, e.g.
 * one carrying an auth token of a log entry this member has not applied. They wait in
 * srv->held, in arrival order, until grpc_server_recheck_held lets them go; a deadline, a
 * cancellation or the stream closing ends them meanwhile as any other call. */
#include "grpc/grpc_int.h"

void grpc_hold_add(grpc_call_t *c) {
  c->held = true;
  grpc_list_push(&c->srv->held, &c->held_link);
}

void grpc_hold_drop(grpc_call_t *c) {
  c->held = false;
  grpc_list_remove(&c->held_link);
}

void grpc_server_recheck_held(grpc_server_t *s) {
  size_t n = 0;
  for (grpc_list_t *l = s->held.next; l != &s->held; l = l->next) n++;
  /* each call listed now is looked at once: one still held goes to the back */
  for (; n > 0 && !grpc_list_empty(&s->held); n--) {
    grpc_call_t *c = GRPC_CONTAINER(s->held.next, grpc_call_t, held_link);
    grpc_list_remove(&c->held_link);
    if (c->cancelled || c->wire_finished) {
      c->held = false; /* it ended while waiting: freed as any other */
    } else if (s->opts.hold(c)) {
      grpc_list_push(&s->held, &c->held_link);
    } else {
      c->held = false;
      if (c->local)
        grpc_call_local_release(c);
      else
        grpc_session_release(c);
    }
  }
}
