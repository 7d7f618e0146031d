/* Observe (RFC 7641) on the server, and No-Response (RFC 7967), driven
 * with hand-built datagrams on a virtual clock, so that only the server
 * is under test: registration, re-registration and deregistration,
 * sequence numbers and Max-Age, the CON/NON rule, RST and CON timeouts,
 * one CON in flight with the latest state behind it (also under loss,
 * duplication and reordering), errors and removal ending observations,
 * limits, eviction, Block2 notifications, grouping of identical
 * registrations, memory per observation, and a DTLS session whose end
 * ends its observations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "context/context_internal.h"
#include "support_handfed.h"
#include "support_msg.h"
#include "support_reply.h"
#include "support_simnet.h"

/* ---- a server fed datagrams by hand; everything it sends is kept ---- */

static coap_context_t *ctx;
static coap_endpoint_t *ep;
static uint64_t vnow;

#define MAX_SENT 512
typedef struct sent {
  coap_address_t to;
  uint8_t raw[1500];
  size_t len;
  coap_msg_t msg;
} sent_t;
static sent_t sent[MAX_SENT];
static unsigned n_sent;

static uint32_t rand_state = 7;

static int capture_send(void *user, coap_endpoint_t *e, const coap_address_t *to,
                        const uint8_t *data, size_t len) {
  assert_true(len <= sizeof sent[0].raw);
  if (n_sent == MAX_SENT) return 0;
  sent_t *s = &sent[n_sent++];
  s->to = *to;
  memcpy(s->raw, data, len);
  s->len = len;
  assert_int_equal(coap_msg_parse(&s->msg, s->raw, len), 0);
  return 0;
}

static void peer_addr(coap_address_t *a, int n) {
  char host[32];
  snprintf(host, sizeof host, "10.0.%d.%d", n / 250, n % 250 + 1);
  assert_int_equal(coap_address_from_string(a, host, 40000), 0);
}

/* ---- resources ---- */

static int temp_state; /* what /temp reports */
static unsigned temp_calls, temp_notif_calls;
static uint8_t temp_error;    /* answer this code instead */
static int temp_max_age = -1; /* set a Max-Age */
static void temp_get(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  temp_calls++;
  if (coap_request_is_notification(req)) {
    temp_notif_calls++;
    /* Nothing to answer later: the notification is built now. */
    assert_null(coap_request_defer(req, resp));
    /* Nor can a notification start another or take its resource away. */
    assert_int_equal(coap_resource_notify(r), COAP_E_STATE);
    assert_int_equal(coap_resource_remove(c, r), COAP_E_STATE);
    assert_int_equal(coap_resource_set_observable(r, 0), COAP_E_STATE);
  }
  if (temp_error) {
    coap_response_set_code(resp, temp_error);
    return;
  }
  char text[64];
  int n;
  if (coap_msg_get_uint(coap_request_msg(req), COAP_OPTION_ACCEPT, -1) == COAP_FORMAT_JSON)
    n = snprintf(text, sizeof text, "{\"t\":%d}", temp_state);
  else
    n = snprintf(text, sizeof text, "t=%d", temp_state);
  if (temp_max_age >= 0) coap_response_set_max_age(resp, (uint32_t)temp_max_age);
  int cf = coap_msg_get_uint(coap_request_msg(req), COAP_OPTION_ACCEPT, -1) == COAP_FORMAT_JSON
               ? COAP_FORMAT_JSON
               : COAP_FORMAT_TEXT_PLAIN;
  coap_response_set_payload(resp, cf, text, (size_t)n);
}

/* The usual way to use it: a PUT changes the state and notifies. */
static int put_notified;
static void temp_put(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  size_t len;
  const uint8_t *p = coap_request_payload(req, &len);
  temp_state = 0;
  for (size_t i = 0; i < len; i++) temp_state = temp_state * 10 + (p[i] - '0');
  put_notified = coap_resource_notify(r);
}

#define BIG_LEN 3000
static uint8_t big_body[BIG_LEN];
static void big_get(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                    coap_response_t *resp, void *user) {
  for (size_t i = 0; i < BIG_LEN; i++) big_body[i] = (uint8_t)(i * 3 + temp_state);
  coap_response_set_payload(resp, COAP_FORMAT_OCTET_STREAM, big_body, BIG_LEN);
}

static void plain_get(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "plain", 5);
}

static unsigned post_calls;
static void any_post(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  post_calls++;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "ok", 2);
}

static coap_deferred_t *parked;
static void slow_post(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  parked = coap_request_defer(req, resp);
  assert_non_null(parked);
}

static coap_resource_t *temp_res, *big_res;

static void server_new(const coap_context_config_t *extra) {
  ctx = sim_handfed_new(extra, &vnow, &rand_state, capture_send, &ep);
  temp_res = coap_resource_add(ctx, "temp");
  coap_resource_set_handler(temp_res, COAP_GET, temp_get, NULL);
  coap_resource_set_handler(temp_res, COAP_FETCH, temp_get, NULL);
  coap_resource_set_handler(temp_res, COAP_PUT, temp_put, NULL);
  assert_int_equal(coap_resource_set_observable(temp_res, 1), 0);
  big_res = coap_resource_add(ctx, "big");
  coap_resource_set_handler(big_res, COAP_GET, big_get, NULL);
  assert_int_equal(coap_resource_set_observable(big_res, 1), 0);
  coap_resource_t *r = coap_resource_add(ctx, "plain");
  coap_resource_set_handler(r, COAP_GET, plain_get, NULL);
  coap_resource_set_handler(r, COAP_POST, any_post, NULL);
  r = coap_resource_add(ctx, "slow");
  coap_resource_set_handler(r, COAP_POST, slow_post, NULL);
}

static int setup(void **state) {
  vnow = 1000000;
  n_sent = 0;
  rand_state = 7;
  temp_state = 0;
  temp_calls = temp_notif_calls = post_calls = 0;
  temp_error = 0;
  temp_max_age = -1;
  server_new(NULL);
  return 0;
}

static int teardown(void **state) {
  coap_context_free(ctx);
  ctx = NULL;
  return 0;
}

static void server_with(const coap_context_config_t *cfg) {
  coap_context_free(ctx);
  server_new(cfg);
}

/* ---- building requests ---- */

static uint16_t next_mid = 0x100;

