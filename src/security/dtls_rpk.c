/* Raw public keys (RFC 7250): the own key pair, the trust list of pinned
 * SubjectPublicKeyInfos, and fingerprints for telling users what to pin. */
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "security/dtls_internal.h"

/* 0, or -1 with errno saying why. A directory opens and then fails to
 * read ("Error while reading file."): it is named for what it is. */
static int read_file(const char *path, gnutls_datum_t *out) {
  struct stat st;
  if (stat(path, &st) < 0) return -1;
  if (S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    return -1;
  }
  errno = 0;
  if (gnutls_load_file(path, out) < 0) {
    if (!errno) errno = EIO;
    return -1;
  }
  return 0;
}

/* Import a private key file and derive its SPKI (DER). Every format
 * --cert/--key takes: PEM "EC PRIVATE KEY" (SEC1) or "PRIVATE KEY"
 * (PKCS#8, what openssl genpkey writes), or either in DER. */
static int key_and_spki(const gnutls_datum_t *raw, gnutls_x509_privkey_t *key,
                        gnutls_datum_t *spki) {
  gnutls_pubkey_t pub = NULL;
  int rc = gnutls_x509_privkey_init(key);
  if (rc >= 0) {
    rc = gnutls_x509_privkey_import2(*key, raw, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (rc < 0 && rc != GNUTLS_E_DECRYPTION_FAILED)
      rc = gnutls_x509_privkey_import2(*key, raw, GNUTLS_X509_FMT_DER, NULL, 0);
  }
  gnutls_privkey_t abstract = NULL;
  if (rc >= 0) rc = gnutls_privkey_init(&abstract);
  if (rc >= 0) rc = gnutls_privkey_import_x509(abstract, *key, 0);
  if (rc >= 0) rc = gnutls_pubkey_init(&pub);
  if (rc >= 0) rc = gnutls_pubkey_import_privkey(pub, abstract, 0, 0);
  if (rc >= 0) rc = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, spki);
  if (pub) gnutls_pubkey_deinit(pub);
  if (abstract) gnutls_privkey_deinit(abstract);
  return rc;
}

int coap_dtls_set_rpk(coap_dtls_context_t *d, const char *key_file) {
  if (!d || !key_file) return COAP_E_INVALID_ARG;
  gnutls_datum_t raw = {NULL, 0}, spki = {NULL, 0}, key_der = {NULL, 0};
  gnutls_x509_privkey_t key = NULL;
  int rc = COAP_E_DTLS_CREDENTIALS;
  if (read_file(key_file, &raw) < 0) {
    if (errno == EISDIR)
      snprintf(d->error, sizeof d->error,
               "raw public key file '%s' is a directory: give the private key file", key_file);
    else
      snprintf(d->error, sizeof d->error, "cannot read raw public key file '%s': %s", key_file,
               strerror(errno));
    goto out;
  }
  int imported = key_and_spki(&raw, &key, &spki);
  if (imported == GNUTLS_E_DECRYPTION_FAILED) {
    snprintf(d->error, sizeof d->error,
             "%s: the private key is encrypted; raw public keys take an unencrypted key "
             "(openssl pkey -in %s -out plain-key.pem)",
             key_file, key_file);
    goto out;
  }
  if (imported < 0) {
    snprintf(d->error, sizeof d->error,
             "%s: not a valid private key (PEM \"EC PRIVATE KEY\" or PKCS#8 \"PRIVATE KEY\", "
             "or DER)",
             key_file);
    goto out;
  }
  unsigned bits = 0;
  if (gnutls_x509_privkey_get_pk_algorithm2(key, &bits) != GNUTLS_PK_ECDSA || bits != 256) {
    snprintf(d->error, sizeof d->error, "%s: raw public keys must be EC P-256 (RFC 7252 §9.1.3.2)",
             key_file);
    goto out;
  }
  if (coap_dtls_ensure_cert_credentials(d) < 0) {
    rc = COAP_E_NOMEM;
    goto out;
  }
  /* PKCS#8, not SEC1: a key read from PKCS#8 has its curve in the
   * algorithm identifier only, and a SEC1 export of it lacks the curve
   * that GnuTLS then needs to import it again. */
  if (gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_DER, NULL, GNUTLS_PKCS_PLAIN,
                                        &key_der) < 0 ||
      gnutls_certificate_set_rawpk_key_mem(d->cert, &spki, &key_der, GNUTLS_X509_FMT_DER, NULL, 0,
                                           NULL, 0, 0) < 0) {
    snprintf(d->error, sizeof d->error, "%s: GnuTLS refused the raw public key", key_file);
    goto out;
  }
  gnutls_free(d->own_spki.data);
  d->own_spki = spki;
  spki.data = NULL;
  d->has_rpk = 1;
  rc = 0;
