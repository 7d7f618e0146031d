/* The CoAP message codec (RFC 7252 §3), whole messages: Appendix A byte
 * for byte, every malformed-input class, prefixes and mutations of valid
 * messages under ASan, bounded encoding. Options alone: test_msg_options.c;
 * names and registries: test_wire_names.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/error.h"
#include "coaps/wire.h"

#include "support_codec.h"

/* ---- RFC 7252 Appendix A ---- */

/* A.1: CON GET mid 0x7d34, no token, Uri-Path "temperature". */
static const uint8_t get_temperature[] = {0x40, 0x01, 0x7d, 0x34, 0xbb, 't', 'e', 'm',
                                          'p',  'e',  'r',  'a',  't',  'u', 'r', 'e'};
/* ... and its piggy-backed answer: ACK 2.05 mid 0x7d34, payload "22.3 C". */
static const uint8_t ack_content[] = {0x60, 0x45, 0x7d, 0x34, 0xff, '2', '2', '.', '3', ' ', 'C'};

static void test_appendix_a_get_encode(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 0x7d34);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "temperature"), 0);
  codec_expect_encoding(&m, get_temperature, sizeof get_temperature);
}

static void test_appendix_a_ack_encode(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_ACK, COAP_CONTENT, 0x7d34);
  coap_msg_set_payload(&m, "22.3 C", 6);
  codec_expect_encoding(&m, ack_content, sizeof ack_content);
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
  static const uint8_t resp[] = {0x41, 0x45, 0x23, 0xbb, 0x20, 0xff, '2', '2', '.', '3', ' ', 'C'};
  const uint8_t tok = 0x20;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 0x7d34);
  assert_int_equal(coap_msg_set_token(&m, &tok, 1), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "temperature"), 0);
  codec_expect_encoding(&m, req, sizeof req);

  coap_msg_init(&m, COAP_TYPE_CON, COAP_CONTENT, 0x23bb);
  assert_int_equal(coap_msg_set_token(&m, &tok, 1), 0);
  coap_msg_set_payload(&m, "22.3 C", 6);
  codec_expect_encoding(&m, resp, sizeof resp);

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
  codec_expect_encoding(&m, empty_ack, sizeof empty_ack);
  assert_int_equal(coap_msg_parse(&m, rst, sizeof rst), 0);
  assert_int_equal(m.type, COAP_TYPE_RST);
  assert_int_equal(m.code, COAP_CODE_EMPTY);
  assert_int_equal(m.mid, 0xabcd);
  assert_int_equal(m.n_options, 0);
}

/* ---- malformed input ---- */

static void test_truncated_header(void **state) {
  (void)state;
  static const uint8_t hdr[] = {0x40, 0x01, 0x12, 0x34};
  coap_msg_t m;
  for (size_t n = 0; n < 4; n++)
    assert_int_equal(codec_parse_exact(&m, hdr, n, NULL), COAP_E_TRUNCATED);
  assert_int_equal(codec_parse_exact(&m, hdr, 4, NULL), 0);
  /* Token length 4 but only 2 token bytes: header fields still filled. */
  static const uint8_t short_tok[] = {0x54, 0x45, 0x12, 0x34, 0xaa, 0xbb};
  assert_int_equal(codec_parse_exact(&m, short_tok, sizeof short_tok, NULL), COAP_E_TRUNCATED);
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
    assert_int_equal(codec_parse_exact(&m, d, 4, NULL), COAP_E_BAD_TOKEN_LEN);
    assert_int_equal(codec_parse_exact(&m, d, 4 + tkl, NULL), COAP_E_BAD_TOKEN_LEN);
    assert_int_equal(m.type, COAP_TYPE_CON);
    assert_int_equal(m.code, COAP_GET);
    assert_int_equal(m.mid, 0xcafe);
    assert_int_equal(m.token_len, 0);
  }
  /* 8 is the maximum. */
  static const uint8_t ok[] = {0x48, 0x01, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  coap_msg_t m;
  assert_int_equal(codec_parse_exact(&m, ok, sizeof ok, NULL), 0);
  assert_int_equal(m.token_len, 8);
  assert_memory_equal(m.token, ok + 4, 8);
}

