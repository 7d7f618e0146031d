#!/usr/bin/env bash
# Shared session-ticket keys (issue 16): coaps keygen --ticket-key creates
# and rotates the file (0600, the old current key kept second). Nodes are
# `coaps serve --ticket-key-file` processes one after the other on the
# same address (a node that vanished and the one that took its place),
# with certificates, so that a fresh hello must answer a cookie first
# (--cookie when-needed, the default). Our client (--session keeps its
# ticket across runs) talks to them through udp_rebind (which never
# moves here: it is a tap logging each datagram's first record type), so
# the round trips are counted on the wire, and each node's --metrics
# count cookies and causes:
# (a) a ticket from node A resumes on node B in 2 client flights (hello;
#     Finished + request), no HelloVerifyRequest; a node without the file
#     makes a full handshake (the control);
# (b) rotated once + SIGHUP: the old ticket still resumes the same way
#     (the grace period), and new tickets are sealed with the new key;
# (c) rotated twice + SIGHUP: a full handshake (still an answer), logged
#     with what to do and counted as ticket-key-unknown;
# a file others may read is refused with a clear message. libcoap's
# coap-client (4.3) keeps no session between runs, so it cannot resume
# against us: not tested here.
BUILD=$1
. "$(dirname "$0")/lib.bash"
work=$(mktemp -d)
trap 'cleanup_bg; rm -rf "$work"' EXIT
coaps() { "$BUILD/coaps" "$@"; }
rc() { set +e; "$@" >"$work/out" 2>"$work/err"; RC=$?; set -e; OUT=$(cat "$work/out"); ERR=$(cat "$work/err"); }
answered() { [ "$RC" = 0 ] || fail "$1: exit $RC: $ERR"; pass "$1"; }
keys=$work/ticket.keys
psk=(--psk-identity me --psk secret)
key_lines() { grep -vE '^(#|coaps-ticket-keys )' "$keys"; }

# ---- the file: created, rotated, a foreign file left alone ----
rc coaps keygen --ticket-key "$keys"
answered "keygen --ticket-key creates the file"
[ "$(stat -c %a "$keys")" = 600 ] || fail "the ticket key file is not mode 600"
expect_eq "a new file holds one key" 1 "$(key_lines | wc -l)"
first=$(key_lines | head -1)
[[ "$first" =~ ^[0-9a-f]{128}$ ]] || fail "the key is not 128 hex digits"
pass "the key is 128 hex digits"
echo "my notes" >"$work/notes"
rc coaps keygen --ticket-key "$work/notes"
expect_eq "a file that is not a ticket key file is not rotated" 64 "$RC"
expect_contains "and says why" "not a coaps ticket key file" "$ERR"
expect_eq "the foreign file is untouched" "my notes" "$(cat "$work/notes")"

