#define _GNU_SOURCE /* memmem */
/* The wire layer: RFC 7252 examples byte for byte, every option encoding
 * form, each malformed-input class, bounds, URIs and link format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/error.h"
#include "coaps/wire.h"

/* RFC 7252 Appendix A, first example: CON GET mid 0x7d34 Uri-Path
 * "temperature", no token. */
static const uint8_t get_temperature[] = {0x40, 0x01, 0x7d, 0x34, 0xbb, 't', 'e', 'm', 'p',
                                          'e',  'r',  'a',  't',  'u',  'r', 'e'};
/* Its answer: ACK 2.05 mid 0x7d34, payload "22.3 C". */
static const uint8_t ack_content[] = {0x60, 0x45, 0x7d, 0x34, 0xff, '2', '2', '.', '3', ' ', 'C'};

static void test_rfc7252_example_encode(void **state) {
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 0x7d34);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "temperature"), 0);
  uint8_t buf[64];
  int n = coap_msg_encode(&m, buf, sizeof buf);
  assert_int_equal(n, sizeof get_temperature);
  assert_memory_equal(buf, get_temperature, sizeof get_temperature);

  coap_msg_init(&m, COAP_TYPE_ACK, COAP_CONTENT, 0x7d34);
  coap_msg_set_payload(&m, "22.3 C", 6);
  n = coap_msg_encode(&m, buf, sizeof buf);
  assert_int_equal(n, sizeof ack_content);
  assert_memory_equal(buf, ack_content, sizeof ack_content);
}

static void test_rfc7252_example_parse(void **state) {
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
  assert_int_equal(coap_msg_parse(&m, ack_content, sizeof ack_content), 0);
  assert_int_equal(m.payload_len, 6);
  assert_memory_equal(m.payload, "22.3 C", 6);
}

/* Round-trip one option of |number| with a value of |len| bytes. */
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

static void test_every_option_form(void **state) {
  /* deltas 0-12 inline, 13-268 one extra byte, 269+ two extra bytes;
   * lengths likewise (unregistered numbers: no length bounds). */
  const uint16_t numbers[] = {2, 10, 13, 18, 268, 269, 270, 1000, 65000, 65535};
  const size_t lengths[] = {0, 1, 12, 13, 14, 268, 269, 270, 1100};
  for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
    for (size_t j = 0; j < sizeof lengths / sizeof lengths[0]; j++)
      roundtrip_option(numbers[i], lengths[j]);
}

static void test_options_sorted_and_stable(void **state) {
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  coap_msg_add_string(&m, COAP_OPTION_URI_QUERY, "b=2");
  coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "first");
  coap_msg_add_uint(&m, COAP_OPTION_ACCEPT, 50);
  coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "second");
  coap_msg_add_string(&m, COAP_OPTION_URI_HOST, "example.net");
  const uint16_t expect[] = {3, 11, 11, 15, 17};
  for (size_t i = 0; i < 5; i++) assert_int_equal(m.options[i].number, expect[i]);
  const coap_option_t *o = coap_msg_find_option(&m, COAP_OPTION_URI_PATH);
  assert_memory_equal(o->value, "first", 5);
  o = coap_msg_next_option(&m, o);
  assert_memory_equal(o->value, "second", 6);
  assert_null(coap_msg_next_option(&m, o));
  assert_int_equal(coap_msg_get_uint(&m, COAP_OPTION_ACCEPT, -1), 50);
  coap_msg_remove_option(&m, COAP_OPTION_URI_PATH);
  assert_null(coap_msg_find_option(&m, COAP_OPTION_URI_PATH));
  assert_int_equal(m.n_options, 3);
}

