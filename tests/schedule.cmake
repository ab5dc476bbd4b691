# How `make test` schedules ctest: `ctest -j4 --resource-spec-file tests/ctest-resources.json`.
# The spec has two "cpus" slots. Background tests (long pollers that mostly sleep, such as the
# incident's 10-minute run) take no slot and start first (highest COST), so they run beside
# the rest. Exclusive tests (clusters, fault injection, timing and footprint measurements,
# etcd's e2e gate) take both slots: no other foreground test runs with them. Every other test
# takes one slot, so two of them may run together. Plain `ctest` (no -j) runs one at a time.
set(CETCD_BACKGROUND_TESTS integration/test_incident unit/client/test_concurrency_incident
  unit/client/test_concurrency_incident@etcd)
set(CETCD_EXCLUSIVE_TESTS e2e/etcd_e2e_gate chaos/test_chaos_short integration/test_auth
  integration/test_cluster_lease integration/test_leader_errors integration/test_leadership
  integration/test_membership integration/test_peer_tls integration/test_power_loss
  integration/test_raft_snapshot integration/test_watch_lag integration/test_idle_cpu
  integration/test_footprint integration/test_lock_election integration/test_localhost)

# Gives test `t` (added in the calling directory) its place in the schedule above.
function(cetcd_test_schedule t)
  if(t IN_LIST CETCD_BACKGROUND_TESTS)
    set_tests_properties(${t} PROPERTIES COST 1000)
  elseif(t IN_LIST CETCD_EXCLUSIVE_TESTS)
    set_tests_properties(${t} PROPERTIES RESOURCE_GROUPS "cpus:2")
  else()
    set_tests_properties(${t} PROPERTIES RESOURCE_GROUPS "cpus:1")
  endif()
endfunction()
