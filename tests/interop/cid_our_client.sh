#!/usr/bin/env bash
# DTLS Connection ID (RFC 9146) with our client, against independent
# servers built with CID (../shared/peers: libcoap 4.3.5 + Mbed TLS 3.6.6,
# which always grants an 8-byte CID, and Mbed TLS's ssl_server2):
# - coap-server-mbedtls-cid, PSK: CID negotiated by default (coaps get -v
#   shows both CIDs), --no-cid turns it off, --cid=4 gives the server a CID
#   of ours, so its records to us are type 25 (read on the wire by a tap)
#   and padded by Mbed TLS; certificates (a localhost certificate);
# - a client whose source port changes every 2 requests (udp_rebind): all
#   answered on one session, the server logs its moves;
# - ssl_server2 cid_val=5e5e5e5e with each AEAD suite (CCM_8, CCM, GCM,
#   ChaCha20-Poly1305): our tls12_cid records decrypt there (it reads our
#   request), and a session file resumes with CID again.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need_shared_peers coap-server-mbedtls-cid ssl_server2
for tool in udp_rebind repeat_client; do
  [ -x "$BUILD/$tool" ] || fail "$BUILD/$tool is not built"
done
work=$(mktemp -d)
make_creds "$work/c"
K=$work/c
ID=cid-device
KEY=s3cret-for-cid
KEY_HEX=$(printf %s "$KEY" | od -An -tx1 | tr -d ' \n')

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
"$PEERS_BIN/coap-server-mbedtls-cid" -A 127.0.0.1 -p "$mport" -k "$KEY" \
  -c "$K/server-cert.pem" -j "$K/server-key.pem" -n -v 6 >"$work/mbed-server.log" 2>&1 &
BG_PIDS+=($!)
wait_udp_port $((mport + 1))
M=127.0.0.1:$((mport + 1))

# get NAME ARGS... URI: coaps get -v (within $GET_TIMEOUT seconds, 20 by
# default); sets OUT (stdout and stderr).
get() {
  local name=$1; shift
  set +e
  "$BUILD/coaps" get -v --timeout "${GET_TIMEOUT:-20}" "$@" >"$work/$name.out" 2>&1
  set -e
  OUT=$(cat "$work/$name.out")
}

get psk --psk-identity "$ID" --psk "$KEY" "coaps://$M/time"
expect_contains "PSK: the time" "2.05 Content" "$OUT"
grep -qE "Connection ID: negotiated; ours \(empty\), the server's [0-9a-f]{16}$" <<<"$OUT" ||
  fail "PSK: expected CID negotiated with an 8-byte server CID, got: $OUT"
pass "PSK: CID negotiated, the server's 8 bytes shown"

get nocid --no-cid --psk-identity "$ID" --psk "$KEY" "coaps://$M/time"
expect_contains "--no-cid: the time" "2.05 Content" "$OUT"
expect_contains "--no-cid: not negotiated" "Connection ID: not negotiated" "$OUT"

get cert --cacert "$K/ca-cert.pem" "coaps://localhost:$((mport + 1))/time"
expect_contains "certificates: the time" "2.05 Content" "$OUT"
expect_contains "certificates: CID negotiated" "Connection ID: negotiated" "$OUT"

# tap NAME EVERY: udp_rebind in front of the server; sets TAP_PORT, TAP_LOG.
tap() {
  TAP_LOG=$work/$1.tap
  "$BUILD/udp_rebind" $((mport + 1)) "$2" "$TAP_LOG" >"$work/$1.port" &
  BG_PIDS+=($!)
  for _ in $(seq 100); do TAP_PORT=$(head -1 "$work/$1.port" 2>/dev/null || true); [ -n "$TAP_PORT" ] && return 0; sleep 0.05; done
  fail "udp_rebind did not start"
}

tap own 0
get own --cid=4 --psk-identity "$ID" --psk "$KEY" "coaps://127.0.0.1:$TAP_PORT/time"
expect_contains "a CID of our own: the time (padded type-25 records opened)" "2.05 Content" "$OUT"
grep -qE "Connection ID: negotiated; ours [0-9a-f]{8}, " <<<"$OUT" ||
  fail "a CID of our own: expected ours of 4 bytes, got: $OUT"
grep -qE "^s2c 25 " "$TAP_LOG" || fail "no type 25 record from the server: $(tr '\n' ' ' <"$TAP_LOG")"
pass "the server's records to us are tls12_cid (first byte 25)"
grep -qE "^c2s 25 " "$TAP_LOG" || fail "no type 25 record from us"
pass "ours to it are tls12_cid"

# ---- Rebinding: one session across port changes ----
tap rebind 2
seq 10 | while read -r _; do echo; sleep 0.2; done |
  timeout 60 "$BUILD/repeat_client" "coaps://127.0.0.1:$TAP_PORT/time" "$ID" "$KEY" \
    >"$work/repeat.out" 2>"$work/repeat.err" || true
expect_eq "rebinding every 2 requests: 10 answers" 10 "$(grep -c '^ok 2.05' "$work/repeat.out" || true)"
expect_contains "rebinding: no reconnect" "reconnects 0 session-lost 0" "$(cat "$work/repeat.out")"
rebinds=$(grep -c '^rebind ' "$TAP_LOG" || true)
[ "$rebinds" -ge 4 ] || fail "the relay changed ports only $rebinds times"
pass "the relay changed its source port $rebinds times"
expect_eq "one handshake" 1 "$(grep -c 'DTLS client established' "$work/repeat.err" || true)"
moved=$(grep -c 'CID: New Client Session' "$work/mbed-server.log" || true)
[ "$moved" -ge 4 ] || fail "libcoap's server logged $moved CID address changes, expected >= 4"
pass "libcoap's server followed $moved address changes by CID"

# ---- ssl_server2: each AEAD suite; resumption ----
sport=$(pick_free_udp_port)
for suite in TLS-PSK-WITH-AES-128-CCM-8 TLS-PSK-WITH-AES-128-CCM TLS-PSK-WITH-AES-128-GCM-SHA256 \
  TLS-ECDHE-PSK-WITH-CHACHA20-POLY1305-SHA256; do
  "$PEERS_BIN/ssl_server2" dtls=1 server_addr=127.0.0.1 server_port="$sport" psk="$KEY_HEX" \
    psk_identity="$ID" cid=1 cid_val=5e5e5e5e force_ciphersuite="$suite" \
    >"$work/$suite.log" 2>&1 &
  spid=$!
  BG_PIDS+=($spid)
  wait_udp_port "$sport"
  rm -f "$work/session"
  # ssl_server2 answers with HTTP-like text, not CoAP: the handshake, the
  # CIDs and its reading our 8-byte GET are the verdict.
  GET_TIMEOUT=2 get "$suite" --psk-identity "$ID" --psk "$KEY" --session "$work/session" \
    "coaps://127.0.0.1:$sport/"
  expect_contains "$suite: CID negotiated with ssl_server2's" \
    "Connection ID: negotiated; ours (empty), the server's 5e5e5e5e" "$OUT"
  expect_log "$suite: ssl_server2 opened our tls12_cid record" "8 bytes read" "$work/$suite.log"
  GET_TIMEOUT=2 get "$suite-resumed" --psk-identity "$ID" --psk "$KEY" --session "$work/session" \
    "coaps://127.0.0.1:$sport/"
  expect_contains "$suite: resumed" "(resumed)" "$OUT"
  expect_contains "$suite: resumed with CID" "the server's 5e5e5e5e" "$OUT"
  kill "$spid"
  wait "$spid" 2>/dev/null || true
done
