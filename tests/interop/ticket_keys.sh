#!/usr/bin/env bash
# Shared session-ticket keys (issue 16): coaps keygen --ticket-key creates
# and rotates the file (0600, the old current key kept second); two
# `coaps serve --ticket-key-file` processes one after the other on the
# same address (a node that vanished and the one that took its place):
# our client (--session keeps its ticket across runs) resumes on the
# second with an abbreviated handshake, which a server without the file
# cannot give; SIGHUP picks up a rotated file; a ticket whose key left the
# file gets a full handshake (and still an answer), logged and counted
# (--metrics) as ticket-key-unknown; a file others may read is refused
# with a clear message.
BUILD=$1
. "$(dirname "$0")/lib.bash"
work=$(mktemp -d)
trap 'cleanup_bg; rm -rf "$work"' EXIT
coaps() { "$BUILD/coaps" "$@"; }
rc() { set +e; "$@" >"$work/out" 2>"$work/err"; RC=$?; set -e; OUT=$(cat "$work/out"); ERR=$(cat "$work/err"); }
keys=$work/ticket.keys
psk=(--psk-identity me --psk secret)
key_lines() { grep -vE '^(#|coaps-ticket-keys )' "$keys"; }

# ---- the file: created, rotated, a foreign file left alone ----
rc coaps keygen --ticket-key "$keys"
expect_eq "keygen --ticket-key creates the file" 0 "$RC"
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
get() { rc coaps get -v "coaps://127.0.0.1:$port/time" "${psk[@]}" --session "$1"; }
resumed() { grep -q "(resumed)" <<<"$ERR"; }

# ---- resumption on another node ----
start_coaps_serve_dtls "$work/s1.log" "${psk[@]}" --ticket-key-file "$keys" -v
port=$DTLS_PORT
get "$work/s.session"
expect_eq "first node answers" 0 "$RC"
resumed && fail "the first handshake cannot be a resumed one"
cp "$work/s.session" "$work/k0.session" # a ticket sealed with the first key
stop_serve
start_on_port "$work/s2.log" "${psk[@]}" --ticket-key-file "$keys" -v
get "$work/s.session"
expect_eq "the second node answers" 0 "$RC"
resumed || fail "the client did not resume on the second node: $ERR"
pass "the client resumed on the second node (abbreviated handshake)"
grep -q "DTLS server established: .*(resumed)" "$work/s2.log" ||
  fail "the second node did not see a resumed handshake: $(cat "$work/s2.log")"
pass "the second node resumed the first node's session"
stop_serve

# A node without the file cannot open the ticket: the control.
start_on_port "$work/s3.log" "${psk[@]}" -v
get "$work/s.session"
expect_eq "a node without the file answers" 0 "$RC"
resumed && fail "a node without the shared key resumed: the test proves nothing"
pass "a node without the shared key makes a full handshake"
stop_serve

# ---- rotation and SIGHUP ----
rc coaps keygen --ticket-key "$keys"
expect_eq "keygen rotates" 0 "$RC"
expect_contains "says it rotated" "rotated" "$OUT"
expect_eq "after a rotation: the new key and the old one" 2 "$(key_lines | wc -l)"
expect_eq "the old current key is kept second" "$first" "$(key_lines | sed -n 2p)"
[ "$(stat -c %a "$keys")" = 600 ] || fail "the rotated file is not mode 600"
cp "$keys" "$work/rotated-once.keys"
rc coaps keygen --ticket-key "$keys" # K0 leaves the file
expect_eq "after two rotations: still two keys" 2 "$(key_lines | wc -l)"
grep -q "$first" "$keys" && fail "the oldest key is still in the file after two rotations"
pass "the oldest key left the file after two rotations"
# A server started on the old file, then SIGHUP after the rotation: the
# tickets it issues next are sealed with the new current key.
cp "$work/rotated-once.keys" "$work/live.keys"
chmod 600 "$work/live.keys"
start_on_port "$work/s4.log" "${psk[@]}" --ticket-key-file "$work/live.keys" -v --metrics 0
M=$(grep -m1 -oE 'metrics on http://127\.0\.0\.1:[0-9]+' "$work/s4.log" | grep -oE 'http://.*')
[ -n "$M" ] || fail "no metrics line: $(cat "$work/s4.log")"
unknown_count() { curl -fsS "$M/metrics" | grep -E '^coaps_failures_total\{cause="ticket-key-unknown"\}' | awk '{print $2}'; }
expect_eq "no ticket-key-unknown before" 0 "$(unknown_count)"
get "$work/s5-fresh.session" # a fresh client offers no ticket: not counted
expect_eq "a fresh client is not counted as ticket-key-unknown" 0 "$(unknown_count)"
get "$work/k0.session"
expect_eq "a ticket whose key left the file still gets an answer" 0 "$RC"
resumed && fail "a ticket sealed with a key no longer in the file resumed"
pass "a ticket sealed with a key no longer in the file: full handshake"
grep -q "\[ticket-key-unknown\] the client's session ticket could not be opened" "$work/s4.log" ||
  fail "the server did not log the cause: $(cat "$work/s4.log")"
pass "the server logged the cause"
# The workers publish their numbers every 100 ms.
for _ in $(seq 60); do [ "$(unknown_count)" = 1 ] && break; sleep 0.05; done
expect_eq "counted as ticket-key-unknown" 1 "$(unknown_count)"
cp "$keys" "$work/live.keys.new"
mv "$work/live.keys.new" "$work/live.keys"
kill -HUP "$SERVE_PID"
for _ in $(seq 100); do grep -q "coaps: reload:" "$work/s4.log" && break; sleep 0.05; done
grep -q "coaps: reload:" "$work/s4.log" || fail "no reload line after SIGHUP: $(tail -5 "$work/s4.log")"
get "$work/new.session"
expect_eq "a fresh session after the reload" 0 "$RC"
stop_serve
start_on_port "$work/s5.log" "${psk[@]}" --ticket-key-file "$keys" -v
get "$work/new.session"
resumed || fail "the ticket issued after SIGHUP is not sealed with the rotated key: $ERR"
pass "SIGHUP picked up the rotated file (its ticket resumes on a node with the new file)"
stop_serve

# ---- a file others may read ----
chmod 644 "$keys"
rc timeout 10 "$BUILD/coaps" serve --port 0 --dtls-port 0 "${psk[@]}" --ticket-key-file "$keys"
[ "$RC" -ne 0 ] || fail "a ticket key file others may read was accepted"
expect_contains "the refusal says why" "group or others may read this key file (mode 0644): chmod 600" "$ERR"
expect_contains "and names the file" "$keys" "$ERR"
rc coaps get "coaps://127.0.0.1:1/time" --ticket-key-file "$keys"
expect_eq "--ticket-key-file is a server flag" 64 "$RC"
