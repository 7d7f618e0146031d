# Shared by bench/smoke.sh and bench/hot_path_allocs.sh (sourced after
# BUILD is set): a work directory removed on exit, fail, 'coaps serve' on
# free ports, and a field of coaps-bench's JSON.

fail() { echo "FAIL: $*" >&2; exit 1; }

work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

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
