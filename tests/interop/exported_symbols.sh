#!/usr/bin/env bash
# The shared library exports exactly the functions the installed headers
# declare, each with the COAPS_API macro (include/coaps/export.h), each
# under the version node COAPS_0, and nothing outside the coap_/coaps_
# prefixes; the umbrella headers include every public header.
#
# Three lists, from three independent sources:
#   declared  every function declared in an installed header (GCC's
#             -aux-info: the compiler's own list, with file and line);
#   marked    the declarations that carry COAPS_API (the preprocessed
#             headers, COAPS_API expanded to its visibility attribute);
#   exported  nm -D --defined-only on the installed libcoaps.so.0.
# All three must be equal; each difference is printed by name.
BUILD=$1 SRC=$2
. "$(dirname "$0")/lib.bash"
need gcc gcc
need nm binutils
need readelf binutils
work=$(mktemp -d)
trap 'cleanup_bg; rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$BUILD" --prefix "$prefix" >/dev/null || fail "cmake --install failed"
inc=$prefix/include
lib=$(find "$prefix" -name 'libcoaps.so.0' | head -1)
[ -n "$lib" ] || fail "libcoaps.so.0 was not installed"
archive=$(find "$prefix" -name 'libcoaps.a' | head -1)
[ -n "$archive" ] || fail "libcoaps.a was not installed"

# same_set WHAT LEFT_NAME LEFT_FILE RIGHT_NAME RIGHT_FILE: print the names
# in one list and not the other; non-zero when there are any.
same_set() {
  local only_left only_right
  only_left=$(comm -23 "$3" "$5")
  only_right=$(comm -13 "$3" "$5")
  [ -z "$only_left$only_right" ] && return 0
  echo "$1:" >&2
  [ -n "$only_left" ] && { echo "  $2 but not $4:" >&2; sed 's/^/    /' <<<"$only_left" >&2; }
  [ -n "$only_right" ] && { echo "  $4 but not $2:" >&2; sed 's/^/    /' <<<"$only_right" >&2; }
  return 1
}
# The comparison itself can fail: a name missing on one side is reported.
printf 'coap_a\ncoap_b\n' >"$work/l"; printf 'coap_a\n' >"$work/r"
if same_set "self-check" left "$work/l" right "$work/r" 2>"$work/self.txt"; then
  fail "same_set found no difference between different lists"
fi
grep -q '^    coap_b$' "$work/self.txt" || fail "same_set did not name the missing name"

# Every installed header, each included on its own line.
headers=$(cd "$inc" && find . -name '*.h' | sed 's|^\./||' | LC_ALL=C sort)
for h in coap.h coaps/coaps.h coaps/export.h coaps/version.h coaps/seed.h; do
  grep -qx "$h" <<<"$headers" || fail "$h was not installed"
done
sed 's/.*/#include <&>/' <<<"$headers" >"$work/all.c"

# declared: what the compiler saw declared in our headers (static inline
# helpers, if one is ever added, are not exported and are left out).
gcc -std=c11 -fsyntax-only -I"$inc" -aux-info "$work/aux.txt" "$work/all.c" ||
  fail "the installed headers do not compile together"
grep -F "/* $inc/" "$work/aux.txt" | grep -v '\*/ static ' |
  sed -E 's|^/\* [^ ]+ \*/ ||; s/ \(.*//; s/.*[ *]//' | LC_ALL=C sort -u >"$work/declared"
[ -s "$work/declared" ] || fail "no function declarations found in $inc (aux-info format changed?)"

# marked: declarations carrying COAPS_API, from the preprocessor's output
# (line markers tell which file a line comes from; only our headers count).
# The first identifier followed by "(" in each declaration, other
# __attribute__((...)) removed, is its name.
vis='visibility[[:space:]]*\([[:space:]]*"default"[[:space:]]*\)[[:space:]]*\)[[:space:]]*\)'
gcc -std=c11 -E -I"$inc" "$work/all.c" |
  awk -v inc="$inc/" '
    /^# [0-9]+ "/ { f = $3; gsub(/"/, "", f); ours = index(f, inc) == 1; next }
    ours { printf "%s ", $0 }' |
  tr ';{}' '\n\n\n' | grep -E "$vis" | sed -E "s/.*$vis//" |
  sed -E 's/__attribute__[[:space:]]*\(\(([^()]|\([^()]*\))*\)\)//g' |
  sed -E 's/^[^(]*[^A-Za-z0-9_(]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\(.*/\1/' |
  LC_ALL=C sort -u >"$work/marked"
[ -s "$work/marked" ] || fail "no COAPS_API declarations found (export.h changed?)"

# exported: defined dynamic symbols, each NAME@@VERSION; the version node
# itself is an absolute symbol (A) named after the node.
nm -D --defined-only "$lib" >"$work/nm.txt"
awk '$2 != "A" { print $3 }' "$work/nm.txt" >"$work/exported_versioned"
sed 's/@.*//' "$work/exported_versioned" | LC_ALL=C sort -u >"$work/exported"
[ -s "$work/exported" ] || fail "nm -D found nothing in $lib"

