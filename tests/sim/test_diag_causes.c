/* Every handshake failure, provoked between whole nodes on the simulated
 * network: the library's diagnosis (cause, step, who noticed, alert, the
 * specifics in the explanation and fix) on the client, and on the server
 * its own diagnosis, per-cause counters and a rate-limited log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "support_certs.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *client;
static test_ca_t ca, other_ca;
static char server_cert[256], server_key[256];
static unsigned server_log_failures;

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

static void count_failure_lines(void *user, coap_log_level_t level, const char *line) {
  if (strstr(line, "handshake failed [")) server_log_failures++;
}

static int setup(void **state) {
  simnet_init(&net);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.log = count_failure_lines;
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, &cfg);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  coap_resource_t *r = coap_resource_add(server->ctx, "hello");
  coap_resource_set_handler(r, COAP_GET, hello, NULL);
  server_log_failures = 0;
  certs_make_ca(&ca, "test CA", "ca.pem");
  certs_make_ca(&other_ca, "other CA", "other-ca.pem");
  time_t now = time(NULL);
  certs_issue(&ca, "server", "server", "10.0.0.1", "server.test", now - 3600, now + 86400,
              server_cert, server_key);
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  certs_free_ca(&ca);
  certs_free_ca(&other_ca);
  certs_cleanup();
  return 0;
}

static coap_dtls_context_t *dtls(simnet_node_t *node) {
  coap_dtls_context_t *d = coap_dtls_new_context(node->ctx);
  assert_non_null(d);
  return d;
}

static void attach(simnet_node_t *node, coap_dtls_context_t *d) {
  assert_int_equal(coap_context_set_dtls_context(node->ctx, d), 0);
}

static void psk(simnet_node_t *node, const char *id, const char *key) {
  coap_dtls_context_t *d = dtls(node);
  assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)id, (const uint8_t *)key, strlen(key)), 0);
  attach(node, d);
}

static void serve_cert(const char *cert, const char *key, const char *client_ca, int require) {
  coap_dtls_context_t *d = dtls(server);
  assert_int_equal(coap_dtls_set_cert(d, cert, key, NULL), 0);
  if (client_ca) assert_int_equal(coap_dtls_set_ca(d, client_ca), 0);
  if (require) assert_int_equal(coap_dtls_set_client_cert(d, COAP_DTLS_CLIENT_CERT_REQUIRED), 0);
  attach(server, d);
}

static void trust_ca(simnet_node_t *node, const char *ca_path) {
  coap_dtls_context_t *d = dtls(node);
  assert_int_equal(coap_dtls_set_ca(d, ca_path), 0);
  attach(node, d);
}

static void get_uri(simnet_node_t *from, const char *uri, sim_reply_t *b) {
  sim_get(from, uri, b, 120000);
}

static void get(sim_reply_t *b) {
  get_uri(client, "coaps://10.0.0.1/hello", b);
}

/* The client's failure: |cause|, with |words| in the explanation or fix. */
static void expect_client(const sim_reply_t *b, int status, coap_cause_t cause, coap_detector_t by,
                          const char *words) {
  assert_int_equal(b->status, status);
  assert_true(b->has_diag);
  if (b->diag.cause != cause)
    fail_msg("cause %s, expected %s: %s", coap_cause_name(b->diag.cause), coap_cause_name(cause),
             b->diag.explanation);
  assert_int_equal(b->diag.detected_by, by);
  assert_int_equal(b->diag.error, status);
  assert_false(b->diag.is_server);
  if (words) {
    int found = strstr(b->diag.explanation, words) || strstr(b->diag.fix, words);
    if (!found) fail_msg("'%s' not in '%s' / '%s'", words, b->diag.explanation, b->diag.fix);
  }
  coap_diag_t last;
  assert_int_equal(coap_context_last_diag(client->ctx, &last), 0);
  assert_int_equal(last.cause, cause);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.failures_by_cause[cause], 1);
}

