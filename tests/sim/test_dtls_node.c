/* coaps:// between whole nodes on the simulated network: handshake and
 * request, the stateless cookie under a ClientHello flood, garbage and
 * replayed records, failures with their reason, a client that restarts,
 * and credentials rejected when they are set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *client;
static int handler_calls;

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  handler_calls++;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "secure hello", 12);
}

/* Record what the network carries so tests can replay it. */
static uint8_t captured[8][1500];
static size_t captured_len[8];
static const simnet_node_t *captured_from[8];
static unsigned n_captured;

static int capture(void *user, const simnet_node_t *from, const coap_address_t *to,
                   const uint8_t *data, size_t len, unsigned seq) {
  if (n_captured < 8 && len <= sizeof captured[0]) {
    memcpy(captured[n_captured], data, len);
    captured_len[n_captured] = len;
    captured_from[n_captured++] = from;
  }
  return 0;
}

static void set_psk(coap_context_t *ctx, const char *id, const char *key) {
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  assert_non_null(d);
  assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)id, (const uint8_t *)key, strlen(key)), 0);
  assert_int_equal(coap_context_set_dtls_context(ctx, d), 0);
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  set_psk(server->ctx, "device-1", "0123456789abcdef");
  coap_resource_t *r = coap_resource_add(server->ctx, "hello");
  coap_resource_set_handler(r, COAP_GET, hello, NULL);
  handler_calls = 0;
  n_captured = 0;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

/* The server asks every new client for a cookie (not the default, which
 * lets PSK hellos in without one): for the tests of the exchange itself. */
static void server_cookie_always(void) {
  coap_dtls_context_t *d = coap_dtls_new_context(server->ctx);
  assert_non_null(d);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16),
      0);
  assert_int_equal(coap_dtls_set_cookie_policy(d, COAP_DTLS_COOKIE_ALWAYS, 0), 0);
  assert_int_equal(coap_context_set_dtls_context(server->ctx, d), 0);
}

static void get(sim_reply_t *b) {
  sim_get(client, "coaps://10.0.0.1/hello", b, 60000);
}

static void test_psk_request(void **state) {
  coap_dtls_context_t *sd = coap_dtls_new_context(server->ctx);
  coap_dtls_set_psk(sd, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16);
  assert_int_equal(coap_dtls_set_psk_hint(sd, "coaps-sim"), 0); /* a hint changes nothing */
  assert_int_equal(coap_dtls_set_cookie_policy(sd, COAP_DTLS_COOKIE_ALWAYS, 0), 0);
  coap_context_set_dtls_context(server->ctx, sd);
  set_psk(client->ctx, "device-1", "0123456789abcdef");
  net.filter = capture;
  sim_reply_t b;
  get(&b);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(handler_calls, 1);
  /* The first datagram is a ClientHello, answered by a HelloVerifyRequest
   * (handshake type 3) before the server keeps anything. */
  assert_true(n_captured >= 3);
  assert_ptr_equal(captured_from[0], client);
  assert_int_equal(captured[0][0], 22);
  assert_ptr_equal(captured_from[1], server);
  assert_int_equal(captured[1][13], 3);
}

static void test_client_hello_flood_leaves_no_state(void **state) {
  server_cookie_always();
  set_psk(client->ctx, "device-1", "0123456789abcdef");
  net.filter = capture;
  sim_reply_t b;
  get(&b); /* to capture a genuine first ClientHello */
  const uint8_t *hello_dgram = captured[0];
  size_t hello_len = captured_len[0];
  coap_stats_t before, after;
  coap_context_get_stats(server->ctx, &before);
  for (int i = 0; i < 500; i++) {
    coap_address_t spoofed;
    char host[32];
    snprintf(host, sizeof host, "10.1.%d.%d", i / 250, i % 250 + 1);
    coap_address_from_string(&spoofed, host, 50000);
    coap_context_input(server->ctx, server->ep, &spoofed, hello_dgram, hello_len, net.now);
  }
  coap_context_get_stats(server->ctx, &after);
  assert_int_equal(after.peers, before.peers);                     /* nothing kept per address */
  assert_int_equal(after.tx_datagrams - before.tx_datagrams, 500); /* one HVR each */
}

