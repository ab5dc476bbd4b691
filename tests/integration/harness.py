"""Test harness for cetcd's integration and interop tests (stdlib only).

Starts server processes (cetcd, or real etcd for comparison) on free loopback ports with a
temporary data dir, waits for readiness, stops them by PID, runs etcdctl against them, and
masks run-specific values (ids, sizes, versions, ports, timings) so outputs can be compared.

Environment:
  CETCD_BIN                   server under test (ctest sets it); default <repo>/build/cetcd
  CETCD_PRELOAD_BIN           cetcd linked dynamically, for LD_PRELOAD shims (ctest sets it);
                              default <repo>/build/cetcd-dynamic
  CETCD_TEST_SERVER_OVERRIDE  run the tests against this binary instead (e.g. /usr/bin/etcd)
  CETCD_TEST_PORT_BASE        0 or unset: ephemeral ports; N: allocate from N upwards
  CETCD_TEST_KEEP=1           keep temp dirs (data + logs) for debugging
  ETCD_BIN / ETCDCTL_BIN      reference etcd and etcdctl (default /usr/bin/etcd, /usr/bin/etcdctl)
"""

import atexit
import difflib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")
ETCDCTL_BIN = os.environ.get("ETCDCTL_BIN", "/usr/bin/etcdctl")
READY_LINE = "ready to serve client requests"
START_TIMEOUT = 15.0
STOP_GRACE = 5.0

# Ports used by etcd's e2e suite, which may run at the same time.
_RESERVED = [(20000, 20099), (10000, 10014)]
_used_ports = set()
_port_lock = threading.Lock()
_next_base_port = None


def cpu_ticks(pid):
    """User + system CPU a process has used, in clock ticks (from /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def server_bin():
    """The server binary under test: the override, else $CETCD_BIN, else build/cetcd."""
    return (os.environ.get("CETCD_TEST_SERVER_OVERRIDE")
            or os.environ.get("CETCD_BIN")
            or os.path.join(REPO, "build", "cetcd"))


def cetcd_bin():
    """cetcd itself, whatever CETCD_TEST_SERVER_OVERRIDE says: for checks of cetcd-only
    behaviour (its test knobs, logs, on-disk layout) that have no etcd counterpart."""
    return os.environ.get("CETCD_BIN") or os.path.join(REPO, "build", "cetcd")


def elf_is_dynamic(path):
    """True if the ELF file at path names a program interpreter (PT_INTERP), i.e. the
    dynamic loader runs it and LD_PRELOAD applies."""
    import struct
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            raise ValueError("%s is not a 64-bit ELF file" % path)
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return any(struct.unpack_from("<I", table, i * phentsize)[0] == 3 for i in range(phnum))


def preloadable(binary):
    """The binary to run under an LD_PRELOAD shim in place of `binary`. The release cetcd is
    statically linked and would silently ignore the shim, so cetcd runs as its dynamically
    linked twin ($CETCD_PRELOAD_BIN, else build/cetcd-dynamic: the same objects, linked
    against the shared libraries); other binaries (etcd) run as they are. Raises if the
    result would not load the shim."""
    if os.path.realpath(binary) == os.path.realpath(cetcd_bin()) and not elf_is_dynamic(binary):
        binary = os.environ.get("CETCD_PRELOAD_BIN") or os.path.join(REPO, "build", "cetcd-dynamic")
    if not elf_is_dynamic(binary):
        raise RuntimeError("%s is statically linked: an LD_PRELOAD shim would have no effect" % binary)
    return binary


def cetcdctl_bin():
    """cetcdctl under test: $CETCDCTL_BIN (ctest sets it), else build/cetcdctl."""
    return os.environ.get("CETCDCTL_BIN") or os.path.join(REPO, "build", "cetcdctl")


def testing_real_etcd():
    """True when the server under test is real etcd (its side-by-side twin is then itself,
    and cetcd-only checks run on cetcd_bin())."""
    b = server_bin()
    return os.path.basename(b) == "etcd" or os.path.realpath(b) == os.path.realpath(ETCD_BIN)


def _reserved(p):
    return any(lo <= p <= hi for lo, hi in _RESERVED)


def _port_free(p):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A currently free 127.0.0.1 TCP port not handed out before in this process.

    CETCD_TEST_PORT_BASE=N: sequential from N. Otherwise random in 21000-31999, below the
    kernel's ephemeral range (32768+), so etcdctl's outgoing connections cannot take a port
    between our check and the server's bind."""
    global _next_base_port
    base = int(os.environ.get("CETCD_TEST_PORT_BASE", "0") or 0)
    with _port_lock:
        for _ in range(500):
            if base:
                if _next_base_port is None:
                    _next_base_port = base
                p = _next_base_port
                _next_base_port += 1
                if p > 65535:
                    break
            else:
                p = random.SystemRandom().randrange(21000, 32000)
            if _reserved(p) or p in _used_ports or not _port_free(p):
                continue
            _used_ports.add(p)
            return p
    raise RuntimeError("no free port found")


