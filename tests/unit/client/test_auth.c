/* libcetcd auth: users, roles and permissions through the Auth calls, logging in with
 * credentials (token on unary calls and streams), refused logins, and a new token after
 * the server forgot the old one (restart), as clientv3 does.
 *
 * Runs against cetcd and, as unit/client/test_auth@etcd, against real etcd 3.4. */
#include "client_test_util.h"

static test_server_t srv;
static cetcd_client_t *root; /* logged in as root once auth is on */

/* A client for the server with credentials (NULL user: none); lazy or not. Returns the
 * client, or NULL with *rc set. */
static cetcd_client_t *login(const char *user, const char *pass, bool lazy, int *rc) {
  const char *eps[] = {srv.endpoint};
  cetcd_client_opts_t o = {.endpoints = eps, .n_endpoints = 1, .dial_timeout_ms = 2000,
                           .request_timeout_ms = 5000, .lazy_connect = lazy, .username = user,
                           .password = pass};
  cetcd_client_t *c = NULL;
  *rc = cetcd_client_new(&o, &c);
  return c;
}

/* Asserts that call returned code and that the server's message is msg. */
#define assert_refused(call, code, msg)                                          \
  do {                                                                          \
    assert_int_equal((call), (code));                                           \
    assert_string_equal(cetcd_client_last_error(NULL)->message, (msg));         \
  } while (0)

/* Creates root (with role root), alice (role rw-a: readwrite on prefix a/) and enables
 * auth, through a client without credentials; then logs root in. */
static int setup(void **state) {
  (void)state;
  int rc;
  if (tu_server_new(&srv)) return -1;
  cetcd_client_t *c = login(NULL, NULL, false, &rc);
  if (!c) return -1;
  rc = cetcd_user_add(c, "root", "rootpw", false, NULL);
  if (!rc) rc = cetcd_role_add(c, "root", NULL);
  if (!rc) rc = cetcd_user_grant_role(c, "root", "root", NULL);
  if (!rc) rc = cetcd_user_add(c, "alice", "alicepw", false, NULL);
  if (!rc) rc = cetcd_role_add(c, "rw-a", NULL);
  if (!rc) rc = cetcd_role_grant_permission(c, "rw-a", "a/", 2, "a0", 2, CETCD_PERM_READWRITE, NULL);
  if (!rc) rc = cetcd_user_grant_role(c, "alice", "rw-a", NULL);
  if (!rc) rc = cetcd_auth_enable(c, NULL);
  if (rc) fprintf(stderr, "setup: %s (%s)\n", cetcd_strerror(rc), cetcd_client_last_error(NULL)->message);
  cetcd_client_free(c);
  if (rc) return -1;
  root = login("root", "rootpw", false, &rc);
  return root ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  cetcd_client_free(root);
  tu_server_free(&srv);
  return 0;
}

/* Status, and the errors of a client without a token or with a wrong password. */
static void test_status_and_refusals(void **state) {
  (void)state;
  /* AuthStatus is etcd 3.5's: Debian's etcd 3.4 answers UNIMPLEMENTED, cetcd answers */
  bool on = false;
  uint64_t rev = 0;
  if (tu_real_etcd()) {
    assert_int_equal(cetcd_auth_status(root, &on, &rev, NULL), CETCD_EGRPC);
    assert_int_equal(cetcd_client_last_error(NULL)->grpc_status, 12);
  } else {
    assert_int_equal(cetcd_auth_status(root, &on, &rev, NULL), 0);
    assert_true(on);
    assert_true(rev > 0);
  }
  int rc;
  assert_null(login("alice", "wrong", false, &rc));
  assert_int_equal(rc, CETCD_EAUTHFAILED);
  assert_string_equal(cetcd_client_last_error(NULL)->message,
                      "etcdserver: authentication failed, invalid user ID or password");
  /* lazily: the first call fails the same way */
  cetcd_client_t *lazy = login("alice", "wrong", true, &rc);
  assert_non_null(lazy);
  assert_int_equal(cetcd_put(lazy, "a/1", 3, "v", 1, NULL, NULL), CETCD_EAUTHFAILED);
  cetcd_client_free(lazy);
  /* no credentials: etcd refuses the write for lack of a user */
  cetcd_client_t *anon = login(NULL, NULL, false, &rc);
  assert_non_null(anon);
  assert_refused(cetcd_put(anon, "a/1", 3, "v", 1, NULL, NULL), CETCD_EAUTHUSEREMPTY, "etcdserver: user name is empty");
  cetcd_client_free(anon);
  /* half credentials are a usage error */
  assert_null(login("alice", NULL, false, &rc));
  assert_int_equal(rc, CETCD_EINVAL);
}

