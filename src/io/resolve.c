/* Host names to addresses with the system's blocking getaddrinfo: the
 * resolver coap_context_new installs when the configuration names none.
 * It lives in the I/O shell, as a system call that waits on the network. */
#include <netdb.h>
#include <string.h>

#include "io/shell.h"

int coap_getaddrinfo_resolve(void *user, const char *host, uint16_t port, coap_address_t *out) {
  (void)user;
  struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_family = AF_UNSPEC};
  struct addrinfo *res = NULL;
  if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return COAP_E_RESOLVE;
  memset(out, 0, sizeof(*out));
  memcpy(&out->addr.st, res->ai_addr, res->ai_addrlen);
  out->size = (socklen_t)res->ai_addrlen;
  freeaddrinfo(res);
  coap_address_set_port(out, port);
  return 0;
}
