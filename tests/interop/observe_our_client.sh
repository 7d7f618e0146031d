#!/usr/bin/env bash
# Our client observing libcoap's servers (RFC 7641): coap-server-notls on
# coap://, coap-server-gnutls on coaps:// with PSK and with certificates.
# libcoap's example server notifies the observers of /time every second.
# `coaps get --observe --count N` prints N representations with
# increasing Observe numbers and exits 0; interrupted (SIGINT, SIGTERM)
# it deregisters before it exits: the server logs (-v 7) "removed
# subscription" for our GET with Observe=1.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-server-notls libcoap3-bin
need coap-server-gnutls libcoap3-bin
work=$(mktemp -d)
make_creds "$work/c"
K=$work/c
coaps() { "$BUILD/coaps" "$@"; }
N=4

# start_libcoap NAME ARGS...: a libcoap server on a free port (PORT),
# coaps:// on PORT+1 when it has DTLS; its log in $work/NAME.log.
start_libcoap() {
  local name=$1; shift
  PORT=$(pick_free_udp_port)
  "$@" -A 127.0.0.1 -p "$PORT" -v 7 >"$work/$name.log" 2>&1 &
  BG_PIDS+=($!)
  wait_udp_port "$PORT"
}

# removed_count LOG: subscriptions the server removed so far.
removed_count() { grep -c "removed subscription" "$1" || true; }

# expect_removed WHAT N LOG: the server removed N subscriptions in all,
# within 3 s.
expect_removed() {
  for _ in $(seq 60); do
    [ "$(removed_count "$3")" -ge "$2" ] && { pass "$1"; return 0; }
    sleep 0.05
  done
  fail "$1: the server removed $(removed_count "$3") subscriptions, expected $2"
}

# count_run NAME LOG URL ARGS...: --count N with --json: N lines, Observe
# numbers increasing, exit 0, deregistered.
count_run() {
  local name=$1 log=$2 url=$3; shift 3
  local before rc t0 ms
  before=$(removed_count "$log")
  t0=$(date +%s%N)
  set +e
  # --duration: a bound, should the notifications stop coming.
  coaps get --observe --count "$N" --duration 15 --json -t 10 "$url/time" "$@" \
    >"$work/out" 2>"$work/err"
  rc=$?
  set -e
  ms=$((($(date +%s%N) - t0) / 1000000))
  expect_eq "$name: --count $N exits 0 ($(cat "$work/err"))" 0 "$rc"
  expect_eq "$name: $N lines" "$N" "$(wc -l <"$work/out")"
  local prev=-1 obs line
  while read -r line; do
    [[ "$line" =~ \"code\":\"2\.05\" ]] || fail "$name: not a 2.05: $line"
    [[ "$line" =~ \"observe\":([0-9]+) ]] || fail "$name: no Observe number: $line"
    obs=${BASH_REMATCH[1]}
    [ "$obs" -gt "$prev" ] || fail "$name: Observe $obs after $prev: $(cat "$work/out")"
    prev=$obs
  done <"$work/out"
  pass "$name: Observe numbers increase"
  # N representations a second apart, the first at once: about N-1 s.
  [ "$ms" -lt $(((N + 3) * 1000)) ] || fail "$name: took $ms ms for $N representations"
  pass "$name: done in $ms ms"
  expect_removed "$name: deregistered at --count" $((before + 1)) "$log"
}

# interrupt_run NAME SIGNAL LOG URL ARGS...: observe without a limit,
# then the signal: exit 0 within 3 s, deregistered.
interrupt_run() {
  local name=$1 sig=$2 log=$3 url=$4; shift 4
  local before pid rc t0 ms
  before=$(removed_count "$log")
  # The binary itself, not the coaps function: $! must be its pid.
  "$BUILD/coaps" observe -t 10 "$url/time" "$@" >"$work/iout" 2>"$work/ierr" &
  pid=$!
  BG_PIDS+=("$pid")
  for _ in $(seq 100); do
    [ "$(wc -l <"$work/iout")" -ge 2 ] && break
    sleep 0.05
  done
  [ "$(wc -l <"$work/iout")" -ge 2 ] || fail "$name: fewer than 2 lines in 5 s: $(cat "$work/iout" "$work/ierr")"
  t0=$(date +%s%N)
  kill -"$sig" "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$pid" 2>/dev/null && fail "$name: still running 5 s after SIG$sig: $(cat "$work/ierr")"
  set +e
  wait "$pid"
  rc=$?
  set -e
  ms=$((($(date +%s%N) - t0) / 1000000))
  expect_eq "$name: exits 0 after SIG$sig ($(cat "$work/ierr"))" 0 "$rc"
  [ "$ms" -lt 3000 ] || fail "$name: took $ms ms to exit after SIG$sig"
  pass "$name: exited $ms ms after SIG$sig"
  expect_removed "$name: deregistered after SIG$sig" $((before + 1)) "$log"
}

start_libcoap notls coap-server-notls
url="coap://127.0.0.1:$PORT"
count_run "coap-server-notls" "$work/notls.log" "$url"
interrupt_run "coap-server-notls" INT "$work/notls.log" "$url"
# Text output: one line each, the time as libcoap's /time gives it.
out=$(coaps get --observe --count 2 --duration 15 -t 10 "$url/time")
expect_eq "two lines of text" 2 "$(wc -l <<<"$out")"
[ "$(grep -cvE '^[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8}$' <<<"$out")" = 0 ] ||
  fail "unexpected text lines: '$out'"
pass "text lines are /time's payload"

start_libcoap gnutls coap-server-gnutls -k s3cret -c "$K/server-cert.pem" \
  -j "$K/server-key.pem" -C "$K/ca-cert.pem" -n
wait_udp_port $((PORT + 1))
surl="coaps://127.0.0.1:$((PORT + 1))"
count_run "coap-server-gnutls PSK" "$work/gnutls.log" "$surl" --psk-identity anyone --psk s3cret
count_run "coap-server-gnutls certificate" "$work/gnutls.log" "$surl" --cacert "$K/ca-cert.pem"
interrupt_run "coap-server-gnutls PSK" TERM "$work/gnutls.log" "$surl" --psk-identity anyone --psk s3cret
