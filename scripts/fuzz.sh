#!/usr/bin/env bash
# `make fuzz` (and `make test`): builds every libFuzzer target in tests/fuzz/ with clang
# (ASan + UBSan) and runs each for FUZZ_SECONDS (default 60), starting from its committed
# seed corpus tests/fuzz/corpus/<target>/ (new inputs go to build-fuzz/<target>.corpus/, the
# seeds are never modified). A crash, leak or UBSan report fails the run; the input is kept
# in build-fuzz/ as crash-* / leak-*.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-60}
OUT=build-fuzz
command -v clang >/dev/null || { echo "fuzz: clang is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
mkdir -p "$OUT/gen"
protoc-c --proto_path=proto --c_out="$OUT/gen" proto/*.proto
# the gRPC server reaches OpenSSL through net/tls.h, so every target links net/tls*.c and
# auth/auth_jws.c with OpenSSL
CORE="$(ls src/base/*.c src/grpc/*.c) src/net/tls.c src/net/tls_cert.c src/auth/auth_jws.c"
FLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc -Iinclude -I$OUT/gen"
LIBS="$(pkg-config --libs libuv libnghttp2 libprotobuf-c openssl) -lpthread"
rc=0
for t in tests/fuzz/fuzz_*.c; do
  name=$(basename "$t" .c)
  seeds=tests/fuzz/corpus/$name
  if [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
    echo "fuzz: no seed corpus in $seeds (tests/fuzz/seed_corpus.py writes it)" >&2
    rc=1
    continue
  fi
  srcs=$CORE libs=$LIBS
  case $name in
    fuzz_auth_token) srcs="$CORE src/auth/auth_token.c src/auth/auth_jwt.c"
      libs="$LIBS $(pkg-config --libs nettle)" ;;
  esac
  echo "fuzz: building $name" >&2
  clang $FLAGS "$t" $srcs "$OUT"/gen/*.c $libs -o "$OUT/$name"
  mkdir -p "$OUT/$name.corpus"
  echo "fuzz: running $name for ${SECS}s from $(ls "$seeds" | wc -l) seeds" >&2
  if ! (cd "$OUT" && "./$name" -max_total_time="$SECS" -print_final_stats=1 "$name.corpus" "../$seeds"); then
    echo "fuzz: $name FAILED (input saved in $OUT/)" >&2
    rc=1
  fi
done
exit $rc