static void test_uint_minimal_encoding(void **state) {
  const struct { uint32_t v; uint16_t len; } cases[] = {
      {0, 0}, {1, 1}, {255, 1}, {256, 2}, {65535, 2}, {65536, 3}, {1u << 24, 4}, {0xFFFFFFFFu, 4}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    coap_msg_t m;
    coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
    assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_MAX_AGE, cases[i].v), 0);
    assert_int_equal(m.options[0].length, cases[i].len);
    assert_int_equal(coap_option_uint(&m.options[0]), cases[i].v);
  }
}

static void test_registered_length_bounds(void **state) {
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  uint8_t nine[9] = {0};
  assert_int_equal(coap_msg_add_option(&m, COAP_OPTION_ETAG, nine, 9), COAP_E_OPTION_VALUE);
  assert_int_equal(coap_msg_add_option(&m, COAP_OPTION_ETAG, nine, 0), COAP_E_OPTION_VALUE);
  assert_int_equal(coap_msg_add_option(&m, COAP_OPTION_CONTENT_FORMAT, nine, 3), COAP_E_OPTION_VALUE);
  assert_int_equal(coap_msg_add_option(&m, COAP_OPTION_ETAG, nine, 8), 0);
}

static void expect_parse_error(const uint8_t *d, size_t n, int err) {
  coap_msg_t m;
  assert_int_equal(coap_msg_parse(&m, d, n), err);
}

static void test_malformed_inputs(void **state) {
  const uint8_t short_header[] = {0x40, 0x01, 0x00};
  expect_parse_error(short_header, sizeof short_header, COAP_E_TRUNCATED);
  const uint8_t version2[] = {0x80, 0x01, 0x00, 0x01};
  expect_parse_error(version2, sizeof version2, COAP_E_BAD_VERSION);
  for (uint8_t tkl = 9; tkl <= 15; tkl++) {
    uint8_t d[24] = {(uint8_t)(0x40 | tkl), 0x01, 0, 1};
    expect_parse_error(d, sizeof d, COAP_E_BAD_TOKEN_LEN);
  }
  const uint8_t token_cut[] = {0x44, 0x01, 0, 1, 0xaa, 0xbb};
  expect_parse_error(token_cut, sizeof token_cut, COAP_E_TRUNCATED);
  const uint8_t opt_past_end[] = {0x40, 0x01, 0, 1, 0xb5, 'a', 'b'};
  expect_parse_error(opt_past_end, sizeof opt_past_end, COAP_E_BAD_OPTION);
  const uint8_t delta15[] = {0x40, 0x01, 0, 1, 0xf1, 'a'};
  expect_parse_error(delta15, sizeof delta15, COAP_E_BAD_OPTION);
  const uint8_t length15[] = {0x40, 0x01, 0, 1, 0x1f, 'a'};
  expect_parse_error(length15, sizeof length15, COAP_E_BAD_OPTION);
  const uint8_t ext_cut[] = {0x40, 0x01, 0, 1, 0xd0};
  expect_parse_error(ext_cut, sizeof ext_cut, COAP_E_BAD_OPTION);
  const uint8_t empty_payload[] = {0x40, 0x01, 0, 1, 0xff};
  expect_parse_error(empty_payload, sizeof empty_payload, COAP_E_EMPTY_PAYLOAD);
  const uint8_t empty_with_token[] = {0x41, 0x00, 0, 1, 0x11};
  expect_parse_error(empty_with_token, sizeof empty_with_token, COAP_E_BAD_EMPTY);
  const uint8_t class1[] = {0x40, 0x21, 0, 1};
  expect_parse_error(class1, sizeof class1, COAP_E_BAD_CODE);
  const uint8_t class7[] = {0x40, 0xe0, 0, 1};
  expect_parse_error(class7, sizeof class7, COAP_E_BAD_CODE);
  /* Number overflow: 65535 then a further delta. */
  const uint8_t overflow[] = {0x40, 0x01, 0, 1, 0xe0, 0xfe, 0xf2, 0x10};
  expect_parse_error(overflow, sizeof overflow, COAP_E_BAD_OPTION);
  /* Too many options. */
  uint8_t many[4 + COAP_MAX_OPTIONS + 1] = {0x40, 0x01, 0, 1};
  for (size_t i = 4; i < sizeof many; i++) many[i] = 0x00; /* delta 0, length 0 */
  many[4] = 0x10;
  expect_parse_error(many, sizeof many, COAP_E_TOO_MANY_OPTIONS);
  /* Header fields are filled even on error, for the RST. */
  coap_msg_t m;
  assert_int_equal(coap_msg_parse(&m, delta15, sizeof delta15), COAP_E_BAD_OPTION);
  assert_int_equal(m.type, COAP_TYPE_CON);
  assert_int_equal(m.mid, 1);
}

