/* The version: the header's macros agree with each other and with the
 * library the test links (coaps_version(), coaps_version_num()), and the
 * umbrella header brings them. The shared library is checked the same way
 * by the install tests (tests/interop/install_*.sh), from outside. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/coaps.h" /* the umbrella, not coaps/version.h: it must include it */

#ifndef COAPS_VERSION_NUM
#error "coaps/coaps.h does not bring coaps/version.h"
#endif
/* Usable in #if, as the header promises. */
#if COAPS_VERSION_NUM < 0x000100
#error "COAPS_VERSION_NUM is below 0.1.0, the first release"
#endif

static void test_header_parts_agree(void **state) {
  char text[32];
  snprintf(text, sizeof text, "%d.%d.%d", COAPS_VERSION_MAJOR, COAPS_VERSION_MINOR,
           COAPS_VERSION_PATCH);
  assert_string_equal(text, COAPS_VERSION);
  assert_int_equal(COAPS_VERSION_NUM,
                   (COAPS_VERSION_MAJOR << 16) | (COAPS_VERSION_MINOR << 8) | COAPS_VERSION_PATCH);
  /* 0xMMmmpp: each part has its own byte. */
  assert_in_range(COAPS_VERSION_MINOR, 0, 255);
  assert_in_range(COAPS_VERSION_PATCH, 0, 255);
}

static void test_library_agrees_with_header(void **state) {
  const char *v = coaps_version();
  assert_non_null(v);
  assert_string_equal(v, COAPS_VERSION);
  assert_int_equal(coaps_version_num(), COAPS_VERSION_NUM);
  /* A static string: the same pointer every time, nothing to free. */
  assert_ptr_equal(coaps_version(), v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_header_parts_agree),
      cmocka_unit_test(test_library_agrees_with_header),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
