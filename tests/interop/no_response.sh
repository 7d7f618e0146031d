#!/usr/bin/env bash
# No-Response (RFC 7967) with `coaps post/put --no-response`, against our
# server and libcoap's coap-server-notls: the tool exits 0 quickly,
# printing nothing; the server did the work (the store holds the body);
# the suppressed class is not sent (the -v trace shows no response of it)
# and a class that is not suppressed still is.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-server-notls libcoap3-bin
work=$(mktemp -d)
coaps() { "$BUILD/coaps" "$@"; }

# rc CMD...: exit status in RC, stdout in OUT, stderr in ERR, time in MS.
rc() {
  local t0
  t0=$(date +%s%N)
  set +e; "$@" >"$work/out" 2>"$work/err"; RC=$?; set -e
  MS=$((($(date +%s%N) - t0) / 1000000))
  OUT=$(cat "$work/out"); ERR=$(cat "$work/err")
}
# quick WHAT: the last run took under 3 s (an answer that never comes is
# not waited for through the whole retransmission schedule).
quick() {
  [ "$MS" -lt 3000 ] || fail "$1: took $MS ms"
  pass "$1 ($MS ms)"
}

# suppressed NAME URL METHOD CLASSES BODY: the request with --no-response
# exits 0 at once with nothing on stdout; the store holds BODY after.
suppressed() {
  local name=$1 url=$2 method=$3 classes=$4 body=$5
  rc coaps "$method" -v -t 20 "$url" -d "$body" --no-response "$classes"
  expect_eq "$name: $method --no-response $classes exits 0 ($ERR)" 0 "$RC"
  expect_eq "$name: nothing printed" "" "$OUT"
  expect_not_contains "$name: no 2.xx response came" "< ACK 2." "$ERR"
  expect_not_contains "$name: no 2.xx response came (NON or CON)" "2.04 Changed mid" "$ERR"
  quick "$name: $method --no-response $classes returns quickly"
  rc coaps get -t 10 "$url"
  expect_eq "$name: the server did the $method" "$body" "$OUT"
}

# Our server.
start_coaps_serve "$work/serve.log" --workers 1
ours="coap://127.0.0.1:$SERVE_PORT"
suppressed "coaps serve" "$ours/store" put all "put-all"
expect_contains "all: the request went NON" "> NON PUT" "$ERR"
expect_contains "all: -v says no response is expected" "no response expected" "$ERR"
suppressed "coaps serve" "$ours/store" put 2xx "put-2xx"
suppressed "coaps serve" "$ours/store" put "2xx,5xx" "put-2xx-5xx"
# A class not suppressed is still answered: 4.04 with 2xx suppressed.
rc coaps get -t 10 "$ours/nothing" --no-response 2xx
expect_eq "2xx suppressed: a 4.04 still comes (exit 1)" 1 "$RC"
expect_contains "2xx suppressed: the 4.04 is shown" "4.04 Not Found" "$ERR"
# ...and an answer of a suppressed class does not: 4.04 with 4xx.
rc coaps get -v -t 20 "$ours/nothing" --no-response 4xx
expect_eq "4xx suppressed: a 4.04 is not sent, exit 0 ($ERR)" 0 "$RC"
expect_not_contains "4xx suppressed: no 4.04 came" "4.04" "$ERR"
quick "4xx suppressed: returns quickly"
# POST appends: the store holds both bodies.
rc coaps put -t 10 "$ours/store" -d "a"
rc coaps post -t 10 "$ours/store" -d "b" --no-response 2xx
expect_eq "POST --no-response 2xx exits 0" 0 "$RC"
rc coaps get -t 10 "$ours/store"
expect_eq "the POST appended" "ab" "$OUT"

# libcoap's server: its /example_data takes PUT (no POST there).
port=$(pick_free_udp_port)
coap-server-notls -A 127.0.0.1 -p "$port" >/dev/null 2>&1 &
BG_PIDS+=($!)
wait_udp_port "$port"
theirs="coap://127.0.0.1:$port/example_data"
suppressed "coap-server-notls" "$theirs" put all "libcoap-all"
suppressed "coap-server-notls" "$theirs" put 2xx "libcoap-2xx"
