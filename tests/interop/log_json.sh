#!/usr/bin/env bash
# coaps serve --log-format json (issue 15): every line the server writes
# on stderr is one JSON object that jq reads -- the library's events and
# the tool's own lines alike (-v observer counts, a good and a failed
# SIGHUP reload, the summaries at the stop, the certificate-date warning,
# a fatal error) -- with their fields apart, and a plain peer address;
# stdout keeps its text lines (listening on, try:).
BUILD=$1
. "$(dirname "$0")/lib.bash"
need jq
work=$(mktemp -d)
coaps() { "$BUILD/coaps" "$@"; }
psk=$work/psk.txt
printf 'me secret\n' >"$psk"
chmod 600 "$psk"

"$BUILD/coaps" serve --port 0 --dtls-port 0 --psk-file "$psk" --log-format json -v \
  >"$work/out" 2>"$work/err" &
SERVE_PID=$!
BG_PIDS+=($SERVE_PID)
for _ in $(seq 600); do
  DTLS_PORT=$(grep -m1 -oE 'listening on coaps://.*:[0-9]+' "$work/out" | grep -oE '[0-9]+$' || true)
  [ -n "$DTLS_PORT" ] && break
  sleep 0.05
done
[ -n "$DTLS_PORT" ] || fail "no coaps:// listening line on stdout: $(cat "$work/out" "$work/err")"
pass "stdout keeps its 'listening on' text line"
expect_contains "stdout keeps its try: hints" "try:" "$(cat "$work/out")"
url="coaps://127.0.0.1:$DTLS_PORT"

# err_event WHAT JQ-FILTER: within 3 s, a stderr line matching the filter.
err_event() {
  for _ in $(seq 60); do
    EVENT=$(jq -Rc 'fromjson? | select('"$2"')' "$work/err" | head -1)
    [ -n "$EVENT" ] && { pass "$1"; return 0; }
    sleep 0.05
  done
  fail "$1: no stderr line with $2 in: $(cat "$work/err")"
}

coaps observe "$url/time" --psk-identity me --psk secret --count 2 >/dev/null ||
  fail "an observation failed"
err_event "-v: an observer line" '.resource == "time" and .observers == 1 and .level == "info"'
expect_contains "... its message" "/time: 1 observer" "$(jq -r .message <<<"$EVENT")"
err_event "-v: the observer gone" '.resource == "time" and .observers == 0'

set +e
coaps get "$url/temp" --psk-identity me --psk wrong >/dev/null 2>&1
RC=$?
set -e
expect_eq "a wrong key fails (exit 5)" 5 "$RC"
err_event "the wrong key's event" '.cause == "psk-key-mismatch"'
[[ "$(jq -r .peer <<<"$EVENT")" =~ ^127\.0\.0\.1:[0-9]+$ ]] ||
  fail "the event's peer is not a plain address: $EVENT"
pass "the event's peer is a plain address"

printf 'me secret\nother key2\n' >"$psk"
kill -HUP "$SERVE_PID"
err_event "a good reload" '.level == "info" and (.message | startswith("reload: credentials reloaded"))'
expect_eq "... with the identities counted" 2 "$(jq -r .psk_identities <<<"$EVENT")"
expect_eq "... and its file" "$psk" "$(jq -r .file <<<"$EVENT")"
expect_eq "... and the sessions ended" 0 "$(jq -r .sessions_ended <<<"$EVENT")"

printf 'me secret\nlonely\n' >"$psk"
kill -HUP "$SERVE_PID"
err_event "a failed reload" '.level == "error" and (.message | startswith("reload failed"))'
expect_contains "... says file:line" "$psk:2: the identity has no key" "$(jq -r .message <<<"$EVENT")"
expect_eq "... with its file apart" "$psk" "$(jq -r .file <<<"$EVENT")"
coaps get "$url/temp" --psk-identity me --psk secret >/dev/null ||
  fail "the old credentials were not kept after the failed reload"
pass "the old credentials go on after the failed reload"

# An observer still there at the stop: its session gets a close_notify.
coaps observe "$url/temp" --psk-identity me --psk secret --duration 30 >/dev/null 2>&1 &
BG_PIDS+=($!)
for _ in $(seq 60); do
  [ "$(jq -Rc 'fromjson? | select(.resource == "temp" and .observers == 1)' "$work/err")" ] && break
  sleep 0.05
done
kill -TERM "$SERVE_PID"
set +e
wait "$SERVE_PID"
RC=$?
set -e
expect_eq "SIGTERM: the server exits 0" 0 "$RC"
err_event "the failures summary at the stop" '.message | startswith("failed connections by cause")'
expect_eq "... the count per cause" 1 "$(jq -r '.["psk-key-mismatch"]' <<<"$EVENT")"
expect_eq "... the total" 1 "$(jq -r .failures <<<"$EVENT")"
err_event "the sessions closed at the stop" '.sessions_closed >= 1'
err_event "the observe summary at the stop (-v)" '.notifications >= 1'

