#!/usr/bin/python3
"""Power loss, not just SIGKILL: a SIGKILL keeps the page cache, so it cannot catch an
acknowledgement sent before fsync. Here each cetcd runs under the power-cut shim
(tests/tools/powercut.c, driven by powercut.py): after the SIGKILL its data dir is rolled back
to what it had made durable (fsync, fdatasync, msync, directory fsyncs); nothing else
survives, or, in writeback rounds, a random half of the unsynced pages survives too (the
kernel writes dirty pages back in any order before the cut). Then, after restart: every acknowledged write is there with its revision, nothing
unwritten or torn appears, revisions have no holes, HashKV of earlier revisions is
unchanged, and in a cluster every member has the same HashKV at the same revision.

test_teeth runs a server with --unsafe-no-fsync (the WAL's fdatasync skipped) and requires
that the cut loses acknowledged writes: the check can fail. To run the whole file that way:
CETCD_POWERCUT_EXTRA_ARGS=--unsafe-no-fsync (every test must then fail).
"""

import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_harness as ch  # noqa: E402
import harness  # noqa: E402
import powercut  # noqa: E402

ROUNDS = int(os.environ.get("CETCD_POWERCUT_ROUNDS", "12"))
EXTRA_ARGS = os.environ.get("CETCD_POWERCUT_EXTRA_ARGS", "").split()
SEGMENT_BYTES = 256 * 1024  # small WAL segments: rotation and release happen during the load
WRITERS = 3


def keyspace(endpoint_port, serializable=False):
    """(header revision, {key: (value, create, mod, version)}) at one pinned revision."""
    return harness.keyspace(endpoint_port, serializable, max_pages=10000)


def hashkv(port, rev):
    """(hash, compact_revision) of the member on port at rev."""
    import etcd3
    import etcd3.etcdrpc as rpc
    c = etcd3.client(host="127.0.0.1", port=port, timeout=10)
    try:
        r = c.maintenancestub.HashKV(rpc.HashKVRequest(revision=rev), timeout=10)
        return r.hash, r.compact_revision
    finally:
        c.close()


CHILD = r"""
import mmap, os, sys, threading, time
D = sys.argv[1]
def fsync_dir(p):
    fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)
def new(name, data=b"", sync=True, flags=os.O_RDWR):
    fd = os.open(os.path.join(D, name), flags | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, data)
    if sync:
        os.fsync(fd)
    return fd
# 1. names, made durable by the one directory fsync below
f = new("synced", b"A" * 8192)
g = new("named-only", sync=False)
new("to-rename", b"R")
new("to-unlink", b"R")
m = new("mapped", b"\0" * 16384)
new("write-only", b"W" * 5000, flags=os.O_WRONLY)
t = [new("thread%d" % i, sync=False) for i in range(2)]
os.mkdir(os.path.join(D, "kept-dir"))
fsync_dir(D)
# 2. contents
os.pwrite(f, b"B" * 4096, 0)          # not synced: reverts to A
os.ftruncate(f, 100)                  # not synced: the size reverts
os.write(g, b"C" * 10)                # never synced: exists, empty
mm = mmap.mmap(m, 16384)
mm[0:4] = b"MMMM"
mm.flush(0, 4096)                     # msync(MS_SYNC): kept
mm[4096:4100] = b"NNNN"               # not synced: reverts to zeros
h = os.open(os.path.join(D, "kept-dir", "inner"), os.O_RDWR | os.O_CREAT, 0o600)
os.write(h, b"I")
os.fsync(h)                           # kept-dir itself never synced: inner disappears
def writer(i):
    for k in range(150):
        os.write(t[i], b"%d" % i * 100)
        if k == 99:
            os.fdatasync(t[i])        # 10000 bytes synced, 5000 more not
threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
for th in threads:
    th.start()
for th in threads:
    th.join()
# 3. names changed after the last directory fsync: all reverted
new("no-dir-sync", b"x")
os.rename(os.path.join(D, "to-rename"), os.path.join(D, "renamed"))
os.unlink(os.path.join(D, "to-unlink"))
os.mkdir(os.path.join(D, "lost-dir"))
print("ready", flush=True)
time.sleep(60)
"""


