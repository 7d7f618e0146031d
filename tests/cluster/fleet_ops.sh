#!/usr/bin/env bash
# Driving tests/tools/client_fleet from a cluster test (sourced after
# tests/cluster/cluster.sh, with BUILD the build directory and FLEET_DIR a
# directory for the fleets' files): one or more named fleets in the client
# namespace, each fed commands through a FIFO, their reports read back.
#
# fleet_start NAME ARG...   client_fleet ARG... (its output in
#                           FLEET_DIR/NAME.out, .err), commands open
# fleet_send NAME LINE      one command (mark, rebind K, reconnect, ...)
# fleet_wait NAME REGEX S [FROM]  until its output has a line matching
#                           REGEX (from line FROM on), at most S seconds;
#                           1 after showing its last errors
# fleet_report NAME REPORT [quit]  its report now (with quit: its last,
#                           and its exit awaited) into FLEET_DIR/REPORT
#                           (client lines and summary) and REPORT.json
# fleet_field REPORT KEY    a value of a report's summary (jq path)
# fleet_clients REPORT 'KEY OP N && ...'  how many client lines meet it
#                           (OP: == != >= <= > <; another prints
#                           "unknown-operator", which no count equals)
# fleet_stop_all            every fleet killed (a test's exit trap: a
#                           fleet asked to quit may wait 60 s for its
#                           requests)

declare -A FLEET_PIDS FLEET_FDS

fleet_start() {
  local name=$1 fd
  shift
  mkfifo "$FLEET_DIR/$name.commands"
  $CLUSTER_CLIENT "$BUILD/client_fleet" "$@" <"$FLEET_DIR/$name.commands" \
    >"$FLEET_DIR/$name.out" 2>"$FLEET_DIR/$name.err" &
  FLEET_PIDS[$name]=$!
  exec {fd}>"$FLEET_DIR/$name.commands"
  FLEET_FDS[$name]=$fd
}

fleet_send() {
  echo "$2" >&"${FLEET_FDS[$1]}"
}

fleet_wait() {
  local _
  for _ in $(seq $(($3 * 10))); do
    tail -n +"${4:-1}" "$FLEET_DIR/$1.out" | grep -qE "$2" && return 0
    kill -0 "${FLEET_PIDS[$1]}" 2>/dev/null || break
    sleep 0.1
  done
  tail -5 "$FLEET_DIR/$1.err" >&2
  echo "fleet $1 did not print '$2' within $3 s" >&2
  return 1
}

fleet_report() {
  local name=$1 report=$2 from _ out=$FLEET_DIR/$1.out
  from=$(($(wc -l <"$out") + 1))
  fleet_send "$name" "${3:-report}"
  for _ in $(seq 1200); do
    tail -n +"$from" "$out" | grep -q '^summary ' && break
    sleep 0.1
  done
  tail -n +"$from" "$out" | sed -n '/^client /p;/^summary /{p;q}' >"$FLEET_DIR/$report"
  grep -q '^summary ' "$FLEET_DIR/$report" || {
    echo "no report from fleet $name ($report)" >&2
    return 1
  }
  jq -ce . <<<"$(sed -n 's/^summary //p' "$FLEET_DIR/$report")" >"$FLEET_DIR/$report.json" || return 1
  [ "${3:-}" = quit ] || return 0
  local rc=0 fd=${FLEET_FDS[$name]}
  wait "${FLEET_PIDS[$name]}" || rc=$?
  exec {fd}>&-
  unset "FLEET_PIDS[$name]" "FLEET_FDS[$name]"
  [ "$rc" = 0 ] || { echo "client_fleet $name exited with $rc" >&2; return 1; }
}

fleet_field() {
  jq -r ".$2" "$FLEET_DIR/$1.json"
}

fleet_clients() {
  awk -v cond="$2" 'BEGIN { n = 0; bad = 0 }
    /^client / { for (i = 3; i < NF; i += 2) v[$i] = $(i + 1); if (test(cond)) n++ }
    function test(c,   parts, k, m, j, x, y) {
      m = split(c, parts, " && ")
      for (j = 1; j <= m; j++) {
        split(parts[j], k, " "); x = v[k[1]] + 0; y = k[3] + 0
        if (k[2] !~ /^(==|!=|>=|<=|>|<)$/) bad = 1
        if ((k[2] == "==" && x != y) || (k[2] == "!=" && x == y) ||
            (k[2] == ">=" && x < y) || (k[2] == "<=" && x > y) ||
            (k[2] == ">" && x <= y) || (k[2] == "<" && x >= y)) return 0
      }
      return 1
    }
    END { if (bad) print "unknown-operator"; else print n }' "$FLEET_DIR/$1"
}

fleet_stop_all() {
  local name fd
  for name in "${!FLEET_PIDS[@]}"; do
    fd=${FLEET_FDS[$name]}
    exec {fd}>&- 2>/dev/null || true
    kill -KILL "${FLEET_PIDS[$name]}" 2>/dev/null || true
    wait "${FLEET_PIDS[$name]}" 2>/dev/null || true
  done
  FLEET_PIDS=()
  FLEET_FDS=()
}
