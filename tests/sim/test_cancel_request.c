/* coap_cancel_request and the promise of coap_send_request's callback
 * (include/coaps/context.h): called exactly once, unless the request is
 * cancelled first; after coap_cancel_request returned 0 it is never called
 * again, whatever the request was doing. Every path, our client against
 * our server on the simulated network, each run long past every timer
 * (so a late answer, retransmission or block would show), under ASan in
 * the sanitizer build (a record freed by the cancel and touched later
 * would show too):
 * - a CON not yet answered; a request waiting for its separate response
 *   (after the empty ACK); a NON;
 * - a Block2 download and a Block1 upload in the middle; a Q-Block2
 *   download in the middle of its bursts;
 * - an observation, and an observation fetching the rest of a block-wise
 *   notification;
 * - a request waiting for its DTLS handshake;
 * - cancelling from inside the callback (a notification's; the last
 *   call's, when the request is already over: COAP_E_NOT_FOUND);
 * - after the reply was delivered, twice, an unknown id: COAP_E_NOT_FOUND,
 *   and the callback ran exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/coaps.h"
#include "support_reply.h"
#include "support_simnet.h"

#define LONG_AFTER 400000 /* ms: past EXCHANGE_LIFETIME and every retransmission */

static simnet_t net;
static simnet_node_t *server, *client;
static coap_deferred_t *parked;
static coap_resource_t *obs_res, *bigobs_res;
static unsigned counter, handler_calls;
static char big_body[4000];

static void slow(coap_context_t *ctx, coap_resource_t *r, const coap_request_t *req,
                 coap_response_t *resp, void *user) {
  handler_calls++;
  parked = coap_request_defer(req, resp);
  assert_non_null(parked);
}

static void big(coap_context_t *ctx, coap_resource_t *r, const coap_request_t *req,
                coap_response_t *resp, void *user) {
  handler_calls++;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, big_body, sizeof big_body);
}

static void put(coap_context_t *ctx, coap_resource_t *r, const coap_request_t *req,
                coap_response_t *resp, void *user) {
  handler_calls++;
  coap_response_set_code(resp, COAP_CHANGED);
}

static void obs(coap_context_t *ctx, coap_resource_t *r, const coap_request_t *req,
                coap_response_t *resp, void *user) {
  char text[32];
  int n = snprintf(text, sizeof text, "state %u", counter);
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, text, (size_t)n);
}

static void bigobs(coap_context_t *ctx, coap_resource_t *r, const coap_request_t *req,
                   coap_response_t *resp, void *user) {
  memset(big_body, 'a' + (int)(counter % 26), 600);
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, big_body, 600);
}

static void add(const char *path, uint8_t method, coap_handler_fn fn, coap_resource_t **out) {
  coap_resource_t *r = coap_resource_add(server->ctx, path);
  assert_non_null(r);
  assert_int_equal(coap_resource_set_handler(r, method, fn, NULL), 0);
  if (out) *out = r;
}

static int setup(void **state) {
  simnet_init(&net);
  net.latency_ms = 10;
  server = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_UDP, NULL);
  add("slow", COAP_GET, slow, NULL);
  add("big", COAP_GET, big, NULL);
  add("put", COAP_PUT, put, NULL);
  add("obs", COAP_GET, obs, &obs_res);
  add("bigobs", COAP_GET, bigobs, &bigobs_res);
  assert_int_equal(coap_resource_set_observable(obs_res, 1), 0);
  assert_int_equal(coap_resource_set_observable(bigobs_res, 1), 0);
  memset(big_body, 'b', sizeof big_body);
  parked = NULL;
  counter = handler_calls = 0;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

/* Send |o| from the client into |box|; returns the request's id. */
static coap_request_id_t send_req(const coap_request_opts_t *o, sim_reply_t *box) {
  coap_request_id_t id = 0;
  sim_reply_reset(box);
  assert_int_equal(coap_send_request(client->ctx, o, sim_on_reply, box, &id), 0);
  assert_true(id != 0);
  return id;
}

static void cancel_and_check_silence(coap_request_id_t id, sim_reply_t *box, int calls_before) {
  assert_int_equal(coap_cancel_request(client->ctx, id), 0);
  assert_int_equal(coap_cancel_request(client->ctx, id), COAP_E_NOT_FOUND); /* twice */
  simnet_run_until(&net, net.now + LONG_AFTER);
  assert_int_equal(box->calls, calls_before);
}