status=0
same_set "functions declared in the headers vs declared with COAPS_API (a declaration without it is hidden: a program cannot link it)" \
  declared "$work/declared" "marked COAPS_API" "$work/marked" || status=1
same_set "functions declared in the installed headers vs exported by libcoaps.so.0" \
  declared "$work/declared" exported "$work/exported" || status=1
[ "$status" = 0 ] || fail "the exported set differs from the public headers' declarations (names above)"
pass "libcoaps.so.0 exports exactly the $(wc -l <"$work/declared") functions the installed headers declare, all with COAPS_API"

# Macros that stand for functions (include/coaps/export.h): a function
# taking a versioned struct is exported as NAME_versioned and called as
# NAME(...), a function-like macro passing the header's current
# COAP_*_VERSION. Each NAME_versioned has its NAME macro calling it, each
# such macro calls its own NAME_versioned, and a program written with the
# plain names links the _versioned symbols.
gcc -std=c11 -dM -E -I"$inc" "$work/all.c" |
  grep -E '^#define coaps?_[a-z0-9_]*\(' >"$work/fn_macros.txt" || true
sed -E 's/^#define ([a-z0-9_]+)\(.*/\1/' "$work/fn_macros.txt" | LC_ALL=C sort -u >"$work/macro_names"
grep -E '_versioned$' "$work/declared" | sed 's/_versioned$//' >"$work/versioned_names"
[ -s "$work/versioned_names" ] || fail "no *_versioned function declared (export.h's scheme gone?)"
same_set "functions exported as NAME_versioned vs function-like macros NAME in the headers" \
  "NAME_versioned declared" "$work/versioned_names" "macro NAME" "$work/macro_names" ||
  fail "a _versioned function without its macro, or a function-like coap_ macro without its function (names above)"
while read -r name; do
  body=$(grep -E "^#define $name\(" "$work/fn_macros.txt")
  [[ $body == *"${name}_versioned("* ]] || fail "the macro $name does not call ${name}_versioned: $body"
  [[ $body =~ COAP_[A-Z_]+_VERSION ]] || fail "the macro $name passes no COAP_*_VERSION: $body"
done <"$work/versioned_names"
pass "$(wc -l <"$work/versioned_names") functions taking versioned structs are exported as NAME_versioned, each called through its NAME macro"
cat >"$work/plain.c" <<'C'
#include <coaps/coaps.h>
int main(void) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  coap_context_t *ctx = coap_context_new(&cfg);
  coap_stats_t st;
  coap_context_get_stats(ctx, &st);
  coap_context_free(ctx);
  return (int)st.requests_sent;
}
C
gcc -std=c11 -o "$work/plain" "$work/plain.c" -I"$inc" -L"$(dirname "$lib")" -lcoaps $(
  grep -q "COAPS_SANITIZE:BOOL=ON" "$BUILD/CMakeCache.txt" && echo -fsanitize=address,undefined) ||
  fail "a program using the plain names does not build against the installed library"
undefined=$(nm -u "$work/plain")
for name in coap_context_config_default coap_context_new coap_context_get_stats; do
  expect_contains "the program's reference for $name" "${name}_versioned@COAPS_0" "$undefined"
done
pass "a program written with the plain names links coap_*_versioned@COAPS_0"

