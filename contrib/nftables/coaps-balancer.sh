#!/bin/sh
# Prints the stateless nftables balancer of coaps-balancer.nft for any
# number of coaps servers (IPv4): load it on the balancer host with
#
#   sh contrib/nftables/coaps-balancer.sh --vip 192.0.2.10 10.0.0.11 10.0.0.12 | nft -f -
#
# --vip: the address clients send to (an address of the balancer host).
# Each further argument is a server, ADDRESS or ID=ADDRESS: ID is the
# --node-id that server was started with (0-255), by default its place in
# the list (1, 2, ...). CID records (tls12_cid) go to the server whose id
# is in their CID's byte 1; every other datagram is spread over the
# servers, in the order given, by a hash of the client's address and
# port. With three servers 1, 2, 3 the output is coaps-balancer.nft with
# its addresses filled in (tests/interop/cluster_sizes.sh compares them).
# Run it again with the new list and load the output to add or remove a
# server: the table is replaced in one transaction, and since no flow is
# kept, every datagram from then on is routed by the new list (CID
# records still by their node byte). IPv6 is refused: the same rules
# would go in a "table ip6" with "ip6 saddr", not generated here.
set -eu

usage() {
  echo "usage: $0 --vip ADDRESS [ID=]ADDRESS [[ID=]ADDRESS...]   (IPv4; ID 0-255, default the position)" >&2
  exit 64
}
[ $# -ge 3 ] && [ "$1" = --vip ] || usage

# is_ipv4 WHAT ADDRESS: refuses (status 64) an address that is not IPv4.
is_ipv4() {
  case $2 in
  *:*) echo "$0: $1 '$2' is IPv6: only IPv4 is generated (see docs/cluster.md)" >&2; exit 64 ;;
  esac
  if ! echo "$2" | grep -Eq '^([0-9]{1,3}\.){3}[0-9]{1,3}$'; then
    echo "$0: $1 '$2' is not an IPv4 address" >&2
    exit 64
  fi
}
vip=$2
is_ipv4 "the VIP" "$vip"
shift 2

nodes='' cid_map='' hash_map='' position=0 seen=' '
for server in "$@"; do
  position=$((position + 1))
  case $server in
  *=*) id=${server%%=*} address=${server#*=} ;;
  *) id=$position address=$server ;;
  esac
  case $id in
  '' | *[!0-9]*) echo "$0: node id '$id' of '$server' is not a number 0-255" >&2; exit 64 ;;
  esac
  # Leading zeros would make $((...)) read it as octal: strip them.
  while [ "${id#0}" != "$id" ] && [ "${#id}" -gt 1 ]; do id=${id#0}; done
  if [ "${#id}" -gt 3 ] || [ "$id" -gt 255 ]; then
    echo "$0: node id $id of '$server' is over 255 (the CID has one byte for it)" >&2
    exit 64
  fi
  case $seen in
  *" $id "*)
    echo "$0: node id $id is given twice: each server needs its own --node-id" >&2
    exit 64
    ;;
  esac
  seen="$seen$id "
  is_ipv4 "server" "$address"
  if [ "$address" = "$vip" ]; then
    echo "$0: server $address is the VIP: a node needs an address of its own" >&2
    exit 64
  fi
  nodes="$nodes${nodes:+, }$address"
  cid_map="$cid_map${cid_map:+, }$id : $address"
  hash_map="$hash_map${hash_map:+, }$((position - 1)) : $address"
done

cat <<EOF
# coaps balancer for $position server(s), made by contrib/nftables/coaps-balancer.sh
# (coaps-balancer.nft says how it works).
table ip coaps_balancer
delete table ip coaps_balancer
table ip coaps_balancer {
	set nodes {
		type ipv4_addr
		elements = { $nodes }
	}
	chain prerouting {
		type filter hook prerouting priority raw; policy accept;
		ip daddr $vip udp dport { 5683, 5684 } notrack jump to_node
		ip saddr @nodes udp sport { 5683, 5684 } fib daddr type != local notrack
	}
	chain to_node {
		udp dport 5684 @th,64,8 0x19 ip daddr set @th,160,8 map { $cid_map } return
		ip daddr set jhash ip saddr . udp sport mod $position map { $hash_map }
	}
	chain postrouting {
		type filter hook postrouting priority srcnat; policy accept;
		ip saddr @nodes udp sport { 5683, 5684 } ip saddr set $vip
	}
}
EOF
