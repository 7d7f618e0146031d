/* An established session's keys carried into another process
 * (dtls_state.c): saved with the sequence number advanced, sealed,
 * opened and loaded into fresh keys, the peer keeps talking with no
 * handshake; the first record after the move carries a sequence number
 * beyond every one sent before it, the old keys seal nothing more, and
 * the receive window moves along (an old record is still a replay). A
 * tampered, stale, future, other-node, wrong-key, truncated envelope and
 * a damaged saved record are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <gnutls/crypto.h>

#include "security/dtls_record.h"
#include "security/dtls_state.h"

#define NODE 7
#define MARGIN 1000
#define MAX_AGE 60
#define T0 1800000000ull

static const uint8_t state_key[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t c2s[32] = "client to server key bytes 32..",
                     s2c[32] = "server to client key bytes 32..";

typedef struct pair {
  coap_dtls_keys_t server, client;
} pair_t;

static void counting_rand(void *user, uint8_t *buf, size_t len) {
  unsigned *n = user;
  memset(buf, 0, len);
  buf[0] = (uint8_t)++ * n;
}

static void make_pair(pair_t *p, gnutls_cipher_algorithm_t alg) {
  memset(p, 0, sizeof *p);
  size_t key_len = gnutls_cipher_get_key_size(alg);
  int explicit_nonce = alg != GNUTLS_CIPHER_CHACHA20_POLY1305;
  assert_int_equal(coap_dtls_keys_init(&p->server, alg, s2c, c2s, key_len), 0);
  assert_int_equal(coap_dtls_keys_init(&p->client, alg, c2s, s2c, key_len), 0);
  coap_dtls_keys_t *both[2] = {&p->server, &p->client};
  for (int i = 0; i < 2; i++) {
    both[i]->iv_len = explicit_nonce ? 4 : 12;
    both[i]->tag_len = (uint8_t)gnutls_cipher_get_tag_size(alg);
    both[i]->explicit_nonce = (uint8_t)explicit_nonce;
    both[i]->epoch = 1;
  }
  memcpy(p->server.write_iv, "server iv 12", 12);
  memcpy(p->client.read_iv, "server iv 12", 12);
  memcpy(p->client.write_iv, "client iv 12", 12);
  memcpy(p->server.read_iv, "client iv 12", 12);
}

static void free_pair(pair_t *p) {
  coap_dtls_keys_free(&p->server);
  coap_dtls_keys_free(&p->client);
}

/* Seal |text| with |from|, open with |to|: the record's sequence number
 * (48 bits), or -1 when |to| did not take it. */
static int64_t send_record(coap_dtls_keys_t *from, coap_dtls_keys_t *to, const char *text,
                           uint8_t *rec, int *rec_len) {
  *rec_len = coap_dtls_keys_protect(from, 23, (const uint8_t *)text, strlen(text), rec, 256);
  if (*rec_len < 0) return -1;
  uint8_t plain[256], type;
  size_t len = sizeof plain, used;
  if (coap_dtls_keys_unprotect(to, rec, (size_t)*rec_len, &used, &type, plain, &len) !=
      COAP_DTLS_RECORD_OK)
    return -1;
  assert_int_equal(len, strlen(text));
  assert_memory_equal(plain, text, len);
  uint64_t seq = 0;
  for (int i = 5; i < 11; i++) seq = seq << 8 | rec[i];
  return (int64_t)seq;
}

static int contains(const uint8_t *hay, size_t len, const uint8_t *needle, size_t n) {
  for (size_t i = 0; i + n <= len; i++)
    if (memcmp(hay + i, needle, n) == 0) return 1;
  return 0;
}

/* Save the server's keys, seal them, open and load them as a new process would. */
static long carry_server(pair_t *p, uint8_t *envelope, size_t cap) {
  uint8_t saved[COAP_DTLS_KEYS_SAVED];
  assert_int_equal(coap_dtls_keys_save(&p->server, MARGIN, saved, sizeof saved),
                   COAP_DTLS_KEYS_SAVED);
  coap_dtls_keys_settle(&p->server, 1); /* stored: the keys are the new process's */
  unsigned n = 0;
  long len = coap_dtls_state_seal(state_key, 32, NODE, T0, 2, counting_rand, &n, saved,
                                  sizeof saved, envelope, cap);
  assert_int_equal(len, COAP_DTLS_KEYS_SAVED + COAP_DTLS_STATE_OVERHEAD);
  /* The keys are not in the envelope in clear. */
  assert_false(contains(envelope, (size_t)len, s2c, 16));
  return len;
}

