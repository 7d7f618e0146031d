/* Only an authenticated record is a sign of a DTLS peer's life. An
 * off-path attacker who knows a session's Connection ID (it travels in
 * clear in every record) or its client's address can send datagrams that
 * reach the session at a steady rate, but none of them authenticates: they
 * must not refresh the peer's idle timer, keep it from being evicted for a
 * newcomer when the table is full, or move it; the CID ones are counted
 * (coap_dtls_cid_stats_t.forged). Checked with a known CID and a random
 * body (from another address and from the client's own), with a genuine
 * record replayed, and without CID from the client's address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"

#define IDLE_MS 60000
#define EVICT_MS 20000

static simnet_t net;
static simnet_node_t *server, *client, *newcomer;
static uint8_t last_record[1500];
static size_t last_record_len;
static uint8_t server_record[1500]; /* the server's last encrypted record */
static size_t server_record_len;
static int server_crashing; /* its datagrams are lost (no close_notify) */

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  (void)ctx, (void)res, (void)req, (void)user;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

/* The client's last encrypted record (tls12_cid or application data). */
static int keep_client_records(void *user, const simnet_node_t *from, const coap_address_t *to,
                               const uint8_t *data, size_t len, unsigned seq) {
  (void)user, (void)to, (void)seq;
  if (server_crashing && from == server) return 1;
  if (from == client && (data[0] == 25 || data[0] == 23) && len <= sizeof last_record) {
    memcpy(last_record, data, len);
    last_record_len = len;
  }
  if (from == server && (data[0] == 25 || data[0] == 23) && len <= sizeof server_record) {
    memcpy(server_record, data, len);
    server_record_len = len;
  }
  return 0;
}

static void set_psk(coap_context_t *ctx, int cid) {
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  assert_non_null(d);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16),
      0);
  assert_int_equal(coap_dtls_set_cid(d, cid, 8), 0);
  assert_int_equal(coap_context_set_dtls_context(ctx, d), 0);
}

static void start(int cid) {
  simnet_init(&net);
  coap_context_config_t sc;
  coap_context_config_default(&sc);
  sc.peer_idle_ms = IDLE_MS;
  sc.peer_evict_ms = EVICT_MS;
  sc.max_peers = 1;
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, &sc);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  newcomer = simnet_add_node(&net, 40001, COAP_PROTO_DTLS, NULL);
  assert_non_null(server);
  assert_non_null(client);
  assert_non_null(newcomer);
  set_psk(server->ctx, cid);
  set_psk(client->ctx, cid);
  set_psk(newcomer->ctx, cid);
  coap_resource_set_handler(coap_resource_add(server->ctx, "hello"), COAP_GET, hello, NULL);
  net.filter = keep_client_records;
  last_record_len = server_record_len = 0;
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 60000);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_true(last_record_len > 13);
  assert_int_equal(last_record[0], cid ? 25 : 23);
  /* Let the exchange's own state go quiet (nothing open). */
  simnet_run_until(&net, net.now + 1000);
}

static int teardown(void **state) {
  (void)state;
  simnet_free(&net);
  return 0;
}

static uint64_t server_peers(void) {
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  return st.peers;
}

static coap_dtls_cid_stats_t server_cid_stats(void) {
  coap_dtls_cid_stats_t st;
  assert_int_equal(coap_dtls_cid_stats(coap_context_dtls(server->ctx), &st), 0);
  return st;
}

typedef enum { RANDOM_BODY, REPLAYED } forgery_t;

/* One forged datagram to the server from |from|: the client's last record
 * with its header kept (type, version, epoch, CID, length) and a random
 * body, or that record again as it was. */
static void forge(forgery_t kind, const coap_address_t *from) {
  uint8_t d[1500];
  memcpy(d, last_record, last_record_len);
  if (kind == RANDOM_BODY) {
    size_t header = d[0] == 25 ? 13 + 8 : 13;
    simnet_rand(&net, d + header, last_record_len - header);
    d[10] = (uint8_t)(d[10] + 1); /* a newer sequence number than any seen */
  }
  coap_context_input(server->ctx, server->ep, from, d, last_record_len, net.now);
}

/* Forgeries every 2 s for |ms| of virtual time. */
static unsigned forge_for(uint64_t ms, forgery_t kind, const coap_address_t *from) {
  unsigned n = 0;
  for (uint64_t end = net.now + ms; net.now < end; n++) {
    forge(kind, from);
    simnet_run_until(&net, net.now + 2000);
  }
  return n;
}

/* |from_client|: the forgeries come from the client's address and port,
 * else from an attacker's. */
