/* The guide's names: thin wrappers, no logic of their own beyond choosing
 * the standard ports. */
#include "coaps/dtls.h"
#include "coaps/io.h"
#include "coaps/seed.h"
#include "context/shell.h"

coap_context_t *coap_new_context(const coap_address_t *listen) {
  coap_context_t *ctx = coap_context_new(NULL);
  if (!ctx) return NULL;
  if (listen)
    *coap_context_listen_addr(ctx) = *listen;
  else
    coap_address_init(coap_context_listen_addr(ctx));
  return ctx;
}

void coap_set_addr(coap_address_t *addr, uint16_t port) {
  coap_address_set_port(addr, port);
}

static int listen_on(coap_context_t *ctx, coap_proto_t proto, uint16_t port) {
  if (coap_context_listening(ctx, proto)) return 0;
  coap_address_t addr = *coap_context_listen_addr(ctx);
  if (addr.size == 0) coap_address_init(&addr);
  coap_address_set_port(&addr, port);
  return coap_context_listen(ctx, proto, &addr) ? 0 : COAP_E_SYSTEM;
}

int coap_start(coap_context_t *ctx) {
  if (!ctx) return COAP_E_INVALID_ARG;
  int rc = listen_on(ctx, COAP_PROTO_UDP, COAP_DEFAULT_PORT);
  if (rc == 0 && coap_context_dtls_ready(ctx))
    rc = listen_on(ctx, COAP_PROTO_DTLS, COAPS_DEFAULT_PORT);
  if (rc < 0) return rc;
  return coap_run(ctx);
}
