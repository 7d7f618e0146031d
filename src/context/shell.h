/* What the layers above the core — the I/O shell (src/io) and the guide's
 * API (src/seed) — use of the context: a constructor that takes the shell's
 * defaults, and a few narrow calls. The context's struct stays private to
 * src/context (context_internal.h). */
#ifndef COAPS_CONTEXT_SHELL_H
#define COAPS_CONTEXT_SHELL_H

#include "coaps/context.h"
#include "common/log.h"

/* What the shell lends a context it did not make the transport of yet:
 * the public coap_context_new (src/io) passes the built-in one, a core
 * used alone passes none. */
typedef struct coap_shell {
  /* Become the transport of |ctx|, which has none (a client request on a
   * fresh context). Returns 0 or a negative error. */
  int (*attach)(coap_context_t *ctx);
  /* Host names, when the configuration names no resolver. */
  coap_resolve_fn resolve;
} coap_shell_t;

/* coap_context_new_versioned with |shell|'s defaults; NULL: none (no
 * transport of its own, host names do not resolve: COAP_E_RESOLVE). */
coap_context_t *coap_context_create(int version, const coap_context_config_t *cfg,
                                    const coap_shell_t *shell);

/* The shell's own state, owned by the context from then on: |free_fn|
 * frees it in coap_context_free, before the endpoints. */
void coap_context_set_shell_state(coap_context_t *ctx, void *state, void (*free_fn)(void *));
void *coap_context_shell_state(const coap_context_t *ctx);
/* Does |ctx| have a transport (the shell's or the application's)? */
int coap_context_has_transport(const coap_context_t *ctx);
const coap_logger_t *coap_context_logger(const coap_context_t *ctx);
/* coap_context_set_reuse_port's flag, for the sockets the shell opens. */
int coap_context_reuse_port(const coap_context_t *ctx);
/* The shell dropped a datagram larger than it receives (rx_too_large). */
void coap_context_count_rx_too_large(coap_context_t *ctx);
/* The context's clock (cfg.clock), never going back. */
uint64_t coap_context_now(coap_context_t *ctx);

/* For the guide's API: where coap_start() listens, is a server endpoint
 * of |proto| open, are DTLS credentials attached? */
coap_address_t *coap_context_listen_addr(coap_context_t *ctx);
int coap_context_listening(const coap_context_t *ctx, coap_proto_t proto);
int coap_context_dtls_ready(const coap_context_t *ctx);

#endif
