#!/usr/bin/env bash
# The coaps tool as a script sees it: help, usage errors, exit codes,
# payload sources, verbose output, and errors that say what is wrong.
BUILD=$1
. "$(dirname "$0")/lib.bash"
coaps() { "$BUILD/coaps" "$@"; }
work=$(mktemp -d)

# slurp VAR FILE: FILE's text in VAR without its trailing newlines, as
# $(cat FILE) would give it, without a process (hundreds of cases).
slurp() {
  local -n into=$1
  IFS= read -r -d '' into <"$2" || true
  while [[ $into == *$'\n' ]]; do into=${into%$'\n'}; done
}
# rc CMD...: run, capture exit status in RC, stdout in OUT, stderr in ERR,
# and how long it took in MS.
rc() {
  local t0=${EPOCHREALTIME/./}
  local out=$work/rc.$BASHPID # parts (below) run rc side by side
  set +e; "$@" >"$out.out" 2>"$out.err"; RC=$?; set -e
  MS=$(((${EPOCHREALTIME/./} - t0) / 1000))
  slurp OUT "$out.out"; slurp ERR "$out.err"
}
# Cases that only run the tool and read what it said run side by side (the
# tool's start-up, sanitized, is most of this test's time), then are
# checked one by one in their order. spawn ID CMD...: CMD in the
# background, at most JOBS at once; collect ID: its RC, OUT and ERR.
JOBS=$(($(nproc) * 2))
declare -A spawned=()
mkdir "$work/par"
spawn() {
  local id=$1 done_pid
  shift
  if [ "${#spawned[@]}" -ge "$JOBS" ]; then
    wait -n -p done_pid "${!spawned[@]}" || true
    unset "spawned[$done_pid]"
  fi
  (
    set +e
    "$@" >"$work/par/$id.out" 2>"$work/par/$id.err"
    echo $? >"$work/par/$id.rc"
  ) &
  spawned[$!]=1
}
spawned_all() {
  [ "${#spawned[@]}" = 0 ] || wait "${!spawned[@]}" || true
  spawned=()
}
collect() {
  slurp RC "$work/par/$1.rc"
  slurp OUT "$work/par/$1.out"
  slurp ERR "$work/par/$1.err"
}
# before TIMEOUT_S WHAT: the last run ended in under a third of TIMEOUT_S,
# the timeout it was given, so that timeout did not end it. A sanitized
# run on a loaded machine can take seconds where a few ms are usual: the
# bound comes from the timeout, never from a small absolute figure.
before() {
  local max=$(($1 * 1000 / 3))
  [ "$MS" -lt "$max" ] || fail "$2: took $MS ms, expected under $max ms (a third of the $1 s timeout)"
  pass "$2 (${MS} ms, the timeout is $1 s)"
}

for sub in "" get post put delete fetch patch ipatch observe serve; do
  rc coaps $sub --help
  expect_eq "coaps $sub --help exits 0" 0 "$RC"
  expect_contains "coaps $sub --help prints usage" "usage: coaps" "$OUT"
done

rc coaps
expect_eq "no command exits 64" 64 "$RC"
rc coaps frobnicate
expect_eq "unknown command exits 64" 64 "$RC"
expect_contains "unknown command is named" "unknown command 'frobnicate'" "$ERR"
rc coaps get
expect_eq "missing URI exits 64" 64 "$RC"
expect_contains "missing URI is said" "missing URI" "$ERR"

# "coaps help CMD" is "coaps CMD --help".
for sub in get serve keygen doctor; do
  rc coaps help $sub
  expect_eq "coaps help $sub exits 0" 0 "$RC"
  expect_contains "coaps help $sub shows $sub's usage" "usage: coaps $sub" "$OUT"
done
rc coaps help frobnicate
expect_eq "help on an unknown command exits 64" 64 "$RC"
expect_contains "help on an unknown command names it" "unknown command 'frobnicate'" "$ERR"

# An option without its value: named, with the value it wants, exit 64.
mapfile -t cases <<'CASES'
get coap://127.0.0.1/x -t%-t needs a value: -t SECONDS
get coap://127.0.0.1/x --timeout%--timeout needs a value: --timeout SECONDS
get coap://127.0.0.1/x -d%-d needs a value: -d TEXT|@FILE|-
get coap://127.0.0.1/x --psk%--psk needs a value: --psk KEY
get coap://127.0.0.1/x --psk-hex%--psk-hex needs a value: --psk-hex HEX
get coap://127.0.0.1/x --cacert%--cacert needs a value: --cacert FILE
get coap://127.0.0.1/x -O%-O needs a value: -O NUM,VALUE
serve -p%-p needs a value: -p PORT
serve --workers%--workers needs a value: --workers N
keygen -o%-o needs a value: -o DIR
doctor coaps://127.0.0.1/x --probe-timeout%--probe-timeout needs a value: --probe-timeout SECONDS
CASES
for k in "${!cases[@]}"; do
  IFS='%' read -r args want <<<"${cases[k]}"
  read -ra argv <<<"$args"
  spawn "value$k" "$BUILD/coaps" "${argv[@]}"
