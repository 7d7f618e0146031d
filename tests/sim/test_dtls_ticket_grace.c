/* Session tickets across nodes and rotations (issue 16), counted in round
 * trips on the virtual clock (100 ms RTT) against a certificate server,
 * where a fresh hello must answer a cookie first (WHEN_NEEDED, the
 * default). A client gets its ticket from one node; the node vanishes and
 * another, sharing the ticket key file, takes its address (a balancer
 * sending the client elsewhere looks the same to both ends):
 * - same file: the client resumes in 2 round trips to its response
 *   (hello → ServerHello/CCS/Finished; Finished + request → response),
 *   no HelloVerifyRequest;
 * - the file rotated once (the ticket's key is now the previous one):
 *   still 2 round trips, resumed (the grace period);
 * - rotated twice (its key is gone): a full handshake after a cookie,
 *   counted as ticket-key-unknown;
 * - a ticket of a key the node never had (another cluster): the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/diag.h"
#include "coaps/dtls.h"
#include "support_dtls_pair.h"
#include "support_reply.h"
#include "support_simnet.h"

#define ONE_WAY_MS 50
#define RTT_MS (2 * ONE_WAY_MS)

#define K(c) #c #c #c #c #c #c #c #c
/* 128 hex digits each. */
#define KEY0 K(0123456789abcdef) "\n"
#define KEY1 K(1111111122222222) "\n"
#define KEY2 K(abcdefabcdef0000) "\n"
#define KEYX K(9999999999999999) "\n"
#define HEAD "coaps-ticket-keys 1\n"

static simnet_t net;
static simnet_node_t *server, *client;

static int setup_group(void **state) {
  dtls_pair_make_certs("ticket grace CA");
  return 0;
}

static int teardown_group(void **state) {
  dtls_pair_remove_certs();
  return 0;
}

/* The server node's configuration: the certificate and |keys|. */
static void serve_with(const char *keys) {
  coap_dtls_context_t *s = dtls_pair_server_dtls(server, DTLS_PAIR_X509);
  assert_true(coap_dtls_set_ticket_keys(s, keys, strlen(keys)) > 0);
  dtls_pair_install(server, s);
  dtls_pair_add_hi(server);
}

static void start(const char *keys) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.peer_idle_ms = 5000; /* both forget the session: the next GET resumes */
  dtls_pair_start(&net, &cfg, &server, &client);
  net.latency_ms = ONE_WAY_MS;
  dtls_pair_install(client, dtls_pair_client_dtls(client, DTLS_PAIR_X509));
  serve_with(keys);
}

static unsigned round_trips_of_get(void) {
  sim_reply_t b;
  uint64_t t0 = net.now;
  sim_get(client, "coaps://10.0.0.1/hi", &b, 60000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  uint64_t ms = net.now - t0;
  assert_int_equal(ms % RTT_MS, 0);
  return (unsigned)(ms / RTT_MS);
}

/* The client's ticket comes from a node with |first|; that node vanishes
 * and one with |then| answers at its address. What the second saw. */
static coap_stats_t move_to_node_with(const char *first, const char *then, unsigned *rtt) {
  start(first);
  assert_int_equal(round_trips_of_get(), 4); /* fresh, certificate: cookie first */
  simnet_run_until(&net, net.now + 400000);  /* idle: both sides close */
  assert_int_equal(simnet_node_restart(server), 0);
  serve_with(then);
  *rtt = round_trips_of_get();
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  simnet_free(&net);
  return st;
}

static void test_another_node_sharing_the_file_resumes_in_one_round_trip(void **state) {
  unsigned rtt;
  coap_stats_t st = move_to_node_with(HEAD KEY0, HEAD KEY0, &rtt);
  assert_int_equal(st.dtls_resumed, 1);
  assert_int_equal(st.dtls_cookies_sent, 0);
  assert_int_equal(rtt, 2);
}

static void test_after_one_rotation_the_previous_key_still_resumes(void **state) {
  unsigned rtt;
  coap_stats_t st = move_to_node_with(HEAD KEY0, HEAD KEY1 KEY0, &rtt);
  assert_int_equal(st.dtls_resumed, 1);
  assert_int_equal(st.dtls_cookies_sent, 0);
  assert_int_equal(st.failures_by_cause[COAP_CAUSE_TICKET_KEY_UNKNOWN], 0);
  assert_int_equal(rtt, 2);
  /* A previous key further down the file opens its tickets too. */
  st = move_to_node_with(HEAD KEY0, HEAD KEY2 KEY1 KEY0, &rtt);
  assert_int_equal(st.dtls_resumed, 1);
  assert_int_equal(rtt, 2);
}

static void test_after_two_rotations_a_full_handshake_counted(void **state) {
  unsigned rtt;
  coap_stats_t st = move_to_node_with(HEAD KEY0, HEAD KEY2 KEY1, &rtt);
  assert_int_equal(st.dtls_resumed, 0);
  assert_int_equal(st.dtls_cookies_sent, 1); /* an unknown ticket is no reason to skip it */
  assert_int_equal(st.failures_by_cause[COAP_CAUSE_TICKET_KEY_UNKNOWN], 1);
  assert_int_equal(rtt, 4);
  st = move_to_node_with(HEAD KEYX, HEAD KEY0, &rtt);
  assert_int_equal(st.dtls_resumed, 0);
  assert_int_equal(st.failures_by_cause[COAP_CAUSE_TICKET_KEY_UNKNOWN], 1);
}

/* New tickets are sealed with the current key: a full handshake on a
 * node whose file holds a previous key too gives a ticket that resumes on
 * a node holding the current key alone. */
static void test_new_tickets_are_sealed_with_the_current_key(void **state) {
  start(HEAD KEY1 KEY0);
  assert_int_equal(round_trips_of_get(), 4);
  simnet_run_until(&net, net.now + 400000);
  assert_int_equal(simnet_node_restart(server), 0);
  serve_with(HEAD KEY1);
  assert_int_equal(round_trips_of_get(), 2);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_resumed, 1);
  simnet_free(&net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_another_node_sharing_the_file_resumes_in_one_round_trip),
      cmocka_unit_test(test_after_one_rotation_the_previous_key_still_resumes),
      cmocka_unit_test(test_after_two_rotations_a_full_handshake_counted),
      cmocka_unit_test(test_new_tickets_are_sealed_with_the_current_key),
  };
  return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
