/* A restart of a server with several workers (one context each, as
 * coaps serve --workers runs them), through one sealed buffer: each
 * session goes back to the worker its client's datagrams will reach.
 * Three workers (each a node of its own here: the kernel's steering is
 * not simulated, the routing decision is what is tested), three clients:
 * A with a Connection ID on worker 0, B without one on worker 1, C with
 * one on worker 2. Read back into
 * - three workers: every session where it was; each client's next
 *   request answered with no handshake on either side;
 * - two: A's session on worker 0 (its CID says 0); C's CID names worker
 *   2, which is gone, and B's worker would be chosen by the address hash
 *   over another number of sockets: both left out, counted, logged;
 * - one: all three (one socket gets every datagram);
 * - contexts not in worker order: refused, nothing taken;
 * - a handshake under way and a session not yet on exported keys at the
 *   save: not carried, each counted and logged with its reason;
 * - the same sessions in a format-1 buffer (one context, entries without
 *   a worker byte, as written before workers were carried): read as from
 *   one worker, every entry whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <gnutls/crypto.h>

#include "coaps/dtls.h"
#include "security/dtls_state.h"
#include "support_reply.h"
#include "support_simnet.h"

#define NODE 3
#define T0 1800000000000ull /* wall-clock ms */
#define MAX_AGE 60000
#define WORKERS 3

static const uint8_t state_key[32] = "workers state key, 32 bytes long";
static simnet_t net;
static simnet_node_t *worker[WORKERS], *client[WORKERS];
static uint8_t saved[8192];
static long saved_len;
static char logged[4096]; /* the workers' log lines, to check the reasons */

static void keep_log(void *user, const coap_log_event_t *event) {
  size_t used = strlen(logged);
  snprintf(logged + used, sizeof logged - used, "%s\n", event->line);
}

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

/* Worker |i|'s configuration, as coaps serve --workers makes it. */
static void serve(size_t i) {
  coap_context_t *ctx = worker[i]->ctx;
  coap_context_set_log_event_handler(ctx, keep_log, NULL);
  coap_context_set_log_level(ctx, COAP_LOG_INFO);
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  assert_non_null(d);
  assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)"me", (const uint8_t *)"secret", 6), 0);
  assert_int_equal(coap_dtls_set_cid_worker(d, (unsigned)i), 0);
  assert_int_equal(coap_context_set_dtls_context(ctx, d), 0);
  coap_resource_t *r = coap_resource_add(ctx, "hello");
  coap_resource_set_handler(r, COAP_GET, hello, NULL);
}

static void get_ok(size_t i) {
  char uri[64];
  snprintf(uri, sizeof uri, "coaps://10.0.0.%zu/hello", i + 1);
  sim_reply_t b;
  sim_get(client[i], uri, &b, 60000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
}

static uint64_t sessions(size_t i) {
  coap_stats_t st;
  coap_context_get_stats(worker[i]->ctx, &st);
  return st.dtls_sessions_by_mode[COAP_DTLS_MODE_PSK];
}

/* The three clients talk to their workers, the workers' sessions are
 * saved into |saved|, and the workers restart with nothing. */
static int setup(void **state) {
  simnet_init(&net);
  for (size_t i = 0; i < WORKERS; i++) {
    worker[i] = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL);
    serve(i);
  }
  for (size_t i = 0; i < WORKERS; i++) {
    client[i] = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
    coap_dtls_context_t *d = coap_dtls_new_context(client[i]->ctx);
    assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)"me", (const uint8_t *)"secret", 6), 0);
    if (i == 1) assert_int_equal(coap_dtls_set_cid(d, 0, 0), 0); /* B: no Connection ID */
    assert_int_equal(coap_context_set_dtls_context(client[i]->ctx, d), 0);
    get_ok(i);
  }
  coap_context_t *ctxs[WORKERS] = {worker[0]->ctx, worker[1]->ctx, worker[2]->ctx};
  size_t carried = 0;
  long bound = coap_contexts_export_sessions(ctxs, WORKERS, state_key, 32, NODE, T0, NULL, 0, NULL);
  assert_true(bound > 0 && (size_t)bound <= sizeof saved);
  saved_len = coap_contexts_export_sessions(ctxs, WORKERS, state_key, 32, NODE, T0, saved,
                                            sizeof saved, &carried);
  assert_true(saved_len > 0);
  assert_int_equal(carried, 3);
  for (size_t i = 0; i < WORKERS; i++) {
    assert_int_equal(simnet_node_restart(worker[i]), 0);
    serve(i);
  }
  logged[0] = 0;
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  return 0;
}

