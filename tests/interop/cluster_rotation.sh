#!/usr/bin/env bash
# Ticket key rotation in the cluster (tests/cluster/cluster.sh: three nodes
# behind the nftables balancer sharing one --ticket-key-file, made by
# 'coaps keygen --ticket-key', each with --metrics). Two kinds of client,
# each holding the ticket of its last full handshake:
# - fleets of PSK clients (tests/tools/client_fleet, ROTATION_CLIENTS each,
#   default 500, a CON GET every 2 s), whose 'reconnect' command makes each
#   client end its session and move to a new source port before its next
#   request, as a device that restarts: that request needs a new
#   handshake, resuming its ticket, on whichever node the balancer's hash
#   picks for the new port;
# - 'coaps get --session FILE' runs (ROTATION_CLI, default 10 a group), each
#   a new process and a new source port, the ticket kept in its file.
# The steps: group A (a fleet and CLI clients) connects: full handshakes,
# tickets sealed with K1. Rotation 1 (K2 current, K1 kept) and SIGHUP of
# every node; group B connects: tickets sealed with K2.
# (a) everybody reconnects, both groups at once (1,000 resumptions from
#     one address within 2 s): all resumed (abbreviated), no full handshake
#     on the clients or the nodes, most on a node other than the one that
#     issued their ticket, nothing counted as ticket-key-unknown;
# Rotation 2 (K3 current, K2 kept, K1 gone) and SIGHUP of every node.
# (b) everybody reconnects: A's tickets (K1, from before the first
#     rotation; TLS 1.2 resumption issues no new ticket, so (a) kept them)
#     get full handshakes, each answered, counted by the nodes as
#     ticket-key-unknown (coaps_failures_total on /metrics) and logged with
#     the cause; B's tickets (K2, issued after the first rotation) resume.
# No request of the fleets fails in all of it.
BUILD=$1
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/../cluster/cluster.sh"
. "$(dirname "$0")/../cluster/node_ops.sh"
. "$(dirname "$0")/../cluster/fleet_ops.sh"
[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"
need nft nftables
need ip iproute2
need curl curl
need jq jq
for tool in client_fleet coaps; do
  [ -x "$BUILD/$tool" ] || fail "$BUILD/$tool is not built"
done
BUILD=$(cd "$BUILD" && pwd)
FLEET=${ROTATION_CLIENTS:-500}
CLI=${ROTATION_CLI:-10}
work=$(mktemp -d)
FLEET_DIR=$work
trap 'fleet_stop_all; cluster_down; cleanup_bg; rm -rf "$work" "$CLUSTER_LOGS"' EXIT
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
# settle FUNCTION VALUE: until FUNCTION prints VALUE, 3 s at most (the
# workers publish their numbers every 100 ms, and a node logs a
# resumption when the client's Finished arrives, after the client counted
# it).
settle() { for _ in $(seq 60); do [ "$($1)" = "$2" ] && break; sleep 0.05; done; }
server_full() { cat "${NODE_LOG[@]}" | grep 'DTLS server established' | grep -vc '(resumed)' || true; }
server_resumed() { cat "${NODE_LOG[@]}" | grep -c 'DTLS server established.*(resumed)' || true; }

# ---- the CLI clients ----
# cli GROUP ROUND: every CLI client of GROUP (a, b) asks once, all at
# once, each with its session file; its output in $work/GROUP.I.ROUND.
cli() {
  local i pids=()
  for i in $(seq "$CLI"); do
    $CLUSTER_CLIENT timeout 30 "$BUILD/coaps" get -v --psk-identity "$CLUSTER_ID" --psk "$CLUSTER_KEY" \
      --session "$work/$1.$i.session" "coaps://$CLUSTER_VIP/time" >"$work/$1.$i.$2" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}" || true
}
cli_answered() { grep -lE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$work/$1".*."$2" | wc -l; }
cli_resumed() { grep -l 'DTLS client established.*(resumed)' "$work/$1".*."$2" | wc -l; }
cli_full() { grep 'DTLS client established' "$work/$1".*."$2" | grep -vc '(resumed)' || true; }
# cli_node GROUP I ROUND: the node that answered (byte 1 of its CID).
cli_node() { grep -oE "the server's [0-9a-f]{4}" "$work/$1.$2.$3" | tail -1 | tail -c 3; }
cli_moved() { # cli_moved GROUP ROUND: clients answered by another node than in round 0
  local i moved=0
  for i in $(seq "$CLI"); do
    [ "$(cli_node "$1" "$i" 0)" = "$(cli_node "$1" "$i" "$2")" ] || moved=$((moved + 1))
  done
  echo "$moved"
}
expect_cli() { # expect_cli GROUP ROUND WHAT RESUMED FULL
  expect_eq "$3, CLI clients: every one answered" "$CLI" "$(cli_answered "$1" "$2")"
  expect_eq "$3, CLI clients: resumed" "$4" "$(cli_resumed "$1" "$2")"
  expect_eq "$3, CLI clients: full handshakes" "$5" "$(cli_full "$1" "$2")"
}

# ---- the fleets ----
fleet() { # fleet GROUP: its fleet started, and every client answered
  fleet_start "$1" --clients "$FLEET" --interval 2000 \
    --psk-identity "$CLUSTER_ID" --psk "$CLUSTER_KEY" "coaps://$CLUSTER_VIP/time"
  fleet_wait "$1" '^ready ' 40 || fail "fleet $1 did not get going"
}
# reconnect ROUND: both groups' fleets and CLI clients make a fresh
# session at once (the fleets' clients each before its next request, so
# 1,000 resumptions from the client namespace's one address within 2 s:
# far beyond one host's share of a worker's unfinished handshakes, 32,
# which limits evictions only; a resumption past the node's Finished is
# never ended for a newer hello, see docs/cluster.md).
reconnect() {
  fleet_send a mark
  fleet_send b mark
  fleet_send a reconnect
  fleet_send b reconnect
  cli a "$1" &
  local pid=$!
  cli b "$1"
  wait "$pid"
}
# expect_fleet GROUP ROUND WHAT RESUMED FULL: every client of the fleet
# reconnected (one new port since the mark) with RESUMED resumed and FULL
# full handshakes, within 20 s (each does at its next request, due within
# every 2 s); its report in $work/GROUP.ROUND. No request failed.
expect_fleet() {
  local want="resumed == $4 && full == $5 && rebinds == 1" got=
  for _ in $(seq 40); do
    fleet_report "$1" "$1.$2" || fail "no report from fleet $1"
    got=$(fleet_clients "$1.$2" "$want")
    [ "$got" = "$FLEET" ] && break
    sleep 0.5
  done
  expect_eq "$3, fleet: every client reconnected, resumed $4 and full $5" "$FLEET" "$got"
  expect_eq "$3, fleet: no request failed" 0 "$(fleet_field "$1.$2" failed)"
}

rotate() { # rotate: keygen rotates the file, every node reloads it
  "$BUILD/coaps" keygen --ticket-key "$keys" >/dev/null || fail "coaps keygen --ticket-key (rotate) failed"
  node_reload 1 2 3 || fail "a node did not reload"
}

fleet a
cli a 0
fleet_report a a.0 || fail "no report from fleet a"
expect_eq "group A: every fleet client made one full handshake" "$FLEET" "$(fleet_clients a.0 "full == 1 && resumed == 0")"
expect_cli a 0 "group A" 0 "$CLI"
rotate
pass "rotation 1 (K2 current, K1 kept), every node reloaded"
fleet b
cli b 0
fleet_report b b.0 || fail "no report from fleet b"
expect_eq "group B: every fleet client made one full handshake" "$FLEET" "$(fleet_clients b.0 "full == 1 && resumed == 0")"
expect_cli b 0 "group B" 0 "$CLI"

# ---- (a) everybody reconnects after one rotation ----
full_before=$(server_full) resumed_before=$(server_resumed)
reconnect 1
expect_fleet a 1 "(a) group A (K1 tickets) after one rotation" 1 0
expect_fleet b 1 "(a) group B (K2 tickets) after one rotation" 1 0
expect_cli a 1 "(a) group A" "$CLI" 0
expect_cli b 1 "(a) group B" "$CLI" 0
all=$((2 * FLEET + 2 * CLI))
settle server_resumed $((resumed_before + all))
expect_eq "(a) no full handshake on the nodes" "$full_before" "$(server_full)"
expect_eq "(a) the nodes resumed every client" "$((resumed_before + all))" "$(server_resumed)"
moved=$(($(fleet_clients a.1 "other_node >= 1") + $(fleet_clients b.1 "other_node >= 1") + \
  $(cli_moved a 1) + $(cli_moved b 1)))
# New ports hashed over three nodes: about 2/3 land on another node;
# fewer than a half of 1,000 is far out.
[ "$moved" -ge $((all / 2)) ] || fail "(a) only $moved of $all resumed on a node other than their ticket's"
pass "(a) $moved of $all resumed on a node other than the one that issued their ticket"
settle unknown_tickets 0
expect_eq "(a) nothing counted as ticket-key-unknown" 0 "$(unknown_tickets)"
# Room for the burst: no node ended an unfinished handshake for a newer
# hello (logged once per worker when it happens).
expect_eq "(a) no node ended a handshake to make room" 0 \
  "$(cat "${NODE_LOG[@]}" | grep -c 'unfinished DTLS handshake ended' || true)"

# ---- (b) a second rotation: K1 is gone ----
rotate
pass "rotation 2 (K3 current, K2 kept, K1 gone), every node reloaded"
full_before=$(server_full) resumed_before=$(server_resumed)
reconnect 2
expect_fleet a 2 "(b) group A (K1 tickets) after two rotations" 0 1
expect_fleet b 2 "(b) group B (K2 tickets) after two rotations" 1 0
expect_cli a 2 "(b) group A" 0 "$CLI"
expect_cli b 2 "(b) group B" "$CLI" 0
settle server_resumed $((resumed_before + FLEET + CLI))
settle server_full $((full_before + FLEET + CLI))
expect_eq "(b) the nodes made a full handshake for each K1 ticket" "$((full_before + FLEET + CLI))" \
  "$(server_full)"
expect_eq "(b) and resumed each K2 ticket" "$((resumed_before + FLEET + CLI))" "$(server_resumed)"
settle unknown_tickets $((FLEET + CLI))
expect_eq "(b) the K1 tickets counted as ticket-key-unknown on the nodes" "$((FLEET + CLI))" \
  "$(unknown_tickets)"
expect_eq "(b) and logged with the cause" "$((FLEET + CLI))" \
  "$(cat "${NODE_LOG[@]}" | grep -c '\[ticket-key-unknown\]' || true)"

# ---- the fleets' whole runs ----
for g in a b; do
  fleet_report "$g" "$g.end" quit || fail "fleet $g: no last report"
  expect_eq "fleet $g, the whole run: every request answered, none failed" \
    "$(jq -r .total.sent "$work/$g.end.json") 0" \
    "$(jq -r .total.answered "$work/$g.end.json") $(jq -r .total.failed "$work/$g.end.json")"
done
