/* The client's block-wise transfers (RFC 7959) against a server written
 * here by hand: a simnet node whose datagrams never reach its context; the
 * network filter answers them with crafted responses (piggy-backed ACKs),
 * so every rule of the server side — its block size, its ETag, 2.31, 4.08,
 * 4.13, a server that ignores Block1 — is the test's to choose. Loss and
 * duplication are the filter's too, in virtual time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "client/client.h"
#include "context/context_internal.h"
#include "coaps/dtls.h"
#include "support_reply.h"
#include "support_simnet.h"
#include "support_store.h"

#define BODY_MAX 40000

static simnet_t net;
static simnet_node_t *client, *server;

/* ---- the hand-written server ---- */

static struct raw_server {
  /* The resource served in Block2 blocks. */
  uint8_t body[BODY_MAX];
  size_t body_len;
  uint8_t etag;
  int send_etag, send_size2;
  uint8_t szx2;          /* largest block size it sends */
  unsigned change_every; /* a new representation after this many blocks served */
  unsigned changes_left;
  unsigned served;
  /* Uploads taken in Block1 blocks. */
  uint8_t upload[BODY_MAX];
  size_t upload_len;
  int upload_done;
  uint8_t szx1;       /* block size it asks for in 2.31 */
  long limit;         /* >= 0: bodies over it get 4.13 with Size1 */
  int shrink_to;      /* >= 0: a larger Block1 gets 4.13 asking for this szx */
  long incomplete_at; /* >= 0: this block number gets 4.08 */
  int ignore_block1;  /* an old server: each block taken as the whole body */
  long whole_max;     /* >= 0: a larger payload sent whole gets 4.13 */
  int hint_szx;       /* >= 0: that 4.13 carries a Block1 of this szx */
  int reply_body;     /* a PUT/POST is answered with the resource in Block2 */
  /* The network's fate for each datagram, seeded. */
  unsigned loss_pct, dup_pct;
  uint32_t rng;
  /* What the client sent. */
  unsigned requests;
  int first_block2_szx;  /* -1: the first request had no Block2 */
  int max_followup_szx2; /* the largest szx asked for after the first request */
  long first_size1;
  size_t max_datagram;
  uint16_t next_mid;
} srv;

static void fill(uint8_t *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 7 + (i >> 8) * 13 + seed);
}

static int chance(unsigned pct) {
  srv.rng = srv.rng * 1103515245u + 12345u;
  return (srv.rng >> 16) % 100 < pct;
}

/* The response goes straight into the network's queue, towards the client. */
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

static int get_block(const coap_msg_t *m, uint16_t number, coap_block_t *b) {
  const coap_option_t *o = coap_msg_find_option(m, number);
  if (!o) return 0;
  assert_int_equal(coap_block_decode(o, b), 0);
  return 1;
}

static void change_representation(void) {
  if (!srv.change_every || !srv.changes_left || !srv.served || srv.served % srv.change_every)
    return;
  srv.changes_left--;
  srv.etag++;
  fill(srv.body, srv.body_len, srv.etag);
}

/* One block of the resource, as asked by |req| (its Block2, in its own
 * block size; the server's when smaller). */
static void block2_answer(const coap_msg_t *req, coap_msg_t *resp, uint8_t code) {
  coap_block_t asked = {.num = 0, .more = 0, .szx = 6};
  get_block(req, COAP_OPTION_BLOCK2, &asked);
  uint8_t szx = asked.szx < srv.szx2 ? asked.szx : srv.szx2;
  size_t offset = (size_t)asked.num << (asked.szx + 4), size = coap_block_size(szx);
  change_representation();
  srv.served++;
  resp->code = code;
  if (offset > srv.body_len) {
    resp->code = COAP_BAD_OPTION;
    return;
  }
  size_t n = srv.body_len - offset < size ? srv.body_len - offset : size;
  coap_block_t b2 = {
      .num = (uint32_t)(offset / size), .more = offset + n < srv.body_len, .szx = szx};
  if (srv.send_etag) assert_int_equal(coap_msg_add_option(resp, COAP_OPTION_ETAG, &srv.etag, 1), 0);
  assert_int_equal(coap_msg_add_block(resp, COAP_OPTION_BLOCK2, &b2), 0);
  if (srv.send_size2)
    assert_int_equal(coap_msg_add_uint(resp, COAP_OPTION_SIZE2, (uint32_t)srv.body_len), 0);
  coap_msg_set_payload(resp, srv.body + offset, n);
}

