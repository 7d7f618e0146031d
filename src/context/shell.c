/* The context's side of context/shell.h: what the I/O shell and the
 * guide's API may ask of it and tell it. */
#include "coaps/io.h"
#include "context/context_internal.h"

void coap_context_set_shell_state(coap_context_t *ctx, void *state, void (*free_fn)(void *)) {
  ctx->shell_state = state;
  ctx->shell_state_free = free_fn;
}

void *coap_context_shell_state(const coap_context_t *ctx) {
  return ctx->shell_state;
}

int coap_context_has_transport(const coap_context_t *ctx) {
  return ctx->transport.send != NULL;
}

const coap_logger_t *coap_context_logger(const coap_context_t *ctx) {
  return &ctx->log;
}

int coap_context_reuse_port(const coap_context_t *ctx) {
  return ctx->reuse_port;
}

void coap_context_count_rx_too_large(coap_context_t *ctx) {
  ctx->rx_too_large++;
}

coap_address_t *coap_context_listen_addr(coap_context_t *ctx) {
  return &ctx->listen_addr;
}

int coap_context_listening(const coap_context_t *ctx, coap_proto_t proto) {
  for (coap_endpoint_t *ep = ctx->endpoints; ep; ep = ep->next)
    if (!ep->client && ep->proto == proto) return 1;
  return 0;
}

int coap_context_set_reuse_port(coap_context_t *ctx, int on) {
  if (!ctx) return COAP_E_INVALID_ARG;
  ctx->reuse_port = on != 0;
  return 0;
}
