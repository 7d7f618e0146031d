# Shared helpers for the shell tests (sourced, not a test itself); $BUILD is
# the build directory.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# A real peer must be there: an interop test never skips quietly.
need() {
  command -v "$1" >/dev/null 2>&1 ||
    fail "$1 is not installed: run 'bash scripts/test.sh', which installs ${2:-it}"
}

declare -a BG_PIDS=()
cleanup_bg() {
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup_bg EXIT

# start_coaps_serve OUTFILE ARGS...: start our server on an ephemeral port
# and set SERVE_PORT from its "listening on coap://...:PORT" line.
start_coaps_serve() {
  local out=$1; shift
  : >"$out" # now: the background's own redirection may come after the first read
  "$BUILD/coaps" serve --port 0 "$@" >"$out" 2>&1 &
  BG_PIDS+=($!)
  for _ in $(seq 600); do
    SERVE_PORT=$(grep -m1 -oE 'listening on coap://.*:[0-9]+' "$out" | grep -oE '[0-9]+$' || true)
    [ -n "$SERVE_PORT" ] && return 0
    sleep 0.05
  done
  cat "$out" >&2
  fail "coaps serve did not print its listening line"
}

# A UDP port nobody on this host is bound to, random, and outside the
# kernel's ephemeral range (read now: ip_local_port_range), from which any
# process's port-0 bind or connect may take it between this probe and the
# caller's bind; below it only programs that name a port land. Below the
# range from 10000 (from 1024 if the range starts lower), else above it;
# never 5683/5684 (RFC 7252's own ports).
pick_free_udp_port() {
  local lo=32768 hi=60999 first last port
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  first=$((lo > 11000 ? 10000 : 1024)) last=$((lo - 1))
  if [ $((last - first)) -lt 1000 ]; then first=$((hi + 1)) last=65534; fi # callers use +1 too
  [ $((last - first)) -ge 100 ] || fail "no port range outside the ephemeral one ($lo-$hi)"
  for _ in $(seq 50); do
    port=$((first + (RANDOM << 15 | RANDOM) % (last - first + 1)))
    case $port in 5683 | 5684) continue ;; esac
    ss -Hlun "sport = :$port" | grep -q . || { echo "$port"; return 0; }
  done
  fail "no free UDP port found"
}

# wait_udp_port PORT: until something listens on it.
wait_udp_port() {
  for _ in $(seq 100); do
    ss -Hlun "sport = :$1" | grep -q . && return 0
    sleep 0.05
  done
  fail "nothing started listening on UDP port $1"
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
  pass "$1"
}

# expect_contains WHAT NEEDLE HAYSTACK
expect_contains() {
  grep -qF -- "$2" <<<"$3" || fail "$1: expected to contain '$2', got '$3'"
  pass "$1"
}

# expect_not_contains WHAT NEEDLE HAYSTACK
expect_not_contains() {
  if grep -qF -- "$2" <<<"$3"; then fail "$1: expected no '$2', got '$3'"; fi
  pass "$1"
}

# start_blackhole: a loopback UDP port that never answers; sets HOLE_PORT.
start_blackhole() {
  local out
  out=$(mktemp)
  "$BUILD/udp_blackhole" >"$out" &
  BG_PIDS+=($!)
  for _ in $(seq 100); do
    HOLE_PORT=$(head -1 "$out")
    [ -n "$HOLE_PORT" ] && return 0
    sleep 0.05
  done
  fail "udp_blackhole did not start"
}

# start_coaps_serve_dtls OUTFILE ARGS...: like start_coaps_serve, with a
# coaps:// endpoint too; sets SERVE_PORT and DTLS_PORT.
start_coaps_serve_dtls() {
  local out=$1; shift
  : >"$out" # as in start_coaps_serve
  "$BUILD/coaps" serve --port 0 --dtls-port 0 "$@" >"$out" 2>&1 &
  SERVE_PID=$!
  BG_PIDS+=($!)
  for _ in $(seq 600); do
    DTLS_PORT=$(grep -m1 -oE 'listening on coaps://.*:[0-9]+' "$out" | grep -oE '[0-9]+$' || true)
    SERVE_PORT=$(grep -m1 -oE 'listening on coap://.*:[0-9]+' "$out" | grep -oE '[0-9]+$' || true)
    [ -n "$DTLS_PORT" ] && [ -n "$SERVE_PORT" ] && return 0
    sleep 0.05
  done
  cat "$out" >&2
  fail "coaps serve did not print its coaps:// listening line"
}

