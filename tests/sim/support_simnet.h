/* A simulated UDP network for whole contexts: datagrams queue in memory,
 * a virtual clock advances only when the test says so, and loss,
 * duplication and reordering are programmable. */
#ifndef SUPPORT_SIMNET_H
#define SUPPORT_SIMNET_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/context.h"

#define SIMNET_MAX_NODES 8
#define SIMNET_MAX_QUEUE 4096
#define SIMNET_MAX_ALIASES 4
#define SIMNET_MAX_FRESH 4

typedef struct simnet simnet_t;

typedef struct simnet_node {
  simnet_t *net;
  coap_context_t *ctx;
  coap_endpoint_t *ep; /* its endpoint */
  coap_address_t addr;
  /* A client endpoint of the other protocol, made when the context asks
   * for one (a coaps:// client's plain CoAP probe): a socket of its own,
   * at |addr|'s port + 1. */
  coap_endpoint_t *other_ep;
  coap_address_t other_addr;
  /* Further addresses (simnet_node_add_alias): the node then acts as a
   * socket bound to a wildcard address on a multi-homed host. */
  coap_address_t aliases[SIMNET_MAX_ALIASES];
  size_t n_aliases;
  /* Datagrams it sent through the transport's send_from (from a local
   * address the context chose; the last one in |last_local|) and through
   * send (the "kernel" picks |addr| as the source). */
  unsigned sent_from_local, sent_plain;
  coap_address_t last_local;
  /* simnet_node_fresh_endpoints: further client endpoints of its own
   * protocol, each at a port of its own (the node's + 10, + 11, ...), and
   * endpoints the context closed: |ep| NULL once the node's own closed. */
  int fresh_endpoints, gave_own;
  coap_proto_t own_proto;
  coap_endpoint_t *fresh_ep[SIMNET_MAX_FRESH];
  coap_address_t fresh_addr[SIMNET_MAX_FRESH];
  size_t n_fresh;
  uint16_t next_fresh_port;
  unsigned endpoints_closed;
} simnet_node_t;

/* Decide a datagram's fate: return 0 to deliver, 1 to drop, 2 to deliver
 * twice. |seq| counts datagrams sent on the network since creation. */
typedef int (*simnet_filter_fn)(void *user, const simnet_node_t *from, const coap_address_t *to,
                                const uint8_t *data, size_t len, unsigned seq);

struct simnet {
  uint64_t now;
  uint64_t latency_ms;
  unsigned seq;
  simnet_node_t nodes[SIMNET_MAX_NODES];
  size_t n_nodes;
  simnet_filter_fn filter;
  void *filter_user;
  struct {
    uint64_t at;
    simnet_node_t *to;
    coap_address_t from;
    coap_address_t dst; /* the address it was sent to (|to|'s, or an alias) */
    size_t len;
    uint8_t data[1500];
  } queue[SIMNET_MAX_QUEUE];
  size_t queued;
  unsigned delivered, dropped;
  uint32_t rand_state;
};

void simnet_init(simnet_t *net);
/* A context on 10.0.0.<n>:<port> (a plain address: nothing is bound).
 * |cfg| NULL: defaults with the virtual clock and a seeded rand. */
simnet_node_t *simnet_add_node(simnet_t *net, uint16_t port, coap_proto_t proto,
                               coap_context_config_t *cfg);
/* Give |node| another address, |host| (a numeric literal) with the node's
 * port: datagrams to it reach the node. From then on the node is like a
 * socket bound to a wildcard address: every datagram it receives is handed
 * to coap_context_input_to with the address it was sent to, and a datagram
 * it sends through send_from leaves from the local address given (which
 * must be one of its own); through send it leaves from |addr|. Returns 0
 * or -1. */
int simnet_node_add_alias(simnet_node_t *node, const char *host);
/* Give |node| a transport that opens a new client endpoint each time the
 * context asks for one (after its own, the first) and closes those the
 * context closes (coap_transport_t V2 close_endpoint): a client replacing
 * a session then does so from a new port. Datagrams to a closed
 * endpoint's address are dropped. */
void simnet_node_fresh_endpoints(simnet_node_t *node);
/* A datagram from |from|'s address to |to| through the network (filter,
 * latency), as if its context had sent it. Returns 1 when some node holds
 * |to|, 0 when it is dropped as undeliverable. */
int simnet_inject(simnet_node_t *from, const coap_address_t *to, const uint8_t *data, size_t len);
/* The node's process restarts: a fresh context (defaults) at the same
 * address, remembering nothing. Returns 0 or -1. */
int simnet_node_restart(simnet_node_t *node);
/* Deliver due datagrams and fire due timers until nothing is left before
 * |until| (virtual ms). */
void simnet_run_until(simnet_t *net, uint64_t until);
/* Run until |*flag| becomes non-zero or |limit| ms of virtual time pass.
 * Returns 1 when the flag was set. */
int simnet_run_until_flag(simnet_t *net, const int *flag, uint64_t limit);
void simnet_free(simnet_t *net);
/* Virtual clock and rand callbacks, for custom configurations. */
uint64_t simnet_clock(void *user);
void simnet_rand(void *user, uint8_t *buf, size_t len);

#endif
