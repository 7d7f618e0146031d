/* Observe sequence numbers (RFC 7641 §3.4): which of two notifications is
 * the newer one. */
#include "coaps/wire.h"

#define SEQ_MASK 0xffffffu /* the option holds 24 bits */
#define SEQ_HALF (1u << 23)
/* After this long a notification counts as newer whatever its number: the
 * numbers may have wrapped more than once meanwhile, or the server
 * restarted its counter. */
#define REORDER_WINDOW_MS 128000u

int coap_observe_is_newer(uint32_t v1, uint64_t t1, uint32_t v2, uint64_t t2) {
  v1 &= SEQ_MASK;
  v2 &= SEQ_MASK;
  if (v1 < v2 && v2 - v1 < SEQ_HALF) return 1;
  if (v1 > v2 && v1 - v2 > SEQ_HALF) return 1;
  return t2 > t1 + REORDER_WINDOW_MS;
}