static void test_option_past_end(void **state) {
  (void)state;
  coap_msg_t m;
  /* Uri-Path length 5, only 3 bytes. */
  static const uint8_t a[] = {0x40, 0x01, 0x00, 0x09, 0xB5, 'a', 'b', 'c'};
  assert_int_equal(codec_parse_exact(&m, a, sizeof a, NULL), COAP_E_BAD_OPTION);
  assert_int_equal(m.mid, 9);
  assert_int_equal(m.code, COAP_GET);
  /* Missing one-byte delta extension. */
  static const uint8_t b[] = {0x40, 0x01, 0x00, 0x09, 0xD0};
  assert_int_equal(codec_parse_exact(&m, b, sizeof b, NULL), COAP_E_BAD_OPTION);
  /* Missing second byte of a two-byte delta extension. */
  static const uint8_t c[] = {0x40, 0x01, 0x00, 0x09, 0xE0, 0x00};
  assert_int_equal(codec_parse_exact(&m, c, sizeof c, NULL), COAP_E_BAD_OPTION);
  /* Missing length extension (after a complete delta extension). */
  static const uint8_t d[] = {0x40, 0x01, 0x00, 0x09, 0xDD, 0x00};
  assert_int_equal(codec_parse_exact(&m, d, sizeof d, NULL), COAP_E_BAD_OPTION);
  static const uint8_t e[] = {0x40, 0x01, 0x00, 0x09, 0x1E, 0x00};
  assert_int_equal(codec_parse_exact(&m, e, sizeof e, NULL), COAP_E_BAD_OPTION);
  /* Length extension present, value missing. */
  static const uint8_t f[] = {0x40, 0x01, 0x00, 0x09, 0x1D, 0x00, 1, 2};
  assert_int_equal(codec_parse_exact(&m, f, sizeof f, NULL), COAP_E_BAD_OPTION);
}

static void test_reserved_nibble_15(void **state) {
  (void)state;
  coap_msg_t m;
  /* Delta 15 with length 0..14 (0xFF itself is the payload marker). */
  for (unsigned l = 0; l < 15; l++) {
    uint8_t d[] = {0x40, 0x01, 0x00, 0x01, (uint8_t)(0xF0 | l), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                   0,    0,    0,    0};
    assert_int_equal(codec_parse_exact(&m, d, sizeof d, NULL), COAP_E_BAD_OPTION);
    assert_int_equal(m.mid, 1);
  }
  /* Length 15 with any delta. */
  for (unsigned dl = 0; dl < 15; dl++) {
    uint8_t d[] = {
        0x40, 0x01, 0x00, 0x02, (uint8_t)(dl << 4 | 0x0F), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0,    0,    0,    0};
    assert_int_equal(codec_parse_exact(&m, d, sizeof d, NULL), COAP_E_BAD_OPTION);
    assert_int_equal(m.mid, 2);
  }
}

static void test_empty_payload_marker(void **state) {
  (void)state;
  coap_msg_t m;
  static const uint8_t a[] = {0x40, 0x01, 0x00, 0x03, 0xFF};
  assert_int_equal(codec_parse_exact(&m, a, sizeof a, NULL), COAP_E_EMPTY_PAYLOAD);
  assert_int_equal(m.mid, 3);
  /* After an option too. */
  static const uint8_t b[] = {0x40, 0x01, 0x00, 0x03, 0xB1, 'x', 0xFF};
  assert_int_equal(codec_parse_exact(&m, b, sizeof b, NULL), COAP_E_EMPTY_PAYLOAD);
  /* A one-byte payload is fine, and 0xFF inside a payload is data. */
  static const uint8_t c[] = {0x40, 0x01, 0x00, 0x03, 0xFF, 0xFF};
  assert_int_equal(coap_msg_parse(&m, c, sizeof c), 0);
  assert_int_equal(m.payload_len, 1);
  assert_int_equal(m.payload[0], 0xFF);
}