/* The server's view of the same handshake. */
static void expect_server(coap_cause_t cause, coap_detector_t by, const char *words) {
  simnet_run_until(&net, net.now + 100); /* the client's alert is on its way */
  coap_diag_t g;
  assert_int_equal(coap_context_last_diag(server->ctx, &g), 0);
  assert_int_equal(g.cause, cause);
  assert_int_equal(g.detected_by, by);
  assert_true(g.is_server);
  assert_non_null(strstr(g.peer, "10.0.0.2"));
  if (words && !strstr(g.explanation, words))
    fail_msg("'%s' not in the server's '%s'", words, g.explanation);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.failures_by_cause[cause], 1);
  assert_int_equal(st.dtls_failures, 1);
  assert_int_equal(server_log_failures, 1);
}

/* ---- configuration ---- */

static void test_no_credentials(void **state) {
  psk(server, "me", "secret");
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  assert_int_equal(coap_send_request(client->ctx, &o, sim_on_reply, NULL, NULL),
                   COAP_E_DTLS_NO_CREDENTIALS);
  coap_diag_t g;
  assert_int_equal(coap_context_last_diag(client->ctx, &g), 0);
  assert_int_equal(g.cause, COAP_CAUSE_NO_CREDENTIALS);
  assert_int_equal(g.detected_by, COAP_DETECTED_CONFIG);
  assert_int_equal(g.step, COAP_STEP_NONE);
  simnet_run_until(&net, net.now + 5000);
  assert_int_equal(net.delivered, 0); /* not a single packet */
}

/* ---- pre-shared keys ---- */

static void test_wrong_psk(void **state) {
  psk(server, "me", "secret");
  psk(client, "me", "wrong");
  sim_reply_t b;
  uint64_t t0 = net.now;
  get(&b);
  expect_client(&b, COAP_E_DTLS_HANDSHAKE, COAP_CAUSE_PSK_KEY_MISMATCH, COAP_DETECTED_PEER_ALERT,
                "identity \"me\"");
  assert_int_equal(b.diag.alert, 51);
  assert_string_equal(b.diag.alert_name, "decrypt_error");
  assert_int_equal(b.diag.step, COAP_STEP_FINISHED);
  assert_true(net.now - t0 < 1000); /* found at once, no timeout */
  expect_server(COAP_CAUSE_PSK_KEY_MISMATCH, COAP_DETECTED_LOCAL, "\"me\"");
}

static void test_unknown_identity(void **state) {
  psk(server, "me", "secret");
  psk(client, "stranger", "secret");
  sim_reply_t b;
  get(&b);
  expect_client(&b, COAP_E_DTLS_HANDSHAKE, COAP_CAUSE_PSK_UNKNOWN_IDENTITY,
                COAP_DETECTED_PEER_ALERT, "\"stranger\"");
  assert_string_equal(b.diag.alert_name, "unknown_psk_identity");
  assert_int_equal(b.diag.step, COAP_STEP_AUTHENTICATION);
  expect_server(COAP_CAUSE_PSK_UNKNOWN_IDENTITY, COAP_DETECTED_LOCAL, "\"stranger\"");
}

/* ---- certificates ---- */

static void test_untrusted_ca(void **state) {
  serve_cert(server_cert, server_key, NULL, 0);
  trust_ca(client, other_ca.cert_path);
  sim_reply_t b;
  get(&b);
  expect_client(&b, COAP_E_DTLS_HANDSHAKE, COAP_CAUSE_CERT_UNTRUSTED, COAP_DETECTED_LOCAL,
                "CN=test CA");
  assert_string_equal(b.diag.alert_name, "unknown_ca");
  assert_int_equal(b.diag.step, COAP_STEP_AUTHENTICATION);
  expect_server(COAP_CAUSE_SERVER_CERT_REJECTED, COAP_DETECTED_PEER_ALERT, "trust the CA");
  coap_handshake_report_t rep;
  assert_int_equal(coap_context_last_handshake(client->ctx, &rep), 0);
  assert_false(rep.established);
  assert_int_equal(rep.n_certs, 1);
  assert_string_equal(rep.certs[0].subject, "CN=server");
  assert_string_equal(rep.certs[0].issuer, "CN=test CA");
  assert_non_null(strstr(rep.certs[0].names, "IP:10.0.0.1"));
  assert_non_null(strstr(rep.certs[0].names, "DNS:server.test"));
}

static void dated_server_cert(time_t from, time_t until) {
  char cert[256], key[256];
  certs_issue(&ca, "dated", "dated", "10.0.0.1", NULL, from, until, cert, key);
  serve_cert(cert, key, NULL, 0);
  trust_ca(client, ca.cert_path);
}

