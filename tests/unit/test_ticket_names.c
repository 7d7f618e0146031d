/* The names of session tickets, derived (dtls_ticket_names.c) as GnuTLS
 * 3.7 derives its ticket keys from the master key and the time step
 * (lib/stek.c): a real GnuTLS DTLS handshake in memory, its server given
 * a known master key, issues a ticket whose first 16 bytes must be the
 * name we derive for that key and step. If a later GnuTLS changes its
 * derivation this test fails: the server still works then (tickets of the
 * current key resume, those of a previous key get a full handshake counted
 * as ticket-key-unknown, and hellos with tickets get a cookie), but the
 * grace period after a rotation and the cookie-free resumption on another
 * node are lost until dtls_ticket_names.c follows. Also: the table of a
 * configuration (each key of the file, steps t and t - 1) finds the key
 * that sealed the ticket, and no longer once two steps have passed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>

#include "coaps/dtls.h"
#include "coaps/error.h"
#include "security/dtls_internal.h"

#define KEY_OLD                                                      \
  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" \
  "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define KEY_NEW                                                      \
  "aaaaaaaaaaaaaaaa5555555555555555aaaaaaaaaaaaaaaa5555555555555555" \
  "0f0f0f0f0f0f0f0ff0f0f0f0f0f0f0f00f0f0f0f0f0f0f0ff0f0f0f0f0f0f0f0"

/* ---- an in-memory datagram link for two GnuTLS sessions ---- */

#define QUEUE_MAX 32
typedef struct queue {
  uint8_t data[QUEUE_MAX][1500];
  size_t len[QUEUE_MAX];
  unsigned head, tail;
  gnutls_session_t reader;
} queue_t;

typedef struct end {
  queue_t *out;
  queue_t *in;
  /* Everything sent, for reading the NewSessionTicket back. */
  uint8_t sent[8192];
  size_t sent_len;
} end_t;

static ssize_t push(gnutls_transport_ptr_t p, const void *data, size_t len) {
  end_t *e = p;
  queue_t *q = e->out;
  assert_true(q->tail - q->head < QUEUE_MAX && len <= sizeof q->data[0]);
  memcpy(q->data[q->tail % QUEUE_MAX], data, len);
  q->len[q->tail++ % QUEUE_MAX] = len;
  if (e->sent_len + len <= sizeof e->sent) {
    memcpy(e->sent + e->sent_len, data, len);
    e->sent_len += len;
  }
  return (ssize_t)len;
}

static ssize_t pull(gnutls_transport_ptr_t p, void *data, size_t cap) {
  queue_t *q = ((end_t *)p)->in;
  if (q->head == q->tail) {
    gnutls_transport_set_errno(q->reader, EAGAIN);
    return -1;
  }
  size_t len = q->len[q->head % QUEUE_MAX];
  if (len > cap) len = cap;
  memcpy(data, q->data[q->head++ % QUEUE_MAX], len);
  return (ssize_t)len;
}

static int pull_timeout(gnutls_transport_ptr_t p, unsigned ms) {
  (void)ms;
  queue_t *q = ((end_t *)p)->in;
  return q->head != q->tail;
}

static queue_t to_server, to_client;
static end_t client_end, server_end;

static gnutls_session_t session(unsigned role, end_t *e, queue_t *in) {
  gnutls_session_t s;
  assert_int_equal(gnutls_init(&s, role | GNUTLS_DATAGRAM | GNUTLS_NONBLOCK), 0);
  assert_int_equal(
      gnutls_priority_set_direct(s, "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK", NULL), 0);
  in->reader = s;
  gnutls_transport_set_ptr(s, e);
  gnutls_transport_set_push_function(s, push);
  gnutls_transport_set_pull_function(s, pull);
  gnutls_transport_set_pull_timeout_function(s, pull_timeout);
  return s;
}

/* Both ends' handshakes to their end; whether the server resumed. */
static int handshake(gnutls_session_t c, gnutls_session_t s) {
  int rc_c = GNUTLS_E_AGAIN, rc_s = GNUTLS_E_AGAIN;
  for (int i = 0; i < 100 && (rc_c != 0 || rc_s != 0); i++) {
    if (rc_c != 0) rc_c = gnutls_handshake(c);
    if (rc_s != 0) rc_s = gnutls_handshake(s);
    if (rc_c < 0 && rc_c != GNUTLS_E_AGAIN) fail_msg("client: %s", gnutls_strerror(rc_c));
    if (rc_s < 0 && rc_s != GNUTLS_E_AGAIN) fail_msg("server: %s", gnutls_strerror(rc_s));
  }
  assert_int_equal(rc_c, 0);
  assert_int_equal(rc_s, 0);
  return gnutls_session_is_resumed(s) != 0;
}

/* The ticket of the NewSessionTicket among the server's datagrams (epoch
 * 0, in the clear, one record a handshake message here). */
