/* The client's side of Observe (RFC 7641) and No-Response (RFC 7967)
 * against a server written here by hand: a simnet node whose datagrams
 * never reach its context; the network filter reads what the client sends
 * and the test writes every answer and notification as raw datagrams, so
 * their order, duplication, loss, sequence numbers and Max-Age are the
 * test's to choose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "client/client.h"
#include "context/context_internal.h"
#include "coaps/dtls.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *client, *server;

/* ---- the hand-written server ---- */

enum { ANSWER_OBSERVE, ANSWER_PLAIN, ANSWER_404, ANSWER_NONE, ANSWER_EMPTY_ACK };

#define REQ_MAX 1024
#define BODY_MAX 6000

typedef struct seen_req {
  uint8_t type, code, token_len;
  uint8_t token[8];
  uint16_t mid;
  int observe;     /* -1: none */
  int block2_num;  /* -1: none */
  int no_response; /* -1: none */
  uint64_t at;
} seen_req_t;

static struct fake {
  int answer;       /* to a registration (Observe=0) */
  int dereg_answer; /* to Observe=1: ANSWER_PLAIN or ANSWER_NONE */
  uint32_t seq;     /* the registration's answer carries this */
  long max_age;     /* -1: no Max-Age option */
  seen_req_t req[REQ_MAX];
  unsigned n_req;
  uint8_t token[8], token_len; /* of the first registration */
  uint16_t next_mid;
  unsigned rsts, empty_acks;
  uint16_t rst_mid[64];
  /* A representation served in Block2 blocks of 16 bytes. */
  uint8_t body[BODY_MAX];
  size_t body_len;
  /* The network's fate, seeded: loss and duplication both ways,
   * reordering of what the server sends. */
  unsigned loss_pct, dup_pct, reorder_ms;
  uint32_t rng;
  int ignore_blocks; /* requests for further blocks go unanswered */
} fs;

static int chance(unsigned pct) {
  fs.rng = fs.rng * 1103515245u + 12345u;
  return (fs.rng >> 16) % 100 < pct;
}

static unsigned rnd(unsigned n) {
  fs.rng = fs.rng * 1103515245u + 12345u;
  return n ? (fs.rng >> 16) % n : 0;
}

static void enqueue(const uint8_t *data, size_t len, uint64_t delay) {
  assert_true(net.queued < SIMNET_MAX_QUEUE && len <= sizeof net.queue[0].data);
  size_t i = net.queued++;
  net.queue[i].at = net.now + net.latency_ms + delay;
  net.queue[i].to = client;
  net.queue[i].from = server->addr;
  net.queue[i].dst = client->addr;
  net.queue[i].len = len;
  memcpy(net.queue[i].data, data, len);
}

/* |m| from the server to the client, through the network's fate. */
static void to_client(const coap_msg_t *m) {
  uint8_t out[1500];
  int n = coap_msg_encode(m, out, sizeof out);
  assert_true(n > 0);
  if (chance(fs.loss_pct)) return;
  enqueue(out, (size_t)n, rnd(fs.reorder_ms));
  if (chance(fs.dup_pct)) enqueue(out, (size_t)n, rnd(fs.reorder_ms));
}

static void set_body(const char *text) {
  fs.body_len = strlen(text);
  memcpy(fs.body, text, fs.body_len);
}

/* A response with the server's representation: whole, or the 16-byte
 * block |num| when |block| (with Block2). */
static void representation(coap_msg_t *m, int block, uint32_t num) {
  if (!block) {
    coap_msg_set_payload(m, fs.body, fs.body_len);
    return;
  }
  size_t off = (size_t)num * 16;
  if (off >= fs.body_len) { /* the representation changed under the fetch */
    m->code = COAP_BAD_REQUEST;
    return;
  }
  size_t n = fs.body_len - off < 16 ? fs.body_len - off : 16;
  coap_block_t b2 = {.num = num, .more = off + n < fs.body_len, .szx = 0};
  assert_int_equal(coap_msg_add_block(m, COAP_OPTION_BLOCK2, &b2), 0);
  coap_msg_set_payload(m, fs.body + off, n);
}

/* The answer to |req|: piggy-backed on the ACK of a CON, else NON. */
static void answer_init(coap_msg_t *m, const coap_msg_t *req, uint8_t code) {
  int con = req->type == COAP_TYPE_CON;
  coap_msg_init(m, con ? COAP_TYPE_ACK : COAP_TYPE_NON, code, con ? req->mid : fs.next_mid++);
  coap_msg_set_token(m, req->token, req->token_len);
}

static void record(const coap_msg_t *req) {
  assert_true(fs.n_req < REQ_MAX);
  seen_req_t *s = &fs.req[fs.n_req++];
  s->type = req->type;
  s->code = req->code;
  s->mid = req->mid;
  s->at = net.now;
  s->token_len = req->token_len;
  memcpy(s->token, req->token, req->token_len);
  s->observe = (int)coap_msg_get_uint(req, COAP_OPTION_OBSERVE, -1);
  s->no_response = (int)coap_msg_get_uint(req, COAP_OPTION_NO_RESPONSE, -1);
  coap_block_t b2;
  const coap_option_t *o = coap_msg_find_option(req, COAP_OPTION_BLOCK2);
  s->block2_num = o && coap_block_decode(o, &b2) == 0 ? (int)b2.num : -1;
}

static void serve(const coap_msg_t *req) {
  record(req);
  const seen_req_t *s = &fs.req[fs.n_req - 1];
  coap_msg_t m;
  if (s->block2_num > 0) { /* the rest of a block-wise representation */
    if (fs.ignore_blocks) return;
    answer_init(&m, req, COAP_CONTENT);
    representation(&m, 1, (uint32_t)s->block2_num);
    to_client(&m);
    return;
  }
  if (s->observe == 0 && !fs.token_len) {
    fs.token_len = req->token_len;
    memcpy(fs.token, req->token, req->token_len);
  }
  int how = s->observe == 1 ? fs.dereg_answer : fs.answer;
  if (how == ANSWER_NONE) return;
  if (how == ANSWER_EMPTY_ACK) {
    if (req->type != COAP_TYPE_CON) return;
    coap_msg_init(&m, COAP_TYPE_ACK, COAP_CODE_EMPTY, req->mid);
    to_client(&m);
    return;
  }
  answer_init(&m, req, how == ANSWER_404 ? COAP_NOT_FOUND : COAP_CONTENT);
  if (how == ANSWER_OBSERVE && s->observe == 0) {
    assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_OBSERVE, fs.seq), 0);
    if (fs.max_age >= 0)
      assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_MAX_AGE, (uint32_t)fs.max_age), 0);
  }
  if (how != ANSWER_404) representation(&m, fs.body_len > 16 && s->observe == 0, 0);
  to_client(&m);
}

