#!/usr/bin/env bash
# contrib/coaps.service: systemd-analyze verify accepts it (its man page
# found, its command executable), its hardening scores as exposure "OK"
# or better, and the command it runs does what the unit expects of it:
# READY=1 on $NOTIFY_SOCKET once listening, RELOADING=1 then READY=1 on
# SIGHUP (ExecReload), STOPPING=1 and an exit within TimeoutStopSec on
# SIGTERM.
BUILD=$(cd "$1" && pwd)
SRC=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$(dirname "$0")/lib.bash"
need systemd-analyze systemd
work=$(mktemp -d)
unit=$work/coaps.service
# The unit as installed, with the command where this build has it.
sed "s|/usr/bin/coaps|$BUILD/coaps|" "$SRC/contrib/coaps.service" >"$unit"
grep -q "ExecStart=$BUILD/coaps serve" "$unit" || fail "the unit's ExecStart is not /usr/bin/coaps serve"
mkdir -p "$work/man/man1" && cp "$SRC/docs/man/coaps.1" "$work/man/man1/"
out=$(MANPATH=$work/man systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
pass "systemd-analyze verify accepts contrib/coaps.service"
out=$(systemd-analyze security --offline=yes --threshold=20 "$unit" 2>&1) ||
  fail "hardening: exposure over 2.0: $(tail -2 <<<"$out")"
pass "hardening: $(grep -o 'Overall exposure level.*' <<<"$out")"
for key in "User=coaps" "NoNewPrivileges=yes" "ProtectSystem=strict" "ConfigurationDirectory=coaps" \
  "StateDirectory=coaps" "ExecReload=/bin/kill -HUP \$MAINPID" "Type=notify"; do
  grep -qxF "$key" "$unit" || fail "the unit lacks $key"
done
pass "the unit has its user, hardening, directories, reload and notify lines"
stop_s=$(sed -n 's/^TimeoutStopSec=//p' "$unit")
grep -q "exits within 5 s" <("$BUILD/coaps" serve --help) || fail "serve --help does not state the stop bound"
[ "$stop_s" -gt 5 ] || fail "TimeoutStopSec=$stop_s is not above the 5 s stop bound"
pass "TimeoutStopSec ($stop_s s) leaves room for the 5 s graceful stop"

# The command line the unit runs, with the notification socket systemd gives.
printf 'dev-1 key1\n' >"$work/psk.txt"
chmod 600 "$work/psk.txt"
"$BUILD/notify_listen" "$work/notify" 30 >"$work/notes" &
BG_PIDS+=($!)
for _ in $(seq 100); do grep -q listening "$work/notes" && break; sleep 0.05; done
cmdline=$(sed -n 's/^ExecStart=//p' "$unit" | sed "s|/etc/coaps/psk.txt|$work/psk.txt|; s|\$COAPS_OPTS|--port 0 --dtls-port 0|")
# shellcheck disable=SC2086
NOTIFY_SOCKET=$work/notify $cmdline >"$work/serve.log" 2>&1 &
pid=$!
BG_PIDS+=($pid)
expect_log "READY=1 once listening" "READY=1" "$work/notes"
grep -q "listening on coaps://" "$work/serve.log" || fail "READY=1 before the listening line"
kill -HUP "$pid"
expect_log "RELOADING=1 on SIGHUP" "RELOADING=1" "$work/notes"
expect_log "... with MONOTONIC_USEC" "MONOTONIC_USEC=" "$work/notes"
for _ in $(seq 100); do [ "$(grep -c READY=1 "$work/notes")" -ge 2 ] && break; sleep 0.05; done
[ "$(grep -c READY=1 "$work/notes")" -ge 2 ] || fail "no READY=1 after the reload: $(cat "$work/notes")"
pass "READY=1 again after the reload"
kill -TERM "$pid"
set +e; timeout "$stop_s" tail --pid="$pid" -f /dev/null; wait "$pid"; rc=$?; set -e
expect_eq "SIGTERM: a clean exit within TimeoutStopSec" 0 "$rc"
expect_log "STOPPING=1 on SIGTERM" "STOPPING=1" "$work/notes"
