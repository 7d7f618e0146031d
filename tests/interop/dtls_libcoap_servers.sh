#!/usr/bin/env bash
# Our client against libcoap's coap-server-gnutls and coap-server-openssl:
# PSK, certificates, mutual certificates; plus failures that must be named.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-server-gnutls libcoap3-bin
need coap-server-openssl libcoap3-bin
work=$(mktemp -d)
make_creds "$work/c"
K=$work/c
coaps() { "$BUILD/coaps" "$@"; }

for flavour in gnutls openssl; do
  port=$(pick_free_udp_port)
  # libcoap serves coaps:// on the port after its coap:// one.
  coap-server-$flavour -A 127.0.0.1 -p "$port" -k s3cret \
    -c "$K/server-cert.pem" -j "$K/server-key.pem" -C "$K/ca-cert.pem" -n >/dev/null 2>&1 &
  BG_PIDS+=($!)
  wait_udp_port $((port + 1))
  url="coaps://127.0.0.1:$((port + 1))"

  out=$(coaps get -t 10 "$url/" --psk-identity anyone --psk s3cret)
  expect_contains "PSK to coap-server-$flavour" "libcoap" "$out"
  out=$(coaps get -t 10 "$url/time" --cacert "$K/ca-cert.pem")
  [ -n "$out" ] || fail "certificate GET /time from coap-server-$flavour: empty"
  pass "certificate to coap-server-$flavour"
  coaps put -t 10 "$url/example_data" -d "mutual-$flavour" --cacert "$K/ca-cert.pem" \
    --cert "$K/client-cert.pem" --key "$K/client-key.pem"
  expect_eq "mutual certificates to coap-server-$flavour" "mutual-$flavour" \
    "$(coaps get -t 10 "$url/example_data" --cacert "$K/ca-cert.pem" \
         --cert "$K/client-cert.pem" --key "$K/client-key.pem")"

  # A CA that did not sign the server's certificate: named, exit 5, at once.
  set +e
  err=$(coaps get -t 10 "$url/time" --cacert /etc/ssl/certs/ca-certificates.crt 2>&1 >/dev/null)
  rc=$?
  set -e
  expect_eq "untrusted server certificate exits 5 ($flavour)" 5 "$rc"
  expect_contains "untrusted server certificate is explained ($flavour)" "[cert-untrusted]" "$err"
  kill "${BG_PIDS[-1]}"
done