static int fake_server(void *user, const simnet_node_t *from, const coap_address_t *to,
                       const uint8_t *data, size_t len, unsigned seq) {
  if (!coap_address_equal(to, &server->addr)) return 0;
  coap_msg_t req;
  if (chance(fs.loss_pct) || coap_msg_parse(&req, data, len) < 0) return 1;
  if (req.code == COAP_CODE_EMPTY) {
    if (req.type == COAP_TYPE_RST && fs.rsts < 64) fs.rst_mid[fs.rsts] = req.mid;
    if (req.type == COAP_TYPE_RST) fs.rsts++;
    if (req.type == COAP_TYPE_ACK) fs.empty_acks++;
    return 1;
  }
  serve(&req);
  if (chance(fs.dup_pct)) serve(&req);
  return 1; /* the node's own context never sees it */
}

/* A notification with the registration's token: Observe |seq| (-1:
 * none), Max-Age |max_age| (-1: none), the current body. Returns its
 * message ID. */
static uint16_t notify_with(uint8_t type, uint8_t code, long seq, long max_age, int block) {
  coap_msg_t m;
  uint16_t mid = fs.next_mid++;
  coap_msg_init(&m, type, code, mid);
  coap_msg_set_token(&m, fs.token, fs.token_len);
  if (seq >= 0) assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_OBSERVE, (uint32_t)seq), 0);
  if (max_age >= 0)
    assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_MAX_AGE, (uint32_t)max_age), 0);
  if (code != COAP_NOT_FOUND) representation(&m, block, 0);
  to_client(&m);
  return mid;
}

static uint16_t notify(long seq, const char *text) {
  set_body(text);
  return notify_with(COAP_TYPE_NON, COAP_CONTENT, seq, fs.max_age, 0);
}

/* ---- the client's side ---- */

typedef struct event {
  int status, observing, has_observe;
  uint8_t code;
  uint32_t observe;
  char payload[BODY_MAX + 1];
  size_t payload_len;
  char detail[256];
  uint64_t at;
} event_t;

#define EVENTS_MAX 512
static event_t ev[EVENTS_MAX];
static unsigned n_ev, finals;

static void on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  assert_true(n_ev < EVENTS_MAX);
  event_t *e = &ev[n_ev++];
  e->status = reply->status;
  e->code = reply->code;
  e->observing = reply->observing;
  e->has_observe = reply->has_observe;
  e->observe = reply->observe;
  e->at = net.now;
  assert_true(reply->payload_len <= BODY_MAX);
  e->payload_len = reply->payload_len;
  if (reply->payload_len) memcpy(e->payload, reply->payload, reply->payload_len);
  e->payload[reply->payload_len] = '\0';
  snprintf(e->detail, sizeof e->detail, "%s", reply->detail ? reply->detail : "");
  if (!reply->observing) finals++;
}

static event_t *last_event(void) {
  assert_true(n_ev > 0);
  return &ev[n_ev - 1];
}

static coap_request_id_t observe_with(int con, uint32_t timeout_ms) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/temp");
  o.observe = 1;
  o.confirmable = con;
  o.timeout_ms = timeout_ms;
  coap_request_id_t id;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, NULL, &id), 0);
  return id;
}

static coap_request_id_t observe_start(void) {
  return observe_with(1, 0);
}

static void run(uint64_t ms) {
  simnet_run_until(&net, net.now + ms);
}

/* Notification |seq| under a token the client no longer observes: an RST
 * (RFC 7641 §3.6, the only one so far) and no callback, so still
 * |expect_ev| events after a second. */
static void notify_refused(long seq, unsigned expect_ev) {
  uint16_t mid = notify(seq, "late");
  run(1000);
  assert_int_equal(n_ev, expect_ev);
  assert_int_equal(fs.rsts, 1);
  assert_int_equal(fs.rst_mid[0], mid);
}

static size_t observations(void) {
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.observations, coap_client_observations(&client->ctx->client));
  return (size_t)st.observations;
}

static void reset_fake(void) {
  /* Message IDs go on: the client's dedup remembers the old ones. */
  uint16_t mid = fs.next_mid;
  memset(&fs, 0, sizeof fs);
  fs.answer = ANSWER_OBSERVE;
  fs.dereg_answer = ANSWER_PLAIN;
  fs.max_age = -1;
  fs.next_mid = mid ? mid : 0x7000;
  fs.rng = 11;
  set_body("20 C");
}

static int setup(void **state) {
  simnet_init(&net);
  client = simnet_add_node(&net, 40000, COAP_PROTO_UDP, NULL); /* 10.0.0.1 */
  server = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL);  /* 10.0.0.2 */
  assert_non_null(client);
  assert_non_null(server);
  net.filter = fake_server;
  reset_fake();
  memset(ev, 0, sizeof ev);
  n_ev = finals = 0;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

/* Register and have the first answer (Observe=|seq|) delivered. */
static coap_request_id_t registered(uint32_t seq) {
  fs.seq = seq;
  coap_request_id_t id = observe_start();
  run(1000);
  assert_int_equal(n_ev, 1);
  assert_int_equal(ev[0].observing, 1);
  assert_int_equal(ev[0].observe, seq);
  return id;
}

/* ---- registration and notifications ---- */

