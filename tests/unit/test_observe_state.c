/* Observe relations as the state file carries them (coap_observe_export,
 * coap_observe_import in src/server/observe.c), on a bare server: a
 * relation attaches to its resource with the resource's Observe counter
 * moved past the carried value by the margin (across the 2^24 wrap, in
 * either order of reading), relations too far apart for one next value
 * are ended, a resource gone or not observable ends its relation, a
 * relation over the per-peer limit is ended, relations of a session not
 * taken over are read and counted only, what is exported reads back
 * the same, and each malformed record is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "server/server.h"

#define MARGIN 1024 /* OBS_RESTART_SEQ_MARGIN */
#define MASK 0xffffffu

static coap_server_t srv;
static coap_logger_t quiet;
static coap_context_config_t cfg;
static const int peer_a, session_a; /* identities only: their addresses */

static void show(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                 coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "21.5", 4);
}

static coap_resource_t *add(const char *path, int observable) {
  coap_resource_t *r;
  assert_int_equal(coap_server_resource_add(&srv, path, &r), 0);
  coap_resource_set_handler(r, COAP_GET, show, NULL);
  assert_int_equal(coap_resource_set_observable(r, observable), 0);
  return r;
}

static int setup(void **state) {
  assert_int_equal(coap_server_init(&srv, 1024, &quiet), 0);
  coap_context_config_default(&cfg);
  coap_server_configure(&srv, &cfg, NULL);
  add("temp", 1);
  add("plain", 0);
  return 0;
}

static int teardown(void **state) {
  coap_server_free(&srv);
  return 0;
}

/* A registration as the server keeps it: GET (or |code|) of |path| with
 * no token, message ID 0. */
static size_t registration(uint8_t code, const char *path, uint8_t *out) {
  size_t n = strlen(path);
  out[0] = 0x40; /* version 1, CON, no token */
  out[1] = code;
  out[2] = out[3] = 0;
  out[4] = (uint8_t)(11 << 4 | n); /* Uri-Path, n < 13 */
  memcpy(out + 5, path, n);
  return 5 + n;
}

/* One relation record into |out|: its length. */
static size_t relation(uint8_t *out, uint8_t token, uint32_t seq, uint8_t flags, const uint8_t *req,
                       size_t req_len) {
  uint8_t *p = out;
  *p++ = 1;
  *p++ = token;
  *p++ = flags;
  *p++ = (uint8_t)(seq >> 16);
  *p++ = (uint8_t)(seq >> 8);
  *p++ = (uint8_t)seq;
  *p++ = 0, *p++ = 3;                     /* NONs since the last CON */
  *p++ = 0, *p++ = 0, *p++ = 0, *p++ = 9; /* s since it */
  *p++ = 6;                               /* block size 1024 */
  *p++ = (uint8_t)(req_len >> 8);
  *p++ = (uint8_t)req_len;
  memcpy(p, req, req_len);
  return (size_t)(p + req_len - out);
}

/* Records for |n| relations on |path| with tokens 1.. and |seqs|. */
static size_t relations(uint8_t *out, const char *path, const uint32_t *seqs, size_t n) {
  uint8_t req[32];
  size_t req_len = registration(COAP_GET, path, req);
  out[0] = 0;
  out[1] = (uint8_t)n;
  size_t len = 2;
  for (size_t i = 0; i < n; i++)
    len += relation(out + len, (uint8_t)(i + 1), seqs[i], 0, req, req_len);
  return len;
}

static int import(const uint8_t *in, size_t len, coap_obs_import_tally_t *t) {
  size_t at = 0;
  memset(t, 0, sizeof *t);
  coap_observe_import_begin(&srv); /* each call an import of its own */
  int rc = coap_observe_import(&srv, &peer_a, &session_a, COAP_PROTO_DTLS, in, len, &at, t);
  if (rc == 0) assert_int_equal(at, len);
  return rc;
}

static uint32_t temp_seq(void) {
  return coap_resource_obs(coap_server_resource_find(&srv, "temp"))->seq;
}

