#!/usr/bin/python3
"""Simple tokens name the log index of their Authenticate entry ("<random>.<index>"): a member
that has not applied that index yet waits until it has (bounded by the request's deadline)
instead of refusing the token, as etcd's isValidSimpleToken does.

The same scenarios run on a 3-member cetcd cluster and a 3-member etcd cluster, whose peer
links go through TCP proxies (tests/chaos/proxy.py), and the outcomes are compared:
- rounds: Authenticate through one member and use the token at once on another, 30 times
  (members in turn); no request may be refused with `invalid auth token`;
- lag: a follower is cut off from its peers, a token is made through the leader, and a
  serializable Range with it (gRPC and the JSON gateway) sent to the follower must still be
  waiting after 1 s, then succeed once the follower is reconnected and catches up; the same
  Range with a 0.5 s deadline ends at its deadline (DEADLINE_EXCEEDED, or etcd's own
  UNAUTHENTICATED from the server side when that reaches the client first: deadline_outcome).
"""

import json
import os
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chaos"))
import cluster_harness  # noqa: E402
import harness  # noqa: E402
import proxy  # noqa: E402
import etcd3.etcdrpc as rpc  # noqa: E402

SETUP = [
    ("user", "add", "root:rootpw"),
    ("role", "add", "root"),
    ("user", "grant-role", "root", "root"),
    ("put", "foo", "bar"),
    ("auth", "enable"),
]
ROUNDS = 30
LAG_S = 1.0
SHORT_DEADLINE_S = 0.5  # the deadline of the call that must end at it


class ProxiedMember(cluster_harness.Member):
    """A member that advertises its proxy's port as its peer URL."""

    def __init__(self, cluster, name, binary):
        super().__init__(cluster, name, binary)
        self.proxy_port = harness.free_port()

    @property
    def proxy_url(self):
        return "http://127.0.0.1:%d" % self.proxy_port

    @property
    def id(self):
        return cluster_harness.member_id(self.proxy_url, self.cluster.token)

    def argv(self):
        argv = super().argv()
        argv[argv.index("--initial-advertise-peer-urls") + 1] = self.proxy_url
        return argv


def proxied_cluster(tc, binary):
    """A started 3-member cluster of binary with proxied peer links: (cluster, net)."""
    # an election timeout well above the lag, so the cut-off follower does not campaign
    c = cluster_harness.Cluster(binary, 0, token="auth-index", heartbeat_ms=100, election_ms=3000)
    c.members = [ProxiedMember(c, "m%d" % i, binary) for i in range(3)]
    ic = ",".join("%s=%s" % (m.name, m.proxy_url) for m in c.members)
    for m in c.members:
        m.initial_cluster = ic
    net = proxy.Net()
    net.names = [m.name for m in c.members]
    pids = lambda: {m.name: (m.pid if m.running() else None) for m in c.members}  # noqa: E731
    proxies = [proxy.Proxy(net, m.name, m.proxy_port, m.peer_port, pids) for m in c.members]
    tc.addCleanup(c.close)
    for p in proxies:
        tc.addCleanup(p.close)
    harness.start_servers(*c.members)
    if not cluster_harness.until(c.leader, timeout=30):
        raise AssertionError("%s cluster elected no leader" % c.label)
    return c, net


def authenticate(ch):
    return rpc.AuthStub(ch).Authenticate(rpc.AuthenticateRequest(name="root", password="rootpw"), timeout=10).token


def get_foo(ch, token, timeout=10):
    """A serializable Range of foo with the token: the value, or the gRPC error code's name."""
    try:
        r = rpc.KVStub(ch).Range(rpc.RangeRequest(key=b"foo", serializable=True), timeout=timeout,
                                 metadata=[("token", token)])
        return r.kvs[0].value.decode() if r.kvs else "no value"
    except grpc.RpcError as e:
        return "%s %s" % (e.code().name, e.details())


def deadline_outcome(res, took, deadline):
    """How a call whose token's index never arrives ended. It must end at its deadline, not
    be refused at once. At the deadline two answers race in etcd itself: the client's own
    timer (DEADLINE_EXCEEDED) and the server's isValidSimpleToken, which gives up when the
    propagated deadline ends its context (UNAUTHENTICATED "invalid auth token"); either
    counts. Anything else, or an answer well before the deadline, is given as it was."""
    at_deadline = took >= deadline * 0.9
    if at_deadline and (res.startswith("DEADLINE_EXCEEDED") or
                        (res.startswith("UNAUTHENTICATED") and "invalid auth token" in res)):
        return "ended at its deadline"
    return "%s after %.2fs" % (res, took)


