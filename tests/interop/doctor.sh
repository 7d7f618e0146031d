#!/usr/bin/env bash
# coaps doctor: each step reported with its result, the chain or the suite
# shown when it works, the failed step with cause and fix when it does not,
# an exit code per cause class, and the same in --json.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need jq jq
work=$(mktemp -d)
make_creds "$work/c"
K=$work/c
rc() { set +e; "$BUILD/coaps" "$@" >"$work/out" 2>"$work/err"; RC=$?; set -e; OUT=$(cat "$work/out"); ERR=$(cat "$work/err"); }
# json_is EXPR EXPECTED: a jq expression on the last --json output
json_is() { expect_eq "json $1" "$2" "$(jq -r "$1" <<<"$OUT")"; }
# For runs whose verdict rests on the port probe's answer: the probe ends
# 50 ms after the first answer, so a long timeout costs nothing when the
# server answers, and a sanitized server on a loaded machine is not
# mistaken for a silent one by the default second.
PROBE=(--probe-timeout 10)

start_coaps_serve_dtls "$work/serve.log" --psk-identity me --psk secret \
  --cert "$K/server-cert.pem" --key "$K/server-key.pem"
plain=$SERVE_PORT; dtls=$DTLS_PORT

# ---- it works: every step ok, with what was negotiated ----
rc doctor "coaps://localhost:$dtls/temp" --cacert "$K/ca-cert.pem" "${PROBE[@]}"
expect_eq "certificates: exit 0" 0 "$RC"
for step in resolve credentials "probe port" "cookie exchange" negotiation authentication \
            "key confirmation" "CoAP request"; do
  grep -qE "^  $step +ok " <<<"$OUT" || fail "step '$step' not ok: $OUT"
done
pass "certificates: all eight steps ok"
expect_contains "probe saw the DTLS server" "HelloVerifyRequest" "$OUT"
expect_contains "suite is shown" "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8" "$OUT"
expect_contains "chain: subject" "certificate 1: CN=localhost" "$OUT"
expect_contains "chain: issuer and validity" "issued by CN=coaps demo CA, valid " "$OUT"
expect_contains "chain: names" "names: DNS:localhost, IP:127.0.0.1" "$OUT"
expect_contains "the request" "GET -> 2.05 Content" "$OUT"

rc doctor "coaps://127.0.0.1:$dtls/temp" --psk-identity me --psk secret --json "${PROBE[@]}"
expect_eq "PSK --json: exit 0" 0 "$RC"
json_is .ok true
json_is .dtls.suite TLS_PSK_WITH_AES_128_CCM_8
json_is .dtls.mode psk
# A PSK-only hello gets no cookie under the default policy (when-needed).
json_is .dtls.cookie false
json_is '.steps | length' 8
json_is '[.steps[].status] | unique | join(",")' ok
json_is .response "2.05 Content"

rc doctor "coap://127.0.0.1:$plain/temp" "${PROBE[@]}"
expect_eq "coap://: exit 0" 0 "$RC"
expect_contains "coap://: the ping got an RST" "CoAP ping got a CoAP RST" "$OUT"

# ---- failures, one per class of exit code ----
rc doctor "coaps://127.0.0.1:$dtls/temp" --psk-identity me --psk wrong --json
expect_eq "wrong key: exit 5 (trust)" 5 "$RC"
json_is .failure.cause psk-key-mismatch
json_is .failure.step "key confirmation"
json_is .failure.detected_by "peer alert"
json_is .failure.alert decrypt_error
json_is .failure.class trust
json_is '.steps[] | select(.name=="authentication") | .status' ok
json_is '.steps[] | select(.name=="CoAP request") | .status' "not reached"
# The failed step says in --json what it says in the text output.
json_is '[.steps[] | select(.status=="failed") | .detail | length > 0] | (length == 1 and all)' true

"$BUILD/coaps" keygen --out "$work/other" --host localhost >/dev/null
rc doctor "coaps://localhost:$dtls/temp" --cacert "$work/other/ca-cert.pem"
expect_eq "untrusted chain: exit 5" 5 "$RC"
expect_contains "untrusted chain: the failed step" "result: FAILED at authentication" "$OUT"
expect_contains "untrusted chain: the chain is still shown" "certificate 1: CN=localhost" "$OUT"

rc doctor "coaps://127.0.0.1:$plain/temp" --psk-identity me --psk secret "${PROBE[@]}"
expect_eq "plain port: exit 4 (network)" 4 "$RC"
expect_contains "plain port: found by the probe" "FAILED at probe port" "$OUT"
expect_contains "plain port: cause" "[plain-coap-peer]" "$OUT"

rc doctor "coap://127.0.0.1:$dtls/temp" "${PROBE[@]}"
expect_eq "coap:// to the DTLS port: exit 4" 4 "$RC"
expect_contains "coap:// to the DTLS port: cause" "[dtls-peer]" "$OUT"

free=$(pick_free_udp_port)
rc doctor "coaps://127.0.0.1:$free/temp" --psk-identity me --psk secret --json
expect_eq "nothing listening: exit 4" 4 "$RC"
json_is .failure.cause port-unreachable

start_blackhole
rc doctor "coaps://127.0.0.1:$HOLE_PORT/temp" --psk-identity me --psk secret \
  --probe-timeout 0.3 --handshake-timeout 1.5
expect_eq "silence: exit 3 (no answer)" 3 "$RC"
expect_contains "silence: the probe saw nothing" "neither a DTLS ClientHello nor a CoAP ping" "$OUT"
expect_contains "silence: cause" "[no-answer]" "$OUT"
expect_contains "silence: failed step" "FAILED at cookie exchange" "$OUT"

start_coaps_serve_dtls "$work/serve_cert.log" --cert "$K/server-cert.pem" --key "$K/server-key.pem"
rc doctor "coaps://127.0.0.1:$DTLS_PORT/temp" --psk-identity me --psk secret
expect_eq "no common suite: exit 6" 6 "$RC"
expect_contains "no common suite: failed step" "FAILED at negotiation" "$OUT"

rc doctor "coaps://127.0.0.1:$DTLS_PORT/temp" --json
expect_eq "no credentials: exit 7" 7 "$RC"
json_is .failure.cause no-credentials
json_is .failure.step credentials
json_is '.steps[] | select(.name=="credentials") | .detail' \
  "coaps:// needs credentials and none are configured; nothing was sent"

rc doctor "coaps://no-such-host.invalid/temp" --psk-identity me --psk secret
expect_eq "unknown host: exit 4" 4 "$RC"
expect_contains "unknown host: said" "FAILED at resolve" "$OUT"

rc doctor "http://x/"
expect_eq "bad URI: exit 64" 64 "$RC"
