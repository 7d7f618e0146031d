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

#define SESSION_CACHE_SIZE 16

/* A client's last session with one server, for resumption. */
typedef struct session_cache_entry {
  char *server_name;
  gnutls_datum_t data;
} session_cache_entry_t;

struct coap_dtls_context {
  session_cache_entry_t cache[SESSION_CACHE_SIZE];
  size_t cache_next;        /* slot replaced next when the cache is full */
  char *session_file;
  int session_file_loaded;
  psk_entry_t *psk;           /* accepted identities; the last is ours */
  size_t n_psk;
  char *psk_hint;
  gnutls_psk_server_credentials_t psk_server;
  gnutls_psk_client_credentials_t psk_client;
  gnutls_certificate_credentials_t cert;
  int has_cert, has_ca, has_rpk;
  gnutls_datum_t own_spki;        /* DER, for the fingerprint */
  gnutls_datum_t *trusted_rpk;    /* DER SubjectPublicKeyInfo each */
  size_t n_trusted_rpk;
  coap_dtls_rpk_verify_fn rpk_verify;
  void *rpk_verify_user;
  coap_dtls_psk_lookup_fn psk_lookup;
  void *psk_lookup_user;
  coap_dtls_client_cert_t client_cert;
  int client_cert_explicit;
  int verify_name;
  unsigned mtu, retransmit_ms, total_ms;
  unsigned max_handshakes;
  gnutls_priority_t priority;
  char *priority_string;          /* the same, as text, to extend per session */
  gnutls_datum_t cookie_key;
  gnutls_datum_t ticket_key;
  gnutls_dtls_prestate_st prestate; /* of the ClientHello just accepted */
  const coap_logger_t *log;
  char error[512];
};

/* Certificate credentials (with our verify callback), made on first use. */
int coap_dtls_ensure_cert_credentials(coap_dtls_context_t *d);

/* The certificate verify callback installed on the credentials. */
int coap_dtls_verify_peer(gnutls_session_t tls);

/* "sha256:aa:bb:..." of a DER SubjectPublicKeyInfo. */
void coap_dtls_spki_fingerprint(const gnutls_datum_t *spki, char *buf, size_t cap);
void coap_dtls_rpk_clear(coap_dtls_context_t *d);
int coap_dtls_rpk_trusted(const coap_dtls_context_t *d, const uint8_t *spki, size_t len);

/* Resumption data for |server_name| (NULL when none), and storing it. */
const gnutls_datum_t *coap_dtls_cache_find(coap_dtls_context_t *d, const char *server_name);
void coap_dtls_cache_clear(coap_dtls_context_t *d);
void coap_dtls_cache_store(coap_dtls_context_t *d, const char *server_name,
                           const gnutls_datum_t *data);

/* Look up the key of |identity| (server side). NULL when unknown. */
const psk_entry_t *coap_dtls_psk_find(const coap_dtls_context_t *d,
                                      const char *identity);

#endif
