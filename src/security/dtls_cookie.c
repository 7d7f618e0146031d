/* What the server learns from a ClientHello's session ticket before any
 * state exists: which of our ticket keys sealed it, if any. Two uses:
 *
 * - the WHEN_NEEDED cookie policy: our answer to a hello that resumes
 *   (ServerHello, ChangeCipherSpec, Finished) is smaller than the hello
 *   with its ticket, so the cookie round trip protects nothing (RFC 6347
 *   §4.2.1). A hello only claiming to resume is not enough: a ticket we
 *   cannot open turns into a full handshake, and a certificate flight to
 *   an unverified address would be held back by the byte budget until the
 *   client had resent its hello several times (seconds). So the ticket
 *   must carry the name of one of our keys (a ticket's first 16 bytes, in
 *   the clear). Names are public (every NewSessionTicket shows one), so a
 *   ticket with a name of ours but otherwise forged still meets the byte
 *   budget: nothing here is a proof, only a good guess.
 * - the key the GnuTLS session gets: GnuTLS 3.7 takes one master key per
 *   session (gnutls_session_ticket_enable_server), so a ticket sealed
 *   with a previous key of the file (the grace period after a rotation)
 *   opens only if the session is given that key.
 *
 * The names are not learnt, they are derived (dtls_ticket_names.c): every
 * node sharing the key file knows the names of every ticket any of them
 * can have issued, so a client resumes on any node in one round trip. */
#include <string.h>

#include "dtls_internal.h"

#define DTLS_RECORD_HEADER 13
#define EXTENSION_SESSION_TICKET 35
#define HANDSHAKE_HEADER 12

/* The session ticket extension's body, or NULL. */
static const uint8_t *hello_ticket(const uint8_t *data, size_t len, size_t *ticket_len) {
  size_t off = DTLS_RECORD_HEADER + HANDSHAKE_HEADER + 2 + 32; /* version, random */
  if (len < off + 1) return NULL;
  off += 1 + data[off]; /* session id */
  if (len < off + 1) return NULL;
  off += 1 + data[off]; /* cookie */
  if (len < off + 2) return NULL;
  off += 2 + ((size_t)data[off] << 8 | data[off + 1]); /* cipher suites */
  if (len < off + 1) return NULL;
  off += 1 + data[off]; /* compression methods */
  if (len < off + 2) return NULL;
  size_t end = off + 2 + ((size_t)data[off] << 8 | data[off + 1]);
  if (end > len) return NULL;
  for (off += 2; off + 4 <= end;) {
    unsigned type = (unsigned)data[off] << 8 | data[off + 1];
    size_t ext_len = (size_t)data[off + 2] << 8 | data[off + 3];
    if (off + 4 + ext_len > end) return NULL;
    if (type == EXTENSION_SESSION_TICKET) {
      *ticket_len = ext_len;
      return data + off + 4;
    }
    off += 4 + ext_len;
  }
  return NULL;
}

int coap_dtls_hello_has_ticket(const uint8_t *data, size_t len) {
  size_t n = 0;
  return hello_ticket(data, len, &n) && n >= COAP_DTLS_TICKET_NAME_LEN;
}

int coap_dtls_hello_ticket_key(coap_dtls_context_t *d, const uint8_t *data, size_t len,
                               uint64_t unix_now) {
  size_t n = 0;
  const uint8_t *ticket = hello_ticket(data, len, &n);
  if (!ticket || n < COAP_DTLS_TICKET_NAME_LEN) return -1;
  return coap_dtls_ticket_key_named(d, ticket, unix_now);
}
