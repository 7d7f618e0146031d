/* The "Right" example of the user's guide, unchanged: it must compile with
 * -Wall -Wextra against coap.h and serve coap:// on 5683 and coaps:// on
 * 5684 until SIGINT/SIGTERM. */
#include <coap.h>
int main() {
  coap_context_t *ctx = coap_new_context(NULL);
  // DTLS server config
  coap_dtls_context_t *dtls = coap_dtls_new_context(ctx);
  coap_dtls_set_psk(dtls, (const uint8_t *)"client_id", (const uint8_t *)"secret_key", 9);
  // Or use certificate-based DTLS
  coap_dtls_set_cert(dtls, "server-cert.pem", "server-key.pem", NULL);
  coap_dtls_set_ca(dtls, "ca-cert.pem");
  coap_context_set_dtls_context(ctx, dtls);
  // Listen on DTLS port
  coap_address_t addr;
  coap_address_init(&addr);
  coap_set_addr(&addr, 5684);
  coap_start(ctx);
}
