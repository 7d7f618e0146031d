/* The security configuration: credentials, checked when they are set so
 * that mistakes surface at start-up with the file and the problem named. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "coaps/credentials.h"
#include "common/util.h"
#include "security/dtls_internal.h"

/* AEAD suites only, DTLS 1.2 only, the RFC 7925 mandatory CCM_8 suites
 * first; ECDHE-PSK and GCM follow for peers that prefer them. Sessions
 * get it narrowed to their credentials (coap_dtls_role_priority). */
static const char default_priority[] =
    "NORMAL:-VERS-ALL:+VERS-DTLS1.2:"
    "-KX-ALL:+ECDHE-ECDSA:+PSK:+ECDHE-PSK:+ECDHE-RSA:"
    "-CIPHER-ALL:+AES-128-CCM-8:+AES-128-GCM:+AES-256-CCM-8:+AES-128-CCM:"
    "+AES-256-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:"
    "+CTYPE-ALL:%SERVER_PRECEDENCE";

__attribute__((format(printf, 2, 3))) static int fail(coap_dtls_context_t *d, const char *fmt,
                                                      ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->error, sizeof d->error, fmt, ap);
  va_end(ap);
  coap_logf(d->log, COAP_LOG_ERROR, NULL, "%s", d->error);
  return COAP_E_DTLS_CREDENTIALS;
}

static int global_init(void) {
  /* GnuTLS initialises itself when the library loads (3.x); nothing else
   * to do, but keep one place to say so. */
  return 0;
}

coap_dtls_context_t *coap_dtls_context_new(void) {
  if (global_init() < 0) return NULL;
  coap_dtls_context_t *d = calloc(1, sizeof(*d));
  if (!d) return NULL;
  d->refs = 1;
  d->verify_name = 1;
  d->mtu = 1280;
  d->retransmit_ms = 1000;
  d->total_ms = 30000;
  d->max_handshakes = 256;
  d->cookie_policy = COAP_DTLS_COOKIE_WHEN_NEEDED;
  d->cid_enabled = 1;
  d->cid_len = COAP_DTLS_CID_DEFAULT_LEN;
  if (!(d->priority_string = strdup(default_priority)) ||
      gnutls_priority_init(&d->priority, default_priority, NULL) < 0 ||
      gnutls_key_generate(&d->cookie_key, GNUTLS_COOKIE_KEY_SIZE) < 0 ||
      gnutls_rnd(GNUTLS_RND_KEY, d->ticket_keys[0], COAP_DTLS_TICKET_KEY_LEN) < 0) {
    coap_dtls_context_free(d);
    return NULL;
  }
  d->n_ticket_keys = 1;
  d->accepted_key = -1;
  return d;
}

static int copy_key(gnutls_datum_t *dst, const gnutls_datum_t *src) {
  if (dst->size != src->size || !dst->data || !src->data) return COAP_E_STATE;
  memcpy(dst->data, src->data, src->size);
  return 0;
}

int coap_dtls_share_keys(coap_dtls_context_t *d, const coap_dtls_context_t *from) {
  if (!d || !from) return COAP_E_INVALID_ARG;
  if (d == from) return 0;
  int rc = copy_key(&d->cookie_key, &from->cookie_key);
  if (rc == 0 && !d->ticket_key_from_file) {
    memcpy(d->ticket_keys, from->ticket_keys, sizeof d->ticket_keys);
    d->n_ticket_keys = from->n_ticket_keys;
    coap_dtls_ticket_keys_changed(d);
  }
  return rc;
}

uint64_t coap_dtls_compacted(const coap_dtls_context_t *d) {
  return d ? d->compacted : 0;
}

void coap_dtls_context_set_logger(coap_dtls_context_t *d, const coap_logger_t *log) {
  d->log = log;
}

coap_dtls_context_t *coap_dtls_context_ref(coap_dtls_context_t *d) {
  if (d) d->refs++;
  return d;
}

int coap_dtls_set_resumption(coap_dtls_context_t *d, int on) {
  if (!d) return COAP_E_INVALID_ARG;
  d->no_resume = !on;
  return 0;
}

static void psk_entry_clear(psk_entry_t *e) {
  free(e->identity);
  coap_memzero(e->key, e->key_len);
  free(e->key);
}

