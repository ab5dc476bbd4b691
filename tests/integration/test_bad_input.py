#!/usr/bin/python3
"""Hostile and malformed input on the client port: the server must answer with the right
gRPC status or close the connection, and keep serving everyone else afterwards."""

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import grpc_frame, pb_decode, pb_field  # noqa: E402

import grpc  # noqa: E402  (python3-grpcio, a dependency of python3-etcd3)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


# ---- a tiny HTTP/2 client: literal header fields without indexing, no Huffman ---------------
def h2_frame(ftype, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") + payload


def hpack_int(n, prefix_bits=7, first=0):
    lim = (1 << prefix_bits) - 1
    if n < lim:
        return bytes([first | n])
    out = bytearray([first | lim])
    n -= lim
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def hpack_literal(name, value):
    """Literal Header Field without Indexing, new name (RFC 7541 6.2.2), raw strings."""
    name, value = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(name)) + name + hpack_int(len(value)) + value


def grpc_headers(port, path, extra=()):
    hs = [(":method", "POST"), (":scheme", "http"), (":path", path),
          (":authority", "127.0.0.1:%d" % port), ("content-type", "application/grpc"),
          ("te", "trailers")] + list(extra)
    return b"".join(hpack_literal(n, v) for n, v in hs)


class H2Conn:
    """Raw HTTP/2 connection; records every frame the server sends."""

    def __init__(self, port, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.port = port
        self.buf = b""
        self.frames = []
        self.closed = False

    def send(self, data):
        self.sock.sendall(data)

    def handshake(self):
        self.send(PREFACE + h2_frame(SETTINGS, 0, 0)
                  + h2_frame(WINDOW_UPDATE, 0, 0, (1 << 24).to_bytes(4, "big")))

    def read_frame(self, deadline):
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                d = b""
            if not d:
                self.closed = True
                return None
            self.buf += d
        ln = int.from_bytes(self.buf[:3], "big")
        f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF,
             self.buf[9:9 + ln])
        self.buf = self.buf[9 + ln:]
        self.frames.append(f)
        ftype, flags, _, payload = f
        if ftype == SETTINGS and not flags & ACK:
            self.send(h2_frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            self.send(h2_frame(PING, ACK, 0, payload))
        return f

    def until_stream_end(self, stream, timeout=5):
        """Frames for `stream` until END_STREAM/RST_STREAM/GOAWAY/close; bounded by timeout."""
        deadline = time.monotonic() + timeout
        got = []
        for _ in range(10000):
            f = self.read_frame(deadline)
            if f is None:
                break
            ftype, flags, sid, _ = f
            if ftype == GOAWAY:
                got.append(f)
                break
            if sid == stream:
                got.append(f)
                if ftype == RST_STREAM or (ftype in (HEADERS, DATA) and flags & END_STREAM):
                    break
        return got

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def frame_summary(frames):
    names = {DATA: "DATA", HEADERS: "HEADERS", RST_STREAM: "RST_STREAM", GOAWAY: "GOAWAY",
             SETTINGS: "SETTINGS", PING: "PING", WINDOW_UPDATE: "WINDOW_UPDATE"}
    return ["%s%s" % (names.get(t, t), "+ES" if (t in (DATA, HEADERS) and fl & END_STREAM) else "")
            for t, fl, _, _ in frames]


def range_request(key):
    return pb_field(1, key)


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(label="sut")
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def tearDown(self):
        # After every hostile test: the process is alive and etcdctl still works.
        self.assertTrue(self.srv.running(), "server died\n" + self.srv.log_tail())
        key = "alive-" + self._testMethodName
        r = self.srv.ctl("put", key, "yes", timeout=15)
        self.assertEqual(r.rc, 0, "server stopped serving after %s: %r\n%s"
                         % (self._testMethodName, r, self.srv.log_tail()))
        r = self.srv.ctl("get", key, "--print-value-only", timeout=15)
        self.assertEqual(r.out.strip(), "yes", r)

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.srv.client_port), timeout=5)
        self.addCleanup(s.close)
        return s

    def wait_closed(self, s, timeout=10):
        """True if the server closes (or resets) the connection within timeout."""
        deadline = time.monotonic() + timeout
        for _ in range(10000):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            s.settimeout(left)
            try:
                if not s.recv(65536):
                    return True
            except socket.timeout:
                return False
            except OSError:
                return True
        return False

    def server_ends(self, socks):
        """The socket inodes of the server's ends of these open client connections, once the
        server has accepted them all (a connection still in the accept queue has inode 0 in
        /proc/net/tcp); fails after 10 s."""
        ports = {s.getsockname()[1] for s in socks}
        found = {}
        for _ in range(200):
            with open("/proc/net/tcp") as f:
                for line in f.readlines()[1:]:
                    col = line.split()
                    lport, rport = (int(a.split(":")[1], 16) for a in col[1:3])
                    if lport == self.srv.client_port and rport in ports and col[9] != "0":
                        found[rport] = col[9]
            if len(found) == len(ports):
                return set(found.values())
            time.sleep(0.05)
        self.fail("the server accepted only %d of %d connections" % (len(found), len(ports)))

    def held(self):
        """The socket inodes the server process holds open (from /proc/PID/fd)."""
        out = set()
        for fd in os.listdir("/proc/%d/fd" % self.srv.pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (self.srv.pid, fd))
            except OSError:
                continue  # closed while listing
            if link.startswith("socket:["):
                out.add(link[8:-1])
        return out

    def wait_held(self, ok, timeout=10):
        """Polls held() (bounded by timeout) until ok(held); returns the last set."""
        deadline = time.monotonic() + timeout
        h = self.held()
        while not ok(h) and time.monotonic() < deadline:
            time.sleep(0.05)
            h = self.held()
        return h

    def assert_dropped(self, ends, what):
        """The server closes its end of each of these connections (no fd leak)."""
        left = self.wait_held(lambda h: not (h & ends)) & ends
        self.assertEqual(len(left), 0, "%s: the server still holds %d of its %d sockets"
                         % (what, len(left), len(ends)))

    def assert_released(self, baseline, what):
        """The server closes its side of every connection the test dropped (no fd leak)."""
        n = len(self.wait_held(lambda h: len(h) <= baseline))
        self.assertLessEqual(n, baseline, "%s: the server still holds %d sockets more than before"
                             % (what, n - baseline))

    def watchers(self):
        """The server's etcd_debugging_mvcc_watcher_total gauge."""
        with urllib.request.urlopen(self.srv.client_url + "/metrics", timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("etcd_debugging_mvcc_watcher_total "):
                    return int(float(line.split()[1]))
        self.fail("no etcd_debugging_mvcc_watcher_total in /metrics")

    def assert_watchers(self, want, what, timeout=10):
        """The watcher gauge reaches want within timeout."""
        deadline = time.monotonic() + timeout
        n = self.watchers()
        while n != want and time.monotonic() < deadline:
            time.sleep(0.05)
            n = self.watchers()
        self.assertEqual(n, want, "%s: %d watchers, want %d" % (what, n, want))

    def channel(self, **opts):
        ch = grpc.insecure_channel(self.srv.endpoint, options=list(opts.items()))
        self.addCleanup(ch.close)
        return ch

    def call_status(self, path, payload, timeout=10, ch=None):
        ch = ch or self.channel()
        try:
            resp = ch.unary_unary(path)(payload, timeout=timeout)
            return grpc.StatusCode.OK, resp
        except grpc.RpcError as e:
            return e.code(), e.details()

    # -- raw bytes -------------------------------------------------------------------------
    def test_garbage_bytes_closed(self):
        s = self.connect()
        s.sendall(bytes(range(256)) * 16)
        self.assertTrue(self.wait_closed(s), "garbage connection not closed within 10s")

    def test_http2_preface_truncated_frame(self):
        s = self.connect()
        s.sendall(PREFACE + b"\x00\x00")   # 2 of 9 frame-header bytes, then hang up
        ends = self.server_ends([s])
        self.assertTrue(self.wait_held(lambda h: ends <= h) >= ends, "the server does not hold the connection")
        s.close()
        self.assert_dropped(ends, "half a frame header, then hang-up")

    def test_http2_bad_frame_closed(self):
        s = self.connect()
        # SETTINGS frame whose length (7) is not a multiple of 6: FRAME_SIZE_ERROR
        s.sendall(PREFACE + h2_frame(SETTINGS, 0, 0, b"\x00" * 7))
        self.assertTrue(self.wait_closed(s), "connection with a malformed SETTINGS frame stays open")

    def test_http2_oversized_frame_header(self):
        s = self.connect()
        # a DATA frame announcing 16 MiB on an idle stream, larger than SETTINGS_MAX_FRAME_SIZE
        s.sendall(PREFACE + h2_frame(SETTINGS, 0, 0) + b"\xff\xff\xff\x00\x00\x00\x00\x00\x01" + b"x" * 100)
        self.assertTrue(self.wait_closed(s), "connection with an oversized frame stays open")

    def test_many_connections_dropped(self):
        socks = []
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", self.srv.client_port), timeout=5)
            if i % 3 == 0:
                s.sendall(PREFACE)
            elif i % 3 == 1:
                s.sendall(PREFACE + h2_frame(SETTINGS, 0, 0) + h2_frame(HEADERS, END_HEADERS, 1, b"\xff"))
            socks.append(s)
        # the bad-HEADERS third may already be closed by the server; the rest are held open
        ends = self.server_ends([s for i, s in enumerate(socks) if i % 3 != 1])
        self.assertTrue(self.wait_held(lambda h: ends <= h) >= ends, "the server does not hold the connections")
        for s in socks:
            s.close()
        self.assert_dropped(ends, "100 connections dropped")

    # -- raw HTTP/2 gRPC calls (literal headers, no Huffman) --------------------------------
    def raw_call(self, path, message_bytes, end=True):
        c = H2Conn(self.srv.client_port)
        self.addCleanup(c.close)
        c.handshake()
        c.send(h2_frame(HEADERS, END_HEADERS, 1, grpc_headers(self.srv.client_port, path)))
        c.send(h2_frame(DATA, END_STREAM if end else 0, 1, message_bytes))
        return c, c.until_stream_end(1)

    def test_raw_h2_valid_range(self):
        c, frames = self.raw_call("/etcdserverpb.KV/Range", grpc_frame(range_request(b"nokey")))
        kinds = frame_summary(frames)
        self.assertEqual(kinds, ["HEADERS", "DATA", "HEADERS+ES"], kinds)
        body = b"".join(p for t, _, _, p in frames if t == DATA)
        self.assertEqual(body[0], 0, "compressed flag set")
        ln = int.from_bytes(body[1:5], "big")
        self.assertEqual(len(body), 5 + ln)
        resp = pb_decode(body[5:])
        hdr = dict((f, v) for f, _, v in pb_decode(dict((f, v) for f, _, v in resp)[1]))
        self.assertGreaterEqual(hdr.get(3, 0), 1, "RangeResponse header has no revision")

    def test_raw_h2_garbage_protobuf_trailers_only(self):
        c, frames = self.raw_call("/etcdserverpb.KV/Range", grpc_frame(b"\xff\xff\xff\xff"))
        self.assertEqual(frame_summary(frames), ["HEADERS+ES"],
                         "expected a trailers-only response")

    def test_raw_h2_unknown_method_trailers_only(self):
        c, frames = self.raw_call("/etcdserverpb.KV/NoSuchMethod", grpc_frame(b""))
        self.assertEqual(frame_summary(frames), ["HEADERS+ES"], "expected a trailers-only response")

    def test_raw_h2_truncated_grpc_message(self):
        # the length prefix says 100 bytes, the stream ends after 3
        c, frames = self.raw_call("/etcdserverpb.KV/Range", b"\x00\x00\x00\x00\x64abc")
        kinds = frame_summary(frames)
        self.assertTrue(kinds and kinds[-1] in ("HEADERS+ES", "RST_STREAM"), kinds)
        self.assertNotIn("DATA", kinds)

    def test_raw_h2_disconnect_mid_watch(self):
        watchers = self.watchers()
        c = H2Conn(self.srv.client_port)
        c.handshake()
        c.send(h2_frame(HEADERS, END_HEADERS, 1, grpc_headers(self.srv.client_port, "/etcdserverpb.Watch/Watch")))
        c.send(h2_frame(DATA, 0, 1, grpc_frame(pb_field(1, pb_field(1, b"w") + pb_field(2, b"x")))))
        deadline = time.monotonic() + 5
        got_data = False
        for _ in range(100):
            f = c.read_frame(deadline)
            if f is None:
                break
            if f[0] == DATA and f[2] == 1:
                got_data = True
                break
        self.assertTrue(got_data, "no watch-created response: %s" % frame_summary(c.frames))
        self.assert_watchers(watchers + 1, "watch created")
        ends = self.server_ends([c.sock])
        self.assertTrue(self.srv.ctl("put", "wa", "1").ok)
        # half a gRPC message, then vanish
        c.send(h2_frame(DATA, 0, 1, b"\x00\x00\x00\x00\x10\x0a"))
        c.close()
        self.assert_watchers(watchers, "connection gone mid-message")
        self.assert_dropped(ends, "connection gone mid-message")

    # -- gRPC status codes (python grpc with raw bytes) -------------------------------------
    def test_grpc_garbage_protobuf_internal(self):
        code, details = self.call_status("/etcdserverpb.KV/Range", b"\xff\xff\xff")
        self.assertEqual(code, grpc.StatusCode.INTERNAL, details)   # 13
        code, details = self.call_status("/etcdserverpb.KV/Put", b"\x0a\x05ab")  # truncated field
        self.assertEqual(code, grpc.StatusCode.INTERNAL, details)

    def test_grpc_unknown_method_unimplemented(self):
        code, details = self.call_status("/etcdserverpb.KV/NoSuchMethod", b"")
        self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED, details)   # 12
        code, details = self.call_status("/etcdserverpb.NoSuchService/Range", b"")
        self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED, details)
        # grpc-go (etcd 3.4) answers a path without a service/method split with
        # ResourceExhausted "malformed method name: \"/bogus\""; newer grpc-go says Unimplemented.
        code, details = self.call_status("/bogus", b"")
        self.assertIn(code, (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.RESOURCE_EXHAUSTED), details)

    def test_grpc_oversized_message_resource_exhausted(self):
        ch = self.channel(**{"grpc.max_send_message_length": -1})
        big = pb_field(1, b"big") + pb_field(2, b"x" * (2 * 1024 * 1024 + 100))
        code, details = self.call_status("/etcdserverpb.KV/Put", big, ch=ch)
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, details)   # 8
        # a message between the request limit (1.5 MiB) and the gRPC limit (2 MiB)
        mid = pb_field(1, b"mid") + pb_field(2, b"x" * (1600 * 1024))
        code, details = self.call_status("/etcdserverpb.KV/Put", mid, ch=ch)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
        self.assertEqual(details, "etcdserver: request is too large")
        # the channel is still usable
        code, resp = self.call_status("/etcdserverpb.KV/Range", range_request(b"big"), ch=ch)
        self.assertEqual(code, grpc.StatusCode.OK, resp)

    def test_grpc_empty_message_is_valid(self):
        # an empty RangeRequest has an empty key: etcd answers InvalidArgument, not Internal
        code, details = self.call_status("/etcdserverpb.KV/Range", b"")
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
        self.assertEqual(details, "etcdserver: key is not provided")

    def test_grpc_watch_disconnect_mid_stream(self):
        watchers = self.watchers()
        baseline = len(self.held())
        ch = grpc.insecure_channel(self.srv.endpoint)
        q = queue.Queue()

        def reqs():
            for _ in range(100):
                item = q.get(timeout=10)
                if item is None:
                    return
                yield item

        call = ch.stream_stream("/etcdserverpb.Watch/Watch")(reqs(), timeout=20)
        q.put(pb_field(1, pb_field(1, b"wk")))                 # create watch on "wk"
        first = dict((f, v) for f, _, v in pb_decode(next(call)))
        self.assertEqual(first.get(3), 1, "first watch response is not 'created': %r" % first)
        self.srv.ctl("put", "wk", "v1")
        ev = dict((f, v) for f, _, v in pb_decode(next(call)))
        self.assertIn(11, ev, "no event in watch response: %r" % ev)
        # a second watch, then drop the connection without closing the streams
        q.put(pb_field(1, pb_field(1, b"wk2")))
        created = dict((f, v) for f, _, v in pb_decode(next(call)))
        self.assertEqual(created.get(3), 1, "second watch not created: %r" % created)
        self.assert_watchers(watchers + 2, "two watches on one stream")
        ch.close()
        self.assert_watchers(watchers, "channel closed with two watches open")
        # ...and many short-lived watch streams that are abandoned
        for _ in range(20):
            ch2 = grpc.insecure_channel(self.srv.endpoint)
            c2 = ch2.stream_stream("/etcdserverpb.Watch/Watch")(iter([pb_field(1, pb_field(1, b"wk"))]), timeout=5)
            try:
                next(c2)
            except grpc.RpcError:
                pass
            ch2.close()
        self.assert_watchers(watchers, "20 abandoned watch streams")
        self.assert_released(baseline, "watch connections dropped")

    # -- HTTP/1.1 endpoints ----------------------------------------------------------------
    def http_get(self, path):
        url = self.srv.client_url + path
        if shutil.which("curl"):
            p = subprocess.run(["curl", "-sS", "-m", "10", url], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=15)
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout.decode()
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()

    def test_http_health(self):
        body = json.loads(self.http_get("/health"))
        self.assertEqual(body.get("health"), "true", body)

    def test_http_version(self):
        body = json.loads(self.http_get("/version"))
        self.assertIn("etcdserver", body)
        self.assertIn("etcdcluster", body)
        self.assertRegex(body["etcdserver"], r"^3\.\d+\.\d+")

    def test_http1_unknown_path(self):
        s = self.connect()
        s.sendall(b"GET /no/such/path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        for _ in range(100):
            d = s.recv(65536)
            if not d:
                break
            data += d
        self.assertTrue(data.startswith(b"HTTP/1.1 404"), data[:100])


if __name__ == "__main__":
    harness.run_tests()
