/* A client context under the fuzzer, shared by the targets that play the
 * server's side by hand: a virtual clock, a seeded LCG for randomness (a
 * crash must replay from its input alone), one UDP endpoint every request
 * goes out of, and the target's own |send| to see what the client sends. */
#ifndef COAPS_FUZZ_CLIENT_DRIVER_H
#define COAPS_FUZZ_CLIENT_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/context.h"

typedef struct fuzz_client_env {
  uint64_t now;        /* the clock: the target moves it */
  uint32_t rand_state; /* the LCG's: a target may read it for message IDs */
  coap_endpoint_t *ep; /* 10.0.0.2:40000 */
} fuzz_client_env_t;

typedef int (*fuzz_send_fn)(void *user, coap_endpoint_t *ep, const coap_address_t *to,
                            const uint8_t *data, size_t len);

/* Reset |env| (now 1000000 ms, LCG state 1) and make a client context on
 * it (it must outlive the context) with bodies up to |max_body| bytes
 * (max_reassembly 4 KiB above), logging errors only, |send| as its
 * transport. Aborts when the context cannot be made. */
coap_context_t *fuzz_client_new(fuzz_client_env_t *env, size_t max_body, fuzz_send_fn send);

/* One step of |env|'s LCG, the same the context draws its randomness from. */
uint32_t fuzz_client_rand_step(fuzz_client_env_t *env);

/* The 4-byte header of a message from the server to the client: version 1,
 * |type|, token length |tkl|, |code|; an ACK takes the message ID of
 * |last| (the client's last datagram, 4 bytes at least), any other type
 * one from the LCG's state (not stepped). */
void fuzz_client_header(const fuzz_client_env_t *env, uint8_t type, uint8_t tkl, uint8_t code,
                        const uint8_t *last, uint8_t out[4]);

#endif