static void carry_over(gnutls_cipher_algorithm_t alg) {
  pair_t p;
  make_pair(&p, alg);
  uint8_t rec[256], old_client_rec[256];
  int rec_len, old_len;
  int64_t last_before = -1;
  for (int i = 0; i < 3; i++) {
    assert_true(send_record(&p.client, &p.server, "GET", old_client_rec, &old_len) >= 0);
    last_before = send_record(&p.server, &p.client, "2.05", rec, &rec_len);
    assert_true(last_before >= 0);
  }
  uint8_t envelope[512];
  long len = carry_server(&p, envelope, sizeof envelope);
  /* The old process can seal nothing more with these keys. */
  assert_int_equal(coap_dtls_keys_protect(&p.server, 23, (const uint8_t *)"x", 1, rec, sizeof rec),
                   -1);
  uint8_t saved[COAP_DTLS_KEYS_SAVED];
  assert_int_equal(coap_dtls_state_open(state_key, 32, NODE, T0 + 5, MAX_AGE, envelope, (size_t)len,
                                        saved, sizeof saved, NULL),
                   COAP_DTLS_KEYS_SAVED);
  coap_dtls_keys_t moved = {0};
  assert_int_equal(coap_dtls_keys_load(&moved, saved, sizeof saved), 0);
  /* The client, unchanged, talks to the new process: no handshake. */
  assert_true(send_record(&p.client, &moved, "GET after restart", rec, &rec_len) >= 0);
  int64_t first_after = send_record(&moved, &p.client, "2.05 after restart", rec, &rec_len);
  assert_true(first_after > last_before);
  assert_true(first_after >= last_before + 1 + MARGIN);
  /* The window came along: a record taken before the move is a replay. */
  uint8_t plain[256], type;
  size_t plain_len = sizeof plain, used;
  assert_int_equal(coap_dtls_keys_unprotect(&moved, old_client_rec, (size_t)old_len, &used, &type,
                                            plain, &plain_len),
                   COAP_DTLS_RECORD_IGNORED);
  coap_dtls_keys_free(&moved);
  free_pair(&p);
}

static void test_carry_over_gcm(void **state) {
  carry_over(GNUTLS_CIPHER_AES_128_GCM);
}

static void test_carry_over_ccm8(void **state) {
  carry_over(GNUTLS_CIPHER_AES_128_CCM_8);
}

static void test_carry_over_chacha(void **state) {
  carry_over(GNUTLS_CIPHER_CHACHA20_POLY1305);
}

