# Shared by the bench scripts (sourced after BUILD is set; defines
# functions only). fail and note name the script; a script may define its
# own after sourcing.
#   every script       fail, note, configure_build
#   comparisons with   need_libcoap_bin, pin_cpus, free_port_pair,
#   libcoap            wait_port  (compare.sh, blockwise.sh)
#   smoke runs         bench_work_dir, start_server, stop_server, field
#                      (smoke.sh, hot_path_allocs.sh)

fail() { echo "$(basename "$0"): FAIL: $*" >&2; exit 1; }
note() { echo "$(basename "$0"): $*" >&2; }

# configure_build SRC: a build directory $BUILD configured (Release) if it
# is not yet.
configure_build() {
  [ -f "$BUILD/CMakeCache.txt" ] && return 0
  cmake -S "$1" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null || fail "cmake configure"
}

# need_libcoap_bin CMD...: libcoap's servers and clients (libcoap3-bin)
# installed when any of the commands named is missing.
need_libcoap_bin() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null && continue
    note "installing libcoap3-bin"
    local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y libcoap3-bin >/dev/null 2>&1 || fail "apt-get install libcoap3-bin"
    return 0
  done
}

# pin_cpus: PIN_SERVER and PIN_LOAD, commands that run a server on CPU 0
# and a client or load generator on CPU 1, so neither steals the other's
# core (empty on a single CPU, said once).
pin_cpus() {
  if [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c 0) PIN_LOAD=(taskset -c 1)
  else
    note "one CPU only: servers and clients share it"
    PIN_SERVER=() PIN_LOAD=()
  fi
}

# free_port_pair: a UDP port P such that P and P + 1 are both free (a
# libcoap server takes coap:// on P and coaps:// on P + 1).
free_port_pair() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    ss -Hlun "sport = :$p" | grep -q . || ss -Hlun "sport = :$((p + 1))" | grep -q . ||
      { echo "$p"; return 0; }
  done
  fail "no free UDP port pair"
}

# wait_port PORT: until something listens on UDP PORT (5 s); 1 if nothing does.
wait_port() {
  for _ in $(seq 100); do
    ss -Hlun "sport = :$1" | grep -q . && return 0
    sleep 0.05
  done
  return 1
}

# bench_work_dir: $work, a directory removed on exit, with the server
# start_server started stopped.
bench_work_dir() {
  work=$(mktemp -d)
  server_pid=
  trap 'bench_cleanup' EXIT
}
bench_cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; fi
  rm -rf "$work"
}

# start_server ARGS...: a fresh 'coaps serve' on 127.0.0.1, free ports,
# run under "${SERVER_PREFIX[@]}" (say, env VAR=VALUE) when set; sets
# server_pid, port (coap://) and dport (coaps://, when credentials are
# given).
SERVER_PREFIX=()
start_server() {
  "${SERVER_PREFIX[@]}" "$BUILD/coaps" serve --address 127.0.0.1 --port 0 --dtls-port 0 "$@" \
    >"$work/serve.log" 2>&1 &
  server_pid=$!
  port= dport=
  for _ in $(seq 100); do
    port=$(grep -m1 -oE 'listening on coap://[^ ]*:[0-9]+' "$work/serve.log" | grep -oE '[0-9]+$' || true)
    dport=$(grep -m1 -oE 'listening on coaps://[^ ]*:[0-9]+' "$work/serve.log" | grep -oE '[0-9]+$' || true)
    [ -n "$port" ] && [ -n "$dport" ] && break
    sleep 0.05
  done
  [ -n "$dport" ] || { cat "$work/serve.log" >&2; fail "coaps serve $* did not start"; }
}

# stop_server [SIGNAL]: stop it (TERM by default) and wait for its exit.
stop_server() {
  kill -"${1:-TERM}" "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

field() { grep -oE "\"$1\":[0-9.]+" <<<"$2" | head -1 | cut -d: -f2; }
