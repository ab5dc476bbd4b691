#!/usr/bin/python3
"""Interop: Debian's python3-etcd3 client against the server under test.

Watch, lease and lock tests included (the lock tests use the v3lock service and an
uncontended python-etcd3 lock: Debian's python3-etcd3 crashes when its client-side lock waits)."""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))
import harness  # noqa: E402

import etcd3  # noqa: E402
import etcd3.exceptions  # noqa: E402


_default_excepthook = threading.excepthook


def _quiet_watch_thread(args):
    # python3-etcd3's watcher thread loops forever and dies with "Channel closed!" once the
    # client is closed: expected, not a failure.
    if (args.thread is not None and args.thread.name.startswith("etcd3_watch_")
            and isinstance(args.exc_value, ValueError)):
        return
    _default_excepthook(args)


threading.excepthook = _quiet_watch_thread


class PythonEtcd3(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(label="sut")
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def setUp(self):
        self.c = self.srv.etcd3_client()
        self.addCleanup(self.c.close)
        self.p = "/%s/" % self._testMethodName   # per-test key prefix

    # -- KV --------------------------------------------------------------------------------
    def test_put_get(self):
        r = self.c.put(self.p + "a", "1")
        rev = r.header.revision
        self.assertGreater(rev, 1)
        self.assertGreater(r.header.cluster_id, 0)
        self.assertGreater(r.header.member_id, 0)
        self.assertGreater(r.header.raft_term, 0)
        val, meta = self.c.get(self.p + "a")
        self.assertEqual(val, b"1")
        self.assertEqual((meta.key, meta.create_revision, meta.mod_revision, meta.version, meta.lease_id),
                         ((self.p + "a").encode(), rev, rev, 1, 0))
        r2 = self.c.put(self.p + "a", b"\x00\xffbin", prev_kv=True)
        self.assertEqual(r2.header.revision, rev + 1)
        self.assertEqual(r2.prev_kv.value, b"1")
        val, meta = self.c.get(self.p + "a")
        self.assertEqual((val, meta.version, meta.create_revision, meta.mod_revision),
                         (b"\x00\xffbin", 2, rev, rev + 1))
        self.assertEqual(self.c.get(self.p + "missing"), (None, None))
        val, _ = self.c.get(self.p + "a", serializable=True)
        self.assertEqual(val, b"\x00\xffbin")

    def test_get_prefix_and_range(self):
        for k in ("c", "a", "b", "b/1", "d"):
            self.c.put(self.p + k, "v" + k)
        self.c.put(self.p[:-1] + "0", "outside")   # sorts right after the prefix
        keys = [m.key for _, m in self.c.get_prefix(self.p)]
        self.assertEqual(keys, [(self.p + k).encode() for k in ("a", "b", "b/1", "c", "d")])
        desc = [m.key for _, m in self.c.get_prefix(self.p, sort_order="descend", sort_target="key")]
        self.assertEqual(desc, list(reversed(keys)))
        by_create = [m.key for _, m in self.c.get_prefix(self.p, sort_order="ascend", sort_target="create")]
        self.assertEqual(by_create, [(self.p + k).encode() for k in ("c", "a", "b", "b/1", "d")])
        vals = [v for v, _ in self.c.get_prefix(self.p, keys_only=True)]
        self.assertEqual(vals, [b""] * 5)
        rng = [m.key for _, m in self.c.get_range(self.p + "b", self.p + "d")]
        self.assertEqual(rng, [(self.p + k).encode() for k in ("b", "b/1", "c")])
        # (this python3-etcd3 ignores limit/revision in get_prefix: use the stub directly)
        import etcd3.etcdrpc as rpc
        resp = self.c.kvstub.Range(rpc.RangeRequest(key=self.p.encode(), range_end=self.p[:-1].encode() + b"0",
                                                    limit=2), timeout=5)
        self.assertEqual((len(resp.kvs), resp.more, resp.count), (2, True, 5))
        self.assertGreaterEqual(len(list(self.c.get_all())), 6)

    def test_delete(self):
        self.c.put(self.p + "x", "1")
        rev = self.c.put(self.p + "y", "2").header.revision
        self.assertTrue(self.c.delete(self.p + "x"))
        self.assertFalse(self.c.delete(self.p + "x"))
        # deleting nothing consumes no revision
        r = self.c.delete(self.p + "nothing", return_response=True)
        self.assertEqual((r.deleted, r.header.revision), (0, rev + 1))
        r = self.c.delete(self.p + "y", prev_kv=True, return_response=True)
        self.assertEqual((r.deleted, r.prev_kvs[0].value, r.header.revision), (1, b"2", rev + 2))
        # a deleted key starts a new generation
        self.c.put(self.p + "y", "3")
        _, meta = self.c.get(self.p + "y")
        self.assertEqual((meta.version, meta.create_revision), (1, rev + 3))

    def test_delete_prefix(self):
        for i in range(10):
            self.c.put(self.p + "k%d" % i, str(i))
        self.c.put(self.p[:-1] + "0keep", "x")
        before = self.c.get(self.p + "k0")[1].mod_revision
        r = self.c.delete_prefix(self.p)
        self.assertEqual(r.deleted, 10)
        self.assertEqual(r.header.revision, before + 11)   # 9 + 1 later puts, 1 for the delete
        self.assertEqual(list(self.c.get_prefix(self.p)), [])
        self.assertEqual(self.c.get(self.p[:-1] + "0keep")[0], b"x")

    def test_transactions(self):
        k = self.p + "t"
        t = self.c.transactions
        ok, resp = self.c.transaction(compare=[t.version(k) == 0],
                                      success=[t.put(k, "first"), t.get(k)], failure=[t.get(k)])
        self.assertTrue(ok)
        self.assertEqual(resp[1][0][0], b"first")
        rev = resp[1][0][1].mod_revision
        ok, resp = self.c.transaction(compare=[t.version(k) == 0], success=[t.put(k, "again")],
                                      failure=[t.get(k)])
        self.assertFalse(ok)
        self.assertEqual(resp[0][0][0], b"first")
        ok, _ = self.c.transaction(compare=[t.value(k) == "first", t.mod(k) == rev, t.create(k) == rev],
                                   success=[t.put(k, "second"), t.put(self.p + "u", "u")], failure=[])
        self.assertTrue(ok)
        _, meta = self.c.get(k)
        self.assertEqual((meta.mod_revision, meta.version), (rev + 1, 2))     # one revision per txn
        self.assertEqual(self.c.get(self.p + "u")[1].mod_revision, rev + 1)
        self.assertTrue(self.c.transaction(compare=[t.value(k) != "x", t.version(k) > 1, t.mod(k) < 10**9],
                                           success=[], failure=[])[0])
        self.assertTrue(self.c.put_if_not_exists(self.p + "n", "1"))
        self.assertFalse(self.c.put_if_not_exists(self.p + "n", "2"))
        self.assertTrue(self.c.replace(self.p + "n", "1", "3"))
        self.assertFalse(self.c.replace(self.p + "n", "1", "4"))
        self.assertEqual(self.c.get(self.p + "n")[0], b"3")
        # nested txn and delete inside a txn
        ok, resp = self.c.transaction(compare=[], success=[
            t.txn(compare=[t.value(k) == "second"], success=[t.delete(self.p + "u")], failure=[])],
            failure=[])
        self.assertTrue(ok)
        self.assertTrue(resp[0].response_txn.succeeded)
        self.assertIsNone(self.c.get(self.p + "u")[0])
        # duplicate key in one txn is rejected
        with self.assertRaises(Exception) as cm:
            self.c.transaction(compare=[], success=[t.put(k, "1"), t.put(k, "2")], failure=[])
        self.assertIn("duplicate key", str(getattr(cm.exception, "details", lambda: cm.exception)()))

    def test_status(self):
        st = self.c.status()
        self.assertRegex(st.version, r"^3\.\d+\.\d+")
        self.assertGreater(st.db_size, 0)
        self.assertIsNotNone(st.leader, "status leader is not a listed member")
        self.assertGreater(st.raft_index, 0)
        self.assertGreater(st.raft_term, 0)

    def test_members(self):
        members = list(self.c.members)
        self.assertEqual(len(members), 1)
        m = members[0]
        self.assertEqual(m.name, "default")
        self.assertEqual(list(m.peer_urls), [self.srv.peer_url])
        self.assertEqual(list(m.client_urls), [self.srv.client_url])
        self.assertGreater(m.id, 0)

    def test_compact_and_hash(self):
        rev = self.c.put(self.p + "h", "1").header.revision
        self.c.put(self.p + "h", "2")
        self.c.compact(rev)
        import grpc
        import etcd3.etcdrpc as rpc
        with self.assertRaises(grpc.RpcError) as cm:
            self.c.kvstub.Range(rpc.RangeRequest(key=(self.p + "h").encode(), revision=rev - 1), timeout=5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.OUT_OF_RANGE)
        self.assertEqual(cm.exception.details(), "etcdserver: mvcc: required revision has been compacted")
        old = self.c.kvstub.Range(rpc.RangeRequest(key=(self.p + "h").encode(), revision=rev), timeout=5)
        self.assertEqual(old.kvs[0].value, b"1")
        self.assertIsInstance(self.c.hash(), int)

    # -- step 2: watch, lease, lock --------------------------------------------------------
    def test_watch(self):
        k = self.p + "w"
        events, cancel = self.c.watch(k)
        try:
            def writer():
                time.sleep(0.3)
                self.c.put(k, "1")
                self.c.put(k, "2")
                self.c.delete(k)
            th = threading.Thread(target=writer)
            th.start()
            got = []
            for ev in events:
                got.append((type(ev).__name__, ev.value))
                if len(got) == 3:
                    break
            th.join(10)
            self.assertEqual(got, [("PutEvent", b"1"), ("PutEvent", b"2"), ("DeleteEvent", b"")])
        finally:
            cancel()

    def test_watch_prefix_from_revision_and_callback(self):
        start = self.c.put(self.p + "a", "1").header.revision
        self.c.put(self.p + "b", "2")
        got, done = [], threading.Event()

        def cb(resp):
            for ev in getattr(resp, "events", []):
                got.append((ev.key, ev.value, ev.mod_revision))
            if len(got) >= 3:
                done.set()

        wid = self.c.add_watch_prefix_callback(self.p, cb, start_revision=start)
        try:
            self.c.put(self.p + "c", "3")
            self.assertTrue(done.wait(10), got)
            self.assertEqual([g[0] for g in got[:3]], [(self.p + x).encode() for x in "abc"])
            self.assertEqual(got[0][2], start)
        finally:
            self.c.cancel_watch(wid)
        # watch_once with a timeout
        def later():
            time.sleep(0.3)
            self.c.put(self.p + "once", "x")
        th = threading.Thread(target=later)
        th.start()
        ev = self.c.watch_once(self.p + "once", timeout=10)
        th.join(10)
        self.assertEqual((type(ev).__name__, ev.value), ("PutEvent", b"x"))
        with self.assertRaises(etcd3.exceptions.WatchTimedOut):
            self.c.watch_once(self.p + "never", timeout=0.5)

    def test_lease(self):
        lease = self.c.lease(30)
        self.assertGreater(lease.id, 0)
        self.c.put(self.p + "l", "v", lease=lease)
        _, meta = self.c.get(self.p + "l")
        self.assertEqual(meta.lease_id, lease.id)
        self.assertGreater(lease.remaining_ttl, 0)
        self.assertLessEqual(lease.remaining_ttl, 30)
        self.assertEqual(lease.granted_ttl, 30)
        self.assertEqual([k for k in lease.keys], [(self.p + "l").encode()])
        r = lease.refresh()
        self.assertEqual(r[0].TTL, 30)
        lease.revoke()
        self.assertIsNone(self.c.get(self.p + "l")[0])
        info = self.c.get_lease_info(lease.id)
        self.assertEqual(info.TTL, -1)

    def test_lease_expiry(self):
        lease = self.c.lease(2)
        self.c.put(self.p + "e", "v", lease=lease)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.c.get(self.p + "e")[0] is not None:
            time.sleep(0.2)
        self.assertIsNone(self.c.get(self.p + "e")[0], "key of an expired lease still present")

    def test_lock(self):
        # python3-etcd3's own recipe (txn on /locks/<name> with a lease). Its acquire() breaks
        # when it has to wait (Debian's tenacity calls wait() with another signature), so
        # only uncontended acquires go through the library.
        name = self._testMethodName
        lock = self.c.lock(name, ttl=10)
        self.assertTrue(lock.acquire(timeout=5))
        self.assertTrue(lock.is_acquired())
        other = self.c.lock(name, ttl=10)
        self.assertFalse(other.is_acquired())
        val, meta = self.c.get("/locks/" + name)
        self.assertEqual(meta.lease_id, lock.lease.id)
        self.assertGreater(lock.refresh()[0].TTL, 0)
        self.assertTrue(lock.release())
        self.assertFalse(lock.release())
        self.assertTrue(other.acquire(timeout=5))
        self.assertTrue(other.release())
        with self.c.lock(name, ttl=10) as l3:
            self.assertTrue(l3.is_acquired())
        self.assertIsNone(self.c.get("/locks/" + name)[0])

    def test_v3lock_service(self):
        """v3lockpb.Lock/Unlock over python grpc with hand-encoded messages."""
        import grpc
        from harness import pb_decode, pb_field
        ch = grpc.insecure_channel(self.srv.endpoint)
        self.addCleanup(ch.close)
        lock_rpc = ch.unary_unary("/v3lockpb.Lock/Lock")
        unlock_rpc = ch.unary_unary("/v3lockpb.Lock/Unlock")
        name = self.p + "L"
        l1, l2 = self.c.lease(10), self.c.lease(10)
        resp = dict((f, v) for f, _, v in pb_decode(lock_rpc(pb_field(1, name) + pb_field(2, l1.id), timeout=5)))
        key1 = resp[2]
        self.assertTrue(key1.startswith(name.encode() + b"/"), key1)
        self.assertEqual(key1, name.encode() + b"/" + ("%x" % l1.id).encode())
        got = []

        def second():
            r = dict((f, v) for f, _, v in pb_decode(lock_rpc(pb_field(1, name) + pb_field(2, l2.id), timeout=15)))
            got.append(r[2])

        th = threading.Thread(target=second)
        th.start()
        time.sleep(0.5)
        self.assertEqual(got, [], "second Lock returned while the first holds it")
        unlock_rpc(pb_field(1, key1), timeout=5)
        th.join(15)
        self.assertEqual(got, [name.encode() + b"/" + ("%x" % l2.id).encode()])
        unlock_rpc(pb_field(1, got[0]), timeout=5)
        self.assertEqual(list(self.c.get_prefix(name)), [])


if __name__ == "__main__":
    harness.run_tests()
