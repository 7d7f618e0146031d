/* Private to src/security: the GnuTLS objects behind coap_dtls_context_t. */
#ifndef COAPS_DTLS_INTERNAL_H
#define COAPS_DTLS_INTERNAL_H

#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>

#include "security/security.h"

typedef struct psk_entry {
  char *identity;
  uint8_t *key;
  size_t key_len;
} psk_entry_t;

struct coap_dtls_context {
  psk_entry_t *psk;           /* accepted identities; the last is ours */
  size_t n_psk;
  char *psk_hint;
  gnutls_psk_server_credentials_t psk_server;
  gnutls_psk_client_credentials_t psk_client;
  gnutls_certificate_credentials_t cert;
  int has_cert, has_ca;
  coap_dtls_client_cert_t client_cert;
  int client_cert_explicit;
  int verify_name;
  unsigned mtu, retransmit_ms, total_ms;
  gnutls_priority_t priority;
  gnutls_datum_t cookie_key;
  gnutls_datum_t ticket_key;
  gnutls_dtls_prestate_st prestate; /* of the ClientHello just accepted */
  const coap_logger_t *log;
  char error[512];
};

/* The certificate verify callback installed on the credentials. */
int coap_dtls_verify_peer(gnutls_session_t tls);

/* Look up the key of |identity| (server side). NULL when unknown. */
const psk_entry_t *coap_dtls_psk_find(const coap_dtls_context_t *d,
                                      const char *identity);

#endif
