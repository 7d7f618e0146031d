#!/usr/bin/env bash
# Our client's block-wise transfers (RFC 7959) against libcoap's servers,
# coap-server-notls and coap-server-gnutls (PSK), which take PUTs to new
# paths (-d) and serve what they stored in blocks: 100 KB of random bytes
# PUT in Block1 blocks of 16 and of 1024 bytes and read back in Block2
# blocks, byte-exact, on coap:// and coaps://; a DTLS MTU too small for a
# 1024-byte block; a body over --max-body refused, not cut.
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-server-notls libcoap3-bin
need coap-server-gnutls libcoap3-bin
work=$(mktemp -d)
trap 'cleanup_bg; rm -rf "$work"' EXIT
coaps() { "$BUILD/coaps" "$@"; }
head -c 100000 /dev/urandom >"$work/body"

port=$(pick_free_udp_port)
coap-server-notls -A 127.0.0.1 -p "$port" -d 20 >"$work/notls.log" 2>&1 &
BG_PIDS+=($!)
# libcoap serves coaps:// on the port after its coap:// one.
for _ in $(seq 20); do
  dport=$(pick_free_udp_port)
  ss -Hlun "sport = :$((dport + 1))" | grep -q . || break
done
coap-server-gnutls -A 127.0.0.1 -p "$dport" -k s3cret -d 20 >"$work/gnutls.log" 2>&1 &
BG_PIDS+=($!)
wait_udp_port "$port"
wait_udp_port $((dport + 1))
psk=(--psk-identity blockwise --psk s3cret)

# transfer NAME URL BLOCK_SIZE [EXTRA...]: PUT the body to URL, GET it back.
transfer() {
  local name=$1 url=$2 size=$3
  shift 3
  coaps put -t 120 -b "$size" "$url" -d @"$work/body" -f octet "$@" >"$work/put.out" 2>&1 ||
    fail "$name: PUT of 100 KB failed: $(cat "$work/put.out")"
  coaps get -t 120 -b "$size" "$url" "$@" >"$work/got" 2>"$work/get.err" ||
    fail "$name: GET failed: $(cat "$work/get.err")"
  cmp -s "$work/body" "$work/got" ||
    fail "$name: the body read back differs ($(stat -c %s "$work/got") bytes, 100000 sent)"
  pass "$name: 100 KB PUT in blocks of $size and read back byte-exact"
}

for size in 16 1024; do
  transfer "coap-server-notls" "coap://127.0.0.1:$port/big$size" "$size"
  transfer "coap-server-gnutls PSK" "coaps://127.0.0.1:$((dport + 1))/big$size" "$size" "${psk[@]}"
done

# The default block size, and each block's exchange shown by -v.
coaps get -t 60 -v "coap://127.0.0.1:$port/big1024" >"$work/got" 2>"$work/trace"
cmp -s "$work/body" "$work/got" || fail "GET with the default block size differs"
blocks=$(grep -c '^< ACK 2.05 .*\[Block2 [0-9]*/' "$work/trace" || true)
expect_eq "-v shows every Block2 exchange of a 100 KB GET" 98 "$blocks"

# A DTLS record at MTU 300 holds no 1024-byte block: smaller blocks, never
# a request that is silently not sent.
transfer "coap-server-gnutls PSK, MTU 300" "coaps://127.0.0.1:$((dport + 1))/mtu300" 1024 \
  "${psk[@]}" --mtu 300
coaps put -t 60 -v "coaps://127.0.0.1:$((dport + 1))/mtu300" -d @"$work/body" "${psk[@]}" \
  --mtu 300 >/dev/null 2>"$work/trace"
expect_contains "MTU 300: the body goes in 128-byte blocks" "[Block1 0/more/128]" \
  "$(cat "$work/trace")"

# A body over --max-body ends the transfer with a reason, not a cut body.
set +e
out=$(coaps get -t 60 --max-body 50000 "coap://127.0.0.1:$port/big1024" 2>"$work/err")
rc=$?
set -e
expect_eq "a body over --max-body exits 4" 4 "$rc"
expect_eq "nothing of it is printed" "" "$out"
expect_contains "the reason names the limit" "max_body (50000 bytes)" "$(cat "$work/err")"

# A block size RFC 7959 cannot express is a usage error.
set +e
coaps get -b 2048 "coap://127.0.0.1:$port/big1024" >/dev/null 2>"$work/err"
rc=$?
set -e
expect_eq "--block-size 2048 is a usage error" 64 "$rc"
expect_contains "--block-size says what it takes" "16, 32, 64, 128, 256, 512 or 1024" \
  "$(cat "$work/err")"