static void test_notifications_in_order(void **state) {
  registered(5);
  /* The registration: a GET with Observe=0. */
  assert_int_equal(fs.n_req, 1);
  assert_int_equal(fs.req[0].code, COAP_GET);
  assert_int_equal(fs.req[0].observe, 0);
  assert_int_equal(ev[0].status, 0);
  assert_int_equal(ev[0].code, COAP_CONTENT);
  assert_int_equal(ev[0].has_observe, 1);
  assert_string_equal(ev[0].payload, "20 C");
  assert_int_equal(observations(), 1);
  const char *states[] = {"21 C", "22 C", "23 C"};
  for (int i = 0; i < 3; i++) {
    notify(6 + i, states[i]);
    run(100);
  }
  assert_int_equal(n_ev, 4);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(ev[1 + i].observing, 1);
    assert_int_equal(ev[1 + i].observe, 6 + i);
    assert_string_equal(ev[1 + i].payload, states[i]);
  }
  /* A CON notification is acknowledged and delivered. */
  set_body("24 C");
  notify_with(COAP_TYPE_CON, COAP_CONTENT, 9, -1, 0);
  run(100);
  assert_int_equal(n_ev, 5);
  assert_int_equal(fs.empty_acks, 1);
  assert_int_equal(finals, 0);
  assert_int_equal(fs.n_req, 1); /* nothing else was asked */
}

static void test_reordered_and_duplicated_are_dropped(void **state) {
  fs.max_age = 600; /* no re-registration in the long pause below */
  registered(10);
  notify(12, "twelve");
  run(100);
  notify(11, "eleven"); /* sent before 12, arrives after it */
  run(100);
  notify(12, "twelve again"); /* the same number under a new message ID */
  run(100);
  set_body("thirteen");
  uint16_t mid = notify_with(COAP_TYPE_CON, COAP_CONTENT, 13, -1, 0);
  /* The same datagram twice: the message layer's dedup, ACKed again. */
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_CONTENT, mid);
  coap_msg_set_token(&m, fs.token, fs.token_len);
  assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_OBSERVE, 13), 0);
  coap_msg_set_payload(&m, "thirteen", 8);
  to_client(&m);
  run(100);
  assert_int_equal(n_ev, 3);
  assert_int_equal(ev[1].observe, 12);
  assert_string_equal(ev[1].payload, "twelve");
  assert_int_equal(ev[2].observe, 13);
  assert_int_equal(fs.empty_acks, 2);
  /* 128 s later an older number counts as newer (§3.4). */
  run(129000);
  notify(3, "after a long pause");
  run(100);
  assert_int_equal(n_ev, 4);
  assert_int_equal(ev[3].observe, 3);
}

static void test_wrap_around(void **state) {
  registered((1u << 24) - 2);
  notify((1u << 24) - 1, "a");
  run(50);
  notify(0, "b");
  run(50);
  notify(1, "c");
  run(50);
  notify((1u << 24) - 1, "late"); /* from before the wrap */
  run(50);
  assert_int_equal(n_ev, 4);
  assert_int_equal(ev[1].observe, (1u << 24) - 1);
  assert_int_equal(ev[2].observe, 0);
  assert_int_equal(ev[3].observe, 1);
  assert_string_equal(ev[3].payload, "c");
}

static void test_answer_without_observe_ends(void **state) {
  registered(1);
  notify(2, "two");
  run(100);
  /* The server's last word: 2.05 without Observe. */
  set_body("last");
  notify_with(COAP_TYPE_NON, COAP_CONTENT, -1, -1, 0);
  run(100);
  assert_int_equal(n_ev, 3);
  assert_int_equal(finals, 1);
  assert_int_equal(last_event()->observing, 0);
  assert_int_equal(last_event()->status, 0);
  assert_int_equal(last_event()->code, COAP_CONTENT);
  assert_int_equal(last_event()->has_observe, 0);
  assert_string_equal(last_event()->payload, "last");
  assert_int_equal(observations(), 0);
  /* A notification for the token now is for a request we no longer have:
   * RST (RFC 7641 §3.6), and no callback. */
  notify_refused(3, 3);
}

static void test_not_registered_is_one_reply(void **state) {
  fs.answer = ANSWER_PLAIN; /* the resource is not observable */
  observe_start();
  run(200000);
  assert_int_equal(n_ev, 1);
  assert_int_equal(ev[0].observing, 0);
  assert_int_equal(ev[0].status, 0);
  assert_int_equal(ev[0].code, COAP_CONTENT);
  assert_string_equal(ev[0].payload, "20 C");
  assert_int_equal(observations(), 0);
  assert_int_equal(fs.n_req, 1); /* and no re-registration */
}

static void test_error_notification_ends(void **state) {
  registered(1);
  notify_with(COAP_TYPE_CON, COAP_NOT_FOUND, -1, -1, 0);
  run(100);
  assert_int_equal(n_ev, 2);
  assert_int_equal(ev[1].observing, 0);
  assert_int_equal(ev[1].code, COAP_NOT_FOUND);
  assert_int_equal(fs.empty_acks, 1);
  /* An error code with Observe is no notification either. */
  reset_fake();
  n_ev = finals = 0;
  registered(1);
  notify_with(COAP_TYPE_NON, COAP_SERVICE_UNAVAILABLE, 2, -1, 0);
  run(100);
  assert_int_equal(n_ev, 2);
  assert_int_equal(last_event()->observing, 0);
  assert_int_equal(last_event()->code, COAP_SERVICE_UNAVAILABLE);
}

static void test_observe_value_too_long_is_absent(void **state) {
  registered(1);
  /* A 4-byte Observe is outside the option's range (0-3 bytes): ignored
   * as RFC 7252 §5.4.3 says, so this is an answer without Observe. */
  uint8_t d[32];
  size_t n = 0;
  uint16_t mid = fs.next_mid++;
  d[n++] = (uint8_t)(0x40 | COAP_TYPE_NON << 4 | fs.token_len);
  d[n++] = COAP_CONTENT;
  d[n++] = (uint8_t)(mid >> 8);
  d[n++] = (uint8_t)mid;
  memcpy(d + n, fs.token, fs.token_len);
  n += fs.token_len;
  d[n++] = COAP_OPTION_OBSERVE << 4 | 4; /* delta 6, length 4 */
  d[n++] = 1, d[n++] = 0, d[n++] = 0, d[n++] = 2;
  d[n++] = 0xff;
  d[n++] = 'x';
  enqueue(d, n, 0);
  run(100);
  assert_int_equal(n_ev, 2);
  assert_int_equal(ev[1].observing, 0);
  assert_int_equal(ev[1].has_observe, 0);
}

