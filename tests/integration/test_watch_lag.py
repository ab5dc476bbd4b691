#!/usr/bin/python3
"""Watch delivery to consumers that lag, cetcd side by side with real etcd 3.4.

- A slow consumer (5 ms between receives) watches a prefix while ~800 writes/s of every kind
  (puts, txns, deletes, leased puts, lease revocations) go to it for 15 s: every event
  arrives, in revision order, each revision whole in one response, and the watcher is done
  within a bound after the load stops; once with the client's default flow control (its
  window grows and absorbs most of the backlog) and once with a window that does not grow
  (no BDP probing: the server holds the backlog). Progress requests sent meanwhile are never answered
  with a revision below an event already received (cetcd).
- A watcher started thousands of revisions back is caught up in batches of hundreds of
  events per response.
- Progress requests sent while such a watcher catches up: an answer never reports a
  revision below an event already received; on cetcd (as on etcd 3.5) it comes only once
  the watcher is synced, so no event after it has a revision at or below it (etcd 3.4.23
  answers at once with the store's revision).
"""

import os
import queue
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

LOAD_SECONDS = 15.0
WRITES_PER_S = 800
WRITERS = 4
DRAIN_BOUND_S = 30.0  # the watcher must have everything this long after the load stops
BACKLOG_REVS = 4000  # revisions a watcher from an old revision catches up on
CONSUMER_SLEEP_S = 0.005
PROGRESS_EVERY_S = 0.5
VALUE_BYTES = int(os.environ.get("LAG_VALUE_BYTES", "1000"))


class Stream:
    """A raw Watch stream: requests encoded by hand (python3-etcd3's stubs predate progress
    requests), responses decoded by the generated WatchResponse."""

    def __init__(self, channel):
        from etcd3.etcdrpc import rpc_pb2
        self.q = queue.Queue()

        def gen():
            for _ in range(1000000):
                r = self.q.get()
                if r is None:
                    return
                yield r
        call = channel.stream_stream("/etcdserverpb.Watch/Watch", request_serializer=None,
                                     response_deserializer=rpc_pb2.WatchResponse.FromString)
        self.responses = call(gen())

    def create(self, key, range_end, start_revision=0):
        pf = harness.pb_field
        m = pf(1, key) + pf(2, range_end) + (pf(3, start_revision) if start_revision else b"")
        self.q.put(pf(1, m))

    def progress(self):
        self.q.put(harness.pb_field(3, b""))

    def close(self):
        self.q.put(None)
        self.responses.cancel()


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
    st = Stream(ch)
    out = {"responses": 0, "max_events": 0, "progress": [], "bad_progress": [], "split_revs": []}
    got = []  # (rev, type, key)
    try:
        st.create(prefix, end)
        first = next(st.responses)
        assert first.created, first
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
        for resp in st.responses:
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
        head = kv.Range(rpc_pb2.RangeRequest(key=b"x")).header.revision
        st.progress()
        out["final_progress"] = None
        for resp in st.responses:
            if not resp.events and not resp.created:
                out["final_progress"] = (resp.header.revision, head)
                break
        return out
    finally:
        st.close()
        ch.close()


