#include "common/util.h"

#include <errno.h>
#include <pthread.h>
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

static void kernel_random(uint8_t *buf, size_t len) {
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

/* Tokens, message IDs and back-off jitter take a few random bytes per
 * request, and a getrandom() call for each cost a client about a sixth of
 * its CPU. So each thread keeps a small pool of the kernel's randomness,
 * zeroed as it is handed out. A forked child forgets its copy of the pool
 * (pthread_atfork), or parent and child would hand out the same bytes. */
#define RAND_POOL 256
static __thread uint8_t rand_pool[RAND_POOL];
static __thread size_t rand_unread; /* the last rand_unread bytes of the pool */
static pthread_once_t rand_fork_once = PTHREAD_ONCE_INIT;

static void forget_pool_in_child(void) {
  coap_memzero(rand_pool, sizeof rand_pool);
  rand_unread = 0;
}

static void watch_fork(void) {
  pthread_atfork(NULL, NULL, forget_pool_in_child);
}

void coap_system_rand(void *user, uint8_t *buf, size_t len) {
  (void)user;
  if (len > RAND_POOL / 4) {
    kernel_random(buf, len);
    return;
  }
  pthread_once(&rand_fork_once, watch_fork);
  if (rand_unread < len) {
    kernel_random(rand_pool, RAND_POOL);
    rand_unread = RAND_POOL;
  }
  uint8_t *from = rand_pool + RAND_POOL - rand_unread;
  memcpy(buf, from, len);
  coap_memzero(from, len);
  rand_unread -= len;
}

void coap_hex(const uint8_t *data, size_t len, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 15];
  }
  out[2 * len] = '\0';
}