static void test_attach_past_the_margin(void **state) {
  uint8_t buf[256];
  coap_obs_import_tally_t t;
  size_t len = relations(buf, "temp", (const uint32_t[]){100, 5000}, 2);
  assert_int_equal(import(buf, len, &t), 0);
  assert_int_equal(t.carried, 2);
  assert_int_equal(coap_resource_observer_count(coap_server_resource_find(&srv, "temp")), 2);
  /* Newer than both: past the larger by the margin. */
  assert_int_equal(temp_seq(), 5000 + MARGIN);
  assert_null(coap_obs_table_broken(&srv));
}

static void answer_error(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                         coap_response_t *resp, void *user) {
  coap_response_set_code(resp, COAP_INTERNAL_SERVER_ERROR);
}

/* A relation whose newest state is sent again at the import, and that
 * state (an error) ends it: the observer and its group go at once, and
 * nothing touches them after (a use after free the fuzz target found). */
static void test_resent_state_ends_it(void **state) {
  coap_resource_t *r = add("fails", 1);
  coap_resource_set_handler(r, COAP_GET, answer_error, NULL);
  uint8_t buf[256], req[32];
  size_t req_len = registration(COAP_GET, "fails", req);
  buf[0] = 0;
  buf[1] = 1;
  size_t len = 2 + relation(buf + 2, 1, 100, 0x01 /* resend */, req, req_len);
  coap_obs_import_tally_t t;
  assert_int_equal(import(buf, len, &t), 0);
  assert_int_equal(t.carried, 1);
  assert_int_equal(coap_resource_observer_count(r), 0);
  assert_null(coap_obs_table_broken(&srv));
}

static void test_across_the_wrap(void **state) {
  uint8_t buf[256];
  coap_obs_import_tally_t t;
  /* 0x10 came after 0xfffff0 (the counter wrapped): past 0x10. */
  size_t len = relations(buf, "temp", (const uint32_t[]){0xfffff0, 0x10}, 2);
  assert_int_equal(import(buf, len, &t), 0);
  assert_int_equal(t.carried, 2);
  assert_int_equal(temp_seq(), 0x10 + MARGIN);
  /* The other order of reading gives the same. */
  coap_server_free(&srv);
  setup(NULL);
  len = relations(buf, "temp", (const uint32_t[]){0x10, 0xfffff0}, 2);
  assert_int_equal(import(buf, len, &t), 0);
  assert_int_equal(t.carried, 2);
  assert_int_equal(temp_seq(), 0x10 + MARGIN);
  /* And one far behind the end of the counter. */
  coap_server_free(&srv);
  setup(NULL);
  len = relations(buf, "temp", (const uint32_t[]){MASK}, 1);
  assert_int_equal(import(buf, len, &t), 0);
  assert_int_equal(temp_seq(), (MASK + MARGIN) & MASK);
}

static void test_too_far_apart(void **state) {
  uint8_t buf[256];
  coap_obs_import_tally_t t;
  size_t len = relations(buf, "temp", (const uint32_t[]){0, 0x500000}, 2);
  assert_int_equal(import(buf, len, &t), 0);
  assert_int_equal(t.carried, 1);
  assert_int_equal(t.seq_apart, 1);
  assert_int_equal(temp_seq(), MARGIN); /* the one kept still gets a newer value */
  assert_int_equal(coap_resource_observer_count(coap_server_resource_find(&srv, "temp")), 1);
  assert_null(coap_obs_table_broken(&srv));
}

static void test_gone_unobservable_limit(void **state) {
  uint8_t buf[256];
  coap_obs_import_tally_t t;
  size_t len = relations(buf, "nothere", (const uint32_t[]){1}, 1);
  assert_int_equal(import(buf, len, &t), 0);
  assert_int_equal(t.resource_gone, 1);
  assert_int_equal(t.carried, 0);
  len = relations(buf, "plain", (const uint32_t[]){1}, 1);
  assert_int_equal(import(buf, len, &t), 0);
  assert_int_equal(t.not_observable, 1);
  assert_int_equal(t.carried, 0);
  cfg.max_observers_per_peer = 1;
  len = relations(buf, "temp", (const uint32_t[]){1, 2, 3}, 3);
  assert_int_equal(import(buf, len, &t), 0);
  assert_int_equal(t.carried, 1);
  assert_int_equal(t.over_limit, 2);
  /* The same relation again: not twice. */
  len = relations(buf, "temp", (const uint32_t[]){1}, 1);
  assert_int_equal(import(buf, len, &t), 0);
  assert_int_equal(t.duplicate, 1);
  assert_int_equal(srv.obs.count, 1);
  assert_null(coap_obs_table_broken(&srv));
}

