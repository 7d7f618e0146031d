/* A coaps:// client whose ClientHello goes unanswered sends a CoAP ping to
 * tell a plain CoAP server on that port (wrong port) from silence. The
 * ping must leave from a socket of its own, never from the handshake's
 * address: into the server's DTLS association it is a datagram of the
 * handshake, and libcoap 4.3 with OpenSSL hands it to DTLSv1_listen, whose
 * error stays on the thread's OpenSSL error queue until the next SSL_read
 * of any session takes it for that session's failure. The server then
 * drops an innocent session (interop.lossy_handshakes: ours against
 * coap-server-openssl, "answered up to Finished then silent" and "server
 * closed the handshake"). Here: the hello's answers are lost for a while,
 * the ping goes out, and every datagram from the handshake's address is a
 * DTLS record; the handshake completes and the server holds one session.
 * (Wrong port, the ping's RST answered on its own socket: test_diag_causes,
 * test_coaps_to_plain_coap_port.) */
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
static uint64_t mute_server_until; /* the server's datagrams are lost until then */

/* What the client sent toward the server's coaps:// port. */
static unsigned from_handshake_addr, not_dtls_from_handshake_addr, pings_from_other_addr;

static int is_dtls_record(const uint8_t *d, size_t len) {
  return len >= 13 && d[0] >= 20 && d[0] <= 25 && d[1] == 0xfe;
}

static int is_coap_ping(const uint8_t *d, size_t len) {
  return len == 4 && d[0] == 0x40 && d[1] == 0; /* version 1, CON, no token; 0.00 */
}

static int filter(void *user, const simnet_node_t *from, const coap_address_t *to,
                  const uint8_t *data, size_t len, unsigned seq) {
  return from == server && net.now < mute_server_until;
}

/* One millisecond of the network, then the datagrams it queued (appended
 * after those still in flight) classified by the address they left from:
 * the filter sees the sending node, not the socket. */
static void step_and_classify(void) {
  size_t before = net.queued;
  unsigned delivered = net.delivered;
  simnet_run_until(&net, net.now + 1);
  size_t kept = before - (net.delivered - delivered);
  for (size_t i = kept; i < net.queued; i++) {
    if (net.queue[i].to != server) continue;
    if (coap_address_equal(&net.queue[i].from, &client->addr)) {
      from_handshake_addr++;
      if (!is_dtls_record(net.queue[i].data, net.queue[i].len)) not_dtls_from_handshake_addr++;
    } else if (client->other_ep && coap_address_equal(&net.queue[i].from, &client->other_addr) &&
               is_coap_ping(net.queue[i].data, net.queue[i].len)) {
      pings_from_other_addr++;
    }
  }
}

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "secure hello", 12);
}

static void set_psk(coap_context_t *ctx) {
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  assert_non_null(d);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16),
      0);
  assert_int_equal(coap_context_set_dtls_context(ctx, d), 0);
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  set_psk(server->ctx);
  set_psk(client->ctx);
  coap_resource_t *r = coap_resource_add(server->ctx, "hello");
  coap_resource_set_handler(r, COAP_GET, hello, NULL);
  net.filter = filter;
  from_handshake_addr = not_dtls_from_handshake_addr = pings_from_other_addr = 0;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static void test_probe_leaves_from_its_own_socket(void **state) {
  static sim_reply_t b; /* outlives a failed test: teardown may still call back */
  /* The server's answers to the first hellos are lost: the client resends
   * its ClientHello and probes. */
  mute_server_until = net.now + 2500;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  size_t before = net.queued;
  sim_send(client, &o, &b);
  for (size_t i = before; i < net.queued; i++) /* the first hello */
    if (net.queue[i].to == server) from_handshake_addr++;
  uint64_t end = net.now + 60000;
  while (!b.done && net.now < end) step_and_classify();
  assert_true(b.done);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(pings_from_other_addr, 1); /* the probe went out, once */
  assert_true(from_handshake_addr >= 3);      /* two hellos at least, then the Finished */
  assert_int_equal(not_dtls_from_handshake_addr, 0);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 1);
  assert_int_equal(st.dtls_failures, 0);
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 1);
  assert_int_equal(st.dtls_failures, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_probe_leaves_from_its_own_socket, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
