#!/usr/bin/env bash
# Mbed TLS 3.6, the TLS stack of most constrained devices, against our
# server in each credential configuration: its test client with its default
# offer (every suite it has, PSK ones too when given a key) and libcoap's
# client on Mbed TLS. GnuTLS's server, left to our full priority, picked
# TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 on a PSK-only server (and a PSK suite
# on an RSA-only one) and then failed for want of the credentials; each
# role now offers and accepts only the key exchanges its credentials can
# complete. Mbed TLS has no raw public keys: the RPK-only server is met by
# our own client. Last, our client: with a PSK and a certificate of its
# own but nothing to check a server's with, it offers PSK suites only.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need_shared_peers ssl_client2 ssl_server2 coap-client-mbedtls-cid
need openssl openssl
work=$(mktemp -d)
make_creds "$work/c"
K=$work/c
ID=mbed-device
KEY=s3cret-for-mbed
KEY_HEX=$(printf %s "$KEY" | od -An -tx1 | tr -d ' \n')
LIBCOAP=$PEERS_BIN/coap-client-mbedtls-cid

# An RSA server certificate (keygen makes P-256 only), naming localhost.
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/rsa-key.pem" -out "$work/rsa-cert.pem" 2>"$work/openssl.err" ||
  fail "openssl could not make an RSA certificate: $(cat "$work/openssl.err")"

# mbed_client NAME ARGS...: ssl_client2 with its default offer against
# our coaps:// port; sets MBED_OUT. Handshake timeouts bounded so that a
# failure is quick.
mbed_client() {
  local name=$1; shift
  set +e
  timeout 60 "$PEERS_BIN/ssl_client2" server_addr=127.0.0.1 server_port="$DTLS_PORT" \
    dtls=1 force_version=dtls12 hs_timeout=500-8000 read_timeout=3000 "$@" \
    >"$work/$name.out" 2>&1
  set -e
  MBED_OUT=$(cat "$work/$name.out")
}

# expect_mbed_suite WHAT SUITE: the handshake completed with SUITE
# (ssl_client2's spelling).
expect_mbed_suite() {
  grep -qF "[ Ciphersuite is $2 ]" <<<"$MBED_OUT" ||
    fail "$1: expected ssl_client2 to negotiate $2; it said: $(grep -E 'handshake|returned|Last error' <<<"$MBED_OUT" | tr '\n' ' ')"
  pass "$1"
}

# libcoap_get WHAT ARGS... URL: libcoap + Mbed TLS GETs /temp. It exits 0
# even when the handshake fails: the payload is the verdict.
libcoap_get() {
  local what=$1 out; shift
  out=$(timeout 60 "$LIBCOAP" -B 10 -m get "$@" 2>&1 || true)
  [[ "$out" =~ ^-?[0-9]+\.[0-9]\ C$ ]] || fail "$what: expected a temperature, got '$out'"
  pass "$what"
}

# ---- PSK only: the case that failed. GnuTLS's own debug log shows what
# it selected, and it must be a PSK suite, the RFC 7925 one first.
GNUTLS_DEBUG_LEVEL=4 start_coaps_serve_dtls "$work/psk.log" \
  --psk-identity "$ID" --psk "$KEY" -v
mbed_client psk psk="$KEY_HEX" psk_identity="$ID"
expect_mbed_suite "PSK-only server: ssl_client2's default offer" TLS-PSK-WITH-AES-128-CCM-8
expect_log "PSK-only server: established with the mandatory PSK suite" \
  "DTLS server established: TLS_PSK_WITH_AES_128_CCM_8" "$work/psk.log"
selected=$(grep -o 'Selected cipher suite: [A-Z0-9_]*' "$work/psk.log" || true)
[ -n "$selected" ] || fail "PSK-only server: no 'Selected cipher suite' in GnuTLS's debug log"
bad=$(grep -v -e '_PSK_' <<<"$selected" || true)
[ -z "$bad" ] || fail "PSK-only server: GnuTLS selected a suite it cannot serve: $bad"
pass "PSK-only server: GnuTLS selected only PSK suites ($(sort -u <<<"$selected" | sed 's/.*: //' | tr '\n' ' '))"
! grep -q 'no-common-suite' "$work/psk.log" || fail "PSK-only server: a handshake failed: $(grep no-common-suite "$work/psk.log")"
libcoap_get "PSK-only server: libcoap + Mbed TLS, PSK" -u "$ID" -k "$KEY" \
  "coaps://127.0.0.1:$DTLS_PORT/temp"
libcoap_get "PSK-only server: libcoap + Mbed TLS, PSK with Connection ID asked" \
  -u "$ID" -k "$KEY" -d 0 "coaps://127.0.0.1:$DTLS_PORT/temp"
kill "$SERVE_PID"

# ---- Certificate only (P-256). The client also holds a PSK, so its offer
# has PSK suites this server must not take.
start_coaps_serve_dtls "$work/cert.log" --cert "$K/server-cert.pem" --key "$K/server-key.pem" -v
mbed_client cert psk="$KEY_HEX" psk_identity="$ID" ca_file="$K/ca-cert.pem" server_name=localhost
expect_mbed_suite "ECDSA certificate server: ssl_client2's default offer" \
  TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8
expect_log "ECDSA certificate server: established with the mandatory ECDHE-ECDSA suite" \
  "DTLS server established: TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8" "$work/cert.log"
