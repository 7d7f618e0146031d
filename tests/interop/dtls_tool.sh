#!/usr/bin/env bash
# coaps:// between our own client and server: each mode, and the failures a
# user meets, each with its exit code and a message that names the cause.
BUILD=$1
. "$(dirname "$0")/lib.bash"
work=$(mktemp -d)
make_creds "$work/c"
K=$work/c
coaps() { "$BUILD/coaps" "$@"; }
rc() { set +e; "$@" >"$work/out" 2>"$work/err"; RC=$?; set -e; OUT=$(cat "$work/out"); ERR=$(cat "$work/err"); }

start_coaps_serve_dtls "$work/serve.log" --psk-identity me --psk secret \
  --cert "$K/server-cert.pem" --key "$K/server-key.pem" --cacert "$K/ca-cert.pem"
url="coaps://127.0.0.1:$DTLS_PORT"

rc coaps get "$url/temp" --psk-identity me --psk secret
expect_eq "PSK GET exits 0" 0 "$RC"
[[ "$OUT" =~ ^[0-9]+\.[0-9]\ C$ ]] || fail "PSK GET payload: '$OUT'"
rc coaps get "$url/temp" --psk-identity me --psk-hex 736563726574
expect_eq "PSK given in hex" 0 "$RC"
rc coaps get "coaps://localhost:$DTLS_PORT/temp" --cacert "$K/ca-cert.pem"
expect_eq "certificate GET by host name exits 0" 0 "$RC"
rc coaps get "$url/temp" --cacert "$K/ca-cert.pem"
expect_eq "certificate GET by IP (IP SAN) exits 0" 0 "$RC"
rc coaps put "$url/store" -d secure --cacert "$K/ca-cert.pem" --cert "$K/client-cert.pem" --key "$K/client-key.pem"
expect_eq "mutual certificates PUT exits 0" 0 "$RC"
rc coaps get -v "$url/store" --psk-identity me --psk secret
expect_eq "GET over PSK sees the PUT over certificates" "secure" "$OUT"
expect_contains "verbose shows the decrypted CoAP" "< ACK 2.05 Content" "$ERR"

# A path that drops datagrams over 400 bytes: the certificate flight does
# not fit, so without fragmentation the handshake cannot finish; with a
# 300-byte MTU on both sides it is fragmented (RFC 6347 §4.2.3) and does.
start_coaps_serve_dtls "$work/serve_small.log" --cert "$K/server-cert.pem" --key "$K/server-key.pem"
start_relay "$DTLS_PORT" 400
rc coaps get -t 3 "coaps://127.0.0.1:$RELAY_PORT/temp" --cacert "$K/ca-cert.pem"
[ "$RC" -ne 0 ] || fail "the certificate flight crossed a 400-byte path without fragmentation?"
pass "an unfragmented certificate flight does not cross a 400-byte path"
start_coaps_serve_dtls "$work/serve_mtu.log" --mtu 300 \
  --cert "$K/server-cert.pem" --key "$K/server-key.pem"
