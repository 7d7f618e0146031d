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
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "client/client.h"
#include "common/invariant.h"
#include "common/timer.h"
#include "context/context_internal.h"
#include "exchange/exchange.h"
#include "peer/peer_table.h"
#include "server/server.h"

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

/* ---- the server's resource registry ---- */

static coap_server_t srv;
static coap_context_config_t scfg;
static coap_timer_heap_t stimers;

static void server_start(void) {
  assert_int_equal(coap_server_init(&srv, 1024, &logger), 0);
  coap_context_config_default(&scfg);
  coap_timer_heap_init(&stimers);
  coap_server_configure(&srv, &scfg, &stimers);
}

static void server_stop(void) {
  coap_server_free(&srv);
  coap_timer_heap_free(&stimers);
}

#define NR 12
static coap_resource_t *res[NR];

static void registry_fill(void) {
  server_start();
  for (int i = 0; i < NR; i++) {
    char path[16];
    snprintf(path, sizeof path, "/r/%c/", 'a' + i);
    assert_int_equal(coap_server_resource_add(&srv, path, &res[i]), 0);
  }
  assert_null(coap_server_registry_broken(&srv));
}

/* One of two names for a resource whose path changed while linked: it is
 * in another path's bucket, or in the bucket of a path it now shares. */
static void assert_misplaced(const char *why) {
  assert_non_null(why);
  assert_true(strcmp(why, "resource registry: a resource in the wrong bucket") == 0 ||
              strcmp(why, "resource registry: two resources of one path") == 0);
}

static void test_registry_checker(void **state) {
  registry_fill();
  srv.count++;
  assert_string_equal(coap_server_registry_broken(&srv),
                      "resource registry: fewer resources in the list than count");
  srv.count--;
  coap_resource_t *last = srv.last;
  srv.last = res[3];
  assert_string_equal(coap_server_registry_broken(&srv),
                      "resource registry: last is not the list's end");
  srv.last = last;
  char *path = (char *)coap_resource_path(res[5]); /* "r/f" */
  path[0] = '/';
  assert_string_equal(coap_server_registry_broken(&srv),
                      "resource registry: a path that is not normalised");
  /* renamed to another's path while linked: found by neither */
  path[0] = 'r';
  path[2] = 'h';
  assert_misplaced(coap_server_registry_broken(&srv));
  path[2] = 'f';
  /* a path edited in place hashes elsewhere (try letters until one does) */
  for (char c = 'A'; c <= 'Z' && !coap_server_registry_broken(&srv); c++) path[2] = c;
  assert_misplaced(coap_server_registry_broken(&srv));
  path[2] = 'f';
  size_t nb = srv.n_buckets;
  srv.n_buckets = 48;
  assert_string_equal(coap_server_registry_broken(&srv),
                      "resource registry: n_buckets is not a power of two");
  srv.n_buckets = nb;
  assert_null(coap_server_registry_broken(&srv));
  /* adding, removing and growing keep it sound */
  assert_int_equal(coap_server_resource_remove(&srv, res[4]), 0);
  assert_int_equal(coap_server_resource_remove(&srv, res[NR - 1]), 0);
  for (int i = 0; i < 100; i++) {
    char p[16];
    coap_resource_t *r;
    snprintf(p, sizeof p, "more/%d", i);
    assert_int_equal(coap_server_resource_add(&srv, p, &r), 0);
  }
  assert_null(coap_server_registry_broken(&srv));
  server_stop();
}

static void add_to_broken_registry(void) {
  registry_fill();
  srv.count++;
  srv.check_ops = 1000; /* the next walk is due (they are sampled) */
  coap_resource_t *r;
  coap_server_resource_add(&srv, "one/more", &r);
}

static void test_registry_aborts(void **state) {
  expect_invariant_abort(add_to_broken_registry,
                         "resource registry: fewer resources in the list than count");
}

/* ---- the server's Observe registry ---- */

