/* ICMP errors are vetted against the datagram they quote (RFC 7252 §4.2:
 * "after appropriate vetting"; coap_context_input_icmp). An off-path
 * attacker who knows a peer's address can forge a port unreachable for
 * it, but not the start of a datagram we sent there. Here the server's
 * port is closed (every datagram to it dropped) and the "kernel" hands the
 * client ICMP errors, either genuine (quoting the datagram that met the
 * closed port, as Linux's error queue does) or forged (quoting something
 * else), and:
 * - coap://, a server never heard from: forged errors (another message
 *   ID, the right message ID with another token, too short a quote, none
 *   at all, not CoAP) leave the request alone, counted as unvetted; the
 *   genuine one ends it at once with port-unreachable, as before;
 * - coaps://, a handshake with a server never reached: forged errors (an
 *   epoch we never sent in, sequence numbers past the last we sent, not
 *   a DTLS record, too short a quote) leave the handshake alone; the
 *   genuine one ends it at once;
 * - coaps://, an established session whose server went quiet: a forged
 *   error is not even logged as a restart, the request goes on to its own
 *   end (the reconnect's handshake timing out); genuine ones are taken
 *   for a restart (kept, logged) as in test_icmp_restart, and end the
 *   request after the grace; a record 63 below the highest sequence
 *   number sent is taken, one 64 below is not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/credentials.h"
#include "coaps/dtls.h"
#include "support_dtls_pair.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *client;
static int handler_calls;
static int server_down;      /* datagrams to the server's port are dropped */
static uint8_t quote[64];    /* the start of the latest datagram dropped */
static size_t quote_len;     /* 0: none dropped yet */
static unsigned logged_kept; /* the client's "... are kept" lines */

static int closed_port(void *user, const simnet_node_t *from, const coap_address_t *to,
                       const uint8_t *data, size_t len, unsigned seq) {
  (void)user, (void)seq;
  if (!server_down || from != client || !coap_address_equal(to, &server->addr)) return 0;
  quote_len = len < sizeof quote ? len : sizeof quote;
  memcpy(quote, data, quote_len);
  return 1;
}

static void client_log(void *user, coap_log_level_t level, const char *line) {
  (void)user, (void)level;
  if (strstr(line, "ICMP port unreachable") && strstr(line, "are kept")) logged_kept++;
}

static int icmp(const uint8_t *q, size_t len) {
  return coap_context_input_icmp(client->ctx, client->ep, &server->addr, q, len, net.now);
}

static uint64_t unvetted(void) {
  coap_stats_t st;
  assert_int_equal(coap_context_get_stats(client->ctx, &st), 0);
  return st.icmp_unvetted;
}

static uint64_t vetted(void) {
  coap_stats_t st;
  assert_int_equal(coap_context_get_stats(client->ctx, &st), 0);
  return st.icmp_vetted;
}

static void reset_state(void) {
  handler_calls = 0;
  server_down = 0;
  quote_len = 0;
  logged_kept = 0;
  net.filter = closed_port;
}

static coap_context_config_t client_config(void) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.log = client_log;
  cfg.log_level = COAP_LOG_INFO;
  return cfg;
}

static int teardown(void **state) {
  (void)state;
  simnet_free(&net);
  return 0;
}

/* ---- coap:// ---- */

static int setup_plain(void **state) {
  (void)state;
  simnet_init(&net);
  coap_context_config_t cfg = client_config();
  server = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_UDP, &cfg);
  assert_non_null(server);
  assert_non_null(client);
  reset_state();
  return 0;
}