static void test_refused_envelopes(void **state) {
  pair_t p;
  make_pair(&p, GNUTLS_CIPHER_AES_128_GCM);
  uint8_t envelope[512], out[512];
  long len = carry_server(&p, envelope, sizeof envelope);
  size_t n = (size_t)len;
  const uint8_t *k = state_key;
  uint64_t sealed_at = 0;
  assert_int_equal(
      coap_dtls_state_open(k, 32, NODE, T0, MAX_AGE, envelope, n, out, sizeof out, &sealed_at),
      COAP_DTLS_KEYS_SAVED);
  assert_int_equal(sealed_at, T0);
  unsigned version = 0, workers = 0;
  assert_int_equal(coap_dtls_state_format(envelope, n, &version, &workers), 0);
  assert_int_equal(version, 3);
  assert_int_equal(workers, 2);
  /* Format 1 (one context, before workers) reads as one worker. */
  uint8_t v1[COAP_DTLS_STATE_HEADER];
  memcpy(v1, envelope, sizeof v1);
  v1[8] = 1;
  v1[9] = 0;
  assert_int_equal(coap_dtls_state_format(v1, sizeof v1, &version, &workers), 0);
  assert_int_equal(version, 1);
  assert_int_equal(workers, 1);
  assert_int_equal(coap_dtls_state_format(v1, 10, &version, &workers), -1);
  /* Every byte matters: header (node, time, nonce) and sealed part alike. */
  for (size_t i = 0; i < n; i++) {
    envelope[i] ^= 0x01;
    long rc = coap_dtls_state_open(k, 32, NODE, T0, MAX_AGE, envelope, n, out, sizeof out, NULL);
    /* The magic, then the version (3 becomes 2, a format still read:
     * the header is authenticated like the rest), the worker count. */
    long want = i < 8 ? COAP_DTLS_STATE_MALFORMED : COAP_DTLS_STATE_FORGED;
    assert_int_equal(rc, want);
    envelope[i] ^= 0x01;
  }
  /* A version this code does not know (a newer writer): refused as such. */
  envelope[8] = 4;
  assert_int_equal(
      coap_dtls_state_open(k, 32, NODE, T0, MAX_AGE, envelope, n, out, sizeof out, NULL),
      COAP_DTLS_STATE_VERSION);
  envelope[8] = 3;
  uint8_t other_key[32];
  memcpy(other_key, state_key, 32);
  other_key[31] ^= 0x80;
  assert_int_equal(
      coap_dtls_state_open(other_key, 32, NODE, T0, MAX_AGE, envelope, n, out, sizeof out, NULL),
      COAP_DTLS_STATE_FORGED);
  assert_int_equal(
      coap_dtls_state_open(k, 16, NODE, T0, MAX_AGE, envelope, n, out, sizeof out, NULL),
      COAP_DTLS_STATE_FORGED);
  assert_int_equal(
      coap_dtls_state_open(k, 20, NODE, T0, MAX_AGE, envelope, n, out, sizeof out, NULL),
      COAP_DTLS_STATE_BAD_KEY);
  assert_int_equal(coap_dtls_state_open(k, 32, NODE, T0 + MAX_AGE + 1, MAX_AGE, envelope, n, out,
                                        sizeof out, NULL),
                   COAP_DTLS_STATE_STALE);
  assert_int_equal(coap_dtls_state_open(k, 32, NODE, T0 - MAX_AGE - 1, MAX_AGE, envelope, n, out,
                                        sizeof out, NULL),
                   COAP_DTLS_STATE_STALE);
  assert_int_equal(
      coap_dtls_state_open(k, 32, NODE, T0 + MAX_AGE, MAX_AGE, envelope, n, out, sizeof out, NULL),
      COAP_DTLS_KEYS_SAVED);
  assert_int_equal(
      coap_dtls_state_open(k, 32, NODE + 1, T0, MAX_AGE, envelope, n, out, sizeof out, NULL),
      COAP_DTLS_STATE_OTHER_NODE);
  assert_int_equal(
      coap_dtls_state_open(k, 32, NODE, T0, MAX_AGE, envelope, n - 1, out, sizeof out, NULL),
      COAP_DTLS_STATE_FORGED);
  assert_int_equal(
      coap_dtls_state_open(k, 32, NODE, T0, MAX_AGE, envelope, 10, out, sizeof out, NULL),
      COAP_DTLS_STATE_MALFORMED);
  assert_int_equal(coap_dtls_state_open(k, 32, NODE, T0, MAX_AGE, envelope, n, out, 10, NULL),
                   COAP_DTLS_STATE_MALFORMED);
  assert_int_equal(coap_dtls_state_open(k, 32, NODE, T0, MAX_AGE, NULL, n, out, sizeof out, NULL),
                   COAP_DTLS_STATE_MALFORMED);
  /* Each refusal has its own words. */
  assert_non_null(strstr(coap_dtls_state_refusal(COAP_DTLS_STATE_STALE), "old"));
  assert_non_null(strstr(coap_dtls_state_refusal(COAP_DTLS_STATE_FORGED), "key"));
  assert_non_null(strstr(coap_dtls_state_refusal(COAP_DTLS_STATE_OTHER_NODE), "another node"));
  assert_non_null(strstr(coap_dtls_state_refusal(COAP_DTLS_STATE_VERSION), "format"));
  free_pair(&p);
}

/* Between a save and its end the keys still seal, but only below the
 * saved sequence number (the margin is all the old process may use); a
 * save that was not stored gives the keys back whole, one that was
 * retires them; no second save while one is outstanding. */
