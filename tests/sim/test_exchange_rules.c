/* RFC 7252 §4 rules seen from the wire: raw datagrams go in, what the node
 * sends back is recorded with its virtual time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *client;
static int handler_calls;

typedef struct sent {
  const simnet_node_t *from;
  uint64_t at;
  coap_msg_t msg;
  uint8_t raw[512];
  size_t len;
} sent_t;
static sent_t sent[64];
static unsigned n_sent;
static unsigned n_probes; /* DTLS ClientHellos probing an unanswered port */
static int drop_all;

static int record(void *user, const simnet_node_t *from, const coap_address_t *to,
                  const uint8_t *data, size_t len, unsigned seq) {
  if (len > 13 && data[0] == 22 && data[1] == 0xFE) {
    n_probes++;
    return drop_all;
  }
  if (n_sent < 64 && len <= sizeof sent[0].raw) {
    sent_t *s = &sent[n_sent++];
    s->from = from;
    s->at = net.now;
    memcpy(s->raw, data, len);
    s->len = len;
    coap_msg_parse(&s->msg, s->raw, len);
  }
  return drop_all;
}

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  handler_calls++;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_UDP, NULL);
  coap_resource_t *r = coap_resource_add(server->ctx, "hello");
  coap_resource_set_handler(r, COAP_GET, hello, NULL);
  coap_resource_set_handler(r, COAP_POST, hello, NULL);
  handler_calls = 0;
  n_sent = 0;
  n_probes = 0;
  drop_all = 0;
  net.filter = record;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

/* Feed |d| to the server as if from the client. */
static void to_server(const uint8_t *d, size_t n) {
  coap_context_input(server->ctx, server->ep, &client->addr, d, n, net.now);
}

static void test_ping_gets_rst(void **state) {
  const uint8_t ping[] = {0x40, 0x00, 0xbe, 0xef};
  to_server(ping, sizeof ping);
  assert_int_equal(n_sent, 1);
  assert_int_equal(sent[0].msg.type, COAP_TYPE_RST);
  assert_int_equal(sent[0].msg.mid, 0xbeef);
  assert_int_equal(sent[0].len, 4);
}

static void test_unknown_con_response_gets_rst(void **state) {
  /* A CON 2.05 whose token matches no request of ours. */
  const uint8_t stray[] = {0x42, 0x45, 0x00, 0x07, 0xde, 0xad, 0xff, 'x'};
  to_server(stray, sizeof stray);
  assert_int_equal(n_sent, 1);
  assert_int_equal(sent[0].msg.type, COAP_TYPE_RST);
  assert_int_equal(sent[0].msg.mid, 7);
  /* ... and so does a stray NON response (RFC 7641 §3.6: a client that
   * forgot an observation ends it so, whatever the notification's type). */
  const uint8_t stray_non[] = {0x52, 0x45, 0x00, 0x08, 0xde, 0xad};
  to_server(stray_non, sizeof stray_non);
  assert_int_equal(n_sent, 2);
  assert_int_equal(sent[1].msg.type, COAP_TYPE_RST);
  assert_int_equal(sent[1].msg.mid, 8);
}

static void test_duplicate_con_answered_from_cache(void **state) {
  const uint8_t req[] = {0x42, 0x01, 0x12, 0x34, 0xaa, 0xbb, 0xb5, 'h', 'e', 'l', 'l', 'o'};
  to_server(req, sizeof req);
  to_server(req, sizeof req);
  assert_int_equal(handler_calls, 1);
  assert_int_equal(n_sent, 2);
  assert_int_equal(sent[0].len, sent[1].len);
  assert_memory_equal(sent[0].raw, sent[1].raw, sent[0].len);
  assert_int_equal(sent[0].msg.type, COAP_TYPE_ACK);
  assert_int_equal(sent[0].msg.code, COAP_CONTENT);
}

static void test_duplicate_non_dropped(void **state) {
  const uint8_t req[] = {0x52, 0x01, 0x22, 0x22, 0xaa, 0xbb, 0xb5, 'h', 'e', 'l', 'l', 'o'};
  to_server(req, sizeof req);
  to_server(req, sizeof req);
  assert_int_equal(handler_calls, 1);
  assert_int_equal(n_sent, 1);
  assert_int_equal(sent[0].msg.type, COAP_TYPE_NON); /* NON asks, NON answers */
}

