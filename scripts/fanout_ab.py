#!/usr/bin/env python3
"""Watch fan-out A/B: real etcd and one or more cetcd builds, one after the other in each
round, with etcd's benchmark tool (`watch --streams 10 --watch-per-stream 100 --put-total
PUTS --put-rate RATE`: one connection, a synchronous putter) and with libcetcd
(`cetcd-bench watch-fanout PUTS 10 100 RATE`: 10 connections x 100 watches, an asynchronous
putter on its own connection). Servers as in scripts/bench.py (CPU 1), clients on CPU 0; the
order of the servers rotates from round to round.
Prints per round and server: events/s, the client's CPU (utime+stime) per event and the
server's CPU per event for both clients, then the min-max over the rounds.

  scripts/fanout_ab.py --bench-bin /tmp/etcd-benchmark --cetcd-bench build/bench/cetcd-bench \\
      [--rounds 3] [--puts 1000] [--rate 2000] BUILD/cetcd [OTHER_BUILD/cetcd ...]
"""
import argparse, os, shutil, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-bin", required=True)
    ap.add_argument("--cetcd-bench", required=True)
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--puts", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("cetcd", nargs="+")
    a = ap.parse_args()
    servers = [("etcd", a.etcd)] + [(b, b) for b in a.cetcd]
    tool = ["watch", "--streams", "10", "--watch-per-stream", "100", "--put-total", str(a.puts),
            "--put-rate", str(a.rate)]
    rows = {name: [] for name, _ in servers}
    work = tempfile.mkdtemp(prefix="cetcd-fanout-")
    try:
        for rnd in range(a.rounds):
            order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]  # no fixed order
            for name, binary in order:
                i = servers.index((name, binary))
                srv = bench.Server("etcd" if i == 0 else "cetcd", binary, os.path.join(work, f"{rnd}-{i}"))
                srv.start()
                try:
                    g = bench.run_bench(a.bench_bin, srv, tool, "fan-out, etcd's tool",
                                        "Watch events received summary", a.puts * 1000)
                    c = bench.libcetcd_fanout(a.cetcd_bench, srv, a.puts, a.rate)
                finally:
                    srv.stop()
                rows[name].append((g, c))
                print(f"round {rnd} {name}: etcd tool {g['rps']:.0f} ev/s, tool CPU {g['client_cpu_us']:.2f} "
                      f"us/ev, server {g['cpu_us']:.2f} us/ev | libcetcd {c['rps']:.0f} ev/s, client CPU "
                      f"{c['client_cpu_us']:.2f} us/ev, server {c['cpu_us']:.2f} us/ev", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rng = lambda v, f: f"{f.format(min(v))}-{f.format(max(v))}"
    print("\n| server | etcd tool events/s | tool CPU µs/event | server CPU µs/event | "
          "libcetcd events/s | libcetcd CPU µs/event | server CPU µs/event |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rs in rows.items():
        g, c = [r[0] for r in rs], [r[1] for r in rs]
        print(f"| {name} | {rng([x['rps'] for x in g], '{:.0f}')} | {rng([x['client_cpu_us'] for x in g], '{:.2f}')} "
              f"| {rng([x['cpu_us'] for x in g], '{:.2f}')} | {rng([x['rps'] for x in c], '{:.0f}')} | "
              f"{rng([x['client_cpu_us'] for x in c], '{:.2f}')} | {rng([x['cpu_us'] for x in c], '{:.2f}')} |")


if __name__ == "__main__":
    main()
