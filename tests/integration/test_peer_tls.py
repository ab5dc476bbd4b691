#!/usr/bin/env python3
"""Peer TLS (issue 10, item 2): 3-member clusters whose peer URLs are https, side by side
with real etcd 3.4 (the same certificates, flags and steps; outcomes compared).

- test_1_peer_tls: --peer-cert-file/--peer-key-file/--peer-trusted-ca-file with
  --peer-client-cert-auth: writes through one member are read linearizably through another,
  the member list shows the https peer URLs, the leader is killed (SIGKILL) and the others
  elect a new one and take writes, and the restarted member catches up. A plain HTTP/2
  request to a peer port gets no answer (the port speaks TLS only).
- test_2_wrong_ca: the third member presents a certificate from another CA: the other two
  form the cluster and take writes, the third never becomes healthy, and cetcd logs the
  rejection with its cause.
- test_3_allowed_cn: --peer-cert-allowed-cn=member: a member whose certificate (from the
  right CA) has another CN is refused the same way.
- test_4_peer_auto_tls: --peer-auto-tls: self-signed peer certificates, nothing verified,
  as etcd does; the cluster forms and takes writes.
Every wait is bounded."""

import os
import shutil
import socket
import tempfile
import unittest

import cluster_harness as ch
import harness
from test_tls import Pki

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class HttpsMember(ch.Member):
    """A member whose peer URL is https."""

    @property
    def peer_url(self):
        return "https://127.0.0.1:%d" % self.peer_port


def https_cluster(binary, member_args, extra_args=()):
    """A 3-member cluster with https peer URLs; member_args[i] are member i's own flags."""
    c = ch.Cluster(binary, 3, extra_args=extra_args)
    for m, args in zip(c.members, member_args):
        m.__class__ = HttpsMember
        m.more_args = list(args)
    ic = c.initial_cluster_string(c.members)
    for m in c.members:
        m.initial_cluster = ic
    return c


def healthy(m):
    r = harness.etcdctl([m.endpoint], "endpoint", "health", timeout=10, extra=["--command-timeout=2s"])
    return r.rc == 0 and "is healthy" in r.out + r.err


class TestPeerTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="cetcd-peer-tls-")
        cls.pki = Pki(cls.dir, "ca")
        cls.other = Pki(cls.dir, "other-ca")
        cls.certs = [cls.pki.leaf("member%d" % i, "member") for i in range(3)]
        cls.foreign = cls.other.leaf("foreign", "member")
        cls.intruder = cls.pki.leaf("intruder", "intruder")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def member_args(self, certs):
        return [["--peer-cert-file", c, "--peer-key-file", k] for c, k in certs]

    def common(self):
        return ["--peer-trusted-ca-file", self.pki.ca_pem, "--peer-client-cert-auth"]

    def both(self, scenario, *args):
        """Runs scenario on an etcd cluster, then on a cetcd cluster; returns both outcomes."""
        out = {}
        for binary, label in ((harness.ETCD_BIN, "etcd"), (harness.server_bin(), "cetcd")):
            out[label] = scenario(binary, *args)
        harness.assert_same(self, out["etcd"], out["cetcd"], "etcd", "cetcd")
        return out

    def healthy_pair_scenario(self, binary, certs, extra):
        """Members 0 and 1 are good; member 2 must be refused by them."""
        with https_cluster(binary, self.member_args(certs), extra) as c:
            for m in c.members:
                m.start(wait=False)
            good = c.members[:2]
            leader = ch.until(lambda: c.leader(good), timeout=20)
            out = ["two good members elect a leader: %s" % bool(leader)]
            r = harness.etcdctl([good[0].endpoint], "put", "k", "v")
            out.append("put through a good member: %s" % r.out.strip())
            out.append("third member healthy: %s" % bool(ch.until(lambda: healthy(c.members[2]), timeout=4)))
            if not c.is_etcd:
                logs = good[0]._current_log() + good[1]._current_log()
                self.assertIn('msg="rejected connection"', logs)
                self.assertRegex(logs, r"certificate|unknown ca|verify failed")
            return "\n".join(out)

    def test_1_peer_tls(self):
        def scenario(binary):
            with https_cluster(binary, self.member_args(self.certs), self.common()) as c:
                c.start()
                out = []
                out.append(harness.etcdctl([c.members[0].endpoint], "put", "k", "v1").out.strip())
                r = harness.etcdctl([c.members[2].endpoint], "get", "k", "--print-value-only")
                out.append("linearizable read through another member: %s" % r.out.strip())
                r = harness.etcdctl([c.members[1].endpoint], "member", "list")
                out.append("https peer URLs listed: %d" % r.out.count("https://127.0.0.1:"))
                leader = ch.until(c.leader)
                leader.kill9()
                survivors = [m for m in c.members if m is not leader]
                out.append("new leader after SIGKILL: %s" % bool(ch.until(lambda: c.leader(survivors), timeout=20)))
                r = harness.etcdctl([survivors[0].endpoint], "put", "k", "v2")
                out.append("put after the kill: %s" % r.out.strip())
                leader.start()
                got = ch.until(lambda: harness.etcdctl([leader.endpoint], "get", "k", "--consistency=s",
                                                       "--print-value-only").out.strip() == "v2", timeout=20)
                out.append("restarted member caught up: %s" % bool(got))
                with socket.create_connection(("127.0.0.1", survivors[0].peer_port), timeout=5) as s:
                    s.sendall(H2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                    s.settimeout(3)
                    try:
                        data = s.recv(100)
                    except (socket.timeout, ConnectionResetError):
                        data = b""
                    # a TLS server answers an h2c preface with a TLS alert or nothing, never SETTINGS
                    out.append("h2c to a peer port answered with HTTP/2: %s" % (data[3:4] == b"\x04"))
                return "\n".join(out)

        got = self.both(scenario)["cetcd"]
        self.assertIn("linearizable read through another member: v1", got)
        self.assertIn("https peer URLs listed: 3", got)
        self.assertIn("restarted member caught up: True", got)
        self.assertIn("answered with HTTP/2: False", got)

    def test_2_wrong_ca(self):
        certs = self.certs[:2] + [self.foreign]
        got = self.both(self.healthy_pair_scenario, certs, self.common())["cetcd"]
        self.assertIn("put through a good member: OK", got)
        self.assertIn("third member healthy: False", got)

    def test_3_allowed_cn(self):
        certs = self.certs[:2] + [self.intruder]
        got = self.both(self.healthy_pair_scenario, certs, self.common() + ["--peer-cert-allowed-cn", "member"])
        self.assertIn("third member healthy: False", got["cetcd"])

    def test_4_peer_auto_tls(self):
        def scenario(binary):
            with https_cluster(binary, [[], [], []], ["--peer-auto-tls"]) as c:
                c.start()
                out = [harness.etcdctl([c.members[0].endpoint], "put", "k", "v").out.strip(),
                       harness.etcdctl([c.members[1].endpoint], "get", "k", "--print-value-only").out.strip()]
                out.append("fixtures: %s" % sorted(os.listdir(os.path.join(c.members[0].data_dir, "fixtures",
                                                                           "peer"))))
                return "\n".join(out)

        got = self.both(scenario)["cetcd"]
        self.assertIn("fixtures: ['cert.pem', 'key.pem']", got)


if __name__ == "__main__":
    harness.run_tests()
