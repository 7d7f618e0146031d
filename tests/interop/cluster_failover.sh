#!/usr/bin/env bash
# 1,000 PSK clients (tests/tools/client_fleet: one process, a UDP socket
# and a DTLS session each, a CON GET a second each) on three coaps nodes
# behind the nftables balancer (tests/cluster/cluster.sh), the nodes
# sharing one --ticket-key-file:
# The balancer's host runs a stateful firewall (balancer_firewall), so
# conntrack is at work there: the balancer's rules keep the CoAP
# datagrams out of it (no flow to any node, ever).
# 1. rebinding: every client moves to a new source port every 3 requests
#    (a NAT rebinding, done by the client), the kernel's random choice
#    from 3,000 ports, so that many land on a port another client (on any
#    node) closed a moment ago (counted, more than 100): each datagram is
#    a tls12_cid record, which the balancer sends by the CID's node byte
#    to the node holding the session: every request is answered by that
#    node, no handshake anywhere, the nodes log the moves;
# 2. failover: node 2 is killed (SIGKILL) and the balancer's health check
#    removes it (both maps; no flow to flush: tests/cluster/
#    balancer_ops.sh): every client of node 2 gets its next answer from
#    node 1 or 3 after exactly one abbreviated handshake (the ticket its
#    old node sealed opens on the new one), no full handshake on the
#    clients or the servers, no request lost; the other clients see
#    nothing (no handshake, still their node). The time each moved client
#    took is printed (what drives it: the client's silence detection,
#    src/context/secure.c: a new handshake at the third send of a request
#    on a clean path, 3-4.5 ACK timeouts, else at 7);
# 3. rebinding again, every 2 requests, on the two nodes left, under the
#    rules the health check wrote: the moved clients too are answered by
#    their new node, no handshake anywhere.
# Everything the fleet sent in the three phases is answered, none failed.
# FLEET_CLIENTS (environment) changes the number of clients; FLEET_ARGS
# adds client_fleet options (e.g. --icmp-errors, to see what clients that
# read ICMP errors, as coaps's own sockets do, make of the dead node).
BUILD=$1
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/../cluster/cluster.sh"
. "$(dirname "$0")/../cluster/balancer_ops.sh"
. "$(dirname "$0")/../cluster/fleet_ops.sh"
[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"
need nft nftables
need ip iproute2
need conntrack conntrack
need jq jq
for tool in client_fleet coaps; do
  [ -x "$BUILD/$tool" ] || fail "$BUILD/$tool is not built"
done
BUILD=$(cd "$BUILD" && pwd)
CLIENTS=${FLEET_CLIENTS:-1000}
work=$(mktemp -d)
FLEET_DIR=$work
stop_all() {
  set +e # everything below must run: a failed kill or wait ends nothing
  fleet_stop_all # SIGKILL: SIGTERM would make it wait for its requests (up to 60 s)
  cluster_down
  cleanup_bg
  if [ -n "${FLEET_KEEP:-}" ]; then rm -rf "$FLEET_KEEP"; mkdir -p "$FLEET_KEEP"; cp -r "$work"/. "$CLUSTER_LOGS"/. "$FLEET_KEEP"; fi
  rm -rf "$work" "$CLUSTER_LOGS"
}
trap stop_all EXIT

# Server-side counts from a node's -v log.
full_handshakes() { grep 'DTLS server established' "$CLUSTER_LOGS/node$1.log" | grep -vc '(resumed)' || true; }
resumed_handshakes() { grep -c 'DTLS server established.*(resumed)' "$CLUSTER_LOGS/node$1.log" || true; }
moves() { grep -c 'session kept, no new handshake' "$CLUSTER_LOGS/node$1.log" || true; }
server_counts() { # "full resumed moves" for each node
  local n
  for n in 1 2 3; do echo "$n $(full_handshakes "$n") $(resumed_handshakes "$n") $(moves "$n")"; done
}

# The one fleet (tests/cluster/fleet_ops.sh), its reports failing the test.
wait_fleet() { fleet_wait fleet "$@" || fail "the fleet did not print '$1' within $2 s"; }
report() { fleet_report fleet "$@" || fail "no report from the fleet ($1), or not JSON, or it did not exit cleanly"; }
field() { fleet_field "$@"; }
clients() { fleet_clients "$@"; }

# ---- the cluster, sharing ticket keys ----
"$BUILD/coaps" keygen --ticket-key "$work/ticket.keys" >/dev/null || fail "coaps keygen --ticket-key failed"
CLUSTER_SERVE_ARGS=(--ticket-key-file "$work/ticket.keys")
cluster_up "$BUILD" || fail "the cluster did not come up"
balancer_firewall || fail "the balancer's firewall did not load"
balancer_conntrack_runs || fail "conntrack does not track the balancer's other traffic"
pass "cluster up: three nodes sharing $work/ticket.keys, a stateful firewall on the balancer"
# 1,000 sockets, and as many more while the clients rebind (the new one
# opens before the old one closes): 3,000 ports make the kernel hand out
# ports other clients closed a moment ago.
cluster_client_ports 40000 42999

read -r -a extra <<<"${FLEET_ARGS:-}"
fleet_start fleet --clients "$CLIENTS" --interval 1000 --ramp 3000 ${extra[@]+"${extra[@]}"} \
  --psk-identity "$CLUSTER_ID" --psk "$CLUSTER_KEY" "coaps://$CLUSTER_VIP/time"
started=$SECONDS
wait_fleet '^ready ' 40
pass "$CLIENTS clients answered, $((SECONDS - started)) s after the start"
report start
for n in 1 2 3; do
  on=$(clients start "node == $n")
  echo "node $n: $on clients"
  # 1000 clients hashed over 3 nodes: fewer than 200 on one is 10 sigma off.
  [ "$on" -ge $((CLIENTS / 5)) ] || fail "node $n got only $on of the $CLIENTS clients"
done
expect_eq "the balancer tracks no flow (conntrack runs there: its firewall)" "0 0 0" \
  "$(balancer_flows 1) $(balancer_flows 2) $(balancer_flows 3)"
expect_eq "every client on node 1, 2 or 3 (the CID's node byte)" "$CLIENTS" \
  "$(($(clients start "node == 1") + $(clients start "node == 2") + $(clients start "node == 3")))"
expect_eq "one full handshake a client" "$CLIENTS" "$(clients start "full == 1 && resumed == 0")"

# ---- 1. rebinding: a new source port every 3 requests ----
read -r -a before <<<"$(server_counts | awk '{ f += $2; r += $3 } END { print f, r }')"
declare -A moves_before
for n in 1 2 3; do moves_before[$n]=$(moves "$n"); done
fleet_send fleet mark
fleet_send fleet "rebind 3"
sleep 8
fleet_send fleet "rebind 0"
report rebinding
echo "rebinding: $(jq -c '{sent, answered, in_flight, failed, rebinds, reused_ports, other_node, full_handshakes, resumed_handshakes}' "$work/rebinding.json")"
# Only with --fresh-ports (FLEET_ARGS) are no ports reused.
[[ " ${FLEET_ARGS:-} " == *" --fresh-ports "* ]] || [ "$CLIENTS" -lt 1000 ] ||
  [ "$(field rebinding reused_ports)" -gt 100 ] ||
  fail "rebinding: only $(field rebinding reused_ports) rebinds onto a port another client had just closed"
expect_eq "rebinding: every client moved at least twice" "$CLIENTS" "$(clients rebinding "rebinds >= 2")"
expect_eq "rebinding: every answer from the node at the mark (CID node byte unchanged)" "$CLIENTS" \
  "$(clients rebinding "other_node == 0 && node != -1")"
expect_eq "rebinding: no handshake on any client" "$CLIENTS" "$(clients rebinding "full == 0 && resumed == 0")"
expect_eq "rebinding: no request failed" 0 "$(field rebinding failed)"
expect_eq "rebinding: every request answered (or under way)" "$(field rebinding sent)" \
  "$(($(field rebinding answered) + $(field rebinding in_flight)))"
read -r -a after <<<"$(server_counts | awk '{ f += $2; r += $3 } END { print f, r }')"
expect_eq "rebinding: no handshake on the servers" "${before[*]}" "${after[*]}"
moved=0
for n in 1 2 3; do moved=$((moved + $(moves "$n") - moves_before[$n])); done
rebinds=$(field rebinding rebinds)
[ "$moved" -ge "$rebinds" ] || fail "rebinding: $rebinds rebinds but the nodes logged $moved moves"
pass "rebinding: $rebinds rebinds, $moved moves logged by the nodes holding the sessions"

# ---- 2. failover: node 2 dies, the health check removes it ----
read -r -a base1 <<<"$(server_counts | sed -n 1p)"
read -r -a base3 <<<"$(server_counts | sed -n 3p)"
kill -KILL "${CLUSTER_PIDS[1]}"
wait "${CLUSTER_PIDS[1]}" 2>/dev/null || true
from=$(($(wc -l <"$work/fleet.out") + 1))
fleet_send fleet mark
killed_at=$SECONDS
flows=$(balancer_flows 2)
# A health check notices within a probe or two; ours at once, before any
# client's silence detection fires (it needs 3 ACK timeouts, 6 s).
sleep 1
balancer_remove_node 2 || fail "the balancer did not let node 2 go"
expect_eq "node 2 killed: no conntrack flow to it on the balancer (nothing to flush)" 0 "$flows"
pass "node 2 killed; health check: out of both maps, no flow to flush"
wait_fleet '^caught-up ' 60 "$from"
echo "every client answered $((SECONDS - killed_at)) s after the kill"
sleep 3 # a few more requests each on the new node: no second handshake
report failover
moved=$(clients failover "mark_node == 2")
echo "failover: $(jq -c '{sent, answered, in_flight, failed, failures, full_handshakes, resumed_handshakes, answers_by_node, clients_by_node, icmp_errors, icmp_vetted}' "$work/failover.json")"
[ "$moved" -ge $((CLIENTS / 5)) ] || fail "failover: only $moved clients were on node 2"
expect_eq "failover: every client of node 2 answered by node 1 or 3, none by node 2 after the kill" \
  "$moved" "$(($(clients failover "mark_node == 2 && node == 1 && same_node == 0 && other_node >= 1") + \
    $(clients failover "mark_node == 2 && node == 3 && same_node == 0 && other_node >= 1")))"
expect_eq "failover: each of them made one abbreviated handshake, no full one" "$moved" \
  "$(clients failover "mark_node == 2 && resumed == 1 && full == 0")"
expect_eq "failover: the other clients made no handshake and stayed on their node" \
  "$((CLIENTS - moved))" "$(clients failover "mark_node != 2 && full == 0 && resumed == 0 && other_node == 0")"
expect_eq "failover: no request failed" 0 "$(field failover failed)"
expect_eq "failover: every request answered (or under way)" "$(field failover sent)" \
  "$(($(field failover answered) + $(field failover in_flight)))"
read -r -a now1 <<<"$(server_counts | sed -n 1p)"
read -r -a now3 <<<"$(server_counts | sed -n 3p)"
expect_eq "failover: no full handshake on nodes 1 and 3" "${base1[1]} ${base3[1]}" "${now1[1]} ${now3[1]}"
expect_eq "failover: nodes 1 and 3 resumed as many sessions as node 2 had clients" "$moved" \
  "$((now1[2] - base1[2] + now3[2] - base3[2]))"
# A resumption the server takes without a cookie exchange is one round
# trip (the client's hello, the server's ServerHello, ChangeCipherSpec and
# Finished; the client's Finished goes with its request): two flights,
# more only when one was sent again (a loss, or a slow server).
expect_eq "failover: each resumption took one round trip (the server asked no cookie)" "$moved" \
  "$(clients failover "mark_node == 2 && cookie == 0")"
echo "failover resumptions: $(clients failover "mark_node == 2 && flights == 2") of $moved in two flights, none resent"
# The time from the kill to each moved client's first answer from its new
# node (it includes the wait for its next request, up to 1 s), and its
# slowest request (first send to answer).
awk '/^client / { for (i = 3; i < NF; i += 2) v[$i] = $(i + 1)
    if (v["mark_node"] == 2) { print v["moved_ms"], v["max_latency_ms"] } }' "$work/failover" >"$work/times"