static const uint8_t *issued_ticket(const end_t *e, size_t *len) {
  for (size_t off = 0; off + 13 <= e->sent_len;) {
    const uint8_t *rec = e->sent + off;
    size_t body = (size_t)rec[11] << 8 | rec[12];
    const uint8_t *h = rec + 13;
    if (rec[0] == 22 && rec[3] == 0 && rec[4] == 0 && body >= 12 + 6 && h[0] == 4) {
      *len = (size_t)h[12 + 4] << 8 | h[12 + 5];
      assert_true(12 + 6 + *len <= body);
      return h + 12 + 6;
    }
    off += 13 + body;
  }
  return NULL;
}

static gnutls_psk_server_credentials_t server_psk;
static gnutls_psk_client_credentials_t client_psk;

static int psk_lookup(gnutls_session_t s, const char *user, gnutls_datum_t *key) {
  (void)s;
  (void)user;
  key->data = gnutls_malloc(3);
  memcpy(key->data, "k3y", 3);
  key->size = 3;
  return 0;
}

static void hex(const char *text, uint8_t *out) {
  for (size_t i = 0; i < COAP_DTLS_TICKET_KEY_LEN; i++) {
    unsigned v;
    assert_int_equal(sscanf(text + 2 * i, "%2x", &v), 1);
    out[i] = (uint8_t)v;
  }
}

/* A server with |master| as its ticket key (set up as ours are:
 * dtls_session.c's enable_tickets) and a client; |resume|: the client's
 * kept session. Returns whether the server resumed; |ticket| gets the
 * ticket it issued (if any), |client_data| the client's session. */
static int run_handshake(const uint8_t *master, const gnutls_datum_t *resume, uint8_t *ticket,
                         size_t *ticket_len, gnutls_datum_t *client_data) {
  memset(&to_server, 0, sizeof to_server);
  memset(&to_client, 0, sizeof to_client);
  memset(&client_end, 0, sizeof client_end);
  memset(&server_end, 0, sizeof server_end);
  client_end = (end_t){&to_server, &to_client, {0}, 0};
  server_end = (end_t){&to_client, &to_server, {0}, 0};
  gnutls_session_t c = session(GNUTLS_CLIENT, &client_end, &to_client);
  gnutls_session_t s = session(GNUTLS_SERVER, &server_end, &to_server);
  assert_int_equal(gnutls_credentials_set(c, GNUTLS_CRD_PSK, client_psk), 0);
  assert_int_equal(gnutls_credentials_set(s, GNUTLS_CRD_PSK, server_psk), 0);
  gnutls_datum_t key = {(uint8_t *)master, COAP_DTLS_TICKET_KEY_LEN};
  gnutls_db_set_cache_expiration(s, (int)COAP_DTLS_TICKET_EXPIRE_S);
  assert_int_equal(gnutls_session_ticket_enable_server(s, &key), 0);
  if (resume) assert_int_equal(gnutls_session_set_data(c, resume->data, resume->size), 0);
  int resumed = handshake(c, s);
  size_t n = 0;
  const uint8_t *t = issued_ticket(&server_end, &n);
  *ticket_len = t ? n : 0;
  if (t) memcpy(ticket, t, n < 1024 ? n : 1024);
  if (client_data) assert_int_equal(gnutls_session_get_data2(c, client_data), 0);
  gnutls_deinit(c);
  gnutls_deinit(s);
  return resumed;
}

static int setup(void **state) {
  (void)state;
  if (gnutls_psk_allocate_server_credentials(&server_psk) < 0 ||
      gnutls_psk_allocate_client_credentials(&client_psk) < 0)
    return -1;
  gnutls_psk_set_server_credentials_function(server_psk, psk_lookup);
  gnutls_datum_t k = {(uint8_t *)"k3y", 3};
  return gnutls_psk_set_client_credentials(client_psk, "dev", &k, GNUTLS_PSK_KEY_RAW) < 0 ? -1 : 0;
}

static int teardown(void **state) {
  (void)state;
  gnutls_psk_free_server_credentials(server_psk);
  gnutls_psk_free_client_credentials(client_psk);
  return 0;
}

static void test_gnutls_names_its_tickets_as_we_derive(void **state) {
  (void)state;
  uint8_t master[COAP_DTLS_TICKET_KEY_LEN], ticket[1024], name_t[16], name_before[16];
  hex(KEY_OLD, master);
  size_t len = 0;
  gnutls_datum_t kept = {NULL, 0};
  uint64_t before = coap_dtls_ticket_step((uint64_t)time(NULL));
  assert_int_equal(run_handshake(master, NULL, ticket, &len, &kept), 0);
  uint64_t step = coap_dtls_ticket_step((uint64_t)time(NULL));
  assert_true(len >= COAP_DTLS_TICKET_NAME_LEN);
  assert_int_equal(coap_dtls_ticket_name(master, step, name_t), 0);
  assert_int_equal(coap_dtls_ticket_name(master, before, name_before), 0);
  /* (A step boundary may fall within the handshake, once every 18 h.) */
  if (memcmp(ticket, name_t, 16) != 0 && memcmp(ticket, name_before, 16) != 0)
    fail_msg(
        "GnuTLS %s no longer names its session tickets as dtls_ticket_names.c derives "
        "(SHA3-512(be64(step) || master key), first 16 bytes): update the derivation",
        gnutls_check_version(NULL));
  /* The name is no accident of the key: another step names otherwise. */
  uint8_t other[16];
  assert_int_equal(coap_dtls_ticket_name(master, step + 7, other), 0);
  assert_memory_not_equal(other, name_t, 16);
  /* It is a real ticket: the client resumes with it. */
  size_t again = 0;
  assert_int_equal(run_handshake(master, &kept, ticket + 512, &again, NULL), 1);
  assert_int_equal(again, 0); /* TLS 1.2 resumption issues no new ticket */
  gnutls_free(kept.data);
}

