#!/usr/bin/env bash
# After 'cmake --install', an outside CMake project writes
#   find_package(coaps 0.1 CONFIG REQUIRED)
# and links coaps::coaps (shared) or coaps::coaps_static; both programs
# run against our server, and each says the library it runs with is the
# version of the header it was built with. A version from another major
# is refused (SameMajorVersion).
BUILD=$1 SRC=$2
. "$(dirname "$0")/lib.bash"
need cmake cmake
need readelf binutils
work=$(mktemp -d)
trap 'cleanup_bg; rm -rf "$work"' EXIT
prefix=$work/prefix
install_build "$prefix"
cfg=$(find "$prefix" -name coapsConfig.cmake | head -1)
[ -n "$cfg" ] || fail "coapsConfig.cmake was not installed"
[ -f "$(dirname "$cfg")/coapsConfigVersion.cmake" ] || fail "coapsConfigVersion.cmake was not installed"
expect_eq "the CMake package sits in LIBDIR/cmake/coaps" "cmake/coaps" \
  "$(basename "$(dirname "$(dirname "$cfg")")")/$(basename "$(dirname "$cfg")")"

mkdir -p "$work/app"
write_outside_client "$work/app/app.c" coap.h
cat >"$work/app/CMakeLists.txt" <<'APP'
cmake_minimum_required(VERSION 3.18)
project(coaps_consumer C)
find_package(coaps 0.1 CONFIG REQUIRED)
message(STATUS "coaps_VERSION=${coaps_VERSION}")
add_executable(app_shared app.c)
target_link_libraries(app_shared PRIVATE coaps::coaps)
add_executable(app_static app.c)
target_link_libraries(app_static PRIVATE coaps::coaps_static)
APP
# Sanitizer builds need their runtime in the program too.
extra=()
san=$(sanitizer_flags)
[ -z "$san" ] || extra=(-DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san")
cmake -S "$work/app" -B "$work/app/build" -DCMAKE_PREFIX_PATH="$prefix" "${extra[@]}" \
  >"$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; fail "find_package(coaps) failed"; }
pass "find_package(coaps 0.1 CONFIG REQUIRED) finds the installed package"
found=$(grep -oE 'coaps_VERSION=[0-9.]+' "$work/configure.log" | cut -d= -f2)
expect_eq "the package's version is the project's" \
  "$(grep -m1 -oE 'project\(coaps VERSION [0-9.]+' "$SRC/CMakeLists.txt" | grep -oE '[0-9.]+$')" "$found"
cmake --build "$work/app/build" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log" >&2; fail "the outside program does not build against coaps::coaps / coaps::coaps_static"; }
pass "an outside program builds with coaps::coaps and with coaps::coaps_static"

# The shared program needs libcoaps.so.0; the static one has coaps inside.
needed_shared=$(readelf -d "$work/app/build/app_shared" | grep NEEDED)
needed_static=$(readelf -d "$work/app/build/app_static" | grep NEEDED)
expect_contains "coaps::coaps links libcoaps.so.0" "[libcoaps.so.0]" "$needed_shared"
expect_not_contains "coaps::coaps_static does not link libcoaps.so" "libcoaps.so" "$needed_static"
expect_contains "coaps::coaps_static brings GnuTLS along" "[libgnutls.so.30]" "$needed_static"

start_coaps_serve "$work/serve.log"
libdir=$(dirname "$(find "$prefix" -name 'libcoaps.so.0' | head -1)")
out=$(LD_LIBRARY_PATH=$libdir "$work/app/build/app_shared" "coap://127.0.0.1:$SERVE_PORT/temp") ||
  fail "the shared program failed: $out"
expect_contains "the shared program runs with the library of its header's version" "version $found" "$out"
expect_contains "the installed shared library serves the program's request" "2.05 Content" "$out"
out=$(env -u LD_LIBRARY_PATH "$work/app/build/app_static" "coap://127.0.0.1:$SERVE_PORT/temp") ||
  fail "the static program failed: $out"
expect_contains "the static program's library is its header's version" "version $found" "$out"
expect_contains "the installed static library serves the program's request" "2.05 Content" "$out"

# A program asking for the next major version is told no.
next=$(( ${found%%.*} + 1 ))
sed -i "s/find_package(coaps 0.1 CONFIG REQUIRED)/find_package(coaps $next.0 CONFIG REQUIRED)/" \
  "$work/app/CMakeLists.txt"
if cmake -S "$work/app" -B "$work/app/build-next" -DCMAKE_PREFIX_PATH="$prefix" >"$work/next.log" 2>&1; then
  fail "find_package(coaps $next.0) accepted version $found"
fi
expect_contains "find_package(coaps $next.0) is refused by the version file" "$found" "$(cat "$work/next.log")"

# The installed tool finds the library next to it (RPATH $ORIGIN/../lib)
# when the build's prefix is not /usr; under /usr (packages) there is no
# RPATH, which tests/interop/debian_packages.sh checks.
configured_prefix=$(grep -m1 '^CMAKE_INSTALL_PREFIX:' "$BUILD/CMakeCache.txt" | cut -d= -f2)
if [ "$configured_prefix" != /usr ]; then
  out=$(env -u LD_LIBRARY_PATH "$prefix/bin/coaps" --version 2>&1) || fail "the installed tool does not run: $out"
  expect_eq "the installed tool runs from the prefix and prints the library's version" "coaps $found" "$out"
else
  pass "prefix /usr: the tool has no RPATH (debian_packages.sh runs it)"
fi