# Children must die with the test process (no orphaned servers), but a Python pre-exec hook
# (preexec_fn) is unsafe here: the tests run grpc's threads, and a child that runs Python
# code between fork and exec can deadlock on a lock another thread held at fork time (seen
# under CPU load: Popen never returned). So servers are started through util-linux's
# `setpriv --pdeathsig KILL`, which sets PR_SET_PDEATHSIG and then execs (same PID), and the
# old hook name is kept as None for callers that pass it.
_pdeathsig = None
PDEATHSIG_PREFIX = ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"] if os.path.exists("/usr/bin/setpriv") else []


def guarded(argv):
    """argv wrapped so the child gets SIGKILL when the test process dies."""
    return PDEATHSIG_PREFIX + list(argv)


_live_servers = []


def _cleanup_all():
    for s in list(_live_servers):
        try:
            s.close()
        except Exception:
            pass


atexit.register(_cleanup_all)


class CtlResult:
    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err

    @property
    def ok(self):
        return self.rc == 0

    def __repr__(self):
        return "CtlResult(rc=%r, out=%r, err=%r)" % (self.rc, self.out, self.err)


class Server:
    """One single-member server process (cetcd or etcd) with its own temp dir and ports.

    The data dir survives stop()/kill9()/start() cycles; close() removes it.
    """

    def __init__(self, binary=None, name="default", extra_args=(), label=None):
        self.binary = binary or server_bin()
        self.name = name
        self.extra_args = list(extra_args)
        self.label = label or os.path.basename(self.binary)
        self.root = tempfile.mkdtemp(prefix="cetcd-it-%s-" % self.label)
        self.data_dir = os.path.join(self.root, "data")
        self.log_path = os.path.join(self.root, "server.log")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.proc = None
        self._log = None
        self._log_offset = 0
        self.starts = 0
        self.extra_env = {}  # added to the server's environment (e.g. LD_PRELOAD)
        _live_servers.append(self)

    # -- addresses -------------------------------------------------------------------------
    @property
    def endpoint(self):
        return "127.0.0.1:%d" % self.client_port

    @property
    def client_url(self):
        return "http://127.0.0.1:%d" % self.client_port

    @property
    def peer_url(self):
        return "http://127.0.0.1:%d" % self.peer_port

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def argv(self):
        return [self.binary,
                "--name", self.name,
                "--data-dir", self.data_dir,
                "--listen-client-urls", self.client_url,
                "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", "%s=%s" % (self.name, self.peer_url),
                ] + self.extra_args

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, wait=True, timeout=START_TIMEOUT):
        assert not self.running(), "already running"
        if not os.path.exists(self.binary):
            raise FileNotFoundError("server binary %s does not exist (make build for cetcd; "
                                    "scripts/install-deps.sh installs etcd-server for the "
                                    "side-by-side runs)" % self.binary)
        self._log = open(self.log_path, "ab")
        self._log_offset = self._log.tell()
        self._log.write(("\n==== start #%d: %s\n" % (self.starts + 1, " ".join(self.argv()))).encode())
        self._log.flush()
        self._log_offset = self._log.tell()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
        env.update(self.extra_env)
        self.proc = subprocess.Popen(guarded(self.argv()), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env, cwd=self.root)
        self.starts += 1
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        """Wait until the ready line appears in this start's log or `endpoint health` passes."""
        deadline = time.monotonic() + timeout
        last_health = 0.0
        for _ in range(int(timeout / 0.05) + 10):
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s during startup\n%s"
                                     % (self.label, self.proc.returncode, self.log_tail()))
            if READY_LINE in self._current_log():
                if self._tcp_ok():
                    return
            now = time.monotonic()
            if now - last_health > 1.0 and self._tcp_ok():
                last_health = now
                r = self.ctl("endpoint", "health", timeout=3, extra=["--command-timeout=1s"])
                if r.ok and "is healthy" in (r.out + r.err):
                    return
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        raise AssertionError("%s not ready within %.0fs\n%s" % (self.label, timeout, self.log_tail()))

    def _tcp_ok(self):
        try:
            with socket.create_connection(("127.0.0.1", self.client_port), timeout=0.5):
                return True
        except OSError:
            return False

    def _current_log(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no log)"
        return ("---- %s log tail (%s) ----\n" % (self.label, self.log_path)
                + "\n".join(lines[-n:]) + "\n---- end of log ----")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _reap(self, timeout):
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self, grace=STOP_GRACE):
        """SIGTERM by PID, then SIGKILL after `grace` seconds. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if not self._reap(grace):
                os.kill(self.proc.pid, signal.SIGKILL)
                self._reap(10)
        rc = self.proc.returncode
        self._close_log()
        return rc

    def kill9(self):
        """SIGKILL by PID and reap."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap(10)
        self._close_log()
        return self.proc.returncode

    def restart(self, kill=False, timeout=START_TIMEOUT):
        self.kill9() if kill else self.stop()
        return self.start(timeout=timeout)

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    def close(self):
        """Stop the process and remove the temp dir (unless CETCD_TEST_KEEP=1)."""
        try:
            self.stop()
        finally:
            if self in _live_servers:
                _live_servers.remove(self)
            if os.environ.get("CETCD_TEST_KEEP"):
                sys.stderr.write("keeping %s\n" % self.root)
            else:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- clients ---------------------------------------------------------------------------
    def ctl(self, *args, input=None, timeout=20, binary=False, extra=()):
        """Run `etcdctl --endpoints=<this> ARGS` (API v3). Output is text unless binary."""
        return etcdctl([self.endpoint], *args, input=input, timeout=timeout, binary=binary,
                       extra=extra)

    def etcd3_client(self, **kw):
        """A python3-etcd3 client for this server."""
        import etcd3
        kw.setdefault("timeout", 5)
        return etcd3.client(host="127.0.0.1", port=self.client_port, **kw)