static void test_first_answer_timeout(void **state) {
  fs.answer = ANSWER_NONE;
  uint64_t t0 = net.now;
  observe_with(1, 5000);
  run(300000);
  assert_int_equal(n_ev, 1);
  assert_int_equal(ev[0].status, COAP_E_TIMEOUT);
  assert_int_equal(ev[0].observing, 0);
  assert_int_equal(ev[0].at, t0 + 5000);
  /* timeout_ms covers the first answer only: an observation lives on. */
  reset_fake();
  n_ev = finals = 0;
  observe_with(1, 5000);
  run(1000);
  assert_int_equal(n_ev, 1);
  assert_int_equal(ev[0].observing, 1);
  run(20000);
  notify(2, "still here");
  run(100);
  assert_int_equal(n_ev, 2);
  assert_int_equal(ev[1].observing, 1);
  assert_int_equal(finals, 0);
}

/* ---- re-registration ---- */

static void test_max_age_reregisters_with_the_same_token(void **state) {
  fs.max_age = 5;
  registered(1);
  fs.seq = 40;
  run(4000);
  assert_int_equal(fs.n_req, 1); /* still fresh */
  run(5000);
  /* Max-Age (5 s) and the margin passed without a notification. */
  assert_int_equal(fs.n_req, 2);
  assert_int_equal(fs.req[1].code, COAP_GET);
  assert_int_equal(fs.req[1].observe, 0);
  assert_int_equal(fs.req[1].token_len, fs.req[0].token_len);
  assert_memory_equal(fs.req[1].token, fs.req[0].token, fs.req[0].token_len);
  assert_int_equal(fs.req[1].at - ev[0].at, 5000 + 2000); /* Max-Age and the margin */
  /* Its answer is a notification like any other. */
  assert_int_equal(n_ev, 2);
  assert_int_equal(ev[1].observing, 1);
  assert_int_equal(ev[1].observe, 40);
  /* A notification keeps it fresh: no re-registration while they come. */
  fs.max_age = 60;
  for (int i = 0; i < 5; i++) {
    set_body("fresh");
    notify_with(COAP_TYPE_NON, COAP_CONTENT, 41 + i, 3, 0);
    run(2500);
  }
  assert_int_equal(fs.n_req, 2);
  /* Then the server goes silent: the re-registration gets no answer and
   * the observation ends with COAP_E_TIMEOUT. */
  fs.answer = ANSWER_NONE;
  run(400000);
  assert_int_equal(fs.n_req, 2 + 5); /* the CON and its 4 retransmissions */
  assert_int_equal(finals, 1);
  assert_int_equal(last_event()->status, COAP_E_TIMEOUT);
  assert_int_equal(last_event()->observing, 0);
  assert_int_equal(observations(), 0);
}

static void test_default_max_age_is_60_s(void **state) {
  registered(1);
  run(60000);
  assert_int_equal(fs.n_req, 1);
  run(3000);
  assert_int_equal(fs.n_req, 2);
  assert_int_equal(fs.req[1].observe, 0);
}

/* ---- ending it ---- */

static void test_cancel_sends_observe_1_with_the_same_token(void **state) {
  coap_request_id_t id = registered(1);
  assert_int_equal(coap_observe_cancel(client->ctx, id), 0);
  run(1000);
  assert_int_equal(fs.n_req, 2);
  assert_int_equal(fs.req[1].code, COAP_GET);
  assert_int_equal(fs.req[1].observe, 1);
  assert_memory_equal(fs.req[1].token, fs.req[0].token, fs.req[0].token_len);
  assert_int_equal(n_ev, 2);
  assert_int_equal(finals, 1);
  assert_int_equal(ev[1].observing, 0);
  assert_int_equal(ev[1].status, 0);
  assert_int_equal(ev[1].code, COAP_CONTENT);
  assert_int_equal(observations(), 0);
  assert_int_equal(coap_observe_cancel(client->ctx, id), COAP_E_NOT_FOUND);
}

static void test_cancel_with_a_notification_crossing(void **state) {
  coap_request_id_t id = registered(1);
  fs.dereg_answer = ANSWER_NONE;
  assert_int_equal(coap_observe_cancel(client->ctx, id), 0);
  assert_int_equal(coap_observe_cancel(client->ctx, id), 0); /* once is enough */
  notify(2, "crossing");                                     /* sent before the server had it */
  run(1000);
  assert_int_equal(n_ev, 1); /* not delivered: the caller asked to stop */
  assert_int_equal(fs.n_req, 2);
  /* The server never answers: the observation ends all the same. */
  run(200000);
  assert_int_equal(n_ev, 2);
  assert_int_equal(ev[1].status, COAP_E_CANCELLED);
  assert_int_equal(ev[1].observing, 0);
  assert_int_equal(observations(), 0);
}

static void test_cancel_unanswered(void **state) {
  coap_request_id_t id = registered(1);
  fs.dereg_answer = ANSWER_NONE;
  assert_int_equal(coap_observe_cancel(client->ctx, id), 0);
  run(400000);
  assert_int_equal(fs.n_req, 1 + 5);
  assert_int_equal(n_ev, 2);
  assert_int_equal(ev[1].status, COAP_E_CANCELLED);
  assert_int_equal(ev[1].observing, 0);
}

static void test_cancel_arguments(void **state) {
  assert_int_equal(coap_observe_cancel(client->ctx, 12345), COAP_E_NOT_FOUND);
  assert_int_equal(coap_observe_cancel(NULL, 1), COAP_E_INVALID_ARG);
  fs.answer = ANSWER_NONE;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/plain");
  coap_request_id_t id;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, NULL, &id), 0);
  assert_int_equal(coap_observe_cancel(client->ctx, id), COAP_E_INVALID_ARG);
  /* Observe is for GET and FETCH, and not with No-Response. */
  coap_request_opts_init(&o, COAP_POST, "coap://10.0.0.2/temp");
  o.observe = 1;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, NULL, &id), COAP_E_INVALID_ARG);
  coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/temp");
  o.observe = 1;
  o.no_response = COAP_NO_RESPONSE_4XX;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, NULL, &id), COAP_E_INVALID_ARG);
  coap_request_opts_init(&o, COAP_FETCH, "coap://10.0.0.2/temp");
  o.observe = 1;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, NULL, &id), 0);
}

