/* DTLS Connection ID (RFC 9146) between whole nodes on the simulated
 * network: negotiated by default and off from either side, records of
 * type 25 on the wire exactly in the directions that asked, a client whose
 * address changes keeps its session (no new handshake) and a large answer
 * still reaches it, forged records (replayed, unknown CID, bad tag, older
 * than the newest) move nothing, and a genuine record raced from a victim's
 * address gets the victim no more than 3 times the bytes it came with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <time.h>

#include "coaps/dtls.h"
#include "support_certs.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *client;
static int handler_calls;
static char big_body[1000];

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  handler_calls++;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "secure hello", 12);
}

static void big(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, big_body, sizeof big_body);
}

static coap_deferred_t *deferred;
static void slow(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                 coap_response_t *resp, void *user) {
  deferred = coap_request_defer(req, resp);
}

/* The wire: the type of every record of epoch >= 1 each way, and the
 * client's datagrams kept (with a switch to drop the next one). */
static unsigned cid_records[2], plain_records[2]; /* [0] client->server, [1] back */
static uint8_t kept[16][1500];
static size_t kept_len[16];
static unsigned n_kept;
static int drop_next_client_record;
static int drop_server_app_records; /* the next N server->client app records */
static int
    rebind_at_client_flight; /* move the client when it sends this flight (2: its Finished) */
static unsigned client_flights_seen;
static coap_address_t watched; /* bytes the server sends here */
static size_t bytes_to_watched;

/* The CID lengths on the records each way (the server's, the client's). */
static size_t cid_len_to[2] = {8, 0};

static void count_records(int dir, const uint8_t *data, size_t len) {
  for (size_t off = 0; off + 13 <= len;) {
    size_t hdr = data[off] == 25 ? 13 + cid_len_to[dir] : 13;
    if (off + hdr > len) return;
    if (data[off + 3] || data[off + 4]) { /* epoch 0 is the handshake's plaintext */
      if (data[off] == 25)
        cid_records[dir]++;
      else
        plain_records[dir]++;
    }
    off += hdr + ((size_t)data[off + hdr - 2] << 8 | data[off + hdr - 1]);
  }
}

static int wire(void *user, const simnet_node_t *from, const coap_address_t *to,
                const uint8_t *data, size_t len, unsigned seq) {
  int dir = from == server;
  if (dir && coap_address_equal(to, &watched)) bytes_to_watched += len;
  count_records(dir, data, len);
  if (len < 13 || (!data[3] && !data[4])) return 0;
  if (!dir && n_kept < 16) {
    memcpy(kept[n_kept], data, len);
    kept_len[n_kept++] = len;
  }
  if (!dir && rebind_at_client_flight && !data[3] && !data[4] && data[0] == 22 &&
      ++client_flights_seen == (unsigned)rebind_at_client_flight) {
    rebind_at_client_flight = 0;
    client->addr.addr.sin.sin_port = htons(40999); /* this datagram leaves from there */
  }
  if (dir && drop_server_app_records && data[0] == 23) {
    drop_server_app_records--;
    return 1;
  }
  if (!dir && drop_next_client_record && data[0] == 25) {
    drop_next_client_record = 0;
    return 1;
  }
  return 0;
}

static coap_dtls_context_t *psk(simnet_node_t *node) {
  coap_dtls_context_t *d = coap_dtls_new_context(node->ctx);
  assert_non_null(d);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16),
      0);
  assert_int_equal(coap_context_set_dtls_context(node->ctx, d), 0);
  return d;
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  coap_resource_set_handler(coap_resource_add(server->ctx, "hello"), COAP_GET, hello, NULL);
  coap_resource_set_handler(coap_resource_add(server->ctx, "big"), COAP_GET, big, NULL);
  coap_resource_set_handler(coap_resource_add(server->ctx, "slow"), COAP_GET, slow, NULL);
  deferred = NULL;
  memset(big_body, 'b', sizeof big_body);
  handler_calls = 0;
  memset(cid_records, 0, sizeof cid_records);
  memset(plain_records, 0, sizeof plain_records);
  n_kept = 0;
  cid_len_to[0] = 8;
  cid_len_to[1] = 0;
  drop_next_client_record = 0;
  drop_server_app_records = 0;
  rebind_at_client_flight = 0;
  client_flights_seen = 0;
  bytes_to_watched = 0;
  coap_address_from_string(&watched, "10.66.66.66", 6666);
  net.filter = wire;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  certs_cleanup();
  return 0;
}

