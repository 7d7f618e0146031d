/* The CoAP message codec (RFC 7252 §3): option delta/length forms byte for
 * byte, Appendix A messages, every malformed-input class, prefixes and
 * mutations of valid messages under ASan, the builder's ordering and length
 * rules, bounded encoding, registries and the one-line dump. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/error.h"
#include "coaps/wire.h"

/* ---- helpers ---- */

/* Parse from an exactly sized heap copy, so ASan sees any read past the end. */
static int parse_exact(coap_msg_t *m, const uint8_t *data, size_t len,
                       uint8_t **copy) {
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
static void expect_encoding(const coap_msg_t *m, const uint8_t *want, size_t n) {
  uint8_t buf[512];
  assert_int_equal(coap_msg_encoded_size(m), n);
  int rc = coap_msg_encode(m, buf, sizeof buf);
  assert_int_equal(rc, (int)n);
  assert_memory_equal(buf, want, n);
}

/* Every successfully parsed message must stay inside its datagram and be
 * sorted. */
static void check_parsed_invariants(const coap_msg_t *m, const uint8_t *data,
                                    size_t len) {
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

/* ---- RFC 7252 Appendix A ---- */

/* A.1: CON GET mid 0x7d34, no token, Uri-Path "temperature". */
static const uint8_t get_temperature[] = {0x40, 0x01, 0x7d, 0x34, 0xbb, 't', 'e', 'm',
                                          'p',  'e',  'r',  'a',  't',  'u', 'r', 'e'};
/* ... and its piggy-backed answer: ACK 2.05 mid 0x7d34, payload "22.3 C". */
static const uint8_t ack_content[] = {0x60, 0x45, 0x7d, 0x34, 0xff, '2',
                                      '2',  '.',  '3',  ' ',  'C'};

static void test_appendix_a_get_encode(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 0x7d34);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "temperature"), 0);
  expect_encoding(&m, get_temperature, sizeof get_temperature);
}

static void test_appendix_a_ack_encode(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_ACK, COAP_CONTENT, 0x7d34);
  coap_msg_set_payload(&m, "22.3 C", 6);
  expect_encoding(&m, ack_content, sizeof ack_content);
}

static void test_appendix_a_parse(void **state) {
  (void)state;
  coap_msg_t m;
  assert_int_equal(coap_msg_parse(&m, get_temperature, sizeof get_temperature), 0);
  assert_int_equal(m.type, COAP_TYPE_CON);
  assert_int_equal(m.code, COAP_GET);
  assert_int_equal(m.mid, 0x7d34);
  assert_int_equal(m.token_len, 0);
  assert_int_equal(m.n_options, 1);
  assert_int_equal(m.options[0].number, COAP_OPTION_URI_PATH);
  assert_int_equal(m.options[0].length, 11);
  assert_memory_equal(m.options[0].value, "temperature", 11);
  assert_null(m.payload);
  assert_int_equal(m.payload_len, 0);

  assert_int_equal(coap_msg_parse(&m, ack_content, sizeof ack_content), 0);
  assert_int_equal(m.type, COAP_TYPE_ACK);
  assert_int_equal(m.code, COAP_CONTENT);
  assert_int_equal(m.mid, 0x7d34);
  assert_int_equal(m.n_options, 0);
  assert_int_equal(m.payload_len, 6);
  assert_memory_equal(m.payload, "22.3 C", 6);
}

/* A.1 with a token (Figure 16 style): CON GET token 0x20, then the separate
 * response CON 2.05 mid 0x23bb with the same token and a payload. */
static void test_appendix_a_with_token(void **state) {
  (void)state;
  static const uint8_t req[] = {0x41, 0x01, 0x7d, 0x34, 0x20, 0xbb, 't', 'e', 'm',
                                'p',  'e',  'r',  'a',  't',  'u',  'r', 'e'};
  static const uint8_t resp[] = {0x41, 0x45, 0x23, 0xbb, 0x20, 0xff, '2',
                                 '2',  '.',  '3',  ' ',  'C'};
  const uint8_t tok = 0x20;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 0x7d34);
  assert_int_equal(coap_msg_set_token(&m, &tok, 1), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "temperature"), 0);
  expect_encoding(&m, req, sizeof req);

  coap_msg_init(&m, COAP_TYPE_CON, COAP_CONTENT, 0x23bb);
  assert_int_equal(coap_msg_set_token(&m, &tok, 1), 0);
  coap_msg_set_payload(&m, "22.3 C", 6);
  expect_encoding(&m, resp, sizeof resp);

  assert_int_equal(coap_msg_parse(&m, resp, sizeof resp), 0);
  assert_int_equal(m.token_len, 1);
  assert_int_equal(m.token[0], 0x20);
  assert_int_equal(m.mid, 0x23bb);
  assert_int_equal(m.payload_len, 6);
}

/* An empty ACK and an RST are exactly four bytes. */
static void test_empty_messages(void **state) {
  (void)state;
  static const uint8_t empty_ack[] = {0x60, 0x00, 0x12, 0x34};
  static const uint8_t rst[] = {0x70, 0x00, 0xab, 0xcd};
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_ACK, COAP_CODE_EMPTY, 0x1234);
  expect_encoding(&m, empty_ack, sizeof empty_ack);
  assert_int_equal(coap_msg_parse(&m, rst, sizeof rst), 0);
  assert_int_equal(m.type, COAP_TYPE_RST);
  assert_int_equal(m.code, COAP_CODE_EMPTY);
  assert_int_equal(m.mid, 0xabcd);
  assert_int_equal(m.n_options, 0);
}

/* ---- option delta and length forms ---- */

/* One option |number| with |len| bytes as the only option: check the
 * option header bytes exactly, then parse back. */
static void one_option_form(uint16_t number, size_t len, const uint8_t *hdr,
                            size_t hdr_len) {
  static uint8_t value[65535];
  static uint8_t buf[4 + 5 + 65535];
  for (size_t i = 0; i < len; i++) value[i] = (uint8_t)(i * 13 + number);
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_NON, COAP_POST, 0x0102);
  /* Fill the option directly: some forms (length 65535) exceed every
   * registered bound, and this is about the wire format only. */
  m.options[0].number = number;
  m.options[0].length = (uint16_t)len;
  m.options[0].value = value;
  m.n_options = 1;
  size_t want = 4 + hdr_len + len;
  assert_int_equal(coap_msg_encoded_size(&m), want);
  int n = coap_msg_encode(&m, buf, sizeof buf);
  assert_int_equal(n, (int)want);
  assert_memory_equal(buf + 4, hdr, hdr_len);
  if (len) assert_memory_equal(buf + 4 + hdr_len, value, len);

  coap_msg_t back;
  uint8_t *copy;
  assert_int_equal(parse_exact(&back, buf, (size_t)n, &copy), 0);
  assert_int_equal(back.n_options, 1);
  assert_int_equal(back.options[0].number, number);
  assert_int_equal(back.options[0].length, len);
  if (len) assert_memory_equal(back.options[0].value, value, len);
  assert_null(back.payload);
  free(copy);
}

