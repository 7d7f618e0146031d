/* A server on a wildcard address answers from the address it was asked
 * at. The simulated server has several addresses (simnet_node_add_alias):
 * every datagram it receives comes with the address it was sent to
 * (coap_context_input_to), and whatever it sends a peer must go through
 * the transport's send_from with that address — a reply from another
 * address reaches the client as a stranger's datagram and is dropped, so
 * the requests here would time out. coap:// piggy-backed and separate
 * responses, coaps:// with the HelloVerifyRequest sent before any peer
 * exists; a transport without send_from still gets everything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *client;
static coap_deferred_t *pending;

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hello", 5);
}

/* Answers later: an empty ACK first, then the response as a CON. */
static void slow(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                 coap_response_t *resp, void *user) {
  pending = coap_request_defer(req, resp);
}

static void set_psk(coap_context_t *ctx) {
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  assert_non_null(d);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"dev", (const uint8_t *)"0123456789abcdef", 16), 0);
  assert_int_equal(coap_context_set_dtls_context(ctx, d), 0);
}

/* Server 10.0.0.1 with aliases 10.0.0.7 and 10.0.0.8, client 10.0.0.2. */
static void make_nodes(coap_proto_t proto, uint16_t port) {
  simnet_init(&net);
  server = simnet_add_node(&net, port, proto, NULL);
  client = simnet_add_node(&net, 40000, proto, NULL);
  assert_non_null(server);
  assert_non_null(client);
  assert_int_equal(simnet_node_add_alias(server, "10.0.0.7"), 0);
  assert_int_equal(simnet_node_add_alias(server, "10.0.0.8"), 0);
  coap_resource_set_handler(coap_resource_add(server->ctx, "hello"), COAP_GET, hello, NULL);
  coap_resource_set_handler(coap_resource_add(server->ctx, "slow"), COAP_GET, slow, NULL);
  if (proto == COAP_PROTO_DTLS) {
    set_psk(server->ctx);
    set_psk(client->ctx);
  }
  pending = NULL;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static void expect_hello(const char *uri) {
  sim_reply_t b;
  sim_get(client, uri, &b, 120000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CODE(2, 5));
  assert_string_equal(b.payload, "hello");
}

static void expect_last_local(const char *host) {
  char text[64];
  coap_address_format(&server->last_local, text, sizeof text);
  char want[64];
  snprintf(want, sizeof want, "%s:%u", host, coap_address_get_port(&server->addr));
  assert_string_equal(text, want);
}

static void test_plain_reply_from_the_address_asked(void **state) {
  make_nodes(COAP_PROTO_UDP, 5683);
  expect_hello("coap://10.0.0.7:5683/hello");
  assert_int_equal(server->sent_plain, 0);
  assert_int_equal(server->sent_from_local, 1);
  expect_last_local("10.0.0.7");
  /* The same client at another of the server's addresses: the answer
   * leaves from there (a coap:// peer's local address is its latest). */
  expect_hello("coap://10.0.0.8:5683/hello");
  expect_last_local("10.0.0.8");
  expect_hello("coap://10.0.0.1:5683/hello");
  expect_last_local("10.0.0.1");
  assert_int_equal(server->sent_plain, 0);
  assert_int_equal(server->sent_from_local, 3);
}

/* The empty ACK, the separate CON response and the client's ACK of it. */
static void test_plain_separate_response(void **state) {
  make_nodes(COAP_PROTO_UDP, 5683);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.8:5683/slow");
  sim_reply_t b;
  sim_send(client, &o, &b);
  simnet_run_until(&net, net.now + 2000); /* past separate_delay: empty ACK sent */
  assert_non_null(pending);
  assert_int_equal(server->sent_from_local, 1);
  assert_false(b.done);
  coap_response_set_payload(coap_deferred_response(pending), COAP_FORMAT_TEXT_PLAIN, "late", 4);
  assert_int_equal(coap_deferred_send(server->ctx, pending), 0);
  assert_true(simnet_run_until_flag(&net, &b.done, 60000));
  assert_int_equal(b.status, 0);
  assert_string_equal(b.payload, "late");
  assert_int_equal(server->sent_from_local, 2);
  assert_int_equal(server->sent_plain, 0);
  expect_last_local("10.0.0.8");
}

/* coaps://: the HelloVerifyRequest (no peer yet), the handshake flights,
 * the response records — all from the address the client talks to. */
static void test_dtls_reply_from_the_address_asked(void **state) {
  make_nodes(COAP_PROTO_DTLS, 5684);
  assert_int_equal(
      coap_dtls_set_cookie_policy(coap_context_dtls(server->ctx), COAP_DTLS_COOKIE_ALWAYS, 0), 0);
  expect_hello("coaps://10.0.0.7:5684/hello");
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_true(st.dtls_cookies_sent >= 1);
  assert_int_equal(st.dtls_handshakes, 1);
  assert_int_equal(server->sent_plain, 0);
  assert_true(server->sent_from_local >= 3); /* HVR, hello flight, response */
  expect_last_local("10.0.0.7");

  /* A datagram that is no valid record, "from" the client but to another
   * address, does not move the session: anyone can send that. Here it
   * comes while the server holds a request back, and the separate
   * response must still leave from where the client talks to. */
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.7:5684/slow");
  sim_reply_t b;
  sim_send(client, &o, &b);
  simnet_run_until(&net, net.now + 2000);
  assert_non_null(pending);
  const uint8_t junk[] = {23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 3, 1, 2, 3};
  coap_address_t other;
  coap_address_from_string(&other, "10.0.0.8", 5684);
  coap_context_input_to(server->ctx, server->ep, &client->addr, &other, junk, sizeof junk, net.now);
  unsigned before = server->sent_from_local;
  coap_response_set_payload(coap_deferred_response(pending), COAP_FORMAT_TEXT_PLAIN, "late", 4);
  assert_int_equal(coap_deferred_send(server->ctx, pending), 0);
  expect_last_local("10.0.0.7");
  assert_true(simnet_run_until_flag(&net, &b.done, 120000));
  assert_int_equal(b.status, 0);
  assert_string_equal(b.payload, "late");
  assert_true(server->sent_from_local > before);
  assert_int_equal(server->sent_plain, 0);
}

/* The same with the cookie round trip off: the first hello makes the peer. */
static void test_dtls_without_cookie(void **state) {
  make_nodes(COAP_PROTO_DTLS, 5684);
  assert_int_equal(
      coap_dtls_set_cookie_policy(coap_context_dtls(server->ctx), COAP_DTLS_COOKIE_NEVER, 0), 0);
  expect_hello("coaps://10.0.0.8:5684/hello");
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_cookies_sent, 0);
  assert_int_equal(server->sent_plain, 0);
  expect_last_local("10.0.0.8");
}

