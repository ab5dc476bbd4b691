/* Unit tests for the gateway's protobuf ⇄ JSON conversion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "base/pbjson.h"
#include "cetcd/errors.h"
#include "rpc.pb-c.h"

/* Encodes msg into a NUL-terminated string (caller frees b). */
static const char *enc(const ProtobufCMessage *m, buf_t *b) {
  buf_reset(b);
  pbjson_encode(m, b);
  buf_append(b, "", 1);
  return (const char *)b->data;
}

/* etcd's gateway shape: original names, int64 as strings, bytes as base64, defaults omitted. */
static void test_encode_range_response(void **state) {
  (void)state;
  Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
  kv.key.data = (uint8_t *)"foo";
  kv.key.len = 3;
  kv.value.data = (uint8_t *)"bar";
  kv.value.len = 3;
  kv.create_revision = 2;
  kv.mod_revision = 2;
  kv.version = 1;
  Mvccpb__KeyValue *kvs[] = {&kv};
  Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
  h.cluster_id = 14841639068965178418ull;
  h.revision = 2;
  h.raft_term = 2;
  Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
  r.header = &h;
  r.kvs = kvs;
  r.n_kvs = 1;
  r.count = 1;
  buf_t b = {0};
  assert_string_equal(enc(&r.base, &b),
                      "{\"header\":{\"cluster_id\":\"14841639068965178418\",\"revision\":\"2\",\"raft_term\":\"2\"},"
                      "\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\","
                      "\"value\":\"YmFy\"}],\"count\":\"1\"}");
  buf_free(&b);
}

/* Enums by name, oneofs only when set, string escaping. */
static void test_encode_enum_oneof(void **state) {
  (void)state;
  Etcdserverpb__Compare c = ETCDSERVERPB__COMPARE__INIT;
  c.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER;
  c.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
  c.key.data = (uint8_t *)"a";
  c.key.len = 1;
  c.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
  c.mod_revision = 0; /* set oneof members are emitted even at zero */
  buf_t b = {0};
  assert_string_equal(enc(&c.base, &b), "{\"result\":\"GREATER\",\"target\":\"MOD\",\"key\":\"YQ==\",\"mod_revision\":\"0\"}");
  Etcdserverpb__StatusResponse s = ETCDSERVERPB__STATUS_RESPONSE__INIT;
  s.version = "a\"b\n";
  assert_string_equal(enc(&s.base, &b), "{\"version\":\"a\\\"b\\u000a\"}");
  buf_free(&b);
}

/* Decoding accepts orig and camelCase names, strings or numbers for ints, nested messages. */
static void test_decode_txn(void **state) {
  (void)state;
  const char *json =
      "{\"compare\":[{\"key\":\"Zm9v\",\"result\":\"EQUAL\",\"target\":\"VALUE\",\"value\":\"YmFy\"}],"
      " \"success\":[{\"requestPut\":{\"key\":\"Zm9v\",\"value\":\"YmFy\",\"lease\":\"0\"}}],"
      " \"failure\":[{\"request_range\":{\"key\":\"Zm9v\",\"limit\":5,\"sort_order\":2}}], \"unknown\":[1,{\"x\":null}]}";
  arena_t a;
  arena_init(&a);
  char err[128];
  ProtobufCMessage *m = NULL;
  assert_int_equal(pbjson_decode(&etcdserverpb__txn_request__descriptor, json, strlen(json), &a, &m, err, sizeof(err)), 0);
  Etcdserverpb__TxnRequest *t = (Etcdserverpb__TxnRequest *)m;
  assert_int_equal(t->n_compare, 1);
  assert_int_equal(t->compare[0]->target, ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE);
  assert_int_equal(t->compare[0]->target_union_case, ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE);
  assert_memory_equal(t->compare[0]->value.data, "bar", 3);
  assert_int_equal(t->n_success, 1);
  assert_int_equal(t->success[0]->request_case, ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT);
  assert_int_equal(t->success[0]->request_put->key.len, 3);
  assert_int_equal(t->failure[0]->request_range->limit, 5);
  assert_int_equal(t->failure[0]->request_range->sort_order, 2);
  arena_destroy(&a);
}

/* Malformed JSON and wrong types are rejected with a message. */
static void test_decode_errors(void **state) {
  (void)state;
  const char *bad[] = {"{", "{\"key\":}", "{\"key\":\"!!\"}", "{\"limit\":\"x\"}", "[1]", "{\"key\":\"Zm9v\"} x",
                       "{\"keys_only\":3}"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    arena_t a;
    arena_init(&a);
    char err[128];
    ProtobufCMessage *m = NULL;
    int rc = pbjson_decode(&etcdserverpb__range_request__descriptor, bad[i], strlen(bad[i]), &a, &m, err, sizeof(err));
    assert_int_equal(rc, CETCD_EINVAL);
    assert_true(strlen(err) > 0);
    arena_destroy(&a);
  }
}

/* A JSON round trip preserves the message. */
static void test_round_trip(void **state) {
  (void)state;
  Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
  uint8_t val[300];
  for (size_t i = 0; i < sizeof(val); i++) val[i] = (uint8_t)i;
  p.key.data = (uint8_t *)"k\x01\xff";
  p.key.len = 3;
  p.value.data = val;
  p.value.len = sizeof(val);
  p.lease = -5;
  p.prev_kv = 1;
  buf_t b = {0};
  enc(&p.base, &b);
  arena_t a;
  arena_init(&a);
  char err[128];
  ProtobufCMessage *m = NULL;
  assert_int_equal(pbjson_decode(&etcdserverpb__put_request__descriptor, (char *)b.data, b.len - 1, &a, &m, err, sizeof(err)), 0);
  Etcdserverpb__PutRequest *q = (Etcdserverpb__PutRequest *)m;
  assert_int_equal(q->key.len, 3);
  assert_memory_equal(q->key.data, "k\x01\xff", 3);
  assert_int_equal(q->value.len, sizeof(val));
  assert_memory_equal(q->value.data, val, sizeof(val));
  assert_int_equal(q->lease, -5);
  assert_true(q->prev_kv);
  arena_destroy(&a);
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_encode_range_response), cmocka_unit_test(test_encode_enum_oneof),
      cmocka_unit_test(test_decode_txn),            cmocka_unit_test(test_decode_errors),
      cmocka_unit_test(test_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