static void test_garbage_and_replay_are_dropped(void **state) {
  set_psk(client->ctx, "device-1", "0123456789abcdef");
  net.filter = capture;
  sim_reply_t b;
  get(&b);
  coap_stats_t before, after;
  coap_context_get_stats(server->ctx, &before);
  /* Garbage from a new address: no state, no answer. */
  coap_address_t stranger;
  coap_address_from_string(&stranger, "10.9.9.9", 1234);
  const uint8_t junk[] = {0x17, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 3, 1, 2, 3};
  coap_context_input(server->ctx, server->ep, &stranger, junk, sizeof junk, net.now);
  const uint8_t coap_get[] = {0x40, 0x01, 0x12, 0x34};
  coap_context_input(server->ctx, server->ep, &stranger, coap_get, sizeof coap_get, net.now);
  /* Every record the client sent, replayed on its session. */
  for (unsigned i = 0; i < n_captured; i++)
    if (captured_from[i] == client)
      coap_context_input(server->ctx, server->ep, &client->addr, captured[i], captured_len[i],
                         net.now);
  simnet_run_until(&net, net.now + 1000);
  coap_context_get_stats(server->ctx, &after);
  assert_int_equal(after.peers, before.peers);
  assert_int_equal(handler_calls, 1); /* the replayed request ran no handler */
}

static void test_unknown_identity_is_explained(void **state) {
  set_psk(client->ctx, "intruder", "0123456789abcdef");
  sim_reply_t b;
  get(&b);
  assert_int_equal(b.status, COAP_E_DTLS_HANDSHAKE);
  assert_non_null(strstr(b.detail, "PSK identity"));
  assert_int_equal(handler_calls, 0);
}

static void test_no_credentials_sends_nothing(void **state) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  sim_reply_t b = {0};
  assert_int_equal(coap_send_request(client->ctx, &o, sim_on_reply, &b, NULL),
                   COAP_E_DTLS_NO_CREDENTIALS);
  simnet_run_until(&net, net.now + 1000);
  assert_int_equal(net.delivered, 0);
}

static void test_restarted_client_gets_a_new_session(void **state) {
  set_psk(client->ctx, "device-1", "0123456789abcdef");
  sim_reply_t b;
  get(&b);
  assert_int_equal(b.code, COAP_CONTENT);
  /* The client process restarts: same address, no memory of the session;
   * its new ClientHello replaces the server's session (RFC 6347 §4.2.8). */
  assert_int_equal(simnet_node_restart(client), 0);
  set_psk(client->ctx, "device-1", "0123456789abcdef");
  get(&b);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(handler_calls, 2);
}

/* One forged datagram from an established client's address, a cookieless
 * ClientHello, must not end its session (RFC 6347 §4.2.8), whatever the
 * cookie policy: the server asks for a cookie (the forger never sees it)
 * and the client's next request is answered at once on its session. */
static void forged_hello_case(coap_dtls_cookie_policy_t policy) {
  coap_dtls_context_t *sd = coap_dtls_new_context(server->ctx);
  coap_dtls_set_psk(sd, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16);
  assert_int_equal(coap_dtls_set_cookie_policy(sd, policy, 0), 0);
  coap_context_set_dtls_context(server->ctx, sd);
  set_psk(client->ctx, "device-1", "0123456789abcdef");
  net.filter = capture;
  sim_reply_t b;
  get(&b);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(captured[0][13], 1); /* the client's first ClientHello */
  coap_stats_t before, after, client_st;
  coap_context_get_stats(server->ctx, &before);
  /* A copy of the session's own hello (a late resend, or replayed) is
   * ignored; hellos with another random are asked for a cookie. */
  coap_context_input(server->ctx, server->ep, &client->addr, captured[0], captured_len[0], net.now);
  for (int i = 0; i < 3; i++) {
    captured[0][13 + 12 + 2] += 0x5a; /* another client random each time */
    coap_context_input(server->ctx, server->ep, &client->addr, captured[0], captured_len[0],
                       net.now);
  }
  uint64_t t0 = net.now;
  get(&b);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_true(net.now - t0 <= 2 * net.latency_ms); /* one round trip: no handshake */
  coap_context_get_stats(server->ctx, &after);
  assert_int_equal(after.dtls_handshakes, before.dtls_handshakes);
  assert_int_equal(after.dtls_cookies_sent - before.dtls_cookies_sent, 3);
  coap_context_get_stats(client->ctx, &client_st);
  assert_int_equal(client_st.dtls_handshakes, 1);
  assert_int_equal(handler_calls, 2);
}

