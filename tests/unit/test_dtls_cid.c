/* DTLS Connection ID (RFC 9146) formats, byte for byte as the notes and
 * the RFC lay them out: the extension body, the tls12_cid header, the
 * additional data, the inner plaintext with its padding; and the compact
 * record layer sealing and opening tls12_cid records, dropping what it
 * must (no CID where one was agreed, a CID where none was, another CID, a
 * bad tag, a replay, an inner plaintext of zeros only). A padded record
 * (Mbed TLS pads to 16) is built here independently with GnuTLS's AEAD. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <gnutls/crypto.h>

#include "coaps/dtls.h"
#include "coaps/error.h"
#include "security/dtls_cid.h"
#include "security/dtls_record.h"

static const uint8_t seq64[8] = {0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a};
static const uint8_t cid4[4] = {0xc1, 0xc2, 0xc3, 0xc4};

static void test_extension_body(void **state) {
  uint8_t cid[COAP_DTLS_CID_MAX], len = 99;
  const uint8_t empty[] = {0x00};
  assert_int_equal(coap_dtls_cid_ext_parse(empty, 1, cid, &len), 0);
  assert_int_equal(len, 0);
  const uint8_t four[] = {0x04, 0xc1, 0xc2, 0xc3, 0xc4};
  assert_int_equal(coap_dtls_cid_ext_parse(four, 5, cid, &len), 0);
  assert_int_equal(len, 4);
  assert_memory_equal(cid, cid4, 4);
  /* The length byte must match the body exactly. */
  assert_int_equal(coap_dtls_cid_ext_parse(four, 4, cid, &len), -1);
  const uint8_t longer[] = {0x01, 0xaa, 0xbb};
  assert_int_equal(coap_dtls_cid_ext_parse(longer, 3, cid, &len), -1);
  assert_int_equal(coap_dtls_cid_ext_parse(empty, 0, cid, &len), -1);
  /* Longer than we keep: refused, not truncated. */
  uint8_t big[1 + 33] = {33};
  assert_int_equal(coap_dtls_cid_ext_parse(big, sizeof big, cid, &len), -1);
  uint8_t max[1 + 32] = {32};
  assert_int_equal(coap_dtls_cid_ext_parse(max, sizeof max, cid, &len), 0);
}

static void test_additional_data_layout(void **state) {
  uint8_t aad[COAP_DTLS_CID_AAD(COAP_DTLS_CID_MAX)];
  size_t n = coap_dtls_cid_aad(aad, seq64, cid4, 4, 0x0123);
  const uint8_t want[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* placeholder */
                          25,   4,    25,   0xfe, 0xfd, /* type, len, type, version */
                          0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, /* epoch, sequence */
                          0xc1, 0xc2, 0xc3, 0xc4,                         /* cid */
                          0x01, 0x23};                                    /* inner length */
  assert_int_equal(n, sizeof want);
  assert_int_equal(n, 23 + 4);
  assert_memory_equal(aad, want, sizeof want);
  assert_int_equal(coap_dtls_cid_aad(aad, seq64, NULL, 0, 5), 23);
  assert_int_equal(aad[9], 0);
}

static void test_header_layout(void **state) {
  uint8_t h[COAP_DTLS_CID_HEADER(COAP_DTLS_CID_MAX)];
  size_t n = coap_dtls_cid_header(h, seq64, cid4, 4, 0x0456);
  const uint8_t want[] = {25,   0xfe, 0xfd, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                          0x00, 0x2a, 0xc1, 0xc2, 0xc3, 0xc4, 0x04, 0x56};
  assert_int_equal(n, sizeof want);
  assert_memory_equal(h, want, sizeof want);
}

static void test_inner_plaintext(void **state) {
  uint8_t type = 0;
  const uint8_t plain[] = {'h', 'i', 23};
  assert_int_equal(coap_dtls_cid_inner_parse(plain, sizeof plain, &type), 2);
  assert_int_equal(type, 23);
  const uint8_t padded[] = {'h', 'i', 21, 0, 0, 0, 0, 0};
  assert_int_equal(coap_dtls_cid_inner_parse(padded, sizeof padded, &type), 2);
  assert_int_equal(type, 21);
  const uint8_t type_only[] = {23, 0};
  assert_int_equal(coap_dtls_cid_inner_parse(type_only, sizeof type_only, &type), 0);
  const uint8_t zeros[] = {0, 0, 0};
  assert_int_equal(coap_dtls_cid_inner_parse(zeros, sizeof zeros, &type), -1);
  assert_int_equal(coap_dtls_cid_inner_parse(zeros, 0, &type), -1);
}

