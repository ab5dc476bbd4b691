#!/usr/bin/python3
"""Watch delivery to a slow consumer under load, cetcd side by side with real etcd 3.4.

A slow consumer (5 ms between receives) watches a prefix while ~800 writes/s of every kind
(puts, txns, deletes, leased puts, lease revocations) go to it for 15 s: every event arrives,
in revision order, each revision whole in one response, and the watcher is done within a
bound after the load stops, cetcd no later than etcd (give or take 10 s of timing noise);
once with the client's default flow control (its window grows and absorbs most of the
backlog) and once with a window that does not grow (no BDP probing: the server holds the
backlog). Progress requests sent meanwhile are never answered with a revision below an
event already received (cetcd; etcd 3.4.23's answer can race past events on another
channel, which is reported).
"""

import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from watch_stream import Stream  # noqa: E402

LOAD_SECONDS = 15.0
WRITES_PER_S = 800
WRITERS = 4
DRAIN_BOUND_S = 40.0  # the watcher must have everything this long after the load stops
DRAIN_SLACK_S = 10.0  # cetcd's drain may exceed etcd's by this much (timing noise)
CONSUMER_SLEEP_S = 0.005
PROGRESS_EVERY_S = 0.5
VALUE_BYTES = int(os.environ.get("LAG_VALUE_BYTES", "1000"))


class Load:
    """WRITERS threads writing to a prefix at WRITES_PER_S in all, recording the events each
    write must produce: {revision: [(type, key)]} (type 0 = PUT, 1 = DELETE)."""

    def __init__(self, channel, prefix, seconds):
        from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc
        self.pb, self.prefix, self.seconds = rpc_pb2, prefix, seconds
        self.kv, self.lease = rpc_pb2_grpc.KVStub(channel), rpc_pb2_grpc.LeaseStub(channel)
        self.expected, self.writes, self.errors = {}, 0, []
        self.lock = threading.Lock()

    def record(self, rev, evs):
        with self.lock:
            assert rev not in self.expected, "revision %d reported twice" % rev
            self.expected[rev] = evs
            self.writes += 1

    def writer(self, n, t0):
        pb, p, rng = self.pb, self.prefix, random.Random(n)
        period = WRITERS / WRITES_PER_S
        leases = []
        i = 0
        value = b"v" * VALUE_BYTES
        while time.monotonic() - t0 < self.seconds:
            due = t0 + i * period
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            op = i % 6
            i += 1
            if op in (0, 3):
                k = p + b"k%03d" % rng.randrange(300)
                r = self.kv.Put(pb.PutRequest(key=k, value=value), timeout=10)
                self.record(r.header.revision, [(0, k)])
            elif op == 1:
                ks = [p + b"t%d-%03d" % (j, rng.randrange(100)) for j in range(3)]
                ops = [pb.RequestOp(request_put=pb.PutRequest(key=k, value=value)) for k in ks]
                r = self.kv.Txn(pb.TxnRequest(success=ops), timeout=10)
                self.record(r.header.revision, [(0, k) for k in ks])
            elif op == 2:
                k = p + b"k%03d" % rng.randrange(300)
                r = self.kv.DeleteRange(pb.DeleteRangeRequest(key=k), timeout=10)
                if r.deleted:
                    self.record(r.header.revision, [(1, k)])
            elif op == 4:
                lid = self.lease.LeaseGrant(pb.LeaseGrantRequest(TTL=600), timeout=10).ID
                k = p + b"l/%x" % lid
                r = self.kv.Put(pb.PutRequest(key=k, value=value, lease=lid), timeout=10)
                self.record(r.header.revision, [(0, k)])
                leases.append((lid, k))
            elif op == 5 and len(leases) > 1:
                lid, k = leases.pop(0)
                r = self.lease.LeaseRevoke(pb.LeaseRevokeRequest(ID=lid), timeout=10)
                self.record(r.header.revision, [(1, k)])

    def run(self):
        t0 = time.monotonic()
        ts = [threading.Thread(target=self.guarded, args=(n, t0)) for n in range(WRITERS)]
        for t in ts:
            t.start()
        return ts

    def guarded(self, n, t0):
        try:
            self.writer(n, t0)
        except Exception as e:  # reported by the test
            self.errors.append(repr(e))


