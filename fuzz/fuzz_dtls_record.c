/* The record layer of compact server sessions (exported keys) takes every
 * datagram an established client sends: framing, epochs, the replay
 * window and authentication must hold for any bytes. Also a round trip:
 * what one side protects, the other side's keys open to the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "security/dtls_record.h"

static coap_dtls_keys_t server_keys, client_keys;

/* Two ends of one session with fixed keys and salts (AES-128-CCM-8). */
static void keys_init(void) {
  static int done;
  if (done) return;
  done = 1;
  static unsigned char k1[16] = "0123456789abcdef", k2[16] = "fedcba9876543210";
  gnutls_datum_t key1 = {k1, 16}, key2 = {k2, 16};
  coap_dtls_keys_t *s = &server_keys, *c = &client_keys;
  if (gnutls_aead_cipher_init(&s->read, GNUTLS_CIPHER_AES_128_CCM_8, &key1) < 0 ||
      gnutls_aead_cipher_init(&s->write, GNUTLS_CIPHER_AES_128_CCM_8, &key2) < 0 ||
      gnutls_aead_cipher_init(&c->read, GNUTLS_CIPHER_AES_128_CCM_8, &key2) < 0 ||
      gnutls_aead_cipher_init(&c->write, GNUTLS_CIPHER_AES_128_CCM_8, &key1) < 0)
    abort();
  memcpy(s->read_iv, "salt", 4);
  memcpy(c->write_iv, "salt", 4);
  memcpy(s->write_iv, "tlas", 4);
  memcpy(c->read_iv, "tlas", 4);
  s->iv_len = c->iv_len = 4;
  s->tag_len = c->tag_len = 8;
  s->explicit_nonce = c->explicit_nonce = 1;
  s->epoch = c->epoch = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  keys_init();
  uint8_t plain[16384];
  /* Arbitrary bytes as a datagram of records. */
  for (size_t off = 0; off < size;) {
    size_t rec_len, len = sizeof plain;
    uint8_t type;
    int r = coap_dtls_keys_unprotect(&server_keys, data + off, size - off, &rec_len, &type, plain,
                                     &len);
    if (r == COAP_DTLS_RECORD_MALFORMED) break;
    if (rec_len == 0 || rec_len > size - off) abort(); /* must advance within bounds */
    off += rec_len;
  }
  /* The bytes as application data: sealed by the client, opened by the
   * server, unchanged. */
  if (size <= 1200) {
    uint8_t rec[1300];
    int n = coap_dtls_keys_protect(&client_keys, 23, data, size, rec, sizeof rec);
    if (n < 0) abort();
    size_t rec_len, len = sizeof plain;
    uint8_t type;
    if (coap_dtls_keys_unprotect(&server_keys, rec, (size_t)n, &rec_len, &type, plain, &len) !=
            COAP_DTLS_RECORD_OK ||
        type != 23 || len != size || rec_len != (size_t)n || memcmp(plain, data, size) != 0)
      abort();
  }
  return 0;
}
