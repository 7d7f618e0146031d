/* coaps — the names used by the "CoAP DTLS Handshake Fails" guide, as thin
 * wrappers over the full API. A program written like the guide's example
 *
 *   coap_context_t *ctx = coap_new_context(NULL);
 *   coap_dtls_context_t *dtls = coap_dtls_new_context(ctx);
 *   coap_dtls_set_psk(dtls, (const uint8_t *)"client_id",
 *                     (const uint8_t *)"secret_key", 9);
 *   coap_dtls_set_cert(dtls, "server-cert.pem", "server-key.pem", NULL);
 *   coap_dtls_set_ca(dtls, "ca-cert.pem");
 *   coap_context_set_dtls_context(ctx, dtls);
 *   coap_address_t addr;
 *   coap_address_init(&addr);
 *   coap_set_addr(&addr, 5684);
 *   coap_start(ctx);
 *
 * serves plain CoAP on 5683 and CoAP over DTLS on 5684 until SIGINT or
 * SIGTERM. (coap_dtls_* calls are declared in coaps/dtls.h.)
 */
#ifndef COAPS_SEED_H
#define COAPS_SEED_H

#include "coaps/context.h"

#include "coaps/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A context with default settings. |listen| (may be NULL) is the address
 * coap_start() binds; its port is ignored — coap_start uses 5683 for coap://
 * and 5684 for coaps://. */
COAPS_API coap_context_t *coap_new_context(const coap_address_t *listen);

/* Set the port of |addr| (host order). Same as coap_address_set_port. */
COAPS_API void coap_set_addr(coap_address_t *addr, uint16_t port);

/* Bind coap:// on 5683 and, when a DTLS context with credentials is set,
 * coaps:// on 5684 (unless already listening), then run until SIGINT or
 * SIGTERM. Frees nothing: the caller still owns |ctx|. Returns 0 on a clean
 * stop or a negative error (a port could not be bound: the log says why). */
COAPS_API int coap_start(coap_context_t *ctx);

#ifdef __cplusplus
}
#endif
#endif