static void test_forged_hello_keeps_session(void **state) {
  forged_hello_case(COAP_DTLS_COOKIE_ALWAYS);
}
static void test_forged_hello_keeps_session_without_cookies(void **state) {
  forged_hello_case(COAP_DTLS_COOKIE_NEVER);
}

static int server_silenced;
static int silence_server(void *user, const simnet_node_t *from, const coap_address_t *to,
                          const uint8_t *data, size_t len, unsigned seq) {
  return server_silenced && from == server;
}

/* |crash|: the old server's close_notify never arrives. */
static void server_restart_case(int crash) {
  set_psk(client->ctx, "device-1", "0123456789abcdef");
  net.filter = silence_server;
  sim_reply_t b;
  get(&b);
  assert_int_equal(b.code, COAP_CONTENT);
  /* The server restarts: same address, new process, no sessions. */
  server_silenced = crash;
  assert_int_equal(simnet_node_restart(server), 0);
  server_silenced = 0;
  set_psk(server->ctx, "device-1", "0123456789abcdef");
  coap_resource_t *r = coap_resource_add(server->ctx, "hello");
  coap_resource_set_handler(r, COAP_GET, hello, NULL);
  get(&b);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 2); /* a new handshake carried it */
  assert_int_equal(handler_calls, 2);
  /* After a crash the client found out from the silence and says so (at
   * info level) and counts it; after a clean close it just reconnected. */
  assert_int_equal(st.dtls_reconnects, crash ? 1 : 0);
  assert_int_equal(st.failures_by_cause[COAP_CAUSE_SESSION_LOST], crash ? 1 : 0);
  assert_int_equal(st.dtls_failures, 0);
}

static void test_client_survives_server_restart(void **state) {
  server_restart_case(0);
}
static void test_client_survives_server_crash(void **state) {
  server_restart_case(1);
}

static void test_resumption_in_memory(void **state) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.peer_idle_ms = 5000; /* the client forgets the server quickly */
  simnet_node_t *c = simnet_add_node(&net, 40002, COAP_PROTO_DTLS, &cfg);
  client = c;
  set_psk(client->ctx, "device-1", "0123456789abcdef");
  sim_reply_t b;
  get(&b);
  assert_int_equal(b.code, COAP_CONTENT);
  simnet_run_until(&net, net.now + 400000); /* idle: session closed, peer gone */
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.peers, 0);
  get(&b);
  assert_int_equal(b.code, COAP_CONTENT);
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 2);
  assert_int_equal(st.dtls_resumed, 1); /* the second was abbreviated */
}

/* In an abbreviated handshake the client sends the last flight. Lose it:
 * the client must still answer the server's repeated flight, so it keeps
 * GnuTLS until the server's first reply shows the handshake is over, and
 * only then moves to exported keys. */
static unsigned client_ccs_dropped;
static int drop_client_ccs_once(void *user, const simnet_node_t *from, const coap_address_t *to,
                                const uint8_t *data, size_t len, unsigned seq) {
  if (from != client || client_ccs_dropped || len == 0 || data[0] != 20) return 0;
  client_ccs_dropped++;
  return 1;
}

