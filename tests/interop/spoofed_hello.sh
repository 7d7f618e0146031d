#!/usr/bin/env bash
# One forged datagram must not end a session (RFC 6347 §4.2.8): a
# cookieless epoch-0 ClientHello sent "from" an established client's
# address and port leaves that client's session working, its next request
# answered at once, under each cookie policy (always, under-load, never,
# when-needed);
# while a client that really restarted on the same address and port still
# gets a new session at once.
#
# Forging a source needs a raw socket (udp_spoof), so the whole test runs in
# a network namespace of its own, where `unshare -rn` makes it root.
#
# "At once" is under ANSWER_MS = 1900: a request that was lost or not
# understood is sent again after ACK_TIMEOUT, at least 2 s, so any way of
# recovering a broken session takes longer than that, while an answer on a
# working session comes in milliseconds even sanitized on a busy machine.
# The client's own counters (no reconnect, no session lost) say the same
# without a clock.
if [ -z "${COAPS_SPOOF_NETNS:-}" ]; then
  exec unshare -rn env COAPS_SPOOF_NETNS=1 bash "$0" "$@"
fi
BUILD=$1
. "$(dirname "$0")/lib.bash"
ip link set lo up
for tool in udp_spoof repeat_client udp_relay; do
  [ -x "$BUILD/$tool" ] || fail "$tool was not built"
done
ANSWER_MS=1900
work=$(mktemp -d)
failures=0
# check WHAT COMMAND...: a failed check is counted and the test goes on, so
# one run shows every check's evidence.
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else echo "FAIL: $what" >&2; failures=$((failures + 1)); fi
}
ms_now() { echo $(($(date +%s%N) / 1000000)); }

# A real first flight of our client, taken off the wire: the datagram an
# attacker on the path would copy.
"$BUILD/udp_spoof" capture "$work/hello.bin" >"$work/capture.port" &
cap=$!
for _ in $(seq 100); do [ -s "$work/capture.port" ] && break; sleep 0.05; done
"$BUILD/coaps" get "coaps://127.0.0.1:$(cat "$work/capture.port")/temp" --psk-identity x --psk y \
  -t 3 >/dev/null 2>&1 || true
wait "$cap" || fail "no ClientHello captured from our client"
[ "$(od -An -tu1 -j13 -N1 "$work/hello.bin" | tr -d ' ')" = 1 ] ||
  fail "the captured datagram is not a ClientHello"
echo "captured our client's ClientHello: $(stat -c %s "$work/hello.bin") bytes"

# request WHAT: one GET from the established client (on fd 3), which must
# be answered with 2.05 within ANSWER_MS.
request() {
  local t0 t1 line
  sent=$((sent + 1))
  t0=$(ms_now)
  echo >&3
  for _ in $(seq 2500); do
    [ "$(grep -c . "$work/out.$policy" || true)" -ge "$sent" ] && break
    sleep 0.01
  done
  t1=$(ms_now)
  line=$(sed -n "${sent}p" "$work/out.$policy")
  echo "  request $sent ($1): '${line:-no answer}' after $((t1 - t0)) ms"
  check "$1: answered at once (--cookie $policy)" answered_in "$line" $((t1 - t0))
}
answered_in() { [ "$1" = "ok 2.05 Content" ] && [ "$2" -lt "$ANSWER_MS" ]; }

# not_in_log NEEDLE FILE: true when absent; shows the log when present.
not_in_log() {
  grep -qF -- "$1" "$2" || return 0
  echo "  server log:"
  grep -vE '^try:|^  coaps |listening on' "$2" | sed 's/^/    /' | head -20
  return 1
}

# The restarted client's handshake meets no loss: it needs no resend, so
# 5 s (the first resend comes at 1 s, the next at 3 s) covers a slow start
# under the sanitizers and nothing like waiting for the old session to go.
restart_ok() { [ "$1" = 0 ] && grep -qE '^[0-9]+\.[0-9] C$' <<<"$2" && [ "$3" -lt 5000 ]; }

# first_handshake_type FILE: the handshake type of the first record
# (2 ServerHello, 3 HelloVerifyRequest).
first_handshake_type() { od -An -tu1 -j13 -N1 "$1" | tr -d ' '; }

