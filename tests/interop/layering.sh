#!/usr/bin/env bash
# The layering of docs/architecture.md ("Layering rule and its check"),
# checked on the objects and sources of this build:
#   1. symbols: every undefined symbol of a layer's object files is
#      defined by that layer or one listed before it (nm over the library's
#      objects, each defined symbol attributed to the folder defining it);
#   2. includes: a file in src/L includes headers of L and of the layers
#      before it only, and context/context_internal.h (the context's
#      struct) only from src/context;
#   3. the core (common … context) links into a program without src/io and
#      src/seed: the core_only program, linked against the coaps_core
#      library alone, runs a request and its answer over a transport of its
#      own, and finds no name resolver installed; the simulated-network
#      tests are linked against coaps_core too (no function of src/io or
#      src/seed in them but the core's coap_context_new_versioned, sim/support_core.c).
# Each violation is printed with the symbol or include and the files.
BUILD=$1 SRC=$2
. "$(dirname "$0")/lib.bash"
need nm binutils

LAYERS=(common wire exchange security peer server client context io seed)
CORE_LAST=context
declare -A RANK
for i in "${!LAYERS[@]}"; do RANK[${LAYERS[$i]}]=$i; done

work=$(mktemp -d)
trap 'cleanup_bg; rm -rf "$work"' EXIT

# ---- 1. symbols ----
# The library's objects: CMakeFiles/<target>.dir/src/<layer>/<file>.c.o of
# the object libraries that make libcoaps (CMakeLists.txt: the core's and
# the shell's; before they were split, one).
targets="coaps_core_objects coaps_shell_objects"
[ -d "$BUILD/CMakeFiles/coaps_core_objects.dir" ] || targets=coaps_objects
declare -A OBJ
for target in $targets; do
  while IFS= read -r o; do
    OBJ[${o#*.dir/}]=$o
  done < <(find "$BUILD/CMakeFiles/$target.dir/src" -name '*.c.o' 2>/dev/null)
done
[ "${#OBJ[@]}" -gt 0 ] || fail "no library objects under $BUILD/CMakeFiles (build first)"
for layer in "${LAYERS[@]}"; do
  compgen -G "$SRC/src/$layer/*.c" >/dev/null || fail "src/$layer has no sources"
done

# symbol → "layer file" of its definition
declare -A DEF
for rel in "${!OBJ[@]}"; do
  layer=${rel#src/}; layer=${layer%%/*}
  [ -n "${RANK[$layer]:-}" ] || fail "src/$layer is no layer of docs/architecture.md"
  while read -r sym type _; do
    case $type in [A-Z]) [ "$type" = U ] || DEF[$sym]="$layer $rel" ;; esac
  done < <(nm -P --defined-only "${OBJ[$rel]}")
done

violations=0
for rel in $(printf '%s\n' "${!OBJ[@]}" | sort); do
  layer=${rel#src/}; layer=${layer%%/*}
  while read -r sym _; do
    def=${DEF[$sym]:-}
    [ -n "$def" ] || continue # libc, GnuTLS
    dlayer=${def%% *}
    if [ "${RANK[$dlayer]}" -gt "${RANK[$layer]}" ]; then
      echo "layering: ${rel%.o} ($layer) uses $sym, defined by ${def#* } ($dlayer, a later layer)" >&2
      violations=$((violations + 1))
    fi
  done < <(nm -P -u "${OBJ[$rel]}")
done

# ---- 2. includes ----
for layer in "${LAYERS[@]}"; do
  for f in "$SRC"/src/"$layer"/*.[ch]; do
    [ -e "$f" ] || continue
    while IFS=: read -r line inc; do
      target=${inc%%/*}
      [ -n "${RANK[$target]:-}" ] || continue # coaps/… (public headers)
      if [ "${RANK[$target]}" -gt "${RANK[$layer]}" ]; then
        echo "layering: src/$layer/${f##*/}:$line includes $inc (a later layer)" >&2
        violations=$((violations + 1))
      fi
      if [ "$inc" = context/context_internal.h ] && [ "$layer" != context ]; then
        echo "layering: src/$layer/${f##*/}:$line includes $inc, which only src/context may" \
          "(the others use context/shell.h or their own layer's interface)" >&2
        violations=$((violations + 1))
      fi
    done < <(grep -noE '^#include "[a-z_]+/[a-z_]+\.h"' "$f" | sed -E 's/:#include "(.*)"/:\1/')
  done
done
[ "$violations" -eq 0 ] || fail "$violations layering violation(s) (docs/architecture.md)"
pass "each layer's objects use symbols of its own and earlier layers only; includes follow"

# ---- 3. the core links and runs alone ----
core_lib=$BUILD/libcoaps_core.a
[ -f "$core_lib" ] || fail "$core_lib was not built (the core's own library)"
for f in "$SRC"/src/io/*.c "$SRC"/src/seed/*.c; do
  ar t "$core_lib" | grep -qx "${f##*/}.o" &&
    fail "libcoaps_core.a holds ${f##*/}.o, an object of the I/O shell or the guide API"
done
[ -x "$BUILD/core_only" ] || fail "$BUILD/core_only was not built"
"$BUILD/core_only" >"$work/out" 2>&1 || { cat "$work/out" >&2; fail "core_only failed"; }
cat "$work/out"
pass "the core (common … $CORE_LAST) links into a program and serves a request without src/io"

shell_syms=$work/shell_syms
for rel in "${!OBJ[@]}"; do
  case $rel in src/io/* | src/seed/*) nm -P --defined-only "${OBJ[$rel]}" ;; esac
done | awk '$2 ~ /^[A-Z]$/ {print $1}' | grep -vx coap_context_new_versioned | sort -u >"$shell_syms"
[ -s "$shell_syms" ] || fail "no symbols found in the objects of src/io and src/seed"
sims=0
for bin in "$BUILD"/tests/sim_test_*; do
  [ -x "$bin" ] || continue
  sims=$((sims + 1))
  extra=$(nm -P --defined-only "$bin" | awk '{print $1}' | sort -u | comm -12 - "$shell_syms")
  [ -z "$extra" ] || fail "${bin##*/} holds functions of the I/O shell: $(echo $extra)"
done
[ "$sims" -gt 0 ] || fail "no sim test programs under $BUILD/tests"
pass "the $sims simulated-network test programs hold no function of src/io or src/seed"
