/* DTLS Connection ID (RFC 9146) on GnuTLS 3.7, which has none, without
 * patching it:
 * - negotiation: extension 54, registered on each session with parse point
 *   MANDATORY (any other is dropped from a resumed handshake's hellos);
 * - while GnuTLS runs the session (the handshake, and until the session
 *   moves to exported keys), records of epoch >= 1 are rewritten at the
 *   transport callbacks: GnuTLS's own records into tls12_cid on the way
 *   out, tls12_cid records into GnuTLS's format on the way in. GnuTLS
 *   never sees a CID; each record is opened and sealed again with the same
 *   key, nonce and sequence number (safe: GnuTLS's version never leaves
 *   the process). dtls_record.c handles tls12_cid natively afterwards.
 * Records of epoch >= 1 reach GnuTLS one at a time (dtls_session.c), so
 * the peer's Finished, behind its ChangeCipherSpec in one datagram, is
 * converted only once GnuTLS has taken the CCS and holds the read keys. */
#include <string.h>

#include <gnutls/crypto.h>

#include "coaps/error.h"
#include "common/abi.h"
#include "security/dtls_cid.h"
#include "security/dtls_internal.h"

#define RECORD_HEADER 13
#define EXPLICIT_NONCE 8

/* ---- negotiation ---- */

/* ClientHello (server side) or ServerHello (client side): the CID the
 * peer wants on the records we send it. */
static int ext_recv(gnutls_session_t tls, const unsigned char *data, size_t len) {
  coap_dtls_session_t *s = gnutls_transport_get_ptr(tls);
  uint8_t cid[COAP_DTLS_CID_MAX], cid_len;
  if (coap_dtls_cid_ext_parse(data, len, cid, &cid_len) < 0) {
    if (!s->client) return 0; /* a CID we cannot keep: the server declines CID */
    if (s->d->log)
      coap_logf(s->d->log, COAP_LOG_WARNING, s->peer_name,
                "the server's Connection ID is malformed or longer than %d bytes",
                COAP_DTLS_CID_MAX);
    return GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER;
  }
  memcpy(s->cid.tx, cid, cid_len);
  s->cid.tx_len = cid_len;
  if (s->client)
    s->cid.on = 1; /* the server echoed: both sides agreed */
  else
    s->cid_asked = 1;
  return 0;
}

/* A server's CID: the worker index, the node id (both 0 unless set),
 * then random bytes, so a peer cannot guess another's. Short CIDs (under
 * 4 bytes) are all random, except that a worker's (see
 * coap_dtls_set_cid_worker) always begin with its index and a node's
 * (coap_dtls_set_cid_node) carry its id in byte 1: the steering program
 * in the kernel and the balancer in front send a record where those
 * bytes say, so a random byte would send it to a stranger. */
static void make_server_cid(coap_dtls_context_t *d, uint8_t *cid, uint8_t len) {
  (void)gnutls_rnd(GNUTLS_RND_NONCE, cid, len);
  if (d->cid_steered) cid[0] = d->cid_worker;
  if (d->cid_node_set && len >= 2) cid[1] = d->cid_node;
  if (len < 4) return;
  cid[0] = d->cid_worker;
  cid[1] = d->cid_node;
}

static int ext_send(gnutls_session_t tls, gnutls_buffer_t out) {
  coap_dtls_session_t *s = gnutls_transport_get_ptr(tls);
  coap_dtls_context_t *d = s->d;
  if (!s->client) {
    if (!s->cid_asked) return 0; /* never unasked: a client may not know 54 */
    s->cid.rx_len = d->cid_len;
    make_server_cid(d, s->cid.rx, s->cid.rx_len);
    s->cid.on = 1;
  }
  uint8_t body[1 + COAP_DTLS_CID_MAX];
  body[0] = s->cid.rx_len;
  memcpy(body + 1, s->cid.rx, s->cid.rx_len);
  if (gnutls_buffer_append_data(out, body, 1u + s->cid.rx_len) < 0) return GNUTLS_E_MEMORY_ERROR;
  return 1 + s->cid.rx_len;
}

