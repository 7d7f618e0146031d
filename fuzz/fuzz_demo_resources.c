/* Fuzz the resources 'coaps serve' offers (tools/coaps/demo_resources.c:
 * /temp, /time, /store, /echo) through the whole receive path of a node
 * (node_driver.c): a handler is reachable by any coap:// client, so it
 * must hold for any request, empty payloads included, and for the
 * notifications of observable /temp and /time. */
#include <stdint.h>
#include <string.h>

#include "cli.h"
#include "node_driver.h"

/* The demo store outlives a context: empty it before each input (with a
 * DELETE through the node, as a client would), so that a crash replays
 * from its input alone. */
static void setup(coap_context_t *ctx, coap_endpoint_t *ep, uint64_t now) {
  demo_resources_register(ctx);
  static const uint8_t delete_store[] = {0x50, COAP_DELETE, 0xff, 0xff, 0xb5,
                                         's',  't',         'o',  'r',  'e'};
  coap_address_t from;
  fuzz_node_peer(&from, 0);
  coap_context_input(ctx, ep, &from, delete_store, sizeof delete_store, now);
}

/* 'coaps serve' notifies the observers of /temp and /time every second:
 * once the input has registered whatever it registers, notify them, so
 * that notifications are built (the GET handlers run again with each
 * registration request) and sent for any observer the input made. */
static void finish(coap_context_t *ctx) {
  demo_resources_tick(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const fuzz_node_hooks_t hooks = {setup, finish};
  fuzz_node_run(data, size, &hooks);
  return 0;
}
