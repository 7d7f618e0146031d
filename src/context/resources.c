/* The public resource calls on the context's server (src/server keeps
 * the registry and knows nothing of the context). */
#include "context/context_internal.h"

int coap_resource_create(coap_context_t *ctx, const char *path, coap_resource_t **out) {
  if (out) *out = NULL;
  if (!ctx || !out) return COAP_E_INVALID_ARG;
  return coap_server_resource_add(&ctx->server, path, out);
}

coap_resource_t *coap_resource_add(coap_context_t *ctx, const char *path) {
  coap_resource_t *r;
  return coap_resource_create(ctx, path, &r) == 0 ? r : NULL;
}

coap_resource_t *coap_resource_find(coap_context_t *ctx, const char *path) {
  if (!ctx) return NULL;
  return coap_server_resource_find(&ctx->server, path);
}

int coap_resource_remove(coap_context_t *ctx, coap_resource_t *res) {
  if (!ctx || !res) return COAP_E_INVALID_ARG;
  return coap_server_resource_remove(&ctx->server, res);
}

size_t coap_context_max_body(const coap_context_t *ctx) {
  return ctx ? ctx->cfg.max_body : 0;
}
