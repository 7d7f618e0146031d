/* A timer that cannot be armed (the timer heap cannot grow: memory ran
 * out) must never leave state that nothing will free. The heap of one
 * context is filled to its capacity with timers due at the end of time,
 * and its grow hook (coap_timer_heap_t.grow) then fails as realloc does
 * without memory; arming a new timer fails, moving an armed one still
 * works. Then: the server's Block1 and Q-Block1 bodies are refused with
 * 5.03 and keep no entry; a Block2 copy is not kept (no bytes held) and
 * the transfer still completes; a client request whose deadline, or
 * whose Q-Block transfer's timer, cannot be armed is refused by
 * coap_send_request with COAP_E_NOMEM and leaves no request behind, and
 * so is a NON or CON request whose exchange timer cannot be armed. Once
 * the heap may grow again, the same requests succeed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/timer.h"
#include "context/context_internal.h"
#include "coaps/context.h"
#include "support_reply.h"
#include "support_simnet.h"
#include "support_store.h"

#define BODY_LEN (5 * 1024 + 100)

static simnet_t net;
static simnet_node_t *client, *server;
static uint8_t body[BODY_LEN], stored[BODY_LEN];
static sim_store_t store = {stored, sizeof stored, 0, 0};

static void body_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  (void)ctx, (void)res, (void)req, (void)user;
  coap_response_set_payload(resp, COAP_FORMAT_OCTET_STREAM, body, sizeof body);
}

static void small_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  (void)ctx, (void)res, (void)req, (void)user;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

/* ---- a heap that cannot grow ---- */

#define FILLERS_MAX 4096
static coap_timer_t fillers[FILLERS_MAX];
static size_t n_fillers;
static coap_timer_heap_t *starved;
static unsigned refused; /* times the heap asked to grow and was refused */

static void never(coap_timer_t *t, uint64_t now, void *user) {
  (void)t, (void)now, (void)user;
  fail_msg("a filler timer fired");
}

static void *no_memory(void *items, size_t bytes) {
  (void)items, (void)bytes;
  refused++;
  return NULL;
}

static void starve(coap_context_t *ctx) {
  coap_timer_heap_t *h = &ctx->timers;
  while (h->cap == 0 || h->len < h->cap) {
    assert_true(n_fillers < FILLERS_MAX);
    coap_timer_t *t = &fillers[n_fillers++];
    coap_timer_init(t, never, NULL);
    assert_int_equal(coap_timer_arm(h, t, UINT64_MAX - 1), 0);
  }
  h->grow = no_memory;
  starved = h;
  refused = 0;
}

static void feed(void) {
  if (!starved) return;
  starved->grow = NULL;
  for (size_t i = 0; i < n_fillers; i++) coap_timer_cancel(starved, &fillers[i]);
  n_fillers = 0;
  starved = NULL;
}

/* ---- setup ---- */

static int setup_with(int qblock) {
  simnet_init(&net);
  coap_context_config_t cc;
  coap_context_config_default(&cc);
  cc.qblock_client = qblock;
  client = simnet_add_node(&net, 40000, COAP_PROTO_UDP, &cc);
  server = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL);
  assert_non_null(client);
  assert_non_null(server);
  coap_resource_t *r = coap_resource_add(server->ctx, "body");
  coap_resource_set_handler(r, COAP_PUT, sim_store_put, &store);
  coap_resource_set_handler(r, COAP_GET, body_get, NULL);
  coap_resource_set_handler(coap_resource_add(server->ctx, "small"), COAP_GET, small_get, NULL);
  for (size_t i = 0; i < sizeof body; i++) body[i] = (uint8_t)(i * 11 + (i >> 9) + 5);
  store.len = 0;
  store.calls = 0;
  /* A first exchange makes each side's peer entry (whose idle timer is
   * armed then): what is starved later is the transfer alone. */
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/small");
  sim_reply_t rep;
  sim_reply_reset(&rep);
  assert_int_equal(coap_send_request(client->ctx, &o, sim_on_reply, &rep, NULL), 0);
  assert_true(simnet_run_until_flag(&net, &rep.done, net.now + 60000));
  assert_int_equal(rep.code, COAP_CONTENT);
  return 0;
}