static void test_option_delta_forms(void **state) {
  (void)state;
  /* 0..12: in the nibble. */
  for (uint16_t d = 0; d <= 12; d++) {
    uint8_t h = (uint8_t)(d << 4);
    one_option_form(d, 0, &h, 1);
  }
  /* 13..268: nibble 13 + one byte (d - 13). */
  one_option_form(13, 0, (const uint8_t[]){0xD0, 0x00}, 2);
  one_option_form(14, 0, (const uint8_t[]){0xD0, 0x01}, 2);
  one_option_form(100, 0, (const uint8_t[]){0xD0, 87}, 2);
  one_option_form(268, 0, (const uint8_t[]){0xD0, 0xFF}, 2);
  /* 269..65535: nibble 14 + two bytes (d - 269). */
  one_option_form(269, 0, (const uint8_t[]){0xE0, 0x00, 0x00}, 3);
  one_option_form(270, 0, (const uint8_t[]){0xE0, 0x00, 0x01}, 3);
  one_option_form(2048, 0, (const uint8_t[]){0xE0, 0x06, 0xF3}, 3);
  one_option_form(65535, 0, (const uint8_t[]){0xE0, 0xFE, 0xF2}, 3);
}

static void test_option_length_forms(void **state) {
  (void)state;
  for (size_t l = 0; l <= 12; l++) {
    uint8_t h = (uint8_t)(0x10 | l); /* option 1 */
    one_option_form(1, l, &h, 1);
  }
  one_option_form(1, 13, (const uint8_t[]){0x1D, 0x00}, 2);
  one_option_form(1, 200, (const uint8_t[]){0x1D, 187}, 2);
  one_option_form(1, 268, (const uint8_t[]){0x1D, 0xFF}, 2);
  one_option_form(1, 269, (const uint8_t[]){0x1E, 0x00, 0x00}, 3);
  one_option_form(1, 1034, (const uint8_t[]){0x1E, 0x02, 0xFD}, 3);
  one_option_form(1, 65535, (const uint8_t[]){0x1E, 0xFE, 0xF2}, 3);
}

static void test_option_both_extended(void **state) {
  (void)state;
  /* Delta and length both extended: extension bytes in that order. */
  one_option_form(13, 13, (const uint8_t[]){0xDD, 0x00, 0x00}, 3);
  one_option_form(300, 13, (const uint8_t[]){0xED, 0x00, 31, 0x00}, 4);
  one_option_form(20, 300, (const uint8_t[]){0xDE, 7, 0x00, 31}, 4);
  one_option_form(65535, 65535, (const uint8_t[]){0xEE, 0xFE, 0xF2, 0xFE, 0xF2}, 5);
}

/* Several options: deltas are relative to the previous option, repeats
 * have delta 0, and the result round-trips through the builder. */
static void test_option_deltas_chain(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_PUT, 0xbeef);
  const uint8_t tok[] = {1, 2, 3, 4, 5, 6, 7, 8};
  assert_int_equal(coap_msg_set_token(&m, tok, 8), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_HOST, "h"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "a"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "b"), 0);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_CONTENT_FORMAT, 50), 0);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_SIZE1, 1000), 0);
  assert_int_equal(coap_msg_add_option(&m, 2000, "xyz", 3), 0);
  coap_msg_set_payload(&m, "{}", 2);
  /* Size1: 60 - 12 = 48 = 13 + 35. Option 2000: 2000 - 60 = 1940 =
   * 269 + 0x0687. */
  static const uint8_t expect[] = {
      0x48, 0x03, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8,
      0x31, 'h',                    /* 3 Uri-Host */
      0x81, 'a',                    /* 11 Uri-Path */
      0x01, 'b',                    /* 11 Uri-Path (delta 0) */
      0x11, 50,                     /* 12 Content-Format */
      0xD2, 35, 0x03, 0xE8,         /* 60 Size1 = 1000 */
      0xE3, 0x06, 0x87, 'x', 'y', 'z', /* 2000 */
      0xff, '{', '}'};
  expect_encoding(&m, expect, sizeof expect);

  coap_msg_t back;
  uint8_t *copy;
  assert_int_equal(parse_exact(&back, expect, sizeof expect, &copy), 0);
  assert_int_equal(back.n_options, 6);
  assert_int_equal(back.token_len, 8);
  assert_memory_equal(back.token, tok, 8);
  assert_int_equal(back.options[5].number, 2000);
  assert_int_equal(coap_msg_content_format(&back), COAP_FORMAT_JSON);
  assert_int_equal(coap_msg_get_uint(&back, COAP_OPTION_SIZE1, -1), 1000);
  const coap_option_t *p = coap_msg_find_option(&back, COAP_OPTION_URI_PATH);
  assert_non_null(p);
  assert_memory_equal(p->value, "a", 1);
  p = coap_msg_next_option(&back, p);
  assert_non_null(p);
  assert_memory_equal(p->value, "b", 1);
  assert_null(coap_msg_next_option(&back, p));
  assert_int_equal(back.payload_len, 2);
  /* Re-encoding the parsed message gives the same bytes. */
  uint8_t again[sizeof expect];
  assert_int_equal(coap_msg_encode(&back, again, sizeof again), (int)sizeof expect);
  assert_memory_equal(again, expect, sizeof expect);
  free(copy);
}

/* Extended deltas that would take the option number past 65535. */
static void test_option_number_overflow(void **state) {
  (void)state;
  coap_msg_t m;
  /* Delta 269 + 0xFFFF in one option. */
  static const uint8_t big_delta[] = {0x40, 0x01, 0, 1, 0xE0, 0xFF, 0xFF};
  assert_int_equal(parse_exact(&m, big_delta, sizeof big_delta, NULL), COAP_E_BAD_OPTION);
  /* 65535 is fine ... */
  static const uint8_t max[] = {0x40, 0x01, 0, 1, 0xE0, 0xFE, 0xF2};
  assert_int_equal(parse_exact(&m, max, sizeof max, NULL), 0);
  assert_int_equal(m.options[0].number, 65535);
  /* ... one more after it is not. */
  static const uint8_t past[] = {0x40, 0x01, 0, 1, 0xE0, 0xFE, 0xF2, 0x10};
  assert_int_equal(parse_exact(&m, past, sizeof past, NULL), COAP_E_BAD_OPTION);
  /* Repeating option 65535 (delta 0) is fine. */
  static const uint8_t repeat[] = {0x40, 0x01, 0, 1, 0xE0, 0xFE, 0xF2, 0x00};
  assert_int_equal(parse_exact(&m, repeat, sizeof repeat, NULL), 0);
  assert_int_equal(m.n_options, 2);
  assert_int_equal(m.options[1].number, 65535);
}

/* A length that does not fit coap_option_t.length (nibble 14 with an
 * extension past 65535 - 269) must not be truncated silently: the rest of
 * the value would otherwise be parsed as options. */