int coap_dtls_cid_register(coap_dtls_session_t *s) {
  coap_dtls_context_t *d = s->d;
  if (!d->cid_enabled) return 0;
  if (s->client) {
    s->cid.rx_len = d->cid_client_len;
    memcpy(s->cid.rx, d->cid_client, d->cid_client_len);
  }
  return gnutls_session_ext_register(
      s->tls, "connection_id", COAP_DTLS_EXT_CID, GNUTLS_EXT_MANDATORY, ext_recv, ext_send, NULL,
      NULL, NULL,
      GNUTLS_EXT_FLAG_CLIENT_HELLO | GNUTLS_EXT_FLAG_TLS12_SERVER_HELLO | GNUTLS_EXT_FLAG_DTLS);
}

/* The suite is not known to GnuTLS's getters while the Finished is
 * written: it is read from the ServerHello itself (ours or the server's). */
void coap_dtls_cid_watch_hello(coap_dtls_session_t *s, const uint8_t *rec, size_t len) {
  uint8_t suite[2], id[2];
  if (s->cid_alg || !coap_dtls_server_hello_suite(rec, len, suite)) return;
  gnutls_cipher_algorithm_t cipher;
  for (size_t i = 0; gnutls_cipher_suite_info(i, id, NULL, &cipher, NULL, NULL); i++)
    if (id[0] == suite[0] && id[1] == suite[1]) {
      s->cid_alg = (int)cipher;
      return;
    }
}

/* ---- rewriting records while GnuTLS runs the session ---- */

typedef struct record_keys {
  gnutls_aead_cipher_hd_t aead;
  uint8_t iv[12];
  size_t iv_len, tag_len, nonce_part;
} record_keys_t;

/* The keys of GnuTLS's current write (|read| 0) or read state. */
static int keys_open(coap_dtls_session_t *s, int read, record_keys_t *k) {
  gnutls_cipher_algorithm_t alg = (gnutls_cipher_algorithm_t)s->cid_alg;
  gnutls_datum_t iv, key;
  if (!alg || gnutls_record_get_state(s->tls, (unsigned)read, NULL, &iv, &key, NULL) < 0) return -1;
  k->tag_len = gnutls_cipher_get_tag_size(alg);
  k->nonce_part = alg == GNUTLS_CIPHER_CHACHA20_POLY1305 ? 0 : EXPLICIT_NONCE;
  k->iv_len = k->nonce_part ? 4 : 12;
  if (!k->tag_len || !key.size || iv.size != k->iv_len) return -1; /* epoch 0 still */
  memcpy(k->iv, iv.data, k->iv_len);
  return gnutls_aead_cipher_init(&k->aead, alg, &key) < 0 ? -1 : 0;
}

static void record_nonce(const record_keys_t *k, const uint8_t seq64[8],
                         const uint8_t *explicit_part, uint8_t nonce[12]) {
  if (k->nonce_part) {
    memcpy(nonce, k->iv, 4);
    memcpy(nonce + 4, explicit_part, 8);
    return;
  }
  memcpy(nonce, k->iv, 12);
  for (int i = 0; i < 8; i++) nonce[4 + i] ^= seq64[i];
}

static void plain_aad(const uint8_t seq64[8], uint8_t type, size_t len, uint8_t aad[13]) {
  memcpy(aad, seq64, 8);
  aad[8] = type;
  aad[9] = 0xFE;
  aad[10] = 0xFD;
  aad[11] = (uint8_t)(len >> 8);
  aad[12] = (uint8_t)len;
}

#define PLAIN_MAX 16640

