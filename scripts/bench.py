#!/usr/bin/env python3
"""Side-by-side benchmark of real etcd and cetcd with etcd's benchmark tool.

Each server runs pinned to CPU 1 (taskset), the benchmark tool on CPU 0. For every workload
we record requests/s, p50/p99 latency and the server's CPU time per request (utime+stime
from /proc/PID/stat before and after). We also record idle RSS, RSS with 100k keys, the
data dir size and the restart time with 100k keys, and the cost of one fdatasync on this
disk. Results go to docs/PERFORMANCE.md (the numbers section is regenerated each run).

The cluster section (`--only cluster` runs it alone) starts a 3-member real etcd cluster,
runs the cluster workloads against all members, stops it, then does the same for a
3-member cetcd cluster, and writes its own generated block with the issue 8 targets.
Any failure (a server that does not come up, a member that dies, a tool that fails or
reports errors) exits non-zero before anything is written.

The security section (`--only security` runs it alone; the full run ends with it) runs the
put and range workloads over TLS (one CA and server certificate made with openssl, the same
files for both servers) and with auth enabled (simple token), with a plain baseline, and
writes its own block with the issue 10 targets.
"""
import argparse, contextlib, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import cluster_harness  # noqa: E402
import harness  # noqa: E402
from harness import cpu_ticks, pb_decode, pb_field  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for n in files:
            try:
                st = os.stat(os.path.join(root, n))
                total += st.st_blocks * 512
            except OSError:
                pass
    return total


def rss_breakdown(pid, data_dir):
    """RSS of pid split by what backs it (from /proc/PID/smaps), in KiB: the backend file's
    map (data.mdb / db), other files under data_dir, the server binary and shared
    libraries, and anonymous memory (heap, stacks, Go's arenas)."""
    out = {"backend_map": 0, "data_dir_other": 0, "binary_libs": 0, "anon": 0}
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split(None, 5)
                name = parts[5].strip() if len(parts) > 5 else ""
            elif line.startswith("Rss:"):
                kib = int(line.split()[1])
                if name.startswith(data_dir):
                    base = os.path.basename(name)
                    key = "backend_map" if base in ("data.mdb", "db") else "data_dir_other"
                elif name.startswith("/") and not name.startswith("/dev/"):
                    key = "binary_libs"
                else:
                    key = "anon"
                out[key] += kib
    return out


def dir_breakdown(path):
    """Allocated bytes of each file under path, keyed by its path relative to path."""
    sizes = {}
    for root, _, files in os.walk(path):
        for n in files:
            full = os.path.join(root, n)
            try:
                sizes[os.path.relpath(full, path)] = os.stat(full).st_blocks * 512
            except OSError:
                pass
    return sizes


def footprint(bench_bin, srv, keys, idle_kib):
    """The footprint figures of one started server: idle RSS, RSS with `keys` keys of 256 B
    (filled with etcd's benchmark tool, sequential keys), where that RSS and the data dir
    go, the restart time and the RSS after a restart. idle_kib: the RSS measured right
    after start. Restarts srv and leaves it running."""
    info = {"idle_rss_kib": idle_kib}
    run_bench(bench_bin, srv, ["--conns", "4", "--clients", "32", "put", "--total", str(keys),
                               "--key-size", "8", "--val-size", "256", "--key-space-size", str(keys),
                               "--sequential-keys"], f"fill {keys} keys")
    time.sleep(1)
    info["rss_100k_kib"] = rss_kib(srv.proc.pid)
    info["rss_parts_kib"] = rss_breakdown(srv.proc.pid, srv.data_dir)
    srv.stop()
    info["data_dir_bytes"] = dir_size(srv.data_dir)
    info["data_dir_files"] = {k: round(v / 2**20, 1) for k, v in dir_breakdown(srv.data_dir).items() if v}
    info["restart_s"] = srv.start()
    time.sleep(1)
    info["rss_after_restart_kib"] = rss_kib(srv.proc.pid)
    info["rss_after_restart_parts_kib"] = rss_breakdown(srv.proc.pid, srv.data_dir)
    print(f"  {srv.name:6s} {info}", flush=True)
    return info


class Server:
    """A server process (etcd or cetcd) on loopback ports, pinned to CPU 1."""

    def __init__(self, name, binary, data_dir, tls=None):
        """tls: None, or a Certs: the client URL is https with its server certificate."""
        self.name, self.binary, self.data_dir, self.tls = name, binary, data_dir, tls
        self.cport, self.pport = free_port(), free_port()
        self.proc = None
        self.user = None  # "name:password" the benchmark tool and etcdctl use once auth is on

    def start(self):
        url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.cport}"
        purl = f"http://127.0.0.1:{self.pport}"
        args = ["taskset", "-c", "1", self.binary, "--name", "bench", "--data-dir", self.data_dir,
                "--listen-client-urls", url, "--advertise-client-urls", url,
                "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
                "--initial-cluster", f"bench={purl}", "--quota-backend-bytes", str(8 * 1024**3)]
        if self.tls:
            args += ["--cert-file", self.tls.cert, "--key-file", self.tls.key]
        self.log = open(self.data_dir + ".log", "ab")
        t0 = time.time()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.data_dir}.log")
            try:
                r = subprocess.run(["etcdctl", f"--endpoints={self.endpoint}"] + self.client_args("=") +
                                   ["endpoint", "health"],
                                   capture_output=True, timeout=5, env=dict(os.environ, ETCDCTL_API="3"))
                if r.returncode == 0:
                    return time.time() - t0
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become ready in 60 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def endpoint(self):
        return f"https://127.0.0.1:{self.cport}" if self.tls else f"127.0.0.1:{self.cport}"

    def client_args(self, sep=None):
        """The CA and user flags etcdctl (sep "=") and the benchmark tool (sep None) need."""
        out = []
        for flag, value in (("--cacert", self.tls and self.tls.ca), ("--user", self.user)):
            if value:
                out += [f"{flag}={value}"] if sep else [flag, value]
        return out

    def ctl(self, *args):
        """Runs etcdctl against this server with its CA and user; raises if it fails."""
        return subprocess.run(["etcdctl", f"--endpoints={self.endpoint}"] + self.client_args("=") + list(args),
                              env=dict(os.environ, ETCDCTL_API="3"), capture_output=True, check=True, text=True)

    @property
    def pids(self):
        return [self.proc.pid]

    def check_alive(self):
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} is not running; see {self.data_dir}.log")


