/* Unit tests for the alarm store (server/alarm.c): raise/clear, the etcd text form, the
 * persisted layout, restore after reopening, and the apply-time gates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka must come after the headers above
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cetcd/errors.h"
#include "mvcc/mvcc.h"
#include "server/alarm.h"

#define MEMBER UINT64_C(10276657743932975437)
#define NOSPACE ETCDSERVERPB__ALARM_TYPE__NOSPACE
#define CORRUPT ETCDSERVERPB__ALARM_TYPE__CORRUPT

/* nftw callback removing one entry. */
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

/* Counts the records of the alarm bucket and checks the key is the AlarmMember bytes. */
static int check_rec(void *ctx, const void *key, size_t klen, const void *val, size_t vlen) {
  (void)val;
  int *n = ctx;
  assert_int_equal(vlen, 0);
  Etcdserverpb__AlarmMember *m = etcdserverpb__alarm_member__unpack(NULL, klen, key);
  assert_non_null(m);
  assert_true(m->alarm == NOSPACE || m->alarm == CORRUPT);
  etcdserverpb__alarm_member__free_unpacked(m, NULL);
  (*n)++;
  return 0;
}

/* Raise, list, clear through alarm_apply; persistence across reopening. */
static void test_apply_and_persist(void **state) {
  (void)state;
  char dir[] = "/tmp/cetcd-alarm-test-XXXXXX";
  assert_non_null(mkdtemp(dir));
  mvcc_store_t *s;
  assert_int_equal(mvcc_open(dir, NULL, &s), 0);
  alarm_store_t *as;
  assert_int_equal(alarm_store_open(s, &as), 0);
  assert_int_equal(alarm_count(as, ETCDSERVERPB__ALARM_TYPE__NONE), 0);

  arena_t a;
  arena_init(&a);
  Etcdserverpb__AlarmRequest req = ETCDSERVERPB__ALARM_REQUEST__INIT;
  req.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE;
  req.memberid = MEMBER;
  req.alarm = NOSPACE;
  Etcdserverpb__AlarmResponse *resp;
  assert_int_equal(mvcc_batch_begin(s), 0);
  assert_int_equal(alarm_apply(as, &req, &a, &resp), 0);
  assert_int_equal(resp->n_alarms, 1);
  assert_int_equal(resp->alarms[0]->memberid, MEMBER);
  assert_int_equal(alarm_apply(as, &req, &a, &resp), 0); /* again: still listed, not doubled */
  assert_int_equal(resp->n_alarms, 1);
  req.memberid = 7;
  req.alarm = CORRUPT;
  assert_int_equal(alarm_apply(as, &req, &a, &resp), 0);
  assert_int_equal(mvcc_batch_commit(s, 5), 0);
  assert_int_equal(alarm_count(as, ETCDSERVERPB__ALARM_TYPE__NONE), 2);
  assert_int_equal(alarm_count(as, NOSPACE), 1);
  assert_true(alarm_is_raised(as, MEMBER, NOSPACE));
  assert_false(alarm_is_raised(as, MEMBER, CORRUPT));

  req.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET;
  req.alarm = ETCDSERVERPB__ALARM_TYPE__NONE;
  assert_int_equal(alarm_apply(as, &req, &a, &resp), 0);
  assert_int_equal(resp->n_alarms, 2);
  assert_int_equal(resp->alarms[0]->alarm, NOSPACE); /* (type, member) order */
  req.alarm = CORRUPT;
  assert_int_equal(alarm_apply(as, &req, &a, &resp), 0);
  assert_int_equal(resp->n_alarms, 1);
  assert_int_equal(resp->alarms[0]->memberid, 7);

  int n = 0;
  assert_int_equal(mvcc_bucket_foreach(s, "alarm", check_rec, &n), 0);
  assert_int_equal(n, 2);

  /* reopen: both restored */
  alarm_store_free(as);
  mvcc_close(s);
  assert_int_equal(mvcc_open(dir, NULL, &s), 0);
  assert_int_equal(alarm_store_open(s, &as), 0);
  assert_int_equal(alarm_count(as, ETCDSERVERPB__ALARM_TYPE__NONE), 2);
  assert_true(alarm_is_raised(as, 7, CORRUPT));

  /* deactivate: listed once, then a no-op with an empty list */
  req.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE;
  req.memberid = 7;
  assert_int_equal(alarm_apply(as, &req, &a, &resp), 0);
  assert_int_equal(resp->n_alarms, 1);
  assert_int_equal(alarm_apply(as, &req, &a, &resp), 0);
  assert_int_equal(resp->n_alarms, 0);
  bool removed;
  assert_int_equal(alarm_deactivate(as, MEMBER, NOSPACE, &removed), 0);
  assert_true(removed);
  assert_int_equal(alarm_count(as, ETCDSERVERPB__ALARM_TYPE__NONE), 0);
  alarm_store_free(as);
  mvcc_close(s);
  assert_int_equal(mvcc_open(dir, NULL, &s), 0);
  assert_int_equal(alarm_store_open(s, &as), 0);
  assert_int_equal(alarm_count(as, ETCDSERVERPB__ALARM_TYPE__NONE), 0);
  alarm_store_free(as);
  mvcc_close(s);
  arena_destroy(&a);
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* etcd's AlarmMember.String(): compact text, zero fields omitted, trailing space. */
static void test_member_string(void **state) {
  (void)state;
  char buf[96];
  alarm_member_string(MEMBER, NOSPACE, buf, sizeof(buf));
  assert_string_equal(buf, "memberID:10276657743932975437 alarm:NOSPACE ");
  alarm_member_string(0, CORRUPT, buf, sizeof(buf));
  assert_string_equal(buf, "alarm:CORRUPT ");
  alarm_member_string(5, 0, buf, sizeof(buf));
  assert_string_equal(buf, "memberID:5 ");
  char nb[12];
  assert_string_equal(alarm_type_name(9, nb), "9");
}

/* The capped applier refuses Put, writing Txn and LeaseGrant; CORRUPT refuses changes. */
static void test_gate(void **state) {
  (void)state;
  char dir[] = "/tmp/cetcd-alarm-test-XXXXXX";
  assert_non_null(mkdtemp(dir));
  mvcc_store_t *s;
  assert_int_equal(mvcc_open(dir, NULL, &s), 0);
  alarm_store_t *as;
  assert_int_equal(alarm_store_open(s, &as), 0);

  Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
  Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
  Etcdserverpb__LeaseGrantRequest lg = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
  Etcdserverpb__CompactionRequest cr = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
  Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
  op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
  op.request_delete_range = &del;
  Etcdserverpb__RequestOp *ops[] = {&op};
  Etcdserverpb__TxnRequest del_txn = ETCDSERVERPB__TXN_REQUEST__INIT;
  del_txn.success = ops, del_txn.n_success = 1;
  Etcdserverpb__RequestOp pop = ETCDSERVERPB__REQUEST_OP__INIT;
  pop.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
  pop.request_put = &put;
  Etcdserverpb__RequestOp *pops[] = {&pop};
  Etcdserverpb__TxnRequest put_txn = ETCDSERVERPB__TXN_REQUEST__INIT;
  put_txn.failure = pops, put_txn.n_failure = 1;

  Cetcdinternal__InternalRequest r_put = CETCDINTERNAL__INTERNAL_REQUEST__INIT, r_del = r_put, r_lg = r_put,
                                 r_cr = r_put, r_dtxn = r_put, r_ptxn = r_put;
  r_put.put = &put, r_del.delete_range = &del, r_lg.lease_grant = &lg, r_cr.compaction = &cr;
  r_dtxn.txn = &del_txn, r_ptxn.txn = &put_txn;

  assert_int_equal(alarm_apply_gate(NULL, &r_put), 0);
  assert_int_equal(alarm_apply_gate(as, &r_put), 0);
  assert_int_equal(alarm_activate(as, 1, NOSPACE, NULL), 0);
  assert_int_equal(alarm_apply_gate(as, &r_put), CETCD_ENOSPACE);
  assert_int_equal(alarm_apply_gate(as, &r_lg), CETCD_ENOSPACE);
  assert_int_equal(alarm_apply_gate(as, &r_ptxn), CETCD_ENOSPACE);
  assert_int_equal(alarm_apply_gate(as, &r_dtxn), 0);
  assert_int_equal(alarm_apply_gate(as, &r_del), 0);
  assert_int_equal(alarm_apply_gate(as, &r_cr), 0);
  assert_int_equal(alarm_activate(as, 1, CORRUPT, NULL), 0);
  assert_int_equal(alarm_apply_gate(as, &r_del), CETCD_ECORRUPT);
  assert_int_equal(alarm_apply_gate(as, &r_cr), CETCD_ECORRUPT);
  assert_int_equal(alarm_deactivate(as, 1, CORRUPT, NULL), 0);
  assert_int_equal(alarm_deactivate(as, 1, NOSPACE, NULL), 0);
  assert_int_equal(alarm_apply_gate(as, &r_put), 0);
  alarm_store_free(as);
  mvcc_close(s);
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_apply_and_persist),
      cmocka_unit_test(test_member_string),
      cmocka_unit_test(test_gate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
