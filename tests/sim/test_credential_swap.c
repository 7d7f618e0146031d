/* Swapping a server's credentials while it runs (coaps/credentials.h): a
 * PSK table replaced by another keeps the sessions of identities still
 * there (no new handshake), ends the ones removed with a close_notify
 * (coap_context_end_revoked_sessions), refuses the removed identity's
 * resumption and new handshakes with the right cause, and frees the old
 * configuration once its last session has gone (ASan run too).
 * coap_context_end_sessions ends sessions a callback picks, or all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/credentials.h"
#include "coaps/diag.h"
#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *a, *b;

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

static coap_psk_table_t *table_of(const char *text) {
  coap_psk_table_t *t = coap_psk_table_new(0);
  char why[128];
  assert_true(coap_psk_table_parse(t, "t", text, strlen(text), why, sizeof why) > 0);
  return t;
}

/* A server configuration serving |text|'s identities. */
static coap_dtls_context_t *server_config(const char *text) {
  coap_dtls_context_t *d = coap_dtls_context_new();
  coap_psk_table_t *t = table_of(text);
  assert_int_equal(coap_dtls_set_psk_table(d, t), 0);
  coap_psk_table_free(t);
  return d;
}

static simnet_node_t *client(uint16_t port, const char *identity, const char *key) {
  simnet_node_t *n = simnet_add_node(&net, port, COAP_PROTO_DTLS, NULL);
  coap_dtls_context_t *d = coap_dtls_new_context(n->ctx);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)identity, (const uint8_t *)key, strlen(key)), 0);
  assert_int_equal(coap_context_set_dtls_context(n->ctx, d), 0);
  return n;
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  coap_context_set_dtls_context(server->ctx, server_config("dev-1 key1\ndev-2 key2\n"));
  coap_resource_set_handler(coap_resource_add(server->ctx, "hello"), COAP_GET, hello, NULL);
  a = client(40000, "dev-1", "key1");
  b = client(40001, "dev-2", "key2");
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static int get(simnet_node_t *node) {
  sim_reply_t box;
  sim_get(node, "coaps://10.0.0.1/hello", &box, 60000);
  return box.status == 0 && box.code == COAP_CONTENT ? 0 : box.status < 0 ? box.status : -1;
}

static coap_stats_t stats(simnet_node_t *node) {
  coap_stats_t st;
  coap_context_get_stats(node->ctx, &st);
  return st;
}

static void swap_in(const char *text) {
  coap_dtls_context_t *d = server_config(text);
  assert_int_equal(coap_dtls_share_keys(d, coap_context_dtls(server->ctx)), 0);
  assert_int_equal(coap_context_set_dtls_context(server->ctx, d), 0);
}

static void test_revoked_identity_is_out(void **state) {
  assert_int_equal(get(a), 0);
  assert_int_equal(get(b), 0);
  assert_int_equal(stats(server).dtls_handshakes, 2);
  swap_in("dev-1 key1\ndev-3 key3\n");
  /* Nothing ends by the swap alone ... */
  assert_int_equal(stats(server).peers, 2);
  /* ... the call ends dev-2's session, not dev-1's. */
  assert_int_equal(coap_context_end_revoked_sessions(server->ctx), 1);
  assert_int_equal(stats(server).peers, 1);
  simnet_run_until(&net, net.now + 100); /* the close_notify reaches b */
  /* dev-1 goes on over its session, begun under the old configuration. */
  assert_int_equal(get(a), 0);
  assert_int_equal(stats(server).dtls_handshakes, 2);
  /* dev-2 cannot come back: neither by resuming nor by a new handshake. */
  assert_true(get(b) < 0);
  coap_diag_t g;
  assert_int_equal(coap_context_last_diag(b->ctx, &g), 0);
  assert_int_equal(g.cause, COAP_CAUSE_PSK_UNKNOWN_IDENTITY);
  assert_true(get(b) < 0);
  assert_int_equal(coap_context_last_diag(b->ctx, &g), 0);
  assert_int_equal(g.cause, COAP_CAUSE_PSK_UNKNOWN_IDENTITY);
  /* A second call finds nothing more to end. */
  assert_int_equal(coap_context_end_revoked_sessions(server->ctx), 0);
}

static void test_new_identity_works_without_restart(void **state) {
  simnet_node_t *c = client(40002, "dev-3", "key3");
  assert_true(get(c) < 0);
  swap_in("dev-1 key1\ndev-2 key2\ndev-3 key3\n");
  assert_int_equal(coap_context_end_revoked_sessions(server->ctx), 0);
  assert_int_equal(get(c), 0);
}

static int pick_dev1(void *user, const coap_session_info_t *info) {
  int *seen = user;
  (*seen)++;
  assert_non_null(info->peer);
  assert_true(info->established);
  assert_false(info->client);
  assert_null(info->rpk_fingerprint);
  return info->psk_identity && strcmp(info->psk_identity, "dev-1") == 0;
}

static void test_end_sessions_by_callback_and_all(void **state) {
  assert_int_equal(get(a), 0);
  assert_int_equal(get(b), 0);
  int seen = 0;
  assert_int_equal(coap_context_end_sessions(server->ctx, pick_dev1, &seen), 1);
  assert_int_equal(seen, 2);
  assert_int_equal(stats(server).peers, 1);
  assert_int_equal(coap_context_end_sessions(server->ctx, NULL, NULL), 1);
  assert_int_equal(stats(server).peers, 0);
  /* Both come back with a new session (their identities are still known). */
  simnet_run_until(&net, net.now + 100);
  assert_int_equal(get(a), 0);
  assert_int_equal(get(b), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_revoked_identity_is_out, setup, teardown),
      cmocka_unit_test_setup_teardown(test_new_identity_works_without_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_end_sessions_by_callback_and_all, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