static void test_malformed_con_rst_non_silent(void **state) {
  const uint8_t bad_con[] = {0x40, 0x01, 0x00, 0x09, 0xf0};
  const uint8_t bad_non[] = {0x50, 0x01, 0x00, 0x0a, 0xf0};
  to_server(bad_con, sizeof bad_con);
  to_server(bad_non, sizeof bad_non);
  assert_int_equal(n_sent, 1);
  assert_int_equal(sent[0].msg.type, COAP_TYPE_RST);
  assert_int_equal(sent[0].msg.mid, 9);
}

static void send_get(sim_reply_t *b) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/hello");
  sim_send(client, &o, b);
}

static void test_retransmission_schedule(void **state) {
  drop_all = 1;
  sim_reply_t b;
  uint64_t start = net.now;
  send_get(&b);
  assert_true(simnet_run_until_flag(&net, &b.done, 200000));
  assert_int_equal(b.status, COAP_E_TIMEOUT);
  assert_int_equal(n_sent, 5);
  /* After the first retransmission, one DTLS ClientHello asks whether a
   * coaps:// server sits on the port. */
  assert_int_equal(n_probes, 1);
  uint64_t t0 = sent[1].at - sent[0].at; /* the initial timeout */
  assert_true(t0 >= 2000 && t0 <= 3000);
  for (unsigned i = 1; i < 4; i++) assert_int_equal(sent[i + 1].at - sent[i].at, t0 << i);
  for (unsigned i = 1; i < 5; i++) assert_int_equal(sent[i].msg.mid, sent[0].msg.mid);
  /* Given up when the last timeout (16 x t0) ran out: 31 x t0 in all. */
  assert_int_equal(net.now - start, 31 * t0);
}

static void test_tx_params_per_context(void **state) {
  coap_tx_params_t p;
  coap_tx_params_default(&p);
  p.ack_timeout_ms = 500;
  p.max_retransmit = 2;
  assert_int_equal(coap_context_set_tx_params(client->ctx, &p), 0);
  p.nstart = 0;
  assert_int_equal(coap_context_set_tx_params(client->ctx, &p), COAP_E_INVALID_ARG);
  drop_all = 1;
  sim_reply_t b;
  uint64_t start = net.now;
  send_get(&b);
  assert_true(simnet_run_until_flag(&net, &b.done, 200000));
  assert_int_equal(b.status, COAP_E_TIMEOUT);
  assert_int_equal(n_sent, 3); /* the first try and MAX_RETRANSMIT = 2 */
  uint64_t t0 = sent[1].at - sent[0].at;
  assert_true(t0 >= 500 && t0 <= 750);
  assert_int_equal(net.now - start, 7 * t0);
}

static void test_nstart_one_queues_the_second(void **state) {
  drop_all = 1;
  sim_reply_t a, b;
  send_get(&a);
  send_get(&b);
  simnet_run_until(&net, net.now + 1);
  assert_int_equal(n_sent, 1); /* NSTART = 1: the second waits */
  drop_all = 0;
  assert_true(simnet_run_until_flag(&net, &b.done, 20000));
  assert_true(a.done);
  assert_int_equal(a.code, COAP_CONTENT);
  assert_int_equal(b.code, COAP_CONTENT);
}

static int reject_with_unknown_option(void *user, const simnet_node_t *from,
                                      const coap_address_t *to, const uint8_t *data, size_t len,
                                      unsigned seq) {
  record(user, from, to, data, len, seq);
  if (from != client) return 1;
  /* Answer as a broken server would: a separate CON response with an
   * unrecognized critical option (2049), after an empty ACK. */
  coap_msg_t req;
  coap_msg_parse(&req, data, len);
  if (req.type != COAP_TYPE_CON || req.code != COAP_GET) return 1;
  uint8_t ack[4] = {0x60, 0x00, (uint8_t)(req.mid >> 8), (uint8_t)req.mid};
  coap_context_input(client->ctx, client->ep, &server->addr, ack, 4, net.now);
  coap_msg_t resp;
  coap_msg_init(&resp, COAP_TYPE_CON, COAP_CONTENT, 0x7777);
  coap_msg_set_token(&resp, req.token, req.token_len);
  coap_msg_add_option(&resp, 2049, "x", 1);
  uint8_t raw[64];
  int n = coap_msg_encode(&resp, raw, sizeof raw);
  coap_context_input(client->ctx, client->ep, &server->addr, raw, (size_t)n, net.now);
  return 1;
}

