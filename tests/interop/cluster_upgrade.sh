#!/usr/bin/env bash
# A rolling upgrade of the cluster (tests/cluster/cluster.sh: three nodes
# behind the nftables balancer, each 'coaps serve --workers 2 --node-id N'
# with a --state-file of its own, one --state-key-file and one
# --ticket-key-file) under 1,000 PSK clients (tests/tools/client_fleet, a
# CON GET a second each, reading ICMP errors as coaps's own sockets do):
# one node at a time, SIGTERM (the node writes its sessions to its state
# file and exits), then a copy of the binary standing for the new version
# started with the same options (it reads the state file and takes the
# sessions over), and once it listens, the next node. While a node is
# down its port is closed: the clients sending then get ICMP port
# unreachable (forwarded by the balancer, counted there; its stateless
# rules leave it naming the node, so a client matches it to no session), and
# their CON's retransmission reaches the new process.
# What must hold: no handshake at all (clients: none full, none resumed;
# new processes: none), every request answered (none failed, none left
# under way), every client answered by its own node throughout (the CID's
# node byte of its session unchanged), each new process restored the
# sessions the old one saved. The gap of each node (SIGTERM to the new
# process listening) is printed and bounded.
# FLEET_CLIENTS (environment) changes the number of clients; UPGRADE_STATE=0
# runs the same upgrade without the state file (it must then fail: every
# client of a node makes a new handshake, which shows the checks bite).
BUILD=$1
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/../cluster/cluster.sh"
. "$(dirname "$0")/../cluster/node_ops.sh"
. "$(dirname "$0")/../cluster/fleet_ops.sh"
[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"
need nft nftables
need ip iproute2
need jq jq
for tool in client_fleet coaps; do
  [ -x "$BUILD/$tool" ] || fail "$BUILD/$tool is not built"
done
BUILD=$(cd "$BUILD" && pwd)
CLIENTS=${FLEET_CLIENTS:-1000}
work=$(mktemp -d)
FLEET_DIR=$work
stop_all() {
  fleet_stop_all
  cluster_down
  cleanup_bg
  rm -rf "$work" "$CLUSTER_LOGS"
}
trap stop_all EXIT

now_ms() { date +%s%3N; }

# ---- keys, the "new version", the cluster ----
umask 077
"$BUILD/coaps" keygen --ticket-key "$work/ticket.keys" >/dev/null || fail "coaps keygen --ticket-key failed"
"$BUILD/coaps" keygen --state-key "$work/state.key" >/dev/null || fail "coaps keygen --state-key failed"
cp "$BUILD/coaps" "$work/coaps-next"
# node_args N: the options node N runs with, the same before and after
# (beside node_start's own).
node_args() {
  NODE_ARGS=(--ticket-key-file "$work/ticket.keys")
  [ "${UPGRADE_STATE:-1}" = 0 ] ||
    NODE_ARGS+=(--state-file "$work/node$1.state" --state-key-file "$work/state.key")
}

cluster_up "$BUILD" || fail "the cluster did not come up"
# The nodes as this test runs them (cluster.sh's own servers have no
# state file): each restarted once before any client comes.
for n in 1 2 3; do
  node_stop "$n" || fail "node $n did not stop"
  node_args "$n"
  node_start "$n" "$BUILD/coaps" "$CLUSTER_LOGS/node$n.old.log" "${NODE_ARGS[@]}" ||
    fail "node $n did not start"
done
pass "cluster up: three nodes sharing a ticket key file$([ "${UPGRADE_STATE:-1}" = 0 ] || echo ", each with its state file")"

# The ICMP errors the nodes send back through the balancer (a table of
# this test's own beside the balancer's rules).
cluster_ns lb nft -f - <<'NFT'
table ip upgrade_watch {
  chain forward {
    type filter hook forward priority 0; policy accept;
    icmp type destination-unreachable icmp code port-unreachable counter
  }
}
NFT
icmp_relayed() {
  cluster_ns lb nft list chain ip upgrade_watch forward | grep -oE 'packets [0-9]+' | grep -oE '[0-9]+'
}

# ---- the fleet ----
server_handshakes() { # 'DTLS server established' lines in every log of every node
  cat "$CLUSTER_LOGS"/node*.log | grep -c 'DTLS server established' || true
}
fleet_start f --clients "$CLIENTS" --interval 1000 --ramp 3000 --icmp-errors \
  --psk-identity "$CLUSTER_ID" --psk "$CLUSTER_KEY" "coaps://$CLUSTER_VIP/time"
fleet_wait f '^ready ' 40 || fail "the fleet did not get going"
fleet_report f start || fail "no report from the fleet"
declare -A on
for n in 1 2 3; do
  on[$n]=$(fleet_clients start "node == $n")
  # 1000 clients hashed over 3 nodes: fewer than 200 on one is 10 sigma off.
  [ "${on[$n]}" -ge $((CLIENTS / 5)) ] || fail "node $n got only ${on[$n]} of the $CLIENTS clients"
done
pass "$CLIENTS clients, one full handshake each, on nodes 1, 2, 3: ${on[1]}, ${on[2]}, ${on[3]}"

# ---- the rolling upgrade ----
handshakes_before=$(server_handshakes)
icmp_before=$(icmp_relayed)
fleet_send f mark
gaps=()
for n in 1 2 3; do
  sleep 2 # the clients of the last node back on their sessions first
  old_log=${NODE_LOG[$n]}
  node_args "$n"
  t0=$(now_ms)
  node_stop "$n" || fail "node $n did not stop"
  t_exit=$(now_ms)
  node_start "$n" "$work/coaps-next" "$CLUSTER_LOGS/node$n.new.log" "${NODE_ARGS[@]}" ||
    fail "node $n: the new version did not start"
  t1=$(now_ms)
  gaps+=($((t1 - t0)))
  echo "node $n: down $((t1 - t0)) ms (SIGTERM to exit $((t_exit - t0)) ms, start to listening $((t1 - t_exit)) ms)"
  if [ "${UPGRADE_STATE:-1}" != 0 ]; then
    saved=$(grep -oE '[0-9]+ DTLS sessions? saved' "$old_log" | grep -oE '^[0-9]+' || true)
    restored=$(grep -oE '[0-9]+ DTLS sessions? restored' "${NODE_LOG[$n]}" | grep -oE '^[0-9]+' || true)
    [ "${saved:-0}" -ge "${on[$n]}" ] || fail "node $n saved ${saved:-no} sessions, it had ${on[$n]} clients"
    expect_eq "node $n: the new process restored the $saved sessions the old one saved" "$saved" "${restored:-none}"
  fi
done
sleep 4 # retransmissions of requests sent in the last gap: 2 to 3 s
fleet_report f upgrade quit || fail "the fleet's last report"
echo "upgrade: $(jq -c '{sent, answered, in_flight, failed, failures, full_handshakes, resumed_handshakes, other_node, answers_by_node}' "$work/upgrade.json")"
icmp=$(($(icmp_relayed) - icmp_before))
read_by_clients=$(fleet_field upgrade icmp_errors)
vetted=$(fleet_field upgrade icmp_vetted)
# vetted: those the library matched to a record its client sent there
# (coap_context_input_icmp); none under the stateless rules, whose errors
# name the node, not the address the client sent to.
echo "ICMP port unreachable relayed to the clients during the gaps: $icmp, read by them: $read_by_clients, vetted: $vetted"
expect_eq "no client made a handshake (full or resumed)" "$CLIENTS" "$(fleet_clients upgrade "full == 0 && resumed == 0")"
expect_eq "every client answered by its own node throughout (CID node byte unchanged)" "$CLIENTS" \
  "$(fleet_clients upgrade "other_node == 0 && node != -1 && answered >= 1")"
expect_eq "no request failed" 0 "$(fleet_field upgrade failed)"
expect_eq "every request answered, none left under way" "$(fleet_field upgrade sent) 0" \
  "$(fleet_field upgrade answered) $(fleet_field upgrade in_flight)"
expect_eq "no handshake on the servers (old processes since the mark, new ones at all)" \
  "$handshakes_before" "$(server_handshakes)"
[ "$icmp" -ge 1 ] && [ "$read_by_clients" -ge 1 ] ||
  fail "no ICMP error during the gaps ($icmp relayed, $read_by_clients read): the upgrade was not under load"
pass "the requests that met a closed port ($read_by_clients ICMP errors read) were carried by their retransmissions"
max=0
for g in "${gaps[@]}"; do [ "$g" -le "$max" ] || max=$g; done
# Within the first retransmission's wait (ACK_TIMEOUT, 2 s) a request
# sent in the gap costs its client no more than the one resend.
[ "$max" -le 2000 ] || fail "a node was down $max ms (gaps: ${gaps[*]} ms)"
pass "gaps (SIGTERM to the new process listening): ${gaps[*]} ms"
