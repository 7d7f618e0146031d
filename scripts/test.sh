#!/usr/bin/env bash
# Build and run the whole coaps test suite: once as built for release,
# once under AddressSanitizer + UndefinedBehaviorSanitizer, then the
# libFuzzer targets for a short run. Exits non-zero if any stage fails.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

bash scripts/deps.sh || { echo "test: installing dependencies failed" >&2; exit 1; }

declare -a summary
status=0

stage() { # name builddir cmake-args... -- ctest-args...
  local name=$1 dir=$2; shift 2
  local cmake_args=() ctest_args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do cmake_args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  ctest_args=("$@")
  local start=$SECONDS
  echo "=== $name: configure and build in $dir"
  if ! cmake -S "$root" -B "$dir" "${cmake_args[@]}" >/dev/null ||
     ! cmake --build "$dir" -j "$jobs" >"$dir/build.log" 2>&1; then
    cat "$dir/build.log" 2>/dev/null | tail -50
    summary+=("$name: BUILD FAILED")
    status=1
    return
  fi
  echo "=== $name: run"
  if (cd "$dir" && ctest --output-on-failure -j "$jobs" "${ctest_args[@]}"); then
    summary+=("$name: passed ($((SECONDS - start)) s)")
  else
    summary+=("$name: FAILED ($((SECONDS - start)) s)")
    status=1
  fi
}

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

stage "release" build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo
stage "asan+ubsan" build-asan -DCMAKE_BUILD_TYPE=Debug -DCOAPS_SANITIZE=ON
stage "fuzz" build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
  -DCOAPS_FUZZ=ON -DCOAPS_TESTS=OFF -- -L fuzz

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
exit $status
