#!/usr/bin/env bash
# The man pages say what the tool does: coaps(1) must list, in each
# command's section, exactly the flags 'coaps CMD --help' prints, the exit
# codes the tool documents, and the failure causes the library has (the
# same table as the README's, rendered as roff); both pages must render
# without a warning from groff or mandoc.
BUILD=$1
SRC=$2
. "$SRC/tests/interop/lib.bash"
need groff groff
need mandoc mandoc
page=$SRC/docs/man/coaps.1
lib=$SRC/docs/man/coaps.3
[ -f "$page" ] || fail "no $page"
[ -f "$lib" ] || fail "no $lib"

# ---- rendering: no warning at all, from either formatter
for p in "$page" "$lib"; do
  out=$(groff -man -ww -z -Tutf8 "$p" 2>&1) || fail "groff fails on $p: $out"
  [ -z "$out" ] || fail "groff warns on $(basename "$p"): $out"
  out=$(mandoc -T lint -W warning "$p" 2>&1) || fail "mandoc -T lint fails on $(basename "$p"): $out"
  [ -z "$out" ] || fail "mandoc warns on $(basename "$p"): $out"
  pass "$(basename "$p") renders without warnings (groff -ww, mandoc -T lint)"
done

# help_flags CMD: the flags 'coaps CMD --help' documents, one a line,
# sorted: those starting an option line ('  -d, --data DATA ...') and those
# in the usage lines ('usage: coaps keygen [--out DIR] ...'). Flags named
# in the prose (e.g. "with -N no probe") are not documented options.
help_flags() {
  local help
  help=$("$BUILD/coaps" "$1" --help) || fail "coaps $1 --help failed"
  {
    grep -E '^ +(-[A-Za-z], )?--[a-z]' <<<"$help" | grep -oE '^ +(-[A-Za-z], )?--[a-z0-9-]+' |
      grep -oE -- '--?[A-Za-z0-9-]+' || true
    grep -E '^(usage:| +coaps )' <<<"$help" | grep -oE -- '--[a-z0-9-]+' || true
  } | sort -u
}

# man_section CMD: the roff of the subsection of COMMANDS whose title names
# CMD as a word (up to the next .SS or .SH).
man_section() {
  awk -v cmd="$1" '
    /^\.SH/ { in_cmds = ($0 ~ /^\.SH +"?COMMANDS/); on = 0; next }
    /^\.SS/ { on = 0; if (in_cmds) { t = $0; gsub(/[^a-z]+/, " ", t); t = " " t " ";
              if (index(t, " " cmd " ")) on = 1 }; next }
    on' "$page"
}

# man_flags CMD: the flags in the tags (the line after each .TP) of CMD's
# section, one a line, sorted.
man_flags() {
  man_section "$1" | awk 'tag { print; tag = 0 } /^\.TP/ { tag = 1 }' |
    sed -E 's/\\f[BIRP]//g' | {
    while IFS= read -r line; do
      grep -oE '\\-\\-[a-z0-9-]+' <<<"$line" | sed 's/\\//g' || true
      sed -E 's/\\-\\-[a-z0-9-]+//g' <<<"$line" | grep -oE '(^|[^a-z0-9])\\-[A-Za-z]([^A-Za-z0-9-]|$)' |
        grep -oE '\\-[A-Za-z]' | sed 's/\\//g' || true
    done
  } | sort -u
}

commands=$("$BUILD/coaps" --help | sed -n '/^Commands:/,/^$/p' | grep -oE '^  [a-z]+' | tr -d ' ')
[ "$(wc -w <<<"$commands")" -ge 10 ] || fail "coaps --help lists too few commands: $commands"
for cmd in $commands; do
  section=$(man_section "$cmd")
  [ -n "$section" ] || fail "coaps.1 has no COMMANDS subsection for '$cmd'"
  want=$(help_flags "$cmd")
  have=$(man_flags "$cmd")
  [ -n "$want" ] || fail "no flags found in 'coaps $cmd --help'"
  if [ "$want" != "$have" ]; then
    diff <(echo "$want") <(echo "$have") >&2 || true
    fail "coaps.1's section for '$cmd' and 'coaps $cmd --help' list different flags (left: --help)"
  fi
  pass "coaps.1 documents exactly the $(wc -l <<<"$want") flags of 'coaps $cmd --help'"
done
grep -qE '^\.SS +"?coaps help' "$page" || fail "coaps.1 has no section for 'coaps help'"
# ... and no section for a command the tool does not have (any more).
for word in $(awk '/^\.SH/ { c = ($0 ~ /^\.SH +"?COMMANDS/) } c && /^\.SS/' "$page" |
  sed -E 's/^\.SS +//' | tr 'A-Z' 'a-z' | tr -c 'a-z\n' ' '); do
  case " requests coaps help $(echo $commands) " in *" $word "*) ;;
    *) fail "coaps.1 has a section for '$word', which 'coaps --help' does not list" ;; esac
