/* coap:// and coaps:// URIs (RFC 7252 §6): parsing, the mapping to
 * Uri-Host/Uri-Path/Uri-Query options (§6.4), and composing text back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/error.h"
#include "coaps/wire.h"

static coap_uri_t parse_ok(const char *text) {
  coap_uri_t u;
  int rc = coap_uri_parse(&u, text);
  if (rc != 0) fail_msg("coap_uri_parse(\"%s\") = %d", text, rc);
  return u;
}

static void expect_error(const char *text, int code) {
  coap_uri_t u;
  int rc = coap_uri_parse(&u, text);
  if (rc != code) fail_msg("coap_uri_parse(\"%s\") = %d, want %d", text, rc, code);
}

/* Options |number| of |m| in order must equal the NULL-terminated |want|. */
static void expect_options(const coap_msg_t *m, uint16_t number, const char *const *want) {
  const coap_option_t *o = coap_msg_find_option(m, number);
  size_t i = 0;
  for (; want[i]; i++, o = coap_msg_next_option(m, o)) {
    if (!o) fail_msg("option %u: only %zu values, want \"%s\" next", number, i, want[i]);
    assert_int_equal(o->length, strlen(want[i]));
    assert_memory_equal(o->value, want[i], o->length);
  }
  assert_null(o); /* no more values than wanted */
}

static const char *const NONE[] = {NULL};

/* ---- schemes and ports ---- */

static void test_schemes_and_default_ports(void **state) {
  (void)state;
  coap_uri_t u = parse_ok("coap://example.com");
  assert_int_equal(u.scheme, COAP_SCHEME_COAP);
  assert_int_equal(u.port, COAP_DEFAULT_PORT);
  assert_int_equal(u.port, 5683);
  assert_int_equal(u.port_explicit, 0);
  assert_string_equal(u.host, "example.com");
  assert_int_equal(u.host_is_literal, 0);
  assert_string_equal(u.path, "");
  assert_string_equal(u.query, "");

  u = parse_ok("coaps://example.com/");
  assert_int_equal(u.scheme, COAP_SCHEME_COAPS);
  assert_int_equal(u.port, COAPS_DEFAULT_PORT);
  assert_int_equal(u.port, 5684);
  assert_int_equal(u.port_explicit, 0);
  assert_string_equal(u.path, "/");
}

static void test_scheme_case_insensitive(void **state) {
  (void)state;
  coap_uri_t u = parse_ok("COAP://h");
  assert_int_equal(u.scheme, COAP_SCHEME_COAP);
  assert_int_equal(u.port, 5683);
  u = parse_ok("CoApS://h");
  assert_int_equal(u.scheme, COAP_SCHEME_COAPS);
  assert_int_equal(u.port, 5684);
  u = parse_ok("COAPS://h/x");
  assert_int_equal(u.scheme, COAP_SCHEME_COAPS);
  assert_string_equal(u.path, "/x");
}

static void test_bad_schemes(void **state) {
  (void)state;
  expect_error("http://example.com/", COAP_E_URI_SCHEME);
  expect_error("https://example.com/", COAP_E_URI_SCHEME);
  expect_error("coap+tcp://example.com/", COAP_E_URI_SCHEME);
  expect_error("coap:/example.com", COAP_E_URI_SCHEME);
  expect_error("coap:example.com", COAP_E_URI_SCHEME);
  expect_error("coapx://example.com", COAP_E_URI_SCHEME);
  expect_error("//example.com/a", COAP_E_URI_SCHEME);
  expect_error("/a/b", COAP_E_URI_SCHEME);
  expect_error("", COAP_E_URI_SCHEME);
  expect_error(" coap://h", COAP_E_URI_SCHEME);
  coap_uri_t u;
  assert_int_equal(coap_uri_parse(&u, NULL), COAP_E_INVALID_ARG);
  assert_int_equal(coap_uri_parse(NULL, "coap://h"), COAP_E_INVALID_ARG);
}