/* GnuTLS's record (epoch >= 1) into tls12_cid towards the peer's CID. */
static int seal_as_cid(coap_dtls_session_t *s, const uint8_t *rec, size_t len, uint8_t *out,
                       size_t cap) {
  record_keys_t k;
  if (len < RECORD_HEADER || keys_open(s, 0, &k) < 0) return -1;
  const uint8_t *seq64 = rec + 3;
  size_t body = len - RECORD_HEADER;
  int rc = -1;
  if (body < k.nonce_part + k.tag_len) goto out;
  size_t plain_len = body - k.nonce_part - k.tag_len;
  size_t cid_len = s->cid.tx_len;
  size_t hdr = COAP_DTLS_CID_HEADER(cid_len);
  size_t new_body = k.nonce_part + plain_len + 1 + k.tag_len;
  if (hdr + new_body > cap || plain_len >= PLAIN_MAX) goto out;
  uint8_t nonce[12], aad[COAP_DTLS_CID_AAD(COAP_DTLS_CID_MAX)];
  record_nonce(&k, seq64, rec + RECORD_HEADER, nonce);
  uint8_t *inner = out + hdr + k.nonce_part;
  size_t inner_cap = plain_len + 1;
  plain_aad(seq64, rec[0], plain_len, aad);
  if (gnutls_aead_cipher_decrypt(k.aead, nonce, sizeof nonce, aad, 13, k.tag_len,
                                 rec + RECORD_HEADER + k.nonce_part, body - k.nonce_part, inner,
                                 &inner_cap) < 0 ||
      inner_cap != plain_len)
    goto out;
  inner[plain_len] = rec[0]; /* the real type; no padding */
  coap_dtls_cid_header(out, seq64, s->cid.tx, cid_len, new_body);
  if (k.nonce_part) memcpy(out + hdr, rec + RECORD_HEADER, k.nonce_part);
  size_t aad_len = coap_dtls_cid_aad(aad, seq64, s->cid.tx, cid_len, plain_len + 1);
  giovec_t iov = {inner, plain_len + 1};
  size_t tag_len = k.tag_len;
  if (gnutls_aead_cipher_encryptv2(k.aead, nonce, sizeof nonce, &(giovec_t){aad, aad_len}, 1, &iov,
                                   1, inner + plain_len + 1, &tag_len) < 0)
    goto out;
  rc = (int)(hdr + new_body);
out:
  if (k.aead) gnutls_aead_cipher_deinit(k.aead);
  return rc;
}

int coap_dtls_cid_push_rewrite(coap_dtls_session_t *s, const uint8_t *rec, size_t len, uint8_t *out,
                               size_t cap) {
  if (!s->client) coap_dtls_cid_watch_hello(s, rec, len);
  if (!s->cid.on || !s->cid.tx_len || len < RECORD_HEADER || (!rec[3] && !rec[4])) return 0;
  int n = seal_as_cid(s, rec, len, out, cap);
  if (n < 0 && s->d->log)
    coap_logf(s->d->log, COAP_LOG_WARNING, s->peer_name,
              "a record could not be rewritten with the Connection ID: not sent");
  return n;
}

/* A tls12_cid record that does not decrypt under the keys GnuTLS switched
 * to still reaches GnuTLS, as a record of its format with the same bytes
 * (which do not decrypt either): that a Finished under the new keys was
 * discarded is how a wrong PSK is told from loss (dtls_diagnose.c). */
static int undecryptable_stand_in(coap_dtls_session_t *s, const uint8_t *rec, size_t hdr,
                                  size_t body, uint8_t *out) {
  out[0] = s->established ? 23 : 22;
  out[1] = 0xFE;
  out[2] = 0xFD;
  memcpy(out + 3, rec + 3, 8);
  out[11] = (uint8_t)(body >> 8);
  out[12] = (uint8_t)body;
  memcpy(out + RECORD_HEADER, rec + hdr, body);
  return (int)(RECORD_HEADER + body);
}