static void get_ok(const char *path) {
  char uri[64];
  snprintf(uri, sizeof uri, "coaps://10.0.0.1/%s", path);
  sim_reply_t b;
  sim_get(client, uri, &b, 120000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
}

/* coap_dtls_last_cid tells of the last handshake, also one without CID. */
static void test_last_cid_is_the_last_handshakes(void **state) {
  psk(server);
  coap_dtls_context_t *cd = coap_dtls_context_ref(psk(client));
  get_ok("hello");
  coap_dtls_cid_info_t info;
  coap_dtls_last_cid(cd, &info);
  assert_true(info.negotiated);
  assert_int_equal(coap_dtls_set_cid(coap_context_dtls(server->ctx), 0, 0), 0);
  assert_int_equal(simnet_node_restart(client), 0);
  coap_context_set_dtls_context(client->ctx, cd);
  get_ok("hello");
  coap_dtls_last_cid(cd, &info);
  assert_false(info.negotiated);
  assert_int_equal(info.peer_len, 0);
}

static void rebind_client(uint16_t port) {
  client->addr.addr.sin.sin_port = htons(port);
}

static coap_dtls_cid_stats_t server_cid_stats(void) {
  coap_dtls_cid_stats_t st;
  assert_int_equal(coap_dtls_cid_stats(coap_context_dtls(server->ctx), &st), 0);
  return st;
}

static uint64_t server_handshakes(void) {
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  return st.dtls_handshakes;
}

static void test_negotiated_by_default(void **state) {
  psk(server);
  psk(client);
  get_ok("hello");
  coap_dtls_cid_info_t info;
  assert_int_equal(coap_dtls_last_cid(coap_context_dtls(client->ctx), &info), 0);
  assert_true(info.negotiated);
  assert_int_equal(info.own_len, 0);  /* the client asks for none of its own */
  assert_int_equal(info.peer_len, 8); /* the server's default */
  /* Client->server records carry the CID (the Finished too), the
   * server's to the client do not. */
  assert_true(cid_records[0] >= 2);
  assert_int_equal(plain_records[0], 0);
  assert_int_equal(cid_records[1], 0);
  assert_true(plain_records[1] >= 2);
  assert_int_equal(server_cid_stats().sessions, 1);
}

static void test_client_cid_both_directions(void **state) {
  psk(server);
  const uint8_t own[5] = {1, 2, 3, 4, 5};
  cid_len_to[1] = 5;
  assert_int_equal(coap_dtls_set_client_cid(psk(client), own, sizeof own), 0);
  get_ok("hello");
  coap_dtls_cid_info_t info;
  coap_dtls_last_cid(coap_context_dtls(client->ctx), &info);
  assert_true(info.negotiated);
  assert_int_equal(info.own_len, 5);
  assert_memory_equal(info.own, own, 5);
  assert_int_equal(plain_records[0] + plain_records[1], 0);
  assert_true(cid_records[1] >= 2);
}

static void off_case(int server_on, int client_on) {
  coap_dtls_context_t *sd = psk(server), *cd = psk(client);
  if (!server_on) assert_int_equal(coap_dtls_set_cid(sd, 0, 0), 0);
  if (!client_on) assert_int_equal(coap_dtls_set_cid(cd, 0, 0), 0);
  get_ok("hello");
  coap_dtls_cid_info_t info;
  coap_dtls_last_cid(cd, &info);
  assert_false(info.negotiated);
  assert_int_equal(cid_records[0] + cid_records[1], 0);
  assert_true(plain_records[0] >= 2);
  assert_int_equal(server_cid_stats().sessions, 0);
}

static void test_off_on_server(void **state) {
  off_case(0, 1);
}
static void test_off_on_client(void **state) {
  off_case(1, 0);
}

static void test_length_is_configurable(void **state) {
  assert_int_equal(coap_dtls_set_cid(psk(server), 1, 3), 0);
  psk(client);
  get_ok("hello");
  coap_dtls_cid_info_t info;
  coap_dtls_last_cid(coap_context_dtls(client->ctx), &info);
  assert_int_equal(info.peer_len, 3);
  assert_int_equal(coap_dtls_set_cid(coap_context_dtls(server->ctx), 1, 0), COAP_E_INVALID_ARG);
  assert_int_equal(coap_dtls_set_cid(coap_context_dtls(server->ctx), 1, 33), COAP_E_INVALID_ARG);
}

/* A worker's CIDs begin with its index (the kernel's steering program
 * reads that byte), also short ones; out-of-range indices are refused. */
static void worker_case(unsigned length, unsigned index) {
  coap_dtls_context_t *sd = psk(server);
  assert_int_equal(coap_dtls_set_cid(sd, 1, length), 0);
  assert_int_equal(coap_dtls_set_cid_worker(sd, index), 0);
  coap_dtls_context_t *cd = psk(client);
  for (int i = 0; i < 4; i++) { /* four handshakes: four random CIDs */
    if (i) {                    /* a new client context keeping the configuration */
      coap_dtls_context_ref(cd);
      assert_int_equal(simnet_node_restart(client), 0);
      assert_int_equal(coap_context_set_dtls_context(client->ctx, cd), 0);
    }
    get_ok("hello");
    coap_dtls_cid_info_t info;
    coap_dtls_last_cid(cd, &info);
    assert_true(info.negotiated);
    assert_int_equal(info.peer_len, length);
    assert_int_equal(info.peer[0], index);
  }
}

static void test_worker_index_leads_the_cid(void **state) {
  worker_case(8, 1);
  assert_int_equal(coap_dtls_set_cid_worker(NULL, 0), COAP_E_INVALID_ARG);
  assert_int_equal(coap_dtls_set_cid_worker(coap_context_dtls(server->ctx), 256),
                   COAP_E_INVALID_ARG);
}
static void test_worker_index_leads_a_short_cid(void **state) {
  worker_case(1, 7);
}

/* A node's CIDs carry its id in byte 1 after the worker index (the
 * balancer's map reads it), also 2-byte ones; out-of-range ids are
 * refused. */
static void node_case(unsigned length, unsigned node) {
  coap_dtls_context_t *sd = psk(server);
  assert_int_equal(coap_dtls_set_cid(sd, 1, length), 0);
  assert_int_equal(coap_dtls_set_cid_worker(sd, 1), 0);
  assert_int_equal(coap_dtls_set_cid_node(sd, node), 0);
  psk(client);
  get_ok("hello");
  coap_dtls_cid_info_t info;
  coap_dtls_last_cid(coap_context_dtls(client->ctx), &info);
  assert_true(info.negotiated);
  assert_int_equal(info.peer_len, length);
  assert_int_equal(info.peer[0], 1);
  assert_int_equal(info.peer[1], node);
}

static void test_node_id_follows_the_worker_index(void **state) {
  node_case(8, 200);
  assert_int_equal(coap_dtls_set_cid_node(NULL, 0), COAP_E_INVALID_ARG);
  assert_int_equal(coap_dtls_set_cid_node(coap_context_dtls(server->ctx), 256), COAP_E_INVALID_ARG);
}
static void test_node_id_in_a_short_cid(void **state) {
  node_case(2, 3);
}

static void test_resumed_handshake_keeps_cid(void **state) {
  psk(server);
  psk(client);
  get_ok("hello");
  /* The client restarts its context but keeps the configuration's session
   * cache: a second context with the same configuration resumes. */
  coap_dtls_context_t *cd = coap_context_dtls(client->ctx);
  coap_dtls_context_ref(cd);
  assert_int_equal(simnet_node_restart(client), 0);
  coap_context_set_dtls_context(client->ctx, cd);
  memset(cid_records, 0, sizeof cid_records);
  get_ok("hello");
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_resumed, 1);
  coap_dtls_cid_info_t info;
  coap_dtls_last_cid(cd, &info);
  assert_true(info.negotiated);
  assert_true(cid_records[0] >= 2);
  assert_int_equal(server_cid_stats().sessions, 2);
}

