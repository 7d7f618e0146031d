/* A server context fed datagrams by hand, without the simulated network:
 * the test calls coap_context_input itself and sees every datagram the
 * context sends through its own |send|. Time is the test's variable (a
 * virtual clock), randomness a small LCG whose state the test owns, so a
 * run is the same every time. One setup for the server tests that build
 * requests byte by byte, instead of a copy in each. */
#ifndef SUPPORT_HANDFED_H
#define SUPPORT_HANDFED_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/context.h"

typedef int (*sim_send_fn)(void *user, coap_endpoint_t *ep, const coap_address_t *to,
                           const uint8_t *data, size_t len);

/* A context made from |cfg| (NULL: the defaults) with the clock reading
 * |*now|, randomness from the LCG state |*rand_state| (both must outlive
 * it), logging errors only, |send| as its transport and one UDP endpoint,
 * returned in |*ep|. Every step must succeed. */
coap_context_t *sim_handfed_new(const coap_context_config_t *cfg, uint64_t *now,
                                uint32_t *rand_state, sim_send_fn send, coap_endpoint_t **ep);

#endif
