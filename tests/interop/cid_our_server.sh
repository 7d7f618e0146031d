#!/usr/bin/env bash
# DTLS Connection ID (RFC 9146) with our server, against independent
# peers built with CID (../shared/peers: libcoap 4.3.5 + Mbed TLS 3.6.6,
# and Mbed TLS's ssl_client2):
# - coap-client-mbedtls-cid -d 0 (CID asked, zero-length CID of its own):
#   answered, our log shows the CIDs; without -d, and against --no-cid,
#   no CID and still answered; certificates too;
# - -d 2: the client moves to a new source port every 2 datagrams: every
#   request answered, one handshake, the moves in our log and stats;
# - ssl_client2 cid=1 cid_val=c1c2c3c4 (a CID of its own) through a tap
#   that reads the first byte of each datagram: our records to it are
#   type 25 (tls12_cid), and its to us; with an empty CID only its
#   records are; CIDs of 1, 4 and 16 bytes; a resumed handshake
#   (reconnect=1) agrees on CID again.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need_shared_peers coap-client-mbedtls-cid ssl_client2
[ -x "$BUILD/udp_rebind" ] || fail "$BUILD/udp_rebind is not built"
work=$(mktemp -d)
make_creds "$work/c"
K=$work/c
ID=cid-device
KEY=s3cret-for-cid
KEY_HEX=$(printf %s "$KEY" | od -An -tx1 | tr -d ' \n')
LIBCOAP=$PEERS_BIN/coap-client-mbedtls-cid

# serve LOG ARGS...: a fresh server (-v: the CID lines and the exit stats).
serve() {
  local log=$1; shift
  start_coaps_serve_dtls "$log" -a 127.0.0.1 --workers 1 -v --psk-identity "$ID" --psk "$KEY" "$@"
}

# stop_server LOG: SIGINT, so that it prints its stats.
stop_server() {
  kill -INT "$SERVE_PID"
  for _ in $(seq 100); do kill -0 "$SERVE_PID" 2>/dev/null || return 0; sleep 0.05; done
  fail "coaps serve did not stop on SIGINT"
}

count() { grep -cF -- "$1" "$2" || true; }

# libcoap GETs of /time: it exits 0 even when the handshake fails, so the
# answers it printed are the verdict. Sets LIBCOAP_OUT.
libcoap_time() {
  LIBCOAP_OUT=$(timeout 60 "$LIBCOAP" -B 20 -m get "$@" 2>&1 || true)
}

# ---- CID asked by libcoap's client, granted by us ----
serve "$work/d0.log"
libcoap_time -u "$ID" -k "$KEY" -d 0 "coaps://127.0.0.1:$DTLS_PORT/time"
[[ "$LIBCOAP_OUT" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T ]] ||
  fail "libcoap -d 0: expected the time, got '$LIBCOAP_OUT'"
pass "libcoap -d 0 (CID asked): answered"
expect_log "libcoap -d 0: our CID of 8 bytes, its own empty" \
  "the peer's (empty)" "$work/d0.log"
grep -qE "Connection ID on: ours [0-9a-f]{16}," "$work/d0.log" ||
  fail "libcoap -d 0: no 8-byte CID of ours in the log: $(cat "$work/d0.log")"
# Not asked: no CID.
libcoap_time -u "$ID" -k "$KEY" "coaps://127.0.0.1:$DTLS_PORT/time"
[[ "$LIBCOAP_OUT" =~ ^[0-9]{4}- ]] || fail "libcoap without -d: expected the time, got '$LIBCOAP_OUT'"
stop_server
expect_eq "libcoap without -d: no CID (one CID session of two handshakes)" 1 \
  "$(count "Connection ID on" "$work/d0.log")"
expect_eq "two handshakes in all" 2 "$(count "DTLS server established" "$work/d0.log")"

# ---- Rebinding every 2 datagrams: the session survives each move ----
serve "$work/d2.log"
libcoap_time -u "$ID" -k "$KEY" -d 2 -G 8 -w "coaps://127.0.0.1:$DTLS_PORT/time"
expect_eq "libcoap -d 2 -G 8: all 8 requests answered" 8 \
  "$(grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' <<<"$LIBCOAP_OUT" || true)"
stop_server
expect_eq "libcoap -d 2: one handshake" 1 "$(count "DTLS server established" "$work/d2.log")"
moves=$(count "session kept, no new handshake" "$work/d2.log")
[ "$moves" -ge 3 ] || fail "libcoap -d 2: expected at least 3 address moves in our log, got $moves"
pass "libcoap -d 2: $moves address moves logged"
expect_log "libcoap -d 2: the moves in the exit stats" \
  "Connection ID: 1 sessions, $moves address moves" "$work/d2.log"

