/* libcetcd allocation: plain malloc with a per-thread failure-injection hook for tests. */
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

static _Thread_local long fail_at;   /* 0 = off, else countdown to the failing call */
static _Thread_local long count;     /* allocations since the last arming */
static _Thread_local bool fail_done; /* the injected failure happened */

void cetcd__alloc_fail_at(long n) {
  fail_at = n;
  count = 0;
  fail_done = false;
}

long cetcd__alloc_count(void) { return count; }

bool cetcd__alloc_failed(void) { return fail_done; }

/* True when this allocation must fail. */
static bool inject(void) {
  count++;
  if (fail_at > 0 && count == fail_at) {
    fail_done = true;
    return true;
  }
  return false;
}

void *cc_malloc(size_t n) {
  if (inject()) return NULL;
  return malloc(n ? n : 1);
}

void *cc_calloc(size_t c, size_t s) {
  if (inject()) return NULL;
  return calloc(c ? c : 1, s ? s : 1);
}

void *cc_realloc(void *p, size_t n) {
  if (inject()) return NULL;
  return realloc(p, n ? n : 1);
}

void cc_free(void *p) { free(p); }

char *cc_memdup(const void *p, size_t n) {
  char *d = cc_malloc(n + 1);
  if (!d) return NULL;
  if (n) memcpy(d, p, n);
  d[n] = 0;
  return d;
}

static _Thread_local bool pb_oom; /* a protobuf-c allocation failed on this thread */

static void *pb_alloc(void *ud, size_t n) {
  (void)ud;
  void *p = cc_malloc(n);
  if (!p) pb_oom = true;
  return p;
}

bool cc_pb_oom_take(void) {
  bool r = pb_oom;
  pb_oom = false;
  return r;
}

static void pb_free(void *ud, void *p) {
  (void)ud;
  cc_free(p);
}

ProtobufCAllocator cc_pb_alloc = {pb_alloc, pb_free, NULL};

void cetcd_free(void *p) { free(p); }