/* X.509 or raw public keys instead of a PSK: CID is negotiated the same
 * way, in the full handshake and in a resumed one, and a move works. */
static void certificate_mode_case(int rpk) {
  certs_dir();
  coap_dtls_context_t *sd = coap_dtls_new_context(server->ctx);
  coap_dtls_context_t *cd = coap_dtls_new_context(client->ctx);
  if (rpk) {
    char key[256], pub[256];
    certs_make_rpk("rpk-server", key, pub);
    assert_int_equal(coap_dtls_set_rpk(sd, key), 0);
    assert_int_equal(coap_dtls_add_trusted_rpk(cd, pub), 0);
  } else {
    test_ca_t ca;
    certs_make_ca(&ca, "cid CA", "ca.pem");
    char cert[256], key[256];
    time_t now = time(NULL);
    certs_issue(&ca, "server", "server", "10.0.0.1", NULL, now - 60, now + 86400, cert, key);
    assert_int_equal(coap_dtls_set_cert(sd, cert, key, NULL), 0);
    assert_int_equal(coap_dtls_set_ca(cd, ca.cert_path), 0);
    certs_free_ca(&ca);
  }
  coap_context_set_dtls_context(server->ctx, sd);
  coap_context_set_dtls_context(client->ctx, coap_dtls_context_ref(cd));
  get_ok("hello");
  coap_dtls_cid_info_t info;
  coap_dtls_last_cid(cd, &info);
  assert_true(info.negotiated);
  assert_true(cid_records[0] >= 2);
  rebind_client(41000);
  get_ok("hello");
  assert_int_equal(server_cid_stats().moves, 1);
  /* Resumed: a new client context on the same configuration. */
  assert_int_equal(simnet_node_restart(client), 0);
  coap_context_set_dtls_context(client->ctx, cd);
  get_ok("hello");
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_resumed, 1);
  coap_dtls_last_cid(cd, &info);
  assert_true(info.negotiated);
  assert_int_equal(server_cid_stats().sessions, 2);
}

