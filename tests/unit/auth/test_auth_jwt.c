/* Unit tests for JWT tokens (auth/auth_jwt.c over auth/auth_jws.c's signatures): sign and
 * verify per method, tampering, expiry, the algorithm check, verify-only providers, bad
 * options. Keys come from the openssl CLI (the test fails if it is missing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka must come after the headers above
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_jwt.h"
#include "cetcd/errors.h"

static char dir[] = "/tmp/cetcd-jwt-test-XXXXXX";
static char rsa_key[128], rsa_pub[128], ec_key[128], ec_pub[128], secret[128];
#define NOW 1700000000LL

/* Runs a shell command; the test fails with its text if it does not succeed. */
static void sh(const char *cmd) {
  if (system(cmd) != 0) fail_msg("command failed (is the openssl CLI installed?): %s", cmd);
}

/* Makes the key files once. */
static int setup(void **state) {
  (void)state;
  if (!mkdtemp(dir)) return -1;
  snprintf(rsa_key, sizeof(rsa_key), "%s/rsa.key", dir);
  snprintf(rsa_pub, sizeof(rsa_pub), "%s/rsa.pub", dir);
  snprintf(ec_key, sizeof(ec_key), "%s/ec.key", dir);
  snprintf(ec_pub, sizeof(ec_pub), "%s/ec.pub", dir);
  snprintf(secret, sizeof(secret), "%s/hs.key", dir);
  static char cmd[2048];
  snprintf(cmd, sizeof(cmd),
           "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null && "
           "openssl pkey -in %s -pubout -out %s && "
           "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s 2>/dev/null && "
           "openssl pkey -in %s -pubout -out %s && printf 'shared secret' > %s",
           rsa_key, rsa_key, rsa_pub, ec_key, ec_key, ec_pub, secret);
  return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  sh(cmd);
  return 0;
}

/* Opens a provider or fails the test with the reason. */
static auth_jwt_t *open_jwt(const char *m, const char *pub, const char *priv) {
  auth_jwt_t *j = NULL;
  char err[200] = "";
  int rc = auth_jwt_open(m, pub, priv, 60000, &j, err, sizeof(err));
  if (rc) fail_msg("auth_jwt_open(%s): %s", m, err);
  return j;
}

/* Sign, verify, tamper and expire with one provider. */
static void roundtrip(auth_jwt_t *j) {
  char *tok = NULL;
  assert_int_equal(auth_jwt_sign(j, "u\"1", 42, NOW, &tok), 0);
  char user[64];
  uint64_t rev = 0;
  assert_true(auth_jwt_verify(j, tok, NOW, user, sizeof(user), &rev));
  assert_string_equal(user, "u\"1");
  assert_int_equal(rev, 42);
  assert_true(auth_jwt_verify(j, tok, NOW + 60, user, sizeof(user), &rev));  /* exp itself: valid */
  assert_false(auth_jwt_verify(j, tok, NOW + 61, user, sizeof(user), &rev)); /* expired */
  size_t n = strlen(tok);
  tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A'; /* signature */
  assert_false(auth_jwt_verify(j, tok, NOW, user, sizeof(user), &rev));
  tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
  char *dot = strchr(tok, '.');
  dot[2] = dot[2] == 'x' ? 'y' : 'x'; /* claims */
  assert_false(auth_jwt_verify(j, tok, NOW, user, sizeof(user), &rev));
  assert_false(auth_jwt_verify(j, "a.b", NOW, user, sizeof(user), &rev));
  assert_false(auth_jwt_verify(j, "bogus.1", NOW, user, sizeof(user), &rev));
  /* a part that is not base64url (fuzz_auth_token found these freed twice) */
  assert_false(auth_jwt_verify(j, "e3!.e30.AAAA", NOW, user, sizeof(user), &rev));
  assert_false(auth_jwt_verify(j, "e30.e3!.AAAA", NOW, user, sizeof(user), &rev));
  assert_false(auth_jwt_verify(j, "e30.e30.AA*A", NOW, user, sizeof(user), &rev));
  free(tok);
}

static void test_methods(void **state) {
  (void)state;
  const char *rsa[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"};
  for (size_t i = 0; i < 6; i++) {
    auth_jwt_t *j = open_jwt(rsa[i], rsa_pub, rsa_key);
    roundtrip(j);
    auth_jwt_free(j);
  }
  auth_jwt_t *j = open_jwt("ES256", ec_pub, ec_key);
  roundtrip(j);
  auth_jwt_free(j);
  j = open_jwt("HS256", "", secret);
  roundtrip(j);
  auth_jwt_free(j);
}

/* A token of another algorithm or key is refused; a public key alone verifies only. */
static void test_alg_and_verify_only(void **state) {
  (void)state;
  auth_jwt_t *rs = open_jwt("RS256", rsa_pub, rsa_key), *ps = open_jwt("PS256", rsa_pub, rsa_key);
  auth_jwt_t *vo = open_jwt("RS256", rsa_pub, "");
  char *tok = NULL, user[64];
  uint64_t rev;
  assert_int_equal(auth_jwt_sign(rs, "root", 7, NOW, &tok), 0);
  assert_false(auth_jwt_verify(ps, tok, NOW, user, sizeof(user), &rev)); /* alg RS256 != PS256 */
  assert_true(auth_jwt_verify(vo, tok, NOW, user, sizeof(user), &rev));
  char *t2 = NULL;
  assert_int_equal(auth_jwt_sign(vo, "root", 7, NOW, &t2), CETCD_EAUTHVERIFYONLY);
  assert_null(t2);
  free(tok);
  auth_jwt_free(rs);
  auth_jwt_free(ps);
  auth_jwt_free(vo);
}

/* Bad options are refused with a reason. */
static void test_bad_options(void **state) {
  (void)state;
  auth_jwt_t *j = NULL;
  char err[200];
  assert_int_equal(auth_jwt_open("XX256", rsa_pub, rsa_key, 1000, &j, err, sizeof(err)), CETCD_EINVAL);
  assert_non_null(strstr(err, "sign-method"));
  assert_int_equal(auth_jwt_open("ES256", rsa_pub, rsa_key, 1000, &j, err, sizeof(err)), CETCD_EINVAL);
  assert_int_equal(auth_jwt_open("RS256", "", "", 1000, &j, err, sizeof(err)), CETCD_EINVAL);
  assert_int_equal(auth_jwt_open("RS256", "", "/nonexistent", 1000, &j, err, sizeof(err)), CETCD_EINVAL);
  assert_null(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_methods),
      cmocka_unit_test(test_alg_and_verify_only),
      cmocka_unit_test(test_bad_options),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
