#!/usr/bin/env python3
"""--config-file side by side with real etcd 3.4 (issue 11, item 3).

The same YAML files go to /usr/bin/etcd and to cetcd (`--config-file <path>`, no other flag,
no ETCD_* variable), one server at a time on the same ports, and the outcomes must match:
- test_1_valid: files that both must accept, with every kind of key: quoted and plain
  strings, numbers (1e3, 0x10, 1_000), durations as integer nanoseconds, booleans in YAML 1.1
  forms (no, On, y, YES), null values, lists (log-outputs, cipher-suites), both
  transport-security blocks, unknown keys at the top and inside a block, upper-case keys, a
  duplicate key, an anchor and alias, a second document (not read). Both start, and the
  member list (name, peer and client URLs) is the same. The auto-tls block file must serve
  TLS on the client port of both.
- test_2_empty_file: an empty file means etcd's defaults (localhost:2379/2380): both start,
  or, when another process holds those ports, both fail to bind (never a config error).
- test_3_bad: files both must refuse: YAML syntax errors, values of the wrong type, bad URLs,
  a top-level list, a missing file, and a validation error. Both exit with status 1. Where
  etcd's message comes from its own checks (validation) cetcd's text must be the same
  (etcd → cetcd in "See 'etcd --help'"). Where it is Go's (go-yaml's syntax errors,
  encoding/json's type errors, url.Parse) the wording cannot be identical: the test then
  checks that both refuse and that cetcd's message names the file, the line and the cause.
Every wait is bounded; servers are stopped by PID."""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import harness

