/* Two ends of one established session with fixed keys and salts, for the
 * targets that drive the compact record layer (dtls_record.c). */
#ifndef COAPS_FUZZ_SESSION_KEYS_H
#define COAPS_FUZZ_SESSION_KEYS_H

#include "security/dtls_record.h"

/* |server| reads what |client| writes and the other way round; epoch 1,
 * 4-byte salts, explicit nonces, |tag_len|-byte tags. Aborts if GnuTLS
 * refuses the cipher. */
void fuzz_session_keys(coap_dtls_keys_t *server, coap_dtls_keys_t *client,
                       gnutls_cipher_algorithm_t cipher, size_t tag_len);

#endif