done
spawned_all
for k in "${!cases[@]}"; do
  IFS='%' read -r args want <<<"${cases[k]}"
  collect "value$k"
  expect_eq "coaps $args exits 64" 64 "$RC"
  expect_contains "coaps $args names the missing value" "$want" "$ERR"
  expect_not_contains "coaps $args is not 'unknown'" "unknown" "$ERR"
done
rc coaps get --frobnicate coap://127.0.0.1/x
expect_eq "an unknown option exits 64" 64 "$RC"
expect_contains "an unknown option is named" "unknown option '--frobnicate'" "$ERR"
# Usage lines name the command as typed.
rc coaps ipatch "coap://"
expect_eq "a bad URI exits 64" 64 "$RC"
expect_contains "a bad URI's usage line names the command as typed" "usage: coaps ipatch coap[s]://" "$ERR"
rc coaps keygen extra
expect_eq "keygen with an extra argument exits 64" 64 "$RC"
expect_contains "keygen with an extra argument shows its usage" "usage: coaps keygen" "$ERR"

# Every usage error: one line saying what is wrong, then the command's
# usage line pointing at --help, exit 64, and nothing else on stderr.
# ('' in a case is an empty argument.)
mapfile -t cases <<'CASES'
--version x%--version takes no argument, got 'x'%usage: coaps --version  (coaps --help for more)
get coap://127.0.0.1/x -w 3%unknown option '-w' for coaps get (commands that take it: serve)%usage: coaps get URI [options]  (coaps get --help for more)
serve --data x%unknown option '--data' for coaps serve (commands that take it: get, post, put, delete, fetch, patch, ipatch, observe)%usage: coaps serve [options]  (coaps serve --help for more)
keygen --psk x%unknown option '--psk' for coaps keygen (commands that take it: get, post, put, delete, fetch, patch, ipatch, observe, doctor, serve)%usage: coaps keygen [--out DIR] [--host NAME]... [--force] | --ticket-key FILE | --state-key FILE [--force]  (coaps keygen --help for more)
get coap://127.0.0.1/x -vz%unknown option '-z'%usage: coaps get URI [options]  (coaps get --help for more)
serve --max 3%option '--max' is ambiguous: --max-peers, --max-body%usage: coaps serve [options]  (coaps serve --help for more)
get coap://127.0.0.1/x --h%option '--h' is ambiguous: --help, --handshake-timeout%usage: coaps get URI [options]  (coaps get --help for more)
get coap://127.0.0.1/x --=x%unknown option '--=x'%usage: coaps get URI [options]  (coaps get --help for more)
get coaps://127.0.0.1:9/x --psk-identity me --psk x --session ''%--session wants a value, got an empty one%usage: coaps get URI [options]  (coaps get --help for more)
get coaps://127.0.0.1:9/x --psk-identity '' --psk x%--psk-identity wants a value, got an empty one%usage: coaps get URI [options]  (coaps get --help for more)
keygen -H '' -o x%--host wants a value, got an empty one%usage: coaps keygen [--out DIR] [--host NAME]... [--force] | --ticket-key FILE | --state-key FILE [--force]  (coaps keygen --help for more)
doctor coap://127.0.0.1/x --json=yes%--json takes no value, got '--json=yes'%usage: coaps doctor URI [options]  (coaps doctor --help for more)
get coap://127.0.0.1/x -t 1 --timeout 2%--timeout given twice (the second time as '2'): give it once%usage: coaps get URI [options]  (coaps get --help for more)
put coap://127.0.0.1/x -d a -d b%--data given twice (the second time as 'b'): give it once%usage: coaps put URI [options]  (coaps put --help for more)
keygen -o a -o b%--out given twice (the second time as 'b'): give it once%usage: coaps keygen [--out DIR] [--host NAME]... [--force] | --ticket-key FILE | --state-key FILE [--force]  (coaps keygen --help for more)
serve -p 1 --port 2%--port given twice (the second time as '2'): give it once%usage: coaps serve [options]  (coaps serve --help for more)
get coaps://127.0.0.1:9/x --psk-identity me --psk-hex zz%--psk-hex wants the key as pairs of hex digits (0-9, a-f), got 'zz'%usage: coaps get URI [options]  (coaps get --help for more)
get coaps://127.0.0.1:9/x --psk-identity me --psk-hex abc%--psk-hex wants the key as pairs of hex digits (0-9, a-f), got 'abc'%usage: coaps get URI [options]  (coaps get --help for more)
get coaps://127.0.0.1:9/x --psk secret%--psk/--psk-hex need --psk-identity too%usage: coaps get URI [options]  (coaps get --help for more)
serve --psk-identity me%--psk-identity needs --psk or --psk-hex too%usage: coaps serve [options]  (coaps serve --help for more)
get coaps://127.0.0.1:9/x --psk-identity me --psk a --psk-hex 00%give --psk or --psk-hex, not both%usage: coaps get URI [options]  (coaps get --help for more)
get coaps://127.0.0.1:9/x --cert c.pem%--cert needs --key FILE (its private key)%usage: coaps get URI [options]  (coaps get --help for more)
doctor coaps://127.0.0.1:9/x --key k.pem%--key goes with --cert (or --rpk)%usage: coaps doctor URI [options]  (coaps doctor --help for more)
get coaps://127.0.0.1:9/x --rpk%--rpk needs --key FILE (an EC P-256 private key)%usage: coaps get URI [options]  (coaps get --help for more)
get coaps://127.0.0.1:9/x --mtu 10x%--mtu wants a number of bytes from 256 to 65535, got '10x'%usage: coaps get URI [options]  (coaps get --help for more)
serve --mtu 100%--mtu wants a number of bytes from 256 to 65535, got '100'%usage: coaps serve [options]  (coaps serve --help for more)
get coaps://127.0.0.1:9/x --cookie never%unknown option '--cookie' for coaps get (commands that take it: serve)%usage: coaps get URI [options]  (coaps get --help for more)
get coaps://127.0.0.1:9/x --require-client-cert%unknown option '--require-client-cert' for coaps get (commands that take it: serve)%usage: coaps get URI [options]  (coaps get --help for more)
serve --session s%unknown option '--session' for coaps serve (commands that take it: get, post, put, delete, fetch, patch, ipatch, observe, doctor)%usage: coaps serve [options]  (coaps serve --help for more)
serve --psk-identity me --psk x --require-client-cert%--require-client-cert needs --cacert to verify them with%usage: coaps serve [options]  (coaps serve --help for more)
get coaps://127.0.0.1:9/x --session s%--session needs credentials (--psk-identity or --cacert) to resume%usage: coaps get URI [options]  (coaps get --help for more)
serve --cookie sometimes%--cookie wants when-needed, always, under-load or never, got 'sometimes'%usage: coaps serve [options]  (coaps serve --help for more)
serve --address nowhere%--address wants a numeric IPv4 or IPv6 address, got 'nowhere'%usage: coaps serve [options]  (coaps serve --help for more)
doctor coap://127.0.0.1/x --markdown%--markdown goes with --causes%usage: coaps doctor URI [options]  (coaps doctor --help for more)
doctor --causes --json%--causes takes no other option than --markdown%usage: coaps doctor URI [options]  (coaps doctor --help for more)
doctor --causes coap://127.0.0.1/x%--causes takes no URI%usage: coaps doctor URI [options]  (coaps doctor --help for more)
get coap://127.0.0.1/x -b 100%--block-size wants 16, 32, 64, 128, 256, 512 or 1024, got '100'%usage: coaps get URI [options]  (coaps get --help for more)
get coap://127.0.0.1/x coap://127.0.0.1/y%unexpected argument 'coap://127.0.0.1/y'%usage: coaps get URI [options]  (coaps get --help for more)
CASES
for k in "${!cases[@]}"; do
  IFS='%' read -r args want usage <<<"${cases[k]}"
  read -ra argv <<<"$args"
  for i in "${!argv[@]}"; do [ "${argv[i]}" != "''" ] || argv[i]=; done
  spawn "usage$k" "$BUILD/coaps" "${argv[@]}"
