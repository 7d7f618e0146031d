#!/usr/bin/env bash
# Aggregate rates of 1, 2 and 3 coaps nodes behind the nftables balancer
# (tests/cluster/cluster.sh: network namespaces, each node 'coaps serve
# --workers 2 --node-id N'), with libcoap's coap-server-gnutls as the one
# node of the same topology for the ratio, and where the CPU went.
#
#   bash bench/cluster_scale.sh [--build-dir DIR] [--quick] [--duration S]
#                               [--handshakes C] [--sessions N] [--rounds R]
#
# Root, nft, ip, libcoap3-bin (installed if missing). From the client
# namespace, coaps-bench against the balancer's address:
#   * full PSK handshakes: --handshakes C (10000) --parallel 16, every one a
#     fresh session on a new source port, so the balancer hashes each to
#     any node;
#   * GETs: steady mode, --sessions N (300) × 4 in flight, --duration S (5),
#     the sessions spread over the nodes by the same hash.
# Each run logs the CPU time of every process that took part — each
# node's server (all threads, /proc/PID/task/*/schedstat), the generator
# (its own report) — and the machine's busy and softirq time (/proc/stat),
# so a flat aggregate can be explained: here every node, the balancer and
# the generator share the same cores. The balancer's rules and the veth
# forwarding run in softirq: partly inside the sending process's own time
# (this kernel has no IRQ time accounting), the rest in ksoftirqd.
# Then the balancer's own cost, roughly: in each round (--rounds, 5) one
# node's GET run to the node's own address (the same forwarding hop, no
# balancer rules loaded) and once more through the balancer's, one after
# the other: the difference in CPU per request.
# The configurations are interleaved round by round and the tables give
# medians. Nothing is pinned (the nodes are meant to share the machine);
# rates are printed, never asserted: a run fails only when a server does
# not start or coaps-bench gives no result. --quick: one short round.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$SRC/build-release
QUICK=0 DURATION=5 HANDSHAKES=10000 SESSIONS=300 ROUNDS=5
while [ $# -gt 0 ]; do
  case $1 in
  --build-dir) BUILD=$(cd "$2" && pwd); shift ;;
  --quick) QUICK=1 DURATION=1 HANDSHAKES=300 SESSIONS=50 ROUNDS=1 ;;
  --duration) DURATION=$2; shift ;;
  --handshakes) HANDSHAKES=$2; shift ;;
  --sessions) SESSIONS=$2; shift ;;
  --rounds) ROUNDS=$2; shift ;;
  *) echo "usage: $0 [--build-dir DIR] [--quick] [--duration S] [--handshakes C] [--sessions N] [--rounds R]" >&2
     exit 64 ;;
  esac
  shift
done