static void test_server_hello_suite(void **state) {
  uint8_t rec[13 + 12 + 2 + 32 + 1 + 4 + 2 + 1] = {22, 0xfe, 0xfd};
  rec[13] = 2;               /* ServerHello, fragment offset 0 */
  rec[13 + 12 + 2 + 32] = 4; /* a session id of 4 bytes */
  rec[13 + 12 + 2 + 32 + 5] = 0xc0;
  rec[13 + 12 + 2 + 32 + 6] = 0xa8; /* TLS_PSK_WITH_AES_128_CCM_8 */
  uint8_t suite[2];
  assert_int_equal(coap_dtls_server_hello_suite(rec, sizeof rec, suite), 1);
  assert_int_equal(suite[0], 0xc0);
  assert_int_equal(suite[1], 0xa8);
  assert_int_equal(coap_dtls_server_hello_suite(rec, 13 + 12 + 2 + 32 + 5, suite), 0);
  rec[13] = 1; /* a ClientHello */
  assert_int_equal(coap_dtls_server_hello_suite(rec, sizeof rec, suite), 0);
  rec[13] = 2;
  rec[4] = 1; /* epoch 1: encrypted, never a readable hello */
  assert_int_equal(coap_dtls_server_hello_suite(rec, sizeof rec, suite), 0);
}

/* ---- the record layer ---- */

static const unsigned char key_c2s[16] = "0123456789abcdef", key_s2c[16] = "fedcba9876543210";
static coap_dtls_keys_t server_keys, client_keys;
/* Server: our CID c1c2c3c4, the client's empty. Client: the reverse. */
static coap_dtls_cid_t server_cid = {.on = 1, .rx_len = 4, .rx = {0xc1, 0xc2, 0xc3, 0xc4}};
static coap_dtls_cid_t client_cid = {.on = 1, .tx_len = 4, .tx = {0xc1, 0xc2, 0xc3, 0xc4}};

static int keys_setup(void **state) {
  memset(&server_keys, 0, sizeof server_keys);
  memset(&client_keys, 0, sizeof client_keys);
  gnutls_datum_t c2s = {(unsigned char *)key_c2s, 16}, s2c = {(unsigned char *)key_s2c, 16};
  coap_dtls_keys_t *s = &server_keys, *c = &client_keys;
  assert_int_equal(gnutls_aead_cipher_init(&s->read, GNUTLS_CIPHER_AES_128_CCM_8, &c2s), 0);
  assert_int_equal(gnutls_aead_cipher_init(&s->write, GNUTLS_CIPHER_AES_128_CCM_8, &s2c), 0);
  assert_int_equal(gnutls_aead_cipher_init(&c->read, GNUTLS_CIPHER_AES_128_CCM_8, &s2c), 0);
  assert_int_equal(gnutls_aead_cipher_init(&c->write, GNUTLS_CIPHER_AES_128_CCM_8, &c2s), 0);
  memcpy(s->read_iv, "salt", 4);
  memcpy(c->write_iv, "salt", 4);
  memcpy(s->write_iv, "tlas", 4);
  memcpy(c->read_iv, "tlas", 4);
  s->iv_len = c->iv_len = 4;
  s->tag_len = c->tag_len = 8;
  s->explicit_nonce = c->explicit_nonce = 1;
  s->epoch = c->epoch = 1;
  return 0;
}

static int keys_teardown(void **state) {
  coap_dtls_keys_free(&server_keys);
  coap_dtls_keys_free(&client_keys);
  return 0;
}

static int open_at_server(const uint8_t *rec, size_t len, uint8_t *type, uint8_t *plain,
                          size_t *plain_len, uint64_t *seq) {
  size_t rec_len;
  *plain_len = 256;
  return coap_dtls_keys_unprotect_cid(&server_keys, &server_cid, rec, len, &rec_len, type, plain,
                                      plain_len, seq);
}

