#!/usr/bin/env python3
"""`localhost` as on a stock Debian 12, where /etc/hosts lists ::1 before 127.0.0.1.

ctest runs this script under tests/tools/with-ipv6-localhost.sh (a private mount namespace
with such an /etc/hosts). cetcd and real etcd 3.4 are started side by side with listen and
advertise URLs that name `localhost`; both must bind the same address, and etcdctl, cetcdctl
(libcetcd) and python3-etcd3 must reach both through the name.
"""

import socket
import unittest

import harness
from harness import Server, etcdctl, start_servers


def localhost_order():
    """The addresses `localhost` resolves to, in order."""
    return [ai[4][0] for ai in socket.getaddrinfo("localhost", 1, type=socket.SOCK_STREAM)]


def can_connect(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class LocalhostServer(Server):
    """A server whose client and peer URLs name localhost instead of 127.0.0.1."""

    @property
    def client_url(self):
        return "http://localhost:%d" % self.client_port

    @property
    def peer_url(self):
        return "http://localhost:%d" % self.peer_port


class TestLocalhost(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        order = localhost_order()
        if not order or order[0] != "::1":
            raise AssertionError("localhost must resolve to ::1 first here (run this test through "
                                 "tests/tools/with-ipv6-localhost.sh); got %s" % order)
        cls.cetcd = LocalhostServer(label="cetcd")
        cls.etcd = LocalhostServer(binary=harness.ETCD_BIN, label="etcd")
        start_servers(cls.cetcd, cls.etcd)
        cls.servers = (cls.cetcd, cls.etcd)

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.close()

    def test_binds_like_etcd(self):
        """`localhost` in a listen URL binds the same addresses as etcd (its first IPv4)."""
        got = {}
        for s in self.servers:
            got[s.label] = (can_connect("127.0.0.1", s.client_port), can_connect("::1", s.client_port))
        self.assertEqual(got["etcd"], got["cetcd"], got)
        self.assertTrue(got["cetcd"][0], "cetcd does not listen on 127.0.0.1")

    def test_etcdctl_by_name(self):
        for s in self.servers:
            ep = "localhost:%d" % s.client_port
            r = etcdctl([ep], "put", "lh", s.label)
            self.assertTrue(r.ok, (s.label, r))
            r = etcdctl([ep], "get", "lh", "--print-value-only")
            self.assertEqual(r.out.strip(), s.label, (s.label, r))

    def test_cetcdctl_by_name(self):
        """libcetcd tries every address of the name (::1 is refused, 127.0.0.1 answers)."""
        import subprocess
        for s in self.servers:
            ep = "localhost:%d" % s.client_port
            argv = [harness.cetcdctl_bin(), "--endpoints=" + ep, "--dial-timeout=3s"]
            p = subprocess.run(argv + ["put", "lh2", s.label], capture_output=True, text=True, timeout=20)
            self.assertEqual(p.returncode, 0, (s.label, p.stderr))
            p = subprocess.run(argv + ["get", "lh2", "--print-value-only"], capture_output=True,
                               text=True, timeout=20)
            self.assertEqual((p.returncode, p.stdout.strip()), (0, s.label), (s.label, p.stderr))

    def test_member_list_advertises_name(self):
        """The advertised client URL keeps the name, as etcd does."""
        outs = []
        for s in self.servers:
            r = etcdctl(["localhost:%d" % s.client_port], "member", "list")
            self.assertTrue(r.ok, (s.label, r))
            self.assertIn("http://localhost:%d" % s.client_port, r.out)
            outs.append(r.out.replace(str(s.client_port), "P").replace(str(s.peer_port), "Q"))
        self.assertEqual(harness.mask(outs[1]), harness.mask(outs[0]))

    def test_python_etcd3_by_name(self):
        import etcd3
        for s in self.servers:
            c = etcd3.client(host="localhost", port=s.client_port, timeout=5)
            c.put("lh3", s.label)
            self.assertEqual(c.get("lh3")[0], s.label.encode())
            c.close()


if __name__ == "__main__":
    harness.run_tests()
