/* The internal invariant checks (src/common/invariant.h) fire on a broken
 * structure: each checker is shown a sound structure (NULL), then the same
 * structure corrupted in one way at a time (the broken invariant named),
 * and in a build that checks invariants (Debug, sanitizer, fuzz) the next
 * operation on a corrupted structure aborts with that name on stderr — run
 * in a child process (fork), so this test survives it. In a build without
 * the checks the same operation must not abort (they are compiled out). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/invariant.h"
#include "common/timer.h"
#include "context/context_internal.h"
#include "exchange/exchange.h"
#include "peer/peer_table.h"

/* ---- death tests ---- */

/* Runs |fn| in a child with stderr captured. In a checking build the child
 * must die of SIGABRT having printed "invariant broken" and |want|; in
 * another it must return normally, unless |only_checked| (the bug it
 * makes would really crash without the check: not run then). */
static void run_expecting_abort(void (*fn)(void), const char *want, int only_checked) {
  if (only_checked && !COAPS_CHECKING_INVARIANTS) return;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    fn();
    _exit(0);
  }
  close(fds[1]);
  char out[4096];
  size_t n = 0;
  ssize_t r;
  while ((r = read(fds[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)r;
  out[n] = 0;
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (COAPS_CHECKING_INVARIANTS) {
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
      fail_msg("no abort (status 0x%x), stderr: %s", status, out);
    if (!strstr(out, "coaps: invariant broken at ") || !strstr(out, want))
      fail_msg("abort without \"%s\": %s", want, out);
  } else {
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fail_msg("checks are off, yet the child ended with 0x%x: %s", status, out);
  }
}

/* The bug |fn| makes is harmless without the checks. */
static void expect_invariant_abort(void (*fn)(void), const char *want) {
  run_expecting_abort(fn, want, 0);
}

/* The bug |fn| makes would crash or corrupt memory without the checks. */
static void expect_precondition_abort(void (*fn)(void), const char *want) {
  run_expecting_abort(fn, want, 1);
}

/* ---- timer heap ---- */

static void nop(coap_timer_t *t, uint64_t now, void *user) {}

#define NT 20
static coap_timer_heap_t heap;
static coap_timer_t tm[NT + 1];

static void heap_fill(void) {
  coap_timer_heap_init(&heap);
  for (int i = 0; i <= NT; i++) coap_timer_init(&tm[i], nop, NULL);
  for (int i = 0; i < NT; i++)
    assert_int_equal(coap_timer_arm(&heap, &tm[i], 1000 + (uint64_t)(i * 37 % NT)), 0);
  assert_null(coap_timer_heap_broken(&heap));
}

static void test_timer_heap_checker(void **state) {
  heap_fill();
  /* a stored index that is not the timer's slot */
  heap.items[3]->index = 4;
  assert_string_equal(coap_timer_heap_broken(&heap), "timer heap: a timer's index is not its slot");
  heap.items[3]->index = 3;
  /* a child due before its parent */
  uint64_t saved = heap.items[5]->deadline;
  heap.items[5]->deadline = 1;
  assert_string_equal(coap_timer_heap_broken(&heap),
                      "timer heap: a timer is due before its parent");
  heap.items[5]->deadline = saved;
  assert_null(coap_timer_heap_broken(&heap));
  heap.len = heap.cap + 1;
  assert_string_equal(coap_timer_heap_broken(&heap), "timer heap: len > cap");
  heap.len = NT;
  /* still sound after cancelling, re-arming and running */
  coap_timer_cancel(&heap, &tm[7]);
  assert_int_equal(coap_timer_arm(&heap, &tm[2], 5), 0);
  assert_int_equal(coap_timer_heap_run(&heap, 1005), 7); /* 1000..1005, and tm[2] */
  assert_null(coap_timer_heap_broken(&heap));
  coap_timer_heap_free(&heap);
}

static void arm_on_broken_heap(void) {
  heap_fill();
  heap.items[NT - 1]->deadline = 0; /* a leaf due before its parent */
  heap.check_ops = 1000;            /* the next walk is due (they are sampled) */
  coap_timer_arm(&heap, &tm[NT], 99999);
}

static void cancel_foreign_timer(void) {
  heap_fill();
  coap_timer_t stray;
  coap_timer_init(&stray, nop, NULL);
  stray.index = 2; /* "armed", but in another heap */
  coap_timer_cancel(&heap, &stray);
}

static void test_timer_heap_aborts(void **state) {
  expect_invariant_abort(arm_on_broken_heap, "a timer is due before its parent");
  expect_precondition_abort(cancel_foreign_timer, "armed_here(heap, t)");
}

/* ---- peer table ---- */

#define NP 12
static coap_peer_table_t table;
static coap_endpoint_t *ep = (coap_endpoint_t *)&table; /* any distinct pointer */
static coap_address_t addr[NP + 1];
static coap_peer_t *peer[NP];

static void table_fill(void) {
  assert_int_equal(coap_peer_table_init(&table, 99), 0);
  for (int i = 0; i <= NP; i++) {
    char host[32];
    snprintf(host, sizeof host, "192.0.2.%d", i + 1);
    assert_int_equal(coap_address_from_string(&addr[i], host, 5683), 0);
  }
  for (int i = 0; i < NP; i++) {
    peer[i] = coap_peer_table_add(&table, ep, &addr[i]);
    assert_non_null(peer[i]);
    peer[i]->last_active = 100 + (uint64_t)i; /* as the context does */
  }
  assert_null(coap_peer_table_broken(&table));
}

static void table_empty(void) {
  size_t cursor = 0;
  coap_peer_t *p;
  while ((p = coap_peer_table_any(&table, &cursor))) coap_peer_table_remove(&table, p);
  coap_peer_table_free(&table);
}

static void test_peer_table_checker(void **state) {
  table_fill();
  coap_peer_t *p = peer[4];
  /* the recency list's back link */
  coap_peer_t *older = p->newer->older;
  p->newer->older = peer[0];
  assert_string_equal(coap_peer_table_broken(&table),
                      "peer recency list: newer->older is not the entry");
  p->newer->older = older;
  /* order: a newer entry silent longer than an older one */
  p->last_active = 500;
  assert_string_equal(coap_peer_table_broken(&table), "peer recency list: not oldest first");
  p->last_active = 104;
  /* count against the buckets */
  table.count++;
  assert_string_equal(coap_peer_table_broken(&table),
                      "peer table: fewer entries in the buckets than count");
  table.count--;
  /* an entry whose key changed while linked sits in the wrong bucket (a
   * port whose key hashes elsewhere: then it is not found by its key) */
  coap_address_t saved = p->addr;
  p->addr = addr[NP];
  for (uint16_t port = 1; coap_peer_table_find(&table, ep, &p->addr) == p; port++)
    coap_address_set_port(&p->addr, port);
  const char *why = coap_peer_table_broken(&table);
  assert_non_null(why);
  assert_true(strcmp(why, "peer table: an entry in the wrong bucket") == 0 ||
              strcmp(why, "peer recency list: an entry that is not in the hash") == 0);
  p->addr = saved;
  /* an evicted peer still in the recency list: unlinked from its bucket
   * only, as a half-done removal would leave it */
  size_t b = 0;
  while (!table.buckets[b]) b++;
  coap_peer_t *gone = table.buckets[b];
  table.buckets[b] = gone->hash_next;
  table.count--;
  why = coap_peer_table_broken(&table);
  assert_non_null(why);
  assert_true(strcmp(why, "peer recency list: an entry that is not in the hash") == 0 ||
              strcmp(why,
                     "peer recency list: longer than count (a removed peer still linked, "
                     "or a loop)") == 0);
  gone->hash_next = table.buckets[b];
  table.buckets[b] = gone;
  table.count++;
  assert_null(coap_peer_table_broken(&table));
  /* touch and remove keep it sound */
  peer[0]->last_active = 200;
  coap_peer_table_touch(&table, peer[0]);
  coap_peer_table_remove(&table, peer[6]);
  assert_null(coap_peer_table_broken(&table));
  table_empty();
}

static void add_to_broken_table(void) {
  table_fill();
  peer[3]->newer->older = NULL;
  table.check_ops = 1000; /* the next walk is due (they are sampled) */
  coap_peer_table_add(&table, ep, &addr[NP]);
}

static void remove_twice(void) {
  table_fill();
  coap_peer_t *p = peer[2];
  /* the first removal, without the free, so the second reads no freed memory */
  coap_peer_t **link = &table.buckets[0];
  for (size_t b = 0; b < table.n_buckets; b++)
    for (link = &table.buckets[b]; *link; link = &(*link)->hash_next)
      if (*link == p) goto found;
  return;
found:
  *link = p->hash_next;
  table.count--;
  coap_peer_table_remove(&table, p);
}

static void test_peer_table_aborts(void **state) {
  expect_invariant_abort(add_to_broken_table, "newer->older is not the entry");
  expect_precondition_abort(remove_twice, "*link == p");
}

/* ---- the CID map ---- */

static void test_cid_map_checker(void **state) {
  coap_cid_map_t m = {.seed = 7};
  static coap_peer_t owner;
  coap_cid_entry_t e[3];
  assert_null(coap_cid_map_broken(&m));
  for (int i = 0; i < 3; i++) {
    e[i] = (coap_cid_entry_t){.peer = &owner, .len = 4, .cid = {1, 2, 3, (uint8_t)i}};
    assert_int_equal(coap_cid_map_add(&m, &e[i]), 0);
  }
  assert_null(coap_cid_map_broken(&m));
  m.count++;
  assert_string_equal(coap_cid_map_broken(&m), "CID map: fewer entries than count");
  m.count--;
  e[1].cid[0] ^= 0xff; /* its CID changed while linked */
  const char *why = coap_cid_map_broken(&m);
  /* (the same bucket by chance is possible for one change; try others) */
  for (int k = 1; !why && k < 255; k++) {
    e[1].cid[1] = (uint8_t)k;
    why = coap_cid_map_broken(&m);
  }
  assert_string_equal(why, "CID map: an entry in the wrong bucket");
  e[1].cid[0] ^= 0xff;
  e[1].cid[1] = 2;
  assert_null(coap_cid_map_broken(&m));
  e[2].peer = NULL;
  assert_string_equal(coap_cid_map_broken(&m), "CID map: an entry without a peer or too long");
  e[2].peer = &owner;
  for (int i = 0; i < 3; i++) coap_cid_map_remove(&m, &e[i]);
  assert_null(coap_cid_map_broken(&m));
  assert_null(m.buckets);
}

static void add_to_broken_cid_map(void) {
  coap_cid_map_t m = {.seed = 7};
  static coap_peer_t owner;
  static coap_cid_entry_t e[2];
  e[0] = (coap_cid_entry_t){.peer = &owner, .len = 2, .cid = {9, 9}};
  e[1] = (coap_cid_entry_t){.peer = &owner, .len = 2, .cid = {8, 8}};
  coap_cid_map_add(&m, &e[0]);
  m.count = 5;        /* miscounted */
  m.check_ops = 1000; /* the next walk is due */
  coap_cid_map_add(&m, &e[1]);
}

static void test_cid_map_aborts(void **state) {
  expect_invariant_abort(add_to_broken_cid_map, "CID map: fewer entries than count");
}

/* ---- exchange: in-flight list, NSTART queue, dedup ring, pools ---- */

static coap_timer_heap_t xtimers;
static coap_logger_t logger = {.level = COAP_LOG_ERROR};
static coap_exch_t *ex;
static coap_exch_peer_t xpeer;
static coap_exch_out_t *outs[3];
static coap_exch_in_t *pending;

static int sink(void *user, coap_exch_peer_t *p, const uint8_t *data, size_t len) {
  return 0;
}
static void keep_request(void *user, coap_exch_peer_t *p, coap_exch_in_t *in, const coap_msg_t *req,
                         uint64_t now) {
  pending = in; /* answered later (a separate response) */
}
static int on_response(void *user, coap_exch_out_t *out, const coap_msg_t *msg, int err,
                       uint64_t now) {
  return 0;
}
static void rng(void *user, uint8_t *buf, size_t len) {
  static uint8_t n;
  for (size_t i = 0; i < len; i++) buf[i] = ++n;
}

/* Three CON requests out with NSTART 1 (one in flight, two queued) and
 * one incoming CON request pending. */
static void exch_start(void) {
  coap_tx_params_t params;
  coap_tx_params_default(&params);
  params.nstart = 1;
  static const coap_exch_callbacks_t cb = {
      .send = sink, .on_request = keep_request, .on_response = on_response};
  coap_timer_heap_init(&xtimers);
  ex = coap_exch_new(&params, &cb, NULL, &xtimers, &logger, rng, NULL);
  assert_non_null(ex);
  coap_exch_peer_init(ex, &xpeer);
  for (int i = 0; i < 3; i++) {
    coap_msg_t req;
    coap_msg_init(&req, COAP_TYPE_CON, COAP_GET, 0);
    assert_int_equal(coap_exch_request(ex, &xpeer, &req, NULL, &outs[i], 0), 0);
  }
  const uint8_t get[] = {0x41, 0x01, 0x12, 0x34, 0x7e, 0xb1, 'x'};
  assert_int_equal(coap_exch_receive(ex, &xpeer, get, sizeof get, 0), 0);
  assert_non_null(pending);
  assert_int_equal(xpeer.cons_in_flight, 1);
  assert_non_null(xpeer.queue_head);
  assert_null(coap_exch_peer_broken(&xpeer));
  assert_null(coap_exch_broken(ex));
}

static void exch_stop(void) {
  coap_exch_peer_clear(ex, &xpeer, 0);
  coap_exch_free(ex);
  coap_timer_heap_free(&xtimers);
  pending = NULL;
}

static void test_exchange_checker(void **state) {
  exch_start();
  xpeer.cons_in_flight = 2;
  assert_string_equal(coap_exch_peer_broken(&xpeer),
                      "exchange: cons_in_flight is not the number counted");
  xpeer.cons_in_flight = 1;
  coap_exch_out_t *tail = xpeer.queue_tail;
  xpeer.queue_tail = xpeer.queue_head;
  assert_string_equal(coap_exch_peer_broken(&xpeer), "exchange: NSTART queue tail is not its last");
  xpeer.queue_tail = NULL;
  assert_string_equal(coap_exch_peer_broken(&xpeer), "exchange: NSTART queue has one end only");
  xpeer.queue_tail = tail;
  /* dedup ring bounds */
  uint16_t pos = xpeer.dedup_pos;
  xpeer.dedup_pos = xpeer.dedup_cap;
  assert_string_equal(coap_exch_peer_broken(&xpeer), "dedup ring: pos >= cap");
  xpeer.dedup_pos = pos;
  uint16_t len = xpeer.dedup_len;
  xpeer.dedup_len = 0;
  assert_non_null(coap_exch_peer_broken(&xpeer)); /* the pending request's entry is past len */
  xpeer.dedup_len = len;
  uint16_t *head = &xpeer.dedup_heads[0x34 & (xpeer.dedup_buckets - 1)];
  uint16_t saved = *head;
  *head = 0;
  assert_string_equal(coap_exch_peer_broken(&xpeer), "dedup ring: an entry in no chain");
  *head = saved;
  assert_null(coap_exch_peer_broken(&xpeer));
  /* answering, cancelling and ACKs keep it sound */
  coap_msg_t resp;
  coap_msg_init(&resp, COAP_TYPE_CON, COAP_CONTENT, 0);
  assert_int_equal(coap_exch_respond(ex, pending, &resp, 10), 0);
  coap_exch_cancel(ex, outs[1]);
  assert_null(coap_exch_peer_broken(&xpeer));
  assert_null(coap_exch_broken(ex));
  exch_stop();
}

static void broken_count_then_request(void) {
  exch_start();
  xpeer.cons_in_flight = 0;
  coap_msg_t req;
  coap_msg_init(&req, COAP_TYPE_NON, COAP_GET, 0);
  coap_exch_request(ex, &xpeer, &req, NULL, NULL, 0);
}

static void cancel_twice(void) {
  exch_start();
  coap_exch_cancel(ex, outs[2]);
  coap_exch_cancel(ex, outs[2]); /* back in the pool: the second is a bug */
}

static void respond_twice(void) {
  exch_start();
  coap_exch_in_t *in = pending;
  coap_msg_t resp;
  coap_msg_init(&resp, COAP_TYPE_ACK, COAP_CONTENT, 0);
  coap_exch_respond(ex, in, &resp, 1);
  coap_msg_init(&resp, COAP_TYPE_ACK, COAP_CONTENT, 0);
  coap_exch_respond(ex, in, &resp, 1);
}

static void test_exchange_aborts(void **state) {
  expect_invariant_abort(broken_count_then_request, "cons_in_flight is not the number counted");
  expect_precondition_abort(cancel_twice, "out->peer && out->ex == ex");
  expect_precondition_abort(respond_twice, "in->peer && in->ex == ex");
}

/* ---- the client's pool of request records ---- */

static int drop(void *user, coap_endpoint_t *e, const coap_address_t *to, const uint8_t *data,
                size_t len) {
  return 0;
}
static int open_ep(void *user, coap_context_t *c, coap_proto_t proto, const coap_address_t *dest,
                   coap_endpoint_t **out) {
  *out = coap_context_add_endpoint(c, proto, NULL);
  return *out ? 0 : COAP_E_NOMEM;
}

/* The pool's count says one record more than it holds; the next record
 * released (a cancelled request's) walks it. */
static void miscounted_request_pool(void) {
  coap_context_t *ctx = coap_context_new(NULL);
  static const coap_transport_t t = {.send = drop, .open_client_endpoint = open_ep};
  coap_context_set_transport(ctx, &t, NULL);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://192.0.2.1/x");
  coap_request_id_t id;
  if (coap_send_request(ctx, &o, NULL, NULL, &id) < 0) return;
  ctx->client.n_req_free++;
  coap_cancel_request(ctx, id);
}

static void test_request_pool_aborts(void **state) {
  expect_invariant_abort(miscounted_request_pool, "n == cl->n_req_free");
}

/* ---- the macro itself ---- */

static void plain_invariant(void) {
  volatile int limit = 3;
  COAPS_INVARIANT(limit < 2);
  (void)limit;
}

static void test_macro(void **state) {
  expect_invariant_abort(plain_invariant, "limit < 2");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_macro),
      cmocka_unit_test(test_timer_heap_checker),
      cmocka_unit_test(test_timer_heap_aborts),
      cmocka_unit_test(test_peer_table_checker),
      cmocka_unit_test(test_peer_table_aborts),
      cmocka_unit_test(test_cid_map_checker),
      cmocka_unit_test(test_cid_map_aborts),
      cmocka_unit_test(test_exchange_checker),
      cmocka_unit_test(test_exchange_aborts),
      cmocka_unit_test(test_request_pool_aborts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
