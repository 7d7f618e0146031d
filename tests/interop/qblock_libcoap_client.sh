#!/usr/bin/env bash
# libcoap's client with Q-Block (RFC 9177, -L 5 = COAP_BLOCK_USE_LIBCOAP +
# COAP_BLOCK_TRY_Q_BLOCK, NON requests) against our server's /store: PUT
# and GET of 100 KB and 1 MiB over coap://, 100 KB over coaps:// with PSK,
# byte for byte, and from the client's own trace (-v 7) that Q-Block was
# used: Q-Block1 blocks in bursts with a 2.31 per set of 10, Q-Block2
# blocks at ten per request. Then 100 KB through udp_lossy: a PUT through
# 10 % loss each way, a GET through 10 % loss toward the client (at most
# 3 drops: libcoap's own limit, below), both byte-exact, the missing blocks
# recovered by the client's requests and the server's 4.08 lists. A Q-Block PUT runs the handler once (the store's ETag, its
# version, moves by one).
#
# The peer is libcoap 4.3.5 (../shared/peers, coap-client-mbedtls-cid):
# Debian's libcoap 4.3.1 is built without Q-Block (its libraries hold no
# Q-Block code and -L 5 sends plain Block1/Block2), so it can only check
# that such a client still gets its bodies (RFC 7959), which it does here.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-client-notls libcoap3-bin
need_shared_peers coap-client-mbedtls-cid
QC=$PEERS_BIN/coap-client-mbedtls-cid
[ -x "$BUILD/udp_lossy" ] || fail "udp_lossy was not built"
work=$(mktemp -d)
start_coaps_serve_dtls "$work/serve.log" --workers 1 --max-body 2M \
  --psk-identity qblock --psk s3cret
plain="coap://127.0.0.1:$SERVE_PORT"
secure="coaps://127.0.0.1:$DTLS_PORT"

# The trace lines of messages (libcoap -v 7): "v:1 t:NON c:GET ...".
count() { grep -ac -- "$1" "$2" || true; }

# qb_transfer URL SIZE [credentials...]: PUT then GET with Q-Block, NON.
qb_transfer() {
  local url=$1 size=$2; shift 2
  head -c "$size" /dev/urandom >"$work/up.bin"
  rm -f "$work/down.bin"
  "$QC" -N -L 5 -b 1024 -B 120 -v 7 "$@" -m put -f "$work/up.bin" "$url/store" \
    >"$work/put.out" 2>&1 || fail "Q-Block PUT of $size bytes to $url: $(tail -5 "$work/put.out")"
  "$QC" -N -L 5 -b 1024 -B 120 -v 7 "$@" -m get -o "$work/down.bin" "$url/store" \
    >"$work/get.out" 2>&1 || fail "Q-Block GET of $size bytes from $url: $(tail -5 "$work/get.out")"
  cmp -s "$work/up.bin" "$work/down.bin" ||
    fail "Q-Block GET from $url gave $(stat -c %s "$work/down.bin" 2>/dev/null || echo no) bytes, not the $size PUT"
  pass "Q-Block PUT and GET of $size bytes byte-exact over ${url%%:*}://"
  local blocks=$(((size + 1023) / 1024)) sets
  sets=$(((blocks + 9) / 10))
  # PUT: every block a NON Q-Block1 request, a 2.31 per complete set of
  # 10 and one final 2.01 or 2.04, CON (libcoap prints each message it sends and gets).
  local q1 c231
  q1=$(count "t:NON c:PUT .*Q-Block1:" "$work/put.out")
  c231=$(count "c:2.31 .*Q-Block1:" "$work/put.out")
  [ "$q1" -ge "$blocks" ] || fail "PUT: $q1 NON Q-Block1 requests for $blocks blocks"
  [ "$c231" -ge $((blocks / 10 - 1)) ] || fail "PUT: $c231 2.31 for $blocks blocks (one per set of 10)"
  grep -aqE "t:CON c:2.0[14]" "$work/put.out" || fail "PUT: no CON 2.01/2.04 at the end"
  pass "PUT went in Q-Block1 bursts ($q1 blocks, $c231 2.31)"
  # GET: every block a NON Q-Block2 response, about one request per set
  # of 10 (lock-step RFC 7959 would be one per block).
  local q2 gets
  q2=$(count "t:NON c:2.05 .*Q-Block2:" "$work/get.out")
  gets=$(count "t:NON c:GET" "$work/get.out")
  [ "$q2" -ge "$blocks" ] || fail "GET: $q2 NON Q-Block2 responses for $blocks blocks"
  [ "$gets" -le $((sets + 2)) ] || fail "GET: $gets requests for $blocks blocks: not in bursts"
  pass "GET came in Q-Block2 bursts ($q2 blocks for $gets requests)"
}

etag() { coap-client-notls -B 30 -v 7 -m get "$plain/store" 2>&1 | grep -a -m1 -oE 'ETag:[0-9a-fx]+' || true; }

