#!/usr/bin/env bash
# A NAT rebinding onto a port another device just used (issue 16): three
# coaps nodes behind the shipped stateless balancer
# (contrib/nftables/coaps-balancer.nft via tests/cluster/cluster.sh), with
# reverse-path filtering on (rp_filter 1) in every namespace and a
# stateful firewall on the balancer's host (conntrack at work there):
# - client A (repeat_client behind udp_rebind) makes its session on a
#   node Y; client B ('coaps get', one handshake) then uses source port P
#   and is answered by another node X; B exits and the relay of A moves A
#   onto that very port P (the client namespace's ephemeral range is
#   narrowed to P alone): every request of A is still answered, by node
#   Y (a move logged there), with no handshake anywhere and no reconnect;
# - the balancer tracked none of it (no conntrack flow to X or Y), and
#   every CoAP datagram the client saw came from the balancer's address;
# - the control: the same case under the old rules (conntrack NAT: the
#   node picked on a flow's first datagram sticks to its address and port)
#   sends A's CID records after the move down B's flow to node X, which
#   does not know them: A loses its session and makes a new handshake on
#   X. This is what the stateless rules fix; it shows the case above
#   really reuses B's flow.
BUILD=$1
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/../cluster/cluster.sh"
. "$(dirname "$0")/../cluster/balancer_ops.sh"
[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"
need nft nftables
need ip iproute2
need conntrack conntrack
for tool in udp_rebind repeat_client coaps; do
  [ -x "$BUILD/$tool" ] || fail "$BUILD/$tool is not built"
done
BUILD=$(cd "$BUILD" && pwd)
work=$(mktemp -d)
trap 'exec 4>&- 2>/dev/null; cluster_down; cleanup_bg; rm -rf "$work" "$CLUSTER_LOGS"' EXIT

handshakes() { grep -c 'DTLS server established' "$CLUSTER_LOGS/node$1.log" || true; }
moves() { grep -c 'session kept, no new handshake' "$CLUSTER_LOGS/node$1.log" || true; }
counts() { local n; for n in 1 2 3; do echo -n "$(handshakes "$n") "; done; }
# node_of BEFORE AFTER: the one node whose handshake count rose by one
node_of() {
  local -a b a
  read -r -a b <<<"$1"
  read -r -a a <<<"$2"
  local n found=
  for n in 0 1 2; do
    [ $((a[n] - b[n])) = 0 ] && continue
    [ $((a[n] - b[n])) = 1 ] && [ -z "$found" ] || { echo "?"; return; }
    found=$((n + 1))
  done
  echo "${found:-?}"
}
oks() { grep -c '^ok 2.05' "$work/a.out" || true; }
# wait_oks N: until client A has N answers (60 s at most)
wait_oks() {
  for _ in $(seq 600); do
    [ "$(oks)" -ge "$1" ] && return 0
    sleep 0.1
  done
  fail "client A has $(oks) answers, not $1: $(tail -3 "$work/a.err")"
}

# The old rules: conntrack NAT, decided on a flow's first datagram.
cat >"$work/conntrack.nft" <<'EOF'
table ip coaps_balancer
delete table ip coaps_balancer
table ip coaps_balancer {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		udp dport 5684 @th,64,8 0x19 dnat to @th,160,8 map { 1 : $NODE1, 2 : $NODE2, 3 : $NODE3 }
		udp dport { 5683, 5684 } dnat to jhash ip saddr . udp sport mod 3 map { 0 : $NODE1, 1 : $NODE2, 2 : $NODE3 }
	}
}
EOF