static void test_explicit_ports(void **state) {
  (void)state;
  coap_uri_t u = parse_ok("coap://h:1/");
  assert_int_equal(u.port, 1);
  assert_int_equal(u.port_explicit, 1);
  u = parse_ok("coap://h:65535");
  assert_int_equal(u.port, 65535);
  u = parse_ok("coaps://h:5683/x");
  assert_int_equal(u.port, 5683);
  assert_int_equal(u.port_explicit, 1);
  assert_string_equal(u.path, "/x");
  u = parse_ok("coap://h:61616?q");
  assert_int_equal(u.port, 61616);
  assert_string_equal(u.path, "");
  assert_string_equal(u.query, "q");
  u = parse_ok("coap://h:00080/");
  assert_int_equal(u.port, 80);
  /* An empty port is the default (RFC 3986 §3.2.3). */
  u = parse_ok("coaps://h:/a");
  assert_int_equal(u.port, 5684);
  assert_int_equal(u.port_explicit, 0);
  assert_string_equal(u.host, "h");
}

static void test_bad_ports(void **state) {
  (void)state;
  expect_error("coap://h:0/", COAP_E_URI_PORT);
  expect_error("coap://h:00000", COAP_E_URI_PORT);
  expect_error("coap://h:65536/", COAP_E_URI_PORT);
  expect_error("coap://h:99999", COAP_E_URI_PORT);
  expect_error("coap://h:123456", COAP_E_URI_PORT);
  expect_error("coap://h:0000005683", COAP_E_URI_PORT);
  expect_error("coap://h:abc", COAP_E_URI_PORT);
  expect_error("coap://h:80a/", COAP_E_URI_PORT);
  expect_error("coap://h:8o/", COAP_E_URI_PORT);
  expect_error("coap://h:-1", COAP_E_URI_PORT);
  expect_error("coap://h:+80", COAP_E_URI_PORT);
  expect_error("coap://h: 80", COAP_E_URI_PORT);
  expect_error("coap://h:80:81", COAP_E_URI_PORT);
  expect_error("coap://[::1]:0", COAP_E_URI_PORT);
  expect_error("coap://[::1]:70000/", COAP_E_URI_PORT);
  expect_error("coap://192.0.2.1:x", COAP_E_URI_PORT);
}

/* ---- hosts ---- */

static void test_ipv4_literal(void **state) {
  (void)state;
  coap_uri_t u = parse_ok("coap://192.0.2.1/a");
  assert_int_equal(u.host_is_literal, 4);
  assert_string_equal(u.host, "192.0.2.1");
  assert_int_equal(u.port, 5683);
  u = parse_ok("coaps://127.0.0.1:5690");
  assert_int_equal(u.host_is_literal, 4);
  assert_int_equal(u.port, 5690);
  /* Not a dotted quad: a name. */
  u = parse_ok("coap://1.2.3/");
  assert_int_equal(u.host_is_literal, 0);
}

static void test_ipv6_literal(void **state) {
  (void)state;
  coap_uri_t u = parse_ok("coap://[2001:db8::1]/x");
  assert_int_equal(u.host_is_literal, 6);
  assert_string_equal(u.host, "2001:db8::1");
  assert_int_equal(u.port, 5683);
  assert_int_equal(u.port_explicit, 0);
  assert_string_equal(u.path, "/x");
  u = parse_ok("coaps://[::1]:61616");
  assert_int_equal(u.host_is_literal, 6);
  assert_string_equal(u.host, "::1");
  assert_int_equal(u.port, 61616);
  assert_int_equal(u.port_explicit, 1);
  u = parse_ok("coap://[::ffff:192.0.2.1]?a=b");
  assert_int_equal(u.host_is_literal, 6);
  assert_string_equal(u.host, "::ffff:192.0.2.1");
  assert_string_equal(u.query, "a=b");
  u = parse_ok("coap://[::1]:");
  assert_int_equal(u.port, 5683);
}

static void test_bad_hosts(void **state) {
  (void)state;
  expect_error("coap://[::g]/", COAP_E_URI_HOST);
  expect_error("coap://[zz::1]/", COAP_E_URI_HOST);
  expect_error("coap://[1:2]/", COAP_E_URI_HOST);
  expect_error("coap://[]/", COAP_E_URI_HOST);
  expect_error("coap://[::1/", COAP_E_URI_HOST);
  expect_error("coap://[::1", COAP_E_URI_HOST);
  expect_error("coap://[::1]x/", COAP_E_URI_HOST);
  expect_error("coap://[::1]]:5683", COAP_E_URI_HOST);
  expect_error("coap://[192.0.2.1]/", COAP_E_URI_HOST);
  expect_error("coap://::1/", COAP_E_URI_HOST); /* unbracketed: empty host */
  expect_error("coap:///a", COAP_E_URI_HOST);
  expect_error("coap://", COAP_E_URI_HOST);
  expect_error("coap://?q", COAP_E_URI_HOST);
  expect_error("coap://:5683/", COAP_E_URI_HOST);
  expect_error("coap://user@host/", COAP_E_URI_HOST);
  expect_error("coap://ho st/", COAP_E_URI_HOST);
  expect_error("coap://ho\"st/", COAP_E_URI_HOST);
  expect_error("coap://%00/", COAP_E_URI_HOST); /* NUL in a host name */
  /* A host name longer than 255 bytes cannot be a Uri-Host. */
  char text[300];
  strcpy(text, "coap://");
  memset(text + 7, 'a', 256);
  text[7 + 256] = '\0';
  expect_error(text, COAP_E_URI_HOST);
  text[7 + 255] = '\0';
  coap_uri_t u = parse_ok(text);
  assert_int_equal(strlen(u.host), 255);
}

