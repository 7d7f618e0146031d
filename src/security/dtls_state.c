/* A session on exported keys (dtls_record.c) carried into another process:
 * a server writes its established sessions before it stops and the next
 * process reads them at start, so clients keep talking without a
 * handshake ("DTLS graceful restart", as Californium calls it).
 *
 * Nonce safety: an AEAD nonce is the IV with the record's sequence number.
 * The saved next sequence number is advanced by a margin, the keys in the
 * old process are held below it from the moment they are saved, and
 * retired for sending once the saved state is stored for the new process,
 * so no sequence number the old process used or could still use is ever
 * used again by the new one (docs/security.md argues it in full).
 * GnuTLS does every piece of cryptography here (gnutls_aead_cipher_*). */
#include <string.h>

#include <gnutls/crypto.h>

#include "common/util.h"
#include "security/dtls_state.h"

#define SAVED_VERSION 1 /* one session's keys (coap_dtls_keys_save) */
/* The envelope: 1 held one context's sessions; 2 adds the worker count
 * to the header and each entry's worker; 3 adds, after the entries, what
 * each session's peer carries besides its keys: its Observe relations
 * (sessions_state.c lays out the inside). */
#define ENVELOPE_V1 1
#define ENVELOPE_V2 2
#define ENVELOPE_V3 3
#define SEQ_LIMIT 0xFFFFFFFFFFFFull /* 2^48 - 1: the last sequence number */
#define RETIRED (SEQ_LIMIT + 1)     /* next_seq64 refuses to seal past it */

static const uint8_t magic[8] = {'c', 'o', 'a', 'p', 's', 't', 'a', 't'};

static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

int coap_dtls_keys_save(coap_dtls_keys_t *k, uint64_t margin, uint8_t *out, size_t cap) {
  if (cap < COAP_DTLS_KEYS_SAVED || !k->key_len || k->write_seq > SEQ_LIMIT) return -1;
  if (!margin || margin > SEQ_LIMIT - k->write_seq || k->write_held) return -1;
  uint8_t *p = out;
  *p++ = SAVED_VERSION;
  *p++ = (uint8_t)(k->alg >> 8);
  *p++ = (uint8_t)k->alg;
  *p++ = k->key_len;
  *p++ = k->iv_len;
  *p++ = k->tag_len;
  *p++ = k->explicit_nonce;
  *p++ = (uint8_t)(k->epoch >> 8);
  *p++ = (uint8_t)k->epoch;
  put_u64(p, k->write_seq + margin), p += 8;
  put_u64(p, k->read_next), p += 8;
  put_u64(p, k->window), p += 8;
  memcpy(p, k->write_key, 32), p += 32;
  memcpy(p, k->read_key, 32), p += 32;
  memcpy(p, k->write_iv, 12), p += 12;
  memcpy(p, k->read_iv, 12), p += 12;
  k->write_held = k->write_seq + margin;
  return (int)(p - out);
}

void coap_dtls_keys_settle(coap_dtls_keys_t *k, int kept) {
  if (!k->write_held) return;
  if (kept) k->write_seq = RETIRED;
  k->write_held = 0;
}

/* The saved suite must be one GnuTLS knows, with the sizes it says. */
static int sizes_fit(int alg, unsigned key_len, unsigned iv_len, unsigned tag_len,
                     unsigned explicit_nonce) {
  gnutls_cipher_algorithm_t a = (gnutls_cipher_algorithm_t)alg;
  if (!tag_len || gnutls_cipher_get_tag_size(a) != tag_len) return 0;
  if (gnutls_cipher_get_key_size(a) != key_len || key_len > COAP_DTLS_KEY_MAX) return 0;
  return iv_len == (explicit_nonce ? 4u : 12u) && explicit_nonce <= 1;
}

int coap_dtls_keys_load(coap_dtls_keys_t *k, const uint8_t *in, size_t len) {
  if (len != COAP_DTLS_KEYS_SAVED || in[0] != SAVED_VERSION) return -1;
  int alg = in[1] << 8 | in[2];
  if (!sizes_fit(alg, in[3], in[4], in[5], in[6])) return -1;
  const uint8_t *p = in + 9;
  uint64_t write_seq = get_u64(p), read_next = get_u64(p + 8), window = get_u64(p + 16);
  if (write_seq > SEQ_LIMIT || read_next > RETIRED) return -1;
  p += 24;
  if (coap_dtls_keys_init(k, alg, p, p + 32, in[3]) < 0) return -1;
  p += 64;
  k->iv_len = in[4];
  k->tag_len = in[5];
  k->explicit_nonce = in[6];
  k->epoch = (uint16_t)(in[7] << 8 | in[8]);
  k->write_seq = write_seq;
  k->read_next = read_next;
  k->window = window;
  memcpy(k->write_iv, p, 12);
  memcpy(k->read_iv, p + 12, 12);
  return 0;
}

static gnutls_cipher_algorithm_t envelope_cipher(size_t key_len) {
  if (key_len == 16) return GNUTLS_CIPHER_AES_128_GCM;
  if (key_len == 32) return GNUTLS_CIPHER_AES_256_GCM;
  return GNUTLS_CIPHER_UNKNOWN;
}

static int envelope_handle(gnutls_aead_cipher_hd_t *h, const uint8_t *key, size_t key_len) {
  gnutls_cipher_algorithm_t alg = envelope_cipher(key_len);
  if (alg == GNUTLS_CIPHER_UNKNOWN) return -1;
  gnutls_datum_t k = {(unsigned char *)key, (unsigned)key_len};
  return gnutls_aead_cipher_init(h, alg, &k) < 0 ? -1 : 0;
}