/* alice may use a/ only; her token goes on unary calls and on watch streams. */
static void test_permissions_apply(void **state) {
  (void)state;
  int rc;
  cetcd_client_t *alice = login("alice", "alicepw", true, &rc);
  assert_non_null(alice);
  assert_int_equal(cetcd_put(alice, "a/1", 3, "v1", 2, NULL, NULL), 0);
  assert_refused(cetcd_put(alice, "b/1", 3, "v", 1, NULL, NULL), CETCD_EAUTHDENIED, "etcdserver: permission denied");
  cetcd_get_result_t *g;
  assert_int_equal(cetcd_get(alice, "a/1", 3, NULL, &g), 0);
  assert_int_equal(g->n_kvs, 1);
  assert_memory_equal(g->kvs[0].value, "v1", 2);
  cetcd_get_result_free(g);
  assert_refused(cetcd_user_list(alice, &(cetcd_names_t *){NULL}), CETCD_EAUTHDENIED,
                 "etcdserver: permission denied");

  /* a watch stream carries the token: allowed on a/, refused on b/ */
  cetcd_watch_opts_t wo = {.prefix = true};
  cetcd_watch_t *w;
  assert_int_equal(cetcd_watch_open(alice, "a/", 2, &wo, &w), 0);
  assert_int_equal(cetcd_put(root, "a/2", 3, "v2", 2, NULL, NULL), 0);
  cetcd_watch_event_batch_t *b;
  assert_int_equal(cetcd_watch_next(w, 5000, &b), 0);
  assert_int_equal(b->n_events, 1);
  assert_string_equal(b->events[0].kv.key, "a/2");
  cetcd_watch_batch_free(b);
  cetcd_watch_free(w);
  cetcd_watch_t *wb = NULL;
  assert_int_equal(cetcd_watch_open(alice, "b/", 2, &wo, &wb), CETCD_ECANCELED); /* refused at creation */
  assert_string_equal(cetcd_client_last_error(NULL)->message,
                      "rpc error: code = PermissionDenied desc = etcdserver: permission denied");
  /* a lease keep-alive stream works with the token too */
  int64_t id, ttl;
  assert_int_equal(cetcd_lease_grant(alice, 30, 0, &id, NULL), 0);
  assert_int_equal(cetcd_lease_keepalive_once(alice, id, &ttl), 0);
  assert_int_equal(ttl, 30);
  assert_int_equal(cetcd_lease_revoke(alice, id), 0);
  cetcd_client_free(alice);
}

/* Completion of cetcd_put_async: records the code, posts done. */
static void put_done(void *ctx, int rc, cetcd_put_result_t *r) {
  *(volatile int *)ctx = rc == 0 ? 1 : rc;
  cetcd_put_result_free(r);
}

/* An asynchronous call as the first call of a lazy client logs in first. */
static void test_async_first_call(void **state) {
  (void)state;
  int rc;
  cetcd_client_t *alice = login("alice", "alicepw", true, &rc);
  assert_non_null(alice);
  volatile int res = 0;
  assert_int_equal(cetcd_put_async(alice, "a/async", 7, "v", 1, NULL, put_done, (void *)&res), 0);
  for (int i = 0; i < 500 && !res; i++) tu_sleep_ms(10);
  assert_int_equal(res, 1);
  res = 0;
  assert_int_equal(cetcd_put_async(alice, "b/async", 7, "v", 1, NULL, put_done, (void *)&res), 0);
  for (int i = 0; i < 500 && !res; i++) tu_sleep_ms(10);
  assert_int_equal(res, CETCD_EAUTHDENIED);
  cetcd_client_free(alice);
}