def keyspace(port, serializable=False, max_pages=100000):
    """(header revision, {key: (value, create, mod, version)}) of the whole keyspace of the
    server on 127.0.0.1:port, read in pages of 2000 at the first page's revision."""
    import etcd3
    import etcd3.etcdrpc as rpc
    c = etcd3.client(host="127.0.0.1", port=port, timeout=10)
    try:
        kvs, key, rev = {}, b"\0", 0
        for _ in range(max_pages):
            resp = c.kvstub.Range(rpc.RangeRequest(key=key, range_end=b"\0", limit=2000, revision=rev,
                                                   serializable=serializable), timeout=10)
            rev = rev or resp.header.revision
            for kv in resp.kvs:
                kvs[kv.key] = (kv.value, kv.create_revision, kv.mod_revision, kv.version)
            if not resp.more:
                return rev, kvs
            key = resp.kvs[-1].key + b"\0"
        raise AssertionError("too many pages")
    finally:
        c.close()


def etcdctl(endpoints, *args, input=None, timeout=20, binary=False, extra=()):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
    env["ETCDCTL_API"] = "3"
    argv = [ETCDCTL_BIN, "--endpoints=" + ",".join(endpoints), "--dial-timeout=3s"] \
        + list(extra) + list(args)
    if input is not None and not isinstance(input, bytes):
        input = input.encode()
    try:
        p = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, timeout=timeout,
                           stdin=None if input is not None else subprocess.DEVNULL)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", e.stdout or b"", (e.stderr or b"") + b"\n(etcdctl timed out)"
    if not binary:
        out = out.decode("utf-8", "replace")
    return CtlResult(argv, rc, out, err.decode("utf-8", "replace"))