/* A configuration's table: the file's keys, steps t and t - 1. */
static void test_table_finds_the_sealing_key(void **state) {
  (void)state;
  uint8_t old_key[COAP_DTLS_TICKET_KEY_LEN], new_key[COAP_DTLS_TICKET_KEY_LEN], name[16];
  hex(KEY_OLD, old_key);
  hex(KEY_NEW, new_key);
  coap_dtls_context_t *d = coap_dtls_context_new();
  assert_non_null(d);
  const char once[] = "coaps-ticket-keys 1\n" KEY_NEW "\n" KEY_OLD "\n";
  assert_int_equal(coap_dtls_set_ticket_keys(d, once, strlen(once)), 2);
  uint64_t now = 1790000000u, step = coap_dtls_ticket_step(now);
  /* Sealed with the previous key this step or the one before: key 1. */
  assert_int_equal(coap_dtls_ticket_name(old_key, step, name), 0);
  assert_int_equal(coap_dtls_ticket_key_named(d, name, now), 1);
  assert_int_equal(coap_dtls_ticket_key_named(d, name, now + COAP_DTLS_TICKET_STEP_S), 1);
  /* Two steps on GnuTLS opens it no more, and neither do we. */
  assert_int_equal(coap_dtls_ticket_key_named(d, name, now + 2 * COAP_DTLS_TICKET_STEP_S), -1);
  /* Nor a step ahead of us (a node whose clock is ahead issued it). */
  assert_int_equal(coap_dtls_ticket_name(new_key, step + 1, name), 0);
  assert_int_equal(coap_dtls_ticket_key_named(d, name, now), -1);
  assert_int_equal(coap_dtls_ticket_key_named(d, name, now + COAP_DTLS_TICKET_STEP_S), 0);
  /* Rotated twice: the old key is gone, and so are its names. */
  const char twice[] = "coaps-ticket-keys 1\n" KEY_NEW "\n";
  assert_int_equal(coap_dtls_set_ticket_keys(d, twice, strlen(twice)), 1);
  assert_int_equal(coap_dtls_ticket_name(old_key, step, name), 0);
  assert_int_equal(coap_dtls_ticket_key_named(d, name, now), -1);
  /* A configuration without a file: its own random key, shared. */
  coap_dtls_context_t *w = coap_dtls_context_new();
  assert_non_null(w);
  assert_int_equal(coap_dtls_ticket_name(w->ticket_keys[0], step, name), 0);
  assert_int_equal(coap_dtls_ticket_key_named(w, name, now), 0);
  assert_int_equal(coap_dtls_ticket_key_named(d, name, now), -1);
  assert_int_equal(coap_dtls_share_keys(d, w), 0); /* d keeps its file's keys */
  assert_int_equal(coap_dtls_ticket_key_named(d, name, now), -1);
  coap_dtls_context_t *w2 = coap_dtls_context_new();
  assert_non_null(w2);
  assert_int_equal(coap_dtls_ticket_key_named(w2, name, now), -1);
  assert_int_equal(coap_dtls_share_keys(w2, w), 0);
  assert_int_equal(coap_dtls_ticket_key_named(w2, name, now), 0);
  coap_dtls_context_free(w2);
  coap_dtls_context_free(w);
  coap_dtls_context_free(d);
}

static void test_more_keys_than_kept_is_refused(void **state) {
  (void)state;
  coap_dtls_context_t *d = coap_dtls_context_new();
  assert_non_null(d);
  char text[4096] = "coaps-ticket-keys 1\n";
  for (int i = 0; i < COAP_DTLS_TICKET_KEYS_MAX + 1; i++) strcat(text, KEY_OLD "\n");
  assert_int_equal(coap_dtls_set_ticket_keys(d, text, strlen(text)), COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(coap_dtls_context_last_error(d), "line 10: more than 8 keys"));
  coap_dtls_context_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gnutls_names_its_tickets_as_we_derive),
      cmocka_unit_test(test_table_finds_the_sealing_key),
      cmocka_unit_test(test_more_keys_than_kept_is_refused),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
