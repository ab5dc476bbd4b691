#!/usr/bin/python3
"""Durability: data and revisions survive SIGTERM and SIGKILL restarts; acknowledged writes
survive crashes at random moments under concurrent load."""

import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CRASH_ROUNDS = int(os.environ.get("CETCD_CRASH_ROUNDS", "20"))
CRASH_BUDGET_S = float(os.environ.get("CETCD_CRASH_BUDGET_S", "120"))
WRITERS = 4


def snapshot(srv):
    """(header revision, {key: (value, create, mod, version)}) of the whole keyspace,
    read in pages at one pinned revision."""
    return harness.keyspace(srv.client_port)


class Durability(unittest.TestCase):
    def setUp(self):
        self.srv = harness.Server(label="sut")
        self.addCleanup(self.srv.close)
        self.srv.start()

    def _fill(self):
        c = self.srv.etcd3_client()
        try:
            for i in range(50):
                c.put("dur/k%02d" % (i % 20), "v%d" % i)
            c.delete("dur/k03")
            c.delete_prefix("dur/k1")
            c.put("dur/big", os.urandom(64 * 1024))
        finally:
            c.close()
        return snapshot(self.srv)

    def test_sigterm_restart(self):
        before = self._fill()
        self.srv.restart(kill=False)
        self.assertEqual(snapshot(self.srv), before)
        # the next write continues the revision sequence
        c = self.srv.etcd3_client()
        try:
            self.assertEqual(c.put("dur/after", "x").header.revision, before[0] + 1)
        finally:
            c.close()

    def test_sigkill_restart(self):
        before = self._fill()
        self.srv.restart(kill=True)
        self.assertEqual(snapshot(self.srv), before)
        c = self.srv.etcd3_client()
        try:
            self.assertEqual(c.put("dur/after", "x").header.revision, before[0] + 1)
        finally:
            c.close()
        # compaction state survives a crash too
        self.srv.ctl("compaction", str(before[0]))
        self.srv.restart(kill=True)
        r = self.srv.ctl("get", "dur/k00", "--rev=%d" % (before[0] - 1))
        self.assertNotEqual(r.rc, 0)
        self.assertIn("required revision has been compacted", r.err)

    def _start_expecting_failure(self):
        """Starts the server on damaged files; returns its log once it has exited."""
        self.srv.start(wait=False)
        try:
            self.srv.proc.wait(20)
        except Exception:  # noqa: BLE001 - a server that keeps running fails the test
            self.fail("the server started on damaged files\n" + self.srv.log_tail())
        self.assertNotEqual(self.srv.proc.returncode, 0)
        return self.srv._current_log()

    def test_corrupt_backend_refuses_to_start(self):
        self._fill()
        self.srv.stop()
        with open(os.path.join(self.srv.data_dir, "member", "snap", "data.mdb"), "r+b") as f:
            f.write(b"\xab" * 8192)  # both meta pages
        log = self._start_expecting_failure()
        self.assertIn('msg="cannot open backend"', log)
        self.assertIn('error="data corrupted"', log)
        self.assertIn("restore it from a snapshot", log)

    def test_corrupt_wal_refuses_to_start(self):
        self._fill()
        self.srv.stop()
        wal_dir = os.path.join(self.srv.data_dir, "member", "wal")
        seg = sorted(n for n in os.listdir(wal_dir) if n.endswith(".wal"))[0]
        with open(os.path.join(wal_dir, seg), "r+b") as f:
            f.seek(300)  # inside the first batches, with valid batches after it
            f.write(b"\xab" * 16)
        log = self._start_expecting_failure()
        self.assertIn('msg="cannot open WAL"', log)
        self.assertIn("data corrupted", log)
        self.assertIn("restore from a snapshot", log)

    def test_crash_safety(self):
        """Rounds of: concurrent puts, SIGKILL at a random moment, restart, verify."""
        seed = int(os.environ.get("CETCD_CRASH_SEED", int(time.time())))
        print("crash_safety: seed %d (CETCD_CRASH_SEED)" % seed)
        rng = random.Random(seed)
        attempted = {}   # key -> value (recorded before sending)
        acked = {}       # key -> (value, mod_revision) (recorded after an OK response)
        lock = threading.Lock()
        t_start = time.monotonic()
        rounds_done = 0
        for rnd in range(CRASH_ROUNDS):
            if time.monotonic() - t_start > CRASH_BUDGET_S - 8:
                print("crash_safety: time budget reached after %d rounds" % rnd)
                break
            stop = threading.Event()

            def writer(tid, rnd=rnd, stop=stop):
                try:
                    c = self.srv.etcd3_client(timeout=2)
                except Exception:
                    return
                try:
                    for n in range(100000):
                        if stop.is_set():
                            return
                        key = "crash/r%02d/t%d/%06d" % (rnd, tid, n)
                        val = "%s=%016x" % (key, rng.getrandbits(64)) + "p" * (n % 97)
                        with lock:
                            attempted[key.encode()] = val.encode()
                        try:
                            resp = c.put(key, val)
                        except Exception:
                            return  # server gone: this put is in doubt
                        with lock:
                            acked[key.encode()] = (val.encode(), resp.header.revision)
                finally:
                    try:
                        c.close()
                    except Exception:
                        pass

            threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.2, 1.0))
            self.srv.kill9()
            stop.set()
            for t in threads:
                t.join(10)
                self.assertFalse(t.is_alive(), "writer thread hung after the server was killed")
            self.srv.start()
            rev, kvs = snapshot(self.srv)
            with lock:
                self._verify(rnd, rev, kvs, attempted, acked)
            rounds_done += 1
        print("crash_safety: %d rounds, %d puts attempted, %d acknowledged, %.1fs"
              % (rounds_done, len(attempted), len(acked), time.monotonic() - t_start))
        self.assertGreater(len(acked), 0, "no write was ever acknowledged")
        self.assertGreaterEqual(rounds_done, min(CRASH_ROUNDS, 5))

    def _verify(self, rnd, rev, kvs, attempted, acked):
        ctx = "round %d: " % rnd
        for key, (val, mod) in acked.items():
            self.assertIn(key, kvs, ctx + "acknowledged write lost: %r (mod_revision %d)" % (key, mod))
            got = kvs[key]
            self.assertEqual(got[0], val, ctx + "acknowledged value changed for %r" % key)
            self.assertEqual(got[2], mod, ctx + "mod_revision changed for %r" % key)
            self.assertEqual(got[3], 1, ctx + "version of %r" % key)
        if acked:
            self.assertGreaterEqual(rev, max(m for _, m in acked.values()),
                                    ctx + "revision went backwards")
        mods = set()
        for key, (val, create, mod, ver) in kvs.items():
            self.assertIn(key, attempted, ctx + "key %r was never written" % key)
            self.assertEqual(val, attempted[key], ctx + "half-done or corrupt value for %r" % key)
            self.assertEqual(create, mod, ctx + "create != mod for single-put key %r" % key)
            self.assertLessEqual(mod, rev, ctx + "mod_revision beyond header revision for %r" % key)
            self.assertNotIn(mod, mods, ctx + "two keys share mod_revision %d" % mod)
            mods.add(mod)
        # every revision 2..rev is one put: no holes, no duplicates
        self.assertEqual(len(kvs), rev - 1, ctx + "revision %d but %d keys" % (rev, len(kvs)))


if __name__ == "__main__":
    harness.run_tests()
