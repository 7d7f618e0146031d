/* Q-Block (RFC 9177) through a program's own transport that delivers
 * every datagram at once, inside the send call: the server's answer
 * reaches the client while the client's coap_exch_request is still on the
 * stack. The client must not keep (or use) a transfer's exchange, or the
 * transfer itself, that the answer has already finished: each transfer
 * (GET and PUT, a CON probe first or NON from the start, against a server
 * that knows Q-Block and one that answers 4.02 and gets RFC 7959 blocks)
 * completes byte-exact with one callback, and AddressSanitizer (the
 * sanitized build runs this too) finds no use of freed state.
 *
 * The client may be re-entered (that is the case under test); the server
 * is not: a datagram for it while it handles one waits until it is done,
 * as a transport with a queue per receiver would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/context.h"
#include "support_store.h"

#define BLOCK 256
#define BODY_LEN (9 * BLOCK + 100) /* 10 blocks */

typedef struct held {
  coap_address_t from;
  size_t len;
  uint8_t data[1500];
} held_t;

static struct {
  uint64_t now;
  coap_context_t *client, *server;
  coap_endpoint_t *client_ep, *server_ep;
  coap_address_t client_addr, server_addr;
  int server_busy;
  held_t server_queue[64];
  size_t n_server_queue;
  unsigned depth;          /* client sends on the stack */
  unsigned answers_inside; /* datagrams into the client inside one of its sends */
  unsigned datagrams;
} net;

static uint8_t body[BODY_LEN], stored[BODY_LEN];
static sim_store_t store = {stored, sizeof stored, 0, 0};

static uint64_t virtual_now(void *user) {
  (void)user;
  return net.now;
}

static void fill_rand(void *user, uint8_t *buf, size_t len) {
  static uint32_t state = 12345;
  (void)user;
  for (size_t i = 0; i < len; i++) {
    state = state * 1103515245u + 12345u;
    buf[i] = (uint8_t)(state >> 16);
  }
}

static void to_server(const uint8_t *data, size_t len) {
  if (net.server_busy) {
    assert_true(net.n_server_queue < 64);
    held_t *h = &net.server_queue[net.n_server_queue++];
    h->from = net.client_addr;
    h->len = len;
    memcpy(h->data, data, len);
    return;
  }
  net.server_busy = 1;
  coap_context_input(net.server, net.server_ep, &net.client_addr, data, len, net.now);
  /* What came for the server meanwhile, in order. */
  for (size_t i = 0; i < net.n_server_queue; i++) {
    held_t h = net.server_queue[i];
    coap_context_input(net.server, net.server_ep, &h.from, h.data, h.len, net.now);
  }
  net.n_server_queue = 0;
  net.server_busy = 0;
}

static int sync_send(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
                     size_t len) {
  (void)user, (void)to;
  assert_true(len <= sizeof net.server_queue[0].data);
  net.datagrams++;
  if (ep == net.client_ep) {
    net.depth++;
    to_server(data, len);
    net.depth--;
  } else {
    /* At once, into the client, whatever it is in the middle of. */
    if (net.depth) net.answers_inside++;
    coap_context_input(net.client, net.client_ep, &net.server_addr, data, len, net.now);
  }
  return 0;
}

static int open_client(void *user, coap_context_t *ctx, coap_proto_t proto,
                       const coap_address_t *dest, coap_endpoint_t **out) {
  (void)user, (void)dest;
  net.client_ep = *out = coap_context_add_endpoint(ctx, proto, &net.client_addr);
  return *out ? 0 : COAP_E_NOMEM;
}

static void blob_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  (void)ctx, (void)res, (void)req, (void)user;
  coap_response_set_payload(resp, COAP_FORMAT_OCTET_STREAM, body, sizeof body);
}