# Another node taking the address of the one that vanished.
start_on_port() {
  local out=$1; shift
  : >"$out"
  "$BUILD/coaps" serve --port 0 --dtls-port "$port" "$@" >"$out" 2>&1 &
  SERVE_PID=$!
  BG_PIDS+=($!)
  for _ in $(seq 600); do grep -q 'listening on coaps://' "$out" && return 0; sleep 0.05; done
  fail "coaps serve did not start on port $port: $(cat "$out")"
}
stop_serve() { kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; }
# get SESSION TAP: a GET through a fresh tap in front of the node.
get() {
  : >"$work/tap.port" # now: the last tap's port must not be read for this one's
  "$BUILD/udp_rebind" "$port" 0 "$2" >"$work/tap.port" &
  local tap_pid=$!
  BG_PIDS+=($tap_pid)
  local via=""
  for _ in $(seq 100); do
    via=$(head -1 "$work/tap.port" 2>/dev/null || true)
    [ -n "$via" ] && break
    sleep 0.05
  done
  [ -n "$via" ] || fail "udp_rebind did not start"
  rc coaps get -v "coaps://127.0.0.1:$via/time" "${cli[@]}" --session "$1"
  kill "$tap_pid"; wait "$tap_pid" 2>/dev/null || true
}
resumed() { grep -q "(resumed)" <<<"$ERR"; }
# The client's flights up to its first request: a run of c2s datagrams is
# one flight; the count ends at the first application record (23, or
# tls12_cid 25). Resumed without a cookie: 2 (hello; Finished + request).
client_flights() {
  awk '/^c2s/ { if (!run) { n++; run = 1 } if ($2 == 23 || $2 == 25) { print n; exit } next }
       /^s2c/ { run = 0 }' "$1"
}
metric() { curl -fsS "$M/metrics" | grep -E "^$1" | awk '{s += $2} END {print s + 0}'; }
cookies() { metric 'coaps_dtls_cookies_sent_total'; }
unknown_count() { metric 'coaps_failures_total\{cause="ticket-key-unknown"\}'; }
metrics_of() {
  M=$(grep -m1 -oE 'metrics on http://127\.0\.0\.1:[0-9]+' "$1" | grep -oE 'http://.*')
  [ -n "$M" ] || fail "no metrics line: $(cat "$1")"
}
# The workers publish their numbers every 100 ms.
settle() { for _ in $(seq 60); do [ "$($1)" = "$2" ] && break; sleep 0.05; done; }
# expect_one_rtt_resume WHAT TAP LOG: resumed, 2 flights, no cookie.
expect_one_rtt_resume() {
  resumed || fail "$1: the client did not resume: $ERR"
  grep -q "DTLS server established: .*(resumed)" "$3" ||
    fail "$1: the node did not see a resumed handshake: $(cat "$3")"
  expect_eq "$1: client flights to the response (hello; Finished + request)" 2 "$(client_flights "$2")"
  settle cookies 0
  expect_eq "$1: no HelloVerifyRequest" 0 "$(cookies)"
}

make_creds "$work/c"
cli=(--cacert "$work/c/ca-cert.pem")
srv=(--cert "$work/c/server-cert.pem" --key "$work/c/server-key.pem" -v --metrics 0)
cp "$keys" "$work/k0.keys" # K0
rc coaps keygen --ticket-key "$keys"
answered "keygen rotates"
expect_contains "says it rotated" "rotated" "$OUT"
expect_eq "after a rotation: the new key and the old one" 2 "$(key_lines | wc -l)"
expect_eq "the old current key is kept second" "$first" "$(key_lines | sed -n 2p)"
[ "$(stat -c %a "$keys")" = 600 ] || fail "the rotated file is not mode 600"
cp "$keys" "$work/k1.keys" # K1, K0
rc coaps keygen --ticket-key "$keys"
expect_eq "after two rotations: still two keys" 2 "$(key_lines | wc -l)"
grep -q "$first" "$keys" && fail "the oldest key is still in the file after two rotations"
pass "the oldest key left the file after two rotations"
cp "$keys" "$work/k2.keys" # K2, K1
keys=$work/k0.keys

# ---- (a) resumption on another node, 1 round trip to the Finished ----
start_coaps_serve_dtls "$work/s1.log" "${srv[@]}" --ticket-key-file "$keys"
port=$DTLS_PORT
get "$work/s.session" "$work/a0.tap"
answered "node A answers"
resumed && fail "the first handshake cannot be a resumed one"
expect_eq "a fresh certificate handshake: cookie, then 3 flights" 4 "$(client_flights "$work/a0.tap")"
cp "$work/s.session" "$work/k0.session" # a ticket sealed with K0
stop_serve
start_on_port "$work/s2.log" "${srv[@]}" --ticket-key-file "$keys"
metrics_of "$work/s2.log"
get "$work/s.session" "$work/a1.tap"
answered "node B answers"
expect_one_rtt_resume "node B resumes node A's ticket" "$work/a1.tap" "$work/s2.log"
stop_serve

# A node without the file cannot open the ticket: the control.
start_on_port "$work/s3.log" "${srv[@]}"
metrics_of "$work/s3.log"
get "$work/s.session" "$work/a2.tap"
answered "a node without the file answers"
resumed && fail "a node without the shared key resumed: the test proves nothing"
pass "a node without the shared key makes a full handshake"
settle cookies 1
expect_eq "and asks for a cookie first (the ticket's key is none of its)" 1 "$(cookies)"
stop_serve

