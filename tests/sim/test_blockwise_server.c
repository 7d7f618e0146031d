/* The server side of block-wise transfer (RFC 7959) and of the option
 * rules of RFC 7252 §5.4, driven with hand-built request datagrams (so the
 * client's own block-wise logic plays no part) on a virtual clock: Block2
 * blocks on request with ETag and Size2, early negotiation, the copies
 * that spare the handler a run per block (key, peers, bounds), Block1
 * reassembly under loss, duplication and resends, 2.31/4.08/4.13/5.03,
 * limits, expiry, eviction, combined Block1+Block2 (a deferred answer
 * too), preconditions, the options a server must refuse, and a DTLS
 * server keeping blocks under its MTU. */
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

/* ---- a server fed datagrams by hand ---- */

static coap_context_t *ctx;
static coap_endpoint_t *ep;
static uint64_t vnow;
static uint8_t out[65536];
static size_t out_len;
static unsigned n_out;
static coap_msg_t reply;

static uint32_t rand_state = 7; /* carried on from test to test */

static int capture_send(void *user, coap_endpoint_t *e, const coap_address_t *to,
                        const uint8_t *data, size_t len) {
  assert_true(len <= sizeof out);
  memcpy(out, data, len);
  out_len = len;
  n_out++;
  return 0;
}

static void peer_addr(coap_address_t *a, int n) {
  char host[32];
  snprintf(host, sizeof host, "10.0.0.%d", n);
  assert_int_equal(coap_address_from_string(a, host, 40000), 0);
}

/* ---- resources ---- */

#define BIG_MAX 200000
static size_t big_len;
static unsigned big_version, big_calls;
static uint8_t big_body[BIG_MAX];

static void fill_big(void) {
  for (size_t i = 0; i < big_len; i++) big_body[i] = (uint8_t)(i * 7 + i / 251 + big_version);
}

static void big_get(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                    coap_response_t *resp, void *user) {
  big_calls++;
  fill_big();
  coap_response_set_payload(resp, COAP_FORMAT_OCTET_STREAM, big_body, big_len);
}

static uint8_t sink[BIG_MAX];
static size_t sink_len;
static unsigned sink_calls;

static void sink_put(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  sink_calls++;
  size_t len;
  const uint8_t *p = coap_request_payload(req, &len);
  assert_true(len <= sizeof sink);
  /* The message a handler reads carries the whole body as well, and no
   * Block1: the blocks were the server's business. */
  assert_int_equal(coap_request_msg(req)->payload_len, len);
  assert_null(coap_msg_find_option(coap_request_msg(req), COAP_OPTION_BLOCK1));
  if (len) memcpy(sink, p, len);
  sink_len = len;
}

static unsigned echo_calls;
static void echo_post(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  echo_calls++;
  size_t len;
  const uint8_t *p = coap_request_payload(req, &len);
  coap_response_set_payload(resp, COAP_FORMAT_OCTET_STREAM, p, len);
}

/* A document with an ETag of its own: "v" and a version byte. */
static int doc_exists;
static uint8_t doc_version;
static unsigned doc_puts;
static void doc_get(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                    coap_response_t *resp, void *user) {
  if (!doc_exists) {
    coap_response_set_code(resp, COAP_NOT_FOUND);
    return;
  }
  uint8_t tag[2] = {'v', doc_version};
  coap_response_set_etag(resp, tag, 2);
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "doc", 3);
}
static void doc_put(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                    coap_response_t *resp, void *user) {
  doc_puts++;
  doc_exists = 1;
  doc_version++;
}

static unsigned hello_calls;
static void hello_get(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  hello_calls++;
  /* What the handler sees of a Content-Format: the first, valid one. */
  char text[32];
  int n = snprintf(text, sizeof text, "cf=%d", coap_msg_content_format(coap_request_msg(req)));
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, text, (size_t)n);
}

static coap_deferred_t *pending;
static void slow_get(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  pending = coap_request_defer(req, resp);
}

/* A POST that answers later with its body echoed. */
static uint8_t slow_body[BIG_MAX];
static size_t slow_len;
static unsigned slow_post_calls;
static void slow_post(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  slow_post_calls++;
  const uint8_t *p = coap_request_payload(req, &slow_len);
  memcpy(slow_body, p, slow_len); /* valid during the handler only */
  pending = coap_request_defer(req, resp);
}

static void server_new(const coap_context_config_t *extra) {
  ctx = sim_handfed_new(extra, &vnow, &rand_state, capture_send, &ep);
  coap_resource_t *r = coap_resource_add(ctx, "big");
  coap_resource_set_handler(r, COAP_GET, big_get, NULL);
  r = coap_resource_add(ctx, "sink");
  coap_resource_set_handler(r, COAP_PUT, sink_put, NULL);
  coap_resource_set_handler(r, COAP_POST, sink_put, NULL);
  r = coap_resource_add(ctx, "echo");
  coap_resource_set_handler(r, COAP_POST, echo_post, NULL);
  r = coap_resource_add(ctx, "doc");
  coap_resource_set_handler(r, COAP_GET, doc_get, NULL);
  coap_resource_set_handler(r, COAP_PUT, doc_put, NULL);
  r = coap_resource_add(ctx, "time");
  coap_resource_set_handler(r, COAP_GET, hello_get, NULL);
  r = coap_resource_add(ctx, "");
  coap_resource_set_handler(r, COAP_GET, hello_get, NULL);
  r = coap_resource_add(ctx, "slow");
  coap_resource_set_handler(r, COAP_GET, slow_get, NULL);
  coap_resource_set_handler(r, COAP_POST, slow_post, NULL);
}

static int setup(void **state) {
  vnow = 1000;
  n_out = 0;
  big_len = 5000;
  big_version = 0;
  big_calls = sink_calls = echo_calls = doc_puts = hello_calls = slow_post_calls = 0;
  sink_len = 0;
  doc_exists = 0;
  doc_version = 1;
  pending = NULL;
  server_new(NULL);
  return 0;
}

static int teardown(void **state) {
  coap_context_free(ctx);
  ctx = NULL;
  return 0;
}

/* ---- building requests ---- */

static uint16_t next_mid = 0x100;

static void begin(coap_msg_t *m, uint8_t code, const char *path) {
  sim_msg_begin(m, COAP_TYPE_CON, code, next_mid++, 0xB10C, path);
}

static void set_payload(coap_msg_t *m, const void *p, size_t n) {
  coap_msg_set_payload(m, sim_keep(p, n), n);
}

/* Send |m| from peer |peer| and parse the answer into |reply|; NULL when
 * nothing was sent back. */
static const coap_msg_t *ask_from(const coap_msg_t *m, int peer) {
  static uint8_t dgram[70000];
  int n = coap_msg_encode(m, dgram, sizeof dgram);
  assert_true(n > 0);
  coap_address_t from;
  peer_addr(&from, peer);
  unsigned before = n_out;
  coap_context_input(ctx, ep, &from, dgram, (size_t)n, vnow);
  if (n_out == before) return NULL;
  assert_int_equal(coap_msg_parse(&reply, out, out_len), 0);
  return &reply;
}

static const coap_msg_t *ask(const coap_msg_t *m) {
  const coap_msg_t *r = ask_from(m, 9);
  assert_non_null(r);
  return r;
}

static size_t etag_of(const coap_msg_t *r, uint8_t tag[8]) {
  const coap_option_t *o = coap_msg_find_option(r, COAP_OPTION_ETAG);
  if (!o) return 0;
  assert_true(o->length <= 8);
  memcpy(tag, o->value, o->length);
  return o->length;
}

/* ---- Block2 ---- */

/* A GET without Block2 gets block 0 with M, an ETag and Size2; every
 * further block is served on request and the blocks make the body. */