static void test_record_round_trip(void **state) {
  uint8_t rec[256], plain[256], type;
  int n = coap_dtls_keys_protect_cid(&client_keys, &client_cid, 23, (const uint8_t *)"GET", 3, rec,
                                     sizeof rec);
  /* 13 + 4 (CID) header, 8 explicit nonce, 3 + 1 inner plaintext, 8 tag. */
  assert_int_equal(n, 17 + 8 + 4 + 8);
  assert_int_equal(rec[0], 25);
  assert_int_equal(rec[1], 0xfe);
  assert_int_equal(rec[2], 0xfd);
  assert_int_equal(rec[4], 1); /* epoch 1 */
  assert_memory_equal(rec + 11, cid4, 4);
  assert_int_equal(rec[15] << 8 | rec[16], 8 + 4 + 8);
  size_t len;
  uint64_t seq = 0;
  assert_int_equal(open_at_server(rec, (size_t)n, &type, plain, &len, &seq), COAP_DTLS_RECORD_OK);
  assert_int_equal(type, 23);
  assert_int_equal(len, 3);
  assert_memory_equal(plain, "GET", 3);
  assert_int_equal(seq, 0x0001000000000000ull);
  /* The same record again: a replay. */
  assert_int_equal(open_at_server(rec, (size_t)n, &type, plain, &len, &seq),
                   COAP_DTLS_RECORD_IGNORED);
  /* The server's records to a client that asked for no CID: plain type 23. */
  n = coap_dtls_keys_protect_cid(&server_keys, &server_cid, 23, (const uint8_t *)"ok", 2, rec,
                                 sizeof rec);
  assert_int_equal(rec[0], 23);
  size_t rec_len;
  len = sizeof plain;
  assert_int_equal(coap_dtls_keys_unprotect_cid(&client_keys, &client_cid, rec, (size_t)n, &rec_len,
                                                &type, plain, &len, &seq),
                   COAP_DTLS_RECORD_OK);
  assert_memory_equal(plain, "ok", 2);
}

static void test_records_that_must_be_dropped(void **state) {
  uint8_t rec[256], plain[256], type;
  size_t len;
  uint64_t seq;
  /* Without a CID where ours was agreed. */
  coap_dtls_cid_t none = {0};
  int n =
      coap_dtls_keys_protect_cid(&client_keys, &none, 23, (const uint8_t *)"x", 1, rec, sizeof rec);
  assert_int_equal(rec[0], 23);
  assert_int_equal(open_at_server(rec, (size_t)n, &type, plain, &len, &seq),
                   COAP_DTLS_RECORD_IGNORED);
  /* Another CID. */
  coap_dtls_cid_t other = client_cid;
  other.tx[3] ^= 1;
  n = coap_dtls_keys_protect_cid(&client_keys, &other, 23, (const uint8_t *)"x", 1, rec,
                                 sizeof rec);
  assert_int_equal(open_at_server(rec, (size_t)n, &type, plain, &len, &seq),
                   COAP_DTLS_RECORD_IGNORED);
  /* A flipped bit in the tag; then the genuine record still opens. */
  n = coap_dtls_keys_protect_cid(&client_keys, &client_cid, 23, (const uint8_t *)"x", 1, rec,
                                 sizeof rec);
  rec[n - 1] ^= 0x80;
  assert_int_equal(open_at_server(rec, (size_t)n, &type, plain, &len, &seq),
                   COAP_DTLS_RECORD_IGNORED);
  rec[n - 1] ^= 0x80;
  assert_int_equal(open_at_server(rec, (size_t)n, &type, plain, &len, &seq), COAP_DTLS_RECORD_OK);
  /* A CID record to a side whose own CID is empty: its length cannot be
   * read (the CID length is not on the wire), so the datagram stops. */
  size_t rec_len;
  len = sizeof plain;
  n = coap_dtls_keys_protect_cid(&server_keys, &client_cid, 23, (const uint8_t *)"x", 1, rec,
                                 sizeof rec);
  assert_int_equal(rec[0], 25);
  assert_int_equal(coap_dtls_keys_unprotect_cid(&client_keys, &client_cid, rec, (size_t)n, &rec_len,
                                                &type, plain, &len, &seq),
                   COAP_DTLS_RECORD_MALFORMED);
}

/* A record as Mbed TLS sends it: inner plaintext padded with zeros, built
 * from the RFC's layout with GnuTLS's AEAD directly. |inner| is sealed
 * as given. */
static size_t peer_record(uint64_t seq, const uint8_t *inner, size_t inner_len, uint8_t *out) {
  uint8_t s64[8];
  for (int i = 0; i < 8; i++) s64[i] = (uint8_t)((0x0001000000000000ull | seq) >> (56 - 8 * i));
  size_t hdr = coap_dtls_cid_header(out, s64, cid4, 4, 8 + inner_len + 8);
  memcpy(out + hdr, s64, 8); /* explicit nonce */
  uint8_t nonce[12], aad[COAP_DTLS_CID_AAD(4)];
  memcpy(nonce, "salt", 4);
  memcpy(nonce + 4, s64, 8);
  size_t aad_len = coap_dtls_cid_aad(aad, s64, cid4, 4, inner_len);
  gnutls_aead_cipher_hd_t h;
  gnutls_datum_t key = {(unsigned char *)key_c2s, 16};
  assert_int_equal(gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_128_CCM_8, &key), 0);
  size_t ct_len = inner_len + 8;
  assert_int_equal(gnutls_aead_cipher_encrypt(h, nonce, 12, aad, aad_len, 8, inner, inner_len,
                                              out + hdr + 8, &ct_len),
                   0);
  gnutls_aead_cipher_deinit(h);
  return hdr + 8 + ct_len;
}