done
spawned_all
for k in "${!cases[@]}"; do
  IFS='%' read -r args want usage <<<"${cases[k]}"
  collect "usage$k"
  expect_eq "coaps $args exits 64" 64 "$RC"
  expect_eq "coaps $args: what is wrong, then how to get help" \
    "$(printf 'coaps: %s\n%s' "$want" "$usage")" "$ERR"
  expect_eq "coaps $args prints nothing on stdout" "" "$OUT"
done
# Swept over every command's --help: each option that takes a value,
# given without one, is named with the value it wants; each option of
# another command is refused naming the commands that take it.
declare -A flags_of
for cmd in get serve keygen doctor; do
  flags_of[$cmd]=$(coaps $cmd --help | grep -oE '^ +(-[A-Za-z], )?--[a-z0-9-]+( [A-Z]|\b)' |
    grep -oE -- '--[a-z0-9-]+( [A-Z])?' | sort -u)
done
declare -A operand=([get]=coap://127.0.0.1/x [doctor]=coap://127.0.0.1/x [serve]= [keygen]=)
# The cases first (each: command, flag, the other command or "" for a
# missing value), run side by side, then checked in order.
sweep=()
for cmd in get serve keygen doctor; do
  while read -r flag value; do
    [ -n "$value" ] || continue
    sweep+=("$cmd $flag -")
  done <<<"${flags_of[$cmd]}"
  for other in get serve keygen doctor; do
    [ "$other" != "$cmd" ] || continue
    while read -r flag value; do
      [[ $'\n'${flags_of[$cmd]}$'\n' == *$'\n'"$flag"$'\n'* ||
         $'\n'${flags_of[$cmd]}$'\n' == *$'\n'"$flag "[A-Z]$'\n'* ]] && continue
      # An abbreviation of one of its own (keygen --ticket-key, serve
      # --ticket-key-file) is taken, as getopt_long takes any prefix.
      [[ $'\n'${flags_of[$cmd]} == *$'\n'"$flag"-* ]] && continue
      sweep+=("$cmd $flag $other")
    done <<<"${flags_of[$other]}"
  done
done
for k in "${!sweep[@]}"; do
  read -r cmd flag other <<<"${sweep[k]}"
  if [ "$other" = - ]; then
    spawn "sweep$k" "$BUILD/coaps" $cmd ${operand[$cmd]} "$flag"
  else
    spawn "sweep$k" "$BUILD/coaps" $cmd ${operand[$cmd]} "$flag" x
  fi
done
spawned_all
swept=0
for k in "${!sweep[@]}"; do
  read -r cmd flag other <<<"${sweep[k]}"
  collect "sweep$k"
  if [ "$other" = - ]; then
    [ "$RC" = 64 ] && [[ "$ERR" == "coaps: $flag needs a value: $flag "* ]] ||
      fail "coaps $cmd $flag without its value: exit $RC, '$ERR'"
  else
    [ "$RC" = 64 ] && [[ "$ERR" == "coaps: unknown option '$flag' for coaps $cmd (commands that take it: "*"$other"* ]] ||
      fail "coaps $cmd $flag (an option of $other): exit $RC, '$ERR'"
  fi
  swept=$((swept + 1))
done
[ "$swept" -gt 60 ] || fail "the sweep tried only $swept cases"
pass "every option of every command: a missing value or the wrong command is said ($swept cases)"

# Repeatable options stay repeatable.
rc coaps keygen -o "$work/hosts" -H one -H two
expect_eq "keygen -H twice works" 0 "$RC"
rc coaps --help get
expect_eq "coaps --help get exits 0" 0 "$RC"
expect_contains "coaps --help get is get's help" "usage: coaps get URI" "$OUT"
rc coaps keygen --help
for flag in "-o, --out DIR" "-H, --host NAME" "-f, --force" "-h, --help" "--state-key FILE"; do
  expect_contains "keygen --help names $flag" "$flag" "$OUT"
done
# keygen --state-key: a 0600 file of 64 hex digits that serve
# --state-key-file takes; kept when it exists, replaced with --force.
rc coaps keygen --state-key "$work/state.key"
expect_eq "keygen --state-key exits 0" 0 "$RC"
expect_eq "keygen --state-key says what it wrote" "wrote $work/state.key" "$OUT"
expect_eq "the state key file is 0600" 600 "$(stat -c %a "$work/state.key")"
[[ "$(cat "$work/state.key")" =~ ^[0-9a-f]{64}$ ]] || fail "the state key is not 64 hex digits"
pass "the state key is 32 bytes as hex"
first_key=$(cat "$work/state.key")
rc coaps keygen --state-key "$work/state.key"
expect_eq "keygen --state-key over an existing file exits 64" 64 "$RC"
expect_contains "keygen --state-key keeps an existing file, says why" "exists: kept" "$ERR"
expect_eq "the existing state key is unchanged" "$first_key" "$(cat "$work/state.key")"
rc coaps keygen --state-key "$work/state.key" --force
expect_eq "keygen --state-key --force exits 0" 0 "$RC"
[ "$(cat "$work/state.key")" != "$first_key" ] || fail "--force did not replace the state key"
pass "keygen --state-key --force replaces the key"
rc coaps keygen --state-key "$work/no-such-dir/state.key"
expect_eq "keygen --state-key into a missing directory exits 5" 5 "$RC"
expect_contains "keygen --state-key into a missing directory: the reason" "No such file" "$ERR"
rc coaps keygen --state-key "$work/x.key" --ticket-key "$work/t.key"
expect_eq "keygen --state-key with --ticket-key exits 64" 64 "$RC"

# A configuration mistake: said once (by the tool, not also by the
# library's logger), exit 7 (local configuration), nothing sent.
rc coaps get "coaps://127.0.0.1:9/x" --cacert "$work/no-such-ca.pem"
expect_eq "a missing CA file exits 7" 7 "$RC"
expect_eq "a missing CA file is said once, by the tool" \
  "coaps: cannot read CA file '$work/no-such-ca.pem': No such file or directory" "$ERR"
rc coaps get --bogus coap://127.0.0.1/
expect_eq "unknown flag exits 64" 64 "$RC"
rc coaps get http://example.com/
expect_eq "bad scheme exits 64" 64 "$RC"
expect_contains "bad scheme is explained" "coap:// or coaps://" "$ERR"
rc coaps get coap://127.0.0.1:99999/
expect_eq "bad port exits 64" 64 "$RC"
expect_contains "bad port is explained" "port" "$ERR"
rc coaps get -A nonsense coap://127.0.0.1/
expect_eq "unknown format exits 64" 64 "$RC"
rc coaps serve --port 70000
expect_eq "serve with a bad port exits 64" 64 "$RC"

# Observe and No-Response flags that do not fit: usage errors, said.
rc coaps get --no-response 3xx coap://127.0.0.1/
expect_eq "--no-response 3xx exits 64" 64 "$RC"
expect_contains "--no-response 3xx is explained" "--no-response wants 2xx, 4xx, 5xx (comma-separated) or all, got '3xx'" "$ERR"
rc coaps post --no-response 2xx,,4xx coap://127.0.0.1/ -d x
expect_eq "--no-response with an empty class exits 64" 64 "$RC"
rc coaps get --count 3 coap://127.0.0.1/
expect_eq "--count without --observe exits 64" 64 "$RC"
expect_contains "--count without --observe is explained" "--count is for an observation: add --observe" "$ERR"
rc coaps get --duration 3 coap://127.0.0.1/
expect_eq "--duration without --observe exits 64" 64 "$RC"
rc coaps put --observe coap://127.0.0.1/store -d x
expect_eq "--observe with put exits 64" 64 "$RC"
expect_contains "--observe with put is explained" "--observe is for get and fetch" "$ERR"
rc coaps observe --count 0 coap://127.0.0.1/
expect_eq "--count 0 exits 64" 64 "$RC"
rc coaps observe --no-response all coap://127.0.0.1/
expect_eq "--no-response with --observe exits 64" 64 "$RC"
rc coaps get --help
expect_contains "get --help describes --observe" "--observe" "$OUT"
expect_contains "get --help describes --no-response" "--no-response CLASSES" "$OUT"

# The cases that wait on timers (observations, -t deadlines, eviction)
# run side by side as parts (lib_parallel.bash), each with its own server,
# while the rest goes on; their output comes at the end.
. "$(dirname "$0")/lib_parallel.bash"
part_observe() {
  start_coaps_serve "$work/observe.log"
  local base="coap://127.0.0.1:$SERVE_PORT"
  # Observing /temp and /time, which change every second.
  rc coaps get --observe --count 3 --json "$base/temp"
  expect_eq "--observe --count 3 exits 0 ($ERR)" 0 "$RC"
  expect_eq "--count 3: three lines" 3 "$(wc -l <<<"$OUT")"
  prev=-1
  while read -r line; do
    [[ "$line" =~ ^\{\"code\":\"2\.05\",\"observe\":([0-9]+),\"max_age\":[0-9]+,\"format\":\"text/plain[^\"]*\",\"size\":[0-9]+,\"payload\":\"[0-9]+\.[0-9]\ C\"\}$ ]] ||
      fail "--json notification line: '$line'"
    [ "${BASH_REMATCH[1]}" -gt "$prev" ] || fail "Observe numbers do not increase: $OUT"
    prev=${BASH_REMATCH[1]}
  done <<<"$OUT"
  pass "--json: one object a line, Observe increasing"
  # -t bounds the first answer, not the observation.
  rc coaps observe --duration 2.5 -t 1 -v "$base/time"
  expect_eq "observe --duration exits 0 ($ERR)" 0 "$RC"
  n=$(wc -l <<<"$OUT")
  [ "$n" -ge 3 ] && [ "$n" -le 4 ] || fail "--duration 2.5 -t 1 on /time: $n lines: '$OUT'"
  [ "$(sort -u <<<"$OUT")" = "$OUT" ] || fail "/time notifications not new and in order: '$OUT'"
  pass "--duration 2.5: $n distinct /time lines"
  expect_contains "-v: details of each notification" "coaps: 2.05 Content, Observe " "$ERR"
  expect_contains "-v: the deregistration is answered" "coaps: deregistered: the server answered 2.05" "$ERR"
}
part_time() {
  start_coaps_serve "$work/time.log"
  local base="coap://127.0.0.1:$SERVE_PORT"
  # /time formats its text once a second: it must still change every second.
  rc coaps get "$base/time"
  first=$OUT
  sleep 1.1
  rc coaps get "$base/time"
  [[ "$OUT" =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$ ]] || fail "GET /time: got '$OUT'"
  [ "$OUT" != "$first" ] || fail "GET /time gave '$OUT' twice, 1.1 s apart"
  pass "GET /time changes every second"

}
part_blackhole() {
  # A peer that swallows everything: the -t deadline, exit 3.
  start_blackhole
  rc coaps get -t 1 "coap://127.0.0.1:$HOLE_PORT/temp"
  expect_eq "no answer within -t exits 3" 3 "$RC"
  expect_contains "timeout is said" "in 1.0 s" "$ERR"

}
part_peer_limits() {
  # --max-peers: one client at a time; the next is refused (no answer) and
  # counted, the first still served.
  rc coaps serve --max-peers 0
  expect_eq "--max-peers 0 is a usage error" 64 "$RC"
  start_coaps_serve "$work/one_peer.log" --max-peers 1 --workers 1
  one="coap://127.0.0.1:$SERVE_PORT"
  rc coaps get "$one/time"
  expect_eq "the first client is served" 0 "$RC"
  rc coaps get -t 1 "$one/time"
  expect_eq "a second client beyond --max-peers gets no answer" 3 "$RC"
  expect_log "the peer limit is logged" "peer limit (1) reached" "$work/one_peer.log"

  # --evict-after: with the table full, a client silent that long makes room
  # for a new one (logged); 0 turns that off.
  rc coaps serve --evict-after -1
  expect_eq "--evict-after -1 is a usage error" 64 "$RC"
  start_coaps_serve "$work/evict.log" --max-peers 1 --workers 1 --evict-after 0.3
  one="coap://127.0.0.1:$SERVE_PORT"
  rc coaps get "$one/time"
  expect_eq "the first client is served" 0 "$RC"
  sleep 0.5
  rc coaps get -t 30 "$one/time"
  expect_eq "a new client replaces one silent for --evict-after" 0 "$RC"
  expect_log "the eviction is logged" "each new peer replaces the one silent longest" "$work/evict.log"
  kill "${BG_PIDS[-1]}" && wait "${BG_PIDS[-1]}" || true
  expect_log "the exit summary counts it" "0 datagrams from new clients dropped, 1 silent clients forgotten" "$work/evict.log"
  start_coaps_serve "$work/no_evict.log" --max-peers 1 --workers 1 --evict-after 0
  one="coap://127.0.0.1:$SERVE_PORT"
  rc coaps get "$one/time"
  sleep 0.5
  rc coaps get -t 1 "$one/time"
  expect_eq "--evict-after 0: the new client is refused" 3 "$RC"
  kill "${BG_PIDS[-1]}" && wait "${BG_PIDS[-1]}" || true
  expect_log "the exit summary counts the refusals" " datagrams from new clients dropped, 0 silent clients forgotten" "$work/no_evict.log"

}
start_part observe part_observe
start_part time part_time
start_part blackhole part_blackhole
start_part peer_limits part_peer_limits

start_coaps_serve "$work/serve.log"
base="coap://127.0.0.1:$SERVE_PORT"

rc coaps get "$base/temp"
expect_eq "GET /temp exits 0" 0 "$RC"
[[ "$OUT" =~ ^[0-9]+\.[0-9]\ C$ ]] || fail "GET /temp payload: '$OUT'"
rc coaps get -A json "$base/temp"
expect_contains "Accept: json gives JSON" '"temperature":' "$OUT"

rc coaps get --observe --count 3 "$base/.well-known/core"
expect_eq "a resource that is not observable: its answer, exit 0" 0 "$RC"
expect_contains "...printed" "</temp>" "$OUT"
expect_contains "...and stderr says so" "the server did not register the observation: it answered without Observe" "$ERR"
rc coaps get --observe "$base/nothing"
expect_eq "observing a missing resource exits 1" 1 "$RC"
expect_contains "...with the 4.04" "4.04 Not Found" "$ERR"
rc coaps get -A json --json "$base/temp"
expect_contains "--json without --observe: one object" '{"code":"2.05","max_age":5,"format":"application/json","size":' "$OUT"

rc coaps put "$base/store" -d "first" -f text
expect_eq "PUT /store exits 0" 0 "$RC"
rc coaps get "$base/store"
expect_eq "GET /store returns the PUT" "first" "$OUT"
printf 'from-stdin' | { rc coaps post "$base/echo" -d @-; expect_eq "POST -d @- echoes stdin" "from-stdin" "$OUT"; }
printf 'from-file' >"$work/payload"
rc coaps post "$base/echo" -d "@$work/payload"
expect_eq "POST -d @FILE echoes the file" "from-file" "$OUT"
rc coaps post "$base/echo" -d "@$work/missing"
expect_eq "missing payload file exits 64" 64 "$RC"
expect_contains "missing payload file is named" "missing" "$ERR"
rc coaps delete "$base/store"
expect_eq "DELETE /store exits 0" 0 "$RC"

rc coaps get "$base/store"
expect_eq "4.04 exits 1" 1 "$RC"
expect_contains "4.04 is one line on stderr" "4.04 Not Found" "$ERR"
rc coaps delete "$base/temp"
expect_eq "4.05 exits 1" 1 "$RC"

# Empty PUT and POST to /store: requests like any other, not a crash of
# the server (an empty payload reaches the handler as NULL, length 0).
rc coaps post -v "$base/store"
expect_eq "empty POST /store exits 0" 0 "$RC"
expect_contains "empty POST /store creates it" "2.01 Created" "$ERR"
rc coaps put -v "$base/store" -d ""
expect_eq "empty PUT /store exits 0" 0 "$RC"
expect_contains "empty PUT /store changes it" "2.04 Changed" "$ERR"
rc coaps get "$base/store"
expect_eq "GET /store after empty writes: exists, empty" "0:" "$RC:$OUT"
rc coaps post "$base/store" -d "tail"
rc coaps post "$base/store"
rc coaps get "$base/store"
expect_eq "an empty POST appends nothing" "tail" "$OUT"
rc coaps delete "$base/store"
rc coaps get "$base/time"
expect_eq "the server still answers after empty writes" 0 "$RC"

rc coaps get -v "$base/time"
expect_contains "verbose shows the request" "> CON GET" "$ERR"
expect_contains "verbose shows the response" "< ACK 2.05 Content" "$ERR"
expect_contains "verbose shows options" "Uri-Path:time" "$ERR"
# Nothing listening: ICMP port unreachable is reported at once.
dead=$(pick_free_udp_port)
rc coaps get -t 30 "coap://127.0.0.1:$dead/temp"
expect_eq "nothing listening exits 4" 4 "$RC"
expect_contains "nothing listening is explained" "[port-unreachable]" "$ERR"
before 30 "unreachable is reported at once, not at the -t deadline"

# coaps:// with no credentials: immediate, exit 7 (local configuration,
# as coaps doctor), says what to configure.
rc coaps get --handshake-timeout 20 "coaps://127.0.0.1:$SERVE_PORT/temp"
expect_eq "coaps:// without credentials exits 7" 7 "$RC"
expect_contains "it names what to configure" "pre-shared key" "$ERR"
before 20 "coaps:// without credentials fails at once, not by a handshake timeout"

# A second server on a port in use: refused and said, not a silent share
# of the port (workers of one server share it on purpose).
rc coaps serve --port "$SERVE_PORT"
expect_eq "a port in use exits 4" 4 "$RC"
expect_contains "the port in use is said" "Address already in use" "$ERR"

# --session FILE holds the session's master secret: written as a new 0600
# file renamed over the old one, never through a symbolic link, and a
# path that cannot hold it is refused before anything is sent.
start_coaps_serve_dtls "$work/psk.log" --workers 1 --psk-identity me --psk secret
surl="coaps://127.0.0.1:$DTLS_PORT/time"
psk=(--psk-identity me --psk secret)

# An IPv4 client of the dual-stack server is named by its IPv4 address
# in the server's log ("[127.0.0.1:PORT]", not "[[::ffff:127.0.0.1]:PORT]").
rc coaps get "$surl" --psk-identity me --psk wrong --handshake-timeout 5
expect_eq "a wrong PSK exits 5" 5 "$RC"
for _ in $(seq 100); do grep -q "psk-key-mismatch" "$work/psk.log" && break; sleep 0.05; done
psk_log=$(cat "$work/psk.log")
expect_contains "the server names the IPv4 client as IPv4" "warning: [127.0.0.1:" "$psk_log"
expect_not_contains "no IPv4-mapped IPv6 peer names" "::ffff:" "$psk_log"
: >"$work/session"
chmod 0644 "$work/session"
rc coaps get "$surl" "${psk[@]}" --session "$work/session"
expect_eq "GET with --session exits 0" 0 "$RC"
expect_eq "an existing 0644 session file ends 0600" 600 "$(stat -c %a "$work/session")"
expect_eq "the session file holds the session" "coaps-session 1 127.0.0.1" "$(head -1 "$work/session" | tr -d '\0')"
rc coaps get -v "$surl" "${psk[@]}" --session "$work/session"
expect_contains "the next run resumes from the file" "(resumed)" "$ERR"
left=$(find "$work" -maxdepth 1 -name '.session.*')
expect_eq "no temporary session file is left behind" "" "$left"

printf 'not yours\n' >"$work/target"
chmod 0644 "$work/target"
ln -s "$work/target" "$work/link"
ln -s "$work/nothing-here" "$work/dangling"
for l in link dangling; do
  rc coaps get "$surl" "${psk[@]}" --session "$work/$l"
  expect_eq "a symbolic link as session file ($l) exits 7 (local configuration)" 7 "$RC"
  expect_contains "the symbolic link ($l) is refused, saying so" "is a symbolic link" "$ERR"
  [ -L "$work/$l" ] || fail "the symbolic link $l was replaced"
done
expect_eq "the link's target is untouched" "not yours" "$(cat "$work/target")"
expect_eq "the link's target keeps its mode" 644 "$(stat -c %a "$work/target")"
[ ! -e "$work/nothing-here" ] || fail "a dangling link's target was created"
pass "a dangling link's target is not created"

mkdir "$work/sessions"
rc coaps get "$surl" "${psk[@]}" --session "$work/sessions"
expect_eq "a directory as session file exits 7 (local configuration)" 7 "$RC"
expect_contains "a directory as session file is named" "is a directory" "$ERR"

printf 'my notes\n' >"$work/notes.txt"
rc coaps get "$surl" "${psk[@]}" --session "$work/notes.txt"
expect_eq "a file that is not a session file exits 7 (local configuration)" 7 "$RC"
expect_contains "...is not overwritten, saying so" "not a coaps session file: not overwriting it" "$ERR"
expect_eq "...and keeps its content" "my notes" "$(cat "$work/notes.txt")"

rc coaps get "$surl" "${psk[@]}" --session "$work/no/such/dir/session"
expect_eq "a session file in a missing directory exits 7 (local configuration)" 7 "$RC"
expect_contains "the missing directory is said" "its directory is missing" "$ERR"
# A directory we may not write (for root, whom permissions do not stop,
# run as nobody; the directory is outside $work, which nobody cannot enter).
ro=$(mktemp -d)
chmod 0555 "$ro"
as_user=()
[ "$(id -u)" != 0 ] || as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
set +e
${as_user[@]+"${as_user[@]}"} "$BUILD/coaps" get "$surl" "${psk[@]}" --session "$ro/session" >"$work/out" 2>"$work/err"
RC=$?
set -e
ERR=$(cat "$work/err")
rmdir "$ro"
expect_eq "a session file in an unwritable directory exits 7 (local configuration)" 7 "$RC"
expect_contains "the unwritable directory is said" "its directory is not writable (Permission denied)" "$ERR"

# A key or certificate path that is a directory is named as one, not as
# "Error while reading file.".
make_creds "$work/c"
rc coaps get "$surl" --cert "$work/c" --key "$work/c/client-key.pem" --cacert "$work/c/ca-cert.pem"
expect_eq "--cert DIR exits 7 (local configuration)" 7 "$RC"
expect_contains "--cert DIR is named" "--cert $work/c: is a directory" "$ERR"
rc coaps get "$surl" --cert "$work/c/client-cert.pem" --key "$work/c" --cacert "$work/c/ca-cert.pem"
expect_eq "--key DIR exits 7 (local configuration)" 7 "$RC"
expect_contains "--key DIR is named" "--key $work/c: is a directory" "$ERR"
rc coaps get "$surl" --rpk --key "$work/c" --trust-rpk "$work/c/rpk-server-pub.pem"
expect_eq "--rpk --key DIR exits 7 (local configuration)" 7 "$RC"
expect_contains "--rpk --key DIR is named" "--key $work/c: is a directory" "$ERR"
rc coaps serve --port 0 --dtls-port 0 --cert "$work/c/server-cert.pem" --key "$work/c"
expect_eq "serve --key DIR exits 7 (local configuration)" 7 "$RC"
expect_contains "serve --key DIR is named" "--key $work/c: is a directory" "$ERR"

# A certificate outside its validity period: the server starts (the dates
# are the client's to check), but says so at once, with the dates and
# what the clock says.
need certtool gnutls-bin
certtool --generate-privkey --key-type ecdsa --curve secp256r1 --outfile "$work/dated-key.pem" 2>/dev/null
for kind in expired future; do
  if [ $kind = expired ]; then from="2020-01-01 00:00:00" until="2020-01-02 00:00:00"
  else from="2099-01-01 00:00:00" until="2099-12-31 00:00:00"; fi
  printf 'cn = "%s.example"\nactivation_date = "%s"\nexpiration_date = "%s"\n' \
    $kind "$from" "$until" >"$work/$kind.tmpl"
  certtool --generate-self-signed --load-privkey "$work/dated-key.pem" \
    --template "$work/$kind.tmpl" --outfile "$work/$kind-cert.pem" 2>/dev/null
  start_coaps_serve_dtls "$work/$kind.log" --workers 1 --cert "$work/$kind-cert.pem" \
    --key "$work/dated-key.pem"
  expect_log "the $kind certificate is warned about with its subject" \
    "coaps: warning: the certificate in $work/$kind-cert.pem (subject CN=$kind.example)" "$work/$kind.log"
  expect_log "...and its dates" "valid from $from UTC to $until UTC" "$work/$kind.log"
  expect_log "...and what the clock says" "this host's clock says $(date -u +%Y-)" "$work/$kind.log"
done
expect_log "an expired certificate is called expired" "has expired" "$work/expired.log"
expect_log "a future certificate is called not valid yet" "is not valid yet" "$work/future.log"
start_coaps_serve_dtls "$work/valid.log" --workers 1 --cert "$work/c/server-cert.pem" \
  --key "$work/c/server-key.pem"
grep -q "warning" "$work/valid.log" && fail "a valid certificate was warned about: $(cat "$work/valid.log")"
pass "a valid certificate starts without a warning"

# The demo server as scripts/run.sh starts it, with coaps keygen's
# credentials: its one "try:" list has no placeholders, and every line
# in it works as printed (the last one fails on purpose, with exit 5).
psk_hex=$(sed -n 's/^key_hex=//p' "$work/c/psk.txt")
start_coaps_serve_dtls "$work/demo.log" --workers 1 --psk-identity coaps-demo --psk-hex "$psk_hex" \
  --cert "$work/c/server-cert.pem" --key "$work/c/server-key.pem" --cacert "$work/c/ca-cert.pem" \
  --rpk --trust-rpk "$work/c/rpk-client-pub.pem"
for _ in $(seq 100); do grep -q "# a failure, named" "$work/demo.log" && break; sleep 0.05; done
expect_eq "one try: list" 1 "$(grep -c '^try:' "$work/demo.log")"
expect_not_contains "no placeholders in the hints" "<" "$(cat "$work/demo.log")"
hints=0
while read -r line; do
  read -ra cmd <<<"${line%%#*}"
  [ "${cmd[0]}" = coaps ] || continue
  cmd=("${cmd[@]//\'/}")
  # An observation stops after one representation (a hint's own --count
  # N becomes 1: a value option is given once).
  if [[ "$line" == *--observe* ]]; then
    [[ "$line" == *--count* ]] || cmd+=(--count 1)
    for i in "${!cmd[@]}"; do [ "${cmd[i]}" != --count ] || cmd[i + 1]=1; done
  fi
  hints=$((hints + 1))
  rc coaps "${cmd[@]:1}" -t 10
  if [[ "$line" == *"# a failure"* ]]; then
    expect_eq "the failure hint fails as it says: $line" 5 "$RC"
  else
    expect_eq "the hint works: $line" 0 "$RC"
  fi
done < <(grep '^  coaps ' "$work/demo.log")
expect_eq "hints for plain, PSK, certificates, mutual, doctor, RPK, a failure" 10 "$hints"

wait_parts
[ "$PARTS_FAILED" = 0 ] || fail "$PARTS_FAILED of the parts run side by side failed (above)"
