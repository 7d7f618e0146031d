/* The simulated-network tests link the sans-I/O core alone (coaps_core:
 * src/common … src/context, no src/io), which proves that what they test
 * needs no sockets. The public coap_context_new (the macro over
 * coap_context_new_versioned) sits in the I/O shell (src/io/context_new.c,
 * where a context gets the epoll shell and getaddrinfo as defaults); here
 * it is the core's constructor without them: a simulated network is every
 * context's transport. */
#include "context/shell.h"

coap_context_t *coap_context_new_versioned(int version, const coap_context_config_t *cfg) {
  return coap_context_create(version, cfg, NULL);
}