done
pass "coaps.1's COMMANDS sections are the commands 'coaps --help' lists"
grep -qF '\-\-version' "$page" || fail "coaps.1 does not document 'coaps --version'"

# ---- exit codes: the numbers that start an item of an "Exit codes: ..."
# sentence (up to a period ending a line) in the help text.
help_codes() {
  "$@" | perl -0ne 'while (/Exit codes:(.*?)\.(\n|$)/sg) {
      for (split /,/, $1) { print "$1\n" if /^\s*(\d+)\s/ } }' | sort -nu
}
# man_codes SECTION-TITLE: the .TP tags that are a bare number in the
# EXIT STATUS section, before its first .SS (no title) or in the .SS named.
man_codes() {
  awk -v want="$1" '
    /^\.SH/ { in_es = ($0 ~ /^\.SH +"?EXIT STATUS/); ss = ""; next }
    /^\.SS/ { ss = $0; sub(/^\.SS +/, "", ss); gsub(/"/, "", ss); next }
    in_es && tag { if ($0 ~ /^\.B +[0-9]+$/ && ss == want) print $2; tag = 0 }
    in_es && /^\.TP/ { tag = 1 }' "$page" | sort -nu
}
want=$( (help_codes "$BUILD/coaps" --help; help_codes "$BUILD/coaps" get --help) | sort -nu)
have=$(man_codes "")
[ "$(wc -l <<<"$want")" -ge 6 ] || fail "too few exit codes found in coaps --help: $want"
expect_eq "coaps.1's EXIT STATUS lists the request exit codes --help gives" "$(echo $want)" "$(echo $have)"
want=$(help_codes "$BUILD/coaps" doctor --help)
have=$(man_codes "coaps doctor")
[ "$(wc -l <<<"$want")" -ge 6 ] || fail "too few exit codes found in coaps doctor --help: $want"
expect_eq "coaps.1's EXIT STATUS lists the doctor exit codes its --help gives" "$(echo $want)" "$(echo $have)"

# ---- failure causes: the block between the causes markers is exactly
# what the library's table (coaps doctor --causes --markdown, which the
# README carries too) renders to, one .TP entry a cause.
roff_escape() { sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
causes_roff() {
  "$BUILD/coaps" doctor --causes --markdown | tail -n +3 |
    awk -F' [|] ' '{ name = $1; sub(/^[|] `/, "", name); sub(/`$/, "", name);
      code = $4; sub(/ [|]$/, "", code);
      print ".TP"; print ".B " name; print $2; print ".br"; print "Fix: " $3 "."; print ".br";
      print "Exit status of coaps doctor: " code "." }' |
    while IFS= read -r line; do
      case $line in .TP | .br) echo "$line" ;; ".B "*) echo ".B $(roff_escape <<<"${line#.B }")" ;;
        *) roff_escape <<<"$line" ;; esac
    done
}
want=$(causes_roff)
have=$(sed -n '/^\.\\" causes:begin/,/^\.\\" causes:end/p' "$page" | sed '1d;$d')
[ -n "$have" ] || fail "coaps.1 has no causes:begin/causes:end block"
if [ "$want" != "$have" ]; then
  diff <(echo "$want") <(echo "$have") >&2 || true
  fail "coaps.1's causes differ from 'coaps doctor --causes --markdown' (left: the code's, as roff)"
fi
names=$("$BUILD/coaps" doctor --causes | grep -oE '^[a-z][a-z0-9-]+' | sort)
man_names=$(grep -A1 '^\.TP' <<<"$have" | grep '^\.B ' | sed 's/^\.B //; s/\\-/-/g' | sort)
expect_eq "coaps.1 names every cause 'coaps doctor --causes' lists" "$(echo $names)" "$(echo $man_names)"
pass "coaps.1's failure causes match the code's ($(wc -l <<<"$names") causes)"

# ---- coaps(3) points to every public header
for h in "$SRC"/include/coaps/*.h; do
  h=coaps/$(basename "$h")
  case $h in coaps/export.h | coaps/seed.h) continue ;; esac
  grep -qF "$h" "$lib" || fail "coaps.3 does not mention <$h>"
done
pass "coaps.3 mentions each public header"