static void test_x509(void **state) {
  certificate_mode_case(0);
}
static void test_raw_public_keys(void **state) {
  certificate_mode_case(1);
}

static uint64_t failures(simnet_node_t *node, coap_cause_t cause) {
  coap_stats_t st;
  coap_context_get_stats(node->ctx, &st);
  return st.failures_by_cause[cause];
}

/* Without CID (off on either side) a move is a stranger's record to the
 * server: counted and named as likely NAT rebinding, dropped; the client
 * notices the silence, handshakes again from its new address and is
 * answered — one handshake a move, never a key blamed. */
static void rebinding_without_cid_case(int off_on_server) {
  coap_dtls_context_t *sd = psk(server), *cd = psk(client);
  assert_int_equal(coap_dtls_set_cid(off_on_server ? sd : cd, 0, 0), 0);
  get_ok("hello");
  for (uint16_t port = 40001; port < 40004; port++) {
    rebind_client(port);
    get_ok("hello");
  }
  assert_int_equal(server_handshakes(), 4);
  assert_true(failures(server, COAP_CAUSE_NAT_REBINDING) >= 3);
  assert_int_equal(failures(client, COAP_CAUSE_SESSION_LOST), 3);
  assert_int_equal(failures(client, COAP_CAUSE_PSK_KEY_MISMATCH), 0);
  assert_int_equal(failures(server, COAP_CAUSE_PSK_KEY_MISMATCH), 0);
  assert_string_equal(coap_cause_name(COAP_CAUSE_NAT_REBINDING), "nat-rebinding");
}
static void test_rebinding_without_cid_on_server(void **state) {
  rebinding_without_cid_case(1);
}
static void test_rebinding_without_cid_on_client(void **state) {
  rebinding_without_cid_case(0);
}

/* Without CID, a move after the session was idle: the client starts a new
 * handshake beside the session once the first retransmission went
 * unanswered (the third send, at 3 to 4.5 ACK timeouts), not after
 * seven. */
static void test_rebinding_after_idle_handshakes_early(void **state) {
  psk(server);
  assert_int_equal(coap_dtls_set_cid(psk(client), 0, 0), 0);
  get_ok("hello");
  simnet_run_until(&net, net.now + 20000); /* idle: the NAT's binding expires */
  rebind_client(40001);
  uint64_t t0 = net.now;
  get_ok("hello");
  assert_true(net.now - t0 < 5 * 2000 + 1000); /* 7 ACK timeouts would be 14 s or more */
  assert_int_equal(server_handshakes(), 2);
  assert_int_equal(failures(client, COAP_CAUSE_SESSION_LOST), 1);
  assert_true(failures(server, COAP_CAUSE_NAT_REBINDING) >= 1);
}

