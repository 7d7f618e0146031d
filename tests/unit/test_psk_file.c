/* The PSK table and its file format (coaps/credentials.h): every shape of
 * line the format takes and every one it refuses, with the line named; the
 * file checks (a directory, a file others may read); lookups after the
 * table has grown many times. */
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

#include "coaps/credentials.h"
#include "coaps/error.h"

static int parse(const char *text, coap_psk_table_t **out, char *why, size_t cap) {
  coap_psk_table_t *t = coap_psk_table_new(0);
  assert_non_null(t);
  int rc = coap_psk_table_parse(t, "psk.txt", text, strlen(text), why, cap);
  *out = t;
  return rc;
}

static void assert_key(const coap_psk_table_t *t, const char *id, const void *key, size_t len) {
  uint8_t buf[COAP_PSK_KEY_MAX];
  int n = coap_psk_table_lookup(t, id, buf, sizeof buf);
  assert_int_equal(n, (int)len);
  assert_memory_equal(buf, key, len);
}

static void test_good_file(void **state) {
  (void)state;
  coap_psk_table_t *t;
  char why[256];
  int rc = parse(
      "# devices of hall 3\n"
      "\n"
      "sensor-1 secret1\n"
      "  sensor-2\thex:00A1ff   # in hex, either case\r\n"
      "sensor-3 k#3\n"
      "last-line-without-newline hex:61",
      &t, why, sizeof why);
  assert_int_equal(rc, 4);
  assert_string_equal(why, "");
  assert_int_equal(coap_psk_table_count(t), 4);
  assert_key(t, "sensor-1", "secret1", 7);
  assert_key(t, "sensor-2", "\x00\xa1\xff", 3);
  assert_key(t, "sensor-3", "k#3", 3); /* '#' inside a field is the field's */
  assert_key(t, "last-line-without-newline", "a", 1);
  assert_int_equal(coap_psk_table_lookup(t, "sensor-4", NULL, 0), COAP_E_NOT_FOUND);
  assert_int_equal(coap_psk_table_lookup(t, "", NULL, 0), COAP_E_NOT_FOUND);
  uint8_t small[2];
  assert_int_equal(coap_psk_table_lookup(t, "sensor-1", small, sizeof small),
                   COAP_E_BUFFER_TOO_SMALL);
  coap_psk_table_free(t);
}

typedef struct bad_case {
  const char *text;
  const char *message; /* what why must start with */
} bad_case_t;

