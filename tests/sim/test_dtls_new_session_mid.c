/* A request still waiting for its ACK when its DTLS session ends goes out
 * again on the new session with a new message ID and the same token (RFC
 * 7252 §4.5: a MID identifies a message for an endpoint pair within
 * EXCHANGE_LIFETIME, and a new session is a new endpoint, §9.1.1). A peer
 * that remembers MIDs across sessions (libcoap 4.3.1: "mid already
 * in-use") would drop the old MID as a duplicate, again on every session.
 * Both ways a session ends under a request: the server restarts and says
 * so (close_notify: the client reconnects at once), or it crashes (the
 * client finds out from the silence, session lost). And the server answers
 * a request on a new session fresh, whatever MID it carries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *client;
static int handler_calls;
static int drop_client; /* the client's datagrams are lost */
static int drop_server; /* the server's datagrams are lost */

/* The GETs seen (after DTLS) by the client going out and by the server
 * coming in: MID and token. */
typedef struct seen {
  unsigned n;
  uint16_t mid[64];
  uint8_t token_len[64];
  uint8_t token[64][COAP_MAX_TOKEN_LEN];
} seen_t;
static seen_t client_sent, server_got;

static void record_get(void *user, int outgoing, const coap_address_t *peer,
                       const coap_msg_t *msg) {
  seen_t *s = user;
  int want_outgoing = s == &client_sent;
  if (outgoing != want_outgoing || msg->code != COAP_GET || s->n == 64) return;
  s->mid[s->n] = msg->mid;
  s->token_len[s->n] = msg->token_len;
  memcpy(s->token[s->n], msg->token, msg->token_len);
  s->n++;
}

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  handler_calls++;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "secure hello", 12);
}

static int drop_filter(void *user, const simnet_node_t *from, const coap_address_t *to,
                       const uint8_t *data, size_t len, unsigned seq) {
  return (drop_client && from == client) || (drop_server && from == server);
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
  coap_context_set_trace(server->ctx, record_get, &server_got);
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  server_setup();
  set_psk(client->ctx);
  coap_context_set_trace(client->ctx, record_get, &client_sent);
  handler_calls = 0;
  drop_client = drop_server = 0;
  memset(&client_sent, 0, sizeof client_sent);
  memset(&server_got, 0, sizeof server_got);
  net.filter = drop_filter;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

/* |crash|: the server restarts without a close_notify. */
static void session_ends_under_request(int crash) {
  static sim_reply_t b; /* outlives a failed test: teardown may still call back */
  sim_get(client, "coaps://10.0.0.1/hello", &b, 60000); /* the first session */
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(handler_calls, 1);
  /* A GET the server never gets on the first session. */
  unsigned first_sends = client_sent.n;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  drop_client = 1;
  sim_send(client, &o, &b);
  simnet_run_until(&net, net.now + 100);
  assert_int_equal(client_sent.n, first_sends + 1);
  assert_false(b.done);
  drop_client = 0;
  /* The server ends the session while the GET is outstanding. */
  memset(&server_got, 0, sizeof server_got);
  drop_server = crash; /* its close_notify is lost with it */
  assert_int_equal(simnet_node_restart(server), 0);
  drop_server = 0;
  server_setup();
  assert_true(simnet_run_until_flag(&net, &b.done, 300000));
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(b.calls, 1);
  assert_int_equal(handler_calls, 2); /* answered once, by the new server */
  simnet_run_until(&net, net.now + 60000);
  assert_int_equal(handler_calls, 2);
  assert_int_equal(b.calls, 1);

  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 2);
  assert_int_equal(st.dtls_reconnects, crash ? 1 : 0);
  /* What the new server got: the request with its token, under a MID the
   * old session never carried. */
  assert_true(server_got.n >= 1);
  unsigned mine = first_sends; /* the GET's first send */
  assert_int_equal(server_got.token_len[0], client_sent.token_len[mine]);
  assert_memory_equal(server_got.token[0], client_sent.token[mine], server_got.token_len[0]);
  for (unsigned i = 0; i < server_got.n; i++)
    for (unsigned j = 0; j <= mine; j++)
      if (server_got.mid[i] == client_sent.mid[j])
        fail_msg("the new session carried MID 0x%04x, sent on the old one", server_got.mid[i]);
}

static void test_new_mid_after_server_close(void **state) {
  session_ends_under_request(0);
}
static void test_new_mid_after_session_lost(void **state) {
  session_ends_under_request(1);
}

/* The server's side: a client that closed its session (close_notify) and
 * comes back from the same address with a new one, whose first request
 * happens to carry the MID and token of one answered on the old session
 * (the simulated randomness replayed): a new request on a new session,
 * answered fresh by the handler, not the old session's answer from the
 * deduplication cache. */
static void test_server_answers_new_session_fresh(void **state) {
  static sim_reply_t b;
  uint32_t rand_before = net.rand_state;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 60000);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(handler_calls, 1);
  assert_int_equal(server_got.n, 1);
  assert_int_equal(simnet_node_restart(client), 0); /* close_notify: session ends */
  set_psk(client->ctx);
  coap_context_set_trace(client->ctx, record_get, &client_sent);
  simnet_run_until(&net, net.now + 1000);
  net.rand_state = rand_before; /* the same MID and token again */
  sim_get(client, "coaps://10.0.0.1/hello", &b, 60000);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(server_got.n, 2);
  assert_int_equal(server_got.mid[1], server_got.mid[0]); /* the case looked for */
  assert_int_equal(server_got.token_len[1], server_got.token_len[0]);
  assert_memory_equal(server_got.token[1], server_got.token[0], server_got.token_len[0]);
  assert_int_equal(handler_calls, 2); /* answered fresh */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_new_mid_after_server_close, setup, teardown),
      cmocka_unit_test_setup_teardown(test_new_mid_after_session_lost, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_answers_new_session_fresh, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
