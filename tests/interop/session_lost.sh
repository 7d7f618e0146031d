#!/usr/bin/env bash
# The server loses the client's session (it crashes and comes back on the
# same port): the client's next request still succeeds over a new
# handshake, and the client says so at info level ("session-lost") and
# counts it.
BUILD=$1
. "$(dirname "$0")/lib.bash"
work=$(mktemp -d)
port=$(pick_free_udp_port)
serve() {
  "$BUILD/coaps" serve --port 0 --dtls-port "$port" --psk-identity me --psk secret \
    >"$work/serve$1.log" 2>&1 3>&- &
  SERVER=$!
  BG_PIDS+=($SERVER)
  wait_udp_port "$port"
}
serve 1
mkfifo "$work/in"
"$BUILD/repeat_client" "coaps://127.0.0.1:$port/temp" me secret <"$work/in" >"$work/out" 2>"$work/err" &
CLIENT=$!
BG_PIDS+=($CLIENT)
exec 3>"$work/in"
# The client gives a silent session up after three lost round trips of its
# request (its fourth send, 14-21 s), then makes a new handshake.
wait_line() {
  for _ in $(seq 600); do
    [ "$(grep -c . "$work/out" || true)" -ge "$1" ] && return 0
    sleep 0.1
  done
  fail "the client printed no line $1: $(cat "$work/out" "$work/err")"
}
echo >&3; wait_line 1
expect_eq "first request" "ok 2.05 Content" "$(sed -n 1p "$work/out")"
kill -9 "$SERVER"; wait "$SERVER" 2>/dev/null || true # a crash: no close_notify
serve 2
echo >&3; wait_line 2
expect_eq "request after the server lost the session" "ok 2.05 Content" "$(sed -n 2p "$work/out")"
exec 3>&-
wait "$CLIENT"
expect_contains "counted" "reconnects 1 session-lost 1" "$(cat "$work/out")"
expect_contains "said at info level" "[session-lost]" "$(cat "$work/err")"
