#!/usr/bin/env bash
# Sessions that survive a restart (coaps serve --state-file), and the
# Observe relations on them: two observers, our coaps observe on /time and
# libcoap's coap-client-gnutls (-s: observe for that long) on /temp, each
# with one long-lived DTLS session, keep their sessions across a SIGTERM
# and a new server process: the new server restores both sessions and
# their relations, makes no handshake, and goes on notifying each observer
# on its old session with Observe numbers past the old ones (RFC 7641
# §3.4: a client takes them as newer), with no gap beyond a
# notification's Max-Age and no new registration; each client made one
# handshake and one registration in all. Then the refusals, each with its
# message and a normal start: a forged file, another node's (recorded in
# FILE.seen all the same: its copy is refused as replayed), a replayed one
# (a copy of a file already taken), a stale one, one readable by others; a key file
# readable by others stops the server. Usage: restart_sessions.sh
# BUILD_DIR SOURCE_DIR
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-client-gnutls libcoap3-bin

DIR=$(mktemp -d)
trap 'cleanup_bg; rm -rf "$DIR"' EXIT
umask 077
od -An -tx1 -N32 /dev/urandom >"$DIR/key"
STATE=$DIR/state
PSK=(--psk-identity me --psk secret)
DP=$(pick_free_udp_port)

