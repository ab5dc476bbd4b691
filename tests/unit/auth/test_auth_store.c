/* Unit tests for the auth store (auth/auth_store.c, auth_apply.c, auth_check.c,
 * auth_token.c, auth_bcrypt.c): etcd's management rules and errors, revisions, the
 * proposer's rights, persistence across reopening, token expiry and revocation, bcrypt. */
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

#include "auth/auth.h"
#include "cetcd/errors.h"
#include "mvcc/mvcc.h"

typedef Cetcdinternal__InternalRequest ireq_t;

static uint64_t fake_now;
/* The injected clock. */
static uint64_t clock_fn(void) { return fake_now; }

/* nftw callback removing one entry. */
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

typedef struct fx {
  char dir[64];
  mvcc_store_t *mvcc;
  auth_store_t *as;
  uint64_t index;
} fx_t;

/* Opens a backend and an auth store in a fresh directory. */
static void fx_open(fx_t *f) {
  snprintf(f->dir, sizeof(f->dir), "/tmp/cetcd-auth-test-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  assert_int_equal(mvcc_open(f->dir, NULL, &f->mvcc), 0);
  assert_int_equal(auth_store_open(f->mvcc, 10, &f->as), 0);
  auth_set_clock(f->as, clock_fn);
}

/* Reopens the backend and the store (persistence). */
static void fx_reopen(fx_t *f) {
  auth_store_free(f->as);
  mvcc_close(f->mvcc);
  assert_int_equal(mvcc_open(f->dir, NULL, &f->mvcc), 0);
  assert_int_equal(auth_store_open(f->mvcc, 10, &f->as), 0);
  auth_set_clock(f->as, clock_fn);
}

static void fx_close(fx_t *f) {
  auth_store_free(f->as);
  mvcc_close(f->mvcc);
  nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Applies q as `user` in its own batch; the response (if any, in a; dropped when a is
 * NULL) goes to *resp. */
static int apply_as(fx_t *f, ireq_t *q, const char *user, arena_t *a, ProtobufCMessage **resp) {
  q->auth_user = (char *)(user ? user : "");
  q->auth_revision = user ? auth_revision(f->as) : 0;
  ProtobufCMessage *r = NULL;
  arena_t scratch;
  arena_init(&scratch);
  assert_int_equal(mvcc_batch_begin(f->mvcc), 0);
  int rc = auth_apply(f->as, q, ++f->index, a ? a : &scratch, &r);
  assert_int_equal(mvcc_batch_commit(f->mvcc, f->index), 0);
  if (resp) *resp = r;
  arena_destroy(&scratch);
  return rc;
}

static int user_add(fx_t *f, const char *as_user, const char *name, const char *hash) {
  Etcdserverpb__AuthUserAddRequest r = ETCDSERVERPB__AUTH_USER_ADD_REQUEST__INIT;
  r.name = (char *)name;
  r.hashedpassword = (char *)hash;
  ireq_t q = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  q.auth_user_add = &r;
  return apply_as(f, &q, as_user, NULL, NULL);
}

static int role_add(fx_t *f, const char *as_user, const char *name) {
  Etcdserverpb__AuthRoleAddRequest r = ETCDSERVERPB__AUTH_ROLE_ADD_REQUEST__INIT;
  r.name = (char *)name;
  ireq_t q = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  q.auth_role_add = &r;
  return apply_as(f, &q, as_user, NULL, NULL);
}

static int grant_role(fx_t *f, const char *as_user, const char *user, const char *role) {
  Etcdserverpb__AuthUserGrantRoleRequest r = ETCDSERVERPB__AUTH_USER_GRANT_ROLE_REQUEST__INIT;
  r.user = (char *)user;
  r.role = (char *)role;
  ireq_t q = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  q.auth_user_grant_role = &r;
  return apply_as(f, &q, as_user, NULL, NULL);
}

static int grant_perm(fx_t *f, const char *as_user, const char *role, int type, const char *key, const char *end) {
  Authpb__Permission p = AUTHPB__PERMISSION__INIT;
  p.permtype = type;
  p.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
  if (end) p.range_end = (ProtobufCBinaryData){strlen(end), (uint8_t *)end};
  Etcdserverpb__AuthRoleGrantPermissionRequest r = ETCDSERVERPB__AUTH_ROLE_GRANT_PERMISSION_REQUEST__INIT;
  r.name = (char *)role;
  r.perm = &p;
  ireq_t q = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  q.auth_role_grant_permission = &r;
  return apply_as(f, &q, as_user, NULL, NULL);
}

static int enable(fx_t *f, const char *as_user) {
  Etcdserverpb__AuthEnableRequest r = ETCDSERVERPB__AUTH_ENABLE_REQUEST__INIT;
  ireq_t q = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  q.auth_enable = &r;
  return apply_as(f, &q, as_user, NULL, NULL);
}

/* Authenticates user (the password check is the api layer's); returns the token in a. */
static const char *login(fx_t *f, const char *user, arena_t *a, int *rc) {
  Cetcdinternal__AuthenticateRequest r = CETCDINTERNAL__AUTHENTICATE_REQUEST__INIT;
  r.name = (char *)user;
  r.simple_token = "abcdefghijklmnop";
  ireq_t q = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  q.authenticate = &r;
  ProtobufCMessage *resp = NULL;
  *rc = apply_as(f, &q, NULL, a, &resp);
  return *rc ? NULL : ((Etcdserverpb__AuthenticateResponse *)resp)->token;
}

/* Enabling needs root with the root role; management errors; revisions. */
static void test_enable_and_management(void **state) {
  (void)state;
  fx_t f = {0};
  fx_open(&f);
  assert_int_equal(auth_revision(f.as), 1);
  assert_int_equal(enable(&f, NULL), CETCD_EAUTHROOTUSER);
  assert_int_equal(user_add(&f, NULL, "root", "$2b$04$x"), 0);
  assert_int_equal(auth_revision(f.as), 2);
  assert_int_equal(user_add(&f, NULL, "root", "$2b$04$x"), CETCD_EAUTHUSEREXISTS);
  assert_int_equal(user_add(&f, NULL, "", "$2b$04$x"), CETCD_EAUTHUSEREMPTY);
  assert_int_equal(enable(&f, NULL), CETCD_EAUTHROOTROLE);
  assert_int_equal(grant_role(&f, NULL, "root", "nope"), CETCD_EAUTHROLENOTFOUND);
  assert_int_equal(grant_role(&f, NULL, "nobody", "root"), CETCD_EAUTHUSERNOTFOUND);
  assert_int_equal(grant_role(&f, NULL, "root", "root"), 0); /* root needs no role record */
  uint64_t rev = auth_revision(f.as);
  assert_int_equal(enable(&f, NULL), 0);
  assert_true(auth_is_enabled(f.as));
  assert_int_equal(auth_revision(f.as), rev); /* enabling does not bump it */
  /* now the proposer's rights count */
  assert_int_equal(role_add(&f, NULL, "r1"), CETCD_EAUTHUSEREMPTY);
  assert_int_equal(role_add(&f, "ghost", "r1"), CETCD_EAUTHUSERNOTFOUND);
  assert_int_equal(role_add(&f, "root", "r1"), 0);
  assert_int_equal(role_add(&f, "root", "r1"), CETCD_EAUTHROLEEXISTS);
  assert_int_equal(role_add(&f, "root", ""), CETCD_EAUTHROLEEMPTY);
  assert_int_equal(user_add(&f, "root", "u1", "$2b$04$y"), 0);
  assert_int_equal(grant_role(&f, "root", "u1", "r1"), 0);
  assert_int_equal(role_add(&f, "u1", "r2"), CETCD_EAUTHDENIED);
  fx_close(&f);
}

/* Permission checks by user, revision and range; state survives reopening. */
static void test_checks_and_persistence(void **state) {
  (void)state;
  fx_t f = {0};
  fx_open(&f);
  assert_int_equal(user_add(&f, NULL, "root", "$2b$04$x"), 0);
  assert_int_equal(grant_role(&f, NULL, "root", "root"), 0);
  assert_int_equal(user_add(&f, NULL, "u1", "$2b$04$y"), 0);
  assert_int_equal(role_add(&f, NULL, "r1"), 0);
  assert_int_equal(grant_perm(&f, NULL, "r1", AUTHPB__PERMISSION__TYPE__READWRITE, "/p/", "/p0"), 0);
  assert_int_equal(grant_perm(&f, NULL, "r1", AUTHPB__PERMISSION__TYPE__READ, "foo", NULL), 0);
  assert_int_equal(grant_role(&f, NULL, "u1", "r1"), 0);
  auth_info_t none = {0};
  assert_int_equal(auth_check_put(f.as, &none, (const uint8_t *)"x", 1), 0); /* disabled: open */
  assert_int_equal(enable(&f, NULL), 0);
  fx_reopen(&f);
  assert_true(auth_is_enabled(f.as));
  uint64_t rev = auth_revision(f.as);
  auth_info_t u1 = {"u1", rev}, root = {"root", rev}, old = {"u1", rev - 1}, ghost = {"ghost", rev};
  assert_int_equal(auth_check_put(f.as, &none, (const uint8_t *)"x", 1), CETCD_EAUTHUSEREMPTY);
  assert_int_equal(auth_check_put(f.as, &u1, (const uint8_t *)"/p/a", 4), 0);
  assert_int_equal(auth_check_put(f.as, &u1, (const uint8_t *)"foo", 3), CETCD_EAUTHDENIED);
  assert_int_equal(auth_check_range(f.as, &u1, (const uint8_t *)"foo", 3, NULL, 0), 0);
  assert_int_equal(auth_check_range(f.as, &u1, (const uint8_t *)"/p/", 3, (const uint8_t *)"/p0", 3), 0);
  assert_int_equal(auth_check_range(f.as, &old, (const uint8_t *)"foo", 3, NULL, 0), CETCD_EAUTHOLDREV);
  assert_int_equal(auth_check_range(f.as, &ghost, (const uint8_t *)"foo", 3, NULL, 0), CETCD_EAUTHDENIED);
  assert_int_equal(auth_check_put(f.as, &root, (const uint8_t *)"any", 3), 0);
  assert_int_equal(auth_check_admin(f.as, &u1), CETCD_EAUTHDENIED);
  assert_int_equal(auth_check_admin(f.as, &root), 0);
  /* a txn is checked compare by compare, op by op */
  Etcdserverpb__Compare c = ETCDSERVERPB__COMPARE__INIT;
  c.key = (ProtobufCBinaryData){3, (uint8_t *)"foo"};
  Etcdserverpb__Compare *cs[] = {&c};
  Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
  put.key = (ProtobufCBinaryData){3, (uint8_t *)"bar"};
  Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
  op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
  op.request_put = &put;
  Etcdserverpb__RequestOp *ops[] = {&op};
  Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
  txn.compare = cs;
  txn.n_compare = 1;
  assert_int_equal(auth_check_txn(f.as, &u1, &txn), 0);
  txn.failure = ops;
  txn.n_failure = 1;
  assert_int_equal(auth_check_txn(f.as, &u1, &txn), CETCD_EAUTHDENIED);
  put.key = (ProtobufCBinaryData){4, (uint8_t *)"/p/x"};
  assert_int_equal(auth_check_txn(f.as, &u1, &txn), 0);
  fx_close(&f);
}

/* Tokens: assigned at apply with the entry's index, TTL restarted by use, dropped when the
 * user's password changes or auth is disabled. */
static void test_tokens(void **state) {
  (void)state;
  fx_t f = {0};
  fx_open(&f);
  fake_now = 1000;
  arena_t a;
  arena_init(&a);
  int rc;
  assert_null(login(&f, "root", &a, &rc));
  assert_int_equal(rc, CETCD_EAUTHNOTENABLED);
  assert_int_equal(user_add(&f, NULL, "root", "$2b$04$x"), 0);
  assert_int_equal(grant_role(&f, NULL, "root", "root"), 0);
  assert_int_equal(enable(&f, NULL), 0);
  assert_null(login(&f, "ghost", &a, &rc));
  assert_int_equal(rc, CETCD_EAUTHFAILED);
  const char *t = login(&f, "root", &a, &rc);
  assert_non_null(t);
  char want[64];
  snprintf(want, sizeof(want), "abcdefghijklmnop.%llu", (unsigned long long)f.index);
  assert_string_equal(t, want);
  auth_info_t ai;
  fake_now += 9000; /* TTL 10 s */
  assert_int_equal(auth_token_info(f.as, t, &ai), 0);
  assert_string_equal(ai.user, "root");
  assert_int_equal(ai.revision, auth_revision(f.as));
  fake_now += 9000; /* used 9 s ago: still valid */
  assert_int_equal(auth_token_info(f.as, t, &ai), 0);
  fake_now += 10001;
  assert_int_equal(auth_token_info(f.as, t, &ai), CETCD_EAUTHBADTOKEN);
  t = login(&f, "root", &a, &rc);
  Etcdserverpb__AuthUserChangePasswordRequest pw = ETCDSERVERPB__AUTH_USER_CHANGE_PASSWORD_REQUEST__INIT;
  pw.name = "root";
  pw.hashedpassword = "$2b$04$z";
  ireq_t q = CETCDINTERNAL__INTERNAL_REQUEST__INIT;
  q.auth_user_change_password = &pw;
  assert_int_equal(apply_as(&f, &q, "root", &a, NULL), 0);
  assert_int_equal(auth_token_info(f.as, t, &ai), CETCD_EAUTHBADTOKEN);
  assert_int_equal(auth_token_info(f.as, "nope", &ai), CETCD_EAUTHBADTOKEN);
  char *hash = NULL;
  size_t hl;
  uint64_t rev;
  assert_int_equal(auth_password_of(f.as, "root", &hash, &hl, &rev), 0);
  assert_string_equal(hash, "$2b$04$z");
  free(hash);
  arena_destroy(&a);
  fx_close(&f);
}

/* bcrypt: our hashes verify, wrong passwords do not, and a "$2a$" hash (Go's) verifies. */
static void test_bcrypt(void **state) {
  (void)state;
  char *h = NULL;
  assert_int_equal(auth_bcrypt_hash("secret", 6, 4, &h), 0);
  assert_memory_equal(h, "$2b$04$", 7);
  assert_true(auth_bcrypt_verify("secret", 6, h, strlen(h)));
  assert_false(auth_bcrypt_verify("secreT", 6, h, strlen(h)));
  assert_false(auth_bcrypt_verify("secret", 6, h, strlen(h) - 1));
  free(h);
  const char *go = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"; /* crypt_blowfish vector */
  assert_true(auth_bcrypt_verify("U*U", 3, go, strlen(go)));
  assert_false(auth_bcrypt_verify("U*V", 3, go, strlen(go)));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_enable_and_management),
      cmocka_unit_test(test_checks_and_persistence),
      cmocka_unit_test(test_tokens),
      cmocka_unit_test(test_bcrypt),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