static void test_no_session_read_only(void **state) {
  uint8_t buf[256];
  coap_obs_import_tally_t t = {0};
  size_t len = relations(buf, "temp", (const uint32_t[]){1, 2}, 2), at = 0;
  assert_int_equal(coap_observe_import(&srv, NULL, NULL, COAP_PROTO_DTLS, buf, len, &at, &t), 0);
  assert_int_equal(at, len);
  assert_int_equal(t.no_session, 2);
  assert_int_equal(srv.obs.count, 0);
}

static void test_export_reads_back(void **state) {
  uint8_t buf[256], out[512];
  coap_obs_import_tally_t t;
  size_t len = relations(buf, "temp", (const uint32_t[]){7, 8}, 2);
  assert_int_equal(import(buf, len, &t), 0);
  size_t n = 0;
  assert_true(coap_observe_export_bound(&srv) + 2 <= sizeof out);
  long got = coap_observe_export(&srv, &peer_a, &session_a, out, sizeof out, &n);
  assert_int_equal(n, 2);
  assert_int_equal((size_t)got, len); /* same sizes: token, fixed part, registration */
  assert_int_equal(coap_observe_export(&srv, &peer_a, &session_a, out, (size_t)got - 1, &n), -1);
  /* Another session of the peer has none. */
  assert_int_equal(coap_observe_export(&srv, &peer_a, &peer_a, out, sizeof out, &n), 2);
  assert_int_equal(n, 0);
  got = coap_observe_export(&srv, &peer_a, &session_a, out, sizeof out, &n);
  uint32_t exported = temp_seq();
  coap_server_free(&srv);
  setup(NULL);
  assert_int_equal(import(out, (size_t)got, &t), 0);
  assert_int_equal(t.carried, 2);
  assert_int_equal(temp_seq(), exported + MARGIN);
}

/* A valid record of one relation, then each field broken in turn. */
static void test_malformed_refused(void **state) {
  uint8_t req[32], buf[64];
  size_t req_len = registration(COAP_GET, "temp", req);
  buf[0] = 0;
  buf[1] = 1;
  size_t len = 2 + relation(buf + 2, 1, 5, 0, req, req_len);
  coap_obs_import_tally_t t;
  assert_int_equal(import(buf, len, &t), 0);
  assert_int_equal(t.carried, 1);
  struct {
    size_t at;
    uint8_t value;
  } breaks[] = {
      {2, 9},          /* token longer than 8 */
      {4, 0x02},       /* a flag not known */
      {14, 7},         /* block size 7 (BERT, never kept) */
      {15, 0x08},      /* registration longer than the record */
      {17, 0x41},      /* registration with a token */
      {18, COAP_POST}, /* not GET or FETCH */
      {17, 0x80},      /* CoAP version 2 */
      {1, 2},          /* two relations, one there */
  };
  for (size_t i = 0; i < sizeof breaks / sizeof breaks[0]; i++) {
    uint8_t bad[64];
    memcpy(bad, buf, len);
    bad[breaks[i].at] = breaks[i].value;
    assert_int_equal(import(bad, len, &t), COAP_E_INVALID_ARG);
  }
  /* A registration with Observe in it. */
  uint8_t obs_req[32] = {0x40, COAP_GET, 0, 0, 0x60, 0x54, 't', 'e', 'm', 'p'};
  len = 2 + relation(buf + 2, 1, 5, 0, obs_req, 10);
  assert_int_equal(import(buf, len, &t), COAP_E_INVALID_ARG);
  /* Cut anywhere. */
  len = 2 + relation(buf + 2, 1, 5, 0, req, req_len);
  for (size_t cut = 0; cut < len; cut++) assert_int_equal(import(buf, cut, &t), COAP_E_INVALID_ARG);
  assert_null(coap_obs_table_broken(&srv));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_attach_past_the_margin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resent_state_ends_it, setup, teardown),
      cmocka_unit_test_setup_teardown(test_across_the_wrap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_too_far_apart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gone_unobservable_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_session_read_only, setup, teardown),
      cmocka_unit_test_setup_teardown(test_export_reads_back, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_refused, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