# make_creds DIR: demo credentials from coaps keygen.
make_creds() {
  "$BUILD/coaps" keygen --out "$1" --host localhost >/dev/null || fail "coaps keygen failed"
}

# start_relay TARGET_PORT MAX: a path to TARGET_PORT that drops datagrams
# over MAX bytes; sets RELAY_PORT.
start_relay() {
  local out
  out=$(mktemp)
  "$BUILD/udp_relay" "$1" "$2" >"$out" &
  BG_PIDS+=($!)
  for _ in $(seq 100); do
    RELAY_PORT=$(head -1 "$out")
    [ -n "$RELAY_PORT" ] && return 0
    sleep 0.05
  done
  fail "udp_relay did not start"
}

# expect_log WHAT NEEDLE FILE: a server's log gets NEEDLE within 3 s (it
# handles the client's last datagram after the client has exited).
expect_log() {
  for _ in $(seq 600); do
    grep -qF -- "$2" "$3" 2>/dev/null && { pass "$1"; return 0; }
    sleep 0.05
  done
  fail "$1: expected the log to contain '$2', got '$(cat "$3")'"
}

# need_shared_peers NAME...: peers built for tests that no Debian package
# provides (../shared/peers/bin from the project root, or
# $COAPS_PEERS_DIR/bin); sets PEERS_BIN. Under CI a missing one fails the
# test; elsewhere the test is skipped, naming what is missing.
need_shared_peers() {
  local root dir p missing=()
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  dir=${COAPS_PEERS_DIR:-$root/../shared/peers}/bin
  for p in "$@"; do [ -x "$dir/$p" ] || missing+=("$dir/$p"); done
  PEERS_BIN=$dir
  [ ${#missing[@]} -eq 0 ] && return 0
  [ -n "${CI:-}" ] && fail "missing peer(s): ${missing[*]} (see ../shared/peers/README.md)"
  echo "SKIP: missing peer(s): ${missing[*]} (set COAPS_PEERS_DIR to the directory holding bin/)"
  exit 0
}

# install_build PREFIX: 'cmake --install' of $BUILD into PREFIX, as a
# packager or a user installing by hand would.
install_build() {
  cmake --install "$BUILD" --prefix "$1" >/dev/null || fail "cmake --install failed"
}

# sanitizer_flags: what a program linked against a sanitizer build needs
# on its compile and link lines (their runtime), nothing otherwise.
sanitizer_flags() {
  grep -q "COAPS_SANITIZE:BOOL=ON" "$BUILD/CMakeCache.txt" && echo "-fsanitize=address,undefined" || true
}

# write_outside_client FILE HEADER: the C source of an outside program
# including <HEADER>: given a URI, it checks that the library it runs
# with is its header's version (else prints both, exit 3), prints
# "version X", GETs the URI and prints the answer's code and payload.
write_outside_client() {
  cat >"$1" <<APP
#include <$2>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
  if (argc != 2) return 2;
  if (strcmp(coaps_version(), COAPS_VERSION) != 0 || coaps_version_num() != COAPS_VERSION_NUM) {
    printf("header %s, library %s\n", COAPS_VERSION, coaps_version());
    return 3;
  }
  printf("version %s\n", coaps_version());
  coap_context_t *ctx = coap_context_new(NULL);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, argv[1]);
  coap_response_copy_t r;
  int rc = coap_request_blocking(ctx, &o, &r);
  if (rc == 0) printf("%s %s\n", coap_code_name(r.code), (const char *)r.payload);
  coap_response_copy_clear(&r);
  coap_context_free(ctx);
  return rc == 0 ? 0 : 1;
}
APP
}