static void test_block2_whole_body(void **state) {
  static uint8_t got[BIG_MAX];
  size_t got_len = 0;
  uint8_t tag0[8], tag[8];
  coap_msg_t m;
  begin(&m, COAP_GET, "big");
  const coap_msg_t *r = ask(&m);
  assert_int_equal(r->code, COAP_CONTENT);
  coap_block_t b;
  assert_true(sim_block_of(r, COAP_OPTION_BLOCK2, &b));
  assert_int_equal(b.num, 0);
  assert_int_equal(b.more, 1);
  assert_int_equal(b.szx, 6);
  assert_int_equal(r->payload_len, 1024);
  assert_int_equal(coap_msg_get_uint(r, COAP_OPTION_SIZE2, -1), 5000);
  assert_int_equal(coap_msg_content_format(r), COAP_FORMAT_OCTET_STREAM);
  size_t tag_len = etag_of(r, tag0);
  assert_int_equal(tag_len, 8);
  memcpy(got, r->payload, r->payload_len);
  got_len = r->payload_len;
  for (uint32_t num = 1; b.more; num++) {
    begin(&m, COAP_GET, "big");
    sim_opt_block(&m, COAP_OPTION_BLOCK2, num, 0, 6);
    r = ask(&m);
    assert_int_equal(r->code, COAP_CONTENT);
    assert_true(sim_block_of(r, COAP_OPTION_BLOCK2, &b));
    assert_int_equal(b.num, num);
    assert_int_equal(etag_of(r, tag), 8);
    assert_memory_equal(tag, tag0, 8);
    assert_int_equal(coap_msg_get_uint(r, COAP_OPTION_SIZE2, -1), -1); /* not asked */
    memcpy(got + got_len, r->payload, r->payload_len);
    got_len += r->payload_len;
  }
  assert_int_equal(got_len, 5000);
  fill_big();
  assert_memory_equal(got, big_body, 5000);
  /* The handler ran for block 0 only: the later blocks came from the
   * copy kept for this peer. */
  assert_int_equal(big_calls, 1);
}

/* Early negotiation: block 0 of size s asks for blocks of s; any block
 * can be asked for directly; Size2=0 in a request gets Size2 back. */
static void test_block2_negotiation_and_any_block(void **state) {
  coap_msg_t m;
  begin(&m, COAP_GET, "big");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 0, 0, 0); /* 16 bytes */
  const coap_msg_t *r = ask(&m);
  coap_block_t b;
  assert_true(sim_block_of(r, COAP_OPTION_BLOCK2, &b));
  assert_int_equal(b.szx, 0);
  assert_int_equal(r->payload_len, 16);
  fill_big();
  assert_memory_equal(r->payload, big_body, 16);

  begin(&m, COAP_GET, "big");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 100, 0, 1); /* bytes 3200..3231 */
  sim_opt_uint(&m, COAP_OPTION_SIZE2, 0);
  r = ask(&m);
  assert_true(sim_block_of(r, COAP_OPTION_BLOCK2, &b));
  assert_int_equal(b.num, 100);
  assert_int_equal(b.more, 1);
  assert_int_equal(r->payload_len, 32);
  assert_memory_equal(r->payload, big_body + 3200, 32);
  assert_int_equal(coap_msg_get_uint(r, COAP_OPTION_SIZE2, -1), 5000);

  /* The last block: M clear, the rest of the body. */
  begin(&m, COAP_GET, "big");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 4, 0, 6);
  r = ask(&m);
  assert_true(sim_block_of(r, COAP_OPTION_BLOCK2, &b));
  assert_int_equal(b.more, 0);
  assert_int_equal(r->payload_len, 5000 - 4096);
  assert_memory_equal(r->payload, big_body + 4096, 5000 - 4096);

  /* A small representation asked for with Block2 comes whole, as block 0. */
  begin(&m, COAP_GET, "time");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 0, 0, 2);
  r = ask(&m);
  assert_true(sim_block_of(r, COAP_OPTION_BLOCK2, &b));
  assert_int_equal(b.num, 0);
  assert_int_equal(b.more, 0);
}

/* A server with smaller blocks answers a larger block number in its size,
 * at the same offset (RFC 7959 §2.4). */
static void test_block2_server_prefers_smaller(void **state) {
  coap_context_free(ctx);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.block_size = 256;
  server_new(&cfg);
  coap_msg_t m;
  begin(&m, COAP_GET, "big");
  const coap_msg_t *r = ask(&m);
  coap_block_t b;
  assert_true(sim_block_of(r, COAP_OPTION_BLOCK2, &b));
  assert_int_equal(b.szx, 4);
  assert_int_equal(r->payload_len, 256);
  begin(&m, COAP_GET, "big");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 1, 0, 6); /* bytes from 1024, in 1024s */
  r = ask(&m);
  assert_true(sim_block_of(r, COAP_OPTION_BLOCK2, &b));
  assert_int_equal(b.num, 4);
  assert_int_equal(b.szx, 4);
  fill_big();
  assert_memory_equal(r->payload, big_body + 1024, 256);
}

static void test_block2_past_end_and_reserved_szx(void **state) {
  coap_msg_t m;
  begin(&m, COAP_GET, "big");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 5, 0, 6); /* 5000 bytes: blocks 0..4 */
  const coap_msg_t *r = ask(&m);
  assert_int_equal(r->code, COAP_BAD_REQUEST);
  assert_null(coap_msg_find_option(r, COAP_OPTION_BLOCK2));

  begin(&m, COAP_GET, "big");
  uint8_t szx7 = 0x07; /* block 0, SZX 7 (BERT: reliable transports only) */
  sim_opt(&m, COAP_OPTION_BLOCK2, &szx7, 1);
  r = ask(&m);
  assert_int_equal(r->code, COAP_BAD_REQUEST);

  begin(&m, COAP_PUT, "sink");
  sim_opt(&m, COAP_OPTION_BLOCK1, &szx7, 1);
  set_payload(&m, "x", 1);
  r = ask(&m);
  assert_int_equal(r->code, COAP_BAD_REQUEST);
  assert_int_equal(sink_calls, 0);

  /* A Block2 value over 3 bytes is out of the option's range: 4.02. */
  begin(&m, COAP_GET, "big");
  uint8_t four[4] = {0, 0, 0, 0x16};
  sim_opt(&m, COAP_OPTION_BLOCK2, four, 4);
  assert_int_equal(ask(&m)->code, COAP_BAD_OPTION);
}

/* The representation changes between blocks: within the copy's few
 * seconds the client gets the snapshot it started (one ETag, the old
 * bytes); once the copy is stale the handler runs and the ETag says the
 * representation changed. */
static void test_block2_etag_follows_changes(void **state) {
  uint8_t a[8], b[8];
  coap_msg_t m;
  begin(&m, COAP_GET, "big");
  assert_int_equal(etag_of(ask(&m), a), 8);
  fill_big();
  static uint8_t old_body[BIG_MAX];
  memcpy(old_body, big_body, big_len);
  big_version = 1;
  vnow += 4000;
  coap_context_handle_timeouts(ctx, vnow);
  begin(&m, COAP_GET, "big");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 1, 0, 6);
  const coap_msg_t *r = ask(&m);
  assert_int_equal(etag_of(r, b), 8);
  assert_memory_equal(a, b, 8);
  assert_memory_equal(r->payload, old_body + 1024, 1024);
  assert_int_equal(big_calls, 1);
  vnow += 1001; /* 5 s after block 0: stale */
  coap_context_handle_timeouts(ctx, vnow);
  begin(&m, COAP_GET, "big");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 2, 0, 6);
  r = ask(&m);
  assert_int_equal(etag_of(r, b), 8);
  assert_memory_not_equal(a, b, 8);
  fill_big();
  assert_memory_equal(r->payload, big_body + 2048, 1024);
  assert_int_equal(big_calls, 2);
}

/* ---- the Block2 copies (block2.c) ---- */

static void fill_body(size_t len, unsigned seed);
static const coap_msg_t *upload(uint8_t method, const char *path, size_t len, uint8_t szx);

