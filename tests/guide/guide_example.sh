#!/usr/bin/env bash
# The guide's "Right" example compiled unchanged against coap.h and run on
# the fixed ports 5683/5684 — inside a network namespace of its own, so it
# cannot collide with anything on the host — then reached over coap://,
# coaps:// with the guide's PSK and coaps:// with certificates. Also the
# guide's "Wrong" case: coaps:// with no credentials fails at once.
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# CMake built it from tests/guide/guide_server.c with -Wall -Wextra -Werror.
[ -x "$build/guide_server" ] || fail "the guide's example was not built"
cp "$build/guide_server" "$work/guide_server"

"$build/coaps" keygen --out "$work/creds" --host localhost >/dev/null
cp "$work/creds/server-cert.pem" "$work/creds/server-key.pem" "$work/creds/ca-cert.pem" "$work/"

# The "Wrong" example: a coaps:// request with nothing configured. "At
# once" is measured against the handshake timeout it would otherwise wait
# out (a third of it), not a small figure a sanitized run on a loaded
# machine can exceed.
start=$(date +%s%N)
set +e
msg=$("$build/coaps" get --handshake-timeout 20 coaps://127.0.0.1/temp 2>&1 >/dev/null)
rc=$?
set -e
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" -eq 7 ] || fail "coaps:// without credentials: exit $rc, expected 7, local configuration ($msg)"
[ "$elapsed_ms" -lt 6666 ] ||
  fail "coaps:// without credentials took ${elapsed_ms} ms of a 20 s handshake timeout: must fail at once"
grep -qi "psk" <<<"$msg" && grep -qi "ca" <<<"$msg" || fail "message does not say what to configure: $msg"

# The example's main returns without freeing its context (the OS takes it
# back), so leak checking is off for that one process: it would flag the
# example, not the library.
# Everything else runs in a private network namespace (user namespace too,
# so no root is needed): the fixed ports are ours alone there.
unshare -rn bash -euo pipefail -c '
  work=$1 build=$2
  ip link set lo up
  cd "$work"
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 ./guide_server & pid=$!
  trap "kill $pid 2>/dev/null; wait $pid 2>/dev/null || true" EXIT
  # Generous waits: each ends as soon as the server is there or answers.
  for i in $(seq 300); do
    ss -uln | grep -q ":5684 " && ss -uln | grep -q ":5683 " && break
    sleep 0.1
  done
  ss -uln | grep -q ":5683 " || { echo "FAIL: guide server not on 5683" >&2; exit 1; }
  ss -uln | grep -q ":5684 " || { echo "FAIL: guide server not on 5684" >&2; exit 1; }
  "$build/coaps" get -t 30 coap://127.0.0.1/.well-known/core >/dev/null \
    || { echo "FAIL: coap:// GET to the guide server" >&2; exit 1; }
  # The guide passes key length 9: the key is "secret_ke".
  "$build/coaps" get -t 30 --psk-identity client_id --psk secret_ke \
    coaps://127.0.0.1/.well-known/core >/dev/null \
    || { echo "FAIL: coaps:// PSK GET to the guide server" >&2; exit 1; }
  "$build/coaps" get -t 30 --cacert ca-cert.pem coaps://localhost/.well-known/core >/dev/null \
    || { echo "FAIL: coaps:// certificate GET to the guide server" >&2; exit 1; }
  kill -TERM $pid
  wait $pid || { echo "FAIL: guide server did not stop cleanly on SIGTERM" >&2; exit 1; }
  trap - EXIT
' _ "$work" "$build"
echo "guide example: compiled unchanged, served coap:// and coaps:// (PSK, X.509), wrong example fails at once"
