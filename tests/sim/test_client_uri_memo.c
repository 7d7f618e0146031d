/* A client context remembers the last URI it sent to (parsed, and its
 * address when the host is a literal). The memo must never send a request
 * to the wrong place: alternating URIs, a name whose address changes, a
 * bad URI between good ones, a URI too long to remember. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server1, *server3, *client;
static int resolve_calls;
static const char *resolve_to = "10.0.0.1";

/* Answers "<server>:<path>", so a reply says where the request went. */
static void whoami(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                   coap_response_t *resp, void *user) {
  char text[64];
  snprintf(text, sizeof text, "%s:%s", (const char *)user, coap_resource_path(res));
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, text, strlen(text));
}

static void serve(simnet_node_t *node, const char *name, const char *path) {
  coap_resource_t *r = coap_resource_add(node->ctx, path);
  assert_non_null(r);
  coap_resource_set_handler(r, COAP_GET, whoami, (void *)name);
}

static int resolve(void *user, const char *host, uint16_t port, coap_address_t *out) {
  resolve_calls++;
  if (strcmp(host, "sensor.test") != 0) return COAP_E_RESOLVE;
  return coap_address_from_string(out, resolve_to, port);
}

static int setup(void **state) {
  simnet_init(&net);
  server1 = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL); /* 10.0.0.1 */
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.resolve = resolve;
  client = simnet_add_node(&net, 40000, COAP_PROTO_UDP, &cfg); /* 10.0.0.2 */
  server3 = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL); /* 10.0.0.3 */
  serve(server1, "one", "a");
  serve(server1, "one", "b");
  serve(server3, "three", "a");
  resolve_calls = 0;
  resolve_to = "10.0.0.1";
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static void get(const char *uri, const char *want) {
  sim_reply_t b;
  sim_get(client, uri, &b, 60000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_string_equal(b.payload, want);
}

static void test_alternating_uris(void **state) {
  get("coap://10.0.0.1/a", "one:a");
  get("coap://10.0.0.1/a", "one:a");
  get("coap://10.0.0.1/b", "one:b");
  get("coap://10.0.0.3/a", "three:a");
  get("coap://10.0.0.1/a", "one:a");
}

static void test_name_resolved_every_time(void **state) {
  get("coap://sensor.test/a", "one:a");
  resolve_to = "10.0.0.3"; /* the name moved */
  get("coap://sensor.test/a", "three:a");
  assert_int_equal(resolve_calls, 2);
}

static void test_bad_uri_between_good_ones(void **state) {
  get("coap://10.0.0.1/a", "one:a");
  coap_request_opts_t o;
  sim_reply_t b = {0};
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.1:99999/a");
  assert_true(coap_send_request(client->ctx, &o, sim_on_reply, &b, NULL) < 0);
  coap_request_opts_init(&o, COAP_GET, "coap://[10.0.0.1/a");
  assert_true(coap_send_request(client->ctx, &o, sim_on_reply, &b, NULL) < 0);
  coap_request_opts_init(&o, COAP_GET, "");
  assert_true(coap_send_request(client->ctx, &o, sim_on_reply, &b, NULL) < 0);
  assert_false(b.done);
  get("coap://10.0.0.1/a", "one:a");
  get("coap://10.0.0.1/b", "one:b");
}

static void test_long_uri(void **state) {
  char path[400]; /* two segments: one may not exceed 255 bytes */
  memset(path, 'x', sizeof path - 1);
  path[199] = '/';
  path[sizeof path - 1] = '\0';
  serve(server1, "one", path);
  char uri[512], want[512];
  snprintf(uri, sizeof uri, "coap://10.0.0.1/%s", path);
  snprintf(want, sizeof want, "one:%s", path);
  want[63] = '\0'; /* whoami's answer keeps 63 characters */
  sim_reply_t b;
  sim_get(client, uri, &b, 60000);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_string_equal(b.payload, want);
  get("coap://10.0.0.1/b", "one:b");
  get("coap://10.0.0.1/a", "one:a");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_alternating_uris, setup, teardown),
      cmocka_unit_test_setup_teardown(test_name_resolved_every_time, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_uri_between_good_ones, setup, teardown),
      cmocka_unit_test_setup_teardown(test_long_uri, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