qb_transfer "$plain" 102400
before=$(etag)
qb_transfer "$plain" 1048576
after=$(etag)
[ -n "$before" ] && [ -n "$after" ] || fail "no ETag on GET /store: '$before' '$after'"
[ $((${after#ETag:} - ${before#ETag:})) -eq 1 ] ||
  fail "a 1 MiB Q-Block PUT moved the store's version from $before to $after, not by one"
pass "a Q-Block1 PUT of 1024 blocks ran the handler once"
qb_transfer "$secure" 102400 -u qblock -k s3cret

# Debian's client (no Q-Block in 4.3.1) with -L 5: plain block-wise, and
# the bodies still arrive.
head -c 102400 /dev/urandom >"$work/up.bin"
rm -f "$work/down.bin"
coap-client-notls -L 5 -b 1024 -B 60 -m put -f "$work/up.bin" "$plain/store" >/dev/null 2>&1 ||
  fail "coap-client-notls -L 5 PUT"
coap-client-notls -L 5 -b 1024 -B 60 -m get -o "$work/down.bin" "$plain/store" >/dev/null 2>&1 ||
  fail "coap-client-notls -L 5 GET"
cmp -s "$work/up.bin" "$work/down.bin" || fail "coap-client-notls -L 5: GET is not the PUT"
pass "Debian's coap-client-notls -L 5 (RFC 7959 blocks): 100 KB byte-exact"

# Through udp_lossy: the PUT with 10 % loss each way; the client waits
# NON_RECEIVE_TIMEOUT (4 s) before asking for what is missing, so a lost
# block costs seconds, not a failure. The GET with 10 % loss toward the
# client, capped at 3 datagrams: libcoap's client keeps the blocks it got
# as at most 4 ranges (COAP_RBLOCK_CNT) and, with more gaps open at once,
# gives the body up as partial (COAP_EVENT_PARTIAL_BLOCK, its own limit,
# whatever the server). The paths live at most 15 minutes.
start_lossy() { # OUTVAR ARGS...
  local var=$1; shift
  # The file exists before udp_lossy starts: a read of a missing file
  # would end the script (set -e) without a word.
  : >"$work/$var.port"
  "$BUILD/udp_lossy" "$@" --lifetime 900 "$SERVE_PORT" >"$work/$var.port" 2>"$work/$var.err" &
  BG_PIDS+=($!)
  eval "${var}_PID=$!"
  local port=
  for _ in $(seq 100); do
    port=$(head -1 "$work/$var.port" 2>/dev/null || true)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || fail "udp_lossy did not start"
  eval "${var}_PORT=$port"
}
stop_lossy() { # VAR: stops it, sets DROPPED to the datagrams it dropped
  local pid
  eval "pid=\$${1}_PID"
  kill "$pid" 2>/dev/null || true
  # In this shell, not in $(...): only the shell that started udp_lossy can
  # wait for it, and its counts are written on the way out.
  wait "$pid" 2>/dev/null || true
  DROPPED=$(grep -oE 'dropped=[0-9]+' "$work/$1.err" | cut -d= -f2 | paste -sd+ | bc || true)
}
start_lossy lossyput --loss 0.1 --seed 7
start_lossy lossyget --loss-up 0 --loss-down 0.1 --max-drops 3 --seed 11
head -c 102400 /dev/urandom >"$work/up.bin"
rm -f "$work/down.bin"
"$QC" -N -L 5 -b 1024 -B 200 -v 7 -m put -f "$work/up.bin" "coap://127.0.0.1:$lossyput_PORT/store" \
  >"$work/lput.out" 2>&1 || fail "lossy Q-Block PUT: $(tail -5 "$work/lput.out")"
# The stored body, read back over the clean path: the PUT arrived whole.
coap-client-notls -b 1024 -B 60 -m get -o "$work/clean.bin" "$plain/store" >/dev/null 2>&1 ||
  fail "GET /store after the lossy PUT"
cmp -s "$work/up.bin" "$work/clean.bin" || fail "the lossy Q-Block PUT did not store the body byte-exact"
stop_lossy lossyput
dropped=$DROPPED
[ "${dropped:-0}" -gt 0 ] || fail "udp_lossy dropped nothing on the PUT's path: $(cat "$work/lossyput.err")"
pass "100 KB Q-Block PUT byte-exact through 10 % loss each way ($dropped datagrams dropped)"
"$QC" -N -L 5 -b 1024 -B 200 -v 7 -m get -o "$work/down.bin" "coap://127.0.0.1:$lossyget_PORT/store" \
  >"$work/lget.out" 2>&1 || fail "lossy Q-Block GET: $(tail -5 "$work/lget.out")"
cmp -s "$work/up.bin" "$work/down.bin" ||
  fail "lossy Q-Block GET gave $(stat -c %s "$work/down.bin" 2>/dev/null || echo no) bytes, not the 102400 PUT"
stop_lossy lossyget
dropped=$DROPPED
[ "${dropped:-0}" -gt 0 ] || fail "udp_lossy dropped nothing on the GET's path: $(cat "$work/lossyget.err")"
pass "100 KB Q-Block GET byte-exact through 10 % loss toward the client ($dropped blocks dropped, recovered)"

grep -q "AddressSanitizer\|runtime error" "$work/serve.log" && fail "server log: $(cat "$work/serve.log")"
pass "server log clean"