static void test_expired(void **state) {
  dated_server_cert(1577836800 /* 2020-01-01 */, 1609459200 /* 2021-01-01 */);
  sim_reply_t b;
  get(&b);
  expect_client(&b, COAP_E_DTLS_HANDSHAKE, COAP_CAUSE_CERT_EXPIRED, COAP_DETECTED_LOCAL,
                "until 2021-01-01 00:00:00 UTC");
  assert_non_null(strstr(b.diag.explanation, "clock says"));
  assert_string_equal(b.diag.alert_name, "certificate_expired");
  expect_server(COAP_CAUSE_SERVER_CERT_REJECTED, COAP_DETECTED_PEER_ALERT, "expired");
}

static void test_not_yet_valid(void **state) {
  dated_server_cert(4102444800 /* 2100-01-01 */, 4133980800);
  sim_reply_t b;
  get(&b);
  expect_client(&b, COAP_E_DTLS_HANDSHAKE, COAP_CAUSE_CERT_NOT_YET_VALID, COAP_DETECTED_LOCAL,
                "valid from 2100-01-01");
  assert_non_null(strstr(b.diag.fix, "clock"));
}

static void test_name_mismatch(void **state) {
  char cert[256], key[256];
  time_t now = time(NULL);
  certs_issue(&ca, "elsewhere", "elsewhere", "10.0.0.9", "elsewhere.test", now - 60, now + 86400,
              cert, key);
  serve_cert(cert, key, NULL, 0);
  trust_ca(client, ca.cert_path);
  sim_reply_t b;
  get(&b);
  expect_client(&b, COAP_E_DTLS_HANDSHAKE, COAP_CAUSE_CERT_NAME_MISMATCH, COAP_DETECTED_LOCAL,
                "IP:10.0.0.9");
  assert_non_null(strstr(b.diag.explanation, "DNS:elsewhere.test"));
  assert_non_null(strstr(b.diag.explanation, "\"10.0.0.1\""));
}

static void test_client_cert_missing(void **state) {
  serve_cert(server_cert, server_key, ca.cert_path, 1);
  trust_ca(client, ca.cert_path);
  sim_reply_t b;
  get(&b);
  expect_client(&b, COAP_E_DTLS_HANDSHAKE, COAP_CAUSE_CLIENT_CERT_MISSING, COAP_DETECTED_PEER_ALERT,
                "--cert");
  assert_string_equal(b.diag.alert_name, "handshake_failure");
  expect_server(COAP_CAUSE_CLIENT_CERT_MISSING, COAP_DETECTED_LOCAL, "sent no certificate");
}

static void client_cert(const test_ca_t *issuer, time_t from, time_t until) {
  char cert[256], key[256];
  certs_issue(issuer, "client", "client", NULL, NULL, from, until, cert, key);
  coap_dtls_context_t *d = dtls(client);
  assert_int_equal(coap_dtls_set_ca(d, ca.cert_path), 0);
  assert_int_equal(coap_dtls_set_cert(d, cert, key, NULL), 0);
  attach(client, d);
}

/* Sent, and refused: the server names why in its alert and its log. */
static void test_client_cert_rejected(void **state) {
  serve_cert(server_cert, server_key, ca.cert_path, 1);
  client_cert(&ca, 1577836800, 1609459200); /* expired in 2021 */
  sim_reply_t b;
  get(&b);
  expect_client(&b, COAP_E_DTLS_HANDSHAKE, COAP_CAUSE_CLIENT_CERT_REJECTED,
                COAP_DETECTED_PEER_ALERT, "expired");
  expect_server(COAP_CAUSE_CERT_EXPIRED, COAP_DETECTED_LOCAL, "client's certificate");
}

/* From a CA the server did not name: GnuTLS does not even send it. */
static void test_client_cert_from_another_ca(void **state) {
  serve_cert(server_cert, server_key, ca.cert_path, 1);
  time_t now = time(NULL);
  client_cert(&other_ca, now - 60, now + 86400);
  sim_reply_t b;
  get(&b);
  expect_client(&b, COAP_E_DTLS_HANDSHAKE, COAP_CAUSE_CLIENT_CERT_MISSING, COAP_DETECTED_PEER_ALERT,
                "not issued by one of the CAs");
  expect_server(COAP_CAUSE_CLIENT_CERT_MISSING, COAP_DETECTED_LOCAL, "sent no certificate");
}

