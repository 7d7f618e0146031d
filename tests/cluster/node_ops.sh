#!/usr/bin/env bash
# What an operator does to one node of the cluster (tests/cluster/cluster.sh,
# sourced after it): stop its server, start one of their own choosing (another
# binary: an upgrade; other options: a state file, metrics). Sourced by the
# tests that roll a cluster (cluster_upgrade.sh, cluster_rotation.sh).
#
# node_start N BINARY LOG [SERVE OPTION...]: 'BINARY serve' in node N's
#   namespace with the cluster's address, ports, two workers, node id N, -v
#   and PSK, plus the options given; its log in LOG (NODE_LOG[N]), its
#   process in CLUSTER_PIDS (cluster_down stops it). Returns once it
#   listens on coaps:// (1 after showing its log if it exits first).
# node_stop N: SIGTERM to node N's server, and its exit awaited: 1 unless
#   it exited with 0.
# node_reload N...: SIGHUP to each node's server, and each one's reload
#   line awaited in its log (1 if one does not come within 5 s).

declare -A NODE_LOG

node_start() {
  local n=$1 bin=$2 log=$3
  shift 3
  NODE_LOG[$n]=$log
  : >"$log"
  # ip itself, not the function cluster_ns: $! must be the server.
  ip netns exec "${CLUSTER_NS}n$n" "$bin" serve -a 0.0.0.0 --port 5683 --dtls-port 5684 \
    --workers 2 --node-id "$n" -v --psk-identity "$CLUSTER_ID" --psk "$CLUSTER_KEY" "$@" \
    >"$log" 2>&1 &
  CLUSTER_PIDS[n - 1]=$!
  # Polled often: how long a node is down during an upgrade is measured
  # up to this return.
  for _ in $(seq 2000); do
    grep -q 'listening on coaps://' "$log" && return 0
    kill -0 "${CLUSTER_PIDS[n - 1]}" 2>/dev/null || break
    sleep 0.005
  done
  cat "$log" >&2
  cluster_say "node $n: $bin serve did not start"
  return 1
}

node_stop() {
  local pid=${CLUSTER_PIDS[$1 - 1]} rc=0
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  [ "$rc" = 0 ] && return 0
  cluster_say "node $1: coaps serve exited with $rc after SIGTERM: $(tail -3 "${NODE_LOG[$1]:-/dev/null}")"
  return 1
}

node_reload() {
  local n before=()
  for n in "$@"; do
    before[n]=$(grep -c 'coaps: reload:' "${NODE_LOG[$n]}" || true)
    kill -HUP "${CLUSTER_PIDS[n - 1]}"
  done
  for n in "$@"; do
    for _ in $(seq 100); do
      [ "$(grep -c 'coaps: reload:' "${NODE_LOG[$n]}" || true)" -gt "${before[n]}" ] && continue 2
      sleep 0.05
    done
    cluster_say "node $n: no reload line after SIGHUP: $(tail -3 "${NODE_LOG[$n]}")"
    return 1
  done
}
