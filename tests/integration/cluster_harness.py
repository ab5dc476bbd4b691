"""Multi-member clusters for integration tests: the same cluster of cetcd or of real etcd.

A test builds `Cluster(binary, n)` for cetcd and `Cluster(harness.ETCD_BIN, n)` for etcd,
runs the same scenario against both, and compares the outcomes. Members are real processes
on free loopback ports, started and stopped by PID (harness.Server). Every wait is bounded.
"""

import hashlib
import json
import struct
import time

import harness

WAIT = 15.0  # seconds any single wait may take


def until(fn, timeout=WAIT, step=0.1):
    """Polls fn until it returns a truthy value; returns it, or None after timeout."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / step) + 2):
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            break
        time.sleep(step)
    return None


def member_id(peer_urls, token):
    """etcd's member id: sha1(sorted peer URLs joined + token), first 8 bytes big-endian."""
    if isinstance(peer_urls, str):
        peer_urls = [peer_urls]
    return struct.unpack(">Q", hashlib.sha1(("".join(sorted(peer_urls)) + token).encode()).digest()[:8])[0]


class Member(harness.Server):
    """One member of a multi-member cluster. `cluster` fills in --initial-cluster."""

    def __init__(self, cluster, name, binary=None):
        label = "%s-%s" % ("etcd" if cluster.is_etcd else "cetcd", name)
        super().__init__(binary=binary, name=name, label=label)
        self.cluster = cluster
        self.initial_cluster = None
        self.state = "new"
        self.more_args = []

    def argv(self):
        argv = super().argv()
        i = argv.index("--initial-cluster")
        argv[i + 1] = self.initial_cluster
        return argv + ["--initial-cluster-token", self.cluster.token,
                       "--initial-cluster-state", self.state,
                       "--heartbeat-interval", str(self.cluster.heartbeat_ms),
                       "--election-timeout", str(self.cluster.election_ms)] \
            + self.cluster.extra_args + self.more_args

    @property
    def id(self):
        return member_id(self.peer_url, self.cluster.token)


class Cluster:
    """n members of one binary (cetcd or etcd) bootstrapped together with --initial-cluster."""

    def __init__(self, binary=None, n=3, token="cluster-test", extra_args=(), heartbeat_ms=50,
                 election_ms=500):
        self.binary = binary or harness.server_bin()
        self.is_etcd = self.binary == harness.ETCD_BIN or harness.testing_real_etcd()
        self.token = token
        self.extra_args = list(extra_args)
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.members = [Member(self, "m%d" % i, self.binary) for i in range(n)]
        ic = self.initial_cluster_string(self.members)
        for m in self.members:
            m.initial_cluster = ic

    @property
    def label(self):
        return "etcd" if self.is_etcd else "cetcd"

    @staticmethod
    def initial_cluster_string(members):
        return ",".join("%s=%s" % (m.name, m.peer_url) for m in members)

    def start(self):
        harness.start_servers(*self.members)
        if not until(self.leader):
            raise AssertionError("%s cluster elected no leader\n%s"
                                 % (self.label, "\n".join(m.log_tail(15) for m in self.members)))
        return self

    def close(self):
        for m in self.members:
            m.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def running(self):
        return [m for m in self.members if m.running()]

    def endpoints(self, members=None):
        return [m.endpoint for m in (members or self.running())]

    def status(self, members=None):
        """`endpoint status -w json` of the running members: {endpoint: Status}, or None."""
        members = members or self.running()
        r = harness.etcdctl([m.endpoint for m in members], "endpoint", "status", "-w", "json",
                            timeout=10, extra=["--command-timeout=3s"])
        if not r.ok:
            return None
        return {s["Endpoint"]: s["Status"] for s in json.loads(r.out)}

    def leader(self, members=None):
        """The running member that every running member names as leader, or None."""
        members = members or self.running()
        st = self.status(members)
        if not st or len(st) != len(members):
            return None
        # a member without a leader omits the field (proto3 JSON drops zero values)
        leaders = {int(s.get("leader", 0)) for s in st.values()}
        if len(leaders) != 1 or 0 in leaders:
            return None
        lid = leaders.pop()
        for m in members:
            if m.id == lid:
                return m
        return None

    def followers(self, leader=None):
        leader = leader or until(self.leader)
        return [m for m in self.running() if m is not leader]

    def ctl(self, *args, members=None, **kw):
        """etcdctl against the given members (default: every running member)."""
        return harness.etcdctl(self.endpoints(members), *args, **kw)
