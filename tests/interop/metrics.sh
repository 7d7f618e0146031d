#!/usr/bin/env bash
# coaps serve --metrics and --log-format json, read by real consumers:
# Prometheus's own promtool checks /metrics, jq reads /status.json and the
# JSON log. Two workers: the numbers are the sums of both.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need promtool "the prometheus package"
need jq
need curl
work=$(mktemp -d)
coaps() { "$BUILD/coaps" "$@"; }
rc() { set +e; "$@" >"$work/out" 2>"$work/err"; RC=$?; set -e; OUT=$(cat "$work/out"); ERR=$(cat "$work/err"); }

# Bad values are usage errors.
rc coaps serve --log-format xml
expect_eq "--log-format xml exits 64" 64 "$RC"
expect_contains "--log-format xml is named" "--log-format wants text or json, got 'xml'" "$ERR"
rc coaps serve --metrics nowhere:9100
expect_eq "--metrics with a host name exits 64" 64 "$RC"
expect_contains "--metrics says what it wants" "--metrics wants PORT (on 127.0.0.1), ADDR:PORT" "$ERR"
rc coaps serve --metrics 70000
expect_eq "--metrics with a port out of range exits 64" 64 "$RC"

start_coaps_serve_dtls "$work/serve.log" -w 2 --psk-identity me --psk secret \
  --metrics 0 --log-format json
M=$(grep -m1 -oE 'metrics on http://127\.0\.0\.1:[0-9]+' "$work/serve.log" | grep -oE 'http://.*')
[ -n "$M" ] || fail "no 'metrics on http://127.0.0.1:PORT' line: $(cat "$work/serve.log")"
pass "a bare port listens on 127.0.0.1 ($M)"
url="coaps://127.0.0.1:$DTLS_PORT"

good=8
for _ in $(seq $good); do
  coaps get "$url/temp" --psk-identity me --psk secret >/dev/null || fail "a PSK GET failed"
done
for _ in 1 2; do
  rc coaps get "$url/temp" --psk-identity me --psk wrong
  expect_eq "a wrong key fails (exit 5)" 5 "$RC"
done
rc coaps get "$url/temp" --psk-identity stranger --psk secret
expect_eq "an unknown identity fails (exit 5)" 5 "$RC"
coaps get "coap://127.0.0.1:$SERVE_PORT/nothing-here" >/dev/null 2>&1 || true

# The workers publish every 100 ms (and each handles a client's last
# datagram after the client exits): wait until both have shown it all.
metric() { grep -E "^$1 " "$work/metrics" | awk '{print $2}'; }
for _ in $(seq 100); do
  curl -sf "$M/metrics" -o "$work/metrics" || fail "GET /metrics failed"
  [ "$(metric 'coaps_failures_total\{cause="psk-unknown-identity"\}')" = 1 ] &&
    [ "$(metric 'coaps_failures_total\{cause="psk-key-mismatch"\}')" = 2 ] &&
    [ "$(metric 'coaps_responses_sent_total\{class="4xx"\}')" = 1 ] && break
  sleep 0.1
done
promtool check metrics <"$work/metrics" >"$work/promtool" 2>&1 ||
  fail "promtool check metrics: $(cat "$work/promtool")"
pass "promtool check metrics accepts /metrics (HELP, TYPE, counter names, syntax)"

expect_eq "both workers are summed" 2 "$(metric coaps_workers)"
expect_eq "full PSK handshakes" $good "$(metric 'coaps_dtls_handshakes_total\{mode="psk",kind="full",result="ok"\}')"
expect_eq "failed PSK handshakes" 3 "$(metric 'coaps_dtls_handshakes_total\{mode="psk",kind="unknown",result="failed"\}')"
expect_eq "failures by cause: wrong key" 2 "$(metric 'coaps_failures_total\{cause="psk-key-mismatch"\}')"
expect_eq "failures by cause: unknown identity" 1 "$(metric 'coaps_failures_total\{cause="psk-unknown-identity"\}')"
expect_eq "2.xx responses" $good "$(metric 'coaps_responses_sent_total\{class="2xx"\}')"
expect_eq "4.xx responses (the 4.04)" 1 "$(metric 'coaps_responses_sent_total\{class="4xx"\}')"
expect_eq "requests received" $((good + 1)) "$(metric coaps_requests_received_total)"
# PSK-only hellos get no cookie under the default policy (when-needed).
expect_eq "cookie exchanges: none for PSK hellos" 0 "$(metric coaps_dtls_cookies_sent_total)"
expect_eq "reloads: none yet" 0 "$(metric 'coaps_reloads_total\{result="ok"\}')"
expect_eq "reloads: no failed one" 0 "$(metric 'coaps_reloads_total\{result="failed"\}')"
expect_eq "reloads: never a successful one" 0 "$(metric coaps_last_reload_success_timestamp_seconds)"
rx=$(metric coaps_received_bytes_total)
[ "$rx" -gt $((good * 100)) ] || fail "bytes received: $rx"
pass "bytes received counted ($rx)"
# Every cause has its series, zeros included, so rates start at 0.
causes=$(grep -c '^coaps_failures_total{' "$work/metrics")
expect_eq "a series per cause" "$(coaps doctor --causes | grep -cE '^[a-z-]+ ')" "$causes"

