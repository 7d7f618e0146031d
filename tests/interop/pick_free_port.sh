#!/usr/bin/env bash
# pick_free_udp_port (lib.bash) stays out of the kernel's ephemeral range,
# read when it runs (a port in it could be taken by any process's port-0
# bind before the test binds it), and stays random. In the test's own
# network namespace the range is also moved (ip_local_port_range is per
# namespace), to show it is read at run time: a range starting low makes
# it pick above the range.
BUILD=$1
. "$(dirname "$0")/lib.bash"
range=/proc/sys/net/ipv4/ip_local_port_range

# check LABEL: 100 picks, none in the current range, none busy, varied.
check() {
  local lo hi p picks=()
  read -r lo hi <"$range"
  for _ in $(seq 100); do
    p=$(pick_free_udp_port)
    [ "$p" -ge 1024 ] && [ "$p" -le 65534 ] || fail "$1: port $p out of bounds"
    [ "$p" -lt "$lo" ] || [ "$p" -gt "$hi" ] || fail "$1: port $p is in the ephemeral range $lo-$hi"
    [ "$p" != 5683 ] && [ "$p" != 5684 ] || fail "$1: port $p is CoAP's own"
    picks+=("$p")
  done
  local distinct
  distinct=$(printf '%s\n' "${picks[@]}" | sort -u | wc -l)
  [ "$distinct" -ge 80 ] || fail "$1: only $distinct different ports in 100 picks"
  pass "$1: 100 picks outside $lo-$hi, $distinct different (e.g. ${picks[0]})"
}

check "the range as it is"
if [ -n "${COAPS_OWN_NETNS:-}" ] && echo "20000 60999" >"$range" 2>/dev/null; then
  check "range 20000-60999"
  echo "1500 60999" >"$range"
  check "range 1500-60999 (too little below: above it)"
  echo "1500 65500" >"$range"
  set +e
  out=$( (pick_free_udp_port) 2>&1)
  rc=$?
  set -e
  [ "$rc" != 0 ] || fail "range 1500-65500: picked $out, with no room outside the range"
  expect_contains "range 1500-65500: says there is no room" "no port range outside" "$out"
else
  echo "note: not in a network namespace of its own: the range is not moved"
fi