static void test_option_length_past_65535(void **state) {
  (void)state;
  size_t vlen = 65535 + 100;
  size_t len = 4 + 3 + vlen;
  uint8_t *d = calloc(1, len);
  assert_non_null(d);
  d[0] = 0x40; d[1] = 0x02; d[2] = 0; d[3] = 7;
  d[4] = 0x1E; /* option 1, length 269 + ext */
  d[5] = (uint8_t)((vlen - 269) >> 8);
  d[6] = (uint8_t)(vlen - 269);
  coap_msg_t m;
  int rc = coap_msg_parse(&m, d, len);
  assert_int_equal(rc, COAP_E_BAD_OPTION);
  assert_int_equal(m.mid, 7);
  free(d);
}

/* ---- malformed input ---- */

static void test_truncated_header(void **state) {
  (void)state;
  static const uint8_t hdr[] = {0x40, 0x01, 0x12, 0x34};
  coap_msg_t m;
  for (size_t n = 0; n < 4; n++)
    assert_int_equal(parse_exact(&m, hdr, n, NULL), COAP_E_TRUNCATED);
  assert_int_equal(parse_exact(&m, hdr, 4, NULL), 0);
  /* Token length 4 but only 2 token bytes: header fields still filled. */
  static const uint8_t short_tok[] = {0x54, 0x45, 0x12, 0x34, 0xaa, 0xbb};
  assert_int_equal(parse_exact(&m, short_tok, sizeof short_tok, NULL), COAP_E_TRUNCATED);
  assert_int_equal(m.type, COAP_TYPE_NON);
  assert_int_equal(m.code, COAP_CONTENT);
  assert_int_equal(m.mid, 0x1234);
}

static void test_bad_token_length(void **state) {
  (void)state;
  for (unsigned tkl = 9; tkl <= 15; tkl++) {
    uint8_t d[4 + 15 + 1];
    memset(d, 0x11, sizeof d);
    d[0] = (uint8_t)(0x40 | tkl); /* CON */
    d[1] = COAP_GET;
    d[2] = 0xca;
    d[3] = 0xfe;
    coap_msg_t m;
    /* Whether or not the bytes are there, 9..15 is invalid. */
    assert_int_equal(parse_exact(&m, d, 4, NULL), COAP_E_BAD_TOKEN_LEN);
    assert_int_equal(parse_exact(&m, d, 4 + tkl, NULL), COAP_E_BAD_TOKEN_LEN);
    assert_int_equal(m.type, COAP_TYPE_CON);
    assert_int_equal(m.code, COAP_GET);
    assert_int_equal(m.mid, 0xcafe);
    assert_int_equal(m.token_len, 0);
  }
  /* 8 is the maximum. */
  static const uint8_t ok[] = {0x48, 0x01, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  coap_msg_t m;
  assert_int_equal(parse_exact(&m, ok, sizeof ok, NULL), 0);
  assert_int_equal(m.token_len, 8);
  assert_memory_equal(m.token, ok + 4, 8);
}

static void test_option_past_end(void **state) {
  (void)state;
  coap_msg_t m;
  /* Uri-Path length 5, only 3 bytes. */
  static const uint8_t a[] = {0x40, 0x01, 0x00, 0x09, 0xB5, 'a', 'b', 'c'};
  assert_int_equal(parse_exact(&m, a, sizeof a, NULL), COAP_E_BAD_OPTION);
  assert_int_equal(m.mid, 9);
  assert_int_equal(m.code, COAP_GET);
  /* Missing one-byte delta extension. */
  static const uint8_t b[] = {0x40, 0x01, 0x00, 0x09, 0xD0};
  assert_int_equal(parse_exact(&m, b, sizeof b, NULL), COAP_E_BAD_OPTION);
  /* Missing second byte of a two-byte delta extension. */
  static const uint8_t c[] = {0x40, 0x01, 0x00, 0x09, 0xE0, 0x00};
  assert_int_equal(parse_exact(&m, c, sizeof c, NULL), COAP_E_BAD_OPTION);
  /* Missing length extension (after a complete delta extension). */
  static const uint8_t d[] = {0x40, 0x01, 0x00, 0x09, 0xDD, 0x00};
  assert_int_equal(parse_exact(&m, d, sizeof d, NULL), COAP_E_BAD_OPTION);
  static const uint8_t e[] = {0x40, 0x01, 0x00, 0x09, 0x1E, 0x00};
  assert_int_equal(parse_exact(&m, e, sizeof e, NULL), COAP_E_BAD_OPTION);
  /* Length extension present, value missing. */
  static const uint8_t f[] = {0x40, 0x01, 0x00, 0x09, 0x1D, 0x00, 1, 2};
  assert_int_equal(parse_exact(&m, f, sizeof f, NULL), COAP_E_BAD_OPTION);
}

static void test_reserved_nibble_15(void **state) {
  (void)state;
  coap_msg_t m;
  /* Delta 15 with length 0..14 (0xFF itself is the payload marker). */
  for (unsigned l = 0; l < 15; l++) {
    uint8_t d[] = {0x40, 0x01, 0x00, 0x01, (uint8_t)(0xF0 | l), 0, 0, 0, 0, 0, 0, 0,
                   0,    0,    0,    0,    0,                   0, 0, 0};
    assert_int_equal(parse_exact(&m, d, sizeof d, NULL), COAP_E_BAD_OPTION);
    assert_int_equal(m.mid, 1);
  }
  /* Length 15 with any delta. */
  for (unsigned dl = 0; dl < 15; dl++) {
    uint8_t d[] = {0x40, 0x01, 0x00, 0x02, (uint8_t)(dl << 4 | 0x0F), 0, 0, 0, 0, 0, 0, 0,
                   0,    0,    0,    0,    0,                         0, 0, 0};
    assert_int_equal(parse_exact(&m, d, sizeof d, NULL), COAP_E_BAD_OPTION);
    assert_int_equal(m.mid, 2);
  }
}

static void test_empty_payload_marker(void **state) {
  (void)state;
  coap_msg_t m;
  static const uint8_t a[] = {0x40, 0x01, 0x00, 0x03, 0xFF};
  assert_int_equal(parse_exact(&m, a, sizeof a, NULL), COAP_E_EMPTY_PAYLOAD);
  assert_int_equal(m.mid, 3);
  /* After an option too. */
  static const uint8_t b[] = {0x40, 0x01, 0x00, 0x03, 0xB1, 'x', 0xFF};
  assert_int_equal(parse_exact(&m, b, sizeof b, NULL), COAP_E_EMPTY_PAYLOAD);
  /* A one-byte payload is fine, and 0xFF inside a payload is data. */
  static const uint8_t c[] = {0x40, 0x01, 0x00, 0x03, 0xFF, 0xFF};
  assert_int_equal(coap_msg_parse(&m, c, sizeof c), 0);
  assert_int_equal(m.payload_len, 1);
  assert_int_equal(m.payload[0], 0xFF);
}

static void test_too_many_options(void **state) {
  (void)state;
  uint8_t d[4 + COAP_MAX_OPTIONS + 1];
  d[0] = 0x40; d[1] = 0x01; d[2] = 0x00; d[3] = 0x04;
  /* COAP_MAX_OPTIONS empty If-Match options (delta 1 then 0s) parse ... */
  d[4] = 0x10;
  for (size_t i = 1; i <= COAP_MAX_OPTIONS; i++) d[4 + i] = 0x00;
  coap_msg_t m;
  assert_int_equal(parse_exact(&m, d, 4 + COAP_MAX_OPTIONS, NULL), 0);
  assert_int_equal(m.n_options, COAP_MAX_OPTIONS);
  /* ... one more does not. */
  assert_int_equal(parse_exact(&m, d, sizeof d, NULL), COAP_E_TOO_MANY_OPTIONS);
  assert_int_equal(m.mid, 4);
}

static void test_bad_version(void **state) {
  (void)state;
  coap_msg_t m;
  for (unsigned v = 0; v < 4; v++) {
    if (v == 1) continue;
    uint8_t d[] = {(uint8_t)(v << 6 | 0x20), 0x45, 0x56, 0x78};
    assert_int_equal(parse_exact(&m, d, sizeof d, NULL), COAP_E_BAD_VERSION);
    assert_int_equal(m.type, COAP_TYPE_ACK);
    assert_int_equal(m.code, COAP_CONTENT);
    assert_int_equal(m.mid, 0x5678);
  }
}

static void test_bad_empty(void **state) {
  (void)state;
  coap_msg_t m;
  static const uint8_t tok[] = {0x41, 0x00, 0x00, 0x05, 0x99};
  assert_int_equal(parse_exact(&m, tok, sizeof tok, NULL), COAP_E_BAD_EMPTY);
  assert_int_equal(m.mid, 5);
  assert_int_equal(m.code, COAP_CODE_EMPTY);
  static const uint8_t payload[] = {0x60, 0x00, 0x00, 0x05, 0xFF, 'x'};
  assert_int_equal(parse_exact(&m, payload, sizeof payload, NULL), COAP_E_BAD_EMPTY);
  assert_int_equal(m.type, COAP_TYPE_ACK);
  static const uint8_t option[] = {0x70, 0x00, 0x00, 0x05, 0xB1, 'a'};
  assert_int_equal(parse_exact(&m, option, sizeof option, NULL), COAP_E_BAD_EMPTY);
  assert_int_equal(m.type, COAP_TYPE_RST);
  /* A lone marker byte after an empty header is still "not empty". */
  static const uint8_t marker[] = {0x60, 0x00, 0x00, 0x05, 0xFF};
  assert_int_equal(parse_exact(&m, marker, sizeof marker, NULL), COAP_E_BAD_EMPTY);
}

static void test_bad_code_class(void **state) {
  (void)state;
  static const unsigned classes[] = {1, 6, 7};
  for (size_t i = 0; i < 3; i++) {
    for (unsigned detail = 0; detail < 32; detail += 31) {
      uint8_t code = COAP_CODE(classes[i], detail);
      uint8_t d[] = {0x51, code, 0x00, 0x06, 0x77, 0xB1, 'a'};
      coap_msg_t m;
      assert_int_equal(parse_exact(&m, d, sizeof d, NULL), COAP_E_BAD_CODE);
      assert_int_equal(m.code, code);
      assert_int_equal(m.type, COAP_TYPE_NON);
      assert_int_equal(m.mid, 6);
    }
  }
  /* Classes 0, 2, 3 (unassigned but not reserved), 4, 5 parse. */
  static const unsigned fine[] = {0, 2, 3, 4, 5};
  for (size_t i = 0; i < 5; i++) {
    uint8_t d[] = {0x50, COAP_CODE(fine[i], 1), 0x00, 0x06};
    coap_msg_t m;
    assert_int_equal(parse_exact(&m, d, sizeof d, NULL), 0);
  }
}

/* A parse after a failed one starts from scratch. */
static void test_parse_resets_message(void **state) {
  (void)state;
  coap_msg_t m;
  assert_int_equal(coap_msg_parse(&m, ack_content, sizeof ack_content), 0);
  static const uint8_t bad[] = {0x40, 0x01};
  assert_int_equal(coap_msg_parse(&m, bad, sizeof bad), COAP_E_TRUNCATED);
  assert_int_equal(m.n_options, 0);
  assert_null(m.payload);
  assert_int_equal(m.payload_len, 0);
  assert_int_equal(coap_msg_parse(&m, get_temperature, sizeof get_temperature), 0);
  assert_int_equal(m.n_options, 1);
  assert_int_equal(m.payload_len, 0);
}

/* ---- robustness ---- */

/* A message using every option form, a full token and a payload. */
static size_t build_rich(uint8_t *buf, size_t cap) {
  static uint8_t big[300];
  memset(big, 'B', sizeof big);
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_POST, 0x4242);
  const uint8_t tok[] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};
  assert_int_equal(coap_msg_set_token(&m, tok, 8), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_HOST, "example.net"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "0123456789abcd"), 0);
  assert_int_equal(coap_msg_add_option(&m, 1500, big, 270), 0);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_CONTENT_FORMAT, 60), 0);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_BLOCK1, 0x1234), 0);
  assert_int_equal(coap_msg_add_option(&m, COAP_OPTION_ECHO, big, 13), 0);
  assert_int_equal(coap_msg_add_option(&m, 3000, "z", 1), 0);
  assert_int_equal(coap_msg_add_option(&m, 65535, NULL, 0), 0);
  coap_msg_set_payload(&m, "payload!", 8);
  int n = coap_msg_encode(&m, buf, cap);
  assert_true(n > 0);
  return (size_t)n;
}

