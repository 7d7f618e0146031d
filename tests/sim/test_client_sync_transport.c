/* The RFC 7252 / RFC 7959 / RFC 7641 client through a program's own
 * transport that delivers every datagram at once, inside the send call
 * (as tests/sim/test_qblock_sync_transport.c does for Q-Block): the
 * server's answer reaches the client while the client's
 * coap_exch_request is still on the stack. Plain GET/PUT/POST, a Block2
 * GET of a multi-block body, a Block1 PUT, an observation registered,
 * notified and deregistered, and requests cancelled or sent again from
 * inside the reply callback: each ends with exactly one callback (one
 * per notification), byte-exact, and AddressSanitizer (the sanitized
 * build runs this too) finds no use of freed or stale state.
 *
 * The client may be re-entered (that is the case under test); the server
 * is not: a datagram for it while it handles one waits until it is done,
 * as a transport with a queue per receiver would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/timer.h"
#include "context/context_internal.h"
#include "coaps/context.h"
#include "support_store.h"

#define BLOCK 256
#define BODY_LEN (9 * BLOCK + 100) /* 10 blocks */

typedef struct held {
  coap_address_t from;
  size_t len;
  uint8_t data[1500];
} held_t;

static struct {
  uint64_t now;
  coap_context_t *client, *server;
  coap_endpoint_t *client_ep, *server_ep;
  coap_address_t client_addr, server_addr;
  int server_busy;
  held_t server_queue[64];
  size_t n_server_queue;
  unsigned depth;          /* client sends on the stack */
  unsigned answers_inside; /* datagrams into the client inside one of its sends */
  unsigned datagrams;
  coap_resource_t *obs_res;
  unsigned obs_state;
  unsigned obs_gets; /* GETs the observed resource answered */
} net;

static uint8_t body[BODY_LEN], stored[BODY_LEN];
static sim_store_t store = {stored, sizeof stored, 0, 0};

static uint64_t virtual_now(void *user) {
  (void)user;
  return net.now;
}

static void fill_rand(void *user, uint8_t *buf, size_t len) {
  static uint32_t state = 12345;
  (void)user;
  for (size_t i = 0; i < len; i++) {
    state = state * 1103515245u + 12345u;
    buf[i] = (uint8_t)(state >> 16);
  }
}

/* What came for the server while it was busy, in order. */
static void drain_server_queue(void) {
  for (size_t i = 0; i < net.n_server_queue; i++) {
    held_t h = net.server_queue[i];
    coap_context_input(net.server, net.server_ep, &h.from, h.data, h.len, net.now);
  }
  net.n_server_queue = 0;
  net.server_busy = 0;
}

static void to_server(const uint8_t *data, size_t len) {
  if (net.server_busy) {
    assert_true(net.n_server_queue < 64);
    held_t *h = &net.server_queue[net.n_server_queue++];
    h->from = net.client_addr;
    h->len = len;
    memcpy(h->data, data, len);
    return;
  }
  net.server_busy = 1;
  coap_context_input(net.server, net.server_ep, &net.client_addr, data, len, net.now);
  drain_server_queue();
}

/* The server's own sends (notifications, retransmissions) with the
 * client's answers to them held until it is done. */
static int server_notify(void) {
  net.server_busy = 1;
  int n = coap_resource_notify(net.obs_res);
  drain_server_queue();
  return n;
}

static void server_timeouts(void) {
  net.server_busy = 1;
  coap_context_handle_timeouts(net.server, net.now);
  drain_server_queue();
}

static int sync_send(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
                     size_t len) {
  (void)user, (void)to;
  assert_true(len <= sizeof net.server_queue[0].data);
  net.datagrams++;
  if (ep == net.client_ep) {
    net.depth++;
    to_server(data, len);
    net.depth--;
  } else {
    /* At once, into the client, whatever it is in the middle of. */
    if (net.depth) net.answers_inside++;
    coap_context_input(net.client, net.client_ep, &net.server_addr, data, len, net.now);
  }
  return 0;
}

