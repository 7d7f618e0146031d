#!/usr/bin/env bash
# Ticket key rotation in the cluster (tests/cluster/cluster.sh: three nodes
# behind the nftables balancer sharing one --ticket-key-file, made by
# 'coaps keygen --ticket-key'). The clients are 'coaps get --session FILE'
# runs, each a fresh process and a fresh source port (so the balancer's
# hash puts each reconnection on any node), each keeping its ticket in its
# own session file, as a device keeps it across reboots:
# - group A (ROTATION_CLIENTS, default 40) connects first: full handshakes,
#   tickets sealed with key K1;
# - rotation 1 (K2 current, K1 kept) and SIGHUP of every node; group B
#   connects: tickets sealed with K2;
# (a) every client of A and B reconnects: all resumed (abbreviated), no
#     full handshake on the clients or the nodes, most of them on a node
#     other than the one that issued their ticket, nothing counted as
#     ticket-key-unknown;
# - rotation 2 (K3 current, K2 kept, K1 gone) and SIGHUP of every node;
# (b) every client reconnects: A's tickets (K1, from before the first
#     rotation; TLS 1.2 resumption issues no new ticket, so (a) kept them)
#     get full handshakes, each answered, counted by the nodes as
#     ticket-key-unknown (coaps_failures_total, /metrics) and logged with
#     the cause; B's tickets (K2, issued after the first rotation) still
#     resume.
BUILD=$1
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/../cluster/cluster.sh"
. "$(dirname "$0")/../cluster/node_ops.sh"
[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"
need nft nftables
need ip iproute2
need curl curl
[ -x "$BUILD/coaps" ] || fail "$BUILD/coaps is not built"
BUILD=$(cd "$BUILD" && pwd)
CLIENTS=${ROTATION_CLIENTS:-40}
work=$(mktemp -d)
trap 'cluster_down; cleanup_bg; rm -rf "$work" "$CLUSTER_LOGS"' EXIT
umask 077

keys=$work/ticket.keys
"$BUILD/coaps" keygen --ticket-key "$keys" >/dev/null || fail "coaps keygen --ticket-key failed"
cluster_up "$BUILD" || fail "the cluster did not come up"
# The nodes as this test runs them: the shared key file, and metrics.
for n in 1 2 3; do
  node_stop "$n" || fail "node $n did not stop"
  node_start "$n" "$BUILD/coaps" "$CLUSTER_LOGS/node$n.rot.log" --ticket-key-file "$keys" \
    --metrics 0 || fail "node $n did not start"
done
pass "cluster up: three nodes sharing $keys"

# ---- what the nodes count ----
metric_sum() { # metric_sum REGEX: the sum over the three nodes' /metrics
  local n url total=0 v
  for n in 1 2 3; do
    url=$(grep -m1 -oE 'metrics on http://127\.0\.0\.1:[0-9]+' "${NODE_LOG[$n]}" | grep -oE 'http://.*')
    [ -n "$url" ] || fail "node $n: no metrics line"
    v=$(cluster_ns "n$n" curl -fsS "$url/metrics" | grep -E "^$1" | awk '{s += $2} END {print s + 0}')
    total=$((total + v))
  done
  echo "$total"
}
unknown_tickets() { metric_sum 'coaps_failures_total\{cause="ticket-key-unknown"\}'; }
# The workers publish their numbers every 100 ms.
settle_unknown() { for _ in $(seq 60); do [ "$(unknown_tickets)" = "$1" ] && break; sleep 0.05; done; }
server_full() { cat "${NODE_LOG[@]}" | grep 'DTLS server established' | grep -vc '(resumed)' || true; }
server_resumed() { cat "${NODE_LOG[@]}" | grep -c 'DTLS server established.*(resumed)' || true; }

# ---- the clients ----
# connect GROUP ROUND: every client of GROUP (a, b) asks once, all at
# once, each with its session file; its output in $work/GROUP.I.ROUND.
connect() {
  local i pids=()
  for i in $(seq "$CLIENTS"); do
    $CLUSTER_CLIENT timeout 30 "$BUILD/coaps" get -v --psk-identity "$CLUSTER_ID" --psk "$CLUSTER_KEY" \
      --session "$work/$1.$i.session" "coaps://$CLUSTER_VIP/time" >"$work/$1.$i.$2" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}" || true
}
# count GROUP ROUND WHAT: how many of the group's runs in ROUND were
# answered (2.05: the time printed) and resumed / made a full handshake.
answered() { grep -lE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$work/$1".*."$2" | wc -l; }
resumed() { grep -l 'DTLS client established.*(resumed)' "$work/$1".*."$2" | wc -l; }
full() { grep 'DTLS client established' "$work/$1".*."$2" | grep -vc '(resumed)' || true; }
# node GROUP I ROUND: the node that answered (byte 1 of its CID).
node_of() { grep -oE "the server's [0-9a-f]{4}" "$work/$1.$2.$3" | tail -1 | tail -c 3; }
expect_round() { # expect_round GROUP ROUND WHAT RESUMED FULL
  expect_eq "$3: every client answered" "$CLIENTS" "$(answered "$1" "$2")"
  expect_eq "$3: resumed" "$4" "$(resumed "$1" "$2")"
  expect_eq "$3: full handshakes" "$5" "$(full "$1" "$2")"
}
rotate() { # rotate: keygen rotates the file, every node reloads it
  "$BUILD/coaps" keygen --ticket-key "$keys" >/dev/null || fail "coaps keygen --ticket-key (rotate) failed"
  node_reload 1 2 3 || fail "a node did not reload"
}

connect a 0
expect_round a 0 "group A, first connection" 0 "$CLIENTS"
rotate
pass "rotation 1 (K2 current, K1 kept), every node reloaded"
connect b 0
expect_round b 0 "group B, first connection after rotation 1" 0 "$CLIENTS"

# ---- (a) everybody reconnects after one rotation ----
full_before=$(server_full) resumed_before=$(server_resumed)
connect a 1
connect b 1
expect_round a 1 "(a) group A (K1 tickets) after one rotation" "$CLIENTS" 0
expect_round b 1 "(a) group B (K2 tickets) after one rotation" "$CLIENTS" 0
expect_eq "(a) no full handshake on the nodes" "$full_before" "$(server_full)"
expect_eq "(a) the nodes resumed every client" "$((resumed_before + 2 * CLIENTS))" "$(server_resumed)"
moved=0
for g in a b; do
  for i in $(seq "$CLIENTS"); do
    [ "$(node_of "$g" "$i" 0)" = "$(node_of "$g" "$i" 1)" ] || moved=$((moved + 1))
  done
done
# Fresh ports hashed over three nodes: about 2/3 land on another node;
# fewer than 1/3 of 80 is far out (p < 1e-5).
[ "$moved" -ge $((2 * CLIENTS / 3)) ] || fail "(a) only $moved resumptions on a node other than the ticket's"
pass "(a) $moved of $((2 * CLIENTS)) resumed on a node other than the one that issued their ticket"
settle_unknown 0
expect_eq "(a) nothing counted as ticket-key-unknown" 0 "$(unknown_tickets)"

# ---- (b) a second rotation: K1 is gone ----
rotate
pass "rotation 2 (K3 current, K2 kept, K1 gone), every node reloaded"
full_before=$(server_full) resumed_before=$(server_resumed)
connect a 2
connect b 2
expect_round a 2 "(b) group A (K1 tickets) after two rotations" 0 "$CLIENTS"
expect_round b 2 "(b) group B (K2 tickets) after two rotations" "$CLIENTS" 0
expect_eq "(b) the nodes made a full handshake for each K1 ticket" "$((full_before + CLIENTS))" "$(server_full)"
expect_eq "(b) and resumed each K2 ticket" "$((resumed_before + CLIENTS))" "$(server_resumed)"
settle_unknown "$CLIENTS"
expect_eq "(b) the K1 tickets counted as ticket-key-unknown on the nodes" "$CLIENTS" "$(unknown_tickets)"
expect_eq "(b) and logged with the cause" "$CLIENTS" \
  "$(cat "${NODE_LOG[@]}" | grep -c '\[ticket-key-unknown\]' || true)"