static void test_every_prefix_is_safe(void **state) {
  uint8_t full[64];
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_PUT, 0x1234);
  const uint8_t tok[] = {1, 2, 3, 4};
  coap_msg_set_token(&m, tok, 4);
  coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "a-long-enough-path");
  coap_msg_add_uint(&m, COAP_OPTION_CONTENT_FORMAT, 50);
  coap_msg_set_payload(&m, "{\"x\":1}", 7);
  int n = coap_msg_encode(&m, full, sizeof full);
  assert_true(n > 0);
  for (int len = 0; len < n; len++) {
    uint8_t exact[64];
    memcpy(exact, full, (size_t)len); /* ASan: reading past |len| would show */
    coap_msg_t p;
    int rc = coap_msg_parse(&p, exact, (size_t)len);
    if (rc == 0) assert_true(p.payload_len == 0 || p.payload + p.payload_len <= exact + len);
  }
}

static void test_encode_never_overflows(void **state) {
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 7);
  coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "abcdefghijklmnop");
  coap_msg_set_payload(&m, "payload", 7);
  size_t need = coap_msg_encoded_size(&m);
  for (size_t cap = 0; cap < need; cap++) {
    uint8_t buf[64];
    memset(buf, 0xEE, sizeof buf);
    assert_int_equal(coap_msg_encode(&m, buf, cap), COAP_E_BUFFER_TOO_SMALL);
    assert_int_equal(buf[cap], 0xEE);
  }
}

static void test_names_and_formats(void **state) {
  assert_string_equal(coap_code_name(COAP_NOT_FOUND), "4.04 Not Found");
  assert_string_equal(coap_code_name(COAP_GET), "GET");
  assert_string_equal(coap_code_name(COAP_CODE(7, 31)), "7.31");
  assert_string_equal(coap_type_name(COAP_TYPE_RST), "RST");
  assert_int_equal(coap_content_format_parse("json"), COAP_FORMAT_JSON);
  assert_int_equal(coap_content_format_parse("application/cbor"), COAP_FORMAT_CBOR);
  assert_int_equal(coap_content_format_parse("42"), COAP_FORMAT_OCTET_STREAM);
  assert_int_equal(coap_content_format_parse("nonsense"), COAP_FORMAT_NONE);
  assert_string_equal(coap_content_format_name(40), "application/link-format");
  coap_msg_t m;
  coap_msg_parse(&m, get_temperature, sizeof get_temperature);
  char line[128];
  coap_msg_format(&m, line, sizeof line);
  assert_string_equal(line, "CON GET mid=0x7d34 Uri-Path:temperature");
  coap_msg_add_option(&m, 2049, "\x01", 1);
  assert_non_null(coap_msg_unknown_critical(&m, NULL, 0));
  const uint16_t known = 2049;
  assert_null(coap_msg_unknown_critical(&m, &known, 1));
}

/* ---- URIs ---- */

