/* The versioned getters with real content, on the simulated network: a
 * PSK handshake's report, and a failed one's diagnosis and counters, each
 * written into a buffer of exactly its version 1 length between guard
 * bytes (poisoned under ASan). tests/unit/test_abi_versions.c checks the
 * version 1 layouts themselves and the refusal of unknown versions; here
 * the library has something to write, so writing past the caller's
 * struct would show. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "common/abi.h"
#include "support_reply.h"
#include "support_simnet.h"

#if defined(__SANITIZE_ADDRESS__)
#define ABI_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ABI_TEST_ASAN 1
#endif
#endif
#ifdef ABI_TEST_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define GUARD 64
#define GUARD_BYTE 0xA5

typedef struct guarded {
  uint8_t *mem; /* GUARD | len | GUARD */
  size_t len;
} guarded_t;

/* Version 1 of struct |id|: |len| bytes between guards, filled with 0x5C. */
static void *guarded_v1(guarded_t *g, coap_abi_id_t id) {
  g->len = coap_abi_struct(id)->len[0];
  g->mem = malloc(g->len + 2 * GUARD);
  assert_non_null(g->mem);
  memset(g->mem, GUARD_BYTE, g->len + 2 * GUARD);
  memset(g->mem + GUARD, 0x5C, g->len);
  POISON(g->mem, GUARD);
  POISON(g->mem + GUARD + g->len, GUARD);
  return g->mem + GUARD;
}

static void guarded_check_free(guarded_t *g) {
  UNPOISON(g->mem, GUARD);
  UNPOISON(g->mem + GUARD + g->len, GUARD);
  for (size_t i = 0; i < GUARD; i++) {
    assert_int_equal(g->mem[i], GUARD_BYTE);
    assert_int_equal(g->mem[GUARD + g->len + i], GUARD_BYTE);
  }
  free(g->mem);
}

static simnet_t net;
static simnet_node_t *server, *client;

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

static void psk(simnet_node_t *node, const char *key) {
  coap_dtls_context_t *d = coap_dtls_new_context(node->ctx);
  assert_non_null(d);
  assert_int_equal(coap_context_set_dtls_context(node->ctx, d), 0);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"device-1", (const uint8_t *)key, strlen(key)), 0);
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL); /* 10.0.0.1 */
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  coap_resource_set_handler(coap_resource_add(server->ctx, "hello"), COAP_GET, hello, NULL);
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static void test_handshake_report_v1(void **state) {
  psk(server, "0123456789abcdef");
  psk(client, "0123456789abcdef");
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 120000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);

  guarded_t g;
  coap_handshake_report_t *rep = guarded_v1(&g, COAP_ABI_HANDSHAKE_REPORT);
  assert_int_equal(
      coap_context_last_handshake_versioned(client->ctx, COAP_HANDSHAKE_REPORT_V1, rep), 0);
  /* Fields of version 1 only: the struct ends at the guard. */
  assert_int_equal(rep->established, 1);
  assert_string_equal(rep->mode, "psk");
  assert_non_null(strstr(rep->suite, "PSK"));
  assert_int_equal(rep->step, COAP_STEP_ESTABLISHED);
  assert_true(rep->step_ms[COAP_STEP_ESTABLISHED] > 0);
  assert_int_equal(rep->diag.cause, COAP_CAUSE_NONE);
  guarded_check_free(&g);

  guarded_t gs;
  coap_stats_t *st = guarded_v1(&gs, COAP_ABI_STATS);
  assert_int_equal(coap_context_get_stats_versioned(client->ctx, COAP_STATS_V1, st), 0);
  assert_int_equal(st->dtls_handshakes, 1);
  assert_int_equal(st->rx_too_large, 0); /* the last counter before the array */
  for (int c = 0; c < COAP_STATS_CAUSE_SLOTS; c++) assert_int_equal(st->failures_by_cause[c], 0);
  guarded_check_free(&gs);
}

static void test_failed_handshake_diag_v1(void **state) {
  psk(server, "0123456789abcdef");
  psk(client, "fedcba9876543210"); /* same identity, another key */
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 120000);
  assert_true(b.status < 0);

  guarded_t gd;
  coap_diag_t *d = guarded_v1(&gd, COAP_ABI_DIAG);
  assert_int_equal(coap_context_last_diag_versioned(client->ctx, COAP_DIAG_V1, d), 0);
  assert_int_equal(d->cause, COAP_CAUSE_PSK_KEY_MISMATCH);
  assert_true(d->explanation[0] != '\0');
  assert_non_null(memchr(d->fix, '\0', sizeof d->fix));
  guarded_check_free(&gd);

  guarded_t gr;
  coap_handshake_report_t *rep = guarded_v1(&gr, COAP_ABI_HANDSHAKE_REPORT);
  assert_int_equal(
      coap_context_last_handshake_versioned(client->ctx, COAP_HANDSHAKE_REPORT_V1, rep), 0);
  assert_int_equal(rep->established, 0);
  assert_int_equal(rep->diag.cause, COAP_CAUSE_PSK_KEY_MISMATCH);
  guarded_check_free(&gr);

  guarded_t gs;
  coap_stats_t *st = guarded_v1(&gs, COAP_ABI_STATS);
  assert_int_equal(coap_context_get_stats_versioned(client->ctx, COAP_STATS_V1, st), 0);
  assert_int_equal(st->failures_by_cause[COAP_CAUSE_PSK_KEY_MISMATCH], 1);
  guarded_check_free(&gs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_handshake_report_v1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_handshake_diag_v1, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