/* The whole user and role life cycle as root. */
static void test_users_and_roles(void **state) {
  (void)state;
  cetcd_header_t h;
  assert_int_equal(cetcd_user_add(root, "bob", "bobpw", false, &h), 0);
  assert_true(h.revision > 0);
  assert_refused(cetcd_user_add(root, "bob", "x", false, NULL), CETCD_EAUTHUSEREXISTS,
                 "etcdserver: user name already exists");
  assert_int_equal(cetcd_user_add(root, "certonly", NULL, true, NULL), 0);
  assert_int_equal(cetcd_role_add(root, "ro", NULL), 0);
  assert_refused(cetcd_role_add(root, "ro", NULL), CETCD_EAUTHROLEEXISTS, "etcdserver: role name already exists");
  assert_int_equal(cetcd_role_grant_permission(root, "ro", "k", 1, NULL, 0, CETCD_PERM_READ, NULL), 0);
  assert_int_equal(cetcd_role_grant_permission(root, "ro", "p/", 2, "\0", 1, CETCD_PERM_WRITE, NULL), 0);
  cetcd_role_t *r;
  assert_int_equal(cetcd_role_get(root, "ro", &r), 0);
  assert_int_equal(r->n_perms, 2);
  assert_string_equal(r->perms[0].key, "k");
  assert_int_equal(r->perms[0].range_end_len, 0);
  assert_int_equal(r->perms[0].type, CETCD_PERM_READ);
  assert_string_equal(r->perms[1].key, "p/");
  assert_int_equal(r->perms[1].range_end_len, 1);
  assert_int_equal(r->perms[1].type, CETCD_PERM_WRITE);
  cetcd_role_free(r);
  assert_int_equal(cetcd_role_revoke_permission(root, "ro", "k", 1, NULL, 0, NULL), 0);
  assert_refused(cetcd_role_revoke_permission(root, "ro", "k", 1, NULL, 0, NULL), CETCD_EAUTHPERMNOTGRANTED,
                 "etcdserver: permission is not granted to the role");
  assert_int_equal(cetcd_user_grant_role(root, "bob", "ro", NULL), 0);
  cetcd_names_t *n;
  assert_int_equal(cetcd_user_get(root, "bob", &n), 0);
  assert_int_equal(n->n, 1);
  assert_string_equal(n->names[0], "ro");
  cetcd_names_free(n);
  assert_int_equal(cetcd_user_list(root, &n), 0);
  assert_int_equal(n->n, 4);
  assert_string_equal(n->names[0], "alice");
  assert_string_equal(n->names[1], "bob");
  assert_string_equal(n->names[2], "certonly");
  assert_string_equal(n->names[3], "root");
  cetcd_names_free(n);
  assert_int_equal(cetcd_role_list(root, &n), 0);
  assert_int_equal(n->n, 3);
  assert_string_equal(n->names[0], "ro");
  cetcd_names_free(n);
  /* a password change takes effect for logins */
  assert_int_equal(cetcd_user_change_password(root, "bob", "newpw", NULL), 0);
  int rc;
  assert_null(login("bob", "bobpw", false, &rc));
  assert_int_equal(rc, CETCD_EAUTHFAILED);
  cetcd_client_t *bob = login("bob", "newpw", false, &rc);
  assert_non_null(bob);
  cetcd_client_free(bob);
  assert_refused(cetcd_user_revoke_role(root, "bob", "rw-a", NULL), CETCD_EAUTHROLENOTGRANTED,
                 "etcdserver: role is not granted to the user");
  assert_int_equal(cetcd_user_revoke_role(root, "bob", "ro", NULL), 0);
  assert_int_equal(cetcd_user_delete(root, "bob", NULL), 0);
  assert_int_equal(cetcd_user_delete(root, "certonly", NULL), 0);
  assert_refused(cetcd_user_delete(root, "bob", NULL), CETCD_EAUTHUSERNOTFOUND, "etcdserver: user name not found");
  assert_int_equal(cetcd_role_delete(root, "ro", NULL), 0);
  assert_refused(cetcd_role_get(root, "ro", &r), CETCD_EAUTHROLENOTFOUND, "etcdserver: role name not found");
}

