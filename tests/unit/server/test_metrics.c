/* Unit tests for the metrics (server/metrics.c): op counting as etcd counts, the bounded
 * per-prefix counter, gRPC and fsync families, and the text format, parsed back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka must come after the headers above
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"
#include "server/server.h"

/* Parses the exposition text: every line is a comment or `name[{labels}] value`; returns
 * the value of the sample whose name-and-labels equal `series`, or -1 if absent. */
static double sample(const buf_t *b, const char *series) {
  double found = -1;
  const char *p = (const char *)b->data, *end = p + b->len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    assert_non_null(nl); /* every line ends with a newline */
    char line[512];
    size_t n = (size_t)(nl - p);
    assert_true(n < sizeof(line));
    memcpy(line, p, n);
    line[n] = 0;
    p = nl + 1;
    if (line[0] == '#') {
      assert_true(!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7));
      continue;
    }
    char *sp = strrchr(line, ' ');
    assert_non_null(sp);
    *sp = 0;
    char *num_end;
    double v = strtod(sp + 1, &num_end);
    assert_true(*num_end == 0);
    /* name: [a-zA-Z_:][a-zA-Z0-9_:]*, then optional {k="v",...} */
    assert_true(isalpha((unsigned char)line[0]) || line[0] == '_');
    char *brace = strchr(line, '{');
    if (brace) assert_true(line[strlen(line) - 1] == '}');
    if (!strcmp(line, series)) found = v;
  }
  return found;
}

/* A one-op RequestOp of the given case. */
static Etcdserverpb__RequestOp op_of(int kind, void *req) {
  Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
  op.request_case = (Etcdserverpb__RequestOp__RequestCase)kind;
  op.request_put = req; /* the union's members share storage */
  return op;
}

/* Put, delete, txn and range counting like etcd's metrics txn. */
static void test_counts(void **state) {
  (void)state;
  metrics_reset();
  Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
  put.key = (ProtobufCBinaryData){10, (uint8_t *)"/locks/abc"};
  Cetcdinternal__InternalRequest ir = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  ir.put = &put;
  apply_result_t ok = {0}, bad = {.err = -1};
  metrics_on_apply(&ir, &ok);
  metrics_on_apply(&ir, &ok);
  metrics_on_apply(&ir, &bad); /* failed: not counted */
  Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
  del.key = (ProtobufCBinaryData){5, (uint8_t *)"k/one"};
  Etcdserverpb__DeleteRangeResponse dresp = ETCDSERVERPB__DELETE_RANGE_RESPONSE__INIT;
  Cetcdinternal__InternalRequest idel = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  idel.delete_range = &del;
  apply_result_t dres = {.delete_range = &dresp};
  metrics_on_apply(&idel, &dres); /* deleted nothing: a delete, but no revision */
  dresp.deleted = 1;
  metrics_on_apply(&idel, &dres);
  /* txn: 1 compare + the success branch's range, put and delete */
  Etcdserverpb__RangeRequest rr = ETCDSERVERPB__RANGE_REQUEST__INIT;
  Etcdserverpb__RequestOp o1 = op_of(ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE, &rr),
                          o2 = op_of(ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT, &put),
                          o3 = op_of(ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE, &del);
  Etcdserverpb__RequestOp *succ[] = {&o1, &o2, &o3};
  Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
  Etcdserverpb__Compare *cmps[] = {&cmp};
  Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
  txn.compare = cmps, txn.n_compare = 1, txn.success = succ, txn.n_success = 3;
  Etcdserverpb__TxnResponse tresp = ETCDSERVERPB__TXN_RESPONSE__INIT;
  tresp.succeeded = 1;
  Cetcdinternal__InternalRequest itxn = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  itxn.txn = &txn;
  apply_result_t tres = {.txn = &tresp};
  metrics_on_apply(&itxn, &tres);
  metrics_on_range();

  buf_t b = {0};
  metrics_render(NULL, &b);
  assert_true(sample(&b, "etcd_mvcc_put_total") == 3);
  assert_true(sample(&b, "etcd_mvcc_delete_total") == 3);
  assert_true(sample(&b, "etcd_mvcc_range_total") == 3); /* compare + range op + Range */
  assert_true(sample(&b, "etcd_mvcc_txn_total") == 1);
  assert_true(sample(&b, "cetcd_revisions_total{prefix=\"/locks/\"}") == 3);
  assert_true(sample(&b, "cetcd_revisions_total{prefix=\"k/\"}") == 1); /* the txn's delete had no response */
  assert_true(sample(&b, "etcd_server_version{server_version=\"" CETCD_ETCD_VERSION "\"}") == 1);
  assert_true(sample(&b, "etcd_cluster_version{cluster_version=\"3.4\"}") == 1); /* major.minor, like etcd */
  buf_free(&b);
}

