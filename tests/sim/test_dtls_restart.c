/* A server restart that its DTLS clients do not notice: the server's
 * sessions exported (sealed) from one context, the node restarted, the
 * sessions imported into the fresh context; the client's next requests
 * are answered with no handshake on either side, the first record of the
 * new server carries a sequence number beyond the last one of the old
 * server plus the margin, and a forged, stale, other-node, other-key or
 * truncated buffer, and one sealed no later than the last taken
 * (replayed), are refused with their reason (nothing imported). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/credentials.h"
#include "coaps/dtls.h"
#include "support_dtls_pair.h"
#include "support_reply.h"
#include "support_simnet.h"

#define NODE 7
#define T0 1800000000000ull /* wall-clock ms */
#define MAX_AGE 60000
#define MARGIN 1024 /* RESTART_SEQ_MARGIN in src/context/sessions_state.c */

static const uint8_t state_key[32] = "restart state key, 32 bytes long";
static simnet_t net;
static simnet_node_t *server, *client;
static int handler_calls;
static uint64_t last_server_seq; /* of the newest application record */
static int server_records;

static int watch_server(void *user, const simnet_node_t *from, const coap_address_t *to,
                        const uint8_t *data, size_t len, unsigned seq) {
  if (from != server || len < 13 || (data[0] != 23 && data[0] != 25)) return 0;
  uint64_t s = 0;
  for (int i = 5; i < 11; i++) s = s << 8 | data[i];
  last_server_seq = s;
  server_records++;
  return 0;
}

static void serve(simnet_node_t *node) {
  dtls_pair_install(node, dtls_pair_server_dtls(node, DTLS_PAIR_PSK));
  dtls_pair_add_hello(node, &handler_calls);
}

static int setup(void **state) {
  dtls_pair_start(&net, NULL, &server, &client);
  serve(server);
  dtls_pair_install(client, dtls_pair_client_dtls(client, DTLS_PAIR_PSK));
  handler_calls = 0;
  server_records = 0;
  net.filter = watch_server;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static void get_ok(int expected_call) {
  dtls_pair_get_hello(client, expected_call);
}

/* Three requests, then the server's sessions sealed into |buf|. */
static long three_then_export(uint8_t *buf, size_t cap) {
  for (int i = 1; i <= 3; i++) get_ok(i);
  long bound = coap_context_export_sessions(server->ctx, state_key, 32, NODE, T0, NULL, 0, NULL);
  assert_true(bound > 0 && (size_t)bound <= cap);
  size_t carried = 0;
  long len = coap_context_export_sessions(server->ctx, state_key, 32, NODE, T0, buf, cap, &carried);
  assert_true(len > 0);
  assert_int_equal(carried, 1);
  return len;
}

static void test_sessions_survive_a_restart(void **state) {
  uint8_t buf[4096];
  long len = three_then_export(buf, sizeof buf);
  uint64_t last_before = last_server_seq;
  int records_before = server_records;
  assert_int_equal(simnet_node_restart(server), 0);
  serve(server);
  handler_calls = 3;
  const char *why = NULL;
  uint64_t last_sealed = T0 - 1000; /* the state taken before this one */
  assert_int_equal(coap_context_import_sessions(server->ctx, state_key, 32, NODE, T0 + 2000,
                                                MAX_AGE, &last_sealed, buf, (size_t)len, &why),
                   1);
  assert_string_equal(why, "accepted");
  assert_int_equal(last_sealed, T0);
  for (int i = 4; i <= 6; i++) get_ok(i);
  assert_true(server_records > records_before);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 0); /* the new process made none */
  assert_int_equal(st.dtls_failures, 0);
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 1); /* the one before the restart */
  assert_int_equal(st.dtls_reconnects, 0);
  assert_int_equal(st.dtls_failures, 0);
  /* Three answers after the move, the first of them past the margin. */
  assert_true(last_server_seq >= last_before + 1 + MARGIN + 2);
  /* The same buffer again: replayed; without the guard, that peer
   * exists, nothing is taken twice. */
  assert_int_equal(coap_context_import_sessions(server->ctx, state_key, 32, NODE, T0 + 3000,
                                                MAX_AGE, &last_sealed, buf, (size_t)len, &why),
                   COAP_E_INVALID_ARG);
  assert_non_null(strstr(why, "replayed"));
  assert_int_equal(coap_context_import_sessions(server->ctx, state_key, 32, NODE, T0 + 3000,
                                                MAX_AGE, NULL, buf, (size_t)len, &why),
                   0);
}