def slow_consumer(srv, prefix=b"lag/", options=()):
    """Runs the slow-consumer scenario on srv; returns a dict of what was observed."""
    import grpc
    from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc
    ch = grpc.insecure_channel(srv.endpoint, options=list(options))
    kv = rpc_pb2_grpc.KVStub(ch)
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    st = Stream(ch, LOAD_SECONDS + DRAIN_BOUND_S + 60)
    out = {"responses": 0, "max_events": 0, "progress": [], "bad_progress": [], "split_revs": []}
    got = []  # (rev, type, key)
    try:
        st.create(prefix, end)
        first = next(st.each(), None)
        assert first is not None and first.created, (first, st.error)
        load = Load(ch, prefix, LOAD_SECONDS)
        t_start = time.monotonic()
        writers = load.run()
        load_done = threading.Event()

        def progress_ticker():
            for _ in range(int((LOAD_SECONDS + DRAIN_BOUND_S + 10) / PROGRESS_EVERY_S)):
                if load_done.wait(PROGRESS_EVERY_S):
                    return
                st.progress()
        threading.Thread(target=progress_ticker, daemon=True).start()

        seen_revs = set()
        last_rev, t_load_end, done_at = 0, None, None
        deadline = t_start + LOAD_SECONDS + DRAIN_BOUND_S + 30
        for resp in st.each():
            time.sleep(CONSUMER_SLEEP_S)
            if not resp.events:
                if resp.watch_id == -1 or not (resp.created or resp.canceled):
                    out["progress"].append(resp.header.revision)
                    if resp.header.revision < last_rev:
                        out["bad_progress"].append((resp.header.revision, last_rev))
                if resp.canceled:
                    out["canceled"] = (resp.compact_revision, resp.cancel_reason)
                    break
            else:
                out["responses"] += 1
                out["max_events"] = max(out["max_events"], len(resp.events))
                revs = []
                for ev in resp.events:
                    r = ev.kv.mod_revision
                    got.append((r, ev.type, ev.kv.key))
                    if not revs or revs[-1] != r:
                        revs.append(r)
                for r in revs:
                    if r in seen_revs:
                        out["split_revs"].append(r)
                    seen_revs.add(r)
                last_rev = max(last_rev, revs[-1])
            if t_load_end is None and not any(t.is_alive() for t in writers):
                t_load_end = time.monotonic()
                expected_last = max(load.expected) if load.expected else 0
            if t_load_end is not None and last_rev >= expected_last:
                done_at = time.monotonic()
                break
            if time.monotonic() > deadline:
                break
        load_done.set()
        for t in writers:
            t.join(30)
        if t_load_end is None:
            t_load_end = time.monotonic()
        out["load_errors"] = load.errors
        out["writes"] = load.writes
        out["expected"] = sorted((r, t, k) for r, evs in load.expected.items() for t, k in evs)
        out["got"] = got
        out["drain_s"] = None if done_at is None else max(0.0, done_at - t_load_end)
        out["elapsed_s"] = time.monotonic() - t_start
        # after catching up, a progress request reports the store's revision
        head = kv.Range(rpc_pb2.RangeRequest(key=b"x"), timeout=10).header.revision
        st.progress()
        out["final_progress"] = None
        for resp in st.each():
            if not resp.events and not resp.created:
                out["final_progress"] = (resp.header.revision, head)
                break
        out["stream_error"] = st.error
        return out
    finally:
        st.close()
        ch.close()


class WatchLag(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ref = harness.Server(binary=harness.ETCD_BIN, label="etcd")
        cls.sut = harness.Server(label="sut")
        harness.start_servers(cls.ref, cls.sut)

    @classmethod
    def tearDownClass(cls):
        cls.sut.close()
        cls.ref.close()

    def check_slow_consumer(self, srv, options=()):
        o = slow_consumer(srv, options=options)
        name = srv.label
        drain = -1 if o["drain_s"] is None else o["drain_s"]
        print("%s%s: %d writes, %d events, %d responses, max %d events/response, drained %.1fs after "
              "the load, progress answers %d" % (name, " (window not grown)" if options else "", o["writes"],
                                                 len(o["got"]), o["responses"], o["max_events"], drain,
                                                 len(o["progress"])))
        self.assertEqual(o["load_errors"], [], name)
        self.assertGreater(o["writes"], LOAD_SECONDS * WRITES_PER_S * 0.6, "%s: too few writes" % name)
        self.assertNotIn("canceled", o, name)
        got = o["got"]
        self.assertEqual([g[0] for g in got], sorted(g[0] for g in got), "%s: events out of order" % name)
        self.assertEqual(o["split_revs"], [], "%s: revisions split across responses" % name)
        self.assertEqual(len(got), len(o["expected"]), "%s: events lost or repeated" % name)
        self.assertEqual(sorted(got), o["expected"], "%s: events differ from the writes" % name)
        self.assertIsNotNone(o["drain_s"], "%s: not done (stream: %s)" % (name, o["stream_error"]))
        self.assertLess(o["drain_s"], DRAIN_BOUND_S, name)
        if srv is self.sut:  # etcd 3.4.23 may: its answer races the events on another channel
            self.assertEqual(o["bad_progress"], [], "%s: progress below an event already received" % name)
        else:
            print("etcd: progress answers below an event already received: %s" % o["bad_progress"])
        self.assertIsNotNone(o["final_progress"], "%s: no answer to a progress request once caught up" % name)
        self.assertGreaterEqual(o["final_progress"][0], o["final_progress"][1], name)
        return o

    def compare(self, options=()):
        ref = self.check_slow_consumer(self.ref, options)
        sut = self.check_slow_consumer(self.sut, options)
        # the consumer lags (etcd batches), cetcd batches too and is done as soon
        self.assertGreater(ref["max_events"], 100)
        self.assertGreater(len(sut["got"]), 2 * sut["responses"])
        self.assertLess(sut["drain_s"], ref["drain_s"] + DRAIN_SLACK_S)

    def test_slow_consumer_under_mixed_load(self):
        """A slow consumer with the client's default flow control (its window grows)."""
        self.compare()

    def test_slow_consumer_small_window(self):
        """The same with a client whose flow-control window does not grow (no BDP probing):
        the server holds the backlog, so lagging watchers pause and catch up many times."""
        self.compare([("grpc.http2.bdp_probe", 0)])


if __name__ == "__main__":
    harness.run_tests()
