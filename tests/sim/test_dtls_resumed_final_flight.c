/* In a resumed handshake the client sends the last flight (ChangeCipherSpec
 * and Finished); when it is lost, only the server's flight coming again
 * says so, and the client must send its flight again then (RFC 6347
 * §4.2.4). GnuTLS does only if its retransmission timeout has passed since
 * it last sent: the server's first repeat, one timeout after its flight,
 * comes back about one timeout after our Finished and was ignored when a
 * little early. With the next repeat lost too, the server (which resends
 * to an address it has not verified no more than the hello paid for) gave
 * the handshake up while our client held an established session: its
 * requests went unanswered until the silence ended it (lossy_handshakes
 * under ASan: one run through three sessions, the server counting a
 * handshake "silent after the Finished step"). Here: the server's first
 * flight arrives 20 ms late, our Finished is lost, the server's first
 * repeat comes 980 ms after our Finished, its second is lost: the server
 * must have our Finished from the first repeat. */
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

static simnet_t net;
static simnet_node_t *server, *client;
static int lossy;                   /* the second handshake's path */
static unsigned server_hellos, ccs; /* server flights, our ChangeCipherSpec flights, seen */

static int is_flight(const uint8_t *d, size_t len, uint8_t type, uint8_t hs_type) {
  return len > 13 && d[0] == type && d[3] == 0 && d[4] == 0 && (type != 22 || d[13] == hs_type);
}

/* |net.latency_ms| is read as each datagram is queued, after the filter. */
static int filter(void *user, const simnet_node_t *from, const coap_address_t *to,
                  const uint8_t *data, size_t len, unsigned seq) {
  net.latency_ms = ONE_WAY_MS;
  if (!lossy) return 0;
  if (from == server && is_flight(data, len, 22, 2)) { /* ServerHello: the server's flight */
    server_hellos++;
    if (server_hellos == 1) net.latency_ms = ONE_WAY_MS + 20;
    return server_hellos == 3;
  }
  if (from == client && is_flight(data, len, 20, 0)) /* our ChangeCipherSpec, Finished */
    return ++ccs == 1;
  return 0;
}

static void hi(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
               coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

static int setup(void **state) {
  simnet_init(&net);
  net.latency_ms = ONE_WAY_MS;
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.peer_idle_ms = 5000; /* both forget the session: the next GET resumes */
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, &cfg);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, &cfg);
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
  lossy = 0;
  server_hellos = ccs = 0;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static uint64_t server_handshakes(void) {
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  return st.dtls_handshakes;
}

static void test_lost_finished_resent_on_early_repeat(void **state) {
  static sim_reply_t b; /* outlives a failed test: teardown may still call back */
  sim_get(client, "coaps://10.0.0.1/hi", &b, 60000); /* a full handshake, a ticket */
  assert_int_equal(b.code, COAP_CONTENT);
  simnet_run_until(&net, net.now + 400000); /* idle: both sides forget the session */
  assert_int_equal(server_handshakes(), 1);

  lossy = 1;
  uint64_t t0 = net.now;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hi");
  sim_send(client, &o, &b);
  uint64_t done_at = 0;
  while (!b.done && net.now < t0 + 60000) {
    simnet_run_until(&net, net.now + 1);
    if (!done_at && server_handshakes() == 2) done_at = net.now;
  }
  assert_true(b.done);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_resumed, 1);
  assert_int_equal(st.dtls_reconnects, 0);
  /* The path did what the case needs: our first Finished lost, the
   * server's second flight delivered, its third lost. */
  assert_true(ccs >= 2);
  assert_true(server_hellos >= 2);
  /* The server took our Finished from the answer to its first repeat
   * (about 1 s in), not from a later one, or never. */
  assert_true(done_at > 0);
  assert_true(done_at - t0 < 2000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_lost_finished_resent_on_early_repeat, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
