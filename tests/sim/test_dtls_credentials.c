/* Credentials that change while a node runs, on the simulated network: a
 * PSK server given a certificate or a raw key later serves clients that
 * have only those; a server with nothing but a PSK lookup callback takes
 * a client that also offers certificate suites; a new priority string
 * applies to new sessions and leaves running ones alone; and a path that
 * names a directory is refused by the setters that want a file, saying
 * so, while a CA directory works. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "coaps/dtls.h"
#include "support_certs.h"
#include "support_reply.h"
#include "support_simnet.h"

static simnet_t net;
static simnet_node_t *server, *client;
static test_ca_t ca;
static char server_cert[256], server_key[256];
static char rpk_key[256], rpk_pub[256];
static char subdir[2][512]; /* made by a test, removed in teardown */
static char subdir_file[600];

/* GCM only: the default puts CCM_8 first, so a session on this string is
 * told apart by its suite. */
static const char gcm_only[] =
    "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+AES-128-GCM:"
    "-MAC-ALL:+AEAD:%SERVER_PRECEDENCE";

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hi", 2);
}

static void add_hello(simnet_node_t *node) {
  coap_resource_t *r = coap_resource_add(node->ctx, "hello");
  coap_resource_set_handler(r, COAP_GET, hello, NULL);
}

static int setup(void **state) {
  simnet_init(&net);
  server = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL); /* 10.0.0.1 */
  client = simnet_add_node(&net, 40000, COAP_PROTO_DTLS, NULL);
  add_hello(server);
  certs_make_ca(&ca, "test CA", "ca.pem");
  time_t now = time(NULL);
  certs_issue(&ca, "server", "server", "10.0.0.1", "server.test", now - 3600, now + 86400,
              server_cert, server_key);
  certs_make_rpk("rpk", rpk_key, rpk_pub);
  subdir[0][0] = subdir[1][0] = subdir_file[0] = '\0';
  return 0;
}

static int teardown(void **state) {
  simnet_free(&net);
  if (subdir_file[0]) unlink(subdir_file);
  for (int i = 0; i < 2; i++)
    if (subdir[i][0]) rmdir(subdir[i]);
  certs_free_ca(&ca);
  certs_cleanup(); /* files only: the directories above go first */
  return 0;
}

static coap_dtls_context_t *dtls(simnet_node_t *node) {
  coap_dtls_context_t *d = coap_dtls_new_context(node->ctx);
  assert_non_null(d);
  assert_int_equal(coap_context_set_dtls_context(node->ctx, d), 0);
  return d;
}

static void set_psk(coap_dtls_context_t *d, const char *id, const char *key) {
  assert_int_equal(coap_dtls_set_psk(d, (const uint8_t *)id, (const uint8_t *)key, strlen(key)), 0);
}

/* A GET of /hello from |from| to |host|, and the client's handshake report
 * of the session it ran on. */
static void get_from(simnet_node_t *from, const char *host, sim_reply_t *b,
                     coap_handshake_report_t *rep) {
  char uri[64];
  snprintf(uri, sizeof uri, "coaps://%s/hello", host);
  sim_get(from, uri, b, 120000);
  memset(rep, 0, sizeof *rep);
  coap_context_last_handshake(from->ctx, rep);
}

static void expect_served(const sim_reply_t *b, const coap_handshake_report_t *rep,
                          const char *mode, const char *suite_part) {
  assert_int_equal(b->status, 0);
  assert_int_equal(b->code, COAP_CONTENT);
  assert_string_equal(b->payload, "hi");
  assert_true(rep->established);
  assert_string_equal(rep->mode, mode);
  if (!strstr(rep->suite, suite_part))
    fail_msg("suite %s, expected one with %s", rep->suite, suite_part);
}

static uint64_t handshakes(simnet_node_t *node) {
  coap_stats_t st;
  coap_context_get_stats(node->ctx, &st);
  return st.dtls_handshakes;
}

/* ---- credentials added to a running PSK server ---- */

/* The server's session priority is made for its credentials and kept:
 * what it was made for must follow the credentials, or a server that
 * served PSK first goes on refusing every certificate suite. */
