/* CoRE link format (RFC 6690): writing links for /.well-known/core,
 * discovery filtering (§4.1) and reading link-format documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/error.h"
#include "coaps/wire.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Append one link to an empty buffer and compare with |want|. */
static void expect_link(const char *href, const coap_link_attr_t *attrs, size_t n,
                        const char *want) {
  char buf[512];
  size_t len = 0;
  assert_int_equal(coap_link_append(buf, sizeof buf, &len, href, attrs, n), 0);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(buf, want, len);
  assert_int_equal(buf[len], '\0');
}

/* ---- coap_link_append ---- */

static void test_append_quoting(void **state) {
  (void)state;
  const coap_link_attr_t attrs[] = {
      {"rt", "temperature-c"}, {"if", "sensor"}, {"ct", "0"},
      {"sz", "1200"},          {"obs", NULL},    {"title", "Temp"},
  };
  expect_link("/sensors/temp", attrs, N(attrs),
              "</sensors/temp>;rt=\"temperature-c\";if=\"sensor\";ct=0;sz=1200;obs;"
              "title=\"Temp\"");
}

static void test_append_ct_forms(void **state) {
  (void)state;
  /* A list of formats needs quotes (RFC 7252 §7.2.1). */
  const coap_link_attr_t list[] = {{"ct", "0 50"}};
  expect_link("/t", list, 1, "</t>;ct=\"0 50\"");
  const coap_link_attr_t big[] = {{"ct", "65000"}, {"sz", "0"}};
  expect_link("/t", big, 2, "</t>;ct=65000;sz=0");
  /* Not a number: quoted. */
  const coap_link_attr_t word[] = {{"ct", "json"}, {"sz", ""}};
  expect_link("/t", word, 2, "</t>;ct=\"json\";sz=\"\"");
  /* rt is quoted even when it looks like a number. */
  const coap_link_attr_t rt_num[] = {{"rt", "42"}, {"foo", "bar"}};
  expect_link("/t", rt_num, 2, "</t>;rt=\"42\";foo=\"bar\"");
}

static void test_append_flags_and_no_attrs(void **state) {
  (void)state;
  expect_link("/", NULL, 0, "</>");
  const coap_link_attr_t flags[] = {{"obs", NULL}, {"x", NULL}};
  expect_link("/a", flags, 2, "</a>;obs;x");
}

static void test_append_comma_separation(void **state) {
  (void)state;
  char buf[256];
  size_t len = 0;
  const coap_link_attr_t a[] = {{"rt", "x"}};
  const coap_link_attr_t b[] = {{"ct", "40"}, {"obs", NULL}};
  assert_int_equal(coap_link_append(buf, sizeof buf, &len, "/a", a, 1), 0);
  assert_int_equal(coap_link_append(buf, sizeof buf, &len, "/b", b, 2), 0);
  assert_int_equal(coap_link_append(buf, sizeof buf, &len, "/c", NULL, 0), 0);
  const char *want = "</a>;rt=\"x\",</b>;ct=40;obs,</c>";
  assert_int_equal(len, strlen(want));
  assert_string_equal(buf, want);
}

/* Every capacity too small fails, keeps *len and the bytes before it,
 * never writes at or past cap. */
static void test_append_buffer_too_small(void **state) {
  (void)state;
  const char *first = "</x>";
  const coap_link_attr_t attrs[] = {{"rt", "temperature"}, {"ct", "0 50"}, {"obs", NULL}};
  const char *want = "</x>,</sensors/t>;rt=\"temperature\";ct=\"0 50\";obs";
  size_t need = strlen(want);
  for (size_t cap = strlen(first) + 1; cap <= need + 1; cap++) {
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    memcpy(buf, first, strlen(first) + 1);
    buf[cap] = 'G';
    size_t len = strlen(first);
    int rc = coap_link_append(buf, cap, &len, "/sensors/t", attrs, N(attrs));
    if (cap <= need) {
      assert_int_equal(rc, COAP_E_BUFFER_TOO_SMALL);
      assert_int_equal(len, strlen(first));
      assert_memory_equal(buf, first, strlen(first));
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(len, need);
      assert_string_equal(buf, want);
    }
    assert_int_equal(buf[cap], 'G');
    free(buf);
  }
  /* *len already at or past cap. */
  char buf[8] = "abcdefg";
  size_t len = 8;
  assert_int_equal(coap_link_append(buf, 8, &len, "/a", NULL, 0), COAP_E_BUFFER_TOO_SMALL);
  assert_int_equal(len, 8);
}

/* A quoted value holding '"' or '\' is escaped (RFC 6690 quoted-string), so
 * a title cannot end the value early or smuggle in another link. */
