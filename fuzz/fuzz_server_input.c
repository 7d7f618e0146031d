/* Fuzz the whole receive path of a node (node_driver.c: datagrams from up
 * to 8 peers, a table of 3, a moving virtual clock) with resources that
 * echo every method, read the query, and answer later (deferred); /echo
 * is observable and every unsafe request to it notifies its observers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node_driver.h"

static coap_deferred_t *parked;

static void echo(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                 coap_response_t *resp, void *user) {
  size_t len;
  const uint8_t *p = coap_request_payload(req, &len);
  char q[16];
  coap_request_query(req, "q", q, sizeof q);
  coap_response_set_payload(resp, coap_msg_content_format(coap_request_msg(req)), p, len);
  uint8_t m = coap_request_method(req);
  if (m != COAP_GET && m != COAP_FETCH) coap_resource_notify(res); /* its observers */
}

static void deferred(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  if (parked) {
    coap_deferred_send(ctx, parked);
    parked = NULL;
  }
  parked = coap_request_defer(req, resp);
}

static void setup(coap_context_t *ctx, coap_endpoint_t *ep, uint64_t now) {
  parked = NULL;
  coap_resource_t *r = coap_resource_add(ctx, "echo");
  for (uint8_t m = COAP_GET; m <= COAP_IPATCH; m++) coap_resource_set_handler(r, m, echo, NULL);
  coap_resource_set_attr(r, "rt", "echo");
  coap_resource_set_observable(r, 1);
  r = coap_resource_add(ctx, "later");
  coap_resource_set_handler(r, COAP_GET, deferred, NULL);
}

static void finish(coap_context_t *ctx) {
  if (parked) coap_deferred_send(ctx, parked);
  parked = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const fuzz_node_hooks_t hooks = {setup, finish};
  fuzz_node_run(data, size, &hooks);
  return 0;
}
