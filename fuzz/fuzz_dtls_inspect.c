/* The DTLS inspection a server does on bytes from the network outside
 * GnuTLS: is this a record, a ClientHello, and what suites does it offer
 * (read when a handshake fails for want of a common suite), and the
 * cookie policy's look at a hello's session ticket (dtls_cookie.c):
 * which of our ticket keys' names it carries, if any. */
#include <stddef.h>
#include <stdint.h>

#include "coaps/dtls.h"
#include "security/dtls_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char offer[320];
  (void)coap_dtls_looks_like_record(data, size);
  if (coap_dtls_is_client_hello(data, size)) {
    coap_dtls_hello_offer(data, size, offer, sizeof offer);
  }
  /* Also as if the header check had passed: the parser stands alone. */
  coap_dtls_hello_offer(data, size, offer, sizeof offer);
  static coap_dtls_context_t *d;
  if (!d) d = coap_dtls_context_new();
  if (d) {
    (void)coap_dtls_hello_has_ticket(data, size);
    (void)coap_dtls_hello_ticket_key(d, data, size, 1700000000u);
  }
  return 0;
}
