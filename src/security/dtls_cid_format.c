/* The byte formats of RFC 9146 (final; not draft-05's extension 254):
 * the extension body, the tls12_cid header, its additional data and the
 * inner plaintext. No GnuTLS here: the fuzz target and unit tests use
 * these directly. */
#include <string.h>

#include "security/dtls_cid.h"

#define VERSION_MAJOR 0xFE
#define VERSION_MINOR 0xFD

int coap_dtls_cid_ext_parse(const uint8_t *body, size_t len, uint8_t *cid, uint8_t *cid_len) {
  if (len < 1 || (size_t)body[0] + 1 != len || body[0] > COAP_DTLS_CID_MAX) return -1;
  memcpy(cid, body + 1, body[0]);
  *cid_len = body[0];
  return 0;
}

size_t coap_dtls_cid_aad(uint8_t *aad, const uint8_t seq64[8], const uint8_t *cid, size_t cid_len,
                         size_t inner_len) {
  memset(aad, 0xFF, 8); /* seq_num_placeholder */
  aad[8] = COAP_DTLS_CT_CID;
  aad[9] = (uint8_t)cid_len;
  aad[10] = COAP_DTLS_CT_CID;
  aad[11] = VERSION_MAJOR;
  aad[12] = VERSION_MINOR;
  memcpy(aad + 13, seq64, 8);
  if (cid_len) memcpy(aad + 21, cid, cid_len);
  aad[21 + cid_len] = (uint8_t)(inner_len >> 8);
  aad[22 + cid_len] = (uint8_t)inner_len;
  return COAP_DTLS_CID_AAD(cid_len);
}

size_t coap_dtls_cid_header(uint8_t *out, const uint8_t seq64[8], const uint8_t *cid,
                            size_t cid_len, size_t body_len) {
  out[0] = COAP_DTLS_CT_CID;
  out[1] = VERSION_MAJOR;
  out[2] = VERSION_MINOR;
  memcpy(out + 3, seq64, 8);
  if (cid_len) memcpy(out + 11, cid, cid_len);
  out[11 + cid_len] = (uint8_t)(body_len >> 8);
  out[12 + cid_len] = (uint8_t)body_len;
  return COAP_DTLS_CID_HEADER(cid_len);
}

long coap_dtls_cid_inner_parse(const uint8_t *inner, size_t len, uint8_t *type) {
  while (len > 0 && inner[len - 1] == 0) len--; /* the sender's padding */
  if (len == 0) return -1;
  *type = inner[len - 1];
  return (long)(len - 1);
}

#define CONTENT_HANDSHAKE 22
#define HANDSHAKE_SERVER_HELLO 2
#define RECORD_HEADER 13
#define HANDSHAKE_HEADER 12

int coap_dtls_server_hello_suite(const uint8_t *rec, size_t len, uint8_t suite[2]) {
  if (len < RECORD_HEADER + HANDSHAKE_HEADER || rec[0] != CONTENT_HANDSHAKE || rec[3] || rec[4] ||
      rec[RECORD_HEADER] != HANDSHAKE_SERVER_HELLO)
    return 0;
  const uint8_t *frag_off = rec + RECORD_HEADER + 6;
  if (frag_off[0] || frag_off[1] || frag_off[2]) return 0; /* not the first fragment */
  size_t off = RECORD_HEADER + HANDSHAKE_HEADER + 2 + 32;  /* version, random */
  if (len < off + 1) return 0;
  off += 1 + rec[off]; /* session id */
  if (len < off + 2) return 0;
  suite[0] = rec[off];
  suite[1] = rec[off + 1];
  return 1;
}
