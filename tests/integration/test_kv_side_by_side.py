#!/usr/bin/python3
"""Side by side: the same etcdctl scenarios against real etcd 3.4 and the server under test.

Each test method starts a fresh pair of servers (in parallel), runs one scenario on each,
masks run-specific values (ids, terms, sizes, versions, ports, timings) and asserts the two
transcripts are equal; a mismatch fails with a unified diff (etcd = expected).
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import mask, pb_decode  # noqa: E402

MAX_TXN_OPS = 128  # etcd's default


def mask_protobuf(raw):
    """Render etcdctl's `-w protobuf` output with the response header's ids/term dropped."""
    try:
        fields = pb_decode(raw)
    except ValueError as e:
        return "<undecodable protobuf: %s> %r" % (e, raw)
    out = []
    for f, wt, v in fields:
        if f == 1 and wt == 2:  # ResponseHeader: keep only revision (3)
            hdr = [(hf, hv) for hf, hwt, hv in pb_decode(v) if hf == 3]
            out.append("header%r" % (hdr,))
        else:
            out.append("%d:%r" % (f, v))
    return " ".join(out)


class SideBySide(unittest.TestCase):
    def setUp(self):
        self.ref = harness.Server(binary=harness.ETCD_BIN, label="etcd")
        self.sut = harness.Server(label="sut")
        self.addCleanup(self.sut.close)
        self.addCleanup(self.ref.close)
        harness.start_servers(self.ref, self.sut)
        self.steps = []  # (label, kwargs) in order

    # -- scenario helpers ------------------------------------------------------------------
    def run_both(self, steps):
        """steps: list of (args tuple, stdin or None[, 'pb']). Returns (ref_text, sut_text)."""
        texts = []
        for srv in (self.ref, self.sut):
            parts = []
            for st in steps:
                args, stdin = st[0], st[1]
                pb = len(st) > 2 and st[2] == "pb"
                r = srv.ctl(*args, input=stdin, binary=pb)
                label = " ".join(a if len(a) < 60 else a[:20] + "...(%d bytes)" % len(a) for a in args)
                if stdin is not None:
                    label += "  <<< %r" % (stdin if len(stdin) < 200 else stdin[:60] + "...(%d bytes)" % len(stdin))
                body = mask_protobuf(r.out) if pb else mask(r.out)
                parts.append("$ etcdctl %s\nrc=%s\n%s\n[stderr] %s\n" % (label, r.rc, body, mask(r.err)))
            texts.append("".join(parts))
        return texts

    def check(self, steps):
        ref, sut = self.run_both(steps)
        if os.environ.get("CETCD_TEST_VERBOSE"):
            print("\n==== %s (etcd, masked) ====\n%s" % (self.id(), ref))
        harness.assert_same(self, ref, sut)
        return ref

    # -- scenarios -------------------------------------------------------------------------
    def test_put(self):
        self.check([
            (("put", "foo", "bar"), None),
            (("put", "foo", "baz", "--prev-kv"), None),
            (("put", "new", "v", "--prev-kv"), None),
            (("put", "foo", "--ignore-value"), None),          # keeps baz, bumps version
            (("put", "missing", "--ignore-value"), None),      # key not found
            (("put", "missing", "v", "--ignore-lease"), None),  # key not found
            (("put", "foo", "x", "--ignore-lease"), None),
            (("put", "", "v"), None),                           # key is not provided
            (("put", "fromstdin"), "value\nwith newline"),
            (("put", "foo", "q", "-w", "json"), None),
            (("put", "foo", "r", "--prev-kv", "-w", "json"), None),
            (("get", "", "--from-key", "-w", "json"), None),
        ])

    def test_get(self):
        setup = [(("put", k, v), None) for k, v in
                 [("a", "9"), ("b", "8"), ("c", "7"), ("a", "6"), ("ab", "5"), ("abc", "4"),
                  ("b", "3"), ("d", "2"), ("b", "1"), ("zz\x01", "bin")]]
        steps = list(setup)
        steps += [
            (("get", "a"), None),
            (("get", "nothing"), None),
            (("get", "a", "--prefix"), None),
            (("get", "a", "c"), None),
            (("get", "b", "--from-key"), None),
            (("get", "", "--from-key", "--limit=3"), None),
            (("get", "", "--from-key", "--limit=3", "-w", "json"), None),
            (("get", "a", "--rev=2"), None),
            (("get", "a", "--rev=4", "-w", "json"), None),
            (("get", "a", "--prefix", "--keys-only"), None),
            (("get", "a", "--prefix", "--print-value-only"), None),
            (("get", "a", "--prefix", "--consistency=s"), None),
            (("get", "a", "--prefix", "--consistency=s", "-w", "json"), None),
            (("get", "a", "-w", "fields"), None),
            (("get", "a", "--prefix", "-w", "fields"), None),
            (("get", "a", "-w", "simple"), None),
            (("get", "a", "--prefix", "-w", "protobuf"), None, "pb"),
            (("get", "", "--from-key", "--hex"), None),
            (("get", "", "--from-key", "--limit=2", "--keys-only", "-w", "json"), None),
        ]
        for target in ("KEY", "VERSION", "CREATE", "MODIFY", "VALUE"):
            for order in ("ASCEND", "DESCEND"):
                steps.append((("get", "", "--from-key", "--sort-by=" + target, "--order=" + order), None))
            steps.append((("get", "", "--from-key", "--sort-by=" + target, "--limit=2", "-w", "json"), None))
        steps.append((("get", "", "--from-key", "--order=DESCEND"), None))
        self.check(steps)

    def test_del(self):
        steps = [(("put", k, "v" + k), None) for k in ("a", "a1", "a2", "b", "c", "d", "e")]
        steps += [
            (("del", "nothing"), None),
            (("get", "a", "-w", "json"), None),            # revision unchanged by the no-op delete
            (("del", "a1"), None),
            (("del", "a", "--prefix", "--prev-kv"), None),
            (("del", "b", "c"), None),                      # range [b, c)
            (("del", "d", "--from-key", "--prev-kv", "-w", "json"), None),
            (("del", "", "--from-key"), None),
            (("del", "", "--from-key"), None),
            (("get", "", "--from-key", "-w", "json"), None),
            (("put", "a", "again"), None),                  # new generation: version 1
            (("get", "a", "-w", "json"), None),
        ]
        self.check(steps)

    def test_txn(self):
        # etcdctl txn (non-interactive) reads: compares, blank line, success ops, blank line,
        # failure ops, blank line.
        steps = [(("put", "k1", "v1"), None), (("put", "k2", "v2"), None), (("put", "k1", "v1b"), None)]
        txns = [
            'value("k1") = "v1b"\nversion("k2") = "1"\n\nput k1 "new"\nget k2\n\nput k3 x\n\n',
            'value("k1") = "nope"\n\nput k1 "new2"\n\nput k3 x\ndel k2\nget k3\n\n',
            'create("k1") = "2"\nmod("k1") > "3"\n\nget k1\n\n\n',
            'create("k3") > "100"\n\n\nput k4 v4\n\n',
            'version("k1") < "10"\nmod("k4") != "0"\n\nget k --prefix\ndel k1\n\n\n',
            'value("k2") > "a"\n\nput k5 5\n\n\n',
            'version("zz") = "0"\n\nput zz created\n\nget zz\n\n',
            'version("zz") = "0"\n\nput zz created\n\nget zz\n\n',
            '\nget k --prefix\n\n\n',         # read-only txn: no revision
            '\ndel nothing-here\n\n\n',         # deletes nothing: no revision
            'mod("k4") = "5"\n\nput k5 a\nput k6 b\ndel k4\n\n\n',
        ]
        for t in txns:
            steps.append((("txn",), t))
            steps.append((("txn", "-w", "json"), t.replace("put ", "put j").replace("del ", "del j")))
            steps.append((("get", "", "--from-key", "-w", "json"), None))
        steps.append((("txn",), 'value("k1") = "v1"\n'))  # no terminating blank lines: EOF error
        self.check(steps)

    def test_txn_errors(self):
        many = "\n" + "".join("put t%03d v\n" % i for i in range(MAX_TXN_OPS + 1)) + "\n\n"
        exact = "\n" + "".join("put t%03d v\n" % i for i in range(MAX_TXN_OPS)) + "\n\n"
        self.check([
            (("txn",), many),                                   # too many operations
            (("txn",), exact),                                  # exactly the limit: fine
            (("txn",), "\nput d 1\nput d 2\n\n\n"),             # duplicate key given
            (("txn",), "\nput d 1\ndel d\n\n\n"),               # duplicate key (put + del)
            (("txn",), "\nput d 1\nget d\n\n\n"),               # put + get is allowed
            (("txn",), "\nput \"\" 1\n\n\n"),                   # empty key
            (("get", "", "--from-key", "--limit=1", "-w", "json"), None),
        ])

    def test_request_too_large(self):
        big = "x" * (1600 * 1024)     # > 1.5 MiB (--max-request-bytes default) < 2 MiB grpc limit
        self.check([
            (("put", "big"), big),
            (("put", "small", "ok"), None),
            (("get", "big"), None),
            (("txn",), "\nput big " + "y" * (1600 * 1024) + "\n\n\n"),
            (("get", "small", "-w", "json"), None),
        ])

    def test_compaction(self):
        steps = [(("put", "k", "v%d" % i), None) for i in range(1, 8)]
        steps += [
            (("compaction", "3"), None),
            (("get", "k", "--rev=2"), None),       # compacted
            (("get", "k", "--rev=3"), None),       # the compaction revision itself is readable
            (("get", "k", "--rev=5", "-w", "json"), None),
            (("get", "k", "--rev=100"), None),     # future revision
            (("compaction", "2"), None),           # already compacted
            (("compaction", "3"), None),
            (("compaction", "100"), None),         # future
            (("compaction", "--physical", "6"), None),
            (("get", "k", "--rev=5"), None),
            (("get", "k", "--rev=6"), None),
            (("get", "k", "-w", "json"), None),
            (("txn",), 'mod("k") > "0"\n\nget k\n\n\n'),
        ]
        self.check(steps)

    def test_endpoint_and_member(self):
        self.check([
            (("put", "a", "1"), None),
            (("endpoint", "status"), None),
            (("endpoint", "status", "-w", "json"), None),
            (("endpoint", "status", "-w", "fields"), None),
            (("endpoint", "health"), None),
            (("endpoint", "health", "-w", "json"), None),
            (("endpoint", "hashkv", "-w", "json"), None),   # hash masked here, see test_hashkv
            (("member", "list"), None),
            (("member", "list", "-w", "json"), None),
            (("member", "list", "-w", "fields"), None),
        ])

    def test_hashkv_values(self):
        """The HashKV values themselves match etcd's (same hashing of the same history)."""
        ops = [("put", "a", "1"), ("put", "b", "2"), ("put", "a", "3"), ("del", "b"),
               ("put", "c", "4"), ("compaction", "3"), ("put", "d", "5")]
        hashes = {}
        for label, srv in (("etcd", self.ref), ("sut", self.sut)):
            seq = []
            for op in ops:
                r = srv.ctl(*op)
                self.assertEqual(r.rc, 0, r)
                h = srv.ctl("endpoint", "hashkv")
                self.assertEqual(h.rc, 0, h)
                seq.append((op, h.out.strip().split(", ")[-1]))
            hashes[label] = seq
        # hash at an explicit revision too
        self.assertEqual(hashes["etcd"], hashes["sut"],
                         "\n".join("%-28s etcd=%s sut=%s" % (" ".join(a[0]), a[1], b[1])
                                   for a, b in zip(hashes["etcd"], hashes["sut"])))

    def test_range_options_grpc(self):
        """count_only, min/max mod/create revision: options etcdctl 3.4 cannot send."""
        import etcd3.etcdrpc as rpc
        setup = [("a", "1"), ("b", "2"), ("c", "3"), ("a", "4"), ("d", "5"), ("b", "6")]
        reqs = [
            dict(key=b"\0", range_end=b"\0", count_only=True),
            dict(key=b"a", range_end=b"z", count_only=True, limit=1),
            dict(key=b"a", range_end=b"z", limit=2),
            dict(key=b"a", range_end=b"z", keys_only=True),
            dict(key=b"a", range_end=b"z", min_mod_revision=5),
            dict(key=b"a", range_end=b"z", max_mod_revision=4),
            dict(key=b"a", range_end=b"z", min_create_revision=3, max_create_revision=4),
            dict(key=b"a", range_end=b"z", sort_target=rpc.RangeRequest.CREATE,
                 sort_order=rpc.RangeRequest.DESCEND, limit=1, max_create_revision=4),
            dict(key=b"a", range_end=b"z", revision=3, min_mod_revision=3),
            dict(key=b"a", range_end=b"z", serializable=True, count_only=True),
            dict(key=b"a", range_end=b"z", sort_target=rpc.RangeRequest.VALUE),   # order NONE + target
        ]
        texts = []
        for srv in (self.ref, self.sut):
            c = srv.etcd3_client()
            try:
                for k, v in setup:
                    c.put(k, v)
                lines = []
                for rq in reqs:
                    resp = c.kvstub.Range(rpc.RangeRequest(**rq), timeout=5)
                    resp.header.cluster_id = resp.header.member_id = resp.header.raft_term = 0
                    lines.append("%r\n%s" % (rq, resp))
                texts.append("\n".join(lines))
            finally:
                c.close()
        harness.assert_same(self, texts[0], texts[1])


if __name__ == "__main__":
    harness.run_tests()