static void test_uri_parse(void **state) {
  coap_uri_t u;
  assert_int_equal(coap_uri_parse(&u, "COAPS://Example.NET/a%20b/c?x=1&y"), 0);
  assert_int_equal(u.scheme, COAP_SCHEME_COAPS);
  assert_string_equal(u.host, "example.net");
  assert_int_equal(u.port, 5684);
  assert_false(u.port_explicit);
  assert_string_equal(u.path, "/a%20b/c");
  assert_string_equal(u.query, "x=1&y");
  assert_int_equal(coap_uri_parse(&u, "coap://[2001:db8::1]:61616"), 0);
  assert_int_equal(u.host_is_literal, 6);
  assert_string_equal(u.host, "2001:db8::1");
  assert_int_equal(u.port, 61616);
  assert_int_equal(coap_uri_parse(&u, "coap://192.0.2.1"), 0);
  assert_int_equal(u.host_is_literal, 4);
  assert_int_equal(u.port, 5683);
  assert_int_equal(coap_uri_parse(&u, "http://x/"), COAP_E_URI_SCHEME);
  assert_int_equal(coap_uri_parse(&u, "coap:///path"), COAP_E_URI_HOST);
  assert_int_equal(coap_uri_parse(&u, "coap://[zz::1]/"), COAP_E_URI_HOST);
  assert_int_equal(coap_uri_parse(&u, "coap://h:0/"), COAP_E_URI_PORT);
  assert_int_equal(coap_uri_parse(&u, "coap://h:65536/"), COAP_E_URI_PORT);
  assert_int_equal(coap_uri_parse(&u, "coap://h:8o/"), COAP_E_URI_PORT);
  assert_int_equal(coap_uri_parse(&u, "coap://h/a#frag"), COAP_E_URI_ENCODING);
  assert_int_equal(coap_uri_parse(&u, "coap://h/a%2"), COAP_E_URI_ENCODING);
  assert_int_equal(coap_uri_parse(&u, "coap://h/a%zz"), COAP_E_URI_ENCODING);
  assert_int_equal(coap_uri_parse(&u, "coap://user@h/"), COAP_E_URI_HOST);
  char long_uri[1200] = "coap://h/";
  memset(long_uri + 9, 'a', 1100);
  long_uri[1109] = '\0';
  assert_int_equal(coap_uri_parse(&u, long_uri), COAP_E_URI_TOO_LONG);
}

static void test_uri_to_options_and_back(void **state) {
  coap_uri_t u;
  coap_msg_t m;
  uint8_t store[256];
  assert_int_equal(coap_uri_parse(&u, "coap://example.net/a%20b/c?x=1&y"), 0);
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  assert_int_equal(coap_uri_to_options(&u, &m, store, sizeof store), 0);
  const coap_option_t *o = coap_msg_find_option(&m, COAP_OPTION_URI_HOST);
  assert_non_null(o);
  assert_memory_equal(o->value, "example.net", 11);
  assert_null(coap_msg_find_option(&m, COAP_OPTION_URI_PORT));
  o = coap_msg_find_option(&m, COAP_OPTION_URI_PATH);
  assert_int_equal(o->length, 3);
  assert_memory_equal(o->value, "a b", 3);
  o = coap_msg_next_option(&m, o);
  assert_memory_equal(o->value, "c", 1);
  o = coap_msg_find_option(&m, COAP_OPTION_URI_QUERY);
  assert_memory_equal(o->value, "x=1", 3);
  o = coap_msg_next_option(&m, o);
  assert_int_equal(o->length, 1);
  char path[64];
  assert_true(coap_msg_uri_path(&m, path, sizeof path) > 0);
  assert_string_equal(path, "/a%20b/c?x=1&y");
  assert_int_equal(coap_msg_uri_path(&m, path, 4), COAP_E_BUFFER_TOO_SMALL);
  /* A literal host and a bare "/" give neither Uri-Host nor Uri-Path. */
  assert_int_equal(coap_uri_parse(&u, "coap://127.0.0.1/"), 0);
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  assert_int_equal(coap_uri_to_options(&u, &m, store, sizeof store), 0);
  assert_int_equal(m.n_options, 0);
  char text[128];
  assert_int_equal(coap_uri_parse(&u, "coaps://[::1]:5700/x?y=z"), 0);
  assert_true(coap_uri_format(&u, text, sizeof text) > 0);
  assert_string_equal(text, "coaps://[::1]:5700/x?y=z");
}

