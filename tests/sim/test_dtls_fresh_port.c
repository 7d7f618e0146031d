/* A client that replaces its session with a server makes the new one from
 * a port of its own when its transport can open and close endpoints
 * (coap_transport_t V2): a server that still holds the old session may
 * ignore a new ClientHello from the same address (libcoap with OpenSSL
 * does), and a late datagram of the old session could reach the new
 * handshake. The old endpoint closes: the old session's datagrams are
 * undeliverable. Both ways a session is replaced at once: the server
 * closed it (a restart, close_notify) under a request, and the server
 * fell silent (its answers lost; it still holds our session). Without
 * close_endpoint (a V1 transport) the new session keeps the port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/credentials.h"
#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"

#define CLIENT_PORT 40000

static simnet_t net;
static simnet_node_t *server, *client;
static int drop_client, drop_server, handler_calls;
static uint8_t stale[1500]; /* the server's last flight of the first handshake */
static size_t stale_len;

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  handler_calls++;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "secure hello", 12);
}

static int is_handshake(const uint8_t *d, size_t len, uint8_t type) {
  return len > 25 && d[0] == 22 && !d[3] && !d[4] && d[13] == type;
}

static int filter(void *user, const simnet_node_t *from, const coap_address_t *to,
                  const uint8_t *data, size_t len, unsigned seq) {
  if (from == server && !stale_len && len <= sizeof stale && is_handshake(data, len, 4)) {
    memcpy(stale, data, len);
    stale_len = len;
  }
  if (from == client && drop_client) return 1;
  if (from == server && drop_server) return 1;
  return 0;
}

/* The server's view: the ports its established sessions with the client
 * come from (coap_context_end_sessions asks about each, ending none). */
static uint16_t session_ports[8];
static unsigned n_sessions;

static int note_session(void *user, const coap_session_info_t *info) {
  const char *p = strstr(info->peer, "10.0.0.2");
  const char *colon = p ? strrchr(p, ':') : NULL;
  if (colon && info->established && n_sessions < 8)
    session_ports[n_sessions++] = (uint16_t)strtoul(colon + 1, NULL, 10);
  return 0;
}

static void server_sessions(void) {
  n_sessions = 0;
  assert_int_equal(coap_context_end_sessions(server->ctx, note_session, NULL), 0);
}

static void set_psk(coap_context_t *ctx) {
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  assert_non_null(d);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16),
      0);
  assert_int_equal(coap_context_set_dtls_context(ctx, d), 0);
}

static void server_setup(void) {
  set_psk(server->ctx);
  coap_resource_t *r = coap_resource_add(server->ctx, "hello");
  coap_resource_set_handler(r, COAP_GET, hello, NULL);
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  client = simnet_add_node(&net, CLIENT_PORT, COAP_PROTO_DTLS, NULL);
  server_setup();
  set_psk(client->ctx);
  if (*state) simnet_node_fresh_endpoints(client);
  handler_calls = drop_client = drop_server = 0;
  stale_len = 0;
  net.filter = filter;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

/* The first session, from the client's own port. */
static void first_session(sim_reply_t *b) {
  sim_get(client, "coaps://10.0.0.1/hello", b, 60000);
  assert_int_equal(b->code, COAP_CONTENT);
  assert_true(stale_len > 0);
  server_sessions();
  assert_int_equal(n_sessions, 1);
  assert_int_equal(session_ports[0], CLIENT_PORT);
}

static void test_server_closed_session(void **state) {
  int fresh = *state != NULL;
  static sim_reply_t b; /* outlives a failed test: teardown may still call back */
  first_session(&b);
  /* A GET the server never gets on the first session, when the server
   * restarts (close_notify): the client makes a new session at once. */
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  drop_client = 1;
  sim_send(client, &o, &b);
  simnet_run_until(&net, net.now + 100);
  drop_client = 0;
  assert_int_equal(simnet_node_restart(server), 0);
  server_setup();
  simnet_run_until(&net, net.now + 15);
  /* The old handshake's last flight, late, to the old address: nobody
   * is there any more (fresh), or it reaches the client's one socket. */
  coap_address_t old_addr;
  assert_int_equal(coap_address_from_string(&old_addr, "10.0.0.2", CLIENT_PORT), 0);
  assert_int_equal(simnet_inject(server, &old_addr, stale, stale_len), fresh ? 0 : 1);
  assert_true(simnet_run_until_flag(&net, &b.done, 300000));
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(handler_calls, 2);
  server_sessions();
  assert_int_equal(n_sessions, 1);
  if (fresh) {
    assert_int_not_equal(session_ports[0], CLIENT_PORT);
    assert_null(client->ep); /* the old endpoint closed */
    assert_int_equal(client->endpoints_closed, 1);
  } else {
    assert_int_equal(session_ports[0], CLIENT_PORT);
  }
  /* The next request goes on the new session: no handshake. */
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  uint64_t handshakes = st.dtls_handshakes;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 60000);
  assert_int_equal(b.code, COAP_CONTENT);
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, handshakes);
  assert_int_equal(st.dtls_failures, 0);
}

/* The server's answers are lost: it still holds our session when the
 * client, after its silence, makes a new one. From a new port the server
 * sees a new client and answers it; the old session there is left to its
 * idle timer. */
static void test_silent_server(void **state) {
  int fresh = *state != NULL;
  static sim_reply_t b;
  first_session(&b);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  drop_server = 1;
  sim_send(client, &o, &b);
  uint64_t t0 = net.now;
  coap_stats_t st;
  do {
    simnet_run_until(&net, net.now + 100);
    coap_context_get_stats(client->ctx, &st);
  } while (!st.dtls_reconnects && net.now < t0 + 60000);
  assert_int_equal(st.dtls_reconnects, 1);
  drop_server = 0;
  assert_true(simnet_run_until_flag(&net, &b.done, 300000));
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  server_sessions();
  if (fresh) {
    assert_int_equal(n_sessions, 2); /* the old one, silent, and the new one */
    assert_true(session_ports[0] != CLIENT_PORT || session_ports[1] != CLIENT_PORT);
    assert_null(client->ep);
  } else {
    assert_int_equal(n_sessions, 1); /* the hello replaced it, by its cookie */
    assert_int_equal(session_ports[0], CLIENT_PORT);
  }
}

int main(void) {
  static int fresh = 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(test_server_closed_session, setup, teardown, &fresh),
      cmocka_unit_test_prestate_setup_teardown(test_server_closed_session, setup, teardown, NULL),
      cmocka_unit_test_prestate_setup_teardown(test_silent_server, setup, teardown, &fresh),
      cmocka_unit_test_prestate_setup_teardown(test_silent_server, setup, teardown, NULL),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