void coap_dtls_context_free(coap_dtls_context_t *d) {
  if (!d) return;
  if (d->refs > 1) {
    /* Another holder goes on. Every holder that is a context lets go
     * while it is still alive, and a context only points d->log at its
     * own logger while it holds a reference: so the logger is still
     * valid here, and a copy of it outlives whichever context goes. */
    d->refs--;
    if (d->log && d->log != &d->log_copy) {
      d->log_copy = *d->log;
      d->log = &d->log_copy;
    }
    return;
  }
  coap_dtls_cache_clear(d);
  coap_dtls_rpk_clear(d);
  free(d->flight);
  for (size_t i = 0; i < d->n_psk; i++) psk_entry_clear(&d->psk[i]);
  free(d->psk);
  free(d->psk_hint);
  coap_psk_table_free(d->psk_table);
  if (d->psk_server) gnutls_psk_free_server_credentials(d->psk_server);
  if (d->psk_client) gnutls_psk_free_client_credentials(d->psk_client);
  if (d->cert) gnutls_certificate_free_credentials(d->cert);
  if (d->priority) gnutls_priority_deinit(d->priority);
  for (int i = 0; i < 2; i++)
    if (d->role_priority[i]) gnutls_priority_deinit(d->role_priority[i]);
  free(d->priority_string);
  if (d->cookie_key.data) {
    coap_memzero(d->cookie_key.data, d->cookie_key.size);
    gnutls_free(d->cookie_key.data);
  }
  coap_memzero(d->ticket_keys, sizeof d->ticket_keys);
  free(d);
}

const char *coap_dtls_context_last_error(const coap_dtls_context_t *d) {
  return d && d->error[0] ? d->error : "no error";
}

/* ---- PSK ---- */

const psk_entry_t *coap_dtls_psk_find(const coap_dtls_context_t *d, const char *identity) {
  for (size_t i = 0; i < d->n_psk; i++)
    if (strcmp(d->psk[i].identity, identity) == 0) return &d->psk[i];
  return NULL;
}

/* GnuTLS asks the server for the key of the identity a client sent. */
static int server_psk_lookup(gnutls_session_t session, const char *username, gnutls_datum_t *key) {
  const coap_dtls_context_t *d = gnutls_session_get_ptr(session);
  coap_dtls_session_note_identity(session, username);
  const psk_entry_t *e = d ? coap_dtls_psk_find(d, username) : NULL;
  if (!e && d && (d->psk_table || d->psk_lookup)) {
    uint8_t buf[64];
    int n = coap_dtls_psk_table_key(d, username, buf, sizeof buf);
    if (n < 0 && d->psk_lookup) n = d->psk_lookup(d->psk_lookup_user, username, buf, sizeof buf);
    if (n <= 0 || (size_t)n > sizeof buf || !(key->data = gnutls_malloc((size_t)n))) {
      coap_memzero(buf, sizeof buf);
      return -1;
    }
    memcpy(key->data, buf, (size_t)n);
    key->size = (unsigned)n;
    coap_memzero(buf, sizeof buf);
    return 0;
  }
  if (!e) return -1; /* unknown identity: the handshake fails */
  key->data = gnutls_malloc(e->key_len);
  if (!key->data) return -1;
  memcpy(key->data, e->key, e->key_len);
  key->size = (unsigned)e->key_len;
  return 0;
}

static int ensure_psk_credentials(coap_dtls_context_t *d) {
  if (!d->psk_server) {
    if (gnutls_psk_allocate_server_credentials(&d->psk_server) < 0) return COAP_E_NOMEM;
    gnutls_psk_set_server_credentials_function(d->psk_server, server_psk_lookup);
  }
  if (!d->psk_client && gnutls_psk_allocate_client_credentials(&d->psk_client) < 0)
    return COAP_E_NOMEM;
  return 0;
}