# Every stderr line, not only those looked for, is one JSON object with
# time, level and message.
lines=$(wc -l <"$work/err")
[ "$lines" -ge 8 ] || fail "too few stderr lines ($lines): $(cat "$work/err")"
bad=$(jq -Rr '(fromjson? // null) as $o | if ($o | type) == "object" and ($o.time | type) == "string" and
  ($o.level | IN("error", "warning", "info", "debug")) and ($o.message | type) == "string"
  then empty else . end' "$work/err")
[ -z "$bad" ] || fail "stderr lines that are not JSON log objects: $bad"
pass "all $lines stderr lines are JSON objects with time, level and message"
expect_not_contains "no sanitizer report" "Sanitizer" "$(cat "$work/err")"
expect_not_contains "stdout has no JSON log line" '{"time"' "$(cat "$work/out")"

# IPv6: the peer in the event and in the failure record is "[::1]:PORT".
need curl
"$BUILD/coaps" serve --address ::1 --port 0 --dtls-port 0 -w 1 --psk-identity me --psk secret \
  --metrics 0 --log-format json >"$work/out6" 2>"$work/err6" &
SERVE_PID=$!
BG_PIDS+=($SERVE_PID)
DTLS_PORT=
for _ in $(seq 600); do
  DTLS_PORT=$(grep -m1 -oE 'listening on coaps://.*:[0-9]+' "$work/out6" | grep -oE '[0-9]+$' || true)
  M=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$work/out6" | head -1 || true)
  [ -n "$DTLS_PORT" ] && [ -n "$M" ] && break
  sleep 0.05
done
[ -n "$DTLS_PORT" ] && [ -n "$M" ] || fail "the IPv6 server did not start: $(cat "$work/out6" "$work/err6")"
set +e
coaps get "coaps://[::1]:$DTLS_PORT/temp" --psk-identity me --psk wrong >/dev/null 2>&1
RC=$?
set -e
expect_eq "IPv6: a wrong key fails (exit 5)" 5 "$RC"
for _ in $(seq 60); do
  grep -q psk-key-mismatch "$work/err6" && break
  sleep 0.05
done
peer=$(jq -Rr 'fromjson? | select(.cause == "psk-key-mismatch") | .peer' "$work/err6" | head -1)
[[ "$peer" =~ ^\[::1\]:[0-9]+$ ]] || fail "IPv6: the event's peer is '$peer': $(cat "$work/err6")"
pass "IPv6: the event's peer is [::1]:PORT"
for _ in $(seq 60); do # the workers publish every 100 ms
  peer=$(curl -s --max-time 5 "$M/status.json" | jq -r '.failures[0].peer' || true)
  [ "$peer" != null ] && [ -n "$peer" ] && break
  sleep 0.05
done
[[ "$peer" =~ ^\[::1\]:[0-9]+$ ]] || fail "IPv6: the failure record's peer is '$peer'"
pass "IPv6: the failure record's peer is [::1]:PORT"

# The certificate-date warning at the start, with its fields apart.
need certtool gnutls-bin
certtool --generate-privkey --key-type ecdsa --outfile "$work/key.pem" 2>/dev/null
cat >"$work/tmpl" <<'TMPL'
cn = "expired.example"
activation_date = "2019-01-01 00:00:00 UTC"
expiration_date = "2020-01-01 00:00:00 UTC"
tls_www_server
signing_key
TMPL
certtool --generate-self-signed --load-privkey "$work/key.pem" --template "$work/tmpl" \
  --outfile "$work/cert.pem" >/dev/null 2>&1 || fail "certtool could not make the expired certificate"
set +e
timeout -s TERM 2 "$BUILD/coaps" serve --port 0 --dtls-port 0 -w 1 --cert "$work/cert.pem" \
  --key "$work/key.pem" --log-format json >/dev/null 2>"$work/err"
set -e
err_event "an expired certificate's warning" '.level == "warning" and .cause == "cert-expired"'
expect_eq "... its file" "$work/cert.pem" "$(jq -r .file <<<"$EVENT")"
expect_eq "... its subject" "CN=expired.example" "$(jq -r .subject <<<"$EVENT")"
expect_contains "... its fix" "renew it" "$(jq -r .fix <<<"$EVENT")"

# A fatal error (the --metrics port taken): one JSON line, level error.
"$BUILD/coaps" serve --port 0 -w 1 --metrics 0 >"$work/out" 2>&1 &
BG_PIDS+=($!)
M=
for _ in $(seq 600); do
  M=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$work/out" | head -1 || true)
  [ -n "$M" ] && break
  sleep 0.05
done
[ -n "$M" ] || fail "the first --metrics server did not start: $(cat "$work/out")"
set +e
"$BUILD/coaps" serve --port 0 -w 1 --metrics "${M#http://}" --log-format json >/dev/null 2>"$work/err"
RC=$?
set -e
expect_eq "a taken --metrics port: exit 7" 7 "$RC"
expect_eq "... one stderr line" 1 "$(wc -l <"$work/err")"
err_event "... a JSON error naming the port" '.level == "error" and (.message | contains("cannot listen for --metrics"))'
