#!/usr/bin/env bash
# Build coaps and run the demo server: coap:// on 5683 and coaps:// on 5684
# with demo credentials (made once with 'coaps keygen' into build/demo-creds),
# printing how to reach it in each security mode. Extra arguments go to
# 'coaps serve' (e.g. --port 5690 --dtls-port 5691 -v).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target coaps >/dev/null
creds=build/demo-creds
[ -f "$creds/server-pub.pem" ] || ./build/coaps keygen --out "$creds" --host localhost --force >/dev/null
psk_hex=$(sed -n 's/^key_hex=//p' "$creds/psk.txt")
cat <<EOT
Demo credentials in $creds. Once the server is up, from another terminal:
  PSK:                 build/coaps get coaps://127.0.0.1/temp --psk-identity coaps-demo --psk-hex $psk_hex
  certificate:         build/coaps get coaps://localhost/temp --cacert $creds/ca-cert.pem
  mutual certificates: build/coaps get coaps://localhost/temp --cacert $creds/ca-cert.pem --cert $creds/client-cert.pem --key $creds/client-key.pem
  raw public keys:     build/coaps get coaps://127.0.0.1/temp --rpk --key $creds/rpk-client-key.pem --trust-rpk $creds/server-pub.pem
  libcoap:             coap-client-gnutls -R $creds/ca-cert.pem -m get coaps://localhost/temp
  step by step:        build/coaps doctor coaps://localhost/temp --cacert $creds/ca-cert.pem
  a failure, named:    build/coaps get coaps://127.0.0.1/temp --psk-identity coaps-demo --psk wrong
EOT
exec ./build/coaps serve --psk-identity coaps-demo --psk-hex "$psk_hex" \
  --cert "$creds/server-cert.pem" --key "$creds/server-key.pem" --cacert "$creds/ca-cert.pem" \
  --rpk --trust-rpk "$creds/rpk-client-pub.pem" "$@"
