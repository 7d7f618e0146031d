#!/usr/bin/env bash
# The C sources follow .clang-format: every .c and .h under src/, include/,
# tools/, tests/, fuzz/ and bench/ is unchanged by clang-format. On failure
# it names the files; 'clang-format -i FILE' (Debian's clang-format 14, the
# version scripts/deps.sh installs) fixes them.
BUILD=$1 SRC=$2
. "$(dirname "$0")/lib.bash"
need clang-format clang-format
[ -f "$SRC/.clang-format" ] || fail "$SRC/.clang-format is missing"
mapfile -t files < <(cd "$SRC" && find src include tools tests fuzz bench \
  -type f \( -name '*.c' -o -name '*.h' \) -not -path '*/corpus/*' | sort)
[ ${#files[@]} -gt 100 ] || fail "found only ${#files[@]} C files under $SRC"
bad=()
for f in "${files[@]}"; do
  (cd "$SRC" && clang-format --dry-run --Werror "$f" >/dev/null 2>&1) || bad+=("$f")
done
[ ${#bad[@]} -eq 0 ] || fail "not formatted (clang-format -i fixes them): ${bad[*]}"
pass "${#files[@]} C files follow .clang-format"