static void test_every_prefix_is_safe(void **state) {
  (void)state;
  uint8_t full[1024];
  size_t n = build_rich(full, sizeof full);
  int successes = 0;
  for (size_t len = 0; len <= n; len++) {
    coap_msg_t m;
    uint8_t *copy;
    int rc = parse_exact(&m, full, len, &copy);
    if (len < COAP_HEADER_LEN + 8) {
      assert_int_equal(rc, COAP_E_TRUNCATED);
    } else if (rc == 0) {
      successes++;
      check_parsed_invariants(&m, copy, len);
    } else {
      assert_true(rc == COAP_E_BAD_OPTION || rc == COAP_E_EMPTY_PAYLOAD);
    }
    if (len >= COAP_HEADER_LEN) {
      assert_int_equal(m.mid, 0x4242);
      assert_int_equal(m.code, COAP_POST);
    }
    free(copy);
  }
  assert_true(successes > 0);
  coap_msg_t m;
  assert_int_equal(parse_exact(&m, full, n, NULL), 0);
  assert_int_equal(m.n_options, 8);
  assert_int_equal(m.payload_len, 8);
}

/* Every single-byte substitution of the rich message parses or fails
 * cleanly, and what parses re-encodes to the same bytes. */
static void test_every_byte_mutation_is_safe(void **state) {
  (void)state;
  uint8_t full[1024];
  size_t n = build_rich(full, sizeof full);
  uint8_t *copy = malloc(n);
  static uint8_t again[2048];
  assert_non_null(copy);
  size_t ok = 0, bad = 0;
  for (size_t at = 0; at < n; at++) {
    for (unsigned v = 0; v < 256; v++) {
      memcpy(copy, full, n);
      copy[at] = (uint8_t)v;
      coap_msg_t m;
      int rc = coap_msg_parse(&m, copy, n);
      if (rc == 0) {
        ok++;
        check_parsed_invariants(&m, copy, n);
        int e = coap_msg_encode(&m, again, sizeof again);
        assert_int_equal(e, (int)n);
        assert_memory_equal(again, copy, n);
      } else {
        bad++;
        assert_true(rc <= COAP_E_TRUNCATED && rc >= COAP_E_BAD_CODE);
      }
    }
  }
  assert_true(ok > 0);
  assert_true(bad > 0);
  free(copy);
}