static void test_cancel_request_forgets_and_rst_follows(void **state) {
  coap_request_id_t id = registered(1);
  assert_int_equal(coap_cancel_request(client->ctx, id), 0);
  assert_int_equal(observations(), 0);
  /* No callback at all, nothing sent but an RST to the NON notification
   * (the exchange layer's rule). */
  notify_refused(2, 1);
  assert_int_equal(fs.n_req, 1);
}

static void test_context_free_ends_it_once(void **state) {
  registered(1);
  notify(2, "two");
  run(100);
  coap_context_free(client->ctx);
  client->ctx = NULL; /* simnet_free must not free it again */
  assert_int_equal(n_ev, 3);
  assert_int_equal(finals, 1);
  assert_int_equal(ev[2].status, COAP_E_CANCELLED);
  assert_int_equal(ev[2].observing, 0);
}

static void test_callback_may_cancel_itself(void **state);

/* ---- block-wise notifications (RFC 7959 §3.4) ---- */

static void test_blockwise_notification_is_completed(void **state) {
  set_body("0123456789abcdef0123456789ABCDEF01234"); /* 37 bytes: 3 blocks */
  registered(1);
  /* The first answer was block-wise: the rest fetched before the callback. */
  assert_string_equal(ev[0].payload, "0123456789abcdef0123456789ABCDEF01234");
  assert_int_equal(fs.n_req, 3);
  for (unsigned i = 1; i < 3; i++) {
    assert_int_equal(fs.req[i].observe, -1); /* the rest without Observe */
    assert_int_equal(fs.req[i].block2_num, (int)i);
    assert_false(fs.req[i].token_len == fs.req[0].token_len &&
                 memcmp(fs.req[i].token, fs.req[0].token, fs.req[0].token_len) == 0);
  }
  set_body("a new state that is longer than two blocks");
  notify_with(COAP_TYPE_NON, COAP_CONTENT, 2, -1, 1);
  run(1000);
  assert_int_equal(n_ev, 2);
  assert_int_equal(ev[1].observing, 1);
  assert_int_equal(ev[1].observe, 2);
  assert_string_equal(ev[1].payload, "a new state that is longer than two blocks");
  assert_int_equal(fs.req[fs.n_req - 1].observe, -1);
  assert_int_equal(finals, 0);
}

static void test_large_blockwise_notification(void **state) {
  registered(1);
  /* 5000 bytes in 16-byte blocks: the client's buffer grows on the way,
   * within max_reassembly, and the whole body comes in one callback. */
  static char big[5001];
  for (int i = 0; i < 5000; i++) big[i] = (char)('a' + i % 26);
  big[5000] = '\0';
  set_body(big);
  notify_with(COAP_TYPE_NON, COAP_CONTENT, 2, -1, 1);
  run(60000);
  assert_int_equal(n_ev, 2);
  assert_int_equal(ev[1].observe, 2);
  assert_int_equal(ev[1].payload_len, 5000);
  assert_memory_equal(ev[1].payload, big, 5000);
  assert_int_equal(fs.n_req, 1 + (5000 + 15) / 16 - 1);
  /* Nothing is held once it is delivered. */
  assert_int_equal(coap_client_reassembly_bytes(&client->ctx->client), 0);
  assert_int_equal(observations(), 1);
}

static void test_blockwise_notification_whose_rest_is_lost(void **state) {
  fs.max_age = 600; /* no re-registration meanwhile */
  registered(1);
  fs.ignore_blocks = 1;
  set_body("sixteen bytes...and more of two");
  notify_with(COAP_TYPE_NON, COAP_CONTENT, 2, 600, 1);
  run(200000);
  /* Skipped like a lost notification; the observation goes on. */
  assert_int_equal(n_ev, 1);
  assert_int_equal(fs.n_req, 1 + 5); /* block 1 asked, and asked again */
  assert_int_equal(finals, 0);
  assert_int_equal(coap_client_reassembly_bytes(&client->ctx->client), 0);
  notify(3, "three");
  run(100);
  assert_int_equal(n_ev, 2);
  assert_int_equal(ev[1].observe, 3);
}

static void test_blockwise_notification_too_large_ends(void **state) {
  /* A client that takes bodies of 64 bytes at most. */
  simnet_free(&net);
  simnet_init(&net);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.max_body = 64;
  client = simnet_add_node(&net, 40000, COAP_PROTO_UDP, &cfg);
  server = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL);
  net.filter = fake_server;
  registered(1);
  set_body(
      "a representation of one hundred bytes, which is more than this client takes at "
      "once, in blocks");
  notify_with(COAP_TYPE_NON, COAP_CONTENT, 2, -1, 1);
  run(1000);
  assert_int_equal(n_ev, 2);
  assert_int_equal(ev[1].status, COAP_E_TOO_LARGE);
  assert_int_equal(ev[1].observing, 0);
  assert_non_null(strstr(ev[1].detail, "max_body"));
  assert_int_equal(observations(), 0);
  /* Forgotten: the next notification gets RST. */
  notify_refused(3, 2);
}

static void test_newer_notification_restarts_a_fetch(void **state) {
  registered(1);
  /* Notification 2 is block-wise; before its second block is answered,
   * notification 3 (whole) comes: 2 is never delivered. */
  net.latency_ms = 50;
  set_body("sixteen bytes...and the rest of two");
  notify_with(COAP_TYPE_NON, COAP_CONTENT, 2, -1, 1);
  run(60); /* 2 arrived, the fetch of block 1 is on its way */
  assert_int_equal(fs.n_req, 2);
  assert_int_equal(fs.req[1].block2_num, 1);
  set_body("three");
  notify_with(COAP_TYPE_NON, COAP_CONTENT, 3, -1, 0);
  run(1000);
  assert_int_equal(n_ev, 2);
  assert_int_equal(ev[1].observe, 3);
  assert_string_equal(ev[1].payload, "three");
  /* An older notification is not fetched at all. */
  unsigned before = fs.n_req;
  set_body("sixteen bytes...stale");
  notify_with(COAP_TYPE_NON, COAP_CONTENT, 2, -1, 1);
  run(1000);
  assert_int_equal(fs.n_req, before);
  assert_int_equal(n_ev, 2);
}