/* A request with token |tok| (one byte repeated 4 times). */
static void begin(coap_msg_t *m, uint8_t type, uint8_t code, const char *path, uint8_t tok) {
  sim_msg_reset();
  coap_msg_init(m, type, code, next_mid++);
  uint8_t t[4] = {tok, tok, tok, tok};
  coap_msg_set_token(m, t, sizeof t);
  if (path) sim_opt(m, COAP_OPTION_URI_PATH, path, strlen(path));
}

static void feed(const coap_msg_t *m, int peer) {
  uint8_t dgram[2048];
  int n = coap_msg_encode(m, dgram, sizeof dgram);
  assert_true(n > 0);
  coap_address_t from;
  peer_addr(&from, peer);
  coap_context_input(ctx, ep, &from, dgram, (size_t)n, vnow);
}

static void feed_empty(uint8_t type, uint16_t mid, int peer) {
  uint8_t d[4] = {(uint8_t)(0x40 | type << 4), 0, (uint8_t)(mid >> 8), (uint8_t)mid};
  coap_address_t from;
  peer_addr(&from, peer);
  coap_context_input(ctx, ep, &from, d, sizeof d, vnow);
}

/* Send |m| from |peer|; the one datagram it got back. */
static const coap_msg_t *ask(const coap_msg_t *m, int peer) {
  unsigned before = n_sent;
  feed(m, peer);
  assert_int_equal(n_sent, before + 1);
  return &sent[n_sent - 1].msg;
}

/* GET |path| with Observe |obs| (-1: none) and token |tok|, from |peer|. */
static const coap_msg_t *observe(const char *path, int obs, uint8_t tok, int peer) {
  coap_msg_t m;
  begin(&m, COAP_TYPE_CON, COAP_GET, path, tok);
  if (obs >= 0) sim_opt_uint(&m, COAP_OPTION_OBSERVE, (uint32_t)obs);
  return ask(&m, peer);
}

static int64_t observe_of(const coap_msg_t *m) {
  return coap_msg_get_uint(m, COAP_OPTION_OBSERVE, -1);
}

static int has_token(const coap_msg_t *m, uint8_t tok) {
  return m->token_len == 4 && m->token[0] == tok && m->token[3] == tok;
}

static int is_from_peer(const sent_t *s, int peer) {
  coap_address_t a;
  peer_addr(&a, peer);
  return coap_address_equal(&s->to, &a);
}

static coap_stats_t stats(void) {
  coap_stats_t st;
  coap_context_get_stats(ctx, &st);
  return st;
}

/* ---- registration ---- */

/* Observe=0 registers: the answer carries Observe and Max-Age 60; each
 * notify sends the new state with the same token and a larger number. */
static void test_register_and_notify(void **state) {
  temp_state = 20;
  const coap_msg_t *r = observe("temp", 0, 0xA1, 1);
  assert_int_equal(r->code, COAP_CONTENT);
  int64_t v0 = observe_of(r);
  assert_true(v0 >= 0);
  assert_int_equal(coap_msg_get_uint(r, COAP_OPTION_MAX_AGE, -1), 60);
  assert_int_equal(coap_resource_observer_count(temp_res), 1);
  assert_int_equal(stats().observers, 1);

  int64_t prev = v0;
  for (int i = 1; i <= 3; i++) {
    temp_state = 20 + i;
    unsigned before = n_sent;
    assert_int_equal(coap_resource_notify(temp_res), 1);
    assert_int_equal(n_sent, before + 1);
    const coap_msg_t *n = &sent[n_sent - 1].msg;
    assert_int_equal(n->type, COAP_TYPE_NON);
    assert_int_equal(n->code, COAP_CONTENT);
    assert_true(has_token(n, 0xA1));
    assert_true(observe_of(n) > prev);
    prev = observe_of(n);
    assert_int_equal(coap_msg_get_uint(n, COAP_OPTION_MAX_AGE, -1), 60);
    char want[16];
    snprintf(want, sizeof want, "t=%d", temp_state);
    assert_int_equal(n->payload_len, strlen(want));
    assert_memory_equal(n->payload, want, strlen(want));
  }
  assert_int_equal(stats().notifications_sent, 3);
  assert_int_equal(temp_notif_calls, 3);
}

/* A handler that changes the state notifies from inside: the observers
 * get the new state, the PUT its own answer. A FETCH registers too. */
static void test_notify_from_put_handler(void **state) {
  observe("temp", 0, 0xA3, 1);
  coap_msg_t m;
  begin(&m, COAP_TYPE_CON, COAP_FETCH, "temp", 0xA4);
  sim_opt_uint(&m, COAP_OPTION_OBSERVE, 0);
  coap_msg_set_payload(&m, sim_keep("q", 1), 1);
  assert_true(observe_of(ask(&m, 2)) >= 0);
  begin(&m, COAP_TYPE_CON, COAP_PUT, "temp", 0xA5);
  coap_msg_set_payload(&m, sim_keep("77", 2), 2);
  unsigned before = n_sent;
  feed(&m, 3);
  assert_int_equal(put_notified, 2);
  assert_int_equal(n_sent, before + 3);
  int notes = 0;
  for (unsigned i = before; i < n_sent; i++) {
    const coap_msg_t *n = &sent[i].msg;
    if (has_token(n, 0xA5)) {
      assert_int_equal(n->type, COAP_TYPE_ACK);
      assert_int_equal(n->code, COAP_CHANGED);
      continue;
    }
    assert_true(has_token(n, 0xA3) || has_token(n, 0xA4));
    assert_int_equal(n->payload_len, 4);
    assert_memory_equal(n->payload, "t=77", 4);
    notes++;
  }
  assert_int_equal(notes, 2);
}

/* A Max-Age set by the handler is kept in notifications. */
static void test_handler_max_age(void **state) {
  temp_max_age = 5;
  assert_int_equal(coap_msg_get_uint(observe("temp", 0, 0xA2, 1), COAP_OPTION_MAX_AGE, -1), 5);
  coap_resource_notify(temp_res);
  assert_int_equal(coap_msg_get_uint(&sent[n_sent - 1].msg, COAP_OPTION_MAX_AGE, -1), 5);
}

/* The same token again re-registers (no second observer); another token
 * is another observation; Observe=1 deregisters with a plain answer. */
