#!/usr/bin/env bash
# Round trips to the first response over a 100 ms RTT path (udp_lossy,
# 50 ms each way, no loss), timed at the path from the client's first
# datagram to the response leaving toward it (--timing), so a slow process
# start (sanitizers, a busy machine) does not count:
#   our client -> our server, PSK, default cookie policy (when-needed):
#     fresh within 3 RTT + 50 ms, resumed (--session) within 2 RTT + 50 ms;
#   the same with --cookie always: a round trip more each (the control
#     that the path delays and the cookie costs what we say);
#   X.509: the fresh handshake keeps its cookie (at least 4 RTT), the
#     resumed one takes 2 RTT + 50 ms;
#   coap-client-gnutls (libcoap, Debian) -> our server, default policy:
#     answered within 3 RTT + 50 ms, no HelloVerifyRequest needed.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-client-gnutls libcoap3-bin
[ -x "$BUILD/udp_lossy" ] || fail "udp_lossy was not built"
RTT=100 SLACK=50
work=$(mktemp -d)
make_creds "$work/c"
K=$work/c

# start_path TARGET_PORT NAME: a 100 ms RTT path; sets PATH_PORT, TIMING.
start_path() {
  TIMING=$work/timing.$2
  : >"$work/path.$2.port"
  "$BUILD/udp_lossy" --delay $((RTT / 2)) --lifetime 120 --timing "$TIMING" "$1" \
    >"$work/path.$2.port" 2>"$work/path.$2.err" &
  BG_PIDS+=($!)
  for _ in $(seq 100); do
    PATH_PORT=$(head -1 "$work/path.$2.port")
    [ -n "$PATH_PORT" ] && return 0
    sleep 0.05
  done
  fail "udp_lossy did not start"
}

# first_response_ms N: the ms from client N's first datagram to the last
# datagram the path sent it (the response: nothing follows it).
first_response_ms() {
  local ms
  ms=$(awk -v n="$1" '$1 == n { t = $2 } END { print t }' "$TIMING")
  [ -n "$ms" ] || fail "the path sent client $1 nothing"
  echo "$ms"
}

# expect_within WHAT MS ROUND_TRIPS: at most ROUND_TRIPS RTT + SLACK, and
# more than ROUND_TRIPS - 1 RTT (else the path did not delay, or a round
# trip went unseen and the count proves nothing).
expect_within() {
  local what=$1 ms=$2 n=$3
  [ "$ms" -le $((n * RTT + SLACK)) ] || fail "$what: first response after $ms ms, more than $n RTT + $SLACK ms"
  [ "$ms" -gt $(((n - 1) * RTT)) ] || fail "$what: first response after $ms ms, less than $((n - 1)) RTT: the path does not delay"
  pass "$what: first response after $ms ms ($n RTT = $((n * RTT)) ms)"
}

# expect_at_least WHAT MS ROUND_TRIPS
expect_at_least() {
  [ "$2" -ge $(($3 * RTT)) ] || fail "$1: first response after $2 ms, less than $3 RTT"
  pass "$1: first response after $2 ms (at least $3 RTT)"
}

# ours NAME PORT ARGS...: one coaps get through the path, which must answer.
ours() {
  local name=$1 port=$2
  shift 2
  "$BUILD/coaps" get "coaps://127.0.0.1:$port/temp" "$@" >"$work/$name.out" 2>"$work/$name.err" ||
    fail "$name: coaps get failed: $(cat "$work/$name.err")"
}

PSK=(--psk-identity me --psk secret)

# ---- PSK, the default policy ----
start_coaps_serve_dtls "$work/serve.default.log" "${PSK[@]}"
start_path "$DTLS_PORT" default
ours fresh "$PATH_PORT" "${PSK[@]}" --session "$work/psk.session"
expect_within "PSK fresh, --cookie when-needed (default)" "$(first_response_ms 0)" 3
ours resumed "$PATH_PORT" "${PSK[@]}" --session "$work/psk.session" -v
grep -q "(resumed)" "$work/resumed.err" || fail "the second PSK run did not resume: $(cat "$work/resumed.err")"
expect_within "PSK resumed, --cookie when-needed (default)" "$(first_response_ms 1)" 2
coap-client-gnutls -B 10 -u me -k secret "coaps://127.0.0.1:$PATH_PORT/temp" >"$work/libcoap.out" 2>&1 ||
  fail "coap-client-gnutls failed: $(cat "$work/libcoap.out")"
grep -qE "^-?[0-9.]+ C$" "$work/libcoap.out" || fail "coap-client-gnutls: unexpected answer '$(cat "$work/libcoap.out")'"
expect_within "coap-client-gnutls PSK, --cookie when-needed (default)" "$(first_response_ms 2)" 3

# ---- PSK, --cookie always: the control ----
start_coaps_serve_dtls "$work/serve.always.log" "${PSK[@]}" --cookie always
start_path "$DTLS_PORT" always
ours always-fresh "$PATH_PORT" "${PSK[@]}" --session "$work/always.session"
expect_within "PSK fresh, --cookie always" "$(first_response_ms 0)" 4
ours always-resumed "$PATH_PORT" "${PSK[@]}" --session "$work/always.session"
expect_within "PSK resumed, --cookie always" "$(first_response_ms 1)" 3

# ---- X.509, the default policy: a fresh handshake keeps its cookie ----
start_coaps_serve_dtls "$work/serve.x509.log" --cert "$K/server-cert.pem" --key "$K/server-key.pem"
start_path "$DTLS_PORT" x509
CERT=(--cacert "$K/ca-cert.pem" --session "$work/x509.session")
"$BUILD/coaps" get "coaps://localhost:$PATH_PORT/temp" "${CERT[@]}" >"$work/x509.out" 2>"$work/x509.err" ||
  fail "X.509 fresh: $(cat "$work/x509.err")"
expect_at_least "X.509 fresh keeps its cookie" "$(first_response_ms 0)" 4
"$BUILD/coaps" get "coaps://localhost:$PATH_PORT/temp" "${CERT[@]}" -v >"$work/x509r.out" 2>"$work/x509r.err" ||
  fail "X.509 resumed: $(cat "$work/x509r.err")"
grep -q "(resumed)" "$work/x509r.err" || fail "the second X.509 run did not resume: $(cat "$work/x509r.err")"
expect_within "X.509 resumed, --cookie when-needed (default)" "$(first_response_ms 1)" 2