class BenchFailure(RuntimeError):
    """A workload that did not produce trustworthy numbers (the run must not write any)."""


def measure(cmd, server, n, label, section=None):
    """Runs a load generator (etcd's benchmark tool or cetcd-bench: both print the same
    summary lines) against server (a Server, or a ClusterTarget: CPU is summed over its
    pids). `section` picks the summary after that heading; n is the request count for CPU
    per request. Prints the rate, latency and server CPU line. Raises BenchFailure if the
    tool exits non-zero, reports request errors or prints no rate, or the server died."""
    before = sum(cpu_ticks(p) for p in server.pids)
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = proc.stdout.read().decode("utf-8", "replace")
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.time() - t0
    server.check_alive()
    after = sum(cpu_ticks(p) for p in server.pids)
    full = text
    if section and section in text:
        text = text.split(section, 1)[1]
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"50% in ([\d.e-]+) secs", text)
    p99 = re.search(r"99% in ([\d.e-]+) secs", text)
    problem = None
    if os.waitstatus_to_exitcode(status) != 0:
        problem = f"exited with {os.waitstatus_to_exitcode(status)}"
    elif "Error distribution" in full:
        problem = "reported request errors"
    elif not m or float(m.group(1)) <= 0:
        problem = "printed no request rate"
    if problem:
        raise BenchFailure(f"{server.name} {label}: the load generator {problem}\n"
                           f"command: {' '.join(cmd)}\n{full[-3000:]}")
    res = {
        "label": label,
        "rps": float(m.group(1)),
        "p50_ms": float(p50.group(1)) * 1000 if p50 else float("nan"),
        "p99_ms": float(p99.group(1)) * 1000 if p99 else float("nan"),
        "cpu_us": (after - before) / CLK * 1e6 / n if n else float("nan"),
        "client_cpu_us": (ru.ru_utime + ru.ru_stime) * 1e6 / n if n else float("nan"),
        "wall": wall,
    }
    print(f"  {server.name:6s} {label:28s} {res['rps']:10.0f} req/s  p50 {res['p50_ms']:.3f} ms  "
          f"p99 {res['p99_ms']:.3f} ms  cpu {res['cpu_us']:.1f} us/req", flush=True)
    return res


def run_bench(bench_bin, server, args, label, section=None, n=None):
    """Runs one workload of etcd's benchmark tool; `n` overrides the request count used for
    CPU per request (default: --total)."""
    extra = server.client_args() if isinstance(server, Server) else []
    cmd = ["taskset", "-c", "0", bench_bin, "--precise", "--endpoints", server.endpoint] + extra + args
    if n is None:
        total = re.search(r"--total[= ](\d+)", " ".join(args))
        n = int(total.group(1)) if total else 0
    return measure(cmd, server, n, label, section)


def run_cetcd_bench(cetcd_bench, server, args, label):
    """Runs one cetcd-bench workload (args: MODE TOTAL ...)."""
    return measure(["taskset", "-c", "0", cetcd_bench, server.endpoint] + args, server, int(args[1]), label)


def client_compare(bench_bin, cetcd_bench, server, scale):
    """The same put and range workloads driven by etcd's Go benchmark client and by
    libcetcd (bench/cetcd_bench.c): requests/s and client CPU per request."""
    rows = []
    n_put, n_range = str(max(1000, int(20000 * scale))), str(max(1000, int(40000 * scale)))
    go = [("put", ["--conns", "4", "--clients", "32", "put", "--total", n_put, "--key-size", "8",
                   "--val-size", "256", "--key-space-size", "100000"]),
          ("range", ["--conns", "4", "--clients", "32", "range", "key", "--total", n_range])]
    for op, args in go:
        rows.append(run_bench(bench_bin, server, args, f"{op}: etcd Go benchmark client"))
    modes = [("put", ["put", n_put, "32", "4", "256"]), ("range", ["range", n_range, "32", "4", "0"])]
    async_ok = subprocess.run([cetcd_bench], capture_output=True, text=True).stderr.find("async") >= 0
    if async_ok:
        modes += [("put-async", ["put-async", n_put, "32", "4", "256"]),
                  ("range-async", ["range-async", n_range, "32", "4", "0"])]
    for op, args in modes:
        r = run_cetcd_bench(cetcd_bench, server, args, f"{op}: libcetcd (cetcd-bench)")
        print(f"  {r['label']:40s} client cpu {r['client_cpu_us']:.1f} us/req", flush=True)
        rows.append(r)
    return rows


