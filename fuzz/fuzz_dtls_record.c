/* The record layer of compact server sessions (exported keys) takes every
 * datagram an established client sends: framing, epochs, the replay
 * window and authentication must hold for any bytes. Also a round trip:
 * what one side protects, the other side's keys open to the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "security/dtls_record.h"
#include "session_keys.h"

static coap_dtls_keys_t server_keys, client_keys;

static void keys_init(void) {
  static int done;
  if (done) return;
  done = 1;
  fuzz_session_keys(&server_keys, &client_keys, GNUTLS_CIPHER_AES_128_CCM_8, 8);
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