start_relay "$DTLS_PORT" 400
rc coaps get -t 10 "coaps://127.0.0.1:$RELAY_PORT/temp" --cacert "$K/ca-cert.pem" --mtu 300
expect_eq "fragmented certificate handshake over a 400-byte path exits 0" 0 "$RC"
DTLS_PORT=${url##*:}

# A server that requires client certificates; CAs given as a directory.
mkdir -p "$work/cadir" && cp "$K/ca-cert.pem" "$work/cadir/"
start_coaps_serve_dtls "$work/serve_req.log" --cert "$K/server-cert.pem" --key "$K/server-key.pem" \
  --cacert "$work/cadir" --require-client-cert
rc coaps get "coaps://127.0.0.1:$DTLS_PORT/temp" --cacert "$work/cadir"
expect_eq "no client certificate for a server that requires one exits 5" 5 "$RC"
expect_contains "...and says the server wants one" "[client-cert-missing]" "$ERR"
expect_log "the server logs that none was sent" "sent no certificate" "$work/serve_req.log"
rc coaps get "coaps://127.0.0.1:$DTLS_PORT/temp" --cacert "$work/cadir" \
  --cert "$K/client-cert.pem" --key "$K/client-key.pem"
expect_eq "with a client certificate (CAs from a directory) exits 0" 0 "$RC"
DTLS_PORT=${url##*:}

# Certificates, keys and CAs in DER work as well as PEM.
openssl x509 -in "$K/ca-cert.pem" -outform DER -out "$work/ca.der"
openssl x509 -in "$K/server-cert.pem" -outform DER -out "$work/server-cert.der"
openssl pkey -in "$K/server-key.pem" -outform DER -out "$work/server-key.der"
start_coaps_serve_dtls "$work/serve_der.log" --cert "$work/server-cert.der" --key "$work/server-key.der"
rc coaps get "coaps://localhost:$DTLS_PORT/temp" --cacert "$work/ca.der"
expect_eq "DER certificate, key and CA" 0 "$RC"
DTLS_PORT=${url##*:}

# Resumption across processes: the second run's handshake is abbreviated.
rc coaps get -v "$url/time" --psk-identity me --psk secret --session "$work/session"
expect_eq "first run with --session exits 0" 0 "$RC"
[ -s "$work/session" ] || fail "--session did not write the session file"
[ "$(stat -c %a "$work/session")" = 600 ] || fail "session file is not private (mode 600)"
grep -q "(resumed)" <<<"$ERR" && fail "the first handshake cannot be resumed"
rc coaps get -v "$url/time" --psk-identity me --psk secret --session "$work/session"
expect_eq "second run with --session exits 0" 0 "$RC"
expect_contains "second run resumed the session" "(resumed)" "$ERR"

# Failures.
rc coaps get "$url/temp"
expect_eq "no credentials exits 7" 7 "$RC"
expect_contains "no credentials names what to give" "--psk-identity" "$ERR"
rc coaps get "$url/temp" --psk-identity stranger --psk secret
expect_eq "unknown PSK identity exits 5" 5 "$RC"
expect_contains "unknown PSK identity is named" "PSK identity" "$ERR"
rc coaps get "$url/temp" --cacert /etc/ssl/certs/ca-certificates.crt
expect_eq "untrusted CA exits 5" 5 "$RC"
expect_contains "untrusted CA is named" "[cert-untrusted]" "$ERR"
make_creds "$work/other"
rc coaps get "$url/temp" --cacert "$work/other/ca-cert.pem"
expect_eq "certificate from another CA exits 5" 5 "$RC"

# A server whose certificate names only device.example, reached as localhost.
"$BUILD/coaps" keygen --out "$work/dev" --host device.example >/dev/null
first_port=$DTLS_PORT
start_coaps_serve_dtls "$work/serve2.log" --cert "$work/dev/server-cert.pem" --key "$work/dev/server-key.pem"
rc coaps get "coaps://localhost:$DTLS_PORT/temp" --cacert "$work/dev/ca-cert.pem"
expect_eq "certificate for another name exits 5" 5 "$RC"
expect_contains "name mismatch is named" "[cert-name-mismatch]" "$ERR"
DTLS_PORT=$first_port

# Bad configuration is caught before anything is sent.
rc coaps get "$url/temp" --cacert "$work/nonexistent.pem"
expect_eq "missing CA file exits 7" 7 "$RC"
expect_contains "missing CA file is named" "nonexistent.pem" "$ERR"
printf 'not a certificate\n' >"$work/garbage.pem"
rc coaps get "$url/temp" --cacert "$work/garbage.pem"
expect_eq "CA file without a certificate exits 7" 7 "$RC"
expect_contains "CA file without a certificate is said" "garbage.pem" "$ERR"
rc coaps serve --port 0 --dtls-port 0 --cert "$K/server-cert.pem" --key "$K/client-key.pem"
expect_eq "key that does not match its certificate exits 7" 7 "$RC"
expect_contains "mismatch is named" "does not match" "$ERR"
rc coaps get "$url/temp" --psk-identity me
expect_eq "--psk-identity without a key exits 64" 64 "$RC"
rc coaps get "$url/temp" --psk-identity me --psk-hex 12zz
expect_eq "bad hex key is bad usage (exit 64)" 64 "$RC"
expect_contains "bad hex key is said" "--psk-hex wants the key as pairs of hex digits" "$ERR"

# keygen refuses to overwrite.
rc coaps keygen --out "$K"
expect_eq "keygen refuses to overwrite" 64 "$RC"
expect_contains "keygen names the file it keeps" "exists already" "$ERR"
# Private keys and the PSK are created readable by their owner only, even
# with a permissive umask; certificates are public.
(umask 000 && "$BUILD/coaps" keygen --out "$work/perm" >/dev/null) || fail "keygen under umask 000"
for f in ca-key.pem server-key.pem client-key.pem rpk-server-key.pem psk.txt; do
  expect_eq "$f is private" 600 "$(stat -c %a "$work/perm/$f")"
done
expect_eq "a certificate is readable" 644 "$(stat -c %a "$work/perm/server-cert.pem")"
(umask 000 && "$BUILD/coaps" keygen --out "$work/perm" --force >/dev/null) || fail "keygen --force"
expect_eq "--force keeps a key private" 600 "$(stat -c %a "$work/perm/server-key.pem")"
