/* Whole nodes (context = server + client) over the simulated network with a
 * virtual clock: dispatch, automatic error codes, discovery, separate
 * responses, loss, timeouts, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;

static int handler_calls;

static void hello_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  handler_calls++;
  char who[32] = "world";
  coap_request_query(req, "who", who, sizeof who);
  char text[64];
  int n = snprintf(text, sizeof text, "hello %s", who);
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, text, (size_t)n);
  coap_response_set_max_age(resp, 30);
}

static void store_put(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  handler_calls++;
  size_t len;
  const uint8_t *p = coap_request_payload(req, &len);
  coap_response_set_code(resp, COAP_CHANGED);
  coap_response_set_payload(resp, COAP_FORMAT_NONE, p, len);
}

static coap_deferred_t *pending;
static void slow_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  handler_calls++;
  pending = coap_request_defer(req, resp);
}

static simnet_node_t *server, *client;

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_UDP, NULL);
  assert_non_null(server);
  assert_non_null(client);
  coap_resource_t *r = coap_resource_add(server->ctx, "/hello");
  assert_non_null(r);
  assert_int_equal(coap_resource_set_handler(r, COAP_GET, hello_get, NULL), 0);
  assert_int_equal(coap_resource_set_attr(r, "rt", "greeting"), 0);
  r = coap_resource_add(server->ctx, "store");
  assert_int_equal(coap_resource_set_handler(r, COAP_PUT, store_put, NULL), 0);
  int text_only = COAP_FORMAT_TEXT_PLAIN;
  assert_int_equal(coap_resource_set_accepted_formats(r, &text_only, 1), 0);
  coap_resource_set_attr(r, "ct", "0");
  r = coap_resource_add(server->ctx, "slow");
  assert_int_equal(coap_resource_set_handler(r, COAP_GET, slow_get, NULL), 0);
  handler_calls = 0;
  pending = NULL;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static void request(uint8_t method, const char *uri, sim_reply_t *box,
                    const coap_request_opts_t *extra) {
  coap_request_opts_t o;
  if (extra)
    o = *extra;
  else
    coap_request_opts_init(&o, method, uri);
  sim_send(client, &o, box);
}

static void test_get_piggybacked(void **state) {
  sim_reply_t box;
  request(COAP_GET, "coap://10.0.0.1/hello?who=sim", &box, NULL);
  assert_true(simnet_run_until_flag(&net, &box.done, 1000));
  assert_int_equal(box.status, 0);
  assert_int_equal(box.code, COAP_CONTENT);
  assert_int_equal(box.content_format, COAP_FORMAT_TEXT_PLAIN);
  assert_string_equal(box.payload, "hello sim");
  assert_int_equal(handler_calls, 1);
  /* One request, one piggy-backed answer: two datagrams in all. */
  assert_int_equal(net.delivered, 2);
}

static void test_not_found_and_method(void **state) {
  sim_reply_t box;
  request(COAP_GET, "coap://10.0.0.1/nothing/here", &box, NULL);
  assert_true(simnet_run_until_flag(&net, &box.done, 1000));
  assert_int_equal(box.code, COAP_NOT_FOUND);
  request(COAP_DELETE, "coap://10.0.0.1/hello", &box, NULL);
  assert_true(simnet_run_until_flag(&net, &box.done, 1000));
  assert_int_equal(box.code, COAP_METHOD_NOT_ALLOWED);
  assert_int_equal(handler_calls, 0);
}

static void test_bad_option_and_format(void **state) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/hello");
  coap_option_t crit = {.number = 2049, .length = 1, .value = (const uint8_t *)"x"};
  o.options = &crit;
  o.n_options = 1;
  sim_reply_t box;
  request(0, NULL, &box, &o);
  assert_true(simnet_run_until_flag(&net, &box.done, 1000));
  assert_int_equal(box.code, COAP_BAD_OPTION);

  coap_request_opts_init(&o, COAP_PUT, "coap://10.0.0.1/store");
  o.content_format = COAP_FORMAT_JSON;
  o.payload = "{}";
  o.payload_len = 2;
  request(0, NULL, &box, &o);
  assert_true(simnet_run_until_flag(&net, &box.done, 1000));
  assert_int_equal(box.code, COAP_UNSUPPORTED_CONTENT_FORMAT);

  o.content_format = COAP_FORMAT_TEXT_PLAIN;
  request(0, NULL, &box, &o);
  assert_true(simnet_run_until_flag(&net, &box.done, 1000));
  assert_int_equal(box.code, COAP_CHANGED);
  assert_string_equal(box.payload, "{}");
  assert_int_equal(handler_calls, 1);
}