static void test_bad_lines(void **state) {
  (void)state;
  char long_id[80], long_key[80], long_hex[200];
  memset(long_id, 'i', 65);
  long_id[65] = '\0';
  memset(long_key, 'k', 65);
  long_key[65] = '\0';
  strcpy(long_hex, "hex:");
  memset(long_hex + 4, 'a', 130);
  long_hex[134] = '\0';
  char l1[128], l2[128], l3[256];
  snprintf(l1, sizeof l1, "ok key\n%s key\n", long_id);
  snprintf(l2, sizeof l2, "ok key\nid %s\n", long_key);
  snprintf(l3, sizeof l3, "ok key\nid %s\n", long_hex);
  const bad_case_t cases[] = {
      {"ok key\nlonely\n", "psk.txt:2: the identity has no key"},
      {"ok key\n\n# c\na b c\n", "psk.txt:4: more than two fields"},
      {"a hex:0g\n", "psk.txt:1: bad hex in the key (a character"},
      {"a hex:abc\n", "psk.txt:1: bad hex in the key (an odd number"},
      {"a hex:\n", "psk.txt:1: the key is empty"},
      {l1, "psk.txt:2: the identity is longer than 64 bytes"},
      {l2, "psk.txt:2: the key is longer than 64 bytes"},
      {l3, "psk.txt:2: the key is longer than 64 bytes"},
      {"dev k1\nother k2\ndev k3\n",
       "psk.txt:3: the identity 'dev' is given twice (first on line 1)"},
      {"a hex:zz\nb\nc d e\n", "psk.txt:1: bad hex"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    coap_psk_table_t *t;
    char why[256];
    assert_int_equal(parse(cases[i].text, &t, why, sizeof why), COAP_E_DTLS_CREDENTIALS);
    if (strncmp(why, cases[i].message, strlen(cases[i].message)) != 0)
      fail_msg("case %zu: got '%s', want '%s...'", i, why, cases[i].message);
    coap_psk_table_free(t);
  }
  /* Several bad lines: the first is named, the others counted. */
  coap_psk_table_t *t;
  char why[256];
  parse("a hex:zz\nb\nc d e\n", &t, why, sizeof why);
  assert_non_null(strstr(why, "(and 2 more bad lines)"));
  coap_psk_table_free(t);
  /* A NUL byte is named, not taken for the end of the line. */
  t = coap_psk_table_new(0);
  static const char nul[] = "ok key\nev\0il key\n";
  assert_int_equal(coap_psk_table_parse(t, "psk.txt", nul, sizeof nul - 1, why, sizeof why),
                   COAP_E_DTLS_CREDENTIALS);
  assert_string_equal(why, "psk.txt:2: a NUL byte in the line");
  coap_psk_table_free(t);
}

/* Keys never appear in messages, whatever the line. */
static void test_no_key_in_messages(void **state) {
  (void)state;
  coap_psk_table_t *t;
  char why[256];
  parse("dev TOPSECRET\ndev TOPSECRET2\n", &t, why, sizeof why);
  assert_null(strstr(why, "TOPSECRET"));
  coap_psk_table_free(t);
  parse("dev hex:5ECRE7zz\n", &t, why, sizeof why);
  assert_null(strstr(why, "5ECRE7"));
  coap_psk_table_free(t);
}

static void test_add_limits(void **state) {
  (void)state;
  coap_psk_table_t *t = coap_psk_table_new(0);
  uint8_t key[65] = {1};
  assert_int_equal(coap_psk_table_add(t, "a", 1, key, 0), COAP_E_INVALID_ARG);
  assert_int_equal(coap_psk_table_add(t, "a", 1, key, 65), COAP_E_INVALID_ARG);
  assert_int_equal(coap_psk_table_add(t, "", 0, key, 1), COAP_E_INVALID_ARG);
  assert_int_equal(coap_psk_table_add(t, "a\0b", 3, key, 1), COAP_E_INVALID_ARG);
  assert_int_equal(coap_psk_table_add(t, "a", 1, key, 64), 0);
  assert_int_equal(coap_psk_table_add(t, "a", 1, key, 1), COAP_E_EXISTS);
  assert_int_equal(coap_psk_table_count(t), 1);
  /* The reference count: the table lives until the last holder lets go. */
  coap_psk_table_t *other = coap_psk_table_ref(t);
  coap_psk_table_free(t);
  assert_true(coap_psk_table_contains(other, "a"));
  coap_psk_table_free(other);
}

/* 100000 identities through many growths: every one found with its own
 * key, none that was not added. */
static void test_many(void **state) {
  (void)state;
  coap_psk_table_t *t = coap_psk_table_new(0);
  char id[32];
  for (unsigned i = 0; i < 100000; i++) {
    uint8_t key[4] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16), 7};
    int n = snprintf(id, sizeof id, "device-%u", i);
    assert_int_equal(coap_psk_table_add(t, id, (size_t)n, key, sizeof key), 0);
  }
  assert_int_equal(coap_psk_table_count(t), 100000);
  for (unsigned i = 0; i < 100000; i++) {
    uint8_t want[4] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16), 7};
    snprintf(id, sizeof id, "device-%u", i);
    assert_key(t, id, want, sizeof want);
    snprintf(id, sizeof id, "device-%u", i + 100000);
    assert_false(coap_psk_table_contains(t, id));
  }
  assert_true(coap_psk_table_memory(t) < 100000 * 64);
  coap_psk_table_free(t);
}

