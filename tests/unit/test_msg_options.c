/* The CoAP message codec (RFC 7252 §3.1), options: every delta and length
 * form byte for byte and their limits; the builder's ordering, uint and
 * length rules, token and payload; Block1/Block2 values (RFC 7959). */
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

/* ---- option delta and length forms ---- */

/* One option |number| with |len| bytes as the only option: check the
 * option header bytes exactly, then parse back. */
static void one_option_form(uint16_t number, size_t len, const uint8_t *hdr, size_t hdr_len) {
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
  assert_int_equal(codec_parse_exact(&back, buf, (size_t)n, &copy), 0);
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

/* The same forms through the builder (coap_msg_add_option), every
 * pairing of a delta form with a length form: encoded size as announced,
 * and the option back intact (unregistered numbers: no length bounds). */
static void roundtrip_option(uint16_t number, size_t len) {
  static uint8_t value[1200], buf[1400];
  for (size_t i = 0; i < len; i++) value[i] = (uint8_t)(i * 7 + 1);
  coap_msg_t m, back;
  coap_msg_init(&m, COAP_TYPE_NON, COAP_POST, 1);
  assert_int_equal(coap_msg_add_option(&m, number, value, len), 0);
  int n = coap_msg_encode(&m, buf, sizeof buf);
  assert_true(n > 0);
  assert_int_equal((size_t)n, coap_msg_encoded_size(&m));
  assert_int_equal(coap_msg_parse(&back, buf, (size_t)n), 0);
  assert_int_equal(back.n_options, 1);
  assert_int_equal(back.options[0].number, number);
  assert_int_equal(back.options[0].length, len);
  if (len) assert_memory_equal(back.options[0].value, value, len);
}

static void test_option_forms_through_builder(void **state) {
  (void)state;
  const uint16_t numbers[] = {2, 10, 13, 18, 268, 269, 270, 1000, 65000, 65535};
  const size_t lengths[] = {0, 1, 12, 13, 14, 268, 269, 270, 1100};
  for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
    for (size_t j = 0; j < sizeof lengths / sizeof lengths[0]; j++)
      roundtrip_option(numbers[i], lengths[j]);
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
  static const uint8_t expect[] = {0x48, 0x03, 0xbe, 0xef, 1,   2,    3,
                                   4,    5,    6,    7,    8,   0x31, 'h', /* 3 Uri-Host */
                                   0x81, 'a',                              /* 11 Uri-Path */
                                   0x01, 'b',                        /* 11 Uri-Path (delta 0) */
                                   0x11, 50,                         /* 12 Content-Format */
                                   0xD2, 35,   0x03, 0xE8,           /* 60 Size1 = 1000 */
                                   0xE3, 0x06, 0x87, 'x',  'y', 'z', /* 2000 */
                                   0xff, '{',  '}'};
  codec_expect_encoding(&m, expect, sizeof expect);

  coap_msg_t back;
  uint8_t *copy;
  assert_int_equal(codec_parse_exact(&back, expect, sizeof expect, &copy), 0);
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
  assert_int_equal(codec_parse_exact(&m, big_delta, sizeof big_delta, NULL), COAP_E_BAD_OPTION);
  /* 65535 is fine ... */
  static const uint8_t max[] = {0x40, 0x01, 0, 1, 0xE0, 0xFE, 0xF2};
  assert_int_equal(codec_parse_exact(&m, max, sizeof max, NULL), 0);
  assert_int_equal(m.options[0].number, 65535);
  /* ... one more after it is not. */
  static const uint8_t past[] = {0x40, 0x01, 0, 1, 0xE0, 0xFE, 0xF2, 0x10};
  assert_int_equal(codec_parse_exact(&m, past, sizeof past, NULL), COAP_E_BAD_OPTION);
  /* Repeating option 65535 (delta 0) is fine. */
  static const uint8_t repeat[] = {0x40, 0x01, 0, 1, 0xE0, 0xFE, 0xF2, 0x00};
  assert_int_equal(codec_parse_exact(&m, repeat, sizeof repeat, NULL), 0);
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
  d[0] = 0x40;
  d[1] = 0x02;
  d[2] = 0;
  d[3] = 7;
  d[4] = 0x1E; /* option 1, length 269 + ext */
  d[5] = (uint8_t)((vlen - 269) >> 8);
  d[6] = (uint8_t)(vlen - 269);
  coap_msg_t m;
  int rc = coap_msg_parse(&m, d, len);
  assert_int_equal(rc, COAP_E_BAD_OPTION);
  assert_int_equal(m.mid, 7);
  free(d);
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
  } want[] = {{COAP_OPTION_IF_MATCH, ""},    {COAP_OPTION_URI_HOST, "host"},
              {COAP_OPTION_URI_PATH, "p1"},  {COAP_OPTION_URI_PATH, "p2"},
              {COAP_OPTION_URI_PATH, "p3"},  {COAP_OPTION_URI_QUERY, "q1"},
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
  assert_int_equal(coap_msg_add_option(&m, COAP_OPTION_IF_MATCH, NULL, 0), COAP_E_TOO_MANY_OPTIONS);
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
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_CONTENT_FORMAT, 70000), COAP_E_OPTION_VALUE);
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
      {COAP_OPTION_IF_MATCH, 0, 8},
      {COAP_OPTION_URI_HOST, 1, 255},
      {COAP_OPTION_ETAG, 1, 8},
      {COAP_OPTION_IF_NONE_MATCH, 0, 0},
      {COAP_OPTION_OBSERVE, 0, 3},
      {COAP_OPTION_URI_PORT, 0, 2},
      {COAP_OPTION_LOCATION_PATH, 0, 255},
      {COAP_OPTION_URI_PATH, 0, 255},
      {COAP_OPTION_CONTENT_FORMAT, 0, 2},
      {COAP_OPTION_MAX_AGE, 0, 4},
      {COAP_OPTION_URI_QUERY, 0, 255},
      {COAP_OPTION_HOP_LIMIT, 1, 1},
      {COAP_OPTION_ACCEPT, 0, 2},
      {COAP_OPTION_LOCATION_QUERY, 0, 255},
      {COAP_OPTION_BLOCK2, 0, 3},
      {COAP_OPTION_BLOCK1, 0, 3},
      {COAP_OPTION_SIZE2, 0, 4},
      {COAP_OPTION_PROXY_URI, 1, 1034},
      {COAP_OPTION_PROXY_SCHEME, 1, 255},
      {COAP_OPTION_SIZE1, 0, 4},
      {COAP_OPTION_ECHO, 1, 40},
      {COAP_OPTION_NO_RESPONSE, 0, 1},
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

