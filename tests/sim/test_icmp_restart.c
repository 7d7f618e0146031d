/* A server restarting under an established coaps:// session: while it is
 * down, its host answers every datagram with ICMP port unreachable (what
 * a closed UDP port does; a balancer's NAT relays it). The client keeps
 * its session and its request: the CON's retransmission reaches the new
 * process, which took the sessions from the old one (the state file), and
 * the request is answered with no handshake on either side; the errors
 * and the server's return are logged. A server that does not come back
 * ends the request, named port-unreachable, at the first error 5 s or
 * more after the first one (its third send, 6-9 s). A server stopped
 * without the state file ends its sessions: the client's new handshake
 * resumes its old session, so its hello too is resent across the gap. A
 * handshake with a server never reached before fails at the first error
 * (test_diag_causes: test_port_unreachable). The same for coap://: a
 * server that answered before is waited for, one never heard from is
 * not. */
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

#define NODE 3
#define T0 1800000000000ull /* wall-clock ms of the state's seal */

static const uint8_t state_key[32] = "icmp restart key, 32 bytes long!";
static simnet_t net;
static simnet_node_t *server, *client;
static int handler_calls;
static int server_down;         /* datagrams to the server's port meet a closed port */
static unsigned icmp_owed;      /* errors the "kernel" has yet to hand the client */
static unsigned icmp_handed;    /* errors handed to the client */
static unsigned logged_kept;    /* the client's "... are kept" lines */
static unsigned logged_answers; /* its "answers again" lines */

static int closed_port(void *user, const simnet_node_t *from, const coap_address_t *to,
                       const uint8_t *data, size_t len, unsigned seq) {
  (void)user, (void)data, (void)len, (void)seq;
  if (!server_down || from != client || !coap_address_equal(to, &server->addr)) return 0;
  icmp_owed++; /* handed over after the send returns, as a kernel does */
  return 1;
}

static void client_log(void *user, coap_log_level_t level, const char *line) {
  (void)user, (void)level;
  if (strstr(line, "ICMP port unreachable") && strstr(line, "are kept")) logged_kept++;
  if (strstr(line, "answers again after")) logged_answers++;
}

static void hand_icmp(void) {
  for (; icmp_owed; icmp_owed--, icmp_handed++)
    coap_context_input_unreachable(client->ctx, client->ep, &server->addr, net.now);
}

/* Run the network |ms| of virtual time in 1 ms steps, handing each ICMP
 * error over in the step after the datagram that caused it; stops early
 * when |flag| is set (NULL: never). */
static void run_with_icmp(uint64_t ms, const int *flag) {
  uint64_t until = net.now + ms;
  while (net.now < until && !(flag && *flag)) {
    simnet_run_until(&net, net.now + 1);
    hand_icmp();
  }
}

static void serve(simnet_node_t *node) {
  dtls_pair_install(node, dtls_pair_server_dtls(node, DTLS_PAIR_PSK));
  dtls_pair_add_hello(node, &handler_calls);
}

static int setup(void **state) {
  (void)state;
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.log = client_log;
  cfg.log_level = COAP_LOG_INFO;
  dtls_pair_start(&net, &cfg, &server, &client);
  serve(server);
  dtls_pair_install(client, dtls_pair_client_dtls(client, DTLS_PAIR_PSK));
  handler_calls = 0;
  server_down = 0;
  icmp_owed = icmp_handed = logged_kept = logged_answers = 0;
  net.filter = closed_port;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  simnet_free(&net);
  return 0;
}

/* One answered request, then the old process stops: its sessions sealed
 * into |buf| (the state file), its port closed. */
static long answer_then_stop(uint8_t *buf, size_t cap) {
  dtls_pair_get_hello(client, 1);
  size_t carried = 0;
  long len = coap_context_export_sessions(server->ctx, state_key, 32, NODE, T0, buf, cap, &carried);
  assert_true(len > 0);
  assert_int_equal(carried, 1);
  server_down = 1;
  return len;
}

static void send_hello(sim_reply_t *b) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  sim_send(client, &o, b);
}

