#!/usr/bin/env bash
# coaps-bench's usage errors: each said in one line naming the option and
# what it wants, then the usage line (not the whole help), exit 64; and
# every option of --help that takes a value, given none, names it. No
# network: every case fails before a socket is opened.
BUILD=$1
. "$(dirname "$0")/lib.bash"
work=$(mktemp -d)
U=coap://127.0.0.1:9/x

# usage_case WHAT WANT ARGS...: coaps-bench ARGS fails with exit 64,
# standard error is exactly "coaps-bench: WANT" and the usage line.
usage_case() {
  local what=$1 want=$2 rc=0; shift 2
  "$BUILD/coaps-bench" "$@" >"$work/out" 2>"$work/err" || rc=$?
  expect_eq "$what: exit 64" 64 "$rc"
  expect_eq "$what: said in one line, then the usage line" \
    "coaps-bench: $want
usage: coaps-bench URI [options] (coaps-bench --help lists them)" "$(cat "$work/err")"
  expect_eq "$what: nothing on standard output" "" "$(cat "$work/out")"
}

usage_case "unknown option" "unknown option '--frobnicate'" --frobnicate "$U"
usage_case "unknown short option" "unknown option '-x'" -x "$U"
usage_case "no name at all" "unknown option '--=3'" --=3 "$U"
usage_case "ambiguous option" "option '--s' is ambiguous: --sessions, --source-addresses" --s 3 "$U"
usage_case "a value for a flag" "--json takes no value, got '--json=yes'" --json=yes "$U"
usage_case "missing value at the end" "--duration needs a value: --duration S" "$U" --duration
usage_case "empty value" "--cacert needs a value: --cacert FILE (got '')" --cacert "" "$U"
usage_case "empty value after =" "--sessions needs a value: --sessions N (got '')" --sessions= "$U"
usage_case "an option where the value belongs" \
  "--psk-identity needs a value: --psk-identity ID (got the option '--psk')" \
  --psk-identity --psk k "$U"
usage_case "a value given twice" "--window given twice (the second time as '8'): give it once" \
  --window 4 --window 8 "$U"
usage_case "a bad number" "--window wants a number from 1 to 64, got '0'" --window 0 "$U"
usage_case "no URI" "no URI: give the server's URI, coap://HOST[:PORT]/PATH or coaps://..." --json
usage_case "two URIs" "one URI only: 'coap://b' comes after 'coap://a'" coap://a coap://b
usage_case "options that go together" "--cert goes with --key" --cert c.pem "$U"

# Every option --help shows with a value (--name WORD), given without one
# at the end of the line, is named with that value.
help=$("$BUILD/coaps-bench" --help) || fail "coaps-bench --help failed"
opts=$(grep -oE -- '--[a-z-]+ [A-Z]+' <<<"$help" | sort -u)
[ "$(wc -l <<<"$opts")" -ge 14 ] || fail "too few options with values in --help: $opts"
while read -r name value; do
  usage_case "$name without its value" "$name needs a value: $name $value" "$U" "$name"
done <<<"$opts"
