/* Server, full handshake: our last flight sent again when the client's
 * flight comes again.
 *
 * In a full handshake the server sends the last flight (NewSessionTicket,
 * ChangeCipherSpec, Finished), and only the client's flight coming again
 * tells it that ours was lost (RFC 6347 §4.2.4). GnuTLS sends ours again
 * then only if its retransmission timeout has passed since it last did
 * (lib/dtls.c, non-blocking): a client whose flight reached us a little
 * late repeats it a little less than one timeout after our answer, and
 * GnuTLS ignores that repeat. The client then waits a whole doubled
 * timeout for its next one (libcoap's client gives up after a few). So a
 * repeat that GnuTLS left unanswered gets our flight from our copy: the
 * same bytes, a duplicate dropped as a replay if the first did arrive.
 *
 * The address is verified by then (the client's Finished decrypted), but
 * the datagram that draws a copy may be a replay by anyone: a copy only
 * for a repeat whose record number is newer than any answered (a client
 * numbers each resend anew, RFC 6347 §4.2.4; a datagram sent twice, or
 * replayed, draws one copy), at most COAP_DTLS_FINAL_RESENDS_MAX copies,
 * and never more bytes than three times what the peer sent us (the
 * RFC 9000 factor). */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "security/dtls_internal.h"

#define DTLS_RECORD_HEADER 13
#define CT_HANDSHAKE 22
#define AMPLIFICATION_FACTOR 3

void coap_dtls_forget_server_final(coap_dtls_session_t *s) {
  if (!s->server_final) return;
  free(s->server_final->bytes);
  free(s->server_final);
  s->server_final = NULL;
}

/* Is GnuTLS sending the flight that answers the client's Finished? It has
 * cleared what it last received by then (GNUTLS_HANDSHAKE_ANY), or still
 * says FINISHED. */
static int sending_last_flight(const coap_dtls_session_t *s) {
  if (s->client || s->established || !s->tls) return 0;
  gnutls_handshake_description_t in = gnutls_handshake_get_last_in(s->tls);
  return in == GNUTLS_HANDSHAKE_FINISHED || in == GNUTLS_HANDSHAKE_ANY;
}

/* Called for each datagram before it is counted: the first of a drive
 * (s->pushed still 0) starts the copy. A flight too large to keep whole
 * is not kept: GnuTLS's own resends remain. */
void coap_dtls_keep_server_final(coap_dtls_session_t *s, const void *data, size_t len) {
  if (!sending_last_flight(s)) return;
  if (!s->pushed)
    coap_dtls_forget_server_final(s);
  else if (!s->server_final)
    return; /* an earlier datagram was not kept */
  if (!s->server_final && !(s->server_final = calloc(1, sizeof *s->server_final))) return;
  final_flight_t *f = s->server_final;
  /* Exactly the flight's bytes: a server may hold many of these at once,
   * from each client that has not sent its first request yet. */
  uint8_t *grown = NULL;
  if (f->dgrams < COAP_DTLS_FINAL_FLIGHT_DATAGRAMS && f->len + len <= COAP_DTLS_OWN_FLIGHT_MAX)
    grown = realloc(f->bytes, f->len + len);
  if (!grown) {
    coap_dtls_forget_server_final(s);
    return;
  }
  f->bytes = grown;
  memcpy(f->bytes + f->len, data, len);
  f->len += len;
  f->dgram_len[f->dgrams++] = (uint16_t)len;
}

int coap_dtls_client_flight_again(const coap_dtls_session_t *s, const uint8_t *data, size_t len) {
  return s->server_final && s->established && len > DTLS_RECORD_HEADER && data[0] == CT_HANDSHAKE &&
         data[3] == 0 && data[4] == 0 && data[DTLS_RECORD_HEADER] != GNUTLS_HANDSHAKE_CLIENT_HELLO;
}

/* The epoch-0 record's sequence number (48 bits). */
static uint64_t record_seq(const uint8_t *rec) {
  uint64_t seq = 0;
  for (int i = 5; i < 11; i++) seq = seq << 8 | rec[i];
  return seq;
}

void coap_dtls_answer_client_repeat(coap_dtls_session_t *s, const uint8_t *repeat,
                                    int gnutls_answered) {
  final_flight_t *f = s->server_final;
  if (!f || !f->dgrams) return;
  uint64_t seq = record_seq(repeat);
  if (f->answered && seq <= f->answered_seq) return; /* a copy of a repeat answered */
  if (gnutls_answered) {
    f->answered = 1;
    f->answered_seq = seq;
    return;
  }
  if (f->resends >= COAP_DTLS_FINAL_RESENDS_MAX ||
      f->resent_len + f->len > AMPLIFICATION_FACTOR * s->peer_in) {
    if (s->d->log)
      coap_logf(s->d->log, COAP_LOG_DEBUG, s->peer_name,
                "the client's flight came again: our last flight not sent again (%u copies, "
                "%zu bytes sent for %zu received)",
                f->resends, f->resent_len, s->peer_in);
    return;
  }
  f->resends++;
  f->answered = 1;
  f->answered_seq = seq;
  f->resent_len += f->len;
  size_t off = 0;
  for (unsigned i = 0; i < f->dgrams; i++) {
    s->sends++;
    (void)s->cb.send(s->user, f->bytes + off, f->dgram_len[i]);
    off += f->dgram_len[i];
  }
  if (s->d->log)
    coap_logf(s->d->log, COAP_LOG_DEBUG, s->peer_name,
              "the client's flight came again: our last flight sent again");
}