/* Refused for |reason|; |authentic|: its seal verified (stale, another
 * node), so its time is given back to be recorded, else kept. */
static void refused_as(const uint8_t *key, size_t key_len, uint64_t node, uint64_t now,
                       const uint8_t *buf, size_t len, const char *reason, int authentic) {
  const char *why = NULL;
  uint64_t last_sealed = T0 - 1;
  assert_int_equal(coap_context_import_sessions(server->ctx, key, key_len, node, now, MAX_AGE,
                                                &last_sealed, buf, len, &why),
                   COAP_E_INVALID_ARG);
  assert_int_equal(last_sealed, authentic ? T0 : T0 - 1);
  assert_non_null(why);
  assert_non_null(strstr(why, reason));
}

static void refused(const uint8_t *key, size_t key_len, uint64_t node, uint64_t now,
                    const uint8_t *buf, size_t len, const char *reason) {
  refused_as(key, key_len, node, now, buf, len, reason, 0);
}

static void test_bad_state_refused(void **state) {
  uint8_t buf[4096];
  long len = three_then_export(buf, sizeof buf);
  assert_int_equal(simnet_node_restart(server), 0);
  serve(server);
  size_t n = (size_t)len;
  buf[n / 2] ^= 0x10;
  refused(state_key, 32, NODE, T0, buf, n, "does not verify");
  buf[n / 2] ^= 0x10;
  uint8_t other_key[32];
  memcpy(other_key, state_key, 32);
  other_key[0] ^= 1;
  refused(other_key, 32, NODE, T0, buf, n, "another key");
  refused_as(state_key, 32, NODE, T0 + MAX_AGE + 1, buf, n, "too old", 1);
  refused_as(state_key, 32, NODE + 1, T0, buf, n, "another node", 1);
  refused(state_key, 32, NODE, T0, buf, n - 1, "does not verify");
  refused(state_key, 32, NODE, T0, buf, 20, "not a coaps session state");
  refused(state_key, 5, NODE, T0, buf, n, "16 or 32 bytes");
  uint64_t last_sealed = T0; /* a state sealed then was taken already */
  const char *why = NULL;
  assert_int_equal(coap_context_import_sessions(server->ctx, state_key, 32, NODE, T0, MAX_AGE,
                                                &last_sealed, buf, n, &why),
                   COAP_E_INVALID_ARG);
  assert_non_null(strstr(why, "replayed"));
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_sessions_by_mode[COAP_DTLS_MODE_PSK], 0); /* nothing taken */
  /* The genuine buffer still works after all that. */
  assert_int_equal(coap_context_import_sessions(server->ctx, state_key, 32, NODE, T0, MAX_AGE, NULL,
                                                buf, n, NULL),
                   1);
}

static int server_alerts; /* records of content type 21 from the server */

static int count_alerts(void *user, const simnet_node_t *from, const coap_address_t *to,
                        const uint8_t *data, size_t len, unsigned seq) {
  if (from == server && len >= 13 && data[0] == 21) server_alerts++;
  return watch_server(user, from, to, data, len, seq);
}

/* The client's session ended by the server (its close_notify taken):
 * its next request makes a new handshake. */
static void next_get_needs_handshake(int expected_call) {
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  uint64_t before = st.dtls_handshakes;
  get_ok(expected_call);
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, before + 1);
}

/* An export that fails after the sessions were written (a buffer too
 * small for the sealed state) changes nothing: the buffer is cleared,
 * the session answers on as before with no handshake, and ending it
 * sends the client a close_notify. */
