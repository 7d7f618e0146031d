#!/usr/bin/env bash
# No allocation per request once warmed up (DESIGN.md, "Performance
# principles"), on both sides: 'coaps serve' and coaps-bench (our client
# library) run with the alloc_count module preloaded, once for N and once
# for 10 N requests, each against a fresh server, over coap:// and over
# coaps:// (PSK, sessions on exported keys), the latter with the Connection
# ID on (the default: records in the tls12_cid format) and with --no-cid
# (plain records). The two runs set up the same
# sessions, so their allocation counts must be the same within a small
# slack; one allocation per request would add 9 N.
# usage: bench/hot_path_allocs.sh BUILD_DIR
set -euo pipefail
BUILD=${1:?usage: hot_path_allocs.sh BUILD_DIR}
PRELOAD=$BUILD/alloc_count.so
N=5000
SLACK=100
. "$(dirname "$0")/lib.bash"
bench_work_dir
[ -f "$PRELOAD" ] || fail "$PRELOAD is missing (not built under the sanitizers)"

total() { awk '{ print $1 + $2 + $3 }' "$1"; }

# run VARIANT REQUESTS TAG: a fresh counted server, a counted coaps-bench of
# REQUESTS requests; leaves $work/TAG.server and $work/TAG.client. VARIANT
# is coap, coaps or coaps-nocid (a server that grants no Connection ID).
run() {
  local scheme=${1%-nocid} requests=$2 tag=$3 out cid=()
  [ "$1" = coaps-nocid ] && cid=(--no-cid)
  SERVER_PREFIX=(env "ALLOC_COUNT_FILE=$work/$tag.server" "LD_PRELOAD=$PRELOAD")
  start_server --workers 1 --psk-identity alloc --psk alloc-secret "${cid[@]}"
  SERVER_PREFIX=()
  local p=$port
  [ "$scheme" = coap ] || p=$dport
  out=$(ALLOC_COUNT_FILE=$work/$tag.client LD_PRELOAD=$PRELOAD "$BUILD/coaps-bench" --json \
    "$scheme://127.0.0.1:$p/time" --psk-identity alloc --psk alloc-secret \
    --sessions 20 --window 4 --requests "$requests") || fail "$tag: coaps-bench failed: $out"
  [ "$(field requests "$out")" = "$requests" ] || fail "$tag: not all requests answered: $out"
  [ "$(field errors "$out")" = 0 ] || fail "$tag: errors: $out"
  stop_server INT # a normal exit: the module writes its counts
  [ -s "$work/$tag.server" ] && [ -s "$work/$tag.client" ] || fail "$tag: no counts written"
}

for scheme in coap coaps coaps-nocid; do
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
