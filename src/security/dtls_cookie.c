/* What the WHEN_NEEDED cookie policy needs to know about a ClientHello:
 * does it resume a session of ours? Our answer to such a hello
 * (ServerHello, ChangeCipherSpec, Finished) is smaller than the hello with
 * its ticket, so the cookie round trip protects nothing (RFC 6347 §4.2.1).
 *
 * A hello only claiming to resume is not enough: a ticket we cannot
 * decrypt (forged, or issued before a restart) turns into a full
 * handshake, and a certificate flight to an unverified address would be
 * held back by the byte budget until the client had resent its hello
 * several times (seconds). So the ticket must carry the key name of a
 * ticket we issued: GnuTLS puts its ticket key's name in a ticket's first
 * 16 bytes, and our NewSessionTicket messages travel before the
 * ChangeCipherSpec, in the clear, where we read it. A stale ticket then
 * gets a cookie like any fresh hello, and one with a name of ours but
 * otherwise forged still meets the byte budget.
 *
 * Workers (threads, a configuration each) share the ticket key, and a
 * client that comes back from a new port lands on any of them: so they
 * share the table of names too, under a lock (written once per ticket
 * issued, read once per hello from a new address). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dtls_internal.h"

#define DTLS_RECORD_HEADER 13
#define EXTENSION_SESSION_TICKET 35
#define CONTENT_HANDSHAKE 22
#define HANDSHAKE_NEW_SESSION_TICKET 4
#define HANDSHAKE_HEADER 12

struct coap_dtls_ticket_names {
  atomic_uint refs;
  pthread_mutex_t lock;
  uint8_t name[COAP_DTLS_TICKET_NAMES][COAP_DTLS_TICKET_NAME_LEN];
  unsigned count, next;
};

coap_dtls_ticket_names_t *coap_dtls_ticket_names_new(void) {
  coap_dtls_ticket_names_t *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  if (pthread_mutex_init(&t->lock, NULL) != 0) {
    free(t);
    return NULL;
  }
  atomic_init(&t->refs, 1);
  return t;
}

void coap_dtls_ticket_names_release(coap_dtls_ticket_names_t *t) {
  if (!t || atomic_fetch_sub(&t->refs, 1) != 1) return;
  pthread_mutex_destroy(&t->lock);
  free(t);
}

void coap_dtls_ticket_names_share(coap_dtls_ticket_names_t **t, coap_dtls_ticket_names_t *from) {
  if (!from || *t == from) return;
  atomic_fetch_add(&from->refs, 1);
  coap_dtls_ticket_names_release(*t);
  *t = from;
}

/* Under the lock. */
static int known_ticket_name(const coap_dtls_ticket_names_t *t, const uint8_t *name) {
  for (unsigned i = 0; i < t->count; i++)
    if (memcmp(t->name[i], name, COAP_DTLS_TICKET_NAME_LEN) == 0) return 1;
  return 0;
}

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

int coap_dtls_hello_resumes(const coap_dtls_context_t *d, const uint8_t *data, size_t len) {
  size_t n = 0;
  const uint8_t *ticket = hello_ticket(data, len, &n);
  coap_dtls_ticket_names_t *t = d->ticket_names;
  if (!ticket || n < COAP_DTLS_TICKET_NAME_LEN || !t) return 0;
  pthread_mutex_lock(&t->lock);
  int known = known_ticket_name(t, ticket);
  pthread_mutex_unlock(&t->lock);
  return known;
}

static void remember_ticket_name(coap_dtls_ticket_names_t *t, const uint8_t *name) {
  if (!t) return;
  pthread_mutex_lock(&t->lock);
  if (!known_ticket_name(t, name)) {
    memcpy(t->name[t->next], name, COAP_DTLS_TICKET_NAME_LEN);
    t->next = (t->next + 1) % COAP_DTLS_TICKET_NAMES;
    if (t->count < COAP_DTLS_TICKET_NAMES) t->count++;
  }
  pthread_mutex_unlock(&t->lock);
}

/* A datagram of ours: a NewSessionTicket in it (epoch 0, in one piece)
 * teaches us the name of the key our tickets are sealed with now. */
void coap_dtls_note_issued_ticket(coap_dtls_context_t *d, const uint8_t *data, size_t len) {
  for (size_t off = 0; off + DTLS_RECORD_HEADER <= len;) {
    const uint8_t *rec = data + off;
    size_t body = (size_t)rec[11] << 8 | rec[12];
    if (off + DTLS_RECORD_HEADER + body > len) return;
    const uint8_t *h = rec + DTLS_RECORD_HEADER;
    int epoch0 = rec[3] == 0 && rec[4] == 0;
    /* lifetime hint (4), ticket length (2), the ticket */
    if (rec[0] == CONTENT_HANDSHAKE && epoch0 && body >= HANDSHAKE_HEADER + 6 &&
        h[0] == HANDSHAKE_NEW_SESSION_TICKET && !h[6] && !h[7] && !h[8]) {
      size_t ticket_len = (size_t)h[HANDSHAKE_HEADER + 4] << 8 | h[HANDSHAKE_HEADER + 5];
      if (ticket_len >= COAP_DTLS_TICKET_NAME_LEN && HANDSHAKE_HEADER + 6 + ticket_len <= body)
        remember_ticket_name(d->ticket_names, h + HANDSHAKE_HEADER + 6);
    }
    off += DTLS_RECORD_HEADER + body;
  }
}