/* A body over one message's max_payload (1024) goes block-wise (RFC
 * 7959): the handler runs once, with all of it. (4.13 for bodies over
 * max_body: tests/sim/test_blockwise_server.c.) */
static void test_payload_over_a_message_goes_blockwise(void **state) {
  static char big[1500];
  memset(big, 'a', sizeof big);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_PUT, "coap://10.0.0.1/store");
  o.payload = big;
  o.payload_len = 1100;
  sim_reply_t box;
  request(0, NULL, &box, &o);
  assert_true(simnet_run_until_flag(&net, &box.done, 1000));
  assert_int_equal(box.code, COAP_CHANGED);
  assert_int_equal(handler_calls, 1);
  /* The handler echoes the body: back block-wise too, whole. */
  assert_int_equal(box.payload_len, 1100);
  assert_int_equal(strspn(box.payload, "a"), 1100);
}

static void test_discovery(void **state) {
  sim_reply_t box;
  request(COAP_GET, "coap://10.0.0.1/.well-known/core", &box, NULL);
  assert_true(simnet_run_until_flag(&net, &box.done, 1000));
  assert_int_equal(box.code, COAP_CONTENT);
  assert_int_equal(box.content_format, COAP_FORMAT_LINK_FORMAT);
  assert_non_null(strstr(box.payload, "</hello>"));
  assert_non_null(strstr(box.payload, "rt=\"greeting\""));
  assert_non_null(strstr(box.payload, "</store>"));

  request(COAP_GET, "coap://10.0.0.1/.well-known/core?rt=greeting", &box, NULL);
  assert_true(simnet_run_until_flag(&net, &box.done, 1000));
  assert_non_null(strstr(box.payload, "</hello>"));
  assert_null(strstr(box.payload, "</store>"));
}

static void test_separate_response(void **state) {
  sim_reply_t box;
  request(COAP_GET, "coap://10.0.0.1/slow", &box, NULL);
  simnet_run_until(&net, net.now + 1000);
  assert_non_null(pending);
  assert_false(box.done);
  /* The empty ACK went out: the client does not retransmit any more. */
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.retransmissions, 0);
  simnet_run_until(&net, net.now + 20000);
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.retransmissions, 0);

  coap_response_t *resp = coap_deferred_response(pending);
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "late", 4);
  assert_int_equal(coap_deferred_send(server->ctx, pending), 0);
  assert_true(simnet_run_until_flag(&net, &box.done, 1000));
  assert_int_equal(box.code, COAP_CONTENT);
  assert_string_equal(box.payload, "late");
  assert_int_equal(box.calls, 1);
}

/* Drop the first answer of the server: the client retransmits, the server
 * answers from its cache and the handler still runs once. */
static int drop_first_reply(void *user, const simnet_node_t *from, const coap_address_t *to,
                            const uint8_t *data, size_t len, unsigned seq) {
  int *dropped = user;
  if (from == server && !*dropped) {
    *dropped = 1;
    return 1;
  }
  return 0;
}

static void test_lost_ack(void **state) {
  int dropped = 0;
  net.filter = drop_first_reply;
  net.filter_user = &dropped;
  sim_reply_t box;
  request(COAP_GET, "coap://10.0.0.1/hello", &box, NULL);
  assert_true(simnet_run_until_flag(&net, &box.done, 10000));
  assert_int_equal(box.code, COAP_CONTENT);
  assert_int_equal(handler_calls, 1);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.rx_duplicates, 1);
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.retransmissions, 1);
}

/* Counts CoAP datagrams; the DTLS probe for a silent port is not one. */
static int drop_everything(void *user, const simnet_node_t *from, const coap_address_t *to,
                           const uint8_t *data, size_t len, unsigned seq) {
  if (!(len > 13 && data[0] == 22 && data[1] == 0xFE)) (*(int *)user)++;
  return 1;
}

