/* The client's Q-Block2 (RFC 9177) against answers that cannot make one
 * body, from a server written here by hand (a simnet filter that answers
 * the first GET with a scripted burst of NON blocks and is silent after;
 * the server node's own context never sees a datagram): a last block (M=0) naming fewer blocks
 * than came already, a block that came with M=1 coming again as the last,
 * two last blocks of different numbers, Size2's last block with M=1, a
 * block past Size2's count, a block size changed mid-transfer, an ETag
 * that keeps changing. Each ends with COAP_E_BLOCKWISE and a detail that
 * names what disagreed, at once (well within one NON_RECEIVE_TIMEOUT of
 * virtual time), never by running out of waits (COAP_E_TIMEOUT after a
 * minute) and never as a shorter body handed over as whole. A consistent
 * script first shows that the hand-made server is understood. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "coaps/context.h"
#include "context/context_internal.h"
#include "support_reply.h"
#include "support_simnet.h"
#include "coaps/wire.h"

static simnet_t net;
static simnet_node_t *client, *server;

/* ---- the hand-made server ---- */

#define SCRIPT_MAX 16

typedef struct step {
  uint32_t num;
  uint8_t more, szx;
  uint16_t len; /* payload bytes */
} step_t;

static struct {
  step_t script[SCRIPT_MAX];
  size_t n;
  long size2;        /* >= 0: every block carries Size2 */
  int answer_all;    /* every GET gets the burst (else the first only) */
  int etag_each;     /* the ETag changes with every request answered */
  uint8_t etag;      /* the ETag sent (when etag_each, the request count) */
  unsigned requests; /* GETs answered */
  uint16_t next_mid;
} srv;

static void deliver(const uint8_t *data, size_t len) {
  assert_true(net.queued < SIMNET_MAX_QUEUE && len <= sizeof net.queue[0].data);
  size_t i = net.queued++;
  net.queue[i].at = net.now + net.latency_ms;
  net.queue[i].to = client;
  net.queue[i].from = server->addr;
  net.queue[i].dst = client->addr;
  net.queue[i].len = len;
  memcpy(net.queue[i].data, data, len);
}

static uint8_t content[1024];

static void send_step(const coap_msg_t *req, const step_t *st) {
  coap_msg_t resp;
  coap_msg_init(&resp, COAP_TYPE_NON, COAP_CONTENT, srv.next_mid++);
  coap_msg_set_token(&resp, req->token, req->token_len);
  assert_int_equal(coap_msg_add_option(&resp, COAP_OPTION_ETAG, &srv.etag, 1), 0);
  coap_block_t b = {.num = st->num, .more = st->more, .szx = st->szx};
  assert_int_equal(coap_msg_add_block(&resp, COAP_OPTION_Q_BLOCK2, &b), 0);
  if (srv.size2 >= 0)
    assert_int_equal(coap_msg_add_uint(&resp, COAP_OPTION_SIZE2, (uint32_t)srv.size2), 0);
  coap_msg_set_payload(&resp, content, st->len);
  uint8_t out[1500];
  int n = coap_msg_encode(&resp, out, sizeof out);
  assert_true(n > 0);
  deliver(out, (size_t)n);
}

static int raw_server(void *user, const simnet_node_t *from, const coap_address_t *to,
                      const uint8_t *data, size_t len, unsigned seq) {
  (void)user, (void)from, (void)seq;
  if (!coap_address_equal(to, &server->addr)) return 0;
  coap_msg_t req;
  if (coap_msg_parse(&req, data, len) < 0 || req.code != COAP_GET) return 1;
  if (srv.requests++ && !srv.answer_all) return 1;
  if (srv.etag_each) srv.etag = (uint8_t)srv.requests;
  for (size_t i = 0; i < srv.n; i++) send_step(&req, &srv.script[i]);
  return 1; /* the node's own context never sees it */
}

/* ---- the client ---- */

static int setup(void **state) {
  (void)state;
  simnet_init(&net);
  coap_context_config_t cc;
  coap_context_config_default(&cc);
  cc.qblock_client = 1;
  client = simnet_add_node(&net, 40000, COAP_PROTO_UDP, &cc);
  server = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL);
  assert_non_null(client);
  assert_non_null(server);
  net.filter = raw_server;
  memset(&srv, 0, sizeof srv);
  srv.size2 = -1;
  srv.etag = 1;
  for (size_t i = 0; i < sizeof content; i++) content[i] = (uint8_t)(i * 7 + 3);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  simnet_free(&net);
  return 0;
}

static void script(const step_t *steps, size_t n) {
  assert_true(n <= SCRIPT_MAX);
  memcpy(srv.script, steps, n * sizeof *steps);
  srv.n = n;
}

/* The whole body handed over (sim_reply keeps its start only). */
static uint8_t body[16 * 1024];
static size_t body_len;

static void on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  body_len = reply->payload_len;
  assert_true(body_len <= sizeof body);
  if (body_len) memcpy(body, reply->payload, body_len);
  sim_on_reply(ctx, reply, user);
}

/* A NON GET (the first set asked at once); the reply and how long it took. */
static uint64_t get(sim_reply_t *rep) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/body");
  o.confirmable = 0;
  o.timeout_ms = 0; /* the transfer's own waits decide, as they would */
  sim_reply_reset(rep);
  uint64_t t0 = net.now;
  body_len = 0;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, rep, NULL), 0);
  assert_true(simnet_run_until_flag(&net, &rep->done, net.now + 600000));
  uint64_t took = net.now - t0;
  simnet_run_until(&net, net.now + 120000); /* no second callback */
  assert_int_equal(rep->calls, 1);
  assert_null(client->ctx->client.requests); /* nothing left behind */
  return took;
}