static void test_unknown_critical_option_in_response(void **state) {
  net.filter = reject_with_unknown_option;
  sim_reply_t b;
  send_get(&b);
  assert_true(simnet_run_until_flag(&net, &b.done, 10000));
  assert_int_equal(b.status, COAP_E_BAD_RESPONSE);
  /* The client rejected the CON response with RST. */
  int rst = 0;
  for (unsigned i = 0; i < n_sent; i++)
    if (sent[i].from == client && sent[i].msg.type == COAP_TYPE_RST && sent[i].msg.mid == 0x7777)
      rst = 1;
  assert_true(rst);
}

/* ---- a message ID used again for another response ---- */

static unsigned observed; /* notifications delivered */
static char observed_last;

static void on_observe(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  if (reply->status == 0 && reply->payload_len == 1) {
    observed++;
    observed_last = (char)reply->payload[0];
  }
}

/* The server's side of the exchange, by hand: the registration is
 * answered with a piggy-backed 2.05 carrying Observe. */
static coap_msg_t registration;
static uint8_t registration_raw[128];
static int answer_registration(void *user, const simnet_node_t *from, const coap_address_t *to,
                               const uint8_t *data, size_t len, unsigned seq) {
  if (from != client || len > sizeof registration_raw) return 1;
  memcpy(registration_raw, data, len);
  coap_msg_parse(&registration, registration_raw, len);
  if (registration.code != COAP_GET) return 1;
  coap_msg_t ack;
  coap_msg_init(&ack, COAP_TYPE_ACK, COAP_CONTENT, registration.mid);
  coap_msg_set_token(&ack, registration.token, registration.token_len);
  coap_msg_add_uint(&ack, COAP_OPTION_OBSERVE, 1);
  coap_msg_set_payload(&ack, "0", 1);
  uint8_t raw[64];
  int n = coap_msg_encode(&ack, raw, sizeof raw);
  coap_context_input(client->ctx, client->ep, &server->addr, raw, (size_t)n, net.now);
  return 1;
}

static void notify_client(uint16_t mid, uint32_t seq, char value) {
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_NON, COAP_CONTENT, mid);
  coap_msg_set_token(&m, registration.token, registration.token_len);
  coap_msg_add_uint(&m, COAP_OPTION_OBSERVE, seq);
  coap_msg_set_payload(&m, &value, 1);
  uint8_t raw[64];
  int n = coap_msg_encode(&m, raw, sizeof raw);
  coap_context_input(client->ctx, client->ep, &server->addr, raw, (size_t)n, net.now);
}

/* A duplicate is the same datagram again. A server that gives another
 * response a message ID it used a moment before (libcoap 4.3.5 does in
 * Q-Block bursts) must not have it dropped as a duplicate; the same
 * datagram twice still is one. */
static void test_reused_mid_is_no_duplicate(void **state) {
  net.filter = answer_registration;
  observed = 0;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/hello");
  o.observe = 1;
  assert_int_equal(coap_send_request(client->ctx, &o, on_observe, NULL, NULL), 0);
  simnet_run_until(&net, net.now + 100);
  assert_int_equal(observed, 1);
  coap_stats_t before, after;
  coap_context_get_stats(client->ctx, &before);
  notify_client(0x4242, 2, 'a');
  notify_client(0x4242, 3, 'b'); /* the same message ID, another message */
  assert_int_equal(observed, 3);
  assert_int_equal(observed_last, 'b');
  notify_client(0x4242, 3, 'b'); /* a real duplicate */
  assert_int_equal(observed, 3);
  coap_context_get_stats(client->ctx, &after);
  assert_int_equal(after.rx_duplicates, before.rx_duplicates + 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ping_gets_rst, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_con_response_gets_rst, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicate_con_answered_from_cache, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicate_non_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_con_rst_non_silent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retransmission_schedule, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tx_params_per_context, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nstart_one_queues_the_second, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_critical_option_in_response, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reused_mid_is_no_duplicate, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
