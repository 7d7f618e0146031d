#!/usr/bin/env bash
# Connection ID with several workers (coaps serve --workers 2): each
# worker holds its own sessions, and a client whose address changed
# lands on whichever worker the kernel hashes its new address to. Our
# CIDs begin with the worker index and a BPF program on the port hands
# tls12_cid records to that worker (coap_dtls_set_cid_worker):
# - coap-client-mbedtls-cid -d 2 (libcoap + Mbed TLS, a new source port
#   every 2 datagrams): all 20 requests answered, one handshake, the
#   moves logged. Without the steering a move hashed to the other worker
#   is lost there (checked by hand: 1 answer of 20);
# - the NAT-rebinding proof: our client through udp_rebind, which
#   changes its outbound port every 19 requests: 1,000 requests across
#   at least 50 rebindings, all answered, one handshake, no reconnect —
#   with one worker and with two. With 50 fresh ports, the chance that
#   none of them hashes to the other worker is 2^-50: both are hit;
# - without CID (coaps serve --no-cid): through the same relay, one move
#   in 6 requests, after idleness: all answered, the move costs the client
#   one new handshake, started beside the silent session at the third send
#   (session-lost), the server logs the moved client's records as
#   [nat-rebinding], and no key is blamed; and moves back to back (every 8
#   datagrams, no idle gap, 30 requests): all answered, one handshake a
#   move, each started early (no 7 ACK timeouts waited), no key blamed;
# - coaps doctor shows whether CID was negotiated and both CIDs, and
#   without it names nat-rebinding (text and JSON).
BUILD=$1
. "$(dirname "$0")/lib.bash"
need_shared_peers coap-client-mbedtls-cid
for tool in udp_rebind repeat_client; do
  [ -x "$BUILD/$tool" ] || fail "$BUILD/$tool is not built"
done
work=$(mktemp -d)
trap 'cleanup_bg; rm -rf "$work"' EXIT
ID=cid-device
KEY=s3cret-for-cid

serve() {
  local log=$1; shift
  start_coaps_serve_dtls "$log" -a 127.0.0.1 -v --psk-identity "$ID" --psk "$KEY" "$@"
}

stop_server() {
  kill -INT "$SERVE_PID"
  for _ in $(seq 100); do kill -0 "$SERVE_PID" 2>/dev/null || return 0; sleep 0.05; done
  fail "coaps serve did not stop on SIGINT"
}

count() { grep -cF -- "$1" "$2" || true; }

# ---- libcoap's rebinding client against two workers ----
serve "$work/lib.log" --workers 2
out=$(timeout 90 "$PEERS_BIN/coap-client-mbedtls-cid" -B 30 -m get -u "$ID" -k "$KEY" -d 2 -G 20 \
  -w "coaps://127.0.0.1:$DTLS_PORT/time" 2>&1 || true)
stop_server
expect_eq "--workers 2, libcoap -d 2 -G 20: all 20 answered" 20 \
  "$(grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' <<<"$out" || true)"
expect_eq "--workers 2, libcoap -d 2: one handshake" 1 "$(count "DTLS server established" "$work/lib.log")"
moves=$(count "session kept, no new handshake" "$work/lib.log")
[ "$moves" -ge 9 ] || fail "--workers 2, libcoap -d 2: expected at least 9 moves, got $moves"
pass "--workers 2, libcoap -d 2: $moves moves, all on the session's worker"