static void test_failed_export_keeps_sessions(void **state) {
  net.filter = count_alerts;
  server_alerts = 0;
  for (int i = 1; i <= 3; i++) get_ok(i);
  uint8_t buf[4096];
  long bound = coap_context_export_sessions(server->ctx, state_key, 32, NODE, T0, NULL, 0, NULL);
  assert_true(bound > 0 && (size_t)bound <= sizeof buf);
  /* Room for the header and tag only: the session (~150 bytes) does not fit. */
  size_t small = 64, carried = 99;
  memset(buf, 0xa5, sizeof buf);
  assert_int_equal(
      coap_context_export_sessions(server->ctx, state_key, 32, NODE, T0, buf, small, &carried),
      COAP_E_BUFFER_TOO_SMALL);
  assert_int_equal(carried, 99); /* nothing said carried */
  for (size_t i = 0; i < small; i++) assert_int_equal(buf[i], 0);
  coap_context_t *ctxs[1] = {server->ctx};
  assert_int_equal(
      coap_contexts_export_sessions_begin(ctxs, 1, state_key, 32, NODE, T0, buf, small, NULL),
      COAP_E_BUFFER_TOO_SMALL);
  int records = server_records;
  for (int i = 4; i <= 5; i++) get_ok(i);
  assert_true(server_records > records); /* answered on the same session */
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 1);
  assert_int_equal(st.dtls_reconnects, 0);
  assert_int_equal(coap_context_end_sessions(server->ctx, NULL, NULL), 1);
  simnet_run_until(&net, net.now + 100);
  assert_int_equal(server_alerts, 1);
  next_get_needs_handshake(6);
}

/* The two steps: between _begin and _end the session still answers
 * (held below the saved sequence numbers); not stored, it is the
 * server's again whole (a close_notify at its end); stored, its keys are
 * retired: it is not listed, sends nothing more (no close_notify), and
 * the state taken by a new process goes on past the margin. */
static void test_export_in_two_steps(void **state) {
  net.filter = count_alerts;
  server_alerts = 0;
  get_ok(1);
  coap_context_t *ctxs[1] = {server->ctx};
  uint8_t buf[4096];
  size_t carried = 0;
  long len = coap_contexts_export_sessions_begin(ctxs, 1, state_key, 32, NODE, T0, buf, sizeof buf,
                                                 &carried);
  assert_true(len > 0);
  assert_int_equal(carried, 1);
  /* No second export while this one is outstanding. */
  uint8_t other[4096];
  assert_int_equal(coap_contexts_export_sessions_begin(ctxs, 1, state_key, 32, NODE, T0, other,
                                                       sizeof other, NULL),
                   COAP_E_STATE);
  get_ok(2);
  /* Storing it failed: the sessions are the server's again. */
  assert_int_equal(coap_contexts_export_sessions_end(ctxs, 1, 0), 0);
  get_ok(3);
  /* Now stored. */
  len = coap_contexts_export_sessions_begin(ctxs, 1, state_key, 32, NODE, T0 + 1, buf, sizeof buf,
                                            &carried);
  assert_true(len > 0);
  uint64_t last_before = last_server_seq;
  assert_int_equal(coap_contexts_export_sessions_end(ctxs, 1, 1), 0);
  assert_int_equal(coap_context_end_sessions(server->ctx, NULL, NULL), 0); /* not ours now */
  assert_int_equal(coap_contexts_export_sessions_end(NULL, 1, 1), COAP_E_INVALID_ARG);
  assert_int_equal(simnet_node_restart(server), 0);
  assert_int_equal(server_alerts, 0);
  serve(server);
  handler_calls = 3;
  assert_int_equal(coap_context_import_sessions(server->ctx, state_key, 32, NODE, T0 + 2000,
                                                MAX_AGE, NULL, buf, (size_t)len, NULL),
                   1);
  get_ok(4);
  assert_true(last_server_seq >= last_before + 1 + MARGIN);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sessions_survive_a_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_state_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_export_keeps_sessions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_export_in_two_steps, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