/* A representation that depends on the query and on a FETCH's body. */
static unsigned shaped_calls;
static void shaped_fill(const coap_request_t *req, coap_response_t *resp, uint8_t seed) {
  shaped_calls++;
  static uint8_t rep[4000];
  char v[16] = "";
  if (coap_request_query(req, "v", v, sizeof v) > 0) seed = (uint8_t)(seed + v[0]);
  for (size_t i = 0; i < sizeof rep; i++) rep[i] = (uint8_t)(i * 3 + seed);
  coap_response_set_payload(resp, COAP_FORMAT_OCTET_STREAM, rep, sizeof rep);
}
static void shaped_get(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                       coap_response_t *resp, void *user) {
  int accept = (int)coap_msg_get_uint(coap_request_msg(req), COAP_OPTION_ACCEPT, 0);
  shaped_fill(req, resp, (uint8_t)accept);
}
static void shaped_fetch(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                         coap_response_t *resp, void *user) {
  size_t len;
  const uint8_t *p = coap_request_payload(req, &len);
  shaped_fill(req, resp, len ? p[len - 1] : 0);
}
static void fresh_never_get(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                            coap_response_t *resp, void *user) {
  big_get(c, r, req, resp, user);
  coap_response_set_max_age(resp, 0);
}

static void add_shaped(void) {
  coap_resource_t *r = coap_resource_add(ctx, "shaped");
  coap_resource_set_handler(r, COAP_GET, shaped_get, NULL);
  coap_resource_set_handler(r, COAP_FETCH, shaped_fetch, NULL);
  r = coap_resource_add(ctx, "volatile");
  coap_resource_set_handler(r, COAP_GET, fresh_never_get, NULL);
  shaped_calls = 0;
}

/* Block |num| (1024 bytes) of /shaped with an optional query, Accept
 * and FETCH body |fb|, from peer |peer|: its first byte. */
static int shaped_block(int peer, uint8_t method, uint32_t num, const char *query, int accept,
                        const char *fb) {
  coap_msg_t m;
  begin(&m, method, "shaped");
  if (query) sim_opt(&m, COAP_OPTION_URI_QUERY, query, strlen(query));
  if (accept >= 0) sim_opt_uint(&m, COAP_OPTION_ACCEPT, (uint32_t)accept);
  if (num) sim_opt_block(&m, COAP_OPTION_BLOCK2, num, 0, 6);
  if (fb) set_payload(&m, fb, strlen(fb));
  const coap_msg_t *r = ask_from(&m, peer);
  assert_non_null(r);
  assert_int_equal(r->code, COAP_CONTENT);
  assert_int_equal(r->payload_len, num < 3 ? 1024 : 4000 - 3072);
  return r->payload[0];
}

/* The copy is chosen by everything that shapes the representation: the
 * query, Accept, a FETCH's body; never by Size2 or Observe. */
static void test_b2_cache_keyed_by_request(void **state) {
  add_shaped();
  uint8_t first = (uint8_t)(1024 * 3);
  assert_int_equal(shaped_block(9, COAP_GET, 0, "v=a", -1, NULL), (uint8_t)(first + 'a'));
  assert_int_equal(shaped_block(9, COAP_GET, 0, "v=b", -1, NULL), (uint8_t)(first + 'b'));
  assert_int_equal(shaped_block(9, COAP_GET, 0, NULL, 40, NULL), (uint8_t)(first + 40));
  assert_int_equal(shaped_calls, 3);
  uint8_t at1 = (uint8_t)(1024 * 3);
  assert_int_equal(shaped_block(9, COAP_GET, 1, "v=a", -1, NULL), (uint8_t)(at1 + 'a'));
  assert_int_equal(shaped_block(9, COAP_GET, 2, "v=b", -1, NULL), (uint8_t)(2048 * 3 + 'b'));
  assert_int_equal(shaped_block(9, COAP_GET, 3, NULL, 40, NULL), (uint8_t)(3072 * 3 + 40));
  assert_int_equal(shaped_calls, 3);
  /* Another Accept than block 0's: another representation, built. */
  assert_int_equal(shaped_block(9, COAP_GET, 1, NULL, 41, NULL), (uint8_t)(at1 + 41));
  assert_int_equal(shaped_calls, 4);
  /* FETCH: the body is part of the key (RFC 8132 §2). */
  assert_int_equal(shaped_block(9, COAP_FETCH, 0, NULL, -1, "x"), (uint8_t)(first + 'x'));
  assert_int_equal(shaped_block(9, COAP_FETCH, 0, NULL, -1, "y"), (uint8_t)(first + 'y'));
  assert_int_equal(shaped_block(9, COAP_FETCH, 1, NULL, -1, "x"), (uint8_t)(at1 + 'x'));
  assert_int_equal(shaped_block(9, COAP_FETCH, 1, NULL, -1, "y"), (uint8_t)(at1 + 'y'));
  assert_int_equal(shaped_calls, 6);
  /* Size2 and Observe in a request change nothing of the key. */
  coap_msg_t m;
  begin(&m, COAP_GET, "shaped");
  sim_opt(&m, COAP_OPTION_URI_QUERY, "v=a", 3);
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 3, 0, 6);
  sim_opt_uint(&m, COAP_OPTION_SIZE2, 0);
  const coap_msg_t *r = ask(&m);
  assert_int_equal(r->payload[0], (uint8_t)(3072 * 3 + 'a'));
  assert_int_equal(coap_msg_get_uint(r, COAP_OPTION_SIZE2, -1), 4000);
  assert_int_equal(shaped_calls, 6);
}

/* One peer is never served a copy built for another: a handler may
 * answer peers differently. A peer asking for a later block first gets
 * it built, and is then served from the copy if the handler built the
 * same (same ETag). A peer that goes is struck from the copy. */
static void test_b2_cache_per_peer(void **state) {
  coap_msg_t m;
  begin(&m, COAP_GET, "big");
  ask_from(&m, 1);
  assert_int_equal(big_calls, 1);
  begin(&m, COAP_GET, "big");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 1, 0, 6);
  ask_from(&m, 2);
  assert_int_equal(big_calls, 2); /* built for peer 2: not peer 1's copy */
  begin(&m, COAP_GET, "big");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 2, 0, 6);
  ask_from(&m, 2);
  begin(&m, COAP_GET, "big");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 2, 0, 6);
  ask_from(&m, 1);
  assert_int_equal(big_calls, 2); /* the same representation: one copy */
  /* Peer 1 goes: its next block is built again. */
  coap_address_t a1;
  peer_addr(&a1, 1);
  coap_peer_t *p1 = coap_peer_table_find(&ctx->peers, ep, &a1);
  assert_non_null(p1);
  coap_server_peer_gone(&ctx->server, p1);
  begin(&m, COAP_GET, "big");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 3, 0, 6);
  ask_from(&m, 1);
  assert_int_equal(big_calls, 3);
  /* Block 0 always runs the handler: a client starting over sees now. */
  begin(&m, COAP_GET, "big");
  ask_from(&m, 2);
  assert_int_equal(big_calls, 4);
}

/* Bounded: Max-Age 0 is never kept; the copies' bytes count in
 * max_reassembly and give way to a Block1 body; stale ones are freed. */
static void test_b2_cache_bounds(void **state) {
  add_shaped();
  coap_msg_t m;
  for (int i = 0; i < 2; i++) {
    begin(&m, COAP_GET, "volatile");
    if (i) sim_opt_block(&m, COAP_OPTION_BLOCK2, 1, 0, 6);
    assert_int_equal(ask(&m)->code, COAP_CONTENT);
  }
  assert_int_equal(big_calls, 2);
  assert_int_equal(ctx->server.b1.bytes, 0);

  begin(&m, COAP_GET, "big");
  ask(&m);
  assert_true(ctx->server.b1.bytes > 5000);
  vnow += 5000;
  coap_context_handle_timeouts(ctx, vnow);
  assert_int_equal(ctx->server.b1.bytes, 0);

  /* At most 8 copies: a ninth representation replaces the oldest. */
  char q[8];
  for (int i = 0; i < 9; i++) {
    snprintf(q, sizeof q, "v=%c", 'a' + i);
    shaped_block(9, COAP_GET, 0, q, -1, NULL);
  }
  assert_int_equal(shaped_calls, 9);
  shaped_block(9, COAP_GET, 1, "v=i", -1, NULL);
  assert_int_equal(shaped_calls, 9);
  shaped_block(9, COAP_GET, 1, "v=a", -1, NULL);
  assert_int_equal(shaped_calls, 10);

  /* A budget that holds a copy or a body, not both: the body wins. */
  coap_context_free(ctx);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.max_reassembly = 9000;
  server_new(&cfg);
  big_calls = 0;
  begin(&m, COAP_GET, "big");
  ask(&m);
  assert_true(ctx->server.b1.bytes > 5000);
  fill_body(3000, 4);
  const coap_msg_t *r = upload(COAP_PUT, "sink", 3000, 6);
  assert_int_equal(r->code, COAP_CHANGED);
  assert_int_equal(sink_len, 3000);
  begin(&m, COAP_GET, "big");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 1, 0, 6);
  ask(&m);
  assert_int_equal(big_calls, 2); /* the copy had given way */
  /* A representation larger than the whole budget is just not kept. */
  big_len = 20000;
  for (uint32_t num = 0; num < 3; num++) {
    begin(&m, COAP_GET, "big");
    if (num) sim_opt_block(&m, COAP_OPTION_BLOCK2, num, 0, 6);
    assert_int_equal(ask(&m)->code, COAP_CONTENT);
  }
  assert_int_equal(big_calls, 5);
}

