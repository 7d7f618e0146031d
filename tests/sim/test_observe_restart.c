/* Observe relations carried across a server restart with their DTLS
 * sessions (coap_context_export_sessions / coap_context_import_sessions,
 * format 3): a client observes resources over one DTLS session; the
 * server's state is sealed, the server restarts with nothing and takes the
 * state over; the next change of a resource is notified on the client's
 * old session, with no handshake on either side, no new registration, and
 * an Observe number the client takes as newer (past the last one by the
 * margin). A state that waited behind an unacknowledged CON is sent again
 * at once. A relation to a resource the new server does not have ends
 * with 4.04; one that is not observable any more, or over the new
 * server's limits, ends with the state without Observe; each counted and
 * logged with its reason. The peer's message IDs go on from where the
 * old process left them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "context/context_internal.h"
#include "support_dtls_pair.h"
#include "support_simnet.h"

#define NODE 3
#define T0 1800000000000ull /* wall-clock ms */
#define MAX_AGE 60000
#define MARGIN 1024 /* OBS_RESTART_SEQ_MARGIN in src/server/observe.c */

static const uint8_t state_key[32] = "observe restart key, 32 bytes..";
static simnet_t net;
static simnet_node_t *server, *client;
static int value;         /* what /temp and /time show */
static int registrations; /* handler calls that were not notifications */
static char logged[4096];

/* Every answer the client's observations got, in order. */
typedef struct event {
  int which; /* 0: /temp, 1: /time, 2: /gone */
  int status, observing, has_observe;
  uint8_t code;
  uint32_t observe;
  char payload[64];
} event_t;
static event_t ev[64];
static unsigned n_ev;

/* The message ID of the last notification the client received. */
static int last_mid = -1;
static void trace(void *user, int outgoing, const coap_address_t *peer, const coap_msg_t *msg) {
  if (!outgoing && (msg->type == COAP_TYPE_NON || msg->type == COAP_TYPE_CON)) last_mid = msg->mid;
}

static void keep_log(void *user, const coap_log_event_t *event) {
  size_t used = strlen(logged);
  snprintf(logged + used, sizeof logged - used, "%s\n", event->line);
}

static void show(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                 coap_response_t *resp, void *user) {
  if (!coap_request_is_notification(req)) registrations++;
  char text[32];
  int n = snprintf(text, sizeof text, "%s %d", coap_resource_path(res), value);
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, text, (size_t)n);
}

static coap_resource_t *add(const char *path, int observable) {
  coap_resource_t *r = coap_resource_add(server->ctx, path);
  assert_non_null(r);
  coap_resource_set_handler(r, COAP_GET, show, NULL);
  assert_int_equal(coap_resource_set_observable(r, observable), 0);
  return r;
}

/* The server's configuration, before and after the restart. */
static void serve(void) {
  coap_context_set_log_event_handler(server->ctx, keep_log, NULL);
  coap_context_set_log_level(server->ctx, COAP_LOG_INFO);
  dtls_pair_install(server, dtls_pair_server_dtls(server, DTLS_PAIR_PSK));
}

static void on_event(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  assert_true(n_ev < sizeof ev / sizeof ev[0]);
  event_t *e = &ev[n_ev++];
  e->which = (int)(intptr_t)user;
  e->status = reply->status;
  e->observing = reply->observing;
  e->has_observe = reply->has_observe;
  e->code = reply->code;
  e->observe = reply->observe;
  size_t n = reply->payload_len < sizeof e->payload - 1 ? reply->payload_len : 0;
  if (n) memcpy(e->payload, reply->payload, n);
  e->payload[n] = 0;
}

static void observe(const char *path, int which) {
  char uri[64];
  snprintf(uri, sizeof uri, "coaps://10.0.0.1/%s", path);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, uri);
  o.observe = 1;
  coap_request_id_t id;
  assert_int_equal(coap_send_request(client->ctx, &o, on_event, (void *)(intptr_t)which, &id), 0);
}

static void run(uint64_t ms) {
  simnet_run_until(&net, net.now + ms);
}

/* The last event of observation |which|. */
static const event_t *last_of(int which) {
  for (unsigned i = n_ev; i-- > 0;)
    if (ev[i].which == which) return &ev[i];
  fail_msg("no event for observation %d", which);
  return NULL;
}

static unsigned events_of(int which) {
  unsigned n = 0;
  for (unsigned i = 0; i < n_ev; i++) n += ev[i].which == which;
  return n;
}