# Only functions, only our prefixes, all under COAPS_0.
not_text=$(awk '$2 != "T" && $2 != "A" { print $3 }' "$work/nm.txt")
[ -z "$not_text" ] || fail "exported symbols that are not functions: $not_text"
pass "every exported symbol is a function"
outside=$(grep -vE '^coaps?_' "$work/exported" || true)
[ -z "$outside" ] || fail "exported outside the coap_/coaps_ prefixes: $outside"
pass "nothing outside coap_/coaps_ is exported"
# The node follows the SONAME (docs/architecture.md, "ABI"): libcoaps.so.N
# exports under COAPS_N, so a bump cannot forget cmake/libcoaps.map.
soname=$(readelf -d "$lib" | sed -nE 's/.*Library soname: \[(.*)\].*/\1/p')
[[ $soname =~ ^libcoaps\.so\.[0-9]+$ ]] || fail "unexpected SONAME '$soname'"
node=COAPS_${soname##*.so.}
unversioned=$(grep -v "@@$node\$" "$work/exported_versioned" || true)
[ -z "$unversioned" ] || fail "exported without the version node $node: $unversioned"
expect_eq "the version nodes defined" "$node" "$(awk '$2 == "A" { print $3 }' "$work/nm.txt" | tr '\n' ' ' | sed 's/ $//')"
pass "every exported symbol carries the version $node"

# The internals are really there, only hidden: the static library defines
# them (so the check above would have seen them exported), and even there
# every global name keeps our prefixes, so that linking libcoaps.a cannot
# take a name from the program.
nm -g --defined-only "$archive" 2>/dev/null | awk 'NF == 3 { print $3 }' | LC_ALL=C sort -u >"$work/archive"
internal=$(comm -23 "$work/archive" "$work/exported")
for name in coap_timer_ coap_exch_ coap_peer_table_; do
  grep -q "^$name" <<<"$internal" || fail "libcoaps.a defines no $name* function: pick another witness"
done
pass "$(wc -l <<<"$internal") internal functions (coap_exch_*, coap_timer_*, ...) are defined and not exported"
outside=$(grep -vE '^coaps?_' "$work/archive" || true)
[ -z "$outside" ] || fail "libcoaps.a defines global names outside coap_/coaps_: $outside"
pass "libcoaps.a's global names all start with coap_ or coaps_"

# The umbrellas: coaps/coaps.h reaches every public header but the guide's
# names (coaps/seed.h, left out on purpose: coaps/coaps.h says why); coap.h
# reaches all of them.
reached() {
  echo "#include <$1>" | gcc -std=c11 -M -I"$inc" -x c - |
    tr ' \\' '\n\n' | grep -F "$inc/" | sed "s|^$inc/||" | LC_ALL=C sort -u
}
expect_eq "coaps/coaps.h includes every public header but coaps/seed.h and coap.h" \
  "$(grep -vx -e coaps/seed.h -e coap.h <<<"$headers")" "$(reached coaps/coaps.h)"
expect_eq "coap.h includes every public header" "$headers" "$(reached coap.h)"
# coaps/coaps.h alone has no guide name; coap.h has them.
cat >"$work/umbrella.c" <<'C'
#include <coaps/coaps.h>
int main(void) { return coap_start(0); }
C
if gcc -std=c11 -Werror=implicit-function-declaration -fsyntax-only -I"$inc" "$work/umbrella.c" 2>/dev/null; then
  fail "coaps/coaps.h declares coap_start (the guide's names are meant to be in coap.h only)"
fi
sed -i 's|<coaps/coaps.h>|<coap.h>|' "$work/umbrella.c"
gcc -std=c11 -Werror=implicit-function-declaration -fsyntax-only -I"$inc" "$work/umbrella.c" ||
  fail "coap.h does not declare the guide's coap_start"
pass "the guide's names come with coap.h, not with coaps/coaps.h"

# Next to libcoap in one process (README, "Names"): four names are both
# libcoap's and ours. The version nodes keep each call in its library:
# libcoap's own calls to coap_address_init/coap_address_get_port (through
# its PLT) bind to libcoap's @VER_3 even with libcoaps earlier in the
# search order, and the program's reference binds to the library it was
# linked against (@COAPS_0). Without the version script the first two
# bound to libcoaps (checked by hand), whose coap_address_t differs.
libdir=$(dirname "$lib")
cat >"$work/both.c" <<'C'
#include <coaps/coaps.h>
#include <stdio.h>
void coap_startup(void); /* libcoap's */
int main(void) {
  coap_address_t a;
  coap_startup();
  coap_address_init(&a);
  printf("coaps %s, port %u\n", coaps_version(), coap_address_get_port(&a));
  return 0;
}
C
extra=""
grep -q "COAPS_SANITIZE:BOOL=ON" "$BUILD/CMakeCache.txt" && extra="-fsanitize=address,undefined"
gcc -std=c11 -o "$work/both" "$work/both.c" -I"$inc" -L"$libdir" -lcoaps \
  -l:libcoap-3-notls.so.3 $extra 2>"$work/both.log" ||
  { cat "$work/both.log" >&2; fail "cannot link with libcoap-3-notls.so.3: run 'bash scripts/test.sh', which installs libcoap3"; }
LD_LIBRARY_PATH=$libdir LD_BIND_NOW=1 LD_DEBUG=bindings LD_DEBUG_OUTPUT=$work/bind \
  "$work/both" >"$work/both.out" || fail "the program linked with libcoaps and libcoap fails"
expect_contains "the program runs with both libraries" "coaps " "$(cat "$work/both.out")"
bindings=$(cat "$work/bind".*)
for name in coap_address_init coap_address_get_port; do
  own=$(grep -E "binding file [^ ]*libcoap-3-notls[^ ]* \[0\] to [^ ]+ \[0\]: normal symbol \`$name' \[VER_3\]" <<<"$bindings") ||
    fail "no binding of libcoap's own $name seen (LD_DEBUG output changed?)"
  expect_contains "libcoap's own call to $name stays in libcoap" libcoap-3-notls \
    "$(sed -E 's/.* to ([^ ]+) \[0\]: .*/\1/' <<<"$own")"
  mine=$(grep -E "binding file $work/both \[0\] to [^ ]+ \[0\]: normal symbol \`$name' \[COAPS_0\]" <<<"$bindings") ||
    fail "the program's $name is not bound as $name@COAPS_0"
  expect_contains "the program's $name binds to libcoaps" "libcoaps.so.0 [0]" "$mine"
done
