/* The public constructor (coap_context_new) sits above the core: it is where a context gets
 * the built-in I/O shell's defaults — the epoll shell as the transport of
 * a context whose first request finds none, and getaddrinfo for host
 * names — so that the core (src/common … src/context) links without
 * src/io. coap_context_create (context/shell.h) is the core's own. */
#include "io/shell.h"

static const coap_shell_t io_shell = {
    .attach = coap_io_attach_default,
    .resolve = coap_getaddrinfo_resolve,
};

coap_context_t *coap_context_new_versioned(int version, const coap_context_config_t *cfg) {
  return coap_context_create(version, cfg, &io_shell);
}