static int notifications;

static int obs_send(void *user, const void *peer_key, int con, uint8_t code, const uint8_t *token,
                    uint8_t token_len, const uint8_t *rest, size_t rest_len, coap_observer_t *obs,
                    void **handle, uint16_t *mid) {
  if (handle) *handle = &notifications;
  *mid = (uint16_t)++notifications;
  return 0;
}
static void obs_cancel(void *user, void *handle) {}
static uint64_t obs_now(void *user) {
  return 1000;
}
static const coap_obs_ops_t obs_ops = {.send = obs_send, .cancel = obs_cancel, .now = obs_now};

static void answer_x(coap_context_t *ctx, coap_resource_t *r, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "x", 1);
}

static uint8_t resp_store[COAP_RESPONSE_STORE];

/* A GET of |r| with Observe |value| from |who| with |token| (and Uri-Query
 * |query|, NULL: none), answered by the handler, then by the registry. */
static void observe(coap_resource_t *r, const void *who, uint8_t token, const char *query,
                    uint32_t value) {
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, token);
  coap_msg_set_token(&m, &token, 1);
  coap_msg_add_uint(&m, COAP_OPTION_OBSERVE, value);
  if (query) coap_msg_add_option(&m, COAP_OPTION_URI_QUERY, query, strlen(query));
  coap_response_t resp;
  coap_response_init(&resp, &m, resp_store, sizeof resp_store);
  coap_request_t req = {.msg = &m, .peer_key = who, .proto = COAP_PROTO_UDP, .now = 1000};
  answer_x(NULL, r, &req, &resp, NULL);
  coap_observe_request(&srv, r, &req, &resp);
}

static char peer_keys[8];

/* Six peers observe res[0], one of them twice (another query: another
 * group); two observe res[1], one with a token it uses on res[0]. */
static void observers_fill(void) {
  registry_fill();
  coap_observe_set_ops(&srv, &obs_ops, NULL, NULL);
  for (int i = 0; i < 2; i++) {
    coap_resource_set_handler(res[i], COAP_GET, answer_x, NULL);
    assert_int_equal(coap_resource_set_observable(res[i], 1), 0);
  }
  for (int i = 0; i < 6; i++) observe(res[0], &peer_keys[i], 1, NULL, 0);
  observe(res[0], &peer_keys[0], 2, "a", 0);
  observe(res[1], &peer_keys[1], 3, NULL, 0);
  observe(res[1], &peer_keys[0], 2, "a", 0); /* its token on /r/a too: another observation */
  assert_int_equal(coap_resource_observer_count(res[0]), 7);
  assert_int_equal(coap_resource_observer_count(res[1]), 2);
  assert_int_equal(srv.obs.n_groups, 4);
  assert_null(coap_obs_table_broken(&srv));
}

