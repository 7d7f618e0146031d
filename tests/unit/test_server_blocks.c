/* The server's block-wise and option helpers on their own: the ETag hash,
 * the RFC 7252 §5.4 verdicts on a request's options, a response cut into
 * the block asked for, a body over max_body turned into 5.00, the key of
 * the Block2 copies kept for GET and FETCH; and the I/O
 * shell taking a datagram larger than 2048 bytes from a real socket. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "coaps/io.h"
#include "server/server.h"

static void test_etag(void **state) {
  static uint8_t a[5000];
  for (size_t i = 0; i < sizeof a; i++) a[i] = (uint8_t)(i * 31);
  uint8_t t1[8], t2[8], t3[8], t4[8];
  coap_body_etag(a, sizeof a, t1);
  coap_body_etag(a, sizeof a, t2);
  assert_memory_equal(t1, t2, 8);
  a[4999] ^= 1; /* the tail, past the last whole word */
  coap_body_etag(a, sizeof a, t3);
  assert_memory_not_equal(t1, t3, 8);
  a[4999] ^= 1;
  a[8] ^= 0x80;
  coap_body_etag(a, sizeof a, t3);
  assert_memory_not_equal(t1, t3, 8);
  a[8] ^= 0x80;
  /* Zero bytes appended are a different representation. */
  static uint8_t z[16];
  coap_body_etag(z, 8, t3);
  coap_body_etag(z, 16, t4);
  assert_memory_not_equal(t3, t4, 8);
  coap_body_etag(NULL, 0, t4);
  coap_body_etag(z, 1, t3);
  assert_memory_not_equal(t3, t4, 8);
}

static void add(coap_msg_t *m, uint16_t n, const char *v, size_t len) {
  coap_option_t *o = &m->options[m->n_options++];
  o->number = n;
  o->length = (uint16_t)len;
  o->value = (const uint8_t *)v;
}

static int verdict(const coap_msg_t *m, const coap_msg_t **clean, coap_msg_t *scratch) {
  char why[128] = "";
  int code = coap_server_check_options(m, scratch, clean, why, sizeof why);
  if (code) assert_true(strlen(why) > 0); /* says which option and why */
  return code;
}

static void test_option_verdicts(void **state) {
  coap_msg_t m, scratch;
  const coap_msg_t *clean;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  add(&m, COAP_OPTION_URI_PATH, "a", 1);
  add(&m, COAP_OPTION_URI_PATH, "", 0);
  add(&m, COAP_OPTION_ACCEPT, "\x32", 1);
  assert_int_equal(verdict(&m, &clean, &scratch), 0);
  assert_ptr_equal(clean, &m); /* nothing to drop: no copy */

  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  add(&m, COAP_OPTION_OSCORE, "", 0);
  assert_int_equal(verdict(&m, &clean, &scratch), COAP_BAD_OPTION);
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  add(&m, COAP_OPTION_Q_BLOCK2, "", 0);
  assert_int_equal(verdict(&m, &clean, &scratch), COAP_BAD_OPTION);
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  add(&m, COAP_OPTION_PROXY_SCHEME, "coap", 4);
  assert_int_equal(verdict(&m, &clean, &scratch), COAP_PROXYING_NOT_SUPPORTED);
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  add(&m, COAP_OPTION_PROXY_URI, "", 0); /* empty: out of range first */
  assert_int_equal(verdict(&m, &clean, &scratch), COAP_BAD_OPTION);
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  add(&m, COAP_OPTION_IF_NONE_MATCH, "x", 1); /* must be empty */
  assert_int_equal(verdict(&m, &clean, &scratch), COAP_BAD_OPTION);
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  add(&m, COAP_OPTION_URI_PORT, "\1\2", 2);
  add(&m, COAP_OPTION_URI_PORT, "\1\2", 2);
  assert_int_equal(verdict(&m, &clean, &scratch), COAP_BAD_OPTION);

  /* Elective flaws: dropped from a copy, the rest kept in order. */
  coap_msg_init(&m, COAP_TYPE_CON, COAP_PUT, 1);
  add(&m, COAP_OPTION_ETAG, "", 0); /* empty ETag: out of range */
  add(&m, COAP_OPTION_URI_PATH, "p", 1);
  add(&m, COAP_OPTION_CONTENT_FORMAT, "\x32", 1);
  add(&m, COAP_OPTION_CONTENT_FORMAT, "\x00", 1); /* repeated */
  add(&m, COAP_OPTION_SIZE1, "\1\2\3\4\5", 5);    /* too long */
  add(&m, 1000, "x", 1);                          /* unknown, elective */
  assert_int_equal(verdict(&m, &clean, &scratch), 0);
  assert_ptr_equal(clean, &scratch);
  assert_int_equal(clean->n_options, 3);
  assert_int_equal(clean->options[0].number, COAP_OPTION_URI_PATH);
  assert_int_equal(clean->options[1].number, COAP_OPTION_CONTENT_FORMAT);
  assert_int_equal(clean->options[1].value[0], 0x32);
  assert_int_equal(clean->options[2].number, 1000);
  assert_int_equal(clean->code, COAP_PUT);
}

