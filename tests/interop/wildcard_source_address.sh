#!/usr/bin/env bash
# A server on a wildcard address ([::] by default, or 0.0.0.0) answers from
# the address it was asked at (IP_PKTINFO / IPV6_PKTINFO), not from the one
# the kernel would pick: clients that talk to 127.0.0.2 — ours, and
# libcoap's coap-client-notls and coap-client-gnutls, whose sockets are
# connected — drop an answer from 127.0.0.1, so every request here would
# time out. coap:// and coaps:// (the HelloVerifyRequest included), IPv4 on
# a dual-stack and on an IPv4 socket, IPv6 with two addresses of one host
# in a network namespace of our own, and a server bound to one address.
# (run with bash; needs libcoap3-bin, util-linux's unshare, iproute2)
BUILD=$1
. "$(dirname "$0")/lib.bash"
need coap-client-notls libcoap3-bin
need coap-client-gnutls libcoap3-bin
need unshare util-linux
need ip iproute2

ID=wild KEY=s3cret-wildcard
psk=(--psk-identity "$ID" --psk "$KEY")
# ours: a short deadline, so a dropped answer fails fast instead of after
# the 93 s of RFC 7252 retransmissions.
get() { "$BUILD/coaps" get -t 8 --handshake-timeout 8 "$@" 2>&1; }
is_time() { [[ "$2" =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T ]] || fail "$1: expected the time, got '$2'"; pass "$1"; }

# every_way HOST [NAME]: our client and libcoap's, coap:// and coaps://, at
# HOST ("127.0.0.2", "[fd00::2]") of the server on $SERVE_PORT/$DTLS_PORT.
# libcoap's DTLS client sends the URI's host as the TLS server name, and
# GnuTLS refuses an IPv6 literal there (illegal_parameter, whatever the
# source address): for an IPv6 HOST it goes by NAME, from our hosts file.
every_way() {
  local h=$1 name=${2:-$1}
  is_time "coaps get coap://$h" "$(get "coap://$h:$SERVE_PORT/time")"
  is_time "coaps get coaps://$h (PSK)" "$(get "${psk[@]}" "coaps://$h:$DTLS_PORT/time")"
  is_time "coap-client-notls coap://$h" "$(coap-client-notls -B 8 "coap://$h:$SERVE_PORT/time" 2>&1)"
  [[ "$name" == \[* ]] && { echo "note: coap-client-gnutls at $h: by name in the namespace part"; return 0; }
  is_time "coap-client-gnutls coaps://$name (PSK)" \
    "$(coap-client-gnutls -B 8 -u "$ID" -k "$KEY" "coaps://$name:$DTLS_PORT/time" 2>&1)"
}

if [ "${WILDCARD_IN_NETNS:-}" = 1 ]; then
  # A host with two more IPv6 addresses (and its 127/8): the namespace is
  # ours alone, so nothing outside sees the wildcard sockets.
  ip link set lo up
  ip -6 addr add fd00::2/128 dev lo nodad
  ip -6 addr add fd00::3/128 dev lo nodad
  work=$(mktemp -d)
  printf '127.0.0.1 localhost\nfd00::2 wild-a\nfd00::3 wild-b\n::1 wild-lo\n' >"$work/hosts"
  mount --bind "$work/hosts" /etc/hosts # a mount namespace of our own too
  [ "$(getent ahosts wild-b | head -1 | cut -d' ' -f1)" = fd00::3 ] || fail "hosts file not in use"
  start_coaps_serve_dtls "$work/serve6.log" "${psk[@]}"
  every_way "[fd00::2]" wild-a
  every_way "[fd00::3]" wild-b
  every_way "[::1]" wild-lo
  every_way 127.0.0.3
  # A PUT at one address, a GET at another: one server behind both.
  expect_eq "PUT at fd00::2, GET at fd00::3" "moved" \
    "$("$BUILD/coaps" put -t 8 -q -d moved "coap://[fd00::2]:$SERVE_PORT/store" &&
       get "coap://[fd00::3]:$SERVE_PORT/store")"
  exit 0
fi

work=$(mktemp -d)

# The default: [::], dual stack — IPv4 clients are v4-mapped.
start_coaps_serve_dtls "$work/serve.log" "${psk[@]}"
grep -q 'listening on coap://\[::\]:' "$work/serve.log" || fail "serve did not bind [::]: $(cat "$work/serve.log")"
every_way 127.0.0.2
every_way 127.0.0.1
every_way "[::1]"
out=$(coap-client-notls -B 8 -m put -e "via-127.0.0.3" "coap://127.0.0.3:$SERVE_PORT/store" 2>&1)
expect_eq "PUT at 127.0.0.3 then GET at 127.0.0.2" "via-127.0.0.3" \
  "$(get "coap://127.0.0.2:$SERVE_PORT/store")"

# An IPv4 wildcard socket: IP_PKTINFO.
start_coaps_serve_dtls "$work/serve4.log" -a 0.0.0.0 "${psk[@]}"
every_way 127.0.0.2

# Bound to one address: no wildcard, nothing to choose, still answered.
start_coaps_serve_dtls "$work/serve_one.log" -a 127.0.0.2 "${psk[@]}"
every_way 127.0.0.2

# IPv6 with several addresses of one host, in a network namespace.
cleanup_bg
BG_PIDS=()
WILDCARD_IN_NETNS=1 unshare -rnm bash "$0" "$BUILD" || fail "the IPv6 part (in a network namespace) failed"
