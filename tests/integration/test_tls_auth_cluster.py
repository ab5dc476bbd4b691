#!/usr/bin/env python3
"""Auth in a TLS cluster (issue 10): 3 members with https client URLs and https peer URLs
(one CA, --peer-client-cert-auth), auth enabled, side by side with real etcd 3.4 (the same
certificates, flags and steps; masked transcripts compared).

test_auth_survives_cluster_events, on each cluster:
- root and u1 (role r1: readwrite on the /p/ prefix) are set up through one member; u1
  writes through that member and reads through another; a write outside /p/ is refused.
- a client that authenticated on a follower keeps its token; the leader is killed
  (SIGKILL), the others elect a new one, the token still reads and is still refused outside
  /p/, the password still works, and the killed member restarts and serves u1.
- every member is stopped (SIGTERM) and started again: users, roles and keys survive.
- `etcdctl snapshot save` (as root over TLS) from the cluster is restored with `etcdctl
  snapshot restore` into a single member of the other kind (https client and peer URLs),
  which must enforce the same auth: the cetcd cluster's snapshot in etcd, and the etcd
  cluster's snapshot in cetcd. (The etcd cluster's db still lists its three members: etcd
  3.4's restore deletes mvcc keys instead of the `members` records; cetcd ignores those
  records when it imports a restored db and takes --initial-cluster, as etcd does.)
Every wait is bounded."""

import json
import os
import shutil
import tempfile
import time
import unittest

import cluster_harness as ch
import harness
from test_auth import ROOT, U1
from test_tls import Pki

SETUP = [
    ("user", "add", "root:rootpw"),
    ("role", "add", "root"),
    ("user", "grant-role", "root", "root"),
    ROOT + ("user", "add", "u1:p1"),
    ROOT + ("role", "add", "r1"),
    ROOT + ("role", "grant-permission", "r1", "readwrite", "/p/", "--prefix"),
    ROOT + ("user", "grant-role", "u1", "r1"),
    ("auth", "enable"),
]
SHORT = ["--command-timeout=3s"]


class HttpsUrls:
    """Mixin for a server whose client and peer URLs are https; etcdctl verifies self.ca."""

    @property
    def client_url(self):
        return "https://127.0.0.1:%d" % self.client_port

    @property
    def peer_url(self):
        return "https://127.0.0.1:%d" % self.peer_port

    def ctl(self, *args, input=None, timeout=20, binary=False, extra=()):
        return harness.etcdctl([self.client_url], *args, input=input, timeout=timeout, binary=binary,
                               extra=["--cacert", self.ca] + list(extra))


class TlsMember(HttpsUrls, ch.Member):
    """A cluster member whose client and peer URLs are https."""

    @property
    def ca(self):
        return self.cluster.ca


class TlsSingle(HttpsUrls, harness.Server):
    """A single server with an https client URL, verified against ca."""

    def __init__(self, binary, ca, cert, key, label):
        super().__init__(binary=binary, name="restored", label=label,
                         extra_args=["--cert-file", cert, "--key-file", key, "--peer-cert-file", cert,
                                     "--peer-key-file", key, "--peer-trusted-ca-file", ca,
                                     "--peer-client-cert-auth"])
        self.ca = ca


def tls_cluster(binary, pki, certs):
    """3 members, https client and peer URLs, each with its own certificate from pki."""
    c = ch.Cluster(binary, 3, extra_args=["--peer-trusted-ca-file", pki.ca_pem, "--peer-client-cert-auth"])
    c.ca = pki.ca_pem
    for m, (cert, key) in zip(c.members, certs):
        m.__class__ = TlsMember
        m.more_args = ["--cert-file", cert, "--key-file", key, "--peer-cert-file", cert, "--peer-key-file", key]
    ic = c.initial_cluster_string(c.members)
    for m in c.members:
        m.initial_cluster = ic
    return c