def gw_get_foo(m, token):
    """The same Range through the JSON gateway: the value, or the HTTP status and message."""
    req = urllib.request.Request("http://%s/v3/kv/range" % m.endpoint, method="POST",
                                 data=json.dumps({"key": "Zm9v", "serializable": True}).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": token})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            kvs = json.loads(r.read()).get("kvs", [])
            return kvs[0]["value"] if kvs else "no value"
    except urllib.error.HTTPError as e:
        return "HTTP %d %s" % (e.code, e.read().decode("utf-8", "replace"))
    except OSError as e:
        return "error %s" % e


class Background:
    """Runs fn in a thread, recording its result and how long it took."""

    def __init__(self, fn):
        self.result, self.took = None, None
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        self.result = fn()
        self.took = time.monotonic() - self.t0

    def done(self):
        return not self.thread.is_alive()


def scenario(tc, binary):
    """Runs both scenarios on a fresh cluster of binary; returns the outcomes."""
    c, net = proxied_cluster(tc, binary)
    for st in SETUP:
        r = c.members[0].ctl(*st)
        tc.assertTrue(r.ok, (c.label, st, r))
    chans = {m.name: grpc.insecure_channel(m.endpoint) for m in c.members}
    for ch in chans.values():
        tc.addCleanup(ch.close)
    out = {}
    # rounds: a token used at once on another member
    refused = []
    for i in range(ROUNDS):
        a, b = c.members[i % 3], c.members[(i + 1) % 3]
        tok = authenticate(chans[a.name])
        res = get_foo(chans[b.name], tok)
        if res != "bar":
            refused.append((a.name, b.name, tok, res))
    out["rounds"] = "%d of %d answered" % (ROUNDS - len(refused), ROUNDS)
    tc.assertEqual(refused, [], c.label)
    # lag: the follower has not applied the token's Authenticate entry
    leader = cluster_harness.until(c.leader, timeout=10)
    tc.assertIsNotNone(leader, c.label)
    f = [m for m in c.members if m is not leader][0]
    net.set(blocked={(a, b) for a in net.names for b in net.names if a != b and f.name in (a, b)})
    tok = authenticate(chans[leader.name])
    waiting = [Background(lambda: get_foo(chans[f.name], tok)), Background(lambda: gw_get_foo(f, tok))]
    t0 = time.monotonic()
    short = get_foo(chans[f.name], tok, timeout=SHORT_DEADLINE_S)
    short_took = time.monotonic() - t0
    time.sleep(LAG_S)
    out["waiting after %.1fs" % LAG_S] = [not w.done() for w in waiting]
    out["short deadline"] = deadline_outcome(short, short_took, SHORT_DEADLINE_S)
    net.heal()
    for w in waiting:
        w.thread.join(15)
    out["after reconnecting"] = [w.result for w in waiting]
    out["waited at least %.1fs" % LAG_S] = [w.took is not None and w.took >= LAG_S for w in waiting]
    out["fresh token on the caught-up follower"] = get_foo(chans[f.name], authenticate(chans[leader.name]))
    return out


class AuthTokenIndex(unittest.TestCase):
    def test_token_waits_for_its_index(self):
        outcomes = {}
        for label, binary in (("etcd", harness.ETCD_BIN), ("cetcd", harness.server_bin())):
            outcomes[label] = scenario(self, binary)
            if os.environ.get("CETCD_TEST_VERBOSE"):
                print("\n%s: %s" % (label, json.dumps(outcomes[label], indent=1)))
        self.assertEqual(outcomes["etcd"], outcomes["cetcd"])
        want = {"rounds": "%d of %d answered" % (ROUNDS, ROUNDS),
                "waiting after %.1fs" % LAG_S: [True, True],
                "short deadline": "ended at its deadline",
                "after reconnecting": ["bar", "YmFy"],
                "waited at least %.1fs" % LAG_S: [True, True],
                "fresh token on the caught-up follower": "bar"}
        self.assertEqual(outcomes["cetcd"], want)


if __name__ == "__main__":
    harness.run_tests()