/* ---- the whole thing through a bad network ---- */

static void test_lossy_run_ends_with_the_latest_state(void **state) {
  fs.loss_pct = 20;
  fs.dup_pct = 20;
  fs.reorder_ms = 300;
  fs.max_age = 600;
  fs.seq = 1;
  observe_start();
  run(120000);
  assert_int_equal(n_ev, 1);
  assert_int_equal(finals, 0);
  uint32_t seq = 2;
  for (int i = 0; i < 300; i++, seq++) {
    char text[32];
    snprintf(text, sizeof text, "state %u", seq);
    set_body(text);
    notify_with(COAP_TYPE_NON, COAP_CONTENT, seq, 600, 0);
    run(100);
  }
  /* The last state as CON, resent until acknowledged (as a server must). */
  set_body("final state");
  unsigned acks = fs.empty_acks;
  uint16_t mid = fs.next_mid++;
  for (int tries = 0; tries < 20 && fs.empty_acks == acks; tries++) {
    coap_msg_t m;
    coap_msg_init(&m, COAP_TYPE_CON, COAP_CONTENT, mid);
    coap_msg_set_token(&m, fs.token, fs.token_len);
    assert_int_equal(coap_msg_add_uint(&m, COAP_OPTION_OBSERVE, seq), 0);
    coap_msg_set_payload(&m, "final state", 11);
    to_client(&m);
    run(3000);
  }
  assert_true(fs.empty_acks > acks);
  assert_int_equal(finals, 0);
  assert_true(n_ev > 100); /* most got through */
  /* Never an older state after a newer one, never one twice. */
  for (unsigned i = 1; i < n_ev; i++) assert_true(ev[i].observe > ev[i - 1].observe);
  assert_int_equal(last_event()->observe, seq);
  assert_string_equal(last_event()->payload, "final state");
  /* The payload is always the state its number names. */
  for (unsigned i = 0; i + 1 < n_ev; i++) {
    char text[32];
    snprintf(text, sizeof text, "state %u", ev[i].observe);
    if (ev[i].observe > 1) assert_string_equal(ev[i].payload, text);
  }
}

/* ---- coaps://: the server restarts, the client re-registers ----
 * Against our own server (src/server/observe.c), over DTLS: a restarted
 * server has lost its observers with our session; the client makes a
 * new session and registers again, with the same token. */

static coap_resource_t *temp;
static int temp_value;
static int server_silenced; /* the old server's close_notify is lost */

static void temp_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  char text[32];
  int n = snprintf(text, sizeof text, "t=%d", temp_value);
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, text, (size_t)n);
}

static void set_psk(coap_context_t *ctx) {
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  assert_non_null(d);
  assert_int_equal(
      coap_dtls_set_psk(d, (const uint8_t *)"sensor-1", (const uint8_t *)"0123456789abcdef", 16),
      0);
  assert_int_equal(coap_context_set_dtls_context(ctx, d), 0);
}

static void serve_temp(void) {
  set_psk(server->ctx);
  temp = coap_resource_add(server->ctx, "temp");
  assert_non_null(temp);
  assert_int_equal(coap_resource_set_handler(temp, COAP_GET, temp_get, NULL), 0);
  assert_int_equal(coap_resource_set_observable(temp, 1), 0);
}

static int silence_old_server(void *user, const simnet_node_t *from, const coap_address_t *to,
                              const uint8_t *data, size_t len, unsigned seq) {
  return server_silenced && from == server;
}

static int setup_dtls(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL); /* 10.0.0.1 */
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  assert_non_null(server);
  assert_non_null(client);
  serve_temp();
  set_psk(client->ctx);
  net.filter = silence_old_server;
  server_silenced = 0;
  temp_value = 20;
  memset(ev, 0, sizeof ev);
  n_ev = finals = 0;
  return 0;
}

static void restart_case(int crash) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/temp");
  o.observe = 1;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, NULL, NULL), 0);
  run(5000);
  assert_int_equal(n_ev, 1);
  assert_int_equal(ev[0].observing, 1);
  assert_string_equal(ev[0].payload, "t=20");
  for (temp_value = 21; temp_value <= 25; temp_value++) {
    assert_int_equal(coap_resource_notify(temp), 1);
    run(1000);
  }
  assert_int_equal(n_ev, 6);
  uint32_t old_seq = ev[5].observe;
  assert_true(old_seq >= 5);
  /* The server restarts: same address, no sessions, no observers. */
  server_silenced = crash;
  assert_int_equal(simnet_node_restart(server), 0);
  server_silenced = 0;
  serve_temp();
  temp_value = 30;
  /* A clean restart closes the session and the client reconnects at
   * once; after a crash the client finds out when its re-registration
   * (Max-Age, 60 s) goes unanswered on the old session. */
  uint64_t t0 = net.now;
  for (int i = 0; i < 200 && coap_resource_observer_count(temp) == 0; i++) run(1000);
  assert_int_equal(coap_resource_observer_count(temp), 1);
  if (!crash) assert_true(net.now - t0 <= 5000);
  /* Its answer is delivered although the new server counts from 1
   * again: a new session starts the order anew. */
  assert_int_equal(n_ev, 7);
  assert_int_equal(ev[6].observing, 1);
  assert_string_equal(ev[6].payload, "t=30");
  assert_true(ev[6].observe < old_seq);
  temp_value = 31;
  assert_int_equal(coap_resource_notify(temp), 1);
  run(1000);
  assert_int_equal(n_ev, 8);
  assert_string_equal(ev[7].payload, "t=31");
  assert_int_equal(finals, 0);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 2);
  assert_int_equal(st.dtls_reconnects, crash ? 1 : 0);
}