/* The request's payload, whole or one Block1 block of it. */
static void block1_answer(const coap_msg_t *req, coap_msg_t *resp) {
  coap_block_t b1;
  resp->code = COAP_CHANGED;
  int blockwise = get_block(req, COAP_OPTION_BLOCK1, &b1);
  if (!blockwise && srv.whole_max >= 0 && (long)req->payload_len > srv.whole_max) {
    resp->code = COAP_REQUEST_ENTITY_TOO_LARGE;
    coap_block_t hint = {.num = 0, .more = 0, .szx = (uint8_t)srv.hint_szx};
    if (srv.hint_szx >= 0) assert_int_equal(coap_msg_add_block(resp, COAP_OPTION_BLOCK1, &hint), 0);
    return;
  }
  if (srv.ignore_block1 || !blockwise) {
    memcpy(srv.upload, req->payload, req->payload_len);
    srv.upload_len = req->payload_len;
    srv.upload_done = 1;
    if (srv.reply_body) block2_answer(req, resp, COAP_CHANGED);
    return;
  }
  int64_t size1 = coap_msg_get_uint(req, COAP_OPTION_SIZE1, -1);
  if (srv.limit >= 0 && size1 > srv.limit) {
    resp->code = COAP_REQUEST_ENTITY_TOO_LARGE;
    assert_int_equal(coap_msg_add_uint(resp, COAP_OPTION_SIZE1, (uint32_t)srv.limit), 0);
    return;
  }
  if (srv.shrink_to >= 0 && b1.szx > srv.shrink_to) {
    coap_block_t want = {.num = 0, .more = 0, .szx = (uint8_t)srv.shrink_to};
    resp->code = COAP_REQUEST_ENTITY_TOO_LARGE;
    assert_int_equal(coap_msg_add_block(resp, COAP_OPTION_BLOCK1, &want), 0);
    return;
  }
  if (srv.incomplete_at >= 0 && (long)b1.num == srv.incomplete_at) {
    resp->code = COAP_REQUEST_ENTITY_INCOMPLETE;
    return;
  }
  size_t offset = (size_t)b1.num << (b1.szx + 4);
  assert_true(offset + req->payload_len <= BODY_MAX);
  memcpy(srv.upload + offset, req->payload, req->payload_len);
  if (offset + req->payload_len > srv.upload_len) srv.upload_len = offset + req->payload_len;
  coap_block_t echo = {
      .num = b1.num, .more = b1.more, .szx = b1.szx < srv.szx1 ? b1.szx : srv.szx1};
  if (b1.more) {
    resp->code = COAP_CONTINUE;
  } else {
    srv.upload_done = 1;
    srv.upload_len = offset + req->payload_len;
  }
  assert_int_equal(coap_msg_add_block(resp, COAP_OPTION_BLOCK1, &echo), 0);
  if (!b1.more && srv.reply_body) block2_answer(req, resp, COAP_CHANGED);
}

static void observe(const coap_msg_t *req, size_t len) {
  coap_block_t b2;
  int has_b2 = get_block(req, COAP_OPTION_BLOCK2, &b2);
  if (srv.requests == 0)
    srv.first_block2_szx = has_b2 ? b2.szx : -1;
  else if (has_b2 && b2.szx > srv.max_followup_szx2)
    srv.max_followup_szx2 = b2.szx;
  if (coap_msg_find_option(req, COAP_OPTION_SIZE1) && srv.first_size1 < 0)
    srv.first_size1 = (long)coap_msg_get_uint(req, COAP_OPTION_SIZE1, -1);
  if (len > srv.max_datagram) srv.max_datagram = len;
  srv.requests++;
}

static int raw_server(void *user, const simnet_node_t *from, const coap_address_t *to,
                      const uint8_t *data, size_t len, unsigned seq) {
  if (!coap_address_equal(to, &server->addr)) return 0;
  coap_msg_t req;
  if (chance(srv.loss_pct) || coap_msg_parse(&req, data, len) < 0 || req.code == 0) return 1;
  observe(&req, len);
  coap_msg_t resp;
  int con = req.type == COAP_TYPE_CON;
  coap_msg_init(&resp, con ? COAP_TYPE_ACK : COAP_TYPE_NON, COAP_CONTENT,
                con ? req.mid : srv.next_mid++);
  coap_msg_set_token(&resp, req.token, req.token_len);
  int fetch = !coap_msg_find_option(&req, COAP_OPTION_BLOCK1) && !req.payload_len;
  if (req.code == COAP_GET || (fetch && coap_msg_find_option(&req, COAP_OPTION_BLOCK2)))
    block2_answer(&req, &resp, req.code == COAP_GET ? COAP_CONTENT : COAP_CHANGED);
  else
    block1_answer(&req, &resp);
  uint8_t out[1500];
  int n = coap_msg_encode(&resp, out, sizeof out);
  assert_true(n > 0);
  if (chance(srv.loss_pct)) return 1;
  deliver(out, (size_t)n);
  if (chance(srv.dup_pct)) deliver(out, (size_t)n);
  return 1; /* the node's own context never sees it */
}

/* ---- the client's side ---- */

typedef struct box {
  int done, calls, status;
  uint8_t code;
  uint8_t payload[BODY_MAX];
  size_t payload_len;
  char detail[640];
  unsigned exchanges;
  uint64_t at;
} box_t;
static box_t box;

