#!/usr/bin/python3
"""Snapshots: `etcdctl snapshot save/status/restore` against the server under test, and
migration both ways between it and real etcd 3.4 (/usr/bin/etcd):

- the bucket contents of a snapshot equal real etcd's for the same writes (apart from the
  raft position in meta/consistent_index and the member's URLs), and status agrees;
- real etcd boots from a restored snapshot of the server with the same keys, values,
  revisions, versions and leases;
- the server boots from a restored snapshot (its own, or real etcd's, also of a 3-member
  cluster) with the same data, the member id etcdctl computed, and keeps working across
  restarts;
- corrupt snapshots are refused by etcdctl, and a corrupt restored db by the server.
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CTL_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
CTL_ENV["ETCDCTL_API"] = "3"


def ctl_local(*args, timeout=60):
    """etcdctl without endpoints (snapshot status/restore)."""
    p = subprocess.run([harness.ETCDCTL_BIN] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=CTL_ENV, timeout=timeout)
    return harness.CtlResult(args, p.returncode, p.stdout.decode(), p.stderr.decode())


# ---- a minimal bbolt reader and crc32c, to compare snapshot contents ---------------------

def bbolt_dump(path):
    """{bucket: [(key, value), ...]} of a bbolt file (trailing sha256 ignored)."""
    with open(path, "rb") as f:
        data = f.read()
    metas = []
    for off in (0, 4096):
        magic, version, psize, _flags, root, _seq, _fl, pgid, txid = struct.unpack_from(
            "<IIIIQQQQQ", data, off + 16)
        if magic == 0xED0CDAED and version == 2:
            metas.append((txid, psize, root, pgid))
    assert metas, "no valid meta page"
    _txid, psize, root, pgid = max(metas)
    assert pgid * psize <= len(data)

    def elems(pg):
        flags, count = struct.unpack_from("<HH", pg, 8)
        for i in range(count):
            e = 16 + 16 * i
            if flags & 1:
                pos, ks, child = struct.unpack_from("<IIQ", pg, e)
                yield ("branch", child)
            else:
                fl, pos, ks, vs = struct.unpack_from("<IIII", pg, e)
                k = pg[e + pos:e + pos + ks]
                yield ("leaf", (fl, k, pg[e + pos + ks:e + pos + ks + vs]))

    def page(pid):
        overflow = struct.unpack_from("<I", data, pid * psize + 12)[0]
        return data[pid * psize:(pid + 1 + overflow) * psize]

    def walk(pg):
        for kind, x in elems(pg):
            if kind == "branch":
                yield from walk(page(x))
            else:
                yield x

    out = {}
    for fl, name, val in walk(page(root)):
        assert fl & 1
        broot = struct.unpack_from("<Q", val, 0)[0]
        pg = val[16:] if broot == 0 else page(broot)
        out[name.decode()] = [(k, v) for f, k, v in walk(pg) if not f & 1]
    return out


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_T = _crc32c_table()


def crc32c(chunks):
    c = 0xFFFFFFFF
    for b in chunks:
        for x in b:
            c = _T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def status_hash(dump):
    """The hash `etcdctl snapshot status` computes over a dump."""
    parts = []
    for name in sorted(dump):
        parts.append(name.encode())
        for k, v in dump[name]:
            parts += [k, v]
    return crc32c(parts)


# ---- helpers ---------------------------------------------------------------------------------

def ok(tc, r):
    tc.assertTrue(r.ok, "%s failed: %r" % (" ".join(map(str, r.args)), r))
    return r


def keyspace(srv):
    """(header revision, [(key, value, create, mod, version, lease)]) of every key."""
    r = srv.ctl("get", "--prefix", "", "-w", "json", timeout=60)
    assert r.ok, r
    j = json.loads(r.out)
    kvs = [(kv["key"], kv.get("value", ""), kv["create_revision"], kv["mod_revision"],
            kv["version"], kv.get("lease", 0)) for kv in j.get("kvs", [])]
    return j["header"]["revision"], kvs


def write_workload(tc, srv, lease=False, big=True):
    """The same writes on any server: puts, overwrites, deletes, txns with many keys (sub
    revisions, several B+tree levels), a large value (overflow pages), a compaction."""
    for i in range(20):
        ok(tc, srv.ctl("put", "k%02d" % (i % 12), "v%d" % i))
    ok(tc, srv.ctl("del", "k03"))
    ok(tc, srv.ctl("del", "--prefix", "k1"))
    for t in range(4):
        ops = "".join("put bulk/%d/%04d value-%d-%d\n" % (t, i, t, i) for i in range(100))
        ok(tc, srv.ctl("txn", input="\n" + ops + "\n\n"))
    r = ok(tc, srv.ctl("get", "k00", "-w", "json"))
    rev = json.loads(r.out)["header"]["revision"]
    ok(tc, srv.ctl("compaction", "--physical", str(rev - 2)))
    if big:
        ok(tc, srv.ctl("put", "big", input="x" * 200000))
    if lease:
        r = srv.ctl("lease", "grant", "600")
        if not r.ok and "Unimplemented" in (r.out + r.err):
            return None
        ok(tc, r)
        lid = r.out.split()[1]
        ok(tc, srv.ctl("put", "withlease", "lv", "--lease=" + lid))
        return lid
    return None


def restore(tc, snap, data_dir, name, peer_url):
    r = ctl_local("snapshot", "restore", snap, "--name", name, "--data-dir", data_dir,
                  "--initial-cluster", "%s=%s" % (name, peer_url),
                  "--initial-advertise-peer-urls", peer_url)
    ok(tc, r)
    for line in (r.out + r.err).splitlines():
        if '"added member"' in line:
            return json.loads(line)["added-peer-id"]
    tc.fail("no 'added member' line in restore output: %r" % r)


def member_id(srv):
    r = srv.ctl("member", "list", "-w", "json")
    assert r.ok, r
    return "%x" % json.loads(r.out)["members"][0]["ID"]


class Snapshot(unittest.TestCase):
    def server(self, binary=None, label=None, name="default"):
        s = harness.Server(binary=binary, label=label, name=name)
        self.addCleanup(s.close)
        return s

    def snap_path(self, srv, name="s.db"):
        return os.path.join(srv.root, name)

    def save(self, srv, name="s.db"):
        p = self.snap_path(srv, name)
        r = ok(self, srv.ctl("snapshot", "save", p, timeout=120))
        self.assertIn("Snapshot saved at", r.out + r.err)
        return p

    def status(self, path):
        r = ok(self, ctl_local("snapshot", "status", "-w", "json", path))
        return json.loads(r.out)

    def test_status_and_contents_match_etcd(self):
        sut = self.server(label="sut")
        ref = self.server(binary=harness.ETCD_BIN, label="etcd")
        harness.start_servers(sut, ref)
        write_workload(self, sut)
        write_workload(self, ref)
        ps, pr = self.save(sut), self.save(ref)
        ss, sr = self.status(ps), self.status(pr)
        self.assertEqual(ss["revision"], sr["revision"])
        self.assertEqual(ss["totalKey"], sr["totalKey"])
        self.assertEqual(ss["totalSize"] % 4096, 0)
        self.assertEqual(os.path.getsize(ps), ss["totalSize"] + 32)
        ds, dr = bbolt_dump(ps), bbolt_dump(pr)
        # our reading of the file is etcdctl's
        self.assertEqual(status_hash(ds), ss["hash"])
        self.assertEqual(status_hash(dr), sr["hash"])
        # same buckets and records, except the raft position and the member's URLs/id
        self.assertEqual(sorted(ds), sorted(dr))
        for b in dr:
            if b == "members":
                self.assertEqual(len(ds[b]), len(dr[b]))
                m = json.loads(ds[b][0][1])
                self.assertEqual(m["peerURLs"], [sut.peer_url])
                self.assertEqual(m["clientURLs"], [sut.client_url])
                self.assertEqual(ds[b][0][0].decode(), "%x" % m["id"])
                continue
            rs = [kv for kv in ds[b] if kv[0] != b"consistent_index"]
            rr = [kv for kv in dr[b] if kv[0] != b"consistent_index"]
            self.assertEqual(rs, rr, "bucket %s differs" % b)

    def test_cetcd_to_etcd(self):
        sut = self.server(label="sut")
        sut.start()
        lid = write_workload(self, sut, lease=True)
        before = keyspace(sut)
        snap = self.save(sut)
        # a second save gives the same image
        with open(snap, "rb") as f1, open(self.save(sut, "s2.db"), "rb") as f2:
            self.assertEqual(f1.read(), f2.read())
        etcd = self.server(binary=harness.ETCD_BIN, label="etcd-restored", name="restored")
        shutil.rmtree(etcd.data_dir, ignore_errors=True)
        mid = restore(self, snap, etcd.data_dir, "restored", etcd.peer_url)
        etcd.start()
        self.assertEqual(keyspace(etcd), before)
        self.assertEqual(member_id(etcd), mid)
        if lid:
            r = ok(self, etcd.ctl("lease", "timetolive", lid, "--keys"))
            self.assertIn("withlease", r.out)
        # and it keeps going from the same revision
        ok(self, etcd.ctl("put", "after", "1"))
        self.assertEqual(keyspace(etcd)[0], before[0] + 1)
        r = etcd.ctl("get", "k00", "--rev=2")
        self.assertFalse(r.ok)
        self.assertIn("compacted", r.err)

    def _boot_sut_from(self, snap, before, lid=None):
        sut = self.server(label="sut-restored", name="restored")
        shutil.rmtree(sut.data_dir, ignore_errors=True)
        mid = restore(self, snap, sut.data_dir, "restored", sut.peer_url)
        sut.start()
        log = sut._current_log()
        self.assertIn("imported restored snapshot", log)
        self.assertEqual(keyspace(sut), before)
        self.assertEqual(member_id(sut), mid)
        self.assertTrue(os.path.exists(os.path.join(sut.data_dir, "member", "snap", "db.imported")))
        self.assertTrue(os.path.isdir(os.path.join(sut.data_dir, "member", "wal.etcd-restore")))
        # etcd's raft snap file is moved aside with its WAL, not taken for a broken cetcd one
        snaps = os.listdir(os.path.join(sut.data_dir, "member", "snap"))
        self.assertTrue([f for f in snaps if f.endswith(".snap.etcd-restore")], snaps)
        self.assertFalse([f for f in snaps if f.endswith((".snap", ".broken"))], snaps)
        self.assertNotIn("broken snap file", log)
        if lid:
            r = ok(self, sut.ctl("lease", "timetolive", lid, "--keys"))
            self.assertIn("withlease", r.out)
        ok(self, sut.ctl("put", "after", "1"))
        after = keyspace(sut)
        self.assertEqual(after[0], before[0] + 1)
        sut.restart()
        self.assertNotIn("imported restored snapshot", sut._current_log())
        self.assertEqual(keyspace(sut), after)
        return sut

    def test_etcd_to_cetcd(self):
        ref = self.server(binary=harness.ETCD_BIN, label="etcd")
        ref.start()
        lid = write_workload(self, ref, lease=True)
        before = keyspace(ref)
        snap = self.save(ref)
        self._boot_sut_from(snap, before, lid)

    def test_etcd_cluster_to_cetcd(self):
        """A snapshot of a 3-member etcd cluster: its db still lists the old members (etcd's
        restore deletes keys, not the `members` records), yet the restored member is a
        cluster of one, as etcd's own restored member is."""
        import cluster_harness
        c = cluster_harness.Cluster(harness.ETCD_BIN, 3)
        self.addCleanup(c.close)
        c.start()
        src = c.members[0]
        write_workload(self, src)
        before = keyspace(src)
        snapdir = tempfile.mkdtemp(prefix="cetcd-cluster-snap-")
        self.addCleanup(shutil.rmtree, snapdir, True)
        snap = os.path.join(snapdir, "cluster.db")
        ok(self, src.ctl("snapshot", "save", snap, timeout=120))
        c.close()
        self.assertEqual(len(bbolt_dump(snap)["members"]), 3)
        sut = self._boot_sut_from(snap, before)
        r = ok(self, sut.ctl("member", "list"))
        self.assertEqual(len(r.out.strip().splitlines()), 1, r.out)

    def test_cetcd_to_cetcd(self):
        sut = self.server(label="sut")
        sut.start()
        lid = write_workload(self, sut, lease=True)
        before = keyspace(sut)
        snap = self.save(sut)
        sut.stop()
        self._boot_sut_from(snap, before, lid)

    def test_large_snapshot(self):
        """Many chunks (backpressure), status agrees with the data."""
        sut = self.server(label="sut")
        sut.start()
        for i in range(40):
            ok(self, sut.ctl("put", "large/%02d" % i, input=("%02d" % i) * 250000))
        snap = self.save(sut)
        st = self.status(snap)
        self.assertGreater(st["totalSize"], 20 * 1000 * 1000)
        self.assertEqual(st["revision"], 41)
        d = bbolt_dump(snap)
        self.assertEqual(len(d["key"]), 40)

    def test_corrupt(self):
        sut = self.server(label="sut")
        sut.start()
        ok(self, sut.ctl("put", "a", "1"))
        snap = self.save(sut)
        with open(snap, "rb") as f:
            good = f.read()
        # damaged start: the sha256 check of restore catches it
        bad = self.snap_path(sut, "bad.db")
        with open(bad, "wb") as f:
            f.write(bytes(512) + good[512:])
        r = ctl_local("snapshot", "restore", bad, "--data-dir", os.path.join(sut.root, "r1"))
        self.assertFalse(r.ok)
        self.assertIn("expected sha256", r.out + r.err)
        # both meta pages gone: status fails
        with open(bad, "wb") as f:
            f.write(bytes(8192) + good[8192:])
        r = ctl_local("snapshot", "status", bad)
        self.assertFalse(r.ok, r)
        # a corrupt restored db: the server refuses to start and says why
        restored = self.server(label="sut-corrupt", name="restored")
        shutil.rmtree(restored.data_dir, ignore_errors=True)
        restore(self, snap, restored.data_dir, "restored", restored.peer_url)
        db = os.path.join(restored.data_dir, "member", "snap", "db")
        with open(db, "r+b") as f:
            f.write(bytes(8192))
        with self.assertRaises(AssertionError):
            restored.start(timeout=5)
        log = restored._current_log()
        self.assertIn("no valid meta page", log)
        self.assertFalse(os.path.exists(os.path.join(restored.data_dir, "member", "snap", "data.mdb")))


if __name__ == "__main__":
    harness.run_tests()
