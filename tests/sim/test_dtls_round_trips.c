/* Round trips to the first response, counted on the virtual clock over a
 * 100 ms RTT link (50 ms each way), per security mode and cookie policy,
 * fresh and resumed. With WHEN_NEEDED (the default) a fresh PSK request
 * takes 3 round trips and a resumed one 2, in every mode; a fresh
 * certificate or raw-key handshake keeps its cookie (4). ALWAYS adds the
 * cookie's round trip everywhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "support_dtls_pair.h"
#include "support_reply.h"
#include "support_simnet.h"

#define ONE_WAY_MS 50
#define RTT_MS (2 * ONE_WAY_MS)

typedef enum { MODE_PSK, MODE_X509, MODE_RPK } mode_t_;
static const char *mode_name[] = {"PSK", "X.509", "RPK"};
static const unsigned mode_creds[] = {DTLS_PAIR_PSK, DTLS_PAIR_X509, DTLS_PAIR_RPK};

static simnet_t net;
static simnet_node_t *server, *client;
static int setup_group(void **state) {
  dtls_pair_make_certs("round trips CA");
  return 0;
}

static int teardown_group(void **state) {
  dtls_pair_remove_certs();
  return 0;
}

/* |policy| < 0: the library's default. */
static void start(mode_t_ mode, int policy) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.peer_idle_ms = 5000; /* both forget the session: the next GET resumes */
  dtls_pair_start(&net, &cfg, &server, &client);
  net.latency_ms = ONE_WAY_MS;
  coap_dtls_context_t *s = dtls_pair_server_dtls(server, mode_creds[mode]);
  if (policy >= 0)
    assert_int_equal(coap_dtls_set_cookie_policy(s, (coap_dtls_cookie_policy_t)policy, 0), 0);
  dtls_pair_install(server, s);
  dtls_pair_install(client, dtls_pair_client_dtls(client, mode_creds[mode]));
  dtls_pair_add_hi(server);
}

/* Round trips from the request to its response, whole ones: the link's
 * delay is all the virtual time there is. */
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

static void measure(mode_t_ mode, int policy, unsigned *fresh, unsigned *resumed) {
  start(mode, policy);
  *fresh = round_trips_of_get();
  simnet_run_until(&net, net.now + 400000); /* idle: both sides close */
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.peers, 0);
  *resumed = round_trips_of_get();
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_resumed, 1);
  simnet_free(&net);
  printf("%-6s cookie %-12s: fresh %u RTT, resumed %u RTT\n", mode_name[mode],
         policy < 0                              ? "(default)"
         : policy == COAP_DTLS_COOKIE_ALWAYS     ? "always"
         : policy == COAP_DTLS_COOKIE_UNDER_LOAD ? "under-load"
         : policy == COAP_DTLS_COOKIE_NEVER      ? "never"
                                                 : "when-needed",
         *fresh, *resumed);
}

static void test_default_saves_the_cookie_round_trip_where_it_protects_nothing(void **state) {
  unsigned fresh, resumed;
  measure(MODE_PSK, -1, &fresh, &resumed);
  assert_int_equal(fresh, 3);
  assert_int_equal(resumed, 2);
  measure(MODE_X509, -1, &fresh, &resumed);
  assert_int_equal(fresh, 4); /* the certificate flight waits for the cookie */
  assert_int_equal(resumed, 2);
  measure(MODE_RPK, -1, &fresh, &resumed);
  assert_int_equal(fresh, 4);
  assert_int_equal(resumed, 2);
}

static void test_each_policy(void **state) {
  for (int m = MODE_PSK; m <= MODE_RPK; m++) {
    for (int p = COAP_DTLS_COOKIE_ALWAYS; p <= COAP_DTLS_COOKIE_WHEN_NEEDED; p++) {
      unsigned fresh, resumed;
      measure((mode_t_)m, p, &fresh, &resumed);
      int cookie_fresh = p == COAP_DTLS_COOKIE_ALWAYS || m != MODE_PSK;
      int cookie_resumed =
          p == COAP_DTLS_COOKIE_ALWAYS || (m != MODE_PSK && p != COAP_DTLS_COOKIE_WHEN_NEEDED);
      assert_int_equal(fresh, 3 + cookie_fresh);
      assert_int_equal(resumed, 2 + cookie_resumed);
    }
  }
}

/* A ticket the server cannot decrypt (it restarted: new ticket keys) is
 * let in without a cookie like any resuming hello; the full handshake it
 * turns into must not stall on the unverified-address budget. */
static void test_stale_ticket_after_server_restart(void **state) {
  for (int m = MODE_PSK; m <= MODE_RPK; m++) {
    start((mode_t_)m, -1);
    (void)round_trips_of_get();
    simnet_run_until(&net, net.now + 400000);
    assert_int_equal(simnet_node_restart(server), 0);
    dtls_pair_install(server, dtls_pair_server_dtls(server, mode_creds[m]));
    dtls_pair_add_hi(server);
    unsigned n = round_trips_of_get();
    printf("%-6s stale ticket: %u RTT\n", mode_name[m], n);
    coap_stats_t st;
    coap_context_get_stats(server->ctx, &st);
    assert_int_equal(st.dtls_resumed, 0);
    assert_true(n <= 4);
    simnet_free(&net);
  }
}

/* Workers (and a reload) share the ticket key through
 * coap_dtls_share_keys, and so the names derived from it: a
 * configuration that issued no ticket still lets a client resume without
 * a cookie when its ticket came from the one it shares keys with. */
static void test_shared_keys_share_ticket_names(void **state) {
  start(MODE_X509, -1);
  coap_dtls_context_t *issuer = coap_context_dtls(server->ctx);
  coap_dtls_context_ref(issuer);
  (void)round_trips_of_get();
  simnet_run_until(&net, net.now + 400000);
  coap_dtls_context_t *other = dtls_pair_server_dtls(server, DTLS_PAIR_X509);
  assert_int_equal(coap_dtls_share_keys(other, issuer), 0);
  assert_int_equal(coap_context_set_dtls_context(server->ctx, other), 0);
  coap_dtls_context_free(issuer); /* the names outlive the one that learnt them */
  assert_int_equal(round_trips_of_get(), 2);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_resumed, 1);
  simnet_free(&net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_saves_the_cookie_round_trip_where_it_protects_nothing),
      cmocka_unit_test(test_each_policy),
      cmocka_unit_test(test_stale_ticket_after_server_restart),
      cmocka_unit_test(test_shared_keys_share_ticket_names),
  };
  return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