stats() { sort -n | awk '{ a[NR] = $1 } END { printf "min %d, median %d, p90 %d, p99 %d, max %d ms\n", a[1], a[int(NR * 0.5) + 1], a[int(NR * 0.9) + 1], a[int(NR * 0.99) + 1], a[NR] }'; }
echo "failover time, kill to first answer from the new node: $(cut -d' ' -f1 "$work/times" | stats)"
echo "slowest request of each moved client: $(cut -d' ' -f2 "$work/times" | stats)"
worst=$(cut -d' ' -f1 "$work/times" | sort -n | tail -1)
# 7 ACK timeouts with their random factor (21 s), the handshake and a
# request interval: beyond 30 s the detection is not what it should be.
[ "$worst" -le 30000 ] || fail "failover: a client took $worst ms"
pass "failover: $moved clients of node 2 moved, the slowest in $worst ms"

# ---- 3. rebinding again, on the two nodes left (the rules the health
# check wrote: CID map without node 2, hash mod 6), moved clients too ----
read -r -a before <<<"$(server_counts | awk '{ f += $2; r += $3 } END { print f, r }')"
for n in 1 3; do moves_before[$n]=$(moves "$n"); done
fleet_send fleet mark
fleet_send fleet "rebind 2"
sleep 6
fleet_send fleet "rebind 0"
report after quit # and its exit awaited: a status other than 0 fails
echo "rebinding after the failover: $(jq -c '{sent, answered, in_flight, failed, rebinds, reused_ports, other_node, full_handshakes, resumed_handshakes}' "$work/after.json")"
expect_eq "rebinding after the failover: every client moved at least twice" "$CLIENTS" \
  "$(clients after "rebinds >= 2")"