def write_backlog(srv, prefix, n):
    """Writes n revisions (one put each, 4 threads) under prefix; returns the first one."""
    import grpc
    from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc
    ch = grpc.insecure_channel(srv.endpoint)
    kv = rpc_pb2_grpc.KVStub(ch)
    first = kv.Range(rpc_pb2.RangeRequest(key=b"x")).header.revision + 1
    errors = []

    def put(t):
        try:
            for i in range(n // 4):
                kv.Put(rpc_pb2.PutRequest(key=prefix + b"%d-%04d" % (t, i), value=b"o" * 200), timeout=10)
        except Exception as e:  # reported below
            errors.append(repr(e))
    ts = [threading.Thread(target=put, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    ch.close()
    assert not errors, errors
    return first


def catch_up(srv, prefix, start, n, progress_requests=0):
    """Watches prefix from start until n events arrived (bounded in time), sending
    progress requests right after the create; returns (events per response, event
    revisions, [(progress revision, events received before it)])."""
    import grpc
    ch = grpc.insecure_channel(srv.endpoint)
    st = Stream(ch)
    sizes, revs, progress = [], [], []
    try:
        st.create(prefix, prefix[:-1] + bytes([prefix[-1] + 1]), start_revision=start)
        for _ in range(progress_requests):
            st.progress()
        deadline = time.monotonic() + 60
        for resp in st.responses:
            if resp.events:
                sizes.append(len(resp.events))
                revs += [ev.kv.mod_revision for ev in resp.events]
            elif not resp.created:
                progress.append((resp.header.revision, len(revs)))
            if (len(revs) >= n and (len(progress) >= 1 or not progress_requests)) or time.monotonic() > deadline:
                break
        return sizes, revs, progress
    finally:
        st.close()
        ch.close()


class WatchLag(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ref = harness.Server(binary=harness.ETCD_BIN, label="etcd")
        cls.sut = harness.Server(label="sut")
        harness.start_servers(cls.ref, cls.sut)
        cls.backlog = {s.label: write_backlog(s, b"old/", BACKLOG_REVS) for s in (cls.ref, cls.sut)}

    def test_old_revision_batches(self):
        """A watcher from thousands of revisions back gets hundreds of events per response,
        every event once, in order."""
        for srv in (self.ref, self.sut):
            start = self.backlog[srv.label]
            sizes, revs, _ = catch_up(srv, b"old/", start, BACKLOG_REVS)
            print("%s: %d events in %d responses, max %d per response" % (srv.label, len(revs), len(sizes),
                                                                          max(sizes or [0])))
            self.assertEqual(revs, list(range(start, start + BACKLOG_REVS)), srv.label)
            self.assertGreaterEqual(max(sizes), 500, srv.label)

    def test_progress_never_below_sent(self):
        """Progress answers while a watcher catches up never report a revision below an
        event already received; cetcd's come after the backlog (etcd 3.5's rule)."""
        for srv in (self.ref, self.sut):
            start = self.backlog[srv.label]
            sizes, revs, progress = catch_up(srv, b"old/", start, BACKLOG_REVS, progress_requests=5)
            print("%s: progress answers (revision, events received before it): %s" % (srv.label, progress))
            self.assertEqual(len(revs), BACKLOG_REVS, srv.label)
            self.assertTrue(progress, "%s: no progress answer" % srv.label)
            for rev, before in progress:
                if before:
                    self.assertGreaterEqual(rev, revs[before - 1], srv.label)
                if srv is self.sut:  # an answer covers every event at or below its revision
                    self.assertEqual(before, len([r for r in revs if r <= rev]), srv.label)

    @classmethod
    def tearDownClass(cls):
        cls.sut.close()
        cls.ref.close()

    def check_slow_consumer(self, srv, options=()):
        o = slow_consumer(srv, options=options)
        name = srv.label
        print("%s%s: %d writes, %d events, %d responses, max %d events/response, drained %.1fs after the "
              "load, progress answers %d" % (name, " (window not grown)" if options else "", o["writes"], len(o["got"]), o["responses"], o["max_events"],
                                             -1 if o["drain_s"] is None else o["drain_s"], len(o["progress"])))
        self.assertEqual(o["load_errors"], [], name)
        self.assertGreater(o["writes"], LOAD_SECONDS * WRITES_PER_S * 0.6, "%s: load too slow to mean much" % name)
        self.assertNotIn("canceled", o, name)
        got = o["got"]
        self.assertEqual([g[0] for g in got], sorted(g[0] for g in got), "%s: events out of order" % name)
        self.assertEqual(o["split_revs"], [], "%s: revisions split across responses" % name)
        self.assertEqual(len(got), len(o["expected"]), "%s: events lost or repeated" % name)
        self.assertEqual(sorted(got), o["expected"], "%s: events differ from the writes" % name)
        self.assertIsNotNone(o["drain_s"], name)
        self.assertLess(o["drain_s"], DRAIN_BOUND_S, name)
        if srv is self.sut:  # etcd 3.4.23 may: its answer races the events on another channel
            self.assertEqual(o["bad_progress"], [], "%s: progress below an event already received" % name)
        else:
            print("etcd: progress answers below an event already received: %s" % o["bad_progress"])
        self.assertIsNotNone(o["final_progress"], "%s: no answer to a progress request once caught up" % name)
        self.assertGreaterEqual(o["final_progress"][0], o["final_progress"][1], name)
        return o

    def test_slow_consumer_under_mixed_load(self):
        ref = self.check_slow_consumer(self.ref)
        sut = self.check_slow_consumer(self.sut)
        # lagging consumers get batches, as from etcd
        self.assertGreater(ref["max_events"], 100)
        self.assertGreater(sut["max_events"], 100)

    def test_slow_consumer_small_window(self):
        """The same with a client whose flow-control window does not grow (no BDP probing):
        the server holds the backlog, so lagging watchers pause and catch up many times."""
        opts = [("grpc.http2.bdp_probe", 0)]
        ref = self.check_slow_consumer(self.ref, opts)
        sut = self.check_slow_consumer(self.sut, opts)
        self.assertGreater(ref["max_events"], 100)
        self.assertGreater(sut["max_events"], 100)


if __name__ == "__main__":
    harness.run_tests()