static int setup_plain(void **state) {
  (void)state;
  return setup_with(0);
}

static int setup_qblock(void **state) {
  (void)state;
  return setup_with(1);
}

static int teardown(void **state) {
  (void)state;
  feed();
  simnet_free(&net);
  return 0;
}

static void opts(coap_request_opts_t *o, uint8_t method) {
  coap_request_opts_init(o, method, "coap://10.0.0.2/body");
  o->block_size = 1024;
  if (method == COAP_PUT) {
    o->payload = body;
    o->payload_len = sizeof body;
  }
}

static void run(coap_request_opts_t *o, sim_reply_t *rep) {
  sim_reply_reset(rep);
  assert_int_equal(coap_send_request(client->ctx, o, sim_on_reply, rep, NULL), 0);
  assert_true(simnet_run_until_flag(&net, &rep->done, net.now + 300000));
  simnet_run_until(&net, net.now + 1000);
  assert_int_equal(rep->calls, 1);
}

/* What the server keeps for block-wise transfers: nothing. */
static void server_keeps_nothing(void) {
  assert_int_equal(server->ctx->server.b1.count, 0);
  assert_int_equal(server->ctx->server.b1.bytes, 0);
}

/* ---- the server ---- */

static void put_refused_then_accepted(void) {
  coap_request_opts_t o;
  opts(&o, COAP_PUT);
  sim_reply_t rep;
  starve(server->ctx);
  run(&o, &rep);
  assert_int_equal(rep.status, 0);
  assert_int_equal(rep.code, COAP_SERVICE_UNAVAILABLE);
  assert_true(refused > 0);
  assert_int_equal(store.calls, 0);
  server_keeps_nothing();
  feed();
  run(&o, &rep);
  assert_int_equal(rep.code, COAP_CHANGED);
  assert_int_equal(store.calls, 1);
  assert_int_equal(store.len, sizeof body);
  assert_memory_equal(stored, body, sizeof body);
}

/* RFC 7959 Block1: the body's entry could not get its expiry timer. */
static void test_block1_body_refused(void **state) {
  (void)state;
  put_refused_then_accepted();
}

/* RFC 9177 Q-Block1: the same. */
static void test_qblock1_body_refused(void **state) {
  (void)state;
  put_refused_then_accepted();
}

/* A Block2 copy that could not get its timer is not kept: no bytes held
 * by the server, and the GET still gets the whole body. */
static void test_block2_copy_not_kept(void **state) {
  (void)state;
  coap_request_opts_t o;
  opts(&o, COAP_GET);
  sim_reply_t rep;
  starve(server->ctx);
  run(&o, &rep);
  assert_int_equal(rep.status, 0);
  assert_int_equal(rep.code, COAP_CONTENT);
  assert_true(refused > 0);
  server_keeps_nothing();
  feed();
  run(&o, &rep);
  assert_int_equal(rep.code, COAP_CONTENT);
  assert_true(server->ctx->server.b1.bytes > 0); /* now a copy is kept */
}

/* ---- the client ---- */

static void send_refused_then_accepted(coap_request_opts_t *o) {
  sim_reply_t rep;
  sim_reply_reset(&rep);
  starve(client->ctx);
  assert_int_equal(coap_send_request(client->ctx, o, sim_on_reply, &rep, NULL), COAP_E_NOMEM);
  assert_true(refused > 0);
  assert_null(client->ctx->client.requests);
  simnet_run_until(&net, net.now + 300000);
  assert_int_equal(rep.calls, 0); /* refused by the call: no callback */
  feed();
  run(o, &rep);
  assert_int_equal(rep.status, 0);
  assert_int_equal(rep.code, COAP_CONTENT);
}

