/* A client whose DTLS session ended (the server closed it, or went silent)
 * makes a new one with the same server from the same address, and a late
 * datagram of the old handshake may still come: the server's last flight
 * resent (NewSessionTicket, ChangeCipherSpec, Finished). GnuTLS took that
 * NewSessionTicket into the new handshake: a full one then failed at the
 * Finished ("the server gave up the handshake without accepting our
 * Finished"), a resumed one kept it and dropped every answer of the server
 * after it (lossy_handshakes, ours against coap-server-openssl: the
 * server answered the request three times, the client timed out). Until
 * the new handshake's HelloVerifyRequest or ServerHello, a datagram that
 * begins with anything else is now dropped. Both ways: the new handshake
 * resumed (the restarted server has the ticket keys) or full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"

static const char TICKET_KEYS[] =
    "coaps-ticket-keys 1\n"
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";

static simnet_t net;
static simnet_node_t *server, *client;
static int drop_client, handler_calls, share_ticket_keys;
static uint8_t stale[1500]; /* the server's last flight of the first handshake */
static size_t stale_len;

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  handler_calls++;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "secure hello", 12);
}

static int filter(void *user, const simnet_node_t *from, const coap_address_t *to,
                  const uint8_t *data, size_t len, unsigned seq) {
  /* An epoch-0 NewSessionTicket first: the last flight of a full handshake. */
  if (from == server && !stale_len && len > 25 && len <= sizeof stale && data[0] == 22 &&
      !data[3] && !data[4] && data[13] == 4) {
    memcpy(stale, data, len);
    stale_len = len;
  }
  return drop_client && from == client;
}

static void set_psk(coap_context_t *ctx) {
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  assert_non_null(d);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16),
      0);
  assert_int_equal(coap_context_set_dtls_context(ctx, d), 0);
}

static void server_setup(void) {
  set_psk(server->ctx);
  if (share_ticket_keys)
    assert_true(coap_dtls_set_ticket_keys(coap_context_dtls(server->ctx), TICKET_KEYS,
                                          sizeof TICKET_KEYS - 1) > 0);
  coap_resource_t *r = coap_resource_add(server->ctx, "hello");
  coap_resource_set_handler(r, COAP_GET, hello, NULL);
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  share_ticket_keys = *state != NULL;
  server_setup();
  set_psk(client->ctx);
  handler_calls = drop_client = 0;
  stale_len = 0;
  net.filter = filter;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static void test_late_flight_of_the_old_session(void **state) {
  static sim_reply_t b; /* outlives a failed test: teardown may still call back */
  sim_get(client, "coaps://10.0.0.1/hello", &b, 60000); /* the first session */
  assert_int_equal(b.code, COAP_CONTENT);
  assert_true(stale_len > 0);
  /* A GET the server never gets on the first session... */
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  drop_client = 1;
  sim_send(client, &o, &b);
  simnet_run_until(&net, net.now + 100);
  drop_client = 0;
  /* ...when the server restarts (close_notify): the client makes a new
   * session at once, and the old handshake's last flight comes late. */
  assert_int_equal(simnet_node_restart(server), 0);
  server_setup();
  simnet_run_until(&net, net.now + 15);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 1); /* the new one is under way */
  coap_context_input(client->ctx, client->ep, &server->addr, stale, stale_len, net.now);
  assert_true(simnet_run_until_flag(&net, &b.done, 300000));
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(handler_calls, 2);
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 2);
  assert_int_equal(st.dtls_resumed, share_ticket_keys ? 1 : 0);
  assert_int_equal(st.dtls_failures, 0);
}

int main(void) {
  static int shared = 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(test_late_flight_of_the_old_session, setup, teardown,
                                               NULL),
      cmocka_unit_test_prestate_setup_teardown(test_late_flight_of_the_old_session, setup, teardown,
                                               &shared),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