out:
  if (rc < 0) coap_logf(d->log, COAP_LOG_ERROR, NULL, "%s", d->error);
  if (key) gnutls_x509_privkey_deinit(key);
  if (key_der.data) {
    coap_memzero(key_der.data, key_der.size);
    gnutls_free(key_der.data);
  }
  if (raw.data) {
    coap_memzero(raw.data, raw.size);
    gnutls_free(raw.data);
  }
  gnutls_free(spki.data);
  return rc;
}

int coap_dtls_add_trusted_rpk(coap_dtls_context_t *d, const char *spki_file) {
  if (!d || !spki_file) return COAP_E_INVALID_ARG;
  gnutls_datum_t raw = {NULL, 0}, der = {NULL, 0};
  gnutls_pubkey_t pub = NULL;
  int ok = read_file(spki_file, &raw) == 0 && gnutls_pubkey_init(&pub) >= 0 &&
           (gnutls_pubkey_import(pub, &raw, GNUTLS_X509_FMT_PEM) >= 0 ||
            gnutls_pubkey_import(pub, &raw, GNUTLS_X509_FMT_DER) >= 0) &&
           gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &der) >= 0;
  if (pub) gnutls_pubkey_deinit(pub);
  gnutls_free(raw.data);
  gnutls_datum_t *grown =
      ok ? realloc(d->trusted_rpk, (d->n_trusted_rpk + 1) * sizeof(*grown)) : NULL;
  if (!grown) {
    gnutls_free(der.data);
    snprintf(d->error, sizeof d->error,
             ok ? "out of memory"
                : "%s: not a readable public key (PEM \"PUBLIC KEY\" or DER SubjectPublicKeyInfo)",
             spki_file);
    coap_logf(d->log, COAP_LOG_ERROR, NULL, "%s", d->error);
    return ok ? COAP_E_NOMEM : COAP_E_DTLS_CREDENTIALS;
  }
  d->trusted_rpk = grown;
  d->trusted_rpk[d->n_trusted_rpk++] = der;
  /* A server with pinned client keys asks clients for theirs. */
  if (!d->client_cert_explicit) d->client_cert = COAP_DTLS_CLIENT_CERT_OPTIONAL;
  return coap_dtls_ensure_cert_credentials(d);
}

void coap_dtls_rpk_clear(coap_dtls_context_t *d) {
  for (size_t i = 0; i < d->n_trusted_rpk; i++) gnutls_free(d->trusted_rpk[i].data);
  free(d->trusted_rpk);
  d->trusted_rpk = NULL;
  d->n_trusted_rpk = 0;
  gnutls_free(d->own_spki.data);
  d->own_spki.data = NULL;
}

int coap_dtls_rpk_trusted(const coap_dtls_context_t *d, const uint8_t *spki, size_t len) {
  for (size_t i = 0; i < d->n_trusted_rpk; i++)
    if (d->trusted_rpk[i].size == len && coap_ct_memcmp(d->trusted_rpk[i].data, spki, len) == 0)
      return 1;
  if (!d->rpk_verify) return 0;
  char fp[112];
  gnutls_datum_t key = {(unsigned char *)spki, (unsigned)len};
  coap_dtls_spki_fingerprint(&key, fp, sizeof fp);
  return d->rpk_verify(d->rpk_verify_user, spki, len, fp) == 1;
}

int coap_dtls_set_rpk_verify(coap_dtls_context_t *d, coap_dtls_rpk_verify_fn fn, void *user) {
  if (!d) return COAP_E_INVALID_ARG;
  int rc = coap_dtls_ensure_cert_credentials(d);
  if (rc < 0) return rc;
  d->rpk_verify = fn;
  d->rpk_verify_user = user;
  if (fn && !d->client_cert_explicit) d->client_cert = COAP_DTLS_CLIENT_CERT_OPTIONAL;
  return 0;
}

void coap_dtls_spki_fingerprint(const gnutls_datum_t *spki, char *buf, size_t cap) {
  uint8_t digest[32];
  if (cap < 7 + 3 * sizeof digest ||
      gnutls_hash_fast(GNUTLS_DIG_SHA256, spki->data, spki->size, digest) < 0) {
    if (cap) buf[0] = '\0';
    return;
  }
  size_t n = (size_t)snprintf(buf, cap, "sha256");
  for (size_t i = 0; i < sizeof digest; i++)
    n += (size_t)snprintf(buf + n, cap - n, ":%02x", digest[i]);
}

int coap_dtls_rpk_fingerprint(const coap_dtls_context_t *d, char *buf, size_t cap) {
  if (!d || !buf) return COAP_E_INVALID_ARG;
  if (!d->has_rpk) return COAP_E_NOT_FOUND;
  coap_dtls_spki_fingerprint(&d->own_spki, buf, cap);
  return 0;
}
