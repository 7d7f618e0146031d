/* The receive path of a whole server node under the fuzzer, shared by the
 * targets that differ only in the resources they serve. */
#ifndef COAPS_FUZZ_NODE_DRIVER_H
#define COAPS_FUZZ_NODE_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/context.h"

typedef struct fuzz_node_hooks {
  /* Register the resources; |ep| and |now| let it feed datagrams of its
   * own first (to reset state that outlives a context). */
  void (*setup)(coap_context_t *ctx, coap_endpoint_t *ep, uint64_t now);
  /* Before the last timers run and the context is freed; may be NULL. */
  void (*finish)(coap_context_t *ctx);
} fuzz_node_hooks_t;

/* Split |data| into datagrams from up to 8 peers and feed them to a server
 * context whose table holds only 3 peers (so newcomers are refused or evict
 * the peer silent longest), the virtual clock moving between them so that
 * retransmission, dedup and idle timers run too.
 * Framing: [peer:1][advance:1][len:2][bytes] repeated; the clock advances
 * by advance × 500 ms after each datagram. */
void fuzz_node_run(const uint8_t *data, size_t size, const fuzz_node_hooks_t *hooks);

/* The address of peer |n| (0..7): 10.0.0.(n+1), port 40000. */
void fuzz_node_peer(coap_address_t *out, unsigned n);

#endif
