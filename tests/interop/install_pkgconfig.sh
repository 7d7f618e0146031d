#!/usr/bin/env bash
# After 'cmake --install', an application builds with
#   cc app.c $(pkg-config --cflags --libs coaps)
# and runs: here a tiny client that GETs /temp from our server, after
# checking that the library it runs with is its header's version. It
# includes the umbrella <coaps/coaps.h>, as a new program would
# (install_cmake_package.sh keeps the guide's <coap.h>).
BUILD=$1 SRC=$2
. "$(dirname "$0")/lib.bash"
need pkg-config pkg-config
work=$(mktemp -d)
install_build "$work/prefix"
[ -f "$work/prefix/include/coap.h" ] || fail "coap.h was not installed"
[ -f "$work/prefix/include/coaps/version.h" ] || fail "coaps/version.h (generated) was not installed"
[ -f "$work/prefix/include/coaps/coaps.h" ] || fail "coaps/coaps.h (the umbrella) was not installed"
[ -f "$work/prefix/include/coaps/export.h" ] || fail "coaps/export.h (COAPS_API) was not installed"
[ -z "$(find "$work/prefix" -name '*.in')" ] || fail "a template (*.in) was installed"
pc=$(find "$work/prefix" -name coaps.pc | head -1)
[ -n "$pc" ] || fail "coaps.pc was not installed"
write_outside_client "$work/app.c" coaps/coaps.h
export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs coaps) || fail "pkg-config does not know coaps"
header_version=$(grep -oE '#define COAPS_VERSION "[^"]+"' "$work/prefix/include/coaps/version.h" | cut -d'"' -f2)
expect_eq "pkg-config's version is the header's" "$header_version" "$(pkg-config --modversion coaps)"
# Sanitizer builds need their runtime on the link line too.
extra=$(sanitizer_flags)
cc -Wall -Wextra -o "$work/app" "$work/app.c" $flags $extra || fail "the app does not build with pkg-config's flags"
pass "an app builds with \$(pkg-config --cflags --libs coaps)"
start_coaps_serve "$work/serve.log"
libdir=$(pkg-config --variable=libdir coaps)
out=$(LD_LIBRARY_PATH=$libdir "$work/app" "coap://127.0.0.1:$SERVE_PORT/temp")
expect_contains "the app runs with the library of its header's version" "version $header_version" "$out"
expect_contains "the installed library serves the app's request" "2.05 Content" "$out"
