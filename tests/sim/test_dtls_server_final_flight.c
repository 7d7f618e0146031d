/* In a full handshake the server sends the last flight (NewSessionTicket,
 * ChangeCipherSpec, Finished); when it is lost, only the client's flight
 * coming again says so, and the server must send its flight again then
 * (RFC 6347 §4.2.4). GnuTLS does only if its retransmission timeout has
 * passed since it last sent: a client's repeat that arrives a little
 * earlier than that is ignored, and the client waits a whole doubled
 * timeout for its next one (libcoap's client gives up after a few). Here:
 * the client's flight arrives 20 ms late, the server's answer is lost, the
 * client's first repeat (980 ms after the server's flight) must be
 * answered at once. A forged repeat (the client's flight replayed by
 * someone else) gets no more than one copy per repeat. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"

#define ONE_WAY_MS 10
#define HS_CLIENT_KEY_EXCHANGE 16
#define HS_NEW_SESSION_TICKET 4

static simnet_t net;
static simnet_node_t *server, *client;
static unsigned client_finals, server_finals; /* flights seen */
static unsigned lose_server_finals;           /* the first ones lost */

static int is_flight(const uint8_t *d, size_t len, uint8_t hs_type) {
  return len > 13 && d[0] == 22 && d[3] == 0 && d[4] == 0 && d[13] == hs_type;
}

/* |net.latency_ms| is read as each datagram is queued, after the filter. */
static int filter(void *user, const simnet_node_t *from, const coap_address_t *to,
                  const uint8_t *data, size_t len, unsigned seq) {
  net.latency_ms = ONE_WAY_MS;
  if (from == client && is_flight(data, len, HS_CLIENT_KEY_EXCHANGE)) {
    if (++client_finals == 1) net.latency_ms = ONE_WAY_MS + 20;
    return 0;
  }
  if (from == server && is_flight(data, len, HS_NEW_SESSION_TICKET))
    return ++server_finals <= lose_server_finals;
  return 0;
}

static void hi(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
               coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

static int setup(void **state) {
  simnet_init(&net);
  net.latency_ms = ONE_WAY_MS;
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  coap_dtls_context_t *s = coap_dtls_new_context(server->ctx);
  coap_dtls_context_t *c = coap_dtls_new_context(client->ctx);
  assert_non_null(s);
  assert_non_null(c);
  assert_int_equal(coap_dtls_set_psk(s, (const uint8_t *)"dev", (const uint8_t *)"k3y", 3), 0);
  assert_int_equal(coap_dtls_set_psk(c, (const uint8_t *)"dev", (const uint8_t *)"k3y", 3), 0);
  assert_int_equal(coap_context_set_dtls_context(server->ctx, s), 0);
  assert_int_equal(coap_context_set_dtls_context(client->ctx, c), 0);
  coap_resource_set_handler(coap_resource_add(server->ctx, "hi"), COAP_GET, hi, NULL);
  net.filter = filter;
  client_finals = server_finals = 0;
  lose_server_finals = 1;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static uint64_t client_handshakes(void) {
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  return st.dtls_handshakes;
}

/* Runs a GET through a full handshake; returns when the client's session
 * was established, in ms after the client's flight first went out. */
static uint64_t get_through_lossy_final_flight(sim_reply_t *b) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hi");
  sim_send(client, &o, b);
  uint64_t t0 = net.now, flight_at = 0, done_at = 0;
  while (!b->done && net.now < t0 + 60000) {
    simnet_run_until(&net, net.now + 1);
    if (!flight_at && client_finals) flight_at = net.now;
    if (!done_at && client_handshakes() == 1) done_at = net.now;
  }
  assert_true(b->done);
  assert_int_equal(b->status, 0);
  assert_int_equal(b->code, COAP_CONTENT);
  assert_true(flight_at > 0 && done_at > flight_at);
  return done_at - flight_at;
}

static void test_lost_final_flight_resent_on_early_repeat(void **state) {
  static sim_reply_t b; /* outlives a failed test: teardown may still call back */
  uint64_t took = get_through_lossy_final_flight(&b);
  /* The path did what the case needs: the server's first final flight
   * lost, the client's flight repeated, the server's second delivered. */
  assert_true(client_finals >= 2);
  assert_true(server_finals >= 2);
  /* Answered at the client's first repeat (about 1 s), not its second
   * (about 3 s). */
  assert_true(took < 1500);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_reconnects, 0);
}

/* A repeat draws one copy of our flight, and only a repeat the client
 * numbered anew does: the client's flight sent twice, or replayed twenty
 * times by anyone (the same datagram), draws one. Every new repeat of the
 * client's is answered, by GnuTLS or by our copy, never more than once. */
static uint8_t replay_data[1500];
static size_t replay_len;
static unsigned distinct_client_finals;
static uint8_t last_seq[6];

static int filter_keep_client_flight(void *user, const simnet_node_t *from,
                                     const coap_address_t *to, const uint8_t *data, size_t len,
                                     unsigned seq) {
  if (from == client && is_flight(data, len, HS_CLIENT_KEY_EXCHANGE)) {
    if (!replay_len && len <= sizeof replay_data) {
      memcpy(replay_data, data, len);
      replay_len = len;
    }
    if (memcmp(last_seq, data + 5, 6)) distinct_client_finals++;
    memcpy(last_seq, data + 5, 6);
  }
  return filter(user, from, to, data, len, seq);
}

static void test_repeats_bound_the_resends(void **state) {
  static sim_reply_t b;
  net.filter = filter_keep_client_flight;
  replay_len = 0;
  distinct_client_finals = 0;
  memset(last_seq, 0, sizeof last_seq);
  lose_server_finals = 1000; /* the client never completes: the server keeps its flight */
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hi");
  sim_send(client, &o, &b);
  uint64_t t0 = net.now;
  while (!server_finals && net.now < t0 + 5000) simnet_run_until(&net, net.now + 1);
  assert_int_equal(server_finals, 1);
  assert_true(replay_len > 0);
  for (int i = 0; i < 20; i++) {
    assert_int_equal(coap_context_input(server->ctx, server->ep, &client->addr, replay_data,
                                        replay_len, net.now),
                     0);
    simnet_run_until(&net, net.now + 1);
  }
  assert_int_equal(server_finals, 2); /* the first replay answered, the others not */
  /* The client's own repeats (it never gets our flight), each sent twice:
   * one answer per new repeat at most, and the first ones all answered. */
  simnet_run_until(&net, t0 + 10000);
  assert_true(distinct_client_finals >= 3);
  assert_true(client_finals >= 2 * (distinct_client_finals - 1));
  assert_true(server_finals <= 1 + distinct_client_finals);
  assert_int_equal(server_finals, 1 + distinct_client_finals);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_lost_final_flight_resent_on_early_repeat, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_repeats_bound_the_resends, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
