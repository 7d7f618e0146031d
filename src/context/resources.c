/* The public resource calls on the context's server (src/server keeps
 * the registry and knows nothing of the context). */
#include "context/context_internal.h"

coap_resource_t *coap_resource_add(coap_context_t *ctx, const char *path) {
  if (!ctx) return NULL;
  return coap_server_resource_add(&ctx->server, path);
}

coap_resource_t *coap_resource_find(coap_context_t *ctx, const char *path) {
  if (!ctx) return NULL;
  return coap_server_resource_find(&ctx->server, path);
}

int coap_resource_remove(coap_context_t *ctx, coap_resource_t *res) {
  return coap_server_resource_remove(&ctx->server, res);
}

size_t coap_context_max_body(const coap_context_t *ctx) {
  return ctx ? ctx->cfg.max_body : 0;
}