static void test_reregister_and_deregister(void **state) {
  observe("temp", 0, 0xB1, 1);
  const coap_msg_t *r = observe("temp", 0, 0xB1, 1);
  assert_true(observe_of(r) >= 0);
  assert_int_equal(coap_resource_observer_count(temp_res), 1);
  observe("temp", 0, 0xB2, 1);
  assert_int_equal(coap_resource_observer_count(temp_res), 2);
  unsigned before = n_sent;
  assert_int_equal(coap_resource_notify(temp_res), 2);
  assert_int_equal(n_sent, before + 2);

  r = observe("temp", 1, 0xB1, 1);
  assert_int_equal(r->code, COAP_CONTENT);
  assert_int_equal(observe_of(r), -1);
  assert_int_equal(coap_resource_observer_count(temp_res), 1);
  before = n_sent;
  assert_int_equal(coap_resource_notify(temp_res), 1);
  assert_true(has_token(&sent[before].msg, 0xB2));
  /* The client's own deregistration is not a removal. */
  assert_int_equal(stats().observers_removed, 0);
  /* The same token from another peer is another observation. */
  observe("temp", 0, 0xB2, 2);
  assert_int_equal(coap_resource_observer_count(temp_res), 2);
}

/* A resource that is not observable answers a plain GET; an Observe
 * value over 3 bytes is out of range (an elective option ignored, RFC
 * 7252 §5.4.3): a plain GET too, and no registration. */
static void test_plain_answers(void **state) {
  const coap_msg_t *r = observe("plain", 0, 0xC1, 1);
  assert_int_equal(r->code, COAP_CONTENT);
  assert_int_equal(observe_of(r), -1);
  assert_int_equal(stats().observers, 0);

  coap_msg_t m;
  begin(&m, COAP_TYPE_CON, COAP_GET, "temp", 0xC2);
  uint8_t four[4] = {0, 0, 0, 0};
  sim_opt(&m, COAP_OPTION_OBSERVE, four, sizeof four);
  r = ask(&m, 1);
  assert_int_equal(r->code, COAP_CONTENT);
  assert_int_equal(observe_of(r), -1);
  assert_int_equal(coap_resource_observer_count(temp_res), 0);
  /* An error answer is never a registration. */
  temp_error = COAP_SERVICE_UNAVAILABLE;
  r = observe("temp", 0, 0xC3, 1);
  assert_int_equal(r->code, COAP_SERVICE_UNAVAILABLE);
  assert_int_equal(observe_of(r), -1);
  assert_int_equal(coap_resource_observer_count(temp_res), 0);
}

/* Observers whose requests are byte-identical share one handler run; an
 * Accept of their own gets their own representation. */
static void test_grouping_and_accept(void **state) {
  for (int p = 1; p <= 3; p++) observe("temp", 0, 0xD1, p);
  coap_msg_t m;
  begin(&m, COAP_TYPE_CON, COAP_GET, "temp", 0xD2);
  sim_opt_uint(&m, COAP_OPTION_OBSERVE, 0);
  sim_opt_uint(&m, COAP_OPTION_ACCEPT, COAP_FORMAT_JSON);
  ask(&m, 4);
  assert_int_equal(coap_resource_observer_count(temp_res), 4);
  temp_state = 7;
  unsigned before = n_sent;
  assert_int_equal(coap_resource_notify(temp_res), 4);
  assert_int_equal(temp_notif_calls, 2); /* one per group, not per observer */
  int json = 0, text = 0;
  for (unsigned i = before; i < n_sent; i++) {
    const coap_msg_t *n = &sent[i].msg;
    if (is_from_peer(&sent[i], 4)) {
      assert_int_equal(coap_msg_content_format(n), COAP_FORMAT_JSON);
      assert_memory_equal(n->payload, "{\"t\":7}", 7);
      json++;
    } else {
      assert_int_equal(coap_msg_content_format(n), COAP_FORMAT_TEXT_PLAIN);
      assert_memory_equal(n->payload, "t=7", 3);
      text++;
    }
  }
  assert_int_equal(json, 1);
  assert_int_equal(text, 3);
}

/* Many different registrations of one resource (a query each): one
 * handler run per group at each notification, and the groups go with
 * their last observer. */
static void test_many_groups(void **state) {
  enum { N = 300 };
  size_t bytes0 = ctx->server.obs.bytes;
  for (int i = 0; i < N; i++) {
    coap_msg_t m;
    begin(&m, COAP_TYPE_CON, COAP_GET, "temp", (uint8_t)(i % 60 + 1));
    sim_opt_uint(&m, COAP_OPTION_OBSERVE, 0);
    char q[16];
    int n = snprintf(q, sizeof q, "n=%d", i);
    sim_opt(&m, COAP_OPTION_URI_QUERY, q, (size_t)n);
    n_sent = 0;
    assert_true(observe_of(ask(&m, 1 + i / 60)) >= 0); /* 60 a peer at most */
  }
  assert_int_equal(ctx->server.obs.n_groups, N);
  n_sent = 0;
  unsigned calls = temp_notif_calls;
  assert_int_equal(coap_resource_notify(temp_res), N);
  assert_int_equal(temp_notif_calls, calls + N);
  for (int i = 0; i < N; i++) {
    coap_msg_t m;
    begin(&m, COAP_TYPE_CON, COAP_GET, "temp", (uint8_t)(i % 60 + 1));
    sim_opt_uint(&m, COAP_OPTION_OBSERVE, 1);
    char q[16];
    int n = snprintf(q, sizeof q, "n=%d", i);
    sim_opt(&m, COAP_OPTION_URI_QUERY, q, (size_t)n);
    n_sent = 0;
    ask(&m, 1 + i / 60);
  }
  assert_int_equal(coap_resource_observer_count(temp_res), 0);
  assert_int_equal(ctx->server.obs.n_groups, 0);
  /* What is left is the two bucket arrays. */
  assert_int_equal(ctx->server.obs.bytes - bytes0,
                   (ctx->server.obs.n_buckets + ctx->server.obs.n_gbuckets) * sizeof(void *));
}

/* ---- CON and NON ---- */

/* Every observe_con_every-th notification is CON; the ACK clears it. */
static void test_con_every_nth(void **state) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.observe_con_every = 3;
  server_with(&cfg);
  observe("temp", 0, 0xE1, 1);
  uint8_t types[6];
  for (int i = 0; i < 6; i++) {
    unsigned before = n_sent;
    coap_resource_notify(temp_res);
    assert_int_equal(n_sent, before + 1);
    const coap_msg_t *n = &sent[n_sent - 1].msg;
    types[i] = n->type;
    if (n->type == COAP_TYPE_CON) feed_empty(COAP_TYPE_ACK, n->mid, 1);
  }
  uint8_t want[6] = {COAP_TYPE_NON, COAP_TYPE_NON, COAP_TYPE_CON,
                     COAP_TYPE_NON, COAP_TYPE_NON, COAP_TYPE_CON};
  assert_memory_equal(types, want, 6);
  assert_int_equal(coap_resource_observer_count(temp_res), 1);
}

