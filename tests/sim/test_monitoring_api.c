/* The library's numbers for monitoring, on the simulated network: version
 * 2 of coap_stats_t (bytes, responses by class, handshakes and sessions
 * by mode), the ring of recent failures (coap_context_failure) with who
 * the peer said it was, and log events with their fields apart
 * (coap_context_set_log_event_handler). */
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

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

static void psk(simnet_node_t *node, const char *identity, const char *key) {
  coap_dtls_context_t *d = coap_dtls_new_context(node->ctx);
  assert_non_null(d);
  assert_int_equal(coap_context_set_dtls_context(node->ctx, d), 0);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)identity, (const uint8_t *)key, strlen(key)), 0);
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL); /* 10.0.0.1 */
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  coap_resource_set_handler(coap_resource_add(server->ctx, "hello"), COAP_GET, hello, NULL);
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static coap_stats_t stats_of(simnet_node_t *node) {
  coap_stats_t st;
  assert_int_equal(coap_context_get_stats(node->ctx, &st), 0);
  return st;
}

static void test_counters_by_mode_and_class(void **state) {
  psk(server, "device-1", "0123456789abcdef");
  psk(client, "device-1", "0123456789abcdef");
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 120000);
  assert_int_equal(b.code, COAP_CONTENT);
  sim_get(client, "coaps://10.0.0.1/missing", &b, 120000);
  assert_int_equal(b.code, COAP_NOT_FOUND);

  coap_stats_t s = stats_of(server);
  assert_int_equal(s.dtls_handshakes_by_mode[COAP_DTLS_MODE_PSK][0], 1);
  assert_int_equal(s.dtls_handshakes_by_mode[COAP_DTLS_MODE_PSK][1], 0);
  assert_int_equal(s.dtls_handshakes_by_mode[COAP_DTLS_MODE_X509][0], 0);
  assert_int_equal(s.dtls_sessions_by_mode[COAP_DTLS_MODE_PSK], 1);
  assert_int_equal(s.responses_by_class[2], 1);
  assert_int_equal(s.responses_by_class[4], 1);
  assert_true(s.rx_bytes > s.rx_datagrams * 13); /* every DTLS record has a 13-byte header */
  assert_true(s.tx_bytes > s.tx_datagrams * 13);
  coap_stats_t c = stats_of(client);
  assert_int_equal(c.dtls_handshakes_by_mode[COAP_DTLS_MODE_PSK][0], 1);
  assert_int_equal(c.dtls_sessions_by_mode[COAP_DTLS_MODE_PSK], 1);
  assert_int_equal(c.responses_by_class[2], 0); /* responses sent as server only */
  assert_int_equal(c.tx_bytes, s.rx_bytes);     /* no loss on this network */

  /* The client vanishes without a close_notify: its session ends when
   * the server forgets the idle peer (5 minutes), and leaves the gauge. */
  assert_int_equal(simnet_node_restart(client), 0);
  simnet_run_until(&net, net.now + 301000);
  assert_int_equal(stats_of(server).dtls_sessions_by_mode[COAP_DTLS_MODE_PSK], 0);
  assert_int_equal(stats_of(server).dtls_handshakes_by_mode[COAP_DTLS_MODE_PSK][0], 1);
}

typedef struct events {
  int n, failures;
  char identity[160], cause[64], fix[320], peer[64], message[512], line[512];
} events_t;

static void on_event(void *user, const coap_log_event_t *ev) {
  events_t *e = user;
  e->n++;
  assert_non_null(ev->line);
  assert_non_null(ev->message);
  assert_non_null(ev->peer);
  assert_non_null(ev->identity);
  assert_non_null(ev->cause);
  assert_non_null(ev->fix);
  if (!ev->cause[0]) return;
  e->failures++;
  snprintf(e->identity, sizeof e->identity, "%s", ev->identity);
  snprintf(e->cause, sizeof e->cause, "%s", ev->cause);
  snprintf(e->fix, sizeof e->fix, "%s", ev->fix);
  snprintf(e->peer, sizeof e->peer, "%s", ev->peer);
  snprintf(e->message, sizeof e->message, "%s", ev->message);
  snprintf(e->line, sizeof e->line, "%s", ev->line);
}

static void test_failure_record_and_event(void **state) {
  psk(server, "device-1", "0123456789abcdef");
  psk(client, "device-1", "a wrong key here");
  events_t ev = {0};
  coap_context_set_log_event_handler(server->ctx, on_event, &ev);
  coap_failure_record_t f;
  assert_int_equal(coap_context_failure(server->ctx, 0, &f), COAP_E_NOT_FOUND);
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 120000);
  assert_int_equal(b.cause, COAP_CAUSE_PSK_KEY_MISMATCH);

  assert_int_equal(coap_context_failure(server->ctx, 0, &f), 0);
  assert_int_equal(f.seq, 1);
  assert_int_equal(f.cause, COAP_CAUSE_PSK_KEY_MISMATCH);
  assert_int_equal(f.mode, COAP_DTLS_MODE_PSK);
  assert_int_equal(f.is_server, 1);
  assert_string_equal(f.identity, "device-1");
  /* The plain address, not the log prefix "[10.0.0.2:PORT]". */
  assert_memory_equal(f.peer, "10.0.0.2:", 9);
  assert_null(strchr(f.peer, '['));
  assert_non_null(strstr(f.fix, "device-1"));
  assert_true(f.explanation[0] != '\0');
  assert_true(f.at_ms > 0 && f.at_ms <= net.now);
  assert_int_equal(coap_context_failure(server->ctx, 1, &f), COAP_E_NOT_FOUND);
  assert_int_equal(stats_of(server).dtls_failures_by_mode[COAP_DTLS_MODE_PSK], 1);

  /* The event: the same fields apart, and the line a line handler gets. */
  assert_int_equal(ev.failures, 1);
  assert_string_equal(ev.cause, "psk-key-mismatch");
  assert_string_equal(ev.identity, "device-1");
  assert_non_null(strstr(ev.peer, "10.0.0.2"));
  assert_string_equal(ev.fix, f.fix);
  assert_non_null(strstr(ev.line, ev.peer));
  assert_non_null(strstr(ev.line, ev.message));
  assert_null(strstr(ev.message, ev.peer)); /* the message comes without the prefix */
}