/* ---- a transport with send only (written before send_from existed) ---- */

static unsigned plain_sends, from_sends;
static coap_address_t seen_local;

static int count_send(void *user, coap_endpoint_t *ep, const coap_address_t *to,
                      const uint8_t *data, size_t len) {
  plain_sends++;
  return 0;
}

static int count_send_from(void *user, coap_endpoint_t *ep, const coap_address_t *local,
                           const coap_address_t *to, const uint8_t *data, size_t len) {
  from_sends++;
  seen_local = *local;
  return 0;
}

static void feed_get(coap_context_t *ctx, coap_endpoint_t *ep, const coap_address_t *local,
                     uint16_t mid) {
  const uint8_t get[] = {0x41, 0x01, (uint8_t)(mid >> 8), (uint8_t)mid, 0x42, 0xb5, 'h', 'e', 'l',
                         'l',  'o'};
  coap_address_t from;
  coap_address_from_string(&from, "192.0.2.9", 1234);
  coap_context_input_to(ctx, ep, &from, local, get, sizeof get, 1000);
}

static void test_transport_without_send_from(void **state) {
  coap_context_t *ctx = coap_context_new(NULL);
  assert_non_null(ctx);
  coap_resource_set_handler(coap_resource_add(ctx, "hello"), COAP_GET, hello, NULL);
  coap_address_t any, local;
  coap_address_init(&any);
  coap_address_set_port(&any, 5683);
  coap_address_from_string(&local, "2001:db8::5", 0);
  coap_endpoint_t *ep = coap_context_add_endpoint(ctx, COAP_PROTO_UDP, &any);
  plain_sends = from_sends = 0;

  coap_transport_t t = {.send = count_send};
  coap_context_set_transport(ctx, &t, NULL);
  feed_get(ctx, ep, &local, 1);
  assert_int_equal(plain_sends, 1);

  /* With send_from: the local address, with the endpoint's port. */
  t.send_from = count_send_from;
  coap_context_set_transport(ctx, &t, NULL);
  feed_get(ctx, ep, &local, 2);
  assert_int_equal(plain_sends, 1);
  assert_int_equal(from_sends, 1);
  char text[64];
  assert_string_equal(coap_address_format(&seen_local, text, sizeof text), "[2001:db8::5]:5683");
  /* coap_context_input (no local address) keeps what the peer has. */
  const uint8_t get[] = {0x41, 0x01, 0, 3, 0x42, 0xb5, 'h', 'e', 'l', 'l', 'o'};
  coap_address_t from;
  coap_address_from_string(&from, "192.0.2.9", 1234);
  coap_context_input(ctx, ep, &from, get, sizeof get, 1000);
  assert_int_equal(from_sends, 2);
  coap_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_plain_reply_from_the_address_asked, teardown),
      cmocka_unit_test_teardown(test_plain_separate_response, teardown),
      cmocka_unit_test_teardown(test_dtls_reply_from_the_address_asked, teardown),
      cmocka_unit_test_teardown(test_dtls_without_cookie, teardown),
      cmocka_unit_test(test_transport_without_send_from),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