static void test_host_lowercased_and_decoded(void **state) {
  (void)state;
  coap_uri_t u = parse_ok("coap://Example.COM/Path");
  assert_string_equal(u.host, "example.com");
  assert_string_equal(u.path, "/Path"); /* paths keep their case */
  u = parse_ok("coaps://%41b%63.example/");
  assert_string_equal(u.host, "abc.example");
  u = parse_ok("coap://xn--bcher-kva.EXAMPLE");
  assert_string_equal(u.host, "xn--bcher-kva.example");
  expect_error("coap://a%2/", COAP_E_URI_ENCODING);
  expect_error("coap://a%zz/", COAP_E_URI_ENCODING);
}

/* ---- paths, queries, encoding errors ---- */

static void test_path_and_query_kept_encoded(void **state) {
  (void)state;
  coap_uri_t u = parse_ok("coap://h/a%20b/c?x=1&y");
  assert_string_equal(u.path, "/a%20b/c");
  assert_string_equal(u.query, "x=1&y");
  u = parse_ok("coap://h?only=query");
  assert_string_equal(u.path, "");
  assert_string_equal(u.query, "only=query");
  u = parse_ok("coap://h/p?q/with?marks");
  assert_string_equal(u.path, "/p");
  assert_string_equal(u.query, "q/with?marks");
  u = parse_ok("coap://h/!$&'()*+,;=:@-._~");
  assert_string_equal(u.path, "/!$&'()*+,;=:@-._~");
}

static void test_encoding_errors(void **state) {
  (void)state;
  expect_error("coap://h/a#frag", COAP_E_URI_ENCODING);
  expect_error("coap://h#frag", COAP_E_URI_ENCODING);
  expect_error("coap://h/a?q#frag", COAP_E_URI_ENCODING);
  expect_error("coap://h/a#", COAP_E_URI_ENCODING);
  expect_error("coap://h/%zz", COAP_E_URI_ENCODING);
  expect_error("coap://h/%2", COAP_E_URI_ENCODING);
  expect_error("coap://h/a%2", COAP_E_URI_ENCODING);
  expect_error("coap://h/a%zz", COAP_E_URI_ENCODING);
  expect_error("coap://h/%", COAP_E_URI_ENCODING);
  expect_error("coap://h/a%g0/b", COAP_E_URI_ENCODING);
  expect_error("coap://h/?q=%G0", COAP_E_URI_ENCODING);
  expect_error("coap://h/?q=%4", COAP_E_URI_ENCODING);
  expect_error("coap://h/a b", COAP_E_URI_ENCODING);
  expect_error("coap://h/a<b>", COAP_E_URI_ENCODING);
  expect_error("coap://h/?a b", COAP_E_URI_ENCODING);
  expect_error("coap://h/\x80", COAP_E_URI_ENCODING);
  /* Too long for the path buffer: an error, never an overflow. */
  size_t n = 7 + 1 + 2000;
  char *text = malloc(n + 1);
  assert_non_null(text);
  memcpy(text, "coap://h", 8);
  memset(text + 8, 'p', n - 8);
  text[8] = '/';
  text[n] = '\0';
  coap_uri_t u;
  assert_true(coap_uri_parse(&u, text) < 0);
  free(text);
  /* Past the 1023 characters a path may have: that error by name. */
  char long_uri[1200] = "coap://h/";
  memset(long_uri + 9, 'a', 1100);
  long_uri[1109] = '\0';
  expect_error(long_uri, COAP_E_URI_TOO_LONG);
}

/* ---- to options ---- */

