/* The client's Q-Block (RFC 9177) against our own server in the simulated
 * network: a 200 KiB PUT in Q-Block1 bursts and a GET in Q-Block2 sets,
 * byte-exact, in far fewer requests than blocks; the same through loss
 * and duplication (a fixed pattern, and 60 random seeds with the first
 * request CON or NON); a server with Q-Block off answers the CON probe 4.02
 * and the transfer goes the RFC 7959 way; a body over max_body ends with
 * COAP_E_TOO_LARGE; with Q-Block off, an answer with a Q-Block2 option
 * not asked for is rejected. Every request ends with exactly one
 * callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/context.h"
#include "support_simnet.h"
#include "support_store.h"

#define BODY_LEN (200 * 1024)
#define BLOCKS (BODY_LEN / 1024)

static simnet_t net;
static simnet_node_t *client, *server;
static uint8_t body[BODY_LEN], stored[BODY_LEN];
static sim_store_t store = {stored, sizeof stored, 0, 0}; /* /blob's PUTs */

typedef struct box {
  int done, calls, status;
  uint8_t code;
  unsigned exchanges;
  char detail[200];
  uint8_t *payload;
  size_t payload_len;
} box_t;

static void on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  box_t *b = user;
  (void)ctx;
  b->calls++;
  b->done = 1;
  b->status = reply->status;
  b->code = reply->code;
  b->exchanges = reply->exchanges;
  snprintf(b->detail, sizeof b->detail, "%s", reply->detail ? reply->detail : "");
  free(b->payload);
  b->payload = malloc(reply->payload_len ? reply->payload_len : 1);
  assert_non_null(b->payload);
  if (reply->payload_len) memcpy(b->payload, reply->payload, reply->payload_len);
  b->payload_len = reply->payload_len;
}

static void blob_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_OCTET_STREAM, stored, store.len);
}

static int setup_with(coap_context_config_t *server_cfg) {
  simnet_init(&net);
  coap_context_config_t cc;
  coap_context_config_default(&cc);
  cc.qblock_client = 1;
  client = simnet_add_node(&net, 40000, COAP_PROTO_UDP, &cc);       /* 10.0.0.1 */
  server = simnet_add_node(&net, 5683, COAP_PROTO_UDP, server_cfg); /* 10.0.0.2 */
  assert_non_null(client);
  assert_non_null(server);
  coap_resource_t *r = coap_resource_add(server->ctx, "blob");
  coap_resource_set_handler(r, COAP_PUT, sim_store_put, &store);
  coap_resource_set_handler(r, COAP_GET, blob_get, NULL);
  for (size_t i = 0; i < sizeof body; i++) body[i] = (uint8_t)(i * 7 + (i >> 10) * 13 + 1);
  store.len = 0;
  store.calls = 0;
  return 0;
}

static int setup(void **state) {
  return setup_with(NULL);
}

static int setup_server_off(void **state) {
  coap_context_config_t sc;
  coap_context_config_default(&sc);
  sc.qblock_server_off = 1;
  return setup_with(&sc);
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static int first_con = 1; /* the first request of a transfer CON (the probe) or NON */

/* Send |o| from |node| into |b| and run until its one callback. */
static void request_and_wait(simnet_node_t *node, const coap_request_opts_t *o, box_t *b) {
  memset(b, 0, sizeof *b);
  assert_int_equal(coap_send_request(node->ctx, o, on_reply, b, NULL), 0);
  assert_true(simnet_run_until_flag(&net, &b->done, net.now + 700000));
  simnet_run_until(&net, net.now + 300000); /* a second callback would come by now */
  assert_int_equal(b->calls, 1);
}

static void send_and_wait(uint8_t method, box_t *b, const void *payload, size_t len) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, method, "coap://10.0.0.2/blob");
  o.confirmable = first_con;
  o.payload = payload;
  o.payload_len = len;
  o.timeout_ms = 600000;
  request_and_wait(client, &o, b);
}

/* PUT then GET back: byte-exact, the handler once. */
static void put_then_get(box_t *put, box_t *get) {
  send_and_wait(COAP_PUT, put, body, sizeof body);
  assert_int_equal(put->status, 0);
  assert_int_equal(put->code, COAP_CHANGED);
  assert_int_equal(store.calls, 1);
  assert_int_equal(store.len, sizeof body);
  assert_memory_equal(stored, body, sizeof body);
  send_and_wait(COAP_GET, get, NULL, 0);
  assert_int_equal(get->status, 0);
  assert_int_equal(get->code, COAP_CONTENT);
  assert_int_equal(get->payload_len, sizeof body);
  assert_memory_equal(get->payload, body, sizeof body);
}

static void test_put_get_in_sets(void **state) {
  box_t put, get;
  put_then_get(&put, &get);
  /* Bursts, not lock-step: one request per block for the PUT (it has to
   * carry them) but one per set of 10 (and the probe) for the GET. */
  assert_true(put.exchanges >= BLOCKS && put.exchanges <= BLOCKS + 5);
  assert_true(get.exchanges <= BLOCKS / 10 + 3);
  free(put.payload);
  free(get.payload);
}

