#!/usr/bin/env python3
"""Client TLS (issue 10, item 1), side by side with real etcd 3.4.

A throwaway CA, server and client certificates are made with the openssl CLI. For each
check cetcd and etcd get the same flags and the same clients (Debian's etcdctl, Python's
ssl module, curl) and must answer alike:
- test_1_https: an https listener with --cert-file/--key-file serves gRPC (etcdctl with
  --cacert, also through `localhost`) and HTTP/1.1 (/health, /version) on the same port; a
  client that does not trust the CA fails; ALPN picks h2; TLS 1.1 is refused; an http
  listener beside it keeps working.
- test_2_client_cert_auth: --client-cert-auth with --trusted-ca-file: a client certificate
  from the CA is accepted, none or one from another CA is refused, and cetcd logs the
  rejection with its cause.
- test_3_rotation: the certificate and key files are replaced while the server runs; new
  connections get the new certificate without a restart.
- test_4_auto_tls: --auto-tls makes a self-signed certificate under
  <data-dir>/fixtures/client, kept across restarts.
- test_5_cipher_suites: --cipher-suites limits TLS 1.2 suites (Go names); an unknown name
  and an https URL without a certificate stop the server with etcd's message.
- test_6_silent_client: a client that connects and never sends a ClientHello does not stop
  others and is disconnected when the handshake timeout passes (cetcd only: etcd has none).
- test_7_one_static_binary (cetcd only): the server is one statically linked file (no
  program interpreter); a plain, a TLS and a JWT server map no shared object, and the TLS
  and JWT ones serve (h2 handshake and a put; a put with a JWT token, a bad password refused).
Every wait is bounded."""

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)  # TLS 1.1 is offered on purpose

import harness
from harness import Server, etcdctl, start_servers

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
EXT = """[leaf]
subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth
"""