/* A representation with options of its own: later blocks from the copy
 * carry them (Content-Format, Max-Age, the handler's ETag, any other),
 * but not an Observe the first answer had (they are no notifications). */
static void optioned_get(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                         coap_response_t *resp, void *user) {
  big_get(c, r, req, resp, user);
  coap_response_set_max_age(resp, 30);
  coap_response_set_etag(resp, "e1", 2);
  coap_response_add_uint(resp, COAP_OPTION_OBSERVE, 7);
  coap_response_add_option(resp, 65000, "x", 1);
}

static void test_b2_cache_options_replayed(void **state) {
  coap_resource_t *res = coap_resource_add(ctx, "optioned");
  coap_resource_set_handler(res, COAP_GET, optioned_get, NULL);
  coap_msg_t m;
  begin(&m, COAP_GET, "optioned");
  const coap_msg_t *r = ask(&m);
  assert_int_equal(coap_msg_get_uint(r, COAP_OPTION_OBSERVE, -1), 7);
  for (uint32_t num = 1; num < 5; num++) {
    begin(&m, COAP_GET, "optioned");
    sim_opt_block(&m, COAP_OPTION_BLOCK2, num, 0, 6);
    r = ask(&m);
    assert_int_equal(r->code, COAP_CONTENT);
    assert_int_equal(coap_msg_content_format(r), COAP_FORMAT_OCTET_STREAM);
    assert_int_equal(coap_msg_get_uint(r, COAP_OPTION_MAX_AGE, -1), 30);
    uint8_t tag[8];
    assert_int_equal(etag_of(r, tag), 2);
    assert_memory_equal(tag, "e1", 2);
    assert_null(coap_msg_find_option(r, COAP_OPTION_OBSERVE));
    const coap_option_t *o = coap_msg_find_option(r, 65000);
    assert_non_null(o);
    assert_int_equal(o->length, 1);
    coap_block_t b;
    assert_true(sim_block_of(r, COAP_OPTION_BLOCK2, &b));
    assert_int_equal(b.num, num);
    assert_int_equal(b.more, num < 4);
  }
  assert_int_equal(big_calls, 1);
}

/* The point of it: a large body in many blocks builds once. */
static void test_b2_cache_large_get(void **state) {
  big_len = BIG_MAX;
  static uint8_t got[BIG_MAX];
  size_t got_len = 0;
  coap_block_t b = {0, 1, 4};
  coap_msg_t m;
  for (uint32_t num = 0; b.more; num++) {
    begin(&m, COAP_GET, "big");
    sim_opt_block(&m, COAP_OPTION_BLOCK2, num, 0, 4); /* 256-byte blocks */
    const coap_msg_t *r = ask(&m);
    assert_true(sim_block_of(r, COAP_OPTION_BLOCK2, &b));
    memcpy(got + got_len, r->payload, r->payload_len);
    got_len += r->payload_len;
    vnow += 10;
  }
  assert_int_equal(got_len, BIG_MAX);
  fill_big();
  assert_memory_equal(got, big_body, BIG_MAX);
  assert_int_equal(big_calls, 1);
}

/* A deferred answer is shaped the same way when it is sent. */
static void test_block2_deferred(void **state) {
  coap_msg_t m;
  begin(&m, COAP_GET, "slow");
  coap_address_t from;
  peer_addr(&from, 9);
  uint8_t dgram[64];
  int n = coap_msg_encode(&m, dgram, sizeof dgram);
  coap_context_input(ctx, ep, &from, dgram, (size_t)n, vnow);
  assert_non_null(pending);
  fill_big();
  coap_response_t *resp = coap_deferred_response(pending);
  assert_int_equal(coap_response_set_payload(resp, COAP_FORMAT_NONE, big_body, 5000), 0);
  assert_int_equal(coap_deferred_send(ctx, pending), 0);
  assert_int_equal(coap_msg_parse(&reply, out, out_len), 0);
  coap_block_t b;
  assert_true(sim_block_of(&reply, COAP_OPTION_BLOCK2, &b));
  assert_int_equal(b.more, 1);
  assert_int_equal(reply.payload_len, 1024);
}

/* Over max_body the handler's payload is refused and the client gets
 * 5.00, never a cut body. */
static void test_block2_over_max_body(void **state) {
  coap_context_free(ctx);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.max_body = 50000;
  server_new(&cfg);
  big_len = 100000;
  coap_msg_t m;
  begin(&m, COAP_GET, "big");
  const coap_msg_t *r = ask(&m);
  assert_int_equal(r->code, COAP_INTERNAL_SERVER_ERROR);
  assert_null(coap_msg_find_option(r, COAP_OPTION_BLOCK2));
  assert_null(coap_msg_find_option(r, COAP_OPTION_CONTENT_FORMAT));
}

/* ---- Block1 ---- */

static uint8_t body[BIG_MAX];
static void fill_body(size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++) body[i] = (uint8_t)((i * 13) ^ (i >> 8) ^ seed);
}

/* Send |len| bytes of |body| to |path| in blocks of 2^(szx+4), lock-step,
 * checking each 2.31; returns the final answer. */
static const coap_msg_t *upload(uint8_t method, const char *path, size_t len, uint8_t szx) {
  size_t size = coap_block_size(szx);
  const coap_msg_t *r = NULL;
  coap_msg_t m;
  for (uint32_t num = 0; (size_t)num * size < len || num == 0; num++) {
    size_t off = (size_t)num * size, n = len - off < size ? len - off : size;
    int more = off + n < len;
    begin(&m, method, path);
    sim_opt_block(&m, COAP_OPTION_BLOCK1, num, more, szx);
    set_payload(&m, body + off, n);
    r = ask(&m);
    if (!more) break;
    assert_int_equal(r->code, COAP_CONTINUE);
    coap_block_t b;
    assert_true(sim_block_of(r, COAP_OPTION_BLOCK1, &b));
    assert_int_equal(b.num, num);
    assert_int_equal(b.more, 1);
    assert_int_equal(b.szx, szx);
    assert_int_equal(r->payload_len, 0);
  }
  return r;
}

static void test_block1_put(void **state) {
  fill_body(5000, 1);
  const coap_msg_t *r = upload(COAP_PUT, "sink", 5000, 6);
  assert_int_equal(r->code, COAP_CHANGED);
  coap_block_t b;
  assert_true(sim_block_of(r, COAP_OPTION_BLOCK1, &b));
  assert_int_equal(b.num, 4);
  assert_int_equal(b.more, 0);
  assert_int_equal(sink_calls, 1);
  assert_int_equal(sink_len, 5000);
  assert_memory_equal(sink, body, 5000);
  /* Nothing is left behind once the body is handled. */
  assert_int_equal(ctx->server.b1.count, 0);

  /* 16-byte blocks and a body that ends on a block boundary. */
  fill_body(4096, 2);
  r = upload(COAP_POST, "sink", 4096, 0);
  assert_int_equal(r->code, COAP_CHANGED);
  assert_int_equal(sink_calls, 2);
  assert_int_equal(sink_len, 4096);
  assert_memory_equal(sink, body, 4096);
}