serve() { # serve OUT [FLAGS...]: a server on $DP with the state file, pid in $SERVER
  local out=$1; shift
  start_coaps_serve "$out" -w 1 --dtls-port "$DP" -v "${PSK[@]}" \
    --state-file "$STATE" --state-key-file "$DIR/key" "$@"
  SERVER=${BG_PIDS[-1]}
  wait_udp_port "$DP"
}
stop() { # stop: SIGTERM, and wait for the exit
  kill -TERM "$SERVER"
  wait "$SERVER" || fail "coaps serve exited with $?"
}
notifications() { grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$DIR/observe.out" || true; }
wait_notifications() { # wait_notifications N SECONDS
  for _ in $(seq $(($2 * 10))); do
    [ "$(notifications)" -ge "$1" ] && return 0
    sleep 0.1
  done
  fail "the observer got $(notifications) notifications, wanted $1 (log: $(tail -5 "$DIR/observe.err"))"
}
# The Observe numbers our client was given, in order.
observe_numbers() { grep -oE '^coaps: 2\.05 Content, Observe [0-9]+' "$DIR/observe.err" | grep -oE '[0-9]+$'; }

# ---- the sessions and their relations survive ----
serve "$DIR/s1.out"
"$BUILD/coaps" observe "coaps://127.0.0.1:$DP/time" "${PSK[@]}" -v \
  >"$DIR/observe.out" 2>"$DIR/observe.err" &
BG_PIDS+=($!)
# libcoap prints what it sends and gets (-v 6); it ends by itself after -s.
timeout 40 coap-client-gnutls -s 12 -u me -k secret -v 6 "coaps://127.0.0.1:$DP/temp" \
  >"$DIR/libcoap.out" 2>&1 &
LIBCOAP=$!
BG_PIDS+=($LIBCOAP)
wait_notifications 2 10
sleep 1
stop
s1=$(cat "$DIR/s1.out")
expect_contains "the stop saves the sessions" "2 DTLS sessions saved to $STATE" "$s1"
expect_contains "the stop carries the relations" \
  "2 observe relation(s) carried with their sessions" "$s1"
expect_not_contains "the stop leaves nothing behind" "not carried" "$s1"
expect_eq "the state file is 0600" "600" "$(stat -c %a "$STATE")"
before=$(notifications)
last_before=$(observe_numbers | tail -1)
serve "$DIR/s2.out"
# /time changes every second with Max-Age 1: the client would register
# again 3 s after the last notification. It does not need to.
wait_notifications $((before + 3)) 6
s2=$(cat "$DIR/s2.out")
expect_contains "the new server restores the sessions" "2 DTLS sessions restored from $STATE" "$s2"
expect_contains "the new server takes the relations over" \
  "2 observe relation(s) taken over" "$s2"
expect_not_contains "the new server makes no handshake" "DTLS server established" "$s2"
[ ! -e "$STATE" ] || fail "the state file is still there after it was read"
pass "the state file is deleted once read"
expect_eq "our client made one handshake in all" 1 \
  "$(grep -c 'DTLS client established' "$DIR/observe.err")"
expect_eq "our client registered once in all" 1 "$(grep -c '> CON GET.*Observe:0' "$DIR/observe.err")"
expect_not_contains "our client never had to register again" "registering again" \
  "$(cat "$DIR/observe.err")"
last_after=$(observe_numbers | tail -1)
[ "$last_after" -gt $((last_before + 1024)) ] ||
  fail "Observe numbers after the restart ($last_after) are not past the old ones ($last_before) by the margin"
pass "Observe numbers go on past the old ones ($last_before, then $last_after)"
# libcoap's observer: registered once, notified on after the restart.
wait "$LIBCOAP" || fail "coap-client-gnutls exited with $? ($(tail -3 "$DIR/libcoap.out"))"
lc=$(cat "$DIR/libcoap.out")
expect_eq "libcoap registered once in all" 1 "$(grep -cE 'c:GET .*Observe:0' "$DIR/libcoap.out")"
lc_after=$(grep -oE 'c:2\.05 .*Observe:[0-9]+' "$DIR/libcoap.out" | grep -oE '[0-9]+$' |
  awk '$1 > 1024' | wc -l)
[ "$lc_after" -ge 3 ] ||
  fail "libcoap got $lc_after notifications from the new server (Observe past the margin): $(tail -5 "$DIR/libcoap.out")"
pass "libcoap's observer is notified on by the new server ($lc_after notifications)"
expect_not_contains "libcoap saw no DTLS failure" "alert" "$lc"
stop
cleanup_bg
BG_PIDS=()
expect_contains "the second stop saves a session again" "DTLS session saved" "$(cat "$DIR/s2.out")"

# ---- refusals: each says why, and the server starts without the file ----
cp "$STATE" "$DIR/good"
refused() { # refused WHAT NEEDLE [FLAGS...]
  local what=$1 needle=$2; shift 2
  serve "$DIR/r.out" "$@"
  local out
  out=$(cat "$DIR/r.out")
  expect_contains "$what: refused" "$needle" "$out"
  expect_not_contains "$what: nothing restored" "restored from" "$out"
  "$BUILD/coaps" get "coaps://127.0.0.1:$DP/time" "${PSK[@]}" >/dev/null ||
    fail "$what: the server does not answer after the refusal"
  pass "$what: the server starts and answers"
  kill -TERM "$SERVER"
  wait "$SERVER" || true
  rm -f "$STATE"
}
# A forged file: one byte changed inside the seal.
cp "$DIR/good" "$STATE"
printf '\xff' | dd of="$STATE" bs=1 seek=60 conv=notrunc status=none
refused "forged" "refused: its seal does not verify"
# Another node's file (sealed by node 0, read by --node-id 2).
cp "$DIR/good" "$STATE"
refused "from another node" "written by another node" --node-id 2
# Its seal verified, so it was recorded in FILE.seen although refused: a
# copy of it is never read again, by this node either.
cp "$DIR/good" "$STATE"
refused "a copy of a file refused after its seal verified" "refused: replayed"
# Replayed: the file written after the second start's state was taken;
# take it once (FILE.seen reset by hand, as after the mistake above),
# then put a copy back.
rm -f "$STATE.seen"
cp "$DIR/good" "$STATE"
serve "$DIR/take.out"
expect_contains "the genuine file is taken" "restored from" "$(cat "$DIR/take.out")"
kill -TERM "$SERVER"
wait "$SERVER" || true
rm -f "$STATE"
cp "$DIR/good" "$STATE"
refused "replayed" "refused: replayed"
# Readable by others.
cp "$DIR/good" "$STATE"
chmod 644 "$STATE"
refused "readable by others" "readable or writable by others (mode 644): refused"
# Stale: older than --state-max-age.
cp "$DIR/good" "$STATE"
sleep 2.2
refused "stale" "refused: too old" --state-max-age 1
# A key file readable by others: the server does not start.
chmod 644 "$DIR/key"
set +e
out=$("$BUILD/coaps" serve -w 1 --port 0 --dtls-port 0 "${PSK[@]}" --state-file "$STATE" \
  --state-key-file "$DIR/key" 2>&1 </dev/null)
rc=$?
set -e
expect_eq "a key file readable by others: exit code" 5 "$rc"
expect_contains "a key file readable by others: the reason" "readable or writable by others" "$out"
