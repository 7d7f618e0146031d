/* A full peer table makes room for a newcomer by forgetting the peer silent
 * longest, once it has been silent for peer_evict_ms and has nothing open;
 * until then, and with peer_evict_ms 0, newcomers are refused. The server
 * here keeps 3 peers; clients are nodes 10.0.0.2 to 10.0.0.6, and the
 * virtual clock says who was silent how long. DTLS: the session evicted
 * gets a close_notify, so its client starts a new handshake for its next
 * request instead of waiting for a timeout. A client context never evicts
 * to send a request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "context/context_internal.h"
#include "peer/peer_table.h"
#include "support_reply.h"
#include "support_simnet.h"

#define MAX_PEERS 3
#define EVICT_MS 30000
#define N_CLIENTS 5

static simnet_t net;
static simnet_node_t *server, *clients[N_CLIENTS];
static coap_deferred_t *pending;
static coap_proto_t proto;
static uint64_t t0; /* the virtual clock at the start: times below are after it */

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hello", 5);
}

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

static void make_nodes(coap_proto_t p, uint32_t evict_ms) {
  proto = p;
  simnet_init(&net);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.max_peers = MAX_PEERS;
  cfg.peer_evict_ms = evict_ms;
  server = simnet_add_node(&net, p == COAP_PROTO_DTLS ? 5684 : 5683, p, &cfg);
  assert_non_null(server);
  coap_resource_set_handler(coap_resource_add(server->ctx, "hello"), COAP_GET, hello, NULL);
  coap_resource_set_handler(coap_resource_add(server->ctx, "slow"), COAP_GET, slow, NULL);
  if (p == COAP_PROTO_DTLS) set_psk(server->ctx);
  for (int i = 0; i < N_CLIENTS; i++) {
    clients[i] = simnet_add_node(&net, 40000, p, NULL);
    assert_non_null(clients[i]);
    if (p == COAP_PROTO_DTLS) set_psk(clients[i]->ctx);
  }
  pending = NULL;
  t0 = net.now;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

/* Client i sends GET /path; |timeout_ms| 0: the default. */
static void start_get(int i, const char *path, sim_reply_t *box, uint32_t timeout_ms) {
  char uri[64];
  snprintf(uri, sizeof uri, "%s://10.0.0.1:%u/%s", proto == COAP_PROTO_DTLS ? "coaps" : "coap",
           proto == COAP_PROTO_DTLS ? 5684u : 5683u, path);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, uri);
  o.timeout_ms = timeout_ms;
  sim_send(clients[i], &o, box);
}

/* Client i asks at virtual time |at| and must get 2.05. */
static void get_ok_at(int i, uint64_t at) {
  simnet_run_until(&net, t0 + at);
  sim_reply_t box;
  start_get(i, "hello", &box, 0);
  assert_true(simnet_run_until_flag(&net, &box.done, 10000));
  assert_int_equal(box.status, 0);
  assert_int_equal(box.code, COAP_CONTENT);
}

/* Client i asks at |at| and gets no answer within 5 s: refused. */
static void get_refused_at(int i, uint64_t at) {
  simnet_run_until(&net, t0 + at);
  sim_reply_t box;
  start_get(i, "hello", &box, 5000);
  assert_true(simnet_run_until_flag(&net, &box.done, 20000));
  assert_true(box.status < 0);
}

static int server_knows(int i) {
  return coap_peer_table_find(&server->ctx->peers, server->ep, &clients[i]->addr) != NULL;
}

static coap_stats_t server_stats(void) {
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  return st;
}

/* Clients 0, 1, 2 fill the table at 0 s, 1 s and 2 s. */
static void fill_table(void) {
  for (int i = 0; i < MAX_PEERS; i++) get_ok_at(i, (uint64_t)i * 1000);
  assert_int_equal(server_stats().peers, MAX_PEERS);
}

static void newcomer_refused_until_someone_is_silent_long_enough(coap_proto_t p) {
  make_nodes(p, EVICT_MS);
  fill_table();
  /* At 10 s the oldest has been silent 10 s: not long enough. */
  get_refused_at(3, 10000);
  assert_false(server_knows(3));
  assert_true(server_stats().peers_rejected > 0);
  assert_int_equal(server_stats().peers_evicted, 0);
  /* Client 0 speaks at 20 s: from then on client 1 is the silent longest. */
  get_ok_at(0, 20000);
  /* At 40 s client 1 has been silent 39 s, client 2 38 s: 1 goes. */
  get_ok_at(3, 40000);
  assert_true(server_knows(3));
  assert_false(server_knows(1));
  assert_true(server_knows(0));
  assert_true(server_knows(2));
  assert_int_equal(server_stats().peers_evicted, 1);
  assert_int_equal(server_stats().peers, MAX_PEERS);
  /* Next, client 2 (silent 40 s); client 0 (silent 21 s) stays. */
  get_ok_at(4, 41000);
  assert_false(server_knows(2));
  assert_true(server_knows(0));
  assert_int_equal(server_stats().peers_evicted, 2);
}

