/* The guide's names: thin wrappers, no logic of their own beyond choosing
 * the standard ports. */
#include "coaps/dtls.h"
#include "coaps/io.h"
#include "coaps/seed.h"
#include "context/context_internal.h"

coap_context_t *coap_new_context(const coap_address_t *listen) {
  coap_context_t *ctx = coap_context_new(NULL);
  if (!ctx) return NULL;
  if (listen)
    ctx->listen_addr = *listen;
  else
    coap_address_init(&ctx->listen_addr);
  return ctx;
}

void coap_set_addr(coap_address_t *addr, uint16_t port) {
  coap_address_set_port(addr, port);
}

static int listening_on(coap_context_t *ctx, coap_proto_t proto) {
  for (coap_endpoint_t *ep = ctx->endpoints; ep; ep = ep->next)
    if (!ep->client && ep->proto == proto) return 1;
  return 0;
}

static int listen_on(coap_context_t *ctx, coap_proto_t proto, uint16_t port) {
  if (listening_on(ctx, proto)) return 0;
  coap_address_t addr = ctx->listen_addr;
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
