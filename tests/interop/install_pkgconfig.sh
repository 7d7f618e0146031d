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
cmake --install "$BUILD" --prefix "$work/prefix" >/dev/null || fail "cmake --install failed"
[ -f "$work/prefix/include/coap.h" ] || fail "coap.h was not installed"
[ -f "$work/prefix/include/coaps/version.h" ] || fail "coaps/version.h (generated) was not installed"
[ -f "$work/prefix/include/coaps/coaps.h" ] || fail "coaps/coaps.h (the umbrella) was not installed"
[ -f "$work/prefix/include/coaps/export.h" ] || fail "coaps/export.h (COAPS_API) was not installed"
[ -z "$(find "$work/prefix" -name '*.in')" ] || fail "a template (*.in) was installed"
pc=$(find "$work/prefix" -name coaps.pc | head -1)
[ -n "$pc" ] || fail "coaps.pc was not installed"
cat >"$work/app.c" <<'APP'
#include <coaps/coaps.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
  if (argc != 2) return 2;
  if (strcmp(coaps_version(), COAPS_VERSION) != 0 || coaps_version_num() != COAPS_VERSION_NUM) {
    printf("header %s, library %s\n", COAPS_VERSION, coaps_version());
    return 3;
  }
  printf("version %s\n", coaps_version());
  coap_context_t *ctx = coap_context_new(NULL);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, argv[1]);
  coap_response_copy_t r;
  int rc = coap_request_blocking(ctx, &o, &r);
  if (rc == 0) printf("%s %s\n", coap_code_name(r.code), (const char *)r.payload);
  coap_response_copy_clear(&r);
  coap_context_free(ctx);
  return rc == 0 ? 0 : 1;
}
APP
export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs coaps) || fail "pkg-config does not know coaps"
header_version=$(grep -oE '#define COAPS_VERSION "[^"]+"' "$work/prefix/include/coaps/version.h" | cut -d'"' -f2)
expect_eq "pkg-config's version is the header's" "$header_version" "$(pkg-config --modversion coaps)"
# Sanitizer builds need their runtime on the link line too.
extra=""
grep -q "COAPS_SANITIZE:BOOL=ON" "$BUILD/CMakeCache.txt" && extra="-fsanitize=address,undefined"
cc -Wall -Wextra -o "$work/app" "$work/app.c" $flags $extra || fail "the app does not build with pkg-config's flags"
pass "an app builds with \$(pkg-config --cflags --libs coaps)"
start_coaps_serve "$work/serve.log"
libdir=$(pkg-config --variable=libdir coaps)
out=$(LD_LIBRARY_PATH=$libdir "$work/app" "coap://127.0.0.1:$SERVE_PORT/temp")
expect_contains "the app runs with the library of its header's version" "version $header_version" "$out"
expect_contains "the installed library serves the app's request" "2.05 Content" "$out"