static void on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  box_t *b = user;
  b->done = 1;
  b->at = net.now;
  b->calls++;
  b->status = reply->status;
  b->code = reply->code;
  b->exchanges = reply->exchanges;
  snprintf(b->detail, sizeof b->detail, "%s", reply->detail ? reply->detail : "");
  assert_true(reply->payload_len <= sizeof b->payload);
  b->payload_len = reply->payload_len;
  if (reply->payload_len) memcpy(b->payload, reply->payload, reply->payload_len);
}

static void start(uint8_t method, const char *path, const uint8_t *payload, size_t len,
                  uint16_t block_size) {
  char uri[64];
  snprintf(uri, sizeof uri, "coap://10.0.0.2%s", path);
  coap_request_opts_t o;
  coap_request_opts_init(&o, method, uri);
  o.payload = payload;
  o.payload_len = len;
  o.block_size = block_size;
  memset(&box, 0, sizeof box);
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, &box, NULL), 0);
}

/* Run until the reply, and a while after it: the callback must not run twice. */
static void finish(uint64_t limit_ms) {
  assert_true(simnet_run_until_flag(&net, &box.done, limit_ms));
  simnet_run_until(&net, net.now + 300000);
  assert_int_equal(box.calls, 1);
}

static void request(uint8_t method, const char *path, const uint8_t *payload, size_t len,
                    uint16_t block_size) {
  start(method, path, payload, len, block_size);
  finish(600000);
}

static void reset_server(size_t body_len) {
  memset(&srv, 0, sizeof srv);
  srv.body_len = body_len;
  fill(srv.body, body_len, 0);
  srv.send_etag = 1;
  srv.szx2 = srv.szx1 = 6;
  srv.limit = srv.incomplete_at = srv.whole_max = -1;
  srv.hint_szx = -1;
  srv.shrink_to = -1;
  srv.first_size1 = -1;
  srv.max_followup_szx2 = -1;
  srv.rng = 7;
}

static int setup_with(coap_context_config_t *cfg) {
  simnet_init(&net);
  client = simnet_add_node(&net, 40000, COAP_PROTO_UDP, cfg); /* 10.0.0.1 */
  server = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL); /* 10.0.0.2 */
  assert_non_null(client);
  assert_non_null(server);
  net.filter = raw_server;
  reset_server(5000);
  return 0;
}