/* ---- link format ---- */

static void test_link_format(void **state) {
  char buf[256];
  size_t len = 0;
  coap_link_attr_t a1[] = {{"rt", "temperature-c sensor"}, {"ct", "0"}, {"obs", NULL}};
  coap_link_attr_t a2[] = {{"ct", "0 50"}, {"title", "Time, now"}};
  assert_int_equal(coap_link_append(buf, sizeof buf, &len, "/temp", a1, 3), 0);
  assert_int_equal(coap_link_append(buf, sizeof buf, &len, "/time", a2, 2), 0);
  assert_string_equal(buf, "</temp>;rt=\"temperature-c sensor\";ct=0;obs,"
                           "</time>;ct=\"0 50\";title=\"Time, now\"");
  size_t before = len;
  assert_int_equal(coap_link_append(buf, 40, &len, "/x", NULL, 0), COAP_E_BUFFER_TOO_SMALL);
  assert_int_equal(len, before);

  assert_true(coap_link_matches("/temp", a1, 3, NULL));
  assert_true(coap_link_matches("/temp", a1, 3, "rt=sensor"));
  assert_true(coap_link_matches("/temp", a1, 3, "rt=temp*"));
  assert_false(coap_link_matches("/temp", a1, 3, "rt=time"));
  assert_true(coap_link_matches("/temp", a1, 3, "href=/te*"));
  assert_false(coap_link_matches("/temp", a1, 3, "href=/time"));
  assert_true(coap_link_matches("/temp", a1, 3, "ct=0"));
  assert_false(coap_link_matches("/temp", a1, 3, "if=x"));
  assert_true(coap_link_matches("/time", a2, 2, "ct=50")); /* one entry of "0 50" */
  assert_false(coap_link_matches("/time", a2, 2, "ct=40"));

  size_t cursor = 0;
  const char *href, *attrs;
  size_t href_len, attrs_len;
  assert_int_equal(coap_link_next(buf, strlen(buf), &cursor, &href, &href_len, &attrs, &attrs_len), 1);
  assert_int_equal(href_len, 5);
  assert_memory_equal(href, "/temp", 5);
  assert_int_equal(coap_link_next(buf, strlen(buf), &cursor, &href, &href_len, &attrs, &attrs_len), 1);
  assert_memory_equal(href, "/time", 5);
  assert_non_null(memmem(attrs, attrs_len, "Time, now", 9)); /* the quoted comma stayed */
  assert_int_equal(coap_link_next(buf, strlen(buf), &cursor, &href, &href_len, &attrs, &attrs_len), 0);
  cursor = 0;
  assert_true(coap_link_next("no-brackets", 11, &cursor, &href, &href_len, &attrs, &attrs_len) < 0);
}

/* RFC 7959 §2.2: NUM/M/SZX packing, minimal length, the reserved SZX. */
static void test_block_option(void **state) {
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
      cmocka_unit_test(test_rfc7252_example_encode),
      cmocka_unit_test(test_block_option),
      cmocka_unit_test(test_rfc7252_example_parse),
      cmocka_unit_test(test_every_option_form),
      cmocka_unit_test(test_options_sorted_and_stable),
      cmocka_unit_test(test_uint_minimal_encoding),
      cmocka_unit_test(test_registered_length_bounds),
      cmocka_unit_test(test_malformed_inputs),
      cmocka_unit_test(test_every_prefix_is_safe),
      cmocka_unit_test(test_encode_never_overflows),
      cmocka_unit_test(test_names_and_formats),
      cmocka_unit_test(test_uri_parse),
      cmocka_unit_test(test_uri_to_options_and_back),
      cmocka_unit_test(test_link_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