class Load:
    """WRITERS threads putting unique keys through the given servers, recording each key
    before it is sent (attempted) and after an OK response (acked, with its revision)."""

    def __init__(self, prefix, servers, seed):
        self.prefix, self.servers = prefix, servers
        self.rng = random.Random(seed)
        self.attempted, self.acked = {}, {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = []
        self.rounds = 0  # a new key space on each start

    def _writer(self, tid, rnd):
        import etcd3
        c = None
        for n in range(200000):
            if self.stop.is_set():
                break
            if c is None:
                srv = self.servers[(tid + n) % len(self.servers)]
                try:
                    c = etcd3.client(host="127.0.0.1", port=srv.client_port, timeout=2)
                except Exception:  # noqa: BLE001 - server down: try the next one
                    time.sleep(0.05)
                    continue
            key = "%s/r%d/t%d/%06d" % (self.prefix, rnd, tid, n)
            with self.lock:
                val = "%s=%016x" % (key, self.rng.getrandbits(64)) + "p" * (n % 97)
                self.attempted[key.encode()] = val.encode()
            try:
                resp = c.put(key, val)
            except Exception:  # noqa: BLE001 - in doubt: it may or may not have happened
                try:
                    c.close()
                except Exception:  # noqa: BLE001
                    pass
                c = None
                time.sleep(0.05)
                continue
            with self.lock:
                self.acked[key.encode()] = (val.encode(), resp.header.revision)
        if c is not None:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass

    def start(self):
        self.stop.clear()
        self.rounds += 1
        self.threads = [threading.Thread(target=self._writer, args=(i, self.rounds), daemon=True)
                        for i in range(WRITERS)]
        for t in self.threads:
            t.start()
        return self

    def finish(self, tc):
        self.stop.set()
        for t in self.threads:
            t.join(15)
            tc.assertFalse(t.is_alive(), "writer thread hung")


def attach(srv):
    powercut.attach(srv)
    srv.extra_env["CETCD_TEST_WAL_SEGMENT_BYTES"] = str(SEGMENT_BYTES)
    srv.extra_args += EXTRA_ARGS


def start_after_cut(tc, servers):
    """Starts the servers on their rolled-back data; a refusal fails the test with its log."""
    for s in servers:
        s.start(wait=False)
    for s in servers:
        try:
            s.wait_ready(30)
        except AssertionError as e:
            tc.fail("a server did not start after a power cut (its message must name the damaged "
                    "file, and correct code must never get there):\n%s" % e)


class PowerLossTest(unittest.TestCase):
    def setUp(self):
        if harness.testing_real_etcd():
            self.fail("cetcd-specific: the power-cut shim models cetcd's files")
        self.seed = int(os.environ.get("CETCD_POWERCUT_SEED", int(time.time())))
        print("%s: seed %d (CETCD_POWERCUT_SEED)" % (self.id(), self.seed))
        self.rng = random.Random(self.seed)

    def check(self, ctx, load, rev, kvs):
        """Nothing acknowledged lost, nothing unwritten or torn, no revision holes."""
        with load.lock:
            acked, attempted = dict(load.acked), dict(load.attempted)
        lost = [k for k in acked if k not in kvs]
        if lost:
            self.fail("%s: %d acknowledged writes lost (of %d), e.g. %r" % (ctx, len(lost), len(acked), lost[:3]))
        for key, (val, mod) in acked.items():
            self.assertEqual(kvs[key][0], val, "%s: acknowledged value changed for %r" % (ctx, key))
            self.assertEqual(kvs[key][2], mod, "%s: mod_revision changed for %r" % (ctx, key))
        if acked:
            self.assertGreaterEqual(rev, max(m for _, m in acked.values()), ctx + ": revision went back")
        mods = set()
        for key, (val, create, mod, ver) in kvs.items():
            self.assertEqual(val, attempted.get(key), "%s: unwritten or torn value for %r" % (ctx, key))
            self.assertEqual((create, ver), (mod, 1), "%s: key %r written twice" % (ctx, key))
            self.assertNotIn(mod, mods, "%s: two keys at revision %d" % (ctx, mod))
            mods.add(mod)
        self.assertEqual(len(kvs), rev - 1, "%s: revision %d but %d keys (holes)" % (ctx, rev, len(kvs)))

    def test_single_member(self):
        """Rounds of: writes under load, SIGKILL + power cut at a random moment, restart, check."""
        srv = harness.Server(label="powercut")
        self.addCleanup(srv.close)
        attach(srv)
        srv.start()
        load = Load("pc1", [srv], self.seed)
        hashes = {}  # revision -> (hash, compact revision) seen after an earlier cut
        t0 = time.monotonic()
        for rnd in range(ROUNDS):
            load.start()
            time.sleep(self.rng.uniform(0.3, 1.0))
            if rnd % 3 == 1:  # the backend file is replaced (copy, fsync, rename, dir fsync)
                r = srv.ctl("defrag", timeout=30)
                self.assertTrue(r.ok, "%s: defrag failed: %s" % (rnd, r.err))
            time.sleep(self.rng.uniform(0, 1.0))  # backend syncs run every second
            idle = rnd % 4 >= 2  # cut just after the load stops, before the backend's next sync
            if idle:
                load.finish(self)
                time.sleep(self.rng.uniform(0, 0.2))
            # odd rounds: some unsynced pages reach the disk too, in no order (kernel writeback)
            counts = powercut.cut(srv, random.Random(self.rng.random()) if rnd % 2 else None)
            if not idle:
                load.finish(self)
            start_after_cut(self, [srv])
            rev, kvs = keyspace(srv.client_port)
            ctx = "round %d (%s cut, %s; restored %d files, %d dirs)" % (rnd, "idle" if idle else "loaded",
                                                               "writeback" if rnd % 2 else "strict", counts[0], counts[1])
            self.check(ctx, load, rev, kvs)
            for r, h in hashes.items():
                self.assertEqual(hashkv(srv.client_port, r), h, "%s: HashKV at %d changed" % (ctx, r))
            hashes[rev] = hashkv(srv.client_port, rev)
        with open(srv.log_path) as f:
            log = f.read()
        self.assertTrue("wal: new segment" in log, "no WAL segment was created under the load")
        self.assertTrue("wal: released segments" in log, "no WAL segment was released under the load")
        self.assertTrue("finished defragmenting" in log, "no defragmentation ran under the load")
        print("single member: %d rounds, %d puts attempted, %d acknowledged, %.1fs"
              % (ROUNDS, len(load.attempted), len(load.acked), time.monotonic() - t0))
        self.assertGreater(len(load.acked), ROUNDS * 10, "too few writes were acknowledged to mean anything")

    def agreed_revision(self, cluster):
        """The revision every member reports (serializable), once they agree."""
        for _ in range(150):
            revs = set()
            for m in cluster.members:
                try:
                    revs.add(keyspace(m.client_port, serializable=True)[0])
                except Exception:  # noqa: BLE001 - still catching up
                    revs.add(None)
            if len(revs) == 1 and None not in revs:
                return revs.pop()
            time.sleep(0.2)
        self.fail("members never agreed on a revision")

    def check_cluster(self, ctx, cluster, load):
        leader = ch.until(cluster.leader, timeout=30)
        self.assertIsNotNone(leader, ctx + ": no leader after restart")
        rev, kvs = keyspace(leader.client_port)
        self.check(ctx, load, rev, kvs)
        rev = self.agreed_revision(cluster)
        hashes = {m.name: hashkv(m.client_port, rev) for m in cluster.members}
        self.assertEqual(len(set(hashes.values())), 1, "%s: HashKV differs at %d: %s" % (ctx, rev, hashes))

    def test_cluster(self):
        """3 members: power cut on the leader alone, then on every member at once."""
        # frequent raft snapshots: snap files and WAL releases happen during the load
        cluster = ch.Cluster(n=3, token="powercut", extra_args=["--snapshot-count", "200"])
        self.addCleanup(cluster.close)
        for m in cluster.members:
            attach(m)
            m.extra_env["CETCD_TEST_WAL_SEGMENT_BYTES"] = str(64 * 1024)  # the load is smaller here
        cluster.start()
        t0 = time.monotonic()
        load = Load("pc3", cluster.members, self.seed).start()
        time.sleep(self.rng.uniform(1.0, 2.5))
        victim = ch.until(cluster.leader) or cluster.members[0]
        powercut.cut(victim)
        start_after_cut(self, [victim])
        time.sleep(self.rng.uniform(1.0, 2.5))
        for rnd in range(3):
            for m in cluster.members:  # as close to at once as SIGKILLs get
                m.kill9()
            for m in cluster.members:  # the second time with kernel writeback of unsynced pages
                powercut.rollback(m.data_dir, m.powercut_shadow, random.Random(self.rng.random()) if rnd else None)
            load.finish(self)
            start_after_cut(self, cluster.members)
            self.check_cluster("cluster cut %d" % rnd, cluster, load)
            if rnd < 2:
                load.start()
                time.sleep(self.rng.uniform(1.0, 2.5))
        logs = ""
        for m in cluster.members:
            with open(m.log_path) as f:
                logs += f.read()
        self.assertTrue("triggering snapshot" in logs, "no raft snapshot was triggered under the load")
        self.assertTrue("wal: new segment" in logs, "no WAL segment was created under the load")
        print("cluster: %d puts attempted, %d acknowledged, %.1fs"
              % (len(load.attempted), len(load.acked), time.monotonic() - t0))
        self.assertGreater(len(load.acked), 30, "too few writes were acknowledged to mean anything")

    def test_teeth(self):
        """With the WAL's fdatasync skipped (--unsafe-no-fsync) the cut loses acknowledged
        writes: the checks above can fail."""
        srv = harness.Server(label="powercut-nofsync", extra_args=["--unsafe-no-fsync"])
        self.addCleanup(srv.close)
        attach(srv)
        srv.start()
        lost = 0
        for rnd in range(3):
            load = Load("teeth%d" % rnd, [srv], self.seed).start()
            time.sleep(0.6)
            load.finish(self)  # the last backend commit waits for the next sync; only the WAL has it
            powercut.cut(srv)
            srv.start(wait=False)
            try:
                srv.wait_ready(30)
            except AssertionError:
                lost += 1  # refusing to start also shows the cut bit
                break
            rev, kvs = keyspace(srv.client_port)
            lost += sum(1 for k in load.acked if k not in kvs)
            if lost:
                break
        print("teeth: %d acknowledged writes lost without fdatasync" % lost)
        self.assertGreater(lost, 0, "a power cut without WAL fdatasync lost nothing: the simulator has no teeth")

    def test_simulator(self):
        """The simulator itself: what survives a cut is exactly what was synced."""
        root = tempfile.mkdtemp(prefix="cetcd-powercut-")
        self.addCleanup(shutil.rmtree, root, True)
        data, image = os.path.join(root, "data"), os.path.join(root, "image")
        os.mkdir(data)
        env = dict(os.environ, LD_PRELOAD=powercut.LIB, CETCD_POWERCUT_DIR=data, CETCD_POWERCUT_SHADOW=image)
        p = subprocess.Popen(harness.guarded(["/usr/bin/python3", "-c", CHILD, data]), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = p.stdout.readline()
            self.assertEqual(line, b"ready\n", p.stderr.read(4000) if not line else line)
        finally:
            p.kill()
            p.wait(10)
            p.stdout.close()
            p.stderr.close()
        powercut.rollback(data, image)

        def read(name):
            with open(os.path.join(data, name), "rb") as f:
                return f.read()
        self.assertEqual(sorted(os.listdir(data)),
                         sorted(["synced", "named-only", "to-rename", "to-unlink", "mapped", "write-only",
                                 "kept-dir", "thread0", "thread1"]))
        self.assertEqual(read("synced"), b"A" * 8192)
        self.assertEqual(read("named-only"), b"")
        self.assertEqual(read("to-rename"), b"R")
        self.assertEqual(read("to-unlink"), b"R")
        self.assertEqual(read("mapped"), b"MMMM" + b"\0" * 16380)
        self.assertEqual(read("write-only"), b"W" * 5000)
        self.assertEqual(os.listdir(os.path.join(data, "kept-dir")), [])
        for i in range(2):
            self.assertEqual(read("thread%d" % i), (b"%d" % i) * 10000)


if __name__ == "__main__":
    unittest.main(verbosity=2)
