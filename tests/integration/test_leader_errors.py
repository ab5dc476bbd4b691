"""Clients see the truth about leadership, on 3-member clusters of cetcd and of real etcd.

- `endpoint status` on every member: all name the same leader (one of them, and exactly one
  member says it is that leader), raftAppliedIndex <= raftIndex, equal terms, no learners;
  the masked tables of both servers are equal.
- A minority partition (SIGSTOP the leader and one follower; the third member is asked):
  status reports no leader with etcd's "etcdserver: no leader" in its errors; requests with
  `hasleader: true` metadata (clientv3's WithRequireLeader) fail at once with UNAVAILABLE
  "etcdserver: no leader", and Watch and LeaseKeepAlive streams carrying it (clientv3's
  keep-alives always do) are ended the same way after 3 election timeouts; a plain Put
  fails after etcd's request timeout (5 s + 2 election timeouts) with UNKNOWN "context
  deadline exceeded" (raft never took it) and a linearizable Range with UNAVAILABLE
  "etcdserver: request timed out"; a serializable Range is served. A linearizable Range
  waiting when the partition heals fails with "etcdserver: leader changed". After SIGCONT
  writes work again.
- A Put to a leader whose followers were just stopped is taken by raft but never committed:
  UNAVAILABLE "etcdserver: request timed out" after the request timeout.
The outcomes (code, message, and whether the answer came at once or after the request
timeout) of both servers must be equal.
Every wait is bounded."""

import json
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from cluster_harness import Cluster, until  # noqa: E402

REQ_TIMEOUT_S = 5.0 + 2 * 0.5  # etcd's ReqTimeout with the harness' 500 ms election timeout
MD = (("hasleader", "true"),)


def rpc(fn, req, metadata=(), timeout=15):
    """One unary call: (code name, details, "at once" | "after the request timeout" | secs)."""
    import grpc
    t0 = time.monotonic()
    try:
        fn(req, metadata=metadata, timeout=timeout)
        code, details = "OK", ""
    except grpc.RpcError as e:
        code, details = e.code().name, e.details()
    took = time.monotonic() - t0
    if took < 1.0:
        when = "at once"
    elif abs(took - REQ_TIMEOUT_S) < 1.5:
        when = "after the request timeout"
    else:
        when = "after %.1fs" % took
    return (code, details, when)


def in_thread(fn):
    """Starts fn in a thread; returns a function that joins it (bounded) and gives its result."""
    box = []
    th = threading.Thread(target=lambda: box.append(fn()))
    th.start()

    def result():
        th.join(30)
        return box[0] if box else ("(no answer)",)
    return result


def status_scenario(binary):
    """endpoint status of every member after a few writes: (masked sorted table, JSON)."""
    with Cluster(binary, 3) as c:
        c.start()
        for i in range(5):
            r = c.ctl("put", "k%d" % i, "v")
            assert r.ok, r
        r = c.ctl("endpoint", "status")
        assert r.ok, r
        table = "\n".join(sorted(harness.mask(r.out).splitlines()))
        return table, c.status(), {m.id for m in c.members}


def partition_scenario(binary):
    """The minority-partition scenario; returns the list of outcomes."""
    import grpc
    from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc
    out = []
    with Cluster(binary, 3) as c:
        c.start()
        lead = until(c.leader)
        victim = c.followers(lead)[0]
        others = [m for m in c.members if m is not victim]
        ch = grpc.insecure_channel(victim.endpoint)
        kv = rpc_pb2_grpc.KVStub(ch)
        out.append(("put before", rpc(kv.Put, rpc_pb2.PutRequest(key=b"k", value=b"1"))))

        def watch_requests():
            yield rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=b"w"))
            time.sleep(40)  # keeps the stream open; the call's own timeout ends it first
        stream = rpc_pb2_grpc.WatchStub(ch).Watch(watch_requests(), metadata=MD, timeout=30)
        out.append(("watch created", next(stream).created))

        def no_requests():
            time.sleep(40)  # the stream stays open without a message
            yield rpc_pb2.LeaseKeepAliveRequest(ID=1)
        keepalive = rpc_pb2_grpc.LeaseStub(ch).LeaseKeepAlive(no_requests(), metadata=MD, timeout=30)
        stopped = []
        try:
            for m in others:
                os.kill(m.pid, signal.SIGSTOP)
                stopped.append(m)

            def no_leader():
                st = c.status([victim])
                return st and list(st.values())[0]
            st = until(lambda: (lambda s: s if s and not s.get("leader") else None)(no_leader()))
            assert st, "%s: the isolated member still names a leader" % c.label
            out.append(("status errors", st.get("errors")))
            out.append(("hasleader put", rpc(kv.Put, rpc_pb2.PutRequest(key=b"k", value=b"2"), MD)))
            out.append(("hasleader get", rpc(kv.Range, rpc_pb2.RangeRequest(key=b"k"), MD)))
            out.append(("hasleader serializable get",
                        rpc(kv.Range, rpc_pb2.RangeRequest(key=b"k", serializable=True), MD)))
            t0 = time.monotonic()
            try:
                for _ in range(10):
                    next(stream)
                ended = ("no end",)
            except grpc.RpcError as e:
                ended = (e.code().name, e.details(), "within 3 election timeouts + 1 s"
                         if time.monotonic() - t0 < 3 * 0.5 + 1.0 else "late")
            out.append(("hasleader watch stream", ended))
            try:
                for _ in range(10):
                    next(keepalive)
                ended = ("no end",)
            except grpc.RpcError as e:
                ended = (e.code().name, e.details())
            out.append(("hasleader lease keep-alive stream", ended))
            put = in_thread(lambda: rpc(kv.Put, rpc_pb2.PutRequest(key=b"k", value=b"3")))
            get = in_thread(lambda: rpc(kv.Range, rpc_pb2.RangeRequest(key=b"k")))
            out.append(("serializable get", rpc(kv.Range, rpc_pb2.RangeRequest(key=b"k", serializable=True))))
            out.append(("put", put()))
            out.append(("linearizable get", get()))
            waiting = in_thread(lambda: rpc(kv.Range, rpc_pb2.RangeRequest(key=b"k")))
            time.sleep(1.0)
        finally:
            for m in stopped:
                os.kill(m.pid, signal.SIGCONT)
        out.append(("linearizable get waiting while the partition heals", waiting()[:2]))
        assert until(c.leader), "%s: no leader after SIGCONT" % c.label
        ok = until(lambda: (lambda r: r if r[0] == "OK" else None)(
            rpc(kv.Put, rpc_pb2.PutRequest(key=b"k", value=b"4"), MD)), timeout=10)
        out.append(("hasleader put after healing", ok))
        ch.close()
    return out


