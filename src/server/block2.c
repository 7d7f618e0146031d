/* Block2 on the server (RFC 7959 §2.4): the handler builds the whole
 * representation and the answer carries the block the client asked for.
 * The server keeps nothing between blocks of a safe request: the handler
 * runs again for each block, and the ETag (its own, or a hash of the
 * representation) lets the client see that the representation changed
 * between blocks. */
#include <stdio.h>
#include <string.h>

#include "server/server.h"

/* A 64-bit hash over 8-byte words: an ETag is computed for every block of
 * a large representation, so it must cost little more than reading it. */
void coap_body_etag(const uint8_t *data, size_t len, uint8_t out[8]) {
  const uint64_t k = 0x9E3779B97F4A7C15ull;
  uint64_t h = 0x6A09E667F3BCC909ull ^ (len * k);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, data + i, 8);
    h = (h ^ w) * k;
    h ^= h >> 31;
  }
  uint64_t tail = 0;
  for (size_t j = 0; i + j < len; j++) tail |= (uint64_t)data[i + j] << (8 * j);
  h = (h ^ tail) * k;
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 32;
  for (int b = 0; b < 8; b++) out[b] = (uint8_t)(h >> (8 * b));
}

size_t coap_response_etag(const coap_response_t *resp, uint8_t out[8]) {
  const coap_option_t *o = coap_msg_find_option(&resp->msg, COAP_OPTION_ETAG);
  if (o && o->length <= 8) {
    memcpy(out, o->value, o->length);
    return o->length;
  }
  if (COAP_CODE_CLASS(resp->msg.code) != 2) return 0;
  coap_body_etag(resp->msg.payload, resp->msg.payload_len, out);
  return 8;
}

/* The block size of this answer: the client's (early negotiation, or the
 * size of the blocks it continues with) when smaller than ours. */
static uint8_t answer_szx(const coap_response_t *resp) {
  uint8_t szx = resp->szx_max;
  if (resp->asked.block2 && resp->asked.b2_szx < szx) szx = resp->asked.b2_szx;
  return szx;
}

/* Keep the block at |off| of the body as the payload, with Block2, an
 * ETag for a success and Size2 on the first block or when asked. */
static void cut_block(coap_response_t *resp, size_t off, uint8_t szx) {
  size_t len = resp->msg.payload_len, size = coap_block_size(szx);
  size_t n = len - off < size ? len - off : size;
  const uint8_t *body = resp->msg.payload;
  uint32_t num = (uint32_t)(off >> (szx + 4));
  if (COAP_CODE_CLASS(resp->msg.code) == 2 &&
      !coap_msg_find_option(&resp->msg, COAP_OPTION_ETAG)) {
    uint8_t tag[8];
    coap_body_etag(body, len, tag);
    coap_response_add_option(resp, COAP_OPTION_ETAG, tag, sizeof tag);
  }
  if (num == 0 || resp->asked.size2) {
    coap_msg_remove_option(&resp->msg, COAP_OPTION_SIZE2);
    coap_response_add_uint(resp, COAP_OPTION_SIZE2, (uint32_t)len);
  }
  coap_response_add_block(resp, COAP_OPTION_BLOCK2, num, off + n < len, szx);
  coap_msg_set_payload(&resp->msg, n ? body + off : NULL, n);
}

static void answer_body_error(coap_response_t *resp) {
  char text[96];
  if (resp->error == COAP_E_LIMIT)
    snprintf(text, sizeof text, "response body over the server's max_body (%zu bytes)",
             resp->max_body);
  else
    snprintf(text, sizeof text, "no memory for the response body");
  coap_response_error(resp, COAP_INTERNAL_SERVER_ERROR, text);
}

void coap_response_finish(coap_response_t *resp) {
  if (resp->error) answer_body_error(resp);
  if (resp->asked.block1_echo) {
    coap_msg_remove_option(&resp->msg, COAP_OPTION_BLOCK1);
    coap_response_add_block(resp, COAP_OPTION_BLOCK1, resp->asked.b1.num, 0, resp->asked.b1.szx);
  }
  uint8_t szx = answer_szx(resp);
  size_t len = resp->msg.payload_len, size = coap_block_size(szx);
  int success = COAP_CODE_CLASS(resp->msg.code) == 2;
  if (len <= size && !(resp->asked.block2 && success)) {
    if (resp->asked.size2 && success)
      coap_response_add_uint(resp, COAP_OPTION_SIZE2, (uint32_t)len);
    return;
  }
  /* The blocks the client counts in may be larger than ours: the same
   * offset, renumbered in our size (RFC 7959 §2.4). */
  uint64_t off = resp->asked.block2 && success
                     ? (uint64_t)resp->asked.b2_num << (resp->asked.b2_szx + 4)
                     : 0;
  if (off > 0 && off >= len) {
    /* RFC 7959 names no code for it; 4.02 is for options not recognised
     * (RFC 7252 §5.9.2.3), so this is the general 4.00, as libcoap says. */
    char text[128];
    snprintf(text, sizeof text, "Block2 block %u is past the end (%zu bytes)",
             (unsigned)resp->asked.b2_num, len);
    coap_response_error(resp, COAP_BAD_REQUEST, text);
    return;
  }
  cut_block(resp, (size_t)off, szx);
}
