#!/bin/sh
# Prints the nftables balancer of coaps-balancer.nft for any number of
# coaps servers (IPv4): load it on the balancer host with
#
#   sh contrib/nftables/coaps-balancer.sh 10.0.0.11 10.0.0.12 | nft -f -
#
# Each argument is a server, ADDRESS or ID=ADDRESS: ID is the --node-id
# that server was started with (0-255), by default its place in the list
# (1, 2, ...). CID records (tls12_cid) go to the server whose id is in
# their CID's byte 1; every other first datagram of a flow is spread over
# the servers, in the order given, by a hash of the client's address and
# port. With three servers 1, 2, 3 the output is coaps-balancer.nft with
# its addresses filled in (tests/interop/cluster_sizes.sh compares them).
# Run it again with the new list and load the output to add or remove a
# server: the table is replaced in one transaction, and flows already
# NATed keep their server (conntrack). IPv6 is refused: the same rules
# would go in a "table ip6" with "ip6 saddr", not generated here.
set -eu

usage() {
  echo "usage: $0 [ID=]ADDRESS [[ID=]ADDRESS...]   (IPv4; ID 0-255, default the position)" >&2
  exit 64
}
[ $# -ge 1 ] || usage

cid_map='' hash_map='' position=0 seen=' '
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
  case $address in
  *:*) echo "$0: '$address' is IPv6: only IPv4 is generated (see docs/cluster.md)" >&2; exit 64 ;;
  esac
  if ! echo "$address" | grep -Eq '^([0-9]{1,3}\.){3}[0-9]{1,3}$'; then
    echo "$0: '$address' is not an IPv4 address" >&2
    exit 64
  fi
  cid_map="$cid_map${cid_map:+, }$id : $address"
  hash_map="$hash_map${hash_map:+, }$((position - 1)) : $address"
done

cat <<EOF
# coaps balancer for $position server(s), made by contrib/nftables/coaps-balancer.sh
# (coaps-balancer.nft says how it works).
table ip coaps_balancer
delete table ip coaps_balancer
table ip coaps_balancer {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		udp dport 5684 @th,64,8 0x19 dnat to @th,160,8 map { $cid_map }
		udp dport { 5683, 5684 } dnat to jhash ip saddr . udp sport mod $position map { $hash_map }
	}
}
EOF