static void test_resumption_with_last_flight_lost(void **state) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.peer_idle_ms = 5000;
  client = simnet_add_node(&net, 40003, COAP_PROTO_DTLS, &cfg);
  set_psk(client->ctx, "device-1", "0123456789abcdef");
  sim_reply_t b;
  get(&b);
  assert_int_equal(b.code, COAP_CONTENT);
  simnet_run_until(&net, net.now + 400000);
  client_ccs_dropped = 0;
  net.filter = drop_client_ccs_once;
  get(&b);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(client_ccs_dropped, 1);
  get(&b); /* on the exported keys now */
  assert_int_equal(b.code, COAP_CONTENT);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_resumed, 1);
  assert_int_equal(st.dtls_failures, 0);
  assert_int_equal(st.dtls_compacted, 2); /* each session, after its first reply */
}

static void test_resumption_across_restart(void **state) {
  char path[] = "/tmp/coaps-session-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  unlink(path); /* the first run finds no file */
  for (int run = 0; run < 2; run++) {
    if (run) assert_int_equal(simnet_node_restart(client), 0);
    coap_dtls_context_t *d = coap_dtls_new_context(client->ctx);
    coap_dtls_set_psk(d, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16);
    assert_int_equal(coap_dtls_set_session_file(d, path), 0);
    coap_context_set_dtls_context(client->ctx, d);
    sim_reply_t b;
    get(&b);
    assert_int_equal(b.code, COAP_CONTENT);
  }
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_resumed, 1);
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_resumed, 1);
  unlink(path);
}

/* Server answers to the first client never arrive after the cookie: its
 * handshake stays in progress on the server. */
static const simnet_node_t *stalled;
static int stall_first_client(void *user, const simnet_node_t *from, const coap_address_t *to,
                              const uint8_t *data, size_t len, unsigned seq) {
  if (from == server && coap_address_equal(to, &stalled->addr) && data[13] != 3) return 1;
  return 0;
}

/* One place for handshakes in progress, the first client's stalled in it.
 * |policy| ALWAYS: the second client, verified by its cookie, takes the
 * place (the stalled one is ended); NEVER: an unverified newcomer evicts
 * nobody and is turned away. */
static void bounded_case(coap_dtls_cookie_policy_t policy) {
  coap_dtls_context_t *d = coap_dtls_new_context(server->ctx);
  coap_dtls_set_psk(d, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16);
  assert_int_equal(coap_dtls_set_max_handshakes(d, 1), 0);
  assert_int_equal(coap_dtls_set_cookie_policy(d, policy, 0), 0);
  coap_context_set_dtls_context(server->ctx, d);
  set_psk(client->ctx, "device-1", "0123456789abcdef");
  simnet_node_t *second = simnet_add_node(&net, 40003, COAP_PROTO_DTLS, NULL);
  set_psk(second->ctx, "device-1", "0123456789abcdef");
  stalled = client;
  net.filter = stall_first_client;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  static sim_reply_t a, b; /* answered (cancelled) at teardown */
  sim_send(client, &o, &a);
  simnet_run_until(&net, net.now + 100);
  sim_send(second, &o, &b);
  simnet_run_until(&net, net.now + 1000);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  if (policy == COAP_DTLS_COOKIE_ALWAYS) {
    assert_true(b.done);
    assert_int_equal(b.code, COAP_CONTENT);
    assert_int_equal(st.dtls_half_open_evicted, 1);
    assert_int_equal(st.dtls_refused, 0);
  } else {
    assert_false(b.done);
    assert_true(st.dtls_refused >= 1);
    assert_int_equal(st.dtls_half_open_evicted, 0);
  }
}

static void test_full_handshake_table_makes_room_for_verified(void **state) {
  bounded_case(COAP_DTLS_COOKIE_ALWAYS);
}
static void test_full_handshake_table_refuses_unverified(void **state) {
  bounded_case(COAP_DTLS_COOKIE_NEVER);
}

static int lookup_device_key(void *user, const char *identity, uint8_t *key, size_t cap) {
  (*(int *)user)++;
  if (strncmp(identity, "dyn-", 4) != 0 || cap < 8) return -1;
  memcpy(key, "dyn-key!", 8);
  return 8;
}

