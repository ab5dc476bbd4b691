/* Unit tests for the applied membership (server/membership.c): etcd's JSON layout of the
 * `members` bucket, id order, removal (ids never come back), attributes, promotion and
 * persistence across a reopen of the backend. */
#include "../mvcc/mvcc_test_util.h"
#include "server/membership.h"

/* A member with one peer URL (strings borrowed). */
static member_t mk(uint64_t id, char **peer, const char *name, bool learner) {
  return (member_t){.id = id, .name = (char *)name, .peer_urls = peer, .n_peer_urls = 1, .learner = learner};
}

/* etcd's json.Marshal(membership.Member): field order id, peerURLs, isLearner, name,
 * clientURLs; empty name, no client URLs and false isLearner are omitted. */
static void test_json_layout(void **state) {
  (void)state;
  char *peer[] = {"http://127.0.0.1:2380"};
  char *client[] = {"http://127.0.0.1:2379"};
  member_t m = mk(10276657743932975437ULL, peer, "default", false);
  m.client_urls = client;
  m.n_client_urls = 1;
  buf_t b = {0};
  membership_member_json(&m, &b);
  buf_append(&b, "", 1);
  assert_string_equal(
      (char *)b.data,
      "{\"id\":10276657743932975437,\"peerURLs\":[\"http://127.0.0.1:2380\"],\"name\":\"default\","
      "\"clientURLs\":[\"http://127.0.0.1:2379\"]}");
  buf_reset(&b);
  member_t l = mk(7, peer, "", true);
  membership_member_json(&l, &b);
  buf_append(&b, "", 1);
  assert_string_equal((char *)b.data,
                      "{\"id\":7,\"peerURLs\":[\"http://127.0.0.1:2380\"],\"isLearner\":true}");
  /* and back */
  arena_t a;
  arena_init(&a);
  member_t back;
  assert_int_equal(membership_member_parse(b.data, b.len - 1, &a, &back), 0);
  assert_int_equal(back.id, 7);
  assert_true(back.learner);
  assert_int_equal(back.n_peer_urls, 1);
  assert_string_equal(back.peer_urls[0], "http://127.0.0.1:2380");
  assert_int_equal(membership_member_parse((const uint8_t *)"{\"peerURLs\":[]}", 15, &a, &back),
                   CETCD_EINVAL);
  arena_destroy(&a);
  buf_free(&b);
}

/* Members come back in id order after a reopen, with removals, attributes and promotion. */
static void test_persistence(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  mvcc_store_t *s = tu_open(dir, NULL);
  membership_t *ms;
  assert_int_equal(membership_open(s, &ms), 0);
  assert_int_equal(membership_count(ms), 0);
  char *p1[] = {"http://a:1"}, *p2[] = {"http://b:2"}, *p3[] = {"http://c:3"};
  member_t a = mk(30, p1, "a", false), b = mk(10, p2, "b", false), c = mk(20, p3, "", true);
  assert_int_equal(mvcc_batch_begin(s), 0);
  assert_int_equal(membership_put(ms, &a), 0);
  assert_int_equal(membership_put(ms, &b), 0);
  assert_int_equal(membership_put(ms, &c), 0);
  assert_int_equal(membership_learners(ms), 1);
  assert_true(membership_peer_url_used(ms, p3, 1, 0));
  assert_false(membership_peer_url_used(ms, p3, 1, 20)); /* its own URL */
  char *cu[] = {"http://c:9"};
  assert_int_equal(membership_set_attrs(ms, 20, "c", cu, 1), 0);
  assert_int_equal(membership_promote(ms, 20), 0);
  assert_int_equal(membership_remove(ms, 10), 0);
  assert_int_equal(membership_set_attrs(ms, 10, "gone", NULL, 0), 0); /* removed: skipped */
  assert_int_equal(mvcc_batch_commit(s, 5), 0);
  membership_free(ms);
  mvcc_close(s);

  s = tu_open(dir, NULL);
  assert_int_equal(membership_open(s, &ms), 0);
  assert_int_equal(membership_count(ms), 2);
  assert_int_equal(membership_at(ms, 0)->id, 20); /* id order */
  assert_int_equal(membership_at(ms, 1)->id, 30);
  const member_t *got = membership_find(ms, 20);
  assert_string_equal(got->name, "c");
  assert_false(got->learner);
  assert_int_equal(got->n_client_urls, 1);
  assert_string_equal(got->client_urls[0], "http://c:9");
  assert_null(membership_find(ms, 10));
  assert_true(membership_is_removed(ms, 10));
  assert_false(membership_is_removed(ms, 20));
  assert_int_equal(membership_learners(ms), 0);
  /* etcd's members_removed value */
  char v[16];
  size_t n = sizeof(v);
  assert_int_equal(mvcc_bucket_get(s, "members_removed", "a", 1, v, &n), 0);
  assert_int_equal(n, 7);
  assert_memory_equal(v, "removed", 7);
  membership_free(ms);
  mvcc_close(s);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_layout),
      cmocka_unit_test(test_persistence),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