# ---- Our server without CID: libcoap asks, gets none, still answered ----
serve "$work/off.log" --no-cid
libcoap_time -u "$ID" -k "$KEY" -d 0 "coaps://127.0.0.1:$DTLS_PORT/time"
[[ "$LIBCOAP_OUT" =~ ^[0-9]{4}- ]] || fail "--no-cid: expected the time, got '$LIBCOAP_OUT'"
stop_server
expect_eq "--no-cid: no CID granted" 0 "$(count "Connection ID on" "$work/off.log")"

# ---- Certificates, CID of 4 bytes, rebinding ----
serve "$work/cert.log" --cert "$K/server-cert.pem" --key "$K/server-key.pem" --cid=4
libcoap_time -C "$K/ca-cert.pem" -d 2 -G 4 -w "coaps://localhost:$DTLS_PORT/time"
expect_eq "certificates, -d 2 -G 4: all answered" 4 \
  "$(grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' <<<"$LIBCOAP_OUT" || true)"
stop_server
grep -qE "Connection ID on: ours [0-9a-f]{8}," "$work/cert.log" ||
  fail "certificates: no 4-byte CID of ours in the log: $(cat "$work/cert.log")"
expect_eq "certificates: one handshake" 1 "$(count "DTLS server established" "$work/cert.log")"
[ "$(count "session kept, no new handshake" "$work/cert.log")" -ge 1 ] ||
  fail "certificates: no address move logged"
pass "certificates: moved without a new handshake"

# ---- ssl_client2 with a CID of its own: type 25 both ways, on the wire ----
# mbed_client NAME ARGS...: through the tap (no rebinding); sets MBED_OUT
# and TAP_LOG.
mbed_client() {
  local name=$1 port; shift
  TAP_LOG=$work/$name.tap
  "$BUILD/udp_rebind" "$DTLS_PORT" 0 "$TAP_LOG" >"$work/$name.port" &
  BG_PIDS+=($!)
  for _ in $(seq 100); do port=$(head -1 "$work/$name.port" 2>/dev/null || true); [ -n "$port" ] && break; sleep 0.05; done
  [ -n "$port" ] || fail "udp_rebind did not start"
  set +e
  timeout 60 "$PEERS_BIN/ssl_client2" server_addr=127.0.0.1 server_port="$port" dtls=1 \
    force_version=dtls12 hs_timeout=500-8000 read_timeout=3000 psk="$KEY_HEX" \
    psk_identity="$ID" "$@" >"$work/$name.out" 2>&1
  set -e
  MBED_OUT=$(cat "$work/$name.out")
}

# expect_types WHAT DIRECTION TYPE: a datagram of that direction began
# with a record of TYPE.
expect_types() {
  grep -qE "^$2 $3 " "$TAP_LOG" || fail "$1: no $2 datagram of type $3 in: $(tr '\n' ' ' <"$TAP_LOG")"
  pass "$1"
}

for len in 1 4 16; do
  serve "$work/mbed$len.log" --cid="$len"
  mbed_client "mbed$len" cid=1 cid_val=c1c2c3c4
  grep -qF "Use of Connection ID has been negotiated" <<<"$MBED_OUT" ||
    fail "ssl_client2, our CID of $len: CID not negotiated: $(grep -E 'returned|error' <<<"$MBED_OUT" | tr '\n' ' ')"
  grep -qF "Peer CID (length $len Bytes)" <<<"$MBED_OUT" ||
    fail "ssl_client2: expected our CID of $len bytes: $(grep -F 'Peer CID' <<<"$MBED_OUT")"
  pass "ssl_client2 cid_val=c1c2c3c4, our CID of $len bytes: negotiated"
  expect_types "our records to ssl_client2 are tls12_cid (first byte 25), CID $len" s2c 25
  expect_types "its records to us are tls12_cid" c2s 25
  expect_log "our log names its CID" "the peer's c1c2c3c4" "$work/mbed$len.log"
  stop_server
done

# Its CID empty: it sends type 25, we send plain application data (23).
serve "$work/mbed-empty.log"
mbed_client mbed-empty cid=1
grep -qF "Use of Connection ID has been negotiated" <<<"$MBED_OUT" ||
  fail "ssl_client2 cid=1 (empty): not negotiated"
expect_types "ssl_client2 with an empty CID: its records type 25" c2s 25
expect_types "ssl_client2 with an empty CID: ours plain application data" s2c 23
if grep -qE "^s2c 25 " "$TAP_LOG"; then fail "type 25 records sent to a peer with an empty CID"; fi
pass "no type 25 towards a peer with an empty CID"

# A resumed handshake (reconnect=1: a second handshake resuming the first)
# agrees on CID again.
mbed_client mbed-resume cid=1 cid_val=c1c2c3c4 reconnect=1
n=$(grep -cF "Use of Connection ID has been negotiated" <<<"$MBED_OUT" || true)
[ "$n" -ge 2 ] || fail "ssl_client2 reconnect=1: CID negotiated $n times, expected 2: $MBED_OUT"
pass "ssl_client2 reconnect=1: CID negotiated again"
stop_server
expect_log "the second handshake was resumed" "(resumed)" "$work/mbed-empty.log"
