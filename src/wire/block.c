/* Block1/Block2 option values (RFC 7959 §2.2): NUM, M and SZX packed in
 * 0..3 bytes, big endian, SZX in the low 3 bits and M in bit 3. */
#include <string.h>

#include "coaps/error.h"
#include "coaps/wire.h"

#define SZX_RESERVED 7
#define NUM_MAX ((1u << 20) - 1)

size_t coap_block_size(uint8_t szx) {
  return szx < SZX_RESERVED ? (size_t)16 << szx : 0;
}

uint8_t coap_block_szx_for(size_t bytes) {
  uint8_t szx = 0;
  while (szx < 6 && coap_block_size((uint8_t)(szx + 1)) <= bytes) szx++;
  return szx;
}

int coap_block_decode(const coap_option_t *opt, coap_block_t *out) {
  if (!opt || !out) return COAP_E_INVALID_ARG;
  if (opt->length > 3) return COAP_E_OPTION_VALUE;
  uint32_t v = 0;
  for (uint16_t i = 0; i < opt->length; i++) v = v << 8 | opt->value[i];
  if ((v & 7) == SZX_RESERVED) return COAP_E_OPTION_VALUE;
  out->num = v >> 4;
  out->more = (v >> 3) & 1;
  out->szx = v & 7;
  return 0;
}

int coap_block_encode(const coap_block_t *b, uint8_t out[3]) {
  if (!b || !out) return COAP_E_INVALID_ARG;
  if (b->num > NUM_MAX || b->szx >= SZX_RESERVED) return COAP_E_OPTION_VALUE;
  uint32_t v = b->num << 4 | (uint32_t)(b->more ? 8 : 0) | b->szx;
  int n = v > 0xFFFF ? 3 : v > 0xFF ? 2 : v ? 1 : 0;
  for (int i = 0; i < n; i++) out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  return n;
}

int coap_msg_add_block(coap_msg_t *msg, uint16_t number, const coap_block_t *b) {
  if (!msg || !b) return COAP_E_INVALID_ARG;
  uint8_t v[3];
  int n = coap_block_encode(b, v);
  if (n < 0) return n;
  if (msg->scratch_used + (size_t)n > sizeof msg->scratch) return COAP_E_BUFFER_TOO_SMALL;
  uint8_t *dst = msg->scratch + msg->scratch_used;
  memcpy(dst, v, (size_t)n);
  int rc = coap_msg_add_option(msg, number, dst, (size_t)n);
  if (rc == 0) msg->scratch_used = (uint8_t)(msg->scratch_used + n);
  return rc;
}