static void test_psk_lookup_callback(void **state) {
  int lookups = 0;
  coap_dtls_context_t *d = coap_dtls_new_context(server->ctx);
  assert_int_equal(coap_dtls_set_psk_lookup(d, lookup_device_key, &lookups), 0);
  assert_true(coap_dtls_can_serve(d));
  coap_context_set_dtls_context(server->ctx, d);
  set_psk(client->ctx, "dyn-42", "dyn-key!");
  sim_reply_t b;
  get(&b);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_true(lookups >= 1);
  assert_int_equal(simnet_node_restart(client), 0);
  set_psk(client->ctx, "static-1", "dyn-key!");
  get(&b);
  assert_int_equal(b.status, COAP_E_DTLS_HANDSHAKE);
}

/* Write a fresh EC P-256 private key as PEM to |path|. */
static void write_p256_key(const char *path) {
  gnutls_x509_privkey_t key;
  gnutls_datum_t pem;
  assert_int_equal(gnutls_x509_privkey_init(&key), 0);
  assert_int_equal(gnutls_x509_privkey_generate(
                       key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                   0);
  assert_int_equal(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &pem), 0);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(pem.data, 1, pem.size, f), pem.size);
  fclose(f);
  gnutls_free(pem.data);
  gnutls_x509_privkey_deinit(key);
}

typedef struct rpk_seen {
  int calls, accept;
  char fingerprint[128];
} rpk_seen_t;

static int decide_rpk(void *user, const uint8_t *spki, size_t len, const char *fp) {
  rpk_seen_t *seen = user;
  seen->calls++;
  snprintf(seen->fingerprint, sizeof seen->fingerprint, "%s", fp);
  return seen->accept;
}

static void rpk_callback_case(int accept) {
  char path[] = "/tmp/coaps-rpk-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  write_p256_key(path);
  coap_dtls_context_t *sd = coap_dtls_new_context(server->ctx);
  assert_int_equal(coap_dtls_set_rpk(sd, path), 0);
  unlink(path);
  char server_fp[128];
  assert_int_equal(coap_dtls_rpk_fingerprint(sd, server_fp, sizeof server_fp), 0);
  coap_context_set_dtls_context(server->ctx, sd);
  rpk_seen_t seen = {.accept = accept};
  coap_dtls_context_t *cd = coap_dtls_new_context(client->ctx);
  assert_int_equal(coap_dtls_set_rpk_verify(cd, decide_rpk, &seen), 0);
  assert_true(coap_dtls_can_connect(cd));
  coap_context_set_dtls_context(client->ctx, cd);
  sim_reply_t b;
  get(&b);
  assert_int_equal(seen.calls, 1);
  assert_string_equal(seen.fingerprint, server_fp); /* the callback saw the server's key */
  if (accept) {
    assert_int_equal(b.code, COAP_CONTENT);
  } else {
    assert_int_equal(b.status, COAP_E_DTLS_HANDSHAKE);
    assert_non_null(strstr(b.detail, server_fp));
  }
}

static void test_rpk_verify_callback_accepts(void **state) {
  rpk_callback_case(1);
}
static void test_rpk_verify_callback_refuses(void **state) {
  rpk_callback_case(0);
}

static simnet_node_t *half_open;
static unsigned half_open_sent;

static int capture_but_stall(void *user, const simnet_node_t *from, const coap_address_t *to,
                             const uint8_t *data, size_t len, unsigned seq) {
  if (from == half_open && half_open_sent++ > 0) return 1;
  return capture(user, from, to, data, len, seq);
}

static void cookie_policy(coap_dtls_cookie_policy_t policy, unsigned load) {
  coap_dtls_context_t *sd = coap_dtls_new_context(server->ctx);
  coap_dtls_set_psk(sd, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16);
  assert_int_equal(coap_dtls_set_cookie_policy(sd, policy, load), 0);
  coap_context_set_dtls_context(server->ctx, sd);
  set_psk(client->ctx, "device-1", "0123456789abcdef");
  net.filter = capture;
}

/* Not flooded: the server answers the first ClientHello with its
 * ServerHello, a round trip less; with a handshake in progress (the
 * threshold here is 1) the next client is asked for a cookie. */