static int setup_with(int server_knows_qblock) {
  memset(&net, 0, sizeof net);
  net.now = 1000;
  coap_context_config_t cc, sc;
  coap_context_config_default(&cc);
  cc.clock = virtual_now;
  cc.rand = fill_rand;
  cc.qblock_client = 1;
  cc.qblock_max_payloads = 3; /* several sets: answers inside answers */
  sc = cc;
  sc.qblock_client = 0;
  sc.qblock_server_off = !server_knows_qblock;
  net.client = coap_context_new(&cc);
  net.server = coap_context_new(&sc);
  assert_non_null(net.client);
  assert_non_null(net.server);
  coap_address_from_string(&net.client_addr, "10.0.0.1", 40000);
  coap_address_from_string(&net.server_addr, "10.0.0.2", COAP_DEFAULT_PORT);
  coap_transport_t t = {.send = sync_send, .open_client_endpoint = open_client};
  assert_int_equal(coap_context_set_transport(net.client, &t, NULL), 0);
  assert_int_equal(coap_context_set_transport(net.server, &t, NULL), 0);
  net.server_ep = coap_context_add_endpoint(net.server, COAP_PROTO_UDP, &net.server_addr);
  assert_non_null(net.server_ep);
  coap_resource_t *r = coap_resource_add(net.server, "blob");
  coap_resource_set_handler(r, COAP_PUT, sim_store_put, &store);
  coap_resource_set_handler(r, COAP_GET, blob_get, NULL);
  for (size_t i = 0; i < sizeof body; i++) body[i] = (uint8_t)(i * 7 + (i >> 8) * 13 + 1);
  store.len = 0;
  store.calls = 0;
  return 0;
}

static int setup(void **state) {
  (void)state;
  return setup_with(1);
}

static int setup_server_off(void **state) {
  (void)state;
  return setup_with(0);
}

static int teardown(void **state) {
  (void)state;
  coap_context_free(net.client);
  coap_context_free(net.server);
  return 0;
}

typedef struct box {
  int calls, status;
  uint8_t code;
  uint8_t payload[BODY_LEN];
  size_t payload_len;
} box_t;

static void on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  box_t *b = user;
  (void)ctx;
  b->calls++;
  b->status = reply->status;
  b->code = reply->code;
  b->payload_len = reply->payload_len;
  assert_true(reply->payload_len <= sizeof b->payload);
  if (reply->payload_len) memcpy(b->payload, reply->payload, reply->payload_len);
}

/* Send, then let virtual time pass (timers: anything left retransmits,
 * and a second callback would come). */
static void request(uint8_t method, int con, box_t *b) {
  memset(b, 0, sizeof *b);
  coap_request_opts_t o;
  coap_request_opts_init(&o, method, "coap://10.0.0.2/blob");
  o.confirmable = con;
  o.block_size = BLOCK;
  if (method == COAP_PUT) {
    o.payload = body;
    o.payload_len = sizeof body;
  }
  assert_int_equal(coap_send_request(net.client, &o, on_reply, b, NULL), 0);
  for (int i = 0; i < 600; i++) {
    net.now += 1000;
    coap_context_handle_timeouts(net.client, net.now);
    coap_context_handle_timeouts(net.server, net.now);
  }
  assert_int_equal(b->calls, 1);
  assert_int_equal(b->status, 0);
}

static void get_case(int con) {
  box_t *b = malloc(sizeof *b);
  assert_non_null(b);
  request(COAP_GET, con, b);
  assert_int_equal(b->code, COAP_CONTENT);
  assert_int_equal(b->payload_len, sizeof body);
  assert_memory_equal(b->payload, body, sizeof body);
  /* The answers did come inside the client's sends. */
  assert_true(net.answers_inside > 0);
  free(b);
}

static void put_case(int con) {
  box_t *b = malloc(sizeof *b);
  assert_non_null(b);
  request(COAP_PUT, con, b);
  assert_int_equal(b->code, COAP_CHANGED);
  assert_int_equal(store.calls, 1);
  assert_int_equal(store.len, sizeof body);
  assert_memory_equal(stored, body, sizeof body);
  assert_true(net.answers_inside > 0);
  free(b);
}

static void test_get_con_probe(void **state) {
  (void)state;
  get_case(1);
}
static void test_get_non(void **state) {
  (void)state;
  get_case(0);
}
static void test_put_con_probe(void **state) {
  (void)state;
  put_case(1);
}
static void test_put_non(void **state) {
  (void)state;
  put_case(0);
}
/* 4.02 to the probe, inside its send: the RFC 7959 transfer takes over. */
static void test_get_falls_back(void **state) {
  (void)state;
  get_case(1);
}
static void test_put_falls_back(void **state) {
  (void)state;
  put_case(1);
}

/* Several transfers one after the other on the same context: records
 * released inside a send are not reused while still in use. */
static void test_transfers_in_a_row(void **state) {
  (void)state;
  for (int i = 0; i < 4; i++) {
    get_case(i & 1);
    store.calls = 0;
    put_case(!(i & 1));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_get_con_probe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_get_non, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_con_probe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_non, setup, teardown),
      cmocka_unit_test_setup_teardown(test_get_falls_back, setup_server_off, teardown),
      cmocka_unit_test_setup_teardown(test_put_falls_back, setup_server_off, teardown),
      cmocka_unit_test_setup_teardown(test_transfers_in_a_row, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
