#!/usr/bin/env bash
# Forged ClientHellos "from" an established client's address and port, sent
# without pause while that client keeps asking, must cost it nothing: with
# the default cookie policy (when-needed, which lets PSK and ticket hellos
# from other addresses in without a cookie), with and without Connection
# ID, every request is answered, each within ANSWER_MS (no retransmission
# needed: none lost), the client makes no second handshake and loses no
# session, and the server starts no handshake in the session's name (its
# log has no "new handshake beside it": every forged hello was asked for a
# cookie, which the forger never sees).
#
# Forging a source needs a raw socket (udp_spoof): the test runs in a
# network namespace of its own, where `unshare -rn` makes it root.
if [ -z "${COAPS_SPOOF_NETNS:-}" ]; then
  exec unshare -rn env COAPS_SPOOF_NETNS=1 bash "$0" "$@"
fi
BUILD=$1
. "$(dirname "$0")/lib.bash"
ip link set lo up
for tool in udp_spoof repeat_client; do
  [ -x "$BUILD/$tool" ] || fail "$tool was not built"
done
# A request lost (or not understood) is resent after ACK_TIMEOUT, 2 s at
# least: an answer later than this needed a retransmission.
ANSWER_MS=1900
REQUESTS=40
work=$(mktemp -d)
ms_now() { echo $(($(date +%s%N) / 1000000)); }

# A real first flight of our client, for the forger to copy.
"$BUILD/udp_spoof" capture "$work/hello.bin" >"$work/capture.port" &
cap=$!
for _ in $(seq 100); do [ -s "$work/capture.port" ] && break; sleep 0.05; done
"$BUILD/coaps" get "coaps://127.0.0.1:$(cat "$work/capture.port")/temp" --psk-identity x --psk y \
  -t 3 >/dev/null 2>&1 || true
wait "$cap" || fail "no ClientHello captured from our client"

for mode in cid no-cid; do
  echo "== $mode"
  log=$work/serve.$mode.log
  start_coaps_serve_dtls "$log" --psk-identity me --psk secret -v -v
  cid_flag=()
  [ "$mode" = no-cid ] && cid_flag=(--no-cid)
  mkfifo "$work/in.$mode"
  "$BUILD/repeat_client" "coaps://127.0.0.1:$DTLS_PORT/temp" me secret "${cid_flag[@]}" \
    <"$work/in.$mode" >"$work/out.$mode" 2>"$work/err.$mode" &
  client=$!
  BG_PIDS+=($client)
  exec 3>"$work/in.$mode"
  echo >&3
  for _ in $(seq 500); do grep -q . "$work/out.$mode" && break; sleep 0.01; done
  expect_eq "the client's first request is served ($mode)" "ok 2.05 Content" \
    "$(head -1 "$work/out.$mode")"
  cport=$(ss -Huanp | grep -F "pid=$client," | grep -oE ':[0-9]+ ' | head -1 | tr -d ': ')
  [ -n "$cport" ] || fail "the client's UDP port was not found"

  # The forger: copies of the captured hello and fresh minimal ones, from
  # the client's address and port, for as long as the client asks.
  (
    while :; do
      "$BUILD/udp_spoof" send 127.0.0.1 "$cport" 127.0.0.1 "$DTLS_PORT" --file "$work/hello.bin"
      "$BUILD/udp_spoof" send 127.0.0.1 "$cport" 127.0.0.1 "$DTLS_PORT" --hello --count 3
      sleep 0.05
    done
  ) 2>/dev/null &
  forger=$!
  BG_PIDS+=($forger)

  # One request every 100 ms or so, each waited for and timed.
  slow=0
  for i in $(seq 2 $((REQUESTS + 1))); do
    t0=$(ms_now)
    echo >&3
    for _ in $(seq 2500); do
      [ "$(grep -c . "$work/out.$mode" || true)" -ge "$i" ] && break
      sleep 0.01
    done
    t1=$(ms_now)
    line=$(sed -n "${i}p" "$work/out.$mode")
    if [ "$line" != "ok 2.05 Content" ] || [ $((t1 - t0)) -ge $ANSWER_MS ]; then
      echo "  request $i: '${line:-no answer}' after $((t1 - t0)) ms"
      slow=$((slow + 1))
    fi
    sleep 0.1
  done
  kill "$forger"
  wait "$forger" 2>/dev/null || true
  exec 3>&-
  wait "$client" || true
  expect_eq "every request answered at once while hellos were forged ($mode)" 0 "$slow"
  expect_eq "the client lost no session ($mode)" "reconnects 0 session-lost 0" \
    "$(grep -m1 '^reconnects' "$work/out.$mode" || echo "no counters")"
  expect_eq "the client made one handshake ($mode)" 1 \
    "$(grep -c 'DTLS client established' "$work/err.$mode" || true)"
  grep -q "cookie asked, session kept" "$log" ||
    fail "the server's log shows no forged hello asked for a cookie: did they arrive? ($mode)"
  if grep -qE "new handshake beside it|old session replaced" "$log"; then
    grep -E "beside|replaced" "$log" | head -5 >&2
    fail "a forged hello started a handshake in the session's name ($mode)"
  fi
  pass "no handshake started for a forged hello ($mode)"
  kill "$SERVE_PID"
  wait "$SERVE_PID" || true
done
pass "forged hellos at a steady rate cost an established client nothing, with and without CID"