/* §2.5: the server prefers smaller blocks and says so in 2.31; the client
 * continues in them from the offset it reached. */
static void test_block1_size_negotiation(void **state) {
  coap_context_free(ctx);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.block_size = 256;
  server_new(&cfg);
  fill_body(3000, 3);
  coap_msg_t m;
  begin(&m, COAP_PUT, "sink");
  sim_opt_block(&m, COAP_OPTION_BLOCK1, 0, 1, 6);
  set_payload(&m, body, 1024);
  const coap_msg_t *r = ask(&m);
  assert_int_equal(r->code, COAP_CONTINUE);
  coap_block_t b;
  assert_true(sim_block_of(r, COAP_OPTION_BLOCK1, &b));
  assert_int_equal(b.num, 0);
  assert_int_equal(b.szx, 4);
  for (uint32_t num = 4; num * 256 < 3000; num++) {
    size_t off = num * 256, n = 3000 - off < 256 ? 3000 - off : 256;
    begin(&m, COAP_PUT, "sink");
    sim_opt_block(&m, COAP_OPTION_BLOCK1, num, off + n < 3000, 4);
    set_payload(&m, body + off, n);
    r = ask(&m);
  }
  assert_int_equal(r->code, COAP_CHANGED);
  assert_int_equal(sink_len, 3000);
  assert_memory_equal(sink, body, 3000);
  assert_int_equal(sink_calls, 1);
}

static void send_block(coap_msg_t *m, uint8_t method, const char *path, uint32_t num, int more,
                       uint8_t szx, size_t off, size_t n) {
  begin(m, method, path);
  sim_opt_block(m, COAP_OPTION_BLOCK1, num, more, szx);
  set_payload(m, body + off, n);
}

/* A missing block, a block without its predecessors, a size that does
 * not match the block: 4.08 / 4.00, and the handler never runs. */
static void test_block1_missing_and_bad_blocks(void **state) {
  fill_body(5000, 4);
  coap_msg_t m;
  send_block(&m, COAP_PUT, "sink", 1, 1, 6, 1024, 1024);
  assert_int_equal(ask(&m)->code, COAP_REQUEST_ENTITY_INCOMPLETE);
  send_block(&m, COAP_PUT, "sink", 0, 1, 6, 0, 1024);
  assert_int_equal(ask(&m)->code, COAP_CONTINUE);
  send_block(&m, COAP_PUT, "sink", 2, 1, 6, 2048, 1024); /* block 1 missing */
  assert_int_equal(ask(&m)->code, COAP_REQUEST_ENTITY_INCOMPLETE);
  send_block(&m, COAP_PUT, "sink", 4, 0, 6, 4096, 904); /* last, blocks missing */
  assert_int_equal(ask(&m)->code, COAP_REQUEST_ENTITY_INCOMPLETE);
  send_block(&m, COAP_PUT, "sink", 1, 1, 6, 1024, 100); /* not the last, short */
  assert_int_equal(ask(&m)->code, COAP_BAD_REQUEST);
  /* The body under way is intact: it can still be finished. */
  for (uint32_t num = 1; num < 5; num++) {
    send_block(&m, COAP_PUT, "sink", num, num < 4, 6, num * 1024, num < 4 ? 1024 : 904);
    ask(&m);
  }
  assert_int_equal(reply.code, COAP_CHANGED);
  assert_int_equal(sink_calls, 1);
  assert_memory_equal(sink, body, 5000);
  /* Block1 on a method without a body is not acted on: 4.02. */
  begin(&m, COAP_GET, "big");
  sim_opt_block(&m, COAP_OPTION_BLOCK1, 0, 0, 6);
  assert_int_equal(ask(&m)->code, COAP_BAD_OPTION);
}

/* Blocks that cover bytes already there: the same bytes (a resend with a
 * new message ID, or smaller blocks over a larger one) are taken once;
 * different bytes end the transfer with 4.08. */
static void test_block1_overlaps(void **state) {
  fill_body(4096, 5);
  coap_msg_t m;
  send_block(&m, COAP_PUT, "sink", 0, 1, 6, 0, 1024);
  assert_int_equal(ask(&m)->code, COAP_CONTINUE);
  send_block(&m, COAP_PUT, "sink", 0, 1, 6, 0, 1024); /* resent, new MID */
  assert_int_equal(ask(&m)->code, COAP_CONTINUE);
  send_block(&m, COAP_PUT, "sink", 1, 1, 5, 512, 512); /* inside block 0 */
  assert_int_equal(ask(&m)->code, COAP_CONTINUE);
  send_block(&m, COAP_PUT, "sink", 2, 1, 5, 1024, 512); /* size changed: 512s */
  assert_int_equal(ask(&m)->code, COAP_CONTINUE);
  send_block(&m, COAP_PUT, "sink", 3, 0, 5, 1536, 512); /* last */
  const coap_msg_t *r = ask(&m);
  assert_int_equal(r->code, COAP_CHANGED);
  assert_int_equal(sink_len, 2048);
  assert_memory_equal(sink, body, 2048);
  assert_int_equal(sink_calls, 1);

  send_block(&m, COAP_PUT, "sink", 0, 1, 6, 0, 1024);
  assert_int_equal(ask(&m)->code, COAP_CONTINUE);
  begin(&m, COAP_PUT, "sink");
  sim_opt_block(&m, COAP_OPTION_BLOCK1, 1, 1, 5); /* bytes 512..1023, but other bytes */
  uint8_t other[512];
  memset(other, 0xEE, sizeof other);
  set_payload(&m, other, sizeof other);
  assert_int_equal(ask(&m)->code, COAP_REQUEST_ENTITY_INCOMPLETE);
  /* That transfer is over: its next block has no predecessors now. */
  send_block(&m, COAP_PUT, "sink", 1, 1, 6, 1024, 1024);
  assert_int_equal(ask(&m)->code, COAP_REQUEST_ENTITY_INCOMPLETE);
  assert_int_equal(sink_calls, 1);
}

/* Over max_body: Size1 in block 0 announcing too much, or blocks past
 * it, get 4.13 with Size1; a single message over max_payload gets 4.13
 * with Size1 and Block1 naming the block size to use. */
static void test_block1_too_large(void **state) {
  coap_context_free(ctx);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.max_body = 4000;
  server_new(&cfg);
  fill_body(5000, 6);
  coap_msg_t m;
  send_block(&m, COAP_PUT, "sink", 0, 1, 6, 0, 1024);
  sim_opt_uint(&m, COAP_OPTION_SIZE1, 5000);
  const coap_msg_t *r = ask(&m);
  assert_int_equal(r->code, COAP_REQUEST_ENTITY_TOO_LARGE);
  assert_int_equal(coap_msg_get_uint(r, COAP_OPTION_SIZE1, -1), 4000);

  for (uint32_t num = 0; num < 3; num++) {
    send_block(&m, COAP_PUT, "sink", num, 1, 6, num * 1024, 1024);
    assert_int_equal(ask(&m)->code, COAP_CONTINUE);
  }
  send_block(&m, COAP_PUT, "sink", 3, 1, 6, 3072, 1024); /* up to 4096 */
  r = ask(&m);
  assert_int_equal(r->code, COAP_REQUEST_ENTITY_TOO_LARGE);
  assert_int_equal(coap_msg_get_uint(r, COAP_OPTION_SIZE1, -1), 4000);
  assert_int_equal(sink_calls, 0);

  begin(&m, COAP_PUT, "sink");
  set_payload(&m, body, 1100);
  r = ask(&m);
  assert_int_equal(r->code, COAP_REQUEST_ENTITY_TOO_LARGE);
  assert_int_equal(coap_msg_get_uint(r, COAP_OPTION_SIZE1, -1), 1024);
  coap_block_t b;
  assert_true(sim_block_of(r, COAP_OPTION_BLOCK1, &b));
  assert_int_equal(b.szx, 6);
  begin(&m, COAP_PUT, "sink");
  set_payload(&m, body, 4500);
  r = ask(&m);
  assert_int_equal(r->code, COAP_REQUEST_ENTITY_TOO_LARGE);
  assert_int_equal(coap_msg_get_uint(r, COAP_OPTION_SIZE1, -1), 4000);
  assert_int_equal(sink_calls, 0);
}

