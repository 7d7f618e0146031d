#!/usr/bin/env bash
# The metrics listener under bad input: a port already in use, HTTP
# garbage, connections held open (bounded in number, closed after 10 s
# idle, the CoAP side unaffected), and scrapes during a handshake flood.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need promtool "the prometheus package"
need curl
work=$(mktemp -d)
coaps() { "$BUILD/coaps" "$@"; }

start_coaps_serve_dtls "$work/serve.log" -w 2 --psk-identity me --psk secret --metrics 0
M=$(grep -m1 -oE 'metrics on http://127\.0\.0\.1:[0-9]+' "$work/serve.log" | grep -oE 'http://.*')
MPORT=${M##*:}
url="coaps://127.0.0.1:$DTLS_PORT"
# Each within 5 s (curl --max-time): the tests run side by side, so no
# tighter absolute figure is judged.
scrape() { curl -sf --max-time 5 "$M/metrics" -o "$work/metrics"; }

# A metrics port in use: a configuration error (exit 7), said plainly,
# and nothing left running.
set +e
"$BUILD/coaps" serve --port 0 --dtls-port 0 --psk-identity me --psk secret \
  --metrics "$MPORT" >"$work/second.out" 2>"$work/second.err"
RC=$?
set -e
expect_eq "a metrics port in use exits 7" 7 "$RC"
expect_contains "a metrics port in use is named" \
  "coaps: cannot listen for --metrics on 127.0.0.1:$MPORT: Address already in use" \
  "$(cat "$work/second.err")"
expect_not_contains "no listening line before it failed" "listening on" "$(cat "$work/second.out")"

# Garbage: a request line that is not HTTP, and a flood of binary bytes.
exec 3<>"/dev/tcp/127.0.0.1/$MPORT"
printf 'THIS IS NOT HTTP\r\n\r\n' >&3
answer=$(timeout 5 head -c 200 <&3 || true)
exec 3>&-
expect_contains "a garbage request line gets 400" "HTTP/1.1 400" "$answer"
head -c 200000 /dev/urandom | timeout 5 bash -c "cat >/dev/tcp/127.0.0.1/$MPORT" 2>/dev/null || true
scrape || fail "no scrape after the garbage"
promtool check metrics <"$work/metrics" >/dev/null 2>&1 || fail "promtool after the garbage"
pass "still serving after binary garbage"

# Connections held open: at most 16 per address are kept (32 in all)...
fds_before=$(ls "/proc/$SERVE_PID/fd" | wc -l)
held=()
for _ in $(seq 40); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$MPORT"
  held+=("$fd")
done
sleep 0.5
fds_held=$(ls "/proc/$SERVE_PID/fd" | wc -l)
[ $((fds_held - fds_before)) -le 16 ] ||
  fail "40 idle connections made the server hold $((fds_held - fds_before)) more descriptors"
pass "40 idle connections: the server holds $((fds_held - fds_before)) of them"
# ... the CoAP side does not notice ...
start=$(date +%s%N)
coaps get "$url/temp" --psk-identity me --psk secret --timeout 5 >/dev/null ||
  fail "no answer to a GET within its 5 s while connections are held"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
pass "coaps:// GET answered (in $ms ms) while the HTTP side is full"
# ... and after 10 s of silence they are closed and scrapes work again.
sleep 11
scrape || fail "no scrape after the idle connections timed out"
pass "idle connections closed after the timeout: scraping works again"
for fd in "${held[@]}"; do exec {fd}>&-; done

# A scrape during a handshake flood: wrong keys from 4 clients at once.
per_client=150
flood() {
  for _ in $(seq $per_client); do
    "$BUILD/coaps" get "$url/temp" --psk-identity me --psk wrong >/dev/null 2>&1 || true
  done
}
before=$(grep -E '^coaps_failures_total\{cause="psk-key-mismatch"\} ' "$work/metrics" | awk '{print $2}')
pids=()
for _ in 1 2 3 4; do flood & pids+=($!); done
scrapes=0 slowest=0
any_alive() { for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while any_alive "${pids[@]}"; do
  t0=$(date +%s%N)
  scrape || fail "a scrape during the flood failed (or took over 5 s)"
  t=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ "$t" -le "$slowest" ] || slowest=$t
  promtool check metrics <"$work/metrics" >/dev/null 2>&1 || fail "promtool during the flood"
  scrapes=$((scrapes + 1))
  sleep 0.1
done
for p in "${pids[@]}"; do wait "$p"; done
[ "$scrapes" -ge 3 ] || fail "only $scrapes scrapes during the flood"
pass "$scrapes scrapes during the flood, each valid (the slowest took $slowest ms)"
coaps get "$url/temp" --psk-identity me --psk secret >/dev/null || fail "GET after the flood"
for _ in $(seq 30); do
  scrape
  after=$(grep -E '^coaps_failures_total\{cause="psk-key-mismatch"\} ' "$work/metrics" | awk '{print $2}')
  [ "$after" -eq $((before + 4 * per_client)) ] && break
  sleep 0.1
done
expect_eq "every failed handshake of the flood counted" $((before + 4 * per_client)) "$after"
kill -0 "$SERVE_PID" || fail "the server died"
pass "the server is still running"
kill "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
expect_not_contains "no sanitizer report from the server" "Sanitizer" "$(cat "$work/serve.log")"
expect_not_contains "no undefined behaviour in the server" "runtime error" "$(cat "$work/serve.log")"