static void test_padding_is_stripped(void **state) {
  uint8_t inner[16] = {'h', 'e', 'l', 'l', 'o', 23}; /* then 10 zeros */
  uint8_t rec[128], plain[256], type;
  size_t len;
  uint64_t seq;
  size_t n = peer_record(7, inner, sizeof inner, rec);
  assert_int_equal(open_at_server(rec, n, &type, plain, &len, &seq), COAP_DTLS_RECORD_OK);
  assert_int_equal(type, 23);
  assert_int_equal(len, 5);
  assert_memory_equal(plain, "hello", 5);
  assert_int_equal(seq, 0x0001000000000007ull);
  /* Nothing but zeros: no type, invalid. */
  uint8_t zeros[16] = {0};
  n = peer_record(8, zeros, sizeof zeros, rec);
  assert_int_equal(open_at_server(rec, n, &type, plain, &len, &seq), COAP_DTLS_RECORD_IGNORED);
  /* An older record than the newest is still opened (the caller decides
   * it moves nothing), and reports its own sequence number. */
  n = peer_record(3, inner, sizeof inner, rec);
  assert_int_equal(open_at_server(rec, n, &type, plain, &len, &seq), COAP_DTLS_RECORD_OK);
  assert_int_equal(seq, 0x0001000000000003ull);
}

/* The public structs are versioned (coaps/export.h): version 1's layout,
 * written out by hand, stays; an unknown version writes nothing. */
struct v1_cid_info {
  int negotiated;
  size_t own_len;
  uint8_t own[32];
  size_t peer_len;
  uint8_t peer[32];
};
struct v1_cid_stats {
  uint64_t sessions, moves, held;
};

static void test_public_structs_versioned(void **state) {
  assert_int_equal(offsetof(coap_dtls_cid_info_t, peer), offsetof(struct v1_cid_info, peer));
  assert_int_equal(offsetof(coap_dtls_cid_info_t, own_len), offsetof(struct v1_cid_info, own_len));
  assert_int_equal(offsetof(coap_dtls_cid_stats_t, held), offsetof(struct v1_cid_stats, held));
  coap_dtls_context_t *d = coap_dtls_context_new();
  assert_non_null(d);
  coap_dtls_cid_stats_t st;
  memset(&st, 0xAA, sizeof st);
  assert_int_equal(coap_dtls_cid_stats_versioned(d, 0, &st), COAP_E_INVALID_ARG);
  assert_int_equal(coap_dtls_cid_stats_versioned(d, COAP_DTLS_CID_STATS_VERSION + 1, &st),
                   COAP_E_INVALID_ARG);
  assert_int_equal(st.sessions, 0xAAAAAAAAAAAAAAAAull); /* nothing written */
  assert_int_equal(coap_dtls_cid_stats(d, &st), 0);
  assert_int_equal(st.sessions, 0);
  coap_dtls_cid_info_t info;
  memset(&info, 0xAA, sizeof info);
  assert_int_equal(coap_dtls_last_cid_versioned(d, 9, &info), COAP_E_INVALID_ARG);
  assert_int_equal(coap_dtls_last_cid(d, &info), 0);
  assert_false(info.negotiated);
  assert_int_equal(coap_dtls_last_cid(NULL, &info), COAP_E_INVALID_ARG);
  /* The setters check their arguments. */
  assert_int_equal(coap_dtls_set_cid(d, 1, 0), COAP_E_INVALID_ARG);
  assert_int_equal(coap_dtls_set_cid(d, 1, 33), COAP_E_INVALID_ARG);
  assert_int_equal(coap_dtls_set_cid(d, 0, 0), 0);
  uint8_t cid[33] = {0};
  assert_int_equal(coap_dtls_set_client_cid(d, cid, 33), COAP_E_INVALID_ARG);
  assert_int_equal(coap_dtls_set_client_cid(d, NULL, 1), COAP_E_INVALID_ARG);
  assert_int_equal(coap_dtls_set_client_cid(d, cid, 32), 0);
  coap_dtls_context_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_extension_body),
      cmocka_unit_test(test_additional_data_layout),
      cmocka_unit_test(test_header_layout),
      cmocka_unit_test(test_inner_plaintext),
      cmocka_unit_test(test_server_hello_suite),
      cmocka_unit_test(test_public_structs_versioned),
      cmocka_unit_test_setup_teardown(test_record_round_trip, keys_setup, keys_teardown),
      cmocka_unit_test_setup_teardown(test_records_that_must_be_dropped, keys_setup, keys_teardown),
      cmocka_unit_test_setup_teardown(test_padding_is_stripped, keys_setup, keys_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
