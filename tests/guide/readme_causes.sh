#!/usr/bin/env bash
# The README's table of failure causes is the one the code uses: it must be
# exactly what `coaps doctor --causes --markdown` prints, so neither can
# drift from the other.
BUILD=$1
SRC=$2
. "$SRC/tests/interop/lib.bash"
readme=$(sed -n '/<!-- causes:begin -->/,/<!-- causes:end -->/p' "$SRC/README.md" | sed '1d;$d')
table=$("$BUILD/coaps" doctor --causes --markdown)
[ -n "$readme" ] || fail "README.md has no causes:begin/causes:end section"
if [ "$readme" != "$table" ]; then
  diff <(echo "$readme") <(echo "$table") >&2 || true
  fail "README's cause table differs from 'coaps doctor --causes --markdown' (left: README)"
fi
pass "README's cause table matches the code's ($(echo "$table" | tail -n +3 | wc -l) causes)"
for name in no-credentials psk-key-mismatch psk-unknown-identity cert-untrusted cert-expired \
            cert-not-yet-valid cert-name-mismatch client-cert-missing client-cert-rejected \
            rpk-untrusted no-common-suite port-unreachable plain-coap-peer dtls-peer no-answer \
            mtu session-lost nat-rebinding ticket-key-unknown; do
  expect_contains "the table has $name" "| \`$name\` |" "$table"
done
