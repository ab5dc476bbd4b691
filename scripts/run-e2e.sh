#!/usr/bin/env bash
# Run etcd 3.4's own e2e suite (via ../shared/tools/run-etcd-e2e.sh, which CI keeps beside
# the repo) against cetcd. Exits non-zero if any selected test fails.
#
# Env:
#   SERVER_BIN        server to test (default: <repo>/build/cetcd)
#   CETCD_E2E_TESTS   Go test regex or a run-etcd-e2e.sh keyword (curated, v3, ctlv3, all);
#                     default: the KV/txn/compaction/endpoint/member tests below.
#   Everything else (E2E_TIMEOUT, E2E_TEST_TIMEOUT, E2E_EXCLUDE, ...) passes through.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
runner="$here/../../shared/tools/run-etcd-e2e.sh"

if [[ ! -f $runner ]]; then
  echo "[run-e2e] ERROR: $runner not found: etcd's e2e gate cannot run. It comes with the" \
    "project's shared/ folder beside this repository (../shared/tools); clone the repo there." >&2
  exit 1
fi

# TestCtlV3GetQuorum runs a 3-member cluster (the Raft path, server/raft_node.c).
# Step 1 (KV core), then step 2 (watch, leases, lock/elect, alarms, defrag, snapshots, metrics).
DEFAULT_TESTS='^(TestCtlV3Put|TestCtlV3Get|TestCtlV3Del|TestCtlV3GetFormat|TestCtlV3GetRev|TestCtlV3GetKeysOnly|TestCtlV3PutIgnoreValue|TestCtlV3TxnInteractiveSuccess|TestCtlV3TxnInteractiveFail|TestCtlV3Compact|TestCtlV3CompactPhysical|TestCtlV3EndpointStatus|TestCtlV3EndpointHealth|TestCtlV3EndpointHashKV|TestCtlV3MemberList|TestV3CurlPutGetNoTLS|TestCtlV3Watch|TestCtlV3WatchInteractive|TestCtlV3LeaseGrantTimeToLive|TestCtlV3LeaseGrantLeases|TestCtlV3LeaseTestTimeToLiveExpired|TestCtlV3LeaseKeepAlive|TestCtlV3LeaseKeepAliveOnce|TestCtlV3LeaseRevoke|TestCtlV3PutIgnoreLease|TestCtlV3Lock|TestCtlV3Elect|TestCtlV3Alarm|TestCtlV3Defrag|TestCtlV3Snapshot|TestCtlV3SnapshotCorrupt|TestCtlV3SnapshotStatusBeforeRestore|TestV3MetricsInsecure|TestV3MetricsSecure|TestV3CurlWatch|TestV3CurlLeaseGrantNoTLS|TestV3CurlCampaignNoTLS|TestV3CurlTxn|TestCtlV3GetQuorum)$'
SEL=${CETCD_E2E_TESTS:-$DEFAULT_TESTS}
export SERVER_BIN=${SERVER_BIN:-$repo/build/cetcd}

if [[ ! -x $SERVER_BIN ]]; then
  echo "[run-e2e] ERROR: server binary $SERVER_BIN not found or not executable (build first)" >&2
  exit 2
fi

echo "[run-e2e] server=$SERVER_BIN selection=$SEL" >&2
exec bash "$runner" "$SEL"
