#!/usr/bin/python3
"""Watchers far behind, cetcd side by side with real etcd 3.4.

- A watcher started thousands of revisions back is caught up in batches of hundreds of
  events per response.
- Progress requests sent while such a watcher catches up: an answer never reports a
  revision below an event already received; on cetcd (as on etcd 3.5) it comes only once
  the watcher is synced, so no event after it has a revision at or below it (etcd 3.4.23
  answers at once with the store's revision).
- A watcher that lags until its history is compacted gets compact_revision and canceled
  after the events it was sent.
- Live revisions from concurrent writers arrive once each, in order, with one or many
  watches on a stream; revisions that arrive while a watch's responses wait unsent (the
  client reads only after the writes) share responses, also with many watches per stream.
- A JSON gateway (/v3/watch) client that does not read holds the server's memory bounded
  and gets every event once it reads.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from watch_stream import Stream, rss_anon_kib, write_backlog  # noqa: E402

BACKLOG_REVS = 4000  # revisions a watcher from an old revision catches up on


def catch_up(srv, prefix, start, n, progress_requests=0):
    """Watches prefix from start until n events arrived (bounded in time), sending
    progress requests right after the create; returns (events per response, event
    revisions, [(progress revision, events received before it)])."""
    import grpc
    ch = grpc.insecure_channel(srv.endpoint)
    st = Stream(ch, 60)
    sizes, revs, progress = [], [], []
    try:
        st.create(prefix, prefix[:-1] + bytes([prefix[-1] + 1]), start_revision=start)
        for _ in range(progress_requests):
            st.progress()
        for resp in st.each():
            if resp.events:
                sizes.append(len(resp.events))
                revs += [ev.kv.mod_revision for ev in resp.events]
            elif not resp.created:
                progress.append((resp.header.revision, len(revs)))
            if len(revs) >= n and (len(progress) >= 1 or not progress_requests):
                break
        return sizes, revs, progress
    finally:
        st.close()
        ch.close()


def compacted_while_lagging(srv):
    """A watcher whose client stops reading falls behind; its history is then compacted.
    Returns (event revisions received, (compact_revision, canceled) of the last response,
    the compacted revision)."""
    import grpc
    from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc
    ch = grpc.insecure_channel(srv.endpoint, options=[("grpc.http2.bdp_probe", 0)])
    other = grpc.insecure_channel(srv.endpoint)  # the stalled stream may hold ch's window
    st = Stream(ch, 90)
    try:
        st.create(b"cmp/", b"cmp0")
        first = next(st.each(), None)
        assert first is not None and first.created, (first, st.error)
        first = write_backlog(srv, b"cmp/", 2000, value=b"c" * 4000)
        kv = rpc_pb2_grpc.KVStub(other)
        head = kv.Range(rpc_pb2.RangeRequest(key=b"x"), timeout=10).header.revision
        kv.Compact(rpc_pb2.CompactionRequest(revision=head), timeout=10)
        revs, end = [], st.error
        for resp in st.each():
            revs += [ev.kv.mod_revision for ev in resp.events]
            if resp.canceled:
                end = (resp.compact_revision, resp.canceled)
                break
        return first, revs, end or st.error, head
    finally:
        st.close()
        ch.close()
        other.close()


def gateway_slow_consumer(srv, n=2000, value_bytes=8000):
    """A JSON gateway watch (/v3/watch over HTTP/1.1) whose client stops reading while n
    puts of value_bytes go to its prefix, then reads everything. Returns (event revisions,
    first revision, anonymous memory growth of the server in KiB while not read)."""
    import base64
    import http.client
    import json
    import socket
    conn = http.client.HTTPConnection("127.0.0.1", srv.client_port, timeout=60)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # keep the kernel's share small
    sock.settimeout(60)
    sock.connect(("127.0.0.1", srv.client_port))
    conn.sock = sock
    body = json.dumps({"create_request": {"key": base64.b64encode(b"gw/").decode(),
                                          "range_end": base64.b64encode(b"gw0").decode()}})
    conn.request("POST", "/v3/watch", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    try:
        assert b'"created":true' in resp.readline()
        before = rss_anon_kib(srv.pid)
        first = write_backlog(srv, b"gw/", n, value=b"g" * value_bytes)
        time.sleep(0.5)
        grown = rss_anon_kib(srv.pid) - before
        revs = []
        for _ in range(n + 10):
            line = resp.readline()
            if not line:
                break
            r = json.loads(line)["result"]
            revs += [int(ev["kv"]["mod_revision"]) for ev in r.get("events", [])]
            if len(revs) >= n:
                break
        return revs, first, grown
    finally:
        conn.close()


def live_concurrent(srv, n=4000, watchers=1, stalled=False):
    """`watchers` watches on one stream while 4 clients write n revisions under their
    prefix; the client reads as fast as it can from the start, or (stalled) only once every
    write is acknowledged, so that the server has responses it cannot send while revisions
    arrive on any machine, fast or slow. Returns (first revision, {watch id: responses with
    events, event revisions, header revisions below the response's last event})."""
    import grpc
    import threading
    ch = grpc.insecure_channel(srv.endpoint, options=[("grpc.http2.bdp_probe", 0)])
    written = threading.Event()
    st = Stream(ch, 90)
    out = {}
    try:
        it = st.each()
        for _ in range(watchers):
            st.create(b"live/", b"live0")
            first = next(it, None)
            assert first is not None and first.created, (first, st.error)
            out[first.watch_id] = {"responses": 0, "revs": [], "bad_headers": 0}

        def read():
            if stalled:
                written.wait(120)
            done = 0
            for resp in it:
                o = out[resp.watch_id]
                if resp.events:
                    o["responses"] += 1
                    o["revs"] += [ev.kv.mod_revision for ev in resp.events]
                    if resp.header.revision < resp.events[-1].kv.mod_revision:
                        o["bad_headers"] += 1
                    if len(o["revs"]) >= n:
                        done += 1
                if done == watchers:
                    return
        reader = threading.Thread(target=read)
        reader.start()
        start = write_backlog(srv, b"live/", n, value=b"l" * (1000 if stalled else 100))
        written.set()
        reader.join(60)
        return start, out
    finally:
        st.close()
        ch.close()


class WatchBacklog(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ref = harness.Server(binary=harness.ETCD_BIN, label="etcd")
        cls.sut = harness.Server(label="sut")
        harness.start_servers(cls.ref, cls.sut)
        cls.backlog = {s.label: write_backlog(s, b"old/", BACKLOG_REVS) for s in (cls.ref, cls.sut)}

    @classmethod
    def tearDownClass(cls):
        cls.sut.close()
        cls.ref.close()

    def test_compacted_while_lagging(self):
        """A watcher that lags until its next revision is compacted gets the events it
        was sent, in order and without gaps, then compact_revision and canceled, as from
        etcd. (Own servers: the compaction would take the other tests' backlog.)"""
        ref = harness.Server(binary=harness.ETCD_BIN, label="etcd")
        sut = harness.Server(label="sut")
        self.addCleanup(sut.close)
        self.addCleanup(ref.close)
        harness.start_servers(ref, sut)
        for srv in (ref, sut):
            first, revs, end, head = compacted_while_lagging(srv)
            print("%s: %d events before the compaction notice %s" % (srv.label, len(revs), end))
            self.assertEqual(end, (head, True), srv.label)
            self.assertEqual(revs, list(range(first, first + len(revs))), srv.label)
            self.assertLess(len(revs), 2000, srv.label)


    def test_gateway_slow_consumer(self):
        """A JSON gateway watch whose HTTP client does not read is held back like a gRPC one:
        cetcd's memory does not grow with the ~16 MB of events it cannot send, and every
        event arrives, in order, once the client reads."""
        for srv in (self.ref, self.sut):
            revs, first, grown = gateway_slow_consumer(srv)
            print("%s: %d events, server anonymous memory +%d KiB while the client did not read"
                  % (srv.label, len(revs), grown))
            self.assertEqual(revs, list(range(first, first + 2000)), srv.label)
            if srv is self.sut:
                self.assertLess(grown, 10 * 1024, srv.label)


    def test_live_revisions_in_order(self):
        """Live revisions from 4 concurrent writers reach a watcher read as fast as the
        client can, every event once, in order, the header revision never below the
        events'; the same with 10 watches on one stream."""
        for srv in (self.ref, self.sut):
            for n, watchers in ((4000, 1), (2000, 10)):
                start, out = live_concurrent(srv, n=n, watchers=watchers)
                self.assertEqual(len(out), watchers, srv.label)
                print("%s: %d watches, responses per watch for %d revisions: %s"
                      % (srv.label, watchers, n, sorted(o["responses"] for o in out.values())))
                for wid, o in out.items():
                    self.assertEqual(o["revs"], list(range(start, start + n)), (srv.label, wid))
                    self.assertEqual(o["bad_headers"], 0, (srv.label, wid))

    def test_live_revisions_share_responses(self):
        """Revisions that arrive while a watch's earlier responses wait unsent share one
        response (cetcd holds them aside and frames them together when HTTP/2 asks for
        data; etcd 3.4 sends one per revision until the watcher is a victim): the client
        reads only after all 4000 puts are acknowledged, and gets every event once, in
        order, in well under one response per revision."""
        for srv in (self.ref, self.sut):
            start, out = live_concurrent(srv, stalled=True)
            o = out[0]
            print("%s: %d revisions in %d responses" % (srv.label, len(o["revs"]), o["responses"]))
            self.assertEqual(o["revs"], list(range(start, start + 4000)), srv.label)
            self.assertEqual(o["bad_headers"], 0, srv.label)
            if srv is self.sut:
                self.assertLess(o["responses"], 4000 * 0.5, srv.label)

    def test_live_revisions_share_responses_many_watches(self):
        """The same with 10 watches on one stream (each watch's revisions are held aside
        and framed as one response per watch): every watch gets every event once, in order,
        in well under one response per revision on cetcd."""
        for srv in (self.ref, self.sut):
            start, out = live_concurrent(srv, n=2000, watchers=10, stalled=True)
            self.assertEqual(len(out), 10, srv.label)
            print("%s: responses per watch for 2000 revisions: %s"
                  % (srv.label, sorted(o["responses"] for o in out.values())))
            for wid, o in out.items():
                self.assertEqual(o["revs"], list(range(start, start + 2000)), (srv.label, wid))
                self.assertEqual(o["bad_headers"], 0, (srv.label, wid))
                if srv is self.sut:
                    self.assertLess(o["responses"], 2000 * 0.5, (srv.label, wid))

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


if __name__ == "__main__":
    harness.run_tests()
