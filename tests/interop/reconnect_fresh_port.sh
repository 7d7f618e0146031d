#!/usr/bin/env bash
# Our client replaces a session that went silent while the server still
# holds it (coap-server-openssl stopped with SIGSTOP through the silence,
# then resumed): the new session starts from a new source port, so the
# server sees a new client and answers it. From the same port, libcoap
# with OpenSSL takes the new ClientHello for the established association's
# and ignores it: the reconnect got no answer. The server's late answers
# on the old session go to the old port, closed.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-server-openssl libcoap3-bin
work=$(mktemp -d)
trap 'kill -CONT "${SERVER:-0}" 2>/dev/null; cleanup_bg; rm -rf "$work"' EXIT
port=$(pick_free_udp_port)
# libcoap serves coaps:// on the port after its coap:// one.
coap-server-openssl -A 127.0.0.1 -p "$port" -k s3cret >"$work/server.log" 2>&1 &
SERVER=$!
BG_PIDS+=($SERVER)
wait_udp_port $((port + 1))
mkfifo "$work/in"
"$BUILD/repeat_client" "coaps://127.0.0.1:$((port + 1))/" anyone s3cret <"$work/in" \
  >"$work/out" 2>"$work/err" &
CLIENT=$!
BG_PIDS+=($CLIENT)
exec 3>"$work/in"
wait_line() {
  for _ in $(seq 900); do
    [ "$(grep -c . "$work/out" || true)" -ge "$1" ] && return 0
    sleep 0.1
  done
  fail "the client printed no line $1: $(cat "$work/out" "$work/err")"
}
# The local ports of the client's UDP sockets (unconnected: ss lists them
# by process).
client_ports() { ss -Huanp | grep "pid=$CLIENT," | awk '{print $4}' | sed 's/.*://' | sort -u | xargs; }
echo >&3
wait_line 1
expect_eq "first request" "ok 2.05 Content" "$(sed -n 1p "$work/out")"
first_port=$(client_ports)
[ -n "$first_port" ] && [ "${first_port// /}" = "$first_port" ] ||
  fail "the client should have one socket, it has: '$first_port'"
kill -STOP "$SERVER"
echo >&3
# Three lost round trips of the request (its fourth send, 14-21 s): a new
# handshake.
for _ in $(seq 400); do
  grep -q "session-lost" "$work/err" && break
  sleep 0.1
done
expect_contains "the client replaced the silent session" "[session-lost]" "$(cat "$work/err")"
new_port=$(client_ports)
kill -CONT "$SERVER"
[ -n "$new_port" ] && [[ " $new_port " != *" $first_port "* ]] ||
  fail "the new session's sockets: '$new_port'; the first session's port $first_port is still open"
pass "the new session leaves from a new port ($first_port, then $new_port)"
wait_line 2
expect_eq "request after the reconnect, answered by the server that kept the old session" \
  "ok 2.05 Content" "$(sed -n 2p "$work/out")"
exec 3>&-
wait "$CLIENT"
