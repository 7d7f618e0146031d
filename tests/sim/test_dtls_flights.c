/* The records of a handshake flight travel together: GnuTLS hands them
 * over one by one, and the session gathers them into datagrams of up to
 * the MTU. Counted on the simulated wire: how many datagrams, how many
 * records in them, and that none is larger than the MTU — with a PSK, and
 * with a certificate chain larger than a small MTU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "support_certs.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *client;

typedef struct wire_count {
  unsigned datagrams, records, largest;
  int malformed; /* a datagram that is not a whole number of records */
} wire_count_t;

static wire_count_t from_server, from_client;

/* |cid_len|: the server's Connection ID (RFC 9146, on by default, 8
 * bytes), on the client's tls12_cid records (type 25) to it. */
static unsigned records_in(const uint8_t *data, size_t len, size_t cid_len, int *malformed) {
  unsigned n = 0;
  size_t off = 0;
  while (off + 13 <= len) {
    size_t hdr = data[off] == 25 ? 13 + cid_len : 13;
    if (off + hdr > len) break;
    size_t body = (size_t)data[off + hdr - 2] << 8 | data[off + hdr - 1];
    off += hdr + body;
    n++;
  }
  if (off != len) *malformed = 1;
  return n;
}

static int count(void *user, const simnet_node_t *from, const coap_address_t *to,
                 const uint8_t *data, size_t len, unsigned seq) {
  wire_count_t *w = from == server ? &from_server : &from_client;
  w->datagrams++;
  w->records += records_in(data, len, from == server ? 0 : 8, &w->malformed);
  if (len > w->largest) w->largest = (unsigned)len;
  return 0;
}

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  coap_resource_set_handler(coap_resource_add(server->ctx, "hello"), COAP_GET, hello, NULL);
  memset(&from_server, 0, sizeof from_server);
  memset(&from_client, 0, sizeof from_client);
  net.filter = count;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  certs_cleanup();
  return 0;
}

static void get_ok(const char *uri) {
  sim_reply_t b;
  sim_get(client, uri, &b, 60000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
}

static coap_dtls_context_t *dtls_for(simnet_node_t *node) {
  coap_dtls_context_t *d = coap_dtls_new_context(node->ctx);
  assert_non_null(d);
  assert_int_equal(coap_context_set_dtls_context(node->ctx, d), 0);
  return d;
}

static void test_psk_flights(void **state) {
  coap_dtls_context_t *sd = dtls_for(server);
  coap_dtls_set_psk(sd, (const uint8_t *)"id", (const uint8_t *)"key", 3);
  assert_int_equal(coap_dtls_set_cookie_policy(sd, COAP_DTLS_COOKIE_ALWAYS, 0), 0);
  coap_dtls_set_psk(dtls_for(client), (const uint8_t *)"id", (const uint8_t *)"key", 3);
  get_ok("coaps://10.0.0.1/hello");
  /* Server: HelloVerifyRequest; ServerHello + ServerHelloDone; ticket +
   * ChangeCipherSpec + Finished; the response. Client: ClientHello twice;
   * ClientKeyExchange + ChangeCipherSpec + Finished; the request. */
  assert_int_equal(from_server.datagrams, 4);
  assert_int_equal(from_server.records, 7);
  assert_int_equal(from_client.datagrams, 4);
  assert_int_equal(from_client.records, 6);
  assert_false(from_server.malformed);
  assert_false(from_client.malformed);
}

static void test_certificate_flight_within_small_mtu(void **state) {
  certs_dir();
  test_ca_t ca;
  certs_make_ca(&ca, "flight CA", "ca.pem");
  char cert[256], key[256];
  time_t now = time(NULL);
  certs_issue(&ca, "server", "server", "10.0.0.1", NULL, now - 60, now + 86400, cert, key);
  coap_dtls_context_t *sd = dtls_for(server);
  assert_int_equal(coap_dtls_set_cert(sd, cert, key, NULL), 0);
  assert_int_equal(coap_dtls_set_mtu(sd, 400), 0);
  coap_dtls_context_t *cd = dtls_for(client);
  assert_int_equal(coap_dtls_set_ca(cd, ca.cert_path), 0);
  assert_int_equal(coap_dtls_set_mtu(cd, 400), 0);
  certs_free_ca(&ca);
  get_ok("coaps://10.0.0.1/hello");
  assert_true(from_server.largest <= 400);
  assert_true(from_client.largest <= 400);
  assert_false(from_server.malformed);
  assert_false(from_client.malformed);
  /* The certificate is cut into fragments that each fill most of a
   * datagram; the small records around them share datagrams. */
  assert_true(from_server.datagrams < from_server.records);
  assert_true(from_client.datagrams < from_client.records);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_psk_flights, setup, teardown),
      cmocka_unit_test_setup_teardown(test_certificate_flight_within_small_mtu, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