/* ---- the builder ---- */

static void test_insertion_sorted_and_stable(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_QUERY, "q1"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "p1"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_HOST, "host"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "p2"), 0);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_ACCEPT, 50), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_QUERY, "q2"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "p3"), 0);
  assert_int_equal(coap_msg_add_option(&m, COAP_OPTION_IF_MATCH, NULL, 0), 0);
  static const struct {
    uint16_t num;
    const char *val;
  } want[] = {{COAP_OPTION_IF_MATCH, ""},  {COAP_OPTION_URI_HOST, "host"},
              {COAP_OPTION_URI_PATH, "p1"}, {COAP_OPTION_URI_PATH, "p2"},
              {COAP_OPTION_URI_PATH, "p3"}, {COAP_OPTION_URI_QUERY, "q1"},
              {COAP_OPTION_URI_QUERY, "q2"}, {COAP_OPTION_ACCEPT, "\x32"}};
  assert_int_equal(m.n_options, 8);
  for (size_t i = 0; i < 8; i++) {
    assert_int_equal(m.options[i].number, want[i].num);
    assert_int_equal(m.options[i].length, strlen(want[i].val));
    assert_memory_equal(m.options[i].value, want[i].val, strlen(want[i].val));
  }
  /* Order survives encode and parse. */
  uint8_t buf[128];
  int n = coap_msg_encode(&m, buf, sizeof buf);
  assert_true(n > 0);
  coap_msg_t back;
  assert_int_equal(coap_msg_parse(&back, buf, (size_t)n), 0);
  assert_int_equal(back.n_options, 8);
  for (size_t i = 0; i < 8; i++) {
    assert_int_equal(back.options[i].number, want[i].num);
    assert_memory_equal(back.options[i].value, want[i].val, strlen(want[i].val));
  }
  /* Removing one number keeps the others in order. */
  coap_msg_remove_option(&m, COAP_OPTION_URI_PATH);
  assert_int_equal(m.n_options, 5);
  assert_null(coap_msg_find_option(&m, COAP_OPTION_URI_PATH));
  assert_int_equal(m.options[2].number, COAP_OPTION_URI_QUERY);
  assert_memory_equal(m.options[3].value, "q2", 2);
  coap_msg_remove_option(&m, 999); /* absent: no change */
  assert_int_equal(m.n_options, 5);
}

/* Interleaved inserts in descending order still produce ascending output. */
static void test_insertion_reverse_order(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_NON, COAP_GET, 2);
  static uint8_t vals[40];
  for (int i = 39; i >= 0; i--) {
    vals[i] = (uint8_t)i;
    /* Unregistered even numbers 1000 + (i / 2) * 2, two of each. */
    assert_int_equal(coap_msg_add_option(&m, (uint16_t)(1000 + (i / 2) * 2), &vals[i], 1), 0);
  }
  assert_int_equal(m.n_options, 40);
  for (size_t i = 0; i < 40; i++) {
    assert_int_equal(m.options[i].number, 1000 + (i / 2) * 2);
    /* Within a pair, the first added (the larger i) comes first. */
    assert_int_equal(m.options[i].value[0], (i % 2 == 0) ? i + 1 : i - 1);
  }
}

static void test_add_too_many_options(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_NON, COAP_GET, 3);
  for (int i = 0; i < COAP_MAX_OPTIONS; i++)
    assert_int_equal(coap_msg_add_option(&m, COAP_OPTION_IF_MATCH, NULL, 0), 0);
  assert_int_equal(coap_msg_add_option(&m, COAP_OPTION_IF_MATCH, NULL, 0),
                   COAP_E_TOO_MANY_OPTIONS);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_ACCEPT, 1), COAP_E_TOO_MANY_OPTIONS);
  assert_int_equal(m.n_options, COAP_MAX_OPTIONS);
}

static void expect_uint_len(uint32_t v, size_t len, const uint8_t *bytes) {
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_MAX_AGE, v), 0);
  const coap_option_t *o = coap_msg_find_option(&m, COAP_OPTION_MAX_AGE);
  assert_non_null(o);
  assert_int_equal(o->length, len);
  if (len) assert_memory_equal(o->value, bytes, len);
  assert_int_equal(coap_option_uint(o), v);
  assert_int_equal(coap_msg_get_uint(&m, COAP_OPTION_MAX_AGE, -7), v);
  /* Through the wire as well. */
  uint8_t buf[16];
  int n = coap_msg_encode(&m, buf, sizeof buf);
  assert_int_equal(n, (int)(4 + 2 + len)); /* delta 14: one extension byte */
  coap_msg_t back;
  assert_int_equal(coap_msg_parse(&back, buf, (size_t)n), 0);
  assert_int_equal(coap_msg_get_uint(&back, COAP_OPTION_MAX_AGE, -7), v);
}

static void test_add_uint_minimal(void **state) {
  (void)state;
  expect_uint_len(0, 0, NULL);
  expect_uint_len(1, 1, (const uint8_t[]){1});
  expect_uint_len(255, 1, (const uint8_t[]){0xFF});
  expect_uint_len(256, 2, (const uint8_t[]){1, 0});
  expect_uint_len(65535, 2, (const uint8_t[]){0xFF, 0xFF});
  expect_uint_len(65536, 3, (const uint8_t[]){1, 0, 0});
  expect_uint_len(0xFFFFFF, 3, (const uint8_t[]){0xFF, 0xFF, 0xFF});
  expect_uint_len(1u << 24, 4, (const uint8_t[]){1, 0, 0, 0});
  expect_uint_len(0x01000100, 4, (const uint8_t[]){1, 0, 1, 0});
  expect_uint_len(0xFFFFFFFF, 4, (const uint8_t[]){0xFF, 0xFF, 0xFF, 0xFF});
}

static void test_uint_helpers(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  /* Absent: the default. */
  assert_int_equal(coap_msg_get_uint(&m, COAP_OPTION_ACCEPT, 99), 99);
  assert_int_equal(coap_msg_content_format(&m), COAP_FORMAT_NONE);
  assert_int_equal(coap_option_uint(NULL), -1);
  /* Five bytes is not a uint: -1, and get_uint falls back to the default. */
  static const uint8_t five[] = {1, 2, 3, 4, 5};
  assert_int_equal(coap_msg_add_option(&m, 2050, five, 5), 0);
  assert_int_equal(coap_option_uint(coap_msg_find_option(&m, 2050)), -1);
  assert_int_equal(coap_msg_get_uint(&m, 2050, 42), 42);
  /* Non-minimal encodings still decode. */
  static const uint8_t padded[] = {0, 0, 0, 40};
  assert_int_equal(coap_msg_add_option(&m, 2052, padded, 4), 0);
  assert_int_equal(coap_msg_get_uint(&m, 2052, -1), 40);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_CONTENT_FORMAT, COAP_FORMAT_CBOR), 0);
  assert_int_equal(coap_msg_content_format(&m), COAP_FORMAT_CBOR);
}

