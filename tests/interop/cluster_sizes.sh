#!/usr/bin/env bash
# Clusters of other sizes than three (tests/cluster/cluster.sh with
# CLUSTER_NODES; cluster_nodes.sh covers three) and the balancer generator
# (contrib/nftables/coaps-balancer.sh) they load:
# - the generator's rules for three servers are those of the shipped
#   coaps-balancer.nft, as nftables itself lists them once loaded; bad
#   server lists (a node id twice, over 255, IPv6, not an address, no
#   --vip, a server at the VIP) are refused with a message and status 64;
# - one node: 10 clients through the balancer, all answered by it, one
#   handshake each;
# - two nodes (CLUSTER_SERVE_ARGS with {n} reaching each server): 20
#   clients, all answered, both nodes got some; a client behind udp_rebind
#   (a new source port every 7 requests) keeps its one session for 150
#   requests, every moved datagram sent by the generated CID map to the
#   node holding the session (a hashed one would land on the other node
#   half the time, and cost a handshake there);
# - a list of node ids that does not match CLUSTER_NODES is refused.
BUILD=$1
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/../cluster/cluster.sh"
[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"
need nft nftables
need ip iproute2
need unshare util-linux
for tool in udp_rebind repeat_client coaps; do
  [ -x "$BUILD/$tool" ] || fail "$BUILD/$tool is not built"
done
BUILD=$(cd "$BUILD" && pwd)
GEN=$CLUSTER_SRC/contrib/nftables/coaps-balancer.sh
work=$(mktemp -d)
trap 'cluster_down; cleanup_bg; rm -rf "$work" "$CLUSTER_LOGS"' EXIT

handshakes() { grep -c 'DTLS server established' "$CLUSTER_LOGS/node$1.log" || true; }
moves() { grep -c 'session kept, no new handshake' "$CLUSTER_LOGS/node$1.log" || true; }

# ---- the generator ----
# Both loaded in a network namespace made for it (never the host's, even
# when this runs outside own_netns.sh), listed by nftables itself.
sh "$GEN" --vip 10.0.0.1 10.0.0.11 10.0.0.12 10.0.0.13 >"$work/gen3.nft" || fail "the generator failed for three nodes"
unshare --net bash -c '
  nft -D VIP=10.0.0.1 -D NODE1=10.0.0.11 -D NODE2=10.0.0.12 -D NODE3=10.0.0.13 -f "$1" || exit 1
  nft list table ip coaps_balancer >"$2/shipped.nft"
  nft -f "$2/gen3.nft" || exit 2
  nft list table ip coaps_balancer >"$2/generated.nft"' - \
  "$CLUSTER_SRC/contrib/nftables/coaps-balancer.nft" "$work" ||
  fail "the shipped file (1) or the generator's three-node rules (2) did not load: $?"
grep -q 'ip daddr set jhash ip saddr . udp sport mod 3' "$work/shipped.nft" || fail "no hash rule listed: $(cat "$work/shipped.nft")"
grep -q 'notrack' "$work/shipped.nft" || fail "no notrack rule listed: $(cat "$work/shipped.nft")"
diff "$work/shipped.nft" "$work/generated.nft" >&2 ||
  fail "the generator's three-node rules differ from coaps-balancer.nft (above)"
pass "generator, three nodes: the rules of coaps-balancer.nft"

refused() { # refused WHAT MESSAGE ARG...
  local what=$1 msg=$2 rc=0
  shift 2
  sh "$GEN" "$@" >"$work/gen.out" 2>"$work/gen.err" || rc=$?
  expect_eq "generator refuses $what: status" 64 "$rc"
  expect_contains "generator refuses $what: says why" "$msg" "$(cat "$work/gen.err")"
  [ ! -s "$work/gen.out" ] || fail "generator printed rules for $what"
}
refused "a node id twice" "node id 2 is given twice" --vip 10.0.0.9 10.0.0.1 2=10.0.0.2 2=10.0.0.3
refused "a node id over 255" "node id 256 of '256=10.0.0.1' is over 255" --vip 10.0.0.9 256=10.0.0.1
refused "IPv6" "server 'fd00::1' is IPv6" --vip 10.0.0.9 fd00::1
refused "a name" "server 'node1' is not an IPv4 address" --vip 10.0.0.9 node1
refused "no servers" "usage:" --vip 10.0.0.9
refused "no --vip" "usage:" 10.0.0.1 10.0.0.2
refused "an IPv6 VIP" "the VIP 'fd00::9' is IPv6" --vip fd00::9 10.0.0.1
refused "a server at the VIP" "server 10.0.0.1 is the VIP" --vip 10.0.0.1 10.0.0.1

# ---- one node ----
CLUSTER_NODES=1
cluster_up "$BUILD" || fail "a one-node cluster did not come up"
before=$(handshakes 1)
gets=()
for i in $(seq 10); do
  $CLUSTER_CLIENT timeout 30 "$BUILD/coaps" get --psk-identity "$CLUSTER_ID" --psk "$CLUSTER_KEY" \
    "coaps://$CLUSTER_VIP/time" >"$work/one$i.out" 2>&1 &
  gets+=($!)
done
wait "${gets[@]}" || true
expect_eq "one node: 10 clients through the balancer, all answered" 10 \
  "$(grep -lE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$work"/one*.out | wc -l)"
