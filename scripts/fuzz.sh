#!/usr/bin/env bash
# `make fuzz`: builds every libFuzzer target in tests/fuzz/ with clang (ASan + UBSan) and runs
# each for FUZZ_SECONDS (default 60). Crashes are kept in build-fuzz/<target>/ as crash-*.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-60}
OUT=build-fuzz
mkdir -p "$OUT/gen"
protoc-c --proto_path=proto --c_out="$OUT/gen" proto/*.proto
CORE=$(ls src/base/*.c src/grpc/*.c src/api/pbjson.c 2>/dev/null)
FLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -Iinclude -I$OUT/gen"
LIBS="$(pkg-config --libs libuv libnghttp2 libprotobuf-c)"
rc=0
for t in tests/fuzz/fuzz_*.c; do
  name=$(basename "$t" .c)
  echo "fuzz: building $name" >&2
  clang $FLAGS "$t" $CORE "$OUT"/gen/*.c $LIBS -o "$OUT/$name"
  mkdir -p "$OUT/$name.corpus"
  echo "fuzz: running $name for ${SECS}s" >&2
  (cd "$OUT" && "./$name" -max_total_time="$SECS" -print_final_stats=1 "$name.corpus") || rc=1
done
exit $rc
