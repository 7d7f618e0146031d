/* A DTLS handshake whose timer cannot be armed (the timer heap cannot
 * grow: memory ran out) must not start: without its timer it would never
 * time out, and a server's half-open handshake would hold its place in
 * the table of handshakes in progress for ever. The heap of one context is
 * filled so that exactly the timers armed before the handshake's own find
 * room (as tests/sim/test_timer_nomem.c does, its grow hook failing as
 * realloc does without memory). The server then drops the ClientHello
 * (nothing kept, no handshake counted as in progress, even when the client
 * goes silent); a client's request ends with COAP_E_NOMEM and leaves no
 * DTLS state. Once the heap may grow again, the same exchange succeeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/timer.h"
#include "context/context_internal.h"
#include "coaps/credentials.h"
#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *client;
static int client_silent; /* the client's datagrams are lost */
static int server_silent; /* the server's */

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  (void)ctx, (void)res, (void)req, (void)user;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

static int drop_silent(void *user, const simnet_node_t *from, const coap_address_t *to,
                       const uint8_t *data, size_t len, unsigned seq) {
  (void)user, (void)to, (void)data, (void)len, (void)seq;
  return (client_silent && from == client) || (server_silent && from == server);
}

/* ---- a heap with |room| free slots that cannot grow ---- */

#define FILLERS_MAX 4096
static coap_timer_t fillers[FILLERS_MAX];
static size_t n_fillers;
static coap_timer_heap_t *starved;
static unsigned refused;

static void never(coap_timer_t *t, uint64_t now, void *user) {
  (void)t, (void)now, (void)user;
  fail_msg("a filler timer fired");
}

static void *no_memory(void *items, size_t bytes) {
  (void)items, (void)bytes;
  refused++;
  return NULL;
}

static void starve(coap_context_t *ctx, size_t room) {
  coap_timer_heap_t *h = &ctx->timers;
  while (h->cap == 0 || h->len < h->cap) {
    assert_true(n_fillers < FILLERS_MAX);
    coap_timer_t *t = &fillers[n_fillers++];
    coap_timer_init(t, never, NULL);
    assert_int_equal(coap_timer_arm(h, t, UINT64_MAX - 1), 0);
  }
  assert_true(n_fillers >= room);
  for (size_t i = 0; i < room; i++) coap_timer_cancel(h, &fillers[--n_fillers]);
  h->grow = no_memory;
  starved = h;
  refused = 0;
}

static void feed(void) {
  if (!starved) return;
  starved->grow = NULL;
  for (size_t i = 0; i < n_fillers; i++) coap_timer_cancel(starved, &fillers[i]);
  n_fillers = 0;
  starved = NULL;
}

/* ---- setup ---- */

static void set_psk(coap_context_t *ctx, coap_dtls_cookie_policy_t policy) {
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  assert_non_null(d);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16),
      0);
  assert_int_equal(coap_dtls_set_cookie_policy(d, policy, 0), 0);
  assert_int_equal(coap_context_set_dtls_context(ctx, d), 0);
}

static int setup(void **state) {
  (void)state;
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  assert_non_null(server);
  assert_non_null(client);
  /* Always a cookie: the server keeps nothing for the first hello, and
   * arms exactly two timers for the second (the peer's idle timer, then
   * the handshake's). */
  set_psk(server->ctx, COAP_DTLS_COOKIE_ALWAYS);
  set_psk(client->ctx, COAP_DTLS_COOKIE_ALWAYS);
  coap_resource_set_handler(coap_resource_add(server->ctx, "hello"), COAP_GET, hello, NULL);
  client_silent = server_silent = 0;
  net.filter = drop_silent;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  feed();
  simnet_free(&net);
  return 0;
}

/* DTLS state the context holds: sessions (or handshakes) on its peers. */
static unsigned sessions_held(coap_context_t *ctx) {
  unsigned n = 0;
  for (coap_peer_t *p = coap_peer_table_oldest(&ctx->peers); p; p = coap_peer_newer(p))
    n += p->security != NULL;
  return n;
}

static void get_ok(void) {
  sim_reply_t rep;
  sim_get(client, "coaps://10.0.0.1/hello", &rep, 120000);
  assert_int_equal(rep.status, 0);
  assert_int_equal(rep.code, COAP_CONTENT);
}

/* ---- the server ---- */

static void test_server_drops_hello_without_timer(void **state) {
  (void)state;
  /* Room for the new peer's idle timer only. */
  starve(server->ctx, 1);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  sim_reply_t rep;
  sim_send(client, &o, &rep);
  /* Hello, HelloVerifyRequest, hello with the cookie: 3 one-way trips. */
  simnet_run_until(&net, net.now + 3 * net.latency_ms + 1);
  assert_true(refused > 0);
  assert_int_equal(server->ctx->handshakes_in_progress, 0);
  assert_int_equal(sessions_held(server->ctx), 0);
  /* The client goes away: a handshake left without a timer would stay in
   * progress for ever; there is none. */
  client_silent = 1;
  simnet_run_until(&net, net.now + 600000);
  assert_int_equal(rep.calls, 1);
  assert_int_not_equal(rep.status, 0);
  assert_int_equal(server->ctx->handshakes_in_progress, 0);
  assert_int_equal(sessions_held(server->ctx), 0);
  /* Memory back: the same client gets through. */
  feed();
  client_silent = 0;
  get_ok();
  assert_int_equal(sessions_held(server->ctx), 1);
}

/* ---- the client ---- */

static unsigned handshakes_held(coap_context_t *ctx) {
  unsigned n = 0;
  for (coap_peer_t *p = coap_peer_table_oldest(&ctx->peers); p; p = coap_peer_newer(p))
    n += p->security && coap_secure_handshaking(p);
  return n;
}

/* Whichever of the client's timers is the first one refused (the peer's
 * idle timer, the handshake's, the request's deadline, ...), the request
 * is refused or ends, and no handshake is left that nothing would end:
 * with the server silent, none is still in progress ten minutes later.
 * (Before the fix, a refused handshake timer left its hello sent and the
 * handshake waiting for ever.) */
static void test_client_request_ends_cleanly(void **state) {
  (void)state;
  int handshake_refused = 0;
  for (size_t room = 0; room < 5; room++) {
    server_silent = 1;
    starve(client->ctx, room);
    coap_request_opts_t o;
    coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
    sim_reply_t rep;
    sim_reply_reset(&rep);
    int rc = coap_send_request(client->ctx, &o, sim_on_reply, &rep, NULL);
    if (rc == COAP_E_NOMEM && client->ctx->peers.count && !sessions_held(client->ctx))
      handshake_refused = 1; /* the peer got its timer, the handshake did not */
    simnet_run_until(&net, net.now + 600000);
    if (rc == 0) assert_int_equal(rep.calls, 1);
    assert_int_equal(handshakes_held(client->ctx), 0);
    feed();
    server_silent = 0;
    get_ok();
    /* The session just made goes, so that the next round handshakes. */
    coap_context_end_sessions(client->ctx, NULL, NULL);
    simnet_run_until(&net, net.now + 1000);
  }
  assert_true(handshake_refused);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_server_drops_hello_without_timer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_request_ends_cleanly, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