static void test_append_escapes_quotes(void **state) {
  (void)state;
  const coap_link_attr_t attrs[] = {{"title", "say \"hi\" \\o/"}};
  expect_link("/a", attrs, 1, "</a>;title=\"say \\\"hi\\\" \\\\o/\"");

  char buf[256];
  size_t len = 0;
  const coap_link_attr_t evil[] = {{"title", "x\",</evil>;rt=\"y"}};
  assert_int_equal(coap_link_append(buf, sizeof buf, &len, "/a", evil, 1), 0);
  assert_int_equal(coap_link_append(buf, sizeof buf, &len, "/b", NULL, 0), 0);
  size_t cursor = 0, href_len, attrs_len;
  const char *href, *raw;
  assert_int_equal(coap_link_next(buf, len, &cursor, &href, &href_len, &raw, &attrs_len), 1);
  assert_int_equal(href_len, 2);
  assert_memory_equal(href, "/a", 2);
  assert_int_equal(coap_link_next(buf, len, &cursor, &href, &href_len, &raw, &attrs_len), 1);
  assert_int_equal(href_len, 2);
  assert_memory_equal(href, "/b", 2); /* not "/evil" */
  assert_int_equal(coap_link_next(buf, len, &cursor, &href, &href_len, &raw, &attrs_len), 0);

  /* Escaping counts against the capacity too. */
  const char *want = "</a>;title=\"say \\\"hi\\\" \\\\o/\"";
  size_t need = strlen(want);
  for (size_t cap = 1; cap <= need; cap++) {
    char *small = malloc(cap + 1);
    assert_non_null(small);
    small[cap] = 'G';
    len = 0;
    assert_int_equal(coap_link_append(small, cap, &len, "/a", attrs, 1), COAP_E_BUFFER_TOO_SMALL);
    assert_int_equal(len, 0);
    assert_int_equal(small[cap], 'G');
    free(small);
  }
}

/* ---- coap_link_matches ---- */

static const coap_link_attr_t temp_attrs[] = {
    {"rt", "temperature-c sensor-x"}, {"if", "core.s"}, {"ct", "40"}, {"obs", NULL},
    {"title", "Room temperature"},
};
#define MATCH(q) coap_link_matches("/sensors/temp", temp_attrs, N(temp_attrs), (q))

static void test_matches_empty_query(void **state) {
  (void)state;
  assert_true(MATCH(NULL));
  assert_true(MATCH(""));
  assert_true(coap_link_matches("/x", NULL, 0, ""));
}

static void test_matches_rt_lists(void **state) {
  (void)state;
  assert_true(MATCH("rt=temperature-c"));
  assert_true(MATCH("rt=sensor-x")); /* second entry of the list */
  assert_false(MATCH("rt=temperature"));
  assert_false(MATCH("rt=temperature-c sensor-x")); /* one entry per query */
  assert_false(MATCH("rt=sensor"));
  assert_false(MATCH("rt=c"));
  assert_true(MATCH("rt=temp*"));
  assert_true(MATCH("rt=sensor*"));
  assert_true(MATCH("rt=*"));
  assert_false(MATCH("rt=light*"));
  assert_false(MATCH("rt="));
  assert_true(MATCH("if=core.s"));
  assert_true(MATCH("if=core*"));
  assert_false(MATCH("if=core"));
  /* Extra spaces in the list do not create empty entries. */
  const coap_link_attr_t spaced[] = {{"rt", "  a   b "}};
  assert_true(coap_link_matches("/s", spaced, 1, "rt=a"));
  assert_true(coap_link_matches("/s", spaced, 1, "rt=b"));
  assert_false(coap_link_matches("/s", spaced, 1, "rt="));
  /* Several rt attributes: any may match. */
  const coap_link_attr_t two[] = {{"rt", "one"}, {"rt", "two"}};
  assert_true(coap_link_matches("/s", two, 2, "rt=two"));
  assert_false(coap_link_matches("/s", two, 2, "rt=three"));
}

static void test_matches_href(void **state) {
  (void)state;
  assert_true(MATCH("href=/sensors/temp"));
  assert_true(MATCH("href=/sensors*"));
  assert_true(MATCH("href=/sensors/temp*"));
  assert_true(MATCH("href=*"));
  assert_false(MATCH("href=/sensors"));
  assert_false(MATCH("href=/sensors/temp2"));
  assert_false(MATCH("href=/act*"));
  assert_false(MATCH("href=/Sensors*"));
  /* href is the link target, not an attribute. */
  const coap_link_attr_t fake[] = {{"href", "/other"}};
  assert_false(coap_link_matches("/real", fake, 1, "href=/other"));
  assert_true(coap_link_matches("/real", fake, 1, "href=/real"));
}

