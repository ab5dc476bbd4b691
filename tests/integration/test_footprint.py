#!/usr/bin/python3
"""cetcd's footprint with data, under its default settings (docs/PERFORMANCE.md, "Footprint"):

- the WAL keeps small segments (4 MiB) and releases the old ones once the backend is synced
  past them, so after a burst of writes it holds one or two segments, not a 64 MiB one;
- data.mdb has disk blocks only for its pages plus the reserve for new writes
  (mvcc_ensure_space);
- the backend's map does not stay resident: after the periodic sync, and after the key index
  is rebuilt at start (which reads every revision), the pages of data.mdb mapped into the
  server are dropped (they stay in the kernel's page cache), and every value still reads back.

These are cetcd's storage layout and memory, so those tests run on cetcd only. One more
compares with real etcd started beside it (issue 9's target):

- an idle single-member cetcd, right after it is ready, has at most a tenth of the resident
  memory of an idle etcd started the same way (the statically linked binary and its layout,
  CMakeLists.txt and src/main/cetcd-static.ld).
"""

import glob
import os
import sys
import time
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import pb_decode, pb_field  # noqa: E402

KEYS = 40000           # 256 B values: about 13 MB of WAL and 12 MiB of backend pages
VALUE_BYTES = 256
OPS_PER_TXN = 128      # etcd's default --max-txn-ops
SEGMENT_BYTES = 4 << 20
MAX_WAL_SEGMENTS = 2   # the current one, and a sealed one until the next sync releases it
# the margin for new writes, one allocation step, and the headroom the last proposal
# reserved (twice its 36 KB, plus 16 KiB)
RESERVE_BYTES = (4 << 20) + (1 << 20) + (128 << 10)
MAX_MAP_RSS_KIB = 4096  # a few pages read since the last drop; the whole file is >8 MiB
SETTLE_SECONDS = 10    # the backend sync runs once a second


def value_of(i):
    stem = ("v%06d|" % i).encode()
    return (stem * (VALUE_BYTES // len(stem) + 1))[:VALUE_BYTES]


def map_rss_kib(pid, path):
    """Resident KiB of the mappings of the file at path in process pid."""
    st = os.stat(path)
    total, match = 0, False
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
                maj, mnr = (int(x, 16) for x in parts[3].split(":"))
                match = (int(parts[4]) == st.st_ino and maj == os.major(st.st_dev) and mnr == os.minor(st.st_dev))
            elif match and parts[0] == "Rss:":
                total += int(parts[1])
    return total


class Footprint(unittest.TestCase):
    def setUp(self):
        self.srv = harness.Server(label="footprint")
        self.addCleanup(self.srv.close)
        self.srv.start()
        self._connect()

    def _connect(self):
        if getattr(self, "ch", None):
            self.ch.close()
        self.ch = grpc.insecure_channel(self.srv.endpoint, options=[("grpc.use_local_subchannel_pool", 1)])
        self.addCleanup(self.ch.close)
        self.txn = self.ch.unary_unary("/etcdserverpb.KV/Txn")
        self.range = self.ch.unary_unary("/etcdserverpb.KV/Range")
        self.status = self.ch.unary_unary("/etcdserverpb.Maintenance/Status")

    def db_size(self):
        return [v for f, _, v in pb_decode(self.status(b"", timeout=10)) if f == 3][0]

    def paths(self):
        member = os.path.join(self.srv.data_dir, "member")
        return os.path.join(member, "snap", "data.mdb"), glob.glob(os.path.join(member, "wal", "*.wal"))

    def fill(self):
        for first in range(0, KEYS, OPS_PER_TXN):
            ops = b"".join(pb_field(2, pb_field(2, pb_field(1, b"fp/%06d" % i) + pb_field(2, value_of(i))))
                           for i in range(first, min(KEYS, first + OPS_PER_TXN)))
            self.txn(ops, timeout=10)  # no compares: the success branch

    def check_values(self):
        """Every key, with its value, in pages of 5,000 (bounded)."""
        got, key = 0, b"fp/"
        for _ in range(KEYS // 5000 + 2):
            resp = self.range(pb_field(1, key) + pb_field(2, b"fp0") + pb_field(3, 5000), timeout=30)
            kvs = [{ff: vv for ff, _, vv in pb_decode(kv)} for f, _, kv in pb_decode(resp) if f == 2]
            for kv in kvs:
                i = int(kv[1][3:])
                self.assertEqual(kv[5], value_of(i), "value of %r" % kv[1])
            got += len(kvs)
            if len(kvs) < 5000:
                break
            key = kvs[-1][1] + b"\0"
        self.assertEqual(got, KEYS)

    def wait_for(self, cond):
        """Waits until cond() holds (at most SETTLE_SECONDS); returns its last value."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            v = cond()
            if v or time.monotonic() > deadline:
                return v
            time.sleep(0.2)

    def test_wal_segments_released_and_map_dropped(self):
        self.fill()
        db, _ = self.paths()
        size = self.db_size()
        self.assertGreater(size, 8 << 20, "the keys should take more backend pages than that")

        def wal_small():
            segs = self.paths()[1]
            return len(segs) <= MAX_WAL_SEGMENTS and all(os.stat(s).st_blocks * 512 <= SEGMENT_BYTES for s in segs)
        ok = self.wait_for(wal_small)
        segs = self.paths()[1]
        self.assertTrue(ok, "WAL keeps %d segments: %s" % (len(segs), [os.path.getsize(s) for s in segs]))
        log = self.srv._current_log()
        self.assertIn("wal: new segment", log)
        self.assertIn("wal: released segments", log)

        allocated = os.stat(db).st_blocks * 512
        self.assertLessEqual(allocated, size + RESERVE_BYTES, "data.mdb blocks beyond the reserve")
        self.assertGreaterEqual(allocated, size, "data.mdb must have blocks for every page")

        rss = self.wait_for(lambda: map_rss_kib(self.srv.pid, db) <= MAX_MAP_RSS_KIB)
        self.assertTrue(rss, "data.mdb still maps %d KiB into the server" % map_rss_kib(self.srv.pid, db))
        self.check_values()

        # a restart rebuilds the key index from every revision, then lets the pages go
        self.srv.stop()
        self.srv.start()
        self._connect()
        kib = map_rss_kib(self.srv.pid, db)
        self.assertLessEqual(kib, MAX_MAP_RSS_KIB, "data.mdb maps %d KiB after the index rebuild" % kib)
        self.check_values()


def rss_kib(pid):
    """VmRSS of process pid, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


class IdleFootprint(unittest.TestCase):
    IDLE_SECONDS = 2  # after "ready", for start-up work (first backend sync, leases) to end

    def test_idle_rss_at_most_a_tenth_of_etcds(self):
        rss = {}
        for name, binary in (("etcd", harness.ETCD_BIN), ("cetcd", harness.cetcd_bin())):
            srv = harness.Server(binary=binary, label="idle-" + name)
            self.addCleanup(srv.close)
            srv.start()
            time.sleep(self.IDLE_SECONDS)
            self.assertTrue(srv.running(), "%s stopped while idle" % name)
            rss[name] = rss_kib(srv.pid)
            srv.stop()
        print("idle RSS: etcd %d KiB, cetcd %d KiB (%.3fx)" % (rss["etcd"], rss["cetcd"],
                                                             rss["cetcd"] / rss["etcd"]))
        self.assertLessEqual(rss["cetcd"] * 10, rss["etcd"], rss)


if __name__ == "__main__":
    harness.run_tests()