/* ... and one at least every observe_con_interval_s. */
static void test_con_interval(void **state) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.observe_con_every = 1000;
  cfg.observe_con_interval_s = 10;
  server_with(&cfg);
  observe("temp", 0, 0xE2, 1);
  coap_resource_notify(temp_res);
  assert_int_equal(sent[n_sent - 1].msg.type, COAP_TYPE_NON);
  vnow += 11000;
  coap_resource_notify(temp_res);
  assert_int_equal(sent[n_sent - 1].msg.type, COAP_TYPE_CON);
  feed_empty(COAP_TYPE_ACK, sent[n_sent - 1].msg.mid, 1);
  coap_resource_notify(temp_res);
  assert_int_equal(sent[n_sent - 1].msg.type, COAP_TYPE_NON);
}

/* An RST to a NON notification removes the observer (§3.6). */
static void test_rst_to_non_removes(void **state) {
  observe("temp", 0, 0xF1, 1);
  coap_resource_notify(temp_res);
  const coap_msg_t *n = &sent[n_sent - 1].msg;
  assert_int_equal(n->type, COAP_TYPE_NON);
  /* An RST with another message ID is nothing of ours. */
  feed_empty(COAP_TYPE_RST, (uint16_t)(n->mid + 77), 1);
  assert_int_equal(coap_resource_observer_count(temp_res), 1);
  feed_empty(COAP_TYPE_RST, n->mid, 1);
  assert_int_equal(coap_resource_observer_count(temp_res), 0);
  assert_int_equal(stats().observers_removed, 1);
  unsigned before = n_sent;
  assert_int_equal(coap_resource_notify(temp_res), 0);
  assert_int_equal(n_sent, before);
}

static void all_con(void) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.observe_con_every = 1;
  server_with(&cfg);
}

/* An RST to a CON notification removes the observer. */
static void test_rst_to_con_removes(void **state) {
  all_con();
  observe("temp", 0, 0xF2, 1);
  coap_resource_notify(temp_res);
  const coap_msg_t *n = &sent[n_sent - 1].msg;
  assert_int_equal(n->type, COAP_TYPE_CON);
  feed_empty(COAP_TYPE_RST, n->mid, 1);
  assert_int_equal(coap_resource_observer_count(temp_res), 0);
  assert_int_equal(stats().observers_removed, 1);
}

/* A CON notification never acknowledged: retransmitted MAX_RETRANSMIT
 * times, then the observer goes, and its peer may be forgotten. */
static void test_con_timeout_removes(void **state) {
  all_con();
  observe("temp", 0, 0xF3, 1);
  unsigned before = n_sent;
  coap_resource_notify(temp_res);
  for (int i = 0; i < 300; i++) {
    vnow += 1000;
    coap_context_handle_timeouts(ctx, vnow);
  }
  assert_int_equal(n_sent - before, 5); /* the first and 4 retransmissions */
  for (unsigned i = before; i < n_sent; i++)
    assert_int_equal(sent[i].msg.mid, sent[before].msg.mid);
  assert_int_equal(coap_resource_observer_count(temp_res), 0);
  assert_int_equal(stats().observers_removed, 1);
  vnow += 400000;
  coap_context_handle_timeouts(ctx, vnow);
  assert_int_equal(stats().peers, 0);
}

/* §4.5.1: one CON in flight; states that come meanwhile wait, only the
 * newest is sent once the CON is acknowledged. */
static void test_one_con_in_flight_latest_state(void **state) {
  all_con();
  observe("temp", 0, 0xF4, 1);
  temp_state = 1;
  coap_resource_notify(temp_res);
  const coap_msg_t first = sent[n_sent - 1].msg;
  assert_int_equal(first.type, COAP_TYPE_CON);
  unsigned before = n_sent;
  unsigned calls = temp_notif_calls;
  temp_state = 2;
  assert_int_equal(coap_resource_notify(temp_res), 0);
  temp_state = 3;
  assert_int_equal(coap_resource_notify(temp_res), 0);
  assert_int_equal(n_sent, before);
  assert_int_equal(temp_notif_calls, calls); /* nothing built for a waiting state */
  /* A retransmission still carries the state it was made with. */
  vnow += 3100;
  coap_context_handle_timeouts(ctx, vnow);
  assert_int_equal(n_sent, before + 1);
  assert_int_equal(sent[n_sent - 1].msg.mid, first.mid);
  feed_empty(COAP_TYPE_ACK, first.mid, 1);
  assert_int_equal(n_sent, before + 2);
  const coap_msg_t *n = &sent[n_sent - 1].msg;
  assert_int_equal(n->type, COAP_TYPE_CON);
  assert_memory_equal(n->payload, "t=3", 3);
  assert_true(observe_of(n) > observe_of(&first));
  feed_empty(COAP_TYPE_ACK, n->mid, 1);
  assert_int_equal(n_sent, before + 2); /* nothing else waited */
}

/* One CON in flight per client (§4.5.1), not just per observation: a
 * second observation of the same peer due for CON waits for the first's
 * ACK and then gets the newest state; the two take turns. Another peer
 * is not held up. */
static void test_one_con_per_peer(void **state) {
  all_con();
  observe("temp", 0, 0xF5, 1);
  observe("temp", 0, 0xF6, 1);
  observe("temp", 0, 0xF7, 2);
  temp_state = 1;
  unsigned before = n_sent;
  assert_int_equal(coap_resource_notify(temp_res), 2);
  assert_int_equal(n_sent, before + 2);
  const sent_t *to1 = is_from_peer(&sent[before], 1) ? &sent[before] : &sent[before + 1];
  assert_true(is_from_peer(to1, 1));
  assert_int_equal(to1->msg.type, COAP_TYPE_CON);
  uint8_t first = to1->msg.token[0];
  uint8_t other = first == 0xF5 ? 0xF6 : 0xF5;
  temp_state = 2; /* the waiting one gets this state, not the first */
  feed_empty(COAP_TYPE_ACK, to1->msg.mid, 1);
  assert_int_equal(n_sent, before + 3);
  const coap_msg_t *n = &sent[n_sent - 1].msg;
  assert_int_equal(n->type, COAP_TYPE_CON);
  assert_true(has_token(n, other));
  assert_memory_equal(n->payload, "t=2", 3);
  /* Both want the next state; the one that waited last goes first. */
  uint16_t mid = n->mid;
  temp_state = 3;
  before = n_sent;
  coap_resource_notify(temp_res);
  for (unsigned i = before; i < n_sent; i++) assert_false(is_from_peer(&sent[i], 1));
  feed_empty(COAP_TYPE_ACK, mid, 1);
  n = &sent[n_sent - 1].msg;
  assert_true(has_token(n, first));
  assert_memory_equal(n->payload, "t=3", 3);
  mid = n->mid;
  before = n_sent;
  feed_empty(COAP_TYPE_ACK, mid, 1);
  assert_int_equal(n_sent, before + 1);
  assert_true(has_token(&sent[before].msg, other));
  assert_memory_equal(sent[before].msg.payload, "t=3", 3);
}

