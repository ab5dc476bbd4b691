#!/usr/bin/python3
"""Leases, side by side with real etcd 3.4: etcdctl lease grant / timetolive / list /
keep-alive / revoke, puts with a lease, expiry, leases across a restart, and the errors for
unknown leases. Outputs are compared after masking run-specific values (lease ids, cluster
ids, terms); timing-dependent checks assert the same property on both servers.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import mask  # noqa: E402

GRANT_RE = re.compile(r"^lease ([0-9a-f]+) granted with TTL\((\d+)s\)$")


def grant(srv, ttl):
    """etcdctl lease grant; returns the lease id as hex (etcdctl's spelling)."""
    r = srv.ctl("lease", "grant", str(ttl))
    assert r.ok, r
    m = GRANT_RE.match(r.out.strip())
    assert m, r.out
    return m.group(1)


ATTACHED_RE = re.compile(r"attached keys\(\[([^\]]*)\]\)")
JSON_KEYS_RE = re.compile(r'"keys":\[([^\]]*)\]')


def sort_attached_keys(text):
    """etcd lists a lease's keys in Go map order (random per call); sort both spellings
    (the simple "attached keys([a b])" and the JSON "keys":["..",".."]) so runs compare."""
    text = ATTACHED_RE.sub(lambda m: "attached keys([%s])" % " ".join(sorted(m.group(1).split())), text)
    return JSON_KEYS_RE.sub(lambda m: '"keys":[%s]' % ",".join(sorted(m.group(1).split(","))), text)


def mask_lease(text, lid):
    """mask() plus the lease id in decimal (JSON output) and hex, and key order sorted."""
    text = text.replace(str(int(lid, 16)), "<LEASE>").replace(lid, "<LEASE>")
    return mask(sort_attached_keys(text))


def rev_of(srv):
    r = srv.ctl("get", "nosuchkey-for-rev", "-w", "json")
    m = re.search(r'"revision":(\d+)', r.out)
    assert m, r
    return int(m.group(1))


def get_value(srv, key):
    r = srv.ctl("get", key, "--print-value-only")
    assert r.ok, r
    return r.out.strip() or None


def wait_gone(srv, key, limit):
    """Seconds until `key` disappears (polled every 100 ms), or None after `limit`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if get_value(srv, key) is None:
            return time.monotonic() - t0
        time.sleep(0.1)
    return None


class LeaseSideBySide(unittest.TestCase):
    def setUp(self):
        self.ref = harness.Server(binary=harness.ETCD_BIN, label="etcd")
        self.sut = harness.Server(label="sut")
        self.addCleanup(self.sut.close)
        self.addCleanup(self.ref.close)
        harness.start_servers(self.ref, self.sut)

    def both(self, fn):
        """Runs fn(server) on etcd and on the server under test concurrently."""
        out = {}

        def run(s):
            try:
                out[s.label] = fn(s)
            except BaseException as e:  # re-raised below
                out[s.label] = e
        ts = [threading.Thread(target=run, args=(s,)) for s in (self.ref, self.sut)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for s in (self.ref, self.sut):
            if isinstance(out[s.label], BaseException):
                raise out[s.label]
        return out[self.ref.label], out[self.sut.label]

    def transcript(self, srv, lid, steps):
        parts = []
        for args in steps:
            args = [a.replace("{id}", lid) for a in args]
            r = srv.ctl(*args)
            parts.append("$ etcdctl %s\nrc=%s\n%s\n[stderr] %s\n"
                         % (mask_lease(" ".join(args), lid), r.rc, mask_lease(r.out, lid), mask_lease(r.err, lid)))
        return "".join(parts)

    def check(self, ttl, steps):
        ref, sut = self.both(lambda s: self.transcript(s, grant(s, ttl), steps))
        if os.environ.get("CETCD_TEST_VERBOSE"):
            print("\n==== %s (etcd, masked) ====\n%s" % (self.id(), ref))
        harness.assert_same(self, ref, sut)

    # -- deterministic transcripts ---------------------------------------------------------
    def test_grant_put_ttl_list_revoke(self):
        self.check(100, [
            ("put", "--lease={id}", "foo", "bar"),
            ("put", "--lease={id}", "foo2", "bar2"),
            ("put", "plain", "x"),
            ("get", "foo", "-w", "json"),
            ("lease", "timetolive", "{id}"),
            ("lease", "timetolive", "{id}", "--keys"),
            ("lease", "timetolive", "{id}", "--keys", "-w", "json"),
            ("lease", "list"),
            ("lease", "keep-alive", "--once", "{id}"),
            ("put", "foo2", "moved"),                # overwrite without a lease: detached
            ("lease", "timetolive", "{id}", "--keys"),
            ("put", "foo", "--ignore-lease", "kept"),  # keeps the lease
            ("get", "foo", "-w", "json"),
            ("lease", "revoke", "{id}"),             # deletes foo: one revision
            ("get", "", "--from-key", "-w", "json"),
            ("lease", "list"),
            ("lease", "timetolive", "{id}"),
            ("lease", "keep-alive", "--once", "{id}"),
            ("lease", "revoke", "{id}"),
        ])

    def test_ttl_limits_and_unknown(self):
        self.check(1, [                              # raised to the minimum (2 s)
            ("lease", "timetolive", "{id}", "-w", "json"),
            ("lease", "grant", "0"),
            ("lease", "grant", "9000000001"),        # too large lease TTL
            ("lease", "timetolive", "1234"),
            ("lease", "timetolive", "1234", "-w", "json"),
            ("lease", "revoke", "1234"),
            ("lease", "keep-alive", "--once", "1234"),
            ("put", "--lease=1234", "k", "v"),
        ])

    def test_revoke_one_revision(self):
        def run(s):
            lid = grant(s, 60)
            for i in range(20):
                assert s.ctl("put", "--lease=" + lid, "k%02d" % i, "v").ok
            r0 = rev_of(s)
            assert s.ctl("lease", "revoke", lid).ok
            r1 = rev_of(s)
            def count(*extra):
                r = s.ctl("get", "k", "--prefix", "--keys-only", *extra)
                return len([ln for ln in r.out.splitlines() if ln.strip()])
            return r1 - r0, count(), count("--rev=%d" % r0)
        ref, sut = self.both(run)
        self.assertEqual(ref, (1, 0, 20))
        self.assertEqual(sut, ref)

    # -- timing ----------------------------------------------------------------------------
    def test_keep_alive_stream(self):
        def run(s):
            lid = grant(s, 3)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
            env["ETCDCTL_API"] = "3"
            p = subprocess.Popen([harness.ETCDCTL_BIN, "--endpoints=" + s.endpoint, "lease",
                                  "keep-alive", lid], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, env=env)
            time.sleep(4.5)  # past the TTL: only the keep-alives keep it
            os.kill(p.pid, signal.SIGKILL)
            out = p.communicate()[0].decode()
            lines = [ln for ln in out.splitlines() if "keepalived with TTL(3)" in ln]
            ttl = s.ctl("lease", "timetolive", lid).out
            return len(lines) >= 3, "remaining(" in ttl, mask_lease(lines[0] if lines else out, lid)
        ref, sut = self.both(run)
        self.assertEqual(ref, (True, True, "lease <LEASE> keepalived with TTL(3)"))
        self.assertEqual(sut, ref)

    def test_expiry(self):
        def run(s):
            out = []
            for ttl in (2, 3, 5):
                lid = grant(s, ttl)
                t0 = time.monotonic()
                assert s.ctl("put", "--lease=" + lid, "e%d" % ttl, "v").ok
                took = wait_gone(s, "e%d" % ttl, ttl + 3)
                if took is None:
                    out.append("ttl %d: key still there after %ds" % (ttl, ttl + 3))
                    continue
                took = time.monotonic() - t0
                out.append("ttl %d: gone %s, within ttl+1s %s" % (ttl, took > ttl - 0.5, took <= ttl + 1.0))
                out.append(mask_lease(s.ctl("lease", "timetolive", lid).out, lid))
            return out
        ref, sut = self.both(run)
        self.assertEqual(sut, ref)
        self.assertEqual(sut[0], "ttl 2: gone True, within ttl+1s True")

    def test_restart(self):
        def run(s):
            lid = grant(s, 5)
            assert s.ctl("put", "--lease=" + lid, "r", "v").ok
            long_id = grant(s, 300)
            assert s.ctl("put", "--lease=" + long_id, "stay", "v").ok
            s.restart()
            t0 = time.monotonic()
            listed = sorted(mask_lease(s.ctl("lease", "list").out, lid).replace(long_id, "<LONG>").splitlines())
            present = get_value(s, "r")
            ttl = s.ctl("lease", "timetolive", long_id, "--keys").out
            wait_gone(s, "r", 10)
            took = time.monotonic() - t0
            # renewed on start: the full TTL (plus at most the election timeout) again
            return (listed, present, 3.5 <= took <= 7.5,
                    mask_lease(ttl, long_id).replace("remaining(299s)", "remaining(300s)"),
                    get_value(s, "stay"))
        ref, sut = self.both(run)
        self.assertEqual(sut, ref)
        self.assertEqual(sut[1], "v")
        self.assertTrue(sut[2])


if __name__ == "__main__":
    harness.run_tests()
