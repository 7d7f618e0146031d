#!/usr/bin/env bash
# A state file that cannot be written at the stop (coaps serve
# --state-file): the sessions are not lost in silence. The server says why
# the state was not saved, leaves no state file (nor its .new) behind, and
# ends every session with a close_notify, which the client hears at once
# (it does not wait for a timeout). Two ways to fail: the file system is
# full when the state is written (root: a 64 KiB tmpfs filled up, in a
# mount namespace of the server's own), and the state file's directory
# gone by the stop (create fails); without root, a directory that is not
# writable instead of the full disk. Each with our `coaps observe` holding
# a DTLS session and an Observe relation. Usage: state_write_fails.sh
# BUILD_DIR SOURCE_DIR
BUILD=$1
. "$(dirname "$0")/lib.bash"
need unshare util-linux

DIR=$(mktemp -d)
trap 'cleanup_bg; umount "$DIR/full" 2>/dev/null || true; chmod -R u+w "$DIR"; rm -rf "$DIR"' EXIT
umask 077
od -An -tx1 -N32 /dev/urandom >"$DIR/key"
PSK=(--psk-identity me --psk secret)

# run_case WHAT STATE_DIR NEEDLE BREAK [WRAP...]: a server with its state
# file in STATE_DIR (run under WRAP), an observer; BREAK (a shell command)
# makes the write fail; then SIGTERM, and the checks.
run_case() {
  local what=$1 sdir=$2 needle=$3 break_it=$4
  shift 4
  local dp out=$DIR/$what.serve oerr=$DIR/$what.observe
  dp=$(pick_free_udp_port)
  : >"$out"
  "$@" "$BUILD/coaps" serve --port 0 -w 1 --dtls-port "$dp" -v "${PSK[@]}" \
    --state-file "$sdir/state" --state-key-file "$DIR/key" >"$out" 2>&1 &
  local server=$!
  BG_PIDS+=($server)
  wait_udp_port "$dp"
  "$BUILD/coaps" observe "coaps://127.0.0.1:$dp/time" "${PSK[@]}" -v \
    >"$DIR/$what.notes" 2>"$oerr" &
  local observer=$!
  BG_PIDS+=($observer)
  for _ in $(seq 100); do
    [ "$(grep -cE '^[0-9]{4}-' "$DIR/$what.notes" || true)" -ge 2 ] && break
    sleep 0.1
  done
  [ "$(grep -cE '^[0-9]{4}-' "$DIR/$what.notes" || true)" -ge 2 ] ||
    fail "$what: the observer got no notifications ($(tail -3 "$oerr"))"
  eval "$break_it"
  kill -TERM "$server"
  wait "$server" || fail "$what: coaps serve exited with $?"
  local s
  s=$(cat "$out")
  expect_contains "$what: the server says why" "$needle" "$s"
  expect_contains "$what: the server says the sessions were not saved" \
    "sessions not saved; they are ended with a close_notify" "$s"
  expect_contains "$what: the server ends the session with a close_notify" \
    "1 DTLS session closed (close_notify)" "$s"
  expect_not_contains "$what: nothing claims to be saved" "saved to" "$s"
  [ ! -e "$sdir/state" ] && [ ! -e "$sdir/state.new" ] ||
    fail "$what: a state file was left behind: $(ls -la "$sdir" 2>&1)"
  pass "$what: no state file (nor state.new) left behind"
  # The client hears the close_notify itself, at once: within 2 s, far
  # below any timeout of its own (its CON would wait 2-3 s for one ACK).
  for _ in $(seq 20); do
    grep -q "server closed the DTLS session" "$oerr" && break
    sleep 0.1
  done
  expect_contains "$what: the client was told (close_notify)" "server closed the DTLS session" \
    "$(cat "$oerr")"
  kill "$observer" 2>/dev/null || true
  wait "$observer" 2>/dev/null || true
}

# ---- the directory is gone by the stop: the state file cannot be created ----
mkdir "$DIR/gone"
run_case gone "$DIR/gone" "cannot create $DIR/gone/state.new" 'rmdir "$DIR/gone"'

# ---- a full disk (root) or a directory not writable (not root) ----
mkdir "$DIR/full"
if [ "$(id -u)" = 0 ]; then
  # The server's own mount namespace: a 64 KiB tmpfs, filled to the last
  # byte once the server runs (the fill is in the same namespace: through
  # /proc/PID/root of the server).
  run_case full "$DIR/full" "cannot write $DIR/full/state.new (No space left on device)" \
    'dd if=/dev/zero of="/proc/$server/root$DIR/full/fill" bs=4k 2>/dev/null || true' \
    unshare -m --propagation private sh -c \
    'mount -t tmpfs -o size=64k,mode=0700 coaps-full "$0" && exec "$@"' "$DIR/full"
else
  chmod 500 "$DIR/full"
  run_case readonly "$DIR/full" "cannot create $DIR/full/state.new (Permission denied)" ':'
fi