/* ICMP port unreachable while a CON notification is out: the client is
 * gone, all of its observations end (nothing more is sent to it); a peer
 * torn down with one out (context freed) is no trouble either. */
static void test_unreachable_ends_peer_observations(void **state) {
  all_con();
  observe("temp", 0, 0xF9, 1);
  observe("temp", 0, 0xFA, 1);
  observe("temp", 0, 0xFB, 2);
  assert_int_equal(coap_resource_notify(temp_res), 2);
  coap_address_t a;
  peer_addr(&a, 1);
  unsigned before = n_sent;
  coap_context_input_unreachable(ctx, ep, &a, vnow);
  assert_int_equal(n_sent, before);
  assert_int_equal(coap_resource_observer_count(temp_res), 1);
  assert_int_equal(stats().observers_removed, 2);
  /* teardown frees the context with peer 2's CON still out */
}

/* §4.5.2: a CON being retransmitted (its state perhaps lost) is not
 * waited for: the next retransmission carries the newer state, under a
 * new message ID, and no datagram more goes out. */
static void test_con_retransmission_replaced(void **state) {
  all_con();
  observe("temp", 0, 0xF8, 1);
  temp_state = 1;
  coap_resource_notify(temp_res);
  const coap_msg_t first = sent[n_sent - 1].msg;
  vnow += 3100; /* the first retransmission, still state 1 */
  coap_context_handle_timeouts(ctx, vnow);
  assert_int_equal(sent[n_sent - 1].msg.mid, first.mid);
  unsigned before = n_sent;
  temp_state = 2;
  assert_int_equal(coap_resource_notify(temp_res), 0);
  assert_int_equal(n_sent, before);
  vnow += 6100;
  coap_context_handle_timeouts(ctx, vnow);
  assert_int_equal(n_sent, before + 1);
  const coap_msg_t *n = &sent[n_sent - 1].msg;
  assert_int_equal(n->type, COAP_TYPE_CON);
  assert_int_not_equal(n->mid, first.mid);
  assert_true(observe_of(n) > observe_of(&first));
  assert_memory_equal(n->payload, "t=2", 3);
  /* A late ACK of the first is nothing now; the new one's ends it. */
  feed_empty(COAP_TYPE_ACK, first.mid, 1);
  feed_empty(COAP_TYPE_ACK, n->mid, 1);
  assert_int_equal(n_sent, before + 1);
  vnow += 60000;
  coap_context_handle_timeouts(ctx, vnow);
  assert_int_equal(n_sent, before + 1);
  assert_int_equal(coap_resource_observer_count(temp_res), 1);
}

/* ---- ends ---- */

/* A 4.xx/5.xx from the handler is sent, without Observe, and ends it. */
static void test_error_ends_observation(void **state) {
  observe("temp", 0, 0x11, 1);
  temp_error = COAP_NOT_FOUND;
  unsigned before = n_sent;
  assert_int_equal(coap_resource_notify(temp_res), 1);
  assert_int_equal(n_sent, before + 1);
  assert_int_equal(sent[before].msg.code, COAP_NOT_FOUND);
  assert_int_equal(observe_of(&sent[before].msg), -1);
  assert_int_equal(coap_resource_observer_count(temp_res), 0);
  temp_error = 0;
  assert_int_equal(coap_resource_notify(temp_res), 0);
}

/* Removing an observed resource tells each observer 4.04. */
static void test_resource_removal_404(void **state) {
  observe("temp", 0, 0x21, 1);
  observe("temp", 0, 0x22, 2);
  coap_msg_t m;
  begin(&m, COAP_TYPE_CON, COAP_GET, "temp", 0x23);
  sim_opt_uint(&m, COAP_OPTION_OBSERVE, 0);
  sim_opt_uint(&m, COAP_OPTION_ACCEPT, COAP_FORMAT_JSON);
  ask(&m, 3);
  assert_int_equal(stats().observers, 3);
  unsigned before = n_sent;
  assert_int_equal(coap_resource_remove(ctx, temp_res), 0);
  assert_int_equal(n_sent, before + 3);
  for (unsigned i = before; i < n_sent; i++) {
    assert_int_equal(sent[i].msg.code, COAP_NOT_FOUND);
    assert_int_equal(observe_of(&sent[i].msg), -1);
  }
  assert_int_equal(stats().observers, 0);
}

static int discovery_has_obs(void) {
  coap_msg_t m;
  begin(&m, COAP_TYPE_CON, COAP_GET, ".well-known", 0x31);
  sim_opt(&m, COAP_OPTION_URI_PATH, "core", 4);
  const coap_msg_t *r = ask(&m, 9);
  char links[1024];
  assert_true(r->payload_len < sizeof links);
  memcpy(links, r->payload, r->payload_len);
  links[r->payload_len] = 0;
  const char *t = strstr(links, "</temp>");
  assert_non_null(t);
  const char *end = strchr(t, ',');
  const char *obs = strstr(t, ";obs");
  return obs && (!end || obs < end);
}

/* Turning Observe off ends each observation with a plain answer; the
 * "obs" link attribute comes and goes with it. */
static void test_set_observable_off(void **state) {
  assert_true(discovery_has_obs());
  observe("temp", 0, 0x32, 1);
  temp_state = 42;
  unsigned before = n_sent;
  assert_int_equal(coap_resource_set_observable(temp_res, 0), 0);
  assert_int_equal(n_sent, before + 1);
  assert_int_equal(sent[before].msg.code, COAP_CONTENT);
  assert_int_equal(observe_of(&sent[before].msg), -1);
  assert_memory_equal(sent[before].msg.payload, "t=42", 4);
  assert_int_equal(coap_resource_observer_count(temp_res), 0);
  assert_false(discovery_has_obs());
  assert_int_equal(observe_of(observe("temp", 0, 0x33, 1)), -1);
  assert_int_equal(coap_resource_observer_count(temp_res), 0);
}