static int setup(void **state) {
  return setup_with(NULL);
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static void assert_body(const uint8_t *expected, size_t len) {
  assert_int_equal(box.payload_len, len);
  assert_memory_equal(box.payload, expected, len);
}

/* ---- Block2 ---- */

static void test_block2_reassembled(void **state) {
  request(COAP_GET, "/big", NULL, 0, 0);
  assert_int_equal(box.status, 0);
  assert_int_equal(box.code, COAP_CONTENT);
  assert_body(srv.body, 5000);
  assert_int_equal(box.exchanges, 5);
  assert_int_equal(srv.requests, 5);
  /* The default block size is the largest: no Block2 in the first request. */
  assert_int_equal(srv.first_block2_szx, -1);
  assert_int_equal(srv.max_followup_szx2, 6);
}

static void test_block2_exact_multiple_and_one_block(void **state) {
  reset_server(4096);
  request(COAP_GET, "/big", NULL, 0, 0);
  assert_int_equal(box.status, 0);
  assert_body(srv.body, 4096);
  assert_int_equal(box.exchanges, 4);
  /* A body that fits one block comes in one exchange, Block2 or not. */
  reset_server(700);
  request(COAP_GET, "/small", NULL, 0, 0);
  assert_body(srv.body, 700);
  assert_int_equal(box.exchanges, 1);
}

static void test_block2_early_negotiation(void **state) {
  request(COAP_GET, "/big", NULL, 0, 64);
  assert_int_equal(box.status, 0);
  assert_body(srv.body, 5000);
  assert_int_equal(srv.first_block2_szx, 2); /* 64 bytes, asked from the start */
  assert_int_equal(srv.max_followup_szx2, 2);
  assert_int_equal(box.exchanges, (5000 + 63) / 64);
}

static void test_block2_context_block_size(void **state) {
  teardown(state);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.block_size = 256;
  setup_with(&cfg);
  request(COAP_GET, "/big", NULL, 0, 0);
  assert_body(srv.body, 5000);
  assert_int_equal(srv.first_block2_szx, 4);
  assert_int_equal(box.exchanges, 20);
}

static void test_block2_server_uses_smaller_blocks(void **state) {
  srv.szx2 = 3; /* 128 bytes, whatever the client would take */
  request(COAP_GET, "/big", NULL, 0, 0);
  assert_int_equal(box.status, 0);
  assert_body(srv.body, 5000);
  /* The follow-ups ask for the server's size (§2.4), never the client's 1024. */
  assert_int_equal(srv.max_followup_szx2, 3);
  assert_int_equal(box.exchanges, (5000 + 127) / 128);
}

static void test_block2_etag_change_restarts(void **state) {
  srv.change_every = 2; /* the representation changes once, after two blocks */
  srv.changes_left = 1;
  request(COAP_GET, "/big", NULL, 0, 0);
  assert_int_equal(box.status, 0);
  assert_int_equal(srv.etag, 1);
  /* The new representation, whole: not the old blocks with new ones. */
  assert_body(srv.body, 5000);
  uint8_t old[5000];
  fill(old, sizeof old, 0);
  assert_memory_not_equal(box.payload, old, 5000);
  assert_int_equal(box.exchanges, 2 + 1 + 5); /* two good, one changed, five again */
}

static void test_block2_etag_keeps_changing(void **state) {
  srv.change_every = 2;
  srv.changes_left = 1000;
  request(COAP_GET, "/big", NULL, 0, 0);
  assert_int_equal(box.status, COAP_E_BLOCKWISE);
  assert_non_null(strstr(box.detail, "changed"));
  /* Bounded: the first try and three restarts, three requests each. */
  assert_true(srv.requests <= 4 * 3);
}

static void test_block2_max_body(void **state) {
  teardown(state);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.max_body = 3000;
  setup_with(&cfg);
  /* Size2 tells at the first block. */
  srv.send_size2 = 1;
  request(COAP_GET, "/big", NULL, 0, 0);
  assert_int_equal(box.status, COAP_E_TOO_LARGE);
  assert_non_null(strstr(box.detail, "Size2"));
  assert_non_null(strstr(box.detail, "max_body"));
  assert_int_equal(srv.requests, 1);
  assert_string_equal(coap_context_last_error(client->ctx), box.detail);
  /* Without it, at the block that goes over. */
  reset_server(5000);
  request(COAP_GET, "/big", NULL, 0, 0);
  assert_int_equal(box.status, COAP_E_TOO_LARGE);
  assert_non_null(strstr(box.detail, "max_body"));
  assert_int_equal(srv.requests, 3);
  /* A body of exactly max_body is taken. */
  reset_server(3000);
  request(COAP_GET, "/big", NULL, 0, 0);
  assert_int_equal(box.status, 0);
  assert_body(srv.body, 3000);
}

/* ---- Block1 ---- */

static uint8_t upload[BODY_MAX];

static void test_block1_continue(void **state) {
  fill(upload, 5000, 99);
  request(COAP_PUT, "/store", upload, 5000, 0);
  assert_int_equal(box.status, 0);
  assert_int_equal(box.code, COAP_CHANGED);
  assert_int_equal(srv.upload_done, 1);
  assert_int_equal(srv.upload_len, 5000);
  assert_memory_equal(srv.upload, upload, 5000);
  assert_int_equal(srv.first_size1, 5000);
  assert_int_equal(box.exchanges, 5);
  /* A payload of one block goes whole, without Block1. */
  reset_server(0);
  request(COAP_PUT, "/store", upload, 1024, 0);
  assert_int_equal(box.exchanges, 1);
  assert_int_equal(srv.upload_len, 1024);
  assert_int_equal(srv.first_size1, -1);
}

static void test_block1_request_block_size(void **state) {
  fill(upload, 3000, 5);
  request(COAP_POST, "/store", upload, 3000, 16);
  assert_int_equal(box.status, 0);
  assert_int_equal(srv.upload_len, 3000);
  assert_memory_equal(srv.upload, upload, 3000);
  assert_int_equal(box.exchanges, (3000 + 15) / 16);
  assert_true(srv.max_datagram < 16 + 40);
}

static void test_block1_server_asks_smaller(void **state) {
  srv.szx1 = 4; /* 2.31 asks for 256-byte blocks after our first 1024 */
  fill(upload, 5000, 3);
  request(COAP_PUT, "/store", upload, 5000, 0);
  assert_int_equal(box.status, 0);
  assert_int_equal(srv.upload_len, 5000);
  assert_memory_equal(srv.upload, upload, 5000);
  /* 1024, then (5000 - 1024) / 256 rounded up. */
  assert_int_equal(box.exchanges, 1 + (5000 - 1024 + 255) / 256);
}

static void test_block1_413_smaller_szx(void **state) {
  srv.shrink_to = 3; /* 4.13 with Block1 szx 3: start again in 128-byte blocks */
  fill(upload, 2000, 8);
  request(COAP_PUT, "/store", upload, 2000, 0);
  assert_int_equal(box.status, 0);
  assert_int_equal(box.code, COAP_CHANGED);
  assert_memory_equal(srv.upload, upload, 2000);
  assert_int_equal(box.exchanges, 1 + (2000 + 127) / 128);
}

static void test_block1_413_size1(void **state) {
  srv.limit = 2048;
  fill(upload, 5000, 1);
  request(COAP_PUT, "/store", upload, 5000, 0);
  assert_int_equal(box.status, 0);
  assert_int_equal(box.code, COAP_REQUEST_ENTITY_TOO_LARGE);
  assert_non_null(strstr(box.detail, "2048"));
  assert_non_null(strstr(box.detail, "5000"));
  assert_int_equal(srv.requests, 1);
  assert_int_equal(srv.upload_done, 0);
}

static void test_block1_408(void **state) {
  srv.incomplete_at = 2;
  fill(upload, 5000, 1);
  request(COAP_PUT, "/store", upload, 5000, 0);
  assert_int_equal(box.status, 0);
  assert_int_equal(box.code, COAP_REQUEST_ENTITY_INCOMPLETE);
  assert_non_null(strstr(box.detail, "4.08"));
  assert_int_equal(srv.requests, 3); /* nothing sent after the 4.08 */
}

static void test_block1_ignored_is_not_success(void **state) {
  srv.ignore_block1 = 1; /* answers 2.04 to block 0 as if it were everything */
  fill(upload, 5000, 1);
  request(COAP_PUT, "/store", upload, 5000, 0);
  assert_int_equal(box.status, COAP_E_BLOCKWISE);
  assert_non_null(strstr(box.detail, "1024 bytes"));
  assert_int_equal(srv.requests, 1);
}

static void test_block1_then_block2(void **state) {
  srv.reply_body = 1;
  fill(upload, 3000, 4);
  request(COAP_POST, "/echo", upload, 3000, 0);
  assert_int_equal(box.status, 0);
  assert_int_equal(box.code, COAP_CHANGED);
  assert_memory_equal(srv.upload, upload, 3000);
  assert_body(srv.body, 5000);
  assert_int_equal(box.exchanges, 3 + 4);
}

static void test_whole_request_413_retried_in_blocks(void **state) {
  /* A 4.13 to a request sent whole is a hint to go block-wise (RFC 7959
   * §2.9.3), in the size of its Block1 when it has one. */
  srv.whole_max = 256;
  srv.hint_szx = 4;
  fill(upload, 900, 2);
  request(COAP_PUT, "/store", upload, 900, 0); /* 900 < 1024: sent whole first */
  assert_int_equal(box.status, 0);
  assert_int_equal(box.code, COAP_CHANGED);
  assert_int_equal(srv.upload_len, 900);
  assert_memory_equal(srv.upload, upload, 900);
  assert_int_equal(box.exchanges, 1 + 4);
  /* No size given: blocks smaller than the payload, once. */
  reset_server(0);
  srv.whole_max = 256;
  request(COAP_PUT, "/store", upload, 900, 0);
  assert_int_equal(box.status, 0);
  assert_memory_equal(srv.upload, upload, 900);
  assert_int_equal(box.exchanges, 1 + 2);
  /* Still refused in blocks: the 4.13 is the answer. */
  reset_server(0);
  srv.whole_max = 256;
  srv.limit = 500;
  request(COAP_PUT, "/store", upload, 900, 0);
  assert_int_equal(box.code, COAP_REQUEST_ENTITY_TOO_LARGE);
  assert_non_null(strstr(box.detail, "500"));
  assert_int_equal(box.exchanges, 2);
}

/* ---- loss and duplication ---- */

static void test_loss_and_duplication(void **state) {
  unsigned ok = 0, runs = 12;
  for (unsigned run = 0; run < runs; run++) {
    reset_server(20000);
    fill(srv.body, srv.body_len, (unsigned)run);
    srv.loss_pct = 10;
    srv.dup_pct = 10;
    srv.rng = 1000 + run;
    srv.szx2 = (uint8_t)(3 + run % 4);
    uint64_t t0 = net.now;
    request(COAP_GET, "/big", NULL, 0, 0);
    /* Byte-exact or a timeout: never a wrong body. */
    if (box.status == 0) {
      assert_body(srv.body, 20000);
      ok++;
    } else {
      assert_int_equal(box.status, COAP_E_TIMEOUT);
    }
    fill(upload, 20000, 50 + run);
    request(COAP_PUT, "/store", upload, 20000, (uint16_t)(128 << (run % 4)));
    if (box.status == 0) {
      assert_int_equal(srv.upload_len, 20000);
      assert_memory_equal(srv.upload, upload, 20000);
      ok++;
    } else {
      assert_int_equal(box.status, COAP_E_TIMEOUT);
    }
    assert_true(net.now - t0 < 4 * 3600 * 1000ull);
  }
  /* A block's five sends all lost is rare at 10 %: nearly every run ends. */
  assert_true(ok >= 2 * runs - 2);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_true(st.retransmissions > 20); /* the loss was real */
}

/* The whole transfer within the request's own deadline. */
static void test_deadline_covers_transfer(void **state) {
  srv.szx2 = 0;
  srv.loss_pct = 30;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/big");
  o.timeout_ms = 20000;
  memset(&box, 0, sizeof box);
  uint64_t t0 = net.now;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, &box, NULL), 0);
  finish(600000);
  assert_int_equal(box.status, COAP_E_TIMEOUT);
  assert_int_equal(box.at - t0, 20000);
  assert_true(srv.requests >= 3); /* it was under way */
}