/* A lock-step client over a path that loses and duplicates datagrams,
 * resending with the same message ID (and now and then with a new one):
 * the handler runs once and gets the body byte for byte. */
static void test_block1_loss_and_duplication(void **state) {
  for (unsigned seed = 1; seed <= 40; seed++) {
    uint32_t rnd = seed * 2654435761u;
#define RND() ((rnd = rnd * 1103515245u + 12345u) >> 16 & 0x7fff)
    size_t len = 3000 + seed * 211;
    uint8_t szx = (uint8_t)(seed % 7);
    size_t size = coap_block_size(szx);
    fill_body(len, seed);
    unsigned calls = sink_calls;
    const coap_msg_t *r = NULL;
    for (uint32_t num = 0; (size_t)num * size < len; num++) {
      size_t off = (size_t)num * size, n = len - off < size ? len - off : size;
      int more = off + n < len;
      coap_msg_t m;
      send_block(&m, COAP_PUT, "sink", num, more, szx, off, n);
      for (int tries = 0;; tries++) {
        assert_true(tries < 50);
        if (more && RND() % 10 == 0) m.mid = next_mid++; /* restated */
        if (RND() % 4 == 0) continue;                    /* request lost */
        r = ask(&m);
        if (RND() % 4 == 0) r = ask(&m); /* duplicated */
        if (RND() % 4 == 0) continue;    /* answer lost */
        break;
      }
      if (more) assert_int_equal(r->code, COAP_CONTINUE);
    }
    assert_int_equal(r->code, COAP_CHANGED);
    assert_int_equal(sink_calls, calls + 1);
    assert_int_equal(sink_len, len);
    assert_memory_equal(sink, body, len);
#undef RND
  }
  assert_int_equal(ctx->server.b1.count, 0);
}

/* Request-Tag tells concurrent bodies of one peer apart; a fifth body of
 * one peer replaces its oldest; the context's budget answers 5.03. */
static void test_block1_tags_and_limits(void **state) {
  fill_body(2048, 7);
  coap_msg_t m;
  for (uint8_t tag = 0; tag < 5; tag++) {
    send_block(&m, COAP_PUT, "sink", 0, 1, 6, 0, 1024);
    sim_opt(&m, COAP_OPTION_REQUEST_TAG, &tag, 1);
    assert_int_equal(ask(&m)->code, COAP_CONTINUE);
  }
  assert_int_equal(ctx->server.b1.count, 4);
  uint8_t tag0 = 0, tag4 = 4;
  send_block(&m, COAP_PUT, "sink", 1, 0, 6, 1024, 1024);
  sim_opt(&m, COAP_OPTION_REQUEST_TAG, &tag0, 1); /* replaced: gone */
  assert_int_equal(ask(&m)->code, COAP_REQUEST_ENTITY_INCOMPLETE);
  send_block(&m, COAP_PUT, "sink", 1, 0, 6, 1024, 1024);
  sim_opt(&m, COAP_OPTION_REQUEST_TAG, &tag4, 1);
  assert_int_equal(ask(&m)->code, COAP_CHANGED);
  assert_memory_equal(sink, body, 2048);
  /* Without a tag it is another body again. */
  send_block(&m, COAP_PUT, "sink", 1, 0, 6, 1024, 1024);
  assert_int_equal(ask(&m)->code, COAP_REQUEST_ENTITY_INCOMPLETE);

  coap_context_free(ctx);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.max_reassembly = 6000;
  server_new(&cfg);
  send_block(&m, COAP_PUT, "sink", 0, 1, 6, 0, 1024);
  assert_int_equal(ask_from(&m, 1)->code, COAP_CONTINUE);
  send_block(&m, COAP_PUT, "sink", 0, 1, 6, 0, 1024);
  const coap_msg_t *r = ask_from(&m, 2);
  assert_int_equal(r->code, COAP_SERVICE_UNAVAILABLE);
  assert_true(coap_msg_get_uint(r, COAP_OPTION_MAX_AGE, -1) > 0);
}

/* An unfinished body expires EXCHANGE_LIFETIME after its last block. */
static void test_block1_expiry(void **state) {
  fill_body(2048, 8);
  coap_msg_t m;
  send_block(&m, COAP_PUT, "sink", 0, 1, 6, 0, 1024);
  assert_int_equal(ask(&m)->code, COAP_CONTINUE);
  vnow += 200000; /* within the 247 s */
  coap_context_handle_timeouts(ctx, vnow);
  assert_int_equal(ctx->server.b1.count, 1);
  vnow += 60000;
  coap_context_handle_timeouts(ctx, vnow);
  assert_int_equal(ctx->server.b1.count, 0);
  send_block(&m, COAP_PUT, "sink", 1, 0, 6, 1024, 1024);
  assert_int_equal(ask(&m)->code, COAP_REQUEST_ENTITY_INCOMPLETE);
  assert_int_equal(sink_calls, 0);
}

/* A body under way is an open exchange: a full peer table does not evict
 * its peer for a newcomer; once it is done, the peer may go, and its
 * state goes with it. */
static void test_block1_spares_peer_from_eviction(void **state) {
  coap_context_free(ctx);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.max_peers = 1;
  cfg.peer_evict_ms = 1000;
  server_new(&cfg);
  fill_body(2048, 9);
  coap_msg_t m;
  send_block(&m, COAP_PUT, "sink", 0, 1, 6, 0, 1024);
  assert_int_equal(ask_from(&m, 1)->code, COAP_CONTINUE);
  vnow += 5000;
  begin(&m, COAP_GET, "time");
  assert_null(ask_from(&m, 2)); /* refused: peer 1 has a body open */
  coap_stats_t st;
  coap_context_get_stats(ctx, &st);
  assert_int_equal(st.peers_rejected, 1);
  assert_int_equal(st.peers_evicted, 0);
  send_block(&m, COAP_PUT, "sink", 1, 0, 6, 1024, 1024);
  assert_int_equal(ask_from(&m, 1)->code, COAP_CHANGED);
  vnow += 5000;
  begin(&m, COAP_GET, "time");
  assert_non_null(ask_from(&m, 2));
  coap_context_get_stats(ctx, &st);
  assert_int_equal(st.peers_evicted, 1);

  /* A peer that goes away takes its unfinished body along. */
  send_block(&m, COAP_PUT, "sink", 0, 1, 6, 0, 1024);
  assert_int_equal(ask_from(&m, 2)->code, COAP_CONTINUE);
  assert_int_equal(ctx->server.b1.count, 1);
  coap_server_peer_gone(&ctx->server, coap_peer_table_oldest(&ctx->peers));
  assert_int_equal(ctx->server.b1.count, 0);
}

/* Fetch blocks 1.. of a POST answer to /|path| kept by the server, after
 * block 0 in |r|; append them to |got| (block 0 already there). */
static size_t fetch_kept(const char *path, const coap_msg_t *r, uint8_t *got, uint8_t code) {
  coap_block_t b2;
  uint8_t tag0[8], tag[8];
  assert_true(sim_block_of(r, COAP_OPTION_BLOCK2, &b2));
  assert_int_equal(b2.num, 0);
  assert_int_equal(etag_of(r, tag0), 8);
  size_t got_len = r->payload_len;
  memcpy(got, r->payload, got_len);
  for (uint32_t num = 1; b2.more; num++) {
    coap_msg_t m;
    begin(&m, COAP_POST, path);
    sim_opt_block(&m, COAP_OPTION_BLOCK2, num, 0, 6);
    r = ask(&m);
    assert_int_equal(r->code, code);
    assert_true(sim_block_of(r, COAP_OPTION_BLOCK2, &b2));
    assert_int_equal(b2.num, num);
    assert_int_equal(etag_of(r, tag), 8);
    assert_memory_equal(tag, tag0, 8);
    memcpy(got + got_len, r->payload, r->payload_len);
    got_len += r->payload_len;
  }
  return got_len;
}

