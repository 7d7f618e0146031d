/* A ClientHello from the address of an established session never costs
 * that session anything until a new handshake from there completes (RFC
 * 6347 §4.2.8, docs/security.md), with and without Connection ID:
 *  - a forged hello without a cookie (PSK-only, as the default cookie
 *    policy "when needed" would otherwise let in; or resuming with a
 *    session ticket) starts nothing: a cookie is asked, the session
 *    answers at once;
 *  - an attacker on the path, who sees the HelloVerifyRequest sent to the
 *    client's address and so brings a valid cookie, starts a handshake
 *    beside the session, and the session keeps answering the real client
 *    at once all the while; that handshake failing (a wrong key) or going
 *    silent (half-open, until its deadline) leaves the session in place,
 *    with no new handshake for the real client and no half-open state
 *    left;
 *  - a client that really restarted gets its new session as soon as its
 *    handshake completes, and the old session (its CID too) is gone.
 * The attacker is a DTLS client context of its own whose datagrams are
 * handed to the server as if from the client's address, and which is
 * given a copy of every datagram the server sends there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "context/context_internal.h"
#include "coaps/credentials.h"
#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *client;
static int handler_calls;

/* ---- what the network carries ---- */

#define KEPT_MAX 64
typedef struct kept {
  size_t len;
  uint8_t data[1500];
} kept_t;
static kept_t client_first;          /* the client's first datagram (a ClientHello) */
static kept_t to_attacker[KEPT_MAX]; /* copies of the server's datagrams to the client */
static size_t n_to_attacker;
static kept_t from_attacker[KEPT_MAX];
static size_t n_from_attacker;
static int tapping;                 /* the attacker sees the server's datagrams to the client */
static unsigned attacker_sends_max; /* how many of its datagrams get through */
static unsigned attacker_sent;

static void keep(kept_t *k, const uint8_t *data, size_t len) {
  assert_true(len <= sizeof k->data);
  memcpy(k->data, data, len);
  k->len = len;
}

static int watch(void *user, const simnet_node_t *from, const coap_address_t *to,
                 const uint8_t *data, size_t len, unsigned seq) {
  (void)user, (void)seq;
  if (from == client && !client_first.len) keep(&client_first, data, len);
  if (tapping && from == server && coap_address_equal(to, &client->addr) &&
      n_to_attacker < KEPT_MAX)
    keep(&to_attacker[n_to_attacker++], data, len);
  return 0;
}

/* ---- the attacker ---- */

static coap_context_t *attacker;
static coap_endpoint_t *attacker_ep;

static int attacker_send(void *user, coap_endpoint_t *ep, const coap_address_t *to,
                         const uint8_t *data, size_t len) {
  (void)user, (void)ep, (void)to;
  if (attacker_sent++ < attacker_sends_max && n_from_attacker < KEPT_MAX)
    keep(&from_attacker[n_from_attacker++], data, len);
  return 0;
}

static int attacker_open(void *user, coap_context_t *ctx, coap_proto_t proto,
                         const coap_address_t *dest, coap_endpoint_t **out) {
  (void)user, (void)dest;
  coap_address_t local;
  coap_address_from_string(&local, "10.0.0.9", 41000);
  attacker_ep = *out = coap_context_add_endpoint(ctx, proto, &local);
  return *out ? 0 : COAP_E_NOMEM;
}

static void set_psk(coap_context_t *ctx, const char *key, int cid) {
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  assert_non_null(d);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"device-1", (const uint8_t *)key, strlen(key)), 0);
  assert_int_equal(coap_dtls_set_cid(d, cid, 6), 0);
  assert_int_equal(coap_context_set_dtls_context(ctx, d), 0);
}

static void attacker_start(int cid, unsigned sends_max) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.clock = simnet_clock;
  cfg.clock_user = &net;
  cfg.rand = simnet_rand;
  cfg.rand_user = &net;
  attacker = coap_context_new(&cfg);
  assert_non_null(attacker);
  coap_transport_t t = {.send = attacker_send, .open_client_endpoint = attacker_open};
  assert_int_equal(coap_context_set_transport(attacker, &t, NULL), 0);
  /* The identity the client uses, without its key. */
  set_psk(attacker, "not-the-real-key", cid);
  attacker_sends_max = sends_max;
  attacker_sent = 0;
  n_to_attacker = n_from_attacker = 0;
  tapping = 1;
}

/* Move the attacker's datagrams: the server's copies to it, its own to the
 * server "from" the client's address and port. */
static void attacker_pump(void) {
  for (size_t i = 0; i < n_to_attacker; i++)
    coap_context_input(attacker, attacker_ep, &server->addr, to_attacker[i].data,
                       to_attacker[i].len, net.now);
  n_to_attacker = 0;
  coap_context_handle_timeouts(attacker, net.now);
  for (size_t i = 0; i < n_from_attacker; i++)
    coap_context_input(server->ctx, server->ep, &client->addr, from_attacker[i].data,
                       from_attacker[i].len, net.now);
  n_from_attacker = 0;
}

