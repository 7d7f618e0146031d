/* Session-ticket key files (issue 16): the text coap_dtls_set_ticket_keys
 * takes (header, comments, keys, the line of the first mistake) and the
 * file coap_dtls_load_ticket_key_file reads (mode 600 or refused, unless
 * allowed with a warning; a directory, a missing file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "coaps/credentials.h"
#include "coaps/dtls.h"
#include "coaps/error.h"

#define KEY1                                                                                       \
  "1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111" \
  "1111111111111111111111111111111111"
#define KEY2                                                                                       \
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static coap_dtls_context_t *d;
static char dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/coaps-ticketkeys-XXXXXX");
  d = coap_dtls_context_new();
  return d && mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  coap_dtls_context_free(d);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static int set(const char *text) {
  return coap_dtls_set_ticket_keys(d, text, strlen(text));
}

static void test_current_and_previous_keys(void **state) {
  (void)state;
  assert_int_equal(set("coaps-ticket-keys 1\n" KEY1 "\n"), 1);
  assert_int_equal(set("# made by hand\n\n  coaps-ticket-keys 1\r\n" KEY1 "\r\n# previous\n" KEY2),
                   2);
  /* Upper-case hex is hex too. */
  assert_int_equal(set("coaps-ticket-keys 1\n"
                       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"),
                   1);
}

static void expect_refused(const char *text, const char *said) {
  assert_int_equal(set(text), COAP_E_DTLS_CREDENTIALS);
  const char *why = coap_dtls_context_last_error(d);
  if (!strstr(why, said)) fail_msg("'%s' does not say '%s'", why, said);
  /* Keys never appear in messages. */
  assert_null(strstr(why, "1111111111"));
}

static void test_bad_text_names_the_line(void **state) {
  (void)state;
  expect_refused("", "empty");
  expect_refused("# only a comment\n", "empty");
  expect_refused(KEY1 "\n", "line 1: not a coaps ticket key file");
  expect_refused("coaps-ticket-keys 2\n" KEY1 "\n", "line 1: not a coaps ticket key file");
  expect_refused("coaps-ticket-keys 1\n", "no key in it");
  expect_refused("coaps-ticket-keys 1\n" KEY1 "\n1234\n", "line 3: not a key (128 hex digits");
  expect_refused("coaps-ticket-keys 1\n#\n" KEY1 "0\n", "line 3: not a key");
  expect_refused("coaps-ticket-keys 1\n" KEY1 " extra\n", "line 2: not a key");
  char bad[] = "coaps-ticket-keys 1\n" KEY1 "\n";
  bad[25] = 'g';
  expect_refused(bad, "line 2: not a key");
}

static void test_null_arguments(void **state) {
  (void)state;
  assert_int_equal(coap_dtls_set_ticket_keys(NULL, "x", 1), COAP_E_INVALID_ARG);
  assert_int_equal(coap_dtls_set_ticket_keys(d, NULL, 1), COAP_E_INVALID_ARG);
  assert_int_equal(coap_dtls_set_ticket_keys(d, NULL, 0), COAP_E_DTLS_CREDENTIALS);
}

static const char *write_keys(const char *name, mode_t mode) {
  static char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("coaps-ticket-keys 1\n" KEY1 "\n" KEY2 "\n", f);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(chmod(path, mode), 0);
  return path;
}

static void test_file_checks(void **state) {
  (void)state;
  char why[640];
  const char *p = write_keys("keys", 0600);
  assert_int_equal(coap_dtls_load_ticket_key_file(d, p, 0, why, sizeof why), 2);
  assert_string_equal(why, "");
  p = write_keys("open", 0644);
  assert_int_equal(coap_dtls_load_ticket_key_file(d, p, 0, why, sizeof why),
                   COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(why, "group or others may read this key file (mode 0644): chmod 600"));
  assert_non_null(strstr(coap_dtls_context_last_error(d), "chmod 600"));
  assert_int_equal(
      coap_dtls_load_ticket_key_file(d, p, COAP_KEY_FILE_ALLOW_INSECURE, why, sizeof why), 2);
  assert_non_null(strstr(why, "taken as allowed"));
  assert_int_equal(coap_dtls_load_ticket_key_file(d, dir, 0, why, sizeof why),
                   COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(why, "is a directory, not a ticket key file"));
  char missing[128];
  snprintf(missing, sizeof missing, "%s/missing", dir);
  assert_int_equal(coap_dtls_load_ticket_key_file(d, missing, 0, why, sizeof why),
                   COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(why, "cannot open the ticket key file"));
  char bad[128];
  snprintf(bad, sizeof bad, "%s/bad", dir);
  FILE *f = fopen(bad, "w");
  fputs("coaps-ticket-keys 1\nnot hex\n", f);
  fclose(f);
  chmod(bad, 0600);
  assert_int_equal(coap_dtls_load_ticket_key_file(d, bad, 0, why, sizeof why),
                   COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(why, "line 2: not a key"));
  assert_non_null(strstr(why, bad));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_current_and_previous_keys),
      cmocka_unit_test(test_bad_text_names_the_line),
      cmocka_unit_test(test_null_arguments),
      cmocka_unit_test(test_file_checks),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
