"""A 3-member cluster (Raft path): replication, linearizable reads through ReadIndex on
followers, leader failover (kill -9 by PID), catch-up after restart, member list with
etcd's ids, endpoint status with exactly one leader. Every wait is bounded."""

import hashlib
import json
import os
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TOKEN = "cluster-test"
WAIT = 15.0


class Member(harness.Server):
    """A member of a multi-member cluster: --initial-cluster names every member."""

    def __init__(self, name):
        super().__init__(binary=harness.cetcd_bin(), name=name, label="cetcd-" + name)
        self.initial_cluster = None

    def argv(self):
        argv = super().argv()
        i = argv.index("--initial-cluster")
        argv[i + 1] = self.initial_cluster
        return argv + ["--initial-cluster-token", TOKEN, "--heartbeat-interval", "50",
                       "--election-timeout", "500"]


def etcd_member_id(peer_url):
    """etcd's member id: sha1(sorted peer URLs + token), first 8 bytes big-endian."""
    return struct.unpack(">Q", hashlib.sha1((peer_url + TOKEN).encode()).digest()[:8])[0]


def until(fn, timeout=WAIT, step=0.1):
    """Polls fn until it returns a truthy value; returns it or None after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return None


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.members = [Member("m%d" % i) for i in range(3)]
        ic = ",".join("%s=%s" % (m.name, m.peer_url) for m in cls.members)
        for m in cls.members:
            m.initial_cluster = ic
        harness.start_servers(*cls.members)

    @classmethod
    def tearDownClass(cls):
        for m in getattr(cls, "members", []):
            m.close()

    def status(self, members):
        """endpoint status as JSON for the running members: {endpoint: status}."""
        r = harness.etcdctl([m.endpoint for m in members], "endpoint", "status", "-w", "json",
                            timeout=10)
        if not r.ok:
            return None
        return {s["Endpoint"]: s["Status"] for s in json.loads(r.out)}

    def leader(self, members):
        """The running member every running member names as leader, or None."""
        st = self.status(members)
        if not st or len(st) != len(members):
            return None
        # a member without a leader omits the field (proto3 JSON drops zero values)
        leaders = {s.get("leader", 0) for s in st.values()}
        if len(leaders) != 1 or 0 in leaders:
            return None
        lid = leaders.pop()
        for m in members:
            if etcd_member_id(m.peer_url) == lid:
                return m
        return None

    def test_1_replication_and_linearizable_reads(self):
        a, b, c = self.members
        r = a.ctl("put", "k1", "v1")
        self.assertTrue(r.ok, r)
        for m in (b, c):
            r = m.ctl("get", "k1")  # linearizable: ReadIndex on a follower
            self.assertTrue(r.ok, r)
            self.assertEqual(r.out.split(), ["k1", "v1"])

    def test_2_member_list_and_status(self):
        r = self.members[0].ctl("member", "list", "-w", "json")
        self.assertTrue(r.ok, r)
        got = {m["ID"]: m["name"] for m in json.loads(r.out)["members"]}
        want = {etcd_member_id(m.peer_url): m.name for m in self.members}
        self.assertEqual(got, want)
        self.assertIsNotNone(until(lambda: self.leader(self.members)), "no single leader")
        st = self.status(self.members)
        own = [ep for ep, s in st.items() if s.get("leader") == s["header"]["member_id"]]
        self.assertEqual(len(own), 1, st)

    def test_3_failover_and_catch_up(self):
        old = until(lambda: self.leader(self.members))
        self.assertIsNotNone(old, "no leader")
        old.kill9()
        rest = [m for m in self.members if m is not old]
        new = until(lambda: self.leader(rest))
        self.assertIsNotNone(new, "no new leader after killing the old one")
        self.assertIsNot(new, old)
        for i in range(5):
            r = until(lambda: (lambda x: x if x.ok else None)(rest[i % 2].ctl("put", "f%d" % i, "x")))
            self.assertIsNotNone(r, "write %d failed after failover" % i)
        r = rest[1].ctl("get", "f4")
        self.assertEqual(r.out.split(), ["f4", "x"], r)
        old.start()

        def caught_up():
            r = old.ctl("get", "f", "--prefix", "--consistency=s")
            return r.ok and r.out.split() == ["f0", "x", "f1", "x", "f2", "x", "f3", "x", "f4", "x"]
        self.assertTrue(until(caught_up), old.log_tail())
        r = old.ctl("get", "k1")
        self.assertEqual(r.out.split(), ["k1", "v1"], r)
        self.assertIsNotNone(until(lambda: self.leader(self.members)), "no leader after restart")


if __name__ == "__main__":
    harness.run_tests()