static void test_to_options_decodes(void **state) {
  (void)state;
  coap_uri_t u = parse_ok("coap://example.net/a%20b/c?x=1&y");
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  uint8_t store[128];
  assert_int_equal(coap_uri_to_options(&u, &m, store, sizeof store), 0);
  static const char *const host[] = {"example.net", NULL};
  static const char *const path[] = {"a b", "c", NULL};
  static const char *const query[] = {"x=1", "y", NULL};
  expect_options(&m, COAP_OPTION_URI_HOST, host);
  expect_options(&m, COAP_OPTION_URI_PATH, path);
  expect_options(&m, COAP_OPTION_URI_QUERY, query);
  assert_null(coap_msg_find_option(&m, COAP_OPTION_URI_PORT));
  assert_int_equal(m.n_options, 5);
  /* Values live in |store|, so they survive the URI. */
  memset(&u, 0, sizeof u);
  expect_options(&m, COAP_OPTION_URI_PATH, path);
}

static void test_to_options_escaped_delimiters(void **state) {
  (void)state;
  coap_uri_t u = parse_ok("coap://h/a%2Fb/%3F?k%26v=1%3D2&%C3%A9");
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  uint8_t store[64];
  assert_int_equal(coap_uri_to_options(&u, &m, store, sizeof store), 0);
  static const char *const path[] = {"a/b", "?", NULL};
  static const char *const query[] = {"k&v=1=2", "\xc3\xa9", NULL};
  expect_options(&m, COAP_OPTION_URI_PATH, path);
  expect_options(&m, COAP_OPTION_URI_QUERY, query);
}

static void test_to_options_empty_paths(void **state) {
  (void)state;
  static const char *const texts[] = {"coap://h", "coap://h/", "coap://h?q", "coap://h/?q"};
  for (size_t i = 0; i < 4; i++) {
    coap_uri_t u = parse_ok(texts[i]);
    coap_msg_t m;
    coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
    uint8_t store[32];
    assert_int_equal(coap_uri_to_options(&u, &m, store, sizeof store), 0);
    assert_null(coap_msg_find_option(&m, COAP_OPTION_URI_PATH));
    assert_non_null(coap_msg_find_option(&m, COAP_OPTION_URI_HOST));
    if (strchr(texts[i], '?')) {
      static const char *const q[] = {"q", NULL};
      expect_options(&m, COAP_OPTION_URI_QUERY, q);
    } else {
      expect_options(&m, COAP_OPTION_URI_QUERY, NONE);
    }
  }
  /* Empty segments are kept (§6.4 step 8: each segment is an option). */
  coap_uri_t u = parse_ok("coap://h/a/");
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  uint8_t store[32];
  assert_int_equal(coap_uri_to_options(&u, &m, store, sizeof store), 0);
  static const char *const trailing[] = {"a", "", NULL};
  expect_options(&m, COAP_OPTION_URI_PATH, trailing);
  u = parse_ok("coap://h//b?&x");
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  assert_int_equal(coap_uri_to_options(&u, &m, store, sizeof store), 0);
  static const char *const leading[] = {"", "b", NULL};
  static const char *const q[] = {"", "x", NULL};
  expect_options(&m, COAP_OPTION_URI_PATH, leading);
  expect_options(&m, COAP_OPTION_URI_QUERY, q);
}

static void test_to_options_literal_hosts(void **state) {
  (void)state;
  static const char *const texts[] = {"coap://192.0.2.1:7777/x", "coaps://[2001:db8::1]/x",
                                      "coap://[::1]:61616/x"};
  for (size_t i = 0; i < 3; i++) {
    coap_uri_t u = parse_ok(texts[i]);
    coap_msg_t m;
    coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
    uint8_t store[32];
    assert_int_equal(coap_uri_to_options(&u, &m, store, sizeof store), 0);
    assert_null(coap_msg_find_option(&m, COAP_OPTION_URI_HOST));
    assert_null(coap_msg_find_option(&m, COAP_OPTION_URI_PORT));
    static const char *const path[] = {"x", NULL};
    expect_options(&m, COAP_OPTION_URI_PATH, path);
    assert_int_equal(m.n_options, 1);
  }
  /* A literal host and a bare "/": no option at all. */
  coap_uri_t bare = parse_ok("coap://127.0.0.1/");
  coap_msg_t none;
  coap_msg_init(&none, COAP_TYPE_CON, COAP_GET, 1);
  uint8_t none_store[32];
  assert_int_equal(coap_uri_to_options(&bare, &none, none_store, sizeof none_store), 0);
  assert_int_equal(none.n_options, 0);
  /* A name with an explicit port: Uri-Host but still no Uri-Port. */
  coap_uri_t u = parse_ok("coap://Sensor.Example:9999/");
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  uint8_t store[32];
  assert_int_equal(coap_uri_to_options(&u, &m, store, sizeof store), 0);
  static const char *const host[] = {"sensor.example", NULL};
  expect_options(&m, COAP_OPTION_URI_HOST, host);
  assert_null(coap_msg_find_option(&m, COAP_OPTION_URI_PORT));
  assert_int_equal(m.n_options, 1);
}