static void test_save_held_until_settled(void **state) {
  (void)state;
  pair_t p;
  make_pair(&p, GNUTLS_CIPHER_AES_128_CCM_8);
  uint8_t rec[256];
  int rec_len;
  assert_int_equal(send_record(&p.server, &p.client, "before", rec, &rec_len), 0);
  uint8_t saved[COAP_DTLS_KEYS_SAVED], again[COAP_DTLS_KEYS_SAVED];
  assert_int_equal(coap_dtls_keys_save(&p.server, MARGIN, saved, sizeof saved),
                   COAP_DTLS_KEYS_SAVED);
  assert_int_equal(coap_dtls_keys_save(&p.server, MARGIN, again, sizeof again), -1);
  /* Sequence numbers 1 .. MARGIN: the saved copy starts at 1 + MARGIN. */
  int64_t last = -1;
  for (int i = 0; i < MARGIN; i++) last = send_record(&p.server, &p.client, "held", rec, &rec_len);
  assert_int_equal(last, MARGIN);
  assert_int_equal(coap_dtls_keys_protect(&p.server, 23, (const uint8_t *)"x", 1, rec, sizeof rec),
                   -1);
  coap_dtls_keys_t loaded = {0};
  assert_int_equal(coap_dtls_keys_load(&loaded, saved, sizeof saved), 0);
  assert_int_equal(loaded.write_seq, 1 + MARGIN);
  coap_dtls_keys_free(&loaded);
  /* Not stored: the keys go on past the margin (no copy will use them). */
  coap_dtls_keys_settle(&p.server, 0);
  assert_int_equal(send_record(&p.server, &p.client, "after", rec, &rec_len), MARGIN + 1);
  /* Saved again and stored: retired, and cannot be saved a third time. */
  assert_int_equal(coap_dtls_keys_save(&p.server, MARGIN, saved, sizeof saved),
                   COAP_DTLS_KEYS_SAVED);
  coap_dtls_keys_settle(&p.server, 1);
  assert_int_equal(coap_dtls_keys_protect(&p.server, 23, (const uint8_t *)"x", 1, rec, sizeof rec),
                   -1);
  assert_int_equal(coap_dtls_keys_save(&p.server, MARGIN, again, sizeof again), -1);
  /* A margin of 0 would give the copy the next number itself. */
  pair_t q;
  make_pair(&q, GNUTLS_CIPHER_AES_128_CCM_8);
  assert_int_equal(coap_dtls_keys_save(&q.server, 0, saved, sizeof saved), -1);
  free_pair(&q);
  free_pair(&p);
}

static void test_saved_records_checked(void **state) {
  pair_t p;
  make_pair(&p, GNUTLS_CIPHER_AES_128_CCM_8);
  uint8_t saved[COAP_DTLS_KEYS_SAVED];
  /* A margin that would run past 2^48 - 1 is refused, the keys kept. */
  assert_int_equal(coap_dtls_keys_save(&p.server, 1ull << 48, saved, sizeof saved), -1);
  assert_int_equal(coap_dtls_keys_save(&p.server, MARGIN, saved, sizeof saved - 1), -1);
  assert_int_equal(coap_dtls_keys_save(&p.server, MARGIN, saved, sizeof saved),
                   COAP_DTLS_KEYS_SAVED);
  coap_dtls_keys_settle(&p.server, 1);
  /* Retired keys cannot be saved again (their nonces are spent). */
  uint8_t again[COAP_DTLS_KEYS_SAVED];
  assert_int_equal(coap_dtls_keys_save(&p.server, MARGIN, again, sizeof again), -1);
  coap_dtls_keys_t k = {0};
  assert_int_equal(coap_dtls_keys_load(&k, saved, sizeof saved - 1), -1);
  saved[0] ^= 0xff; /* version */
  assert_int_equal(coap_dtls_keys_load(&k, saved, sizeof saved), -1);
  saved[0] ^= 0xff;
  saved[3] = 32; /* a key length that is not the suite's */
  assert_int_equal(coap_dtls_keys_load(&k, saved, sizeof saved), -1);
  saved[3] = 16;
  saved[5] = 16; /* CCM_8's tag is 8 bytes */
  assert_int_equal(coap_dtls_keys_load(&k, saved, sizeof saved), -1);
  saved[5] = 8;
  assert_int_equal(coap_dtls_keys_load(&k, saved, sizeof saved), 0);
  assert_int_equal(k.write_seq, MARGIN);
  coap_dtls_keys_free(&k);
  free_pair(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_carry_over_gcm),          cmocka_unit_test(test_carry_over_ccm8),
      cmocka_unit_test(test_carry_over_chacha),       cmocka_unit_test(test_refused_envelopes),
      cmocka_unit_test(test_save_held_until_settled), cmocka_unit_test(test_saved_records_checked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