def isolated_leader_scenario(binary):
    """A Put to a leader whose followers were just stopped: raft takes it but cannot commit
    it. Returns the outcomes."""
    import grpc
    from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc
    out = []
    with Cluster(binary, 3) as c:
        c.start()
        lead = until(c.leader)
        followers = c.followers(lead)
        ch = grpc.insecure_channel(lead.endpoint)
        kv = rpc_pb2_grpc.KVStub(ch)
        out.append(("put before", rpc(kv.Put, rpc_pb2.PutRequest(key=b"k", value=b"1"))))
        stopped = []
        try:
            for m in followers:
                os.kill(m.pid, signal.SIGSTOP)
                stopped.append(m)
            # sent at once: the leader steps down only after an election timeout (check-quorum)
            out.append(("put to the isolated leader", rpc(kv.Put, rpc_pb2.PutRequest(key=b"k", value=b"2"))))
        finally:
            for m in stopped:
                os.kill(m.pid, signal.SIGCONT)
        assert until(c.leader), "%s: no leader after SIGCONT" % c.label
        ch.close()
    return out


class LeaderErrorsTest(unittest.TestCase):
    def check_status(self, label, st, ids):
        self.assertEqual(len(st), 3, (label, st))
        leaders = {int(s.get("leader", 0)) for s in st.values()}
        self.assertEqual(len(leaders), 1, (label, st))
        lid = leaders.pop()
        self.assertIn(lid, ids, (label, st))
        self.assertEqual(sum(1 for s in st.values() if int(s["header"]["member_id"]) == lid), 1, (label, st))
        self.assertEqual(len({int(s["raftTerm"]) for s in st.values()}), 1, (label, st))
        for s in st.values():
            self.assertLessEqual(int(s["raftAppliedIndex"]), int(s["raftIndex"]), (label, s))
            self.assertGreaterEqual(int(s["raftAppliedIndex"]), 5, (label, s))
            self.assertFalse(s.get("isLearner", False), (label, s))
            self.assertNotIn("errors", s, (label, s))

    def test_endpoint_status_on_every_member(self):
        want, st_e, ids_e = status_scenario(harness.ETCD_BIN)
        got, st, ids = status_scenario(harness.server_bin())
        self.check_status("etcd", st_e, ids_e)
        self.check_status("cetcd", st, ids)
        harness.assert_same(self, want, got, "etcd", "cetcd")

    def test_minority_partition_errors(self):
        want = partition_scenario(harness.ETCD_BIN)
        got = partition_scenario(harness.server_bin())
        print(json.dumps(got, indent=1))
        self.assertEqual(want, got)
        outcome = dict(got)
        self.assertEqual(outcome["hasleader put"], ("UNAVAILABLE", "etcdserver: no leader", "at once"))
        self.assertEqual(outcome["hasleader watch stream"][:2], ("UNAVAILABLE", "etcdserver: no leader"))
        self.assertEqual(outcome["hasleader lease keep-alive stream"], ("UNAVAILABLE", "etcdserver: no leader"))
        self.assertEqual(outcome["put"], ("UNKNOWN", "context deadline exceeded", "after the request timeout"))
        self.assertEqual(outcome["linearizable get"],
                         ("UNAVAILABLE", "etcdserver: request timed out", "after the request timeout"))
        self.assertEqual(outcome["linearizable get waiting while the partition heals"],
                         ("UNAVAILABLE", "etcdserver: leader changed"))

    def test_isolated_leader_times_out(self):
        want = isolated_leader_scenario(harness.ETCD_BIN)
        got = isolated_leader_scenario(harness.server_bin())
        self.assertEqual(want, got)
        self.assertEqual(dict(got)["put to the isolated leader"],
                         ("UNAVAILABLE", "etcdserver: request timed out", "after the request timeout"))


if __name__ == "__main__":
    harness.run_tests()
