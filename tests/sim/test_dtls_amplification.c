/* What a server sends to an address that never showed it is the sender's:
 * one genuine ClientHello replayed from a forged address, then a minute
 * of virtual time for any resend. In every security mode, fresh and
 * resumed (the hello brings a session ticket), and under every cookie
 * policy the forged address gets at most as many bytes as the hello had,
 * in one datagram at most for a fresh hello; and a real client still gets its answer with
 * the same configuration. */
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

typedef enum {
  MODE_PSK,
  MODE_X509,
  MODE_RPK,
  MODE_MIXED_PSK_CLIENT,
  MODE_MIXED_X509_CLIENT
} mode_t_;

static const char *mode_name[] = {"PSK", "X.509", "RPK", "PSK+X.509 server, PSK client",
                                  "PSK+X.509 server, X.509 client"};
static const char *policy_name[] = {"always", "under load", "never", "when needed"};
static const unsigned server_creds[] = {DTLS_PAIR_PSK, DTLS_PAIR_X509, DTLS_PAIR_RPK,
                                        DTLS_PAIR_PSK | DTLS_PAIR_X509,
                                        DTLS_PAIR_PSK | DTLS_PAIR_X509};
static const unsigned client_creds[] = {DTLS_PAIR_PSK, DTLS_PAIR_X509, DTLS_PAIR_RPK, DTLS_PAIR_PSK,
                                        DTLS_PAIR_X509};

static simnet_t net;
static simnet_node_t *server, *client;
static coap_address_t forged;

static uint8_t hello[1500];
static size_t hello_len;
static int capturing_hello;
static size_t forged_bytes;
static unsigned forged_datagrams;

static int watch(void *user, const simnet_node_t *from, const coap_address_t *to,
                 const uint8_t *data, size_t len, unsigned seq) {
  if (capturing_hello && from == client) {
    if (!hello_len && len <= sizeof hello) {
      memcpy(hello, data, len);
      hello_len = len;
    }
    return 1;
  }
  if (from == server && coap_address_equal(to, &forged)) {
    forged_bytes += len;
    forged_datagrams++;
  }
  return 0;
}

static int setup_group(void **state) {
  dtls_pair_make_certs("amplification CA");
  return 0;
}

static int teardown_group(void **state) {
  dtls_pair_remove_certs();
  return 0;
}

static coap_dtls_context_t *server_config(mode_t_ mode, coap_dtls_cookie_policy_t policy) {
  coap_dtls_context_t *d = dtls_pair_server_dtls(server, server_creds[mode]);
  /* Under load only from 1000 handshakes on: never reached here. */
  assert_int_equal(coap_dtls_set_cookie_policy(d, policy, 1000), 0);
  return d;
}

static void client_config(mode_t_ mode) {
  dtls_pair_install(client, dtls_pair_client_dtls(client, client_creds[mode]));
}

/* A first session, ended on both sides by idling: the client's next hello
 * brings the session's ticket. */
static void prime_resumption(void) {
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hi", &b, 60000);
  assert_int_equal(b.code, COAP_CONTENT);
  simnet_run_until(&net, net.now + 400000);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.peers, 0);
}

static void start(mode_t_ mode, coap_dtls_cookie_policy_t policy, int resumed) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.peer_idle_ms = 5000;
  dtls_pair_start(&net, &cfg, &server, &client);
  dtls_pair_install(server, server_config(mode, policy));
  client_config(mode);
  dtls_pair_add_hi(server);
  coap_address_from_string(&forged, "10.66.0.9", 7777);
  if (resumed) prime_resumption();
  net.filter = watch;
  hello_len = 0;
  forged_bytes = 0;
  forged_datagrams = 0;
}

/* The client's first ClientHello, as the forger would have captured it. */
static void capture_hello(void) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hi");
  static sim_reply_t never; /* the request is dropped at teardown */
  capturing_hello = 1;
  sim_send(client, &o, &never);
  simnet_run_until(&net, net.now + 10);
  capturing_hello = 0;
  assert_true(hello_len > 0);
  assert_int_equal(hello[13], 1); /* a ClientHello */
}

static void one_case(mode_t_ mode, coap_dtls_cookie_policy_t policy, int resumed,
                     int *cookie_forced) {
  start(mode, policy, resumed);
  capture_hello();
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  uint64_t cookies_before = st.dtls_cookies_sent; /* the priming session's */
  coap_context_input(server->ctx, server->ep, &forged, hello, hello_len, net.now);
  simnet_run_until(&net, net.now + 60000);
  coap_context_get_stats(server->ctx, &st);
  printf("%-32s %-7s cookie %-11s: %4zu bytes in, %4zu bytes out in %u datagrams (%.2fx)%s\n",
         mode_name[mode], resumed ? "resumed" : "fresh", policy_name[policy], hello_len,
         forged_bytes, forged_datagrams, (double)forged_bytes / (double)hello_len,
         st.dtls_cookies_sent > cookies_before ? ", a cookie asked" : "");
  assert_true(forged_bytes <= hello_len);
  /* A fresh hello's answer goes once; a resumed one's small flight may be
   * resent on the timer while it fits the bytes received (the client
   * sends the last flight of an abbreviated handshake). */
  if (!resumed) assert_true(forged_datagrams <= 1);
  *cookie_forced = st.dtls_cookies_sent > cookies_before;
  simnet_free(&net);
  /* The same configuration serves a real client. */
  start(mode, policy, resumed);
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hi", &b, 60000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_resumed, resumed ? 1 : 0);
  simnet_free(&net);
}

static void test_no_amplification_in_any_mode_or_policy(void **state) {
  for (int m = MODE_PSK; m <= MODE_MIXED_X509_CLIENT; m++) {
    for (int p = COAP_DTLS_COOKIE_ALWAYS; p <= COAP_DTLS_COOKIE_WHEN_NEEDED; p++) {
      int cookie;
      one_case((mode_t_)m, (coap_dtls_cookie_policy_t)p, 0, &cookie);
      /* A certificate flight goes only to an address that answered a
       * cookie; a PSK hello keeps the round trip the policy saves. */
      int certificate = m == MODE_X509 || m == MODE_RPK || m == MODE_MIXED_X509_CLIENT;
      if (p == COAP_DTLS_COOKIE_ALWAYS || certificate)
        assert_true(cookie);
      else
        assert_false(cookie);
    }
  }
}

/* A resumed handshake's answer is smaller than the hello with its ticket:
 * WHEN_NEEDED asks no cookie in any mode, and the bound still holds. */
static void test_no_amplification_when_resuming(void **state) {
  for (int m = MODE_PSK; m <= MODE_RPK; m++) {
    for (int p = COAP_DTLS_COOKIE_ALWAYS; p <= COAP_DTLS_COOKIE_WHEN_NEEDED; p++) {
      int cookie;
      one_case((mode_t_)m, (coap_dtls_cookie_policy_t)p, 1, &cookie);
      int certificate = m == MODE_X509 || m == MODE_RPK;
      if (p == COAP_DTLS_COOKIE_ALWAYS || (certificate && p != COAP_DTLS_COOKIE_WHEN_NEEDED))
        assert_true(cookie);
      else
        assert_false(cookie);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_no_amplification_in_any_mode_or_policy),
      cmocka_unit_test(test_no_amplification_when_resuming),
  };
  return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