/* A POST whose body comes in Block1 and whose answer goes in Block2
 * (RFC 7959 §2.7, §3.3): the last block's answer is block 0 with Block1
 * echoed; later blocks come from the kept answer, without running the
 * handler again. */
static void test_block1_with_block2_answer(void **state) {
  static uint8_t got[BIG_MAX];
  fill_body(3000, 10);
  const coap_msg_t *r = upload(COAP_POST, "echo", 3000, 6);
  assert_int_equal(r->code, COAP_CHANGED);
  coap_block_t b1, b2;
  assert_true(sim_block_of(r, COAP_OPTION_BLOCK1, &b1));
  assert_int_equal(b1.num, 2);
  assert_int_equal(b1.more, 0);
  assert_true(sim_block_of(r, COAP_OPTION_BLOCK2, &b2));
  assert_int_equal(b2.num, 0);
  assert_int_equal(b2.more, 1);
  assert_int_equal(fetch_kept("echo", r, got, COAP_CHANGED), 3000);
  assert_memory_equal(got, body, 3000);
  assert_int_equal(echo_calls, 1);
  /* No kept answer for another peer: 4.00, not the POST run again. */
  coap_msg_t m;
  begin(&m, COAP_POST, "echo");
  sim_opt_block(&m, COAP_OPTION_BLOCK2, 1, 0, 6);
  assert_int_equal(ask_from(&m, 3)->code, COAP_BAD_REQUEST);
  assert_int_equal(echo_calls, 1);
}

/* A POST whose handler defers, with a body in Block1 and an answer that
 * goes block-wise: the later blocks come from the kept answer, as for a
 * synchronous one, never 4.00 and never the handler again. */
static void test_block1_deferred_block2_answer(void **state) {
  static uint8_t got[BIG_MAX];
  fill_body(3000, 12);
  size_t size = 1024;
  coap_msg_t m;
  for (uint32_t num = 0; num < 3; num++) {
    size_t off = num * size, n = 3000 - off < size ? 3000 - off : size;
    send_block(&m, COAP_POST, "slow", num, num < 2, 6, off, n);
    const coap_msg_t *r = ask_from(&m, 9);
    if (num < 2) assert_int_equal(r->code, COAP_CONTINUE);
  }
  assert_non_null(pending);
  assert_int_equal(slow_post_calls, 1);
  assert_int_equal(slow_len, 3000);
  vnow += 500;
  coap_response_t *resp = coap_deferred_response(pending);
  coap_response_set_code(resp, COAP_CHANGED);
  assert_int_equal(coap_response_set_payload(resp, COAP_FORMAT_OCTET_STREAM, slow_body, slow_len),
                   0);
  unsigned before = n_out;
  assert_int_equal(coap_deferred_send(ctx, pending), 0);
  assert_int_equal(n_out, before + 1);
  assert_int_equal(coap_msg_parse(&reply, out, out_len), 0);
  assert_int_equal(reply.code, COAP_CHANGED);
  coap_block_t b1;
  assert_true(sim_block_of(&reply, COAP_OPTION_BLOCK1, &b1));
  assert_int_equal(b1.num, 2);
  coap_msg_t first = reply;
  assert_int_equal(fetch_kept("slow", &first, got, COAP_CHANGED), 3000);
  assert_memory_equal(got, body, 3000);
  assert_int_equal(slow_post_calls, 1);

  /* A one-message POST deferred likewise. */
  pending = NULL;
  begin(&m, COAP_POST, "slow");
  set_payload(&m, body, 1000);
  ask_from(&m, 9);
  assert_non_null(pending);
  resp = coap_deferred_response(pending);
  static uint8_t twice[2000];
  memcpy(twice, body, 1000);
  memcpy(twice + 1000, body, 1000);
  coap_response_set_payload(resp, COAP_FORMAT_NONE, twice, 2000);
  assert_int_equal(coap_deferred_send(ctx, pending), 0);
  assert_int_equal(coap_msg_parse(&reply, out, out_len), 0);
  first = reply;
  assert_int_equal(fetch_kept("slow", &first, got, COAP_CHANGED), 2000);
  assert_memory_equal(got, twice, 2000);
  assert_int_equal(slow_post_calls, 2);

  /* A deferred answer that fits one block keeps nothing; one that never
   * comes leaves nothing behind after EXCHANGE_LIFETIME. */
  pending = NULL;
  begin(&m, COAP_POST, "slow");
  set_payload(&m, body, 10);
  ask_from(&m, 9);
  resp = coap_deferred_response(pending);
  coap_response_set_payload(resp, COAP_FORMAT_NONE, body, 10);
  assert_int_equal(coap_deferred_send(ctx, pending), 0);
  pending = NULL;
  begin(&m, COAP_POST, "slow");
  set_payload(&m, body, 10);
  sim_opt(&m, COAP_OPTION_REQUEST_TAG, "t", 1);
  ask_from(&m, 9);
  assert_non_null(pending);
  vnow += 300000;
  coap_context_handle_timeouts(ctx, vnow);
  assert_int_equal(ctx->server.b1.count, 0);
}

/* ---- RFC 7252 §5.4 and the rest of issue 12's list ---- */

static uint8_t code_for(uint16_t number, const void *v, size_t n) {
  coap_msg_t m;
  begin(&m, COAP_GET, "time");
  sim_opt(&m, number, v, n);
  return ask(&m)->code;
}

static void test_options_not_acted_on(void **state) {
  assert_int_equal(code_for(COAP_OPTION_OSCORE, "", 0), COAP_BAD_OPTION);
  /* Q-Block (RFC 9177) is acted on: Q-Block1 without a body is 4.02. */
  assert_int_equal(code_for(COAP_OPTION_Q_BLOCK1, "", 0), COAP_BAD_OPTION);
  assert_int_equal(code_for(2049, "x", 1), COAP_BAD_OPTION);
  assert_int_equal(code_for(COAP_OPTION_PROXY_URI, "coap://elsewhere/x", 18),
                   COAP_PROXYING_NOT_SUPPORTED);
  assert_int_equal(code_for(COAP_OPTION_PROXY_SCHEME, "coap", 4), COAP_PROXYING_NOT_SUPPORTED);
  /* Out of their length range: critical ones refused. */
  assert_int_equal(code_for(COAP_OPTION_URI_HOST, "", 0), COAP_BAD_OPTION);
  assert_int_equal(code_for(COAP_OPTION_ACCEPT, "\x00\x00\x32", 3), COAP_BAD_OPTION);
  assert_int_equal(code_for(COAP_OPTION_URI_PORT, "\x00\x16\x33", 3), COAP_BAD_OPTION);
  assert_int_equal(code_for(COAP_OPTION_IF_MATCH, "123456789", 9), COAP_BAD_OPTION);
  assert_int_equal(hello_calls, 0);
  assert_int_equal(code_for(COAP_OPTION_Q_BLOCK2, "", 0), COAP_CONTENT);
  /* Elective ones ignored: a 5-byte Max-Age, an unknown even number. */
  assert_int_equal(code_for(COAP_OPTION_MAX_AGE, "\1\2\3\4\5", 5), COAP_CONTENT);
  assert_int_equal(code_for(2048, "x", 1), COAP_CONTENT);
  /* The registered ones the server acts on pass. */
  assert_int_equal(code_for(COAP_OPTION_URI_HOST, "example", 7), COAP_CONTENT);
  assert_int_equal(code_for(COAP_OPTION_ACCEPT, "", 0), COAP_CONTENT);
}

