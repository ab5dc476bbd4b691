#!/usr/bin/env bash
# `make bench`: drives real etcd and cetcd with etcd's own benchmark tool in one run, each
# server pinned to CPU 1 and the tool to CPU 0, then 3-member clusters of each, and writes
# docs/PERFORMANCE.md. Extra arguments go to scripts/bench.py (e.g. --only cluster, --only security:
# TLS and auth side by side).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=${CETCD_SHARED_TOOLS:-$PWD/../shared/tools}
BENCH_BIN=${BENCH_BIN:-/tmp/etcd-benchmark}
if [ ! -x "$BENCH_BIN" ]; then
  echo "bench: building etcd's benchmark tool (once) into $BENCH_BIN" >&2
  OUT_BIN=$BENCH_BIN bash "$TOOLS/build-etcd-benchmark.sh"
fi
exec /usr/bin/python3 scripts/bench.py --bench-bin "$BENCH_BIN" --cetcd build/cetcd --cetcd-bench build/bench/cetcd-bench --etcd /usr/bin/etcd \
  --out docs/PERFORMANCE.md "$@"
