#!/usr/bin/env bash
# Credentials at scale (issue 15): coaps serve --psk-file with many
# identities (our client, libcoap's coap-client-gnutls, gnutls-cli), every
# refused file shape with its line, the permission refusal, SIGHUP reloads
# that add an identity, remove one (its session ends with close_notify and
# cannot resume), break the file or swap it for a directory (the old
# credentials go on), a reload during a handshake flood (nothing lost),
# --trust-rpk DIR with a key removed on reload, and SIGTERM during traffic
# (close_notify to the client, exit within the bound).
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-client-gnutls libcoap3-bin
need gnutls-cli gnutls-bin
need openssl openssl
work=$(mktemp -d)
coaps() { "$BUILD/coaps" "$@"; }
rc() { set +e; "$@" >"$work/out" 2>"$work/err"; RC=$?; set -e; OUT=$(cat "$work/out"); ERR=$(cat "$work/err"); }
psk=$work/psk.txt

# ---- a file of many identities ----
awk 'BEGIN { print "# generated: 20000 devices"; for (i = 0; i < 20000; i++) printf "dev-%05d key-%05d\n", i, i }' >"$psk"
echo "hexdev hex:00a1ff7e" >>"$psk"
chmod 600 "$psk"
start_coaps_serve_dtls "$work/serve.log" --workers 2 --psk-file "$psk" -v
url="coaps://127.0.0.1:$DTLS_PORT"
rc coaps get "$url/temp" --psk-identity dev-00000 --psk key-00000
expect_eq "first of 20000 identities" 0 "$RC"
rc coaps get "$url/temp" --psk-identity dev-19999 --psk key-19999
expect_eq "last of 20000 identities" 0 "$RC"
rc coaps get "$url/temp" --psk-identity hexdev --psk-hex 00a1ff7e
expect_eq "a hex: key" 0 "$RC"
out=$(coap-client-gnutls -B 5 -u dev-12345 -k key-12345 -m get "$url/time" 2>&1)
[[ "$out" =~ [0-9]{4}-[0-9]{2}-[0-9]{2}T ]] || fail "coap-client-gnutls with an identity from the file: '$out'"
pass "coap-client-gnutls with an identity from the file"
hex=$(printf 'key-00042' | od -An -tx1 | tr -d ' \n')
out=$(timeout 10 gnutls-cli --udp --pskusername dev-00042 --pskkey "$hex" \
  --priority "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK" -p "$DTLS_PORT" 127.0.0.1 </dev/null 2>&1 || true)
expect_contains "gnutls-cli with an identity from the file" "Handshake was completed" "$out"
rc coaps get "$url/temp" --psk-identity dev-20000 --psk key-20000
expect_eq "an identity not in the file is refused" 5 "$RC"
expect_contains "... as unknown" "psk-unknown-identity" "$ERR"

# ---- each refused file shape, with its line; keys never printed ----
bad() { # NAME CONTENT MESSAGE
  printf '%b' "$2" >"$work/bad"
  chmod 600 "$work/bad"
  rc coaps serve --port 0 --dtls-port 0 --psk-file "$work/bad"
  expect_eq "$1: refused at start (exit 7)" 7 "$RC"
  expect_contains "$1: says file:line and what" "$work/bad:$3" "$ERR"
  expect_not_contains "$1: no key in the message" "SECRETKEY" "$ERR"
}
long=$(printf 'x%.0s' $(seq 65))
bad "missing key" 'ok SECRETKEY\nlonely\n' "2: the identity has no key"
bad "bad hex" '# c\nok SECRETKEY\nbad hex:5EC2ETKEY\n' "3: bad hex in the key"
bad "odd hex" 'bad hex:abc\n' "1: bad hex in the key (an odd number of digits)"
bad "empty key" 'ok SECRETKEY\nempty hex:\n' "2: the key is empty"
bad "identity too long" "ok SECRETKEY\n$long SECRETKEY\n" "2: the identity is longer than 64 bytes"
bad "key too long" "ok SECRETKEY\nid SECRETKEY$long\n" "2: the key is longer than 64 bytes"
bad "three fields" 'ok SECRETKEY extra\n' "1: more than two fields"
bad "duplicate identity" 'dup SECRETKEY\nother SECRETKEY\ndup SECRETKEY2\n' \
  "3: the identity 'dup' is given twice (first on line 1)"