for policy in always under-load never when-needed; do
  echo "== --cookie $policy"
  log=$work/serve.$policy.log
  start_coaps_serve_dtls "$log" --psk-identity me --psk secret --cookie "$policy" -v

  # Control: the forged datagrams do reach the server and get an answer,
  # sent to the forged source (here a listener of ours), so the checks
  # below cannot pass because nothing arrived.
  for hello in captured built; do
    answer=$work/answer.$policy.$hello
    : >"$answer.port"
    "$BUILD/udp_spoof" capture "$answer" >"$answer.port" &
    cap=$!
    for _ in $(seq 100); do [ -s "$answer.port" ] && break; sleep 0.05; done
    if [ $hello = captured ]; then what=(--file "$work/hello.bin"); else what=(--hello); fi
    "$BUILD/udp_spoof" send 127.0.0.1 "$(cat "$answer.port")" 127.0.0.1 "$DTLS_PORT" "${what[@]}" 2>/dev/null
    rc=0
    wait "$cap" || rc=$?
    [ "$rc" = 0 ] || fail "the server did not answer a forged $hello ClientHello (--cookie $policy)"
    # A HelloVerifyRequest, or a ServerHello where the policy lets the
    # server skip the cookie.
    t=$(first_handshake_type "$answer")
    [ "$t" = 3 ] || { [ "$policy" != always ] && [ "$t" = 2 ]; } ||
      fail "a forged $hello ClientHello was answered with handshake type '$t' (--cookie $policy)"
    pass "a forged $hello ClientHello reaches the server (answered with handshake type $t)"
  done

  # The established client: repeat_client keeps one session and sends a
  # GET per line on its standard input.
  mkfifo "$work/in.$policy"
  "$BUILD/repeat_client" "coaps://127.0.0.1:$DTLS_PORT/temp" me secret <"$work/in.$policy" \
    >"$work/out.$policy" 2>"$work/err.$policy" &
  client=$!
  BG_PIDS+=($client)
  exec 3>"$work/in.$policy"
  sent=0
  request "before any forgery"
  cport=$(ss -Huanp | grep -F "pid=$client," | grep -oE ':[0-9]+ ' | head -1 | tr -d ': ')
  [ -n "$cport" ] || fail "the client's UDP port was not found: $(ss -Huanp)"
  echo "  the client sends from 127.0.0.1:$cport"

  spoof() { "$BUILD/udp_spoof" send 127.0.0.1 "$cport" 127.0.0.1 "$DTLS_PORT" "$@"; }
  spoof --file "$work/hello.bin"
  request "right after a forged copy of our ClientHello"
  sleep 1.2 # past the first resend of whatever the server started
  request "1.2 s after it"
  spoof --hello --count 3
  request "right after three forged minimal ClientHellos"
  sleep 2.5
  request "2.5 s after them"
  for i in 1 2 3; do
    spoof --file "$work/hello.bin"
    sleep 0.3
    request "forgery repeated, round $i"
  done
  exec 3>&-
  wait "$client" || true
  counters=$(grep -m1 '^reconnects' "$work/out.$policy" || echo "no counters")
  echo "  client: $counters; $(grep -c 'DTLS client established' "$work/err.$policy" || true) handshake(s)"
  check "the client never lost its session (--cookie $policy)" \
    [ "$counters" = "reconnects 0 session-lost 0" ]
  check "the client made one handshake only (--cookie $policy)" \
    [ "$(grep -c 'DTLS client established' "$work/err.$policy" || true)" = 1 ]
  check "the server did not replace the session on a forged hello (--cookie $policy)" \
    not_in_log "new handshake beside it" "$log"

  # A client that really restarted from the same address and port: both
  # go through one udp_relay, whose single back socket is the source the
  # server sees. The first is killed without a close_notify, as by a crash
  # or a power cut; the fresh one must get its answer at once.
  start_relay "$DTLS_PORT" 65535
  relay=${BG_PIDS[-1]}
  mkfifo "$work/rin.$policy"
  "$BUILD/repeat_client" "coaps://127.0.0.1:$RELAY_PORT/temp" me secret <"$work/rin.$policy" \
    >"$work/rout.$policy" 2>"$work/rerr.$policy" &
  old=$!
  BG_PIDS+=($old)
  exec 4>"$work/rin.$policy"
  echo >&4
  for _ in $(seq 500); do grep -q . "$work/rout.$policy" && break; sleep 0.01; done
  expect_eq "the first client through the relay is served (--cookie $policy)" "ok 2.05 Content" \
    "$(head -1 "$work/rout.$policy")"
  kill -9 "$old"
  wait "$old" 2>/dev/null || true
  exec 4>&-
  t0=$(ms_now)
  rc=0
  out=$("$BUILD/coaps" get "coaps://127.0.0.1:$RELAY_PORT/temp" --psk-identity me --psk secret \
    -t 30 2>&1) || rc=$?
  t1=$(ms_now)
  echo "  restarted client: exit $rc after $((t1 - t0)) ms: $out"
  check "a client that really restarted on the same address and port gets a new session (--cookie $policy)" \
    restart_ok "$rc" "$out" $((t1 - t0))
  kill "$relay"
  kill "$SERVE_PID"
  wait "$SERVE_PID" || true
done

[ "$failures" = 0 ] || fail "$failures check(s) failed (see above)"
pass "forged ClientHellos leave established sessions alone; a real restart still gets through"