int coap_dtls_set_psk(coap_dtls_context_t *d, const uint8_t *identity, const uint8_t *key,
                      size_t key_len) {
  if (!d) return COAP_E_INVALID_ARG;
  if (!identity || !*identity)
    return fail(d, "PSK identity is empty: give the identity the server knows you by");
  if (!key || key_len == 0)
    return fail(d, "PSK key for identity '%s' is empty", (const char *)identity);
  if (strlen((const char *)identity) > 128) return fail(d, "PSK identity is longer than 128 bytes");
  if (key_len > 64) return fail(d, "PSK key is longer than 64 bytes");
  int rc = ensure_psk_credentials(d);
  if (rc < 0) return rc;
  psk_entry_t *e = (psk_entry_t *)coap_dtls_psk_find(d, (const char *)identity);
  if (!e) {
    psk_entry_t *grown = realloc(d->psk, (d->n_psk + 1) * sizeof(*grown));
    if (!grown) return COAP_E_NOMEM;
    d->psk = grown;
    e = &d->psk[d->n_psk];
    memset(e, 0, sizeof(*e));
    if (!(e->identity = strdup((const char *)identity))) return COAP_E_NOMEM;
    d->n_psk++;
  } else {
    coap_memzero(e->key, e->key_len);
    free(e->key);
  }
  if (!(e->key = malloc(key_len))) return COAP_E_NOMEM;
  memcpy(e->key, key, key_len);
  e->key_len = key_len;
  gnutls_datum_t k = {e->key, (unsigned)key_len};
  if (gnutls_psk_set_client_credentials(d->psk_client, e->identity, &k, GNUTLS_PSK_KEY_RAW) < 0)
    return fail(d, "GnuTLS refused the PSK for identity '%s'", e->identity);
  return 0;
}

int coap_dtls_set_psk_hex(coap_dtls_context_t *d, const char *identity, const char *hex) {
  if (!d) return COAP_E_INVALID_ARG;
  if (!hex) hex = ""; /* told like an empty key */
  size_t n = strlen(hex);
  uint8_t key[64];
  if (n == 0 || n % 2 || n / 2 > sizeof key)
    return fail(d, "PSK hex key must have an even number of hex digits, 2 to 128");
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1 || !isxdigit((unsigned char)hex[2 * i]) ||
        !isxdigit((unsigned char)hex[2 * i + 1]))
      return fail(d, "PSK hex key has a non-hex character near position %zu", 2 * i);
    key[i] = (uint8_t)v;
  }
  int rc = coap_dtls_set_psk(d, (const uint8_t *)identity, key, n / 2);
  coap_memzero(key, sizeof key);
  return rc;
}

int coap_dtls_set_psk_lookup(coap_dtls_context_t *d, coap_dtls_psk_lookup_fn fn, void *user) {
  if (!d) return COAP_E_INVALID_ARG;
  int rc = ensure_psk_credentials(d);
  if (rc < 0) return rc;
  d->psk_lookup = fn;
  d->psk_lookup_user = user;
  return 0;
}

int coap_dtls_psk_table_install(coap_dtls_context_t *d) {
  return ensure_psk_credentials(d);
}

int coap_dtls_set_psk_hint(coap_dtls_context_t *d, const char *hint) {
  if (!d || !hint) return COAP_E_INVALID_ARG;
  int rc = ensure_psk_credentials(d);
  if (rc < 0) return rc;
  if (gnutls_psk_set_server_credentials_hint(d->psk_server, hint) < 0)
    return fail(d, "GnuTLS refused the PSK identity hint");
  return 0;
}

/* ---- certificates ---- */

/* |dir_ok|: the path may name a directory (a CA directory). Elsewhere a
 * directory passes access(R_OK) and GnuTLS then fails on it with "Error
 * while reading file.", which names neither the path nor the mistake. */
static int check_readable(coap_dtls_context_t *d, const char *what, const char *file, int dir_ok) {
  if (!file || !*file) return fail(d, "no %s file given", what);
  if (access(file, R_OK) != 0)
    return fail(d, "cannot read %s file '%s': %s", what, file, strerror(errno));
  struct stat st;
  if (!dir_ok && stat(file, &st) == 0 && S_ISDIR(st.st_mode))
    return fail(d, "%s: is a directory (give the %s file)", file, what);
  return 0;
}

int coap_dtls_ensure_cert_credentials(coap_dtls_context_t *d) {
  if (d->cert) return 0;
  if (gnutls_certificate_allocate_credentials(&d->cert) < 0) return COAP_E_NOMEM;
  gnutls_certificate_set_verify_function(d->cert, coap_dtls_verify_peer);
  /* Key loaders then return the index of what they added, which is how
   * set_cert finds the key it has to classify. */
  gnutls_certificate_set_flags(d->cert, GNUTLS_CERTIFICATE_API_V2);
  return 0;
}

