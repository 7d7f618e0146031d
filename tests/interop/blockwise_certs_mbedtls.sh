#!/usr/bin/env bash
# Block-wise transfer (RFC 7959) over coaps:// with certificates (X.509),
# and against libcoap 4.3.5 on Mbed TLS 3.6 (../shared/peers), both ways:
#  - libcoap's clients (coap-client-gnutls 4.3.1; coap-client-mbedtls-cid)
#    PUT 100 KB to our /store in Block1 blocks and GET it back in Block2
#    blocks, byte-exact: X.509 with and without a client certificate, and
#    PSK for the Mbed TLS one;
#  - our client PUTs 100 KB to libcoap's servers (coap-server-gnutls,
#    coap-server-mbedtls-cid, with -d: PUT makes a resource) and reads it
#    back, byte-exact: X.509 server-only and mutual, and PSK to Mbed TLS.
# A transfer that stops part way fails here: the body read back must be
# the body sent. Mbed TLS's libcoap client exits 0 even when its handshake
# fails, so its verdict is the byte comparison too.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-client-gnutls libcoap3-bin
need coap-server-gnutls libcoap3-bin
need_shared_peers coap-client-mbedtls-cid coap-server-mbedtls-cid
MBED_CLIENT=$PEERS_BIN/coap-client-mbedtls-cid
MBED_SERVER=$PEERS_BIN/coap-server-mbedtls-cid
work=$(mktemp -d)
trap 'cleanup_bg; rm -rf "$work"' EXIT
make_creds "$work/c"
K=$work/c
coaps() { "$BUILD/coaps" "$@"; }
new_body() { head -c 102400 /dev/urandom >"$work/up.bin"; }

# ---- libcoap's clients against our server ----

start_coaps_serve_dtls "$work/serve.log" --workers 1 --max-body 200K \
  --psk-identity blockwise --psk s3cret \
  --cert "$K/server-cert.pem" --key "$K/server-key.pem" --cacert "$K/ca-cert.pem" -v

# their_client NAME CLIENT URL SIZE [credentials...]: PUT the body to
# URL/store in blocks of SIZE, GET it back, compare. -B bounds each run
# (100 KB in 64-byte blocks is 1600 round trips each way).
their_client() {
  local name=$1 client=$2 url=$3 size=$4
  shift 4
  new_body
  rm -f "$work/down.bin"
  "$client" -B 240 -b "$size" "$@" -m put -f "$work/up.bin" "$url/store" >"$work/put.out" 2>&1 ||
    fail "$name: PUT of 100 KB in blocks of $size: $(tail -5 "$work/put.out")"
  "$client" -B 240 -b "$size" "$@" -m get -o "$work/down.bin" "$url/store" >"$work/get.out" 2>&1 ||
    fail "$name: GET in blocks of $size: $(tail -5 "$work/get.out")"
  cmp -s "$work/up.bin" "$work/down.bin" ||
    fail "$name: GET gave $(stat -c %s "$work/down.bin" 2>/dev/null || echo no) bytes, not the 102400 PUT in blocks of $size (PUT said: $(tail -3 "$work/put.out"); GET said: $(tail -3 "$work/get.out"))"
  pass "$name: 100 KB PUT and GET in blocks of $size, byte-exact"
}

ip="coaps://127.0.0.1:$DTLS_PORT"
# Mbed TLS's libcoap client wants a host name with certificates (README).
host="coaps://localhost:$DTLS_PORT"
mutual=(-c "$K/client-cert.pem" -j "$K/client-key.pem")
for size in 1024 64; do
  their_client "coap-client-gnutls, mutual X.509" coap-client-gnutls "$ip" "$size" \
    "${mutual[@]}" -R "$K/ca-cert.pem"
  their_client "coap-client-mbedtls, PSK" "$MBED_CLIENT" "$ip" "$size" -u blockwise -k s3cret
done
their_client "coap-client-gnutls, X.509 (no client certificate)" coap-client-gnutls "$ip" 256 \
  -R "$K/ca-cert.pem"