/* Scratch space for uint values is bounded and reports exhaustion; a
 * rejected value does not consume it. */
static void test_add_uint_scratch(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  size_t per = 4, fits = sizeof m.scratch / per;
  for (size_t i = 0; i < fits; i++)
    assert_int_equal(coap_msg_add_uint(&m, 2000, 0x01000000u + (uint32_t)i), 0);
  assert_int_equal(coap_msg_add_uint(&m, 2000, 0x01000000u), COAP_E_BUFFER_TOO_SMALL);
  /* Zero needs no scratch. */
  assert_int_equal(coap_msg_add_uint(&m, 2000, 0), 0);
  /* Each value still reads back correctly (nothing overwritten). */
  const coap_option_t *o = coap_msg_find_option(&m, 2000);
  for (size_t i = 0; i < fits; i++, o = coap_msg_next_option(&m, o)) {
    assert_non_null(o);
    assert_int_equal(coap_option_uint(o), 0x01000000u + i);
  }

  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_CONTENT_FORMAT, 70000),
                   COAP_E_OPTION_VALUE);
  assert_int_equal(m.scratch_used, 0);
  assert_int_equal(m.n_options, 0);
}

static void test_option_value_bounds(void **state) {
  (void)state;
  static const uint8_t v[1100];
  static const struct {
    uint16_t number;
    size_t min, max;
  } rows[] = {
      {COAP_OPTION_IF_MATCH, 0, 8},      {COAP_OPTION_URI_HOST, 1, 255},
      {COAP_OPTION_ETAG, 1, 8},          {COAP_OPTION_IF_NONE_MATCH, 0, 0},
      {COAP_OPTION_OBSERVE, 0, 3},       {COAP_OPTION_URI_PORT, 0, 2},
      {COAP_OPTION_LOCATION_PATH, 0, 255}, {COAP_OPTION_URI_PATH, 0, 255},
      {COAP_OPTION_CONTENT_FORMAT, 0, 2}, {COAP_OPTION_MAX_AGE, 0, 4},
      {COAP_OPTION_URI_QUERY, 0, 255},   {COAP_OPTION_HOP_LIMIT, 1, 1},
      {COAP_OPTION_ACCEPT, 0, 2},        {COAP_OPTION_LOCATION_QUERY, 0, 255},
      {COAP_OPTION_BLOCK2, 0, 3},        {COAP_OPTION_BLOCK1, 0, 3},
      {COAP_OPTION_SIZE2, 0, 4},         {COAP_OPTION_PROXY_URI, 1, 1034},
      {COAP_OPTION_PROXY_SCHEME, 1, 255}, {COAP_OPTION_SIZE1, 0, 4},
      {COAP_OPTION_ECHO, 1, 40},         {COAP_OPTION_NO_RESPONSE, 0, 1},
      {COAP_OPTION_REQUEST_TAG, 0, 8},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    coap_msg_t m;
    coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
    const coap_option_info_t *info = coap_option_info(rows[i].number);
    assert_non_null(info);
    assert_int_equal(info->number, rows[i].number);
    assert_int_equal(info->min_len, rows[i].min);
    assert_int_equal(info->max_len, rows[i].max);
    assert_int_equal(coap_msg_add_option(&m, rows[i].number, v, rows[i].min), 0);
    assert_int_equal(coap_msg_add_option(&m, rows[i].number, v, rows[i].max), 0);
    if (rows[i].min > 0)
      assert_int_equal(coap_msg_add_option(&m, rows[i].number, v, rows[i].min - 1),
                       COAP_E_OPTION_VALUE);
    assert_int_equal(coap_msg_add_option(&m, rows[i].number, v, rows[i].max + 1),
                     COAP_E_OPTION_VALUE);
    assert_int_equal(m.n_options, 2);
  }
  /* uint options: a value needing more bytes than allowed. */
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_OBSERVE, 1u << 24), COAP_E_OPTION_VALUE);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_OBSERVE, (1u << 24) - 1), 0);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_URI_PORT, 65536), COAP_E_OPTION_VALUE);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_HOP_LIMIT, 0), COAP_E_OPTION_VALUE);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_HOP_LIMIT, 16), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_HOST, ""), COAP_E_OPTION_VALUE);
  /* Unregistered numbers take any length up to 65535. */
  static uint8_t big[65536];
  assert_int_equal(coap_msg_add_option(&m, 2048, big, 65535), 0);
  assert_int_equal(coap_msg_add_option(&m, 2048, big, 65536), COAP_E_INVALID_ARG);
  assert_int_equal(coap_msg_add_option(&m, 2048, NULL, 3), COAP_E_INVALID_ARG);
  /* Unregistered numbers have no registry entry. */
  assert_null(coap_option_info(0));
  assert_null(coap_option_info(2));
  assert_null(coap_option_info(2048));
  assert_null(coap_option_info(65535));
  assert_string_equal(coap_option_info(COAP_OPTION_URI_PATH)->name, "Uri-Path");
  assert_int_equal(coap_option_info(COAP_OPTION_URI_PATH)->repeatable, 1);
  assert_int_equal(coap_option_info(COAP_OPTION_CONTENT_FORMAT)->format, COAP_OPTFMT_UINT);
}

static void test_set_token(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  const uint8_t t[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  assert_int_equal(coap_msg_set_token(&m, t, 9), COAP_E_INVALID_ARG);
  assert_int_equal(coap_msg_set_token(&m, NULL, 2), COAP_E_INVALID_ARG);
  assert_int_equal(m.token_len, 0);
  assert_int_equal(coap_msg_set_token(&m, t, 8), 0);
  assert_int_equal(m.token_len, 8);
  assert_int_equal(coap_msg_set_token(&m, NULL, 0), 0);
  assert_int_equal(m.token_len, 0);
}

static void test_set_payload(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_POST, 1);
  coap_msg_set_payload(&m, "abc", 3);
  assert_int_equal(coap_msg_encoded_size(&m), 4 + 1 + 3);
  /* Zero length: no marker at all. */
  coap_msg_set_payload(&m, "abc", 0);
  assert_null(m.payload);
  assert_int_equal(coap_msg_encoded_size(&m), 4);
  coap_msg_set_payload(&m, NULL, 5);
  assert_int_equal(m.payload_len, 0);
  uint8_t buf[8];
  assert_int_equal(coap_msg_encode(&m, buf, sizeof buf), 4);
}

/* ---- bounded encoding ---- */