/* magic (8), version (1), workers (1; 0 in version 1), reserved (2),
 * node id (8), sealed at (8), nonce (12): COAP_DTLS_STATE_HEADER bytes. */
static void write_header(uint8_t *h, uint64_t node_id, uint64_t now, unsigned workers) {
  memcpy(h, magic, 8);
  h[8] = ENVELOPE_V3;
  h[9] = (uint8_t)workers;
  h[10] = h[11] = 0;
  put_u64(h + 12, node_id);
  put_u64(h + 20, now);
}

long coap_dtls_state_seal(const uint8_t *key, size_t key_len, uint64_t node_id, uint64_t now,
                          unsigned workers, void (*rand)(void *user, uint8_t *buf, size_t len),
                          void *rand_user, const uint8_t *in, size_t len, uint8_t *out,
                          size_t cap) {
  if (!key || !rand || (!in && len) || !out || workers < 1 || workers > 255) return -1;
  if (cap < COAP_DTLS_STATE_OVERHEAD || len > cap - COAP_DTLS_STATE_OVERHEAD) return -1;
  gnutls_aead_cipher_hd_t h;
  if (envelope_handle(&h, key, key_len) < 0) return -1;
  write_header(out, node_id, now, workers);
  uint8_t *nonce = out + 28;
  rand(rand_user, nonce, 12);
  size_t sealed = cap - COAP_DTLS_STATE_HEADER;
  int rc =
      gnutls_aead_cipher_encrypt(h, nonce, 12, out, COAP_DTLS_STATE_HEADER, COAP_DTLS_STATE_TAG, in,
                                 len, out + COAP_DTLS_STATE_HEADER, &sealed);
  gnutls_aead_cipher_deinit(h);
  return rc < 0 ? -1 : (long)(COAP_DTLS_STATE_HEADER + sealed);
}

long coap_dtls_state_open(const uint8_t *key, size_t key_len, uint64_t node_id, uint64_t now,
                          uint64_t max_age, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                          uint64_t *sealed_at_out) {
  if (envelope_cipher(key_len) == GNUTLS_CIPHER_UNKNOWN || !key) return COAP_DTLS_STATE_BAD_KEY;
  if (!in || !out || len < COAP_DTLS_STATE_OVERHEAD) return COAP_DTLS_STATE_MALFORMED;
  if (memcmp(in, magic, 8) != 0) return COAP_DTLS_STATE_MALFORMED;
  if (in[8] < ENVELOPE_V1 || in[8] > ENVELOPE_V3) return COAP_DTLS_STATE_VERSION;
  if (in[8] != ENVELOPE_V1 && in[9] == 0) return COAP_DTLS_STATE_MALFORMED;
  if (cap < len - COAP_DTLS_STATE_OVERHEAD) return COAP_DTLS_STATE_MALFORMED;
  gnutls_aead_cipher_hd_t h;
  if (envelope_handle(&h, key, key_len) < 0) return COAP_DTLS_STATE_BAD_KEY;
  size_t plain = cap;
  int rc = gnutls_aead_cipher_decrypt(h, in + 28, 12, in, COAP_DTLS_STATE_HEADER,
                                      COAP_DTLS_STATE_TAG, in + COAP_DTLS_STATE_HEADER,
                                      len - COAP_DTLS_STATE_HEADER, out, &plain);
  gnutls_aead_cipher_deinit(h);
  if (rc < 0) return COAP_DTLS_STATE_FORGED;
  /* Only an authentic header is worth reading: node and age next. */
  uint64_t sealed_at = get_u64(in + 20);
  if (sealed_at_out) *sealed_at_out = sealed_at;
  uint64_t age = now > sealed_at ? now - sealed_at : sealed_at - now;
  if (get_u64(in + 12) != node_id) rc = COAP_DTLS_STATE_OTHER_NODE;
  if (!rc && age > max_age) rc = COAP_DTLS_STATE_STALE;
  if (rc) coap_memzero(out, plain);
  return rc ? rc : (long)plain;
}

int coap_dtls_state_format(const uint8_t *in, size_t len, unsigned *version, unsigned *workers) {
  if (!in || len < COAP_DTLS_STATE_HEADER || memcmp(in, magic, 8) != 0) return -1;
  *version = in[8];
  /* Version 1 was written by one context: one worker. */
  *workers = in[8] == ENVELOPE_V1 ? 1 : in[9];
  return 0;
}

const char *coap_dtls_state_refusal(long reason) {
  switch (reason) {
    case COAP_DTLS_STATE_MALFORMED: return "not a coaps session state file";
    case COAP_DTLS_STATE_VERSION:
      return "a state format this coaps does not know (written by a newer one?): not read; "
             "clients will make new handshakes";
    case COAP_DTLS_STATE_FORGED:
      return "its seal does not verify: it was changed, or sealed with another key "
             "(check --state-key-file)";
    case COAP_DTLS_STATE_STALE:
      return "too old (or from the future): the sessions in it may have moved on; "
             "clients will make new handshakes";
    case COAP_DTLS_STATE_OTHER_NODE:
      return "written by another node: its sessions belong to that node";
    case COAP_DTLS_STATE_REPLAYED:
      return "replayed: sealed no later than a state already taken over (its sequence "
             "numbers may have been used since)";
    case COAP_DTLS_STATE_BAD_KEY: return "the state key must be 16 or 32 bytes";
    default: return "refused";
  }
}
