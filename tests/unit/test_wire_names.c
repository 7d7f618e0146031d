/* The wire layer's registries and names: critical options the receiver
 * does not know, code and type names, content formats, the one-line dump
 * of a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/error.h"
#include "coaps/wire.h"

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
  assert_string_equal(coap_code_name(COAP_PROXYING_NOT_SUPPORTED), "5.05 Proxying Not Supported");
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
  assert_string_equal(coap_content_format_name(COAP_FORMAT_TEXT_PLAIN), "text/plain;charset=utf-8");
  assert_string_equal(coap_content_format_name(50), "application/json");
  assert_string_equal(coap_content_format_name(40), "application/link-format");
  assert_string_equal(coap_content_format_name(60), "application/cbor");
  assert_string_equal(coap_content_format_name(COAP_FORMAT_SENML_JSON), "application/senml+json");
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
  assert_int_equal(coap_content_format_parse("nonsense"), COAP_FORMAT_NONE);
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

  /* A parsed message (RFC 7252 Appendix A.1): no token, no payload, so
   * neither is mentioned. */
  static const uint8_t get_temperature[] = {0x40, 0x01, 0x7d, 0x34, 0xbb, 't', 'e', 'm',
                                            'p',  'e',  'r',  'a',  't',  'u', 'r', 'e'};
  assert_int_equal(coap_msg_parse(&m, get_temperature, sizeof get_temperature), 0);
  n = coap_msg_format(&m, buf, sizeof buf);
  assert_string_equal(buf, "CON GET mid=0x7d34 Uri-Path:temperature");
  assert_int_equal(n, strlen(buf));

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
      cmocka_unit_test(test_unknown_critical),
      cmocka_unit_test(test_code_names),
      cmocka_unit_test(test_content_formats),
      cmocka_unit_test(test_msg_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