static void idle_session_expires(int cid, forgery_t kind, int from_client) {
  start(cid);
  assert_int_equal(server_peers(), 1);
  coap_address_t attacker;
  coap_address_from_string(&attacker, "10.9.9.9", 4444);
  unsigned n = forge_for(2 * IDLE_MS, kind, from_client ? &client->addr : &attacker);
  /* Idle for twice peer_idle_ms whatever came: forgotten. */
  assert_int_equal(server_peers(), 0);
  if (cid) {
    coap_dtls_cid_stats_t st = server_cid_stats();
    assert_int_equal(st.moves, 0);
    /* Each one counted until the peer (and its CID) was forgotten. */
    assert_true(st.forged >= n / 2 - 1);
    assert_true(st.forged <= n);
  }
}

static void test_cid_random_body_from_elsewhere(void **state) {
  (void)state;
  idle_session_expires(1, RANDOM_BODY, 0);
}

static void test_cid_random_body_from_the_client_address(void **state) {
  (void)state;
  idle_session_expires(1, RANDOM_BODY, 1);
}

static void test_cid_replayed_record(void **state) {
  (void)state;
  idle_session_expires(1, REPLAYED, 0);
}

static void test_no_cid_from_the_client_address(void **state) {
  (void)state;
  idle_session_expires(0, RANDOM_BODY, 1);
}

/* The table is full (max_peers 1): a newcomer takes the place of the
 * peer silent for peer_evict_ms, forged records or not. */
static void test_forged_records_do_not_block_eviction(void **state) {
  (void)state;
  start(1);
  coap_address_t attacker;
  coap_address_from_string(&attacker, "10.9.9.9", 4444);
  forge_for(EVICT_MS + 4000, RANDOM_BODY, &attacker);
  assert_int_equal(server_peers(), 1);
  forge(RANDOM_BODY, &attacker);
  sim_reply_t b;
  sim_get(newcomer, "coaps://10.0.0.1/hello", &b, 60000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.peers_evicted, 1);
  assert_int_equal(st.peers_rejected, 0);
}

/* The control: the client's own records do keep it. */
static void test_authentic_records_keep_the_session(void **state) {
  (void)state;
  start(1);
  for (int i = 0; i < 6; i++) {
    simnet_run_until(&net, net.now + IDLE_MS / 3);
    sim_reply_t b;
    sim_get(client, "coaps://10.0.0.1/hello", &b, 60000);
    assert_int_equal(b.code, COAP_CONTENT);
  }
  assert_int_equal(server_peers(), 1);
  assert_int_equal(server_cid_stats().forged, 0);
}

/* The client's side: its server restarted (a crash: no close_notify) and
 * drops its records, while an attacker sends it records "from" the
 * server's address every second. Only the server's authenticated records
 * show it alive: the client still finds the session lost after its
 * silence rule (7 ACK timeouts) and reconnects, and its request is
 * answered, instead of waiting out its deadline. */
static void client_hears_only_authentic(int cid) {
  start(cid);
  assert_true(server_record_len > 13);
  server_crashing = 1;
  assert_int_equal(simnet_node_restart(server), 0);
  server_crashing = 0;
  set_psk(server->ctx, cid);
  coap_resource_set_handler(coap_resource_add(server->ctx, "hello"), COAP_GET, hello, NULL);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  o.timeout_ms = 120000;
  sim_reply_t b;
  sim_send(client, &o, &b);
  uint64_t t0 = net.now;
  while (!b.done && net.now - t0 < 120000) {
    uint8_t d[1500];
    memcpy(d, server_record, server_record_len);
    simnet_rand(&net, d + 13, server_record_len - 13);
    d[10] = (uint8_t)(d[10] + 1);
    coap_context_input(client->ctx, client->ep, &server->addr, d, server_record_len, net.now);
    simnet_run_until(&net, net.now + 1000);
  }
  assert_true(b.done);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  /* 7 ACK timeouts (2 to 3 s each) and a handshake: well under a minute. */
  assert_true(net.now - t0 < 40000);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_reconnects, 1);
}

static void test_client_hears_only_authentic_no_cid(void **state) {
  (void)state;
  client_hears_only_authentic(0);
}
static void test_client_hears_only_authentic_cid(void **state) {
  (void)state;
  client_hears_only_authentic(1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_cid_random_body_from_elsewhere, teardown),
      cmocka_unit_test_teardown(test_cid_random_body_from_the_client_address, teardown),
      cmocka_unit_test_teardown(test_cid_replayed_record, teardown),
      cmocka_unit_test_teardown(test_no_cid_from_the_client_address, teardown),
      cmocka_unit_test_teardown(test_forged_records_do_not_block_eviction, teardown),
      cmocka_unit_test_teardown(test_authentic_records_keep_the_session, teardown),
      cmocka_unit_test_teardown(test_client_hears_only_authentic_no_cid, teardown),
      cmocka_unit_test_teardown(test_client_hears_only_authentic_cid, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
