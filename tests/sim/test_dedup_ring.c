/* The message layer's deduplication ring, driven directly: requests go in
 * as raw datagrams, whatever the layer sends is recorded. The ring grows
 * from a few entries to dedup_capacity and finds MIDs through a hash index;
 * these tests check that a duplicate always gets the answer its original
 * got, across growth (entries move while requests are pending), when MIDs
 * share a bucket, and once the oldest entries are recycled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "exchange/exchange.h"

#define MAX_SENT 512

typedef struct sent {
  uint8_t raw[64];
  size_t len;
} sent_t;

static sent_t sent[MAX_SENT];
static unsigned n_sent;
static unsigned handler_calls;
static int answer_now; /* 0: leave requests pending */
static coap_exch_in_t *pending[8];
static unsigned n_pending;

static coap_timer_heap_t timers;
static coap_logger_t logger = {.level = COAP_LOG_ERROR};
static coap_exch_t *ex;
static coap_exch_peer_t peer;

static int record_send(void *user, coap_exch_peer_t *p, const uint8_t *data, size_t len) {
  assert_true(len <= sizeof sent[0].raw);
  assert_true(n_sent < MAX_SENT);
  memcpy(sent[n_sent].raw, data, len);
  sent[n_sent++].len = len;
  return 0;
}

/* The answer names the request's MID, so a wrong cached reply shows. */
static void answer(coap_exch_in_t *in, uint16_t mid) {
  coap_msg_t resp;
  char text[16];
  int n = snprintf(text, sizeof text, "mid %u", mid);
  coap_msg_init(&resp, COAP_TYPE_ACK, COAP_CONTENT, 0);
  coap_msg_set_payload(&resp, text, (size_t)n);
  assert_int_equal(coap_exch_respond(ex, in, &resp, 0), 0);
}

static void on_request(void *user, coap_exch_peer_t *p, coap_exch_in_t *in, const coap_msg_t *req,
                       uint64_t now) {
  handler_calls++;
  if (answer_now) {
    answer(in, req->mid);
    return;
  }
  assert_true(n_pending < 8);
  pending[n_pending++] = in;
}

static void rng(void *user, uint8_t *buf, size_t len) {
  memset(buf, 0x5a, len);
}

static void start(uint16_t capacity) {
  coap_tx_params_t params;
  coap_tx_params_default(&params);
  params.dedup_capacity = capacity;
  static const coap_exch_callbacks_t cb = {.send = record_send, .on_request = on_request};
  coap_timer_heap_init(&timers);
  ex = coap_exch_new(&params, &cb, NULL, &timers, &logger, rng, NULL);
  assert_non_null(ex);
  coap_exch_peer_init(ex, &peer);
  n_sent = handler_calls = n_pending = 0;
  answer_now = 1;
}

static int teardown(void **state) {
  coap_exch_peer_clear(ex, &peer, 0);
  coap_exch_free(ex);
  coap_timer_heap_free(&timers);
  return 0;
}

/* A CON GET /x with message ID |mid|. */
static void request(uint16_t mid) {
  const uint8_t d[] = {0x41, 0x01, (uint8_t)(mid >> 8), (uint8_t)mid, 0x7e, 0xb1, 'x'};
  assert_int_equal(coap_exch_receive(ex, &peer, d, sizeof d, 1000), 0);
}

/* Whatever the layer sent last, parsed. */
static coap_msg_t last_sent(void) {
  coap_msg_t m;
  assert_true(n_sent > 0);
  assert_int_equal(coap_msg_parse(&m, sent[n_sent - 1].raw, sent[n_sent - 1].len), 0);
  return m;
}

static void assert_last_answers(uint16_t mid) {
  coap_msg_t m = last_sent();
  char text[16];
  int n = snprintf(text, sizeof text, "mid %u", mid);
  assert_int_equal(m.type, COAP_TYPE_ACK);
  assert_int_equal(m.mid, mid);
  assert_int_equal(m.payload_len, (size_t)n);
  assert_memory_equal(m.payload, text, (size_t)n);
}

static void test_duplicates_answered_across_growth(void **state) {
  start(64);
  for (uint16_t mid = 1; mid <= 40; mid++) request(mid); /* grows 4 → 64 */
  assert_int_equal(handler_calls, 40);
  for (uint16_t mid = 1; mid <= 40; mid++) {
    unsigned before = n_sent;
    request(mid);
    assert_int_equal(n_sent, before + 1);
    assert_memory_equal(sent[n_sent - 1].raw, sent[mid - 1].raw, sent[mid - 1].len);
    assert_last_answers(mid);
  }
  assert_int_equal(handler_calls, 40); /* no duplicate reached the handler */
}

