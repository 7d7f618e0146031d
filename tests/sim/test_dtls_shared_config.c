/* One DTLS configuration shared by several contexts (coap_dtls_context_ref):
 * both handshake, freeing one leaves the other working (its logger too),
 * the session cache is shared unless resumption is turned off, and with it
 * off every handshake is a full one. Run under ASan as well: a context that
 * is freed must leave nothing in the configuration pointing at it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *a, *b;

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "shared", 6);
}

/* Log lines of the clients, by the logger's user pointer. */
static unsigned logged[2];
static char last_line[2][512];

static void client_log(void *user, coap_log_level_t level, const char *line) {
  int id = *(int *)user;
  logged[id]++;
  snprintf(last_line[id], sizeof last_line[id], "%s", line);
}

static int id_a = 0, id_b = 1;

static simnet_node_t *client_node(uint16_t port, int *id) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.log = client_log;
  cfg.log_user = id;
  cfg.log_level = COAP_LOG_INFO;
  cfg.peer_idle_ms = 5000; /* forget the server quickly: a new handshake next time */
  return simnet_add_node(&net, port, COAP_PROTO_DTLS, &cfg);
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  coap_dtls_context_t *sd = coap_dtls_new_context(server->ctx);
  assert_int_equal(
      coap_dtls_set_psk(sd, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16),
      0);
  assert_int_equal(coap_context_set_dtls_context(server->ctx, sd), 0);
  coap_resource_t *r = coap_resource_add(server->ctx, "hello");
  coap_resource_set_handler(r, COAP_GET, hello, NULL);
  a = client_node(40000, &id_a);
  b = client_node(40001, &id_b);
  memset(logged, 0, sizeof logged);
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static coap_dtls_context_t *client_config(int resumption) {
  coap_dtls_context_t *d = coap_dtls_context_new();
  assert_non_null(d);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16),
      0);
  assert_int_equal(coap_dtls_set_resumption(d, resumption), 0);
  return d;
}

static void get_ok(simnet_node_t *node) {
  sim_reply_t box;
  sim_get(node, "coaps://10.0.0.1/hello", &box, 60000);
  assert_int_equal(box.status, 0);
  assert_int_equal(box.code, COAP_CONTENT);
}

/* Idle long enough that every client forgets the server (session closed). */
static void forget_sessions(void) {
  simnet_run_until(&net, net.now + 400000);
}

static coap_stats_t stats(simnet_node_t *node) {
  coap_stats_t st;
  coap_context_get_stats(node->ctx, &st);
  return st;
}

static void test_two_contexts_share_one_config(void **state) {
  coap_dtls_context_t *d = client_config(1);
  assert_ptr_equal(coap_dtls_context_ref(d), d);
  assert_int_equal(coap_context_set_dtls_context(a->ctx, d), 0);
  assert_int_equal(coap_context_set_dtls_context(b->ctx, d), 0); /* hands ours over */
  assert_ptr_equal(coap_context_dtls(a->ctx), coap_context_dtls(b->ctx));
  get_ok(a);
  get_ok(b);
  coap_stats_t st = stats(server);
  assert_int_equal(st.dtls_handshakes, 2);
  /* The session cache is part of the configuration: b resumed the session
   * a had just made with the same server. */
  assert_int_equal(st.dtls_resumed, 1);
  assert_int_equal(stats(a).dtls_handshakes, 1);
  assert_int_equal(stats(b).dtls_handshakes, 1);
}

static void test_freeing_one_context_leaves_the_other_working(void **state) {
  coap_dtls_context_t *d = client_config(0);
  coap_context_set_dtls_context(a->ctx, coap_dtls_context_ref(d));
  coap_context_set_dtls_context(b->ctx, d);
  /* b took the configuration last: the sessions log through b's logger. */
  get_ok(a);
  unsigned before = logged[1];
  assert_true(before > 0);
  assert_non_null(strstr(last_line[1], "DTLS client established"));
  /* b goes (its process restarts: a fresh context without DTLS). */
  assert_int_equal(simnet_node_restart(b), 0);
  assert_null(coap_context_dtls(b->ctx));
  /* a's next handshake still works and still logs, through the copy of
   * b's logger that the configuration kept: nothing points into the freed
   * context (ASan would say so). */
  forget_sessions();
  assert_int_equal(stats(a).peers, 0);
  get_ok(a);
  assert_true(logged[1] > before);
  assert_int_equal(stats(a).dtls_handshakes, 2);
  /* A failing setter logs through it too. */
  assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)"", (const uint8_t *)"k", 1),
                   COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(last_line[1], "PSK identity is empty"));
  /* Giving a the configuration it already has takes no reference; a new
   * one drops a's reference to d, the last: d is freed (LeakSanitizer
   * and ASan check both). */
  assert_int_equal(coap_context_set_dtls_context(a->ctx, d), 0);
  assert_int_equal(coap_context_set_dtls_context(a->ctx, client_config(0)), 0);
  forget_sessions();
  get_ok(a);
}

static void test_caller_keeps_a_reference(void **state) {
  coap_dtls_context_t *d = client_config(1);
  coap_context_set_dtls_context(a->ctx, coap_dtls_context_ref(d));
  get_ok(a);
  assert_int_equal(simnet_node_restart(a), 0); /* a's context is freed */
  /* Ours is still valid: give it to b, which then resumes a's session. */
  assert_true(coap_dtls_can_connect(d));
  coap_context_set_dtls_context(b->ctx, d);
  get_ok(b);
  assert_int_equal(stats(server).dtls_resumed, 1);
}

static void test_resumption_off_means_full_handshakes(void **state) {
  char path[] = "/tmp/coaps-shared-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  unlink(path);
  coap_dtls_context_t *d = client_config(0);
  assert_int_equal(coap_dtls_set_session_file(d, path), 0);
  coap_context_set_dtls_context(a->ctx, coap_dtls_context_ref(d));
  coap_context_set_dtls_context(b->ctx, d);
  for (int round = 0; round < 3; round++) {
    get_ok(a);
    get_ok(b);
    forget_sessions();
  }
  coap_stats_t st = stats(server);
  assert_int_equal(st.dtls_handshakes, 6);
  assert_int_equal(st.dtls_resumed, 0); /* every one a full handshake */
  assert_int_equal(stats(a).dtls_resumed, 0);
  assert_int_equal(stats(b).dtls_resumed, 0);
  /* Nor is anything kept in the session file. */
  assert_int_equal(access(path, F_OK), -1);
  /* Turned back on, the next handshake resumes the one before. */
  assert_int_equal(coap_dtls_set_resumption(d, 1), 0);
  get_ok(a);
  forget_sessions();
  get_ok(b);
  assert_int_equal(stats(server).dtls_resumed, 1);
  unlink(path);
  assert_int_equal(coap_dtls_set_resumption(NULL, 0), COAP_E_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_two_contexts_share_one_config, setup, teardown),
      cmocka_unit_test_setup_teardown(test_freeing_one_context_leaves_the_other_working, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_caller_keeps_a_reference, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resumption_off_means_full_handshakes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
