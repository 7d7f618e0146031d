#!/usr/bin/env bash
# The status page in a real browser (headless Chromium): while a client
# with a wrong key fails, the page's script shows the failure with its
# cause and fix, an identity that is markup (attacker-controlled) shows
# as text, and the filter (opened as /?filter=TEXT) keeps one device's. A screenshot is kept under the build directory.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need chromium
work=$(mktemp -d)
# (under 64 bytes: the server keeps that much of an identity)
evil="<script>document.title='pwned'</script><b>bold</b>"

start_coaps_serve_dtls "$work/serve.log" -w 1 --psk-identity "$evil" --psk secret --metrics 0
M=$(grep -m1 -oE 'metrics on http://127\.0\.0\.1:[0-9]+' "$work/serve.log" | grep -oE 'http://.*')
[ -n "$M" ] || fail "no metrics line: $(cat "$work/serve.log")"
"$BUILD/coaps" get "coaps://127.0.0.1:$DTLS_PORT/temp" --psk-identity "$evil" --psk wrong \
  >/dev/null 2>&1 && fail "the wrong key worked"
"$BUILD/coaps" get "coaps://127.0.0.1:$DTLS_PORT/temp" --psk-identity stranger --psk secret \
  >/dev/null 2>&1 && fail "an unknown identity worked"
# The worker publishes within 100 ms (and the page refreshes every 2 s).
for _ in $(seq 40); do
  curl -sf "$M/status.json" | grep -q psk-unknown-identity && break
  sleep 0.1
done

chrome() {
  timeout 90 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$work/profile" \
    --virtual-time-budget=5000 --window-size=1280,900 "$@" 2>>"$work/chromium.err"
}
chrome --dump-dom "$M/" >"$work/dom.html" || fail "chromium failed: $(tail -5 "$work/chromium.err")"
dom=$(cat "$work/dom.html")
expect_contains "the page ran its script (a row per failure)" '<td class="fix">' "$dom"
expect_contains "the failure's cause" "<td>psk-key-mismatch</td>" "$dom"
expect_contains "the failure's fix" "give the client the key this server has for" "$dom"
expect_contains "the failure's peer" "<td>127.0.0.1:" "$dom"
expect_contains "an identity that is markup shows as text" \
  "<td>&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;</td>" "$dom"
expect_contains "the identity's markup did not run" "<title>coaps status</title>" "$dom"
expect_not_contains "no element made from the identity" "<b>bold</b>" "$dom"
expect_contains "the handshake success rate" '<span id="rate">0.0%</span>' "$dom"

expect_eq "a row per failed handshake" 2 "$(grep -o '<td class="fix">' <<<"$dom" | wc -l)"

# /?filter=TEXT opens the page filtered: one device's failures only.
chrome --dump-dom "$M/?filter=strang" >"$work/filtered.html" || fail "chromium failed (filter)"
filtered=$(cat "$work/filtered.html")
expect_eq "filtered: one row" 1 "$(grep -o '<td class="fix">' <<<"$filtered" | wc -l)"
expect_contains "filtered: the stranger's row" "<td>stranger</td>" "$filtered"
expect_not_contains "filtered: not the other device's" "<td>&lt;script&gt;" "$filtered"

shot=$BUILD/status_page.png
rm -f "$shot"
chrome --screenshot="$shot" "$M/" >/dev/null || fail "chromium --screenshot failed"
file "$shot" | grep -q "PNG image data" || fail "no screenshot at $shot"
echo "screenshot of the status page: $shot"
pass "screenshot taken"
