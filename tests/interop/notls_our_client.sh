#!/usr/bin/env bash
# Our client against libcoap's coap-server-notls.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-server-notls libcoap3-bin
port=$(pick_free_udp_port)
coap-server-notls -A 127.0.0.1 -p "$port" >/dev/null 2>&1 &
BG_PIDS+=($!)
wait_udp_port "$port"
base="coap://127.0.0.1:$port"
coaps() { "$BUILD/coaps" "$@"; }

out=$(coaps get -t 5 "$base/")
expect_contains "GET / (libcoap banner)" "libcoap" "$out"

out=$(coaps get -t 5 "$base/.well-known/core")
expect_contains "discovery through our client" "</example_data>" "$out"

coaps put -t 5 "$base/example_data" -d "from-coaps" -f text
expect_eq "PUT then GET /example_data" "from-coaps" "$(coaps get -t 5 "$base/example_data")"

set +e
coaps get -t 5 "$base/no-such-resource" 2>"$BUILD/notls_our_client.err"
rc=$?
set -e
expect_eq "4.04 exits 1" 1 "$rc"
expect_contains "4.04 is reported on stderr" "4.04 Not Found" "$(cat "$BUILD/notls_our_client.err")"

out=$(coaps get -t 5 -v --non "$base/time" 2>&1)
expect_contains "NON request goes out as NON" "> NON GET" "$out"
