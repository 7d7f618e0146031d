/* A directory of trusted raw public keys (coap_dtls_add_trusted_rpk_dir):
 * every regular file not starting with '.' is one key, in name order; an
 * empty directory adds none; a file that is not a key is named; a file or
 * a missing path given as the directory is refused. The fingerprints of
 * the keys added are trusted (coap_dtls_trusts_rpk_fingerprint), others
 * not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "coaps/credentials.h"
#include "coaps/error.h"

static char dir[64];

static const char *path_of(const char *name) {
  static char buf[4][160];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

static void write_datum(const char *path, const gnutls_datum_t *d) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(d->data, 1, d->size, f), d->size);
  assert_int_equal(fclose(f), 0);
}

/* A new P-256 key: its private key in |key_name|, public in |pub_path|. */
static void make_key(const char *key_name, const char *pub_path) {
  gnutls_x509_privkey_t k;
  gnutls_pubkey_t pub;
  gnutls_datum_t out = {NULL, 0};
  assert_int_equal(gnutls_x509_privkey_init(&k), 0);
  assert_int_equal(gnutls_x509_privkey_generate(
                       k, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                   0);
  assert_int_equal(gnutls_x509_privkey_export2(k, GNUTLS_X509_FMT_PEM, &out), 0);
  write_datum(path_of(key_name), &out);
  gnutls_free(out.data);
  gnutls_privkey_t pk;
  assert_int_equal(gnutls_privkey_init(&pk), 0);
  assert_int_equal(gnutls_privkey_import_x509(pk, k, 0), 0);
  assert_int_equal(gnutls_pubkey_init(&pub), 0);
  assert_int_equal(gnutls_pubkey_import_privkey(pub, pk, 0, 0), 0);
  gnutls_privkey_deinit(pk);
  assert_int_equal(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_PEM, &out), 0);
  write_datum(pub_path, &out);
  gnutls_free(out.data);
  gnutls_pubkey_deinit(pub);
  gnutls_x509_privkey_deinit(k);
}

/* The fingerprint of the key in |key_name|, as the library writes it. */
static void fingerprint_of(const char *key_name, char *fp, size_t cap) {
  coap_dtls_context_t *d = coap_dtls_context_new();
  assert_int_equal(coap_dtls_set_rpk(d, path_of(key_name)), 0);
  assert_int_equal(coap_dtls_rpk_fingerprint(d, fp, cap), 0);
  coap_dtls_context_free(d);
}

static void test_directory_of_keys(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/coaps-rpkdir-XXXXXX");
  assert_non_null(mkdtemp(dir));
  assert_int_equal(mkdir(path_of("trusted"), 0700), 0);
  assert_int_equal(mkdir(path_of("empty"), 0700), 0);
  make_key("a-key.pem", path_of("trusted/a.pem"));
  make_key("b-key.pem", path_of("trusted/b.pem"));
  make_key("c-key.pem", path_of("c-pub.pem")); /* not in the directory */
  make_key("h-key.pem", path_of("trusted/.hidden.pem"));
  assert_int_equal(mkdir(path_of("trusted/subdir"), 0700), 0);
  char fa[128], fb[128], fc[128], fh[128];
  fingerprint_of("a-key.pem", fa, sizeof fa);
  fingerprint_of("b-key.pem", fb, sizeof fb);
  fingerprint_of("c-key.pem", fc, sizeof fc);
  fingerprint_of("h-key.pem", fh, sizeof fh);

  coap_dtls_context_t *d = coap_dtls_context_new();
  assert_int_equal(coap_dtls_add_trusted_rpk_dir(d, path_of("trusted")), 2);
  assert_true(coap_dtls_trusts_rpk_fingerprint(d, fa));
  assert_true(coap_dtls_trusts_rpk_fingerprint(d, fb));
  assert_false(coap_dtls_trusts_rpk_fingerprint(d, fc));
  assert_false(coap_dtls_trusts_rpk_fingerprint(d, fh)); /* dot files are skipped */
  assert_true(coap_dtls_can_connect(d));
  coap_dtls_context_free(d);

  d = coap_dtls_context_new();
  assert_int_equal(coap_dtls_add_trusted_rpk_dir(d, path_of("empty")), 0);
  assert_false(coap_dtls_can_connect(d));
  assert_int_equal(coap_dtls_add_trusted_rpk_dir(d, path_of("c-pub.pem")), COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(coap_dtls_context_last_error(d), "is not a directory"));
  assert_int_equal(coap_dtls_add_trusted_rpk_dir(d, path_of("missing")), COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(coap_dtls_context_last_error(d), "No such file"));
  coap_dtls_context_free(d);

  /* A file in it that is not a key: named. */
  FILE *f = fopen(path_of("trusted/notes.txt"), "w");
  assert_non_null(f);
  fputs("not a key\n", f);
  fclose(f);
  d = coap_dtls_context_new();
  assert_int_equal(coap_dtls_add_trusted_rpk_dir(d, path_of("trusted")), COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(coap_dtls_context_last_error(d), "notes.txt: not a readable public key"));
  coap_dtls_context_free(d);

  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_directory_of_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
