#!/usr/bin/env bash
# What a balancer's health check does when a node dies, for the cluster of
# tests/cluster/cluster.sh (source this after it; docs/cluster.md explains
# the same steps for any nftables balancer):
#
#   balancer_remove_node N   node N leaves both of the balancer's maps, in
#                            one nft transaction, and its conntrack flows
#                            are deleted
#   balancer_flows N         how many conntrack flows go to node N now
#
# Why both steps: nftables decides NAT on the first datagram of a
# conntrack flow and every later datagram of that flow follows the same
# translation, so a client whose flow goes to a dead node keeps sending
# there whatever the rules say, until the flow is deleted (or idles out:
# 30 s for UDP, 120 s once it saw traffic both ways). Once deleted, the
# client's next datagram starts a new flow: a tls12_cid record names the
# dead node (no longer in the CID map, so that rule does not match) and
# is spread by the hash like a new client; the node it lands on does not
# know its CID and drops it, the client hears nothing and starts a new
# handshake, which resumes its session there with its ticket (the nodes
# share --ticket-key-file).
#
# The hash: the shipped rules send a new flow to node (jhash mod 3) + 1.
# Without node N the rules hash mod 3 x L (L live nodes) instead: a slot
# s whose node (s mod 3) + 1 is alive keeps it, and since 3 divides 3 x L
# (jhash mod 3L) mod 3 = jhash mod 3, every flow of a live node's client
# still goes to that node; the dead node's L slots go one to each live
# node, so its clients are spread evenly.
CLUSTER_DOWN_NODES=${CLUSTER_DOWN_NODES:-}

balancer_node_addr() { echo "10.199.$1.2"; }

# balancer_rules: the balancer's prerouting rules for the nodes not in
# CLUSTER_DOWN_NODES, as nft commands.
balancer_rules() {
  local live=() n s cid="" slots="" total=3
  for n in 1 2 3; do
    [[ " $CLUSTER_DOWN_NODES " == *" $n "* ]] || live+=("$n")
  done
  [ ${#live[@]} -gt 0 ] || { cluster_say "no node left alive"; return 1; }
  for n in "${live[@]}"; do cid+="${cid:+, }$n : $(balancer_node_addr "$n")"; done
  local nslots=$((total * ${#live[@]}))
  for ((s = 0; s < nslots; s++)); do
    n=$((s % total + 1))
    [[ " ${live[*]} " == *" $n "* ]] || n=${live[$((s / total % ${#live[@]}))]}
    slots+="${slots:+, }$s : $(balancer_node_addr "$n")"
  done
  echo "flush chain ip coaps_balancer prerouting"
  echo "add rule ip coaps_balancer prerouting udp dport 5684 @th,64,8 0x19 dnat to @th,160,8 map { $cid }"
  echo "add rule ip coaps_balancer prerouting udp dport { 5683, 5684 } dnat to jhash ip saddr . udp sport mod $nslots map { $slots }"
}

# balancer_remove_node N: the health check's verdict on node N.
balancer_remove_node() {
  CLUSTER_DOWN_NODES+=" $1"
  # One transaction: no datagram sees the chain empty.
  balancer_rules | cluster_ns lb nft -f - || return 1
  # conntrack -D exits 1 when there was nothing to delete.
  cluster_ns lb conntrack -D -p udp --reply-src "$(balancer_node_addr "$1")" >/dev/null 2>&1 || true
  local left
  left=$(balancer_flows "$1")
  [ "$left" = 0 ] || { cluster_say "node $1: $left conntrack flows left after the flush"; return 1; }
}

# balancer_flows N: conntrack flows translated to node N.
balancer_flows() {
  cluster_ns lb conntrack -L -p udp --reply-src "$(balancer_node_addr "$1")" 2>/dev/null | grep -c udp || true
}
