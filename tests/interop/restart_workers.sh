#!/usr/bin/env bash
# Sessions that survive a restart of a server with several workers
# (coaps serve --workers N --state-file): 20 long-lived clients
# (repeat_client, one DTLS session each), 10 with a Connection ID and 10
# without (--no-cid: the kernel's address hash alone picks their worker).
# - --workers 2, restarted as --workers 2: every client's next request is
#   answered, no handshake on either side, sessions on both workers;
# - then as --workers 1: all 20 kept (one socket gets every datagram);
# - then as --workers 3: the 10 CID sessions go to the worker their CID
#   names; the 10 others are not taken over (the address hash over 3
#   sockets is not the one over 1), counted and logged with the reason,
#   and those clients get their answer after a new handshake.
# No request is lost anywhere. The key comes from coaps keygen --state-key.
# Usage: restart_workers.sh BUILD_DIR SOURCE_DIR
BUILD=$1
. "$(dirname "$0")/lib.bash"

for tool in repeat_client coaps; do
  [ -x "$BUILD/$tool" ] || fail "$BUILD/$tool is missing (build the tests)"
done
DIR=$(mktemp -d)
CLIENT_PIDS=()
trap 'for p in "${CLIENT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; cleanup_bg; rm -rf "$DIR"' EXIT
"$BUILD/coaps" keygen --state-key "$DIR/key" >/dev/null || fail "coaps keygen --state-key failed"
STATE=$DIR/state
PSK=(--psk-identity me --psk secret)
DP=$(pick_free_udp_port)
CLIENTS=20

serve() { # serve OUT WORKERS: a server on $DP with the state file, pid in $SERVER
  local out=$1 workers=$2
  start_coaps_serve "$out" -w "$workers" --dtls-port "$DP" -v "${PSK[@]}" \
    --state-file "$STATE" --state-key-file "$DIR/key"
  SERVER=${BG_PIDS[-1]}
  wait_udp_port "$DP"
}
stop() { # stop: SIGTERM, and wait for the exit
  kill -TERM "$SERVER"
  wait "$SERVER" || fail "coaps serve exited with $?"
}
count() { grep -c "$1" "$2" || true; }

# Each client reads its requests from a FIFO held open here: one line, one GET.
for i in $(seq 0 $((CLIENTS - 1))); do
  mkfifo "$DIR/in$i"
  cid=()
  [ $((i % 2)) = 1 ] && cid=(--no-cid)
  "$BUILD/repeat_client" "coaps://127.0.0.1:$DP/time" me secret "${cid[@]}" \
    <"$DIR/in$i" >"$DIR/out$i" 2>"$DIR/err$i" &
  CLIENT_PIDS+=($!)
  eval "exec {fd$i}>\"$DIR/in$i\""
done
# ask_all N LIMIT: one more request from every client, then wait until each
# has N answers (LIMIT seconds at most).
ask_all() {
  local want=$1 limit=$2 fd
  for i in $(seq 0 $((CLIENTS - 1))); do
    fd=fd$i
    echo >&"${!fd}"
  done
  for _ in $(seq $((limit * 10))); do
    local short=0
    for i in $(seq 0 $((CLIENTS - 1))); do
      [ "$(count '^ok 2.05' "$DIR/out$i")" -ge "$want" ] || short=$((short + 1))
    done
    [ "$short" = 0 ] && return 0
    sleep 0.1
  done
  for i in $(seq 0 $((CLIENTS - 1))); do
    [ "$(count '^ok 2.05' "$DIR/out$i")" -ge "$want" ] || echo "client $i: $(tail -3 "$DIR/out$i" "$DIR/err$i")" >&2
  done
  fail "not every client got its answer $want within ${limit}s"
}
handshakes() { # handshakes FROM TO: client handshakes of clients FROM..TO (step 2)
  local n=0
  for i in $(seq "$1" 2 "$2"); do n=$((n + $(count 'DTLS client established' "$DIR/err$i"))); done
  echo "$n"
}

