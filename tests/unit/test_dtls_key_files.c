/* The files a DTLS configuration reads and writes, checked when they are
 * given: raw public key files in every format --key takes (PKCS#8 as
 * openssl genpkey writes it, whose curve is only in the algorithm
 * identifier), named for what they are when they are not keys; and the
 * session file, which holds a master secret: never a symbolic link, a
 * directory, someone's document, or a place we cannot write. */
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

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "coaps/dtls.h"
#include "coaps/error.h"

/* What `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`
 * wrote: a test key, used nowhere else. */
static const char pkcs8_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgFaa9Vap+h2CGjirh\n"
    "nJ1xcSfzROel5Uh0CoeRiz0eSxehRANCAASMq4WdAI4FjGxJYzqfkQtPbjFEPWPt\n"
    "fL1SzXOGgoPURO6EKmMa0ndeTgwR9GkAsD2Ih6oLzbB+Rx+aGJLSSSX9\n"
    "-----END PRIVATE KEY-----\n";

static char dir[64];

static int setup(void **state) {
  snprintf(dir, sizeof dir, "/tmp/coaps-keyfiles-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static const char *path(const char *name) {
  static char buf[4][128];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

static void write_file(const char *name, const void *data, size_t len, mode_t mode) {
  FILE *f = fopen(path(name), "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(chmod(path(name), mode), 0);
}

static void write_datum(const char *name, const gnutls_datum_t *d) {
  write_file(name, d->data, d->size, 0600);
}

static void assert_error_has(coap_dtls_context_t *d, const char *needle) {
  const char *e = coap_dtls_context_last_error(d);
  if (!strstr(e, needle)) fail_msg("expected '%s' in '%s'", needle, e);
}

static void test_rpk_pkcs8_pem_and_der(void **state) {
  write_file("p8.pem", pkcs8_pem, strlen(pkcs8_pem), 0600);
  gnutls_datum_t pem = {(unsigned char *)pkcs8_pem, (unsigned)strlen(pkcs8_pem)}, der;
  assert_int_equal(gnutls_pem_base64_decode2("PRIVATE KEY", &pem, &der), 0);
  write_datum("p8.der", &der);
  gnutls_free(der.data);

  char fp_pem[112], fp_der[112];
  coap_dtls_context_t *d = coap_dtls_context_new();
  assert_int_equal(coap_dtls_set_rpk(d, path("p8.pem")), 0);
  assert_int_equal(coap_dtls_rpk_fingerprint(d, fp_pem, sizeof fp_pem), 0);
  coap_dtls_context_free(d);
  d = coap_dtls_context_new();
  assert_int_equal(coap_dtls_set_rpk(d, path("p8.der")), 0);
  assert_int_equal(coap_dtls_rpk_fingerprint(d, fp_der, sizeof fp_der), 0);
  coap_dtls_context_free(d);
  assert_string_equal(fp_pem, fp_der);
}

/* SEC1 ("EC PRIVATE KEY") in PEM and DER, as coaps keygen writes them. */
static void test_rpk_sec1(void **state) {
  gnutls_x509_privkey_t k;
  gnutls_datum_t pem, der;
  assert_int_equal(gnutls_x509_privkey_init(&k), 0);
  assert_int_equal(gnutls_x509_privkey_generate(
                       k, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                   0);
  assert_int_equal(gnutls_x509_privkey_export2(k, GNUTLS_X509_FMT_PEM, &pem), 0);
  assert_int_equal(gnutls_x509_privkey_export2(k, GNUTLS_X509_FMT_DER, &der), 0);
  assert_non_null(strstr((const char *)pem.data, "BEGIN EC PRIVATE KEY"));
  write_datum("sec1.pem", &pem);
  write_datum("sec1.der", &der);
  gnutls_free(pem.data);
  gnutls_free(der.data);
  gnutls_x509_privkey_deinit(k);
  const char *files[] = {"sec1.pem", "sec1.der"};
  for (size_t i = 0; i < 2; i++) {
    coap_dtls_context_t *d = coap_dtls_context_new();
    assert_int_equal(coap_dtls_set_rpk(d, path(files[i])), 0);
    coap_dtls_context_free(d);
  }
}

static void test_rpk_refusals_say_why(void **state) {
  gnutls_x509_privkey_t k;
  gnutls_datum_t enc, p384;
  assert_int_equal(gnutls_x509_privkey_init(&k), 0);
  gnutls_datum_t pem = {(unsigned char *)pkcs8_pem, (unsigned)strlen(pkcs8_pem)};
  assert_int_equal(gnutls_x509_privkey_import2(k, &pem, GNUTLS_X509_FMT_PEM, NULL, 0), 0);
  assert_int_equal(gnutls_x509_privkey_export2_pkcs8(k, GNUTLS_X509_FMT_PEM, "pw",
                                                     GNUTLS_PKCS_PBES2_AES_128, &enc),
                   0);
  gnutls_x509_privkey_deinit(k);
  assert_int_equal(gnutls_x509_privkey_init(&k), 0);
  assert_int_equal(gnutls_x509_privkey_generate(
                       k, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1), 0),
                   0);
  assert_int_equal(gnutls_x509_privkey_export2(k, GNUTLS_X509_FMT_PEM, &p384), 0);
  gnutls_x509_privkey_deinit(k);
  write_datum("enc.pem", &enc);
  write_datum("p384.pem", &p384);
  gnutls_free(enc.data);
  gnutls_free(p384.data);
  write_file("junk.pem", "hello\n", 6, 0600);
  assert_int_equal(mkdir(path("keydir"), 0700), 0);

  static const struct {
    const char *file, *why;
  } cases[] = {
      {"keydir", "is a directory"},
      {"missing.pem", "No such file or directory"},
      {"enc.pem", "the private key is encrypted"},
      {"p384.pem", "must be EC P-256"},
      {"junk.pem", "not a valid private key"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    coap_dtls_context_t *d = coap_dtls_context_new();
    assert_int_equal(coap_dtls_set_rpk(d, path(cases[i].file)), COAP_E_DTLS_CREDENTIALS);
    assert_error_has(d, cases[i].why);
    coap_dtls_context_free(d);
  }
}

static int set_session(const char *file, coap_dtls_context_t **out) {
  *out = coap_dtls_context_new();
  return coap_dtls_set_session_file(*out, file);
}

static void test_session_file_accepted(void **state) {
  coap_dtls_context_t *d;
  /* A new name, an empty file, one of ours. */
  assert_int_equal(set_session(path("new-session"), &d), 0);
  coap_dtls_context_free(d);
  write_file("empty", "", 0, 0644);
  assert_int_equal(set_session(path("empty"), &d), 0);
  coap_dtls_context_free(d);
  write_file("ours", "coaps-session 1 host\nxx", 23, 0644);
  assert_int_equal(set_session(path("ours"), &d), 0);
  coap_dtls_context_free(d);
  /* Nothing is written before there is a session to keep. */
  assert_int_equal(access(path("new-session"), F_OK), -1);
}

static void test_session_file_refused(void **state) {
  write_file("target", "not yours\n", 10, 0644);
  write_file("notes.txt", "my notes, long enough\n", 22, 0644);
  assert_int_equal(symlink(path("target"), path("link")), 0);
  assert_int_equal(symlink(path("nothing"), path("dangling")), 0);
  assert_int_equal(mkdir(path("sessions"), 0700), 0);
  static const struct {
    const char *file, *why;
  } cases[] = {
      {"link", "is a symbolic link"},
      {"dangling", "is a symbolic link"},
      {"sessions", "is a directory"},
      {"notes.txt", "not a coaps session file: not overwriting it"},
      {"no/such/dir/session", "its directory is missing"},
      {"target/session", "Not a directory"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    coap_dtls_context_t *d;
    assert_int_equal(set_session(path(cases[i].file), &d), COAP_E_DTLS_CREDENTIALS);
    assert_error_has(d, cases[i].why);
    coap_dtls_context_free(d);
  }
  struct stat st;
  assert_int_equal(lstat(path("link"), &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  assert_int_equal(access(path("nothing"), F_OK), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rpk_pkcs8_pem_and_der), cmocka_unit_test(test_rpk_sec1),
      cmocka_unit_test(test_rpk_refusals_say_why),  cmocka_unit_test(test_session_file_accepted),
      cmocka_unit_test(test_session_file_refused),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