printf 'a key\n' >"$work/open"
chmod 644 "$work/open"
rc coaps serve --port 0 --dtls-port 0 --psk-file "$work/open"
expect_eq "a file others may read is refused" 7 "$RC"
expect_contains "... saying the mode and the fix" "may read this key file (mode 0644): chmod 600" "$ERR"
start_coaps_serve_dtls "$work/insecure.log" --psk-file "$work/open" --allow-insecure-key-files
expect_log "--allow-insecure-key-files takes it with a warning" "warning: $work/open: group or others may read" "$work/insecure.log"
rc coaps get "coaps://127.0.0.1:$DTLS_PORT/temp" --psk-identity a --psk key
expect_eq "... and serves it" 0 "$RC"
rc coaps serve --port 0 --dtls-port 0 --psk-file "$work"
expect_eq "a directory as --psk-file" 7 "$RC"
expect_contains "... named" "is a directory, not a PSK file" "$ERR"

# ---- reloads ----
log=$work/serve.log
reloads() { grep -c "coaps: reload:" "$log" || true; }
hup() { # wait for the reload's line
  local before
  before=$(($(reloads) + $(grep -c "reload failed" "$log" || true)))
  kill -HUP "$SERVE_PID"
  for _ in $(seq 100); do
    [ $(($(reloads) + $(grep -c "reload failed" "$log" || true))) -gt "$before" ] && return 0
    sleep 0.05
  done
  fail "no reload line after SIGHUP: $(tail -5 "$log")"
}
start_coaps_serve_dtls "$log" --workers 2 --psk-file "$psk" -v
url="coaps://127.0.0.1:$DTLS_PORT"
# An observer as dev-00007 (to be revoked) and one as dev-00008 (kept).
coaps get --observe "$url/time" --psk-identity dev-00007 --psk key-00007 --count 30 -v \
  >"$work/obs7.out" 2>"$work/obs7.err" &
obs7=$!
BG_PIDS+=($obs7)
coaps get --observe "$url/time" --psk-identity dev-00008 --psk key-00008 --count 30 \
  >"$work/obs8.out" 2>"$work/obs8.err" &
BG_PIDS+=($!)
for _ in $(seq 100); do [ -s "$work/obs7.out" ] && [ -s "$work/obs8.out" ] && break; sleep 0.05; done
[ -s "$work/obs7.out" ] || fail "the observer did not start: $(cat "$work/obs7.err")"

grep -v '^dev-00007 ' "$psk" >"$work/new" && echo "newdev newkey" >>"$work/new"
chmod 600 "$work/new" && mv "$work/new" "$psk"
rc coaps get "$url/temp" --psk-identity newdev --psk newkey
expect_eq "an identity not loaded yet is refused" 5 "$RC"
hup
expect_log "the reload says what it loaded and ended" \
  "reload: credentials reloaded (20001 PSK identities in $psk); 1 session ended" "$log"
rc coaps get "$url/temp" --psk-identity newdev --psk newkey
expect_eq "reload adds an identity: it works without a restart" 0 "$RC"
set +e; timeout 10 tail --pid="$obs7" -f /dev/null; wait "$obs7"; obs7_rc=$?; set -e
expect_eq "the revoked observer's request fails (exit 5)" 5 "$obs7_rc"
o7=$(cat "$work/obs7.err")
expect_contains "... its session got a close_notify" "server closed the DTLS session" "$o7"
expect_contains "... and its resumption is refused with the right cause" "psk-unknown-identity" "$o7"
expect_log "the server says why it ended it" "credentials no longer accepted (reload)" "$log"
rc coaps get "$url/temp" --psk-identity dev-00007 --psk key-00007
expect_eq "the revoked identity cannot come back" 5 "$RC"
expect_contains "... refused as unknown" "psk-unknown-identity" "$ERR"
n8=$(wc -l <"$work/obs8.out")
sleep 1.5
[ "$(wc -l <"$work/obs8.out")" -gt "$n8" ] || fail "the kept observer stopped getting notifications"
pass "an established session of a kept identity goes on through the reload"

# A broken file: the old credentials keep working, the line is named.
cp "$psk" "$work/psk.good"
echo "broken hex:xyz" >>"$psk"
hup
expect_log "a broken file on reload: said with file:line" \
  "reload failed, the credentials in use are kept: $psk:20003: bad hex" "$log"
rc coaps get "$url/temp" --psk-identity newdev --psk newkey
expect_eq "... and the old credentials keep working" 0 "$RC"