/* A tls12_cid record into GnuTLS's format under the same sequence number
 * and nonce. Sets |*seq_out| to its epoch and sequence number. */
static int open_cid(coap_dtls_session_t *s, const uint8_t *rec, size_t len, uint8_t *out,
                    size_t cap, uint64_t *seq_out) {
  size_t cid_len = s->cid.rx_len, hdr = COAP_DTLS_CID_HEADER(cid_len);
  if (len < hdr || memcmp(rec + 11, s->cid.rx, cid_len) != 0) return -1;
  size_t body = (size_t)rec[11 + cid_len] << 8 | rec[12 + cid_len];
  if (hdr + body != len) return -1;
  record_keys_t k;
  if (keys_open(s, 1, &k) < 0) return -1; /* before the CCS: the peer resends */
  const uint8_t *seq64 = rec + 3;
  int rc = -1;
  if (body < k.nonce_part + k.tag_len + 1) goto out;
  size_t inner_len = body - k.nonce_part - k.tag_len;
  if (RECORD_HEADER + body > cap || inner_len > PLAIN_MAX) goto out;
  uint8_t nonce[12], aad[COAP_DTLS_CID_AAD(COAP_DTLS_CID_MAX)];
  record_nonce(&k, seq64, rec + hdr, nonce);
  size_t aad_len = coap_dtls_cid_aad(aad, seq64, s->cid.rx, cid_len, inner_len);
  uint8_t *plain = out + RECORD_HEADER + k.nonce_part;
  size_t plain_cap = inner_len;
  if (gnutls_aead_cipher_decrypt(k.aead, nonce, sizeof nonce, aad, aad_len, k.tag_len,
                                 rec + hdr + k.nonce_part, body - k.nonce_part, plain,
                                 &plain_cap) < 0) {
    rc = undecryptable_stand_in(s, rec, hdr, body, out);
    goto out;
  }
  uint8_t type;
  long content = coap_dtls_cid_inner_parse(plain, plain_cap, &type);
  if (content < 0) goto out;
  size_t new_body = k.nonce_part + (size_t)content + k.tag_len;
  out[0] = type;
  out[1] = 0xFE;
  out[2] = 0xFD;
  memcpy(out + 3, seq64, 8);
  out[11] = (uint8_t)(new_body >> 8);
  out[12] = (uint8_t)new_body;
  if (k.nonce_part) memcpy(out + RECORD_HEADER, rec + hdr, k.nonce_part);
  plain_aad(seq64, type, (size_t)content, aad);
  giovec_t iov = {plain, (size_t)content};
  size_t tag_len = k.tag_len;
  if (gnutls_aead_cipher_encryptv2(k.aead, nonce, sizeof nonce, &(giovec_t){aad, 13}, 1, &iov, 1,
                                   plain + content, &tag_len) < 0)
    goto out;
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | seq64[i];
  *seq_out = v;
  rc = (int)(RECORD_HEADER + new_body);
out:
  gnutls_aead_cipher_deinit(k.aead);
  return rc;
}

int coap_dtls_cid_pull_rewrite(coap_dtls_session_t *s, const uint8_t *rec, size_t len, uint8_t *out,
                               size_t cap) {
  if (len < RECORD_HEADER) return 0;
  if (s->client) coap_dtls_cid_watch_hello(s, rec, len);
  int cid_record = rec[0] == COAP_DTLS_CT_CID;
  int epoch0 = !rec[3] && !rec[4];
  int want_cid = s->cid.on && s->cid.rx_len > 0;
  if (!cid_record) {
    /* Once encrypted, a record without our CID is not from our peer's
     * session (RFC 9146 §3): dropped. */
    if (want_cid && !epoch0) return -1;
    return 0;
  }
  if (!want_cid || epoch0) return -1;
  uint64_t seq = 0; /* stays 0 unless the record authenticated */
  int n = open_cid(s, rec, len, out, cap, &seq);
  if (n > 0 && seq) coap_dtls_note_authentic(s, seq);
  return n;
}

