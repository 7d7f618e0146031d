#!/usr/bin/env bash
# Side-by-side benchmark: our server ('coaps serve') against libcoap's
# coap-server-notls, -gnutls and -openssl, each started fresh and pinned to
# CPU 0, driven by coaps-bench pinned to CPU 1. Prints one table with the
# ratio ours/libcoap per figure (see bench/README.md for what each means),
# then each server's CPU per handshake against GnuTLS's in-process limit.
#
# usage: bench/compare.sh [--quick] [--idle-only] [--sessions-idle N[,M]]
#                         [--duration S] [--build-dir DIR]
# N idle sessions (10000) on every server; M (100000) on ours only, held
# with coaps-bench --source-addresses. --idle-only: only the figures with
# idle sessions (memory, GET req/s with 100 / N / M idle). Exits non-zero
# when a step cannot run (a server does not start, a run produces no
# result); a slow figure is not a failure. OURS_SERVE_ARGS (words) go to
# our server's command line: OURS_SERVE_ARGS=--no-cid measures it without
# Connection ID, OURS_SERVE_ARGS='--cookie always' with every cookie.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$SRC/build-release
QUICK=0
IDLE_ONLY=0
IDLE=
IDLE_HUGE=
DURATION=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --idle-only) IDLE_ONLY=1 ;;
    --sessions-idle)
      IDLE=${2:?--sessions-idle wants N or N,M}; shift
      if [[ $IDLE == *,* ]]; then IDLE_HUGE=${IDLE#*,} IDLE=${IDLE%%,*}; else IDLE_HUGE=-; fi
      [[ $IDLE =~ ^[1-9][0-9]*$ && $IDLE_HUGE =~ ^([1-9][0-9]*|-)$ ]] ||
        { echo "compare.sh: --sessions-idle wants N or N,M (numbers)" >&2; exit 64; } ;;
    --duration) DURATION=${2:?--duration wants seconds}; shift ;;
    --build-dir) BUILD=${2:?--build-dir wants a directory}; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option '$1'" >&2; exit 64 ;;
  esac
  shift
done

if [ "$QUICK" = 1 ]; then
  : "${DURATION:=0.5}" "${IDLE:=200}" "${IDLE_HUGE:=300}"
  HANDSHAKES=200 CERT_HANDSHAKES=40 IDLE_SMALL=10 INPROCESS=50 OPEN_CAP=10
else
  : "${DURATION:=10}" "${IDLE:=10000}" "${IDLE_HUGE:=100000}"
  HANDSHAKES=5000 CERT_HANDSHAKES=1000 IDLE_SMALL=100 INPROCESS=1000 OPEN_CAP=30
fi

. "$SRC/bench/lib.bash" # fail, note, configure_build, the libcoap and port helpers

# ---- build and prerequisites ----

# An existing build directory keeps its own configuration (and source).
configure_build "$SRC"
cmake --build "$BUILD" -j"$(nproc)" --target coaps coaps-bench handshake-cost >/dev/null ||
  fail "build"
COAPS=$BUILD/coaps
BENCH=$BUILD/coaps-bench
HANDSHAKE_COST=$BUILD/handshake-cost

need_libcoap_bin coap-server-gnutls coap-server-openssl coap-server-notls
# Server on CPU 0, load on CPU 1: neither steals the other's core.
pin_cpus