/* The request's deadline (timeout_ms) cannot be armed. */
static void test_request_deadline(void **state) {
  (void)state;
  coap_request_opts_t o;
  opts(&o, COAP_GET);
  o.timeout_ms = 30000;
  send_refused_then_accepted(&o);
}

/* No deadline asked for: the Q-Block2 transfer's own timer cannot be
 * armed. */
static void test_qblock_transfer_timer(void **state) {
  (void)state;
  coap_request_opts_t o;
  opts(&o, COAP_GET);
  o.timeout_ms = 0;
  send_refused_then_accepted(&o);
}

/* A NON request without a deadline: only its exchange's timer would end
 * it if no answer came. */
static void test_non_request_timer(void **state) {
  (void)state;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/small");
  o.confirmable = 0;
  o.timeout_ms = 0;
  send_refused_then_accepted(&o);
}

/* The same for a CON: its retransmission timer cannot be armed, so it
 * is not sent rather than never retransmitted nor ended. */
static void test_con_request_timer(void **state) {
  (void)state;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/small");
  o.confirmable = 1;
  o.timeout_ms = 0;
  send_refused_then_accepted(&o);
}

/* A new peer's entry cannot be made (its idle timer cannot be armed):
 * that is no memory, not the peer limit (raising max_peers would not
 * help). The request is refused with COAP_E_NOMEM, a datagram from a new
 * address gets the same from coap_context_input, and no entry is left;
 * a full table still says COAP_E_LIMIT. */
static void test_new_peer_entry(void **state) {
  (void)state;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.7/small");
  sim_reply_t rep;
  sim_reply_reset(&rep);
  size_t peers = client->ctx->peers.count;
  starve(client->ctx);
  assert_int_equal(coap_send_request(client->ctx, &o, sim_on_reply, &rep, NULL), COAP_E_NOMEM);
  assert_true(refused > 0);
  assert_int_equal(client->ctx->peers.count, peers);
  assert_int_equal(client->ctx->peers_rejected, 0);
  feed();
  /* The server: a datagram from an address it does not know. */
  static const uint8_t ping[4] = {0x40, 0x00, 0x12, 0x34}; /* CON, empty */
  coap_address_t stranger;
  coap_address_from_string(&stranger, "10.0.0.8", 40000);
  peers = server->ctx->peers.count;
  starve(server->ctx);
  assert_int_equal(
      coap_context_input(server->ctx, server->ep, &stranger, ping, sizeof ping, net.now),
      COAP_E_NOMEM);
  assert_int_equal(server->ctx->peers.count, peers);
  feed();
  /* The table full: the limit it is. */
  client->ctx->cfg.max_peers = client->ctx->peers.count;
  assert_int_equal(coap_send_request(client->ctx, &o, sim_on_reply, &rep, NULL), COAP_E_LIMIT);
  assert_int_equal(client->ctx->peers_rejected, 1);
  server->ctx->cfg.max_peers = server->ctx->peers.count;
  assert_int_equal(
      coap_context_input(server->ctx, server->ep, &stranger, ping, sizeof ping, net.now),
      COAP_E_LIMIT);
  simnet_run_until(&net, net.now + 300000);
  assert_int_equal(rep.calls, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_block1_body_refused, setup_plain, teardown),
      cmocka_unit_test_setup_teardown(test_qblock1_body_refused, setup_qblock, teardown),
      cmocka_unit_test_setup_teardown(test_block2_copy_not_kept, setup_plain, teardown),
      cmocka_unit_test_setup_teardown(test_request_deadline, setup_plain, teardown),
      cmocka_unit_test_setup_teardown(test_qblock_transfer_timer, setup_qblock, teardown),
      cmocka_unit_test_setup_teardown(test_non_request_timer, setup_plain, teardown),
      cmocka_unit_test_setup_teardown(test_con_request_timer, setup_plain, teardown),
      cmocka_unit_test_setup_teardown(test_new_peer_entry, setup_plain, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