static void test_matches_other_attributes(void **state) {
  (void)state;
  assert_true(MATCH("ct=40"));
  assert_false(MATCH("ct=41"));
  assert_false(MATCH("ct=4"));
  assert_true(MATCH("ct=4*"));
  /* A list of formats matches any one of them, and nothing else. */
  const coap_link_attr_t formats[] = {{"ct", "0 50"}};
  assert_true(coap_link_matches("/time", formats, 1, "ct=50"));
  assert_true(coap_link_matches("/time", formats, 1, "ct=0"));
  assert_false(coap_link_matches("/time", formats, 1, "ct=40"));
  assert_false(coap_link_matches("/time", formats, 1, "ct=0 50"));
  assert_true(MATCH("title=Room temperature"));
  assert_true(MATCH("title=Room*"));
  assert_false(MATCH("title=Room")); /* not a list: whole value */
  assert_false(MATCH("title=temperature"));
  /* Missing attribute: no match, whatever the pattern. */
  assert_false(MATCH("sz=10"));
  assert_false(MATCH("sz=*"));
  assert_false(MATCH("sz"));
  assert_false(MATCH("r=temperature-c"));
  assert_false(MATCH("rtx=temperature-c"));
  assert_false(coap_link_matches("/x", NULL, 0, "rt=a"));
  /* A bare name asks for the attribute to be present. */
  assert_true(MATCH("obs"));
  assert_true(MATCH("ct"));
  assert_false(MATCH("obs=1"));
}

/* ---- coap_link_next ---- */

typedef struct link_view {
  const char *href;
  size_t href_len;
  const char *attrs;
  size_t attrs_len;
} link_view_t;

/* Read every link of |doc|; returns the count, or the negative code. */
static int read_all(const char *doc, size_t len, link_view_t *out, size_t max) {
  size_t cursor = 0;
  int n = 0;
  for (;;) {
    link_view_t v;
    int rc = coap_link_next(doc, len, &cursor, &v.href, &v.href_len, &v.attrs, &v.attrs_len);
    if (rc < 0) return rc;
    if (rc == 0) {
      assert_int_equal(cursor, len);
      return n;
    }
    assert_int_equal(rc, 1);
    assert_true(cursor <= len);
    assert_true(v.href >= doc && v.href + v.href_len <= doc + len);
    assert_true(v.attrs >= doc && v.attrs + v.attrs_len <= doc + len);
    if ((size_t)n < max) out[n] = v;
    n++;
    assert_true(n < 1000);
  }
}

static void expect_view(const link_view_t *v, const char *href, const char *attrs) {
  assert_int_equal(v->href_len, strlen(href));
  assert_memory_equal(v->href, href, v->href_len);
  assert_int_equal(v->attrs_len, strlen(attrs));
  assert_memory_equal(v->attrs, attrs, v->attrs_len);
}

static void test_next_several_links(void **state) {
  (void)state;
  const char *doc =
      "</sensors/temp>;rt=\"temperature-c\";if=\"sensor\","
      "</sensors/light>;rt=\"light-lux\";ct=0,"
      "</a>";
  link_view_t v[4];
  assert_int_equal(read_all(doc, strlen(doc), v, 4), 3);
  expect_view(&v[0], "/sensors/temp", ";rt=\"temperature-c\";if=\"sensor\"");
  expect_view(&v[1], "/sensors/light", ";rt=\"light-lux\";ct=0");
  expect_view(&v[2], "/a", "");
}

static void test_next_quoted_delimiters(void **state) {
  (void)state;
  const char *doc =
      "</t>;title=\"a, b; c\";rt=\"x\","
      "</u>;title=\"<not>,a link\","
      "</v>;title=\"esc \\\" , still\";obs";
  link_view_t v[4];
  assert_int_equal(read_all(doc, strlen(doc), v, 4), 3);
  expect_view(&v[0], "/t", ";title=\"a, b; c\";rt=\"x\"");
  expect_view(&v[1], "/u", ";title=\"<not>,a link\"");
  expect_view(&v[2], "/v", ";title=\"esc \\\" , still\";obs");
}