def run(*argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if p.returncode:
        raise AssertionError("%s failed: %s" % (" ".join(argv), p.stderr.decode()))


class Pki:
    """A CA in dir/<ca>.pem and leaf certificates it signs."""

    def __init__(self, root, ca):
        self.root, self.ca = root, ca
        self.ca_pem = os.path.join(root, ca + ".pem")
        self.ca_key = os.path.join(root, ca + ".key")
        run(OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.ca_key, "-out",
            self.ca_pem, "-days", "2", "-subj", "/CN=" + ca)
        with open(os.path.join(root, "ext.cnf"), "w") as f:
            f.write(EXT)

    def leaf(self, name, cn):
        """Makes name.pem and name.key signed by this CA; returns (cert, key)."""
        cert, key, csr = (os.path.join(self.root, name + s) for s in (".pem", ".key", ".csr"))
        run(OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        run(OPENSSL, "x509", "-req", "-in", csr, "-CA", self.ca_pem, "-CAkey", self.ca_key, "-CAcreateserial",
            "-out", cert, "-days", "2", "-extfile", os.path.join(self.root, "ext.cnf"), "-extensions", "leaf")
        return cert, key


class TlsServer(Server):
    """A server whose client URL is https (plus an http one when plain_port is set)."""

    def __init__(self, binary=None, tls_args=(), label=None, plain=False):
        super().__init__(binary=binary, label=label, extra_args=list(tls_args))
        self.plain_port = harness.free_port() if plain else None

    @property
    def client_url(self):
        return "https://127.0.0.1:%d" % self.client_port

    def argv(self):
        a = super().argv()
        if self.plain_port:
            i = a.index("--listen-client-urls") + 1
            a[i] += ",http://127.0.0.1:%d" % self.plain_port
        return a

    def ctl(self, *args, input=None, timeout=20, binary=False, extra=()):
        return etcdctl(["https://127.0.0.1:%d" % self.client_port], *args, input=input, timeout=timeout,
                       binary=binary, extra=["--insecure-skip-tls-verify"] + list(extra))


def https_get(port, path, ca, cert=None):
    """GET over HTTP/1.1 with TLS; returns (status, body) or the error's text."""
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(*cert)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
                data = b""
                for _ in range(100):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return head.split(b" ")[1].decode(), body.decode().strip()
    except (OSError, ssl.SSLError) as e:
        return "error", type(e).__name__


def handshake(port, ca=None, cert=None, alpn=None, max_version=None, ciphers=None):
    """A bare TLS handshake; returns (ALPN protocol, cipher name) or ("error", reason)."""
    ctx = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()
    if cert:
        ctx.load_cert_chain(*cert)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if max_version:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = max_version
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if ciphers:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ciphers)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                if cert:  # TLS 1.3: a refused client certificate shows on the first read
                    s.settimeout(1)
                    try:
                        s.recv(1)
                    except socket.timeout:
                        pass
                return s.selected_alpn_protocol(), s.cipher()[0]
    except (OSError, ssl.SSLError) as e:
        return "error", type(e).__name__


class TestTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="cetcd-tls-")
        cls.pki = Pki(cls.dir, "ca")
        cls.other = Pki(cls.dir, "other-ca")
        cls.srv = cls.pki.leaf("server", "server")
        cls.cli = cls.pki.leaf("client", "root")
        cls.foreign = cls.other.leaf("foreign", "root")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def pair(self, tls_args, plain=False):
        """cetcd and etcd with the same TLS flags, started; closed at the end of the test."""
        servers = [TlsServer(tls_args=tls_args, label="cetcd", plain=plain),
                   TlsServer(binary=harness.ETCD_BIN, tls_args=tls_args, label="etcd", plain=plain)]
        for s in servers:
            self.addCleanup(s.close)
        start_servers(*servers)
        return servers

    def ctl(self, server, *args, tls=(), host="127.0.0.1"):
        return etcdctl(["https://%s:%d" % (host, server.client_port)], *args, extra=list(tls), timeout=15)

    def test_1_https(self):
        ca = ["--cacert", self.pki.ca_pem]
        got = {}
        for s in self.pair(["--cert-file", self.srv[0], "--key-file", self.srv[1]], plain=True):
            out = []
            out.append(self.ctl(s, "put", "k", "v", tls=ca).out)
            out.append(self.ctl(s, "get", "k", tls=ca).out)
            r = self.ctl(s, "get", "k", tls=ca, host="localhost")
            out.append("localhost: rc=%s %s" % (r.rc, r.out))
            r = self.ctl(s, "get", "k", tls=["--cacert", self.other.ca_pem, "--command-timeout=2s"])
            out.append("untrusted CA: rc=%s" % (r.rc != 0))
            out.append("health %s %s" % https_get(s.client_port, "/health", self.pki.ca_pem))
            st, body = https_get(s.client_port, "/version", self.pki.ca_pem)
            out.append("version %s %s" % (st, "etcdserver" in body))
            out.append("alpn %s" % handshake(s.client_port, self.pki.ca_pem, alpn=["h2", "http/1.1"])[0])
            out.append("alpn http/1.1 only: %s" % handshake(s.client_port, self.pki.ca_pem, alpn=["http/1.1"])[0])
            out.append("tls1.1 %s" % handshake(s.client_port, max_version=ssl.TLSVersion.TLSv1_1)[0])
            r = etcdctl(["127.0.0.1:%d" % s.plain_port], "get", "k", "--print-value-only")
            out.append("plain listener: %s" % r.out.strip())
            got[s.label] = "\n".join(out)
        self.assertIn("localhost: rc=0", got["cetcd"])
        self.assertIn("health 200", got["cetcd"])
        self.assertIn("alpn h2", got["cetcd"])
        self.assertIn("tls1.1 error", got["cetcd"])
        harness.assert_same(self, got["etcd"], got["cetcd"], "etcd", "cetcd")

    def test_2_client_cert_auth(self):
        args = ["--cert-file", self.srv[0], "--key-file", self.srv[1], "--client-cert-auth", "--trusted-ca-file",
                self.pki.ca_pem]
        got = {}
        for s in self.pair(args):
            base = ["--cacert", self.pki.ca_pem, "--command-timeout=2s"]
            out = []
            out.append(self.ctl(s, "put", "k", "v", tls=base + ["--cert", self.cli[0], "--key", self.cli[1]]).out)
            out.append("no cert: failed=%s" % (self.ctl(s, "get", "k", tls=base).rc != 0))
            r = self.ctl(s, "get", "k", tls=base + ["--cert", self.foreign[0], "--key", self.foreign[1]])
            out.append("foreign cert: failed=%s" % (r.rc != 0))
            out.append("health with cert: %s %s" % https_get(s.client_port, "/health", self.pki.ca_pem, self.cli))
            out.append("handshake without cert: %s" % (handshake(s.client_port, self.pki.ca_pem, cert=None)[0]))
            got[s.label] = "\n".join(out)
            if s.label == "cetcd":
                log = s._current_log()
                self.assertIn('msg="rejected connection"', log)
                self.assertRegex(log, r"certificate|peer did not return")
        self.assertIn("no cert: failed=True", got["cetcd"])
        self.assertIn("foreign cert: failed=True", got["cetcd"])
        harness.assert_same(self, got["etcd"], got["cetcd"], "etcd", "cetcd")

    def test_3_rotation(self):
        d = tempfile.mkdtemp(dir=self.dir)
        cert, key = os.path.join(d, "s.pem"), os.path.join(d, "s.key")
        got = {}
        self._install(cert, key, self.pki)
        for s in self.pair(["--cert-file", cert, "--key-file", key]):
            out = ["old CA before: %s" % (handshake(s.client_port, self.pki.ca_pem)[0] != "error")]
            self._install(cert, key, self.other)
            ok = False
            for _ in range(40):  # the server looks at the files at most once a second
                if handshake(s.client_port, self.other.ca_pem)[0] != "error":
                    ok = True
                    break
                time.sleep(0.25)
            out.append("new CA after rotation: %s" % ok)
            out.append("old CA after rotation: %s" % (handshake(s.client_port, self.pki.ca_pem)[0] != "error"))
            r = self.ctl(s, "put", "k", "v", tls=["--cacert", self.other.ca_pem])
            out.append("etcdctl with the new CA: %s" % r.out.strip())
            self._install(cert, key, self.pki)
            got[s.label] = "\n".join(out)
        self.assertIn("new CA after rotation: True", got["cetcd"])
        self.assertIn("old CA after rotation: False", got["cetcd"])
        harness.assert_same(self, got["etcd"], got["cetcd"], "etcd", "cetcd")

    def _install(self, cert, key, pki):
        """Writes a fresh server certificate from pki to cert/key (replacing the files)."""
        c, k = pki.leaf("rot-" + pki.ca, "server")
        shutil.copy(k, key + ".tmp")
        shutil.copy(c, cert + ".tmp")
        os.replace(key + ".tmp", key)
        os.replace(cert + ".tmp", cert)

    def test_4_auto_tls(self):
        got = {}
        for s in self.pair(["--auto-tls"]):
            fx = os.path.join(s.data_dir, "fixtures", "client")
            out = ["files: %s" % sorted(os.listdir(fx))]
            with open(os.path.join(fx, "cert.pem")) as f:
                first = f.read()
            out.append(self.ctl(s, "put", "k", "v", tls=["--insecure-skip-tls-verify"]).out.strip())
            out.append("verified: failed=%s" % (self.ctl(s, "get", "k", tls=["--command-timeout=2s"]).rc != 0))
            s.stop()
            s.start()
            with open(os.path.join(fx, "cert.pem")) as f:
                out.append("kept across restart: %s" % (f.read() == first))
            out.append(self.ctl(s, "get", "k", "--print-value-only", tls=["--insecure-skip-tls-verify"]).out.strip())
            got[s.label] = "\n".join(out)
        self.assertIn("files: ['cert.pem', 'key.pem']", got["cetcd"])
        harness.assert_same(self, got["etcd"], got["cetcd"], "etcd", "cetcd")

    def test_5_cipher_suites(self):
        args = ["--cert-file", self.srv[0], "--key-file", self.srv[1], "--cipher-suites",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"]
        got = {}
        for s in self.pair(args):
            out = ["default: %s" % handshake(s.client_port, self.pki.ca_pem,
                                             ciphers="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")[1],
                   "not allowed: %s" % handshake(s.client_port, self.pki.ca_pem,
                                                 ciphers="ECDHE-RSA-AES256-GCM-SHA384")[0]]
            got[s.label] = "\n".join(out)
        self.assertIn("default: ECDHE-RSA-AES128-GCM-SHA256", got["cetcd"])
        self.assertIn("not allowed: error", got["cetcd"])
        harness.assert_same(self, got["etcd"], got["cetcd"], "etcd", "cetcd")
        # start-up errors: both refuse to start and name the cause
        bad = {
            "cipher": (["--cert-file", self.srv[0], "--key-file", self.srv[1], "--cipher-suites", "TLS_FOO"],
                       'unexpected TLS cipher suite "TLS_FOO"'),
            "no cert": ([], "TLS key/cert (--cert-file, --key-file) must be provided for client url"),
        }
        for what, (args, want) in bad.items():
            for binary in (harness.server_bin(), harness.ETCD_BIN):
                s = TlsServer(binary=binary, tls_args=args)
                self.addCleanup(s.close)
                s.start(wait=False)
                try:
                    s.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.fail("%s started with %s" % (binary, what))
                self.assertNotEqual(s.proc.returncode, 0)
                self.assertIn(want, s._current_log(), "%s: %s" % (binary, what))

    def test_6_silent_client(self):
        s = TlsServer(tls_args=["--cert-file", self.srv[0], "--key-file", self.srv[1]], label="cetcd")
        self.addCleanup(s.close)
        s.start()
        silent = socket.create_connection(("127.0.0.1", s.client_port), timeout=20)
        self.addCleanup(silent.close)
        r = self.ctl(s, "put", "k", "v", tls=["--cacert", self.pki.ca_pem])
        self.assertEqual(r.out.strip(), "OK", r.err)
        t0 = time.monotonic()
        try:
            data = silent.recv(1)
        except (socket.timeout, ConnectionResetError):
            data = None
        waited = time.monotonic() - t0
        self.assertEqual(data, b"", "the server did not close a connection that never sent a ClientHello")
        self.assertLess(waited, 15)
        self.assertIn("TLS handshake timed out", s._current_log())


    def test_7_one_static_binary(self):
        def shared_objects(pid):
            with open("/proc/%d/maps" % pid) as f:
                return sorted({line.split()[-1] for line in f if ".so" in line.split()[-1]})

        binary = harness.cetcd_bin()
        self.assertFalse(harness.elf_is_dynamic(binary), "%s has a program interpreter" % binary)
        plain = Server(binary=binary, label="cetcd")
        self.addCleanup(plain.close)
        plain.start()
        self.assertEqual(shared_objects(plain.pid), [])
        tls = TlsServer(binary=binary, tls_args=["--cert-file", self.srv[0], "--key-file", self.srv[1]],
                        label="cetcd")
        self.addCleanup(tls.close)
        tls.start()
        self.assertEqual(shared_objects(tls.pid), [])
        self.assertEqual(handshake(tls.client_port, ca=self.pki.ca_pem, alpn=["h2"])[0], "h2")
        r = self.ctl(tls, "put", "k", "v", tls=["--cacert", self.pki.ca_pem])
        self.assertEqual((r.rc, r.out.strip()), (0, "OK"), r)
        # JWT signatures: ES256 tokens made and checked by the same binary
        key = os.path.join(self.dir, "jwt.key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                        key], check=True, capture_output=True, timeout=60)
        j = Server(binary=binary, label="cetcd-jwt",
                   extra_args=["--auth-token=jwt,priv-key=%s,sign-method=ES256" % key])
        self.addCleanup(j.close)
        j.start()
        self.assertEqual(shared_objects(j.pid), [])
        for args in (("user", "add", "root:rootpw"), ("auth", "enable")):
            self.assertTrue(j.ctl(*args).ok, args)
        r = j.ctl("put", "k", "v", extra=["--user", "root:rootpw"])
        self.assertEqual((r.rc, r.out.strip()), (0, "OK"), r)
        r = j.ctl("put", "k", "v", extra=["--user", "root:wrong"])
        self.assertFalse(r.ok, r)
        self.assertIn("authentication failed", r.err)


if __name__ == "__main__":
    harness.run_tests()