# reuse_case NAME [firewall]: the case above on a fresh cluster (with the
# host's firewall on the balancer); sets Y, X, P and hs_before (the
# handshake counts at the move) and leaves A's results in $work (a.out,
# a.err, rebind.tap).
reuse_case() {
  cluster_up "$BUILD" || fail "$1: the cluster did not come up"
  if [ "${2:-}" = firewall ]; then
    balancer_firewall || fail "the balancer's firewall did not load"
    balancer_conntrack_runs || fail "conntrack does not track the balancer's other traffic"
    # A health check's probe from the balancer host to a node: its answer
    # is for the host itself, tracked, and let in as an answer.
    for n in 1 2 3; do
      cluster_check_node_id "$n" "$n" || fail "$1: the balancer host's own probe of node $n, behind its firewall"
    done
    pass "$1: the balancer host probes each node through its own firewall"
  fi
  local ns
  for ns in "${CLUSTER_NSES[@]}"; do
    cluster_ns "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1
  done
  # What reaches the client from the CoAP ports, by source address.
  cluster_ns cl nft -f - <<EOF
table ip seen {
	counter from_vip {}
	counter from_other {}
	chain input {
		type filter hook input priority filter; policy accept;
		udp sport { 5683, 5684 } ip saddr $CLUSTER_VIP counter name from_vip
		udp sport { 5683, 5684 } ip saddr != $CLUSTER_VIP counter name from_other
	}
}
EOF
  cluster_client_ports 20000 20999
  # (the first case's files gone: a stale port file would be read as the
  # new relay's)
  rm -f "$work/a.in" "$work/a.out" "$work/a.err" "$work/rebind.port" "$work/rebind.tap"
  mkfifo "$work/a.in"
  # Moves every 10 application datagrams: once, in the second batch below.
  $CLUSTER_CLIENT "$BUILD/udp_rebind" 5684 10 "$work/rebind.tap" "$CLUSTER_VIP" >"$work/rebind.port" &
  BG_PIDS+=($!)
  local port=
  for _ in $(seq 100); do port=$(head -1 "$work/rebind.port" 2>/dev/null || true); [ -n "$port" ] && break; sleep 0.05; done
  [ -n "$port" ] || fail "$1: udp_rebind did not start"
  local before after
  before=$(counts)
  $CLUSTER_CLIENT "$BUILD/repeat_client" "coaps://127.0.0.1:$port/time" "$CLUSTER_ID" "$CLUSTER_KEY" \
    <"$work/a.in" >"$work/a.out" 2>"$work/a.err" &
  BG_PIDS+=($!)
  exec 4>"$work/a.in"
  printf '1\n2\n3\n' >&4
  wait_oks 3
  Y=$(node_of "$before" "$(counts)")
  [ "$Y" != "?" ] || fail "$1: client A's handshake: not one node ($before / $(counts))"
  echo "$1: client A's session is on node $Y"
  # B: one port at a time until one hashes to another node than Y (2 in
  # 3 do).
  X=?
  for P in $(seq 40000 40019); do
    cluster_client_ports "$P" "$P"
    before=$(counts)
    $CLUSTER_CLIENT timeout 20 "$BUILD/coaps" get --psk-identity "$CLUSTER_ID" --psk "$CLUSTER_KEY" \
      "coaps://$CLUSTER_VIP/time" >"$work/b.out" 2>&1 || fail "$1: client B from port $P: $(cat "$work/b.out")"
    X=$(node_of "$before" "$(counts)")
    [ "$X" != "?" ] || fail "$1: client B from port $P: not one handshake on one node"
    [ "$X" = "$Y" ] || break
  done
  [ "$X" != "$Y" ] || fail "$1: 20 ports, all hashed to node $Y"
  echo "$1: client B, from port $P, answered by node $X"
  # P is free again and the only port the relay can get: A moves onto it.
  hs_before=$(counts) moves_before=$(moves "$Y")
  printf '%s\n' $(seq 4 15) >&4
  # The move made, the range is wide again: any other socket (a new
  # handshake's, a probe's) gets a port of its own.
  for _ in $(seq 300); do grep -q '^rebind ' "$work/rebind.tap" && break; sleep 0.1; done
  cluster_client_ports 20000 20999
  wait_oks 15
  exec 4>&-
  for _ in $(seq 100); do grep -q '^reconnects' "$work/a.out" && break; sleep 0.1; done
  expect_contains "$1: client A's relay moved onto port $P, B's" "rebind $P" "$(cat "$work/rebind.tap")"
}

# ---- the shipped stateless rules ----
CLUSTER_NFT=
CLUSTER_DOWN_NODES=
reuse_case stateless firewall
expect_eq "stateless: client A, all 15 requests answered" 15 "$(oks)"
expect_contains "stateless: client A, no reconnect" "reconnects 0 session-lost 0" "$(cat "$work/a.out")"
expect_eq "stateless: client A, one handshake" 1 "$(grep -c 'DTLS client established' "$work/a.err" || true)"
expect_eq "stateless: after the move onto B's port, no handshake on any node" "$hs_before" "$(counts)"
[ "$(moves "$Y")" -gt "$moves_before" ] || fail "stateless: node $Y logged no move of client A"
pass "stateless: node $Y, which holds A's session, took A's move onto port $P (node $X's a moment before)"
expect_eq "stateless: no conntrack flow to node $X or $Y" "0 0" "$(balancer_flows "$X") $(balancer_flows "$Y")"
from_other=$(cluster_ns cl nft list counter ip seen from_other | grep -oE 'packets [0-9]+' | cut -d' ' -f2)
from_vip=$(cluster_ns cl nft list counter ip seen from_vip | grep -oE 'packets [0-9]+' | cut -d' ' -f2)
expect_eq "every CoAP datagram to the client from the balancer's address (none from a node's)" 0 "$from_other"
# At least A's 15 answers and B's one.
[ "$from_vip" -ge 16 ] || fail "only $from_vip datagrams from the balancer's address"
cluster_down
rm -rf "$CLUSTER_LOGS"

# ---- the control: the old conntrack rules ----
CLUSTER_NFT=$work/conntrack.nft
reuse_case conntrack
read -r -a hb <<<"$hs_before"
read -r -a ha <<<"$(counts)"
[ $((ha[X - 1] - hb[X - 1])) -ge 1 ] ||
  fail "control: under the conntrack rules A's move onto B's port made no handshake on node $X ($hs_before / $(counts))"
pass "control: under the conntrack rules A followed B's flow to node $X and lost its session there ($(grep -c 'DTLS client established' "$work/a.err" || true) handshakes)"