# ---- 1,000 requests across >= 50 rebindings, our client ----
# rebinding NAME WORKERS: our server with WORKERS workers behind udp_rebind.
rebinding() {
  local name=$1 workers=$2 port tap=$work/$1.tap
  serve "$work/$name.log" --workers "$workers"
  "$BUILD/udp_rebind" "$DTLS_PORT" 19 "$tap" >"$work/$name.port" &
  BG_PIDS+=($!)
  for _ in $(seq 100); do port=$(head -1 "$work/$name.port" 2>/dev/null || true); [ -n "$port" ] && break; sleep 0.05; done
  [ -n "$port" ] || fail "udp_rebind did not start"
  seq 1000 | timeout 100 "$BUILD/repeat_client" "coaps://127.0.0.1:$port/time" "$ID" "$KEY" \
    >"$work/$name.out" 2>"$work/$name.err" || true
  stop_server
  expect_eq "$name: 1000 requests, all answered" 1000 "$(grep -c '^ok 2.05' "$work/$name.out" || true)"
  local rebinds
  rebinds=$(grep -c '^rebind ' "$tap" || true)
  [ "$rebinds" -ge 50 ] || fail "$name: the relay changed ports only $rebinds times"
  expect_eq "$name: one handshake on the server" 1 "$(count "DTLS server established" "$work/$name.log")"
  expect_eq "$name: one handshake on the client" 1 "$(count "DTLS client established" "$work/$name.err")"
  expect_contains "$name: no reconnect" "reconnects 0 session-lost 0" "$(cat "$work/$name.out")"
  [ "$(count "session kept, no new handshake" "$work/$name.log")" -ge 50 ] ||
    fail "$name: fewer than 50 moves in the server's log"
  pass "$name: $rebinds rebindings, one session"
}

rebinding one-worker 1
rebinding two-workers 2

# relay NAME EVERY: udp_rebind in front of the server; sets RELAY_PORT.
relay() {
  "$BUILD/udp_rebind" "$DTLS_PORT" "$2" "$work/$1.tap" >"$work/$1.port" &
  BG_PIDS+=($!)
  for _ in $(seq 100); do RELAY_PORT=$(head -1 "$work/$1.port" 2>/dev/null || true); [ -n "$RELAY_PORT" ] && return 0; sleep 0.05; done
  fail "udp_rebind did not start"
}

# ---- Without CID: answered, one handshake a silence, named nat-rebinding ----
# A new port at the 6th request (udp_rebind moves at the 6th
# application datagram), after 9 s of idleness (a NAT binding
# expires on idle): its first retransmission goes unanswered, and at the
# third send (6-9 s) the client starts a new handshake beside the silent
# session, instead of waiting 7 ACK timeouts (14-21 s). (A relay that
# counted the retransmissions into a rebinding every 3 would move the
# client again right after its new handshake.)
serve "$work/nocid.log" --workers 1 --no-cid
relay nocid 5
start=$(date +%s)
{ seq 5; sleep 9; echo; } | timeout 200 "$BUILD/repeat_client" "coaps://127.0.0.1:$RELAY_PORT/time" \
  "$ID" "$KEY" >"$work/nocid.out" 2>"$work/nocid.err" || true
took=$(($(date +%s) - start))
stop_server
expect_eq "--no-cid, rebinding: all 6 answered" 6 "$(grep -c '^ok 2.05' "$work/nocid.out" || true)"
expect_eq "--no-cid: the relay moved the client once" 1 "$(grep -c '^rebind ' "$work/nocid.tap" || true)"
reconnects=$(grep -oE '^reconnects [0-9]+' "$work/nocid.out" | grep -oE '[0-9]+$' || true)
expect_eq "--no-cid: one new handshake for the move" 1 "${reconnects:-0}"
expect_eq "--no-cid: two handshakes on the server" 2 "$(count "DTLS server established" "$work/nocid.log")"
expect_log "--no-cid: the server names the moved client's records" "[nat-rebinding]" "$work/nocid.log"
expect_log "--no-cid: ... and tells the fix" "should use Connection ID" "$work/nocid.log"
expect_log "--no-cid: the client names the silence" "[session-lost]" "$work/nocid.err"
expect_log "--no-cid: ... and handshakes early, beside the session" \
  "new handshake beside the session" "$work/nocid.err"
[ "$took" -lt 22 ] || fail "--no-cid: 6 requests took $took s: the move waited out 7 ACK timeouts"
pass "--no-cid: 6 requests with 9 s of idleness in $took s"
if grep -qE "psk-key-mismatch|psk-unknown" "$work/nocid.log" "$work/nocid.err" "$work/nocid.out"; then
  fail "--no-cid rebinding blamed a key"