# ---- (b) rotated once + SIGHUP: the grace period; (c) twice ----
cp "$work/k0.keys" "$work/live.keys"
chmod 600 "$work/live.keys"
reload() {
  cp "$1" "$work/live.keys.new"
  mv "$work/live.keys.new" "$work/live.keys"
  local before
  before=$(grep -c "coaps: reload:" "$work/s4.log" || true)
  kill -HUP "$SERVE_PID"
  for _ in $(seq 100); do
    [ "$(grep -c "coaps: reload:" "$work/s4.log" || true)" -gt "$before" ] && return 0
    sleep 0.05
  done
  fail "no reload line after SIGHUP: $(tail -5 "$work/s4.log")"
}
start_on_port "$work/s4.log" "${srv[@]}" --ticket-key-file "$work/live.keys"
metrics_of "$work/s4.log"
expect_eq "no ticket-key-unknown before" 0 "$(unknown_count)"
get "$work/fresh.session" "$work/b0.tap" # a fresh client offers no ticket: not counted
settle cookies 1
expect_eq "a fresh client is not counted as ticket-key-unknown" 0 "$(unknown_count)"
reload "$work/k1.keys"
get "$work/k0.session" "$work/b1.tap"
answered "after one rotation the K0 ticket gets an answer"
resumed || fail "after one rotation + SIGHUP the K0 ticket did not resume: $ERR"
expect_eq "(b) resumed in 2 client flights after one rotation" 2 "$(client_flights "$work/b1.tap")"
expect_eq "(b) no HelloVerifyRequest for it (only the fresh client's)" 1 "$(cookies)"
get "$work/new.session" "$work/b2.tap" # its ticket is sealed with K1
answered "a fresh session after the reload"
settle cookies 2
reload "$work/k2.keys"
get "$work/k0.session" "$work/c1.tap"
answered "(c) after two rotations the K0 ticket still gets an answer"
resumed && fail "a ticket sealed with a key no longer in the file resumed"
pass "(c) a ticket sealed with a key no longer in the file: full handshake"
settle unknown_count 1
expect_eq "(c) counted as ticket-key-unknown" 1 "$(unknown_count)"
expect_eq "(c) and it had to answer a cookie" 3 "$(cookies)"
grep -q "\[ticket-key-unknown\] the client's session ticket was sealed with a key this server does not hold" "$work/s4.log" ||
  fail "the server did not log the cause: $(cat "$work/s4.log")"
grep -q "give every server the same --ticket-key-file, reload them all after each rotation" "$work/s4.log" ||
  fail "the log line does not say what to do: $(grep ticket-key-unknown "$work/s4.log")"
pass "(c) the server logged the cause and what to do"
get "$work/new.session" "$work/c2.tap"
resumed || fail "the K1 ticket (issued after the first SIGHUP) did not resume after the second: $ERR"
expect_eq "(c) a K1 ticket resumes in its grace period" 2 "$(client_flights "$work/c2.tap")"
stop_serve
# A node holding K2 and K1 only: the ticket issued after the first SIGHUP
# was sealed with K1, not with the K0 of the start.
start_on_port "$work/s5.log" "${srv[@]}" --ticket-key-file "$work/k2.keys"
metrics_of "$work/s5.log"
get "$work/new.session" "$work/d0.tap"
expect_one_rtt_resume "SIGHUP picked up the rotated file (its new ticket resumes on a K2/K1 node)" \
  "$work/d0.tap" "$work/s5.log"
stop_serve

# ---- a file others may read ----
chmod 644 "$keys"
rc timeout 10 "$BUILD/coaps" serve --port 0 --dtls-port 0 "${psk[@]}" --ticket-key-file "$keys"
[ "$RC" -ne 0 ] || fail "a ticket key file others may read was accepted"
expect_contains "the refusal says why" "group or others may read this key file (mode 0644): chmod 600" "$ERR"
expect_contains "and names the file" "$keys" "$ERR"
rc coaps get "coaps://127.0.0.1:1/time" --ticket-key-file "$keys"
expect_eq "--ticket-key-file is a server flag" 64 "$RC"