static char dir[64];

static const char *path_of(const char *name) {
  static char buf[128];
  snprintf(buf, sizeof buf, "%s/%s", dir, name);
  return buf;
}

static void write_file(const char *name, const char *text, mode_t mode) {
  FILE *f = fopen(path_of(name), "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(chmod(path_of(name), mode), 0);
}

static void test_files(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/coaps-pskfile-XXXXXX");
  assert_non_null(mkdtemp(dir));
  coap_psk_table_t *t = NULL;
  char why[512];
  write_file("good", "a key\nb hex:0102\n", 0600);
  assert_int_equal(coap_psk_table_load_file(path_of("good"), 0, &t, why, sizeof why), 2);
  assert_string_equal(why, "");
  assert_key(t, "b", "\x01\x02", 2);
  coap_psk_table_free(t);

  write_file("open", "a key\n", 0644);
  t = NULL;
  assert_int_equal(coap_psk_table_load_file(path_of("open"), 0, &t, why, sizeof why),
                   COAP_E_DTLS_CREDENTIALS);
  assert_null(t);
  assert_non_null(strstr(why, "group or others may read this key file (mode 0644)"));
  assert_non_null(strstr(why, "--allow-insecure-key-files"));
  assert_int_equal(
      coap_psk_table_load_file(path_of("open"), COAP_KEY_FILE_ALLOW_INSECURE, &t, why, sizeof why),
      1);
  assert_non_null(strstr(why, "taken as allowed"));
  coap_psk_table_free(t);

  write_file("bad", "a key\nb hex:1\n", 0600);
  t = NULL;
  assert_int_equal(coap_psk_table_load_file(path_of("bad"), 0, &t, why, sizeof why),
                   COAP_E_DTLS_CREDENTIALS);
  assert_null(t);
  char want[160];
  snprintf(want, sizeof want, "%s:2: bad hex", path_of("bad"));
  assert_memory_equal(why, want, strlen(want));

  assert_int_equal(mkdir(path_of("adir"), 0700), 0);
  assert_int_equal(coap_psk_table_load_file(path_of("adir"), 0, &t, why, sizeof why),
                   COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(why, "is a directory"));
  assert_int_equal(coap_psk_table_load_file(path_of("missing"), 0, &t, why, sizeof why),
                   COAP_E_DTLS_CREDENTIALS);
  assert_non_null(strstr(why, "No such file"));

  write_file("empty", "", 0600);
  assert_int_equal(coap_psk_table_load_file(path_of("empty"), 0, &t, why, sizeof why), 0);
  assert_int_equal(coap_psk_table_count(t), 0);
  coap_psk_table_free(t);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* A table in a DTLS configuration: its identities are known there. */
static void test_in_configuration(void **state) {
  (void)state;
  coap_psk_table_t *t;
  char why[128];
  assert_int_equal(parse("dev-1 key\n", &t, why, sizeof why), 1);
  coap_dtls_context_t *d = coap_dtls_context_new();
  assert_false(coap_dtls_can_serve(d));
  assert_int_equal(coap_dtls_set_psk_table(d, t), 0);
  coap_psk_table_free(t); /* the configuration holds its own reference */
  assert_true(coap_dtls_can_serve(d));
  assert_true(coap_dtls_knows_psk_identity(d, "dev-1"));
  assert_false(coap_dtls_knows_psk_identity(d, "dev-2"));
  assert_false(coap_dtls_trusts_rpk_fingerprint(d, "sha256:00"));
  coap_dtls_context_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_file),
      cmocka_unit_test(test_bad_lines),
      cmocka_unit_test(test_no_key_in_messages),
      cmocka_unit_test(test_add_limits),
      cmocka_unit_test(test_many),
      cmocka_unit_test(test_files),
      cmocka_unit_test(test_in_configuration),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