/* Without CID, moves back to back (no idle gap: a NAT, or a device
 * switching networks, between two requests): on a path that has shown
 * itself clean (two answers without a resend on the session) each costs
 * one handshake, started beside the session once a request's first
 * retransmission went unanswered, not after 7 ACK timeouts; every request
 * is served once. */
static void test_back_to_back_rebinding_handshakes_early(void **state) {
  psk(server);
  assert_int_equal(coap_dtls_set_cid(psk(client), 0, 0), 0);
  for (int i = 0; i < 3; i++) get_ok("hello");
  int before = handler_calls;
  const unsigned moves = 6, per_move = 3;
  for (unsigned m = 1; m <= moves; m++) {
    rebind_client((uint16_t)(40000 + m));
    uint64_t t0 = net.now;
    get_ok("hello");
    assert_true(net.now - t0 < 5 * 2000 + 1000); /* 7 ACK timeouts would be 14 s or more */
    for (unsigned i = 1; i < per_move; i++) {
      t0 = net.now;
      get_ok("hello");
      assert_true(net.now - t0 < 1000); /* on the new session: no wait */
    }
  }
  assert_int_equal(handler_calls, before + (int)(moves * per_move));
  assert_int_equal(server_handshakes(), 1 + moves);
  assert_int_equal(failures(client, COAP_CAUSE_SESSION_LOST), moves);
  assert_int_equal(failures(client, COAP_CAUSE_PSK_KEY_MISMATCH), 0);
  assert_int_equal(failures(server, COAP_CAUSE_PSK_KEY_MISMATCH), 0);
}

/* The client's silence timer starts with a message that wants an answer,
 * never with an ACK of ours: here the ACK to a separate (CON) response.
 * It used to start there, at the server's last answer, so the next request
 * after 20 s of idleness looked 20 s unanswered at its first send and
 * replaced a working session at once. */
static void test_our_ack_starts_no_silence(void **state) {
  psk(server);
  assert_int_equal(coap_dtls_set_cid(psk(client), 0, 0), 0);
  sim_reply_t b;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/slow");
  sim_send(client, &o, &b);
  simnet_run_until(&net, net.now + 3000); /* handshake, request, empty ACK */
  assert_non_null(deferred);
  assert_false(b.done);
  coap_response_set_payload(coap_deferred_response(deferred), COAP_FORMAT_TEXT_PLAIN, "late", 4);
  assert_int_equal(coap_deferred_send(server->ctx, deferred), 0);
  assert_true(simnet_run_until_flag(&net, &b.done, 1000)); /* the client ACKs it */
  assert_int_equal(b.code, COAP_CONTENT);
  simnet_run_until(&net, net.now + 20000);
  get_ok("hello");
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_reconnects, 0);
  assert_int_equal(server_handshakes(), 1);
}

/* The same silence from loss (two answers lost, same address): the old
 * session answers the third send, the new handshake is abandoned after
 * its hello, and the session the server holds is kept: no reconnect, no
 * second handshake, nothing served twice. */
static void test_loss_after_idle_keeps_the_session(void **state) {
  psk(server);
  assert_int_equal(coap_dtls_set_cid(psk(client), 0, 0), 0);
  get_ok("hello");
  simnet_run_until(&net, net.now + 20000);
  drop_server_app_records = 2;
  int before = handler_calls;
  get_ok("hello");
  assert_int_equal(server_handshakes(), 1);
  assert_int_equal(failures(client, COAP_CAUSE_SESSION_LOST), 0);
  assert_int_equal(handler_calls, before + 1); /* deduplicated, served once */
  get_ok("hello");                             /* the session still works */
  assert_int_equal(server_handshakes(), 1);
}

/* The client's port changes between its handshake flights (a NAT that
 * rebinds mid-handshake; flight 2: the hello with the cookie, 3: the
 * key exchange and Finished), CID on and off: against our server the
 * request is answered and no key is blamed on either side. (Against
 * libcoap + Mbed TLS the first part saw psk-key-mismatch here: not
 * reproduced in the sim.) */