static void test_repeated_options(void **state) {
  coap_msg_t m;
  begin(&m, COAP_GET, "time");
  sim_opt_uint(&m, COAP_OPTION_ACCEPT, 0);
  sim_opt_uint(&m, COAP_OPTION_ACCEPT, 50);
  assert_int_equal(ask(&m)->code, COAP_BAD_OPTION);
  begin(&m, COAP_GET, "time");
  sim_opt(&m, COAP_OPTION_URI_HOST, "a", 1);
  sim_opt(&m, COAP_OPTION_URI_HOST, "b", 1);
  assert_int_equal(ask(&m)->code, COAP_BAD_OPTION);
  assert_int_equal(hello_calls, 0);
  /* An elective one repeated: only the first counts, the handler sees it
   * alone; one out of range is not seen at all. */
  begin(&m, COAP_GET, "time");
  sim_opt_uint(&m, COAP_OPTION_CONTENT_FORMAT, 50);
  sim_opt_uint(&m, COAP_OPTION_CONTENT_FORMAT, 0);
  const coap_msg_t *r = ask(&m);
  assert_int_equal(r->code, COAP_CONTENT);
  assert_int_equal(r->payload_len, 5);
  assert_memory_equal(r->payload, "cf=50", 5);
  begin(&m, COAP_GET, "time");
  sim_opt(&m, COAP_OPTION_CONTENT_FORMAT, "\0\0\0", 3);
  r = ask(&m);
  assert_memory_equal(r->payload, "cf=-1", 5);
}

/* An empty path segment is part of the URI: "//time" and "time/" are not
 * "/time"; a lone empty segment is the root. */
static void test_empty_path_segments(void **state) {
  coap_msg_t m;
  begin(&m, COAP_GET, NULL);
  sim_opt(&m, COAP_OPTION_URI_PATH, "", 0);
  sim_opt(&m, COAP_OPTION_URI_PATH, "time", 4);
  assert_int_equal(ask(&m)->code, COAP_NOT_FOUND);
  begin(&m, COAP_GET, "time");
  sim_opt(&m, COAP_OPTION_URI_PATH, "", 0);
  assert_int_equal(ask(&m)->code, COAP_NOT_FOUND);
  begin(&m, COAP_GET, "time");
  assert_int_equal(ask(&m)->code, COAP_CONTENT);
  begin(&m, COAP_GET, NULL);
  sim_opt(&m, COAP_OPTION_URI_PATH, "", 0);
  assert_int_equal(ask(&m)->code, COAP_CONTENT); /* the root */
}

static void test_preconditions(void **state) {
  coap_msg_t m;
  /* If-None-Match on a resource that does not exist yet: created. */
  begin(&m, COAP_PUT, "doc");
  sim_opt(&m, COAP_OPTION_IF_NONE_MATCH, "", 0);
  assert_int_equal(ask(&m)->code, COAP_CHANGED);
  assert_int_equal(doc_puts, 1);
  /* Again: it exists now. */
  begin(&m, COAP_PUT, "doc");
  sim_opt(&m, COAP_OPTION_IF_NONE_MATCH, "", 0);
  const coap_msg_t *r = ask(&m);
  assert_int_equal(r->code, COAP_PRECONDITION_FAILED);
  assert_int_equal(doc_puts, 1);
  /* If-Match with the current ETag, then with the old one. */
  uint8_t v2[2] = {'v', 2}, v9[2] = {'v', 9};
  begin(&m, COAP_PUT, "doc");
  sim_opt(&m, COAP_OPTION_IF_MATCH, v9, 2);
  sim_opt(&m, COAP_OPTION_IF_MATCH, v2, 2);
  assert_int_equal(ask(&m)->code, COAP_CHANGED);
  assert_int_equal(doc_puts, 2);
  begin(&m, COAP_PUT, "doc");
  sim_opt(&m, COAP_OPTION_IF_MATCH, v2, 2);
  assert_int_equal(ask(&m)->code, COAP_PRECONDITION_FAILED);
  assert_int_equal(doc_puts, 2);
  /* An empty If-Match: any current representation. */
  begin(&m, COAP_PUT, "doc");
  sim_opt(&m, COAP_OPTION_IF_MATCH, "", 0);
  assert_int_equal(ask(&m)->code, COAP_CHANGED);
  /* On a GET: judged on its own answer. */
  begin(&m, COAP_GET, "doc");
  sim_opt(&m, COAP_OPTION_IF_MATCH, v9, 2);
  assert_int_equal(ask(&m)->code, COAP_PRECONDITION_FAILED);
  /* A resource without its own ETag: the hash its block-wise answers
   * carry is the one to match. */
  uint8_t tag[8];
  begin(&m, COAP_GET, "big");
  assert_int_equal(etag_of(ask(&m), tag), 8);
  begin(&m, COAP_GET, "big");
  sim_opt(&m, COAP_OPTION_IF_MATCH, tag, 8);
  assert_int_equal(ask(&m)->code, COAP_CONTENT);
  tag[0] ^= 1;
  begin(&m, COAP_GET, "big");
  sim_opt(&m, COAP_OPTION_IF_MATCH, tag, 8);
  assert_int_equal(ask(&m)->code, COAP_PRECONDITION_FAILED);
}

/* A request larger than 2048 bytes in one datagram is read and answered
 * (4.13), not dropped. */
static void test_large_datagram_answered(void **state) {
  fill_body(30000, 11);
  coap_msg_t m;
  begin(&m, COAP_PUT, "sink");
  set_payload(&m, body, 9000);
  const coap_msg_t *r = ask(&m);
  assert_int_equal(r->code, COAP_REQUEST_ENTITY_TOO_LARGE);
  assert_int_equal(coap_msg_get_uint(r, COAP_OPTION_SIZE1, -1), 1024);
}

/* ---- coaps:// ---- */

static int largest_from_server;
static simnet_node_t *dtls_server;
static int watch(void *user, const simnet_node_t *from, const coap_address_t *to,
                 const uint8_t *data, size_t len, unsigned seq) {
  if (from == dtls_server && (int)len > largest_from_server) largest_from_server = (int)len;
  return 0;
}

static int first_szx = -1;
static void trace(void *user, int outgoing, const coap_address_t *peer, const coap_msg_t *msg) {
  coap_block_t b;
  const coap_option_t *o = coap_msg_find_option(msg, COAP_OPTION_BLOCK2);
  if (outgoing && o && first_szx < 0 && coap_block_decode(o, &b) == 0) first_szx = b.szx;
}

static void set_psk(coap_context_t *c) {
  coap_dtls_context_t *d = coap_dtls_new_context(c);
  assert_non_null(d);
  assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)"dev", (const uint8_t *)"secret-key", 10),
                   0);
  assert_int_equal(coap_dtls_set_mtu(d, 500), 0);
  assert_int_equal(coap_context_set_dtls_context(c, d), 0);
}

/* A DTLS server with a 500-byte MTU answers in blocks that fit it. */
static void test_dtls_blocks_fit_mtu(void **state) {
  static simnet_t net;
  simnet_init(&net);
  dtls_server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
  simnet_node_t *client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  set_psk(dtls_server->ctx);
  set_psk(client->ctx);
  coap_resource_t *r = coap_resource_add(dtls_server->ctx, "big");
  coap_resource_set_handler(r, COAP_GET, big_get, NULL);
  coap_context_set_trace(dtls_server->ctx, trace, NULL);
  net.filter = watch;
  largest_from_server = 0;
  first_szx = -1;
  sim_reply_t box;
  sim_get(client, "coaps://10.0.0.1/big", &box, 120000);
  assert_int_equal(box.status, 0);
  assert_int_equal(box.code, COAP_CONTENT);
  assert_true(first_szx >= 0 && first_szx <= 4);
  assert_true(largest_from_server <= 500);
  simnet_free(&net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_block2_whole_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_negotiation_and_any_block, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_server_prefers_smaller, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_past_end_and_reserved_szx, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_etag_follows_changes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_b2_cache_keyed_by_request, setup, teardown),
      cmocka_unit_test_setup_teardown(test_b2_cache_per_peer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_b2_cache_bounds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_b2_cache_large_get, setup, teardown),
      cmocka_unit_test_setup_teardown(test_b2_cache_options_replayed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_deferred, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_over_max_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_put, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_size_negotiation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_missing_and_bad_blocks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_overlaps, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_too_large, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_loss_and_duplication, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_tags_and_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_spares_peer_from_eviction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_with_block2_answer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_deferred_block2_answer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_options_not_acted_on, setup, teardown),
      cmocka_unit_test_setup_teardown(test_repeated_options, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty_path_segments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_preconditions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_datagram_answered, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dtls_blocks_fit_mtu, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
