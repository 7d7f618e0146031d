#!/usr/bin/env bash
# What --metrics costs the CoAP workers: the server's CPU time per
# DTLS-PSK GET (all its threads, the HTTP one included) without --metrics,
# and with --metrics and a scraper fetching /metrics every 100 ms. Server
# (one worker) on CPU 0, coaps-bench on CPU 1; ROUNDS alternating rounds
# of each, the median of each compared. The issue's bound: within 2 %.
# usage: bench/metrics_overhead.sh [BUILD_DIR] [--quick]
#   BUILD_DIR defaults to build-bench (configured Release if new);
#   --quick: 2 rounds of 1 s (a smoke run, the bound is not checked).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$src/build-bench}
quick=0
[ "${2:-}" = --quick ] && quick=1
. "$(dirname "$0")/lib.bash"
configure_build "$src"
cmake --build "$BUILD" -j2 --target coaps coaps-bench >/dev/null || fail "build"
command -v curl >/dev/null || fail "curl is not installed (scripts/deps.sh)"
[[ "$("$BUILD/coaps" serve --help)" == *--metrics* ]] || fail "coaps serve has no --metrics"
bench_work_dir
pin_cpus
rounds=5 seconds=5
[ "$quick" = 1 ] && rounds=2 seconds=1

# Run time of all the threads of a process, ns (as compare.sh counts it).
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

# one_run WITH_METRICS: server CPU ns per GET, on stdout.
one_run() {
  local args=(-w 1 --psk-identity me --psk secret) mport scraper=
  [ "$1" = 1 ] && args+=(--metrics 0)
  SERVER_PREFIX=("${PIN_SERVER[@]}")
  start_server "${args[@]}"
  if [ "$1" = 1 ]; then
    mport=$(grep -m1 -oE 'metrics on http://127\.0\.0\.1:[0-9]+' "$work/serve.log" | grep -oE '[0-9]+$')
    [ -n "$mport" ] || fail "no metrics line"
    (while :; do curl -sf "http://127.0.0.1:$mport/metrics" -o /dev/null || exit 1; sleep 0.1; done) &
    scraper=$!
  fi
  local c0 c1 out n
  c0=$(cpu_ns "$server_pid")
  out=$("${PIN_LOAD[@]}" "$BUILD/coaps-bench" --json "coaps://127.0.0.1:$dport/time" \
    --psk-identity me --psk secret --duration "$seconds") || fail "coaps-bench: $out"
  c1=$(cpu_ns "$server_pid")
  if [ -n "$scraper" ]; then
    kill -0 "$scraper" 2>/dev/null || fail "the scraper stopped (a scrape failed)"
    kill "$scraper"; wait "$scraper" 2>/dev/null || true
  fi
  stop_server
  n=$(field requests "$out")
  [ "${n:-0}" -gt 0 ] && [ "$(field errors "$out")" = 0 ] || fail "run with metrics=$1: $out"
  awk -v c=$((c1 - c0)) -v n="$n" 'BEGIN { printf "%.1f\n", c / n }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
without=() with=()
for r in $(seq "$rounds"); do
  without+=("$(one_run 0)")
  with+=("$(one_run 1)")
  note "round $r: server CPU ns per DTLS GET: without ${without[-1]}, with --metrics + scraper ${with[-1]}"
done
a=$(printf '%s\n' "${without[@]}" | median)
b=$(printf '%s\n' "${with[@]}" | median)
pct=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%+.2f", 100 * (b - a) / a }')
echo "server CPU ns per DTLS-PSK GET, median of $rounds: without --metrics $a, with --metrics and a scraper every 100 ms $b ($pct %)"
if [ "$quick" = 0 ]; then
  awk -v p="$pct" 'BEGIN { exit !(p <= 2) }' || fail "the scraped server costs $pct % more per GET (bound: 2 %)"
  echo "within 2 %: yes"
fi