their_client "coap-client-mbedtls, X.509 (no client certificate)" "$MBED_CLIENT" "$host" 1024 \
  -C "$K/ca-cert.pem"
their_client "coap-client-mbedtls, mutual X.509" "$MBED_CLIENT" "$host" 128 \
  "${mutual[@]}" -C "$K/ca-cert.pem"
# Each mode ran the suite it should: the server names it.
expect_log "X.509 ran TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8" "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8" \
  "$work/serve.log"
! grep -q "AddressSanitizer\|runtime error" "$work/serve.log" ||
  fail "server log: $(grep -m3 "AddressSanitizer\|runtime error" "$work/serve.log")"
pass "our server's log clean"
kill "$SERVE_PID"

# ---- our client against libcoap's servers ----

# A port whose next one (libcoap's coaps://) is free too.
pair_port() {
  local p
  for _ in $(seq 20); do
    p=$(pick_free_udp_port)
    ss -Hlun "sport = :$((p + 1))" | grep -q . || { echo "$p"; return 0; }
  done
  fail "no two free UDP ports in a row"
}

# our_client NAME URL SIZE [credentials...]: PUT the body to URL in
# blocks of SIZE, GET it back, compare.
our_client() {
  local name=$1 url=$2 size=$3
  shift 3
  new_body
  coaps put -t 120 -b "$size" "$url" -d @"$work/up.bin" -f octet "$@" >"$work/put.out" 2>&1 ||
    fail "$name: PUT of 100 KB in blocks of $size: $(cat "$work/put.out")"
  coaps get -t 120 -b "$size" "$url" "$@" >"$work/got" 2>"$work/get.err" ||
    fail "$name: GET in blocks of $size: $(cat "$work/get.err")"
  cmp -s "$work/up.bin" "$work/got" ||
    fail "$name: the body read back differs ($(stat -c %s "$work/got") bytes, 102400 sent, blocks of $size)"
  pass "$name: 100 KB PUT in blocks of $size and read back byte-exact"
}

server_creds=(-c "$K/server-cert.pem" -j "$K/server-key.pem" -C "$K/ca-cert.pem")
ours_mutual=(--cacert "$K/ca-cert.pem" --cert "$K/client-cert.pem" --key "$K/client-key.pem")

gport=$(pair_port)
# -n: a client without a certificate is let in too (server-only X.509).
coap-server-gnutls -A 127.0.0.1 -p "$gport" -d 40 "${server_creds[@]}" -n \
  >"$work/gnutls-server.log" 2>&1 &
BG_PIDS+=($!)
wait_udp_port $((gport + 1))
g="coaps://127.0.0.1:$((gport + 1))"
for size in 1024 64; do
  our_client "coap-server-gnutls, X.509 (server only)" "$g/x$size" "$size" --cacert "$K/ca-cert.pem"
  our_client "coap-server-gnutls, mutual X.509" "$g/m$size" "$size" "${ours_mutual[@]}"
done

mport=$(pair_port)
"$MBED_SERVER" -A 127.0.0.1 -p "$mport" -d 40 -k s3cret "${server_creds[@]}" -n \
  >"$work/mbed-server.log" 2>&1 &
BG_PIDS+=($!)
wait_udp_port $((mport + 1))
m="coaps://127.0.0.1:$((mport + 1))"
for size in 1024 64; do
  our_client "coap-server-mbedtls, PSK" "$m/p$size" "$size" --psk-identity blockwise --psk s3cret
  our_client "coap-server-mbedtls, X.509 (server only)" "$m/x$size" "$size" --cacert "$K/ca-cert.pem"
  our_client "coap-server-mbedtls, mutual X.509" "$m/m$size" "$size" "${ours_mutual[@]}"
done
# Its own block-wise resource too (libcoap's block handling, not -d's).
our_client "coap-server-mbedtls /example_data, PSK" "$m/example_data" 512 \
  --psk-identity blockwise --psk s3cret
