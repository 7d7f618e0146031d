/* DTLS Connection ID (RFC 9146) on arbitrary bytes: the extension body
 * parser, the inner plaintext parser, the ServerHello suite reader, and
 * the compact record layer opening datagrams of tls12_cid (and other)
 * records for a server whose CID is 4 bytes — framing, the CID, padding
 * and authentication must hold for any input. Also a round trip: what a
 * client seals towards that CID, the server opens to the same bytes.
 * The first byte picks what the rest goes to. */
#include <stdlib.h>
#include <string.h>

#include "security/dtls_cid.h"
#include "security/dtls_record.h"
#include "session_keys.h"

static coap_dtls_keys_t server_keys, client_keys;
static const coap_dtls_cid_t server_cid = {.on = 1, .rx_len = 4, .rx = {1, 2, 3, 4}};
static const coap_dtls_cid_t client_cid = {.on = 1, .tx_len = 4, .tx = {1, 2, 3, 4}};

static void keys_init(void) {
  static int done;
  if (done) return;
  done = 1;
  fuzz_session_keys(&server_keys, &client_keys, GNUTLS_CIPHER_AES_128_GCM, 16);
}

static void records(const uint8_t *data, size_t size) {
  uint8_t plain[16384];
  for (size_t off = 0; off < size;) {
    size_t rec_len, len = sizeof plain;
    uint8_t type;
    uint64_t seq;
    int r = coap_dtls_keys_unprotect_cid(&server_keys, &server_cid, data + off, size - off,
                                         &rec_len, &type, plain, &len, &seq);
    if (r == COAP_DTLS_RECORD_MALFORMED) break;
    if (rec_len == 0 || rec_len > size - off) abort(); /* must advance within bounds */
    if (r == COAP_DTLS_RECORD_OK && (len > rec_len || (seq >> 48) != 1)) abort();
    off += rec_len;
  }
}

static void round_trip(const uint8_t *data, size_t size) {
  if (size > 1200) return;
  uint8_t rec[1300], plain[1300];
  int n = coap_dtls_keys_protect_cid(&client_keys, &client_cid, 23, data, size, rec, sizeof rec);
  if (n < 0 || rec[0] != COAP_DTLS_CT_CID || memcmp(rec + 11, client_cid.tx, 4) != 0) abort();
  size_t rec_len, len = sizeof plain;
  uint8_t type;
  uint64_t seq;
  if (coap_dtls_keys_unprotect_cid(&server_keys, &server_cid, rec, (size_t)n, &rec_len, &type,
                                   plain, &len, &seq) != COAP_DTLS_RECORD_OK ||
      type != 23 || len != size || rec_len != (size_t)n || memcmp(plain, data, size) != 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  keys_init();
  if (size < 1) return 0;
  uint8_t mode = data[0];
  data++;
  size--;
  switch (mode % 4) {
    case 0: {
      uint8_t cid[COAP_DTLS_CID_MAX], len;
      if (coap_dtls_cid_ext_parse(data, size, cid, &len) == 0 &&
          (len > COAP_DTLS_CID_MAX || (size_t)len + 1 != size))
        abort();
      break;
    }
    case 1: {
      uint8_t type;
      long n = coap_dtls_cid_inner_parse(data, size, &type);
      if (n >= (long)size || (n >= 0 && type == 0)) abort();
      uint8_t suite[2];
      (void)coap_dtls_server_hello_suite(data, size, suite);
      break;
    }
    case 2: records(data, size); break;
    default: round_trip(data, size); break;
  }
  return 0;
}
