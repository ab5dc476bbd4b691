#!/usr/bin/python3
"""Space quota, NOSPACE alarm, compaction + defragment recovery, auto-compaction and
/metrics: cetcd and real etcd side by side where their outputs are comparable.

Environment knob used here (cetcd only, tests only): CETCD_TEST_COMPACTOR_INTERVAL_MS
shortens revision-mode auto-compaction's 5-minute check interval."""

import json
import os
import re
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

QUOTA = 16 * 1024 * 1024
NOSPACE_MSG = "etcdserver: mvcc: database space exceeded"
VALUE_BYTES = 100 * 1000
KEYS = 5


def http_get(srv, path):
    """(status, body) of GET path on the client port."""
    try:
        with urllib.request.urlopen("%s%s" % (srv.client_url, path), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def status_json(srv):
    r = srv.ctl("endpoint", "status", "-w", "json")
    assert r.ok, r
    return json.loads(r.out)[0]["Status"]


def fill_until_nospace(srv):
    """Overwrites KEYS keys with big values until the quota refuses; returns the last
    acknowledged value of each key, each as a list of the values the key may hold: the put
    refused with NOSPACE may still be stored, because etcd's quota applier applies a put
    that was already in the log when the quota was crossed and then answers NOSPACE."""
    import grpc
    c = srv.etcd3_client(timeout=10)
    acked = {}
    try:
        for i in range(2000):
            k = "q/k%d" % (i % KEYS)
            v = (b"%06d" % i) + os.urandom(VALUE_BYTES - 6)
            try:
                c.put(k, v)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
                assert e.details() == NOSPACE_MSG, e.details()
                acked.setdefault(k, []).append(v)
                return acked
            except Exception as e:  # python-etcd3 wraps some errors
                assert NOSPACE_MSG in str(e), e
                acked.setdefault(k, []).append(v)
                return acked
            acked[k] = [v]
    finally:
        c.close()
    raise AssertionError("the quota was never reached")


def check_acked(tc, srv, acked):
    c = srv.etcd3_client(timeout=10)
    try:
        for k, vs in acked.items():
            got, _ = c.get(k)
            tc.assertIn(got, vs, "acknowledged value of %s lost" % k)
    finally:
        c.close()


def mask_ids(text):
    text = re.sub(r"memberID:\d+", "memberID:<ID>", harness.mask(text))
    return re.sub(r"compacted revision \d+", "compacted revision <REV>", text)  # fill sizes differ


class QuotaDefrag(unittest.TestCase):
    def _servers(self):
        """The server under test (cetcd) and, when it is not etcd itself, a real etcd."""
        sut = harness.Server(label="sut", extra_args=["--quota-backend-bytes=%d" % QUOTA,
                                                      "--auto-compaction-retention=0"])
        self.addCleanup(sut.close)
        servers = [sut]
        if not harness.testing_real_etcd():
            ref = harness.Server(binary=harness.ETCD_BIN, label="etcd",
                                 extra_args=["--quota-backend-bytes=%d" % QUOTA])
            self.addCleanup(ref.close)
            servers.append(ref)
        harness.start_servers(*servers)
        return servers

    def _scenario(self, srv):
        """Runs the whole NOSPACE scenario on srv; returns the comparable transcript."""
        acked = fill_until_nospace(srv)
        steps = []
        steps.append(("put foo bar", srv.ctl("put", "foo", "bar")))
        steps.append(("alarm list", srv.ctl("alarm", "list")))
        r = srv.ctl("endpoint", "status")
        steps.append(("endpoint status", r))
        self.assertIn("alarm:NOSPACE", r.out)
        code, body = http_get(srv, "/health")
        self.assertEqual((code, body.strip()), (503, '{"health":"false"}'))
        code, body = http_get(srv, "/health?exclude=NOSPACE")
        self.assertEqual(code, 200, body)
        # reads and deletes still work; Txn with a put and LeaseGrant are refused
        steps.append(("get q/k0 --keys-only", srv.ctl("get", "q/k0", "--keys-only")))
        steps.append(("txn put", srv.ctl("txn", input="\nput q/t 1\n\n")))
        steps.append(("lease grant", srv.ctl("lease", "grant", "60")))
        steps.append(("del q/k4", srv.ctl("del", "q/k4")))
        acked.pop("q/k4", None)
        # the alarm survives a restart
        srv.stop()
        srv.start()
        steps.append(("alarm list (restarted)", srv.ctl("alarm", "list")))
        # recovery: compact, defragment, disarm
        st = status_json(srv)
        rev = st["header"]["revision"]
        size_before = st["dbSize"]
        steps.append(("compaction", srv.ctl("compaction", str(rev))))
        steps.append(("defrag", srv.ctl("defrag")))
        size_after = status_json(srv)["dbSize"]
        self.assertLess(size_after, size_before // 4, "defrag did not shrink the file (%d -> %d)" %
                        (size_before, size_after))
        steps.append(("put still refused", srv.ctl("put", "foo", "bar")))
        steps.append(("alarm disarm", srv.ctl("alarm", "disarm")))
        steps.append(("alarm list (disarmed)", srv.ctl("alarm", "list")))
        steps.append(("put foo bar", srv.ctl("put", "foo", "bar")))
        self.assertEqual(http_get(srv, "/health"), (200, '{"health":"true"}'))
        check_acked(self, srv, acked)
        srv.stop()
        srv.start()
        check_acked(self, srv, acked)
        steps.append(("get foo (restarted)", srv.ctl("get", "foo")))
        steps.append(("alarm list (restarted)", srv.ctl("alarm", "list")))
        return mask_ids(harness.transcript(steps))

    def test_nospace_recovery(self):
        servers = self._servers()
        outs = [self._scenario(s) for s in servers]
        self.assertIn(NOSPACE_MSG, outs[0])
        self.assertIn("memberID:<ID> alarm:NOSPACE", outs[0])
        if len(outs) > 1:
            harness.assert_same(self, outs[1], outs[0])


class AutoCompaction(unittest.TestCase):
    def test_revision_mode(self):
        os.environ["CETCD_TEST_COMPACTOR_INTERVAL_MS"] = "200"
        try:
            srv = harness.Server(binary=harness.cetcd_bin(), label="sut",  # cetcd's knob
                                 extra_args=["--auto-compaction-mode=revision",
                                             "--auto-compaction-retention=10"])
            self.addCleanup(srv.close)
            srv.start()
        finally:
            del os.environ["CETCD_TEST_COMPACTOR_INTERVAL_MS"]
        c = srv.etcd3_client()
        for i in range(30):
            c.put("ac/k", str(i))
        c.close()
        deadline = time.monotonic() + 10
        compact = 0
        while time.monotonic() < deadline:
            r = srv.ctl("endpoint", "hashkv", "-w", "json")
            self.assertTrue(r.ok, r)
            compact = json.loads(r.out)[0]["HashKV"].get("compact_revision", 0)
            if compact >= 21:
                break
            time.sleep(0.2)
        self.assertEqual(compact, 21)  # revision 31 - 10 retained
        r = srv.ctl("get", "ac/k", "--rev=5")
        self.assertIn("required revision has been compacted", r.err)
        r = srv.ctl("get", "ac/k", "--rev=25", "--print-value-only")
        self.assertEqual(r.out.strip(), "23")
        with open(srv.log_path) as f:
            log = f.read()
        self.assertIn("Starting auto-compaction at revision 21 (retention: 10 revisions)", log)
        self.assertIn("Finished auto-compaction at revision 21", log)


class Metrics(unittest.TestCase):
    def test_metrics(self):
        srv = harness.Server(label="sut")
        self.addCleanup(srv.close)
        srv.start()
        self.assertTrue(srv.ctl("put", "/locks/a", "1").ok)
        self.assertTrue(srv.ctl("put", "/locks/b", "1").ok)
        self.assertTrue(srv.ctl("del", "/locks/a").ok)
        self.assertTrue(srv.ctl("get", "/locks/b").ok)
        code, body = http_get(srv, "/metrics")
        self.assertEqual(code, 200)
        vals = {}
        for line in body.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$', line)
            self.assertIsNotNone(m, "bad exposition line: %r" % line)
            vals[m.group(1)] = float(m.group(2))
        self.assertEqual(vals["etcd_mvcc_put_total"], 2)
        self.assertEqual(vals["etcd_mvcc_delete_total"], 1)
        self.assertGreaterEqual(vals["etcd_mvcc_range_total"], 1)
        self.assertIn("etcd_mvcc_txn_total", vals)
        self.assertEqual(vals["etcd_debugging_mvcc_keys_total"], 1)
        self.assertGreater(vals["etcd_mvcc_db_total_size_in_bytes"], 0)
        self.assertGreater(vals["etcd_mvcc_db_total_size_in_use_in_bytes"], 0)
        self.assertEqual(vals["etcd_server_has_leader"], 1)
        self.assertEqual(vals["etcd_server_is_leader"], 1)
        self.assertGreaterEqual(vals["etcd_server_proposals_applied_total"], 3)
        self.assertGreaterEqual(vals["etcd_server_proposals_committed_total"],
                                vals["etcd_server_proposals_applied_total"])
        self.assertEqual(vals["etcd_server_proposals_pending"], 0)
        self.assertIn("etcd_disk_wal_fsync_duration_seconds_count", vals)
        if not harness.testing_real_etcd():
            self.assertEqual(vals['cetcd_revisions_total{prefix="/locks/"}'], 3)
        self.assertTrue(any(k.startswith('etcd_server_version{server_version="') for k in vals))
        self.assertTrue(any(k.startswith('etcd_cluster_version{cluster_version="') for k in vals))
        self.assertEqual(vals['grpc_server_handled_total{grpc_code="OK",grpc_method="Put",'
                              'grpc_service="etcdserverpb.KV",grpc_type="unary"}'], 2)
        self.assertEqual(vals['grpc_server_started_total{grpc_method="Put",'
                              'grpc_service="etcdserverpb.KV",grpc_type="unary"}'], 2)


if __name__ == "__main__":
    harness.run_tests()
