#!/usr/bin/env bash
# A coaps cluster you can run here, in network namespaces (root, iproute2,
# nftables): a balancer running contrib/nftables/coaps-balancer.nft, three
# servers (CLUSTER_NODES: 1 to 8) each running 'coaps serve --workers 2
# --node-id N' (PSK), and a client, joined by veth links with addresses
# from 10.199.0.0/16 that exist inside those namespaces only (the host's
# network is not touched):
#
#   client 10.199.0.2 --- 10.199.0.1 balancer 10.199.N.1 --- 10.199.N.2 node N
#
# Clients talk to the balancer's 10.199.0.1 (ports 5683, 5684); it sends
# each datagram on to a node, with no conntrack flow: a tls12_cid record
# by the node byte of its CID, anything else by a hash of the client's
# address and port; the nodes' answers leave it from 10.199.0.1.
#
# usage: [CLUSTER_NODES=N] tests/cluster/cluster.sh BUILD_DIR [COMMAND [ARG...]]
#   builds the cluster, runs COMMAND in the client namespace (default: a
#   few 'coaps get' requests through the balancer), tears it all down.
# Sourced (the tests): cluster_up BUILD_DIR [IDS] / cluster_down, and
# CLUSTER_VIP, CLUSTER_CLIENT (a command prefix that runs in the client
# namespace), CLUSTER_LOGS (node1.log ...: each server's -v log),
# CLUSTER_PIDS (the servers' process ids, node 1 first), cluster_ns NS CMD
# (CMD in namespace NS: lb, cl, n1, n2 ...), cluster_client_ports LO HI
# (the client namespace's ephemeral ports: see there why).
# CLUSTER_ID and CLUSTER_KEY are the PSK the servers accept. Set before
# cluster_up (environment or shell variables):
#   CLUSTER_NODES       the number of servers, 1 to 8 (default 3)
#   CLUSTER_NFT         another balancer file to load, given VIP=...
#                       NODE1=... NODEn=... (nft -D); by default the shipped
#                       coaps-balancer.nft for three nodes, and for any
#                       other number what contrib/nftables/coaps-balancer.sh
#                       prints for them (the same rules, N-node maps)
#   CLUSTER_SERVE_ARGS  an array: more 'coaps serve' arguments for every
#                       node, {n} in them becoming the node's number, e.g.
#                       (--ticket-key-file "$dir/keys" --state-file "$dir/s{n}")
#   CLUSTER_SERVE       "none": no servers (start your own with cluster_ns;
#                       nothing checks their node ids)
#   CLUSTER_QUIET       1: servers without -v (the benchmarks: a log line
#                       per handshake costs CPU; the logs then hold no
#                       handshakes to count)
#
# A node-id clash (two servers with one id) is something no server can
# see: each only knows its own id. cluster_up checks it from outside: it
# asks each node directly for a Connection ID and refuses (returns 1 after
# saying so) unless byte 1 is the id the balancer's map gives that node.
set -euo pipefail

CLUSTER_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER_VIP=10.199.0.1
CLUSTER_ID=cluster-device
CLUSTER_KEY=s3cret-for-the-cluster
CLUSTER_NS=cs$$ # netns and veth names: short (15 characters at most)
CLUSTER_PIDS=()
CLUSTER_LOGS=
CLUSTER_CLIENT=
CLUSTER_NODES=${CLUSTER_NODES:-3}
CLUSTER_NSES=() # the namespaces cluster_up made, for cluster_down

cluster_say() { echo "cluster: $*" >&2; }

cluster_ns() { ip netns exec "$CLUSTER_NS$1" "${@:2}"; }

# cluster_link A B NET: a veth between namespaces A (address NET.1) and
# B (NET.2), both up.
cluster_link() {
  local a=$CLUSTER_NS$1 b=$CLUSTER_NS$2 net=$3 tag=$2
  ip link add "${CLUSTER_NS}a$tag" netns "$a" type veth peer name "${CLUSTER_NS}b$tag" netns "$b"
  ip -n "$a" addr add "$net.1/24" dev "${CLUSTER_NS}a$tag"
  ip -n "$b" addr add "$net.2/24" dev "${CLUSTER_NS}b$tag"
  ip -n "$a" link set "${CLUSTER_NS}a$tag" up
  ip -n "$b" link set "${CLUSTER_NS}b$tag" up
  ip -n "$b" route add default via "$net.1"
}

