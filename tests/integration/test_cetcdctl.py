#!/usr/bin/python3
"""cetcdctl: etcdctl compatibility, churn and primary.

Every scenario runs against real etcd 3.4 and the server under test:
- the same commands are run with Debian's etcdctl and with cetcdctl against the SAME server
  and their masked outputs (stdout, stderr, exit status) must be equal, for every output
  format that etcdctl supports for the command;
- `cetcdctl churn` names the prefix of an etcd-style TryLock poller first, with a rate
  within 10% of the true one;
- `cetcdctl primary`: one CMD at a time, takeover within TTL + 1 s after kill -9, the
  fencing token in CMD's environment, no revision consumed while a standby waits, exit
  status passed through;
- lock and elect interoperate with etcdctl's.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CETCDCTL_BIN = os.environ.get("CETCDCTL_BIN") or os.path.join(harness.REPO, "build", "cetcdctl")
FORMATS = ("simple", "json", "fields", "table")


def _env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
    env["ETCDCTL_API"] = "3"
    return env


def run(binary, srv, args, input=None, timeout=20, kill_after=None):
    """Runs BINARY --endpoints=SRV ARGS; with kill_after, SIGTERMs it after that many
    seconds (for watch) and reports rc 'killed'."""
    argv = [binary, "--endpoints=" + srv.endpoint, "--dial-timeout=3s"] + list(args)
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                         preexec_fn=harness._pdeathsig)
    try:
        out, err = p.communicate(input.encode() if input is not None else None,
                                 timeout=kill_after if kill_after else timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM if kill_after else signal.SIGKILL)
        out, err = p.communicate(timeout=10)
        rc = "killed" if kill_after else "timeout"
    return harness.CtlResult(argv, rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def normalize(text, digits=False):
    """harness.mask plus: tool names, table rule widths (they depend on timings) and, for
    commands that write (whose revisions differ between two runs), every number."""
    text = harness.mask(text).replace("cetcdctl", "etcdctl")
    text = re.sub(r"-{3,}", "---", text)
    text = re.sub(r" {2,}", " ", text)
    text = re.sub(r'("ttl":|remaining\(|"TTL" : )\d+', r"\1<TTL>", text)
    if digits:
        text = re.sub(r"\d+", "N", text)
    return text


def revision(srv):
    r = harness.etcdctl([srv.endpoint], "get", "x", "-w", "json")
    return json.loads(r.out)["header"]["revision"]


CLIENTV3_STREAM_LOG = ("opened snapshot stream; downloading", "completed snapshot read; closing")


def snapshot_log(err, path):
    """The msg (and path, as F) of each JSON log line of `snapshot save`, in order; a
    "receiving snapshot" progress line must carry the bytes received so far."""
    out = []
    for line in err.splitlines():
        if not line.startswith("{"):
            continue
        e = json.loads(line)
        if e["msg"] == "receiving snapshot":
            assert e["bytes"] > 0 and e["received"], line
            continue
        out.append((e["msg"] + " " + e.get("path", "").replace(path, "F")).strip())
    return out


class Cetcdctl(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.assertTrue(os.path.exists(CETCDCTL_BIN), "cetcdctl not built: %s" % CETCDCTL_BIN)
        self.servers = []
        if not harness.testing_real_etcd():
            self.servers.append(harness.Server(binary="/usr/bin/etcd", label="etcd"))
        self.servers.append(harness.Server(label="sut"))
        harness.start_servers(*self.servers)
        self.tmp = tempfile.mkdtemp(prefix="cetcdctl-it-")

    def tearDown(self):
        for s in self.servers:
            s.close()
        subprocess.run(["rm", "-rf", self.tmp])

    # ---- side by side -------------------------------------------------------------------
    def compare(self, srv, args, input=None, digits=False, kill_after=None, stdout_only=False, prepare=None):
        """Runs args with both tools (prepare(srv) before each run) and asserts equal output."""
        if prepare:
            prepare(srv)
        a = run(harness.ETCDCTL_BIN, srv, args, input=input, kill_after=kill_after)
        if prepare:
            prepare(srv)
        b = run(CETCDCTL_BIN, srv, args, input=input, kill_after=kill_after)
        fa = "rc=%s\n%s" % (a.rc, normalize(a.out, digits))
        fb = "rc=%s\n%s" % (b.rc, normalize(b.out, digits))
        if not stdout_only:
            fa += "\n[stderr]\n" + normalize(a.err, digits)
            fb += "\n[stderr]\n" + normalize(b.err, digits)
        harness.assert_same(self, "$ %s %s\n%s" % (srv.label, " ".join(args), fa),
                            "$ %s %s\n%s" % (srv.label, " ".join(args), fb), "etcdctl", "cetcdctl")

    def seed(self, srv):
        for k, v in (("foo", "bar"), ("foo2", "bar 2"), ("a", "1"), ("b", "2"), ("z\tq", "tab\x01")):
            harness.etcdctl([srv.endpoint], "put", k, v)
        harness.etcdctl([srv.endpoint], "put", "foo", "baz")
        harness.etcdctl([srv.endpoint], "del", "b")

    def test_read_commands_match_etcdctl(self):
        for srv in self.servers:
            self.seed(srv)
            lease = harness.etcdctl([srv.endpoint], "lease", "grant", "300").out.split()[1]
            harness.etcdctl([srv.endpoint], "put", "leased", "v", "--lease=" + lease)
            cmds = [["get", "foo"], ["get", "--prefix", ""], ["get", "a", "z", "--keys-only"],
                    ["get", "--from-key", "a", "--limit", "2", "--order", "DESCEND", "--sort-by", "MODIFY"],
                    ["get", "foo", "--rev", "2"], ["get", "foo", "--print-value-only"], ["get", "nothing"],
                    ["get", "--prefix", "foo", "--hex"], ["get", "z\tq"], ["get", "foo", "--consistency", "s"],
                    ["endpoint", "status"], ["endpoint", "hashkv"], ["endpoint", "health"], ["member", "list"],
                    ["lease", "list"], ["lease", "timetolive", lease, "--keys"], ["lease", "timetolive", lease],
                    ["lease", "timetolive", "1234"], ["alarm", "list"]]
            for args in cmds:
                for w in FORMATS:
                    if args == ["alarm", "list"] and w == "fields":
                        continue  # etcdctl 3.4 dereferences a nil header there and panics
                    if args == ["alarm", "list"] and w == "json" and srv.label != "etcd":
                        continue  # etcd leaves AlarmResponse.header unset, cetcd fills it; libcetcd
                        # does not return that header, so cetcdctl prints etcd's form
                    self.compare(srv, args + ["-w", w])
            # a read-only txn, interactive and not
            txn = 'value("foo") = "baz"\nmod("a") > "0"\n\nget foo --prefix\nget zz\n\nget a\n\n'
            for w in FORMATS:
                self.compare(srv, ["txn", "-w", w], input=txn)
            self.compare(srv, ["txn", "-i"], input='ver("foo") = "7"\n\nget foo\n\nget a --keys-only\n\n')
            # watch history, with and without prev-kv, and exec
            for w in ("simple", "json", "fields"):
                self.compare(srv, ["watch", "--rev", "1", "foo", "--prefix", "--prev-kv", "-w", w], kill_after=1.5)
            self.compare(srv, ["watch", "--rev", "2", "foo", "--", "sh", "-c",
                               'echo "$ETCD_WATCH_REVISION $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE"'],
                         kill_after=1.5)

    def test_errors_match_etcdctl(self):
        for srv in self.servers:
            self.seed(srv)
            cmds = [["get"], ["put"], ["del", "a", "b", "c"], ["get", "foo", "--prefix", "--from-key"],
                    ["get", "a", "b", "--prefix"], ["put", "k", "v", "--lease", "zz"],
                    ["get", "foo", "--consistency", "x"], ["get", "foo", "--order", "x"], ["get", "foo", "--sort-by", "x"],
                    ["get", "foo", "--rev", "99999"], ["lease", "grant", "abc"], ["lease", "grant"],
                    ["lease", "revoke", "1234"], ["lease", "keep-alive", "--once", "1234"], ["lease", "keep-alive", "zz"],
                    ["compaction"], ["compaction", "x"], ["watch"], ["watch", "a", "b", "--prefix"],
                    ["watch", "foo", "--"], ["snapshot", "status", "/nonexistent"],
                    ["snapshot", "save", "/nonexistent/x.db"], ["txn", "x"], ["alarm", "list", "x"], ["bogus"],
                    ["get", "foo", "-w", "protobuf-nope"], ["put", "k", "v", "-w", "table"]]
            for args in cmds:
                self.compare(srv, args, digits="table" in args)
            for txn in ("bad\n", 'ver("foo") > "x"\n', "\nfoo bar\n", "\nget\n", ""):
                self.compare(srv, ["txn"], input=txn)
            # compaction then a compacted read and watch
            rev = revision(srv)
            harness.etcdctl([srv.endpoint], "compaction", str(rev - 2))
            self.compare(srv, ["compaction", str(rev - 3)])
            self.compare(srv, ["get", "foo", "--rev", "1"])
            self.compare(srv, ["watch", "--rev", "1", "foo"], kill_after=5)

    def test_write_commands_match_etcdctl(self):
        for srv in self.servers:
            self.seed(srv)
            def reset(s):
                harness.etcdctl([s.endpoint], "put", "wk", "v0")
                harness.etcdctl([s.endpoint], "put", "a", "1")
                harness.etcdctl([s.endpoint], "del", "tk")

            for w in FORMATS:
                for args in (["put", "wk", "v1"], ["put", "wk", "v2", "--prev-kv"], ["put", "wk", "--ignore-value"],
                             ["del", "wk", "--prev-kv"], ["del", "nothing"], ["del", "--prefix", "w"]):
                    self.compare(srv, args + ["-w", w], digits=True, prepare=reset)
                self.compare(srv, ["txn", "-w", w], input='create("tk") = "0"\n\nput tk x\ndel a\n\nget tk\n\n',
                             digits=True, prepare=reset)
                self.compare(srv, ["lease", "grant", "100", "-w", w], digits=True)
                ids = [harness.etcdctl([srv.endpoint], "lease", "grant", "100").out.split()[1] for _ in range(2)]
                a = run(harness.ETCDCTL_BIN, srv, ["lease", "revoke", ids[0], "-w", w])
                b = run(CETCDCTL_BIN, srv, ["lease", "revoke", ids[1], "-w", w])
                self.assertEqual(normalize(a.out + a.err, True), normalize(b.out + b.err, True))
                lid = harness.etcdctl([srv.endpoint], "lease", "grant", "100").out.split()[1]
                self.compare(srv, ["lease", "keep-alive", "--once", lid, "-w", w], digits=True)
            self.compare(srv, ["put", "k", "-w", "simple"], input="from stdin", digits=True)
            for extra in ([], ["--physical"]):
                res = []
                for binary in (harness.ETCDCTL_BIN, CETCDCTL_BIN):
                    harness.etcdctl([srv.endpoint], "put", "c", "x")
                    r = run(binary, srv, ["compaction"] + extra + [str(revision(srv))])
                    res.append((r.rc, normalize(r.out, True), normalize(r.err, True)))
                self.assertEqual(res[0], res[1])
            self.compare(srv, ["defrag"])
            for w in FORMATS:
                self.compare(srv, ["defrag", "-w", w])

    def test_snapshot(self):
        for srv in self.servers:
            self.seed(srv)
            ours, theirs = os.path.join(self.tmp, srv.label + "-c.db"), os.path.join(self.tmp, srv.label + "-e.db")
            a = run(harness.ETCDCTL_BIN, srv, ["snapshot", "save", theirs])
            b = run(CETCDCTL_BIN, srv, ["snapshot", "save", ours])
            self.assertEqual((a.rc, a.out.replace(theirs, "F")), (b.rc, b.out.replace(ours, "F")))
            # the same log lines in the same order; cetcdctl's own progress lines (one a
            # second while a transfer lasts over 1 s) are checked and set aside
            # (etcdctl's clientv3 also logs its stream's opening and end; cetcdctl does not)
            theirs_log = [m for m in snapshot_log(a.err, theirs) if m not in CLIENTV3_STREAM_LOG]
            self.assertEqual(snapshot_log(b.err, ours), theirs_log, b.err)
            self.assertIn("fetched snapshot", theirs_log)
            for f in (theirs, ours):
                for w in FORMATS:
                    # the same file read by both tools: identical, hash included
                    self.compare(srv, ["snapshot", "status", f, "-w", w])

    def test_lock_and_elect_interoperate(self):
        for srv in self.servers:
            outs = []
            for binary in (harness.ETCDCTL_BIN, CETCDCTL_BIN):
                p = subprocess.Popen([binary, "--endpoints=" + srv.endpoint, "lock", "L"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=_env(), preexec_fn=harness._pdeathsig)
                line = p.stdout.readline().decode() + p.stdout.readline().decode()  # key, value
                # the other tool must wait while this one holds the lock
                other = CETCDCTL_BIN if binary == harness.ETCDCTL_BIN else harness.ETCDCTL_BIN
                w = run(other, srv, ["lock", "L", "--", "sh", "-c", 'echo "$ETCD_LOCK_KEY"'], kill_after=1.0)
                self.assertEqual(w.rc, "killed", "lock not exclusive between etcdctl and cetcdctl")
                p.send_signal(signal.SIGTERM)
                p.wait(10)
                rest, err = p.stdout.read(), p.stderr.read()
                outs.append((p.returncode, harness.mask(line + rest.decode()), err.decode()))
            self.assertEqual(outs[0], outs[1])
            r = run(CETCDCTL_BIN, srv, ["lock", "L", "--", "sh", "-c", 'echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV"; exit 3'])
            self.assertEqual(r.rc, 1)
            self.assertRegex(r.out, r"^L/[0-9a-f]+ \d+\n$")
            self.assertEqual(r.err, "Error: exit status 3\n")
            # elect: cetcdctl campaigns, etcdctl observes, and the other way round
            for cand, obs in ((CETCDCTL_BIN, harness.ETCDCTL_BIN), (harness.ETCDCTL_BIN, CETCDCTL_BIN)):
                o = subprocess.Popen([obs, "--endpoints=" + srv.endpoint, "elect", "-l", "E"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=_env(), preexec_fn=harness._pdeathsig)
                c = subprocess.Popen([cand, "--endpoints=" + srv.endpoint, "elect", "E", "v1"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=_env(), preexec_fn=harness._pdeathsig)
                key = c.stdout.readline().decode().strip()
                self.assertEqual(c.stdout.readline().decode(), "v1\n")
                self.assertEqual(o.stdout.readline().decode().strip(), key)
                self.assertEqual(o.stdout.readline().decode(), "v1\n")
                for p in (c, o):
                    p.send_signal(signal.SIGTERM)
                    p.communicate(timeout=10)
                    self.assertEqual(p.returncode, 0)

    # ---- churn --------------------------------------------------------------------------
    def _churn(self, srv, tries_per_s=40.0, secs=10.0, window=7):
        c = srv.etcd3_client()
        holder = c.lease(60)
        c.put("/locks/primary/%x" % holder.id, "", lease=holder)
        mine = c.lease(60)
        key = "/locks/primary/%x" % mine.id
        done, stop = {}, threading.Event()

        def poll():  # etcd's TryLock (clientv3 3.5): txn create-or-get, then delete if not owner
            t0, n = time.monotonic(), 0
            while time.monotonic() - t0 < secs and not stop.is_set():
                c.transaction(compare=[c.transactions.create(key) == 0],
                              success=[c.transactions.put(key, "", lease=mine)],
                              failure=[c.transactions.get(key)])
                c.delete(key)
                n += 1
                if n % 20 == 0:
                    c.put("/config/app/x", str(n))  # background noise, another prefix
                d = t0 + n / tries_per_s - time.monotonic()
                if d > 0:
                    time.sleep(d)
            done["rate"] = 2 * n / (time.monotonic() - t0)  # 2 revisions per try

        th = threading.Thread(target=poll, daemon=True)
        th.start()
        time.sleep(1.5)
        r = run(CETCDCTL_BIN, srv, ["churn", "--window", "%ds" % window], timeout=window + 20)
        rj = run(CETCDCTL_BIN, srv, ["churn", "--window", "1s", "-w", "json"], timeout=20)
        th.join(secs + 10)
        stop.set()
        c.close()
        self.assertEqual(r.rc, 0, r)
        return r.out, done["rate"], json.loads(rj.out)

    def test_churn_names_the_trylock_poller(self):
        for srv in self.servers:
            out, true_rate, js = self._churn(srv)
            rows = [l for l in out.splitlines() if l.startswith("/")]
            self.assertTrue(rows, out)
            first = rows[0].split()
            self.assertEqual(first[0], "/locks/primary/", out)
            rate = float(first[2])
            self.assertLess(abs(rate - true_rate) / true_rate, 0.10, "churn rate %.1f vs true %.1f\n%s"
                            % (rate, true_rate, out))
            self.assertIn("keys created and deleted again (TryLock polling signature):", out)
            self.assertEqual(js["prefixes"][0]["prefix"], "/locks/primary/")
            self.assertGreater(js["created_deleted_keys"][0]["cycles"], 0)

    # ---- primary ------------------------------------------------------------------------
    def _primary(self, srv):
        log = os.path.join(self.tmp, srv.label + "-primary.log")
        script = ('echo "start $ME $CETCD_PRIMARY_REV $CETCD_PRIMARY_KEY" >> %s; '
                  'trap "exit 7" TERM; while true; do echo "beat $ME $(date +%%s.%%N)" >> %s; sleep 0.05; done'
                  % (log, log))

        def spawn(me):
            env = _env()
            env["ME"] = me
            return subprocess.Popen([CETCDCTL_BIN, "--endpoints=" + srv.endpoint, "primary", "--ttl", "2", "svc",
                                     "--", "sh", "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    env=env, preexec_fn=harness._pdeathsig)

        def lines():
            try:
                with open(log) as f:
                    return f.read().splitlines()
            except OSError:
                return []

        def wait_for(pred, timeout):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if pred():
                    return True
                time.sleep(0.02)
            return False

        a = spawn("A")
        self.assertTrue(wait_for(lambda: any(l.startswith("start A") for l in lines()), 10), "A never started")
        b = spawn("B")
        time.sleep(1.0)
        r0 = revision(srv)
        time.sleep(2.0)
        waited = revision(srv) - r0
        self.assertFalse(any(l.startswith("start B") for l in lines()), "standby ran CMD while A was primary")
        t0 = time.monotonic()
        a.kill()  # kill -9 the primary's cetcdctl: its CMD dies with it, the lease expires
        a.wait()
        self.assertTrue(wait_for(lambda: any(l.startswith("start B") for l in lines()), 2 + 1 + 2),
                        "standby not started")
        took = time.monotonic() - t0
        time.sleep(0.5)
        b.send_signal(signal.SIGTERM)  # forwarded to CMD, which exits 7
        b.wait(10)
        ls = lines()
        sa = [l.split() for l in ls if l.startswith("start A")][0]
        sb = [l.split() for l in ls if l.startswith("start B")][0]
        last_a = max(float(l.split()[2]) for l in ls if l.startswith("beat A"))
        first_b = min(float(l.split()[2]) for l in ls if l.startswith("beat B"))
        return waited, took, int(sa[2]), int(sb[2]), sa[3], last_a < first_b, b.returncode

    def test_primary(self):
        for srv in self.servers:
            waited, took, tok_a, tok_b, key_a, no_overlap, rc_b = self._primary(srv)
            self.assertEqual(waited, 0, "a waiting standby consumed revisions")
            self.assertLess(took, 2 + 1, "takeover slower than TTL + 1 s")
            self.assertGreater(tok_b, tok_a, "fencing tokens must increase")
            self.assertTrue(key_a.startswith("svc/"))
            self.assertTrue(no_overlap, "two primaries ran CMD at the same time")
            self.assertEqual(rc_b, 7, "exit status not passed through")

    def _primary_incident(self, srv, hold_s, out):
        """The incident's shape: one primary and three standbys under `cetcdctl primary
        --ttl 5`; while they wait for hold_s the revision must not move; kill -9 of the
        primary hands over to exactly one standby within TTL + 1 s."""
        log = os.path.join(self.tmp, srv.label + "-incident.log")
        script = 'echo "start $ME $(date +%%s.%%N)" >> %s; trap "exit 0" TERM; while true; do sleep 0.2; done' % log

        def spawn(me):
            env = _env()
            env["ME"] = me
            return subprocess.Popen([CETCDCTL_BIN, "--endpoints=" + srv.endpoint, "primary", "--ttl", "5", "incident",
                                     "--", "sh", "-c", script], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env=env, preexec_fn=harness._pdeathsig)

        def starts():
            try:
                with open(log) as f:
                    return [l.split()[1] for l in f.read().splitlines() if l.startswith("start ")]
            except OSError:
                return []

        procs = {"P": spawn("P")}
        deadline = time.monotonic() + 10
        while "P" not in starts() and time.monotonic() < deadline:
            time.sleep(0.02)
        for me in ("S1", "S2", "S3"):
            procs[me] = spawn(me)
        time.sleep(1.5)  # standbys create their candidate keys, then only watch
        r0 = revision(srv)
        time.sleep(hold_s)
        out["waited"] = revision(srv) - r0
        out["starts_before"] = starts()
        t0 = time.monotonic()
        procs["P"].kill()
        procs["P"].wait()
        deadline = time.monotonic() + 5 + 1 + 3
        while len(starts()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        out["took"] = time.monotonic() - t0
        time.sleep(1.0)
        out["starts_after"] = starts()
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def test_primary_one_primary_three_standbys(self):
        hold = float(os.environ.get("CETCD_TEST_STANDBY_SECONDS", "60"))
        results = [{} for _ in self.servers]
        threads = [threading.Thread(target=self._primary_incident, args=(srv, hold, r))
                   for srv, r in zip(self.servers, results)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(hold + 60)
        for srv, r in zip(self.servers, results):
            self.assertEqual(r.get("starts_before"), ["P"], srv.label)
            self.assertEqual(r.get("waited"), 0, "%s: waiting standbys consumed revisions" % srv.label)
            self.assertEqual(len(r["starts_after"]), 2, "%s: exactly one standby must take over: %r"
                             % (srv.label, r["starts_after"]))
            self.assertLess(r["took"], 5 + 1, "%s: takeover slower than TTL + 1 s" % srv.label)


if __name__ == "__main__":
    harness.run_tests()