# The PSK file swapped for a directory mid-run.
mv "$psk" "$work/psk.moved" && mkdir "$psk"
hup
expect_log "the PSK file swapped for a directory: said" "$psk: is a directory, not a PSK file" "$log"
rc coaps get "$url/temp" --psk-identity dev-00100 --psk key-00100
expect_eq "... and the old credentials keep working" 0 "$RC"
rmdir "$psk" && cp "$work/psk.good" "$psk" && chmod 600 "$psk"

# A reload during a handshake flood: every handshake completes.
"$BUILD/coaps-bench" "$url/temp" --psk-identity dev-00001 --psk key-00001 --handshakes 400 \
  --parallel 32 --duration 60 --json >"$work/flood.json" 2>"$work/flood.err" &
flood=$!
sleep 0.3
hup
hup
wait "$flood" || fail "coaps-bench failed: $(cat "$work/flood.err")"
flood_json=$(cat "$work/flood.json")
expect_contains "a reload during a handshake flood: all 400 handshakes done" '"handshakes":400' "$flood_json"
expect_contains "... none lost" '"errors":0' "$flood_json"
# After all those reloads the server stops cleanly (under ASan: no leak).
kill -TERM "$SERVE_PID"
set +e; wait "$SERVE_PID"; stop_rc=$?; set -e
expect_eq "the reloaded server stops cleanly" 0 "$stop_rc"

# --metrics counts the reloads, the failed ones apart (one ok, one failed).
need curl curl
log_m=$work/metrics.log
start_coaps_serve_dtls "$log_m" --psk-file "$psk" --metrics 127.0.0.1:0
M=$(grep -m1 -oE 'metrics on http://[0-9.:]+' "$log_m" | sed 's/metrics on //')
[ -n "$M" ] || fail "no metrics line: $(cat "$log_m")"
kill -HUP "$SERVE_PID"
expect_log "a reload with --metrics" "coaps: reload: credentials reloaded" "$log_m"
echo "broken" >>"$psk"
kill -HUP "$SERVE_PID"
expect_log "... and a failed one" "reload failed" "$log_m"
cp "$work/psk.good" "$psk" && chmod 600 "$psk"
metrics=$(curl -sf "$M/metrics") || fail "GET /metrics failed"
expect_contains "/metrics counts the good reload" 'coaps_reloads_total{result="ok"} 1' "$metrics"
expect_contains "/metrics counts the failed reload" 'coaps_reloads_total{result="failed"} 1' "$metrics"
grep -qE '^coaps_last_reload_success_timestamp_seconds [1-9][0-9]{9}$' <<<"$metrics" ||
  fail "no time of the last successful reload: $(grep reload <<<"$metrics")"
pass "/metrics has the time of the last successful reload"
kill -TERM "$SERVE_PID"
set +e; wait "$SERVE_PID"; set -e

# ---- --trust-rpk DIR ----
keys=$work/rpk
mkdir -p "$keys/trusted"
for k in a b c; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/$k-key.pem" 2>/dev/null
  openssl pkey -in "$keys/$k-key.pem" -pubout -out "$keys/trusted/$k.pem"
