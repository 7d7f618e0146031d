#!/usr/bin/env bash
# Build coaps and run the demo server: coap:// on 5683 and coaps:// on 5684
# with demo credentials (made once with 'coaps keygen' into build/demo-creds).
# The server prints the commands that reach it in each security mode. Extra
# arguments go to 'coaps serve' (e.g. --port 5690 --dtls-port 5691 -v).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "run.sh: $*"; }
say "checking the build dependencies (scripts/deps.sh demo)"
bash scripts/deps.sh demo
say "configuring and building coaps (Release, in build/; a minute the first time)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target coaps
creds=build/demo-creds
if [ ! -f "$creds/server-pub.pem" ]; then
  say "making demo credentials in $creds (coaps keygen)"
  ./build/coaps keygen --out "$creds" --host localhost --force >/dev/null
fi
psk_hex=$(sed -n 's/^key_hex=//p' "$creds/psk.txt")
say "starting the demo server; in another terminal, put coaps on your PATH:"
echo "  export PATH=\"$PWD/build:\$PATH\""
say "and try the commands it prints below (Ctrl-C stops it)"
exec ./build/coaps serve --psk-identity coaps-demo --psk-hex "$psk_hex" \
  --cert "$creds/server-cert.pem" --key "$creds/server-key.pem" --cacert "$creds/ca-cert.pem" \
  --rpk --trust-rpk "$creds/rpk-client-pub.pem" "$@"