def snapshot_restore(snap, srv):
    """`etcdctl snapshot restore` of snap into srv's data dir (emptied first), as a one-member
    cluster named srv.name at srv.peer_url. Returns the CompletedProcess."""
    shutil.rmtree(srv.data_dir, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
    env["ETCDCTL_API"] = "3"
    return subprocess.run([ETCDCTL_BIN, "snapshot", "restore", snap, "--name", srv.name,
                           "--data-dir", srv.data_dir, "--initial-cluster", "%s=%s" % (srv.name, srv.peer_url),
                           "--initial-advertise-peer-urls", srv.peer_url],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)


def start_servers(*servers):
    """Start several servers concurrently (saves a second per extra server)."""
    for s in servers:
        s.start(wait=False)
    for s in servers:
        s.wait_ready()
    return servers


# ---- masking ------------------------------------------------------------------------------
_ZAP_RE = re.compile(r'^\{"level":"(\w+)".*"msg":"((?:[^"\\]|\\.)*)".*\}$')
_ZAP_ERR_RE = re.compile(r'"error":"((?:[^"\\]|\\.)*)"')
# `endpoint status` simple output: endpoint, id, version, size, leader?, learner?, term, index, applied, errors
_STATUS_ID_RE = re.compile(r"^(<HOST:PORT>, )[0-9a-f]+, ")
_MEMBER_LINE_RE = re.compile(r"^[0-9a-f]{1,16}(, (?:un)?started, )")
_STATUS_RE = re.compile(r"^(<HOST:PORT>, <HEXID>, <VER>, <SIZE>, (?:true|false), (?:true|false), )\d+, \d+, \d+, ")
_MASKS = [
    # JSON / fields output
    (re.compile(r'("?(?:cluster_id|member_id|leader|ID|ClusterID|MemberID|Leader)"?\s*:\s*)"?\d+"?'), r"\1<ID>"),
    (re.compile(r'("?(?:raft_term|raftTerm|RaftTerm)"?\s*:\s*)\d+'), r"\1<TERM>"),
    (re.compile(r'("?(?:raftIndex|raftAppliedIndex|RaftIndex|RaftAppliedIndex)"?\s*:\s*)\d+'), r"\1<RAFTIDX>"),
    (re.compile(r'("?(?:dbSize|dbSizeInUse|DBSize|DBSizeInUse)"?\s*:\s*)\d+'), r"\1<SIZE>"),
    (re.compile(r'("?(?:version|Version|etcdserver|etcdcluster)"?\s*:\s*)"\d+\.\d+\.\d+[^"]*"'), r'\1"<VER>"'),
    (re.compile(r'("?(?:hash|Hash)"?\s*:\s*)\d+'), r"\1<HASH>"),
    # loopback URLs and endpoints (ports differ between servers)
    (re.compile(r"127\.0\.0\.1:\d+"), "<HOST:PORT>"),
    # durations ("took = 1.2ms")
    (re.compile(r"\b\d+(?:\.\d+)?(?:ns|µs|us|ms|s)\b"), "<DUR>"),
    # human sizes ("20 kB")
    (re.compile(r"\b\d+(?:\.\d+)? (?:B|kB|MB|GB)\b"), "<SIZE>"),
    # dotted versions
    (re.compile(r"\b\d+\.\d+\.\d+\b"), "<VER>"),
    # hex ids (member ids, lease ids; %x may drop leading zeros)
    (re.compile(r"\b[0-9a-f]{12,16}\b"), "<HEXID>"),
]


def mask(text):
    """Replace run-specific values (ids, terms, sizes, versions, ports, timings) by tokens."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out = []
    for line in text.splitlines():
        m = _ZAP_RE.match(line.strip())
        if m:  # etcdctl's zap warnings carry timestamps and client pointers
            e = _ZAP_ERR_RE.search(line)
            line = "<zap %s> %s%s" % (m.group(1), m.group(2), (" error=" + e.group(1)) if e else "")
        line = _MEMBER_LINE_RE.sub(r"<HEXID>\1", line)
        for rx, rep in _MASKS:
            line = rx.sub(rep, line)
        line = _STATUS_ID_RE.sub(r"\1<HEXID>, ", line)
        line = _STATUS_RE.sub(r"\1<TERM>, <RAFTIDX>, <RAFTIDX>, ", line)
        out.append(line)
    return "\n".join(out)


def transcript(results):
    """Render a list of (label, CtlResult) as masked text."""
    parts = []
    for label, r in results:
        body = r.out if isinstance(r.out, str) else repr(r.out)
        parts.append("$ %s\nrc=%s\n%s%s" % (label, r.rc, mask(body),
                                           ("\n[stderr]\n" + mask(r.err)) if r.err.strip() else ""))
    return "\n".join(parts) + "\n"


def assert_same(tc, expected, actual, name_e="etcd", name_a="server"):
    """unittest assertion: equal texts, else fail with a unified diff."""
    if expected != actual:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                            name_e, name_a, n=3))
        tc.fail("outputs differ (after masking):\n" + diff)


# ---- minimal protobuf wire codec ---------------------------------------------------------
def pb_varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_field(num, value):
    """Encode one field: int -> varint, bytes/str -> length-delimited."""
    if isinstance(value, int):
        return pb_varint(num << 3) + pb_varint(value)
    if isinstance(value, str):
        value = value.encode()
    return pb_varint((num << 3) | 2) + pb_varint(len(value)) + value


def pb_decode(buf):
    """Decode one message level into [(field, wiretype, value)]; raises ValueError."""
    i, out = 0, []
    while i < len(buf):
        key, i = _rd_varint(buf, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _rd_varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            ln, i = _rd_varint(buf, i)
            v, i = buf[i:i + ln], i + ln
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("bad wire type %d" % wt)
        if i > len(buf):
            raise ValueError("truncated")
        out.append((f, wt, v))
    return out


def _rd_varint(buf, i):
    n = shift = 0
    for _ in range(10):
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i
    raise ValueError("varint too long")


def grpc_frame(msg, compressed=False):
    return bytes([1 if compressed else 0]) + len(msg).to_bytes(4, "big") + msg


def run_tests():
    """Entry point for test scripts: run unittest, print the summary, exit non-zero on failure."""
    sys.stdout.reconfigure(line_buffering=True)
    print("server under test: %s" % server_bin(), flush=True)
    t0 = time.monotonic()
    prog = unittest.main(exit=False, verbosity=2)
    print("wall time %.1fs" % (time.monotonic() - t0))
    _cleanup_all()
    sys.exit(0 if prog.result.wasSuccessful() else 1)
