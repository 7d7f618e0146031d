/* Certificates for tests, made with GnuTLS in a temporary directory: a CA
 * and certificates with chosen names and validity dates. */
#ifndef SUPPORT_CERTS_H
#define SUPPORT_CERTS_H

#include <time.h>

typedef struct test_ca {
  void *crt, *key;     /* gnutls_x509_crt_t, gnutls_x509_privkey_t */
  char cert_path[256]; /* PEM */
} test_ca_t;

/* A fresh temporary directory for one test's files (removed by
 * certs_cleanup). Returns its path. */
const char *certs_dir(void);
void certs_cleanup(void);

/* A self-signed CA named |cn|, written to <dir>/<file>. */
void certs_make_ca(test_ca_t *ca, const char *cn, const char *file);
void certs_free_ca(test_ca_t *ca);

/* A certificate for |cn| with an IP and/or DNS subjectAltName (either may
 * be NULL), valid from |from| to |until|, signed by |ca|; PEM files
 * <dir>/<base>-cert.pem and <dir>/<base>-key.pem, paths returned. */
void certs_issue(const test_ca_t *ca, const char *base, const char *cn, const char *ip,
                 const char *dns, time_t from, time_t until, char *cert_path, char *key_path);

/* An EC P-256 key pair for raw public keys: <base>-key.pem and
 * <base>-pub.pem (SubjectPublicKeyInfo). */
void certs_make_rpk(const char *base, char *key_path, char *pub_path);

#endif