static int log_posts;
static void log_post(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  log_posts++;
  coap_response_set_code(resp, COAP_CHANGED);
}

static void test_dtls_no_response_waits_for_the_handshake(void **state) {
  coap_resource_t *log = coap_resource_add(server->ctx, "log");
  assert_int_equal(coap_resource_set_handler(log, COAP_POST, log_post, NULL), 0);
  log_posts = 0;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_POST, "coaps://10.0.0.1/log");
  o.payload = "event";
  o.payload_len = 5;
  o.no_response = COAP_NO_RESPONSE_2XX | COAP_NO_RESPONSE_4XX | COAP_NO_RESPONSE_5XX;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, NULL, NULL), 0);
  run(0);
  assert_int_equal(n_ev, 0); /* not sent yet: the handshake runs */
  for (int i = 0; i < 100 && !n_ev; i++) run(100);
  assert_int_equal(n_ev, 1);
  assert_int_equal(ev[0].status, 0);
  assert_int_equal(ev[0].code, 0);
  coap_stats_t st;
  coap_context_get_stats(client->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 1); /* done when it was sent */
  run(1000);
  assert_int_equal(log_posts, 1);
  assert_int_equal(n_ev, 1);
}

/* Our client observing our server through a path that loses 20 % of the
 * datagrams each way, duplicates 20 % and delays each by up to 300 ms
 * (so reorders them): the states delivered never go back, and the client
 * ends with the latest one (a CON notification carries it, or the
 * re-registration at Max-Age when the server gave the observer up). */
static unsigned e2e_rng = 99;
static unsigned e2e_rand(unsigned n) {
  e2e_rng = e2e_rng * 1103515245u + 12345u;
  return (e2e_rng >> 16) % n;
}

static void e2e_enqueue(simnet_node_t *to, const simnet_node_t *from, const uint8_t *data,
                        size_t len) {
  assert_true(net.queued < SIMNET_MAX_QUEUE && len <= sizeof net.queue[0].data);
  size_t i = net.queued++;
  net.queue[i].at = net.now + net.latency_ms + e2e_rand(300);
  net.queue[i].to = to;
  net.queue[i].from = from->addr;
  net.queue[i].dst = to->addr;
  net.queue[i].len = len;
  memcpy(net.queue[i].data, data, len);
}

static int lossy_path(void *user, const simnet_node_t *from, const coap_address_t *to,
                      const uint8_t *data, size_t len, unsigned seq) {
  simnet_node_t *dest = from == client ? server : client;
  if (e2e_rand(100) < 20) return 1;
  e2e_enqueue(dest, from, data, len);
  if (e2e_rand(100) < 20) e2e_enqueue(dest, from, data, len);
  return 1; /* queued here, with its delay */
}

static void lossy_end_to_end(const char *uri) {
  /* OBSERVE_SEED=n tries another path (for debugging). */
  if (getenv("OBSERVE_SEED")) e2e_rng = (unsigned)atoi(getenv("OBSERVE_SEED"));
  net.filter = lossy_path;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, uri);
  o.observe = 1;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, NULL, NULL), 0);
  run(60000);
  assert_int_equal(n_ev, 1);
  for (temp_value = 1; temp_value <= 300; temp_value++) {
    coap_resource_notify(temp);
    run(100);
  }
  temp_value = 300;
  run(300000);
  assert_int_equal(finals, 0);
  /* The server sends one CON at a time and merges the states meanwhile
   * (§4.5.1): far fewer than 300 come, but a stream of them. */
  assert_true(n_ev > 10);
  int prev = -1;
  for (unsigned i = 0; i < n_ev; i++) {
    int v = atoi(ev[i].payload + 2);
    assert_true(ev[i].observing);
    assert_true(v >= prev); /* never an older state after a newer one */
    prev = v;
    if (i) assert_true(coap_observe_is_newer(ev[i - 1].observe, 0, ev[i].observe, 0));
  }
  assert_string_equal(last_event()->payload, "t=300");
}

static int setup_plain_pair(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5683, COAP_PROTO_UDP, NULL); /* 10.0.0.1 */
  client = simnet_add_node(&net, 40000, COAP_PROTO_UDP, NULL);
  assert_non_null(server);
  assert_non_null(client);
  temp = coap_resource_add(server->ctx, "temp");
  assert_int_equal(coap_resource_set_handler(temp, COAP_GET, temp_get, NULL), 0);
  assert_int_equal(coap_resource_set_observable(temp, 1), 0);
  temp_value = 0;
  memset(ev, 0, sizeof ev);
  n_ev = finals = 0;
  return 0;
}

static void test_lossy_end_to_end_coap(void **state) {
  lossy_end_to_end("coap://10.0.0.1/temp");
}
static void test_lossy_end_to_end_coaps(void **state) {
  temp_value = 0;
  lossy_end_to_end("coaps://10.0.0.1/temp");
}

static void test_dtls_server_restart_reregisters(void **state) {
  restart_case(0);
}
static void test_dtls_server_crash_reregisters(void **state) {
  restart_case(1);
}

/* ---- No-Response (RFC 7967) ---- */

static coap_request_id_t no_response_request(uint8_t bits, int con) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_POST, "coap://10.0.0.2/log");
  o.payload = "event";
  o.payload_len = 5;
  o.no_response = bits;
  o.confirmable = con;
  coap_request_id_t id;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, NULL, &id), 0);
  return id;
}

static void test_no_response_all_suppressed_returns_at_once(void **state) {
  fs.answer = ANSWER_NONE;
  uint64_t t0 = net.now;
  no_response_request(COAP_NO_RESPONSE_2XX | COAP_NO_RESPONSE_4XX | COAP_NO_RESPONSE_5XX, 1);
  run(0);
  assert_int_equal(n_ev, 1);
  assert_int_equal(ev[0].status, 0);
  assert_int_equal(ev[0].code, 0);
  assert_int_equal(ev[0].at, t0); /* no waiting */
  run(1000);
  /* It went out NON with the option, once. */
  assert_int_equal(fs.n_req, 1);
  assert_int_equal(fs.req[0].type, COAP_TYPE_NON);
  assert_int_equal(fs.req[0].no_response, 0x1a);
  run(300000);
  assert_int_equal(n_ev, 1);
  assert_int_equal(fs.n_req, 1);
}

