#!/usr/bin/env bash
# Smoke test of the load generator (CTest bench_smoke): about a second each
# of plain GET, DTLS-PSK GET (with and without UDP_GRO) and fresh PSK
# handshakes against 'coaps serve', holding sessions (a socket each, and
# 300 sessions sharing 2 sockets by source address: --source-addresses),
# fresh sessions left open (--leave-open, no close_notify), then plain
# and DTLS-PSK GET against 'coaps serve --workers 2'; each run must
# complete requests and report no errors.
# usage: bench/smoke.sh BUILD_DIR
set -euo pipefail
BUILD=${1:?usage: smoke.sh BUILD_DIR}
. "$(dirname "$0")/lib.bash"
bench_work_dir

# run NAME FIGURE ARGS...: run coaps-bench --json, check FIGURE > 0 and errors == 0.
run() {
  local name=$1 figure=$2; shift 2
  local out
  out=$(timeout 30 "$BUILD/coaps-bench" --json "$@") || fail "$name: coaps-bench failed: $out"
  local value errors
  value=$(field "$figure" "$out")
  errors=$(field errors "$out")
  [ -n "$value" ] && awk -v v="$value" 'BEGIN { exit !(v > 0) }' ||
    fail "$name: $figure is not positive: $out"
  [ "$errors" = 0 ] || fail "$name: $errors errors: $out"
  echo "ok: $name: $figure $value"
  last=$out
}

# expect NAME FIELD VALUE: FIELD of the last run's report is VALUE.
expect() {
  [ "$(field "$2" "$last")" = "$3" ] || fail "$1: $2 is not $3: $last"
}

psk=(--psk-identity smoke --psk smoke-secret)
start_server "${psk[@]}"
run "plain GET" requests_per_s "coap://127.0.0.1:$port/time" --sessions 8 --window 4 --duration 1
run "DTLS-PSK GET" requests_per_s "coaps://127.0.0.1:$dport/time" --sessions 8 --window 4 \
  --duration 1 "${psk[@]}"
run "DTLS-PSK GET, --no-gro" requests_per_s "coaps://127.0.0.1:$dport/time" --sessions 8 \
  --window 4 --duration 0.5 --no-gro "${psk[@]}"
run "PSK handshakes" handshakes_per_s "coaps://127.0.0.1:$dport/time" --handshakes 100 \
  --parallel 8 "${psk[@]}"
run "PSK handshakes, --source-addresses 4" handshakes_per_s "coaps://127.0.0.1:$dport/time" \
  --handshakes 100 --parallel 8 --source-addresses 4 "${psk[@]}"
expect "fresh sessions on shared sockets" handshakes 100
expect "fresh sessions on shared sockets" shared_sockets 4
expect "fresh sessions on shared sockets" source_addresses 100
run "hold" handshakes_per_s "coaps://127.0.0.1:$dport/time" --sessions 20 --hold 0.2 "${psk[@]}"
# 300 sessions on 2 sockets, one source address each (127.1.0.0 on): each
# must reach the server as a session of its own and be answered.
run "hold, --source-addresses" handshakes_per_s "coaps://127.0.0.1:$dport/time" --sessions 300 \
  --parallel 32 --source-addresses 2 --hold 0.2 "${psk[@]}"
expect "hold, --source-addresses" handshakes 300
expect "hold, --source-addresses" shared_sockets 2
expect "hold, --source-addresses" source_addresses 300
run "DTLS-PSK GET, --source-addresses" requests_per_s "coaps://127.0.0.1:$dport/time" \
  --sessions 8 --window 4 --duration 0.5 --source-addresses 2 "${psk[@]}"
expect "DTLS-PSK GET, --source-addresses" handshakes 8
stop_server

# --leave-open: the sessions end without close_notify, so the server (-v
# logs each close_notify it gets) hears of the first run's 20 closing and
# of none of the second's; --duration caps a run of far more handshakes.
start_server -v "${psk[@]}"
run "PSK handshakes, closed" handshakes_per_s "coaps://127.0.0.1:$dport/time" --handshakes 20 \
  --parallel 4 --source-addresses 2 "${psk[@]}"
expect "PSK handshakes, closed" close_notify 1
run "PSK handshakes, --leave-open" handshakes_per_s "coaps://127.0.0.1:$dport/time" \
  --handshakes 20 --parallel 4 --source-addresses 2 --leave-open "${psk[@]}"
expect "PSK handshakes, --leave-open" close_notify 0
expect "PSK handshakes, --leave-open" handshakes 20
sleep 0.2
closed=$(grep -c "DTLS session closed by the peer" "$work/serve.log" || true)
[ "$closed" = 20 ] || fail "--leave-open: the server saw $closed close_notify, not 20"
echo "ok: --leave-open: the server saw 20 close_notify, from the first run only"
run "PSK handshakes, --duration cap" handshakes_per_s "coaps://127.0.0.1:$dport/time" \
  --handshakes 100000000 --parallel 4 --source-addresses 2 --leave-open --duration 0.3 "${psk[@]}"
awk -v s="$(field seconds "$last")" 'BEGIN { exit !(s >= 0.3 && s < 2) }' ||
  fail "--duration 0.3 with --handshakes: the run took $(field seconds "$last") s"
stop_server

start_server --workers 2 "${psk[@]}"
run "plain GET, 2 workers" requests_per_s "coap://127.0.0.1:$port/time" --sessions 8 --window 4 \
  --duration 0.5
run "DTLS-PSK GET, 2 workers" requests_per_s "coaps://127.0.0.1:$dport/time" --sessions 8 \
  --window 4 --duration 0.5 "${psk[@]}"