# cluster_serve N ID: node N's server with node id ID; waits for it.
cluster_serve() {
  local log=$CLUSTER_LOGS/node$1.log verbose=(-v) extra
  [ "${CLUSTER_QUIET:-}" != 1 ] || verbose=()
  extra=(${CLUSTER_SERVE_ARGS[@]+"${CLUSTER_SERVE_ARGS[@]//\{n\}/$1}"})
  : >"$log"
  # ip netns exec itself, not the cluster_ns function: a function run with &
  # is a subshell, and $! would name it rather than the server.
  ip netns exec "${CLUSTER_NS}n$1" "$CLUSTER_BUILD/coaps" serve -a 0.0.0.0 --port 5683 --dtls-port 5684 \
    --workers 2 --node-id "$2" "${verbose[@]}" ${extra[@]+"${extra[@]}"} \
    --psk-identity "$CLUSTER_ID" --psk "$CLUSTER_KEY" >"$log" 2>&1 &
  CLUSTER_PIDS+=($!)
  for _ in $(seq 200); do
    grep -q 'listening on coaps://' "$log" && return 0
    sleep 0.05
  done
  cat "$log" >&2
  cluster_say "node $1: coaps serve did not start"
  return 1
}

# cluster_check_node_id N ID: a handshake with node N itself (from the
# balancer) gets a CID whose byte 1 is ID.
cluster_check_node_id() {
  local out got
  out=$(cluster_ns lb timeout 20 "$CLUSTER_BUILD/coaps" get -v --psk-identity "$CLUSTER_ID" \
    --psk "$CLUSTER_KEY" "coaps://10.199.$1.2/time" 2>&1) || true
  got=$(grep -oE "the server's [0-9a-f]{4}" <<<"$out" | tail -c 3 || true)
  if [ -z "$got" ]; then
    cluster_say "node $1 (10.199.$1.2): no Connection ID from it: $out"
    return 1
  fi
  if [ $((16#$got)) != "$2" ]; then
    cluster_say "node-id clash: the balancer maps id $2 to node $1 (10.199.$1.2), but its CIDs carry id $((16#$got)); give each server its own --node-id"
    return 1
  fi
}

# cluster_balancer: the balancer's rules for nodes 1..CLUSTER_NODES, node
# N at 10.199.N.2 with id N (module comment: CLUSTER_NFT).
cluster_balancer() {
  local n defines=(-D "VIP=$CLUSTER_VIP") servers=()
  for n in $(seq "$CLUSTER_NODES"); do
    defines+=(-D "NODE$n=10.199.$n.2")
    servers+=("10.199.$n.2")
  done
  if [ -n "${CLUSTER_NFT:-}" ]; then
    cluster_ns lb nft "${defines[@]}" -f "$CLUSTER_NFT"
  elif [ "$CLUSTER_NODES" = 3 ]; then
    cluster_ns lb nft "${defines[@]}" -f "$CLUSTER_SRC/contrib/nftables/coaps-balancer.nft"
  else
    sh "$CLUSTER_SRC/contrib/nftables/coaps-balancer.sh" --vip "$CLUSTER_VIP" "${servers[@]}" | cluster_ns lb nft -f -
  fi
}

# cluster_sweep: the namespaces of clusters whose test is gone (cs<pid>...
# of a pid that no longer runs) deleted. A test killed whole (ctest's
# timeout ends the tree with SIGKILL; so may a CI job cancelled) runs no
# exit trap: its servers die with it, but a namespace's name outlives
# every process in it.
cluster_sweep() {
  local ns pid
  for ns in $(ip netns list | awk '{ print $1 }'); do
    [[ $ns =~ ^cs([0-9]+)(lb|cl|n[1-8])$ ]] || continue
    pid=${BASH_REMATCH[1]}
    [ "$pid" != $$ ] && ! kill -0 "$pid" 2>/dev/null || continue
    cluster_say "deleting $ns, left by test process $pid (gone)"
    ip netns del "$ns" 2>/dev/null || true
  done
}

# cluster_up BUILD_DIR [IDS]: the topology, the balancer's rules and one
# server a node (CLUSTER_NODES of them), node N started with the Nth of
# IDS (default "1 2 ... N": the balancer's map sends id N to node N).
# 1 after saying why.
cluster_up() {
  CLUSTER_BUILD=$1
  local ids n
  case $CLUSTER_NODES in
  [1-8]) ;;
  *) cluster_say "CLUSTER_NODES=$CLUSTER_NODES: 1 to 8 nodes"; return 1 ;;
  esac
  read -r -a ids <<<"${2:-$(seq -s ' ' "$CLUSTER_NODES")}"
  if [ "${#ids[@]}" != "$CLUSTER_NODES" ]; then
    cluster_say "${#ids[@]} node ids (${ids[*]}) for $CLUSTER_NODES nodes"
    return 1
  fi
  cluster_sweep
  CLUSTER_LOGS=$(mktemp -d)
  CLUSTER_NSES=(lb cl)
  for n in $(seq "$CLUSTER_NODES"); do CLUSTER_NSES+=("n$n"); done
  for ns in "${CLUSTER_NSES[@]}"; do
    ip netns add "$CLUSTER_NS$ns"
    ip -n "$CLUSTER_NS$ns" link set lo up
  done
  cluster_link lb cl 10.199.0
  for n in $(seq "$CLUSTER_NODES"); do cluster_link lb "n$n" "10.199.$n"; done
  cluster_ns lb sysctl -qw net.ipv4.ip_forward=1
  cluster_balancer || { cluster_say "the balancer's rules did not load"; return 1; }
  CLUSTER_CLIENT="ip netns exec ${CLUSTER_NS}cl"
  [ "${CLUSTER_SERVE:-}" != none ] || return 0
  for n in $(seq "$CLUSTER_NODES"); do cluster_serve "$n" "${ids[n - 1]}" || return 1; done
  for n in $(seq "$CLUSTER_NODES"); do cluster_check_node_id "$n" "$n" || return 1; done
}

# cluster_client_ports LO HI: the client namespace's ephemeral ports. The
# shipped balancer keeps no flows, so a new socket given the port of an
# earlier, closed one (a client rebinding onto it) is routed by its own
# CID; a conntrack balancer (CLUSTER_NFT) would send it to the earlier
# flow's node for as long as conntrack remembers the flow (30 s; 120 s
# once answered more than once), whatever its CID. Narrowed to one port,
# it makes the next socket take that port (cluster_port_reuse.sh).
cluster_client_ports() {
  cluster_ns cl sysctl -qw net.ipv4.ip_local_port_range="$1 $2"
}

cluster_down() {
  local p
  for p in "${CLUSTER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${CLUSTER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  CLUSTER_PIDS=()
  # Whatever else still runs in a namespace (a client a test left behind)
  # would outlive it: deleting a namespace's name stops nothing.
  for ns in ${CLUSTER_NSES[@]+"${CLUSTER_NSES[@]}"}; do
    ip netns pids "$CLUSTER_NS$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$CLUSTER_NS$ns" 2>/dev/null || true
  done
  CLUSTER_NSES=()
}

cluster_demo() {
  for _ in 1 2 3 4 5 6; do
    "$CLUSTER_BUILD/coaps" get --psk-identity "$CLUSTER_ID" --psk "$CLUSTER_KEY" \
      "coaps://$CLUSTER_VIP/time"
    echo
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [COMMAND [ARG...]]" >&2; exit 64; }
  build=$(cd "$1" && pwd)
  shift
  trap 'cluster_down; rm -rf "$CLUSTER_LOGS"' EXIT
  cluster_up "$build"
  if [ $# -eq 0 ]; then
    $CLUSTER_CLIENT bash -c "$(declare -f cluster_demo); CLUSTER_BUILD=$build CLUSTER_VIP=$CLUSTER_VIP \
      CLUSTER_ID=$CLUSTER_ID CLUSTER_KEY=$CLUSTER_KEY cluster_demo"
    for n in $(seq "$CLUSTER_NODES"); do
      echo "node $n: $(grep -c 'DTLS server established' "$CLUSTER_LOGS/node$n.log" || true) handshakes"
    done
  else
    $CLUSTER_CLIENT "$@"
  fi
fi