static void test_to_options_store_too_small(void **state) {
  (void)state;
  coap_uri_t u = parse_ok("coap://host.example/seg%20one/two?a=1&bb=2");
  /* host 12 + "seg one" 7 + "two" 3 + "a=1" 3 + "bb=2" 4 = 29 bytes. */
  const size_t need = 29;
  for (size_t cap = 0; cap < need; cap++) {
    uint8_t *store = malloc(cap + 1);
    assert_non_null(store);
    store[cap] = 0x5A;
    coap_msg_t m;
    coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
    assert_int_equal(coap_uri_to_options(&u, &m, store, cap), COAP_E_BUFFER_TOO_SMALL);
    assert_int_equal(store[cap], 0x5A);
    free(store);
  }
  uint8_t store[29];
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  assert_int_equal(coap_uri_to_options(&u, &m, store, sizeof store), 0);
  assert_int_equal(m.n_options, 5);
}

static void test_to_options_too_many(void **state) {
  (void)state;
  /* 70 path segments: more than a message can hold. */
  char text[256] = "coap://h";
  for (int i = 0; i < 70; i++) strcat(text, "/s");
  coap_uri_t u = parse_ok(text);
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  uint8_t store[256];
  assert_int_equal(coap_uri_to_options(&u, &m, store, sizeof store), COAP_E_TOO_MANY_OPTIONS);
  assert_int_equal(m.n_options, COAP_MAX_OPTIONS);
}

/* ---- composing ---- */

static void test_msg_uri_path(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  char buf[128];
  /* No Uri-Path: the root. */
  assert_int_equal(coap_msg_uri_path(&m, buf, sizeof buf), 1);
  assert_string_equal(buf, "/");
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "a b"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "c"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_QUERY, "x=1"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_QUERY, "y"), 0);
  int n = coap_msg_uri_path(&m, buf, sizeof buf);
  assert_string_equal(buf, "/a%20b/c?x=1&y");
  assert_int_equal(n, (int)strlen(buf));

  /* Delimiters inside values are escaped; sub-delims that are not
   * separators stay. */
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "a/b?c"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "k=v;x:y@z"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_QUERY, "p&q=r/s?t"), 0);
  assert_int_equal(coap_msg_add_option(&m, COAP_OPTION_URI_QUERY, "\xc3\xa9%", 3), 0);
  n = coap_msg_uri_path(&m, buf, sizeof buf);
  assert_string_equal(buf, "/a%2Fb%3Fc/k=v;x:y@z?p%26q=r/s?t&%C3%A9%25");
  assert_int_equal(n, (int)strlen(buf));

  /* Query only. */
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_QUERY, "rt=temp"), 0);
  assert_int_equal(coap_msg_uri_path(&m, buf, sizeof buf), 9);
  assert_string_equal(buf, "/?rt=temp");
}

static void test_msg_uri_path_small_buffer(void **state) {
  (void)state;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "sensors"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "t mp"), 0);
  assert_int_equal(coap_msg_add_string(&m, COAP_OPTION_URI_QUERY, "u=C"), 0);
  const char *want = "/sensors/t%20mp?u=C";
  size_t len = strlen(want);
  for (size_t cap = 0; cap <= len; cap++) {
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    buf[cap] = 'G';
    assert_int_equal(coap_msg_uri_path(&m, cap ? buf : NULL, cap), COAP_E_BUFFER_TOO_SMALL);
    assert_int_equal(buf[cap], 'G');
    if (cap) assert_true(strlen(buf) < cap); /* still terminated */
    free(buf);
  }
  char buf[64];
  assert_int_equal(coap_msg_uri_path(&m, buf, len + 1), (int)len);
  assert_string_equal(buf, want);
}

