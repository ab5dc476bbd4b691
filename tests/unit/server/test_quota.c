/* Unit tests for the backend quota's cost estimates and threshold (server/quota.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "server/quota.h"

/* A put request for key/value. */
static Etcdserverpb__PutRequest put_req(const char *k, const char *v) {
  Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
  p.key = (ProtobufCBinaryData){strlen(k), (uint8_t *)k};
  p.value = (ProtobufCBinaryData){strlen(v), (uint8_t *)v};
  return p;
}

/* etcd's costPut: 256 + key + value. */
static void test_cost_put(void **state) {
  (void)state;
  Etcdserverpb__PutRequest p = put_req("foo", "barbaz");
  assert_int_equal(quota_cost_put(&p), 256 + 3 + 6);
  Etcdserverpb__PutRequest e = put_req("k", "");
  assert_int_equal(quota_cost_put(&e), 257);
}

/* costTxn: the larger branch, only puts cost; nested txns are counted too. */
static void test_cost_txn(void **state) {
  (void)state;
  Etcdserverpb__PutRequest p1 = put_req("a", "1234"), p2 = put_req("bb", ""), p3 = put_req("ccc", "xy");
  Etcdserverpb__RangeRequest rr = ETCDSERVERPB__RANGE_REQUEST__INIT;
  Etcdserverpb__DeleteRangeRequest dr = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
  Etcdserverpb__RequestOp o1 = ETCDSERVERPB__REQUEST_OP__INIT, o2 = ETCDSERVERPB__REQUEST_OP__INIT,
                          o3 = ETCDSERVERPB__REQUEST_OP__INIT, o4 = ETCDSERVERPB__REQUEST_OP__INIT,
                          o5 = ETCDSERVERPB__REQUEST_OP__INIT;
  o1.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT, o1.request_put = &p1;
  o2.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT, o2.request_put = &p2;
  o3.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE, o3.request_range = &rr;
  o4.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE, o4.request_delete_range = &dr;
  Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
  assert_int_equal(quota_cost_txn(&t), 0); /* nothing stored: passes any quota */
  Etcdserverpb__RequestOp *succ[] = {&o1, &o3, &o2}, *fail[] = {&o4};
  t.success = succ, t.n_success = 3, t.failure = fail, t.n_failure = 1;
  assert_int_equal(quota_cost_txn(&t), 256 + 5 + 256 + 2);
  t.success = fail, t.n_success = 1, t.failure = succ, t.n_failure = 3; /* the larger branch */
  assert_int_equal(quota_cost_txn(&t), 256 + 5 + 256 + 2);
  /* a nested txn's puts count */
  Etcdserverpb__RequestOp *inner_ops[] = {&o3};
  Etcdserverpb__TxnRequest inner = ETCDSERVERPB__TXN_REQUEST__INIT;
  Etcdserverpb__RequestOp nested_put = ETCDSERVERPB__REQUEST_OP__INIT;
  nested_put.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT, nested_put.request_put = &p3;
  inner_ops[0] = &nested_put;
  inner.success = inner_ops, inner.n_success = 1;
  o5.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN, o5.request_txn = &inner;
  Etcdserverpb__RequestOp *outer[] = {&o5, &o4};
  Etcdserverpb__TxnRequest t2 = ETCDSERVERPB__TXN_REQUEST__INIT;
  t2.success = outer, t2.n_success = 2;
  assert_int_equal(quota_cost_txn(&t2), 256 + 5);
}

/* Available: cost 0 always; no quota; strictly below the quota. */
static void test_available(void **state) {
  (void)state;
  assert_true(quota_available(1000, 5000, 0));
  assert_true(quota_available(-1, INT64_C(1) << 40, 300));
  assert_true(quota_available(1000, 699, 300));
  assert_false(quota_available(1000, 700, 300)); /* db + cost == quota: refused, like etcd */
  assert_false(quota_available(1000, 2000, 1));
  assert_true(quota_available(INT64_C(2) << 30, INT64_C(2) << 29, QUOTA_LEASE_OVERHEAD));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cost_put),
      cmocka_unit_test(test_cost_txn),
      cmocka_unit_test(test_available),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