static void test_too_many_options(void **state) {
  (void)state;
  uint8_t d[4 + COAP_MAX_OPTIONS + 1];
  d[0] = 0x40;
  d[1] = 0x01;
  d[2] = 0x00;
  d[3] = 0x04;
  /* COAP_MAX_OPTIONS empty If-Match options (delta 1 then 0s) parse ... */
  d[4] = 0x10;
  for (size_t i = 1; i <= COAP_MAX_OPTIONS; i++) d[4 + i] = 0x00;
  coap_msg_t m;
  assert_int_equal(codec_parse_exact(&m, d, 4 + COAP_MAX_OPTIONS, NULL), 0);
  assert_int_equal(m.n_options, COAP_MAX_OPTIONS);
  /* ... one more does not. */
  assert_int_equal(codec_parse_exact(&m, d, sizeof d, NULL), COAP_E_TOO_MANY_OPTIONS);
  assert_int_equal(m.mid, 4);
}

static void test_bad_version(void **state) {
  (void)state;
  coap_msg_t m;
  for (unsigned v = 0; v < 4; v++) {
    if (v == 1) continue;
    uint8_t d[] = {(uint8_t)(v << 6 | 0x20), 0x45, 0x56, 0x78};
    assert_int_equal(codec_parse_exact(&m, d, sizeof d, NULL), COAP_E_BAD_VERSION);
    assert_int_equal(m.type, COAP_TYPE_ACK);
    assert_int_equal(m.code, COAP_CONTENT);
    assert_int_equal(m.mid, 0x5678);
  }
}

static void test_bad_empty(void **state) {
  (void)state;
  coap_msg_t m;
  static const uint8_t tok[] = {0x41, 0x00, 0x00, 0x05, 0x99};
  assert_int_equal(codec_parse_exact(&m, tok, sizeof tok, NULL), COAP_E_BAD_EMPTY);
  assert_int_equal(m.mid, 5);
  assert_int_equal(m.code, COAP_CODE_EMPTY);
  static const uint8_t payload[] = {0x60, 0x00, 0x00, 0x05, 0xFF, 'x'};
  assert_int_equal(codec_parse_exact(&m, payload, sizeof payload, NULL), COAP_E_BAD_EMPTY);
  assert_int_equal(m.type, COAP_TYPE_ACK);
  static const uint8_t option[] = {0x70, 0x00, 0x00, 0x05, 0xB1, 'a'};
  assert_int_equal(codec_parse_exact(&m, option, sizeof option, NULL), COAP_E_BAD_EMPTY);
  assert_int_equal(m.type, COAP_TYPE_RST);
  /* A lone marker byte after an empty header is still "not empty". */
  static const uint8_t marker[] = {0x60, 0x00, 0x00, 0x05, 0xFF};
  assert_int_equal(codec_parse_exact(&m, marker, sizeof marker, NULL), COAP_E_BAD_EMPTY);
}

static void test_bad_code_class(void **state) {
  (void)state;
  static const unsigned classes[] = {1, 6, 7};
  for (size_t i = 0; i < 3; i++) {
    for (unsigned detail = 0; detail < 32; detail += 31) {
      uint8_t code = COAP_CODE(classes[i], detail);
      uint8_t d[] = {0x51, code, 0x00, 0x06, 0x77, 0xB1, 'a'};
      coap_msg_t m;
      assert_int_equal(codec_parse_exact(&m, d, sizeof d, NULL), COAP_E_BAD_CODE);
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
    assert_int_equal(codec_parse_exact(&m, d, sizeof d, NULL), 0);
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
    int rc = codec_parse_exact(&m, full, len, &copy);
    if (len < COAP_HEADER_LEN + 8) {
      assert_int_equal(rc, COAP_E_TRUNCATED);
    } else if (rc == 0) {
      successes++;
      codec_check_parsed_invariants(&m, copy, len);
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
  assert_int_equal(codec_parse_exact(&m, full, n, NULL), 0);
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
        codec_check_parsed_invariants(&m, copy, n);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_appendix_a_get_encode),
      cmocka_unit_test(test_appendix_a_ack_encode),
      cmocka_unit_test(test_appendix_a_parse),
      cmocka_unit_test(test_appendix_a_with_token),
      cmocka_unit_test(test_empty_messages),
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
      cmocka_unit_test(test_encode_every_short_capacity),
      cmocka_unit_test(test_encode_out_of_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