libcoap_get "ECDSA certificate server: libcoap + Mbed TLS, certificates" \
  -C "$K/ca-cert.pem" "coaps://localhost:$DTLS_PORT/temp"
kill "$SERVE_PID"

# ---- Certificate only (RSA): before, a client offering PSK suites got one
# chosen (they come before ECDHE-RSA) and the handshake failed.
start_coaps_serve_dtls "$work/rsa.log" --cert "$work/rsa-cert.pem" --key "$work/rsa-key.pem" -v
mbed_client rsa psk="$KEY_HEX" psk_identity="$ID" ca_file="$work/rsa-cert.pem" server_name=localhost
expect_mbed_suite "RSA certificate server: ssl_client2's default offer" \
  TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256
expect_log "RSA certificate server: established with ECDHE-RSA" \
  "DTLS server established: TLS_ECDHE_RSA_" "$work/rsa.log"
libcoap_get "RSA certificate server: libcoap + Mbed TLS, certificates" \
  -C "$work/rsa-cert.pem" "coaps://localhost:$DTLS_PORT/temp"
kill "$SERVE_PID"

# ---- Raw public key only: Mbed TLS has none, so our client.
start_coaps_serve_dtls "$work/rpk.log" --rpk --key "$K/rpk-server-key.pem" -v
out=$("$BUILD/coaps" get -t 20 --trust-rpk "$K/rpk-server-pub.pem" \
  "coaps://127.0.0.1:$DTLS_PORT/temp" 2>&1) || fail "RPK-only server: our client failed: $out"
[[ "$out" =~ ^-?[0-9]+\.[0-9]\ C$ ]] || fail "RPK-only server: our client got '$out'"
pass "RPK-only server: our client with the pinned key"
expect_log "RPK-only server: established with ECDHE-ECDSA" \
  "DTLS server established: TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8" "$work/rpk.log"
kill "$SERVE_PID"

# ---- Raw public key and PSK: Mbed TLS gets the PSK side.
start_coaps_serve_dtls "$work/rpk_psk.log" --rpk --key "$K/rpk-server-key.pem" \
  --psk-identity "$ID" --psk "$KEY" -v
mbed_client rpk_psk psk="$KEY_HEX" psk_identity="$ID"
expect_mbed_suite "RPK+PSK server: ssl_client2's default offer" TLS-PSK-WITH-AES-128-CCM-8
libcoap_get "RPK+PSK server: libcoap + Mbed TLS, PSK" -u "$ID" -k "$KEY" \
  "coaps://127.0.0.1:$DTLS_PORT/temp"
kill "$SERVE_PID"

# ---- Mixed, PSK and certificate: certificate suites first (server
# precedence), each client served in its own mode.
start_coaps_serve_dtls "$work/mixed.log" --psk-identity "$ID" --psk "$KEY" \
  --cert "$K/server-cert.pem" --key "$K/server-key.pem" -v
mbed_client mixed psk="$KEY_HEX" psk_identity="$ID" ca_file="$K/ca-cert.pem" server_name=localhost
expect_mbed_suite "mixed server: ssl_client2's default offer" TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8
libcoap_get "mixed server: libcoap + Mbed TLS, PSK" -u "$ID" -k "$KEY" \
  "coaps://127.0.0.1:$DTLS_PORT/temp"
libcoap_get "mixed server: libcoap + Mbed TLS, certificates" \
  -C "$K/ca-cert.pem" "coaps://localhost:$DTLS_PORT/temp"
# Our client with a PSK and a certificate of its own but no CA: offering
# certificate suites would get one chosen here and end in an untrusted
# server certificate.
out=$("$BUILD/coaps" get -t 20 --psk-identity "$ID" --psk "$KEY" \
  --cert "$K/client-cert.pem" --key "$K/client-key.pem" \
  "coaps://127.0.0.1:$DTLS_PORT/temp" 2>&1) ||
  fail "mixed server: our PSK client holding a certificate failed: $out"
pass "mixed server: our PSK client holding a certificate but no CA"
kill "$SERVE_PID"

# ---- Our client against Mbed TLS's server (PSK and its built-in test
# certificates, its own preference): the same client must get a PSK suite.
port=$(pick_free_udp_port)
"$PEERS_BIN/ssl_server2" dtls=1 server_addr=127.0.0.1 server_port="$port" \
  psk="$KEY_HEX" psk_identity="$ID" >"$work/ssl_server2.log" 2>&1 &
BG_PIDS+=($!)
wait_udp_port "$port"
# ssl_server2 speaks no CoAP: only the handshake is judged.
out=$("$BUILD/coaps" get -v -t 3 --psk-identity "$ID" --psk "$KEY" \
  --cert "$K/client-cert.pem" --key "$K/client-key.pem" \
  "coaps://127.0.0.1:$port/temp" 2>&1 || true)
grep -qE 'DTLS client established: TLS_[A-Z0-9_]*PSK_' <<<"$out" ||
  fail "ssl_server2: our PSK client holding a certificate got no PSK suite: $(head -5 <<<"$out")"
pass "ssl_server2: our PSK client holding a certificate gets $(grep -m1 -oE 'TLS_[A-Z0-9_]*PSK_[A-Z0-9_]*' <<<"$out")"
