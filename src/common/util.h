/* Small helpers shared by every layer. */
#ifndef COAPS_COMMON_UTIL_H
#define COAPS_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define COAP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define COAP_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define COAP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define COAP_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Constant-time comparison of secrets: 0 when equal. */
int coap_ct_memcmp(const void *a, const void *b, size_t len);
/* Zeroise memory the compiler may not elide (key material). */
void coap_memzero(void *p, size_t len);
/* Default randomness: the kernel's (getrandom(2)), through a small pool per
 * thread for requests of up to 64 bytes; fork-safe. */
void coap_system_rand(void *user, uint8_t *buf, size_t len);
/* Lower-case hex of |len| bytes into |out| (2*len+1 bytes). */
void coap_hex(const uint8_t *data, size_t len, char *out);

/* A cheap 64-bit finaliser (xor-shift, multiply, xor-shift): spreads
 * every input bit over the word before it is cut to a bucket or an ETag. */
static inline uint64_t coap_mix64(uint64_t h) {
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 32);
}

#endif