static void test_plain_forged_ignored_genuine_acts(void **state) {
  (void)state;
  server_down = 1;
  sim_reply_t b;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/hello");
  sim_send(client, &o, &b);
  simnet_run_until(&net, net.now + 1);
  assert_true(quote_len > 4);
  size_t tkl = quote[0] & 0x0f;
  assert_true(tkl > 0); /* a token to get wrong */
  uint8_t forged[64];

  memcpy(forged, quote, quote_len);
  forged[3] ^= 0x01; /* another message ID */
  assert_int_equal(icmp(forged, quote_len), 0);
  memcpy(forged, quote, quote_len);
  forged[4] ^= 0x80; /* the message ID, another token */
  assert_int_equal(icmp(forged, quote_len), 0);
  assert_int_equal(icmp(quote, 4 + tkl - 1), 0); /* the token cut short */
  assert_int_equal(icmp(NULL, 0), 0);            /* nothing quoted */
  static const uint8_t record[13] = {23, 0xfe, 0xfd, 0, 1};
  assert_int_equal(icmp(record, sizeof record), 0); /* not CoAP */
  memcpy(forged, quote, quote_len);
  forged[quote_len - 1] ^= 0xff; /* header and token right, the rest not */
  assert_int_equal(icmp(forged, quote_len), 0);
  assert_int_equal(unvetted(), 6);
  assert_int_equal(vetted(), 0);
  simnet_run_until(&net, net.now + 100);
  assert_false(b.done); /* the request goes on */

  /* The genuine one (its header and token are enough): a server never
   * heard from, so the request ends at once, as before. */
  assert_int_equal(icmp(quote, 4 + tkl), 1);
  assert_true(b.done);
  assert_int_equal(b.status, COAP_E_UNREACHABLE);
  assert_int_equal(b.cause, COAP_CAUSE_PORT_UNREACHABLE);
  assert_int_equal(vetted(), 1);
  /* Quoting a request that has ended: nothing of ours in flight now. */
  assert_int_equal(icmp(quote, quote_len), 0);
  assert_int_equal(unvetted(), 7);
}

/* A forged error for an address we never sent to: counted, ignored. */
static void test_plain_unknown_address(void **state) {
  (void)state;
  coap_address_t other;
  coap_address_from_string(&other, "10.0.0.9", 5683);
  static const uint8_t msg[4] = {0x40, 0x01, 0x12, 0x34};
  assert_int_equal(coap_context_input_icmp(client->ctx, client->ep, &other, msg, 4, net.now), 0);
  assert_int_equal(unvetted(), 1);
}

/* ---- coaps:// ---- */

static int setup_dtls(void **state) {
  (void)state;
  coap_context_config_t cfg = client_config();
  dtls_pair_start(&net, &cfg, &server, &client);
  dtls_pair_install(server, dtls_pair_server_dtls(server, DTLS_PAIR_PSK));
  dtls_pair_add_hello(server, &handler_calls);
  dtls_pair_install(client, dtls_pair_client_dtls(client, DTLS_PAIR_PSK));
  reset_state();
  return 0;
}

static void send_hello(sim_reply_t *b) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  sim_send(client, &o, b);
}

static void put_seq(uint8_t *record, uint64_t seq) {
  for (int i = 10; i >= 5; i--, seq >>= 8) record[i] = (uint8_t)seq;
}

static uint64_t get_seq(const uint8_t *record) {
  uint64_t seq = 0;
  for (int i = 5; i < 11; i++) seq = seq << 8 | record[i];
  return seq;
}

static void test_dtls_handshake_forged_ignored_genuine_acts(void **state) {
  (void)state;
  server_down = 1; /* never reached */
  sim_reply_t b;
  send_hello(&b);
  simnet_run_until(&net, net.now + 1);
  assert_true(quote_len >= 13);
  assert_int_equal(quote[0], 22); /* the ClientHello's record */
  uint64_t seq = get_seq(quote);
  uint8_t forged[64];

  memcpy(forged, quote, quote_len);
  forged[4] = 1; /* epoch 1: none sent yet */
  assert_int_equal(icmp(forged, quote_len), 0);
  memcpy(forged, quote, quote_len);
  put_seq(forged, seq + 1); /* not sent yet */
  assert_int_equal(icmp(forged, quote_len), 0);
  put_seq(forged, seq + 1000000);
  assert_int_equal(icmp(forged, quote_len), 0);
  static const uint8_t coap[8] = {0x40, 0x01, 0x12, 0x34};
  assert_int_equal(icmp(coap, sizeof coap), 0); /* not a record */
  assert_int_equal(icmp(quote, 10), 0);         /* too short to tell */
  assert_int_equal(unvetted(), 5);
  simnet_run_until(&net, net.now + 100);
  assert_false(b.done); /* the handshake goes on */

  /* The genuine one ends the handshake at once: nothing listens there. */
  assert_int_equal(icmp(quote, 13), 1);
  assert_true(b.done);
  assert_int_equal(b.status, COAP_E_UNREACHABLE);
  assert_int_equal(b.cause, COAP_CAUSE_PORT_UNREACHABLE);
  assert_int_equal(vetted(), 1);
}