. "$SRC/bench/lib.bash" # fail, note, configure_build, need_libcoap_bin, field
# The cluster's functions: cluster_up / cluster_down, CLUSTER_* (it sets
# -euo pipefail too).
. "$SRC/tests/cluster/cluster.sh"
[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"
for tool in nft ip; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done

configure_build "$SRC"
cmake --build "$BUILD" -j2 --target coaps coaps-bench >/dev/null || fail "build"
BENCH=$BUILD/coaps-bench
need_libcoap_bin coap-server-gnutls

work=$(mktemp -d)
LC_PID='' GEN_PID='' SAMPLER_PID='' SERVERS=''
stop_all() {
  local p
  for p in $SAMPLER_PID $GEN_PID $LC_PID; do kill "$p" 2>/dev/null || true; done
  for p in $SAMPLER_PID $GEN_PID $LC_PID; do wait "$p" 2>/dev/null || true; done
  SAMPLER_PID='' GEN_PID='' LC_PID=''
  cluster_down
  rm -rf "$CLUSTER_LOGS"
}
trap 'stop_all; rm -rf "$work"' EXIT
CLUSTER_QUIET=1 # no log line per handshake
PSK_ARGS=(--psk-identity "$CLUSTER_ID" --psk "$CLUSTER_KEY")

# cpu_ns PID...: CPU time of all their threads, ns (the scheduler's run
# time, as compare.sh reads it), with shell built-ins only: the sampler
# below calls it five times a second beside the measurement.
cpu_ns() {
  local p f t sum=0
  for p in "$@"; do
    for f in /proc/"$p"/task/*/schedstat; do
      read -r t _ <"$f" 2>/dev/null && sum=$((sum + t))
    done
  done
  echo "$sum"
}
# sample [GENERATOR_NS]: "time servers_ns generator_ns busy softirq", the
# last two in jiffies of all CPUs (/proc/stat; busy is all but idle and
# iowait).
sample() {
  local u n s irq sirq st
  read -r _ u n s _ _ irq sirq st _ </proc/stat
  # shellcheck disable=SC2086 # SERVERS: pids
  echo "$EPOCHREALTIME $(cpu_ns $SERVERS) ${1:-$(cpu_ns ${GEN_PID:-})} $((u + n + s + irq + sirq + st)) $sirq"
}
HZ=$(getconf CLK_TCK)
CPUS=$(nproc)

declare -A R
# run KEY FIGURE URI ARGS...: coaps-bench from the client namespace
# against URI. Sets R[KEY] (the figure), R[KEY,srv] and R[KEY,gen] (the
# servers' and the generator's CPU µs per handshake or request),
# R[KEY,busy] (the machine's busy CPU µs per operation: any other load on
# the machine included), R[KEY,srv%], R[KEY,gen%], R[KEY,busy%],
# R[KEY,soft%] (shares of all CPUs), and logs it all with each node's CPU
# seconds. SERVERS: the pids whose CPU is the servers'. The CPU counts
# over coaps-bench's own measurement, its last "seconds": in steady mode
# that leaves out establishing the sessions (for libcoap's server several
# seconds, as its cost per datagram grows with its sessions), read from
# samples taken every 0.2 s, interpolated.
run() {
  local key=$1 figure=$2 uri=$3
  shift 3
  local p out ops nodes0=() nodes1=()
  for p in $SERVERS; do nodes0+=("$(cpu_ns "$p")"); done
  # In the background, so that a signal runs the EXIT trap at once (it
  # stops the generator too) rather than after the run.
  $CLUSTER_CLIENT "$BENCH" --json "$uri" "$@" >"$work/bench.out" 2>"$work/bench.err" &
  GEN_PID=$!
  { sample; while sleep 0.2; do sample; done; } >"$work/samples" 2>/dev/null &
  SAMPLER_PID=$!
  wait "$GEN_PID" || true
  kill "$SAMPLER_PID"
  wait "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=
  GEN_PID=
  out=$(cat "$work/bench.out")
  # The last sample: the generator has exited, its own report has its CPU.
  sample "$(awk -v s="$(field generator_cpu_s "$out")" 'BEGIN { printf "%.0f", s * 1e9 }')" >>"$work/samples"
  for p in $SERVERS; do nodes1+=("$(cpu_ns "$p")"); done
  R[$key]=$(field "$figure" "$out")
  [ -n "${R[$key]}" ] || { cat "$work/bench.err" >&2; fail "$key: coaps-bench gave no result"; }
  if [ "$figure" = handshakes_per_s ]; then ops=$(field handshakes "$out"); else ops=$(field requests "$out"); fi
  local errors nodes="" i
  errors=$(field errors "$out")
  [ "$errors" = 0 ] || note "$key: $errors errors (figure kept):" \
    "$(grep -oE '"(timeouts|handshake_failures|non_2xx|other_errors)":[0-9]+' <<<"$out" | tr '\n' ' ')"
  for i in "${!nodes0[@]}"; do
    nodes+="$(awk -v d=$((nodes1[i] - nodes0[i])) 'BEGIN { printf "%.2f", d / 1e9 }') "
  done
  # The window: from the end back by coaps-bench's "seconds"; each column
  # interpolated there between the samples around it.
  local figures wall srvs gens busys softs
  figures=$(awk -v secs="$(field seconds "$out")" -v hz="$HZ" -v cpus="$CPUS" -v ops="$ops" '
    { t[NR] = $1; for (c = 2; c <= 5; c++) v[NR, c] = $c }
    END {
      start = t[NR] - secs; if (start < t[1]) start = t[1]
      for (i = 1; i < NR && t[i + 1] <= start; i++) ;
      f = (i < NR && t[i + 1] > t[i]) ? (start - t[i]) / (t[i + 1] - t[i]) : 0
      for (c = 2; c <= 5; c++) d[c] = v[NR, c] - (v[i, c] + f * (v[i + 1, c] - v[i, c]))
      wall = t[NR] - start; all = wall * cpus; srv = d[2] / 1e9; gen = d[3] / 1e9
      busy = d[4] / hz; soft = d[5] / hz; per = ops > 0 ? 1e6 / ops : 0
      printf "%.2f %.2f %.1f %.0f %.0f %.0f %.0f %.2f %.2f %.2f %.2f %.2f\n",
             srv * per, gen * per, busy * per, 100 * srv / all, 100 * gen / all,
             100 * busy / all, 100 * soft / all, wall, srv, gen, busy, soft }' "$work/samples")
  read -r "R[$key,srv]" "R[$key,gen]" "R[$key,busy]" "R[$key,srv%]" "R[$key,gen%]" "R[$key,busy%]" \
    "R[$key,soft%]" wall srvs gens busys softs <<<"$figures"
  printf "  %-16s %9.0f %s, errors %s; CPU s in its %s s × %s CPUs: servers %s, generator %s, machine busy %s, softirq %s; whole run, each node: %s\n" \
    "$key" "${R[$key]}" "$figure" "$errors" "$wall" "$CPUS" "$srvs" "$gens" "$busys" "$softs" "$nodes" >&2
}

VIP_URI=coaps://$CLUSTER_VIP/time

# up CONFIG: a cluster of CONFIG coaps nodes, or libcoap's one; fresh
# servers for every run (a server's closed sessions may linger: libcoap's
# cost per datagram grows with them), SERVERS their pids.
up() {
  if [ "$1" = libcoap ]; then libcoap_up; return; fi
  CLUSTER_NODES=$1
  cluster_up "$BUILD" || fail "a $1-node cluster did not come up"
  SERVERS="${CLUSTER_PIDS[*]}"
}

# measure CONFIG ROUND: GETs, then handshakes; with one coaps node also
# the GET run to the node's own address (past the NAT) and once more
# through the balancer, one right after the other. Each on fresh servers
# (up, stop_all).
measure() {
  local c=$1 r=$2 get=(--sessions "$SESSIONS" --window 4 --duration "$DURATION")
  up "$c"
  run "$c,get,$r" requests_per_s "$VIP_URI" "${PSK_ARGS[@]}" "${get[@]}"
  stop_all
  up "$c"
  run "$c,hs,$r" handshakes_per_s "$VIP_URI" "${PSK_ARGS[@]}" --handshakes "$HANDSHAKES" --parallel 16
  stop_all
  [ "$c" = 1 ] || return 0
  # No balancer rules at all: the stateless rules would give the node's
  # answers the VIP's address, which a client of the node's own does not
  # expect.
  CLUSTER_NFT=/dev/null
  up 1
  CLUSTER_NFT=
  run "1,direct,$r" requests_per_s "coaps://10.199.1.2/time" "${PSK_ARGS[@]}" "${get[@]}"
  stop_all
  up 1
  run "1,via,$r" requests_per_s "$VIP_URI" "${PSK_ARGS[@]}" "${get[@]}"
  stop_all
}

# libcoap's coap-server-gnutls as the one node of the same topology
# (single-threaded; PSK: it takes any identity with the key).
libcoap_up() {
  CLUSTER_NODES=1 CLUSTER_SERVE=none
  cluster_up "$BUILD" || fail "the topology for libcoap did not come up"
  CLUSTER_SERVE=
  ip netns exec "${CLUSTER_NS}n1" coap-server-gnutls -A 10.199.1.2 -p 5683 -k "$CLUSTER_KEY" \
    >"$work/libcoap.log" 2>&1 &
  LC_PID=$!
  for _ in $(seq 100); do
    cluster_ns n1 ss -Hlun "sport = :5684" | grep -q . && { SERVERS=$LC_PID; return 0; }
    sleep 0.05
  done
  cat "$work/libcoap.log" >&2
  fail "coap-server-gnutls did not listen for coaps://"
}

echo "cluster_scale: $ROUNDS round(s) of $HANDSHAKES PSK handshakes (16 in flight) and" \
  "$SESSIONS sessions × 4 GETs for $DURATION s per configuration; load average" \
  "$(cut -d' ' -f1-3 /proc/loadavg)$([ "$QUICK" = 1 ] && echo ' (--quick)')" >&2

# The configurations interleaved round by round, so a change in the
# machine's other load touches all of them alike.
CONFIGS=(1 2 3 libcoap)
for r in $(seq "$ROUNDS"); do
  for c in "${CONFIGS[@]}"; do measure "$c" "$r"; done
done

# ---- the tables: medians over the rounds ----
# med KEY [FIELD]: the median over the rounds of R[KEY,ROUND] (or of
# R[KEY,ROUND,FIELD]).
med() {
  local r
  for r in $(seq "$ROUNDS"); do echo "${R[$1,$r${2:+,$2}]}"; done | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
spread() {
  local r
  for r in $(seq "$ROUNDS"); do echo "${R[$1,$r]}"; done | sort -g |
    awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f-%.0f", lo, hi }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
label() {
  case $1 in
  libcoap) echo "libcoap-gnutls, 1 node" ;;
  1) echo "coaps, 1 node" ;;
  *) echo "coaps, $1 nodes" ;;
  esac
}
table() { # table KIND TITLE
  local c
  echo
  printf "%-24s %8s %15s %5s %5s %7s %7s %8s %5s %5s %5s %5s\n" "$2" median "range" "x1" "xlc" \
    "srv us" "gen us" "mach us" "srv%" "gen%" "busy%" "sirq%"
  for c in "${CONFIGS[@]}"; do
    printf "%-24s %8.0f %15s %5s %5s %7s %7s %8s %5s %5s %5s %5s\n" "$(label "$c")" "$(med "$c,$1")" \
      "$(spread "$c,$1")" "$(ratio "$(med "$c,$1")" "$(med "1,$1")")" \
      "$(ratio "$(med "$c,$1")" "$(med "libcoap,$1")")" \
      "$(med "$c,$1" srv)" "$(med "$c,$1" gen)" "$(med "$c,$1" busy)" \
      "$(med "$c,$1" srv%)" "$(med "$c,$1" gen%)" "$(med "$c,$1" busy%)" "$(med "$c,$1" soft%)"
  done
}
table hs "PSK handshakes/s"
table get "DTLS-PSK GETs/s"
echo "(medians of $ROUNDS round(s); x1: over one coaps node; xlc: over libcoap-gnutls on one node;"
echo " srv / gen us: CPU µs per handshake or GET of the servers (all nodes) and of the generator;"
echo " mach us: the whole machine's busy CPU per operation, any other load on it included;"
echo " srv% gen% busy% sirq%: shares of all $CPUS CPUs during the run; softirq is where the"
echo " balancer's rules and the veth forwarding run, partly inside the processes' own time)"
echo
printf "%-34s %9s %7s %7s %8s\n" "one coaps node, GETs" "req/s" "srv us" "gen us" "mach us"
for k in via direct; do
  printf "%-34s %9.0f %7s %7s %8s\n" \
    "$([ $k = via ] && echo "through the balancer's rules" || echo "to the node's address (no rules)")" \
    "$(med "1,$k")" "$(med "1,$k" srv)" "$(med "1,$k" gen)" "$(med "1,$k" busy)"
done
# The NAT's cost: per round, the through-the-balancer run's CPU per request
# (server + generator: the forwarding softirq mostly runs inside them)
# less the direct run's, right before it.
for r in $(seq "$ROUNDS"); do
  R[1,nat,$r]=$(awk -v vs="${R[1,via,$r,srv]}" -v vg="${R[1,via,$r,gen]}" -v ds="${R[1,direct,$r,srv]}" \
    -v dg="${R[1,direct,$r,gen]}" 'BEGIN { printf "%.2f", (vs + vg) - (ds + dg) }')
  R[1,natm,$r]=$(awk -v v="${R[1,via,$r,busy]}" -v d="${R[1,direct,$r,busy]}" 'BEGIN { printf "%.1f", v - d }')
done
echo "the balancer rules' cost per request and its answer (through the balancer less direct, each round):" \
  "$(med 1,nat) µs of server + generator CPU (median; rounds $(for r in $(seq "$ROUNDS"); do printf "%s " "${R[1,nat,$r]}"; done| sed 's/ $//')), $(med 1,natm) µs of the machine's"