static int open_client(void *user, coap_context_t *ctx, coap_proto_t proto,
                       const coap_address_t *dest, coap_endpoint_t **out) {
  (void)user, (void)dest;
  net.client_ep = *out = coap_context_add_endpoint(ctx, proto, &net.client_addr);
  return *out ? 0 : COAP_E_NOMEM;
}

static void blob_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  (void)ctx, (void)res, (void)req, (void)user;
  coap_response_set_payload(resp, COAP_FORMAT_OCTET_STREAM, body, sizeof body);
}

static void small_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  (void)ctx, (void)res, (void)req, (void)user;
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, (const uint8_t *)"small", 5);
}

static void obs_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                    coap_response_t *resp, void *user) {
  (void)ctx, (void)res, (void)req, (void)user;
  net.obs_gets++;
  char text[32];
  int n = snprintf(text, sizeof text, "state %u", net.obs_state);
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, (const uint8_t *)text, (size_t)n);
}

static int setup(void **state) {
  (void)state;
  memset(&net, 0, sizeof net);
  net.now = 1000;
  coap_context_config_t cc, sc;
  coap_context_config_default(&cc);
  cc.clock = virtual_now;
  cc.rand = fill_rand;
  sc = cc;
  net.client = coap_context_new(&cc);
  net.server = coap_context_new(&sc);
  assert_non_null(net.client);
  assert_non_null(net.server);
  coap_address_from_string(&net.client_addr, "10.0.0.1", 40000);
  coap_address_from_string(&net.server_addr, "10.0.0.2", COAP_DEFAULT_PORT);
  coap_transport_t t = {.send = sync_send, .open_client_endpoint = open_client};
  assert_int_equal(coap_context_set_transport(net.client, &t, NULL), 0);
  assert_int_equal(coap_context_set_transport(net.server, &t, NULL), 0);
  net.server_ep = coap_context_add_endpoint(net.server, COAP_PROTO_UDP, &net.server_addr);
  assert_non_null(net.server_ep);
  coap_resource_t *r = coap_resource_add(net.server, "blob");
  coap_resource_set_handler(r, COAP_PUT, sim_store_put, &store);
  coap_resource_set_handler(r, COAP_GET, blob_get, NULL);
  coap_resource_t *s = coap_resource_add(net.server, "small");
  coap_resource_set_handler(s, COAP_GET, small_get, NULL);
  coap_resource_set_handler(s, COAP_PUT, sim_store_put, &store);
  coap_resource_set_handler(s, COAP_POST, sim_store_put, &store);
  net.obs_res = coap_resource_add(net.server, "obs");
  coap_resource_set_handler(net.obs_res, COAP_GET, obs_get, NULL);
  assert_int_equal(coap_resource_set_observable(net.obs_res, 1), 0);
  for (size_t i = 0; i < sizeof body; i++) body[i] = (uint8_t)(i * 7 + (i >> 8) * 13 + 1);
  store.len = 0;
  store.calls = 0;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  coap_context_free(net.client);
  coap_context_free(net.server);
  return 0;
}

/* Every callback, in order. */
#define EVENTS_MAX 32
typedef struct event {
  int status, observing;
  uint8_t code;
  size_t payload_len;
  char text[32]; /* a short payload's start, NUL-terminated */
} event_t;

typedef enum {
  ACT_NONE,
  ACT_CANCEL,
  ACT_OBSERVE_CANCEL,
  ACT_SEND_AGAIN,
  ACT_SEND_AGAIN_STARVED
} action_t;

/* ---- a timer heap that cannot grow (as in test_timer_nomem.c) ---- */

#define FILLERS_MAX 4096
static coap_timer_t fillers[FILLERS_MAX];
static size_t n_fillers;
static coap_timer_heap_t *starved;

static void never(coap_timer_t *t, uint64_t now, void *user) {
  (void)t, (void)now, (void)user;
  fail_msg("a filler timer fired");
}

static void *no_memory(void *items, size_t bytes) {
  (void)items, (void)bytes;
  return NULL;
}