/* etcd's simple tokens live in memory: after a restart the old token is invalid, and the
 * client gets a new one and retries the call once. */
static void test_reauth_after_restart(void **state) {
  (void)state;
  int rc;
  cetcd_client_t *alice = login("alice", "alicepw", false, &rc);
  assert_non_null(alice);
  assert_int_equal(cetcd_put(alice, "a/r", 3, "1", 1, NULL, NULL), 0);
  tu_server_stop(&srv, false);
  assert_int_equal(tu_server_start(&srv), 0);
  char *stale = NULL;
  assert_int_equal(cetcd_authenticate(root, "alice", "alicepw", &stale), 0); /* the bare RPC */
  assert_true(strlen(stale) > 0);
  cetcd_free(stale);
  assert_int_equal(cetcd_put(alice, "a/r", 3, "2", 1, NULL, NULL), 0);
  cetcd_get_result_t *g;
  assert_int_equal(cetcd_get(alice, "a/r", 3, NULL, &g), 0);
  assert_memory_equal(g->kvs[0].value, "2", 1);
  cetcd_get_result_free(g);
  /* a watch opened after the refresh carries the new token */
  cetcd_watch_opts_t wo = {.prefix = true};
  cetcd_watch_t *w;
  assert_int_equal(cetcd_watch_open(alice, "a/", 2, &wo, &w), 0);
  assert_int_equal(cetcd_put(alice, "a/r", 3, "3", 1, NULL, NULL), 0);
  cetcd_watch_event_batch_t *b;
  assert_int_equal(cetcd_watch_next(w, 5000, &b), 0);
  assert_int_equal(b->n_events, 1);
  cetcd_watch_batch_free(b);
  cetcd_watch_free(w);
  /* explicit refresh */
  assert_int_equal(cetcd_client_authenticate(alice), 0);
  assert_int_equal(cetcd_put(alice, "a/r", 3, "4", 1, NULL, NULL), 0);
  cetcd_client_free(alice);
}

/* Disabling auth (root only); a client with credentials then runs without a token. */
static void test_disable(void **state) {
  (void)state;
  int rc;
  cetcd_client_t *alice = login("alice", "alicepw", false, &rc);
  assert_non_null(alice);
  assert_refused(cetcd_auth_disable(alice, NULL), CETCD_EAUTHDENIED, "etcdserver: permission denied");
  assert_int_equal(cetcd_auth_disable(root, NULL), 0);
  cetcd_client_t *anon = login(NULL, NULL, false, &rc);
  assert_non_null(anon);
  assert_int_equal(cetcd_put(anon, "b/anon", 6, "1", 1, NULL, NULL), 0);
  cetcd_client_free(anon);
  cetcd_client_t *again = login("alice", "alicepw", false, &rc);
  assert_non_null(again);
  assert_int_equal(cetcd_put(again, "b/free", 6, "1", 1, NULL, NULL), 0);
  cetcd_client_free(again);
  cetcd_client_free(alice);
  /* enabling without a root user fails with etcd's error */
  assert_int_equal(cetcd_user_delete(root, "root", NULL), 0);
  assert_refused(cetcd_auth_enable(root, NULL), CETCD_EAUTHROOTUSER, "etcdserver: root user does not exist");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_and_refusals), cmocka_unit_test(test_permissions_apply),
      cmocka_unit_test(test_async_first_call),
      cmocka_unit_test(test_users_and_roles),     cmocka_unit_test(test_reauth_after_restart),
      cmocka_unit_test(test_disable),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
