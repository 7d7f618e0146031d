#!/usr/bin/env bash
# ICMP errors through the real I/O path (the socket's error queue, src/io/
# io.c) are acted upon only when they quote a datagram the client sent
# (RFC 7252 §4.2, coap_context_input_icmp). A 'coaps get' asks a server
# that never answers (tests/tools/icmp_forge sink: its port is open, so its
# kernel sends no ICMP error of its own); icmp_forge then sends the client
# ICMP port unreachable errors for that server, crafted on a raw socket as
# an off-path attacker would:
# - coap://: quoting the request with another message ID, with another
#   token, or bytes that are no CoAP message: the request goes on (the
#   client still runs a second later); then quoting the request as sent
#   (what the server's host would quote): it ends at once, exit status 4,
#   "nothing listens on UDP port" (a server never heard from);
# - coaps://: quoting the ClientHello's record with a sequence number the
#   client has not sent, in an epoch it has not sent in, or bytes that are
#   no DTLS record: the handshake goes on; the record as sent ends it at
#   once the same way.
BUILD=$1
. "$(dirname "$0")/lib.bash"
[ "$(id -u)" = 0 ] || fail "needs root (a raw socket for the ICMP errors)"
for tool in icmp_forge coaps; do
  [ -x "$BUILD/$tool" ] || fail "$BUILD/$tool is not built"
done
work=$(mktemp -d)
trap 'cleanup_bg; rm -rf "$work"' EXIT

# patched FILE OFFSET OUT: FILE with byte OFFSET changed (plus 1, mod 256).
patched() {
  local byte
  byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  cp "$1" "$3"
  printf "\\x$(printf %02x $(((byte + 1) % 256)))" | dd of="$3" bs=1 seek="$2" conv=notrunc status=none
}

# vet NAME SCHEME ARGS...: a 'coaps get' to a sink; the forged errors
# $work/NAME.forged.* first, then the genuine one.
vet() {
  local name=$1 scheme=$2 port cport client started rc=0 f
  shift 2
  "$BUILD/icmp_forge" sink "$work/$name.dgram" >"$work/$name.sink" &
  BG_PIDS+=($!)
  for _ in $(seq 100); do
    port=$(head -1 "$work/$name.sink" 2>/dev/null || true)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || fail "$name: icmp_forge sink did not start"
  "$BUILD/coaps" get -t 60 "$@" "$scheme://127.0.0.1:$port/x" >"$work/$name.out" 2>&1 &
  client=$!
  BG_PIDS+=($client)
  for _ in $(seq 200); do
    [ -s "$work/$name.dgram.port" ] && break
    sleep 0.05
  done
  [ -s "$work/$name.dgram.port" ] || fail "$name: the client sent nothing to the sink"
  cport=$(cat "$work/$name.dgram.port")
  "forge_$name" "$work/$name.dgram"
  for f in "$work/$name".forged.*; do
    "$BUILD/icmp_forge" send 127.0.0.1 "$cport" 127.0.0.1 "$port" "$f" ||
      fail "$name: icmp_forge send failed"
  done
  sleep 1
  kill -0 "$client" 2>/dev/null ||
    fail "$name: a forged ICMP error ended the request: $(cat "$work/$name.out")"
  pass "$name: $(ls "$work/$name".forged.* | wc -l) forged ICMP errors ignored, the request goes on"
  started=$(date +%s%N)
  "$BUILD/icmp_forge" send 127.0.0.1 "$cport" 127.0.0.1 "$port" "$work/$name.dgram" ||
    fail "$name: icmp_forge send failed"
  for _ in $(seq 100); do
    kill -0 "$client" 2>/dev/null || break
    sleep 0.02
  done
  kill -0 "$client" 2>/dev/null && fail "$name: the genuine ICMP error did not end the request"
  wait "$client" || rc=$?
  local ms=$((($(date +%s%N) - started) / 1000000))
  expect_eq "$name: exit status (network error)" 4 "$rc"
  expect_contains "$name: port unreachable" "nothing listens on UDP port $port" "$(cat "$work/$name.out")"
  [ "$ms" -lt 1500 ] || fail "$name: the genuine ICMP error took $ms ms to end the request"
  pass "$name: the ICMP error quoting the client's datagram ended the request in $ms ms"
}

# coap://: the header is version/type/token length, code, message ID; the
# token follows.
forge_plain() {
  patched "$1" 3 "$work/plain.forged.mid"
  patched "$1" 4 "$work/plain.forged.token"
  printf 'not a CoAP message' >"$work/plain.forged.junk"
}
vet plain coap

# coaps://: the record header is type, version, epoch (3-4), sequence
# number (5-10).
forge_secure() {
  patched "$1" 9 "$work/secure.forged.seq256" # 256 past: never sent
  patched "$1" 7 "$work/secure.forged.seq2e24"
  patched "$1" 4 "$work/secure.forged.epoch"
  printf '\x40\x01\x12\x34 a CoAP message' >"$work/secure.forged.junk"
}
vet secure coaps --psk-identity icmp --psk icmp-vetting-secret