static int lossy(void *user, const simnet_node_t *from, const coap_address_t *to,
                 const uint8_t *data, size_t len, unsigned seq) {
  return seq % 10 == 3 ? 1 : seq % 13 == 5 ? 2 : 0; /* 10 % lost, some doubled */
}

static void test_put_get_through_loss(void **state) {
  net.filter = lossy;
  box_t put, get;
  put_then_get(&put, &get);
  assert_true(put.exchanges > BLOCKS); /* blocks sent again */
  assert_true(get.exchanges < BLOCKS); /* still not one per block */
  free(put.payload);
  free(get.payload);
}

/* Random loss (splitmix64 over the datagrams: an LCG's patterns line up
 * with the traffic), 10 % lost and 5 % doubled each way. */
static uint64_t mix_state;
static int random_loss(void *user, const simnet_node_t *from, const coap_address_t *to,
                       const uint8_t *data, size_t len, unsigned seq) {
  uint64_t z = (mix_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  unsigned r = (unsigned)((z ^ (z >> 31)) % 100);
  return r < 10 ? 1 : r < 15 ? 2 : 0;
}

/* 60 seeds, half with a CON probe first and half all NON: every PUT and
 * GET byte-exact with one callback, the handler once, in bounded virtual
 * time and fewer GET requests than blocks. */
static void test_put_get_many_seeds(void **state) {
  for (unsigned seed = 1; seed <= 60; seed++) {
    if (seed > 1) {
      teardown(state);
      setup(state);
    }
    net.filter = random_loss;
    mix_state = seed * 0x2545F4914F6CDD1Dull;
    first_con = seed & 1;
    box_t put, get;
    uint64_t t0 = net.now;
    put_then_get(&put, &get);
    /* send_and_wait runs 300 s past each answer */
    assert_true(net.now - t0 < 2 * 300000 + 2 * 120000);
    assert_true(get.exchanges < BLOCKS);
    free(put.payload);
    free(get.payload);
  }
  first_con = 1;
}

/* A server with Q-Block off: 4.02 to the probe, then Block1/Block2. */
static void test_fallback_on_4_02(void **state) {
  box_t put, get;
  put_then_get(&put, &get);
  assert_true(get.exchanges >= BLOCKS); /* lock-step, one per block */
  free(put.payload);
  free(get.payload);
}

static void test_over_max_body(void **state) {
  box_t put, get;
  put_then_get(&put, &get);
  free(put.payload);
  free(get.payload);
  coap_context_config_t cc;
  coap_context_config_default(&cc);
  cc.qblock_client = 1;
  cc.max_body = 100 * 1024;
  simnet_node_t *small = simnet_add_node(&net, 40001, COAP_PROTO_UDP, &cc);
  assert_non_null(small);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/blob");
  request_and_wait(small, &o, &get);
  assert_int_equal(get.status, COAP_E_TOO_LARGE);
  free(get.payload);
}

/* The first 1024 bytes of the body with Q-Block2 (block 0, M, 1024
 * bytes) that nobody asked for. */
static void one_qblock(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                       coap_response_t *resp, void *user) {
  uint8_t b2 = 0x0E; /* num 0, M=1, SZX 6 */
  assert_int_equal(coap_response_add_option(resp, COAP_OPTION_Q_BLOCK2, &b2, 1), 0);
  coap_response_set_payload(resp, COAP_FORMAT_OCTET_STREAM, body, 1024);
}

/* Q-Block off: an answer with a Q-Block2 option the request did not
 * carry is one block, not the body; it is rejected (COAP_E_BAD_RESPONSE,
 * a detail naming the option), never handed over as the whole, CON or
 * NON. */
static void test_unasked_qblock2_rejected(void **state) {
  coap_resource_t *res = coap_resource_add(server->ctx, "one");
  coap_resource_set_handler(res, COAP_GET, one_qblock, NULL);
  coap_context_config_t cc;
  coap_context_config_default(&cc);
  cc.qblock_client = 0;
  simnet_node_t *plain = simnet_add_node(&net, 40001, COAP_PROTO_UDP, &cc);
  assert_non_null(plain);
  for (int con = 0; con <= 1; con++) {
    coap_request_opts_t o;
    coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/one");
    o.confirmable = con;
    box_t b;
    request_and_wait(plain, &o, &b);
    assert_int_equal(b.status, COAP_E_BAD_RESPONSE);
    assert_int_equal(b.payload_len, 0);
    assert_non_null(strstr(b.detail, "Q-Block2"));
    free(b.payload);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_put_get_in_sets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_get_through_loss, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_get_many_seeds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fallback_on_4_02, setup_server_off, teardown),
      cmocka_unit_test_setup_teardown(test_over_max_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unasked_qblock2_rejected, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
