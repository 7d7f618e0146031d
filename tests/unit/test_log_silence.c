/* The library is silent by default: a context made with the defaults
 * writes nothing to stderr when something fails, until the application
 * raises the level (then the default logger writes to stderr) or
 * installs a logger (which then gets errors and warnings). The failure
 * used is one that logs at COAP_LOG_ERROR: a PSK hex key that is not
 * hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "coaps/context.h"
#include "coaps/dtls.h"

/* Runs one failing configuration call on |d| (a context's DTLS
 * configuration, logging through the context's logger) with stderr
 * captured; returns what reached stderr (static buffer). */
static const char *stderr_of_failure(coap_dtls_context_t *d) {
  static char seen[1024];
  fflush(stderr);
  FILE *tmp = tmpfile();
  assert_non_null(tmp);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);

  assert_non_null(d);
  assert_true(coap_dtls_set_psk_hex(d, "id", "zz") < 0);

  fflush(stderr);
  assert_true(dup2(saved, STDERR_FILENO) >= 0);
  close(saved);
  rewind(tmp);
  size_t n = fread(seen, 1, sizeof seen - 1, tmp);
  seen[n] = '\0';
  fclose(tmp);
  return seen;
}

static void test_defaults_write_nothing(void **state) {
  (void)state;
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  assert_null(cfg.log);
  assert_int_equal(cfg.log_level, COAP_LOG_NONE);
  coap_context_t *ctx = coap_context_new(&cfg);
  assert_non_null(ctx);
  coap_dtls_context_t *d = coap_dtls_new_context(ctx); /* owned by ctx */
  assert_string_equal(stderr_of_failure(d), "");
  coap_context_free(ctx);
}

static void test_null_config_writes_nothing(void **state) {
  (void)state;
  coap_context_t *ctx = coap_context_new(NULL);
  assert_non_null(ctx);
  coap_dtls_context_t *d = coap_dtls_new_context(ctx); /* owned by ctx */
  assert_string_equal(stderr_of_failure(d), "");
  coap_context_free(ctx);
}

static void test_raised_level_writes_to_stderr(void **state) {
  (void)state;
  coap_context_t *ctx = coap_context_new(NULL);
  assert_non_null(ctx);
  coap_dtls_context_t *d = coap_dtls_new_context(ctx); /* owned by ctx */
  coap_context_set_log_level(ctx, COAP_LOG_ERROR);
  assert_non_null(strstr(stderr_of_failure(d), "non-hex character"));
  /* And back down: silent again. */
  coap_context_set_log_level(ctx, COAP_LOG_NONE);
  assert_string_equal(stderr_of_failure(d), "");
  coap_context_free(ctx);
}

typedef struct {
  int lines;
  coap_log_level_t level;
  char last[256];
} caught_t;

static void catch_line(void *user, coap_log_level_t level, const char *line) {
  caught_t *c = user;
  c->lines++;
  c->level = level;
  snprintf(c->last, sizeof c->last, "%s", line);
}

static void test_installed_logger_gets_errors(void **state) {
  (void)state;
  caught_t caught = {0};
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.log = catch_line;
  cfg.log_user = &caught;
  coap_context_t *ctx = coap_context_new(&cfg);
  assert_non_null(ctx);
  coap_dtls_context_t *d = coap_dtls_new_context(ctx); /* owned by ctx */
  assert_string_equal(stderr_of_failure(d), "");
  assert_int_equal(caught.lines, 1);
  assert_int_equal(caught.level, COAP_LOG_ERROR);
  assert_non_null(strstr(caught.last, "non-hex character"));
  coap_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_write_nothing),
      cmocka_unit_test(test_null_config_writes_nothing),
      cmocka_unit_test(test_raised_level_writes_to_stderr),
      cmocka_unit_test(test_installed_logger_gets_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