def leader(c, members):
    """The member every one of members names as leader (over TLS), or None."""
    r = harness.etcdctl([m.client_url for m in members], "endpoint", "status", "-w", "json", timeout=10,
                        extra=["--cacert", c.ca] + SHORT)
    if not r.ok:
        return None
    st = json.loads(r.out)
    leaders = {int(s["Status"].get("leader", 0)) for s in st}
    if len(st) != len(members) or len(leaders) != 1 or 0 in leaders:
        return None
    lid = leaders.pop()
    return next((m for m in members if m.id == lid), None)


def retry(fn, tries=60, step=0.2):
    """fn() until its CtlResult is ok (bounded); returns the last result."""
    r = None
    deadline = time.monotonic() + tries * step + 30
    for _ in range(tries):
        r = fn()
        if r.ok or time.monotonic() > deadline:
            break
        time.sleep(step)
    return r


def rpc_error(fn):
    """Runs fn; returns 'ok: <result>' or the gRPC error's details."""
    try:
        return "ok: %s" % (fn(),)
    except Exception as e:  # grpc.RpcError, or python-etcd3's translation of it
        details = getattr(e, "details", None) or getattr(e.__context__, "details", None)
        return "error: %s" % (details() if details else type(e).__name__)


class TestTlsAuthCluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="cetcd-tls-auth-cluster-")
        cls.pki = Pki(cls.dir, "ca")
        cls.certs = [cls.pki.leaf("member%d" % i, "member") for i in range(3)]
        cls.single = cls.pki.leaf("single", "single")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def step(self, out, label, r):
        """Appends a masked transcript entry for one etcdctl result."""
        out.append(harness.transcript([(label, r)]))

    def scenario(self, binary, restore_binary):
        """Runs the whole scenario on a cluster of binary; restores its snapshot into a
        single member of restore_binary."""
        out = []
        with tls_cluster(binary, self.pki, self.certs) as c:
            harness.start_servers(*c.members)
            self.assertTrue(ch.until(lambda: leader(c, c.members), timeout=20), "%s: no leader" % c.label)
            m0, m1, m2 = c.members
            for st in SETUP:
                r = m0.ctl(*st)
                self.assertTrue(r.ok, (c.label, r))
            self.step(out, "u1 put /p/a via m0", m0.ctl(*U1, "put", "/p/a", "1"))
            self.step(out, "u1 get /p/a via m1", retry(lambda: m1.ctl(*U1, "get", "/p/a", extra=SHORT)))
            self.step(out, "u1 put /q outside the prefix", m1.ctl(*U1, "put", "/q", "1", extra=SHORT))
            self.step(out, "no user", m2.ctl("get", "/p/a", extra=SHORT))

            # 2. the leader dies; a follower's token and the password keep working
            old = leader(c, c.members)
            self.assertIsNotNone(old, c.label)
            survivors = [m for m in c.members if m is not old]
            import etcd3
            cli = etcd3.client(host="127.0.0.1", port=survivors[0].client_port, ca_cert=c.ca, user="u1",
                               password="p1", timeout=5)
            try:
                out.append("token get before the kill: %s" % rpc_error(lambda: cli.get("/p/a")[0]))
                old.kill9()
                new = ch.until(lambda: leader(c, survivors), timeout=20)
                out.append("new leader elected: %s" % (new is not None and new is not old))
                got = None
                for _ in range(50):  # the first request may meet the election's aftermath
                    got = rpc_error(lambda: cli.get("/p/a")[0])
                    if got.startswith("ok"):
                        break
                    time.sleep(0.2)
                out.append("token get after the kill: %s" % got)
                out.append("token put /q after the kill: %s" % rpc_error(lambda: cli.put("/q", "2")))
            finally:
                cli.close()
            self.step(out, "u1 put /p/b after the kill",
                      retry(lambda: survivors[1].ctl(*U1, "put", "/p/b", "2", extra=SHORT)))
            self.step(out, "u1 put /q after the kill", survivors[1].ctl(*U1, "put", "/q", "2", extra=SHORT))
            old.start()
            self.step(out, "u1 get /p/ on the restarted member",
                      retry(lambda: old.ctl(*U1, "get", "/p/", "--prefix", extra=SHORT)))
            self.step(out, "wrong password on the restarted member",
                      old.ctl("--user", "u1:bad", "get", "/p/a", extra=SHORT))

            # 3. every member stops (SIGTERM) and starts again
            for m in c.members:
                m.stop()
            harness.start_servers(*c.members)
            self.assertTrue(ch.until(lambda: leader(c, c.members), timeout=20), "%s: no leader" % c.label)
            self.step(out, "root user list after the restart", retry(lambda: m2.ctl(*ROOT, "user", "list")))
            self.step(out, "root role get r1", m1.ctl(*ROOT, "role", "get", "r1"))
            self.step(out, "u1 get /p/ after the restart",
                      retry(lambda: m0.ctl(*U1, "get", "/p/", "--prefix", extra=SHORT)))
            self.step(out, "u1 put /q after the restart", m2.ctl(*U1, "put", "/q", "3", extra=SHORT))
            self.step(out, "root get /q", m0.ctl(*ROOT, "get", "/q"))

            # 4. snapshot from this cluster, restored into a single member of the other kind
            snap = os.path.join(self.dir, "snap-%s.db" % c.label)
            r = m1.ctl(*ROOT, "snapshot", "save", snap)
            self.assertTrue(r.ok, (c.label, r))
            out.append("snapshot saved as root over TLS: %s" % os.path.isfile(snap))
        # the cluster is stopped first: the restored member must not reach its old peers
        cert, key = self.single
        with TlsSingle(restore_binary, self.pki.ca_pem, cert, key, "restored") as dst:
            p = harness.snapshot_restore(snap, dst)
            self.assertEqual(p.returncode, 0, p.stderr)
            dst.start()
            self.step(out, "restored: root user list", dst.ctl(*ROOT, "user", "list"))
            self.step(out, "restored: u1 get /p/", dst.ctl(*U1, "get", "/p/", "--prefix", extra=SHORT))
            self.step(out, "restored: u1 put /p/c", dst.ctl(*U1, "put", "/p/c", "4", extra=SHORT))
            self.step(out, "restored: u1 put /q", dst.ctl(*U1, "put", "/q", "4", extra=SHORT))
            self.step(out, "restored: wrong password", dst.ctl("--user", "u1:bad", "get", "/p/a", extra=SHORT))
        return "\n".join(out)

    def test_auth_survives_cluster_events(self):
        t0 = time.monotonic()
        want = self.scenario(harness.ETCD_BIN, harness.cetcd_bin())
        t1 = time.monotonic()
        got = self.scenario(harness.cetcd_bin(), harness.ETCD_BIN)
        print("\netcd cluster (restored into cetcd): %.1fs, cetcd cluster (restored into etcd): %.1fs"
              % (t1 - t0, time.monotonic() - t1))
        harness.assert_same(self, want, got, "etcd", "cetcd")
        for line in ("u1 get /p/a via m1\nrc=0\n/p/a\n1",
                     "u1 put /q outside the prefix\nrc=1\n",
                     "token get after the kill: ok: b'1'",
                     "token put /q after the kill: error: etcdserver: permission denied",
                     "u1 put /q after the kill\nrc=1\n",
                     "u1 get /p/ on the restarted member\nrc=0\n/p/a\n1\n/p/b\n2",
                     "root user list after the restart\nrc=0\nroot\nu1",
                     "u1 get /p/ after the restart\nrc=0\n/p/a\n1\n/p/b\n2",
                     "u1 put /q after the restart\nrc=1\n",
                     "$ root get /q\nrc=0\n\n\nsnapshot saved as root over TLS: True",
                     "restored: u1 get /p/\nrc=0\n/p/a\n1\n/p/b\n2",
                     "restored: u1 put /p/c\nrc=0\nOK",
                     "restored: u1 put /q\nrc=1\n",
                     "Error: etcdserver: authentication failed, invalid user ID or password"):
            self.assertIn(line, got)
        self.assertEqual(got.count("Error: etcdserver: permission denied"), 4, got)

if __name__ == "__main__":
    harness.run_tests()