def lean_single_client(cetcd_bench, server, scale):
    """One request in flight at a time, from libcetcd's asynchronous API on one connection
    (each completion sends the next request from the client's I/O thread, so the client
    adds no thread hand-off): the round trip a lean client sees, for put and for a
    serializable range, against whichever server. Rows in run_bench's format."""
    n = str(max(500, int(3000 * scale)))
    return [run_cetcd_bench(cetcd_bench, server, ["put-async", n, "1", "1", "256"],
                            "put 1 in flight 256 B (libcetcd async client)"),
            run_cetcd_bench(cetcd_bench, server, ["range-async", n, "1", "1", "1"],
                            "range serializable 1 in flight (libcetcd async client)")]


def libcetcd_fanout(cetcd_bench, server, puts, rate=2000):
    """Watch fan-out through libcetcd (cetcd-bench watch-fanout): 10 connections x 100
    watches on one prefix (libcetcd opens a stream per watch), a putter on its own
    connection writing `puts` keys at `rate` puts/s with the asynchronous API. A row in
    run_bench's format: events/s, server CPU and client CPU (putter included) per event."""
    cmd = ["taskset", "-c", "0", cetcd_bench, server.endpoint, "watch-fanout", str(puts), "10", "100", str(rate)]
    return measure(cmd, server, puts * 1000, "watch fan-out 10 conns x 100 watches (events, libcetcd client)")


def fanout_lines(results):
    """Lines of the fan-out table: events/s with server and client CPU per event, for
    every fan-out row of both servers."""
    lines = ["", "Watch fan-out (every put reaches 1,000 watches): events/s, server and client CPU per event.",
             "", "| workload | server | events/s | server CPU µs/event | client CPU µs/event |",
             "|---|---|---:|---:|---:|"]
    for i, r0 in enumerate(results.get("etcd", [])):
        if not r0["label"].startswith("watch fan-out"):
            continue
        for name in ("etcd", "cetcd"):
            r = results[name][i]
            lines.append(f"| {r['label']} | {name} | {r['rps']:.0f} | {r['cpu_us']:.2f} | "
                         f"{r.get('client_cpu_us', float('nan')):.2f} |")
    return lines