/* ---- set-up ---- */

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  (void)ctx, (void)res, (void)req, (void)user;
  handler_calls++;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

static void start(int cid) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  assert_non_null(server);
  assert_non_null(client);
  /* The default cookie policy: when needed (PSK hellos get none). */
  set_psk(server->ctx, "0123456789abcdef", cid);
  set_psk(client->ctx, "0123456789abcdef", cid);
  coap_resource_set_handler(coap_resource_add(server->ctx, "hello"), COAP_GET, hello, NULL);
  handler_calls = 0;
  client_first.len = 0;
  tapping = 0;
  attacker = NULL;
  net.filter = watch;
  /* The client's session. */
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 60000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
}

static int teardown(void **state) {
  (void)state;
  if (attacker) coap_context_free(attacker);
  simnet_free(&net);
  return 0;
}

static coap_stats_t stats(simnet_node_t *node) {
  coap_stats_t st;
  coap_context_get_stats(node->ctx, &st);
  return st;
}

/* The client's GET, answered in one round trip: on its session, no
 * handshake. */
static void answered_at_once(void) {
  sim_reply_t b;
  uint64_t t0 = net.now;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 60000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_true(net.now - t0 <= 2 * net.latency_ms);
}

/* The client's session is the one it made first: one handshake each side
 * (plus |server_more| the server completed for others). */
static void session_unchanged(uint64_t server_handshakes) {
  assert_int_equal(stats(client).dtls_handshakes, 1);
  assert_int_equal(stats(client).dtls_reconnects, 0);
  assert_int_equal(stats(server).dtls_handshakes, server_handshakes);
}

/* ---- forged hellos without a cookie ---- */

static void forged_cookieless(int cid) {
  start(cid);
  answered_at_once();
  assert_true(client_first.len > 13 + 12 + 34);
  assert_int_equal(client_first.data[13], 1);
  coap_stats_t before = stats(server);
  for (int i = 0; i < 3; i++) {
    kept_t h = client_first;
    h.data[13 + 12 + 2 + 5] ^= (uint8_t)(0x5a + i); /* another client random */
    coap_context_input(server->ctx, server->ep, &client->addr, h.data, h.len, net.now);
    assert_int_equal(server->ctx->handshakes_in_progress, 0);
    answered_at_once();
  }
  assert_int_equal(stats(server).dtls_cookies_sent - before.dtls_cookies_sent, 3);
  session_unchanged(1);
}

static void test_forged_psk_hello_no_cid(void **state) {
  (void)state;
  forged_cookieless(0);
}
static void test_forged_psk_hello_cid(void **state) {
  (void)state;
  forged_cookieless(1);
}

/* A resuming hello (with the session ticket of a real earlier session),
 * which "when needed" lets in without a cookie from an address without a
 * session. */
static void test_forged_ticket_hello(void **state) {
  (void)state;
  start(1);
  answered_at_once();
  /* The client ends its session and resumes: its hello carries a ticket. */
  coap_context_end_sessions(client->ctx, NULL, NULL);
  simnet_run_until(&net, net.now + 100);
  client_first.len = 0;
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 60000);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(stats(server).dtls_resumed, 1);
  assert_int_equal(client_first.data[13], 1);
  assert_true(client_first.len > 200); /* the ticket is in it */
  coap_stats_t before = stats(server);
  kept_t h = client_first;
  h.data[13 + 12 + 2 + 5] ^= 0x33;
  coap_context_input(server->ctx, server->ep, &client->addr, h.data, h.len, net.now);
  assert_int_equal(server->ctx->handshakes_in_progress, 0);
  assert_int_equal(stats(server).dtls_cookies_sent - before.dtls_cookies_sent, 1);
  answered_at_once();
  assert_int_equal(stats(server).dtls_handshakes, before.dtls_handshakes);
}

/* ---- an attacker on the path, with a valid cookie ---- */

/* The attacker asks for /hello (its handshake starts), and for |ms| the
 * network runs in 5 ms steps with the attacker's datagrams moved by hand;
 * every 300 ms the real client asks, and is answered at once. Returns the
 * most handshakes the server had in progress meanwhile. */
static unsigned attack_while_client_asks(uint64_t ms) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  o.timeout_ms = 120000;
  static sim_reply_t att; /* the attacker's request may end after this returns */
  sim_reply_reset(&att);
  assert_int_equal(coap_send_request(attacker, &o, sim_on_reply, &att, NULL), 0);
  unsigned most = 0;
  uint64_t end = net.now + ms, next_ask = net.now + 300;
  while (net.now < end) {
    attacker_pump();
    if (server->ctx->handshakes_in_progress > most) most = server->ctx->handshakes_in_progress;
    simnet_run_until(&net, net.now + 5);
    if (net.now >= next_ask) {
      answered_at_once();
      next_ask = net.now + 300;
    }
  }
  /* The attacker never got an answer from the server. */
  assert_int_not_equal(att.done && att.status == 0, 1);
  return most;
}