/* ---- limits ---- */

/* A configuration written before Observe existed has zeros there: the
 * defaults hold (registration works; notifications NON, the 20th CON). */
static void test_zero_config_means_defaults(void **state) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  assert_int_equal(cfg.max_observers, 100000);
  assert_int_equal(cfg.max_observers_per_peer, 64);
  assert_int_equal(cfg.observe_con_every, 20);
  assert_int_equal(cfg.observe_con_interval_s, 86400);
  cfg.max_observers = 0;
  cfg.max_observers_per_peer = 0;
  cfg.observe_con_every = 0;
  cfg.observe_con_interval_s = 0;
  server_with(&cfg);
  assert_true(observe_of(observe("temp", 0, 0x40, 1)) >= 0);
  for (int i = 1; i <= 20; i++) {
    coap_resource_notify(temp_res);
    assert_int_equal(sent[n_sent - 1].msg.type, i < 20 ? COAP_TYPE_NON : COAP_TYPE_CON);
  }
}

static void test_limits(void **state) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.max_observers = 3;
  cfg.max_observers_per_peer = 2;
  server_with(&cfg);
  assert_true(observe_of(observe("temp", 0, 0x41, 1)) >= 0);
  assert_true(observe_of(observe("temp", 0, 0x42, 1)) >= 0);
  const coap_msg_t *r = observe("temp", 0, 0x43, 1); /* a third from peer 1 */
  assert_int_equal(r->code, COAP_CONTENT);
  assert_int_equal(observe_of(r), -1);
  /* Re-registering an existing one is no new observation. */
  assert_true(observe_of(observe("temp", 0, 0x42, 1)) >= 0);
  assert_true(observe_of(observe("temp", 0, 0x44, 2)) >= 0);
  r = observe("temp", 0, 0x45, 3); /* the context is full */
  assert_int_equal(r->code, COAP_CONTENT);
  assert_int_equal(observe_of(r), -1);
  assert_int_equal(stats().observers, 3);
}

/* ---- peers ---- */

/* An observing peer is an open exchange: neither evicted for a newcomer
 * nor forgotten when idle. */
static void test_eviction_spares_observer(void **state) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.max_peers = 1;
  cfg.peer_evict_ms = 1000;
  cfg.peer_idle_ms = 5000;
  server_with(&cfg);
  observe("temp", 0, 0x51, 1);
  vnow += 60000;
  coap_context_handle_timeouts(ctx, vnow);
  coap_msg_t m;
  begin(&m, COAP_TYPE_CON, COAP_GET, "plain", 0x52);
  unsigned before = n_sent;
  feed(&m, 2);
  assert_int_equal(n_sent, before); /* refused: no room */
  assert_int_equal(stats().peers_evicted, 0);
  assert_int_equal(stats().peers, 1);
  coap_resource_notify(temp_res);
  assert_int_equal(n_sent, before + 1);
  assert_true(is_from_peer(&sent[before], 1));
  /* Deregistered, the peer may go. */
  observe("temp", 1, 0x51, 1);
  vnow += 60000;
  before = n_sent;
  assert_non_null(ask(&m, 2));
  assert_int_equal(stats().peers_evicted, 1);
}

/* ---- Block2 ---- */

/* A representation larger than a block: the notification is block 0 with
 * Observe, ETag and Size2 (RFC 7959 §3.4). */
static void test_block2_notification(void **state) {
  const coap_msg_t *r = observe("big", 0, 0x61, 1);
  assert_true(observe_of(r) >= 0);
  coap_block_t b;
  assert_int_equal(coap_block_decode(coap_msg_find_option(r, COAP_OPTION_BLOCK2), &b), 0);
  assert_int_equal(b.num, 0);
  temp_state = 5;
  coap_resource_notify(big_res);
  const coap_msg_t *n = &sent[n_sent - 1].msg;
  assert_true(observe_of(n) > observe_of(r));
  const coap_option_t *o = coap_msg_find_option(n, COAP_OPTION_BLOCK2);
  assert_non_null(o);
  assert_int_equal(coap_block_decode(o, &b), 0);
  assert_int_equal(b.num, 0);
  assert_int_equal(b.more, 1);
  assert_int_equal(n->payload_len, coap_block_size(b.szx));
  assert_int_equal(coap_msg_get_uint(n, COAP_OPTION_SIZE2, -1), BIG_LEN);
  assert_non_null(coap_msg_find_option(n, COAP_OPTION_ETAG));
  for (size_t i = 0; i < n->payload_len; i++) assert_int_equal(n->payload[i], (uint8_t)(i * 3 + 5));
}

/* ---- No-Response (RFC 7967) ---- */