static void test_psk_server_given_certificate_later(void **state) {
  coap_dtls_context_t *sd = dtls(server);
  set_psk(sd, "device-1", "0123456789abcdef");
  coap_dtls_context_t *cd = dtls(client);
  set_psk(cd, "device-1", "0123456789abcdef");
  sim_reply_t b;
  coap_handshake_report_t rep;
  get_from(client, "10.0.0.1", &b, &rep);
  expect_served(&b, &rep, "psk", "PSK");

  /* A client with only a CA: nothing in common yet. */
  assert_int_equal(simnet_node_restart(client), 0);
  cd = dtls(client);
  assert_int_equal(coap_dtls_set_ca(cd, ca.cert_path), 0);
  get_from(client, "10.0.0.1", &b, &rep);
  assert_int_equal(b.status, COAP_E_DTLS_HANDSHAKE);
  assert_int_equal(b.cause, COAP_CAUSE_NO_COMMON_SUITE);

  assert_int_equal(coap_dtls_set_cert(sd, server_cert, server_key, NULL), 0);
  assert_int_equal(simnet_node_restart(client), 0);
  cd = dtls(client);
  assert_int_equal(coap_dtls_set_ca(cd, ca.cert_path), 0);
  get_from(client, "10.0.0.1", &b, &rep);
  expect_served(&b, &rep, "x509", "ECDHE_ECDSA");

  /* ...and PSK clients are still served. */
  assert_int_equal(simnet_node_restart(client), 0);
  cd = dtls(client);
  set_psk(cd, "device-1", "0123456789abcdef");
  get_from(client, "10.0.0.1", &b, &rep);
  expect_served(&b, &rep, "psk", "PSK");
}

static void test_psk_server_given_raw_key_later(void **state) {
  coap_dtls_context_t *sd = dtls(server);
  set_psk(sd, "device-1", "0123456789abcdef");
  coap_dtls_context_t *cd = dtls(client);
  set_psk(cd, "device-1", "0123456789abcdef");
  sim_reply_t b;
  coap_handshake_report_t rep;
  get_from(client, "10.0.0.1", &b, &rep);
  expect_served(&b, &rep, "psk", "PSK");

  assert_int_equal(coap_dtls_set_rpk(sd, rpk_key), 0);
  assert_int_equal(simnet_node_restart(client), 0);
  cd = dtls(client);
  assert_int_equal(coap_dtls_add_trusted_rpk(cd, rpk_pub), 0);
  get_from(client, "10.0.0.1", &b, &rep);
  expect_served(&b, &rep, "rpk", "ECDHE_ECDSA");
  assert_true(strncmp(rep.peer_rpk, "sha256:", 7) == 0);
}

/* ---- a server whose only PSK credential is a lookup callback ---- */

static unsigned lookups;
static char looked_up[64];

static int lookup(void *user, const char *identity, uint8_t *key, size_t cap) {
  lookups++;
  snprintf(looked_up, sizeof looked_up, "%s", identity);
  if (strcmp(identity, "device-7") != 0 || cap < 16) return -1;
  memcpy(key, "0123456789abcdef", 16);
  return 16;
}

/* The client also holds a CA, so it offers certificate suites too, and
 * GnuTLS's server, which prefers ECDHE-ECDSA, takes one when it is not
 * told that a lookup callback is all it has. */
static void test_lookup_only_server_takes_psk_from_a_client_offering_certificates(void **state) {
  lookups = 0;
  looked_up[0] = '\0';
  coap_dtls_context_t *sd = dtls(server);
  assert_int_equal(coap_dtls_set_psk_lookup(sd, lookup, NULL), 0);
  coap_dtls_context_t *cd = dtls(client);
  set_psk(cd, "device-7", "0123456789abcdef");
  assert_int_equal(coap_dtls_set_ca(cd, ca.cert_path), 0);
  sim_reply_t b;
  coap_handshake_report_t rep;
  get_from(client, "10.0.0.1", &b, &rep);
  expect_served(&b, &rep, "psk", "PSK");
  assert_true(lookups >= 1);
  assert_string_equal(looked_up, "device-7");
}

/* ---- a new priority string, with sessions running ---- */

static void test_server_priority_set_with_sessions_running(void **state) {
  coap_dtls_context_t *sd = dtls(server);
  set_psk(sd, "device-1", "0123456789abcdef");
  coap_dtls_context_t *cd = dtls(client);
  set_psk(cd, "device-1", "0123456789abcdef");
  sim_reply_t b;
  coap_handshake_report_t rep;
  get_from(client, "10.0.0.1", &b, &rep);
  expect_served(&b, &rep, "psk", "CCM_8");

  assert_int_equal(coap_dtls_set_priority(sd, gcm_only), 0);
  /* The running session goes on as it was: no new handshake. */
  uint64_t before = handshakes(server);
  get_from(client, "10.0.0.1", &b, &rep);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(handshakes(server), before);

  /* A new client gets the new string. */
  simnet_node_t *other = simnet_add_node(&net, 40001, COAP_PROTO_DTLS, NULL);
  assert_non_null(other);
  set_psk(dtls(other), "device-1", "0123456789abcdef");
  get_from(other, "10.0.0.1", &b, &rep);
  expect_served(&b, &rep, "psk", "GCM");
  assert_int_equal(handshakes(server), before + 1);
}