expect_eq "rebinding after the failover: every answer from the client's node (1 or 3)" "$CLIENTS" \
  "$(($(clients after "other_node == 0 && node == 1") + $(clients after "other_node == 0 && node == 3")))"
expect_eq "rebinding after the failover: no handshake on any client" "$CLIENTS" \
  "$(clients after "full == 0 && resumed == 0")"
read -r -a after <<<"$(server_counts | awk '{ f += $2; r += $3 } END { print f, r }')"
expect_eq "rebinding after the failover: no handshake on the servers" "${before[*]}" "${after[*]}"
moved=0
for n in 1 3; do moved=$((moved + $(moves "$n") - moves_before[$n])); done
rebinds=$(field after rebinds)
[ "$moved" -ge "$rebinds" ] || fail "rebinding after the failover: $rebinds rebinds, $moved moves logged"
pass "rebinding after the failover: $rebinds rebinds, $moved moves logged by nodes 1 and 3"
# The fleet has ended: everything it sent, all three phases, answered.
expect_eq "the whole run: no request failed" 0 "$(jq -r .total.failed "$work/after.json")"
expect_eq "the whole run: every request answered, none left under way" \
  "$(jq -r .total.sent "$work/after.json") 0" \
  "$(jq -r .total.answered "$work/after.json") $(field after in_flight)"
