#!/usr/bin/env bash
# Sessions that survive a restart (coaps serve --state-file): an observing
# client (our coaps observe, one long-lived DTLS session) keeps its session
# across a SIGTERM and a new server process: the new server restores it,
# makes no handshake, and answers the client's re-registration; the client
# made one handshake in all. Then the refusals, each with its message and
# a normal start: a forged file, a replayed one (a copy of a file already
# taken), a stale one, one readable by others; a key file readable by
# others stops the server. Usage: restart_sessions.sh BUILD_DIR SOURCE_DIR
BUILD=$1
. "$(dirname "$0")/lib.bash"

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

# ---- the session survives ----
serve "$DIR/s1.out"
"$BUILD/coaps" observe "coaps://127.0.0.1:$DP/time" "${PSK[@]}" -v \
  >"$DIR/observe.out" 2>"$DIR/observe.err" &
BG_PIDS+=($!)
wait_notifications 2 10
stop
s1=$(cat "$DIR/s1.out")
expect_contains "the stop saves the session" "1 DTLS session saved to $STATE" "$s1"
expect_contains "the stop says what it does not carry" \
  "1 observe relation(s) not carried: their clients must register again" "$s1"
expect_eq "the state file is 0600" "600" "$(stat -c %a "$STATE")"
before=$(notifications)
serve "$DIR/s2.out"
# The relation is not carried: the client registers again after Max-Age
# on the same session.
wait_notifications $((before + 2)) 15
s2=$(cat "$DIR/s2.out")
expect_contains "the new server restores the session" "1 DTLS session restored from $STATE" "$s2"
expect_not_contains "the new server makes no handshake" "DTLS server established" "$s2"
[ ! -e "$STATE" ] || fail "the state file is still there after it was read"
pass "the state file is deleted once read"
expect_eq "the client made one handshake in all" 1 \
  "$(grep -c 'DTLS client established' "$DIR/observe.err")"
stop
cleanup_bg
BG_PIDS=()
expect_contains "the second stop saves it again" "1 DTLS session saved" "$(cat "$DIR/s2.out")"

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
# Replayed: the file written after the second start's state was taken;
# take it once, then put a copy back.
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