typedef struct built {
  coap_response_t resp;
  uint8_t store[COAP_RESPONSE_STORE];
  coap_body_buf_t big;
} built_t;

/* A response to a GET carrying |b2| (NULL: none), with |len| bytes. */
static void build(built_t *b, const coap_block_t *b2, int size2, size_t len, size_t max_body) {
  static uint8_t body[100000];
  for (size_t i = 0; i < sizeof body; i++) body[i] = (uint8_t)i;
  coap_msg_t req;
  coap_msg_init(&req, COAP_TYPE_CON, COAP_GET, 7);
  if (b2) coap_msg_add_block(&req, COAP_OPTION_BLOCK2, b2);
  if (size2) coap_msg_add_uint(&req, COAP_OPTION_SIZE2, 0);
  memset(&b->big, 0, sizeof b->big);
  coap_response_init(&b->resp, &req, b->store, sizeof b->store);
  coap_response_set_limits(&b->resp, &b->big, max_body, 6);
  coap_response_set_payload(&b->resp, COAP_FORMAT_OCTET_STREAM, body, len);
  coap_response_finish(&b->resp);
}

static void test_finish_cuts_blocks(void **state) {
  built_t b;
  coap_block_t got;
  build(&b, NULL, 0, 500, 1 << 20); /* fits: untouched */
  assert_null(coap_msg_find_option(&b.resp.msg, COAP_OPTION_BLOCK2));
  assert_null(coap_msg_find_option(&b.resp.msg, COAP_OPTION_ETAG));
  assert_int_equal(b.resp.msg.payload_len, 500);
  free(b.big.data);

  build(&b, NULL, 0, 40000, 1 << 20); /* past the store: the body buffer */
  assert_non_null(b.big.data);
  assert_int_equal(coap_block_decode(coap_msg_find_option(&b.resp.msg, COAP_OPTION_BLOCK2), &got),
                   0);
  assert_int_equal(got.num, 0);
  assert_int_equal(got.more, 1);
  assert_int_equal(b.resp.msg.payload_len, 1024);
  assert_int_equal(coap_msg_get_uint(&b.resp.msg, COAP_OPTION_SIZE2, -1), 40000);
  free(b.big.data);

  coap_block_t ask = {39, 0, 6}; /* the last one: 40000 - 39 * 1024 = 64 bytes */
  build(&b, &ask, 0, 40000, 1 << 20);
  assert_int_equal(coap_block_decode(coap_msg_find_option(&b.resp.msg, COAP_OPTION_BLOCK2), &got),
                   0);
  assert_int_equal(got.num, 39);
  assert_int_equal(got.more, 0);
  assert_int_equal(b.resp.msg.payload_len, 64);
  assert_int_equal(b.resp.msg.payload[0], (uint8_t)(39 * 1024));
  assert_null(coap_msg_find_option(&b.resp.msg, COAP_OPTION_SIZE2));
  free(b.big.data);

  coap_block_t past = {40, 0, 6};
  build(&b, &past, 0, 40000, 1 << 20);
  assert_int_equal(b.resp.msg.code, COAP_BAD_REQUEST);
  free(b.big.data);

  coap_block_t small = {0, 0, 0};
  build(&b, &small, 1, 100, 1 << 20);
  assert_int_equal(b.resp.msg.payload_len, 16);
  assert_int_equal(coap_msg_get_uint(&b.resp.msg, COAP_OPTION_SIZE2, -1), 100);
  free(b.big.data);

  /* Over max_body: 5.00, no body, no Content-Format. */
  build(&b, NULL, 0, 50000, 30000);
  assert_int_equal(b.resp.msg.code, COAP_INTERNAL_SERVER_ERROR);
  assert_null(coap_msg_find_option(&b.resp.msg, COAP_OPTION_CONTENT_FORMAT));
  assert_null(coap_msg_find_option(&b.resp.msg, COAP_OPTION_BLOCK2));
  free(b.big.data);
}

