#!/usr/bin/env python3
"""The JSON gateway and --max-concurrent-streams, side by side with etcd.

etcd's gateway reaches its own gRPC server over one HTTP/2 connection, so with
--max-concurrent-streams=N at most N gateway calls run at once: a gateway request made while
N gateway watches are open waits (etcd's e2e TestV3Curl_MaxStreams_ReachLimit_* expects curl
to time out), and it is answered as soon as one of the watches ends. gRPC clients, on their
own connections, are not held up. Each scenario runs on cetcd and on etcd; the outcomes
(answered / still waiting at each step) must be the same.

- test_1_below_limit: N-1 open watches, a range is answered at once.
- test_2_at_limit: N open watches; a range waits (2 s), a gRPC Range on its own connection is
  answered meanwhile; closing one watch's HTTP connection lets the waiting range through;
  a range whose client gives up while waiting leaves no trace (a later one is answered).
"""

import json
import socket
import threading
import time
import unittest

import harness

LIMIT = 3
WAIT = 2.0  # how long a request that must wait is watched to stay unanswered


def post(port, path, body):
    """Opens a connection and sends one HTTP/1.1 POST (keep the socket to read the answer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    data = json.dumps(body).encode()
    s.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (path.encode(), port, len(data), data))
    return s


def read_until(s, marker, timeout):
    """Reads from s until marker appears (returns the bytes) or timeout passes (returns None)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while marker not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return None
        if not chunk:
            return buf if marker in buf else None
        buf += chunk
    return buf


def open_watches(srv, n):
    """n gateway watches on "foo", each confirmed created; returns their sockets."""
    socks = []
    for _ in range(n):
        s = post(srv.client_port, "/v3/watch", {"create_request": {"key": "Zm9v", "start_revision": 1}})
        got = read_until(s, b'"created":true', 10)
        assert got is not None, "%s: a gateway watch was not created" % srv.label
        socks.append(s)
    return socks


def grpc_range_ok(srv):
    """A Range over gRPC (its own connection) answers within 5 s."""
    r = srv.ctl("get", "foo", timeout=10)
    return r.ok


class GatewayStreams(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        args = ["--max-concurrent-streams=%d" % LIMIT]
        cls.servers = [harness.Server(extra_args=args, label="cetcd")]
        if not harness.testing_real_etcd():
            cls.servers.append(harness.Server(binary=harness.ETCD_BIN, extra_args=args, label="etcd"))
        harness.start_servers(*cls.servers)
        for s in cls.servers:
            assert s.ctl("put", "foo", "bar").ok

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.close()

    def run_both(self, scenario):
        outcomes = []
        for srv in self.servers:
            out = scenario(srv)
            print("  [%s] %s" % (srv.label, out), flush=True)
            outcomes.append(out)
        for o in outcomes[1:]:
            self.assertEqual(outcomes[0], o)
        return outcomes[0]

    def test_1_below_limit(self):
        def scenario(srv):
            watches = open_watches(srv, LIMIT - 1)
            try:
                r = post(srv.client_port, "/v3/kv/range", {"key": "Zm9v"})
                got = read_until(r, b'"revision":"', 5)
                r.close()
                return {"range answered": got is not None}
            finally:
                for w in watches:
                    w.close()

        self.assertEqual(self.run_both(scenario), {"range answered": True})

    def test_2_at_limit(self):
        def scenario(srv):
            out = {}
            watches = open_watches(srv, LIMIT)
            try:
                waiting = post(srv.client_port, "/v3/kv/range", {"key": "Zm9v"})
                out["range answered while at limit"] = read_until(waiting, b'"revision":"', WAIT) is not None
                out["grpc range meanwhile"] = grpc_range_ok(srv)
                # a client that gives up while waiting
                quitter = post(srv.client_port, "/v3/kv/range", {"key": "Zm9v"})
                time.sleep(0.3)
                quitter.close()
                # one watch ends: the first waiting range goes through
                watches.pop(0).close()
                out["range answered after a watch closed"] = \
                    read_until(waiting, b'"revision":"', 10) is not None
                waiting.close()
                # the quitter's place is not held: the next request is answered
                time.sleep(0.3)
                nxt = post(srv.client_port, "/v3/kv/range", {"key": "Zm9v"})
                out["next range answered"] = read_until(nxt, b'"revision":"', 10) is not None
                nxt.close()
            finally:
                for w in watches:
                    w.close()
            # every watch gone: requests run freely again
            time.sleep(0.3)
            socks = [post(srv.client_port, "/v3/kv/range", {"key": "Zm9v"}) for _ in range(LIMIT + 2)]
            out["ranges after all watches closed"] = sum(
                read_until(s, b'"revision":"', 10) is not None for s in socks)
            for s in socks:
                s.close()
            return out

        self.assertEqual(self.run_both(scenario), {
            "range answered while at limit": False,
            "grpc range meanwhile": True,
            "range answered after a watch closed": True,
            "next range answered": True,
            "ranges after all watches closed": LIMIT + 2,
        })


if __name__ == "__main__":
    harness.run_tests()