/* ---- raw public keys ---- */

static void test_rpk_untrusted(void **state) {
  coap_dtls_context_t *sd = dtls(server);
  assert_int_equal(coap_dtls_set_rpk(sd, server_key), 0);
  char fp[128];
  assert_int_equal(coap_dtls_rpk_fingerprint(sd, fp, sizeof fp), 0);
  attach(server, sd);
  char other_key[256], other_pub[256];
  certs_make_rpk("other", other_key, other_pub);
  coap_dtls_context_t *cd = dtls(client);
  assert_int_equal(coap_dtls_add_trusted_rpk(cd, other_pub), 0); /* not the server's key */
  attach(client, cd);
  sim_reply_t b;
  get(&b);
  expect_client(&b, COAP_E_DTLS_HANDSHAKE, COAP_CAUSE_RPK_UNTRUSTED, COAP_DETECTED_LOCAL, fp);
  assert_non_null(strstr(b.diag.fix, "--trust-rpk"));
}

/* ---- negotiation ---- */

static void test_no_common_suite(void **state) {
  serve_cert(server_cert, server_key, NULL, 0);
  psk(client, "me", "secret");
  sim_reply_t b;
  get(&b);
  expect_client(&b, COAP_E_DTLS_HANDSHAKE, COAP_CAUSE_NO_COMMON_SUITE, COAP_DETECTED_PEER_ALERT,
                "we offered PSK");
  expect_server(COAP_CAUSE_NO_COMMON_SUITE, COAP_DETECTED_LOCAL, "the client offered PSK (");
  coap_diag_t g;
  coap_context_last_diag(server->ctx, &g);
  assert_non_null(strstr(g.explanation, "this server accepts certificates"));
}

/* ---- the network ---- */

static int drop_all(void *user, const simnet_node_t *from, const coap_address_t *to,
                    const uint8_t *data, size_t len, unsigned seq) {
  return 1;
}

static void test_no_answer(void **state) {
  psk(server, "me", "secret");
  coap_dtls_context_t *d = dtls(client);
  assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)"me", (const uint8_t *)"secret", 6), 0);
  assert_int_equal(coap_dtls_set_handshake_timeouts(d, 500, 4000), 0);
  attach(client, d);
  net.filter = drop_all;
  uint64_t t0 = net.now;
  sim_reply_t b;
  get(&b);
  expect_client(&b, COAP_E_DTLS_TIMEOUT, COAP_CAUSE_NO_ANSWER, COAP_DETECTED_NETWORK,
                "no answer to");
  assert_int_equal(net.now - t0, 4000);
  assert_int_equal(b.diag.elapsed_ms, 4000);
  assert_true(b.diag.flights >= 3);
  assert_int_equal(b.diag.step, COAP_STEP_HELLO);
}

static void test_request_deadline_ends_the_handshake(void **state) {
  psk(server, "me", "secret");
  psk(client, "me", "secret");
  net.filter = drop_all;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  o.timeout_ms = 2500;
  sim_reply_t b;
  sim_send(client, &o, &b);
  assert_true(simnet_run_until_flag(&net, &b.done, 60000));
  expect_client(&b, COAP_E_DTLS_TIMEOUT, COAP_CAUSE_NO_ANSWER, COAP_DETECTED_NETWORK, "flights");
  assert_int_equal(b.diag.elapsed_ms, 2500);
}

static int drop_big_from_server(void *user, const simnet_node_t *from, const coap_address_t *to,
                                const uint8_t *data, size_t len, unsigned seq) {
  return from == server && len > 300;
}

static void test_mtu(void **state) {
  serve_cert(server_cert, server_key, NULL, 0);
  coap_dtls_context_t *d = dtls(client);
  assert_int_equal(coap_dtls_set_ca(d, ca.cert_path), 0);
  assert_int_equal(coap_dtls_set_handshake_timeouts(d, 500, 4000), 0);
  attach(client, d);
  net.filter = drop_big_from_server;
  sim_reply_t b;
  get(&b);
  expect_client(&b, COAP_E_DTLS_TIMEOUT, COAP_CAUSE_MTU, COAP_DETECTED_NETWORK, "MTU");
  assert_non_null(strstr(b.diag.fix, "coap_dtls_set_mtu"));
}

