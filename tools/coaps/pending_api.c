/* TEMPORARY, removed as soon as the library's Observe API lands (commit
 * 2a39058 declared it, the implementations follow): weak stand-ins so that
 * the tool links in the shared tree meanwhile. A library definition, once
 * there, takes precedence; until then observing fails loudly. */
#include "cli.h"

__attribute__((weak)) int coap_resource_set_observable(coap_resource_t *res, int on) {
  (void)res;
  (void)on;
  return COAP_E_STATE;
}

__attribute__((weak)) int coap_resource_notify(coap_resource_t *res) {
  (void)res;
  return COAP_E_STATE;
}

__attribute__((weak)) size_t coap_resource_observer_count(const coap_resource_t *res) {
  (void)res;
  return 0;
}

__attribute__((weak)) int coap_observe_cancel(coap_context_t *ctx, coap_request_id_t id) {
  (void)ctx;
  (void)id;
  return COAP_E_STATE;
}