static void starve(coap_context_t *ctx) {
  coap_timer_heap_t *h = &ctx->timers;
  while (h->cap == 0 || h->len < h->cap) {
    assert_true(n_fillers < FILLERS_MAX);
    coap_timer_t *t = &fillers[n_fillers++];
    coap_timer_init(t, never, NULL);
    assert_int_equal(coap_timer_arm(h, t, UINT64_MAX - 1), 0);
  }
  h->grow = no_memory;
  starved = h;
}

static void feed(void) {
  if (!starved) return;
  starved->grow = NULL;
  for (size_t i = 0; i < n_fillers; i++) coap_timer_cancel(starved, &fillers[i]);
  n_fillers = 0;
  starved = NULL;
}

static struct {
  event_t ev[EVENTS_MAX];
  unsigned n;
  uint8_t body[BODY_LEN]; /* the last long payload */
  coap_request_id_t id;   /* the request the callbacks are for */
  action_t act;           /* what the callback does at event |act_at| */
  unsigned act_at;
  int act_rc;
  unsigned again_calls; /* callbacks of the request sent from a callback */
  int again_status;
  uint8_t again_code;
} rec;

static void on_again(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  (void)ctx, (void)user;
  rec.again_calls++;
  rec.again_status = reply->status;
  rec.again_code = reply->code;
}

static void on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  (void)user;
  assert_true(rec.n < EVENTS_MAX);
  event_t *e = &rec.ev[rec.n++];
  e->status = reply->status;
  e->observing = reply->observing;
  e->code = reply->code;
  e->payload_len = reply->payload_len;
  size_t n = reply->payload_len < sizeof e->text - 1 ? reply->payload_len : sizeof e->text - 1;
  if (n) memcpy(e->text, reply->payload, n);
  e->text[n] = '\0';
  assert_true(reply->payload_len <= sizeof rec.body);
  if (reply->payload_len) memcpy(rec.body, reply->payload, reply->payload_len);
  if (rec.act == ACT_NONE || rec.n != rec.act_at) return;
  /* Inside the callback, itself (maybe) inside one of the client's sends. */
  if (rec.act == ACT_CANCEL) rec.act_rc = coap_cancel_request(ctx, rec.id);
  if (rec.act == ACT_OBSERVE_CANCEL) rec.act_rc = coap_observe_cancel(ctx, rec.id);
  if (rec.act == ACT_SEND_AGAIN_STARVED) starve(ctx);
  if (rec.act == ACT_SEND_AGAIN || rec.act == ACT_SEND_AGAIN_STARVED) {
    coap_request_opts_t o;
    coap_request_opts_init(&o, COAP_GET, "coap://10.0.0.2/small");
    rec.act_rc = coap_send_request(ctx, &o, on_again, NULL, NULL);
  }
}

/* Let virtual time pass: anything left retransmits, a timer left armed
 * fires, and a second callback would come. */
static void let_time_pass(void) {
  for (int i = 0; i < 300; i++) {
    net.now += 1000;
    coap_context_handle_timeouts(net.client, net.now);
    server_timeouts();
  }
}

static void send_one(uint8_t method, const char *uri, int con, const uint8_t *payload, size_t len,
                     int observe) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, method, uri);
  o.confirmable = con;
  o.block_size = BLOCK;
  o.payload = payload;
  o.payload_len = len;
  o.observe = observe;
  assert_int_equal(coap_send_request(net.client, &o, on_reply, NULL, &rec.id), 0);
}

/* One request, one callback, the answer inside the send. */
static void one_case(uint8_t method, const char *uri, int con, const uint8_t *payload, size_t len,
                     uint8_t code) {
  memset(&rec, 0, sizeof rec);
  send_one(method, uri, con, payload, len, 0);
  assert_true(net.answers_inside > 0);
  let_time_pass();
  assert_int_equal(rec.n, 1);
  assert_int_equal(rec.ev[0].status, 0);
  assert_int_equal(rec.ev[0].code, code);
}