/* ---- what cannot be sent fails at once ---- */

static void test_bad_block_size(void **state) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/big");
  static const uint16_t bad[] = {1, 8, 17, 100, 2048};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    o.block_size = bad[i];
    assert_int_equal(coap_send_request(client->ctx, &o, on_reply, &box, NULL), COAP_E_INVALID_ARG);
  }
}

static int dtls_sent;
static size_t dtls_largest;
static int count_dtls(void *user, const simnet_node_t *from, const coap_address_t *to,
                      const uint8_t *data, size_t len, unsigned seq) {
  if (from == client) {
    dtls_sent++;
    if (len > dtls_largest) dtls_largest = len;
  }
  return 0;
}

static void set_psk(coap_context_t *ctx, unsigned mtu) {
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  assert_non_null(d);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"dev", (const uint8_t *)"0123456789abcdef", 16), 0);
  if (mtu) assert_int_equal(coap_dtls_set_mtu(d, mtu), 0);
  assert_int_equal(coap_context_set_dtls_context(ctx, d), 0);
}

/* Our own server's handler: the server gathers the blocks and hands it
 * the body whole, once. */
static uint8_t stored[BODY_MAX];
static sim_store_t store = {stored, sizeof stored, 0, 0};

static void big_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                    coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_OCTET_STREAM, srv.body, srv.body_len);
}

