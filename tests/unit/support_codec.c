#include "support_codec.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/error.h"

/* Parse from an exactly sized heap copy, so ASan sees any read past the end. */
int codec_parse_exact(coap_msg_t *m, const uint8_t *data, size_t len, uint8_t **copy) {
  uint8_t *c = malloc(len ? len : 1);
  assert_non_null(c);
  if (len) memcpy(c, data, len);
  int rc = coap_msg_parse(m, c, len);
  if (copy)
    *copy = c;
  else
    free(c);
  return rc;
}

/* Encode |m| into a fresh buffer and compare with |want|. */
void codec_expect_encoding(const coap_msg_t *m, const uint8_t *want, size_t n) {
  uint8_t buf[512];
  assert_int_equal(coap_msg_encoded_size(m), n);
  int rc = coap_msg_encode(m, buf, sizeof buf);
  assert_int_equal(rc, (int)n);
  assert_memory_equal(buf, want, n);
}

/* Every successfully parsed message must stay inside its datagram and be
 * sorted. */
void codec_check_parsed_invariants(const coap_msg_t *m, const uint8_t *data, size_t len) {
  assert_true(m->n_options <= COAP_MAX_OPTIONS);
  assert_true(m->token_len <= COAP_MAX_TOKEN_LEN);
  for (size_t i = 0; i < m->n_options; i++) {
    const coap_option_t *o = &m->options[i];
    if (i) assert_true(m->options[i - 1].number <= o->number);
    if (o->length) {
      assert_true(o->value >= data);
      assert_true(o->value + o->length <= data + len);
    }
  }
  if (m->payload_len) {
    assert_non_null(m->payload);
    assert_true(m->payload > data);
    assert_true(m->payload + m->payload_len == data + len);
  }
}
