"""Raft snapshots and log compaction on a 3-member cetcd cluster (issue 7, item 4).

With --snapshot-count 1000 and auto-compaction on, 50,000 writes leave every member's WAL
directory and data dir under fixed bounds (small WAL segments, so an unbounded log would
show as dozens of segments), each member saves snapshots and compacts its raft log, and a
member restarted after the writes recovers from its newest snapshot plus the WAL after it
and serves the same HashKV as the others. Every wait is bounded."""

import glob
import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import cluster_harness as ch  # noqa: E402

SEGMENT_BYTES = 256 * 1024
WRITES = 50000
KEY_SPACE = 5000
VALUE_BYTES = 100
# What the WAL may hold: snapshot-count + 5,000 catch-up entries + one second of writes
# before the backend sync releases segments, rounded up to whole segments. Without
# snapshots the same writes take about 40 segments (10 MB).
MAX_WAL_SEGMENTS = 12
MAX_WAL_BYTES = 3 * 1024 * 1024 + 512 * 1024
# LMDB blocks actually allocated (data.mdb is a sparse 8 GiB map): the keys, compacted
# history and the 8 MiB reserve for new writes (mvcc_ensure_space).
MAX_DB_BYTES = 32 * 1024 * 1024


def bench_bin():
    return os.environ.get("CETCD_BENCH_BIN") or os.path.join(
        os.path.dirname(harness.server_bin()), "bench", "cetcd-bench")


def wal_usage(member):
    """(segments, bytes) of a member's WAL directory."""
    segs = glob.glob(os.path.join(member.data_dir, "member", "wal", "*.wal"))
    return len(segs), sum(os.path.getsize(s) for s in segs)


def allocated_bytes(path):
    """Bytes of disk blocks behind path (all files under it, if a directory)."""
    if os.path.isfile(path):
        return os.stat(path).st_blocks * 512
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def snap_files(member):
    return sorted(glob.glob(os.path.join(member.data_dir, "member", "snap", "*.snap")))


def log_text(member):
    with open(member.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def hashkv(cluster, members, rev):
    """{endpoint: hash} of `endpoint hashkv --rev rev` on members, or None."""
    r = cluster.ctl("endpoint", "hashkv", "--rev", str(rev), "-w", "json", members=members,
                    timeout=20)
    if not r.ok:
        return None
    return {h["Endpoint"]: h["HashKV"]["hash"] for h in json.loads(r.out)}


def write_load(endpoint, total):
    """Writes total puts over 64 in-flight requests with cetcd-bench; returns its output."""
    argv = [bench_bin(), endpoint, "put-async", str(total), "64", "4", str(VALUE_BYTES),
            str(KEY_SPACE)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=150)
    if r.returncode != 0 or "errors: 0" not in r.stdout:
        raise AssertionError("cetcd-bench failed (%s): %s %s" % (r.returncode, r.stdout, r.stderr))
    return r.stdout


class RaftSnapshotTest(unittest.TestCase):
    def setUp(self):
        if harness.testing_real_etcd():
            self.fail("cetcd-specific: WAL segment size and snap files are cetcd's layout")
        if not os.path.exists(bench_bin()):
            self.fail("cetcd-bench not built at %s (make build)" % bench_bin())
        self.env = {"CETCD_TEST_WAL_SEGMENT_BYTES": str(SEGMENT_BYTES),
                    "CETCD_TEST_COMPACTOR_INTERVAL_MS": "1000"}
        self.saved_env = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        self.cluster = ch.Cluster(n=3, extra_args=[
            "--snapshot-count", "1000", "--auto-compaction-mode", "revision",
            "--auto-compaction-retention", "1000"])
        self.addCleanup(self.cluster.close)
        self.addCleanup(self.restore_env)

    def restore_env(self):
        for k, v in self.saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def test_wal_and_data_dir_bounded_and_restart_from_snapshot(self):
        c = self.cluster.start()
        leader = ch.until(c.leader)
        self.assertIsNotNone(leader)
        out = write_load(leader.endpoint, WRITES)
        sys.stderr.write("cetcd-bench: %s\n" % " ".join(out.split()[:2]))
        # the last snapshot is saved and the backend synced (once a second) before release
        for m in c.members:
            ok = ch.until(lambda m=m: wal_usage(m)[0] <= MAX_WAL_SEGMENTS, timeout=10)
            segs, size = wal_usage(m)
            db = allocated_bytes(os.path.join(m.data_dir, "member", "snap", "data.mdb"))
            sys.stderr.write("%s: WAL %d segments %d bytes, data.mdb %d bytes allocated, data dir "
                             "%d bytes, snap files %d\n" % (m.name, segs, size, db,
                                                            allocated_bytes(m.data_dir),
                                                            len(snap_files(m))))
            self.assertTrue(ok, "%s keeps %d WAL segments\n%s" % (m.name, segs, m.log_tail(20)))
            self.assertLessEqual(size, MAX_WAL_BYTES, m.name)
            self.assertLessEqual(db, MAX_DB_BYTES, m.name)
            self.assertLessEqual(allocated_bytes(m.data_dir), MAX_DB_BYTES + MAX_WAL_BYTES + (1 << 20))
            self.assertLessEqual(len(snap_files(m)), 5, m.name)
            text = log_text(m)
            saved = [int(x) for x in re.findall(r'"saved snapshot" snapshot-index=(\d+)', text)]
            # one snapshot per 1,000 applied entries once 5,000 are behind: about 45
            self.assertGreaterEqual(len(saved), 40, m.name)
            self.assertEqual(saved, sorted(saved), m.name)
            self.assertIn('"compacted Raft logs"', text)
            self.assertIn("wal: released segments", text)

        # a follower killed now restarts from its newest snapshot + the WAL after it
        follower = c.followers(leader)[0]
        follower.kill9()
        follower.start()
        rec = re.findall(r'"recovered from snapshot" snapshot-index=(\d+) snapshot-term=\d+ voters=3',
                         follower._current_log())
        self.assertEqual(len(rec), 1, follower.log_tail(20))
        self.assertGreater(int(rec[0]), WRITES - 7000)
        rev = None
        for _ in range(50):
            st = c.status()
            if st and len(st) == 3:
                revs = {s["header"]["revision"] for s in st.values()}
                if len(revs) == 1:
                    rev = revs.pop()
                    break
            time.sleep(0.2)
        self.assertIsNotNone(rev, "members never agreed on a revision")
        hashes = hashkv(c, c.members, rev)
        self.assertIsNotNone(hashes)
        self.assertEqual(len(set(hashes.values())), 1, hashes)
        # and it keeps replicating
        r = c.ctl("put", "after-restart", "v", members=[leader])
        self.assertTrue(r.ok, r.err)
        got = ch.until(lambda: "after-restart" in follower.ctl(
            "get", "after-restart", extra=["--consistency=s"]).out)
        self.assertTrue(got, follower.log_tail(20))


if __name__ == "__main__":
    harness.run_tests()