static void test_plain_evicts_silent_longest(void **state) {
  newcomer_refused_until_someone_is_silent_long_enough(COAP_PROTO_UDP);
}

static void test_dtls_evicts_silent_longest(void **state) {
  newcomer_refused_until_someone_is_silent_long_enough(COAP_PROTO_DTLS);
}

/* A peer waiting for a deferred response is not evicted, however long it
 * has been silent: the next one goes instead. */
static void test_open_exchange_is_not_evicted(void **state) {
  make_nodes(COAP_PROTO_UDP, EVICT_MS);
  sim_reply_t slow_box;
  start_get(0, "slow", &slow_box, 0);
  simnet_run_until(&net, t0 + 500);
  assert_non_null(pending);
  get_ok_at(1, 1000);
  get_ok_at(2, 2000);
  get_ok_at(3, 60000);
  assert_true(server_knows(0));
  assert_false(server_knows(1));
  assert_false(slow_box.done);
  /* The deferred response still reaches client 0. */
  coap_response_set_payload(coap_deferred_response(pending), COAP_FORMAT_TEXT_PLAIN, "late", 4);
  assert_int_equal(coap_deferred_send(server->ctx, pending), 0);
  assert_true(simnet_run_until_flag(&net, &slow_box.done, 10000));
  assert_int_equal(slow_box.status, 0);
  assert_int_equal(slow_box.code, COAP_CONTENT);
}

/* peer_evict_ms 0: the table full stays full until peers expire. */
static void test_eviction_off(void **state) {
  make_nodes(COAP_PROTO_UDP, 0);
  fill_table();
  get_refused_at(3, 200000);
  assert_false(server_knows(3));
  assert_int_equal(server_stats().peers_evicted, 0);
  assert_true(server_stats().peers_rejected > 0);
}

/* The evicted DTLS client hears close_notify: its next request goes over
 * a new handshake at once (making room in turn) instead of timing out. */
static void test_dtls_evicted_client_reconnects(void **state) {
  make_nodes(COAP_PROTO_DTLS, EVICT_MS);
  fill_table();
  get_ok_at(3, 40000); /* evicts client 0 */
  assert_false(server_knows(0));
  simnet_run_until(&net, t0 + 41000); /* the close_notify arrives */
  coap_stats_t before;
  coap_context_get_stats(clients[0]->ctx, &before);
  get_ok_at(0, 42000); /* evicts client 1 */
  assert_true(server_knows(0));
  assert_false(server_knows(1));
  coap_stats_t after;
  coap_context_get_stats(clients[0]->ctx, &after);
  assert_int_equal(after.dtls_handshakes, before.dtls_handshakes + 1);
  assert_int_equal(after.retransmissions, before.retransmissions);
}

/* A client context sends; it never forgets a server to make room. */
static void test_client_never_evicts_to_send(void **state) {
  simnet_init(&net);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.max_peers = 1;
  cfg.peer_evict_ms = 1;
  simnet_node_t *a = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL);
  simnet_node_t *b = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL);
  simnet_node_t *c = simnet_add_node(&net, 40000, COAP_PROTO_UDP, &cfg);
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(c);
  coap_resource_set_handler(coap_resource_add(a->ctx, "hello"), COAP_GET, hello, NULL);
  coap_resource_set_handler(coap_resource_add(b->ctx, "hello"), COAP_GET, hello, NULL);
  sim_reply_t box;
  sim_get(c, "coap://10.0.0.1:5683/hello", &box, 10000);
  assert_int_equal(box.code, COAP_CONTENT);
  simnet_run_until(&net, net.now + 60000);
  sim_reply_reset(&box);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2:5683/hello");
  int rc = coap_send_request(c->ctx, &o, sim_on_reply, &box, NULL);
  if (rc == 0) {
    assert_true(simnet_run_until_flag(&net, &box.done, 10000));
    rc = box.status;
  }
  assert_int_equal(rc, COAP_E_LIMIT);
  coap_stats_t st;
  coap_context_get_stats(c->ctx, &st);
  assert_int_equal(st.peers_evicted, 0);
  assert_int_equal(st.peers, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_plain_evicts_silent_longest, teardown),
      cmocka_unit_test_teardown(test_dtls_evicts_silent_longest, teardown),
      cmocka_unit_test_teardown(test_open_exchange_is_not_evicted, teardown),
      cmocka_unit_test_teardown(test_eviction_off, teardown),
      cmocka_unit_test_teardown(test_dtls_evicted_client_reconnects, teardown),
      cmocka_unit_test_teardown(test_client_never_evicts_to_send, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