work=$(mktemp -d)
SERVER_PID=
HOLD_PID=
cleanup() {
  for p in $HOLD_PID $SERVER_PID; do kill "$p" 2>/dev/null || true; done
  for p in $HOLD_PID $SERVER_PID; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$COAPS" keygen --out "$work/creds" >/dev/null || fail "coaps keygen"
K=$work/creds
PSK_ID=bench
PSK=coaps-bench-secret
PSK_ARGS=(--psk-identity "$PSK_ID" --psk "$PSK")
CERT_ARGS=(--cacert "$K/ca-cert.pem")

# ---- servers ----

# start_server KIND: KIND is ours, notls, gnutls or openssl. Sets SERVER_PID,
# PLAIN_PORT and DTLS_PORT (empty for notls). PSK and certificates are
# served together by both (ours on one worker: one CPU, like libcoap), clients' certificates are not asked for.
OURS_MAX_PEERS=1000000 # its default, 100000, would not leave room for the 50 measured
start_server() {
  local kind=$1 log=$work/server-$1.log
  if [ "$kind" = ours ]; then
    "${PIN_SERVER[@]}" "$COAPS" serve --workers 1 --address 127.0.0.1 --port 0 --dtls-port 0 \
      --max-peers "$OURS_MAX_PEERS" ${OURS_SERVE_ARGS:-} "${PSK_ARGS[@]}" --cert "$K/server-cert.pem" --key "$K/server-key.pem" >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
      PLAIN_PORT=$(grep -m1 -oE 'listening on coap://[^ ]*:[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
      DTLS_PORT=$(grep -m1 -oE 'listening on coaps://[^ ]*:[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
      [ -n "$PLAIN_PORT" ] && [ -n "$DTLS_PORT" ] && return 0
      sleep 0.05
    done
    cat "$log" >&2
    fail "coaps serve did not start"
  fi
  PLAIN_PORT=$(free_port_pair)
  DTLS_PORT=$((PLAIN_PORT + 1)) # libcoap serves coaps:// on the next port
  local args=(-A 127.0.0.1 -p "$PLAIN_PORT")
  [ "$kind" = notls ] ||
    args+=(-k "$PSK" -c "$K/server-cert.pem" -j "$K/server-key.pem" -n)
  "${PIN_SERVER[@]}" "coap-server-$kind" "${args[@]}" >"$log" 2>&1 &
  SERVER_PID=$!
  wait_port "$PLAIN_PORT" || { cat "$log" >&2; fail "coap-server-$kind did not start"; }
  if [ "$kind" = notls ]; then DTLS_PORT=; else
    wait_port "$DTLS_PORT" || fail "coap-server-$kind did not listen for coaps://"
  fi
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# CPU time (user + system) of a process, all its threads, in ns: the
# scheduler's run time from /proc/PID/task/*/schedstat, which is what
# utime + stime of /proc/PID/stat add up to, without their 10 ms ticks
# (a few hundred handshakes are a few ticks). Falls back to the ticks.
cpu_ns() {
  local ns
  ns=$(cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }')
  if [ "${ns:-0}" -gt 0 ]; then echo "$ns"; else
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1e9 / hz }' "/proc/$1/stat"
  fi
}
field() { grep -oE "\"$1\":[0-9.]+" <<<"$2" | head -1 | cut -d: -f2; }

# bench NAME FIGURE ARGS...: run coaps-bench against the running server and
# echo FIGURE from its JSON. Logs the server's CPU use next to the
# generator's, so a figure bounded by the generator can be told apart, and
# leaves the server's CPU µs per operation (request in steady mode,
# handshake in handshakes mode) in $work/cpu_per_op.
bench() {
  local name=$1 figure=$2; shift 2
  local t0 c0 out t1 c1 ops
  t0=$(date +%s.%N) c0=$(cpu_ns "$SERVER_PID")
  out=$("${PIN_LOAD[@]}" "$BENCH" --json "$@" 2>"$work/bench.err") || true
  t1=$(date +%s.%N) c1=$(cpu_ns "$SERVER_PID")
  local value errors
  value=$(field "$figure" "$out")
  [ -n "$value" ] || { cat "$work/bench.err" >&2; fail "$name: coaps-bench gave no result"; }
  errors=$(field errors "$out")
  if [ "$figure" = handshakes_per_s ]; then ops=$(field handshakes "$out"); else
    ops=$(field requests "$out"); fi
  awk -v n="$name" -v v="$value" -v f="$figure" -v e="$errors" -v c="$(field generator_cpu_s "$out")" \
    -v sc=$((c1 - c0)) -v t0="$t0" -v t1="$t1" -v ops="$ops" \
    'BEGIN { wall = t1 - t0; per = ops > 0 ? 1e6 / ops : 0;
             printf "  %-40s %12.1f %s  errors %s  CPU %%, µs/op: server %.0f%% %.2f, generator %.0f%% %.2f\n",
                    n, v, f, e, 100 * sc / 1e9 / wall, sc / 1e9 * per, 100 * c / wall, c * per }' >&2
  [ "$errors" = 0 ] || note "$name: $errors errors (figure kept, see above)"
  # The server's CPU time per measured request or handshake: unlike a rate
  # it does not depend on how busy the generator or the machine was.
  awk -v sc=$((c1 - c0)) -v n="$ops" \
    'BEGIN { if (n > 0) printf "%.2f", sc / 1e3 / n; else print "-" }' >"$work/cpu_per_op"
  echo "$value"
}

# hold_sessions N [shared]: N idle DTLS-PSK sessions held open by a second
# coaps-bench until stop_hold; waits until all are established. A socket
# per session as long as the file descriptor limit allows; beyond it, or
# with "shared", the sessions share SHARED_SOCKETS sockets and differ by
# source address (coaps-bench --source-addresses). Sets HELD, HOLD_S (the
# seconds establishing them took) and HOLD_RSS_KB (the generator's).
SHARED_SOCKETS=8
hold_sessions() {
  local n=$1 out=$work/hold.json share=()
  local fds
  fds=$(ulimit -Hn)
  if [ "${2:-}" = shared ] || { [ "$fds" != unlimited ] && [ $((n + 100)) -gt "$fds" ]; }; then
    share=(--source-addresses "$SHARED_SOCKETS")
  fi
  : >"$out"
  "${PIN_LOAD[@]}" "$BENCH" --json "coaps://127.0.0.1:$DTLS_PORT/time" "${PSK_ARGS[@]}" \
    --sessions "$n" --parallel 32 "${share[@]}" --hold 0 >"$out" 2>"$work/hold.err" &
  HOLD_PID=$!
  # 2 minutes, and a second more per 500 sessions (a few thousand a second
  # are established).
  for _ in $(seq $((1200 + n / 50))); do
    grep -q '"mode"' "$out" && break
    kill -0 "$HOLD_PID" 2>/dev/null || break
    sleep 0.1
  done
  local got
  got=$(field handshakes "$(cat "$out")")
  [ -n "$got" ] || { cat "$work/hold.err" >&2; fail "holding $n sessions: no result"; }
  [ "$got" = "$n" ] || note "holding $n sessions: only $got established"
  HELD=$got
  HOLD_S=$(field seconds "$(cat "$out")")
  HOLD_RSS_KB=$(field generator_rss_kb "$(cat "$out")")
  echo "  holding $got sessions${share:+ (${share[1]} shared sockets, one source address each)}:" \
    "established in $HOLD_S s, generator RSS $HOLD_RSS_KB kB" >&2
}

stop_hold() {
  kill "$HOLD_PID" 2>/dev/null || true
  wait "$HOLD_PID" 2>/dev/null || true
  HOLD_PID=
}

declare -A R

# per_second US: the rate one core would reach at US µs of CPU each.
per_second() { awk -v us="$1" 'BEGIN { if (us > 0) printf "%.0f", 1e6 / us; else print "-" }'; }

plain_uri() { echo "coap://127.0.0.1:$PLAIN_PORT/time"; }
dtls_uri() { echo "coaps://127.0.0.1:$DTLS_PORT/time"; }

measure_plain() {
  local kind=$1
  start_server "$kind"
  R[plain,$kind]=$(bench "$kind plain GET 50x4" requests_per_s "$(plain_uri)" \
    --sessions 50 --window 4 --duration "$DURATION")
  R[plaincpu,$kind]=$(cat "$work/cpu_per_op")
  stop_server
}

# The DTLS figures of one server, each on a fresh process.
measure_dtls() {
  local kind=$1
  start_server "$kind"
  R[psk,$kind]=$(bench "$kind DTLS-PSK GET 50x4" requests_per_s "$(dtls_uri)" "${PSK_ARGS[@]}" \
    --sessions 50 --window 4 --duration "$DURATION")
  R[pskcpu,$kind]=$(cat "$work/cpu_per_op")
  stop_server
  measure_handshakes "$kind" pskhs "PSK handshakes (16 in flight)" "$HANDSHAKES" "${PSK_ARGS[@]}"
  # The same, but the clients vanish without close_notify (devices that
  # lose power), so their sessions pile up on the server: a server whose
  # cost per datagram grows with its sessions slows down as the run goes.
  # Capped at OPEN_CAP seconds.
  measure_handshakes "$kind" pskhsopen "PSK handshakes, left open" "$HANDSHAKES" "${PSK_ARGS[@]}" \
    --leave-open --duration "$OPEN_CAP"
  measure_handshakes "$kind" cerths "ECDHE-ECDSA handshakes (16)" "$CERT_HANDSHAKES" \
    "${CERT_ARGS[@]}"
}

# measure_handshakes KIND KEY NAME COUNT CREDENTIALS...: COUNT fresh
# sessions, 16 in flight, on a fresh server; R[KEY], R[KEYcpu] (server CPU
# per handshake) and R[KEYbound] (the rate that CPU allows).
measure_handshakes() {
  local kind=$1 key=$2 name=$3 count=$4
  shift 4
  start_server "$kind"
  R[$key,$kind]=$(bench "$kind $name" handshakes_per_s "$(dtls_uri)" "$@" \
    --handshakes "$count" --parallel 16 --source-addresses 8)
  R[${key}cpu,$kind]=$(cat "$work/cpu_per_op")
  R[${key}bound,$kind]=$(per_second "${R[${key}cpu,$kind]}")
  stop_server
}

# The figures of one server with idle sessions present.
measure_idle() {
  local kind=$1
  start_server "$kind"
  hold_sessions "$IDLE_SMALL"
  R[idle_small,$kind]=$(bench "$kind DTLS GET, $IDLE_SMALL idle" requests_per_s "$(dtls_uri)" \
    "${PSK_ARGS[@]}" --sessions 50 --window 4 --duration "$DURATION")
  stop_hold
  stop_server

  held_figures "$kind" "$IDLE" mem idle_big
}

# held_figures KIND N MEMKEY RATEKEY [shared]: on a fresh server, what N
# held idle sessions cost it in resident bytes each (R[MEMKEY]) and the
# DTLS GET rate beside them (R[RATEKEY]); HELD, HOLD_S and HOLD_RSS_KB as
# hold_sessions leaves them.
held_figures() {
  local kind=$1 n=$2 memkey=$3 ratekey=$4 share=${5:-}
  start_server "$kind"
  sleep 0.2
  local before after
  before=$(rss_kb "$SERVER_PID")
  hold_sessions "$n" $share
  sleep 0.5 # let the last sessions settle
  after=$(rss_kb "$SERVER_PID")
  R[$memkey,$kind]=$(awk -v a="$after" -v b="$before" -v n="$HELD" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }')
  echo "  $kind: VmRSS $before kB -> $after kB with $HELD sessions" >&2
  R[$ratekey,$kind]=$(bench "$kind DTLS GET, $HELD idle" requests_per_s "$(dtls_uri)" \
    "${PSK_ARGS[@]}" --sessions 50 --window 4 --duration "$DURATION")
  stop_hold
  stop_server
}

# Our server with IDLE_HUGE idle sessions (libcoap's are not measured:
# establishing them would take over half an hour each, see
# bench/README.md). They share
# SHARED_SOCKETS sockets of the holding coaps-bench, one source address
# each: the file descriptor limit (20000 here) does not allow a socket per
# session. Our server is started with --max-peers OURS_MAX_PEERS, room for
# them and the 50 measured sessions.
measure_huge() {
  local kind=ours n=$IDLE_HUGE limit=$((OURS_MAX_PEERS - 50))
  if [ "$n" -gt "$limit" ]; then
    note "holding $limit idle sessions, not $n: with the 50 measured ones that is" \
         "the server's peer limit ($OURS_MAX_PEERS)"
    n=$limit
  fi
  held_figures "$kind" "$n" memhuge idle_huge shared
  HUGE_HELD=$HELD HUGE_S=$HOLD_S HUGE_GEN_KB=$HOLD_RSS_KB
}

echo "coaps-bench: ${DURATION}s runs, $HANDSHAKES PSK / $CERT_HANDSHAKES certificate handshakes," \
     "$IDLE$([ "$IDLE_HUGE" = - ] || echo " and $IDLE_HUGE (ours)") idle sessions$([ "$QUICK" = 1 ] && echo ' (--quick)')" >&2

if [ "$IDLE_ONLY" = 0 ]; then
  # The crypto ceiling: GnuTLS alone, client and server in one process, no
  # sockets (bench/handshake_cost.c), pinned like the servers.
  hc=$("${PIN_SERVER[@]}" "$HANDSHAKE_COST" --count "$INPROCESS" --json) || fail "handshake-cost"
  LIMIT_PSK_US=$(grep -oE '"psk":\{"server_us":[0-9.]+' <<<"$hc" | grep -oE '[0-9.]+$')
  LIMIT_ECDHE_US=$(grep -oE '"ecdhe_ecdsa":\{"server_us":[0-9.]+' <<<"$hc" | grep -oE '[0-9.]+$')
  [ -n "$LIMIT_PSK_US" ] && [ -n "$LIMIT_ECDHE_US" ] || fail "handshake-cost gave no result: $hc"
  echo "  GnuTLS alone, server CPU per handshake: PSK $LIMIT_PSK_US µs," \
       "ECDHE-ECDSA $LIMIT_ECDHE_US µs" >&2
  for kind in ours notls gnutls openssl; do measure_plain "$kind"; done
  for kind in ours gnutls openssl; do measure_dtls "$kind"; done
fi
for kind in ours gnutls openssl; do measure_idle "$kind"; done
[ "$IDLE_HUGE" = - ] || measure_huge

# ---- the table ----

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
row() {
  local label=$1 key=$2 line kind v
  line=$(printf "%-42s %10s" "$label" "${R[$key,ours]}")
  for kind in notls gnutls openssl; do
    v=${R[$key,$kind]:-}
    if [ -n "$v" ]; then line+=$(printf " %10s %6s" "$v" "$(ratio "${R[$key,ours]}" "$v")")
    else line+=$(printf " %10s %6s" - -); fi
  done
  echo "$line"
}
echo
printf "%-42s %10s %10s %6s %10s %6s %10s %6s\n" figure ours notls ratio gnutls ratio openssl ratio
if [ "$IDLE_ONLY" = 0 ]; then
  row "plain GET req/s, 50x4" plain
  row "DTLS-PSK GET req/s, 50x4" psk
  row "server CPU µs per plain GET" plaincpu
  row "server CPU µs per DTLS-PSK GET" pskcpu
  row "PSK handshakes/s, 16 in flight" pskhs
  row "server CPU µs per PSK handshake" pskhscpu
  row "server-bound PSK handshakes/s (1 / CPU)" pskhsbound
  row "PSK handshakes/s, sessions left open" pskhsopen
  row "server CPU µs per PSK handshake, left open" pskhsopencpu
  row "ECDHE-ECDSA handshakes/s, 16 in flight" cerths
  row "server CPU µs per ECDHE-ECDSA handshake" certhscpu
  row "server-bound ECDHE-ECDSA handshakes/s" certhsbound
fi
row "server bytes per DTLS session ($IDLE held)" mem
row "DTLS GET req/s, $IDLE_SMALL idle sessions" idle_small
row "DTLS GET req/s, $IDLE idle sessions" idle_big
if [ "$IDLE_HUGE" != - ]; then
  row "server bytes per DTLS session ($HUGE_HELD held)" memhuge
  row "DTLS GET req/s, $HUGE_HELD idle sessions" idle_huge
fi
echo "(libcoap 4.3.1 servers; ratio = ours / libcoap: higher is better for"
echo " rates, lower for bytes and CPU per request or handshake)"
if [ "$IDLE_HUGE" != - ]; then
  awk -v n="$HUGE_HELD" -v s="$HUGE_S" -v kb="$HUGE_GEN_KB" -v k="$SHARED_SOCKETS" \
    'BEGIN { printf "(%d idle sessions on ours only, over %d sockets of the generator, one source\n" \
                    " address each: established in %.2f s; generator RSS %.0f MB, %.1f KB per session;\n" \
                    " libcoap not measured there, see bench/README.md)\n", n, k, s, kb / 1024, kb / n }'
fi
[ "$IDLE_ONLY" = 0 ] || exit 0
# How close each server's own cost comes to the crypto: the in-process
# GnuTLS limit over the server's CPU per handshake on the sockets.
of_limit() { awk -v l="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f %%", 100 * l / s; else print "-" }'; }
echo
printf "%-42s %10s %10s %10s %10s\n" "GnuTLS alone, in process (1 core)" limit ours gnutls openssl
for hs in psk:pskhscpu:"$LIMIT_PSK_US" ecdhe:certhscpu:"$LIMIT_ECDHE_US"; do
  IFS=: read -r label key us <<<"$hs"
  printf "%-42s %10s %10s %10s %10s\n" "$([ "$label" = psk ] && echo PSK || echo ECDHE-ECDSA) handshakes/s, % of it" \
    "$(per_second "$us")" "$(of_limit "$us" "${R[$key,ours]}")" \
    "$(of_limit "$us" "${R[$key,gnutls]}")" "$(of_limit "$us" "${R[$key,openssl]}")"
done