static void test_no_response(void **state) {
  /* 2.xx suppressed on a CON: an empty ACK only, the handler ran. */
  coap_msg_t m;
  begin(&m, COAP_TYPE_CON, COAP_POST, "plain", 0x71);
  sim_opt_uint(&m, COAP_OPTION_NO_RESPONSE, COAP_NO_RESPONSE_2XX);
  const coap_msg_t *r = ask(&m, 1);
  assert_int_equal(post_calls, 1);
  assert_int_equal(r->type, COAP_TYPE_ACK);
  assert_int_equal(r->code, 0);
  assert_int_equal(r->mid, m.mid);
  /* A retransmission of it gets the empty ACK again, no second run. */
  unsigned before = n_sent;
  feed(&m, 1);
  assert_int_equal(n_sent, before + 1);
  assert_int_equal(sent[n_sent - 1].msg.code, 0);
  assert_int_equal(post_calls, 1);
  /* 4.xx is not suppressed by the 2.xx bit. */
  begin(&m, COAP_TYPE_CON, COAP_GET, "nothing", 0x72);
  sim_opt_uint(&m, COAP_OPTION_NO_RESPONSE, COAP_NO_RESPONSE_2XX);
  assert_int_equal(ask(&m, 1)->code, COAP_NOT_FOUND);
  /* ... but by its own. */
  begin(&m, COAP_TYPE_CON, COAP_GET, "nothing", 0x73);
  sim_opt_uint(&m, COAP_OPTION_NO_RESPONSE, COAP_NO_RESPONSE_4XX);
  assert_int_equal(ask(&m, 1)->code, 0);
  /* A NON request whose answer is suppressed: nothing at all. */
  begin(&m, COAP_TYPE_NON, COAP_POST, "plain", 0x74);
  sim_opt_uint(&m, COAP_OPTION_NO_RESPONSE, COAP_NO_RESPONSE_2XX | COAP_NO_RESPONSE_5XX);
  before = n_sent;
  feed(&m, 1);
  assert_int_equal(n_sent, before);
  assert_int_equal(post_calls, 2);
  /* A deferred answer is judged when it is sent. */
  begin(&m, COAP_TYPE_CON, COAP_POST, "slow", 0x76);
  sim_opt_uint(&m, COAP_OPTION_NO_RESPONSE, COAP_NO_RESPONSE_2XX);
  before = n_sent;
  feed(&m, 1);
  assert_int_equal(n_sent, before);
  assert_int_equal(coap_deferred_send(ctx, parked), 0);
  assert_int_equal(n_sent, before + 1);
  assert_int_equal(sent[before].msg.type, COAP_TYPE_ACK);
  assert_int_equal(sent[before].msg.code, 0);
  begin(&m, COAP_TYPE_CON, COAP_POST, "slow", 0x77);
  sim_opt_uint(&m, COAP_OPTION_NO_RESPONSE, COAP_NO_RESPONSE_4XX);
  feed(&m, 1);
  assert_int_equal(coap_deferred_send(ctx, parked), 0);
  assert_int_equal(sent[n_sent - 1].msg.code, COAP_CHANGED);
  /* Value 0: interested in everything. */
  begin(&m, COAP_TYPE_NON, COAP_POST, "plain", 0x75);
  sim_opt(&m, COAP_OPTION_NO_RESPONSE, NULL, 0);
  assert_int_equal(ask(&m, 1)->code, COAP_CHANGED);
}

/* The new counters: a Block1 body under way counts in reassembly_bytes. */
static void test_stats_reassembly_bytes(void **state) {
  assert_int_equal(stats().reassembly_bytes, 0);
  coap_msg_t m;
  begin(&m, COAP_TYPE_CON, COAP_PUT, "temp", 0x76);
  coap_block_t b = {0, 1, 0};
  uint8_t v[3];
  int n = coap_block_encode(&b, v);
  sim_opt(&m, COAP_OPTION_BLOCK1, v, (size_t)n);
  coap_msg_set_payload(&m, sim_keep("1111111111111111", 16), 16);
  assert_int_equal(ask(&m, 1)->code, COAP_CONTINUE);
  assert_true(stats().reassembly_bytes >= 16);
  assert_int_equal(stats().reassembly_bytes, ctx->server.b1.bytes);
}

/* ---- the message layer ---- */

/* A NON response whose token we never used gets an RST, like a CON one
 * (RFC 7641 §3.6: how a client that forgot an observation ends it). */
static void test_unknown_token_non_gets_rst(void **state) {
  coap_msg_t m;
  begin(&m, COAP_TYPE_NON, COAP_CONTENT, NULL, 0x81);
  sim_opt_uint(&m, COAP_OPTION_OBSERVE, 9);
  const coap_msg_t *r = ask(&m, 1);
  assert_int_equal(r->type, COAP_TYPE_RST);
  assert_int_equal(r->mid, m.mid);
  begin(&m, COAP_TYPE_CON, COAP_CONTENT, NULL, 0x82);
  r = ask(&m, 1);
  assert_int_equal(r->type, COAP_TYPE_RST);
  assert_int_equal(r->mid, m.mid);
}

/* ---- memory ---- */

/* Many observers of one resource (distinct peers, a short path, no
 * query): at most 128 bytes an observation beyond its peer. */
static void test_memory_per_observation(void **state) {
  enum { N = 2000 };
  for (int p = 0; p < N; p++) {
    n_sent = 0;
    const coap_msg_t *r = observe("temp", 0, 0x91, p);
    assert_true(observe_of(r) >= 0);
  }
  assert_int_equal(coap_resource_observer_count(temp_res), N);
  size_t per = ctx->server.obs.bytes / N;
  print_message("memory per observation: %zu bytes (%zu in all for %d)\n", per,
                ctx->server.obs.bytes, N);
  assert_true(per <= 128);
  /* And every one is notified, with one handler run. */
  n_sent = 0;
  unsigned calls = temp_notif_calls;
  assert_int_equal(coap_resource_notify(temp_res), N);
  assert_int_equal(temp_notif_calls, calls + 1);
}

/* ---- loss, duplication, reordering ---- */

/* The test plays the client over a lossy path: 20% of datagrams lost
 * each way, 10% duplicated, deliveries reordered. Notifications are all
 * CON so that the last state must arrive; the client keeps a
 * notification only when it is newer (§3.4) and must end with the
 * server's latest state, never an older one after a newer. */
static uint32_t lossy_state = 12345;
static unsigned lossy_rand(unsigned n) {
  lossy_state = lossy_state * 1664525u + 1013904223u;
  return (lossy_state >> 8) % n;
}

/* The number in "t=N" (the payload is not NUL-terminated). */
static int state_of(const coap_msg_t *n) {
  int v = 0;
  assert_true(n->payload_len > 2 && n->payload[0] == 't');
  for (size_t i = 2; i < n->payload_len; i++) v = v * 10 + (n->payload[i] - '0');
  return v;
}