/* Refused at once: COAP_E_BLOCKWISE, within a second of virtual time (the
 * burst arrives in one latency; one NON_RECEIVE_TIMEOUT is 4 s), no body,
 * a detail naming |what|. */
static void assert_refused(const sim_reply_t *rep, uint64_t took, uint64_t within,
                           const char *what) {
  if (rep->status != COAP_E_BLOCKWISE || !strstr(rep->detail, what))
    fail_msg("status %d after %llu ms, detail \"%s\" (wanted \"%s\")", rep->status,
             (unsigned long long)took, rep->detail, what);
  assert_true(took <= within);
  assert_int_equal(body_len, 0);
}

static void test_consistent_script_is_one_body(void **state) {
  (void)state;
  static const step_t s[] = {{0, 1, 6, 1024}, {2, 1, 6, 1024}, {1, 1, 6, 1024}, {3, 0, 6, 100}};
  script(s, 4);
  sim_reply_t rep;
  uint64_t took = get(&rep);
  assert_int_equal(rep.status, 0);
  assert_int_equal(rep.code, COAP_CONTENT);
  assert_true(took <= 1000);
  assert_int_equal(body_len, 3 * 1024 + 100);
  for (int i = 0; i < 3; i++) assert_memory_equal(body + i * 1024, content, 1024);
  assert_memory_equal(body + 3 * 1024, content, 100);
}

/* No Size2; blocks 0..5 come, then block 3 says it is the last. */
static void test_last_block_names_fewer_than_came(void **state) {
  (void)state;
  static const step_t s[] = {{0, 1, 6, 1024}, {1, 1, 6, 1024}, {2, 1, 6, 1024},
                             {4, 1, 6, 1024}, {5, 1, 6, 1024}, {3, 0, 6, 100}};
  script(s, 6);
  sim_reply_t rep;
  uint64_t took = get(&rep);
  assert_refused(&rep, took, 1000, "block 5 came already");
}

/* Block 2 came with more to follow, then again as the last. */
static void test_block_with_more_then_last(void **state) {
  (void)state;
  static const step_t s[] = {{0, 1, 6, 1024}, {1, 1, 6, 1024}, {2, 1, 6, 1024}, {2, 0, 6, 10}};
  script(s, 4);
  sim_reply_t rep;
  uint64_t took = get(&rep);
  assert_refused(&rep, took, 1000, "came as the last (M=0) after");
}

/* Two last blocks of different numbers. */
static void test_two_last_blocks(void **state) {
  (void)state;
  static const step_t s[] = {{0, 1, 6, 1024}, {4, 0, 6, 10}, {2, 0, 6, 10}};
  script(s, 3);
  sim_reply_t rep;
  uint64_t took = get(&rep);
  assert_refused(&rep, took, 1000, "block 2 carries");
}

/* The last block twice (before the body is whole), the same number,
 * different lengths. */
static void test_last_block_twice_other_end(void **state) {
  (void)state;
  static const step_t s[] = {{2, 0, 6, 10}, {2, 0, 6, 20}, {0, 1, 6, 1024}, {1, 1, 6, 1024}};
  script(s, 4);
  sim_reply_t rep;
  uint64_t took = get(&rep);
  assert_refused(&rep, took, 1000, "came twice with different ends");
}

/* Size2 says three blocks; the third says more follow. Before, the count
 * met Size2's and an empty body was handed over as the whole. */
static void test_size2_last_block_with_more(void **state) {
  (void)state;
  srv.size2 = 3 * 1024;
  static const step_t s[] = {{0, 1, 6, 1024}, {1, 1, 6, 1024}, {2, 1, 6, 1024}};
  script(s, 3);
  sim_reply_t rep;
  uint64_t took = get(&rep);
  assert_refused(&rep, took, 1000, "block 2 carries 1024 bytes (M=1)");
}

/* A block number past what Size2 announces. */
static void test_block_past_size2(void **state) {
  (void)state;
  srv.size2 = 2 * 1024;
  static const step_t s[] = {{0, 1, 6, 1024}, {5, 1, 6, 1024}};
  script(s, 2);
  sim_reply_t rep;
  uint64_t took = get(&rep);
  assert_refused(&rep, took, 1000, "block 5 carries");
}

/* The block size changes mid-transfer. */
static void test_block_size_changes(void **state) {
  (void)state;
  static const step_t s[] = {{0, 1, 6, 1024}, {1, 1, 6, 1024}, {4, 1, 5, 512}};
  script(s, 3);
  sim_reply_t rep;
  uint64_t took = get(&rep);
  assert_refused(&rep, took, 1000, "512-byte blocks");
}

/* A representation that changes with every request: a bounded number of
 * fresh starts, then refused, long before the waits (12 x 4 s) run out. */
static void test_etag_keeps_changing(void **state) {
  (void)state;
  srv.etag_each = 1;
  srv.answer_all = 1;
  static const step_t s[] = {{0, 1, 6, 1024}, {1, 1, 6, 1024}};
  script(s, 2);
  sim_reply_t rep;
  uint64_t took = get(&rep);
  assert_refused(&rep, took, 10000, "another ETag");
  assert_true(srv.requests <= 20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_consistent_script_is_one_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_last_block_names_fewer_than_came, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block_with_more_then_last, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_last_blocks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_last_block_twice_other_end, setup, teardown),
      cmocka_unit_test_setup_teardown(test_size2_last_block_with_more, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block_past_size2, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block_size_changes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_etag_keeps_changing, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
