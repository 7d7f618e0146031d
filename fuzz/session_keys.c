#include "session_keys.h"

#include <stdlib.h>
#include <string.h>

void fuzz_session_keys(coap_dtls_keys_t *server, coap_dtls_keys_t *client,
                       gnutls_cipher_algorithm_t cipher, size_t tag_len) {
  static unsigned char k1[16] = "0123456789abcdef", k2[16] = "fedcba9876543210";
  gnutls_datum_t key1 = {k1, 16}, key2 = {k2, 16};
  coap_dtls_keys_t *s = server, *c = client;
  if (gnutls_aead_cipher_init(&s->read, cipher, &key1) < 0 ||
      gnutls_aead_cipher_init(&s->write, cipher, &key2) < 0 ||
      gnutls_aead_cipher_init(&c->read, cipher, &key2) < 0 ||
      gnutls_aead_cipher_init(&c->write, cipher, &key1) < 0)
    abort();
  memcpy(s->read_iv, "salt", 4);
  memcpy(c->write_iv, "salt", 4);
  memcpy(s->write_iv, "tlas", 4);
  memcpy(c->read_iv, "tlas", 4);
  s->iv_len = c->iv_len = 4;
  s->tag_len = c->tag_len = tag_len;
  s->explicit_nonce = c->explicit_nonce = 1;
  s->epoch = c->epoch = 1;
}
