/* Established sessions run on keys exported from GnuTLS (a few hundred
 * bytes instead of a GnuTLS session): many requests on one session, every
 * AEAD suite we offer, replayed and forged records. Each suite runs three
 * times: with only the server compacting (the client is GnuTLS's own
 * record layer, so every exchange checks our server's framing, nonces and
 * additional data against it), with only the client compacting (the same
 * check of our client against GnuTLS's server), and with both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "support_dtls_pair.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *client;
static int handler_calls;

static uint8_t last_from_client[1500];
static size_t last_from_client_len;

static int remember_client_datagrams(void *user, const simnet_node_t *from,
                                     const coap_address_t *to, const uint8_t *data, size_t len,
                                     unsigned seq) {
  if (from == client && len <= sizeof last_from_client) {
    memcpy(last_from_client, data, len);
    last_from_client_len = len;
  }
  return 0;
}

static void psk_compact(simnet_node_t *node, const char *priority, int compact) {
  coap_dtls_context_t *d = node == server ? dtls_pair_server_dtls(node, DTLS_PAIR_PSK)
                                          : dtls_pair_client_dtls(node, DTLS_PAIR_PSK);
  assert_int_equal(coap_dtls_set_compact_sessions(d, compact), 0);
  if (priority) assert_int_equal(coap_dtls_set_priority(d, priority), 0);
  dtls_pair_install(node, d);
}

static void psk(simnet_node_t *node, const char *priority) {
  psk_compact(node, priority, 1);
}

static int setup(void **state) {
  dtls_pair_start(&net, NULL, &server, &client);
  dtls_pair_add_hello(server, &handler_calls);
  handler_calls = 0;
  net.filter = remember_client_datagrams;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static void get_ok(int expected_call) {
  dtls_pair_get_hello(client, expected_call);
}

static void many_requests_on(const char *priority, int server_compacts, int client_compacts) {
  psk_compact(server, NULL, server_compacts);
  psk_compact(client, priority, client_compacts);
  for (int i = 1; i <= 20; i++) get_ok(i);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 1);
  assert_int_equal(st.dtls_failures, 0);
  assert_int_equal(st.dtls_compacted, server_compacts); /* 19 requests on exported keys */
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_failures, 0);
  assert_int_equal(st.dtls_compacted, client_compacts); /* 19 replies on exported keys */
}

static void many_requests(const char *priority) {
  many_requests_on(priority, 1, 0);
  teardown(NULL);
  setup(NULL);
  many_requests_on(priority, 0, 1);
  teardown(NULL);
  setup(NULL);
  many_requests_on(priority, 1, 1);
}

#define ONLY(cipher) \
  "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+" cipher ":-MAC-ALL:+AEAD"

static void test_aes_128_ccm_8(void **state) {
  many_requests(ONLY("AES-128-CCM-8"));
}
static void test_aes_128_ccm(void **state) {
  many_requests(ONLY("AES-128-CCM"));
}
static void test_aes_128_gcm(void **state) {
  many_requests(ONLY("AES-128-GCM"));
}
static void test_aes_256_gcm(void **state) {
  many_requests(ONLY("AES-256-GCM"));
}
static void test_chacha20_poly1305(void **state) {
  many_requests(ONLY("CHACHA20-POLY1305"));
}

static void test_replayed_record_is_dropped(void **state) {
  psk(server, NULL);
  psk(client, NULL);
  get_ok(1); /* read by GnuTLS; the session is compacted after it */
  uint8_t first[1500];
  size_t first_len = last_from_client_len;
  memcpy(first, last_from_client, first_len);
  get_ok(2); /* this one went to the exported keys */
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_compacted, 1);
  uint8_t replay[1500];
  size_t len = last_from_client_len;
  memcpy(replay, last_from_client, len);
  coap_stats_t before, after;
  coap_context_get_stats(server->ctx, &before);
  coap_context_input(server->ctx, server->ep, &client->addr, replay, len, net.now);
  /* The record GnuTLS read before the keys were exported: the window
   * knows it too. */
  coap_context_input(server->ctx, server->ep, &client->addr, first, first_len, net.now);
  /* The same record with one bit flipped in its ciphertext: forged. */
  replay[len - 1] ^= 1;
  coap_context_input(server->ctx, server->ep, &client->addr, replay, len, net.now);
  simnet_run_until(&net, net.now + 100);
  coap_context_get_stats(server->ctx, &after);
  /* Dropped by the record layer: the message layer never saw them. */
  assert_int_equal(after.rx_duplicates, before.rx_duplicates);
  assert_int_equal(after.rx_malformed, before.rx_malformed);
  assert_int_equal(handler_calls, 2);
  get_ok(3); /* the session is unharmed */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_aes_128_ccm_8, setup, teardown),
      cmocka_unit_test_setup_teardown(test_aes_128_ccm, setup, teardown),
      cmocka_unit_test_setup_teardown(test_aes_128_gcm, setup, teardown),
      cmocka_unit_test_setup_teardown(test_aes_256_gcm, setup, teardown),
      cmocka_unit_test_setup_teardown(test_chacha20_poly1305, setup, teardown),
      cmocka_unit_test_setup_teardown(test_replayed_record_is_dropped, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