static void test_cancel_before_any_answer(void **state) {
  coap_request_opts_t o;
  sim_reply_t box;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/big");
  coap_request_id_t id = send_req(&o, &box);
  cancel_and_check_silence(id, &box, 0); /* the answer arrives, nobody is told */
  o.confirmable = 0;                     /* a NON */
  id = send_req(&o, &box);
  simnet_run_until(&net, net.now + 5);
  cancel_and_check_silence(id, &box, 0);
  /* The client still works. */
  sim_get(client, "coap://10.0.0.1/obs", &box, 10000);
  assert_int_equal(box.calls, 1);
  assert_int_equal(box.status, 0);
}

static void test_cancel_waiting_for_separate_response(void **state) {
  coap_request_opts_t o;
  sim_reply_t box;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/slow");
  coap_request_id_t id = send_req(&o, &box);
  simnet_run_until(&net, net.now + 2000); /* the empty ACK came */
  assert_non_null(parked);
  assert_int_equal(box.calls, 0);
  assert_int_equal(coap_cancel_request(client->ctx, id), 0);
  /* the separate response comes now: answered with RST, not delivered */
  assert_int_equal(coap_deferred_send(server->ctx, parked), 0);
  simnet_run_until(&net, net.now + LONG_AFTER);
  assert_int_equal(box.calls, 0);
  coap_stats_t s;
  coap_context_get_stats(client->ctx, &s);
  assert_true(s.resets_sent >= 1);
}

static void test_cancel_in_the_middle_of_block2(void **state) {
  coap_request_opts_t o;
  sim_reply_t box;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/big");
  o.block_size = 64; /* 63 blocks, 20 ms each */
  o.qblock = -1;
  coap_request_id_t id = send_req(&o, &box);
  simnet_run_until(&net, net.now + 300);
  assert_int_equal(box.calls, 0);
  assert_true(handler_calls >= 1);
  coap_stats_t s;
  coap_context_get_stats(client->ctx, &s);
  assert_true(s.requests_sent > 3 && s.requests_sent < 60); /* in the middle */
  cancel_and_check_silence(id, &box, 0);
}

static void test_cancel_in_the_middle_of_block1(void **state) {
  coap_request_opts_t o;
  sim_reply_t box;
  coap_request_opts_init(&o, COAP_PUT, "coap://10.0.0.1/put");
  o.payload = big_body;
  o.payload_len = sizeof big_body;
  o.block_size = 64;
  o.qblock = -1;
  coap_request_id_t id = send_req(&o, &box);
  simnet_run_until(&net, net.now + 300);
  assert_int_equal(box.calls, 0);
  assert_int_equal(handler_calls, 0); /* the body is not complete */
  cancel_and_check_silence(id, &box, 0);
  assert_int_equal(handler_calls, 0);
}

static void test_cancel_in_the_middle_of_qblock2(void **state) {
  coap_request_opts_t o;
  sim_reply_t box;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/big");
  o.block_size = 64;
  o.qblock = 1;
  coap_request_id_t id = send_req(&o, &box);
  simnet_run_until(&net, net.now + 45);
  assert_int_equal(box.calls, 0);
  coap_stats_t s;
  coap_context_get_stats(client->ctx, &s);
  assert_true(s.requests_sent >= 2); /* past the probe: the bursts are coming */
  cancel_and_check_silence(id, &box, 0);
  /* and one that is let finish gets its body whole, once */
  send_req(&o, &box);
  simnet_run_until(&net, net.now + LONG_AFTER);
  assert_int_equal(box.calls, 1);
  assert_int_equal(box.status, 0);
}

static void test_cancel_an_observation(void **state) {
  coap_request_opts_t o;
  sim_reply_t box;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/obs");
  o.observe = 1;
  coap_request_id_t id = send_req(&o, &box);
  simnet_run_until(&net, net.now + 1000);
  assert_int_equal(box.calls, 1);
  counter++;
  assert_int_equal(coap_resource_notify(obs_res), 1);
  simnet_run_until(&net, net.now + 1000);
  assert_int_equal(box.calls, 2);
  assert_int_equal(coap_cancel_request(client->ctx, id), 0);
  /* the next notification gets RST, and the server forgets the observer */
  counter++;
  coap_resource_notify(obs_res);
  simnet_run_until(&net, net.now + LONG_AFTER);
  assert_int_equal(box.calls, 2);
  assert_int_equal(coap_resource_observer_count(obs_res), 0);
  assert_int_equal(coap_cancel_request(client->ctx, id), COAP_E_NOT_FOUND);
}