static long import(coap_context_t **ctxs, size_t n, const char **why) {
  return coap_contexts_import_sessions(ctxs, n, state_key, 32, NODE, T0 + 1000, MAX_AGE, NULL,
                                       saved, (size_t)saved_len, why);
}

static void test_same_workers(void **state) {
  coap_context_t *ctxs[WORKERS] = {worker[0]->ctx, worker[1]->ctx, worker[2]->ctx};
  assert_int_equal(import(ctxs, WORKERS, NULL), 3);
  for (size_t i = 0; i < WORKERS; i++) {
    assert_int_equal(sessions(i), 1); /* each back where it was */
    get_ok(i);
    coap_stats_t st;
    coap_context_get_stats(worker[i]->ctx, &st);
    assert_int_equal(st.dtls_handshakes, 0);
    coap_context_get_stats(client[i]->ctx, &st);
    assert_int_equal(st.dtls_handshakes, 1); /* the one before the restart */
    assert_int_equal(st.dtls_reconnects, 0);
  }
  assert_non_null(strstr(logged, "3 DTLS session(s) taken over"));
  assert_non_null(strstr(logged, "3 worker(s) then, 3 now; worker 0: 1, worker 1: 1, worker 2: 1"));
  assert_null(strstr(logged, "not taken over"));
}

static void test_fewer_workers(void **state) {
  coap_context_t *ctxs[2] = {worker[0]->ctx, worker[1]->ctx};
  assert_int_equal(import(ctxs, 2, NULL), 1);
  assert_int_equal(sessions(0), 1); /* A, by its CID */
  assert_int_equal(sessions(1), 0);
  get_ok(0);
  coap_stats_t st;
  coap_context_get_stats(worker[0]->ctx, &st);
  assert_int_equal(st.dtls_handshakes, 0);
  assert_non_null(strstr(logged, "1 DTLS session(s) not taken over: their Connection ID names"));
  assert_non_null(strstr(logged, "1 DTLS session(s) not taken over: no Connection ID steers"));
  assert_non_null(strstr(logged, "workers went from 3 to 2"));
}

static void test_one_worker(void **state) {
  coap_context_t *ctxs[1] = {worker[0]->ctx};
  assert_int_equal(import(ctxs, 1, NULL), 3);
  assert_int_equal(sessions(0), 3);
  get_ok(0); /* A's: it talks to worker 0's address */
}

static void test_out_of_order(void **state) {
  coap_context_t *ctxs[2] = {worker[1]->ctx, worker[0]->ctx};
  const char *why = NULL;
  assert_int_equal(import(ctxs, 2, &why), COAP_E_INVALID_ARG);
  assert_non_null(strstr(why, "order"));
  assert_int_equal(sessions(0) + sessions(1), 0);
}

static simnet_node_t *late[2];
static unsigned late_sent[2];

/* Late client 0's datagrams after its first (the ClientHello: no cookie
 * round trip unless under load) are lost: the server's handshake never
 * finishes. Late client 1's after its second (its Finished) are: the
 * server's session is established but has not moved to exported keys. */
static int lose_late(void *user, const simnet_node_t *from, const coap_address_t *to,
                     const uint8_t *data, size_t len, unsigned seq) {
  for (int i = 0; i < 2; i++)
    if (from == late[i]) return ++late_sent[i] > (unsigned)i + 1;
  return 0;
}