# /status.json: the failures, newest first, with cause and fix.
curl -sf "$M/status.json" -o "$work/status.json" || fail "GET /status.json failed"
jq -e . "$work/status.json" >/dev/null || fail "status.json is not JSON: $(cat "$work/status.json")"
expect_eq "status: failed handshakes" 3 "$(jq .handshakes.failed "$work/status.json")"
expect_eq "status: reloads" 0 "$(jq .reloads.ok "$work/status.json")"
expect_eq "status: the newest failure's identity" stranger "$(jq -r '.failures[0].identity' "$work/status.json")"
expect_eq "status: the newest failure's cause" psk-unknown-identity "$(jq -r '.failures[0].cause' "$work/status.json")"
expect_eq "status: a wrong key's cause" psk-key-mismatch "$(jq -r '.failures[1].cause' "$work/status.json")"
expect_contains "status: a wrong key's fix" 'give the client the key this server has for "me"' \
  "$(jq -r '.failures[1].fix' "$work/status.json")"
peer=$(jq -r '.failures[1].peer' "$work/status.json")
[[ "$peer" =~ ^127\.0\.0\.1:[0-9]+$ ]] || fail "status: the peer is not a plain address: $peer"
pass "status: the peer address, plain (127.0.0.1:PORT)"
now=$(date +%s)
at=$(jq '.failures[0].unix | floor' "$work/status.json")
[ $((now - at)) -ge 0 ] && [ $((now - at)) -lt 60 ] || fail "failure time $at, now $now"
pass "status: the failure's time is the wall clock's"

# The page and what is not there.
code=$(curl -s -o "$work/page" -w '%{http_code} %{content_type}' "$M/")
expect_eq "/ is the HTML page" "200 text/html; charset=utf-8" "$code"
expect_contains "the page fetches status.json" "fetch('status.json'" "$(cat "$work/page")"
expect_not_contains "the page loads nothing from elsewhere" "src=\"http" "$(cat "$work/page")"
expect_eq "an unknown path is 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$M/nope")"
expect_eq "POST is 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$M/metrics")"

# The JSON log: every library line is one JSON object with its fields.
kill "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
expect_not_contains "no sanitizer report from the server" "Sanitizer" "$(cat "$work/serve.log")"
expect_not_contains "no undefined behaviour in the server" "runtime error" "$(cat "$work/serve.log")"
grep '^{' "$work/serve.log" >"$work/log.json" || fail "no JSON log line: $(cat "$work/serve.log")"
jq -e . "$work/log.json" >/dev/null || fail "a log line is not JSON: $(cat "$work/log.json")"
expect_not_contains "no library line left as text" "coaps warning:" "$(cat "$work/serve.log")"
line=$(jq -c 'select(.cause == "psk-key-mismatch")' "$work/log.json" | head -1)
[ -n "$line" ] || fail "no psk-key-mismatch event: $(cat "$work/log.json")"
expect_eq "log: level" warning "$(jq -r .level <<<"$line")"
expect_eq "log: identity" me "$(jq -r .identity <<<"$line")"
expect_contains "log: peer" "127.0.0.1" "$(jq -r .peer <<<"$line")"
expect_contains "log: fix" "give the client the key" "$(jq -r .fix <<<"$line")"
expect_contains "log: message" "Finished message could not be decrypted" "$(jq -r .message <<<"$line")"
[[ "$(jq -r .time <<<"$line")" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$ ]] || fail "log: time $line"
pass "log: time in UTC (ISO 8601)"

# An address given is used as given: IPv6 loopback, and every address
# when asked for (no silent fallback to 127.0.0.1).
start_coaps_serve_dtls "$work/v6.log" -w 1 --psk-identity me --psk secret --metrics '[::1]:0'
M6=$(grep -m1 -oE 'metrics on http://\[::1\]:[0-9]+' "$work/v6.log" | grep -oE 'http://.*')
[ -n "$M6" ] || fail "no IPv6 metrics line: $(cat "$work/v6.log")"
curl -sfg "$M6/metrics" | grep -q '^coaps_workers ' || fail "no scrape over IPv6 ($M6)"
pass "--metrics [::1]:0 serves over IPv6 ($M6)"
kill "$SERVE_PID"
start_coaps_serve_dtls "$work/any.log" -w 1 --psk-identity me --psk secret --metrics 0.0.0.0:0
expect_log "--metrics 0.0.0.0:0 listens on every address" "metrics on http://0.0.0.0:" "$work/any.log"
echo "all metrics checks passed"
