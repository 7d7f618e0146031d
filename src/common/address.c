/* coap_address_t: a sockaddr with its length, compared and hashed by value. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "coaps/context.h"

void coap_address_init(coap_address_t *addr) {
  if (!addr) return;
  memset(addr, 0, sizeof(*addr));
  addr->addr.sin6.sin6_family = AF_INET6;
  addr->addr.sin6.sin6_addr = in6addr_any;
  addr->size = sizeof(struct sockaddr_in6);
}

void coap_address_set_port(coap_address_t *addr, uint16_t port) {
  if (!addr) return;
  if (addr->addr.sa.sa_family == AF_INET)
    addr->addr.sin.sin_port = htons(port);
  else
    addr->addr.sin6.sin6_port = htons(port);
}

uint16_t coap_address_get_port(const coap_address_t *addr) {
  if (!addr) return 0;
  if (addr->addr.sa.sa_family == AF_INET) return ntohs(addr->addr.sin.sin_port);
  return ntohs(addr->addr.sin6.sin6_port);
}

int coap_address_from_string(coap_address_t *addr, const char *host, uint16_t port) {
  if (!addr || !host) return COAP_E_INVALID_ARG;
  memset(addr, 0, sizeof(*addr));
  if (inet_pton(AF_INET, host, &addr->addr.sin.sin_addr) == 1) {
    addr->addr.sin.sin_family = AF_INET;
    addr->size = sizeof(struct sockaddr_in);
  } else if (inet_pton(AF_INET6, host, &addr->addr.sin6.sin6_addr) == 1) {
    addr->addr.sin6.sin6_family = AF_INET6;
    addr->size = sizeof(struct sockaddr_in6);
  } else {
    return COAP_E_INVALID_ARG;
  }
  coap_address_set_port(addr, port);
  return 0;
}

const char *coap_address_format(const coap_address_t *addr, char *buf, size_t cap) {
  if (!buf || !cap) return "";
  char host[INET6_ADDRSTRLEN] = "?";
  if (!addr) {
    buf[0] = 0;
    return buf;
  }
  if (addr->addr.sa.sa_family == AF_INET) {
    inet_ntop(AF_INET, &addr->addr.sin.sin_addr, host, sizeof host);
    snprintf(buf, cap, "%s:%u", host, coap_address_get_port(addr));
  } else if (IN6_IS_ADDR_V4MAPPED(&addr->addr.sin6.sin6_addr)) {
    /* An IPv4 peer reaching a dual-stack socket: people know it by its
     * IPv4 address ("[::ffff:127.0.0.1]:40068" reads as a mistake). */
    inet_ntop(AF_INET, &addr->addr.sin6.sin6_addr.s6_addr[12], host, sizeof host);
    snprintf(buf, cap, "%s:%u", host, coap_address_get_port(addr));
  } else {
    inet_ntop(AF_INET6, &addr->addr.sin6.sin6_addr, host, sizeof host);
    snprintf(buf, cap, "[%s]:%u", host, coap_address_get_port(addr));
  }
  return buf;
}

int coap_address_equal(const coap_address_t *a, const coap_address_t *b) {
  if (!a || !b) return 0;
  if (a->addr.sa.sa_family != b->addr.sa.sa_family) return 0;
  if (a->addr.sa.sa_family == AF_INET)
    return a->addr.sin.sin_port == b->addr.sin.sin_port &&
           a->addr.sin.sin_addr.s_addr == b->addr.sin.sin_addr.s_addr;
  return a->addr.sin6.sin6_port == b->addr.sin6.sin6_port &&
         memcmp(&a->addr.sin6.sin6_addr, &b->addr.sin6.sin6_addr, sizeof(struct in6_addr)) == 0 &&
         a->addr.sin6.sin6_scope_id == b->addr.sin6.sin6_scope_id;
}