static void test_encode_every_short_capacity(void **state) {
  (void)state;
  uint8_t full[1024];
  size_t need = build_rich(full, sizeof full);
  coap_msg_t m;
  assert_int_equal(coap_msg_parse(&m, full, need), 0);
  assert_int_equal(coap_msg_encoded_size(&m), need);
  for (size_t cap = 0; cap < need; cap++) {
    uint8_t *buf = malloc(cap + 1);
    assert_non_null(buf);
    memset(buf, 0xA5, cap + 1);
    assert_int_equal(coap_msg_encode(&m, buf, cap), COAP_E_BUFFER_TOO_SMALL);
    assert_int_equal(buf[cap], 0xA5); /* guard byte untouched */
    free(buf);
  }
  uint8_t *buf = malloc(need + 1);
  assert_non_null(buf);
  buf[need] = 0xA5;
  assert_int_equal(coap_msg_encode(&m, buf, need), (int)need);
  assert_memory_equal(buf, full, need);
  assert_int_equal(buf[need], 0xA5);
  free(buf);
  /* NULL with capacity 0 is fine too. */
  assert_int_equal(coap_msg_encode(&m, NULL, 0), COAP_E_BUFFER_TOO_SMALL);
}

static void test_encode_out_of_order(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  m.options[0] = (coap_option_t){COAP_OPTION_URI_PATH, 1, (const uint8_t *)"a"};
  m.options[1] = (coap_option_t){COAP_OPTION_URI_HOST, 1, (const uint8_t *)"h"};
  m.n_options = 2;
  uint8_t buf[64];
  assert_int_equal(coap_msg_encode(&m, buf, sizeof buf), COAP_E_OPTION_ORDER);
}

/* ---- registries and names ---- */

static void test_unknown_critical(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  assert_null(coap_msg_unknown_critical(&m, NULL, 0));
  /* Registered critical and unregistered elective options are fine. */
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "x"), 0);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_ACCEPT, 0), 0);
  assert_int_equal(coap_msg_add_option(&m, 2048, "e", 1), 0);
  assert_int_equal(coap_msg_add_option(&m, 2050, "e", 1), 0);
  assert_null(coap_msg_unknown_critical(&m, NULL, 0));
  /* An unregistered odd number is critical and unknown. */
  assert_int_equal(coap_msg_add_option(&m, 2049, "c", 1), 0);
  assert_int_equal(coap_msg_add_option(&m, 65001, "d", 1), 0);
  const coap_option_t *o = coap_msg_unknown_critical(&m, NULL, 0);
  assert_non_null(o);
  assert_int_equal(o->number, 2049);
  /* ... unless the application knows it. */
  const uint16_t known[] = {7777, 2049};
  o = coap_msg_unknown_critical(&m, known, 2);
  assert_non_null(o);
  assert_int_equal(o->number, 65001);
  const uint16_t known_both[] = {65001, 2049};
  assert_null(coap_msg_unknown_critical(&m, known_both, 2));
  /* Also on a parsed message. */
  static const uint8_t d[] = {0x40, 0x01, 0, 1, 0xE1, 0x06, 0xF4, 'c'}; /* 2049 */
  assert_int_equal(coap_msg_parse(&m, d, sizeof d), 0);
  o = coap_msg_unknown_critical(&m, NULL, 0);
  assert_non_null(o);
  assert_int_equal(o->number, 2049);
  assert_true(COAP_OPTION_IS_CRITICAL(COAP_OPTION_URI_HOST));
  assert_false(COAP_OPTION_IS_CRITICAL(COAP_OPTION_ETAG));
  assert_true(COAP_OPTION_IS_UNSAFE(COAP_OPTION_URI_HOST));
  assert_true(COAP_OPTION_IS_NOCACHEKEY(COAP_OPTION_SIZE1));
  assert_false(COAP_OPTION_IS_NOCACHEKEY(COAP_OPTION_URI_PATH));
}

static void test_code_names(void **state) {
  (void)state;
  assert_string_equal(coap_code_name(COAP_CODE_EMPTY), "0.00 Empty");
  assert_string_equal(coap_code_name(COAP_GET), "GET");
  assert_string_equal(coap_code_name(COAP_POST), "POST");
  assert_string_equal(coap_code_name(COAP_PUT), "PUT");
  assert_string_equal(coap_code_name(COAP_DELETE), "DELETE");
  assert_string_equal(coap_code_name(COAP_FETCH), "FETCH");
  assert_string_equal(coap_code_name(COAP_PATCH), "PATCH");
  assert_string_equal(coap_code_name(COAP_IPATCH), "iPATCH");
  assert_string_equal(coap_code_name(COAP_CREATED), "2.01 Created");
  assert_string_equal(coap_code_name(COAP_CONTENT), "2.05 Content");
  assert_string_equal(coap_code_name(COAP_CONTINUE), "2.31 Continue");
  assert_string_equal(coap_code_name(COAP_NOT_FOUND), "4.04 Not Found");
  assert_string_equal(coap_code_name(COAP_BAD_OPTION), "4.02 Bad Option");
  assert_string_equal(coap_code_name(COAP_UNSUPPORTED_CONTENT_FORMAT),
                      "4.15 Unsupported Content-Format");
  assert_string_equal(coap_code_name(COAP_TOO_MANY_REQUESTS), "4.29 Too Many Requests");
  assert_string_equal(coap_code_name(COAP_PROXYING_NOT_SUPPORTED),
                      "5.05 Proxying Not Supported");
  /* Unregistered: "c.dd". */
  assert_string_equal(coap_code_name(0xFF), "7.31");
  assert_string_equal(coap_code_name(COAP_CODE(7, 31)), "7.31");
  assert_string_equal(coap_code_name(COAP_CODE(4, 7)), "4.07");
  assert_string_equal(coap_code_name(COAP_CODE(0, 8)), "0.08");
  assert_string_equal(coap_code_name(COAP_CODE(1, 0)), "1.00");
  assert_string_equal(coap_code_name(COAP_CODE(3, 10)), "3.10");
  assert_string_equal(coap_code_name(COAP_CODE(6, 19)), "6.19");
  /* Every code has a name beginning with its class digit (or a method). */
  for (unsigned c = 0; c < 256; c++) {
    const char *n = coap_code_name((uint8_t)c);
    assert_non_null(n);
    if (COAP_CODE_CLASS(c) != 0 || c == 0 || c > COAP_IPATCH) {
      assert_int_equal(n[0], '0' + (int)COAP_CODE_CLASS(c));
      assert_int_equal(n[1], '.');
      assert_int_equal((n[2] - '0') * 10 + (n[3] - '0'), (int)COAP_CODE_DETAIL(c));
    }
  }
  assert_string_equal(coap_type_name(COAP_TYPE_CON), "CON");
  assert_string_equal(coap_type_name(COAP_TYPE_NON), "NON");
  assert_string_equal(coap_type_name(COAP_TYPE_ACK), "ACK");
  assert_string_equal(coap_type_name(COAP_TYPE_RST), "RST");
}

