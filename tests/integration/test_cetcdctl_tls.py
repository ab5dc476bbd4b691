#!/usr/bin/python3
"""cetcdctl over TLS, side by side with etcdctl: --cacert, --cert, --key,
--insecure-skip-tls-verify, --insecure-transport and https:// endpoints.

Runs against real etcd 3.4 and the server under test, each started with
--cert-file/--key-file and --client-cert-auth --trusted-ca-file; a throwaway CA and the
certificates are made with the openssl CLI in a temp dir. Every command runs through
Debian's etcdctl and through cetcdctl against the same server; exit status and masked
stdout must be equal, and for failures both must say "context deadline exceeded".
"""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_cetcdctl as tc  # noqa: E402

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def make_certs(d):
    """ca.pem, server.pem/key and client.pem/key signed by it (SAN localhost, 127.0.0.1),
    and other.pem, an unrelated CA."""
    def ssl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True, timeout=60)
    ssl("req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=cetcd-test-ca")
    ssl("req", "-x509", *EC, "-keyout", "other.key", "-out", "other.pem", "-days", "2", "-subj", "/CN=other")
    for n in ("server", "client"):
        ssl("req", "-new", *EC, "-keyout", n + ".key", "-out", n + ".csr", "-subj", "/CN=" + n,
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
        ssl("x509", "-req", "-in", n + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", n + ".pem", "-days", "2", "-copy_extensions", "copy")
    return {k: os.path.join(d, k) for k in ("ca.pem", "other.pem", "server.pem", "server.key",
                                              "client.pem", "client.key")}


class TLSServer(harness.Server):
    """etcd serving its client URL over TLS."""

    @property
    def client_url(self):
        return "https://127.0.0.1:%d" % self.client_port


class CetcdctlTLS(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.assertTrue(os.path.exists(tc.CETCDCTL_BIN), "cetcdctl not built: %s" % tc.CETCDCTL_BIN)
        self.tmp = tempfile.mkdtemp(prefix="cetcdctl-tls-")
        self.f = make_certs(self.tmp)
        tls = ["--cert-file", self.f["server.pem"], "--key-file", self.f["server.key"],
               "--client-cert-auth", "--trusted-ca-file", self.f["ca.pem"]]
        self.servers = []
        if not harness.testing_real_etcd():
            self.servers.append(TLSServer(binary="/usr/bin/etcd", label="etcd", extra_args=tls))
        self.servers.append(TLSServer(label="sut", extra_args=tls))
        harness.start_servers(*self.servers)

    def tearDown(self):
        for s in self.servers:
            s.close()
        subprocess.run(["rm", "-rf", self.tmp])

    def run_both(self, endpoint, args, input=None):
        res = []
        for binary in (harness.ETCDCTL_BIN, tc.CETCDCTL_BIN):
            argv = [binary, "--endpoints=" + endpoint, "--dial-timeout=2s", "--command-timeout=3s"] + args
            p = subprocess.run(argv, input=input.encode() if input else None, capture_output=True,
                               env=tc._env(), timeout=30)
            res.append((p.returncode, p.stdout.decode(), p.stderr.decode()))
        return res

    def same(self, endpoint, args, digits=False, input=None):
        (ra, oa, ea), (rb, ob, eb) = self.run_both(endpoint, args, input)
        harness.assert_same(self, "$ %s\nrc=%s\n%s" % (" ".join(args), ra, tc.normalize(oa, digits)),
                            "$ %s\nrc=%s\n%s" % (" ".join(args), rb, tc.normalize(ob, digits)),
                            "etcdctl", "cetcdctl")
        return (ra, oa, ea), (rb, ob, eb)

    def test_tls_commands_match_etcdctl(self):
        for srv in self.servers:
            with self.subTest(server=srv.label):
                self.srv = srv
                self.check_server()

    def check_server(self):
        f = self.f
        ep = self.srv.endpoint
        full = ["--cacert", f["ca.pem"], "--cert", f["client.pem"], "--key", f["client.key"]]
        (ra, _, _), _ = self.same(ep, full + ["put", "k", "v"], digits=True)
        self.assertEqual(ra, 0)
        for w in tc.FORMATS:
            self.same(ep, full + ["get", "k", "-w", w], digits=w in ("json", "fields"))
        for url in ("https://127.0.0.1:%d" % self.srv.client_port, "https://localhost:%d" % self.srv.client_port):
            (ra, oa, _), _ = self.same(url, full + ["get", "k"])
            self.assertEqual((ra, oa), (0, "k\nv\n"))
        # no CA, verification off: TLS only because --insecure-transport=false
        (ra, oa, _), _ = self.same(ep, ["--insecure-transport=false", "--insecure-skip-tls-verify",
                                        "--cert", f["client.pem"], "--key", f["client.key"], "get", "k"])
        self.assertEqual((ra, oa), (0, "k\nv\n"))
        # refusals: unknown CA, no client certificate, plain HTTP/2 to the TLS port
        for args in (["--cacert", f["other.pem"], "--cert", f["client.pem"], "--key", f["client.key"]],
                     ["--cacert", f["ca.pem"]],
                     []):
            (ra, oa, ea), (rb, ob, eb) = self.same(ep, args + ["get", "k"])
            self.assertNotEqual(ra, 0)
            for e in (ea, eb):
                self.assertIn("Error: context deadline exceeded", e)


if __name__ == "__main__":
    harness.run_tests()