/* ---- Block1/Block2 values (RFC 7959 §2.2) ---- */

/* NUM/M/SZX packing, minimal length, the reserved SZX. */
static void test_block_option(void **state) {
  (void)state;
  assert_int_equal(coap_block_size(0), 16);
  assert_int_equal(coap_block_size(6), 1024);
  assert_int_equal(coap_block_size(7), 0);
  assert_int_equal(coap_block_szx_for(1024), 6);
  assert_int_equal(coap_block_szx_for(1000), 5);
  assert_int_equal(coap_block_szx_for(5), 0);
  uint8_t v[3];
  coap_block_t b = {0, 0, 0};
  assert_int_equal(coap_block_encode(&b, v), 0); /* block 0, 16 bytes, no M: empty */
  b = (coap_block_t){1, 1, 6};
  assert_int_equal(coap_block_encode(&b, v), 1);
  assert_int_equal(v[0], 0x1E);
  b = (coap_block_t){(1u << 20) - 1, 0, 2};
  assert_int_equal(coap_block_encode(&b, v), 3);
  coap_option_t opt = {COAP_OPTION_BLOCK2, 3, v};
  coap_block_t d;
  assert_int_equal(coap_block_decode(&opt, &d), 0);
  assert_int_equal(d.num, (1u << 20) - 1);
  assert_int_equal(d.more, 0);
  assert_int_equal(d.szx, 2);
  b = (coap_block_t){1u << 20, 0, 0};
  assert_int_equal(coap_block_encode(&b, v), COAP_E_OPTION_VALUE);
  b = (coap_block_t){0, 0, 7};
  assert_int_equal(coap_block_encode(&b, v), COAP_E_OPTION_VALUE);
  uint8_t reserved[1] = {0x07}, four[4] = {0, 0, 0, 0x16};
  opt = (coap_option_t){COAP_OPTION_BLOCK1, 1, reserved};
  assert_int_equal(coap_block_decode(&opt, &d), COAP_E_OPTION_VALUE);
  opt = (coap_option_t){COAP_OPTION_BLOCK1, 4, four};
  assert_int_equal(coap_block_decode(&opt, &d), COAP_E_OPTION_VALUE);
  opt = (coap_option_t){COAP_OPTION_BLOCK1, 0, NULL};
  assert_int_equal(coap_block_decode(&opt, &d), 0);
  assert_int_equal(d.num + d.more + d.szx, 0);
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  b = (coap_block_t){5, 1, 4};
  assert_int_equal(coap_msg_add_block(&m, COAP_OPTION_BLOCK2, &b), 0);
  assert_int_equal(coap_block_decode(coap_msg_find_option(&m, COAP_OPTION_BLOCK2), &d), 0);
  assert_int_equal(d.num, 5);
  assert_int_equal(d.more, 1);
  assert_int_equal(d.szx, 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_option_delta_forms),
      cmocka_unit_test(test_option_length_forms),
      cmocka_unit_test(test_option_both_extended),
      cmocka_unit_test(test_option_forms_through_builder),
      cmocka_unit_test(test_option_deltas_chain),
      cmocka_unit_test(test_option_number_overflow),
      cmocka_unit_test(test_option_length_past_65535),
      cmocka_unit_test(test_insertion_sorted_and_stable),
      cmocka_unit_test(test_insertion_reverse_order),
      cmocka_unit_test(test_add_too_many_options),
      cmocka_unit_test(test_add_uint_minimal),
      cmocka_unit_test(test_uint_helpers),
      cmocka_unit_test(test_add_uint_scratch),
      cmocka_unit_test(test_option_value_bounds),
      cmocka_unit_test(test_set_token),
      cmocka_unit_test(test_set_payload),
      cmocka_unit_test(test_block_option),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