static void rebind_mid_handshake_case(int flight, int cid) {
  psk(server);
  if (!cid)
    assert_int_equal(coap_dtls_set_cid(psk(client), 0, 0), 0);
  else
    psk(client);
  rebind_at_client_flight = flight;
  sim_reply_t b;
  sim_get(client, "coaps://10.0.0.1/hello", &b, 120000);
  assert_int_equal(b.status, 0); /* our server: the client recovers */
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(failures(client, COAP_CAUSE_PSK_KEY_MISMATCH), 0);
  assert_int_equal(failures(client, COAP_CAUSE_PSK_UNKNOWN_IDENTITY), 0);
  assert_int_equal(failures(server, COAP_CAUSE_PSK_KEY_MISMATCH), 0);
}
static void test_rebind_mid_handshake(void **state) {
  for (int flight = 2; flight <= 3; flight++)
    for (int cid = 0; cid <= 1; cid++) {
      teardown(state);
      setup(state);
      rebind_mid_handshake_case(flight, cid);
    }
}

/* With CID nothing is counted as rebinding. */
static void test_rebinding_with_cid_is_no_failure(void **state) {
  psk(server);
  psk(client);
  get_ok("hello");
  rebind_client(40001);
  get_ok("hello");
  assert_int_equal(failures(server, COAP_CAUSE_NAT_REBINDING), 0);
  assert_int_equal(server_handshakes(), 1);
}

static void test_address_change_keeps_session(void **state) {
  psk(server);
  psk(client);
  get_ok("hello");
  for (uint16_t port = 40001; port < 40006; port++) {
    rebind_client(port);
    get_ok("hello");
  }
  /* A large answer right after a move: held at first (3x), then sent once
   * the client answered the server's ping from the new address. */
  rebind_client(40100);
  get_ok("big");
  assert_int_equal(server_handshakes(), 1);
  coap_dtls_cid_stats_t st = server_cid_stats();
  assert_int_equal(st.moves, 6);
  coap_stats_t s;
  coap_context_get_stats(server->ctx, &s);
  assert_int_equal(s.peers, 1);
  assert_int_equal(handler_calls, 6);
}

/* The NAT gives the client the address of another client's stale
 * session: the mover takes it, the stale peer is forgotten. */
static void test_move_onto_a_stale_peer(void **state) {
  psk(server);
  psk(client);
  simnet_node_t *other = simnet_add_node(&net, 40001, COAP_PROTO_DTLS, NULL);
  coap_dtls_context_t *od = coap_dtls_new_context(other->ctx);
  coap_dtls_set_psk(od, (const uint8_t *)"device-1", (const uint8_t *)"0123456789abcdef", 16);
  coap_context_set_dtls_context(other->ctx, od);
  get_ok("hello");
  sim_reply_t b;
  sim_get(other, "coaps://10.0.0.1/hello", &b, 60000);
  assert_int_equal(b.code, COAP_CONTENT);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.peers, 2);
  client->addr = other->addr; /* the client now comes from there (it is found first) */
  get_ok("hello");
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.peers, 1);
  assert_int_equal(server_cid_stats().moves, 1);
  get_ok("hello");
  assert_int_equal(server_handshakes(), 2);
}

/* A datagram the client sent, given to the server as if from |from|. */
static void inject(const uint8_t *data, size_t len, const coap_address_t *from) {
  coap_context_input(server->ctx, server->ep, from, data, len, net.now);
  simnet_run_until(&net, net.now + 5000);
}