/* ---- configuration and counters ---- */

int coap_dtls_set_cid(coap_dtls_context_t *d, int on, unsigned length) {
  if (!d || (on && (length < 1 || length > COAP_DTLS_CID_MAX))) return COAP_E_INVALID_ARG;
  d->cid_enabled = on != 0;
  if (on) d->cid_len = (uint8_t)length;
  return 0;
}

int coap_dtls_set_cid_worker(coap_dtls_context_t *d, unsigned index) {
  if (!d || index > COAP_DTLS_CID_WORKER_MAX) return COAP_E_INVALID_ARG;
  d->cid_worker = (uint8_t)index;
  d->cid_steered = 1;
  return 0;
}

int coap_dtls_set_cid_node(coap_dtls_context_t *d, unsigned node) {
  if (!d || node > COAP_DTLS_CID_NODE_MAX) return COAP_E_INVALID_ARG;
  d->cid_node = (uint8_t)node;
  d->cid_node_set = 1;
  return 0;
}

int coap_dtls_cid_worker(const coap_dtls_context_t *d) {
  return d && d->cid_steered && d->cid_enabled ? d->cid_worker : -1;
}

int coap_dtls_set_client_cid(coap_dtls_context_t *d, const uint8_t *cid, size_t len) {
  if (!d || len > COAP_DTLS_CID_MAX || (len && !cid)) return COAP_E_INVALID_ARG;
  if (len) memcpy(d->cid_client, cid, len);
  d->cid_client_len = (uint8_t)len;
  return 0;
}

static void cid_info(const coap_dtls_cid_t *c, coap_dtls_cid_info_t *out) {
  memset(out, 0, sizeof(*out));
  out->negotiated = c->on;
  if (!c->on) return;
  out->own_len = c->rx_len;
  memcpy(out->own, c->rx, c->rx_len);
  out->peer_len = c->tx_len;
  memcpy(out->peer, c->tx, c->tx_len);
}

int coap_dtls_last_cid_versioned(const coap_dtls_context_t *d, int version,
                                 coap_dtls_cid_info_t *out) {
  if (!d || !out) return COAP_E_INVALID_ARG;
  coap_dtls_cid_info_t latest;
  cid_info(&d->last_client_cid, &latest);
  return coap_abi_write(coap_abi_struct(COAP_ABI_DTLS_CID_INFO), version, &latest, out, d->log,
                        "coap_dtls_last_cid");
}

void coap_dtls_session_cid(const coap_dtls_session_t *s, coap_dtls_cid_info_t *out) {
  cid_info(&s->cid, out);
}

int coap_dtls_cid_stats_versioned(const coap_dtls_context_t *d, int version,
                                  coap_dtls_cid_stats_t *out) {
  if (!d || !out) return COAP_E_INVALID_ARG;
  coap_dtls_cid_stats_t latest = {d->cid_sessions, d->cid_moves, d->cid_held, d->cid_forged};
  return coap_abi_write(coap_abi_struct(COAP_ABI_DTLS_CID_STATS), version, &latest, out, d->log,
                        "coap_dtls_cid_stats");
}

size_t coap_dtls_record_cid(const coap_dtls_context_t *d, const uint8_t *data, size_t len,
                            const uint8_t **cid) {
  if (!d || !d->cid_enabled || len < COAP_DTLS_CID_HEADER(d->cid_len) ||
      data[0] != COAP_DTLS_CT_CID || data[1] != 0xFE)
    return 0;
  *cid = data + 11;
  return d->cid_len;
}

void coap_dtls_note_cid_move(coap_dtls_context_t *d) {
  d->cid_moves++;
}
void coap_dtls_note_cid_held(coap_dtls_context_t *d) {
  d->cid_held++;
}
void coap_dtls_note_cid_forged(coap_dtls_context_t *d) {
  d->cid_forged++;
}