/* Its handshake fails at the server (its Finished does not verify under
 * the real key). */
static void wrong_key_attack(int cid) {
  start(cid);
  answered_at_once();
  attacker_start(cid, 1000);
  coap_stats_t before = stats(server);
  unsigned most = attack_while_client_asks(10000);
  /* It did get as far as a handshake beside the session (a valid cookie). */
  assert_int_equal(most, 1);
  assert_true(stats(server).dtls_cookies_sent > before.dtls_cookies_sent);
  assert_true(stats(server).dtls_failures > before.dtls_failures);
  assert_int_equal(server->ctx->handshakes_in_progress, 0);
  session_unchanged(1);
  answered_at_once();
}

static void test_attacker_with_cookie_wrong_key_no_cid(void **state) {
  (void)state;
  wrong_key_attack(0);
}
static void test_attacker_with_cookie_wrong_key_cid(void **state) {
  (void)state;
  wrong_key_attack(1);
}

/* Its hello with the cookie gets through, then it falls silent: the
 * half-open handshake lasts until its deadline and goes, the session
 * untouched. */
static void silent_attack(int cid) {
  start(cid);
  answered_at_once();
  attacker_start(cid, 2); /* the hello, and the hello with the cookie */
  unsigned most = attack_while_client_asks(5000);
  assert_int_equal(most, 1);
  /* Past any handshake deadline. */
  for (int i = 0; i < 20; i++) {
    simnet_run_until(&net, net.now + 10000);
    answered_at_once();
  }
  assert_int_equal(server->ctx->handshakes_in_progress, 0);
  session_unchanged(1);
}

static void test_attacker_with_cookie_silent_no_cid(void **state) {
  (void)state;
  silent_attack(0);
}
static void test_attacker_with_cookie_silent_cid(void **state) {
  (void)state;
  silent_attack(1);
}

/* The client closes its session while the attacker's handshake runs
 * beside it: the session ends (counted out, its CID gone), the handshake
 * beside ends at its deadline, and the client's next request gets a new
 * session. */
static void close_during_attack(int cid) {
  start(cid);
  attacker_start(cid, 2);
  assert_int_equal(attack_while_client_asks(1000), 1);
  assert_int_equal(coap_context_end_sessions(client->ctx, NULL, NULL), 1);
  simnet_run_until(&net, net.now + 100);
  assert_int_equal(stats(server).dtls_sessions_by_mode[COAP_DTLS_MODE_PSK], 0);
  assert_int_equal(server->ctx->cid_map.count, 0);
  assert_int_equal(server->ctx->handshakes_in_progress, 1);
  simnet_run_until(&net, net.now + 200000);
  assert_int_equal(server->ctx->handshakes_in_progress, 0);
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 60000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(stats(server).dtls_sessions_by_mode[COAP_DTLS_MODE_PSK], 1);
}

static void test_close_during_attack_no_cid(void **state) {
  (void)state;
  close_during_attack(0);
}
static void test_close_during_attack_cid(void **state) {
  (void)state;
  close_during_attack(1);
}

/* ---- a real restart ---- */

static void real_restart(int cid) {
  start(cid);
  answered_at_once();
  coap_dtls_cid_stats_t cs;
  coap_dtls_cid_stats(coap_context_dtls(server->ctx), &cs);
  assert_int_equal(cs.sessions, cid ? 1 : 0);
  assert_int_equal(simnet_node_restart(client), 0);
  set_psk(client->ctx, "0123456789abcdef", cid);
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 60000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(stats(server).dtls_handshakes, 2);
  assert_int_equal(stats(server).peers, 1);
  assert_int_equal(server->ctx->handshakes_in_progress, 0);
  if (cid) assert_int_equal(server->ctx->cid_map.count, 1); /* the new CID only */
  answered_at_once();
  assert_int_equal(handler_calls, 4);
}

static void test_real_restart_no_cid(void **state) {
  (void)state;
  real_restart(0);
}
static void test_real_restart_cid(void **state) {
  (void)state;
  real_restart(1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_forged_psk_hello_no_cid, teardown),
      cmocka_unit_test_teardown(test_forged_psk_hello_cid, teardown),
      cmocka_unit_test_teardown(test_forged_ticket_hello, teardown),
      cmocka_unit_test_teardown(test_attacker_with_cookie_wrong_key_no_cid, teardown),
      cmocka_unit_test_teardown(test_attacker_with_cookie_wrong_key_cid, teardown),
      cmocka_unit_test_teardown(test_attacker_with_cookie_silent_no_cid, teardown),
      cmocka_unit_test_teardown(test_attacker_with_cookie_silent_cid, teardown),
      cmocka_unit_test_teardown(test_close_during_attack_no_cid, teardown),
      cmocka_unit_test_teardown(test_close_during_attack_cid, teardown),
      cmocka_unit_test_teardown(test_real_restart_no_cid, teardown),
      cmocka_unit_test_teardown(test_real_restart_cid, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