# ---- 2 workers, restarted as 2 ----
serve "$DIR/s1.out" 2
ask_all 1 30
stop
expect_contains "the stop saves every session of both workers" \
  "$CLIENTS DTLS sessions saved to $STATE" "$(cat "$DIR/s1.out")"
expect_eq "the state file is 0600" "600" "$(stat -c %a "$STATE")"
serve "$DIR/s2.out" 2
ask_all 2 30
s2=$(cat "$DIR/s2.out")
expect_contains "2 -> 2 workers: every session restored" "$CLIENTS DTLS sessions restored from $STATE" "$s2"
per_worker=$(grep -oE '2 worker\(s\) then, 2 now; worker 0: [0-9]+, worker 1: [0-9]+' <<<"$s2" || true)
[ -n "$per_worker" ] || fail "2 -> 2 workers: no per-worker line in the log"
w0=$(sed -E 's/.*worker 0: ([0-9]+).*/\1/' <<<"$per_worker")
w1=$(sed -E 's/.*worker 1: ([0-9]+).*/\1/' <<<"$per_worker")
[ "$w0" -gt 0 ] && [ "$w1" -gt 0 ] || fail "2 -> 2 workers: sessions not on both workers ($per_worker)"
pass "2 -> 2 workers: sessions back on both workers ($w0 and $w1)"
expect_not_contains "2 -> 2 workers: the new server makes no handshake" "DTLS server established" "$s2"
expect_eq "2 -> 2 workers: one handshake per client in all" "$CLIENTS" \
  "$(($(handshakes 0 $((CLIENTS - 1))) + $(handshakes 1 $((CLIENTS - 1)))))"

# ---- then 1 worker: everything on the one socket ----
stop
serve "$DIR/s3.out" 1
ask_all 3 30
s3=$(cat "$DIR/s3.out")
expect_contains "2 -> 1 worker: every session restored" "$CLIENTS DTLS sessions restored" "$s3"
expect_not_contains "2 -> 1 worker: no handshake" "DTLS server established" "$s3"
expect_eq "2 -> 1 worker: still one handshake per client" "$CLIENTS" \
  "$(($(handshakes 0 $((CLIENTS - 1))) + $(handshakes 1 $((CLIENTS - 1)))))"

# ---- then 3 workers: the CID sessions kept, the others refused ----
stop
serve "$DIR/s4.out" 3
# A client whose session was not taken over is answered after a new
# handshake, once it gives the silent session up (14-21 s).
ask_all 4 60
s4=$(cat "$DIR/s4.out")
half=$((CLIENTS / 2))
expect_contains "1 -> 3 workers: the CID sessions restored" "$half DTLS sessions restored" "$s4"
expect_contains "1 -> 3 workers: the others counted, with the reason" \
  "$half DTLS session(s) not taken over: no Connection ID steers them and the workers went from 1 to 3" "$s4"
expect_eq "1 -> 3 workers: the CID clients made no new handshake" "$half" "$(handshakes 0 $((CLIENTS - 1)))"
expect_eq "1 -> 3 workers: each client without CID made one new handshake" "$CLIENTS" \
  "$(handshakes 1 $((CLIENTS - 1)))"
expect_eq "1 -> 3 workers: the server made one handshake per client without CID" "$half" \
  "$(count 'DTLS server established' "$DIR/s4.out")"
stop

# No request was lost: every client got every answer, no error.
for i in $(seq 0 $((CLIENTS - 1))); do
  fd=fd$i
  eval "exec ${!fd}>&-"
done
for p in "${CLIENT_PIDS[@]}"; do wait "$p" || fail "a client exited with $?"; done
CLIENT_PIDS=()
errors=0
for i in $(seq 0 $((CLIENTS - 1))); do
  errors=$((errors + $(count '^error' "$DIR/out$i")))
  expect_eq "client $i: 4 answers" 4 "$(count '^ok 2.05' "$DIR/out$i")"
done
expect_eq "no request failed" 0 "$errors"