static void test_cancel_an_observation_fetching_blocks(void **state) {
  coap_request_opts_t o;
  sim_reply_t box;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/bigobs");
  o.observe = 1;
  o.block_size = 64;
  coap_request_id_t id = send_req(&o, &box);
  simnet_run_until(&net, net.now + 2000);
  assert_int_equal(box.calls, 1); /* the registration's answer, whole */
  assert_int_equal(box.payload_len, 600);
  counter++;
  assert_int_equal(coap_resource_notify(bigobs_res), 1);
  simnet_run_until(&net, net.now + 50); /* block 0 came; the rest is being fetched */
  assert_int_equal(box.calls, 1);
  coap_stats_t s;
  coap_context_get_stats(client->ctx, &s);
  assert_int_equal(s.observations, 1);
  cancel_and_check_silence(id, &box, 1);
  coap_context_get_stats(client->ctx, &s);
  assert_int_equal(s.observations, 0);
  assert_int_equal(s.reassembly_bytes, 0); /* the fetch is gone with it */
}

/* The callback of an observation cancels it on the second call. */
typedef struct self_cancel {
  coap_request_id_t id;
  int calls, cancel_rc;
} self_cancel_t;

static void cancel_on_second_call(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  self_cancel_t *c = user;
  if (++c->calls == 2) c->cancel_rc = coap_cancel_request(ctx, c->id);
}

static void test_cancel_from_inside_a_notification(void **state) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/obs");
  o.observe = 1;
  self_cancel_t c = {0, 0, 1};
  assert_int_equal(coap_send_request(client->ctx, &o, cancel_on_second_call, &c, &c.id), 0);
  simnet_run_until(&net, net.now + 1000);
  for (int i = 0; i < 3; i++) {
    counter++;
    coap_resource_notify(obs_res);
    simnet_run_until(&net, net.now + 1000);
  }
  simnet_run_until(&net, net.now + LONG_AFTER);
  assert_int_equal(c.calls, 2);
  assert_int_equal(c.cancel_rc, 0);
}

/* The last call's callback cancels its own request: it is over already. */
static void cancel_self(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  self_cancel_t *c = user;
  c->calls++;
  c->cancel_rc = coap_cancel_request(ctx, c->id);
}

static void test_cancel_from_inside_the_last_call(void **state) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/big");
  o.block_size = 256; /* block-wise: the body lives until the callback returns */
  self_cancel_t c = {0, 0, 1};
  assert_int_equal(coap_send_request(client->ctx, &o, cancel_self, &c, &c.id), 0);
  simnet_run_until(&net, net.now + LONG_AFTER);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.cancel_rc, COAP_E_NOT_FOUND);
}

static void test_cancel_after_the_reply(void **state) {
  sim_reply_t box;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/obs");
  coap_request_id_t id = send_req(&o, &box);
  simnet_run_until(&net, net.now + LONG_AFTER);
  assert_int_equal(box.calls, 1);
  assert_int_equal(coap_cancel_request(client->ctx, id), COAP_E_NOT_FOUND);
  assert_int_equal(coap_cancel_request(client->ctx, 987654), COAP_E_NOT_FOUND);
  assert_int_equal(box.calls, 1);
}

static void set_psk(coap_context_t *ctx) {
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  assert_non_null(d);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"id", (const uint8_t *)"0123456789abcdef", 16), 0);
  assert_int_equal(coap_context_set_dtls_context(ctx, d), 0);
}

static void test_cancel_during_the_handshake(void **state) {
  simnet_node_t *dserver = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  simnet_node_t *dclient = simnet_add_node(&net, 40001, COAP_PROTO_DTLS, NULL);
  set_psk(dserver->ctx);
  set_psk(dclient->ctx);
  coap_resource_t *r = coap_resource_add(dserver->ctx, "x");
  coap_resource_set_handler(r, COAP_GET, put, NULL);
  sim_reply_t box, other;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.3/x");
  coap_request_id_t id = 0;
  sim_reply_reset(&box);
  assert_int_equal(coap_send_request(dclient->ctx, &o, sim_on_reply, &box, &id), 0);
  sim_reply_reset(&other);
  assert_int_equal(coap_send_request(dclient->ctx, &o, sim_on_reply, &other, NULL), 0);
  simnet_run_until(&net, net.now + 15); /* the hello is on its way */
  assert_int_equal(coap_cancel_request(dclient->ctx, id), 0);
  simnet_run_until(&net, net.now + LONG_AFTER);
  assert_int_equal(box.calls, 0);
  assert_int_equal(other.calls, 1); /* the other request of the handshake goes on */
  assert_int_equal(other.status, 0);
  assert_int_equal(handler_calls, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_cancel_before_any_answer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_waiting_for_separate_response, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_in_the_middle_of_block2, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_in_the_middle_of_block1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_in_the_middle_of_qblock2, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_an_observation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_an_observation_fetching_blocks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_from_inside_a_notification, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_from_inside_the_last_call, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_after_the_reply, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_during_the_handshake, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