static void test_oldest_recycled_when_full(void **state) {
  start(8);
  for (uint16_t mid = 100; mid < 116; mid++) request(mid);
  assert_int_equal(handler_calls, 16);
  for (uint16_t mid = 108; mid < 116; mid++) { /* the last 8 are remembered */
    request(mid);
    assert_last_answers(mid);
  }
  assert_int_equal(handler_calls, 16);
  request(100); /* forgotten: handled as a new request */
  assert_int_equal(handler_calls, 17);
  assert_last_answers(100);
}

/* Requests still pending while the ring grows keep their entry: a
 * duplicate of a slow one gets the empty ACK, and the answer given later
 * is what the next duplicate receives. */
static void test_pending_requests_survive_growth(void **state) {
  start(64);
  answer_now = 0;
  for (uint16_t mid = 1; mid <= 3; mid++) request(mid);
  assert_int_equal(n_pending, 3);
  answer_now = 1;
  for (uint16_t mid = 4; mid <= 30; mid++) request(mid); /* entries move */
  request(1);
  coap_msg_t ack = last_sent();
  assert_int_equal(ack.type, COAP_TYPE_ACK);
  assert_int_equal(ack.code, COAP_CODE_EMPTY);
  assert_int_equal(ack.mid, 1);
  answer(pending[1], 2); /* piggy-backed: its entry stores the reply */
  assert_last_answers(2);
  unsigned before = n_sent;
  request(2);
  assert_int_equal(n_sent, before + 1);
  assert_memory_equal(sent[n_sent - 1].raw, sent[n_sent - 2].raw, sent[n_sent - 1].len);
  answer(pending[0], 1); /* separate now, after the empty ACK */
  answer(pending[2], 3);
  assert_int_equal(handler_calls, 30);
}

/* MIDs that all fall into one bucket of the index still each find their
 * own entry, and recycling the oldest unlinks it from the middle of a
 * chain. */
static void test_mids_sharing_a_bucket(void **state) {
  start(64);
  for (uint16_t i = 0; i < 64; i++) request((uint16_t)(i * 64 + 5));
  for (uint16_t i = 0; i < 64; i++) {
    request((uint16_t)(i * 64 + 5));
    assert_last_answers((uint16_t)(i * 64 + 5));
  }
  assert_int_equal(handler_calls, 64);
  request(7); /* recycles the entry of MID 5 */
  assert_int_equal(handler_calls, 65);
  request(64 + 5); /* still remembered */
  assert_int_equal(handler_calls, 65);
  assert_last_answers(64 + 5);
  request(5);
  assert_int_equal(handler_calls, 66);
}

/* Random MIDs (many repeats, many recycles) against a model of the ring:
 * the last |cap| new MIDs are remembered, duplicates of those never reach
 * the handler, anything else does. */
static void check_against_model(uint16_t cap, unsigned rounds, uint16_t mid_range) {
  start(cap);
  uint16_t model[64];
  unsigned len = 0, oldest = 0;
  uint32_t x = 12345u * cap;
  for (unsigned r = 0; r < rounds; r++) {
    x = x * 1103515245u + 12345u;
    uint16_t mid = (uint16_t)((x >> 8) % mid_range);
    int known = 0;
    for (unsigned i = 0; i < len; i++) known |= model[i] == mid;
    unsigned before = handler_calls;
    n_sent = 0;
    request(mid);
    assert_int_equal(handler_calls - before, known ? 0 : 1);
    assert_last_answers(mid);
    if (known) continue;
    if (len < cap) {
      model[len++] = mid;
    } else {
      model[oldest] = mid;
      oldest = (oldest + 1) % cap;
    }
  }
}

static void test_random_mids_match_the_model(void **state) {
  check_against_model(64, 20000, 200);
}

static void test_random_mids_odd_capacity(void **state) {
  check_against_model(5, 5000, 12);
}

/* The largest capacity the parameter allows: the ring grows past 32768
 * entries (the index stops doubling there) and still finds every MID. */
static void test_largest_capacity(void **state) {
  start(UINT16_MAX);
  for (uint32_t mid = 0; mid < 40000; mid++) {
    n_sent = 0;
    request((uint16_t)mid);
  }
  for (uint32_t mid = 0; mid < 40000; mid += 997) {
    n_sent = 0;
    request((uint16_t)mid);
    assert_last_answers((uint16_t)mid);
  }
  assert_int_equal(handler_calls, 40000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_duplicates_answered_across_growth, teardown),
      cmocka_unit_test_teardown(test_oldest_recycled_when_full, teardown),
      cmocka_unit_test_teardown(test_pending_requests_survive_growth, teardown),
      cmocka_unit_test_teardown(test_mids_sharing_a_bucket, teardown),
      cmocka_unit_test_teardown(test_random_mids_match_the_model, teardown),
      cmocka_unit_test_teardown(test_random_mids_odd_capacity, teardown),
      cmocka_unit_test_teardown(test_largest_capacity, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