static void test_no_response_partial_con_acked_is_silence(void **state) {
  fs.answer = ANSWER_EMPTY_ACK; /* the server took it and suppressed 2.04 */
  no_response_request(COAP_NO_RESPONSE_2XX, 1);
  run(200000);
  assert_int_equal(n_ev, 1);
  assert_int_equal(fs.req[0].type, COAP_TYPE_CON);
  assert_int_equal(fs.req[0].no_response, COAP_NO_RESPONSE_2XX);
  assert_int_equal(ev[0].status, 0);
  assert_int_equal(ev[0].code, 0);
  assert_non_null(strstr(ev[0].detail, "No-Response"));
}

static void test_no_response_partial_con_unacked_times_out(void **state) {
  fs.answer = ANSWER_NONE; /* nothing reached the server, as far as we know */
  no_response_request(COAP_NO_RESPONSE_2XX, 1);
  run(300000);
  assert_int_equal(n_ev, 1);
  assert_int_equal(ev[0].status, COAP_E_TIMEOUT);
}

static void test_no_response_partial_non_silence(void **state) {
  fs.answer = ANSWER_NONE;
  no_response_request(COAP_NO_RESPONSE_2XX | COAP_NO_RESPONSE_5XX, 0);
  run(300000);
  assert_int_equal(n_ev, 1);
  assert_int_equal(fs.req[0].type, COAP_TYPE_NON);
  assert_int_equal(ev[0].status, 0);
  assert_int_equal(ev[0].code, 0);
  /* An answer that is not suppressed still comes through. */
  fs.answer = ANSWER_404;
  no_response_request(COAP_NO_RESPONSE_2XX, 1);
  run(1000);
  assert_int_equal(n_ev, 2);
  assert_int_equal(ev[1].status, 0);
  assert_int_equal(ev[1].code, COAP_NOT_FOUND);
}

static void test_no_response_arguments(void **state) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_POST, "coap://10.0.0.2/log");
  o.no_response = 0x04; /* not a defined class bit */
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, NULL, NULL), COAP_E_INVALID_ARG);
  /* A body that goes block-wise cannot do without 2.31. */
  static uint8_t big[3000];
  o.no_response = COAP_NO_RESPONSE_2XX;
  o.payload = big;
  o.payload_len = sizeof big;
  assert_int_equal(coap_send_request(client->ctx, &o, on_reply, NULL, NULL), COAP_E_INVALID_ARG);
  run(1000);
  assert_int_equal(fs.n_req, 0);
}

/* ---- a callback that ends its own observation ---- */

static coap_request_id_t self_id;
static int self_mode; /* 1: coap_cancel_request, 2: coap_observe_cancel */

static void on_reply_cancel(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  on_reply(ctx, reply, user);
  if (reply->observing && reply->observe == 2) {
    if (self_mode == 1) assert_int_equal(coap_cancel_request(ctx, self_id), 0);
    if (self_mode == 2) assert_int_equal(coap_observe_cancel(ctx, self_id), 0);
  }
}

static void test_callback_may_cancel_itself(void **state) {
  for (self_mode = 1; self_mode <= 2; self_mode++) {
    reset_fake();
    n_ev = finals = 0;
    fs.seq = 1;
    coap_request_opts_t o;
    coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/temp");
    o.observe = 1;
    assert_int_equal(coap_send_request(client->ctx, &o, on_reply_cancel, NULL, &self_id), 0);
    run(1000);
    notify(2, "two");
    run(1000);
    notify(3, "three");
    run(1000);
    /* Cancelled from the callback of 2: nothing of 3 is delivered. */
    assert_int_equal(ev[1].observe, 2);
    if (self_mode == 1) {
      assert_int_equal(n_ev, 2);
      assert_int_equal(fs.rsts, 1);
    } else {
      assert_int_equal(n_ev, 3);
      assert_int_equal(ev[2].observing, 0);
      assert_int_equal(fs.req[fs.n_req - 1].observe, 1);
    }
    assert_int_equal(observations(), 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_notifications_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reordered_and_duplicated_are_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrap_around, setup, teardown),
      cmocka_unit_test_setup_teardown(test_answer_without_observe_ends, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_registered_is_one_reply, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_notification_ends, setup, teardown),
      cmocka_unit_test_setup_teardown(test_observe_value_too_long_is_absent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_first_answer_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_age_reregisters_with_the_same_token, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_default_max_age_is_60_s, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_sends_observe_1_with_the_same_token, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_cancel_with_a_notification_crossing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_unanswered, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_request_forgets_and_rst_follows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_context_free_ends_it_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_callback_may_cancel_itself, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blockwise_notification_is_completed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_blockwise_notification, setup, teardown),
      cmocka_unit_test_setup_teardown(test_newer_notification_restarts_a_fetch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blockwise_notification_whose_rest_is_lost, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_blockwise_notification_too_large_ends, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lossy_run_ends_with_the_latest_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dtls_server_restart_reregisters, setup_dtls, teardown),
      cmocka_unit_test_setup_teardown(test_dtls_server_crash_reregisters, setup_dtls, teardown),
      cmocka_unit_test_setup_teardown(test_dtls_no_response_waits_for_the_handshake, setup_dtls,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_lossy_end_to_end_coap, setup_plain_pair, teardown),
      cmocka_unit_test_setup_teardown(test_lossy_end_to_end_coaps, setup_dtls, teardown),
      cmocka_unit_test_setup_teardown(test_no_response_all_suppressed_returns_at_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_no_response_partial_con_acked_is_silence, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_no_response_partial_con_unacked_times_out, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_no_response_partial_non_silence, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_response_arguments, setup, teardown),
  };
  /* OBSERVE_TEST=name runs one test (for debugging). */
  if (getenv("OBSERVE_TEST")) cmocka_set_test_filter(getenv("OBSERVE_TEST"));
  return cmocka_run_group_tests(tests, NULL, NULL);
}