static void test_not_carried_counted(void **state) {
  static sim_reply_t b[2]; /* still pending when the contexts are freed */
  net.filter = lose_late;
  for (int i = 0; i < 2; i++) {
    late[i] = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
    late_sent[i] = 0;
    coap_dtls_context_t *d = coap_dtls_new_context(late[i]->ctx);
    assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)"me", (const uint8_t *)"secret", 6), 0);
    assert_int_equal(coap_context_set_dtls_context(late[i]->ctx, d), 0);
    coap_request_opts_t o;
    coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/hello");
    sim_send(late[i], &o, &b[i]);
  }
  simnet_run_until(&net, net.now + 500); /* the server's flights are out */
  for (int i = 0; i < 2; i++) {
    assert_false(b[i].done);
    assert_true(late_sent[i] > (unsigned)i + 1);
  }
  coap_context_t *ctxs[WORKERS] = {worker[0]->ctx, worker[1]->ctx, worker[2]->ctx};
  size_t carried = 99;
  uint8_t buf[4096];
  assert_true(coap_contexts_export_sessions(ctxs, WORKERS, state_key, 32, NODE, T0, buf, sizeof buf,
                                            &carried) > 0);
  assert_int_equal(carried, 0);
  assert_non_null(strstr(logged, "1 DTLS session(s) not carried: handshake not finished"));
  assert_non_null(strstr(logged, "1 DTLS session(s) not carried: not on exported keys"));
}

static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static long seal_as(unsigned version, unsigned workers, uint64_t sealed_at, const uint8_t *in,
                    size_t len, uint8_t *out, size_t cap);

/* |saved| as format 1 would have held it: the entries without their
 * worker byte (format 3 has their length first and the peers' extras
 * after them), under a header of version 1 (no worker count). */
static long as_format_1(uint8_t *out, size_t cap) {
  uint8_t plain[8192], v1[8192];
  long n = coap_dtls_state_open(state_key, 32, NODE, T0, MAX_AGE, saved, (size_t)saved_len, plain,
                                sizeof plain, NULL);
  assert_true(n > 0);
  size_t at = 4, len = 0;
  size_t end = 4 + ((size_t)plain[0] << 24 | (size_t)plain[1] << 16 | plain[2] << 8 | plain[3]);
  assert_true(end <= (size_t)n);
  while (at < end) { /* worker (1), port (2), address (1 + size), session (2 + length) */
    size_t addr = plain[at + 3], entry = 1 + 2 + 1 + addr + 2;
    size_t session = (size_t)plain[at + entry - 2] << 8 | plain[at + entry - 1];
    memcpy(v1 + len, plain + at + 1, entry - 1 + session);
    len += entry - 1 + session;
    at += entry + session;
  }
  assert_int_equal(at, end);
  return seal_as(1, 0, T0, v1, len, out, cap);
}

/* |in| sealed under the state key with a header of |version|, |workers|
 * and |sealed_at|, as the library would: the length. */
static long seal_as(unsigned version, unsigned workers, uint64_t sealed_at, const uint8_t *in,
                    size_t len, uint8_t *out, size_t cap) {
  memcpy(out, "coapstat", 8);
  out[8] = (uint8_t)version;
  out[9] = (uint8_t)workers;
  out[10] = out[11] = 0;
  put_u64(out + 12, NODE);
  put_u64(out + 20, sealed_at);
  memset(out + 28, 0x5a, 12); /* the nonce */
  gnutls_aead_cipher_hd_t h;
  gnutls_datum_t k = {(unsigned char *)state_key, 32};
  assert_int_equal(gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_256_GCM, &k), 0);
  size_t sealed = cap - COAP_DTLS_STATE_HEADER;
  assert_int_equal(
      gnutls_aead_cipher_encrypt(h, out + 28, 12, out, COAP_DTLS_STATE_HEADER, COAP_DTLS_STATE_TAG,
                                 in, len, out + COAP_DTLS_STATE_HEADER, &sealed),
      0);
  gnutls_aead_cipher_deinit(h);
  return (long)(COAP_DTLS_STATE_HEADER + sealed);
}

static void test_format_1_read(void **state) {
  uint8_t v1[8192];
  long len = as_format_1(v1, sizeof v1);
  coap_context_t *ctxs[WORKERS] = {worker[0]->ctx, worker[1]->ctx, worker[2]->ctx};
  /* One worker then, three now: the CID sessions by their CID, the one
   * without CID left out (its worker then is not its worker now). */
  assert_int_equal(coap_contexts_import_sessions(ctxs, WORKERS, state_key, 32, NODE, T0 + 1000,
                                                 MAX_AGE, NULL, v1, (size_t)len, NULL),
                   2);
  assert_int_equal(sessions(0), 1);
  assert_int_equal(sessions(1), 0);
  assert_int_equal(sessions(2), 1);
  assert_non_null(strstr(logged, "1 worker(s) then, 3 now"));
  get_ok(0);
  get_ok(2);
  /* Read by one context, as format 1 was meant to be: all three. */
  assert_int_equal(simnet_node_restart(worker[0]), 0);
  serve(0);
  assert_int_equal(coap_context_import_sessions(worker[0]->ctx, state_key, 32, NODE, T0 + 1000,
                                                MAX_AGE, NULL, v1, (size_t)len, NULL),
                   3);
  get_ok(0);
}