static void test_dtls_request_fits_records(void **state) {
  teardown(state);
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  set_psk(server->ctx, 0);
  set_psk(client->ctx, 300); /* a record holds 263 bytes: 128-byte blocks */
  coap_resource_t *r = coap_resource_add(server->ctx, "store");
  coap_resource_set_handler(r, COAP_PUT, sim_store_put, &store);
  net.filter = count_dtls;
  /* Options alone over a record: refused before anything is sent. */
  char uri[400];
  snprintf(uri, sizeof uri, "coaps://10.0.0.1:5684/store?a=%0100d&b=%0100d&c=%0100d", 0, 0, 0);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, uri);
  memset(&box, 0, sizeof box);
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, &box, NULL), COAP_E_TOO_LARGE);
  assert_non_null(strstr(coap_context_last_error(client->ctx), "DTLS record"));
  assert_int_equal(dtls_sent, 0);
  assert_int_equal(box.calls, 0);
  /* A payload larger than a record goes in blocks that fit. */
  fill(upload, 3000, 77);
  coap_request_opts_init(&o, COAP_PUT, "coaps://10.0.0.1:5684/store");
  o.payload = upload;
  o.payload_len = 3000;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, &box, NULL), 0);
  finish(600000);
  assert_int_equal(box.status, 0);
  assert_int_equal(box.code, COAP_CHANGED);
  assert_int_equal(store.calls, 1);
  assert_int_equal(store.len, 3000);
  assert_memory_equal(stored, upload, 3000);
  assert_true(dtls_largest <= 300);
  assert_int_equal(box.exchanges, (3000 + 127) / 128);
  /* Our server's Block2 answers, reassembled; in the client's block size
   * when it asks for a smaller one. */
  r = coap_resource_add(server->ctx, "big");
  coap_resource_set_handler(r, COAP_GET, big_get, NULL);
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1:5684/big");
  memset(&box, 0, sizeof box);
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, &box, NULL), 0);
  finish(600000);
  assert_int_equal(box.status, 0);
  assert_body(srv.body, 5000);
  assert_true(box.exchanges > 1);
  o.block_size = 64;
  memset(&box, 0, sizeof box);
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, &box, NULL), 0);
  finish(600000);
  assert_int_equal(box.status, 0);
  assert_body(srv.body, 5000);
  assert_int_equal(box.exchanges, (5000 + 63) / 64);
}

/* ---- the context's bound on bodies being fetched ---- */

static size_t peak_held;
static int watch_held(void *user, const simnet_node_t *from, const coap_address_t *to,
                      const uint8_t *data, size_t len, unsigned seq) {
  size_t held = coap_client_reassembly_bytes(&client->ctx->client);
  if (held > peak_held) peak_held = held;
  return raw_server(user, from, to, data, len, seq);
}

/* Two GETs at once whose bodies fit max_body each but not max_reassembly
 * together: one comes whole, the other ends with COAP_E_TOO_LARGE and
 * says why; the bound is never passed; once the first is done there is
 * room again. With Size2 the refusal comes at the first block. */
static void test_block2_context_reassembly_bound(void **state) {
  teardown(state);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.max_body = 10000;
  cfg.max_reassembly = 12000;
  setup_with(&cfg);
  net.filter = watch_held;
  for (int size2 = 0; size2 < 2; size2++) {
    reset_server(8000);
    srv.send_size2 = size2;
    peak_held = 0;
    sim_reply_t a, b;
    coap_request_opts_t o;
    coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/big");
    sim_send(client, &o, &a);
    sim_send(client, &o, &b);
    assert_true(simnet_run_until_flag(&net, &a.done, 600000));
    assert_true(simnet_run_until_flag(&net, &b.done, 600000));
    sim_reply_t *ok = a.status == 0 ? &a : &b, *refused = a.status == 0 ? &b : &a;
    assert_int_equal(ok->status, 0);
    assert_int_equal(ok->code, COAP_CONTENT);
    assert_int_equal(ok->payload_len, SIM_REPLY_PAYLOAD_MAX - 1); /* the box keeps a prefix */
    assert_memory_equal(ok->payload, srv.body, ok->payload_len);
    assert_int_equal(refused->status, COAP_E_TOO_LARGE);
    assert_non_null(strstr(refused->detail, "max_reassembly"));
    assert_true(peak_held > 0 && peak_held <= 12000);
    assert_int_equal(coap_client_reassembly_bytes(&client->ctx->client), 0);
  }
  /* Alone, the same body fits. */
  request(COAP_GET, "/big", NULL, 0, 0);
  assert_int_equal(box.status, 0);
  assert_body(srv.body, 8000);
}

