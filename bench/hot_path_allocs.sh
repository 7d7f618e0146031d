#!/usr/bin/env bash
# No allocation per request once warmed up (DESIGN.md, "Performance
# principles"), on both sides: 'coaps serve' and coaps-bench (our client
# library) run with the alloc_count module preloaded, once for N and once
# for 10 N requests, each against a fresh server, over coap:// and over
# coaps:// (PSK, sessions on exported keys). The two runs set up the same
# sessions, so their allocation counts must be the same within a small
# slack; one allocation per request would add 9 N.
# usage: bench/hot_path_allocs.sh BUILD_DIR
set -euo pipefail
BUILD=${1:?usage: hot_path_allocs.sh BUILD_DIR}
PRELOAD=$BUILD/alloc_count.so
N=5000
SLACK=100
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -f "$PRELOAD" ] || fail "$PRELOAD is missing (not built under the sanitizers)"

work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

field() { grep -oE "\"$1\":[0-9.]+" <<<"$2" | head -1 | cut -d: -f2; }
total() { awk '{ print $1 + $2 + $3 }' "$1"; }

# run SCHEME REQUESTS TAG: a fresh counted server, a counted coaps-bench of
# REQUESTS requests; leaves $work/TAG.server and $work/TAG.client.
run() {
  local scheme=$1 requests=$2 tag=$3 port out
  ALLOC_COUNT_FILE=$work/$tag.server LD_PRELOAD=$PRELOAD "$BUILD/coaps" serve --workers 1 \
    --address 127.0.0.1 --port 0 --dtls-port 0 --psk-identity alloc --psk alloc-secret \
    >"$work/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    port=$(grep -m1 -oE "listening on $scheme://[^ ]*:[0-9]+" "$work/serve.log" | grep -oE '[0-9]+$' || true)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { cat "$work/serve.log" >&2; fail "coaps serve did not start"; }
  out=$(ALLOC_COUNT_FILE=$work/$tag.client LD_PRELOAD=$PRELOAD "$BUILD/coaps-bench" --json \
    "$scheme://127.0.0.1:$port/time" --psk-identity alloc --psk alloc-secret \
    --sessions 20 --window 4 --requests "$requests") || fail "$tag: coaps-bench failed: $out"
  [ "$(field requests "$out")" = "$requests" ] || fail "$tag: not all requests answered: $out"
  [ "$(field errors "$out")" = 0 ] || fail "$tag: errors: $out"
  kill -INT "$server_pid"
  wait "$server_pid" || true
  server_pid=
  [ -s "$work/$tag.server" ] && [ -s "$work/$tag.client" ] || fail "$tag: no counts written"
}

for scheme in coap coaps; do
  run "$scheme" "$N" "$scheme-short"
  run "$scheme" $((10 * N)) "$scheme-long"
  for side in server client; do
    short=$(total "$work/$scheme-short.$side") long=$(total "$work/$scheme-long.$side")
    extra=$((long - short))
    echo "$scheme $side: $short allocations for $N requests, $long for $((10 * N))"
    [ "$extra" -le "$SLACK" ] && [ "$extra" -ge "-$SLACK" ] ||
      fail "$scheme $side: $extra more allocations for $((9 * N)) more requests"
  done
done
echo "ok: no allocation per request on either side"
