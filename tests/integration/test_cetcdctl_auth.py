#!/usr/bin/python3
"""cetcdctl auth, user and role commands and --user/--password, side by side with etcdctl.

One etcd 3.4 and one cetcd; the same command sequence runs through Debian's etcdctl and
through cetcdctl against each server (the sequence ends in the state it started from), and
the four masked transcripts (stdout, stderr, exit status of every command, in every output
format) must be equal. `auth status` (etcd 3.5's RPC, which etcd 3.4 lacks and cetcd has)
is checked on its own.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_cetcdctl as tc  # noqa: E402

FORMATS = tc.FORMATS
ROOT = ["--user", "root:rootpw"]


def sequence():
    """(args, stdin) of every command, in order; the last ones undo the first ones."""
    s = [
        (["role", "add", "root"], None),
        (["user", "add", "root", "--new-user-password=rootpw"], None),
        (["user", "grant-role", "root", "root"], None),
        (["user", "add", "alice:alicepw"], None),
        (["user", "add", "bob", "--interactive=false"], "bobpw\n"),
        (["user", "add", "carol", "--no-password"], None),
        (["user", "add", "root", "--new-user-password=x"], None),  # already exists
        (["user", "add", ":pw"], None),  # empty user name
        (["user", "add"], None),  # usage error
        (["role", "add", "r1"], None),
        (["role", "add", "r1"], None),  # already exists
        (["role", "grant-permission", "r1", "readwrite", "a/", "--prefix"], None),
        (["role", "grant-permission", "r1", "read", "k"], None),
        (["role", "grant-permission", "r1", "write", "x", "y"], None),
        (["role", "grant-permission", "r1", "READ", "f", "--from-key"], None),
        (["role", "grant-permission", "r1", "read", "", "--prefix"], None),
        (["role", "grant-permission", "r1", "bogus", "k"], None),
        (["role", "grant-permission", "r1", "read", "k", "--prefix", "--from-key"], None),
        (["role", "grant-permission", "r1", "read", "k", "e", "--prefix"], None),
        (["role", "grant-permission", "r1", "read", "k", "e", "--from-key"], None),
        (["role", "grant-permission", "r1", "read"], None),
        (["role", "grant-permission", "nope", "read", "k"], None),
        (["user", "grant-role", "alice", "r1"], None),
        (["user", "grant-role", "alice", "nope"], None),
        (["user", "get", "alice", "--detail"], None),
        (["user", "get", "nobody"], None),
        (["role", "get", "nope"], None),
    ]
    for w in FORMATS:
        s += [(["role", "get", "r1", "-w", w], None), (["role", "list", "-w", w], None),
              (["user", "get", "alice", "-w", w], None), (["user", "list", "-w", w], None),
              (["role", "add", "t-" + w, "-w", w], None),
              (["role", "grant-permission", "t-" + w, "read", "q", "-w", w], None),
              (["role", "revoke-permission", "t-" + w, "q", "-w", w], None),
              (["user", "add", "u-" + w, "--new-user-password=p", "-w", w], None),
              (["user", "grant-role", "u-" + w, "t-" + w, "-w", w], None),
              (["user", "revoke-role", "u-" + w, "t-" + w, "-w", w], None),
              (["user", "passwd", "u-" + w, "--interactive=false", "-w", w], "p2"),
              (["user", "delete", "u-" + w, "-w", w], None),
              (["role", "delete", "t-" + w, "-w", w], None)]
    s += [
        (["user", "passwd", "bob", "--interactive=false"], "newpw"),
        (["auth", "enable"], None),
        (["auth", "enable", "extra"], None),
        # logged in, and refused
        (ROOT + ["user", "list"], None),
        (["--user", "alice", "--password", "alicepw", "put", "a/1", "v"], None),
        (["--user", "alice:alicepw", "get", "a/1"], None),
        (["--user", "alice:alicepw", "put", "b/1", "v"], None),
        (["--user", "alice:alicepw", "user", "list"], None),
        (["--user", "alice:wrong", "get", "a/1"], None),
        (["--user", "bob:bobpw", "get", "a/1"], None),
        (["--user", "bob:newpw", "get", "a/1"], None),
        (["put", "a/2", "v"], None),
        (ROOT + ["role", "get", "r1", "-w", "json"], None),
        (ROOT + ["del", "a/1"], None),
        (ROOT + ["auth", "disable"], None),
        (["auth", "disable"], None),
        # revoke what was granted, then remove everyone
        (["role", "revoke-permission", "r1", "k"], None),
        (["role", "revoke-permission", "r1", "x", "y"], None),
        (["role", "revoke-permission", "r1", "f", "--from-key"], None),
        (["role", "revoke-permission", "r1", "a/", "--prefix"], None),
        (["role", "revoke-permission", "r1", "", "--prefix"], None),
        (["role", "revoke-permission", "r1", "nope"], None),
        (["role", "revoke-permission", "r1"], None),
        (["user", "revoke-role", "alice", "r1"], None),
        (["user", "revoke-role", "alice", "r1"], None),
    ]
    for u in ("alice", "bob", "carol", "root"):
        s.append((["user", "delete", u], None))
    s += [(["user", "delete", "alice"], None), (["role", "delete", "r1"], None),
          (["role", "delete", "root"], None), (["role", "delete", "r1"], None),
          (["user", "list"], None), (["role", "list", "-w", "json"], None)]
    return s


class CetcdctlAuth(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.assertTrue(os.path.exists(tc.CETCDCTL_BIN), "cetcdctl not built: %s" % tc.CETCDCTL_BIN)
        self.assertTrue(os.path.exists(harness.ETCDCTL_BIN), "etcdctl missing: %s" % harness.ETCDCTL_BIN)
        self.srv = harness.Server(binary="/usr/bin/etcd", label="etcd")
        self.cetcd = harness.Server(label="cetcd")
        harness.start_servers(self.srv, self.cetcd)

    def tearDown(self):
        self.srv.close()
        self.cetcd.close()

    def transcript(self, binary, srv=None):
        out = []
        for args, stdin in sequence():
            r = tc.run(binary, srv or self.srv, args, input=stdin)
            digits = "-w" in args and args[args.index("-w") + 1] in ("json", "fields")
            out.append("$ %s\nrc=%s\n%s\n[stderr]\n%s" % (" ".join(args), r.rc, tc.normalize(r.out, digits),
                                                          tc.normalize(r.err, digits)))
        return "\n".join(out) + "\n"

    def test_sequence_matches_etcdctl(self):
        theirs = self.transcript(harness.ETCDCTL_BIN)
        ours = self.transcript(tc.CETCDCTL_BIN)
        harness.assert_same(self, theirs, ours, "etcdctl", "cetcdctl")
        on_cetcd = self.transcript(harness.ETCDCTL_BIN, self.cetcd)
        harness.assert_same(self, theirs, on_cetcd, "etcdctl against etcd", "etcdctl against cetcd")
        both_ours = self.transcript(tc.CETCDCTL_BIN, self.cetcd)
        harness.assert_same(self, theirs, both_ours, "etcdctl against etcd", "cetcdctl against cetcd")
        # the transcript really exercised the server: logins worked and were refused
        self.assertIn("$ --user alice:alicepw get a/1\nrc=0\na/1\nv\n", ours)
        self.assertIn("etcdserver: permission denied", ours)
        self.assertIn("etcdserver: authentication failed, invalid user ID or password", ours)

    def test_auth_status_needs_etcd_35(self):
        # etcd 3.4 has no AuthStatus RPC: cetcdctl reports the server's Unimplemented answer
        r = tc.run(tc.CETCDCTL_BIN, self.srv, ["auth", "status"])
        self.assertEqual(r.rc, 1, r)
        self.assertIn("unknown method AuthStatus", r.err)
        r = tc.run(tc.CETCDCTL_BIN, self.cetcd, ["auth", "status"])  # cetcd answers it
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Authentication Status: false", r.out)


if __name__ == "__main__":
    harness.run_tests()