static void test_observe_checker(void **state) {
  observers_fill();
  coap_obs_table_t *t = &srv.obs;
  t->count++;
  assert_string_equal(coap_obs_table_broken(&srv), "observers: fewer in the buckets than count");
  t->count--;
  coap_resource_obs(res[0])->count++;
  assert_string_equal(coap_obs_table_broken(&srv),
                      "observe: a resource's count is not its observers");
  coap_resource_obs(res[0])->count--;
  t->bytes += 8;
  assert_string_equal(coap_obs_table_broken(&srv),
                      "observe: bytes is not what observers and groups hold");
  t->bytes -= 8;
  t->n_groups++;
  assert_string_equal(coap_obs_table_broken(&srv),
                      "observer groups: fewer in the buckets than n_groups");
  t->n_groups--;
  /* two resources' group lists swapped */
  coap_obs_group_t *g0 = coap_resource_obs(res[0])->groups;
  coap_resource_obs(res[0])->groups = coap_resource_obs(res[1])->groups;
  coap_resource_obs(res[1])->groups = g0;
  assert_string_equal(coap_obs_table_broken(&srv),
                      "observe: a resource lists a group of another resource");
  coap_resource_obs(res[1])->groups = coap_resource_obs(res[0])->groups;
  coap_resource_obs(res[0])->groups = g0;
  /* the limits, as a registration past them would leave the table */
  scfg.max_observers_per_peer = 2; /* peer 0 has three */
  assert_string_equal(coap_obs_table_broken(&srv), "observers: a peer over max_observers_per_peer");
  scfg.max_observers_per_peer = 64;
  scfg.max_observers = 8;
  assert_string_equal(coap_obs_table_broken(&srv), "observers: more than max_observers");
  scfg.max_observers = 100000;
  assert_null(coap_obs_table_broken(&srv));
  /* notifying, deregistering, a peer going and a resource going keep it sound */
  assert_int_equal(coap_observe_notify(&srv, res[0]), 7);
  observe(res[0], &peer_keys[3], 1, NULL, 1);
  assert_int_equal(coap_resource_observer_count(res[0]), 6);
  coap_observe_peer_gone(&srv, &peer_keys[0]);
  assert_int_equal(coap_resource_observer_count(res[0]), 4);
  assert_null(coap_obs_table_broken(&srv));
  assert_int_equal(coap_server_resource_remove(&srv, res[1]), 0);
  assert_int_equal(srv.obs.count, 4);
  assert_null(coap_obs_table_broken(&srv));
  server_stop();
}

static void register_on_broken_table(void) {
  observers_fill();
  srv.obs.count++;
  srv.obs.check_ops = 1000; /* the next walk is due */
  observe(res[1], &peer_keys[5], 9, NULL, 0);
}

static void test_observe_aborts(void **state) {
  expect_invariant_abort(register_on_broken_table, "observers: fewer in the buckets than count");
}

/* ---- the server's Block1 / Q-Block1 table and Block2 copies ---- */

static const uint8_t sixteen[16] = "0123456789abcdef";

/* Block |num| (16 bytes, more to come) of a POST body to /up from |who|. */
static coap_b1_result_t block1(const void *who, uint32_t num) {
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_POST, (uint16_t)num);
  coap_block_t b = {.num = num, .more = 1, .szx = 0};
  coap_msg_add_block(&m, COAP_OPTION_BLOCK1, &b);
  coap_msg_set_payload(&m, sixteen, sizeof sixteen);
  coap_response_t resp;
  coap_response_init(&resp, &m, resp_store, sizeof resp_store);
  coap_request_t req = {.msg = &m, .peer_key = who, .now = 1000};
  const uint8_t *body;
  size_t len;
  return coap_b1_receive(&srv, &req, "up", 2, &b, &resp, &body, &len);
}

/* Block |num| of a 64-byte Q-Block1 body (NON, Request-Tag "t"). */
static coap_b1_result_t qblock1(const void *who, uint32_t num) {
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_NON, COAP_POST, (uint16_t)(100 + num));
  coap_block_t b = {.num = num, .more = num < 3, .szx = 0};
  coap_msg_add_block(&m, COAP_OPTION_Q_BLOCK1, &b);
  coap_msg_add_uint(&m, COAP_OPTION_SIZE1, 64);
  coap_msg_add_option(&m, COAP_OPTION_REQUEST_TAG, "t", 1);
  coap_msg_set_payload(&m, sixteen, sizeof sixteen);
  coap_response_t resp;
  coap_response_init(&resp, &m, resp_store, sizeof resp_store);
  coap_request_t req = {.msg = &m, .peer_key = who, .now = 1000};
  const uint8_t *body;
  size_t len;
  return coap_qb1_receive(&srv, &req, "q", 1, &b, &resp, &body, &len);
}

/* A 100-byte answer to a GET of /big from |who|, sent in 16-byte blocks:
 * kept as a Block2 copy. */