/* ---- concurrent bodies to our own server (Request-Tag, RFC 9175 §3) ---- */

#define N_BODIES 3
static uint8_t bodies[N_BODIES][3000];
static uint8_t got_bodies[N_BODIES][3000];
static unsigned n_got;
static void collect_post(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                         coap_response_t *resp, void *user) {
  size_t len;
  const uint8_t *p = coap_request_payload(req, &len);
  assert_int_equal(len, 3000);
  assert_true(n_got < N_BODIES);
  memcpy(got_bodies[n_got++], p, len);
  coap_response_set_code(resp, COAP_CHANGED);
}

static int lossy(void *user, const simnet_node_t *from, const coap_address_t *to,
                 const uint8_t *data, size_t len, unsigned seq) {
  return seq % 7 == 3 ? 1 : seq % 11 == 5 ? 2 : 0; /* lost, doubled */
}

static unsigned tagged_blocks, untagged_blocks;
static void count_tags(void *user, int outgoing, const coap_address_t *peer, const coap_msg_t *m) {
  if (!outgoing || !coap_msg_find_option(m, COAP_OPTION_BLOCK1)) return;
  if (coap_msg_find_option(m, COAP_OPTION_REQUEST_TAG))
    tagged_blocks++;
  else
    untagged_blocks++;
}

/* Three POSTs of different bodies to one path at once, in blocks, over a
 * network that loses and reorders: each arrives whole, once, because all
 * but one carry a Request-Tag of their own. A lone POST carries none. */
static void test_block1_concurrent_bodies_tagged(void **state) {
  net.filter = lossy; /* our own server answers */
  coap_resource_t *r = coap_resource_add(server->ctx, "collect");
  coap_resource_set_handler(r, COAP_POST, collect_post, NULL);
  coap_context_set_trace(client->ctx, count_tags, NULL);
  sim_reply_t boxes[N_BODIES];
  for (int i = 0; i < N_BODIES; i++) {
    fill(bodies[i], sizeof bodies[i], 100u + (unsigned)i * 31);
    coap_request_opts_t o;
    coap_request_opts_init(&o, COAP_POST, "coap://10.0.0.2/collect");
    o.payload = bodies[i];
    o.payload_len = sizeof bodies[i];
    o.block_size = 256;
    sim_send(client, &o, &boxes[i]);
  }
  for (int i = 0; i < N_BODIES; i++) {
    assert_true(simnet_run_until_flag(&net, &boxes[i].done, 600000));
    assert_int_equal(boxes[i].status, 0);
    assert_int_equal(boxes[i].code, COAP_CHANGED);
  }
  assert_int_equal(n_got, N_BODIES);
  for (int i = 0; i < N_BODIES; i++) {
    int found = 0;
    for (int k = 0; k < N_BODIES; k++) found += memcmp(got_bodies[k], bodies[i], 3000) == 0;
    assert_int_equal(found, 1);
  }
  assert_true(tagged_blocks >= 2 * 12); /* two bodies of 12 blocks, resends too */
  assert_true(untagged_blocks >= 12);
  /* Alone, no tag. */
  tagged_blocks = untagged_blocks = 0;
  n_got = 0;
  sim_reply_t box1;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_POST, "coap://10.0.0.2/collect");
  o.payload = bodies[0];
  o.payload_len = 3000;
  o.block_size = 256;
  sim_send(client, &o, &box1);
  assert_true(simnet_run_until_flag(&net, &box1.done, 600000));
  assert_int_equal(box1.code, COAP_CHANGED);
  assert_int_equal(tagged_blocks, 0);
  assert_memory_equal(got_bodies[0], bodies[0], 3000);
}

/* ---- FETCH with a body in Block1 blocks and an answer in Block2 ---- */

static unsigned query_calls;
static size_t query_seen_len;
static void query_fetch(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                        coap_response_t *resp, void *user) {
  static uint8_t rep[6000];
  size_t len;
  const uint8_t *p = coap_request_payload(req, &len);
  query_calls++;
  query_seen_len = len;
  /* The answer depends on the whole body: without it, another one. */
  uint8_t sum = 0;
  for (size_t i = 0; i < len; i++) sum = (uint8_t)(sum * 31 + p[i]);
  for (size_t i = 0; i < sizeof rep; i++) rep[i] = (uint8_t)(i * 5 + sum + (i >> 9));
  coap_response_set_payload(resp, COAP_FORMAT_OCTET_STREAM, rep, sizeof rep);
}

