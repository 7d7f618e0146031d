#!/usr/bin/env bash
# Three coaps nodes behind a Linux nftables balancer, in network
# namespaces (tests/cluster/cluster.sh; contrib/nftables/coaps-balancer.nft):
# - 30 PSK clients at once through the balancer: all answered, spread
#   over all three nodes by the balancer's hash, one handshake each;
# - 3 long-lived clients (repeat_client), each behind udp_rebind, which
#   sends on from a new source port every 19 requests (a NAT rebinding):
#   a new address and port the balancer would hash to any node, but its
#   datagrams are tls12_cid records whose CID names the node (byte 1):
#   900 requests, all answered, no handshake beyond the first three, no
#   reconnect, the moves logged by the nodes holding the sessions. A
#   record sent to another node would be dropped there (unknown CID) and
#   cost the client a new handshake;
# - a node-id clash (node 3 started with id 2): cluster_up refuses, naming
#   it (no server can see it: each knows only its own id).
BUILD=$1
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/../cluster/cluster.sh"
[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"
need nft nftables
need ip iproute2
for tool in udp_rebind repeat_client coaps; do
  [ -x "$BUILD/$tool" ] || fail "$BUILD/$tool is not built"
done
BUILD=$(cd "$BUILD" && pwd)
work=$(mktemp -d)
trap 'cluster_down; cleanup_bg; rm -rf "$work" "$CLUSTER_LOGS"' EXIT

handshakes() { grep -c 'DTLS server established' "$CLUSTER_LOGS/node$1.log" || true; }
moves() { grep -c 'session kept, no new handshake' "$CLUSTER_LOGS/node$1.log" || true; }

cluster_up "$BUILD" || fail "the cluster did not come up"
pass "cluster up: balancer, three nodes (--workers 2, --node-id 1..3), client"

# ---- 30 clients spread over the three nodes ----
# The clients' ports are the kernel's, and a rebinding relay below may be
# given one of theirs: the stateless balancer routes it by its CID
# (cluster_port_reuse.sh makes that happen on purpose).
declare -A before
for n in 1 2 3; do before[$n]=$(handshakes "$n"); done
gets=()
for i in $(seq 30); do
  $CLUSTER_CLIENT timeout 30 "$BUILD/coaps" get --psk-identity "$CLUSTER_ID" --psk "$CLUSTER_KEY" \
    "coaps://$CLUSTER_VIP/time" >"$work/get$i.out" 2>&1 &
  gets+=($!)
done
wait "${gets[@]}" || true
expect_eq "30 clients through the balancer: all answered" 30 \
  "$(grep -lE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$work"/get*.out | wc -l)"
total=0
for n in 1 2 3; do
  got=$(($(handshakes "$n") - before[$n]))
  # 30 clients hashed over 3 nodes: one left out has odds of 3 (2/3)^30 = 1.5e-5.
  [ "$got" -ge 1 ] || fail "node $n got none of the 30 clients"
  total=$((total + got))
  echo "node $n: $got of the 30 clients"
done
expect_eq "30 clients: one handshake each, over all three nodes" 30 "$total"

# ---- rebinding clients: CID records go to the session's node ----
for n in 1 2 3; do before[$n]=$(handshakes "$n"); done
for c in 1 2 3; do
  $CLUSTER_CLIENT "$BUILD/udp_rebind" 5684 19 "$work/rebind$c.tap" "$CLUSTER_VIP" >"$work/rebind$c.port" &
  BG_PIDS+=($!)
done
clients=()
for c in 1 2 3; do
  port=
  for _ in $(seq 100); do port=$(head -1 "$work/rebind$c.port" 2>/dev/null || true); [ -n "$port" ] && break; sleep 0.05; done
  [ -n "$port" ] || fail "udp_rebind $c did not start"
  seq 300 | $CLUSTER_CLIENT timeout 100 "$BUILD/repeat_client" "coaps://127.0.0.1:$port/time" \
    "$CLUSTER_ID" "$CLUSTER_KEY" >"$work/rc$c.out" 2>"$work/rc$c.err" &
  clients+=($!)
done
wait "${clients[@]}" || true
rebinds=0
for c in 1 2 3; do
  expect_eq "rebinding client $c: 300 requests, all answered" 300 "$(grep -c '^ok 2.05' "$work/rc$c.out" || true)"
  expect_contains "rebinding client $c: no reconnect" "reconnects 0 session-lost 0" "$(cat "$work/rc$c.out")"
  expect_eq "rebinding client $c: one handshake" 1 "$(grep -c 'DTLS client established' "$work/rc$c.err" || true)"
  rebinds=$((rebinds + $(grep -c '^rebind ' "$work/rebind$c.tap" || true)))
done
[ "$rebinds" -ge 45 ] || fail "the relays changed ports only $rebinds times"
total=0 moved=0
for n in 1 2 3; do
  total=$((total + $(handshakes "$n") - before[$n]))
  moved=$((moved + $(moves "$n")))
done
expect_eq "3 rebinding clients: 3 handshakes on the nodes, none after a move" 3 "$total"
[ "$moved" -ge "$rebinds" ] || fail "$rebinds rebindings but the nodes logged $moved moves"
pass "$rebinds rebindings through the balancer, $moved moves, all on the session's node"

# ---- a node-id clash is refused ----
cluster_down
cluster_up "$BUILD" "1 2 2" 2>"$work/clash.err" && fail "a node-id clash (1 2 2) was taken"
expect_contains "node-id clash refused" "node-id clash: the balancer maps id 3 to node 3" \
  "$(cat "$work/clash.err")"
