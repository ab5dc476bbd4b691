"""Helpers of the watch lag tests (test_watch_lag.py, test_watch_backlog.py): a raw Watch
stream with a deadline, backlog writes, and the anonymous memory of a server process."""

import os
import queue
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Stream:
    """A raw Watch stream: requests encoded by hand (python3-etcd3's stubs predate progress
    requests), responses decoded by the generated WatchResponse. The call has a deadline,
    so no wait on it can outlast `timeout` seconds."""

    def __init__(self, channel, timeout):
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
        self.responses = call(gen(), timeout=timeout)
        self.error = None

    def each(self):
        """The responses until the stream ends (its deadline included: self.error)."""
        import grpc
        try:
            for r in self.responses:
                yield r
        except grpc.RpcError as e:
            self.error = "%s %s" % (e.code(), e.details())

    def create(self, key, range_end, start_revision=0):
        pf = harness.pb_field
        m = pf(1, key) + pf(2, range_end) + (pf(3, start_revision) if start_revision else b"")
        self.q.put(pf(1, m))

    def progress(self):
        self.q.put(harness.pb_field(3, b""))

    def close(self):
        self.q.put(None)
        self.responses.cancel()


def write_backlog(srv, prefix, n, value=b"o" * 200):
    """Writes n revisions (one put each, 4 threads) under prefix; returns the first one."""
    import grpc
    from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc
    ch = grpc.insecure_channel(srv.endpoint)
    kv = rpc_pb2_grpc.KVStub(ch)
    first = kv.Range(rpc_pb2.RangeRequest(key=b"x"), timeout=10).header.revision + 1
    errors = []

    def put(t):
        try:
            for i in range(n // 4):
                kv.Put(rpc_pb2.PutRequest(key=prefix + b"%d-%04d" % (t, i), value=value), timeout=10)
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


def rss_anon_kib(pid):
    """Anonymous resident memory of a process (heap; not LMDB's file-backed map), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon for pid %d" % pid)