static void test_content_formats(void **state) {
  (void)state;
  assert_string_equal(coap_content_format_name(COAP_FORMAT_TEXT_PLAIN),
                      "text/plain;charset=utf-8");
  assert_string_equal(coap_content_format_name(50), "application/json");
  assert_string_equal(coap_content_format_name(40), "application/link-format");
  assert_string_equal(coap_content_format_name(60), "application/cbor");
  assert_string_equal(coap_content_format_name(COAP_FORMAT_SENML_JSON),
                      "application/senml+json");
  assert_null(coap_content_format_name(1));
  assert_null(coap_content_format_name(9999));
  assert_null(coap_content_format_name(COAP_FORMAT_NONE));

  assert_int_equal(coap_content_format_parse("application/json"), 50);
  assert_int_equal(coap_content_format_parse("Application/JSON"), 50);
  assert_int_equal(coap_content_format_parse("json"), 50);
  assert_int_equal(coap_content_format_parse("text"), 0);
  assert_int_equal(coap_content_format_parse("text/plain"), 0);
  assert_int_equal(coap_content_format_parse("text/plain;charset=utf-8"), 0);
  assert_int_equal(coap_content_format_parse("cbor"), 60);
  assert_int_equal(coap_content_format_parse("link"), 40);
  assert_int_equal(coap_content_format_parse("octet"), 42);
  assert_int_equal(coap_content_format_parse("xml"), 41);
  assert_int_equal(coap_content_format_parse("42"), 42);
  assert_int_equal(coap_content_format_parse("0"), 0);
  assert_int_equal(coap_content_format_parse("65535"), 65535);
  assert_int_equal(coap_content_format_parse("65536"), COAP_FORMAT_NONE);
  assert_int_equal(coap_content_format_parse("-1"), COAP_FORMAT_NONE);
  assert_int_equal(coap_content_format_parse("99999999999999999999999"), COAP_FORMAT_NONE);
  assert_int_equal(coap_content_format_parse("12abc"), COAP_FORMAT_NONE);
  assert_int_equal(coap_content_format_parse(""), COAP_FORMAT_NONE);
  assert_int_equal(coap_content_format_parse(NULL), COAP_FORMAT_NONE);
  assert_int_equal(coap_content_format_parse("application/bogus"), COAP_FORMAT_NONE);
  /* Every named format parses back to itself. */
  int named = 0;
  for (int f = 0; f < 65536; f++) {
    const char *n = coap_content_format_name(f);
    if (!n) continue;
    named++;
    assert_int_equal(coap_content_format_parse(n), f);
  }
  assert_int_equal(named, 22);
}

static void test_msg_format(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 0x1234);
  const uint8_t tok[] = {0xa1, 0xb2, 0xc3, 0xd4};
  assert_int_equal(coap_msg_set_token(&m, tok, 4), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "temp"), 0);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_ACCEPT, 50), 0);
  coap_msg_set_payload(&m, "0123456789ab", 12);
  char buf[256];
  size_t n = coap_msg_format(&m, buf, sizeof buf);
  assert_string_equal(buf, "CON GET mid=0x1234 token=a1b2c3d4 Uri-Path:temp Accept:50 payload=12B");
  assert_int_equal(n, strlen(buf));

  /* Unregistered options in hex, opaque options in hex, control bytes and
   * backslashes escaped in strings, empty options bare. */
  coap_msg_init(&m, COAP_TYPE_ACK, COAP_NOT_FOUND, 0xabcd);
  assert_int_equal(coap_msg_add_option(&m, 2049, "\x01\xfe", 2), 0);
  assert_int_equal(coap_msg_add_option(&m, COAP_OPTION_ETAG, "\x0a\x0b", 2), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_LOCATION_PATH, "a\nb\\"), 0);
  assert_int_equal(coap_msg_add_option(&m, COAP_OPTION_IF_NONE_MATCH, NULL, 0), 0);
  n = coap_msg_format(&m, buf, sizeof buf);
  assert_int_equal(n, strlen(buf));
  assert_non_null(strstr(buf, "ACK 4.04 Not Found mid=0xabcd"));
  assert_null(strstr(buf, "token="));
  assert_null(strstr(buf, "payload="));
  assert_non_null(strstr(buf, " #2049:01fe"));
  assert_non_null(strstr(buf, " ETag:0a0b"));
  assert_non_null(strstr(buf, " Location-Path:a\\x0ab\\x5c"));
  assert_non_null(strstr(buf, " If-None-Match"));

  /* Truncation: always NUL terminated, never longer than cap - 1. */
  coap_msg_init(&m, COAP_TYPE_NON, COAP_CONTENT, 1);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "abcdefghijklmnop"), 0);
  char full[128];
  size_t full_len = coap_msg_format(&m, full, sizeof full);
  for (size_t cap = 1; cap <= full_len + 1; cap++) {
    char *small = malloc(cap + 1);
    assert_non_null(small);
    small[cap] = 'G';
    size_t k = coap_msg_format(&m, small, cap);
    assert_true(k <= cap - 1);
    assert_int_equal(small[k], '\0');
    assert_int_equal(strlen(small), k);
    assert_memory_equal(small, full, k);
    assert_int_equal(small[cap], 'G');
    free(small);
  }
  assert_int_equal(coap_msg_format(&m, buf, 0), 0);
  assert_int_equal(coap_msg_format(&m, NULL, 10), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_appendix_a_get_encode),
      cmocka_unit_test(test_appendix_a_ack_encode),
      cmocka_unit_test(test_appendix_a_parse),
      cmocka_unit_test(test_appendix_a_with_token),
      cmocka_unit_test(test_empty_messages),
      cmocka_unit_test(test_option_delta_forms),
      cmocka_unit_test(test_option_length_forms),
      cmocka_unit_test(test_option_both_extended),
      cmocka_unit_test(test_option_deltas_chain),
      cmocka_unit_test(test_option_number_overflow),
      cmocka_unit_test(test_option_length_past_65535),
      cmocka_unit_test(test_truncated_header),
      cmocka_unit_test(test_bad_token_length),
      cmocka_unit_test(test_option_past_end),
      cmocka_unit_test(test_reserved_nibble_15),
      cmocka_unit_test(test_empty_payload_marker),
      cmocka_unit_test(test_too_many_options),
      cmocka_unit_test(test_bad_version),
      cmocka_unit_test(test_bad_empty),
      cmocka_unit_test(test_bad_code_class),
      cmocka_unit_test(test_parse_resets_message),
      cmocka_unit_test(test_every_prefix_is_safe),
      cmocka_unit_test(test_every_byte_mutation_is_safe),
      cmocka_unit_test(test_insertion_sorted_and_stable),
      cmocka_unit_test(test_insertion_reverse_order),
      cmocka_unit_test(test_add_too_many_options),
      cmocka_unit_test(test_add_uint_minimal),
      cmocka_unit_test(test_uint_helpers),
      cmocka_unit_test(test_add_uint_scratch),
      cmocka_unit_test(test_option_value_bounds),
      cmocka_unit_test(test_set_token),
      cmocka_unit_test(test_set_payload),
      cmocka_unit_test(test_encode_every_short_capacity),
      cmocka_unit_test(test_encode_out_of_order),
      cmocka_unit_test(test_unknown_critical),
      cmocka_unit_test(test_code_names),
      cmocka_unit_test(test_content_formats),
      cmocka_unit_test(test_msg_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