def lock_handoff(server, rounds):
    """Lock-service handoff latency: A holds, B waits in Lock, A unlocks; the time from
    A's Unlock call to B's Lock returning. Returns (p50 ms, p99 ms, server CPU us/handoff)."""
    import threading
    import grpc
    ch = grpc.insecure_channel(server.endpoint)
    grant = ch.unary_unary("/etcdserverpb.Lease/LeaseGrant")
    lock = ch.unary_unary("/v3lockpb.Lock/Lock")
    unlock = ch.unary_unary("/v3lockpb.Lock/Unlock")
    def lease_id():
        return [v for f, _, v in pb_decode(grant(pb_field(1, 60))) if f == 2][0]
    def key_of(resp):
        return [v for f, _, v in pb_decode(resp) if f == 2][0]
    la, lb = lease_id(), lease_id()
    samples = []
    before = cpu_ticks(server.proc.pid)
    held = key_of(lock(pb_field(1, b"bench") + pb_field(2, la)))
    holder_is_a = True
    for _ in range(rounds):
        got = {}
        waiter_lease = lb if holder_is_a else la
        def waiter():
            got["key"] = key_of(lock(pb_field(1, b"bench") + pb_field(2, waiter_lease), timeout=10))
            got["t"] = time.perf_counter()
        th = threading.Thread(target=waiter)
        th.start()
        time.sleep(0.005)  # let the waiter reach the server and start waiting
        t0 = time.perf_counter()
        unlock(pb_field(1, held))
        th.join(10)
        samples.append(got["t"] - t0)
        held, holder_is_a = got["key"], not holder_is_a
    unlock(pb_field(1, held))
    after = cpu_ticks(server.proc.pid)
    ch.close()
    samples.sort()
    return (samples[len(samples) // 2] * 1000, samples[int(len(samples) * 0.99)] * 1000,
            (after - before) / CLK * 1e6 / rounds)


def fdatasync_cost(directory, n=200):
    path = os.path.join(directory, "fsync.probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    samples = []
    for i in range(n):
        os.pwrite(fd, b"x" * 512, (i % 16) * 4096)
        t0 = time.perf_counter()
        os.fdatasync(fd)
        samples.append(time.perf_counter() - t0)
    os.close(fd)
    os.unlink(path)
    samples.sort()
    return samples[len(samples) // 2] * 1000


# ---- 3-member clusters ----------------------------------------------------------------------
CLUSTER_SIZE = 3
# --cluster-pin: where the members run. The benchmark tool stays on CPU 0 either way.
CLUSTER_PIN = {"none": None, "cpu1": {1}}


class ClusterTarget:
    """A running cluster as run_bench sees one server: the tool gets every member's client
    endpoint (comma-separated), and server CPU is summed over all members."""

    def __init__(self, name, cluster):
        self.name, self.cluster = name, cluster

    @property
    def endpoint(self):
        return ",".join(m.endpoint for m in self.cluster.members)

    @property
    def pids(self):
        return [m.pid for m in self.cluster.members]

    def check_alive(self):
        dead = [m for m in self.cluster.members if not m.running()]
        if dead:
            raise RuntimeError(f"{self.name} cluster: member(s) {', '.join(m.name for m in dead)} died\n"
                               + "\n".join(m.log_tail(15) for m in dead))


@contextlib.contextmanager
def cpu_affinity(cpus):
    """Children started inside inherit `cpus` (None: no change), so a Go server's
    GOMAXPROCS sees the pinned set exactly as under `taskset`."""
    if cpus is None:
        yield
        return
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


def cluster_workloads(scale):
    """(key, label, args) of the cluster workloads; the put shape is the single-node put row's."""
    n_put, n_range = str(max(100, int(50000 * scale))), str(max(100, int(100000 * scale)))
    put = ["--conns", "4", "--clients", "32", "put", "--total", n_put, "--key-size", "8",
           "--val-size", "256", "--key-space-size", "100000"]
    return [
        ("put", "put 4 conns/32 clients 256 B, all members", put),
        ("put-leader", "put 4 conns/32 clients 256 B, leader only", ["--target-leader"] + put),
        ("range", "range linearizable 4 conns/32 clients, all members",
         ["--conns", "4", "--clients", "32", "range", "key", "--total", n_range, "--consistency", "l"]),
    ]


def bench_cluster(name, binary, bench_bin, workloads, pin):
    """Starts a CLUSTER_SIZE-member cluster of `binary` with etcd's default timings, runs the
    workloads against it and stops it. Returns {key: row}."""
    cluster = cluster_harness.Cluster(os.path.abspath(binary), CLUSTER_SIZE, token="cetcd-bench", heartbeat_ms=100,
                                      election_ms=1000)
    try:
        with cpu_affinity(CLUSTER_PIN[pin]):
            cluster.start()
        target = ClusterTarget(name, cluster)
        r = cluster.ctl("put", "key", "v" * 256)
        if not r.ok:
            raise RuntimeError(f"{name} cluster: seeding the range key failed: {r.err}")
        rows = {}
        for key, label, args in workloads:
            before = cluster.leader()
            rows[key] = run_bench(bench_bin, target, args, label)
            after = cluster.leader()
            rows[key]["leader_changed"] = before is None or after is not before
        return rows
    finally:
        cluster.close()


def run_cluster_section(a):
    """The cluster section: etcd's cluster, then cetcd's, same workloads, a.cluster_rounds
    times alternating (so both see the same background load). Returns the data
    cluster_block needs: per server and workload, the round with the median requests/s."""
    workloads = cluster_workloads(a.scale)
    print(f"{CLUSTER_SIZE}-member clusters, members pinned: {a.cluster_pin}, "
          f"{a.cluster_rounds} round(s)", flush=True)
    load_before = os.getloadavg()[0]
    rounds = {"etcd": [], "cetcd": []}
    for _ in range(a.cluster_rounds):
        for name, binary in (("etcd", a.etcd), ("cetcd", a.cetcd)):
            rounds[name].append(bench_cluster(name, binary, a.bench_bin, workloads, a.cluster_pin))
    results = {name: {key: median_round([r[key] for r in runs]) for key, _, _ in workloads}
               for name, runs in rounds.items()}
    return {"workloads": workloads, "results": results, "pin": a.cluster_pin,
            "rounds": a.cluster_rounds, "load": (load_before, os.getloadavg()[0]),
            "revision": a.cetcd_revision}


def median_round(rows):
    """The row with the median requests/s (the lower middle one for an even count), with
    the lowest and highest requests/s of all rounds and whether any round saw a leader change."""
    ordered = sorted(rows, key=lambda r: r["rps"])
    row = dict(ordered[(len(ordered) - 1) // 2])
    row["rps_min"], row["rps_max"] = ordered[0]["rps"], ordered[-1]["rps"]
    row["leader_changed"] = any(r["leader_changed"] for r in rows)
    return row


def cluster_targets(res):
    """The issue 8 targets as (target, etcd figure, cetcd figure, met) from one run."""
    e, c = res["results"]["etcd"], res["results"]["cetcd"]
    def ratio(x, y):
        return x / y if y else float("nan")
    put_x = ratio(c["put"]["rps"], e["put"]["rps"])
    cpu_x = ratio(c["put"]["cpu_us"], e["put"]["cpu_us"])
    range_x = ratio(c["range"]["rps"], e["range"]["rps"])
    yes = lambda ok: "yes" if ok else "no"
    return [
        ("3-member put throughput ≥ 2× etcd's", f"{e['put']['rps']:.0f}/s", f"{c['put']['rps']:.0f}/s ({put_x:.2f}×)",
         yes(put_x >= 2)),
        ("server CPU per put, all 3 members, ≤ 1/3 of etcd's", f"{e['put']['cpu_us']:.1f} µs",
         f"{c['put']['cpu_us']:.1f} µs ({cpu_x:.2f}×)", yes(cpu_x <= 1 / 3)),
        ("3-member put p99 ≤ etcd's", f"{e['put']['p99_ms']:.3f} ms", f"{c['put']['p99_ms']:.3f} ms",
         yes(c["put"]["p99_ms"] <= e["put"]["p99_ms"])),
        ("3-member linearizable range ≥ 3× etcd's", f"{e['range']['rps']:.0f}/s",
         f"{c['range']['rps']:.0f}/s ({range_x:.2f}×)", yes(range_x >= 3)),
    ]


def cluster_block(res, sync_ms, cmd):
    """The generated text of the cluster section (between the cluster BEGIN/END markers)."""
    pin = ("members not pinned (the scheduler spreads them over both CPUs)" if res["pin"] == "none"
           else "all members pinned to CPU 1")
    lines = ["<!-- generated by scripts/bench.py (cluster section): numbers below are replaced on every run -->",
             f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `{cmd}`, cetcd {res['revision']}, "
             f"{os.cpu_count()} CPUs; {CLUSTER_SIZE}-member clusters on loopback, {pin}, benchmark tool on CPU 0. "
             f"One `fdatasync` on this disk: p50 {sync_ms:.3f} ms. 1-minute load average "
             f"{res['load'][0]:.1f} before, {res['load'][1]:.1f} after (above 2, other processes "
             f"shared the 2 CPUs and the figures are noisy).",
             ""]
    if res["rounds"] > 1:
        lines += [f"{res['rounds']} rounds, etcd and cetcd alternating; each row is the round with the median "
                  f"requests/s, with the lowest and highest requests/s of all rounds in brackets.", ""]
    lines += ["| workload | server | requests/s | p50 ms | p99 ms | server CPU µs/req (all members) |",
              "|---|---|---:|---:|---:|---:|"]
    for key, _, _ in res["workloads"]:
        for name in ("etcd", "cetcd"):
            r = res["results"][name][key]
            note = " (leader changed during the run)" if r["leader_changed"] else ""
            spread = f" ({r['rps_min']:.0f}–{r['rps_max']:.0f})" if res["rounds"] > 1 else ""
            lines.append(f"| {r['label']}{note} | {name} | {r['rps']:.0f}{spread} | {r['p50_ms']:.3f} | "
                         f"{r['p99_ms']:.3f} | {r['cpu_us']:.1f} |")
    lines += ["", "Against the issue 8 targets (this run, all-members rows):", "",
              "| target | etcd | cetcd | met? |", "|---|---:|---:|---|"]
    for target, e, c, met in cluster_targets(res):
        lines.append(f"| {target} | {e} | {c} | {met} |")
    return "\n".join(lines) + "\n"


# ---- TLS and auth (issue 10 targets) ------------------------------------------------------
class Certs:
    """One CA and a server certificate for 127.0.0.1 signed by it (PEM files in a directory)."""

    def __init__(self, directory):
        self.ca, self.cert, self.key = (os.path.join(directory, n) for n in ("ca.pem", "server.pem", "server-key.pem"))
        ca_key, csr, ext = (os.path.join(directory, n) for n in ("ca-key.pem", "server.csr", "san.ext"))
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        for cmd in (["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", self.ca,
                     "-days", "2", "-subj", "/CN=cetcd-bench-ca"],
                    ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out", csr,
                     "-subj", "/CN=127.0.0.1"],
                    ["x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", ca_key, "-CAcreateserial",
                     "-out", self.cert, "-days", "2", "-extfile", ext]):
            subprocess.run(["openssl"] + cmd, capture_output=True, check=True)


SECURITY_MODES = [("plain", "no TLS, no auth"), ("tls", "TLS (https, server certificate)"),
                  ("auth", "auth enabled, simple token, no TLS")]


def enable_auth(srv):
    """root (role root) and a user `bench` whose role may read and write every key (the
    benchmark's put keys are binary), then auth enable; later requests go as bench."""
    for args in (["role", "add", "root"], ["user", "add", "root", "--new-user-password=rootpw"],
                 ["user", "grant-role", "root", "root"], ["role", "add", "bench"],
                 ["role", "grant-permission", "bench", "readwrite", "--prefix", ""],
                 ["user", "add", "bench", "--new-user-password=benchpw"],
                 ["user", "grant-role", "bench", "bench"], ["auth", "enable"]):
        srv.ctl(*args)
    srv.user = "bench:benchpw"


def security_workloads(scale):
    """(key, label, args) of the TLS/auth workloads: the single-member put and range shapes."""
    s = lambda n: str(max(100, int(n * scale)))
    return [("put", "put 4 conns/32 clients 256 B",
             ["--conns", "4", "--clients", "32", "put", "--total", s(20000), "--key-size", "8",
              "--val-size", "256", "--key-space-size", "100000"]),
            ("range-l", "range linearizable 4 conns/32 clients",
             ["--conns", "4", "--clients", "32", "range", "key", "--total", s(40000), "--consistency", "l"]),
            ("range-s", "range serializable 4 conns/32 clients",
             ["--conns", "4", "--clients", "32", "range", "key", "--total", s(40000), "--consistency", "s"])]


def net_of_setup(bench_bin, srv, args, label, setup_n=32):
    """run_bench's row for args, plus "net_cpu_us": server CPU per request without the fixed
    cost of the tool's connections (TLS handshakes; with auth one Authenticate per connection,
    a bcrypt check), measured by the same command with --total setup_n just before."""
    i = args.index("--total")
    n = int(args[i + 1])
    short = args[:i + 1] + [str(setup_n)] + args[i + 2:]
    setup = run_bench(bench_bin, srv, short, f"{label} (setup, {setup_n} requests)")
    row = run_bench(bench_bin, srv, args, label)
    row["setup_cpu_ms"] = setup["cpu_us"] * setup_n / 1000
    row["net_cpu_us"] = (row["cpu_us"] * n - setup["cpu_us"] * setup_n) / (n - setup_n)
    return row


def run_security_section(a, work):
    """For each mode (plain, TLS, auth), etcd then cetcd on a fresh data dir: idle RSS, then
    the same workloads. Returns {mode: {name: {"idle_rss_kib", key: row}}}."""
    certs = Certs(work)
    load_before = os.getloadavg()[0]
    res = {}
    for mode, _ in SECURITY_MODES:
        res[mode] = {}
        for name, binary in (("etcd", a.etcd), ("cetcd", a.cetcd)):
            srv = Server(name, binary, os.path.join(work, f"{name}-{mode}"), certs if mode == "tls" else None)
            srv.start()
            try:
                time.sleep(1)
                rows = {"idle_rss_kib": rss_kib(srv.proc.pid)}
                if mode == "auth":
                    enable_auth(srv)
                srv.ctl("put", "key", "v" * 256)
                for key, label, args in security_workloads(a.scale):
                    rows[key] = net_of_setup(a.bench_bin, srv, args, f"{mode}: {label}")
                res[mode][name] = rows
            finally:
                srv.stop()
    res["load"] = (load_before, os.getloadavg()[0])
    return res


def security_block(res, cmd, revision):
    """The generated text of the TLS/auth section (between the SECURITY markers)."""
    lines = ["<!-- generated by scripts/bench.py (security section): numbers below are replaced on every run -->",
             f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `{cmd}`, cetcd {revision}, "
             f"{os.cpu_count()} CPUs; servers on CPU 1, benchmark tool on CPU 0. 1-minute load average "
             f"{res['load'][0]:.1f} before, {res['load'][1]:.1f} after (above 2, other processes shared "
             f"the 2 CPUs and the figures are noisy; etcd and cetcd ran one after the other in each mode).",
             "",
             "Server CPU per request is given whole (all server CPU during the run / requests) and net "
             "of the connections' setup (the server CPU of the same command with `--total 32` run just "
             "before, subtracted: TLS handshakes, and with auth one bcrypt-checked Authenticate per "
             "connection); the setup column is that fixed cost in ms. The targets use the net figure.",
             "", "| mode | workload | etcd req/s | cetcd req/s | etcd CPU µs/req whole / net | "
             "cetcd CPU µs/req whole / net | setup ms etcd / cetcd | cetcd/etcd net CPU |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for mode, desc in SECURITY_MODES:
        e, c = res[mode]["etcd"], res[mode]["cetcd"]
        for key, label, _ in security_workloads(1):
            ratio = c[key]["net_cpu_us"] / e[key]["net_cpu_us"] if e[key]["net_cpu_us"] else float("nan")
            lines.append(f"| {desc} | {label} | {e[key]['rps']:.0f} | {c[key]['rps']:.0f} | "
                         f"{e[key]['cpu_us']:.1f} / {e[key]['net_cpu_us']:.1f} | "
                         f"{c[key]['cpu_us']:.1f} / {c[key]['net_cpu_us']:.1f} | "
                         f"{e[key]['setup_cpu_ms']:.0f} / {c[key]['setup_cpu_ms']:.0f} | {ratio:.2f} |")
        lines.append(f"| {desc} | idle RSS (MiB, right after start) | - | - | "
                     f"{e['idle_rss_kib'] / 1024:.1f} | {c['idle_rss_kib'] / 1024:.1f} | - | "
                     f"{c['idle_rss_kib'] / e['idle_rss_kib']:.2f} |")
    lines += ["", "Against the issue 10 targets (this run):", "", "| target | etcd | cetcd | cetcd/etcd | met? |",
              "|---|---:|---:|---:|---|"]
    for mode, what in (("tls", "over TLS"), ("auth", "with auth (simple token)")):
        for key, op in (("put", "put"), ("range-l", "linearizable range"), ("range-s", "serializable range")):
            e, c = res[mode]["etcd"][key]["net_cpu_us"], res[mode]["cetcd"][key]["net_cpu_us"]
            x = c / e if e else float("nan")
            lines.append(f"| server CPU per {op} {what} ≤ 1/3 of etcd's | {e:.1f} µs | {c:.1f} µs | {x:.2f} | "
                         f"{'yes' if x <= 1 / 3 else 'no'} |")
    return "\n".join(lines) + "\n"


def run_workloads(a, srv, name, workloads, fanout, results):
    """The request workloads of one server; rows go to results[name]."""
    s = lambda n: str(max(100, int(n * a.scale)))
    subprocess.run(["etcdctl", f"--endpoints={srv.endpoint}", "put", "key", "v" * 256],
                   env=dict(os.environ, ETCDCTL_API="3"), capture_output=True, check=True)
    results[name] = [run_bench(a.bench_bin, srv, args, label) for label, args in workloads]
    results[name].append(run_bench(a.bench_bin, srv, fanout[1], fanout[0], fanout[2], fanout[3]))
    if a.cetcd_bench:
        results[name].append(libcetcd_fanout(a.cetcd_bench, srv, max(200, int(1000 * a.scale))))
        results[name] += lean_single_client(a.cetcd_bench, srv, a.scale)
    p50, p99, cpu = lock_handoff(srv, int(s(200)))
    results[name].append({"label": "lock handoff (Lock service)", "rps": float("nan"),
                          "p50_ms": p50, "p99_ms": p99, "cpu_us": cpu, "wall": 0})
    print(f"  {name:6s} lock handoff p50 {p50:.3f} ms p99 {p99:.3f} ms cpu {cpu:.1f} us", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-bin", required=True)
    ap.add_argument("--cetcd", required=True)
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--cetcd-bench", default="", help="bench/cetcd-bench binary (libcetcd client)")
    ap.add_argument("--out", default="docs/PERFORMANCE.md")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply request totals")
    ap.add_argument("--keys", type=int, default=100000, help="keys for the RSS/restart test")
    ap.add_argument("--only", choices=("single", "cluster", "footprint", "security"),
                    help="run only the single-member part, only the 3-member cluster part, only the "
                         "footprint figures (printed, not written), or only the TLS/auth part")
    ap.add_argument("--cluster-pin", choices=sorted(CLUSTER_PIN), default="none",
                    help="cluster members: not pinned (default) or all on CPU 1")
    ap.add_argument("--cluster-rounds", type=int, default=3,
                    help="alternate etcd and cetcd clusters this many times; report the median round")
    a = ap.parse_args()
    try:
        bench_all(a)
    except (RuntimeError, AssertionError, subprocess.CalledProcessError) as e:
        print(f"bench: FAILED, {a.out} not written: {e}", file=sys.stderr)
        sys.exit(1)


def cetcd_revision(binary):
    """Which source the cetcd binary was built from, as far as we can tell: when it is this
    repository's build, the last commit that touched src/ (+"-dirty" if src/ has uncommitted
    changes; a commit of src, so it stays valid when later commits are rebased). Raises if
    the build is older than that commit (its numbers would be reported under a source they
    do not measure)."""
    path = os.path.realpath(binary)
    if not path.startswith(os.path.realpath(harness.REPO) + os.sep):
        return f"binary {binary}"
    git = lambda *args: subprocess.run(["git", "-C", harness.REPO] + list(args), capture_output=True,
                                       text=True, check=True).stdout.strip()
    commit, when = git("log", "-1", "--format=%h %ct", "--", "src").split()
    if os.path.getmtime(path) < int(when):
        raise RuntimeError(f"{binary} is older than the last commit that touched src/: run make build first")
    dirty = "-dirty" if git("status", "--porcelain", "--", "src") else ""
    return f"src at {commit}{dirty}"


def bench_all(a):
    """Runs the parts `--only` selects and writes their blocks of a.out once all succeeded."""
    cmd = " ".join(sys.argv)
    a.cetcd_revision = cetcd_revision(a.cetcd)
    if a.only == "cluster":
        work = tempfile.mkdtemp(prefix="cetcd-bench-")
        try:
            sync_ms = fdatasync_cost(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        cluster = run_cluster_section(a)
        write_blocks(a.out, {CLUSTER_MARKERS: cluster_block(cluster, sync_ms, cmd)})
        return
    if a.only == "security":
        write_blocks(a.out, {SECURITY_MARKERS: security_section_block(a, cmd)})
        return
    s = lambda n: str(max(100, int(n * a.scale)))
    workloads = [
        ("put 4 conns/32 clients 256 B", ["--conns", "4", "--clients", "32", "put", "--total", s(40000),
                                           "--key-size", "8", "--val-size", "256", "--key-space-size", "100000"]),
        ("put 1 client 256 B", ["--conns", "1", "--clients", "1", "put", "--total", s(2000),
                                "--key-size", "8", "--val-size", "256", "--key-space-size", "100000"]),
        ("range linearizable", ["--conns", "4", "--clients", "32", "range", "key", "--total", s(40000),
                                "--consistency", "l"]),
        ("range serializable", ["--conns", "4", "--clients", "32", "range", "key", "--total", s(40000),
                                "--consistency", "s"]),
        ("watch-latency (put 500/s)", ["watch-latency", "--total", s(2000), "--put-rate", "500"]),
        ("lease keep-alive 4 conns/32 clients", ["--conns", "4", "--clients", "32", "lease-keepalive",
                                                 "--total", s(20000)]),
    ]
    puts = int(s(500))
    fanout = ("watch fan-out 10 streams x 100 watchers (events)",
              ["watch", "--streams", "10", "--watch-per-stream", "100", "--put-total", str(puts),
               "--put-rate", "250"], "Watch events received summary", puts * 1000)
    work = tempfile.mkdtemp(prefix="cetcd-bench-")
    results = {}
    extra = {}
    client_rows = []
    try:
        sync_ms = fdatasync_cost(work)
        print(f"fdatasync on this disk: p50 {sync_ms:.3f} ms", flush=True)
        for name, binary in (("etcd", a.etcd), ("cetcd", a.cetcd)):
            srv = Server(name, binary, os.path.join(work, name))
            srv.start()
            try:
                time.sleep(1)
                idle_kib = rss_kib(srv.proc.pid)
                if a.only == "footprint":  # only the writes the full run makes before the fill
                    for label, args in workloads:
                        if label.startswith("put"):
                            run_bench(a.bench_bin, srv, args, label)
                else:
                    run_workloads(a, srv, name, workloads, fanout, results)
                extra[name] = footprint(a.bench_bin, srv, a.keys, idle_kib)
                # after the footprint, so that both servers' data dirs hold the same writes
                if a.only != "footprint" and name == "cetcd" and a.cetcd_bench:
                    client_rows = client_compare(a.bench_bin, a.cetcd_bench, srv, a.scale)
            finally:
                srv.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if a.only == "footprint":
        print_footprint(extra)
        return
    blocks = {BENCH_MARKERS: single_block(results, extra, sync_ms, cmd, client_rows)}
    if a.only != "single":
        blocks[CLUSTER_MARKERS] = cluster_block(run_cluster_section(a), sync_ms, cmd)
        blocks[SECURITY_MARKERS] = security_section_block(a, cmd)
    write_blocks(a.out, blocks)


def security_section_block(a, cmd):
    """Runs the TLS/auth section in a temporary directory and returns its generated text."""
    work = tempfile.mkdtemp(prefix="cetcd-bench-")
    try:
        res = run_security_section(a, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return security_block(res, cmd, a.cetcd_revision)


def print_footprint(extra):
    """Prints the footprint figures of both servers side by side (for --only footprint)."""
    for key, label, scale in (("idle_rss_kib", "idle RSS MiB", 1 / 1024), ("rss_100k_kib", "RSS with keys MiB", 1 / 1024),
                              ("rss_after_restart_kib", "RSS after restart MiB", 1 / 1024),
                              ("data_dir_bytes", "data dir MiB", 1 / 2**20), ("restart_s", "restart s", 1)):
        e, c = extra["etcd"][key] * scale, extra["cetcd"][key] * scale
        print(f"{label:24s} etcd {e:8.1f}  cetcd {c:8.1f}  ratio {c / e if e else float('nan'):.2f}")


BENCH_MARKERS = ("<!-- BEGIN BENCH -->", "<!-- END BENCH -->")
CLUSTER_MARKERS = ("<!-- BEGIN BENCH CLUSTER -->", "<!-- END BENCH CLUSTER -->")
SECURITY_MARKERS = ("<!-- BEGIN BENCH SECURITY -->", "<!-- END BENCH SECURITY -->")


def single_block(results, extra, sync_ms, cmd, client_rows=()):
    """The generated text of the single-member section (between the BENCH markers)."""
    lines = []
    lines.append("<!-- generated by scripts/bench.py: numbers below are replaced on every run -->")
    lines.append(f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `make bench` "
                 f"(`{cmd}`), {os.cpu_count()} CPUs; servers on CPU 1, benchmark tool on CPU 0.")
    lines.append(f"One `fdatasync` on this disk: p50 {sync_ms:.3f} ms.")
    lines.append("")
    lines.append("| workload | server | requests/s | p50 ms | p99 ms | server CPU µs/req |")
    lines.append("|---|---|---:|---:|---:|---:|")
    for i in range(len(results.get("etcd", []))):
        for name in ("etcd", "cetcd"):
            r = results[name][i]
            rps = "-" if r["rps"] != r["rps"] else f"{r['rps']:.0f}"
            lines.append(f"| {r['label']} | {name} | {rps} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
                         f"{r['cpu_us']:.1f} |")
    lines.append("")
    lines.append("| figure | etcd | cetcd | cetcd/etcd |")
    lines.append("|---|---:|---:|---:|")
    def row(label, key, fmt, scale=1.0):
        e, c = extra["etcd"][key] * scale, extra["cetcd"][key] * scale
        ratio = c / e if e else float("nan")
        lines.append(f"| {label} | {fmt.format(e)} | {fmt.format(c)} | {ratio:.2f} |")
    row("idle RSS (MiB)", "idle_rss_kib", "{:.1f}", 1 / 1024)
    row("RSS with 100k keys (MiB)", "rss_100k_kib", "{:.1f}", 1 / 1024)
    row("RSS after restart with 100k keys (MiB)", "rss_after_restart_kib", "{:.1f}", 1 / 1024)
    row("data dir with 100k keys (MiB)", "data_dir_bytes", "{:.1f}", 1 / 1024**2)
    row("restart time with 100k keys (s, until healthy)", "restart_s", "{:.2f}")
    lines += fanout_lines(results)
    if client_rows:
        lines.append("")
        lines.append("Client cost, same server (cetcd), same workloads (4 connections, 32 concurrent requests):")
        lines.append("")
        lines.append("| workload: client | requests/s | p50 ms | p99 ms | client CPU µs/req |")
        lines.append("|---|---:|---:|---:|---:|")
        for r in client_rows:
            lines.append(f"| {r['label']} | {r['rps']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
                         f"{r['client_cpu_us']:.1f} |")
    return "\n".join(lines) + "\n"


def write_blocks(path, blocks):
    """Replaces each {(begin, end): text} block of the document at path (appending blocks it
    lacks; the cluster block goes right after the single-member one)."""
    try:
        doc = open(path).read()
    except FileNotFoundError:
        doc = "# Performance\n"
    for (begin, end), generated in blocks.items():
        if begin in doc and end in doc:
            pre, rest = doc.split(begin, 1)
            post = rest.split(end, 1)[1]
            doc = pre + begin + "\n" + generated + end + post
        elif begin == CLUSTER_MARKERS[0] and BENCH_MARKERS[1] in doc:
            pre, post = doc.split(BENCH_MARKERS[1], 1)
            doc = pre + BENCH_MARKERS[1] + "\n\n" + begin + "\n" + generated + end + post
        else:
            doc += "\n" + begin + "\n" + generated + end + "\n"
    with open(path, "w") as f:
        f.write(doc)
    print(f"wrote {path}")

if __name__ == "__main__":
    main()