static void keep_copy(const void *who) {
  static uint8_t big[100];
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 7);
  coap_msg_add_option(&m, COAP_OPTION_URI_PATH, "big", 3);
  coap_response_t resp;
  static coap_body_buf_t buf;
  coap_response_init(&resp, &m, resp_store, sizeof resp_store);
  coap_response_set_limits(&resp, &buf, scfg.max_body, 0);
  coap_response_set_payload(&resp, COAP_FORMAT_NONE, big, sizeof big);
  coap_request_t req = {.msg = &m, .peer_key = who, .now = 1000};
  coap_b2_cache_keep(&srv, &req, &resp);
  free(buf.data);
  buf = (coap_body_buf_t){0};
}

/* Four Block1 bodies under way, a Q-Block1 body with blocks 0 and 2 of
 * 4, a Block2 copy. */
static void blocks_fill(void) {
  server_start();
  for (int i = 0; i < 4; i++) assert_int_equal(block1(&peer_keys[i], 0), COAP_B1_ANSWERED);
  assert_int_equal(block1(&peer_keys[0], 1), COAP_B1_ANSWERED);
  qblock1(&peer_keys[5], 0);
  qblock1(&peer_keys[5], 2);
  keep_copy(&peer_keys[6]);
  assert_int_equal(srv.b1.count, 5);
  assert_non_null(srv.b2_cache);
  assert_null(coap_b1_table_broken(&srv));
}

static void test_blocks_checker(void **state) {
  blocks_fill();
  coap_b1_table_t *t = &srv.b1;
  t->count++;
  assert_string_equal(coap_b1_table_broken(&srv),
                      "block-wise table: fewer entries in the buckets than count");
  t->count--;
  t->bytes--;
  assert_string_equal(coap_b1_table_broken(&srv),
                      "block-wise table: bytes is not what the entries and the Block2 copies "
                      "hold");
  t->bytes++;
  size_t max = scfg.max_reassembly;
  scfg.max_reassembly = t->bytes - 1;
  assert_string_equal(coap_b1_table_broken(&srv),
                      "block-wise table: more bytes than max_reassembly");
  scfg.max_reassembly = max;
  size_t max_body = scfg.max_body;
  scfg.max_body = 99; /* the copy holds 100 */
  assert_string_equal(coap_b1_table_broken(&srv), "Block2 copies: a copy over max_body");
  scfg.max_body = max_body;
  /* an entry moved to another bucket (the table's buckets swapped) */
  size_t a = 0, b;
  while (!t->buckets[a]) a++;
  b = (a + 1) % t->n_buckets;
  coap_b1_entry_t *saved = t->buckets[a];
  t->buckets[a] = t->buckets[b];
  t->buckets[b] = saved;
  assert_string_equal(coap_b1_table_broken(&srv), "block-wise table: an entry in the wrong bucket");
  t->buckets[b] = t->buckets[a];
  t->buckets[a] = saved;
  assert_null(coap_b1_table_broken(&srv));
  /* the bodies finishing, a peer going and a copy expiring keep it sound */
  assert_int_equal(qblock1(&peer_keys[5], 1), COAP_B1_SILENT);
  assert_int_equal(qblock1(&peer_keys[5], 3), COAP_B1_COMPLETE);
  coap_server_peer_gone(&srv, &peer_keys[0]);
  assert_int_equal(srv.b1.count, 4);
  assert_int_equal(coap_timer_heap_run(&stimers, 1000 + 6000), 1); /* the copy (5 s) */
  size_t copies;
  assert_null(coap_b2_cache_broken(&srv, &copies));
  assert_int_equal(copies, 0);
  assert_null(coap_b1_table_broken(&srv));
  server_stop();
}

static void block_on_broken_table(void) {
  blocks_fill();
  srv.b1.bytes += 8;
  srv.b1.check_ops = 1000; /* the next walk is due */
  block1(&peer_keys[7], 0);
}

static void test_blocks_aborts(void **state) {
  expect_invariant_abort(block_on_broken_table,
                         "bytes is not what the entries and the Block2 copies hold");
}