static int setup(void **state) {
  dtls_pair_start(&net, NULL, &server, &client);
  serve();
  dtls_pair_install(client, dtls_pair_client_dtls(client, DTLS_PAIR_PSK));
  coap_context_set_trace(client->ctx, trace, NULL);
  last_mid = -1;
  value = 0;
  registrations = 0;
  n_ev = 0;
  logged[0] = 0;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

/* Seal the server's sessions, restart it with nothing, and let |before|
 * set up the new process (its resources), then take the state over. */
static void restart(void (*before)(void)) {
  uint8_t buf[8192];
  long bound = coap_context_export_sessions(server->ctx, state_key, 32, NODE, T0, NULL, 0, NULL);
  assert_true(bound > 0 && (size_t)bound <= sizeof buf);
  size_t carried = 0;
  long len =
      coap_context_export_sessions(server->ctx, state_key, 32, NODE, T0, buf, sizeof buf, &carried);
  assert_true(len > 0);
  assert_int_equal(carried, 1);
  assert_null(strstr(logged, "not carried"));
  assert_int_equal(simnet_node_restart(server), 0);
  registrations = 0;
  logged[0] = 0;
  serve();
  before();
  const char *why = NULL;
  assert_int_equal(coap_context_import_sessions(server->ctx, state_key, 32, NODE, T0 + 2000,
                                                MAX_AGE, NULL, buf, (size_t)len, &why),
                   1);
  assert_string_equal(why, "accepted");
}

/* No handshake in the new process; the client made its one. */
static void no_handshake(void) {
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 0);
  assert_int_equal(st.dtls_failures, 0);
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 1);
  assert_int_equal(st.dtls_reconnects, 0);
}

static void same_resources(void) {
  add("temp", 1);
  add("time", 1);
}

static void test_notifications_go_on(void **state) {
  coap_resource_t *temp = add("temp", 1);
  add("time", 1);
  observe("temp", 0);
  observe("time", 1);
  run(2000);
  for (int i = 1; i <= 3; i++) {
    value = i;
    assert_int_equal(coap_resource_notify(temp), 1);
    run(1000);
  }
  assert_int_equal(events_of(0), 4);
  uint32_t last = last_of(0)->observe;
  assert_string_equal(last_of(0)->payload, "temp 3");
  int mid_before = last_mid;
  assert_true(mid_before >= 0);
  restart(same_resources);
  assert_non_null(strstr(logged, "2 observe relation(s) taken over"));
  assert_null(strstr(logged, "not taken over"));
  temp = coap_resource_find(server->ctx, "temp");
  assert_int_equal(coap_resource_observer_count(temp), 1);
  assert_int_equal(coap_resource_observer_count(coap_resource_find(server->ctx, "time")), 1);
  /* The next change reaches the observer on its old session. */
  value = 4;
  assert_int_equal(coap_resource_notify(temp), 1);
  run(1000);
  assert_int_equal(events_of(0), 5);
  const event_t *e = last_of(0);
  assert_int_equal(e->status, 0);
  assert_int_equal(e->observing, 1);
  assert_int_equal(e->code, COAP_CONTENT);
  assert_string_equal(e->payload, "temp 4"); /* delivered: newer than the last (§3.4) */
  assert_int_equal(e->observe, (last + MARGIN + 1) & 0xffffff);
  /* Its message ID follows the last one of the old process: none the
   * client saw within EXCHANGE_LIFETIME comes again. */
  assert_int_equal(last_mid, (mid_before + 1) & 0xffff);
  /* And the ones after it, CON among them (every 20th), acknowledged. */
  for (int i = 5; i <= 30; i++) {
    value = i;
    assert_int_equal(coap_resource_notify(temp), 1);
    run(1000);
  }
  assert_int_equal(events_of(0), 31);
  assert_string_equal(last_of(0)->payload, "temp 30");
  assert_int_equal(coap_resource_observer_count(temp), 1);
  assert_int_equal(registrations, 0); /* nobody registered again */
  no_handshake();
  /* The other relation too. */
  value = 99;
  assert_int_equal(coap_resource_notify(coap_resource_find(server->ctx, "time")), 1);
  run(1000);
  assert_string_equal(last_of(1)->payload, "time 99");
  assert_int_equal(last_of(1)->observing, 1);
}

/* The server's notifications are lost from |drop_from| on. */
static unsigned drop_from = ~0u;
static int drop_server(void *user, const simnet_node_t *from, const coap_address_t *to,
                       const uint8_t *data, size_t len, unsigned seq) {
  return from == server && seq >= drop_from;
}