static void test_cookie_only_under_load(void **state) {
  cookie_policy(COAP_DTLS_COOKIE_UNDER_LOAD, 1);
  sim_reply_t b;
  get(&b);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_ptr_equal(captured_from[1], server);
  assert_int_equal(captured[1][13], 2); /* ServerHello, no HelloVerifyRequest */
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_cookies_sent, 0);
  /* Another client whose handshake goes no further than its hello: one
   * handshake in progress on the server. */
  half_open = simnet_add_node(&net, 40001, COAP_PROTO_DTLS, NULL);
  set_psk(half_open->ctx, "device-1", "0123456789abcdef");
  net.filter = capture_but_stall;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
  static sim_reply_t never; /* answered (cancelled) at teardown */
  half_open_sent = 0;
  sim_send(half_open, &o, &never);
  simnet_run_until(&net, net.now + 100);
  assert_int_equal(simnet_node_restart(client), 0);
  set_psk(client->ctx, "device-1", "0123456789abcdef");
  n_captured = 0;
  get(&b);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(captured[1][13], 3); /* HelloVerifyRequest now */
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_cookies_sent, 1);
}

static void test_cookie_never(void **state) {
  cookie_policy(COAP_DTLS_COOKIE_NEVER, 0);
  sim_reply_t b;
  get(&b);
  assert_int_equal(b.code, COAP_CONTENT);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.dtls_cookies_sent, 0);
  assert_int_equal(st.dtls_handshakes, 1);
}

static void test_bad_credentials_fail_when_set(void **state) {
  coap_dtls_context_t *d = coap_dtls_context_new();
  assert_non_null(d);
  assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)"id", (const uint8_t *)"", 0),
                   COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(coap_dtls_context_last_error(d), "empty"));
  assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)"", (const uint8_t *)"k", 1),
                   COAP_E_DTLS_CREDENTIALS);
  assert_int_equal(coap_dtls_set_psk_hex(d, "id", "abc"), COAP_E_DTLS_CREDENTIALS);
  assert_int_equal(coap_dtls_set_psk_hex(d, "id", "zz"), COAP_E_DTLS_CREDENTIALS);
  assert_int_equal(coap_dtls_set_ca(d, "/nonexistent/ca.pem"), COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(coap_dtls_context_last_error(d), "/nonexistent/ca.pem"));
  char path[] = "/tmp/coaps-test-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "not a certificate\n", 18), 18);
  close(fd);
  assert_int_equal(coap_dtls_set_ca(d, path), COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(coap_dtls_context_last_error(d), path));
  assert_int_equal(coap_dtls_set_cert(d, path, path, NULL), COAP_E_DTLS_CREDENTIALS);
  assert_int_equal(coap_dtls_set_priority(d, "NORMAL:+NONSENSE"), COAP_E_DTLS_CREDENTIALS);
  unlink(path);
  assert_false(coap_dtls_can_connect(d));
  assert_int_equal(coap_dtls_set_psk_hex(d, "id", "00ff"), 0);
  assert_true(coap_dtls_can_connect(d));
  assert_true(coap_dtls_can_serve(d));
  coap_dtls_context_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_psk_request, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_hello_flood_leaves_no_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_garbage_and_replay_are_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_identity_is_explained, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_credentials_sends_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restarted_client_gets_a_new_session, setup, teardown),
      cmocka_unit_test_setup_teardown(test_forged_hello_keeps_session, setup, teardown),
      cmocka_unit_test_setup_teardown(test_forged_hello_keeps_session_without_cookies, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_survives_server_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_survives_server_crash, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resumption_in_memory, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resumption_with_last_flight_lost, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resumption_across_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_full_handshake_table_makes_room_for_verified, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_full_handshake_table_refuses_unverified, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_psk_lookup_callback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rpk_verify_callback_accepts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cookie_only_under_load, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cookie_never, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rpk_verify_callback_refuses, setup, teardown),
      cmocka_unit_test(test_bad_credentials_fail_when_set),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
