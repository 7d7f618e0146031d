/* Half-open handshakes under attack: an attacker who receives cookies at
 * its addresses completes the cookie exchange, so each of its hellos
 * starts a real handshake on the server, and then goes silent. Before,
 * each held one of the server's places for the whole 30 s handshake
 * timeout, and 17 such hellos a second kept every new client out. Here
 * legitimate PSK clients must still complete at least 95 % of their
 * handshakes in their normal time, against many attacking hosts and
 * against one host with many ports while clients are far away. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *client;

/* What the server sent last to an address with no node: the attacker's
 * HelloVerifyRequest. */
static uint8_t to_attacker[1500];
static size_t to_attacker_len;
static uint8_t first_hello[1500];
static size_t first_hello_len;
static int capture_first_hello;

static int watch(void *user, const simnet_node_t *from, const coap_address_t *to,
                 const uint8_t *data, size_t len, unsigned seq) {
  if (capture_first_hello && from == client && !first_hello_len && len <= 1500) {
    memcpy(first_hello, data, len);
    first_hello_len = len;
  }
  if (from == server && !coap_address_equal(to, &client->addr) && len <= 1500) {
    memcpy(to_attacker, data, len);
    to_attacker_len = len;
  }
  return 0;
}

static void hi(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
               coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

static void set_psk(coap_context_t *ctx) {
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  assert_non_null(d);
  assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)"dev", (const uint8_t *)"k3y", 3), 0);
  assert_int_equal(coap_context_set_dtls_context(ctx, d), 0);
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  set_psk(server->ctx);
  /* The attacker here completes cookie exchanges: every hello is asked
   * for one (the default lets PSK hellos in without). */
  assert_int_equal(
      coap_dtls_set_cookie_policy(coap_context_dtls(server->ctx), COAP_DTLS_COOKIE_ALWAYS, 0), 0);
  set_psk(client->ctx);
  coap_resource_set_handler(coap_resource_add(server->ctx, "hi"), COAP_GET, hi, NULL);
  net.filter = watch;
  /* A genuine first ClientHello (no cookie), the attacker's template. */
  first_hello_len = 0;
  capture_first_hello = 1;
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hi", &b, 10000);
  capture_first_hello = 0;
  assert_int_equal(b.code, COAP_CONTENT);
  assert_true(first_hello_len > 0);
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

#define REC 13 /* record header */
#define HS 12  /* handshake header */

static void put24(uint8_t *p, size_t v) {
  p[0] = (uint8_t)(v >> 16);
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)v;
}

/* The attacker's cookie exchange from |from|: the template hello, the
 * server's HelloVerifyRequest, and the hello again with that cookie (and
 * the next sequence numbers, as a real client sends it). */
static void verified_hello_from(const coap_address_t *from) {
  to_attacker_len = 0;
  coap_context_input(server->ctx, server->ep, from, first_hello, first_hello_len, net.now);
  assert_true(to_attacker_len > REC + HS + 3);
  assert_int_equal(to_attacker[REC], 3); /* HelloVerifyRequest */
  const uint8_t *cookie = to_attacker + REC + HS + 3;
  size_t cookie_len = to_attacker[REC + HS + 2];
  size_t sid_at = REC + HS + 2 + 32;
  size_t cookie_at = sid_at + 1 + first_hello[sid_at];
  assert_int_equal(first_hello[cookie_at], 0);
  uint8_t h[1600];
  size_t n = 0;
  memcpy(h, first_hello, cookie_at);
  n = cookie_at;
  h[n++] = (uint8_t)cookie_len;
  memcpy(h + n, cookie, cookie_len);
  n += cookie_len;
  memcpy(h + n, first_hello + cookie_at + 1, first_hello_len - cookie_at - 1);
  n += first_hello_len - cookie_at - 1;
  h[10] = 1;      /* record sequence number */
  h[REC + 5] = 1; /* handshake message_seq */
  size_t body = n - REC - HS;
  put24(h + REC + 1, body); /* length */
  put24(h + REC + 9, body); /* fragment length */
  h[11] = (uint8_t)((n - REC) >> 8);
  h[12] = (uint8_t)(n - REC);
  to_attacker_len = 0;
  coap_context_input(server->ctx, server->ep, from, h, n, net.now);
  /* The server answered with its hello flight: a handshake began. */
  assert_true(to_attacker_len > 0);
  assert_int_equal(to_attacker[REC], 2); /* ServerHello */
}

typedef struct attack {
  unsigned per_second;
  int one_host; /* all from 10.50.0.1, a new port each */
  unsigned counter;
} attack_t;

static void attack_step(attack_t *a) {
  coap_address_t from;
  char host[32];
  unsigned i = a->counter++;
  if (a->one_host)
    snprintf(host, sizeof host, "10.50.0.1");
  else
    snprintf(host, sizeof host, "10.50.%u.%u", (i / 250) % 250, i % 250 + 1);
  coap_address_from_string(&from, host, (uint16_t)(1024 + i % 60000));
  verified_hello_from(&from);
}

/* Legitimate clients, a fresh one every |every_ms|, each given |limit_ms|
 * for handshake and GET, while the attack runs at its rate. */
static void run(attack_t *a, unsigned clients, uint64_t every_ms, uint64_t limit_ms, unsigned *ok) {
  *ok = 0;
  uint64_t step = 1000 / a->per_second;
  for (unsigned c = 0; c < clients; c++) {
    assert_int_equal(simnet_node_restart(client), 0);
    set_psk(client->ctx);
    coap_request_opts_t o;
    coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hi");
    sim_reply_t b;
    sim_send(client, &o, &b);
    uint64_t start = net.now;
    while (net.now < start + every_ms) {
      attack_step(a);
      simnet_run_until(&net, net.now + step);
      if (b.done && net.now >= start + limit_ms) break;
    }
    if (b.done && b.code == COAP_CONTENT && net.now - start <= every_ms) (*ok)++;
    if (!b.done) simnet_run_until_flag(&net, &b.done, 60000);
  }
}

/* 20 verified hellos a second from many hosts, for 80 s: the attack of
 * the report, past the point where all 256 places are taken. */
static void test_flood_from_many_hosts(void **state) {
  attack_t a = {.per_second = 20};
  unsigned ok;
  run(&a, 40, 2000, 2000, &ok);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  printf(
      "many hosts, 20 verified hellos/s: %u of 40 clients served within 2 s; "
      "%llu unfinished handshakes ended to make room, %llu hellos refused\n",
      ok, (unsigned long long)st.dtls_half_open_evicted, (unsigned long long)st.dtls_refused);
  assert_true(a.counter > 256); /* the table did fill */
  assert_true(st.dtls_half_open_evicted > 0);
  assert_true(ok * 100 >= 40 * 95);
}

/* One host, 500 verified hellos a second from new ports, and clients 300
 * ms away (their handshake is in progress on the server for a round trip,
 * 0.6 s): the 256 places turn over every 0.5 s, so without a share per
 * host the attacker would end every client's handshake before it
 * finished. */
static void test_flood_from_one_host_with_far_clients(void **state) {
  net.latency_ms = 300;
  attack_t a = {.per_second = 500, .one_host = 1};
  unsigned ok;
  run(&a, 20, 4000, 4000, &ok);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  printf(
      "one host, 500 verified hellos/s, clients 300 ms away: %u of 20 served within "
      "4 s; %llu unfinished handshakes ended\n",
      ok, (unsigned long long)st.dtls_half_open_evicted);
  assert_true(st.dtls_half_open_evicted > 0);
  assert_true(ok * 100 >= 20 * 95);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_flood_from_many_hosts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_flood_from_one_host_with_far_clients, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