/* ---- the Block2 copies' key (block2.c) ---- */

static coap_server_t cache_srv;
static coap_timer_heap_t cache_heap;
static coap_context_config_t cache_cfg;
static const coap_logger_t quiet = {.level = COAP_LOG_ERROR};
static int peer_a, peer_b, session_x; /* identities: their addresses */

/* A request: |method|, Uri-Path "r", then |n| options given as number and
 * string, and a payload (FETCH). */
static void request_of(coap_msg_t *m, uint8_t method, const char *payload, size_t n, ...) {
  coap_msg_init(m, COAP_TYPE_CON, method, 1);
  assert_int_equal(coap_msg_add_option(m, COAP_OPTION_URI_PATH, "r", 1), 0);
  va_list ap;
  va_start(ap, n);
  for (size_t i = 0; i < n; i++) {
    int number = va_arg(ap, int);
    const char *v = va_arg(ap, const char *);
    assert_int_equal(coap_msg_add_option(m, (uint16_t)number, v, strlen(v)), 0);
  }
  va_end(ap);
  if (payload) coap_msg_set_payload(m, payload, strlen(payload));
}

static void cache_keep_for(const coap_msg_t *m, const void *peer, const void *session) {
  static uint8_t store[COAP_RESPONSE_STORE], body[3000];
  static coap_body_buf_t big;
  coap_request_t req = {.msg = m, .peer_key = peer, .session_key = session, .now = 1000};
  coap_response_t resp;
  coap_response_init(&resp, m, store, sizeof store);
  coap_response_set_limits(&resp, &big, 1 << 20, 6);
  memset(body, m->n_options, sizeof body);
  assert_int_equal(coap_response_set_payload(&resp, COAP_FORMAT_TEXT_PLAIN, body, sizeof body), 0);
  coap_b2_cache_keep(&cache_srv, &req, &resp);
  free(big.data);
  big.data = NULL;
  big.cap = 0;
}

/* Would block 1 of |m| from |peer| come from a copy? */
static int cache_serves(const coap_msg_t *m, const void *peer, const void *session) {
  static uint8_t store[COAP_RESPONSE_STORE];
  coap_msg_t ask = *m;
  coap_block_t b = {1, 0, 6};
  assert_int_equal(coap_msg_add_block(&ask, COAP_OPTION_BLOCK2, &b), 0);
  coap_request_t req = {.msg = &ask, .peer_key = peer, .session_key = session, .now = 1001};
  coap_response_t resp;
  coap_response_init(&resp, &ask, store, sizeof store);
  int served = coap_b2_cache_serve(&cache_srv, &req, &resp);
  if (served) {
    assert_int_equal(resp.msg.payload_len, 3000);
    assert_int_equal(coap_msg_content_format(&resp.msg), COAP_FORMAT_TEXT_PLAIN);
    assert_non_null(coap_msg_find_option(&resp.msg, COAP_OPTION_ETAG));
  }
  return served;
}

/* What makes two requests the same representation's: the options in the
 * cache key with their order and exact values, a FETCH's body, the
 * method; what does not: NoCacheKey options (Echo, Size1), Observe in the
 * first. And only for a peer (and session) the copy was built for. */
