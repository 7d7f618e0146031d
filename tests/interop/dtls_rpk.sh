#!/usr/bin/env bash
# Raw public keys (RFC 7250): our client and server, libcoap's GnuTLS client
# and server, an untrusted key refused with the fingerprint to pin, and one
# endpoint serving PSK, certificate and RPK clients at once.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-client-gnutls libcoap3-bin
need coap-server-gnutls libcoap3-bin
work=$(mktemp -d)
make_creds "$work/c"
K=$work/c
coaps() { "$BUILD/coaps" "$@"; }
rc() { set +e; "$@" >"$work/out" 2>"$work/err"; RC=$?; set -e; OUT=$(cat "$work/out"); ERR=$(cat "$work/err"); }

# One endpoint, three modes.
start_coaps_serve_dtls "$work/serve.log" --psk-identity mixed --psk secret \
  --cert "$K/server-cert.pem" --key "$K/server-key.pem" --cacert "$K/ca-cert.pem" -v
url_cert="coaps://127.0.0.1:$DTLS_PORT"
rc coaps get "$url_cert/temp" --psk-identity mixed --psk secret
expect_eq "mixed endpoint: PSK client" 0 "$RC"
rc coaps get "$url_cert/temp" --cacert "$K/ca-cert.pem"
expect_eq "mixed endpoint: certificate client" 0 "$RC"

start_coaps_serve_dtls "$work/serve_rpk.log" --rpk --key "$K/rpk-server-key.pem" \
  --trust-rpk "$K/rpk-client-pub.pem" --psk-identity mixed --psk secret -v
url="coaps://127.0.0.1:$DTLS_PORT"
rc coaps get "$url/temp" --rpk --key "$K/rpk-client-key.pem" --trust-rpk "$K/rpk-server-pub.pem"
expect_eq "RPK both ways" 0 "$RC"
[[ "$OUT" =~ ^[0-9]+\.[0-9]\ C$ ]] || fail "RPK GET payload: '$OUT'"
rc coaps get "$url/temp" --psk-identity mixed --psk secret
expect_eq "the RPK endpoint also serves PSK" 0 "$RC"

# The same keys in DER: a DER private key and a DER SubjectPublicKeyInfo.
need openssl openssl
openssl pkey -in "$K/rpk-client-key.pem" -outform DER -out "$work/client-key.der"
openssl pkey -pubin -in "$K/rpk-server-pub.pem" -outform DER -out "$work/server-pub.der"
rc coaps get "$url/temp" --rpk --key "$work/client-key.der" --trust-rpk "$work/server-pub.der"
expect_eq "RPK key and pinned key in DER" 0 "$RC"

# The wrong pinned key: refused, with the fingerprint of the key to pin.
rc coaps get "$url/temp" --trust-rpk "$K/rpk-client-pub.pem"
expect_eq "untrusted server key exits 5" 5 "$RC"
expect_contains "untrusted key is explained" "[rpk-untrusted]" "$ERR"
expect_contains "the fingerprint to pin is shown" "sha256:" "$ERR"
# A client key the server does not trust.
make_creds "$work/other"
rc coaps get "$url/temp" --rpk --key "$work/other/rpk-client-key.pem" --trust-rpk "$K/rpk-server-pub.pem"
expect_eq "untrusted client key exits 5" 5 "$RC"
expect_log "server's log names the untrusted client key" "rpk-untrusted" "$work/serve_rpk.log"
# A certificate key is not a P-256 RPK... and a missing file is named.
rc coaps get "$url/temp" --rpk --key "$work/missing.pem" --trust-rpk "$K/rpk-server-pub.pem"
expect_eq "missing RPK key exits 7" 7 "$RC"
expect_contains "missing RPK key is named" "missing.pem" "$ERR"
rc coaps get "$url/temp" --trust-rpk "$K/ca-cert.pem"
expect_eq "a certificate given as a pinned key exits 7" 7 "$RC"

# libcoap's GnuTLS client with its raw key against our server.
out=$(coap-client-gnutls -B 10 -M "$K/rpk-client-key.pem" -m get "$url/time" 2>&1)
[[ "$out" =~ ^20[0-9]{2}- ]] || fail "coap-client-gnutls RPK: '$out'"
pass "coap-client-gnutls with RPK"

# Our client against libcoap's GnuTLS server with RPK (it requires a client key).
port=$(pick_free_udp_port)
coap-server-gnutls -A 127.0.0.1 -p "$port" -M "$K/rpk-server-key.pem" >/dev/null 2>&1 &
BG_PIDS+=($!)
wait_udp_port $((port + 1))
rc coaps get -t 10 "coaps://127.0.0.1:$((port + 1))/time" --rpk --key "$K/rpk-client-key.pem" \
  --trust-rpk "$K/rpk-server-pub.pem"
expect_eq "our RPK client to coap-server-gnutls" 0 "$RC"
rc coaps get -t 10 "coaps://127.0.0.1:$((port + 1))/time" --trust-rpk "$K/rpk-server-pub.pem"
expect_eq "coap-server-gnutls requires a client key: exits 5" 5 "$RC"
expect_contains "...and the reason says so" "[client-cert-missing]" "$ERR"

# What openssl genpkey writes by default: PKCS#8 "PRIVATE KEY" (the curve
# only in the algorithm identifier), on both ends, in PEM and in DER.
for who in server client; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/p8-$who.pem"
  openssl pkey -in "$work/p8-$who.pem" -pubout -out "$work/p8-$who-pub.pem"
done
grep -q -- "-----BEGIN PRIVATE KEY-----" "$work/p8-client.pem" ||
  fail "openssl genpkey did not write a PKCS#8 key: '$(head -1 "$work/p8-client.pem")'"
openssl pkey -in "$work/p8-client.pem" -outform DER -out "$work/p8-client.der"
start_coaps_serve_dtls "$work/serve_p8.log" --rpk --key "$work/p8-server.pem" \
  --trust-rpk "$work/p8-client-pub.pem"
rc coaps get "coaps://127.0.0.1:$DTLS_PORT/temp" --rpk --key "$work/p8-client.pem" \
  --trust-rpk "$work/p8-server-pub.pem"
expect_eq "RPK handshake with PKCS#8 keys from openssl genpkey" 0 "$RC"
rc coaps get "coaps://127.0.0.1:$DTLS_PORT/temp" --rpk --key "$work/p8-client.der" \
  --trust-rpk "$work/p8-server-pub.pem"
expect_eq "RPK handshake with a PKCS#8 key in DER" 0 "$RC"
# An encrypted key is refused at start, and says so.
openssl pkey -in "$work/p8-client.pem" -aes128 -passout pass:secret -out "$work/p8-enc.pem"
rc coaps get "coaps://127.0.0.1:$DTLS_PORT/temp" --rpk --key "$work/p8-enc.pem" \
  --trust-rpk "$work/p8-server-pub.pem"
expect_eq "an encrypted RPK key exits 7" 7 "$RC"
expect_contains "an encrypted RPK key is named as such" "the private key is encrypted" "$ERR"
