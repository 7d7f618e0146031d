#include "support_dtls_pair.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "support_certs.h"
#include "support_reply.h"

#define PSK_IDENTITY "dev"
#define PSK_KEY "k3y"

dtls_pair_certs_t dtls_pair_certs;

void dtls_pair_make_certs(const char *ca_cn) {
  dtls_pair_certs_t *f = &dtls_pair_certs;
  test_ca_t ca;
  certs_dir();
  certs_make_ca(&ca, ca_cn, "ca.pem");
  snprintf(f->ca, sizeof f->ca, "%s", ca.cert_path);
  time_t now = time(NULL);
  certs_issue(&ca, "server", "server", "10.0.0.1", NULL, now - 3600, now + 86400, f->cert, f->key);
  certs_free_ca(&ca);
  certs_make_rpk("rpk", f->rpk_key, f->rpk_pub);
}

void dtls_pair_remove_certs(void) {
  certs_cleanup();
}

void dtls_pair_start(simnet_t *net, coap_context_config_t *cfg, simnet_node_t **server,
                     simnet_node_t **client) {
  simnet_init(net);
  *server = simnet_add_node(net, 5684, COAP_PROTO_DTLS, cfg);
  *client = simnet_add_node(net, 40000, COAP_PROTO_DTLS, cfg);
  assert_non_null(*server);
  assert_non_null(*client);
}

static coap_dtls_context_t *with_psk(simnet_node_t *node, unsigned creds) {
  coap_dtls_context_t *d = coap_dtls_new_context(node->ctx);
  assert_non_null(d);
  if (creds & DTLS_PAIR_PSK)
    assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)PSK_IDENTITY, (const uint8_t *)PSK_KEY,
                                       strlen(PSK_KEY)),
                     0);
  return d;
}

coap_dtls_context_t *dtls_pair_server_dtls(simnet_node_t *node, unsigned creds) {
  coap_dtls_context_t *d = with_psk(node, creds);
  if (creds & DTLS_PAIR_X509)
    assert_int_equal(coap_dtls_set_cert(d, dtls_pair_certs.cert, dtls_pair_certs.key, NULL), 0);
  if (creds & DTLS_PAIR_RPK) assert_int_equal(coap_dtls_set_rpk(d, dtls_pair_certs.rpk_key), 0);
  return d;
}

coap_dtls_context_t *dtls_pair_client_dtls(simnet_node_t *node, unsigned creds) {
  coap_dtls_context_t *d = with_psk(node, creds);
  if (creds & DTLS_PAIR_X509) assert_int_equal(coap_dtls_set_ca(d, dtls_pair_certs.ca), 0);
  if (creds & DTLS_PAIR_RPK)
    assert_int_equal(coap_dtls_add_trusted_rpk(d, dtls_pair_certs.rpk_pub), 0);
  return d;
}

void dtls_pair_install(simnet_node_t *node, coap_dtls_context_t *d) {
  assert_int_equal(coap_context_set_dtls_context(node->ctx, d), 0);
}

static void answer_hi(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

void dtls_pair_add_hi(simnet_node_t *server) {
  coap_resource_t *r = coap_resource_add(server->ctx, "hi");
  assert_non_null(r);
  coap_resource_set_handler(r, COAP_GET, answer_hi, NULL);
}

static void answer_hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                         coap_response_t *resp, void *user) {
  int *calls = user;
  char text[32];
  int n = snprintf(text, sizeof text, "call %d", ++*calls);
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, text, (size_t)n);
}

void dtls_pair_add_hello(simnet_node_t *server, int *calls) {
  coap_resource_t *r = coap_resource_add(server->ctx, "hello");
  assert_non_null(r);
  coap_resource_set_handler(r, COAP_GET, answer_hello, calls);
}

void dtls_pair_get_hello(simnet_node_t *client, int expected_call) {
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 60000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  char want[32];
  snprintf(want, sizeof want, "call %d", expected_call);
  assert_string_equal(b.payload, want);
}
