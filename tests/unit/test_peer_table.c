/* The peer table: hash lookup by (endpoint, address) across growth, and the
 * recency list a full table evicts from — oldest first, a touched entry
 * becomes the newest, removal anywhere keeps the list whole, tear-down
 * with the cursor visits every entry once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "peer/peer_table.h"

#define N 300

static coap_peer_table_t t;
static coap_endpoint_t *ep = (coap_endpoint_t *)&t; /* any distinct pointer */
static coap_address_t addr[N];
static coap_peer_t *peer[N];

static int setup(void **state) {
  assert_int_equal(coap_peer_table_init(&t, 0x1234), 0);
  for (int i = 0; i < N; i++) {
    char host[32];
    snprintf(host, sizeof host, "10.1.%d.%d", i / 200, i % 200);
    assert_int_equal(coap_address_from_string(&addr[i], host, (uint16_t)(5000 + i)), 0);
    peer[i] = coap_peer_table_add(&t, ep, &addr[i]);
    assert_non_null(peer[i]);
  }
  return 0;
}

static int teardown(void **state) {
  size_t cursor = 0;
  coap_peer_t *p;
  while ((p = coap_peer_table_any(&t, &cursor))) coap_peer_table_remove(&t, p);
  assert_int_equal(t.count, 0);
  assert_null(coap_peer_table_oldest(&t));
  coap_peer_table_free(&t);
  return 0;
}

/* The recency list from the oldest, as indexes into peer[]; also checks
 * that it has exactly t.count entries. */
static void expect_order(const int *want, size_t n) {
  size_t i = 0;
  for (coap_peer_t *p = coap_peer_table_oldest(&t); p; p = coap_peer_newer(p), i++) {
    assert_true(i < n);
    assert_ptr_equal(p, peer[want[i]]);
  }
  assert_int_equal(i, n);
  assert_int_equal(t.count, n);
}

static void test_find_after_growth(void **state) {
  for (int i = 0; i < N; i++) assert_ptr_equal(coap_peer_table_find(&t, ep, &addr[i]), peer[i]);
  coap_address_t other;
  coap_address_from_string(&other, "10.1.0.0", 4999); /* a known host, another port */
  assert_null(coap_peer_table_find(&t, ep, &other));
  assert_null(coap_peer_table_find(&t, (coap_endpoint_t *)&other, &addr[0]));
}

static void test_oldest_first_and_touch(void **state) {
  /* Cut down to 4 entries to see the whole order. */
  for (int i = 4; i < N; i++) coap_peer_table_remove(&t, peer[i]);
  expect_order((const int[]){0, 1, 2, 3}, 4);
  coap_peer_table_touch(&t, peer[0]); /* the oldest */
  expect_order((const int[]){1, 2, 3, 0}, 4);
  coap_peer_table_touch(&t, peer[2]); /* a middle one */
  expect_order((const int[]){1, 3, 0, 2}, 4);
  coap_peer_table_touch(&t, peer[2]); /* the newest already */
  expect_order((const int[]){1, 3, 0, 2}, 4);
}

static void test_remove_keeps_list_whole(void **state) {
  for (int i = 4; i < N; i++) coap_peer_table_remove(&t, peer[i]);
  coap_peer_table_remove(&t, peer[1]); /* middle */
  expect_order((const int[]){0, 2, 3}, 3);
  coap_peer_table_remove(&t, peer[3]); /* newest */
  expect_order((const int[]){0, 2}, 2);
  coap_peer_table_remove(&t, peer[0]); /* oldest */
  expect_order((const int[]){2}, 1);
  coap_peer_table_touch(&t, peer[2]);
  expect_order((const int[]){2}, 1);
  peer[1] = coap_peer_table_add(&t, ep, &addr[1]);
  expect_order((const int[]){2, 1}, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_find_after_growth, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oldest_first_and_touch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_remove_keeps_list_whole, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
