#!/usr/bin/env bash
# No-Response (RFC 7967) with `coaps post/put --no-response`, against our
# server and libcoap's coap-server-notls: the tool exits 0 quickly (at
# once when every class is suppressed, else when -t or 5 s have passed
# without an answer of the other classes), printing nothing; the server did the work (the store holds the body);
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
# within MAX_MS WHAT: the last run took less than MAX_MS.
within() {
  [ "$MS" -lt "$1" ] || fail "$2: took $MS ms, expected under $1 ms"
  pass "$2 ($MS ms)"
}

# suppressed NAME URL METHOD CLASSES BODY [ARGS]: the request with
# --no-response exits 0 with nothing on stdout and no response of the
# suppressed classes (-v trace), within 3 s: at once for all (nothing to
# wait for), else by the -t given in ARGS (-t 1.5 here); the store holds
# BODY after. SENT_ERR keeps the request's stderr.
suppressed() {
  local name=$1 url=$2 method=$3 classes=$4 body=$5; shift 5
  rc coaps "$method" -v "$url" -d "$body" --no-response "$classes" "$@"
  expect_eq "$name: $method --no-response $classes exits 0 ($ERR)" 0 "$RC"
  expect_eq "$name: nothing printed" "" "$OUT"
  expect_not_contains "$name: no 2.xx response came" "< ACK 2." "$ERR"
  expect_not_contains "$name: no 2.xx response came (NON or CON)" "2.04 Changed mid" "$ERR"
  within 3000 "$name: $method --no-response $classes $* returns quickly"
  SENT_ERR=$ERR
  rc coaps get -t 10 "$url"
  expect_eq "$name: the server did the $method" "$body" "$OUT"
}

# Our server.
start_coaps_serve "$work/serve.log" --workers 1
ours="coap://127.0.0.1:$SERVE_PORT"
suppressed "coaps serve" "$ours/store" put all "put-all" -t 20
expect_contains "all: the request went NON" "> NON PUT" "$SENT_ERR"
expect_contains "all: -v says no response is expected" "no response expected" "$SENT_ERR"
suppressed "coaps serve" "$ours/store" put 2xx "put-2xx" -t 1.5
expect_contains "2xx: the request went CON" "> CON PUT" "$SENT_ERR"
expect_contains "2xx: the server acknowledged it, empty" "< ACK 0.00 Empty" "$SENT_ERR"
expect_contains "2xx: -v says no response came, as allowed" "no response within 1.5 s, as --no-response 2xx allows" "$SENT_ERR"
suppressed "coaps serve" "$ours/store" put "2xx,5xx" "put-2xx-5xx" -t 1.5
# Without -t the wait for an answer that may be suppressed is 5 s, not
# the whole retransmission schedule.
rc coaps put "$ours/store" -d "default-wait" --no-response 2xx
expect_eq "2xx without -t exits 0" 0 "$RC"
[ "$MS" -ge 4500 ] || fail "2xx without -t: ended after $MS ms, before the 5 s wait"
within 8000 "2xx without -t: waits 5 s for an answer"
# A class not suppressed is still answered: 4.04 with 2xx suppressed.
rc coaps get -t 10 "$ours/nothing" --no-response 2xx
expect_eq "2xx suppressed: a 4.04 still comes (exit 1)" 1 "$RC"
expect_contains "2xx suppressed: the 4.04 is shown" "4.04 Not Found" "$ERR"
# ...and an answer of a suppressed class does not: 4.04 with 4xx.
rc coaps get -v -t 1.5 "$ours/nothing" --no-response 4xx
expect_eq "4xx suppressed: a 4.04 is not sent, exit 0 ($ERR)" 0 "$RC"
expect_not_contains "4xx suppressed: no 4.04 came" "4.04" "$ERR"
within 3000 "4xx suppressed: ends by -t"
# POST appends: the store holds both bodies.
rc coaps put -t 10 "$ours/store" -d "a"
rc coaps post -t 1.5 "$ours/store" -d "b" --no-response 2xx
expect_eq "POST --no-response 2xx exits 0" 0 "$RC"
rc coaps get -t 10 "$ours/store"
expect_eq "the POST appended" "ab" "$OUT"

# libcoap's server: its /example_data takes PUT (no POST there).
port=$(pick_free_udp_port)
coap-server-notls -A 127.0.0.1 -p "$port" >/dev/null 2>&1 &
BG_PIDS+=($!)
wait_udp_port "$port"
theirs="coap://127.0.0.1:$port/example_data"
suppressed "coap-server-notls" "$theirs" put all "libcoap-all" -t 20
suppressed "coap-server-notls" "$theirs" put 2xx "libcoap-2xx" -t 1.5
expect_contains "libcoap: 2xx: acknowledged, empty" "< ACK 0.00 Empty" "$SENT_ERR"
