#!/usr/bin/env bash
# Run etcd 3.4's own e2e suite (via ../shared/tools/run-etcd-e2e.sh, which CI keeps beside
# the repo) against cetcd. Exits non-zero if any selected test fails.
#
# Env:
#   SERVER_BIN        server to test (default: <repo>/build/cetcd)
#   CETCD_E2E_TESTS   Go test regex or a run-etcd-e2e.sh keyword (curated, v3, ctlv3, all);
#                     default: the selection below.
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

# TestCtlV3GetQuorum runs a 3-member cluster (the Raft path, server/raft_node.c); the member
# tests and TestIssue6361 change the membership of a single member (server/reconfig.c).
# Step 1 (KV core), then step 2 (watch, leases, lock/elect, alarms, defrag, snapshots, metrics),
# then client TLS (https listeners, auto-TLS, client certificates, CRL, cipher suites) and
# peer TLS (3-member clusters with https peer URLs), then auth (src/auth/: users, roles,
# permissions, simple and JWT tokens; with TLS, a client certificate's CN as the user), then
# the JSON gateway's stream limit (--max-concurrent-streams).
DEFAULT_TESTS='^(TestCtlV3Put|TestCtlV3Get|TestCtlV3Del|TestCtlV3GetFormat|TestCtlV3GetRev|TestCtlV3GetKeysOnly|TestCtlV3PutIgnoreValue|TestCtlV3TxnInteractiveSuccess|TestCtlV3TxnInteractiveFail|TestCtlV3Compact|TestCtlV3CompactPhysical|TestCtlV3EndpointStatus|TestCtlV3EndpointHealth|TestCtlV3EndpointHashKV|TestCtlV3MemberList|TestV3CurlPutGetNoTLS|TestCtlV3Watch|TestCtlV3WatchInteractive|TestCtlV3LeaseGrantTimeToLive|TestCtlV3LeaseGrantLeases|TestCtlV3LeaseTestTimeToLiveExpired|TestCtlV3LeaseKeepAlive|TestCtlV3LeaseKeepAliveOnce|TestCtlV3LeaseRevoke|TestCtlV3PutIgnoreLease|TestCtlV3Lock|TestCtlV3Elect|TestCtlV3Alarm|TestCtlV3Defrag|TestCtlV3Snapshot|TestCtlV3SnapshotCorrupt|TestCtlV3SnapshotStatusBeforeRestore|TestV3MetricsInsecure|TestV3MetricsSecure|TestV3CurlWatch|TestV3CurlLeaseGrantNoTLS|TestV3CurlCampaignNoTLS|TestV3CurlTxn|TestCtlV3GetQuorum|TestCtlV3MemberAdd|TestCtlV3MemberAddForLearner|TestCtlV3MemberRemove|TestCtlV3MemberUpdate|TestIssue6361|TestCtlV3DelClientTLS|TestCtlV3DialWithHTTPScheme|TestCtlV3GetClientAutoTLS|TestCtlV3GetClientTLS|TestCtlV3GetRevokedCRL|TestCtlV3LeaseGrantLeasesClientAutoTLS|TestCtlV3LeaseGrantLeasesClientTLS|TestCtlV3LeaseGrantTimeToLiveClientAutoTLS|TestCtlV3LeaseGrantTimeToLiveClientTLS|TestCtlV3LeaseKeepAliveClientAutoTLS|TestCtlV3LeaseKeepAliveClientTLS|TestCtlV3LeaseKeepAliveOnceClientAutoTLS|TestCtlV3LeaseKeepAliveOnceClientTLS|TestCtlV3LeaseRevokeClientAutoTLS|TestCtlV3LeaseRevokeClientTLS|TestCtlV3LeaseTestTimeToLiveExpiredClientAutoTLS|TestCtlV3LeaseTestTimeToLiveExpiredClientTLS|TestCtlV3MemberAddClientAutoTLS|TestCtlV3MemberAddClientTLS|TestCtlV3MemberListClientAutoTLS|TestCtlV3MemberListClientTLS|TestCtlV3MemberRemoveClientAutoTLS|TestCtlV3MemberRemoveClientTLS|TestCtlV3MemberUpdateClientAutoTLS|TestCtlV3MemberUpdateClientTLS|TestCtlV3PutClientAutoTLS|TestCtlV3PutClientTLS|TestCtlV3PutClientTLSFlagByEnv|TestCtlV3TxnInteractiveSuccessClientTLS|TestCtlV3WatchClientTLS|TestCtlV3WatchInteractiveClientTLS|TestV3CurlCipherSuitesMismatch|TestV3CurlCipherSuitesValid|TestV3CurlPutGetAllTLS|TestV3CurlPutGetClientTLS|TestV3Curl_MaxStreams_BelowLimit_TLS_Medium|TestV3Curl_MaxStreams_BelowLimit_TLS_Small|TestV3Curl_MaxStreams_BelowLimit_NoTLS_Small|TestV3Curl_MaxStreams_BelowLimit_NoTLS_Medium|TestV3Curl_MaxStreams_ReachLimit_NoTLS_Small|TestV3Curl_MaxStreams_ReachLimit_NoTLS_Medium|TestV3Curl_MaxStreams_ReachLimit_TLS_Small|TestV3Curl_MaxStreams_ReachLimit_TLS_Medium|TestCtlV3PutPeerTLS|TestCtlV3GetPeerTLS|TestCtlV3DelPeerTLS|TestCtlV3LeaseGrantTimeToLivePeerTLS|TestCtlV3LeaseGrantLeasesPeerTLS|TestCtlV3LeaseTestTimeToLiveExpiredPeerTLS|TestCtlV3LeaseKeepAlivePeerTLS|TestCtlV3LeaseKeepAliveOncePeerTLS|TestCtlV3LeaseRevokePeerTLS|TestCtlV3MemberListPeerTLS|TestCtlV3MemberAddPeerTLS|TestCtlV3MemberRemovePeerTLS|TestCtlV3MemberUpdatePeerTLS|TestCtlV3MemberAddNoTLS|TestCtlV3MemberRemoveNoTLS|TestCtlV3MemberUpdateNoTLS|TestCtlV3TxnInteractiveSuccessPeerTLS|TestCtlV3WatchPeerTLS|TestCtlV3WatchInteractivePeerTLS|TestEtcdMultiPeer|TestV3CurlPutGetPeerTLS|TestCtlV3AuthEnable|TestCtlV3AuthDisable|TestCtlV3AuthWriteKey|TestCtlV3AuthRoleUpdate|TestCtlV3AuthUserDeleteDuringOps|TestCtlV3AuthRoleRevokeDuringOps|TestCtlV3AuthTxn|TestCtlV3AuthPrefixPerm|TestCtlV3AuthMemberAdd|TestCtlV3AuthMemberRemove|TestCtlV3AuthMemberUpdate|TestCtlV3AuthRevokeWithDelete|TestCtlV3AuthInvalidMgmt|TestCtlV3AuthFromKeyPerm|TestCtlV3AuthAndWatch|TestCtlV3AuthLeaseTestKeepAlive|TestCtlV3AuthLeaseTestTimeToLiveExpired|TestCtlV3AuthLeaseGrantLeases|TestCtlV3AuthLeaseRevoke|TestCtlV3AuthRoleGet|TestCtlV3AuthUserGet|TestCtlV3AuthRoleList|TestCtlV3AuthDefrag|TestCtlV3AuthEndpointHealth|TestCtlV3AuthSnapshot|TestCtlV3AuthTestCacheReload|TestCtlV3UserAddNoTLS|TestCtlV3UserDeleteNoTLS|TestCtlV3UserListNoTLS|TestCtlV3UserPasswdNoTLS|TestCtlV3RoleAddNoTLS|TestV3CurlAuth|TestCtlV3AuthAndWatchJWT|TestCtlV3AuthLeaseGrantLeasesJWT|TestCtlV3AuthSnapshotJWT|TestCtlV3AuthTxnJWT|TestCtlV3AuthJWTExpire|TestCtlV3AuthCertCN|TestCtlV3AuthCertCNAndUsername|TestCtlV3AuthCertCNAndUsernameNoPassword|TestCtlV3AuthCertCNWithWithConcurrentOperation|TestCtlV3RoleAddClientTLS|TestCtlV3RoleAddPeerTLS|TestCtlV3UserAddClientTLS|TestCtlV3UserAddPeerTLS|TestCtlV3UserAddClientAutoTLS|TestCtlV3UserListClientTLS|TestCtlV3UserListPeerTLS|TestCtlV3UserListClientAutoTLS|TestCtlV3UserDeleteClientTLS|TestCtlV3UserDeletePeerTLS|TestCtlV3UserDeleteClientAutoTLS|TestCtlV3UserPasswdClientTLS|TestCtlV3UserPasswdPeerTLS|TestCtlV3UserPasswdClientAutoTLS|TestV3CurlAuthClientTLSCertAuth|TestEtcdPeerCNAuth|TestEtcdPeerNameAuth|TestCtlV3MoveLeaderScenarios)$'
SEL=${CETCD_E2E_TESTS:-$DEFAULT_TESTS}
export SERVER_BIN=${SERVER_BIN:-$repo/build/cetcd}

if [[ ! -x $SERVER_BIN ]]; then
  echo "[run-e2e] ERROR: server binary $SERVER_BIN not found or not executable (build first)" >&2
  exit 2
fi

echo "[run-e2e] server=$SERVER_BIN selection=$SEL" >&2
exec bash "$runner" "$SEL"