expect_eq "one node: one handshake each, all on node 1" 10 $(($(handshakes 1) - before))
cluster_down
rm -rf "$CLUSTER_LOGS"

# ---- two nodes ----
CLUSTER_NODES=2
CLUSTER_SERVE_ARGS=(--max-peers "1{n}000")
cluster_up "$BUILD" || fail "a two-node cluster did not come up"
for n in 1 2; do
  expect_contains "CLUSTER_SERVE_ARGS reach node $n, {n} replaced" "--max-peers 1${n}000" \
    "$(tr '\0' ' ' <"/proc/${CLUSTER_PIDS[n - 1]}/cmdline")"
done
CLUSTER_SERVE_ARGS=()
declare -A before
for n in 1 2; do before[$n]=$(handshakes "$n"); done
gets=()
for i in $(seq 20); do
  $CLUSTER_CLIENT timeout 30 "$BUILD/coaps" get --psk-identity "$CLUSTER_ID" --psk "$CLUSTER_KEY" \
    "coaps://$CLUSTER_VIP/time" >"$work/two$i.out" 2>&1 &
  gets+=($!)
done
wait "${gets[@]}" || true
expect_eq "two nodes: 20 clients through the balancer, all answered" 20 \
  "$(grep -lE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$work"/two*.out | wc -l)"
total=0
for n in 1 2; do
  got=$(($(handshakes "$n") - before[$n]))
  # 20 clients hashed over 2 nodes: one left out has odds of 2 (1/2)^20 = 2e-6.
  [ "$got" -ge 1 ] || fail "node $n got none of the 20 clients"
  total=$((total + got))
  echo "node $n: $got of the 20 clients"
done
expect_eq "two nodes: one handshake each, over both nodes" 20 "$total"

for n in 1 2; do before[$n]=$(handshakes "$n"); done
$CLUSTER_CLIENT "$BUILD/udp_rebind" 5684 7 "$work/rebind.tap" "$CLUSTER_VIP" >"$work/rebind.port" &
BG_PIDS+=($!)
port=
for _ in $(seq 100); do
  port=$(head -1 "$work/rebind.port" 2>/dev/null || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || fail "udp_rebind did not start"
seq 150 | $CLUSTER_CLIENT timeout 100 "$BUILD/repeat_client" "coaps://127.0.0.1:$port/time" \
  "$CLUSTER_ID" "$CLUSTER_KEY" >"$work/rc.out" 2>"$work/rc.err" || true
expect_eq "rebinding client: 150 requests, all answered" 150 "$(grep -c '^ok 2.05' "$work/rc.out" || true)"
expect_contains "rebinding client: no reconnect" "reconnects 0 session-lost 0" "$(cat "$work/rc.out")"
expect_eq "rebinding client: one handshake" 1 "$(grep -c 'DTLS client established' "$work/rc.err" || true)"
rebinds=$(grep -c '^rebind ' "$work/rebind.tap" || true)
[ "$rebinds" -ge 15 ] || fail "the relay changed ports only $rebinds times"
total=0 moved=0
for n in 1 2; do
  total=$((total + $(handshakes "$n") - before[$n]))
  moved=$((moved + $(moves "$n")))
done
expect_eq "rebinding client: one handshake on the nodes, none after a move" 1 "$total"
[ "$moved" -ge "$rebinds" ] || fail "$rebinds rebindings but the nodes logged $moved moves"
pass "two nodes: $rebinds rebindings, $moved moves, all on the session's node"
cluster_down
rm -rf "$CLUSTER_LOGS"

# ---- node ids that do not match the node count ----
CLUSTER_NODES=2
cluster_up "$BUILD" "1 2 3" 2>"$work/ids.err" && fail "three node ids for two nodes were taken"
expect_contains "three node ids for two nodes refused" "3 node ids (1 2 3) for 2 nodes" \
  "$(cat "$work/ids.err")"