static void test_timeout_when_nobody_answers(void **state) {
  int sent = 0;
  net.filter = drop_everything;
  net.filter_user = &sent;
  uint64_t start = net.now;
  sim_reply_t box;
  request(COAP_GET, "coap://10.0.0.1/hello", &box, NULL);
  assert_true(simnet_run_until_flag(&net, &box.done, 200000));
  assert_int_equal(box.status, COAP_E_TIMEOUT);
  assert_int_equal(box.cause, COAP_CAUSE_NO_ANSWER);
  assert_int_equal(sent, 5); /* the first try and MAX_RETRANSMIT = 4 more */
  uint64_t took = net.now - start;
  /* initial timeout in [2, 3] s, doubled 4 times: 62 s to 93 s in all */
  assert_true(took >= 62000 && took <= 93000);
}

static void test_request_deadline(void **state) {
  int sent = 0;
  net.filter = drop_everything;
  net.filter_user = &sent;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/hello");
  o.timeout_ms = 5000;
  sim_reply_t box;
  uint64_t start = net.now;
  request(0, NULL, &box, &o);
  assert_true(simnet_run_until_flag(&net, &box.done, 100000));
  assert_int_equal(box.status, COAP_E_TIMEOUT);
  assert_int_equal(net.now - start, 5000);
  assert_int_equal(box.calls, 1);
}

static void test_bad_uri_and_no_credentials(void **state) {
  coap_request_opts_t o;
  sim_reply_t box = {0};
  coap_request_opts_init(&o, COAP_GET, "http://10.0.0.1/x");
  assert_int_equal(coap_send_request(client->ctx, &o, sim_on_reply, &box, NULL), COAP_E_URI_SCHEME);
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/x");
  assert_int_equal(coap_send_request(client->ctx, &o, sim_on_reply, &box, NULL),
                   COAP_E_DTLS_NO_CREDENTIALS);
  /* Nothing went out and the callback was never called. */
  simnet_run_until(&net, net.now + 1000);
  assert_int_equal(net.delivered, 0);
  assert_int_equal(box.calls, 0);
}

static void test_malformed_input_is_counted(void **state) {
  /* A CON with token length 9 gets RST; a 2-byte datagram is dropped. */
  const uint8_t bad_tkl[] = {0x49, 0x01, 0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const uint8_t short_dgram[] = {0x40, 0x01};
  coap_context_input(server->ctx, server->ep, &client->addr, bad_tkl, sizeof bad_tkl, net.now);
  coap_context_input(server->ctx, server->ep, &client->addr, short_dgram, sizeof short_dgram,
                     net.now);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.rx_malformed, 2);
  assert_int_equal(st.resets_sent, 1);
  assert_int_equal(handler_calls, 0);
}

static void test_peer_limit_and_idle_expiry(void **state) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.max_peers = 1;
  cfg.peer_idle_ms = 60000;
  simnet_node_t *small = simnet_add_node(&net, 5683, COAP_PROTO_UDP, &cfg);
  assert_non_null(small);
  coap_resource_t *r = coap_resource_add(small->ctx, "hello");
  coap_resource_set_handler(r, COAP_GET, hello_get, NULL);
  sim_reply_t box;
  request(COAP_GET, "coap://10.0.0.3/hello", &box, NULL);
  assert_true(simnet_run_until_flag(&net, &box.done, 1000));
  assert_int_equal(box.code, COAP_CONTENT);
  /* A second peer is turned away while the first is remembered. */
  const uint8_t ping[] = {0x40, 0x00, 0x00, 0x01};
  assert_int_equal(
      coap_context_input(small->ctx, small->ep, &server->addr, ping, sizeof ping, net.now),
      COAP_E_LIMIT);
  coap_stats_t st;
  coap_context_get_stats(small->ctx, &st);
  assert_int_equal(st.peers, 1);
  assert_int_equal(st.peers_rejected, 1);
  /* After the idle period (and EXCHANGE_LIFETIME's worth) it is forgotten. */
  simnet_run_until(&net, net.now + 400000);
  coap_context_get_stats(small->ctx, &st);
  assert_int_equal(st.peers, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_get_piggybacked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_found_and_method, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_option_and_format, setup, teardown),
      cmocka_unit_test_setup_teardown(test_payload_over_a_message_goes_blockwise, setup, teardown),
      cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
      cmocka_unit_test_setup_teardown(test_separate_response, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lost_ack, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_when_nobody_answers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_request_deadline, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_uri_and_no_credentials, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_input_is_counted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_peer_limit_and_idle_expiry, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
