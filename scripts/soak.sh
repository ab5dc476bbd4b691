#!/usr/bin/env bash
# `make soak` (not part of `make test`): the incident's TryLock pollers against cetcd with
# its default flags (auto-compaction periodic, 1 h) and no clock scaling, for SOAK_MINUTES
# (default 150: the file can only plateau after the second hourly compaction, see soak.py).
# Environment: SOAK_MINUTES, SOAK_STANDBYS (3), SOAK_RATE (100 tries/s per standby),
# CETCD_BIN (default build/cetcd).
set -euo pipefail
cd "$(dirname "$0")/.."
export CETCD_BIN=${CETCD_BIN:-$PWD/${BUILD:-build}/cetcd}
exec /usr/bin/python3 scripts/soak.py "$@"