static void test_restart_costs_no_request(void **state) {
  (void)state;
  uint8_t buf[4096];
  long len = answer_then_stop(buf, sizeof buf);
  sim_reply_t b;
  send_hello(&b);
  /* The gap: the request and whatever follows it meet the closed port. */
  run_with_icmp(800, &b.done);
  assert_false(b.done);
  assert_true(icmp_handed >= 1);
  assert_int_equal(logged_kept, icmp_handed);
  /* The new process: the sessions from the state file, the port open. */
  assert_int_equal(simnet_node_restart(server), 0);
  serve(server);
  handler_calls = 1;
  const char *why = NULL;
  assert_int_equal(coap_context_import_sessions(server->ctx, state_key, 32, NODE, T0 + 800, 60000,
                                                NULL, buf, (size_t)len, &why),
                   1);
  server_down = 0;
  /* The CON's first retransmission (2-3 s after it was sent) carries it. */
  run_with_icmp(5000, &b.done);
  assert_true(b.done);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_string_equal(b.payload, "call 2");
  assert_int_equal(logged_answers, 1);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 1); /* the one before the restart */
  assert_int_equal(st.dtls_reconnects, 0);
  assert_int_equal(st.dtls_failures, 0);
  assert_int_equal(st.failures_by_cause[COAP_CAUSE_PORT_UNREACHABLE], 0);
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 0); /* the new process made none */
  /* And the session goes on. */
  dtls_pair_get_hello(client, 3);
}

/* A stop without the state file: the server ends its sessions with a
 * close_notify. The client's next request needs a new handshake, which
 * resumes the old session (the server listened there before): its hello
 * meets the closed port, and is resent until the new process answers. */
static void test_resuming_handshake_waits_for_the_restart(void **state) {
  (void)state;
  dtls_pair_get_hello(client, 1);
  assert_int_equal(coap_context_end_sessions(server->ctx, NULL, NULL), 1);
  simnet_run_until(&net, net.now + 100); /* the close_notify arrives */
  server_down = 1;
  sim_reply_t b;
  send_hello(&b);
  run_with_icmp(800, &b.done);
  assert_false(b.done);
  assert_true(icmp_handed >= 1);
  assert_int_equal(logged_kept, icmp_handed);
  assert_int_equal(simnet_node_restart(server), 0); /* nothing carried over */
  serve(server);
  handler_calls = 0;
  server_down = 0;
  run_with_icmp(10000, &b.done);
  assert_true(b.done);
  assert_int_equal(b.status, 0);
  assert_string_equal(b.payload, "call 1");
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 2); /* the new process's, after the first */
  assert_int_equal(st.failures_by_cause[COAP_CAUSE_PORT_UNREACHABLE], 0);
}

static void test_server_that_stays_away(void **state) {
  (void)state;
  uint8_t buf[4096];
  answer_then_stop(buf, sizeof buf);
  sim_reply_t b;
  uint64_t t0 = net.now;
  send_hello(&b);
  run_with_icmp(120000, &b.done);
  assert_true(b.done);
  assert_int_equal(b.status, COAP_E_UNREACHABLE);
  assert_int_equal(b.cause, COAP_CAUSE_PORT_UNREACHABLE);
  /* The sends at 0 and 2-3 s kept, the one at 6-9 s ends it. */
  assert_in_range(net.now - t0, 6000, 9100);
  assert_int_equal(icmp_handed, 3);
  assert_int_equal(logged_kept, 2);
  assert_int_equal(logged_answers, 0);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.failures_by_cause[COAP_CAUSE_PORT_UNREACHABLE], 1);
}

/* The same with a resuming handshake (a --session client whose server is
 * gone): told within the grace, not at the handshake's deadline (30 s). */
