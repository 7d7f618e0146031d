/* Private to src/security: DTLS 1.2 Connection ID (RFC 9146) on GnuTLS,
 * which has none. The extension is registered per session (dtls_session.c
 * calls coap_dtls_cid_register); the byte formats live here so the record
 * layer, the push/pull rewrite and the tests share one definition. See
 * docs/architecture.md ("Connection ID") for the why. */
#ifndef COAPS_DTLS_CID_H
#define COAPS_DTLS_CID_H

#include <stddef.h>
#include <stdint.h>

/* The longest CID we take or give. RFC 9146 allows 255; Mbed TLS keeps
 * 32 at most, and every byte here is paid for by each session. */
#define COAP_DTLS_CID_MAX 32
/* A server's own CIDs: the first byte is reserved for the worker index,
 * the second for a node id (scale-out steering); the rest is random. */
#define COAP_DTLS_CID_DEFAULT_LEN 8
#define COAP_DTLS_EXT_CID 54
#define COAP_DTLS_CT_CID 25
/* 13-byte header plus the CID; additional data 23 plus the CID. */
#define COAP_DTLS_CID_HEADER(cid_len) (13u + (size_t)(cid_len))
#define COAP_DTLS_CID_AAD(cid_len) (23u + (size_t)(cid_len))

/* A session's CIDs: what we receive with (ours) and what we put on the
 * records we send (the peer's). Lengths 0: records without a CID in that
 * direction. */
typedef struct coap_dtls_cid {
  uint8_t on;     /* negotiated */
  uint8_t rx_len; /* our CID: on records we receive */
  uint8_t tx_len; /* the peer's: on records we send */
  uint8_t rx[COAP_DTLS_CID_MAX];
  uint8_t tx[COAP_DTLS_CID_MAX];
} coap_dtls_cid_t;

/* The extension's body, `opaque cid<0..255>`: the CID in |cid| and its
 * length in |*cid_len|. Returns 0, or -1 when the length byte does not
 * match the body or the CID is longer than COAP_DTLS_CID_MAX. */
int coap_dtls_cid_ext_parse(const uint8_t *body, size_t len, uint8_t *cid, uint8_t *cid_len);

/* The additional data of a tls12_cid record (RFC 9146 §5):
 * FF*8 | 25 | cid_len | 25 | FE FD | seq64 | cid | inner_len(2).
 * Returns its length (COAP_DTLS_CID_AAD(cid_len)). */
size_t coap_dtls_cid_aad(uint8_t *aad, const uint8_t seq64[8], const uint8_t *cid, size_t cid_len,
                         size_t inner_len);
/* The header: 25 | FE FD | seq64 | cid | body_len(2). Returns its length. */
size_t coap_dtls_cid_header(uint8_t *out, const uint8_t seq64[8], const uint8_t *cid,
                            size_t cid_len, size_t body_len);
/* The inner plaintext `content | type | zeros`: the content's length with
 * the real type in |*type|, or -1 when nothing but zeros is left. */
long coap_dtls_cid_inner_parse(const uint8_t *inner, size_t len, uint8_t *type);

/* The cipher suite of a ServerHello (a plaintext handshake record at
 * |rec|): 1 with its two bytes in |suite|, 0 when it is not one. */
int coap_dtls_server_hello_suite(const uint8_t *rec, size_t len, uint8_t suite[2]);

#endif