/* The key exchanges the certificate at |idx| can sign for. A key type we
 * do not know is left to GnuTLS's own certificate selection. */
static unsigned cert_kx_at(gnutls_certificate_credentials_t c, unsigned idx) {
  gnutls_x509_crt_t *crts = NULL;
  unsigned n = 0;
  int pk = -1;
  if (gnutls_certificate_get_x509_crt(c, idx, &crts, &n) >= 0) {
    if (n > 0) pk = gnutls_x509_crt_get_pk_algorithm(crts[0], NULL);
    for (unsigned i = 0; i < n; i++) gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
  }
  switch (pk) {
    case GNUTLS_PK_RSA:
    case GNUTLS_PK_RSA_PSS: return COAP_DTLS_KX_RSA;
    case GNUTLS_PK_ECDSA:
    case GNUTLS_PK_EDDSA_ED25519:
    case GNUTLS_PK_EDDSA_ED448: return COAP_DTLS_KX_ECDSA;
    default: return COAP_DTLS_KX_ECDSA | COAP_DTLS_KX_RSA;
  }
}

int coap_dtls_set_cert(coap_dtls_context_t *d, const char *cert_file, const char *key_file,
                       const char *key_password) {
  if (!d) return COAP_E_INVALID_ARG;
  int rc;
  if ((rc = check_readable(d, "certificate", cert_file, 0)) < 0 ||
      (rc = check_readable(d, "private key", key_file, 0)) < 0 ||
      (rc = coap_dtls_ensure_cert_credentials(d)) < 0)
    return rc;
  rc = gnutls_certificate_set_x509_key_file2(d->cert, cert_file, key_file, GNUTLS_X509_FMT_PEM,
                                             key_password, 0);
  if (rc < 0 && rc != GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
    rc = gnutls_certificate_set_x509_key_file2(d->cert, cert_file, key_file, GNUTLS_X509_FMT_DER,
                                               key_password, 0);
  if (rc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
    return fail(d, "%s: the private key does not match the certificate in %s", key_file, cert_file);
  if (rc == GNUTLS_E_DECRYPTION_FAILED)
    return fail(d, "%s: wrong password for the private key", key_file);
  if (rc < 0)
    return fail(d, "%s / %s: not a valid PEM or DER certificate and private key (%s)", cert_file,
                key_file, gnutls_strerror(rc));
  d->cert_kx |= cert_kx_at(d->cert, (unsigned)rc);
  d->has_cert = 1;
  return 0;
}

int coap_dtls_set_ca(coap_dtls_context_t *d, const char *ca) {
  if (!d) return COAP_E_INVALID_ARG;
  int rc;
  if ((rc = check_readable(d, "CA", ca, 1)) < 0 || (rc = coap_dtls_ensure_cert_credentials(d)) < 0)
    return rc;
  struct stat st;
  int n;
  if (stat(ca, &st) == 0 && S_ISDIR(st.st_mode)) {
    n = gnutls_certificate_set_x509_trust_dir(d->cert, ca, GNUTLS_X509_FMT_PEM);
  } else {
    n = gnutls_certificate_set_x509_trust_file(d->cert, ca, GNUTLS_X509_FMT_PEM);
    if (n <= 0) n = gnutls_certificate_set_x509_trust_file(d->cert, ca, GNUTLS_X509_FMT_DER);
  }
  if (n < 0) return fail(d, "%s: not a valid CA certificate file (%s)", ca, gnutls_strerror(n));
  if (n == 0) return fail(d, "%s: contains no CA certificate", ca);
  d->has_ca = 1;
  if (!d->client_cert_explicit) d->client_cert = COAP_DTLS_CLIENT_CERT_OPTIONAL;
  return 0;
}

int coap_dtls_set_client_cert(coap_dtls_context_t *d, coap_dtls_client_cert_t p) {
  if (!d || p < COAP_DTLS_CLIENT_CERT_NONE || p > COAP_DTLS_CLIENT_CERT_REQUIRED)
    return COAP_E_INVALID_ARG;
  d->client_cert = p;
  d->client_cert_explicit = 1;
  return 0;
}

int coap_dtls_set_verify_peer_name(coap_dtls_context_t *d, int on) {
  if (!d) return COAP_E_INVALID_ARG;
  d->verify_name = on != 0;
  return 0;
}

int coap_dtls_set_mtu(coap_dtls_context_t *d, unsigned mtu) {
  if (!d || mtu < 256 || mtu > 65535) return COAP_E_INVALID_ARG;
  d->mtu = mtu;
  return 0;
}

int coap_dtls_set_handshake_timeouts(coap_dtls_context_t *d, unsigned retransmit_ms,
                                     unsigned total_ms) {
  if (!d || retransmit_ms < 10 || total_ms < retransmit_ms) return COAP_E_INVALID_ARG;
  d->retransmit_ms = retransmit_ms;
  d->total_ms = total_ms;
  return 0;
}

int coap_dtls_set_max_handshakes(coap_dtls_context_t *d, unsigned max) {
  if (!d || max == 0) return COAP_E_INVALID_ARG;
  d->max_handshakes = max;
  return 0;
}

int coap_dtls_set_compact_sessions(coap_dtls_context_t *d, int on) {
  if (!d) return COAP_E_INVALID_ARG;
  d->keep_gnutls = !on;
  return 0;
}

int coap_dtls_set_cookie_policy(coap_dtls_context_t *d, coap_dtls_cookie_policy_t policy,
                                unsigned load) {
  if (!d || policy < COAP_DTLS_COOKIE_ALWAYS || policy > COAP_DTLS_COOKIE_WHEN_NEEDED)
    return COAP_E_INVALID_ARG;
  d->cookie_policy = policy;
  d->cookie_load = load;
  return 0;
}

int coap_dtls_cookie_required(const coap_dtls_context_t *d, unsigned in_progress) {
  switch (d->cookie_policy) {
    case COAP_DTLS_COOKIE_NEVER: return 0;
    case COAP_DTLS_COOKIE_UNDER_LOAD:
    case COAP_DTLS_COOKIE_WHEN_NEEDED:
      return in_progress >= (d->cookie_load ? d->cookie_load : d->max_handshakes / 4);
    default: return 1;
  }
}

unsigned coap_dtls_max_handshakes(const coap_dtls_context_t *d) {
  return d->max_handshakes;
}

/* 13 bytes of record header, 8 of explicit nonce (CCM, GCM), 16 of tag. */
#define RECORD_OVERHEAD_MAX 37

size_t coap_dtls_record_room(const coap_dtls_context_t *d) {
  /* A tls12_cid record: the peer's CID (at most COAP_DTLS_CID_MAX) and
   * the inner content type more. */
  size_t cid = d->cid_enabled ? 1 + COAP_DTLS_CID_MAX : 0;
  return d->mtu - RECORD_OVERHEAD_MAX - cid;
}

int coap_dtls_set_priority(coap_dtls_context_t *d, const char *priority) {
  if (!d || !priority) return COAP_E_INVALID_ARG;
  gnutls_priority_t p;
  const char *where = NULL;
  if (gnutls_priority_init(&p, priority, &where) < 0)
    return fail(d, "bad cipher suite priority string near '%s'", where ? where : priority);
  char *text = strdup(priority);
  if (!text) {
    gnutls_priority_deinit(p);
    return COAP_E_NOMEM;
  }
  gnutls_priority_deinit(d->priority);
  free(d->priority_string);
  d->priority = p;
  d->priority_string = text;
  for (int i = 0; i < 2; i++) {
    if (d->role_priority[i]) gnutls_priority_deinit(d->role_priority[i]);
    d->role_priority[i] = NULL;
    d->role_made_for[i] = 0;
  }
  return 0;
}

/* ---- the priority of each role ---- */

#define SRV_RAWPK_ONLY 0x08u /* a client: the server's raw key is all it can check */
#define CLI_RAWPK_ONLY 0x10u /* a client: a raw key is all it can show */
#define ROLE_MADE 0x80u

/* What a role's credentials let it complete. A server needs the key the
 * exchange signs with (its own raw key is P-256, RFC 7252 §9.1.3.2); a
 * client a way to authenticate the server: a CA, or pinned raw keys,
 * which may be of any type. */
static unsigned role_needs(const coap_dtls_context_t *d, int client) {
  unsigned kx = 0;
  if (client) {
    if (d->n_psk) kx |= COAP_DTLS_KX_PSK;
    if (d->has_ca || d->n_trusted_rpk || d->rpk_verify) kx |= COAP_DTLS_KX_ECDSA | COAP_DTLS_KX_RSA;
    /* It asks only for what it can check, and offers only a raw key of
     * its own when it has no certificate. */
    if ((d->n_trusted_rpk || d->rpk_verify) && !d->has_ca) kx |= SRV_RAWPK_ONLY;
    if (d->has_rpk && !d->has_cert) kx |= CLI_RAWPK_ONLY;
  } else {
    if (d->n_psk || d->psk_lookup || d->psk_table) kx |= COAP_DTLS_KX_PSK;
    if (d->has_cert) kx |= d->cert_kx;
    if (d->has_rpk) kx |= COAP_DTLS_KX_ECDSA;
  }
  return kx | ROLE_MADE;
}

/* gnutls_priority_init accepts a string that leaves no DTLS 1.2 suite. */
static int has_suite(gnutls_priority_t p) {
  for (unsigned i = 0;; i++) {
    unsigned sidx;
    gnutls_kx_algorithm_t kx = GNUTLS_KX_UNKNOWN;
    int rc = gnutls_priority_get_cipher_suite_index(p, i, &sidx);
    if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) return 0;
    if (rc >= 0 && gnutls_cipher_suite_info(sidx, NULL, &kx, NULL, NULL, NULL) &&
        kx != GNUTLS_KX_UNKNOWN)
      return 1;
  }
}

/* Only removals are appended: the configured order (%SERVER_PRECEDENCE,
 * the RFC 7925 CCM_8 suites first) stays as it was. */
static gnutls_priority_t role_priority_make(const char *base, unsigned need, int narrow) {
  size_t cap = strlen(base) + 256;
  char *text = malloc(cap);
  if (!text) return NULL;
  snprintf(text, cap, "%s%s%s%s%s%s", base,
           narrow && !(need & COAP_DTLS_KX_PSK) ? ":-PSK:-ECDHE-PSK:-DHE-PSK:-RSA-PSK" : "",
           narrow && !(need & COAP_DTLS_KX_ECDSA) ? ":-ECDHE-ECDSA" : "",
           narrow && !(need & COAP_DTLS_KX_RSA) ? ":-ECDHE-RSA:-DHE-RSA:-RSA:-RSA-PSK" : "",
           need & SRV_RAWPK_ONLY ? ":-CTYPE-SRV-ALL:+CTYPE-SRV-RAWPK" : "",
           need & CLI_RAWPK_ONLY ? ":-CTYPE-CLI-ALL:+CTYPE-CLI-RAWPK" : "");
  gnutls_priority_t p = NULL;
  if (gnutls_priority_init(&p, text, NULL) < 0) {
    p = NULL;
  } else if (narrow && !has_suite(p)) {
    gnutls_priority_deinit(p);
    p = NULL;
  }
  free(text);
  return p;
}

gnutls_priority_t coap_dtls_role_priority(coap_dtls_context_t *d, int client) {
  client = client != 0;
  unsigned need = role_needs(d, client);
  if (d->role_priority[client] && d->role_made_for[client] == need) return d->role_priority[client];
  gnutls_priority_t p = role_priority_make(d->priority_string, need, 1);
  if (!p && (p = role_priority_make(d->priority_string, need, 0)))
    /* A priority set by hand with no suite these credentials can
     * complete: keep it whole, and the handshake names the mismatch. */
    coap_logf(d->log, COAP_LOG_WARNING, NULL,
              "the cipher suite priority has no key exchange the %s's credentials "
              "can complete",
              client ? "client" : "server");
  if (!p) return NULL;
  if (d->role_priority[client]) gnutls_priority_deinit(d->role_priority[client]);
  d->role_priority[client] = p;
  d->role_made_for[client] = need;
  return p;
}

int coap_dtls_can_connect(const coap_dtls_context_t *d) {
  return d && (d->n_psk > 0 || d->has_ca || d->n_trusted_rpk > 0 || d->rpk_verify);
}

int coap_dtls_can_serve(const coap_dtls_context_t *d) {
  return d && (d->n_psk > 0 || d->psk_lookup || d->psk_table || d->has_cert || d->has_rpk);
}
