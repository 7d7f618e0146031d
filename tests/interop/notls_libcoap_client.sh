#!/usr/bin/env bash
# libcoap's coap-client-notls against our server: GET, discovery, PUT, POST,
# DELETE, and a 4.04.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-client-notls libcoap3-bin
work=$(mktemp -d)
start_coaps_serve "$work/serve.log"
base="coap://127.0.0.1:$SERVE_PORT"
cc() { coap-client-notls -B 5 "$@" 2>&1; }

out=$(cc -m get "$base/temp")
[[ "$out" =~ ^[0-9]+\.[0-9]\ C$ ]] || fail "GET /temp: expected a reading like '21.7 C', got '$out'"
pass "GET /temp"

out=$(cc -m get "$base/.well-known/core")
expect_contains "discovery lists /temp, observable" '</temp>;obs;rt="temperature-c"' "$out"
expect_contains "discovery lists /store" '</store>' "$out"

out=$(cc -m get "$base/.well-known/core?rt=time")
expect_contains "discovery filter keeps /time" '</time>' "$out"
grep -q '</temp>' <<<"$out" && fail "discovery filter rt=time still lists /temp: $out"
pass "discovery filter drops /temp"

cc -m put -e "from-libcoap" -t text/plain "$base/store" >/dev/null
expect_eq "PUT then GET /store" "from-libcoap" "$(cc -m get "$base/store")"

expect_eq "POST /echo" "ping-payload" "$(cc -m post -e ping-payload "$base/echo")"

cc -m delete "$base/store" >/dev/null
expect_contains "GET /store after DELETE is 4.04" "4.04" "$(cc -m get "$base/store")"
expect_contains "unknown path is 4.04" "4.04" "$(cc -m get "$base/no/such/thing")"
expect_contains "DELETE /temp is 4.05" "4.05" "$(cc -m delete "$base/temp")"

# The same over IPv6 (the server listens dual-stack).
out=$(cc -m get "coap://[::1]:$SERVE_PORT/time")
[[ "$out" =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T ]] || fail "GET /time over IPv6: got '$out'"
pass "GET /time over IPv6"
