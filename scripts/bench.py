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

    def __init__(self, name, binary, data_dir):
        self.name, self.binary, self.data_dir = name, binary, data_dir
        self.cport, self.pport = free_port(), free_port()
        self.proc = None

    def start(self):
        url = f"http://127.0.0.1:{self.cport}"
        purl = f"http://127.0.0.1:{self.pport}"
        args = ["taskset", "-c", "1", self.binary, "--name", "bench", "--data-dir", self.data_dir,
                "--listen-client-urls", url, "--advertise-client-urls", url,
                "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
                "--initial-cluster", f"bench={purl}", "--quota-backend-bytes", str(8 * 1024**3)]
        self.log = open(self.data_dir + ".log", "ab")
        t0 = time.time()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.data_dir}.log")
            try:
                r = subprocess.run(["etcdctl", f"--endpoints=127.0.0.1:{self.cport}", "endpoint", "health"],
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
        return f"127.0.0.1:{self.cport}"

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
    cmd = ["taskset", "-c", "0", bench_bin, "--precise", "--endpoints", server.endpoint] + args
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
    ap.add_argument("--only", choices=("single", "cluster", "footprint"),
                    help="run only the single-member part, only the 3-member cluster part, or only the "
                         "footprint figures (printed, not written)")
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
    write_blocks(a.out, blocks)


def print_footprint(extra):
    """Prints the footprint figures of both servers side by side (for --only footprint)."""
    for key, label, scale in (("idle_rss_kib", "idle RSS MiB", 1 / 1024), ("rss_100k_kib", "RSS with keys MiB", 1 / 1024),
                              ("rss_after_restart_kib", "RSS after restart MiB", 1 / 1024),
                              ("data_dir_bytes", "data dir MiB", 1 / 2**20), ("restart_s", "restart s", 1)):
        e, c = extra["etcd"][key] * scale, extra["cetcd"][key] * scale
        print(f"{label:24s} etcd {e:8.1f}  cetcd {c:8.1f}  ratio {c / e if e else float('nan'):.2f}")


BENCH_MARKERS = ("<!-- BEGIN BENCH -->", "<!-- END BENCH -->")
CLUSTER_MARKERS = ("<!-- BEGIN BENCH CLUSTER -->", "<!-- END BENCH CLUSTER -->")


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