/* RFC 8132 §2: a FETCH's body is part of the request, so every request
 * for a block of its answer carries the body again (here in Block1
 * blocks, Block2 on the last). The server builds the answer once: its
 * copy is keyed by the body. */
static void test_fetch_body_in_blocks_answer_in_blocks(void **state) {
  net.filter = NULL;
  coap_resource_t *r = coap_resource_add(server->ctx, "query");
  coap_resource_set_handler(r, COAP_FETCH, query_fetch, NULL);
  static uint8_t q[3000];
  fill(q, sizeof q, 5);
  uint8_t sum = 0;
  for (size_t i = 0; i < sizeof q; i++) sum = (uint8_t)(sum * 31 + q[i]);
  static uint8_t expect[6000];
  for (size_t i = 0; i < sizeof expect; i++) expect[i] = (uint8_t)(i * 5 + sum + (i >> 9));
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_FETCH, "coap://10.0.0.2/query");
  o.payload = q;
  o.payload_len = sizeof q;
  memset(&box, 0, sizeof box);
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, &box, NULL), 0);
  finish(600000);
  assert_int_equal(box.status, 0);
  assert_int_equal(box.code, COAP_CONTENT);
  assert_body(expect, sizeof expect);
  assert_int_equal(query_seen_len, sizeof q);
  assert_int_equal(query_calls, 1);
  /* 3 body blocks for each of the 6 answer blocks. */
  assert_int_equal(box.exchanges, 3 * 6);
  /* Through loss and duplication (the copy may go stale meanwhile: the
   * handler then runs again, with the whole body again). */
  net.filter = lossy;
  query_seen_len = 0;
  memset(&box, 0, sizeof box);
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, &box, NULL), 0);
  finish(600000);
  assert_int_equal(box.status, 0);
  assert_body(expect, sizeof expect);
  assert_int_equal(query_seen_len, sizeof q);
}

/* Over DTLS at MTU 300, two bodies to one path at once (one carries a
 * Request-Tag) and a FETCH whose body is sent again with Block2 on its
 * last block: every datagram still fits a record. */
static void test_dtls_tags_and_fetch_fit_records(void **state) {
  teardown(state);
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  set_psk(server->ctx, 0);
  set_psk(client->ctx, 300);
  coap_resource_t *r = coap_resource_add(server->ctx, "query");
  coap_resource_set_handler(r, COAP_FETCH, query_fetch, NULL);
  r = coap_resource_add(server->ctx, "collect");
  coap_resource_set_handler(r, COAP_POST, collect_post, NULL);
  net.filter = count_dtls;
  dtls_largest = 0;
  n_got = 0;
  sim_reply_t boxes[2];
  for (int i = 0; i < 2; i++) {
    fill(bodies[i], sizeof bodies[i], 7u + (unsigned)i);
    coap_request_opts_t o;
    coap_request_opts_init(&o, COAP_POST, "coaps://10.0.0.1:5684/collect");
    o.payload = bodies[i];
    o.payload_len = sizeof bodies[i];
    sim_send(client, &o, &boxes[i]);
  }
  for (int i = 0; i < 2; i++) {
    assert_true(simnet_run_until_flag(&net, &boxes[i].done, 600000));
    assert_int_equal(boxes[i].status, 0);
    assert_int_equal(boxes[i].code, COAP_CHANGED);
  }
  assert_int_equal(n_got, 2);
  assert_true(memcmp(got_bodies[0], bodies[0], 3000) == 0 ||
              memcmp(got_bodies[1], bodies[0], 3000) == 0);
  assert_true(memcmp(got_bodies[0], bodies[1], 3000) == 0 ||
              memcmp(got_bodies[1], bodies[1], 3000) == 0);
  static uint8_t q[1000];
  fill(q, sizeof q, 9);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_FETCH, "coaps://10.0.0.1:5684/query");
  o.payload = q;
  o.payload_len = sizeof q;
  memset(&box, 0, sizeof box);
  query_seen_len = 0;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, &box, NULL), 0);
  finish(600000);
  assert_int_equal(box.status, 0);
  assert_int_equal(box.payload_len, 6000);
  assert_int_equal(query_seen_len, sizeof q);
  assert_true(dtls_largest <= 300);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_block2_reassembled, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_exact_multiple_and_one_block, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_early_negotiation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_context_block_size, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_server_uses_smaller_blocks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_etag_change_restarts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_etag_keeps_changing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_max_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_context_reassembly_bound, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_continue, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_request_block_size, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_server_asks_smaller, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_413_smaller_szx, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_413_size1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_408, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_ignored_is_not_success, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_then_block2, setup, teardown),
      cmocka_unit_test_setup_teardown(test_whole_request_413_retried_in_blocks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_loss_and_duplication, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deadline_covers_transfer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_block_size, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dtls_request_fits_records, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_concurrent_bodies_tagged, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fetch_body_in_blocks_answer_in_blocks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dtls_tags_and_fetch_fit_records, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