static void test_forged_records_move_nothing(void **state) {
  psk(server);
  psk(client);
  get_ok("hello");
  get_ok("hello");
  assert_true(n_kept >= 2);
  const uint8_t *last = kept[n_kept - 1];
  size_t len = kept_len[n_kept - 1];
  assert_int_equal(last[0], 25);
  uint8_t forged[1500];
  /* Replayed from another address. */
  inject(last, len, &watched);
  /* An unknown CID. */
  memcpy(forged, last, len);
  forged[12] ^= 0x55;
  inject(forged, len, &watched);
  /* A bad tag. */
  memcpy(forged, last, len);
  forged[len - 1] ^= 0x01;
  inject(forged, len, &watched);
  /* A record of epoch 1 without the CID (its header cut out). */
  memcpy(forged, last, 11);
  forged[0] = 23;
  memcpy(forged + 11, last + 19, len - 19);
  inject(forged, len - 8, &watched);
  assert_int_equal(server_cid_stats().moves, 0);
  assert_int_equal(bytes_to_watched, 0);
  assert_int_equal(handler_calls, 2);
  coap_stats_t st;
  coap_context_get_stats(server->ctx, &st);
  assert_int_equal(st.peers, 1);
  get_ok("hello"); /* the session is fine */
  assert_int_equal(server_handshakes(), 1);
}

static void test_older_record_moves_nothing(void **state) {
  psk(server);
  psk(client);
  get_ok("hello");
  /* The next request's record is lost on the way (and kept here); the
   * client's retransmission, a newer record, gets through. */
  drop_next_client_record = 1;
  unsigned before = n_kept;
  get_ok("hello");
  const uint8_t *older = kept[before];
  size_t len = kept_len[before];
  /* The lost one, authentic but older than the newest, from elsewhere:
   * delivered (a duplicate to the message layer), but no move. */
  inject(older, len, &watched);
  assert_int_equal(server_cid_stats().moves, 0);
  assert_int_equal(bytes_to_watched, 0);
  get_ok("hello");
  assert_int_equal(server_handshakes(), 1);
}

static void test_move_to_victim_is_bounded(void **state) {
  psk(server);
  psk(client);
  get_ok("hello");
  /* An attacker on the path takes the client's next record before it
   * arrives and sends it first from a victim's address: it authenticates
   * and is newer, so the session moves there (RFC 9146 §6 cannot tell) —
   * but the victim, who never answers our ping, gets at most 3x the bytes
   * of that datagram, although the answer (1000 bytes) is far larger. */
  drop_next_client_record = 1;
  unsigned before = n_kept;
  sim_reply_t b;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/big");
  sim_send(client, &o, &b);
  simnet_run_until(&net, net.now + 10); /* the request went out and was taken */
  assert_int_equal(n_kept, before + 1);
  size_t len = kept_len[before];
  coap_context_input(server->ctx, server->ep, &watched, kept[before], len, net.now);
  simnet_run_until(&net, net.now + 100);
  assert_int_equal(server_cid_stats().moves, 1);
  assert_true(bytes_to_watched > 0); /* the ping, at least */
  assert_true(bytes_to_watched <= 3 * len);
  /* The client retransmits from its real address: a newer record moves
   * the session back, and the answer arrives. */
  assert_true(simnet_run_until_flag(&net, &b.done, 120000));
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(b.payload_len, sizeof big_body);
  assert_true(bytes_to_watched <= 3 * len);
  assert_int_equal(server_cid_stats().moves, 2);
  assert_true(server_cid_stats().held >= 1);
  assert_int_equal(server_handshakes(), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_negotiated_by_default, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_cid_both_directions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_off_on_server, setup, teardown),
      cmocka_unit_test_setup_teardown(test_off_on_client, setup, teardown),
      cmocka_unit_test_setup_teardown(test_length_is_configurable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resumed_handshake_keeps_cid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_index_leads_the_cid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_index_leads_a_short_cid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_node_id_follows_the_worker_index, setup, teardown),
      cmocka_unit_test_setup_teardown(test_node_id_in_a_short_cid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_last_cid_is_the_last_handshakes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_x509, setup, teardown),
      cmocka_unit_test_setup_teardown(test_raw_public_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_address_change_keeps_session, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rebinding_without_cid_on_server, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rebinding_without_cid_on_client, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rebinding_with_cid_is_no_failure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rebinding_after_idle_handshakes_early, setup, teardown),
      cmocka_unit_test_setup_teardown(test_back_to_back_rebinding_handshakes_early, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_our_ack_starts_no_silence, setup, teardown),
      cmocka_unit_test_setup_teardown(test_loss_after_idle_keeps_the_session, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rebind_mid_handshake, setup, teardown),
      cmocka_unit_test_setup_teardown(test_move_onto_a_stale_peer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_forged_records_move_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_older_record_moves_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_move_to_victim_is_bounded, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