static void test_plain_get(void **state) {
  (void)state;
  for (int con = 0; con < 2; con++) {
    one_case(COAP_GET, "coap://10.0.0.2/small", con, NULL, 0, COAP_CONTENT);
    assert_string_equal(rec.ev[0].text, "small");
  }
}

static void test_plain_put_post(void **state) {
  (void)state;
  for (int con = 0; con < 2; con++) {
    store.calls = 0;
    one_case(COAP_PUT, "coap://10.0.0.2/small", con, body, 100, COAP_CHANGED);
    assert_int_equal(store.calls, 1);
    assert_int_equal(store.len, 100);
    assert_memory_equal(stored, body, 100);
    store.calls = 0;
    one_case(COAP_POST, "coap://10.0.0.2/small", con, body + 1, 50, COAP_CHANGED);
    assert_int_equal(store.calls, 1);
    assert_int_equal(store.len, 50);
    assert_memory_equal(stored, body + 1, 50);
  }
}

/* Ten Block2 blocks, each asked for inside the previous one's answer. */
static void test_block2_get(void **state) {
  (void)state;
  for (int con = 0; con < 2; con++) {
    one_case(COAP_GET, "coap://10.0.0.2/blob", con, NULL, 0, COAP_CONTENT);
    assert_int_equal(rec.ev[0].payload_len, sizeof body);
    assert_memory_equal(rec.body, body, sizeof body);
  }
}

/* Ten Block1 blocks, each sent inside the previous one's 2.31. */
static void test_block1_put(void **state) {
  (void)state;
  for (int con = 0; con < 2; con++) {
    store.calls = 0;
    one_case(COAP_PUT, "coap://10.0.0.2/blob", con, body, sizeof body, COAP_CHANGED);
    assert_int_equal(store.calls, 1);
    assert_int_equal(store.len, sizeof body);
    assert_memory_equal(stored, body, sizeof body);
  }
}

/* Register (the answer inside the send), three notifications, then a
 * deregistration whose answer comes inside its send. */
static void test_observe(void **state) {
  (void)state;
  memset(&rec, 0, sizeof rec);
  send_one(COAP_GET, "coap://10.0.0.2/obs", 1, NULL, 0, 1);
  assert_int_equal(rec.n, 1);
  assert_int_equal(rec.ev[0].observing, 1);
  assert_string_equal(rec.ev[0].text, "state 0");
  for (unsigned i = 1; i <= 3; i++) {
    net.obs_state = i;
    assert_int_equal(server_notify(), 1);
    net.now += 10;
    server_timeouts();
    coap_context_handle_timeouts(net.client, net.now);
  }
  assert_int_equal(rec.n, 4);
  assert_string_equal(rec.ev[3].text, "state 3");
  assert_int_equal(rec.ev[3].observing, 1);
  /* Max-Age (60 s) and 2 s without news: the client registers again from
   * its timer, the answer inside that send (the same state: no callback). */
  unsigned gets = net.obs_gets;
  for (int i = 0; i < 65; i++) {
    net.now += 1000;
    coap_context_handle_timeouts(net.client, net.now);
    server_timeouts();
  }
  assert_true(net.obs_gets > gets);
  net.obs_state = 4;
  assert_int_equal(server_notify(), 1);
  unsigned n = rec.n;
  assert_string_equal(rec.ev[n - 1].text, "state 4");
  assert_int_equal(rec.ev[n - 1].observing, 1);
  assert_int_equal(coap_observe_cancel(net.client, rec.id), 0);
  assert_int_equal(rec.n, n + 1); /* the deregistration's answer, inside the call */
  assert_int_equal(rec.ev[n].status, 0);
  assert_int_equal(rec.ev[n].observing, 0);
  assert_int_equal(rec.ev[n].code, COAP_CONTENT);
  net.obs_state = 9;
  assert_int_equal(server_notify(), 0); /* nobody observes */
  let_time_pass();
  assert_int_equal(rec.n, n + 1);
}

/* The observation ended from inside its own callback: at the
 * registration's answer (inside the registration's send) or at a
 * notification; forgotten (cancel) or deregistered (observe_cancel). */
