#!/usr/bin/env bash
# What a balancer's health check does when a node dies, for the cluster of
# tests/cluster/cluster.sh (source this after it; docs/cluster.md explains
# the same steps for any nftables balancer):
#
#   balancer_remove_node N   node N leaves both of the balancer's maps, in
#                            one nft transaction (and is checked to have
#                            no conntrack flow: there is nothing to flush)
#   balancer_flows N         how many conntrack flows go to node N now (0:
#                            the shipped rules track no CoAP datagram)
#   balancer_firewall        a stateful firewall on the balancer, as a real
#                            host has one: conntrack then runs there, and
#                            the balancer's datagrams must still stay out
#                            of it (notrack) and pass
#   balancer_conntrack_runs  status 0 if conntrack tracks the balancer's
#                            other traffic (so a flow count of 0 means
#                            something)
#
# Why one step is enough: the shipped rules are stateless, every datagram
# is routed by the rules as they are when it arrives. Once node N is out
# of the CID map, its clients' next tls12_cid records miss the map and are
# spread by the hash like a new client's; the node they land on does not
# know their CID and drops them, the client hears nothing and starts a new
# handshake (same address and port: same hash, same node), which resumes
# its session there with its ticket (the nodes share --ticket-key-file).
# A conntrack balancer would also need the dead node's flows deleted
# (conntrack -D --reply-src), or its clients would keep following them.
#
# The hash: the shipped rules send a datagram to node (jhash mod 3) + 1.
# Without node N the rules hash mod 3 x L (L live nodes) instead: a slot
# s whose node (s mod 3) + 1 is alive keeps it, and since 3 divides 3 x L
# (jhash mod 3L) mod 3 = jhash mod 3, every datagram of a live node's
# client still goes to that node; the dead node's L slots go one to each
# live node, so its clients are spread evenly.
CLUSTER_DOWN_NODES=${CLUSTER_DOWN_NODES:-}

balancer_node_addr() { echo "10.199.$1.2"; }

# balancer_rules: the balancer's routing rules for the nodes not in
# CLUSTER_DOWN_NODES, as nft commands (the chain to_node of
# coaps-balancer.nft; the rest of the table does not name live nodes).
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
  echo "flush chain ip coaps_balancer to_node"
  echo "add rule ip coaps_balancer to_node udp dport 5684 @th,64,8 0x19 ip daddr set @th,160,8 map { $cid } return"
  echo "add rule ip coaps_balancer to_node ip daddr set jhash ip saddr . udp sport mod $nslots map { $slots }"
}

# balancer_remove_node N: the health check's verdict on node N.
balancer_remove_node() {
  CLUSTER_DOWN_NODES+=" $1"
  # One transaction: no datagram sees the chain empty.
  balancer_rules | cluster_ns lb nft -f - || return 1
  local left
  left=$(balancer_flows "$1")
  [ "$left" = 0 ] || { cluster_say "node $1: $left conntrack flows (the rules should track none)"; return 1; }
}

# balancer_flows N: conntrack flows to or from node N, but for the
# balancer host's own (its probes, from its address on node N's link,
# 10.199.N.1: tracked, as a stateful firewall needs them).
balancer_flows() {
  { cluster_ns lb conntrack -L -p udp --reply-src "$(balancer_node_addr "$1")" 2>/dev/null
    cluster_ns lb conntrack -L -p udp --orig-src "$(balancer_node_addr "$1")" 2>/dev/null; } |
    grep udp | grep -vc "src=10\.199\.$1\.1 " || true
}

# balancer_firewall: a stateful firewall in the balancer's namespace, as
# a real host runs one: conntrack then tracks the namespace's traffic, the
# host takes in nothing but answers to its own flows (a health check's
# probe of a node: its answer must stay tracked), and forwards nothing but
# those and the balancer's untracked CoAP datagrams (a datagram the
# balancer failed to keep out of conntrack would be "new" here, and
# dropped).
balancer_firewall() {
  cluster_ns lb nft -f - <<'EOF'
table ip host_firewall {
	chain input {
		type filter hook input priority filter; policy drop;
		iifname "lo" accept
		ct state { established, related } accept
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state { established, related } accept
		ct state untracked udp dport { 5683, 5684 } accept
		ct state untracked udp sport { 5683, 5684 } accept
	}
}
EOF
}

# balancer_conntrack_runs: whether conntrack tracks the balancer host's
# traffic (status 0 if so): a datagram from the host to the client's port
# 9 (no CoAP port: the balancer's rules leave it alone) must make a flow.
balancer_conntrack_runs() {
  cluster_ns lb bash -c "echo probe >/dev/udp/10.199.0.2/9" 2>/dev/null || true
  cluster_ns lb conntrack -L -p udp --dport 9 2>/dev/null | grep -q udp
}
