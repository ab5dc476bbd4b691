#!/usr/bin/python3
"""`make install` works and a program builds against the installed library with
`pkg-config --cflags --libs cetcd` (shared and static), then runs against a real server.

The build tree is the one ctest runs in (CETCD_BUILD_DIR, default: the directory of
CETCD_BIN). Installs into a temporary prefix; nothing outside it is touched."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PROGRAM = r'''
#include <cetcd/cetcd.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
  const char *eps[] = {argv[1]};
  cetcd_client_opts_t o = {0};
  o.endpoints = eps;
  o.n_endpoints = 1;
  o.dial_timeout_ms = 3000;
  o.request_timeout_ms = 5000;
  cetcd_client_t *c = NULL;
  int rc = cetcd_client_new(&o, &c);
  if (rc) { fprintf(stderr, "client: %s\n", cetcd_strerror(rc)); return 1; }
  rc = cetcd_put(c, "installed", 9, "yes", 3, NULL, NULL);
  if (rc) { fprintf(stderr, "put: %s\n", cetcd_strerror(rc)); return 1; }
  cetcd_get_result_t *r = NULL;
  rc = cetcd_get(c, "installed", 9, NULL, &r);
  if (rc || r->n_kvs != 1) { fprintf(stderr, "get failed\n"); return 1; }
  printf("%.*s\n", (int)r->kvs[0].value_len, (const char *)r->kvs[0].value);
  cetcd_get_result_free(r);
  cetcd_client_free(c);
  return 0;
}
'''


class Install(unittest.TestCase):
    def setUp(self):
        self.build = os.environ.get("CETCD_BUILD_DIR") or os.path.dirname(harness.server_bin())
        self.prefix = tempfile.mkdtemp(prefix="cetcd-install-")
        self.srv = harness.Server(label="sut")
        self.srv.start()

    def tearDown(self):
        self.srv.close()
        shutil.rmtree(self.prefix, ignore_errors=True)

    def run_ok(self, argv, env=None):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        self.assertEqual(p.returncode, 0, "%s failed:\n%s\n%s" % (" ".join(argv), p.stdout, p.stderr))
        return p.stdout

    def test_install_and_build_with_pkg_config(self):
        self.run_ok(["cmake", "--install", self.build, "--prefix", self.prefix])
        for f in ("include/cetcd/cetcd.h", "include/cetcd/concurrency.h", "bin/cetcdctl"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, f)), f)
        pcdirs = [os.path.join(root) for root, _, files in os.walk(self.prefix) if "cetcd.pc" in files]
        self.assertTrue(pcdirs, "cetcd.pc not installed")
        env = dict(os.environ, PKG_CONFIG_PATH=pcdirs[0])
        src = os.path.join(self.prefix, "app.c")
        with open(src, "w") as f:
            f.write(PROGRAM)
        cflags = self.run_ok(["pkg-config", "--cflags", "cetcd"], env).split()
        libs = self.run_ok(["pkg-config", "--libs", "cetcd"], env).split()
        libdir = [a[2:] for a in libs if a.startswith("-L")][0]
        shared = os.path.join(self.prefix, "app-shared")
        self.run_ok(["cc", "-std=c11", src, "-o", shared] + cflags + libs)
        out = self.run_ok([shared, self.srv.endpoint], dict(os.environ, LD_LIBRARY_PATH=libdir))
        self.assertEqual(out.strip(), "yes")
        static_libs = self.run_ok(["pkg-config", "--static", "--libs", "cetcd"], env).split()
        static = os.path.join(self.prefix, "app-static")
        # libcetcd.a itself, its dependencies from pkg-config's Requires.private (shared)
        self.run_ok(["cc", "-std=c11", src, "-o", static] + cflags +
                    [a.replace("-lcetcd", "-l:libcetcd.a") for a in static_libs])
        out = self.run_ok([static, self.srv.endpoint])
        self.assertEqual(out.strip(), "yes")


if __name__ == "__main__":
    harness.run_tests()
