#!/usr/bin/env bash
# libcoap's clients observing our server (RFC 7641): coap-client-notls on
# coap://, coap-client-gnutls on coaps:// with PSK and with certificates,
# each with -s (observe for that many seconds). Each must print the
# registration's answer and a notification a second, and deregister at
# the end: the server's observer count (coaps serve -v logs it when it
# changes) goes back to 0. /time never shows a second twice, also to ten
# clients registering around a second's start.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-client-notls libcoap3-bin
need coap-client-gnutls libcoap3-bin
work=$(mktemp -d)
make_creds "$work/c"
K=$work/c
start_coaps_serve_dtls "$work/serve.log" --workers 1 -v --psk-identity interop --psk s3cret \
  --cert "$K/server-cert.pem" --key "$K/server-key.pem" --cacert "$K/ca-cert.pem"
SECONDS_OBSERVED=4

# wait_count WHAT N NEEDLE FILE: FILE holds at least N lines with NEEDLE
# within 3 s (the server logs the count at its next loop turn).
wait_count() {
  local n
  for _ in $(seq 60); do
    n=$(grep -cF -- "$3" "$4" || true)
    [ "$n" -ge "$2" ] && { pass "$1"; return 0; }
    sleep 0.05
  done
  fail "$1: expected $2 lines with '$3' in the server log, got $n: $(cat "$4")"
}

# observe NAME PATTERN RUN CLIENT ARGS...: run a libcoap client with -s,
# check its output lines (one a notification, -w ends each with a newline)
# and that the server saw it register and deregister. RUN numbers the
# observations of the resource so far (each logs "1 observer", then "0").
observe() {
  local name=$1 pattern=$2 run=$3 path=$4; shift 4
  local out lines
  out=$("$@" -w -B 20 -s "$SECONDS_OBSERVED" 2>"$work/client.err") ||
    fail "$name: the client failed: $(cat "$work/client.err")"
  lines=$(grep -cE "$pattern" <<<"$out" || true)
  # The answer, then one notification a second: -s N sees N or N+1; a
  # margin of one for a run that starts just before a tick.
  [ "$lines" -ge $((SECONDS_OBSERVED - 1)) ] ||
    fail "$name: $lines representations in ${SECONDS_OBSERVED} s, expected at least $((SECONDS_OBSERVED - 1)): '$out'"
  pass "$name: $lines representations in ${SECONDS_OBSERVED} s"
  [ "$(grep -cvE "$pattern" <<<"$out" || true)" = 0 ] || fail "$name: unexpected output: '$out'"
  wait_count "$name: the server registered it" "$run" "coaps: /$path: 1 observer" "$work/serve.log"
  wait_count "$name: deregistered at the end" "$run" "coaps: /$path: 0 observers" "$work/serve.log"
  OUT=$out
}

temp='^[0-9]+\.[0-9] C$'
time_re='^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$'

observe "coap-client-notls coap:// /temp" "$temp" 1 temp \
  coap-client-notls "coap://127.0.0.1:$SERVE_PORT/temp"
observe "coap-client-gnutls coaps:// PSK /temp" "$temp" 2 temp \
  coap-client-gnutls -u interop -k s3cret "coaps://127.0.0.1:$DTLS_PORT/temp"
observe "coap-client-gnutls coaps:// certificate /time" "$time_re" 1 time \
  coap-client-gnutls -R "$K/ca-cert.pem" "coaps://localhost:$DTLS_PORT/time"
# /time: each notification is a new second, never an old one again.
sorted=$(sort -u <<<"$OUT")
expect_eq "the /time notifications are all new, in order" "$sorted" "$OUT"

# The gap between a second's start and the tick that announces it (the
# server ticks TICK_LAG_MS = 20 ms late): a registration answered there
# showed the new second, and the tick then notified it again as new
# (RFC 7641: a notification is a new state). Ten coap:// clients, started
# 5 ms apart from 40 ms before a second begins, so that some land in it.
ms=$((10#$(date +%N) / 1000000))
sleep "$(printf '0.%03d' $(((2000 - 40 - ms) % 1000)))"
edge_pids=()
for i in $(seq 10); do
  coap-client-notls -w -B 5 -s 2 "coap://127.0.0.1:$SERVE_PORT/time" \
    >"$work/edge$i.out" 2>"$work/edge$i.err" &
  edge_pids+=($!)
  BG_PIDS+=($!)
  sleep 0.005
done
for i in $(seq 10); do
  wait "${edge_pids[i - 1]}" || fail "/time client $i failed: $(cat "$work/edge$i.err")"
  out=$(cat "$work/edge$i.out")
  [ "$(grep -cE "$time_re" <<<"$out" || true)" -ge 2 ] ||
    fail "/time client $i: fewer than 2 representations in 2 s: '$out'"
  expect_eq "/time client $i, started near a second's start: never the same second twice" \
    "$(sort -u <<<"$out")" "$out"
done

# On the way out the server counts what it sent (-v); the clients all
# deregistered, none was dropped for an RST or an unanswered CON.
kill "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
sent=$(grep -oE 'observe: [0-9]+ notifications sent; [0-9]+ observers dropped' "$work/serve.log" || true)
[[ "$sent" =~ ^observe:\ ([0-9]+)\ notifications\ sent\;\ ([0-9]+) ]] ||
  fail "no notification count in the server's log: $(cat "$work/serve.log")"
[ "${BASH_REMATCH[1]}" -ge $((3 * (SECONDS_OBSERVED - 1))) ] ||
  fail "the server sent ${BASH_REMATCH[1]} notifications to three clients"
pass "the server sent ${BASH_REMATCH[1]} notifications"
# libcoap ends with a GET with Observe=1 (before its close_notify on
# coaps://): a deregistration, so nobody was dropped.
expect_eq "no observer dropped (each deregistered with Observe=1)" 0 "${BASH_REMATCH[2]}"
grep -q "failed connections" "$work/serve.log" &&
  fail "a connection failed: $(cat "$work/serve.log")"
pass "no connection failed"
