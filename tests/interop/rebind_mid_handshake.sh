#!/usr/bin/env bash
# A NAT rebinding in the middle of a handshake is not a wrong key (issue
# 14). udp_rebind -3 moves our client's source port once, before its
# third handshake datagram (the key exchange and Finished): libcoap +
# Mbed TLS (coap-server-mbedtls-cid) drops that flight as a stranger's and
# resends its hello flight to the old port, which the relay still carries
# back — to the client exactly what a server that cannot decrypt our
# Finished shows. The client checks such a network-inferred verdict with
# one more handshake from where it is now:
# - right key, CID on and off, several runs: answered (2.05), no key
#   blamed, the client logs that the second handshake got through;
# - wrong key through the same relay: psk-key-mismatch (exit 5) all the
#   same (Mbed TLS answers the second handshake's Finished with
#   bad_record_mac), within a third of the handshake timeout (the check is bounded
#   by 3 ACK timeouts, it does not wait out a second handshake; against
#   libcoap's silent-discard servers without a move see diag_causes.sh).
BUILD=$1
. "$(dirname "$0")/lib.bash"
need_shared_peers coap-server-mbedtls-cid
[ -x "$BUILD/udp_rebind" ] || fail "$BUILD/udp_rebind is not built"
work=$(mktemp -d)
trap 'cleanup_bg; rm -rf "$work"' EXIT
ID=device
KEY=s3cret-rebind

# Two free ports in a row: libcoap's server takes PORT (coap) and PORT+1.
pair_port() {
  local p
  for _ in $(seq 20); do
    p=$(pick_free_udp_port)
    ss -Hlun "sport = :$((p + 1))" | grep -q . || { echo "$p"; return 0; }
  done
  fail "no two free UDP ports in a row"
}

mport=$(pair_port)
"$PEERS_BIN/coap-server-mbedtls-cid" -A 127.0.0.1 -p "$mport" -k "$KEY" -v 6 \
  >"$work/mbed-server.log" 2>&1 &
BG_PIDS+=($!)
wait_udp_port $((mport + 1))

# relay NAME: a fresh udp_rebind -3 (it moves once) in front of the
# server; sets RELAY_PORT.
relay() {
  "$BUILD/udp_rebind" $((mport + 1)) -3 "$work/$1.tap" >"$work/$1.port" &
  BG_PIDS+=($!)
  for _ in $(seq 100); do
    RELAY_PORT=$(head -1 "$work/$1.port" 2>/dev/null || true)
    [ -n "$RELAY_PORT" ] && return 0
    sleep 0.05
  done
  fail "udp_rebind did not start"
}

for flags in "" "--no-cid"; do
  for run in 1 2 3; do
    name="run$run${flags:+-nocid}"
    relay "$name"
    rc=0
    "$BUILD/coaps" get -v ${flags:+"$flags"} --psk-identity "$ID" --psk "$KEY" \
      --handshake-timeout 30 "coaps://127.0.0.1:$RELAY_PORT/time" \
      >"$work/$name.out" 2>"$work/$name.err" || rc=$?
    what="moved mid-handshake ${flags:-(CID on)} #$run"
    grep -q '^rebind ' "$work/$name.tap" || fail "$what: the relay did not move the client"
    if grep -q "psk-key-mismatch" "$work/$name.err"; then
      fail "$what: a key was blamed: $(cat "$work/$name.err")"
    fi
    expect_eq "$what: answered" 0 "$rc"
    expect_contains "$what: 2.05" "2.05 Content" "$(cat "$work/$name.err" "$work/$name.out")"
    expect_contains "$what: the second handshake cleared the key" \
      "a second handshake got through" "$(cat "$work/$name.err")"
  done
done

relay wrong
rc=0
start=$(date +%s%N)
"$BUILD/coaps" get --psk-identity "$ID" --psk wrong --handshake-timeout 60 \
  "coaps://127.0.0.1:$RELAY_PORT/time" >"$work/wrong.out" 2>"$work/wrong.err" || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
grep -q '^rebind ' "$work/wrong.tap" || fail "wrong key: the relay did not move the client"
expect_eq "wrong key, moved mid-handshake: exit code" 5 "$rc"
expect_contains "wrong key, moved mid-handshake: psk-key-mismatch" "[psk-key-mismatch]" \
  "$(cat "$work/wrong.err")"
# (Mbed TLS says bad_record_mac to the second handshake, which reached it
# from the client's new address: the verdict is then the peer's own.)
expect_not_contains "wrong key: the second handshake did not clear it" \
  "a second handshake got through" "$(cat "$work/wrong.err")"
[ "$ms" -lt 20000 ] || fail "wrong key, moved: took $ms ms, expected under 20000 (a third of the 60 s timeout)"
pass "wrong key, moved mid-handshake: named in $ms ms"