fi
pass "--no-cid: $reconnects new handshakes, no key blamed"

# ---- Without CID, moves back to back: one handshake each, no timeout ----
# udp_rebind moves every 8 application datagrams, with no idle gap: 30
# requests in a row. A move costs the moved request its first two sends
# (dropped by the server as a stranger's), then a handshake beside the
# session at its third send (3 to 4.5 ACK timeouts, 6-9 s), because the
# path has shown itself clean (two answers without a resend); waiting
# out 7 ACK timeouts would take 14 s or more a move.
serve "$work/b2b.log" --workers 1 --no-cid
relay b2b 8
start=$(date +%s)
seq 30 | timeout 300 "$BUILD/repeat_client" "coaps://127.0.0.1:$RELAY_PORT/time" \
  "$ID" "$KEY" >"$work/b2b.out" 2>"$work/b2b.err" || true
took=$(($(date +%s) - start))
stop_server
expect_eq "--no-cid, back to back: all 30 answered" 30 "$(grep -c '^ok 2.05' "$work/b2b.out" || true)"
moves=$(grep -c '^rebind ' "$work/b2b.tap" || true)
[ "$moves" -ge 4 ] || fail "--no-cid, back to back: the relay moved the client only $moves times"
reconnects=$(grep -oE '^reconnects [0-9]+' "$work/b2b.out" | grep -oE '[0-9]+$' || true)
expect_eq "--no-cid, back to back: one new handshake a move" "$moves" "${reconnects:-0}"
expect_eq "--no-cid, back to back: each started early, beside the session" "$moves" \
  "$(count "new handshake beside the session" "$work/b2b.err")"
expect_eq "--no-cid, back to back: handshakes on the server" $((moves + 1)) \
  "$(count "DTLS server established" "$work/b2b.log")"
[ "$took" -lt $((moves * 11 + 5)) ] ||
  fail "--no-cid, back to back: $moves moves took $took s: a move waited out 7 ACK timeouts"
if grep -qE "psk-key-mismatch|psk-unknown" "$work/b2b.log" "$work/b2b.err" "$work/b2b.out"; then
  fail "--no-cid back-to-back rebinding blamed a key"
fi
pass "--no-cid, back to back: $moves moves in 30 requests, $took s, no key blamed"

# ---- coaps doctor: CID shown, its absence named ----
serve "$work/doctor.log" --workers 1
out=$("$BUILD/coaps" doctor --psk-identity "$ID" --psk "$KEY" "coaps://127.0.0.1:$DTLS_PORT/time")
grep -qE "connection id +ok +negotiated; ours \(empty\), the server's [0-9a-f]{16}" <<<"$out" ||
  fail "doctor: no CID line: $out"
pass "doctor: CID negotiated, both CIDs shown"
out=$("$BUILD/coaps" doctor --cid=2 --psk-identity "$ID" --psk "$KEY" "coaps://127.0.0.1:$DTLS_PORT/time")
grep -qE "connection id +ok +negotiated; ours [0-9a-f]{4}, the server's [0-9a-f]{16}" <<<"$out" ||
  fail "doctor --cid=2: expected a CID of ours: $out"
pass "doctor --cid=2: our own CID shown"
out=$("$BUILD/coaps" doctor --no-cid --psk-identity "$ID" --psk "$KEY" "coaps://127.0.0.1:$DTLS_PORT/time")
grep -qE "connection id +warning +not negotiated.*\[nat-rebinding\]" <<<"$out" ||
  fail "doctor --no-cid: nat-rebinding not named: $out"
pass "doctor --no-cid: names nat-rebinding"
json=$("$BUILD/coaps" doctor --json --psk-identity "$ID" --psk "$KEY" "coaps://127.0.0.1:$DTLS_PORT/time")
grep -qE '"connection_id":\{"negotiated":true,"ours":"","server":"[0-9a-f]{16}"\}' <<<"$json" ||
  fail "doctor --json: no connection_id object: $json"
pass "doctor --json: connection_id"
stop_server