/* URI text -> options -> path text gives back the path and query. */
static void test_path_round_trip(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"coap://h/a%20b/c?x=1&y", "/a%20b/c?x=1&y"},
      {"coap://h", "/"},
      {"coap://h/", "/"},
      {"coap://h/.well-known/core?rt=temp*", "/.well-known/core?rt=temp*"},
      {"coap://h/a%2Fb?k%26v", "/a%2Fb?k%26v"},
      {"coap://h/%7Euser", "/~user"},       /* unreserved: decoded */
      {"coap://h/%e2%82%ac", "/%E2%82%AC"}, /* upper-case hex */
      {"coap://h/a/", "/a/"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    coap_uri_t u = parse_ok(cases[i][0]);
    coap_msg_t m;
    coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
    uint8_t store[128];
    assert_int_equal(coap_uri_to_options(&u, &m, store, sizeof store), 0);
    char buf[128];
    int n = coap_msg_uri_path(&m, buf, sizeof buf);
    assert_int_equal(n, (int)strlen(cases[i][1]));
    assert_string_equal(buf, cases[i][1]);
  }
}

static void test_uri_format_round_trip(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"coap://example.com/a/b?x=1", "coap://example.com/a/b?x=1"},
      {"COAPS://Example.COM:5684/x", "coaps://example.com/x"}, /* default port dropped */
      {"coap://example.com:5684/x", "coap://example.com:5684/x"},
      {"coaps://h:5683", "coaps://h:5683"},
      {"coap://192.0.2.1:61616/s?q", "coap://192.0.2.1:61616/s?q"},
      {"coaps://[2001:db8::1]:7000/", "coaps://[2001:db8::1]:7000/"},
      {"coap://[::1]", "coap://[::1]"},
      {"coaps://[::1]:5700/x?y=z", "coaps://[::1]:5700/x?y=z"},
      {"coap://h/a%20b?c%26d", "coap://h/a%20b?c%26d"},
      {"coap://h?q", "coap://h?q"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    coap_uri_t u = parse_ok(cases[i][0]);
    char buf[128];
    int n = coap_uri_format(&u, buf, sizeof buf);
    assert_int_equal(n, (int)strlen(cases[i][1]));
    assert_string_equal(buf, cases[i][1]);
    /* The output parses to the same URI. */
    coap_uri_t again = parse_ok(buf);
    assert_int_equal(again.scheme, u.scheme);
    assert_string_equal(again.host, u.host);
    assert_int_equal(again.host_is_literal, u.host_is_literal);
    assert_int_equal(again.port, u.port);
    assert_string_equal(again.path, u.path);
    assert_string_equal(again.query, u.query);
  }
}

static void test_uri_format_small_buffer(void **state) {
  (void)state;
  coap_uri_t u = parse_ok("coaps://[2001:db8::1]:7000/a?b");
  const char *want = "coaps://[2001:db8::1]:7000/a?b";
  size_t len = strlen(want);
  for (size_t cap = 0; cap <= len; cap++) {
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    buf[cap] = 'G';
    assert_int_equal(coap_uri_format(&u, cap ? buf : NULL, cap), COAP_E_BUFFER_TOO_SMALL);
    assert_int_equal(buf[cap], 'G');
    free(buf);
  }
  char buf[64];
  assert_int_equal(coap_uri_format(&u, buf, len + 1), (int)len);
  assert_string_equal(buf, want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_schemes_and_default_ports),
      cmocka_unit_test(test_scheme_case_insensitive),
      cmocka_unit_test(test_bad_schemes),
      cmocka_unit_test(test_explicit_ports),
      cmocka_unit_test(test_bad_ports),
      cmocka_unit_test(test_ipv4_literal),
      cmocka_unit_test(test_ipv6_literal),
      cmocka_unit_test(test_bad_hosts),
      cmocka_unit_test(test_host_lowercased_and_decoded),
      cmocka_unit_test(test_path_and_query_kept_encoded),
      cmocka_unit_test(test_encoding_errors),
      cmocka_unit_test(test_to_options_decodes),
      cmocka_unit_test(test_to_options_escaped_delimiters),
      cmocka_unit_test(test_to_options_empty_paths),
      cmocka_unit_test(test_to_options_literal_hosts),
      cmocka_unit_test(test_to_options_store_too_small),
      cmocka_unit_test(test_to_options_too_many),
      cmocka_unit_test(test_msg_uri_path),
      cmocka_unit_test(test_msg_uri_path_small_buffer),
      cmocka_unit_test(test_path_round_trip),
      cmocka_unit_test(test_uri_format_round_trip),
      cmocka_unit_test(test_uri_format_small_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