static void test_port_unreachable(void **state) {
  psk(client, "me", "secret");
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.7/hello");
  sim_reply_t b;
  sim_send(client, &o, &b);
  /* What the I/O shell does when the ICMP error comes back. */
  coap_address_t dest;
  coap_address_from_string(&dest, "10.0.0.7", 5684);
  coap_context_input_unreachable(client->ctx, client->ep, &dest, net.now + 1);
  assert_true(b.done);
  expect_client(&b, COAP_E_UNREACHABLE, COAP_CAUSE_PORT_UNREACHABLE, COAP_DETECTED_NETWORK,
                "port 5684");
  simnet_run_until(&net, net.now + 60000);
  assert_int_equal(coap_context_next_timeout(client->ctx) < net.now + 1000, 0); /* no retransmits */
}

static void test_coaps_to_plain_coap_port(void **state) {
  simnet_node_t *plain = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL);
  assert_non_null(plain);
  psk(client, "me", "secret");
  uint64_t t0 = net.now;
  sim_reply_t b;
  get_uri(client, "coaps://10.0.0.3:5683/hello", &b);
  expect_client(&b, COAP_E_WRONG_PROTOCOL, COAP_CAUSE_PLAIN_COAP_PEER, COAP_DETECTED_NETWORK,
                "CoAP RST");
  assert_true(net.now - t0 < 5000); /* the ping after the first resend, not a timeout */
}

static void test_coap_to_dtls_port(void **state) {
  psk(server, "me", "secret");
  /* With a cookie asked, the probe's hello leaves nothing on the server. */
  assert_int_equal(
      coap_dtls_set_cookie_policy(coap_context_dtls(server->ctx), COAP_DTLS_COOKIE_ALWAYS, 0), 0);
  simnet_node_t *plain = simnet_add_node(&net, 40001, COAP_PROTO_UDP, NULL);
  assert_non_null(plain);
  sim_reply_t b;
  get_uri(plain, "coap://10.0.0.1:5684/hello", &b);
  assert_int_equal(b.status, COAP_E_WRONG_PROTOCOL);
  assert_true(b.has_diag);
  assert_int_equal(b.diag.cause, COAP_CAUSE_DTLS_PEER);
  assert_non_null(strstr(b.diag.fix, "coaps://"));
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.peers, 0); /* the probe left no state on the server */
}

/* ---- the server's log is rate-limited, its counters are not ---- */

static void test_failure_log_is_rate_limited(void **state) {
  psk(server, "me", "secret");
  for (int i = 0; i < 15; i++) {
    assert_int_equal(simnet_node_restart(client), 0);
    psk(client, "me", "wrong");
    sim_reply_t b;
    get(&b);
    assert_int_equal(b.diag.cause, COAP_CAUSE_PSK_KEY_MISMATCH);
  }
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.failures_by_cause[COAP_CAUSE_PSK_KEY_MISMATCH], 15);
  assert_int_equal(server_log_failures, 10);
}

/* ---- the cause table ---- */

static void test_cause_table(void **state) {
  for (int c = 0; c < COAP_CAUSE_COUNT; c++) {
    const coap_cause_info_t *i = coap_cause_info((coap_cause_t)c);
    assert_int_equal(i->cause, c);
    assert_true(strlen(i->name) > 2 && strlen(i->summary) > 8 && strlen(i->fix) > 5);
    assert_int_equal(coap_cause_from_name(i->name), c);
  }
  assert_int_equal(coap_cause_from_name("nonsense"), -1);
  assert_string_equal(coap_cause_name((coap_cause_t)999), "none");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_no_credentials, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_psk, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_identity, setup, teardown),
      cmocka_unit_test_setup_teardown(test_untrusted_ca, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expired, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_yet_valid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_name_mismatch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_cert_missing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_cert_rejected, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_cert_from_another_ca, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rpk_untrusted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_common_suite, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_answer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_request_deadline_ends_the_handshake, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mtu, setup, teardown),
      cmocka_unit_test_setup_teardown(test_port_unreachable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_coaps_to_plain_coap_port, setup, teardown),
      cmocka_unit_test_setup_teardown(test_coap_to_dtls_port, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failure_log_is_rate_limited, setup, teardown),
      cmocka_unit_test(test_cause_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