done
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/server-key.pem" 2>/dev/null
openssl pkey -in "$keys/server-key.pem" -pubout -out "$keys/server-pub.pem"
chmod 600 "$keys"/*-key.pem
log=$work/rpk.log
start_coaps_serve_dtls "$log" --workers 2 --rpk --key "$keys/server-key.pem" --trust-rpk "$keys/trusted" -v
url="coaps://127.0.0.1:$DTLS_PORT"
for k in a b c; do
  rc coaps get "$url/temp" --rpk --key "$keys/$k-key.pem" --trust-rpk "$keys/server-pub.pem"
  expect_eq "--trust-rpk DIR: key $k" 0 "$RC"
done
coaps get --observe "$url/time" --rpk --key "$keys/b-key.pem" --trust-rpk "$keys/server-pub.pem" \
  --count 30 -v >"$work/obsb.out" 2>"$work/obsb.err" &
obsb=$!
BG_PIDS+=($obsb)
for _ in $(seq 100); do [ -s "$work/obsb.out" ] && break; sleep 0.05; done
rm "$keys/trusted/b.pem"
hup
expect_log "a raw key removed from the directory: its session ended" "1 session ended" "$log"
set +e; timeout 10 tail --pid="$obsb" -f /dev/null; wait "$obsb"; obsb_rc=$?; set -e
expect_eq "... the removed key's observer fails" 5 "$obsb_rc"
expect_contains "... after a close_notify" "server closed the DTLS session" "$(cat "$work/obsb.err")"
rc coaps get "$url/temp" --rpk --key "$keys/b-key.pem" --trust-rpk "$keys/server-pub.pem"
expect_eq "... and it cannot connect again" 5 "$RC"
rc coaps get "$url/temp" --rpk --key "$keys/a-key.pem" --trust-rpk "$keys/server-pub.pem"
expect_eq "... the other keys still work" 0 "$RC"
kill -TERM "$SERVE_PID"
set +e; wait "$SERVE_PID"; stop_rc=$?; set -e
expect_eq "the RPK server stops cleanly" 0 "$stop_rc"

# ---- certificates and the CA set, reloaded ----
make_creds "$work/pki-a"
make_creds "$work/pki-b"
mkdir -p "$work/live"
cp "$work/pki-a/server-cert.pem" "$work/pki-a/server-key.pem" "$work/live/"
cp "$work/pki-a/ca-cert.pem" "$work/live/clients-ca.pem"
log=$work/x509.log
start_coaps_serve_dtls "$log" --workers 2 --cert "$work/live/server-cert.pem" \
  --key "$work/live/server-key.pem" --cacert "$work/live/clients-ca.pem" -v
url="coaps://localhost:$DTLS_PORT"
coaps get --observe "$url/time" --cacert "$work/pki-a/ca-cert.pem" --count 30 \
  >"$work/obsx.out" 2>"$work/obsx.err" &
BG_PIDS+=($!)
for _ in $(seq 100); do [ -s "$work/obsx.out" ] && break; sleep 0.05; done
[ -s "$work/obsx.out" ] || fail "the certificate observer did not start: $(cat "$work/obsx.err")"
cp "$work/pki-b/server-cert.pem" "$work/pki-b/server-key.pem" "$work/live/"
cp "$work/pki-b/ca-cert.pem" "$work/live/clients-ca.pem"
hup
rc coaps get "$url/temp" --cacert "$work/pki-b/ca-cert.pem" --cert "$work/pki-b/client-cert.pem" \
  --key "$work/pki-b/client-key.pem"
expect_eq "a new certificate and CA set after reload: served, the client's chain verified" 0 "$RC"
rc coaps get "$url/temp" --cacert "$work/pki-a/ca-cert.pem"
expect_eq "... a client trusting only the old CA now refuses the new certificate" 5 "$RC"
expect_contains "... as untrusted" "cert-untrusted" "$ERR"
rc coaps get "$url/temp" --cacert "$work/pki-b/ca-cert.pem" --cert "$work/pki-a/client-cert.pem" \
  --key "$work/pki-a/client-key.pem"
expect_eq "... a client certificate of the old CA is refused" 5 "$RC"
nx=$(wc -l <"$work/obsx.out")
sleep 1.5
[ "$(wc -l <"$work/obsx.out")" -gt "$nx" ] || fail "the certificate session did not survive the reload"
pass "... the session established under the old certificate goes on"
echo "not a certificate" >"$work/live/server-cert.pem"
hup
expect_log "a broken certificate on reload: said" "reload failed, the credentials in use are kept" "$log"
rc coaps get "$url/temp" --cacert "$work/pki-b/ca-cert.pem"
expect_eq "... and the certificate in use keeps working" 0 "$RC"

# ---- SIGTERM during traffic ----
log=$work/stop.log
start_coaps_serve_dtls "$log" --workers 2 --psk-file "$psk"
url="coaps://127.0.0.1:$DTLS_PORT"
coaps get --observe "$url/time" --psk-identity dev-00003 --psk key-00003 --count 60 -v \
  >"$work/obs3.out" 2>"$work/obs3.err" &
BG_PIDS+=($!)
for _ in $(seq 100); do [ -s "$work/obs3.out" ] && break; sleep 0.05; done
"$BUILD/coaps-bench" "$url/temp" --psk-identity dev-00004 --psk key-00004 --sessions 8 \
  --duration 5 >/dev/null 2>&1 &
BG_PIDS+=($!)
sleep 1
start=$(date +%s%N)
kill -TERM "$SERVE_PID"
set +e; wait "$SERVE_PID"; stop_rc=$?; set -e
ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "SIGTERM during traffic: a clean exit" 0 "$stop_rc"
[ "$ms" -le 5000 ] || fail "SIGTERM: exited after $ms ms, over the 5 s bound"
pass "SIGTERM: exited in $ms ms (bound 5 s)"
expect_log "... every session got a close_notify" "DTLS sessions closed (close_notify)" "$log"
expect_log "... the observer saw it" "server closed the DTLS session" "$work/obs3.err"
pass "credentials at scale, reload, revocation and graceful stop"