static void test_latest_state_under_loss(void **state) {
  all_con();
  observe("temp", 0, 0xAA, 1);
  int64_t have_seq = -1;
  int have_state = -1;
  unsigned delivered = 0;
  sent_t *inbox = calloc(64, sizeof(*inbox));
  assert_non_null(inbox);
  size_t n_inbox = 0;
  unsigned seen = n_sent;
  for (int step = 0; step < 600; step++) {
    if (step < 400 && lossy_rand(3) == 0) {
      temp_state++;
      coap_resource_notify(temp_res);
    }
    vnow += 200;
    coap_context_handle_timeouts(ctx, vnow);
    /* What the server sent reaches the client's inbox, or not. */
    for (; seen < n_sent; seen++) {
      if (lossy_rand(5) == 0) continue;
      int copies = lossy_rand(10) == 0 ? 2 : 1;
      for (int c = 0; c < copies && n_inbox < 64; c++) inbox[n_inbox++] = sent[seen];
    }
    if (n_sent > MAX_SENT - 20) n_sent = seen = 0; /* all seen: the log starts over */
    /* Deliver some of the inbox, in any order. */
    while (n_inbox && lossy_rand(2)) {
      size_t k = lossy_rand((unsigned)n_inbox);
      sent_t s = inbox[k];
      inbox[k] = inbox[--n_inbox];
      assert_int_equal(coap_msg_parse(&s.msg, s.raw, s.len), 0);
      const coap_msg_t *n = &s.msg;
      if (n->code != COAP_CONTENT) continue;
      delivered++;
      int64_t v = observe_of(n);
      assert_true(v >= 0);
      int st = state_of(n);
      if (v > have_seq) {              /* no wrap in this run */
        assert_true(st >= have_state); /* never older after newer */
        have_seq = v;
        have_state = st;
      }
      if (n->type == COAP_TYPE_CON && lossy_rand(5) != 0) feed_empty(COAP_TYPE_ACK, n->mid, 1);
    }
  }
  /* Quiet now: let the retransmissions finish; deliver what arrives. */
  for (int step = 0; step < 400; step++) {
    vnow += 1000;
    coap_context_handle_timeouts(ctx, vnow);
    for (; seen < n_sent; seen++) {
      if (lossy_rand(5) == 0) continue;
      const coap_msg_t *n = &sent[seen].msg;
      int64_t v = observe_of(n);
      int st = state_of(n);
      if (v > have_seq) {
        assert_true(st >= have_state);
        have_seq = v;
        have_state = st;
      }
      if (n->type == COAP_TYPE_CON && lossy_rand(5) != 0) feed_empty(COAP_TYPE_ACK, n->mid, 1);
    }
  }
  free(inbox);
  assert_true(delivered > 20);
  assert_int_equal(coap_resource_observer_count(temp_res), 1);
  assert_int_equal(have_state, temp_state);
}

/* ---- coaps:// ---- */

static void set_psk(coap_context_t *c) {
  coap_dtls_context_t *d = coap_dtls_new_context(c);
  assert_non_null(d);
  assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)"dev", (const uint8_t *)"secret-key", 10),
                   0);
  assert_int_equal(coap_context_set_dtls_context(c, d), 0);
}

static void dtls_temp(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "dtls", 4);
}

static int drop_everything(void *user, const simnet_node_t *from, const coap_address_t *to,
                           const uint8_t *data, size_t len, unsigned seq) {
  return 1;
}

static void register_over_dtls(simnet_t *net, simnet_node_t *client, sim_reply_t *rep) {
  static const uint8_t zero = 0;
  coap_option_t o = {COAP_OPTION_OBSERVE, 0, &zero};
  coap_request_opts_t ro;
  coap_request_opts_init(&ro, COAP_GET, "coaps://10.0.0.1:5684/temp");
  ro.options = &o;
  ro.n_options = 1;
  sim_send(client, &ro, rep);
  assert_true(simnet_run_until_flag(net, &rep->done, 30000));
  assert_int_equal(rep->code, COAP_CONTENT);
}

/* A DTLS session that ends (the client closes it) ends its observations;
 * a restarted client whose close never came gets a new session that does
 * not inherit the old one's. */
static void test_dtls_session_end(void **state) {
  static simnet_t net;
  simnet_init(&net);
  simnet_node_t *server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  simnet_node_t *client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  set_psk(server->ctx);
  set_psk(client->ctx);
  coap_resource_t *r = coap_resource_add(server->ctx, "temp");
  coap_resource_set_handler(r, COAP_GET, dtls_temp, NULL);
  coap_resource_set_observable(r, 1);
  static sim_reply_t rep;
  /* A client that did not mean to observe (its request is over) answers
   * the notification, which goes over the session, with RST. */
  register_over_dtls(&net, client, &rep);
  assert_int_equal(coap_resource_observer_count(r), 1);
  assert_int_equal(coap_resource_notify(r), 1);
  simnet_run_until(&net, net.now + 1000);
  assert_int_equal(coap_resource_observer_count(r), 0);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.notifications_sent, 1);
  assert_int_equal(st.observers_removed, 1);
  register_over_dtls(&net, client, &rep);
  assert_int_equal(coap_resource_observer_count(r), 1);
  /* The client goes away politely: close_notify. */
  assert_int_equal(simnet_node_restart(client), 0);
  set_psk(client->ctx);
  simnet_run_until(&net, net.now + 1000);
  assert_int_equal(coap_resource_observer_count(r), 0);
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.observers_removed, 2);
  /* Registered again, then restarted without a word (the close is lost):
   * its new handshake replaces the session and the observation. */
  register_over_dtls(&net, client, &rep);
  assert_int_equal(coap_resource_observer_count(r), 1);
  net.filter = drop_everything;
  assert_int_equal(simnet_node_restart(client), 0);
  net.filter = NULL;
  set_psk(client->ctx);
  sim_get(client, "coaps://10.0.0.1:5684/temp", &rep, 30000);
  assert_int_equal(rep.code, COAP_CONTENT);
  assert_int_equal(coap_resource_observer_count(r), 0);
  simnet_free(&net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_register_and_notify, setup, teardown),
      cmocka_unit_test_setup_teardown(test_handler_max_age, setup, teardown),
      cmocka_unit_test_setup_teardown(test_notify_from_put_handler, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reregister_and_deregister, setup, teardown),
      cmocka_unit_test_setup_teardown(test_plain_answers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_grouping_and_accept, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_groups, setup, teardown),
      cmocka_unit_test_setup_teardown(test_con_every_nth, setup, teardown),
      cmocka_unit_test_setup_teardown(test_con_interval, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rst_to_non_removes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rst_to_con_removes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_con_timeout_removes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_one_con_in_flight_latest_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_one_con_per_peer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unreachable_ends_peer_observations, setup, teardown),
      cmocka_unit_test_setup_teardown(test_con_retransmission_replaced, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_ends_observation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resource_removal_404, setup, teardown),
      cmocka_unit_test_setup_teardown(test_set_observable_off, setup, teardown),
      cmocka_unit_test_setup_teardown(test_zero_config_means_defaults, setup, teardown),
      cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_eviction_spares_observer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_notification, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_response, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stats_reassembly_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_token_non_gets_rst, setup, teardown),
      cmocka_unit_test_setup_teardown(test_memory_per_observation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_latest_state_under_loss, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dtls_session_end, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