static void test_client_priority_set_with_sessions_running(void **state) {
  set_psk(dtls(server), "device-1", "0123456789abcdef");
  simnet_node_t *server2 = simnet_add_node(&net, 5684, COAP_PROTO_DTLS, NULL); /* 10.0.0.3 */
  assert_non_null(server2);
  add_hello(server2);
  set_psk(dtls(server2), "device-1", "0123456789abcdef");
  coap_dtls_context_t *cd = dtls(client);
  set_psk(cd, "device-1", "0123456789abcdef");
  sim_reply_t b;
  coap_handshake_report_t rep;
  get_from(client, "10.0.0.1", &b, &rep);
  expect_served(&b, &rep, "psk", "CCM_8");

  assert_int_equal(coap_dtls_set_priority(cd, gcm_only), 0);
  uint64_t before = handshakes(client);
  get_from(client, "10.0.0.1", &b, &rep);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_int_equal(handshakes(client), before);

  get_from(client, "10.0.0.3", &b, &rep);
  expect_served(&b, &rep, "psk", "GCM");
  assert_int_equal(handshakes(client), before + 1);
}

/* ---- paths that name a directory ---- */

static void expect_error_has(const coap_dtls_context_t *d, const char *what) {
  const char *e = coap_dtls_context_last_error(d);
  if (!e || !strstr(e, what)) fail_msg("error '%s', expected it to say '%s'", e ? e : "", what);
}

static void test_directory_for_a_file_is_named(void **state) {
  snprintf(subdir[0], sizeof subdir[0], "%s/keydir", certs_dir());
  assert_int_equal(mkdir(subdir[0], 0700), 0);
  char said[600];
  snprintf(said, sizeof said, "%s: is a directory", subdir[0]);

  coap_dtls_context_t *d = coap_dtls_context_new();
  assert_non_null(d);
  assert_int_equal(coap_dtls_set_cert(d, subdir[0], server_key, NULL), COAP_E_DTLS_CREDENTIALS);
  expect_error_has(d, said);
  expect_error_has(d, "certificate");
  assert_int_equal(coap_dtls_set_cert(d, server_cert, subdir[0], NULL), COAP_E_DTLS_CREDENTIALS);
  expect_error_has(d, said);
  expect_error_has(d, "private key");
  assert_int_equal(coap_dtls_set_rpk(d, subdir[0]), COAP_E_DTLS_CREDENTIALS);
  expect_error_has(d, "is a directory");
  assert_int_equal(coap_dtls_set_session_file(d, subdir[0]), COAP_E_DTLS_CREDENTIALS);
  expect_error_has(d, "is a directory");
  assert_int_equal(coap_dtls_add_trusted_rpk(d, subdir[0]), COAP_E_DTLS_CREDENTIALS);
  /* Nothing half-loaded stays behind: the right files still work. */
  assert_int_equal(coap_dtls_set_cert(d, server_cert, server_key, NULL), 0);
  coap_dtls_context_free(d);
}

/* A CA may be a directory: a client trusting one completes a handshake
 * with certificates; an empty one is refused, not taken as trusting
 * nobody in silence. */
static void test_ca_directory_still_works(void **state) {
  snprintf(subdir[0], sizeof subdir[0], "%s/cadir", certs_dir());
  assert_int_equal(mkdir(subdir[0], 0700), 0);
  snprintf(subdir_file, sizeof subdir_file, "%s/ca.pem", subdir[0]);
  FILE *in = fopen(ca.cert_path, "rb"), *out = fopen(subdir_file, "wb");
  assert_non_null(in);
  assert_non_null(out);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
  fclose(in);
  assert_int_equal(fclose(out), 0);

  coap_dtls_context_t *sd = dtls(server);
  assert_int_equal(coap_dtls_set_cert(sd, server_cert, server_key, NULL), 0);
  coap_dtls_context_t *cd = dtls(client);
  assert_int_equal(coap_dtls_set_ca(cd, subdir[0]), 0);
  sim_reply_t b;
  coap_handshake_report_t rep;
  get_from(client, "10.0.0.1", &b, &rep);
  expect_served(&b, &rep, "x509", "ECDHE_ECDSA");

  snprintf(subdir[1], sizeof subdir[1], "%s/emptydir", certs_dir());
  assert_int_equal(mkdir(subdir[1], 0700), 0);
  coap_dtls_context_t *d = coap_dtls_context_new();
  assert_non_null(d);
  assert_int_equal(coap_dtls_set_ca(d, subdir[1]), COAP_E_DTLS_CREDENTIALS);
  expect_error_has(d, "no CA certificate");
  coap_dtls_context_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_psk_server_given_certificate_later, setup, teardown),
      cmocka_unit_test_setup_teardown(test_psk_server_given_raw_key_later, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_lookup_only_server_takes_psk_from_a_client_offering_certificates, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_priority_set_with_sessions_running, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_priority_set_with_sessions_running, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_directory_for_a_file_is_named, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ca_directory_still_works, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