/* ---- the server's peers known to speak Q-Block ---- */

static void qb_note(const void *who) {
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_NON, COAP_GET, 1);
  coap_request_t req = {.msg = &m, .peer_key = who};
  coap_qblock_peer_note(&srv, &req);
}

/* The slot |who| is in. */
static struct coap_qb_peer *qb_slot(const void *who) {
  for (size_t i = 0; i < QB_PEER_SLOTS; i++)
    if (srv.qb_peers->slot[i].peer == who) return &srv.qb_peers->slot[i];
  fail_msg("peer not noted");
  return NULL;
}

static void test_qblock_peers_checker(void **state) {
  server_start();
  assert_null(coap_qblock_peers_broken(&srv));
  for (int i = 0; i < 8; i++) qb_note(&peer_keys[i]);
  assert_null(coap_qblock_peers_broken(&srv));
  struct coap_qb_peer *p = qb_slot(&peer_keys[3]);
  struct coap_qb_peer *other = p == &srv.qb_peers->slot[0] ? p + 1 : p - 1;
  struct coap_qb_peer saved = *other;
  *other = *p; /* the peer in a slot that is not its hash's */
  assert_string_equal(coap_qblock_peers_broken(&srv), "Q-Block peers: a peer in another's slot");
  *other = saved;
  p->peer = NULL;
  p->session = &peer_keys[0];
  assert_string_equal(coap_qblock_peers_broken(&srv), "Q-Block peers: a session without its peer");
  p->session = NULL;
  coap_qblock_peer_gone(&srv, &peer_keys[4]);
  assert_null(coap_qblock_peers_broken(&srv));
  server_stop();
}

static void note_on_broken_peers(void) {
  server_start();
  qb_note(&peer_keys[0]);
  struct coap_qb_peer *p = qb_slot(&peer_keys[0]);
  struct coap_qb_peer *other = p == &srv.qb_peers->slot[0] ? p + 1 : p - 1;
  *other = *p;
  srv.qb_peers->check_ops = 1000; /* the next walk is due */
  qb_note(&peer_keys[1]);
}

static void test_qblock_peers_aborts(void **state) {
  expect_invariant_abort(note_on_broken_peers, "Q-Block peers: a peer in another's slot");
}

/* ---- the client's requests and transfers ---- */

/* The last datagram the client sent, to answer it. */
static uint8_t last_out[2048];
static size_t last_out_len;
static coap_endpoint_t *last_ep;
static coap_address_t last_to;

static int keep_last(void *user, coap_endpoint_t *e, const coap_address_t *to, const uint8_t *data,
                     size_t len) {
  if (len <= sizeof last_out) memcpy(last_out, data, len);
  last_out_len = len;
  last_ep = e;
  last_to = *to;
  return 0;
}

static coap_context_t *cctx;

static coap_client_req_t *send_get(int qblock, int observe_it) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://192.0.2.1/x");
  o.qblock = qblock;
  o.observe = observe_it;
  coap_request_id_t id;
  assert_true(coap_send_request(cctx, &o, NULL, NULL, &id) >= 0);
  for (coap_client_req_t *r = cctx->client.requests; r; r = r->next)
    if (r->id == id) return r;
  fail_msg("request %llu not listed", (unsigned long long)id);
  return NULL;
}

/* The answer to the last datagram: 2.05 with block 0 of a larger body in
 * 16-byte blocks (the client asks for block 1 next). */
static void answer_block0(void) {
  coap_msg_t req, ack;
  assert_int_equal(coap_msg_parse(&req, last_out, last_out_len), 0);
  coap_msg_init(&ack, COAP_TYPE_ACK, COAP_CONTENT, req.mid);
  coap_msg_set_token(&ack, req.token, req.token_len);
  coap_block_t b = {.num = 0, .more = 1, .szx = 0};
  coap_msg_add_block(&ack, COAP_OPTION_BLOCK2, &b);
  coap_msg_set_payload(&ack, sixteen, sizeof sixteen);
  uint8_t wire[256];
  int n = coap_msg_encode(&ack, wire, sizeof wire);
  assert_true(n > 0);
  coap_context_input(cctx, last_ep, &last_to, wire, (size_t)n, 0);
}

