/* Private to src/security: established sessions on exported keys. */
#ifndef COAPS_DTLS_RECORD_H
#define COAPS_DTLS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "security/dtls_cid.h"

typedef struct coap_dtls_keys {
  gnutls_aead_cipher_hd_t read, write;
  uint8_t read_iv[12], write_iv[12];
  uint8_t iv_len, tag_len;
  uint8_t explicit_nonce; /* GCM/CCM carry 8 nonce bytes per record */
  uint16_t epoch;
  uint64_t write_seq; /* next sequence number to send */
  /* While a save is outstanding (dtls_state.c): the saved next sequence
   * number, which this copy must stay below; 0: none. */
  uint64_t write_held;
  uint64_t read_next; /* one above the highest accepted */
  uint64_t window;    /* bit i: read_next - 1 - i was seen */
  /* The raw keys, kept so that dtls_state.c can carry a session into
   * another process (zeroised with the rest on free). */
  int alg; /* gnutls_cipher_algorithm_t */
  uint8_t key_len;
  uint8_t read_key[32], write_key[32];
} coap_dtls_keys_t;

#define COAP_DTLS_KEY_MAX 32

/* Keys from their parts (|k|'s iv, counters and epoch set by the caller
 * or kept as zero): the two AEAD handles made from |write_key| and
 * |read_key|. Returns 0 or -1 (then nothing is held). */
int coap_dtls_keys_init(coap_dtls_keys_t *k, int alg, const uint8_t *write_key,
                        const uint8_t *read_key, size_t key_len);

/* Take the current epoch's keys and counters out of an established
 * session. Returns 0, or -1 (not an AEAD suite, or GnuTLS said no): then
 * keep using the session. */
int coap_dtls_keys_export(gnutls_session_t tls, coap_dtls_keys_t *k);
void coap_dtls_keys_free(coap_dtls_keys_t *k);

/* One record of |type| around |in|, into |out|; its length or -1. */
int coap_dtls_keys_protect(coap_dtls_keys_t *k, uint8_t type, const uint8_t *in, size_t len,
                           uint8_t *out, size_t cap);

#define COAP_DTLS_RECORD_OK 0
#define COAP_DTLS_RECORD_IGNORED 1   /* other epoch, replayed, forged: skip */
#define COAP_DTLS_RECORD_MALFORMED 2 /* the datagram's framing is broken: stop */

/* The record at |rec| (|avail| bytes left in the datagram): its length in
 * |*rec_len|, its content type, and the plaintext in |out| (capacity in,
 * length out) when the result is COAP_DTLS_RECORD_OK. */
int coap_dtls_keys_unprotect(coap_dtls_keys_t *k, const uint8_t *rec, size_t avail, size_t *rec_len,
                             uint8_t *type, uint8_t *out, size_t *out_len);

/* The same for a session with Connection IDs (|cid| NULL or not on: as
 * above). Records to a peer with a non-empty CID are tls12_cid (RFC 9146,
 * no padding sent); received ones must be tls12_cid exactly when our own
 * CID is non-empty (the others are IGNORED), and their padding is
 * stripped. Unprotect puts the record's epoch and sequence number (the
 * 64-bit sequence of the additional data) in |*seq64| when OK. */
int coap_dtls_keys_protect_cid(coap_dtls_keys_t *k, const coap_dtls_cid_t *cid, uint8_t type,
                               const uint8_t *in, size_t len, uint8_t *out, size_t cap);
int coap_dtls_keys_unprotect_cid(coap_dtls_keys_t *k, const coap_dtls_cid_t *cid,
                                 const uint8_t *rec, size_t avail, size_t *rec_len, uint8_t *type,
                                 uint8_t *out, size_t *out_len, uint64_t *seq64);

#endif
