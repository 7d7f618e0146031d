/* TEMPORARY, removed as soon as the client's Observe API lands (commit
 * 2a39058 declared it; the server's part is in): a weak stand-in so that
 * the tool links in the shared tree meanwhile. Until then deregistering
 * fails and the tool forgets the observation instead. */
#include "cli.h"

__attribute__((weak)) int coap_observe_cancel(coap_context_t *ctx, coap_request_id_t id) {
  (void)ctx;
  (void)id;
  return COAP_E_STATE;
}