static void test_dtls_session_forged_ignored_genuine_acts(void **state) {
  (void)state;
  dtls_pair_get_hello(client, 1);
  server_down = 1;
  sim_reply_t b;
  send_hello(&b);
  simnet_run_until(&net, net.now + 1);
  assert_true(quote_len >= 13);
  assert_int_equal(quote[4], 1); /* an application record in epoch 1 */
  uint64_t seq = get_seq(quote);
  uint8_t forged[64];
  memcpy(forged, quote, quote_len);
  put_seq(forged, seq + 2);
  assert_int_equal(icmp(forged, quote_len), 0);
  forged[4] = 2;
  put_seq(forged, seq);
  assert_int_equal(icmp(forged, quote_len), 0);
  assert_int_equal(logged_kept, 0);
  /* A stream of forged errors all through the request's life: it ends
   * by its own timeout, never as unreachable. */
  uint64_t sent = 0, t0 = net.now;
  while (!b.done && net.now - t0 < 300000) {
    simnet_run_until(&net, net.now + 500);
    memcpy(forged, quote, quote_len);
    put_seq(forged, get_seq(quote) + 1 + sent % 7);
    assert_int_equal(icmp(forged, quote_len), 0);
    sent++;
  }
  /* Its own end: the silent server's session is tried anew (a
   * reconnect), and that handshake gets no answer, long after the 6-9 s
   * genuine errors would have ended it in. */
  assert_true(b.done);
  assert_int_equal(b.status, COAP_E_DTLS_TIMEOUT);
  assert_int_not_equal(b.cause, COAP_CAUSE_PORT_UNREACHABLE);
  assert_true(net.now - t0 > 20000);
  assert_int_equal(logged_kept, 0);
  assert_int_equal(unvetted(), 2 + sent);
  assert_int_equal(vetted(), 0);
}

/* The window: a record 63 below the highest sequence number sent in the
 * epoch is ours, one 64 below is too old to tell from a guess. */
static void test_dtls_record_window(void **state) {
  (void)state;
  for (int i = 1; i <= 70; i++) dtls_pair_get_hello(client, i);
  server_down = 1;
  sim_reply_t b;
  send_hello(&b);
  simnet_run_until(&net, net.now + 1);
  assert_true(quote_len >= 13);
  uint64_t seq = get_seq(quote);
  assert_true(seq >= 70);
  uint8_t old[64];
  memcpy(old, quote, quote_len);
  put_seq(old, seq - 64);
  assert_int_equal(icmp(old, quote_len), 0);
  assert_int_equal(logged_kept, 0);
  put_seq(old, seq - 63);
  assert_int_equal(icmp(old, quote_len), 1);
  assert_int_equal(logged_kept, 1); /* taken for a restart */
  assert_false(b.done);
  assert_int_equal(unvetted(), 1);
  assert_int_equal(vetted(), 1);
  /* The port open again: the CON's retransmission is answered. */
  server_down = 0;
  for (uint64_t t0 = net.now; !b.done && net.now - t0 < 10000;)
    simnet_run_until(&net, net.now + 10);
  assert_true(b.done);
  assert_int_equal(b.status, 0);
}

/* Genuine errors on an established session: a restart, kept (logged),
 * then the request ends after the grace, as test_icmp_restart has it. */
static void test_dtls_session_genuine_as_before(void **state) {
  (void)state;
  dtls_pair_get_hello(client, 1);
  server_down = 1;
  sim_reply_t b;
  send_hello(&b);
  uint64_t t0 = net.now;
  size_t seen = 0;
  unsigned handed = 0;
  uint8_t last[64];
  while (!b.done && net.now - t0 < 120000) {
    simnet_run_until(&net, net.now + 1);
    if (quote_len && (quote_len != seen || memcmp(last, quote, quote_len) != 0)) {
      seen = quote_len;
      memcpy(last, quote, quote_len);
      assert_int_equal(icmp(quote, quote_len), 1);
      handed++;
    }
  }
  assert_true(b.done);
  assert_int_equal(b.status, COAP_E_UNREACHABLE);
  assert_int_equal(b.cause, COAP_CAUSE_PORT_UNREACHABLE);
  assert_in_range(net.now - t0, 6000, 9100); /* the third send */
  assert_int_equal(handed, 3);
  assert_int_equal(logged_kept, 2);
  assert_int_equal(vetted(), 3);
  assert_int_equal(unvetted(), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_plain_forged_ignored_genuine_acts, setup_plain,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_plain_unknown_address, setup_plain, teardown),
      cmocka_unit_test_setup_teardown(test_dtls_handshake_forged_ignored_genuine_acts, setup_dtls,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_dtls_session_forged_ignored_genuine_acts, setup_dtls,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_dtls_record_window, setup_dtls, teardown),
      cmocka_unit_test_setup_teardown(test_dtls_session_genuine_as_before, setup_dtls, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
