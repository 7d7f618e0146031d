#!/usr/bin/env bash
# `coaps serve` never shares a port with another server. Its workers bind
# with SO_REUSEPORT, and for port 0 the kernel may hand such a socket a
# port another SO_REUSEPORT socket of the same user holds: two servers
# would then silently split one port's traffic. serve claims its ports
# with a plain socket first (tools/coaps/serve.c, port_claim).
#  1. Two servers with --port 0 --dtls-port 0 --workers 2 get four
#     different ports, many times over. In its own network namespace the
#     test narrows the kernel's ephemeral range to six ports, so that a
#     server joining the other's port would be all but certain (without
#     the namespace it cannot touch the host's range, and tries more often
#     over the full range: a weaker check, said so on its output).
#  2. With the range full, a further server is refused, clearly.
#  3. An explicit port in use (coap:// or coaps://) is refused clearly,
#     with one worker and with two, and the server exits.
BUILD=$1
. "$(dirname "$0")/lib.bash"
work=$(mktemp -d)
trap 'cleanup_bg; rm -rf "$work"' EXIT
creds=(--psk-identity claim --psk claim-secret)

rounds=40
range=/proc/sys/net/ipv4/ip_local_port_range
if [ -n "${COAPS_OWN_NETNS:-}" ] && echo "41000 41005" >"$range" 2>/dev/null; then
  narrowed=1
else
  narrowed=0 rounds=200
  echo "note: not in a network namespace of its own: the ephemeral range stays" \
    "$(cat "$range" | tr '\t' -), $rounds rounds"
fi

# ports OUTFILE: the "coap://…:P coaps://…:Q" ports of a server's log.
ports() {
  echo "$(grep -m1 -oE 'listening on coap://.*:[0-9]+' "$1" | grep -oE '[0-9]+$')" \
    "$(grep -m1 -oE 'listening on coaps://.*:[0-9]+' "$1" | grep -oE '[0-9]+$')"
}

start_coaps_serve_dtls "$work/a.log" --address 127.0.0.1 --workers 2 "${creds[@]}"
a_pid=$SERVE_PID a_port=$SERVE_PORT a_dport=$DTLS_PORT
[ "$a_port" != "$a_dport" ] || fail "server A: coap:// and coaps:// on one port ($a_port)"

for i in $(seq "$rounds"); do
  # A log of its own each round: the shell truncates a reused one only
  # once the new server's process runs, and the old ports could be read.
  start_coaps_serve_dtls "$work/b$i.log" --address 127.0.0.1 --workers 2 "${creds[@]}"
  for p in "$SERVE_PORT" "$DTLS_PORT"; do
    [ "$p" != "$a_port" ] && [ "$p" != "$a_dport" ] ||
      fail "round $i: server B was given port $p, which server A ($a_port, $a_dport) holds"
  done
  [ "$SERVE_PORT" != "$DTLS_PORT" ] || fail "round $i: B's coap:// and coaps:// on one port"
  kill "$SERVE_PID"
  wait "$SERVE_PID" 2>/dev/null || true
done
pass "$rounds servers with --port 0 --workers 2 beside another: never on its ports"

# The other server still answers on its own port, with its own data.
out=$("$BUILD/coaps" get -t 5 "coap://127.0.0.1:$a_port/time") ||
  fail "server A does not answer on coap:// $a_port: $out"
pass "server A still answers on its port"

if [ "$narrowed" = 1 ]; then
  # Six ports: A has two, B takes two, C the last two; D finds none.
  start_coaps_serve_dtls "$work/b_full.log" --address 127.0.0.1 --workers 2 "${creds[@]}"
  b_pid=$SERVE_PID
  start_coaps_serve_dtls "$work/c.log" --address 127.0.0.1 --workers 2 "${creds[@]}"
  c_pid=$SERVE_PID
  taken="$a_port $a_dport $(ports "$work/b_full.log") $(ports "$work/c.log")"
  expect_eq "six servers' ports, all different" 6 "$(tr ' ' '\n' <<<"$taken" | sort -u | wc -l)"
  set +e
  err=$(timeout 10 "$BUILD/coaps" serve --address 127.0.0.1 --port 0 --dtls-port 0 \
    --workers 2 "${creds[@]}" 2>&1)
  rc=$?
  set -e
  [ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "a server with no port left: exit $rc: $err"
  expect_contains "no port left: refused" "cannot listen on 127.0.0.1 port 0" "$err"
  kill "$b_pid" "$c_pid"
  wait "$b_pid" "$c_pid" 2>/dev/null || true
fi

# refused PORT ARGS...: a server on PORT, in use, exits at once, saying so.
refused() {
  local port=$1 err rc
  shift
  set +e
  err=$(timeout 10 "$BUILD/coaps" serve --address 127.0.0.1 "$@" "${creds[@]}" 2>&1)
  rc=$?
  set -e
  [ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "serve $*: not refused (exit $rc): $err"
  expect_contains "serve $*: says the port is in use" "Address already in use" "$err"
  expect_contains "serve $*: names the port" "port $port" "$err"
}
for workers in 1 2; do
  refused "$a_port" --workers "$workers" --port "$a_port" --dtls-port 0
  refused "$a_dport" --workers "$workers" --port 0 --dtls-port "$a_dport"
done
# One port for both schemes is one port in use, too.
free=$(pick_free_udp_port)
refused "$free" --workers 2 --port "$free" --dtls-port "$free"
kill -0 "$a_pid" || fail "server A died"
pass "a taken explicit port is refused"
