/* A resource handler that keeps what a PUT or POST brought: the server
 * side of the client tests that send a body and check it arrived whole,
 * once. */
#ifndef SUPPORT_STORE_H
#define SUPPORT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/context.h"

typedef struct sim_store {
  uint8_t *buf;   /* where the body goes */
  size_t cap;     /* its size: a longer body fails the test */
  size_t len;     /* the last body's length */
  unsigned calls; /* how many times the handler ran */
} sim_store_t;

/* The handler (PUT or POST), |user| a sim_store_t: copies the body, counts
 * the call and answers 2.04 Changed. */
void sim_store_put(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                   coap_response_t *resp, void *user);

#endif