static void observe_ended_inside(action_t act, unsigned at) {
  memset(&rec, 0, sizeof rec);
  rec.act = act;
  rec.act_at = at;
  send_one(COAP_GET, "coap://10.0.0.2/obs", 1, NULL, 0, 1);
  for (unsigned i = 1; i <= 3; i++) {
    net.obs_state = i;
    (void)server_notify();
    net.now += 10;
    server_timeouts();
    coap_context_handle_timeouts(net.client, net.now);
  }
  let_time_pass();
  assert_int_equal(rec.act_rc, 0);
  unsigned expect = act == ACT_CANCEL ? at : at + 1; /* + the deregistration's answer */
  assert_int_equal(rec.n, expect);
  for (unsigned i = 0; i + 1 < expect; i++) assert_int_equal(rec.ev[i].observing, 1);
  if (act == ACT_OBSERVE_CANCEL) {
    assert_int_equal(rec.ev[expect - 1].observing, 0);
    assert_int_equal(rec.ev[expect - 1].status, 0);
  }
  /* The server no longer counts it (an RST or the deregistration). */
  net.obs_state = 7;
  unsigned before = rec.n;
  (void)server_notify();
  let_time_pass();
  assert_int_equal(rec.n, before);
  int left = server_notify();
  assert_int_equal(left, 0);
}

static void test_observe_cancelled_inside(void **state) {
  (void)state;
  observe_ended_inside(ACT_CANCEL, 1);
  observe_ended_inside(ACT_CANCEL, 3);
  observe_ended_inside(ACT_OBSERVE_CANCEL, 1);
  observe_ended_inside(ACT_OBSERVE_CANCEL, 3);
}

/* A request sent from the callback of one answered inside its send: the
 * record the first used is reused while the first send is on the stack. */
static void test_send_from_callback(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++) {
    memset(&rec, 0, sizeof rec);
    rec.act = ACT_SEND_AGAIN;
    rec.act_at = 1;
    const char *uri = i == 1 ? "coap://10.0.0.2/blob" : "coap://10.0.0.2/small";
    send_one(i == 2 ? COAP_PUT : COAP_GET, uri, 1, i == 2 ? body : NULL, i == 2 ? sizeof body : 0,
             0);
    let_time_pass();
    assert_int_equal(rec.act_rc, 0);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.ev[0].status, 0);
    assert_int_equal(rec.again_calls, 1);
    assert_int_equal(rec.again_status, 0);
    assert_int_equal(rec.again_code, COAP_CONTENT);
  }
}

/* The same, but the request sent from the callback cannot start (its
 * retransmission timer cannot be armed): it alone fails, with
 * COAP_E_NOMEM and no callback; the outer request, whose answer came
 * inside its send, has succeeded and is not reported (or released) as
 * failed. */
static void test_send_from_callback_fails(void **state) {
  (void)state;
  memset(&rec, 0, sizeof rec);
  rec.act = ACT_SEND_AGAIN_STARVED;
  rec.act_at = 1;
  send_one(COAP_GET, "coap://10.0.0.2/small", 1, NULL, 0, 0);
  feed();
  assert_int_equal(rec.act_rc, COAP_E_NOMEM);
  assert_int_equal(rec.n, 1);
  assert_int_equal(rec.ev[0].status, 0);
  assert_int_equal(rec.ev[0].code, COAP_CONTENT);
  let_time_pass();
  assert_int_equal(rec.n, 1);
  assert_int_equal(rec.again_calls, 0);
  /* Nothing left behind: the next request goes as usual. */
  one_case(COAP_GET, "coap://10.0.0.2/small", 1, NULL, 0, COAP_CONTENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_plain_get, setup, teardown),
      cmocka_unit_test_setup_teardown(test_plain_put_post, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block2_get, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block1_put, setup, teardown),
      cmocka_unit_test_setup_teardown(test_observe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_observe_cancelled_inside, setup, teardown),
      cmocka_unit_test_setup_teardown(test_send_from_callback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_send_from_callback_fails, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
