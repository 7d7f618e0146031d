/* The client's side of "only an authenticated record counts as activity"
 * (test_dtls_forged_activity.c is the server's): a client's entry for its
 * server is kept alive (idle timer, eviction order) only by what the
 * server alone can send. On coaps:// that is a record that authenticates;
 * on coap:// a datagram that matches one of the client's exchanges (an
 * ACK or RST to its message, a response to its request). An attacker who
 * sends datagrams "from" the server's address every 2 s (coaps://: the
 * server's last record with a random body, with and without Connection
 * ID; coap://: responses and ACKs that match nothing) does not keep the
 * entry: it is forgotten within twice peer_idle_ms, as without them (on
 * coap:// a forgery after that makes a new entry, as any datagram from a
 * new address does: not the server's, which the next request makes
 * again). The control: the server's genuine answers do keep it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "context/context_internal.h"
#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"

#define IDLE_MS 60000

static simnet_t net;
static simnet_node_t *server, *client;
static uint8_t server_record[1500]; /* the server's last encrypted record */
static size_t server_record_len;
static const char *uri;

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  (void)ctx, (void)res, (void)req, (void)user;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

static int keep_server_records(void *user, const simnet_node_t *from, const coap_address_t *to,
                               const uint8_t *data, size_t len, unsigned seq) {
  (void)user, (void)to, (void)seq;
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

static void ask(void) {
  sim_reply_t b;
  sim_get(client, uri, &b, 60000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
}

/* dtls: 0 coap://, 1 coaps://, 2 coaps:// with Connection ID. */
static void start(int dtls) {
  simnet_init(&net);
  coap_context_config_t cc;
  coap_context_config_default(&cc);
  cc.peer_idle_ms = IDLE_MS;
  coap_proto_t proto = dtls ? COAP_PROTO_DTLS : COAP_PROTO_UDP;
  server = simnet_add_node(&net, dtls ? 5684 : 5683, proto, NULL);
  client = simnet_add_node(&net, 40000, proto, &cc);
  assert_non_null(server);
  assert_non_null(client);
  if (dtls) {
    set_psk(server->ctx, dtls == 2);
    set_psk(client->ctx, dtls == 2);
  }
  coap_resource_set_handler(coap_resource_add(server->ctx, "hello"), COAP_GET, hello, NULL);
  net.filter = keep_server_records;
  server_record_len = 0;
  uri = dtls ? "coaps://10.0.0.1/hello" : "coap://10.0.0.1/hello";
  ask();
  if (dtls) assert_true(server_record_len > 13 + 8);
  simnet_run_until(&net, net.now + 1000);
}

static int teardown(void **state) {
  (void)state;
  simnet_free(&net);
  return 0;
}

static uint64_t client_peers(void) {
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  return st.peers;
}

/* The client's entry for its server (one it sent requests to), or NULL. */
static coap_peer_t *server_entry(void) {
  coap_peer_t *p = coap_peer_table_find(&client->ctx->peers, client->ep, &server->addr);
  return p && p->asked ? p : NULL;
}

/* One forged datagram to the client from the server's address. */
static void forge(int dtls, unsigned i) {
  uint8_t d[1500];
  size_t len;
  if (dtls) {
    len = server_record_len;
    memcpy(d, server_record, len);
    size_t header = d[0] == 25 ? 13 + 8 : 13;
    simnet_rand(&net, d + header, len - header);
    d[10] = (uint8_t)(d[10] + 1 + i); /* a newer sequence number than any seen */
  } else {
    /* A NON 2.05 with a token of ours never used, or an ACK to a message
     * ID we never sent. */
    static const uint8_t non[] = {0x54, 0x45, 0x77, 0x00, 0xde, 0xad, 0xbe, 0xef, 0xff, 'x'};
    static const uint8_t ack[] = {0x60, 0x00, 0x00, 0x00};
    len = i & 1 ? sizeof ack : sizeof non;
    memcpy(d, i & 1 ? ack : non, len);
    d[2] = (uint8_t)(0x80 + i);
    d[3] = (uint8_t)i;
  }
  coap_context_input(client->ctx, client->ep, &server->addr, d, len, net.now);
}

static void forgeries_do_not_keep_the_entry(int dtls) {
  start(dtls);
  assert_int_equal(client_peers(), 1);
  assert_non_null(server_entry());
  unsigned i = 0;
  for (uint64_t end = net.now + 2 * IDLE_MS + 2000; net.now < end; i++) {
    forge(dtls, i);
    simnet_run_until(&net, net.now + 2000);
  }
  assert_true(i > 60);
  assert_null(server_entry());
  assert_int_equal(client_peers(), dtls ? 0 : 1); /* coap://: the last forgery's */
  /* The server is still there: a new request finds it. */
  ask();
}

static void test_coap_forged(void **state) {
  (void)state;
  forgeries_do_not_keep_the_entry(0);
}
static void test_coaps_forged(void **state) {
  (void)state;
  forgeries_do_not_keep_the_entry(1);
}
static void test_coaps_cid_forged(void **state) {
  (void)state;
  forgeries_do_not_keep_the_entry(2);
}

/* The control: genuine answers every IDLE_MS / 3 keep the entry, and it
 * goes once they stop. */
static void answers_keep_the_entry(int dtls) {
  start(dtls);
  for (int i = 0; i < 6; i++) {
    simnet_run_until(&net, net.now + IDLE_MS / 3);
    ask();
    assert_int_equal(client_peers(), 1);
    assert_non_null(server_entry());
  }
  simnet_run_until(&net, net.now + 2 * IDLE_MS + 2000);
  assert_int_equal(client_peers(), 0);
}

static void test_coap_answers(void **state) {
  (void)state;
  answers_keep_the_entry(0);
}
static void test_coaps_answers(void **state) {
  (void)state;
  answers_keep_the_entry(1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_coap_forged, teardown),
      cmocka_unit_test_teardown(test_coaps_forged, teardown),
      cmocka_unit_test_teardown(test_coaps_cid_forged, teardown),
      cmocka_unit_test_teardown(test_coap_answers, teardown),
      cmocka_unit_test_teardown(test_coaps_answers, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
