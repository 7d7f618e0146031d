/* coap_resource_create tells a path registered twice (COAP_E_EXISTS) from
 * memory running out (COAP_E_NOMEM); coap_resource_add, which returns
 * only the resource, gives NULL for both. Out of memory is made on
 * purpose through the server's allocator (coap_server_t.zalloc): the
 * first or the second allocation of a registration fails, and nothing is
 * left half-registered or leaked (ASan in the sanitizer build). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/coaps.h"
#include "context/context_internal.h"

static int allocations_left; /* -1: no limit */

static void *failing_zalloc(size_t size) {
  if (allocations_left == 0) return NULL;
  if (allocations_left > 0) allocations_left--;
  return calloc(1, size);
}

static void test_duplicate_is_exists(void **state) {
  coap_context_t *ctx = coap_context_new(NULL);
  assert_non_null(ctx);
  coap_resource_t *r, *again;
  assert_int_equal(coap_resource_create(ctx, "sensors/temp", &r), 0);
  assert_non_null(r);
  assert_string_equal(coap_resource_path(r), "sensors/temp");
  /* the same path, written another way */
  assert_int_equal(coap_resource_create(ctx, "/sensors/temp/", &again), COAP_E_EXISTS);
  assert_null(again);
  assert_null(coap_resource_add(ctx, "sensors/temp"));
  assert_ptr_equal(coap_resource_find(ctx, "sensors/temp"), r);
  coap_context_free(ctx);
}

static void test_out_of_memory_is_nomem(void **state) {
  coap_context_t *ctx = coap_context_new(NULL);
  assert_non_null(ctx);
  ctx->server.zalloc = failing_zalloc;
  coap_resource_t *r;
  for (int fail_at = 0; fail_at < 2; fail_at++) { /* the resource, then its path */
    allocations_left = fail_at;
    assert_int_equal(coap_resource_create(ctx, "x", &r), COAP_E_NOMEM);
    assert_null(r);
    assert_null(coap_resource_find(ctx, "x")); /* nothing half-registered */
    allocations_left = fail_at;
    assert_null(coap_resource_add(ctx, "x"));
  }
  allocations_left = -1;
  assert_int_equal(coap_resource_create(ctx, "x", &r), 0);
  assert_ptr_equal(coap_resource_find(ctx, "x"), r);
  assert_int_equal(coap_resource_create(ctx, "x", &r), COAP_E_EXISTS);
  coap_context_free(ctx);
}

static void test_invalid_arguments(void **state) {
  coap_context_t *ctx = coap_context_new(NULL);
  coap_resource_t *r = (coap_resource_t *)ctx; /* any non-NULL: must be cleared */
  assert_int_equal(coap_resource_create(NULL, "x", &r), COAP_E_INVALID_ARG);
  assert_null(r);
  assert_int_equal(coap_resource_create(ctx, NULL, &r), COAP_E_INVALID_ARG);
  assert_int_equal(coap_resource_create(ctx, "x", NULL), COAP_E_INVALID_ARG);
  assert_null(coap_resource_find(ctx, "x"));
  coap_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_duplicate_is_exists),
      cmocka_unit_test(test_out_of_memory_is_nomem),
      cmocka_unit_test(test_invalid_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