static coap_client_req_t *plain, *fetching, *qb, *watching;

/* A plain GET, a GET being fetched in Block2 blocks, a Q-Block GET and an
 * observation, all outstanding. */
static void client_start(void) {
  static const coap_transport_t t = {.send = keep_last, .open_client_endpoint = open_ep};
  cctx = coap_context_new(NULL);
  assert_non_null(cctx);
  coap_context_set_transport(cctx, &t, NULL);
  plain = send_get(0, 0);
  fetching = send_get(0, 0);
  answer_block0();
  assert_non_null(fetching->blk);
  qb = send_get(1, 0);
  assert_non_null(qb->qb);
  watching = send_get(0, 1);
  assert_non_null(watching->obs);
  assert_null(coap_client_transfers_broken(&cctx->client));
}

static void test_client_checker(void **state) {
  client_start();
  coap_client_t *cl = &cctx->client;
  /* the request list's back link */
  coap_client_req_t *prev = plain->prev;
  plain->prev = NULL;
  assert_string_equal(coap_client_transfers_broken(cl),
                      "client requests: prev is not the request before (or a loop)");
  plain->prev = prev;
  /* a Q-Block transfer under another request */
  plain->qb = qb->qb;
  assert_string_equal(coap_client_transfers_broken(cl),
                      "client Q-Block: a transfer of another request");
  plain->qb = NULL;
  /* an observation on a block fetch */
  watching->parent = plain;
  assert_string_equal(coap_client_transfers_broken(cl),
                      "client observe: a block fetch with an observation of its own");
  watching->parent = NULL;
  /* the body being fetched against the limits (its buffer is 4096 bytes) */
  size_t max_body = cctx->cfg.max_body;
  cctx->cfg.max_body = 1000;
  assert_string_equal(coap_client_transfers_broken(cl),
                      "client Block2: a body past its buffer, or a buffer over max_body");
  cctx->cfg.max_body = max_body;
  size_t max = cctx->cfg.max_reassembly;
  cctx->cfg.max_reassembly = 4095;
  assert_string_equal(coap_client_transfers_broken(cl),
                      "client: response bodies being fetched hold more than max_reassembly");
  cctx->cfg.max_reassembly = max;
  assert_null(coap_client_transfers_broken(cl));
  assert_int_equal(coap_cancel_request(cctx, fetching->id), 0);
  assert_null(coap_client_transfers_broken(cl));
  coap_context_free(cctx);
}

/* The list's back link broken, then a body's buffer grows (which walks
 * the list). */
static void fetch_on_broken_list(void) {
  static const coap_transport_t t = {.send = keep_last, .open_client_endpoint = open_ep};
  cctx = coap_context_new(NULL);
  coap_context_set_transport(cctx, &t, NULL);
  plain = send_get(0, 0);
  fetching = send_get(0, 0);
  plain->prev = plain;
  answer_block0();
}

static void test_client_aborts(void **state) {
  expect_invariant_abort(fetch_on_broken_list, "client requests: prev is not the request before");
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
      cmocka_unit_test(test_registry_checker),
      cmocka_unit_test(test_registry_aborts),
      cmocka_unit_test(test_observe_checker),
      cmocka_unit_test(test_observe_aborts),
      cmocka_unit_test(test_blocks_checker),
      cmocka_unit_test(test_blocks_aborts),
      cmocka_unit_test(test_qblock_peers_checker),
      cmocka_unit_test(test_qblock_peers_aborts),
      cmocka_unit_test(test_client_checker),
      cmocka_unit_test(test_client_aborts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
