/* RFC 7641 §3.4: which of two notifications is newer, by their 24-bit
 * sequence numbers (which wrap) and the times they arrived. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "coaps/wire.h"

#define S2_23 (1u << 23)
#define S2_24 (1u << 24)

static void test_ahead_by_less_than_half_is_newer(void **state) {
  assert_true(coap_observe_is_newer(1, 0, 2, 0));
  assert_true(coap_observe_is_newer(0, 0, S2_23 - 1, 0));
  assert_false(coap_observe_is_newer(2, 0, 1, 0));
  /* The same number is not newer: a duplicate. */
  assert_false(coap_observe_is_newer(5, 0, 5, 0));
  assert_false(coap_observe_is_newer(5, 1000, 5, 1000));
}

static void test_exactly_half_apart_is_neither(void **state) {
  /* V2 - V1 == 2^23 and V1 - V2 == 2^23 satisfy neither strict rule. */
  assert_false(coap_observe_is_newer(0, 0, S2_23, 0));
  assert_false(coap_observe_is_newer(S2_23, 0, 0, 0));
  /* One closer either way decides. */
  assert_true(coap_observe_is_newer(1, 0, S2_23, 0));
  assert_true(coap_observe_is_newer(S2_23 + 1, 0, 0, 0));
}

static void test_wrap_around(void **state) {
  /* 2^24 - 1 is followed by 0, 1, ... */
  assert_true(coap_observe_is_newer(S2_24 - 1, 0, 0, 0));
  assert_true(coap_observe_is_newer(S2_24 - 1, 0, 5, 0));
  assert_true(coap_observe_is_newer(S2_24 - 10, 0, 3, 0));
  /* ... and they are older than it the other way round. */
  assert_false(coap_observe_is_newer(0, 0, S2_24 - 1, 0));
  assert_false(coap_observe_is_newer(3, 0, S2_24 - 10, 0));
  /* Far behind after the wrap is still older. */
  assert_false(coap_observe_is_newer(10, 0, S2_24 - S2_23 + 20, 0));
  assert_true(coap_observe_is_newer(S2_24 - S2_23 + 20, 0, 10, 0));
}

static void test_128_seconds_make_anything_newer(void **state) {
  /* Older by number, but more than 128 s later: newer. */
  assert_true(coap_observe_is_newer(100, 1000, 50, 1000 + 128001));
  assert_true(coap_observe_is_newer(7, 0, 7, 128001));
  /* Exactly 128 s is not "more than". */
  assert_false(coap_observe_is_newer(100, 1000, 50, 1000 + 128000));
  assert_false(coap_observe_is_newer(100, 1000, 50, 1000 + 127999));
  /* Time going backwards never helps. */
  assert_false(coap_observe_is_newer(100, 200000, 50, 1000));
}

static void test_only_24_bits_count(void **state) {
  /* Bits above 24 are no part of the number. */
  assert_false(coap_observe_is_newer(5 | S2_24, 0, 5, 0));
  assert_true(coap_observe_is_newer(5 | S2_24, 0, 6, 0));
  assert_true(coap_observe_is_newer(0xffffffffu, 0, 0, 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ahead_by_less_than_half_is_newer),
      cmocka_unit_test(test_exactly_half_apart_is_neither),
      cmocka_unit_test(test_wrap_around),
      cmocka_unit_test(test_128_seconds_make_anything_newer),
      cmocka_unit_test(test_only_24_bits_count),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