static void test_resuming_handshake_to_a_closed_port(void **state) {
  (void)state;
  dtls_pair_get_hello(client, 1);
  assert_int_equal(coap_context_end_sessions(server->ctx, NULL, NULL), 1);
  simnet_run_until(&net, net.now + 100);
  server_down = 1;
  sim_reply_t b;
  uint64_t t0 = net.now;
  send_hello(&b);
  run_with_icmp(120000, &b.done);
  assert_true(b.done);
  assert_int_equal(b.status, COAP_E_UNREACHABLE);
  assert_int_equal(b.cause, COAP_CAUSE_PORT_UNREACHABLE);
  assert_in_range(net.now - t0, 5000, 10000);
  assert_true(logged_kept >= 2);
  assert_non_null(strstr(b.diag.explanation, "errors, no answer in between"));
}

/* ---- coap:// ---- */

static void count_hello(coap_context_t *ctx, coap_resource_t *r, const coap_request_t *req,
                        coap_response_t *resp, void *user) {
  (void)ctx, (void)r, (void)req, (void)user;
  char text[32];
  int n = snprintf(text, sizeof text, "call %d", ++handler_calls);
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, text, (size_t)n);
}

static void serve_plain(simnet_node_t *node) {
  coap_resource_t *r = coap_resource_add(node->ctx, "hello");
  assert_non_null(r);
  assert_int_equal(coap_resource_set_handler(r, COAP_GET, count_hello, NULL), 0);
}

static int setup_plain(void **state) {
  (void)state;
  simnet_init(&net);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.log = client_log;
  cfg.log_level = COAP_LOG_INFO;
  server = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_UDP, &cfg);
  assert_non_null(server);
  assert_non_null(client);
  serve_plain(server);
  handler_calls = 0;
  server_down = 0;
  icmp_owed = icmp_handed = logged_kept = logged_answers = 0;
  net.filter = closed_port;
  return 0;
}

static void send_plain_hello(sim_reply_t *b) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1/hello");
  sim_send(client, &o, b);
}

/* A coap:// server that answered before restarts: the request waits. */
static void test_plain_restart_costs_no_request(void **state) {
  (void)state;
  sim_reply_t b;
  sim_get(client, "coap://10.0.0.1/hello", &b, 10000);
  assert_string_equal(b.payload, "call 1");
  server_down = 1;
  send_plain_hello(&b);
  run_with_icmp(800, &b.done);
  assert_false(b.done);
  assert_true(icmp_handed >= 1);
  assert_int_equal(logged_kept, icmp_handed);
  assert_int_equal(simnet_node_restart(server), 0);
  serve_plain(server);
  server_down = 0;
  run_with_icmp(5000, &b.done);
  assert_true(b.done);
  assert_int_equal(b.status, 0);
  assert_string_equal(b.payload, "call 2");
}

/* One that stays away: the request ends at its third send (6-9 s); and a
 * coap:// server never heard from fails at the first error. */
static void test_plain_server_that_stays_away(void **state) {
  (void)state;
  sim_reply_t b;
  sim_get(client, "coap://10.0.0.1/hello", &b, 10000);
  server_down = 1;
  uint64_t t0 = net.now;
  send_plain_hello(&b);
  run_with_icmp(120000, &b.done);
  assert_true(b.done);
  assert_int_equal(b.status, COAP_E_UNREACHABLE);
  assert_int_equal(b.cause, COAP_CAUSE_PORT_UNREACHABLE);
  assert_in_range(net.now - t0, 6000, 9100);
  assert_int_equal(logged_kept, 2);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1:5999/hello");
  sim_send(client, &o, &b);
  simnet_run_until(&net, net.now + 1);
  coap_address_t other;
  coap_address_from_string(&other, "10.0.0.1", 5999);
  coap_context_input_unreachable(client->ctx, client->ep, &other, net.now);
  assert_true(b.done);
  assert_int_equal(b.status, COAP_E_UNREACHABLE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_restart_costs_no_request, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resuming_handshake_waits_for_the_restart, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_server_that_stays_away, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resuming_handshake_to_a_closed_port, setup, teardown),
      cmocka_unit_test_setup_teardown(test_plain_restart_costs_no_request, setup_plain, teardown),
      cmocka_unit_test_setup_teardown(test_plain_server_that_stays_away, setup_plain, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
