#include "common/util.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int coap_ct_memcmp(const void *a, const void *b, size_t len) {
  const volatile uint8_t *x = a, *y = b;
  uint8_t diff = 0;
  for (size_t i = 0; i < len; i++) diff |= (uint8_t)(x[i] ^ y[i]);
  return diff != 0;
}

void coap_memzero(void *p, size_t len) {
  if (p) explicit_bzero(p, len);
}

void coap_system_rand(void *user, uint8_t *buf, size_t len) {
  (void)user;
  while (len > 0) {
    ssize_t n = getrandom(buf, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      /* getrandom cannot fail on Linux >= 3.17 once the pool is ready; keep
       * going rather than hand out predictable bytes. */
      continue;
    }
    buf += n;
    len -= (size_t)n;
  }
}

void coap_hex(const uint8_t *data, size_t len, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 15];
  }
  out[2 * len] = '\0';
}
