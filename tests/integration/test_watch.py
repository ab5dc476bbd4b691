#!/usr/bin/python3
"""Watch: etcdctl `watch` (plain, --prefix, --rev, --prev-kv, ranges, json, compacted,
interactive) side by side with real etcd 3.4 after masking; python3-etcd3 watches; the JSON
gateway's /v3/watch stream; and a slow raw-gRPC consumer that must get 20k events in order.
"""

import base64
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import mask  # noqa: E402


def ctl_argv(srv, *args):
    return [harness.ETCDCTL_BIN, "--endpoints=" + srv.endpoint, "--dial-timeout=3s"] + list(args)


def ctl_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
    env["ETCDCTL_API"] = "3"
    return env


class Reader:
    """Collects a subprocess's stdout lines on a thread."""

    def __init__(self, proc):
        self.proc, self.lines, self.cv = proc, [], threading.Condition()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        for line in iter(self.proc.stdout.readline, b""):
            with self.cv:
                self.lines.append(line.decode("utf-8", "replace"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)
            self.cv.notify_all()

    def wait_lines(self, n, timeout=10):
        end = time.monotonic() + timeout
        with self.cv:
            while len([x for x in self.lines if x is not None]) < n and None not in self.lines:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.cv.wait(left)
            return "".join(x for x in self.lines if x is not None)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for f in (proc.stdin, proc.stdout):
        if f:
            try:
                f.close()
            except OSError:
                pass


_default_excepthook = threading.excepthook


def _quiet_watch_thread(args):
    # python3-etcd3's watcher thread dies with "Channel closed!" once the client is closed.
    if (args.thread is not None and args.thread.name.startswith("etcd3_watch_")
            and isinstance(args.exc_value, ValueError)):
        return
    _default_excepthook(args)


threading.excepthook = _quiet_watch_thread


class Watch(unittest.TestCase):
    def setUp(self):
        self.ref = harness.Server(binary=harness.ETCD_BIN, label="etcd")
        self.sut = harness.Server(label="sut")
        self.addCleanup(self.sut.close)
        self.addCleanup(self.ref.close)
        harness.start_servers(self.ref, self.sut)

    # -- helpers ---------------------------------------------------------------------------
    def both(self, fn):
        """Runs fn(server) on etcd and the server under test; asserts equal masked text."""
        texts = [mask(fn(srv)) for srv in (self.ref, self.sut)]
        harness.assert_same(self, texts[0], texts[1])
        return texts[1]

    def watch_scenario(self, srv, before, watch_args, after, nlines, settle=0.4):
        for args in before:
            self.assertTrue(srv.ctl(*args).ok, args)
        p = subprocess.Popen(ctl_argv(srv, *watch_args), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=ctl_env())
        r = Reader(p)
        time.sleep(settle)
        for args in after:
            self.assertTrue(srv.ctl(*args).ok, args)
        out = r.wait_lines(nlines)
        stop(p)
        return "$ watch %s\n%s" % (" ".join(watch_args), out)

    # -- etcdctl ---------------------------------------------------------------------------
    def test_ctl_watch_key_live(self):
        self.both(lambda s: self.watch_scenario(
            s, [], ["watch", "foo"],
            [("put", "foo", "1"), ("put", "fop", "x"), ("put", "foo", "2"), ("del", "foo")], 9))

    def test_ctl_watch_prefix_prev_kv(self):
        self.both(lambda s: self.watch_scenario(
            s, [("put", "foo/a", "0")], ["watch", "--prefix", "--prev-kv", "foo/"],
            [("put", "foo/a", "1"), ("put", "foo/b", "2"), ("put", "fop", "x"), ("del", "--prefix", "foo/")],
            17))

    def test_ctl_watch_rev_range_json(self):
        before = [("put", "a", "1"), ("put", "b", "2"), ("put", "c", "3"), ("del", "b")]
        self.both(lambda s: self.watch_scenario(s, before, ["watch", "--rev=2", "a", "c"], [], 9))
        self.both(lambda s: self.watch_scenario(s, [], ["-w", "json", "watch", "--rev=1", "--prefix", ""], [], 1))

    def test_ctl_watch_compacted(self):
        def fn(s):
            for i in range(5):
                s.ctl("put", "k", str(i))
            s.ctl("compact", "4")
            return self.watch_scenario(s, [], ["watch", "--rev=2", "k"], [], 1, settle=0.2)
        self.both(fn)

    def test_ctl_watch_interactive(self):
        def fn(s):
            p = subprocess.Popen(ctl_argv(s, "watch", "-i"), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, stdin=subprocess.PIPE, env=ctl_env())
            r = Reader(p)
            p.stdin.write(b"watch foo\n")
            p.stdin.flush()
            time.sleep(0.4)
            s.ctl("put", "foo", "1")
            r.wait_lines(3)
            p.stdin.write(b"watch --prefix --rev=1 fo\n")
            p.stdin.flush()
            out = r.wait_lines(6)
            p.stdin.close()
            stop(p)
            return out
        self.both(fn)

    # -- JSON gateway ----------------------------------------------------------------------
    def test_gateway_watch(self):
        def fn(s):
            s.ctl("put", "foo", "bar")
            body = json.dumps({"create_request": {"key": base64.b64encode(b"foo").decode(),
                                                  "start_revision": 1}})
            p = subprocess.Popen(["curl", "-s", "-N", "-X", "POST", "-d", body, s.client_url + "/v3/watch"],
                                 stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
            r = Reader(p)
            r.wait_lines(2)
            s.ctl("del", "foo")
            out = r.wait_lines(3)
            stop(p)
            return out
        out = self.both(fn)
        self.assertIn('"created":true', out)
        self.assertIn('"type":"DELETE"', out)

    def test_gateway_disconnect_cancels(self):
        """20 gateway watches are counted by etcd_debugging_mvcc_watcher_total while their
        clients are connected; once the clients hang up the server cancels them all."""
        def fn(s):
            procs = []
            try:
                for _ in range(GATEWAY_WATCHES):
                    p = subprocess.Popen(["curl", "-s", "-N", "-X", "POST", "-d",
                                          '{"create_request":{"key":"YQ=="}}', s.client_url + "/v3/watch"],
                                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
                    procs.append(p)
                    Reader(p).wait_lines(1)
                open_count = wait_watchers(s, lambda n: n == GATEWAY_WATCHES)
            finally:
                for p in procs:
                    stop(p)
            closed_count = wait_watchers(s, lambda n: n == 0)
            self.assertTrue(s.ctl("put", "a", "1").ok)
            self.assertTrue(s.running())
            return "watchers open: %d, after disconnect: %d" % (open_count, closed_count)
        self.assertEqual(self.both(fn), "watchers open: %d, after disconnect: 0" % GATEWAY_WATCHES)


GATEWAY_WATCHES = 20


def watcher_total(s):
    """The server's etcd_debugging_mvcc_watcher_total gauge from /metrics."""
    with urllib.request.urlopen(s.client_url + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("etcd_debugging_mvcc_watcher_total "):
                return int(float(line.split()[1]))
    raise AssertionError("%s: no etcd_debugging_mvcc_watcher_total in /metrics" % s.label)


def wait_watchers(s, ok, timeout=10):
    """Polls the watcher gauge (at most timeout seconds) until ok(n); returns the last n."""
    deadline = time.monotonic() + timeout
    n = watcher_total(s)
    while not ok(n) and time.monotonic() < deadline:
        time.sleep(0.1)
        n = watcher_total(s)
    return n


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _fields(buf):
    """{field: [values]} of one message level."""
    d = {}
    for f, _, v in harness.pb_decode(buf):
        d.setdefault(f, []).append(v)
    return d


class RawStream:
    """A raw gRPC Watch stream: requests encoded by hand (python3-etcd3's generated stubs
    predate watch_id and fragment), responses decoded with harness.pb_decode."""

    def __init__(self, srv):
        import queue
        import grpc
        from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc
        self.pb, self.q, self.out = rpc_pb2, queue.Queue(), queue.Queue()
        self.ch = grpc.insecure_channel(srv.endpoint)
        self.kv = rpc_pb2_grpc.KVStub(self.ch)

        def gen():
            while True:
                r = self.q.get()
                if r is None:
                    return
                yield r
        self.stream = self.ch.stream_stream("/etcdserverpb.Watch/Watch")(gen())

        def reader():
            try:
                for resp in self.stream:
                    self.out.put(resp)
            except Exception:  # cancelled at the end
                pass
        threading.Thread(target=reader, daemon=True).start()

    def create(self, key, range_end=b"", start_revision=0, filters=(), prev_kv=False, watch_id=0,
               fragment=False, progress_notify=False):
        pf = harness.pb_field
        m = pf(1, key) + (pf(2, range_end) if range_end else b"")
        m += pf(3, start_revision) if start_revision else b""
        m += pf(4, 1) if progress_notify else b""
        m += b"".join(pf(5, f) for f in filters)
        m += (pf(6, 1) if prev_kv else b"") + (pf(7, watch_id) if watch_id else b"")
        m += pf(8, 1) if fragment else b""
        self.q.put(pf(1, m))

    def cancel(self, watch_id):
        self.q.put(harness.pb_field(2, harness.pb_field(1, watch_id)))

    def progress(self):
        self.q.put(harness.pb_field(3, b""))

    def recv(self, n, timeout=5):
        """Up to n responses, rendered without run-specific ids."""
        import queue
        got = []
        end = time.monotonic() + timeout
        while len(got) < n:
            try:
                r = _fields(self.out.get(timeout=max(0.01, end - time.monotonic())))
            except queue.Empty:
                break
            hdr = _fields(r.get(1, [b""])[0])
            evs = []
            for e in r.get(11, []):
                e = _fields(e)
                kv = _fields(e.get(2, [b""])[0])
                prev = _fields(e[3][0]) if 3 in e else {}
                evs.append((e.get(1, [0])[0], kv.get(1, [b""])[0][:20], kv.get(3, [0])[0],
                            len(kv.get(5, [b""])[0]), prev.get(3, [0])[0]))
            got.append("id=%d created=%s canceled=%s compact=%d reason=%r fragment=%s rev=%d events=%r" % (
                _signed(r.get(2, [0])[0]), r.get(3, [0])[0], r.get(4, [0])[0], r.get(5, [0])[0],
                r.get(6, [b""])[0], r.get(7, [0])[0], hdr.get(3, [0])[0], evs))
        return got

    def close(self):
        self.q.put(None)
        self.stream.cancel()
        self.ch.close()


def by_rev_id(line):
    """Sort key for event responses: watchers of one revision may be served in any order
    (etcd: Go map order); the fragments of one watch keep theirs (stable sort)."""
    f = dict(x.split("=", 1) for x in line.split()[:7] if "=" in x)
    return int(f["rev"]), int(f["id"])


class WatchProtocol(unittest.TestCase):
    """WatchRequest/WatchResponse details compared with real etcd over raw gRPC."""

    def setUp(self):
        args = ["--max-request-bytes", "102400", "--experimental-watch-progress-notify-interval", "300ms"]
        self.ref = harness.Server(binary=harness.ETCD_BIN, label="etcd", extra_args=args)
        self.sut = harness.Server(label="sut", extra_args=args)
        self.addCleanup(self.sut.close)
        self.addCleanup(self.ref.close)
        harness.start_servers(self.ref, self.sut)

    def scenario(self, srv):
        st = RawStream(srv)
        pb = st.pb
        log = []
        try:
            st.create(key=b"a", watch_id=5)
            st.create(key=b"b", watch_id=5)                 # duplicate id
            st.create(key=b"b")                             # server-chosen id
            st.create(key=b"b")
            st.create(key=b"b", range_end=b"a")             # empty range
            st.create(key=b"", range_end=b"\0", filters=[0])  # NOPUT
            st.progress()
            log += st.recv(7)
            st.kv.Put(pb.PutRequest(key=b"a", value=b"1"))
            st.kv.DeleteRange(pb.DeleteRangeRequest(key=b"a"))
            log += sorted(st.recv(3), key=by_rev_id)
            st.cancel(5)
            st.cancel(99)  # unknown: no answer
            st.progress()
            log += st.recv(2)
            # fragments: one revision whose events (with prev_kv) exceed the size limit
            for i in range(12):
                st.kv.Put(pb.PutRequest(key=b"f/%02d" % i, value=b"x" * 90000))
            st.create(key=b"f/", range_end=b"f0", prev_kv=True, fragment=True, watch_id=40)
            st.create(key=b"f/", range_end=b"f0", prev_kv=True, watch_id=41)
            log += st.recv(2)
            st.kv.DeleteRange(pb.DeleteRangeRequest(key=b"f/", range_end=b"f0"))
            log += sorted(st.recv(4), key=by_rev_id)
            # catch-up from an old revision, then compacted
            st.create(key=b"f/00", start_revision=2, watch_id=50)
            log += st.recv(2)
            st.kv.Compact(pb.CompactionRequest(revision=10))
            st.create(key=b"f/00", start_revision=3, watch_id=51)
            log += st.recv(2)
        finally:
            st.close()
        return "\n".join(log) + "\n"

    def test_protocol_details(self):
        harness.assert_same(self, self.scenario(self.ref), self.scenario(self.sut))

    def progress_scenario(self, srv):
        st = RawStream(srv)
        try:
            st.create(key=b"p", watch_id=7, progress_notify=True)
            st.create(key=b"q", watch_id=8)
            log = st.recv(2)
            log += st.recv(1, timeout=3)  # a progress notification: no events, header revision
            st.kv.Put(st.pb.PutRequest(key=b"p", value=b"1"))
            log += st.recv(1)
            return "\n".join(log) + "\n"
        finally:
            st.close()

    def test_progress_notify(self):
        harness.assert_same(self, self.progress_scenario(self.ref), self.progress_scenario(self.sut))


class WatchClients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(label="sut", extra_args=["--log-level", "debug"])
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_python_etcd3(self):
        c = self.srv.etcd3_client()
        try:
            c.put("/py/a", "0")
            start = c.get("/py/a")[1].mod_revision
            events, cancel = c.watch_prefix("/py/", start_revision=start, prev_kv=True)
            c.put("/py/b", "1")
            c.delete("/py/a")
            got = []
            for ev in events:
                got.append((type(ev).__name__, ev.key.decode(), ev.value.decode()))
                if len(got) == 3:
                    break
            cancel()
            self.assertEqual(got, [("PutEvent", "/py/a", "0"), ("PutEvent", "/py/b", "1"),
                                   ("DeleteEvent", "/py/a", "")])
        finally:
            c.close()

    def test_slow_consumer_gets_everything(self):
        """A raw gRPC watch that reads slowly while 20k events are written receives every
        event exactly once, in order."""
        import grpc
        from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc
        ch = grpc.insecure_channel(self.srv.endpoint)
        kv, ws = rpc_pb2_grpc.KVStub(ch), rpc_pb2_grpc.WatchStub(ch)
        start = kv.Range(rpc_pb2.RangeRequest(key=b"x")).header.revision + 1
        req = rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=b"slow/", range_end=b"slow0"))
        reqs = iter([req])
        done = threading.Event()

        def gen():
            yield next(reqs)
            done.wait(120)

        stream = ws.Watch(gen())
        first = next(stream)
        self.assertTrue(first.created)
        value = b"v" * 1000
        ntxn, per = 2000, 10

        def writer():
            for t in range(ntxn):
                ops = [rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"slow/%05d" % (t * per + i), value=value))
                       for i in range(per)]
                kv.Txn(rpc_pb2.TxnRequest(success=ops))

        w = threading.Thread(target=writer)
        w.start()
        got, last_rev = 0, start - 1
        deadline = time.monotonic() + 120
        for resp in stream:
            if got < 5000:
                time.sleep(0.01)  # slow at first: the server must pause, not drop
            for ev in resp.events:
                self.assertEqual(ev.kv.key, b"slow/%05d" % got)
                self.assertGreaterEqual(ev.kv.mod_revision, last_rev)
                last_rev = ev.kv.mod_revision
                got += 1
            if got == ntxn * per or time.monotonic() > deadline:
                break
        w.join()
        done.set()
        stream.cancel()
        ch.close()
        self.assertEqual(got, ntxn * per)
        self.assertEqual(last_rev, start + ntxn - 1)
        if not harness.testing_real_etcd():
            with open(self.srv.log_path, errors="replace") as f:
                self.assertIn("watch stream paused (slow consumer)", f.read())


if __name__ == "__main__":
    harness.run_tests()
