#!/usr/bin/env bash
# DTLS alone: gnutls-cli and openssl s_client complete handshakes with our
# server — PSK with the mandatory TLS_PSK_WITH_AES_128_CCM_8, and
# certificates verified against the demo CA.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need gnutls-cli gnutls-bin
need openssl openssl
work=$(mktemp -d)
make_creds "$work/c"
K=$work/c
start_coaps_serve_dtls "$work/serve.log" --psk-identity tools --psk secret \
  --cert "$K/server-cert.pem" --key "$K/server-key.pem"
hex=$(printf secret | od -An -tx1 | tr -d ' \n')

out=$(timeout 10 gnutls-cli --udp --pskusername tools --pskkey "$hex" \
  --priority 'NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+AES-128-CCM-8' \
  -p "$DTLS_PORT" 127.0.0.1 </dev/null 2>&1 || true)
expect_contains "gnutls-cli PSK handshake" "Handshake was completed" "$out"
expect_contains "gnutls-cli PSK suite is CCM_8" "AES-128-CCM-8" "$out"

out=$(timeout 10 gnutls-cli --udp --x509cafile "$K/ca-cert.pem" -p "$DTLS_PORT" localhost </dev/null 2>&1 || true)
expect_contains "gnutls-cli certificate trusted" "The certificate is trusted" "$out"
expect_contains "gnutls-cli certificate handshake" "Handshake was completed" "$out"

out=$(timeout 10 openssl s_client -dtls1_2 -cipher PSK-AES128-CCM8 -psk_identity tools -psk "$hex" \
  -connect "127.0.0.1:$DTLS_PORT" </dev/null 2>&1 || true)
expect_contains "openssl PSK handshake with PSK-AES128-CCM8" "Cipher is PSK-AES128-CCM8" "$out"

out=$(timeout 10 openssl s_client -dtls1_2 -CAfile "$K/ca-cert.pem" -verify_return_error \
  -connect "127.0.0.1:$DTLS_PORT" </dev/null 2>&1 || true)
expect_contains "openssl certificate verified" "Verification: OK" "$out"
expect_contains "openssl certificate handshake" "Cipher is ECDHE-ECDSA" "$out"

# Downgrade: DTLS 1.0, a CBC suite without AEAD, and a suite with no
# encryption are each refused with handshake_failure, to a client that
# offers nothing better, and the server's log says what was offered.
downgrade() { # WHAT PRIORITY OFFERED
  out=$(timeout 10 gnutls-cli --udp --pskusername tools --pskkey "$hex" --priority "$2" \
    -p "$DTLS_PORT" 127.0.0.1 </dev/null 2>&1 || true)
  expect_not_contains "$1 refused" "Handshake was completed" "$out"
  expect_contains "$1 refused with handshake_failure" "Received alert [40]" "$out"
  expect_log "$1 named in the server's log" "the client offered PSK ($3" "$work/serve.log"
}
downgrade "DTLS 1.0" 'NORMAL:-VERS-ALL:+VERS-DTLS1.0:-KX-ALL:+PSK:-CIPHER-ALL:+AES-128-CBC:-MAC-ALL:+SHA1' \
  TLS_PSK_AES_128_CBC_SHA1
downgrade "a CBC suite" 'NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+AES-128-CBC:-MAC-ALL:+SHA256' \
  TLS_PSK_AES_128_CBC_SHA256
downgrade "a suite without encryption" 'NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+NULL:-MAC-ALL:+SHA256' \
  TLS_PSK_NULL_SHA256
