/* Private to src/security: an established session's exported keys carried
 * into another process (a restart or an upgrade without handshakes), and
 * the sealed envelope that carries them. */
#ifndef COAPS_DTLS_STATE_H
#define COAPS_DTLS_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "security/dtls_record.h"

/* The bytes one session's keys take (coap_dtls_keys_save). */
#define COAP_DTLS_KEYS_SAVED 121

/* Write |k| into |out| with its next sequence number advanced by |margin|
 * (at least 1), then hold |k| below that number: it still seals records,
 * but none with a sequence number the saved copy will use. Returns the
 * length (COAP_DTLS_KEYS_SAVED) or -1 (no room, no raw keys, the advanced
 * sequence would pass 2^48 - 1, or a save of |k| is outstanding). */
int coap_dtls_keys_save(coap_dtls_keys_t *k, uint64_t margin, uint8_t *out, size_t cap);
/* The end of an outstanding save: |kept| (the saved copy is stored where
 * the new process reads it) retires |k| for sending (it can never seal
 * another record, so the new process alone uses the nonces from there
 * on); otherwise (the copy is gone, never to be read) the hold is lifted
 * and |k| goes on as before the save. */
void coap_dtls_keys_settle(coap_dtls_keys_t *k, int kept);
/* Keys saved by coap_dtls_keys_save into a zeroed |k|: 0, or -1 when
 * |in| is not such a record (nothing is then held). */
int coap_dtls_keys_load(coap_dtls_keys_t *k, const uint8_t *in, size_t len);

/* The envelope: magic "coapstat", a version (3; 1 and 2 are still read), the
 * number of workers whose sessions it holds, the node id and the time of
 * sealing (the caller's unit), a random nonce, then the sealed bytes and a 16-byte
 * tag (AES-GCM under a 16- or 32-byte key; the header is additional
 * data, so none of it can be changed either). */
#define COAP_DTLS_STATE_HEADER 40
#define COAP_DTLS_STATE_TAG 16
#define COAP_DTLS_STATE_OVERHEAD (COAP_DTLS_STATE_HEADER + COAP_DTLS_STATE_TAG)

/* Why an envelope was refused (coap_dtls_state_open's negative results). */
#define COAP_DTLS_STATE_MALFORMED (-1) /* not an envelope of this version */
#define COAP_DTLS_STATE_FORGED (-2)    /* the tag does not verify: tampered, or another key */
#define COAP_DTLS_STATE_STALE (-3)     /* older than the bound, or from the future */
#define COAP_DTLS_STATE_OTHER_NODE (-4)
#define COAP_DTLS_STATE_BAD_KEY (-5)  /* the key is neither 16 nor 32 bytes */
#define COAP_DTLS_STATE_REPLAYED (-6) /* sealed no later than one already read */
#define COAP_DTLS_STATE_VERSION (-7)  /* a version this code does not know */

/* Seal |len| bytes for |node_id| at |now| (any unit: the caller's, the
 * same for max_age below) from |workers| workers (1 to 255); the
 * envelope's length, or -1. |rand| fills the nonce. */
long coap_dtls_state_seal(const uint8_t *key, size_t key_len, uint64_t node_id, uint64_t now,
                          unsigned workers, void (*rand)(void *user, uint8_t *buf, size_t len),
                          void *rand_user, const uint8_t *in, size_t len, uint8_t *out, size_t cap);
/* Open an envelope sealed for |node_id| no more than |max_age| before
 * |now| (and no more than that after it: clocks move both ways). The
 * plaintext's length, or a COAP_DTLS_STATE_* reason; |*sealed_at| (may
 * be NULL) the time it was sealed, when authentic. */
long coap_dtls_state_open(const uint8_t *key, size_t key_len, uint64_t node_id, uint64_t now,
                          uint64_t max_age, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                          uint64_t *sealed_at);
/* The version (1 to 3) and worker count of an envelope: 0, or -1 when
 * |in| is no envelope. Trust it only once coap_dtls_state_open accepted
 * |in| (the header is authenticated). Version 1 means one worker and
 * entries without a worker byte; 2 entries with one; 3 a length before
 * the entries and each one's peer state after them (Observe relations). */
int coap_dtls_state_format(const uint8_t *in, size_t len, unsigned *version, unsigned *workers);
/* A line saying what a refusal means and what to do. */
const char *coap_dtls_state_refusal(long reason);

#endif
