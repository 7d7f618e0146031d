/* DTLS 1.2 application records on keys exported from a finished GnuTLS
 * session (RFC 6347 §4.1, AEAD per RFC 5246 §6.2.3.3, RFC 6655 and
 * RFC 7905). A server keeps thousands of established sessions; a GnuTLS
 * session costs >10 KB each, the keys and counters here a few hundred
 * bytes. GnuTLS still does all the cryptography (gnutls_aead_cipher_*);
 * this file only frames records, builds nonces and additional data, and
 * keeps the replay window. */
#include <string.h>

#include <gnutls/crypto.h>

#include "common/util.h"
#include "security/dtls_record.h"

#define HEADER 13
#define EXPLICIT_NONCE 8
#define VERSION_MAJOR 0xFE
#define VERSION_MINOR 0xFD /* DTLS 1.2 */
#define SEQ_MASK 0xFFFFFFFFFFFFull
#define WINDOW_BITS 64

static uint64_t read_u48(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 6; i++) v = v << 8 | p[i];
  return v;
}

static void write_u48(uint8_t *p, uint64_t v) {
  for (int i = 5; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static uint64_t read_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

static int make_cipher(gnutls_aead_cipher_hd_t *h, gnutls_cipher_algorithm_t alg,
                       const gnutls_datum_t *key) {
  return gnutls_aead_cipher_init(h, alg, key) < 0 ? -1 : 0;
}

int coap_dtls_keys_export(gnutls_session_t tls, coap_dtls_keys_t *k) {
  memset(k, 0, sizeof(*k));
  gnutls_cipher_algorithm_t alg = gnutls_cipher_get(tls);
  k->tag_len = (uint8_t)gnutls_cipher_get_tag_size(alg);
  k->explicit_nonce = alg != GNUTLS_CIPHER_CHACHA20_POLY1305;
  if (!k->tag_len) return -1; /* AEAD suites only */
  gnutls_datum_t mac, iv[2], key[2];
  unsigned char seq[2][8];
  for (int read = 0; read < 2; read++)
    if (gnutls_record_get_state(tls, (unsigned)read, &mac, &iv[read], &key[read], seq[read]) < 0)
      return -1;
  size_t want_iv = k->explicit_nonce ? 4 : 12;
  if (iv[0].size != want_iv || iv[1].size != want_iv) return -1;
  k->iv_len = (uint8_t)want_iv;
  memcpy(k->write_iv, iv[0].data, want_iv);
  memcpy(k->read_iv, iv[1].data, want_iv);
  /* The sequence numbers carry the epoch in their top 16 bits. */
  uint64_t wseq = read_u64(seq[0]), rseq = read_u64(seq[1]);
  k->epoch = (uint16_t)(wseq >> 48);
  k->write_seq = wseq & SEQ_MASK;
  if ((uint16_t)(rseq >> 48) != k->epoch) return -1;
  /* Everything GnuTLS already took counts as seen. */
  k->read_next = rseq & SEQ_MASK;
  k->window = ~0ull;
  if (key[0].size != key[1].size) return -1;
  return coap_dtls_keys_init(k, alg, key[0].data, key[1].data, key[0].size);
}

int coap_dtls_keys_init(coap_dtls_keys_t *k, int alg, const uint8_t *write_key,
                        const uint8_t *read_key, size_t key_len) {
  if (!key_len || key_len > COAP_DTLS_KEY_MAX) return -1;
  gnutls_datum_t w = {(unsigned char *)write_key, (unsigned)key_len};
  gnutls_datum_t r = {(unsigned char *)read_key, (unsigned)key_len};
  if (make_cipher(&k->write, (gnutls_cipher_algorithm_t)alg, &w) < 0) return -1;
  if (make_cipher(&k->read, (gnutls_cipher_algorithm_t)alg, &r) < 0) {
    gnutls_aead_cipher_deinit(k->write);
    k->write = NULL;
    return -1;
  }
  k->alg = alg;
  k->key_len = (uint8_t)key_len;
  memcpy(k->write_key, write_key, key_len);
  memcpy(k->read_key, read_key, key_len);
  return 0;
}

void coap_dtls_keys_free(coap_dtls_keys_t *k) {
  if (k->read) gnutls_aead_cipher_deinit(k->read);
  if (k->write) gnutls_aead_cipher_deinit(k->write);
  coap_memzero(k, sizeof(*k));
}

/* The nonce: salt + explicit part (GCM/CCM), or the IV xor the sequence
 * number (ChaCha20-Poly1305). */
static void make_nonce(const uint8_t *iv, int explicit_nonce, const uint8_t seq64[8],
                       uint8_t nonce[12]) {
  if (explicit_nonce) {
    memcpy(nonce, iv, 4);
    memcpy(nonce + 4, seq64, 8);
    return;
  }
  memcpy(nonce, iv, 12);
  for (int i = 0; i < 8; i++) nonce[4 + i] ^= seq64[i];
}

/* Additional data: epoch + sequence, type, version, plaintext length. */
static void make_aad(const uint8_t seq64[8], uint8_t type, size_t len, uint8_t aad[13]) {
  memcpy(aad, seq64, 8);
  aad[8] = type;
  aad[9] = VERSION_MAJOR;
  aad[10] = VERSION_MINOR;
  aad[11] = (uint8_t)(len >> 8);
  aad[12] = (uint8_t)len;
}

/* The 64-bit sequence (epoch, then the 48-bit number) of our next record. */
static int next_seq64(coap_dtls_keys_t *k, uint8_t seq64[8]) {
  if (k->write_seq > SEQ_MASK) return -1; /* exhausted: would repeat a nonce */
  /* Saved for another process, which starts at write_held. */
  if (k->write_held && k->write_seq >= k->write_held) return -1;
  seq64[0] = (uint8_t)(k->epoch >> 8);
  seq64[1] = (uint8_t)k->epoch;
  write_u48(seq64 + 2, k->write_seq);
  return 0;
}

int coap_dtls_keys_protect(coap_dtls_keys_t *k, uint8_t type, const uint8_t *in, size_t len,
                           uint8_t *out, size_t cap) {
  size_t nonce_part = k->explicit_nonce ? EXPLICIT_NONCE : 0;
  size_t total = HEADER + nonce_part + len + k->tag_len;
  if (total > cap || len > 16384) return -1;
  uint8_t seq64[8];
  if (next_seq64(k, seq64) < 0) return -1;
  out[0] = type;
  out[1] = VERSION_MAJOR;
  out[2] = VERSION_MINOR;
  memcpy(out + 3, seq64, 8);
  size_t body = nonce_part + len + k->tag_len;
  out[11] = (uint8_t)(body >> 8);
  out[12] = (uint8_t)body;
  if (nonce_part) memcpy(out + HEADER, seq64, 8);
  uint8_t nonce[12], aad[13];
  make_nonce(k->write_iv, k->explicit_nonce, seq64, nonce);
  make_aad(seq64, type, len, aad);
  size_t ct_len = len + k->tag_len;
  if (gnutls_aead_cipher_encrypt(k->write, nonce, sizeof nonce, aad, sizeof aad, k->tag_len, in,
                                 len, out + HEADER + nonce_part, &ct_len) < 0)
    return -1;
  k->write_seq++;
  return (int)total;
}

/* tls12_cid (RFC 9146 §4): the inner plaintext is the content and its
 * real type, sealed in place (no padding). */
static int protect_cid(coap_dtls_keys_t *k, const coap_dtls_cid_t *cid, uint8_t type,
                       const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
  size_t nonce_part = k->explicit_nonce ? EXPLICIT_NONCE : 0;
  size_t hdr = COAP_DTLS_CID_HEADER(cid->tx_len);
  size_t body = nonce_part + len + 1 + k->tag_len;
  if (hdr + body > cap || len > 16384) return -1;
  uint8_t seq64[8];
  if (next_seq64(k, seq64) < 0) return -1;
  coap_dtls_cid_header(out, seq64, cid->tx, cid->tx_len, body);
  if (nonce_part) memcpy(out + hdr, seq64, 8);
  uint8_t *inner = out + hdr + nonce_part;
  memmove(inner, in, len);
  inner[len] = type;
  uint8_t nonce[12], aad[COAP_DTLS_CID_AAD(COAP_DTLS_CID_MAX)];
  make_nonce(k->write_iv, k->explicit_nonce, seq64, nonce);
  size_t aad_len = coap_dtls_cid_aad(aad, seq64, cid->tx, cid->tx_len, len + 1);
  /* Not gnutls_aead_cipher_encryptv2(): for the CCM suites (ONLY_AEAD in
   * GnuTLS) it copies the vectors into three fresh allocations per record;
   * the flat call on the inner plaintext, sealed in place, allocates none. */
  size_t ct_len = len + 1 + k->tag_len;
  if (gnutls_aead_cipher_encrypt(k->write, nonce, sizeof nonce, aad, aad_len, k->tag_len, inner,
                                 len + 1, inner, &ct_len) < 0)
    return -1;
  k->write_seq++;
  return (int)(hdr + body);
}

int coap_dtls_keys_protect_cid(coap_dtls_keys_t *k, const coap_dtls_cid_t *cid, uint8_t type,
                               const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
  if (cid && cid->on && cid->tx_len) return protect_cid(k, cid, type, in, len, out, cap);
  return coap_dtls_keys_protect(k, type, in, len, out, cap);
}

/* RFC 6347 §4.1.2.6: a sliding window over the highest sequence seen. */
static int replayed(const coap_dtls_keys_t *k, uint64_t seq) {
  if (seq >= k->read_next) return 0;
  uint64_t back = k->read_next - 1 - seq;
  return back >= WINDOW_BITS || (k->window >> back) & 1;
}

static void mark_seen(coap_dtls_keys_t *k, uint64_t seq) {
  if (seq >= k->read_next) {
    uint64_t shift = seq - k->read_next + 1;
    k->window = shift >= WINDOW_BITS ? 0 : k->window << shift;
    k->window |= 1;
    k->read_next = seq + 1;
  } else {
    k->window |= 1ull << (k->read_next - 1 - seq);
  }
}

int coap_dtls_keys_unprotect(coap_dtls_keys_t *k, const uint8_t *rec, size_t avail, size_t *rec_len,
                             uint8_t *type, uint8_t *out, size_t *out_len) {
  uint64_t seq64;
  return coap_dtls_keys_unprotect_cid(k, NULL, rec, avail, rec_len, type, out, out_len, &seq64);
}

int coap_dtls_keys_unprotect_cid(coap_dtls_keys_t *k, const coap_dtls_cid_t *cid,
                                 const uint8_t *rec, size_t avail, size_t *rec_len, uint8_t *type,
                                 uint8_t *out, size_t *out_len, uint64_t *seq64) {
  /* A tls12_cid header is longer by our CID; only its sender knows the
   * length, and the receiver its own (RFC 9146 §4). */
  size_t cid_len = cid && cid->on ? cid->rx_len : 0;
  int cid_record = avail >= 1 && rec[0] == COAP_DTLS_CT_CID;
  size_t hdr = cid_record ? COAP_DTLS_CID_HEADER(cid_len) : HEADER;
  if (avail < hdr) return COAP_DTLS_RECORD_MALFORMED;
  size_t body = (size_t)rec[hdr - 2] << 8 | rec[hdr - 1];
  if (hdr + body > avail) return COAP_DTLS_RECORD_MALFORMED;
  *rec_len = hdr + body;
  *type = rec[0];
  uint16_t epoch = (uint16_t)(rec[3] << 8 | rec[4]);
  if (rec[1] != VERSION_MAJOR || epoch != k->epoch) return COAP_DTLS_RECORD_IGNORED;
  /* Where our CID was agreed, every record carries it; elsewhere none. */
  if (cid_record != (cid_len > 0)) return COAP_DTLS_RECORD_IGNORED;
  if (cid_record && memcmp(rec + 11, cid->rx, cid_len) != 0) return COAP_DTLS_RECORD_IGNORED;
  size_t nonce_part = k->explicit_nonce ? EXPLICIT_NONCE : 0;
  if (body < nonce_part + k->tag_len + (size_t)cid_record) return COAP_DTLS_RECORD_IGNORED;
  uint64_t seq = read_u48(rec + 5);
  if (replayed(k, seq)) return COAP_DTLS_RECORD_IGNORED;
  size_t len = body - nonce_part - k->tag_len;
  if (len > *out_len) return COAP_DTLS_RECORD_IGNORED;
  uint8_t nonce[12], aad[COAP_DTLS_CID_AAD(COAP_DTLS_CID_MAX)];
  size_t aad_len = sizeof(aad);
  /* The explicit nonce is the sender's choice; the sequence number in the
   * header is what the additional data must cover. */
  uint8_t explicit_part[8];
  if (nonce_part)
    memcpy(explicit_part, rec + hdr, 8);
  else
    memcpy(explicit_part, rec + 3, 8);
  make_nonce(k->read_iv, k->explicit_nonce, explicit_part, nonce);
  if (cid_record) {
    aad_len = coap_dtls_cid_aad(aad, rec + 3, cid->rx, cid_len, len);
  } else {
    make_aad(rec + 3, *type, len, aad);
    aad_len = 13;
  }
  size_t pt_len = *out_len;
  if (gnutls_aead_cipher_decrypt(k->read, nonce, sizeof nonce, aad, aad_len, k->tag_len,
                                 rec + hdr + nonce_part, body - nonce_part, out, &pt_len) < 0)
    return COAP_DTLS_RECORD_IGNORED; /* forged or damaged: dropped silently */
  if (cid_record) {
    long content = coap_dtls_cid_inner_parse(out, pt_len, type);
    if (content < 0) return COAP_DTLS_RECORD_IGNORED; /* all padding: invalid */
    pt_len = (size_t)content;
  }
  mark_seen(k, seq);
  *out_len = pt_len;
  *seq64 = read_u64(rec + 3);
  return COAP_DTLS_RECORD_OK;
}