/* |saved| opened, its middle entry (B's) broken by |damage|, sealed again
 * (authentic: only its inside is wrong) at |sealed_at|. */
enum damage { BAD_SESSION, BAD_EXTRA };
static long with_middle_broken(enum damage damage, uint64_t sealed_at, uint8_t *out, size_t cap) {
  uint8_t plain[8192];
  long n = coap_dtls_state_open(state_key, 32, NODE, T0, MAX_AGE, saved, (size_t)saved_len, plain,
                                sizeof plain, NULL);
  assert_true(n > 0);
  size_t at = 4,
         end = 4 + ((size_t)plain[0] << 24 | (size_t)plain[1] << 16 | plain[2] << 8 | plain[3]);
  size_t session_at[3], k = 0;
  while (at < end) { /* worker (1), port (2), address (1 + size), session (2 + length) */
    size_t entry = 1 + 2 + 1 + plain[at + 3] + 2;
    size_t session = (size_t)plain[at + entry - 2] << 8 | plain[at + entry - 1];
    assert_true(k < 3);
    session_at[k++] = at + entry;
    at += entry + session;
  }
  assert_int_equal(k, 3);
  if (damage == BAD_SESSION) {
    plain[session_at[1] + COAP_DTLS_KEYS_SAVED] = 0xEE; /* a mode that does not exist */
  } else {
    /* Each extra: message ID (2), address family (1), ..., 25 bytes with
     * no relations; the second one's family is not 0, 4 or 6. */
    assert_int_equal((size_t)n, end + 3 * 25);
    plain[end + 25 + 2] = 9;
  }
  long len = seal_as(3, WORKERS, sealed_at, plain, (size_t)n, out, cap);
  return len;
}

/* A sealed buffer with one malformed entry between two good ones: the
 * import takes nothing (not the good entry before it either), and the
 * buffer's time is still given back to be recorded, so it is refused as
 * replayed from then on. */
static void test_malformed_middle_takes_nothing(void **state) {
  coap_context_t *ctxs[WORKERS] = {worker[0]->ctx, worker[1]->ctx, worker[2]->ctx};
  static const enum damage damages[] = {BAD_SESSION, BAD_EXTRA};
  uint64_t last_sealed = T0;
  for (size_t d = 0; d < 2; d++) {
    uint8_t broken[8192];
    uint64_t sealed_at = T0 + 1 + d;
    long len = with_middle_broken(damages[d], sealed_at, broken, sizeof broken);
    const char *why = NULL;
    assert_int_equal(
        coap_contexts_import_sessions(ctxs, WORKERS, state_key, 32, NODE, T0 + 1000, MAX_AGE,
                                      &last_sealed, broken, (size_t)len, &why),
        COAP_E_INVALID_ARG);
    assert_string_equal(why, "malformed inside its seal");
    for (size_t i = 0; i < WORKERS; i++) assert_int_equal(sessions(i), 0);
    assert_int_equal(last_sealed, sealed_at); /* recorded: never to be read again */
    assert_int_equal(
        coap_contexts_import_sessions(ctxs, WORKERS, state_key, 32, NODE, T0 + 1000, MAX_AGE,
                                      &last_sealed, broken, (size_t)len, &why),
        COAP_E_INVALID_ARG);
    assert_non_null(strstr(why, "replayed"));
  }
  /* Nothing was half taken: the genuine buffer lands whole. */
  assert_int_equal(import(ctxs, WORKERS, NULL), 3);
  for (size_t i = 0; i < WORKERS; i++) get_ok(i);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_same_workers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fewer_workers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_one_worker, setup, teardown),
      cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_format_1_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_carried_counted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_middle_takes_nothing, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
