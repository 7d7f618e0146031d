/* The names of the session tickets this server can open, derived from its
 * ticket keys the way GnuTLS 3.7 derives them (lib/stek.c): the master
 * key K (64 bytes, ours) is never used as it is; for the time step
 * t = floor(unix time / (3 × the session expiration)) the ticket key is
 * SHA3-512(be64(t) || K), whose first 16 bytes are the key name that
 * begins every ticket sealed with it. A fresh GnuTLS session seals with
 * step t and opens tickets of step t or t - 1; TLS 1.2 resumption issues
 * no new ticket, so a client keeps the one it has.
 *
 * So the name of every ticket any node sharing our keys can have issued,
 * and that we can still open, is one of 2 × (number of keys): the table
 * below, derived again when the step changes or the keys do. If a later
 * GnuTLS derives its keys otherwise, no name matches: tickets of the
 * current key still resume (GnuTLS opens them itself, after a cookie
 * where the policy wants one), those of a previous key get a full
 * handshake counted as ticket-key-unknown, and the unit test
 * test_ticket_names fails to say so.
 *
 * A configuration is used by one thread (its worker); each worker's holds
 * the same keys and derives the same table (2 hashes a key every 18
 * hours), so there is nothing to lock. */
#include <gnutls/crypto.h>
#include <string.h>

#include "common/util.h"
#include "dtls_internal.h"

uint64_t coap_dtls_ticket_step(uint64_t unix_now) {
  return unix_now / COAP_DTLS_TICKET_STEP_S;
}

int coap_dtls_ticket_name(const uint8_t *key, uint64_t step,
                          uint8_t name[COAP_DTLS_TICKET_NAME_LEN]) {
  uint8_t in[8 + COAP_DTLS_TICKET_KEY_LEN], out[64];
  for (int i = 0; i < 8; i++) in[i] = (uint8_t)(step >> (56 - 8 * i));
  memcpy(in + 8, key, COAP_DTLS_TICKET_KEY_LEN);
  int rc = gnutls_hash_fast(GNUTLS_DIG_SHA3_512, in, sizeof in, out);
  if (rc == 0) memcpy(name, out, COAP_DTLS_TICKET_NAME_LEN);
  coap_memzero(in, sizeof in);
  coap_memzero(out, sizeof out); /* the rest is the ticket's AES and MAC key */
  return rc < 0 ? -1 : 0;
}

void coap_dtls_ticket_keys_changed(coap_dtls_context_t *d) {
  d->ticket_names.keys = 0;
}

/* The table for |step|: each key's names for step and step - 1. A key
 * whose name cannot be derived (no SHA3 in this GnuTLS) gets none. */
static void derive(coap_dtls_context_t *d, uint64_t step) {
  ticket_names_t *t = &d->ticket_names;
  memset(t, 0, sizeof *t);
  t->step = step;
  for (unsigned k = 0; k < d->n_ticket_keys; k++) {
    t->derived[k] = coap_dtls_ticket_name(d->ticket_keys[k], step, t->name[k][0]) == 0 &&
                    step > 0 &&
                    coap_dtls_ticket_name(d->ticket_keys[k], step - 1, t->name[k][1]) == 0;
  }
  t->keys = d->n_ticket_keys;
}

int coap_dtls_ticket_key_named(coap_dtls_context_t *d, const uint8_t *name, uint64_t unix_now) {
  uint64_t step = coap_dtls_ticket_step(unix_now);
  ticket_names_t *t = &d->ticket_names;
  if (!t->keys || t->step != step) derive(d, step);
  for (unsigned k = 0; k < t->keys; k++)
    if (t->derived[k] && (memcmp(name, t->name[k][0], COAP_DTLS_TICKET_NAME_LEN) == 0 ||
                          memcmp(name, t->name[k][1], COAP_DTLS_TICKET_NAME_LEN) == 0))
      return (int)k;
  return -1;
}
