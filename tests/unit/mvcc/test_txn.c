/* mvcc: Txn compares, branches, nested txns, one revision per txn, validation. */
#include "mvcc_test_util.h"

typedef struct fixture {
  char *dir;
  mvcc_store_t *s;
  arena_t a;
} fixture_t;

static bool lease_exists(void *ctx, int64_t lease) {
  (void)ctx;
  return lease == 5;
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  f->dir = tu_mkdtemp();
  mvcc_opts_t o = {.lease_exists = lease_exists};
  f->s = tu_open(f->dir, &o);
  arena_init(&f->a);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  mvcc_close(f->s);
  arena_destroy(&f->a);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

/* ---- request builders (arena-owned) ---- */

static Etcdserverpb__Compare *cmp_int(arena_t *a, const char *key, const char *end, int target, int result,
                                      int ucase, int64_t v) {
  Etcdserverpb__Compare *c = ARENA_NEW(a, Etcdserverpb__Compare);
  etcdserverpb__compare__init(c);
  c->key = tu_bin(key);
  c->range_end = tu_bin(end);
  c->target = target;
  c->result = result;
  c->target_union_case = ucase;
  c->version = v; /* every int64 member shares the storage */
  return c;
}

static Etcdserverpb__Compare *cmp_val(arena_t *a, const char *key, int result, const char *v) {
  Etcdserverpb__Compare *c = cmp_int(a, key, NULL, ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE, result,
                                     ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE, 0);
  c->value = tu_bin(v);
  return c;
}

static Etcdserverpb__RequestOp *op_put(arena_t *a, const char *k, const char *v) {
  Etcdserverpb__RequestOp *o = ARENA_NEW(a, Etcdserverpb__RequestOp);
  etcdserverpb__request_op__init(o);
  o->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
  o->request_put = ARENA_NEW(a, Etcdserverpb__PutRequest);
  etcdserverpb__put_request__init(o->request_put);
  o->request_put->key = tu_bin(k);
  o->request_put->value = tu_bin(v);
  return o;
}

static Etcdserverpb__RequestOp *op_del(arena_t *a, const char *k, const char *end) {
  Etcdserverpb__RequestOp *o = ARENA_NEW(a, Etcdserverpb__RequestOp);
  etcdserverpb__request_op__init(o);
  o->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
  o->request_delete_range = ARENA_NEW(a, Etcdserverpb__DeleteRangeRequest);
  etcdserverpb__delete_range_request__init(o->request_delete_range);
  o->request_delete_range->key = tu_bin(k);
  o->request_delete_range->range_end = tu_bin(end);
  return o;
}

static Etcdserverpb__RequestOp *op_range(arena_t *a, const char *k, const char *end) {
  Etcdserverpb__RequestOp *o = ARENA_NEW(a, Etcdserverpb__RequestOp);
  etcdserverpb__request_op__init(o);
  o->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
  o->request_range = ARENA_NEW(a, Etcdserverpb__RangeRequest);
  etcdserverpb__range_request__init(o->request_range);
  o->request_range->key = tu_bin(k);
  o->request_range->range_end = tu_bin(end);
  return o;
}

static Etcdserverpb__TxnRequest *txn_new(arena_t *a, size_t nc, size_t ns, size_t nf) {
  Etcdserverpb__TxnRequest *t = ARENA_NEW(a, Etcdserverpb__TxnRequest);
  etcdserverpb__txn_request__init(t);
  t->n_compare = nc;
  t->compare = arena_zalloc(a, (nc + 1) * sizeof(void *));
  t->n_success = ns;
  t->success = arena_zalloc(a, (ns + 1) * sizeof(void *));
  t->n_failure = nf;
  t->failure = arena_zalloc(a, (nf + 1) * sizeof(void *));
  return t;
}

static Etcdserverpb__RequestOp *op_txn(arena_t *a, Etcdserverpb__TxnRequest *t) {
  Etcdserverpb__RequestOp *o = ARENA_NEW(a, Etcdserverpb__RequestOp);
  etcdserverpb__request_op__init(o);
  o->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
  o->request_txn = t;
  return o;
}

/* Runs a txn with one compare and no ops; returns succeeded. */
static bool cmp1(fixture_t *f, Etcdserverpb__Compare *c) {
  Etcdserverpb__TxnRequest *t = txn_new(&f->a, 1, 0, 0);
  t->compare[0] = c;
  Etcdserverpb__TxnResponse *r;
  assert_int_equal(mvcc_apply_txn(f->s, t, &f->a, &r), 0);
  return r->succeeded;
}

enum {
  EQ = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL,
  GT = ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER,
  LT = ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS,
  NE = ETCDSERVERPB__COMPARE__COMPARE_RESULT__NOT_EQUAL,
  T_VER = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION,
  T_CREATE = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE,
  T_MOD = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD,
  T_LEASE = ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE,
  U_VER = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION,
  U_CREATE = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION,
  U_MOD = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION,
  U_LEASE = ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE,
};

static void test_compares(void **state) {
  fixture_t *f = *state;
  arena_t *a = &f->a;
  tu_put(f->s, "k", "v1");
  tu_put(f->s, "k", "v2"); /* k: create 2, mod 3, version 2 */
  assert_true(cmp1(f, cmp_int(a, "k", NULL, T_VER, EQ, U_VER, 2)));
  assert_true(cmp1(f, cmp_int(a, "k", NULL, T_VER, GT, U_VER, 1)));
  assert_false(cmp1(f, cmp_int(a, "k", NULL, T_VER, LT, U_VER, 2)));
  assert_true(cmp1(f, cmp_int(a, "k", NULL, T_VER, LT, U_VER, 3)));
  assert_false(cmp1(f, cmp_int(a, "k", NULL, T_VER, NE, U_VER, 2)));
  assert_true(cmp1(f, cmp_int(a, "k", NULL, T_CREATE, EQ, U_CREATE, 2)));
  assert_false(cmp1(f, cmp_int(a, "k", NULL, T_CREATE, EQ, U_CREATE, 3)));
  assert_true(cmp1(f, cmp_int(a, "k", NULL, T_MOD, EQ, U_MOD, 3)));
  assert_true(cmp1(f, cmp_int(a, "k", NULL, T_MOD, GT, U_MOD, 2)));
  assert_true(cmp1(f, cmp_val(a, "k", EQ, "v2")));
  assert_false(cmp1(f, cmp_val(a, "k", EQ, "v1")));
  assert_true(cmp1(f, cmp_val(a, "k", GT, "v1")));
  assert_true(cmp1(f, cmp_val(a, "k", LT, "v3")));
  assert_true(cmp1(f, cmp_val(a, "k", GT, "v")));
  assert_true(cmp1(f, cmp_val(a, "k", NE, "x")));
  assert_true(cmp1(f, cmp_int(a, "k", NULL, T_LEASE, EQ, U_LEASE, 0)));
  /* a union holding another target's operand compares against 0 */
  assert_false(cmp1(f, cmp_int(a, "k", NULL, T_VER, EQ, U_CREATE, 2)));
  assert_true(cmp1(f, cmp_int(a, "k", NULL, T_VER, GT, U_CREATE, 2)));
  /* a missing key is the zero KeyValue, except that VALUE compares always fail */
  assert_true(cmp1(f, cmp_int(a, "nokey", NULL, T_VER, EQ, U_VER, 0)));
  assert_true(cmp1(f, cmp_int(a, "nokey", NULL, T_CREATE, EQ, U_CREATE, 0)));
  assert_true(cmp1(f, cmp_int(a, "nokey", NULL, T_MOD, LT, U_MOD, 1)));
  assert_false(cmp1(f, cmp_val(a, "nokey", EQ, "")));
  assert_false(cmp1(f, cmp_val(a, "nokey", NE, "x")));
  /* a deleted key is missing */
  tu_del(f->s, "k", NULL, NULL);
  assert_true(cmp1(f, cmp_int(a, "k", NULL, T_CREATE, EQ, U_CREATE, 0)));
  /* leases */
  Etcdserverpb__PutRequest pr = ETCDSERVERPB__PUT_REQUEST__INIT;
  pr.key = tu_bin("l");
  pr.lease = 5;
  Etcdserverpb__PutResponse *presp;
  assert_int_equal(mvcc_apply_put(f->s, &pr, a, &presp), 0);
  assert_true(cmp1(f, cmp_int(a, "l", NULL, T_LEASE, EQ, U_LEASE, 5)));
  assert_false(cmp1(f, cmp_int(a, "l", NULL, T_LEASE, EQ, U_LEASE, 0)));
  /* an empty value equals an empty operand */
  assert_true(cmp1(f, cmp_val(a, "l", EQ, "")));
  /* compares never consume revisions */
  assert_int_equal(mvcc_rev(f->s), 5);
}

static void test_range_end_compares(void **state) {
  fixture_t *f = *state;
  arena_t *a = &f->a;
  tu_put(f->s, "p/a", "1");
  tu_put(f->s, "p/b", "1");
  tu_put(f->s, "p/b", "2");
  tu_put(f->s, "q", "1");
  assert_true(cmp1(f, cmp_int(a, "p/", "p0", T_VER, GT, U_VER, 0)));
  assert_false(cmp1(f, cmp_int(a, "p/", "p0", T_VER, EQ, U_VER, 1))); /* p/b has version 2 */
  assert_true(cmp1(f, cmp_int(a, "p/", "p0", T_CREATE, LT, U_CREATE, 4)));
  assert_false(cmp1(f, cmp_int(a, "p/", "p0", T_MOD, LT, U_MOD, 4)));
  /* an empty range: the zero KeyValue */
  assert_true(cmp1(f, cmp_int(a, "x/", "x0", T_CREATE, EQ, U_CREATE, 0)));
  /* "\0": every key >= key */
  Etcdserverpb__Compare *c = cmp_int(a, "p/b", NULL, T_VER, EQ, U_VER, 1);
  c->range_end.len = 1;
  c->range_end.data = (uint8_t *)"";
  assert_false(cmp1(f, c)); /* p/b is version 2 */
  c->key = tu_bin("q");
  assert_true(cmp1(f, c));
}

static void test_txn_writes_one_revision(void **state) {
  fixture_t *f = *state;
  arena_t *a = &f->a;
  tu_put(f->s, "k", "old"); /* 2 */
  Etcdserverpb__TxnRequest *t = txn_new(a, 1, 4, 1);
  t->compare[0] = cmp_val(a, "k", EQ, "old");
  t->success[0] = op_put(a, "x", "1");
  t->success[1] = op_put(a, "y", "2");
  t->success[2] = op_del(a, "k", NULL);
  t->success[3] = op_range(a, "x", "z"); /* sees the txn's writes */
  t->failure[0] = op_put(a, "failed", "1");
  assert_int_equal(mvcc_validate_txn(t, 128), 0);
  assert_false(mvcc_txn_is_readonly(t));
  Etcdserverpb__TxnResponse *r;
  assert_int_equal(mvcc_apply_txn(f->s, t, a, &r), 0);
  assert_true(r->succeeded);
  assert_int_equal(r->header->revision, 3);
  assert_int_equal(mvcc_rev(f->s), 3);
  assert_int_equal(r->n_responses, 4);
  assert_int_equal(r->responses[0]->response_case, ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT);
  assert_int_equal(r->responses[0]->response_put->header->revision, 3);
  assert_int_equal(r->responses[2]->response_delete_range->deleted, 1);
  assert_int_equal(r->responses[2]->response_delete_range->header->revision, 3);
  Etcdserverpb__RangeResponse *rr = r->responses[3]->response_range;
  assert_int_equal(rr->n_kvs, 2);
  assert_int_equal(rr->header->revision, 3);
  tu_assert_kv(rr->kvs[0], "x", "1", 3, 3, 1);
  tu_assert_kv(rr->kvs[1], "y", "2", 3, 3, 1);
  assert_null(tu_get(f->s, a, "k", 0));
  assert_null(tu_get(f->s, a, "failed", 0));

  /* failure branch */
  assert_int_equal(mvcc_apply_txn(f->s, t, a, &r), 0);
  assert_false(r->succeeded);
  assert_int_equal(r->n_responses, 1);
  assert_int_equal(r->header->revision, 4);
  tu_assert_kv(tu_get(f->s, a, "failed", 0), "failed", "1", 4, 4, 1);

  /* a txn that writes nothing takes no revision */
  Etcdserverpb__TxnRequest *t2 = txn_new(a, 0, 1, 0);
  t2->success[0] = op_del(a, "nothing", NULL);
  assert_int_equal(mvcc_apply_txn(f->s, t2, a, &r), 0);
  assert_int_equal(r->header->revision, 4);
  assert_int_equal(r->responses[0]->response_delete_range->header->revision, 4);
  assert_int_equal(mvcc_rev(f->s), 4);

  /* a read-only txn */
  Etcdserverpb__TxnRequest *t3 = txn_new(a, 1, 1, 1);
  t3->compare[0] = cmp_int(a, "x", NULL, T_VER, EQ, U_VER, 1);
  t3->success[0] = op_range(a, "x", NULL);
  t3->failure[0] = op_range(a, "y", NULL);
  assert_true(mvcc_txn_is_readonly(t3));
  assert_int_equal(mvcc_apply_txn(f->s, t3, a, &r), 0);
  assert_true(r->succeeded);
  assert_int_equal(r->header->revision, 4);
  assert_int_equal(r->responses[0]->response_range->n_kvs, 1);
  /* a Range op at a future or compacted revision fails the whole txn */
  t3->success[0]->request_range->revision = 5;
  assert_int_equal(mvcc_apply_txn(f->s, t3, a, &r), CETCD_EFUTUREREV);
  t3->success[0]->request_range->revision = 2;
  assert_int_equal(mvcc_apply_txn(f->s, t3, a, &r), 0);
  assert_int_equal(r->responses[0]->response_range->n_kvs, 0); /* x did not exist at 2 */
}

static void test_txn_prechecks(void **state) {
  fixture_t *f = *state;
  arena_t *a = &f->a;
  tu_put(f->s, "k", "v");
  Etcdserverpb__TxnRequest *t = txn_new(a, 0, 2, 0);
  t->success[0] = op_put(a, "x", "1");
  t->success[1] = op_put(a, "missing", NULL);
  t->success[1]->request_put->ignore_value = true;
  Etcdserverpb__TxnResponse *r;
  assert_int_equal(mvcc_apply_txn(f->s, t, a, &r), CETCD_EKEYNOTFOUND);
  assert_int_equal(mvcc_rev(f->s), 2);
  assert_null(tu_get(f->s, a, "x", 0));
  t->success[1] = op_put(a, "z", "1");
  t->success[1]->request_put->lease = 6;
  assert_int_equal(mvcc_apply_txn(f->s, t, a, &r), CETCD_ELEASENOTFOUND);
  t->success[1]->request_put->lease = 5;
  assert_int_equal(mvcc_apply_txn(f->s, t, a, &r), 0);
  assert_int_equal(tu_get(f->s, a, "z", 0)->lease, 5);
  /* ignore_value inside a txn keeps the value; prev_kv sees earlier ops of the txn */
  Etcdserverpb__TxnRequest *t2 = txn_new(a, 0, 2, 0);
  t2->success[0] = op_del(a, "x", NULL);
  t2->success[1] = op_put(a, "k", NULL);
  t2->success[1]->request_put->ignore_value = true;
  t2->success[1]->request_put->prev_kv = true;
  assert_int_equal(mvcc_apply_txn(f->s, t2, a, &r), 0);
  tu_assert_kv(r->responses[1]->response_put->prev_kv, "k", "v", 2, 2, 1);
  tu_assert_kv(tu_get(f->s, a, "k", 0), "k", "v", 2, 4, 2);
  /* delete then put of the same key (rejected by validation, but applied like etcd) */
  Etcdserverpb__TxnRequest *t3 = txn_new(a, 0, 2, 0);
  t3->success[0] = op_del(a, "k", NULL);
  t3->success[1] = op_put(a, "k", "new");
  t3->success[1]->request_put->prev_kv = true;
  assert_int_equal(mvcc_validate_txn(t3, 128), CETCD_EDUPKEY);
  assert_int_equal(mvcc_apply_txn(f->s, t3, a, &r), 0);
  assert_null(r->responses[1]->response_put->prev_kv);
  tu_assert_kv(tu_get(f->s, a, "k", 0), "k", "new", 5, 5, 1);
}

static void test_nested_txn(void **state) {
  fixture_t *f = *state;
  arena_t *a = &f->a;
  tu_put(f->s, "a", "0"); /* 2 */
  Etcdserverpb__TxnRequest *inner = txn_new(a, 1, 1, 1);
  /* evaluated before any write of the outer txn: b does not exist yet */
  inner->compare[0] = cmp_int(a, "b", NULL, T_VER, EQ, U_VER, 0);
  inner->success[0] = op_put(a, "c", "then");
  inner->failure[0] = op_put(a, "c", "else");
  Etcdserverpb__TxnRequest *outer = txn_new(a, 1, 2, 1);
  outer->compare[0] = cmp_val(a, "a", EQ, "0");
  outer->success[0] = op_put(a, "b", "1");
  outer->success[1] = op_txn(a, inner);
  outer->failure[0] = op_range(a, "a", NULL);
  assert_int_equal(mvcc_validate_txn(outer, 128), 0);
  Etcdserverpb__TxnResponse *r;
  assert_int_equal(mvcc_apply_txn(f->s, outer, a, &r), 0);
  assert_true(r->succeeded);
  assert_int_equal(r->header->revision, 3);
  assert_int_equal(r->responses[1]->response_case, ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN);
  Etcdserverpb__TxnResponse *ir = r->responses[1]->response_txn;
  assert_true(ir->succeeded);
  assert_int_equal(ir->header->revision, 0); /* etcd leaves nested headers empty */
  assert_int_equal(ir->responses[0]->response_put->header->revision, 3);
  tu_assert_kv(tu_get(f->s, a, "b", 0), "b", "1", 3, 3, 1);
  tu_assert_kv(tu_get(f->s, a, "c", 0), "c", "then", 3, 3, 1);
  /* again: outer compare fails now (a unchanged but take the failure via value) */
  outer->compare[0] = cmp_val(a, "a", EQ, "zzz");
  assert_int_equal(mvcc_apply_txn(f->s, outer, a, &r), 0);
  assert_false(r->succeeded);
  assert_int_equal(r->header->revision, 3);
  /* nested failure branch */
  outer->compare[0] = cmp_val(a, "a", EQ, "0");
  outer->success[0] = op_put(a, "d", "1");
  assert_int_equal(mvcc_apply_txn(f->s, outer, a, &r), 0);
  assert_false(r->responses[1]->response_txn->succeeded);
  tu_assert_kv(tu_get(f->s, a, "c", 0), "c", "else", 3, 4, 2);
  /* nested txn in a failure branch of a read-only-looking txn makes it a write */
  Etcdserverpb__TxnRequest *t = txn_new(a, 0, 0, 1);
  t->failure[0] = op_txn(a, txn_new(a, 0, 0, 0));
  assert_false(mvcc_txn_is_readonly(t));
}

static void test_validate(void **state) {
  fixture_t *f = *state;
  arena_t *a = &f->a;
  Etcdserverpb__TxnRequest *t = txn_new(a, 0, 3, 0);
  t->success[0] = op_put(a, "a", "1");
  t->success[1] = op_put(a, "b", "1");
  t->success[2] = op_range(a, "a", NULL);
  assert_int_equal(mvcc_validate_txn(t, 3), 0);
  assert_int_equal(mvcc_validate_txn(t, 2), CETCD_ETOOMANYOPS);
  t->success[1] = op_put(a, "a", "2");
  assert_int_equal(mvcc_validate_txn(t, 128), CETCD_EDUPKEY);
  /* put inside a deleted range */
  t->success[1] = op_del(a, "0", "b");
  assert_int_equal(mvcc_validate_txn(t, 128), CETCD_EDUPKEY);
  t->success[1] = op_del(a, "b", "c");
  assert_int_equal(mvcc_validate_txn(t, 128), 0);
  /* success and failure are independent */
  Etcdserverpb__TxnRequest *t2 = txn_new(a, 0, 1, 1);
  t2->success[0] = op_put(a, "a", "1");
  t2->failure[0] = op_put(a, "a", "2");
  assert_int_equal(mvcc_validate_txn(t2, 128), 0);
  /* nested: then/else may share a key, but not with the outer level */
  Etcdserverpb__TxnRequest *in = txn_new(a, 0, 1, 1);
  in->success[0] = op_put(a, "n", "1");
  in->failure[0] = op_put(a, "n", "2");
  Etcdserverpb__TxnRequest *out = txn_new(a, 0, 1, 0);
  out->success[0] = op_txn(a, in);
  assert_int_equal(mvcc_validate_txn(out, 128), 0);
  out = txn_new(a, 0, 2, 0);
  out->success[0] = op_txn(a, in);
  out->success[1] = op_put(a, "n", "3");
  assert_int_equal(mvcc_validate_txn(out, 128), CETCD_EDUPKEY);
  out->success[1] = op_del(a, "m", "o");
  assert_int_equal(mvcc_validate_txn(out, 128), CETCD_EDUPKEY);
  out->success[1] = op_del(a, "n", NULL);
  assert_int_equal(mvcc_validate_txn(out, 128), CETCD_EDUPKEY);
  out->success[1] = op_del(a, "o", NULL);
  assert_int_equal(mvcc_validate_txn(out, 128), 0);
  /* two nested txns writing the same key */
  out->success[1] = op_txn(a, in);
  assert_int_equal(mvcc_validate_txn(out, 128), CETCD_EDUPKEY);
  /* nested txns are limited like the top level */
  Etcdserverpb__TxnRequest *big = txn_new(a, 0, 3, 0);
  for (int i = 0; i < 3; i++) big->success[i] = op_range(a, "r", NULL);
  out = txn_new(a, 0, 1, 0);
  out->success[0] = op_txn(a, big);
  assert_int_equal(mvcc_validate_txn(out, 2), CETCD_ETOOMANYOPS);
  /* request checks */
  Etcdserverpb__TxnRequest *e = txn_new(a, 1, 0, 0);
  e->compare[0] = cmp_int(a, "", NULL, T_VER, EQ, U_VER, 0);
  assert_int_equal(mvcc_validate_txn(e, 128), CETCD_EKEYEMPTY);
  e = txn_new(a, 0, 1, 0);
  e->success[0] = op_put(a, "k", "v");
  e->success[0]->request_put->ignore_value = true;
  assert_int_equal(mvcc_validate_txn(e, 128), CETCD_EVALUEPROVIDED);
  e->success[0] = op_put(a, "k", NULL);
  e->success[0]->request_put->ignore_lease = true;
  e->success[0]->request_put->lease = 5;
  assert_int_equal(mvcc_validate_txn(e, 128), CETCD_ELEASEPROVIDED);
  e->success[0] = ARENA_NEW(a, Etcdserverpb__RequestOp);
  etcdserverpb__request_op__init(e->success[0]);
  assert_int_equal(mvcc_validate_txn(e, 128), CETCD_EKEYNOTFOUND);
  e->success[0] = op_del(a, "", NULL);
  assert_int_equal(mvcc_validate_txn(e, 128), CETCD_EKEYEMPTY);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_compares, setup, teardown),
      cmocka_unit_test_setup_teardown(test_range_end_compares, setup, teardown),
      cmocka_unit_test_setup_teardown(test_txn_writes_one_revision, setup, teardown),
      cmocka_unit_test_setup_teardown(test_txn_prechecks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nested_txn, setup, teardown),
      cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