START_TIMEOUT = 20.0


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def run_server(binary, yaml_text, cport, pport, keep_running_check=None, path=None):
    """Starts binary with --config-file (yaml_text with {data}, {c}, {p} filled in) in a
    temp dir. Returns (outcome, exit status or None, output): "started" once the ready line
    is logged and the client port accepts, else "exited". keep_running_check(cport) runs
    while a started server is up; the server is then stopped by PID. cport 0 means the
    file sets no port: etcd's default client port 2379 is probed."""
    root = tempfile.mkdtemp(prefix="cetcd-cfg-")
    try:
        if path is None:
            path = os.path.join(root, "conf.yml")
            with open(path, "w") as f:
                f.write(yaml_text.replace("{data}", os.path.join(root, "data"))
                        .replace("{c}", str(cport)).replace("{p}", str(pport)))
        log_path = os.path.join(root, "out.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(harness.guarded([binary, "--config-file", path]), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            outcome, status, check = "timeout", None, None
            for _ in range(int(START_TIMEOUT / 0.05) + 10):
                if proc.poll() is not None:
                    outcome, status = "exited", proc.returncode
                    break
                if harness.READY_LINE in read(log_path) and port_open(cport or 2379):
                    outcome = "started"
                    if keep_running_check:
                        check = keep_running_check(cport)
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        out = read(log_path)
        return outcome, status, out, check
    finally:
        shutil.rmtree(root, ignore_errors=True)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def member_list(cport, scheme="http"):
    """etcdctl member list, ids masked, or the TLS handshake outcome for https."""
    extra = ["--insecure-skip-tls-verify", "--insecure-transport=false"] if scheme == "https" else []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
    r = subprocess.run([harness.ETCDCTL_BIN, "--endpoints", "%s://127.0.0.1:%d" % (scheme, cport),
                        "--command-timeout=5s"] + extra + ["member", "list"],
                       capture_output=True, text=True, timeout=20, env=env)
    return r.returncode, re.sub(r"^[0-9a-f]+,", "<id>,", r.stdout.strip(), flags=re.M), r.stderr.strip()


def tls_handshake(cport):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", cport), timeout=5) as s:
        with ctx.wrap_socket(s) as t:
            return t.version()


def error_line(out):
    """The 'error verifying flags, ...' text (or etcd's 'unexpected error ...' line)."""
    m = re.search(r"(error verifying flags, .*|unexpected error setting up .*)", out)
    return m.group(1).strip() if m else out.strip()[-400:]


BASE = """data-dir: {data}
listen-client-urls: http://127.0.0.1:{c}
advertise-client-urls: http://127.0.0.1:{c}
listen-peer-urls: http://127.0.0.1:{p}
initial-advertise-peer-urls: http://127.0.0.1:{p}
initial-cluster: m1=http://127.0.0.1:{p}
name: m1
"""
BASE_LINES = BASE.count("\n")

EVERY_KIND = """# every kind of key etcd's file has
NAME: 'first'            # upper case: encoding/json matches keys ignoring case
data-dir: {data}
wal-dir: ~
listen-client-urls: http://127.0.0.1:{c}
advertise-client-urls: "http://127.0.0.1:{c}"
listen-peer-urls: http://127.0.0.1:{p}
initial-advertise-peer-urls: http://127.0.0.1:{p}
initial-cluster: m1=http://127.0.0.1:{p}
initial-cluster-token: &tok 'tok-1'
initial-cluster-state: new
snapshot-count: 1e3
max-wals: 0x10
max-snapshots: 1_0
heartbeat-interval: 100
election-timeout: 1000
quota-backend-bytes: 1073741824
max-request-bytes: 2097152
grpc-keepalive-min-time: 5000000000
grpc-keepalive-interval: 7200000000000
grpc-keepalive-timeout: 20000000000
strict-reconfig-check: no
pre-vote: On
initial-election-tick-advance: YES
enable-v2: y
enable-pprof: false
auto-compaction-mode: revision
auto-compaction-retention: !!str 1000   # explicit tag: a string, though 1000 reads as a number
log-outputs: [stderr]
logger: capnslog
log-level: info
cipher-suites:
  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
cors: '*'
host-whitelist: "*"
proxy: 'off'
discovery-fallback: 'proxy'
client-transport-security:
  cert-file:
  key-file: ''
  client-cert-auth: false
  trusted-ca-file:
  auto-tls: Off
  allowed-cn: someone        # unknown inside a block
peer-transport-security:
  client-cert-auth: n
  auto-tls: false
some-future-key: [1, {a: b}]
name: m1                   # the last duplicate wins
debug: false
---
name: the-second-document-is-not-read
"""

AUTO_TLS = """name: tls1
data-dir: {data}
listen-client-urls: https://127.0.0.1:{c}
advertise-client-urls: https://127.0.0.1:{c}
listen-peer-urls: http://127.0.0.1:{p}
initial-advertise-peer-urls: http://127.0.0.1:{p}
initial-cluster: tls1=http://127.0.0.1:{p}
client-transport-security:
    auto-tls: true
"""

# (name, yaml appended to BASE, expected cetcd line (None: no line), cause in cetcd's message)
BAD = [
    ("unclosed flow sequence", "log-outputs: [stderr\n", BASE_LINES + 2, "did not find expected ',' or ']'"),
    ("tab indentation", "client-transport-security:\n\tcert-file: x\n", BASE_LINES + 2,
     "found character that cannot start any token"),
    ("unterminated quote", "name: 'open\n", BASE_LINES + 2, "found unexpected end of stream"),
    ("mapping inside a scalar", "debug: false\n  pre-vote: true\n", BASE_LINES + 2,
     "mapping values are not allowed in this context"),
    ("number for a string", "initial-cluster-token: 123\n", BASE_LINES + 1,
     "cannot unmarshal number into Go struct field configYAML.initial-cluster-token of type string"),
    ("quoted number", "snapshot-count: \"10\"\n", BASE_LINES + 1,
     "cannot unmarshal string into Go struct field configYAML.snapshot-count of type uint64"),
    ("negative count", "max-wals: -1\n", BASE_LINES + 1, "cannot unmarshal number -1"),
    ("duration string", "grpc-keepalive-interval: 30s\n", BASE_LINES + 1,
     "cannot unmarshal string into Go struct field configYAML.grpc-keepalive-interval of type time.Duration"),
    ("number for a bool", "strict-reconfig-check: 1\n", BASE_LINES + 1,
     "cannot unmarshal number into Go struct field configYAML.strict-reconfig-check of type bool"),
    ("quoted bool", "pre-vote: 'true'\n", BASE_LINES + 1,
     "cannot unmarshal string into Go struct field configYAML.pre-vote of type bool"),
    ("list of URLs", "cors:\n  - http://a.example\n", BASE_LINES + 2, "cors: expected a single value, not a list"),
    ("string for a list", "log-outputs: stderr\n", BASE_LINES + 1,
     "cannot unmarshal string into Go struct field configYAML.log-outputs of type []string"),
    ("scalar security block", "peer-transport-security: 5\n", BASE_LINES + 1,
     "cannot unmarshal number into Go struct field configYAML.peer-transport-security"),
    ("number in a security block", "client-transport-security:\n  cert-file: 5\n", BASE_LINES + 2,
     "cannot unmarshal number into Go struct field securityConfig.client-transport-security.cert-file"),
    ("bool for proxy", "proxy: off\n", BASE_LINES + 1,
     "cannot unmarshal bool into Go struct field configYAML.proxy of type string"),
    ("URL without a scheme", "listen-metrics-urls: 127.0.0.1:2999\n", BASE_LINES + 1,
     "URL scheme must be http, https, unix, or unixs"),
]
BAD_WHOLE = [  # whole files: (name, text, expected line, cause)
    ("top-level list", "- name: a\n- name: b\n", 1, "expected \"key: value\" mappings at the top level"),
    ("bad listen URL", BASE.replace("listen-client-urls: http://", "listen-client-urls: "), 2,
     "URL scheme must be http, https, unix, or unixs"),
]
# validation errors: etcd's own text, which cetcd must print the same
SAME_TEXT = [
    ("election timeout", "election-timeout: 100\n"),
    ("bootstrap conflict", "discovery: http://127.0.0.1:1/x\n"),
]


class ConfigFile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for b in (harness.ETCD_BIN, harness.cetcd_bin()):
            if not os.path.exists(b):
                raise FileNotFoundError("%s is needed (scripts/install-deps.sh installs etcd-server)" % b)

    def both(self, text, check=None, path=None, ports=True):
        cport, pport = (harness.free_port(), harness.free_port()) if ports else (0, 0)
        e = run_server(harness.ETCD_BIN, text, cport, pport, check, path)
        c = run_server(harness.cetcd_bin(), text, cport, pport, check, path)
        return e, c

    def test_1_valid(self):
        e, c = self.both(EVERY_KIND, member_list)
        self.assertEqual(e[0], "started", e[2][-2000:])
        self.assertEqual(c[0], "started", c[2][-2000:])
        self.assertEqual(e[3][0], 0, e[3])
        self.assertEqual(c[3], e[3])
        self.assertIn(", m1, http://127.0.0.1:", c[3][1])
        self.assertIn("unknown key \"client-transport-security.allowed-cn\"", c[2])
        e, c = self.both(AUTO_TLS, lambda port: (tls_handshake(port), member_list(port, "https")))
        self.assertEqual((e[0], c[0]), ("started", "started"), (e[2][-1500:], c[2][-1500:]))
        self.assertEqual(c[3], e[3])
        self.assertIn(e[3][0], ("TLSv1.2", "TLSv1.3"))
        self.assertIn(", tls1, http://127.0.0.1:", c[3][1][1])

    def test_2_empty_file(self):
        for text in ("", "# only a comment\n"):
            e, c = self.both(text, ports=False)
            busy = not (e[0] == "started") and "address already in use" in e[2]
            if busy:  # someone else holds 2379/2380: both must fail at bind, not at config
                self.assertEqual(c[0], "exited", c[2][-1500:])
                self.assertNotIn("error verifying flags", c[2])
            else:
                self.assertEqual((e[0], c[0]), ("started", "started"), (text, e[2][-1500:], c[2][-1500:]))

    def check_refused(self, name, e, c, path_in_msg, line, cause):
        self.assertEqual((e[0], e[1]), ("exited", 1), "%s: etcd %s" % (name, e[2][-1500:]))
        self.assertEqual((c[0], c[1]), ("exited", 1), "%s: cetcd %s" % (name, c[2][-1500:]))
        msg = error_line(c[2])
        self.assertIn(path_in_msg, msg, name)
        if line is not None:
            self.assertIn("line %d:" % line, msg, name)
        self.assertIn(cause, msg, name)

    def test_3_bad(self):
        cases = [(n, BASE + extra, line, cause) for n, extra, line, cause in BAD] + BAD_WHOLE
        for name, text, line, cause in cases:
            with self.subTest(name):
                e, c = self.both(text)
                self.check_refused(name, e, c, "conf.yml", line, cause)
        # a missing file
        missing = os.path.join(tempfile.gettempdir(), "cetcd-no-such-dir", "conf.yml")
        e, c = self.both("", path=missing)
        self.check_refused("missing file", e, c, missing, None, "No such file or directory")
        self.assertIn("no such file or directory", error_line(e[2]))
        # validation: the same text
        for name, extra in SAME_TEXT:
            with self.subTest(name):
                e, c = self.both(BASE + extra)
                self.assertEqual((e[0], e[1], c[0], c[1]), ("exited", 1, "exited", 1), (name, e[2][-800:], c[2][-800:]))
                self.assertEqual(error_line(c[2]), error_line(e[2]).replace("'etcd --help'", "'cetcd --help'"))


if __name__ == "__main__":
    harness.run_tests()