/* The ring keeps the newest COAP_FAILURE_LOG_SIZE, newest first. */
static void test_failure_ring_wraps(void **state) {
  psk(server, "device-1", "0123456789abcdef");
  psk(client, "device-1", "a wrong key here");
  const int n = COAP_FAILURE_LOG_SIZE + 8;
  for (int i = 0; i < n; i++) {
    sim_reply_t b;
    sim_get(client, "coaps://10.0.0.1/hello", &b, 120000);
    assert_int_equal(b.cause, COAP_CAUSE_PSK_KEY_MISMATCH);
  }
  coap_failure_record_t f;
  uint64_t at = UINT64_MAX;
  for (size_t i = 0; i < COAP_FAILURE_LOG_SIZE; i++) {
    assert_int_equal(coap_context_failure(server->ctx, i, &f), 0);
    assert_int_equal(f.seq, (uint64_t)n - i);
    assert_true(f.at_ms <= at);
    at = f.at_ms;
  }
  assert_int_equal(coap_context_failure(server->ctx, COAP_FAILURE_LOG_SIZE, &f), COAP_E_NOT_FOUND);
  assert_int_equal(coap_context_failure(NULL, 0, &f), COAP_E_INVALID_ARG);
  assert_int_equal(stats_of(server).failures_by_cause[COAP_CAUSE_PSK_KEY_MISMATCH], (uint64_t)n);
}

/* A certificate's subject and a raw key's fingerprint stand for the
 * identity: the server records the expired client certificate's subject,
 * the client the fingerprint of the server's raw key it does not trust. */
static void test_identity_of_certificates_and_keys(void **state) {
  test_ca_t ca;
  certs_make_ca(&ca, "test CA", "ca.pem");
  time_t now = time(NULL);
  char scert[256], skey[256], ccert[256], ckey[256];
  certs_issue(&ca, "server", "server", "10.0.0.1", NULL, now - 3600, now + 86400, scert, skey);
  certs_issue(&ca, "client", "device-42", NULL, NULL, 1577836800, 1609459200, ccert, ckey);
  coap_dtls_context_t *sd = coap_dtls_new_context(server->ctx);
  assert_int_equal(coap_dtls_set_cert(sd, scert, skey, NULL), 0);
  assert_int_equal(coap_dtls_set_ca(sd, ca.cert_path), 0);
  assert_int_equal(coap_dtls_set_client_cert(sd, COAP_DTLS_CLIENT_CERT_REQUIRED), 0);
  assert_int_equal(coap_context_set_dtls_context(server->ctx, sd), 0);
  coap_dtls_context_t *cd = coap_dtls_new_context(client->ctx);
  assert_int_equal(coap_dtls_set_ca(cd, ca.cert_path), 0);
  assert_int_equal(coap_dtls_set_cert(cd, ccert, ckey, NULL), 0); /* expired */
  assert_int_equal(coap_context_set_dtls_context(client->ctx, cd), 0);
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 120000);
  assert_int_equal(b.cause, COAP_CAUSE_CLIENT_CERT_REJECTED);
  simnet_run_until(&net, net.now + 100);
  coap_failure_record_t f;
  assert_int_equal(coap_context_failure(server->ctx, 0, &f), 0);
  assert_int_equal(f.cause, COAP_CAUSE_CERT_EXPIRED);
  assert_int_equal(f.mode, COAP_DTLS_MODE_X509);
  assert_non_null(strstr(f.identity, "CN=device-42"));
  assert_int_equal(stats_of(server).dtls_failures_by_mode[COAP_DTLS_MODE_X509], 1);

  /* Raw keys: the client pins another key than the server's. */
  char rkey[256], rpub[256], okey[256], opub[256], fp[128];
  certs_make_rpk("server-rpk", rkey, rpub);
  certs_make_rpk("other-rpk", okey, opub);
  sd = coap_dtls_new_context(server->ctx);
  assert_int_equal(coap_dtls_set_rpk(sd, rkey), 0);
  assert_int_equal(coap_dtls_rpk_fingerprint(sd, fp, sizeof fp), 0);
  assert_int_equal(coap_context_set_dtls_context(server->ctx, sd), 0);
  cd = coap_dtls_new_context(client->ctx);
  assert_int_equal(coap_dtls_add_trusted_rpk(cd, opub), 0);
  assert_int_equal(coap_context_set_dtls_context(client->ctx, cd), 0);
  sim_get(client, "coaps://10.0.0.1/hello", &b, 120000);
  assert_int_equal(b.cause, COAP_CAUSE_RPK_UNTRUSTED);
  assert_int_equal(coap_context_failure(client->ctx, 0, &f), 0);
  assert_int_equal(f.cause, COAP_CAUSE_RPK_UNTRUSTED);
  assert_int_equal(f.is_server, 0);
  assert_int_equal(f.mode, COAP_DTLS_MODE_RPK);
  assert_string_equal(f.identity, fp);
  certs_free_ca(&ca);
  certs_cleanup();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_counters_by_mode_and_class, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failure_record_and_event, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failure_ring_wraps, setup, teardown),
      cmocka_unit_test_setup_teardown(test_identity_of_certificates_and_keys, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
