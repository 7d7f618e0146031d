#include "support_certs.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>

static char dir[64];

const char *certs_dir(void) {
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "/tmp/coaps-certs-XXXXXX");
    assert_non_null(mkdtemp(dir));
  }
  return dir;
}

void certs_cleanup(void) {
  if (!dir[0]) return;
  DIR *dp = opendir(dir);
  struct dirent *e;
  while (dp && (e = readdir(dp))) {
    if (e->d_name[0] == '.') continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  if (dp) closedir(dp);
  rmdir(dir);
  dir[0] = '\0';
}

static void write_pem(const char *path, const gnutls_datum_t *pem) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(pem->data, 1, pem->size, f), pem->size);
  fclose(f);
}

static gnutls_x509_privkey_t new_key(void) {
  gnutls_x509_privkey_t key;
  assert_int_equal(gnutls_x509_privkey_init(&key), 0);
  assert_int_equal(gnutls_x509_privkey_generate(
                       key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                   0);
  return key;
}

static gnutls_x509_crt_t new_crt(gnutls_x509_privkey_t key, const char *cn, time_t from,
                                 time_t until) {
  static unsigned serial = 1;
  gnutls_x509_crt_t crt;
  assert_int_equal(gnutls_x509_crt_init(&crt), 0);
  assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
  assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
  unsigned char sn[4] = {0, 0, (unsigned char)(serial >> 8), (unsigned char)serial};
  serial++;
  assert_int_equal(gnutls_x509_crt_set_serial(crt, sn, sizeof sn), 0);
  assert_int_equal(
      gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn)),
      0);
  assert_int_equal(gnutls_x509_crt_set_activation_time(crt, from), 0);
  assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, until), 0);
  return crt;
}

void certs_make_ca(test_ca_t *ca, const char *cn, const char *file) {
  gnutls_x509_privkey_t key = new_key();
  time_t now = time(NULL);
  gnutls_x509_crt_t crt = new_crt(key, cn, now - 86400, now + 365 * 86400);
  assert_int_equal(gnutls_x509_crt_set_basic_constraints(crt, 1, -1), 0);
  assert_int_equal(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN), 0);
  assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
  gnutls_datum_t pem;
  assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem), 0);
  snprintf(ca->cert_path, sizeof ca->cert_path, "%s/%s", certs_dir(), file);
  write_pem(ca->cert_path, &pem);
  gnutls_free(pem.data);
  ca->crt = crt;
  ca->key = key;
}

void certs_free_ca(test_ca_t *ca) {
  if (ca->crt) gnutls_x509_crt_deinit(ca->crt);
  if (ca->key) gnutls_x509_privkey_deinit(ca->key);
  ca->crt = ca->key = NULL;
}

void certs_issue(const test_ca_t *ca, const char *base, const char *cn, const char *ip,
                 const char *dns, time_t from, time_t until, char *cert_path, char *key_path) {
  gnutls_x509_privkey_t key = new_key();
  gnutls_x509_crt_t crt = new_crt(key, cn, from, until);
  if (ip) {
    unsigned char raw[4];
    assert_int_equal(inet_pton(AF_INET, ip, raw), 1);
    assert_int_equal(
        gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, raw, 4, GNUTLS_FSAN_APPEND),
        0);
  }
  if (dns)
    assert_int_equal(gnutls_x509_crt_set_subject_alt_name(
                         crt, GNUTLS_SAN_DNSNAME, dns, (unsigned)strlen(dns), GNUTLS_FSAN_APPEND),
                     0);
  assert_int_equal(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE), 0);
  assert_int_equal(gnutls_x509_crt_sign2(crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0), 0);
  gnutls_datum_t pem;
  assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem), 0);
  snprintf(cert_path, 256, "%s/%s-cert.pem", certs_dir(), base);
  write_pem(cert_path, &pem);
  gnutls_free(pem.data);
  assert_int_equal(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &pem), 0);
  snprintf(key_path, 256, "%s/%s-key.pem", certs_dir(), base);
  write_pem(key_path, &pem);
  gnutls_free(pem.data);
  gnutls_x509_crt_deinit(crt);
  gnutls_x509_privkey_deinit(key);
}

void certs_make_rpk(const char *base, char *key_path, char *pub_path) {
  gnutls_x509_privkey_t key = new_key();
  gnutls_privkey_t priv;
  gnutls_pubkey_t pub;
  gnutls_datum_t pem;
  assert_int_equal(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &pem), 0);
  snprintf(key_path, 256, "%s/%s-key.pem", certs_dir(), base);
  write_pem(key_path, &pem);
  gnutls_free(pem.data);
  assert_int_equal(gnutls_privkey_init(&priv), 0);
  assert_int_equal(gnutls_privkey_import_x509(priv, key, GNUTLS_PRIVKEY_IMPORT_AUTO_RELEASE), 0);
  assert_int_equal(gnutls_pubkey_init(&pub), 0);
  assert_int_equal(gnutls_pubkey_import_privkey(pub, priv, 0, 0), 0);
  assert_int_equal(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_PEM, &pem), 0);
  snprintf(pub_path, 256, "%s/%s-pub.pem", certs_dir(), base);
  write_pem(pub_path, &pem);
  gnutls_free(pem.data);
  gnutls_pubkey_deinit(pub);
  gnutls_privkey_deinit(priv);
}