static void test_b2_cache_key(void **state) {
  coap_context_config_default(&cache_cfg);
  coap_timer_heap_init(&cache_heap);
  assert_int_equal(coap_server_init(&cache_srv, 1024, &quiet), 0);
  coap_server_configure(&cache_srv, &cache_cfg, &cache_heap);
  coap_msg_t first, later;

  request_of(&first, COAP_GET, NULL, 2, COAP_OPTION_URI_QUERY, "a", COAP_OPTION_URI_QUERY, "b");
  cache_keep_for(&first, &peer_a, NULL);
  assert_true(cache_serves(&first, &peer_a, NULL));
  assert_false(cache_serves(&first, &peer_b, NULL));
  assert_false(cache_serves(&first, &peer_a, &session_x));
  request_of(&later, COAP_GET, NULL, 2, COAP_OPTION_URI_QUERY, "b", COAP_OPTION_URI_QUERY, "a");
  assert_false(cache_serves(&later, &peer_a, NULL)); /* order matters */
  request_of(&later, COAP_GET, NULL, 1, COAP_OPTION_URI_QUERY, "ab");
  assert_false(cache_serves(&later, &peer_a, NULL)); /* "a","b" is not "ab" */
  request_of(&later, COAP_GET, NULL, 3, COAP_OPTION_URI_QUERY, "a", COAP_OPTION_URI_QUERY, "b",
             COAP_OPTION_ECHO, "echo");
  assert_true(cache_serves(&later, &peer_a, NULL)); /* Echo: NoCacheKey */
  request_of(&later, COAP_FETCH, NULL, 2, COAP_OPTION_URI_QUERY, "a", COAP_OPTION_URI_QUERY, "b");
  assert_false(cache_serves(&later, &peer_a, NULL)); /* another method */

  /* Observe in the first request is not part of the key; a later block
   * that asks to observe goes to the handler. */
  request_of(&first, COAP_GET, NULL, 1, COAP_OPTION_OBSERVE, "");
  cache_keep_for(&first, &peer_a, NULL);
  request_of(&later, COAP_GET, NULL, 0);
  assert_true(cache_serves(&later, &peer_a, NULL));
  assert_false(cache_serves(&first, &peer_a, NULL));

  request_of(&first, COAP_FETCH, "abc", 0);
  cache_keep_for(&first, &peer_a, NULL);
  assert_true(cache_serves(&first, &peer_a, NULL));
  request_of(&later, COAP_FETCH, "abd", 0);
  assert_false(cache_serves(&later, &peer_a, NULL));
  request_of(&later, COAP_FETCH, "ab", 0);
  assert_false(cache_serves(&later, &peer_a, NULL));

  /* All of it in max_reassembly's count, and gone when stale. */
  assert_true(cache_srv.b1.bytes >= 3 * 3000);
  coap_timer_heap_run(&cache_heap, 1000 + 5000);
  assert_int_equal(cache_srv.b1.bytes, 0);
  assert_false(cache_serves(&first, &peer_a, NULL));
  coap_server_free(&cache_srv);
  coap_timer_heap_free(&cache_heap);
}

static void store_put(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  (*(int *)user)++;
}

/* The I/O shell reads a 3000-byte request (it once dropped anything over
 * 2048 bytes unseen) and the server answers it: 4.13 with Size1. */
static void test_shell_takes_large_datagrams(void **state) {
  coap_context_t *ctx = coap_context_new(NULL);
  assert_non_null(ctx);
  int calls = 0;
  coap_resource_t *r = coap_resource_add(ctx, "store");
  coap_resource_set_handler(r, COAP_PUT, store_put, &calls);
  coap_address_t a;
  assert_int_equal(coap_address_from_string(&a, "127.0.0.1", 0), 0);
  coap_endpoint_t *ep = coap_context_listen(ctx, COAP_PROTO_UDP, &a);
  assert_non_null(ep);
  uint16_t port = coap_address_get_port(coap_endpoint_address(ep));

  static uint8_t body[3000], dgram[4000], answer[4000];
  memset(body, 'x', sizeof body);
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_PUT, 0x4242);
  coap_msg_add_string(&m, COAP_OPTION_URI_PATH, "store");
  coap_msg_set_payload(&m, body, sizeof body);
  int n = coap_msg_encode(&m, dgram, sizeof dgram);
  assert_true(n > 2048);

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(sendto(fd, dgram, (size_t)n, 0, (struct sockaddr *)&to, sizeof to), n);
  ssize_t got = -1;
  for (int i = 0; i < 400 && got < 0; i++) {
    coap_context_process(ctx, 10);
    got = recv(fd, answer, sizeof answer, MSG_DONTWAIT);
  }
  assert_true(got > 0);
  coap_msg_t reply;
  assert_int_equal(coap_msg_parse(&reply, answer, (size_t)got), 0);
  assert_int_equal(reply.mid, 0x4242);
  assert_int_equal(reply.code, COAP_REQUEST_ENTITY_TOO_LARGE);
  assert_int_equal(coap_msg_get_uint(&reply, COAP_OPTION_SIZE1, -1), 1024);
  assert_int_equal(calls, 0);
  coap_stats_t st;
  coap_context_get_stats(ctx, &st);
  assert_int_equal(st.rx_too_large, 0);
  close(fd);
  coap_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_etag),
      cmocka_unit_test(test_option_verdicts),
      cmocka_unit_test(test_finish_cuts_blocks),
      cmocka_unit_test(test_b2_cache_key),
      cmocka_unit_test(test_shell_takes_large_datagrams),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