static void test_next_whitespace_and_end(void **state) {
  (void)state;
  const char *doc = "</a>;ct=40,\r\n</b>,\n </c>;obs\n";
  link_view_t v[4];
  assert_int_equal(read_all(doc, strlen(doc), v, 4), 3);
  expect_view(&v[0], "/a", ";ct=40");
  expect_view(&v[1], "/b", "");
  /* The trailing newline is outside the link text only after the last
   * attribute; what belongs to the link is up to the next ','. */
  assert_int_equal(v[2].href_len, 2);
  assert_memory_equal(v[2].href, "/c", 2);
  assert_memory_equal(v[2].attrs, ";obs", 4);

  /* Empty documents. */
  assert_int_equal(read_all("", 0, v, 4), 0);
  assert_int_equal(read_all(" \n,", 3, v, 4), 0);
  /* doc_len bounds the document, not the NUL. */
  const char *two = "</a>,</b>";
  assert_int_equal(read_all(two, 4, v, 4), 1);
  expect_view(&v[0], "/a", "");
  /* The end is sticky. */
  size_t cursor = 0, hl, al;
  const char *h, *a;
  assert_int_equal(coap_link_next(two, 4, &cursor, &h, &hl, &a, &al), 1);
  assert_int_equal(coap_link_next(two, 4, &cursor, &h, &hl, &a, &al), 0);
  assert_int_equal(coap_link_next(two, 4, &cursor, &h, &hl, &a, &al), 0);
}

static void test_next_malformed(void **state) {
  (void)state;
  static const char *const bad[] = {
      "garbage",
      "<a",
      "</a>;title=\"open",
      "</a>;title=\"ends with escape\\\"",
      "</a>x",
      "</a> ;rt=\"x\"",
      "</a>,oops",
      "</a>;rt=\"x\",</b>;title=\"unterminated",
      ";rt=\"x\"",
  };
  link_view_t v[4];
  for (size_t i = 0; i < N(bad); i++) {
    int rc = read_all(bad[i], strlen(bad[i]), v, 4);
    if (rc >= 0) fail_msg("\"%s\" read as %d links", bad[i], rc);
    assert_int_equal(rc, COAP_E_INVALID_ARG);
  }
  /* The first of "</a>,oops" is still read before the error. */
  size_t cursor = 0, hl, al;
  const char *h, *a;
  const char *doc = "</a>,oops";
  assert_int_equal(coap_link_next(doc, strlen(doc), &cursor, &h, &hl, &a, &al), 1);
  assert_int_equal(coap_link_next(doc, strlen(doc), &cursor, &h, &hl, &a, &al), COAP_E_INVALID_ARG);
}

/* Every prefix of a document is read without touching bytes past it. */
static void test_next_every_prefix(void **state) {
  (void)state;
  const char *doc = "</s/t>;rt=\"temp\";title=\"a,\\\"b\";ct=\"0 50\",</s/l>;obs,</x>";
  size_t n = strlen(doc);
  link_view_t v[4];
  for (size_t len = 0; len <= n; len++) {
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, doc, len);
    int rc = read_all(copy, len, v, 4);
    assert_true(rc == COAP_E_INVALID_ARG || (rc >= 0 && rc <= 3));
    free(copy);
  }
  assert_int_equal(read_all(doc, n, v, 4), 3);
}

/* What coap_link_append writes, coap_link_next reads back. */
static void test_append_then_next(void **state) {
  (void)state;
  char buf[512];
  size_t len = 0;
  const coap_link_attr_t a1[] = {{"rt", "temperature-c"}, {"ct", "0 50"}, {"obs", NULL}};
  const coap_link_attr_t a2[] = {{"title", "Lights, camera; action"}};
  assert_int_equal(coap_link_append(buf, sizeof buf, &len, "/sensors/temp", a1, 3), 0);
  assert_int_equal(coap_link_append(buf, sizeof buf, &len, "/lights", a2, 1), 0);
  assert_int_equal(coap_link_append(buf, sizeof buf, &len, "/.well-known/core", NULL, 0), 0);
  link_view_t v[4];
  assert_int_equal(read_all(buf, len, v, 4), 3);
  expect_view(&v[0], "/sensors/temp", ";rt=\"temperature-c\";ct=\"0 50\";obs");
  expect_view(&v[1], "/lights", ";title=\"Lights, camera; action\"");
  expect_view(&v[2], "/.well-known/core", "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_append_quoting),
      cmocka_unit_test(test_append_ct_forms),
      cmocka_unit_test(test_append_flags_and_no_attrs),
      cmocka_unit_test(test_append_comma_separation),
      cmocka_unit_test(test_append_buffer_too_small),
      cmocka_unit_test(test_append_escapes_quotes),
      cmocka_unit_test(test_matches_empty_query),
      cmocka_unit_test(test_matches_rt_lists),
      cmocka_unit_test(test_matches_href),
      cmocka_unit_test(test_matches_other_attributes),
      cmocka_unit_test(test_next_several_links),
      cmocka_unit_test(test_next_quoted_delimiters),
      cmocka_unit_test(test_next_whitespace_and_end),
      cmocka_unit_test(test_next_malformed),
      cmocka_unit_test(test_next_every_prefix),
      cmocka_unit_test(test_append_then_next),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