/* Prefix labels: first segment, sanitized, bounded to 64 distinct plus "other". */
static void test_prefixes(void **state) {
  (void)state;
  metrics_reset();
  char p[METRICS_MAX_PREFIX_LEN + 1];
  metrics_key_prefix((const uint8_t *)"/registry/pods/x", 16, p);
  assert_string_equal(p, "/registry/");
  metrics_key_prefix((const uint8_t *)"foo", 3, p);
  assert_string_equal(p, "foo");
  metrics_key_prefix((const uint8_t *)"a\"b\\\n/c", 7, p);
  assert_string_equal(p, "a_b__/");
  metrics_key_prefix((const uint8_t *)"/", 1, p);
  assert_string_equal(p, "/");
  for (int i = 0; i < 100; i++) {
    char k[16];
    int n = snprintf(k, sizeof(k), "/p%d/x", i);
    metrics_on_write((const uint8_t *)k, (size_t)n);
  }
  buf_t b = {0};
  metrics_render(NULL, &b);
  assert_true(sample(&b, "cetcd_revisions_total{prefix=\"/p0/\"}") == 1);
  assert_true(sample(&b, "cetcd_revisions_total{prefix=\"/p63/\"}") == 1);
  assert_true(sample(&b, "cetcd_revisions_total{prefix=\"/p64/\"}") == -1);
  assert_true(sample(&b, "cetcd_revisions_total{prefix=\"other\"}") == 36);
  buf_free(&b);
}

/* go-grpc-prometheus families and the fsync histogram (cumulative buckets). */
static void test_grpc_and_fsync(void **state) {
  (void)state;
  metrics_reset();
  grpc_method_t watch = {"/etcdserverpb.Watch/Watch", GRPC_BIDI_STREAM, NULL, NULL, NULL, NULL};
  grpc_method_t put = {"/etcdserverpb.KV/Put", GRPC_UNARY, NULL, NULL, NULL, NULL};
  for (int i = 0; i < 6; i++) {
    metrics_grpc_observe(&watch, -1);
    metrics_grpc_observe(&watch, GRPC_CANCELLED);
  }
  metrics_grpc_observe(&put, -1);
  metrics_grpc_observe(&put, GRPC_RESOURCE_EXHAUSTED);
  metrics_observe_wal_fsync(0.0005);
  metrics_observe_wal_fsync(0.003);
  metrics_observe_wal_fsync(20);
  buf_t b = {0};
  metrics_render(NULL, &b);
  assert_true(sample(&b,
                     "grpc_server_handled_total{grpc_code=\"Canceled\",grpc_method=\"Watch\",grpc_service="
                     "\"etcdserverpb.Watch\",grpc_type=\"bidi_stream\"}") == 6);
  assert_true(sample(&b,
                     "grpc_server_started_total{grpc_method=\"Watch\",grpc_service=\"etcdserverpb.Watch\","
                     "grpc_type=\"bidi_stream\"}") == 6);
  assert_true(sample(&b,
                     "grpc_server_handled_total{grpc_code=\"ResourceExhausted\",grpc_method=\"Put\","
                     "grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"}") == 1);
  assert_true(sample(&b, "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"}") == 1);
  assert_true(sample(&b, "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.004\"}") == 2);
  assert_true(sample(&b, "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"8.192\"}") == 2);
  assert_true(sample(&b, "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"}") == 3);
  assert_true(sample(&b, "etcd_disk_wal_fsync_duration_seconds_count") == 3);
  double sum = sample(&b, "etcd_disk_wal_fsync_duration_seconds_sum");
  assert_true(sum > 20.003 && sum < 20.004);
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counts),
      cmocka_unit_test(test_prefixes),
      cmocka_unit_test(test_grpc_and_fsync),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