static void test_unacknowledged_state_sent_again(void **state) {
  coap_resource_t *temp = add("temp", 1);
  observe("temp", 0);
  run(2000);
  /* Nineteen NONs, then the CON (the 20th): lost, and the server stops
   * before it gives up retransmitting it. */
  for (int i = 1; i <= 19; i++) {
    value = i;
    coap_resource_notify(temp);
    run(1000);
  }
  assert_int_equal(events_of(0), 20);
  net.filter = drop_server;
  drop_from = net.seq;
  value = 20;
  assert_int_equal(coap_resource_notify(temp), 1);
  run(5000);
  assert_int_equal(events_of(0), 20);
  uint32_t last = last_of(0)->observe;
  net.filter = NULL;
  restart(same_resources);
  /* Nothing changed since, yet the newest state comes at once. */
  run(1000);
  assert_int_equal(events_of(0), 21);
  assert_string_equal(last_of(0)->payload, "temp 20");
  assert_int_equal(last_of(0)->observing, 1);
  assert_true(((last_of(0)->observe - last) & 0xffffff) > MARGIN);
  run(10000); /* it was a CON, acknowledged: not sent again */
  assert_int_equal(events_of(0), 21);
  assert_int_equal(coap_resource_observer_count(coap_resource_find(server->ctx, "temp")), 1);
  no_handshake();
}

static void only_temp_and_unobservable_time(void) {
  add("temp", 1);
  add("time", 0);
}

static void test_gone_or_unobservable_ends(void **state) {
  add("temp", 1);
  add("time", 1);
  add("gone", 1);
  observe("temp", 0);
  observe("time", 1);
  observe("gone", 2);
  run(2000);
  assert_int_equal(n_ev, 3);
  value = 7;
  restart(only_temp_and_unobservable_time);
  run(1000);
  /* /gone: 4.04, the last call of that observation. */
  const event_t *e = last_of(2);
  assert_int_equal(events_of(2), 2);
  assert_int_equal(e->code, COAP_NOT_FOUND);
  assert_int_equal(e->observing, 0);
  /* /time: the state without Observe, the last call too. */
  e = last_of(1);
  assert_int_equal(events_of(1), 2);
  assert_int_equal(e->code, COAP_CONTENT);
  assert_string_equal(e->payload, "time 7");
  assert_int_equal(e->has_observe, 0);
  assert_int_equal(e->observing, 0);
  assert_non_null(strstr(logged, "1 observe relation(s) taken over"));
  assert_non_null(strstr(logged, "1 observe relation(s) not taken over: the resource is gone"));
  assert_non_null(
      strstr(logged, "1 observe relation(s) not taken over: the resource is no longer observable"));
  /* /temp goes on. */
  value = 8;
  assert_int_equal(coap_resource_notify(coap_resource_find(server->ctx, "temp")), 1);
  run(1000);
  assert_string_equal(last_of(0)->payload, "temp 8");
  assert_int_equal(last_of(0)->observing, 1);
  assert_int_equal(registrations, 0);
  no_handshake();
}

static void lower_limit(void) {
  same_resources();
  coap_context_t *ctx = server->ctx;
  ctx->cfg.max_observers_per_peer = 1;
}

static void test_over_limit_ends(void **state) {
  same_resources();
  observe("temp", 0);
  observe("time", 1);
  run(2000);
  value = 5;
  restart(lower_limit);
  run(1000);
  assert_non_null(strstr(logged, "1 observe relation(s) taken over"));
  assert_non_null(strstr(logged, "1 observe relation(s) not taken over: over max_observers"));
  /* One of the two ended with the state without Observe; the other goes
   * on. */
  int ended = last_of(0)->observing ? 1 : 0;
  const event_t *e = last_of(ended);
  assert_int_equal(e->observing, 0);
  assert_int_equal(e->has_observe, 0);
  assert_int_equal(e->code, COAP_CONTENT);
  assert_int_equal(last_of(!ended)->observing, 1);
  size_t held = coap_resource_observer_count(coap_resource_find(server->ctx, "temp")) +
                coap_resource_observer_count(coap_resource_find(server->ctx, "time"));
  assert_int_equal(held, 1);
  no_handshake();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_notifications_go_on, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unacknowledged_state_sent_again, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gone_or_unobservable_ends, setup, teardown),
      cmocka_unit_test_setup_teardown(test_over_limit_ends, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
