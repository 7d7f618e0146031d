#!/usr/bin/env bash
# Build and run the whole coaps test suite: once as built for release,
# once under AddressSanitizer + UndefinedBehaviorSanitizer, then the
# libFuzzer targets for a short run. Exits non-zero if any stage fails.
#
# How it is staged (docs/testing.md, "How the suite is run"): most tests
# wait (retransmission timers, lossy paths, timeouts they provoke), not
# compute, so the stages overlap instead of running one after another.
# Each stage is built in turn; as soon as a stage is built its tests start
# in the background, while the next stage compiles:
#   release build -> release tests ..................
#                    asan build -> asan tests ..........................
#                                  fuzz build    (waits) -> fuzz targets ......
# The fuzz targets, which use all the CPU they get for a fixed wall time,
# run alone once the tests are done: beside the sanitized tests they ran
# 3 to 20 times fewer inputs in their 20 s.
# Within a stage ctest runs COAPS_TEST_JOBS tests at a time (default four
# per core): the shell tests bind ephemeral loopback ports only, the few
# that load the CPU say so (PROCESSORS, RESOURCE_LOCK in tests/ and bench/
# CMakeLists.txt) and ctest starts the longest first (COST). Builds run at
# a lower priority (nice), so a test waking up to answer a request gets a
# core at once: the tests' "at once" bounds are a third of the timeout
# they gave, or 1.9 s, never a few milliseconds.
#
# Each stage's ctest output goes to BUILD_DIR/ctest.log; the summary at the
# end gives each stage's build and test time, its slowest tests, and for a
# failed stage the whole log (every failing test's output in it).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)
test_jobs=${COAPS_TEST_JOBS:-$((jobs * 4))}
start=$SECONDS

bash scripts/deps.sh || { echo "test: installing dependencies failed" >&2; exit 1; }

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

declare -a stages=() stage_dirs=() stage_pids=()
declare -A build_s=()

# build NAME DIR CMAKE-ARGS...: configure and build at low priority; on
# failure show the end of the build log.
build() {
  local name=$1 dir=$2 t0=$SECONDS
  shift 2
  echo "=== $name: configure and build in $dir"
  mkdir -p "$dir"
  if ! cmake -S "$root" -B "$dir" "$@" >"$dir/configure.log" 2>&1 ||
     ! nice -n 10 cmake --build "$dir" -j "$jobs" >"$dir/build.log" 2>&1; then
    tail -50 "$dir/configure.log" "$dir/build.log" 2>/dev/null
    build_s[$name]=FAILED
    return 1
  fi
  build_s[$name]=$((SECONDS - t0))
}

# run_tests NAME DIR -- CTEST-ARGS...: the stage's ctest in the
# background; its exit status and wall time land in DIR/ctest.status.
run_tests() {
  local name=$1 dir=$2
  shift 3
  echo "=== $name: tests started"
  (
    t0=$SECONDS
    cd "$dir" && ctest --output-on-failure "$@" >ctest.log 2>&1
    echo "$? $((SECONDS - t0))" >ctest.status
  ) &
  stages+=("$name")
  stage_dirs+=("$dir")
  stage_pids+=($!)
}

rm -f build-test/ctest.status build-asan/ctest.status build-fuzz/ctest.status
build release build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
  run_tests release build-test -- -j "$test_jobs"
build asan+ubsan build-asan -DCMAKE_BUILD_TYPE=Debug -DCOAPS_SANITIZE=ON &&
  run_tests asan+ubsan build-asan -- -j "$test_jobs"
if build fuzz build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
  -DCOAPS_FUZZ=ON -DCOAPS_TESTS=OFF; then
  echo "=== all built after $((SECONDS - start)) s; the fuzz targets wait for the tests"
  wait
  run_tests fuzz build-fuzz -- -L fuzz -j "$jobs"
fi
wait

status=0
declare -a summary=()
for name in release asan+ubsan fuzz; do
  if [ "${build_s[$name]:-FAILED}" = FAILED ]; then
    summary+=("$name: BUILD FAILED")
    status=1
  fi
done
for k in "${!stages[@]}"; do
  name=${stages[$k]} dir=${stage_dirs[$k]}
  read -r rc secs <"$dir/ctest.status" 2>/dev/null || { rc=1 secs=?; }
  counts=$(grep -E '^[0-9]+% tests passed' "$dir/ctest.log" || echo "no ctest summary")
  echo
  if [ "$rc" = 0 ]; then
    summary+=("$name: passed (build ${build_s[$name]} s, tests $secs s: $counts)")
    echo "=== $name: slowest tests"
  else
    summary+=("$name: FAILED (build ${build_s[$name]} s, tests $secs s: $counts)")
    status=1
    echo "=== $name: FAILED; its ctest output:"
    cat "$dir/ctest.log"
    echo "=== $name: slowest tests"
  fi
  grep -E '^ *[0-9]+/[0-9]+ Test +#[0-9]+: ' "$dir/ctest.log" |
    sed -E 's/^.*Test +#[0-9]+: ([^ ]+) .* ([0-9.]+) sec$/\2 \1/' | sort -rn | head -5 |
    awk '{printf "  %6.1f s  %s\n", $1, $2}'
done

echo
echo "=== summary ($((SECONDS - start)) s in all)"
printf '%s\n' "${summary[@]}"
exit $status
