/* The NULL-argument policy (include/coaps/coaps.h, "NULL arguments"):
 * every public function, given NULL for a pointer argument, neither
 * crashes nor misbehaves: where NULL is an error it returns its failure
 * value (COAP_E_INVALID_ARG for an int, NULL for a pointer, 0 for a
 * count, ...), a void function does nothing, and where NULL means
 * something (defaults, "clear", an optional output) it is documented at
 * the function and exercised here too.
 *
 * Each function's calls run in a child process (fork), so a crash names
 * the function instead of ending the test; run under ASan (COAPS_SANITIZE)
 * a read through NULL or a leak fails the child as well.
 *
 * Coverage is checked against the headers: every COAPS_API function
 * declared in include/coaps/ *.h must have an entry in |cases| below (with
 * its calls, or marked as taking no pointer), so a new public function
 * without a NULL check fails this test until it gets one. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "coaps/coaps.h"
#include "coaps/seed.h"

/* ---- checks inside a child ---- */

static const char *current;

static void bad(const char *call, long long got) {
  fprintf(stderr, "%s: %s gave %lld\n", current, call, got);
  fflush(stderr);
  _exit(1);
}

#define WANT_INT(call, want)                         \
  do {                                               \
    long long got_ = (long long)(call);              \
    if (got_ != (long long)(want)) bad(#call, got_); \
  } while (0)
#define WANT_NULL(call)                              \
  do {                                               \
    if ((call) != NULL) bad(#call " (not NULL)", 1); \
  } while (0)
#define WANT_NONNULL(call)                       \
  do {                                           \
    if ((call) == NULL) bad(#call " (NULL)", 0); \
  } while (0)
#define WANT_STR(call, want)                                         \
  do {                                                               \
    const char *got_ = (call);                                       \
    if (!got_ || strcmp(got_, want) != 0) bad(#call " (string)", 0); \
  } while (0)
#define RUNS(call) (void)(call)
#define INVALID COAP_E_INVALID_ARG

/* ---- a fixture every child inherits ---- */

static coap_context_t *ctx;
static coap_endpoint_t *ep;
static coap_resource_t *res;
static coap_dtls_context_t *dtls;
static coap_address_t addr;
static coap_msg_t msg;
static coap_uri_t uri;
static uint8_t datagram[64];
static size_t datagram_len;
static char buf[256];

static int drop_send(void *user, coap_endpoint_t *e, const coap_address_t *to, const uint8_t *data,
                     size_t len) {
  return 0;
}
static int no_client_endpoint(void *user, coap_context_t *c, coap_proto_t proto,
                              const coap_address_t *dest, coap_endpoint_t **out) {
  return COAP_E_STATE;
}
static void reply_cb(coap_context_t *c, const coap_reply_t *r, void *user) {}
static void trace_cb(void *user, int out, const coap_address_t *p, const coap_msg_t *m) {}

static void fixture(void) {
  ctx = coap_context_new(NULL);
  assert_non_null(ctx);
  static const coap_transport_t t = {.send = drop_send, .open_client_endpoint = no_client_endpoint};
  coap_context_set_transport(ctx, &t, NULL);
  assert_int_equal(coap_address_from_string(&addr, "192.0.2.1", 5683), 0);
  ep = coap_context_add_endpoint(ctx, COAP_PROTO_UDP, &addr);
  assert_non_null(ep);
  res = coap_resource_add(ctx, "x");
  assert_non_null(res);
  dtls = coap_dtls_context_new();
  assert_non_null(dtls);
  /* CON GET /x?a=1, token 7e */
  const uint8_t get[] = {0x41, 0x01, 0x12, 0x34, 0x7e, 0xb1, 'x', 0x43, 'a', '=', '1'};
  memcpy(datagram, get, sizeof get);
  datagram_len = sizeof get;
  assert_int_equal(coap_msg_parse(&msg, datagram, datagram_len), 0);
  assert_int_equal(coap_uri_parse(&uri, "coap://192.0.2.1/x"), 0);
}

/* ---- the cases: one per public function ---- */

static void n_coap_address_init(void) {
  RUNS(coap_address_init(NULL));
}
static void n_coap_address_set_port(void) {
  RUNS(coap_address_set_port(NULL, 1));
}
static void n_coap_address_get_port(void) {
  WANT_INT(coap_address_get_port(NULL), 0);
}
static void n_coap_address_from_string(void) {
  coap_address_t a;
  WANT_INT(coap_address_from_string(NULL, "192.0.2.1", 1), INVALID);
  WANT_INT(coap_address_from_string(&a, NULL, 1), INVALID);
}
static void n_coap_address_format(void) {
  WANT_STR(coap_address_format(NULL, buf, sizeof buf), "");
  WANT_STR(coap_address_format(&addr, NULL, 10), "");
}
static void n_coap_address_equal(void) {
  WANT_INT(coap_address_equal(NULL, &addr), 0);
  WANT_INT(coap_address_equal(&addr, NULL), 0);
}
static void n_coap_tx_params_default(void) {
  WANT_INT(coap_tx_params_default(NULL), INVALID);
}
static void n_coap_context_config_default(void) {
  WANT_INT(coap_context_config_default(NULL), INVALID);
}
static void n_coap_context_new(void) {
  coap_context_t *c = coap_context_new(NULL); /* NULL: defaults */
  WANT_NONNULL(c);
  coap_context_free(c);
}
static void n_coap_context_free(void) {
  RUNS(coap_context_free(NULL));
}
static void n_coap_context_set_tx_params(void) {
  coap_tx_params_t p;
  coap_tx_params_default(&p);
  WANT_INT(coap_context_set_tx_params(NULL, &p), INVALID);
  WANT_INT(coap_context_set_tx_params(ctx, NULL), INVALID);
}
static void n_coap_context_set_log_level(void) {
  RUNS(coap_context_set_log_level(NULL, COAP_LOG_DEBUG));
}
static void n_coap_context_set_transport(void) {
  static const coap_transport_t t = {.send = drop_send};
  WANT_INT(coap_context_set_transport(NULL, &t, NULL), INVALID);
  WANT_INT(coap_context_set_transport(ctx, NULL, NULL), INVALID); /* the transport stays */
  WANT_INT(coap_context_input(ctx, ep, &addr, datagram, datagram_len, 1), 0);
}
static void n_coap_context_add_endpoint(void) {
  WANT_NULL(coap_context_add_endpoint(NULL, COAP_PROTO_UDP, &addr));
  WANT_NONNULL(coap_context_add_endpoint(ctx, COAP_PROTO_UDP, NULL)); /* informative */
}
static void n_coap_endpoint_proto(void) {
  WANT_INT(coap_endpoint_proto(NULL), COAP_PROTO_UDP);
}
static void n_coap_endpoint_address(void) {
  WANT_NULL(coap_endpoint_address(NULL));
}
static void n_coap_endpoint_set_transport_data(void) {
  RUNS(coap_endpoint_set_transport_data(NULL, buf));
}
static void n_coap_endpoint_transport_data(void) {
  WANT_NULL(coap_endpoint_transport_data(NULL));
}
static void n_coap_context_input(void) {
  WANT_INT(coap_context_input(NULL, ep, &addr, datagram, datagram_len, 1), INVALID);
  WANT_INT(coap_context_input(ctx, NULL, &addr, datagram, datagram_len, 1), INVALID);
  WANT_INT(coap_context_input(ctx, ep, NULL, datagram, datagram_len, 1), INVALID);
  WANT_INT(coap_context_input(ctx, ep, &addr, NULL, datagram_len, 1), INVALID);
}
static void n_coap_context_input_to(void) {
  WANT_INT(coap_context_input_to(NULL, ep, &addr, &addr, datagram, datagram_len, 1), INVALID);
  WANT_INT(coap_context_input_to(ctx, NULL, &addr, &addr, datagram, datagram_len, 1), INVALID);
  WANT_INT(coap_context_input_to(ctx, ep, NULL, &addr, datagram, datagram_len, 1), INVALID);
  WANT_INT(coap_context_input_to(ctx, ep, &addr, &addr, NULL, datagram_len, 1), INVALID);
  /* NULL |local|: coap_context_input */
  WANT_INT(coap_context_input_to(ctx, ep, &addr, NULL, datagram, datagram_len, 1), 0);
}
static void n_coap_context_input_unreachable(void) {
  RUNS(coap_context_input_unreachable(NULL, ep, &addr, 1));
  RUNS(coap_context_input_unreachable(ctx, NULL, &addr, 1));
  RUNS(coap_context_input_unreachable(ctx, ep, NULL, 1));
}
static void n_coap_context_input_icmp(void) {
  WANT_INT(coap_context_input_icmp(NULL, ep, &addr, datagram, 4, 1), COAP_E_INVALID_ARG);
  WANT_INT(coap_context_input_icmp(ctx, NULL, &addr, datagram, 4, 1), COAP_E_INVALID_ARG);
  WANT_INT(coap_context_input_icmp(ctx, ep, NULL, datagram, 4, 1), COAP_E_INVALID_ARG);
  WANT_INT(coap_context_input_icmp(ctx, ep, &addr, NULL, 4, 1), COAP_E_INVALID_ARG);
  /* No quote: nothing of ours, ignored. */
  WANT_INT(coap_context_input_icmp(ctx, ep, &addr, NULL, 0, 1), 0);
}
static void n_coap_context_next_timeout(void) {
  WANT_INT(coap_context_next_timeout(NULL) == UINT64_MAX, 1);
}
static void n_coap_context_handle_timeouts(void) {
  RUNS(coap_context_handle_timeouts(NULL, 1));
}
static void n_coap_resource_add(void) {
  WANT_NULL(coap_resource_add(NULL, "y"));
  WANT_NULL(coap_resource_add(ctx, NULL));
}
static void n_coap_resource_create(void) {
  coap_resource_t *r = res;
  WANT_INT(coap_resource_create(NULL, "y", &r), INVALID);
  WANT_NULL(r);
  WANT_INT(coap_resource_create(ctx, NULL, &r), INVALID);
  WANT_INT(coap_resource_create(ctx, "y", NULL), INVALID);
}
static void n_coap_resource_find(void) {
  WANT_NULL(coap_resource_find(NULL, "x"));
  WANT_NULL(coap_resource_find(ctx, NULL));
}
static void n_coap_resource_remove(void) {
  WANT_INT(coap_resource_remove(NULL, res), INVALID);
  WANT_INT(coap_resource_remove(ctx, NULL), INVALID);
}
static void handler(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                    coap_response_t *resp, void *user) {}
static void n_coap_resource_set_handler(void) {
  WANT_INT(coap_resource_set_handler(NULL, COAP_GET, handler, NULL), INVALID);
  WANT_INT(coap_resource_set_handler(res, COAP_GET, NULL, NULL), 0); /* removes it */
}
static void n_coap_resource_set_attr(void) {
  WANT_INT(coap_resource_set_attr(NULL, "rt", "t"), INVALID);
  WANT_INT(coap_resource_set_attr(res, NULL, "t"), INVALID);
  WANT_INT(coap_resource_set_attr(res, "obs", NULL), 0); /* a flag */
}
static void n_coap_resource_set_accepted_formats(void) {
  const int f[] = {0};
  WANT_INT(coap_resource_set_accepted_formats(NULL, f, 1), INVALID);
  WANT_INT(coap_resource_set_accepted_formats(res, NULL, 1), INVALID);
  WANT_INT(coap_resource_set_accepted_formats(res, NULL, 0), 0); /* no list */
}
static void n_coap_resource_set_hidden(void) {
  RUNS(coap_resource_set_hidden(NULL, 1));
}
static void n_coap_resource_path(void) {
  WANT_NULL(coap_resource_path(NULL));
}
static void n_coap_context_max_body(void) {
  WANT_INT(coap_context_max_body(NULL), 0);
}
static void n_coap_resource_set_observable(void) {
  WANT_INT(coap_resource_set_observable(NULL, 1), INVALID);
}
static void n_coap_resource_notify(void) {
  WANT_INT(coap_resource_notify(NULL), INVALID);
}
static void n_coap_resource_observer_count(void) {
  WANT_INT(coap_resource_observer_count(NULL), 0);
}

/* The request and response functions need a live request: they run in a
 * GET handler, given NULL next to the real request and response. */
static void (*in_handler)(const coap_request_t *req, coap_response_t *resp);
static int handler_ran;

static void run_handler(coap_context_t *c, coap_resource_t *r, const coap_request_t *req,
                        coap_response_t *resp, void *user) {
  handler_ran = 1;
  in_handler(req, resp);
}

static void through_handler(void (*fn)(const coap_request_t *, coap_response_t *)) {
  in_handler = fn;
  assert_int_equal(coap_resource_set_handler(res, COAP_GET, run_handler, NULL), 0);
  WANT_INT(coap_context_input(ctx, ep, &addr, datagram, datagram_len, 1), 0);
  WANT_INT(handler_ran, 1);
}

static void h_request_getters(const coap_request_t *req, coap_response_t *resp) {
  size_t len = 99;
  WANT_NULL(coap_request_msg(NULL));
  WANT_INT(coap_request_method(NULL), 0);
  WANT_NULL(coap_request_peer(NULL));
  WANT_INT(coap_request_proto(NULL), COAP_PROTO_UDP);
  WANT_INT(coap_request_is_notification(NULL), 0);
  WANT_NULL(coap_request_payload(NULL, &len));
  WANT_INT(len, 0);
  RUNS(coap_request_payload(req, NULL)); /* the length is optional */
  WANT_INT(coap_request_query(NULL, "a", buf, sizeof buf), INVALID);
  WANT_INT(coap_request_query(req, NULL, buf, sizeof buf), INVALID);
  WANT_INT(coap_request_query(req, "a", NULL, sizeof buf), INVALID);
  WANT_INT(coap_request_query(req, "a", buf, sizeof buf), 1);
}
static void n_coap_request_msg(void) {
  through_handler(h_request_getters);
}
#define n_coap_request_method n_coap_request_msg
#define n_coap_request_peer n_coap_request_msg
#define n_coap_request_proto n_coap_request_msg
#define n_coap_request_is_notification n_coap_request_msg
#define n_coap_request_payload n_coap_request_msg
#define n_coap_request_query n_coap_request_msg

static void h_response_setters(const coap_request_t *req, coap_response_t *resp) {
  RUNS(coap_response_set_code(NULL, COAP_CONTENT));
  WANT_INT(coap_response_set_payload(NULL, COAP_FORMAT_NONE, "a", 1), INVALID);
  WANT_INT(coap_response_set_payload(resp, COAP_FORMAT_NONE, NULL, 3), INVALID);
  WANT_INT(coap_response_set_payload(resp, COAP_FORMAT_NONE, NULL, 0), 0); /* empty */
  WANT_INT(coap_response_add_option(NULL, 2049, "a", 1), INVALID);
  WANT_INT(coap_response_add_option(resp, 2049, NULL, 2), INVALID);
  WANT_INT(coap_response_add_uint(NULL, 14, 1), INVALID);
  WANT_INT(coap_response_set_max_age(NULL, 1), INVALID);
  WANT_INT(coap_response_set_etag(NULL, "ab", 2), INVALID);
  WANT_INT(coap_response_set_etag(resp, NULL, 2), INVALID);
  WANT_INT(coap_response_add_location_path(NULL, "a"), INVALID);
  WANT_INT(coap_response_add_location_path(resp, NULL), INVALID);
}
static void n_coap_response_set_code(void) {
  through_handler(h_response_setters);
}
#define n_coap_response_set_payload n_coap_response_set_code
#define n_coap_response_add_option n_coap_response_set_code
#define n_coap_response_add_uint n_coap_response_set_code
#define n_coap_response_set_max_age n_coap_response_set_code
#define n_coap_response_set_etag n_coap_response_set_code
#define n_coap_response_add_location_path n_coap_response_set_code

static coap_deferred_t *deferred;
static void h_defer(const coap_request_t *req, coap_response_t *resp) {
  WANT_NULL(coap_request_defer(NULL, resp));
  WANT_NULL(coap_request_defer(req, NULL));
  deferred = coap_request_defer(req, resp);
  WANT_NONNULL(deferred);
}
static void n_coap_request_defer(void) {
  through_handler(h_defer);
  WANT_NULL(coap_deferred_response(NULL));
  WANT_INT(coap_deferred_send(NULL, deferred), INVALID);
  WANT_INT(coap_deferred_send(ctx, NULL), INVALID);
  WANT_INT(coap_deferred_send(ctx, deferred), 0); /* still there after the NULLs */
}
#define n_coap_deferred_response n_coap_request_defer
#define n_coap_deferred_send n_coap_request_defer

static void n_coap_request_opts_init(void) {
  coap_request_opts_t o;
  WANT_INT(coap_request_opts_init(NULL, COAP_GET, "coap://192.0.2.1/x"), INVALID);
  WANT_INT(coap_request_opts_init(&o, COAP_GET, NULL), 0); /* the URI set later */
}
static void n_coap_send_request(void) {
  coap_request_opts_t o;
  coap_request_id_t id;
  coap_request_opts_init(&o, COAP_GET, "coap://192.0.2.1/x");
  WANT_INT(coap_send_request(NULL, &o, reply_cb, NULL, &id), INVALID);
  WANT_INT(coap_send_request(ctx, NULL, reply_cb, NULL, &id), INVALID);
  coap_request_opts_init(&o, COAP_GET, NULL);
  WANT_INT(coap_send_request(ctx, &o, reply_cb, NULL, &id), INVALID);
}
static void n_coap_cancel_request(void) {
  WANT_INT(coap_cancel_request(NULL, 1), INVALID);
}
static void n_coap_observe_cancel(void) {
  WANT_INT(coap_observe_cancel(NULL, 1), INVALID);
}
static void n_coap_request_blocking(void) {
  coap_request_opts_t o;
  coap_response_copy_t out;
  coap_request_opts_init(&o, COAP_GET, "coap://192.0.2.1/x");
  WANT_INT(coap_request_blocking(NULL, &o, &out), INVALID);
  WANT_INT(coap_request_blocking(ctx, NULL, &out), INVALID);
  WANT_INT(coap_request_blocking(ctx, &o, NULL), INVALID);
}
static void n_coap_response_copy_clear(void) {
  WANT_INT(coap_response_copy_clear(NULL), 0);
}
static void n_coap_context_set_trace(void) {
  RUNS(coap_context_set_trace(NULL, trace_cb, NULL));
  RUNS(coap_context_set_trace(ctx, NULL, NULL)); /* off */
}
static void n_coap_context_failure(void) {
  coap_failure_record_t rec;
  WANT_INT(coap_context_failure(NULL, 0, &rec), INVALID);
  WANT_INT(coap_context_failure(ctx, 0, NULL), INVALID);
}
static void log_event(void *user, const coap_log_event_t *event) {}
static void n_coap_context_set_log_event_handler(void) {
  RUNS(coap_context_set_log_event_handler(NULL, log_event, NULL));
  RUNS(coap_context_set_log_event_handler(ctx, NULL, NULL)); /* the line handler again */
}
static void n_coap_context_dtls(void) {
  WANT_NULL(coap_context_dtls(NULL));
}
static void n_coap_context_last_error(void) {
  WANT_STR(coap_context_last_error(NULL), "");
}
static void n_coap_context_last_diag(void) {
  coap_diag_t d;
  WANT_INT(coap_context_last_diag(NULL, &d), INVALID);
  WANT_INT(coap_context_last_diag(ctx, NULL), INVALID);
}
static void n_coap_context_last_handshake(void) {
  coap_handshake_report_t r;
  WANT_INT(coap_context_last_handshake(NULL, &r), INVALID);
  WANT_INT(coap_context_last_handshake(ctx, NULL), INVALID);
}
static void n_coap_context_get_stats(void) {
  coap_stats_t s;
  memset(&s, 0xff, sizeof s);
  WANT_INT(coap_context_get_stats(NULL, &s), INVALID);
  WANT_INT(s.rx_datagrams == UINT64_MAX, 1); /* nothing written */
  WANT_INT(coap_context_get_stats(ctx, NULL), INVALID);
}

/* diag.h */
static void n_coap_cause_from_name(void) {
  WANT_INT(coap_cause_from_name(NULL), INVALID);
}

/* dtls.h */
static void n_coap_dtls_new_context(void) {
  coap_dtls_context_t *d = coap_dtls_new_context(NULL); /* NULL: the caller's to free */
  WANT_NONNULL(d);
  coap_dtls_context_free(d);
}
static void n_coap_dtls_context_free(void) {
  RUNS(coap_dtls_context_free(NULL));
}
static void n_coap_dtls_context_ref(void) {
  WANT_NULL(coap_dtls_context_ref(NULL));
}
static void n_coap_context_set_dtls_context(void) {
  WANT_INT(coap_context_set_dtls_context(NULL, dtls), INVALID);
  WANT_INT(coap_context_set_dtls_context(ctx, NULL), INVALID);
}
static void n_coap_dtls_context_last_error(void) {
  WANT_STR(coap_dtls_context_last_error(NULL), "no error");
}
static void n_coap_dtls_set_psk(void) {
  const uint8_t key[4] = {1, 2, 3, 4};
  WANT_INT(coap_dtls_set_psk(NULL, (const uint8_t *)"id", key, 4), INVALID);
  /* a NULL credential is told like an empty one, with the reason */
  WANT_INT(coap_dtls_set_psk(dtls, NULL, key, 4), COAP_E_DTLS_CREDENTIALS);
  WANT_INT(strcmp(coap_dtls_context_last_error(dtls), "no error") != 0, 1);
  WANT_INT(coap_dtls_set_psk(dtls, (const uint8_t *)"id", NULL, 4), COAP_E_DTLS_CREDENTIALS);
}
static void n_coap_dtls_set_psk_hex(void) {
  WANT_INT(coap_dtls_set_psk_hex(NULL, "id", "0102"), INVALID);
  WANT_INT(coap_dtls_set_psk_hex(dtls, NULL, "0102"), COAP_E_DTLS_CREDENTIALS);
  WANT_INT(coap_dtls_set_psk_hex(dtls, "id", NULL), COAP_E_DTLS_CREDENTIALS);
}
static int psk_lookup(void *user, const char *identity, uint8_t *key, size_t cap) {
  return 0;
}
static void n_coap_dtls_set_psk_lookup(void) {
  WANT_INT(coap_dtls_set_psk_lookup(NULL, psk_lookup, NULL), INVALID);
  WANT_INT(coap_dtls_set_psk_lookup(dtls, NULL, NULL), 0); /* none */
}
static void n_coap_dtls_set_psk_hint(void) {
  WANT_INT(coap_dtls_set_psk_hint(NULL, "h"), INVALID);
  WANT_INT(coap_dtls_set_psk_hint(dtls, NULL), INVALID);
}
static void n_coap_dtls_set_cert(void) {
  WANT_INT(coap_dtls_set_cert(NULL, "c.pem", "k.pem", NULL), INVALID);
  WANT_INT(coap_dtls_set_cert(dtls, NULL, "k.pem", NULL), COAP_E_DTLS_CREDENTIALS);
  WANT_INT(coap_dtls_set_cert(dtls, "c.pem", NULL, NULL), COAP_E_DTLS_CREDENTIALS);
}
static void n_coap_dtls_set_ca(void) {
  WANT_INT(coap_dtls_set_ca(NULL, "ca.pem"), INVALID);
  WANT_INT(coap_dtls_set_ca(dtls, NULL), COAP_E_DTLS_CREDENTIALS);
}
static void n_coap_dtls_set_client_cert(void) {
  WANT_INT(coap_dtls_set_client_cert(NULL, COAP_DTLS_CLIENT_CERT_REQUIRED), INVALID);
}
static void n_coap_dtls_set_verify_peer_name(void) {
  WANT_INT(coap_dtls_set_verify_peer_name(NULL, 1), INVALID);
}
static void n_coap_dtls_set_session_file(void) {
  WANT_INT(coap_dtls_set_session_file(NULL, "s"), INVALID);
  WANT_INT(coap_dtls_set_session_file(dtls, NULL), INVALID);
}
static void n_coap_dtls_set_resumption(void) {
  WANT_INT(coap_dtls_set_resumption(NULL, 1), INVALID);
}
static void n_coap_dtls_share_keys(void) {
  WANT_INT(coap_dtls_share_keys(NULL, dtls), INVALID);
  WANT_INT(coap_dtls_share_keys(dtls, NULL), INVALID);
}
static void n_coap_dtls_set_rpk(void) {
  WANT_INT(coap_dtls_set_rpk(NULL, "k.pem"), INVALID);
  WANT_INT(coap_dtls_set_rpk(dtls, NULL), INVALID);
}
static void n_coap_dtls_add_trusted_rpk(void) {
  WANT_INT(coap_dtls_add_trusted_rpk(NULL, "k.pem"), INVALID);
  WANT_INT(coap_dtls_add_trusted_rpk(dtls, NULL), INVALID);
}
static int rpk_verify(void *user, const uint8_t *spki, size_t len, const char *host) {
  return 0;
}
static void n_coap_dtls_set_rpk_verify(void) {
  WANT_INT(coap_dtls_set_rpk_verify(NULL, rpk_verify, NULL), INVALID);
  WANT_INT(coap_dtls_set_rpk_verify(dtls, NULL, NULL), 0); /* none */
}
static void n_coap_dtls_rpk_fingerprint(void) {
  WANT_INT(coap_dtls_rpk_fingerprint(NULL, buf, sizeof buf), INVALID);
  WANT_INT(coap_dtls_rpk_fingerprint(dtls, NULL, sizeof buf), INVALID);
}
static void n_coap_dtls_set_mtu(void) {
  WANT_INT(coap_dtls_set_mtu(NULL, 1200), INVALID);
}
static void n_coap_dtls_set_handshake_timeouts(void) {
  WANT_INT(coap_dtls_set_handshake_timeouts(NULL, 1000, 10000), INVALID);
}
static void n_coap_dtls_set_max_handshakes(void) {
  WANT_INT(coap_dtls_set_max_handshakes(NULL, 10), INVALID);
}
static void n_coap_dtls_set_cookie_policy(void) {
  WANT_INT(coap_dtls_set_cookie_policy(NULL, COAP_DTLS_COOKIE_ALWAYS, 0), INVALID);
}
static void n_coap_dtls_set_compact_sessions(void) {
  WANT_INT(coap_dtls_set_compact_sessions(NULL, 1), INVALID);
}
static void n_coap_dtls_set_priority(void) {
  WANT_INT(coap_dtls_set_priority(NULL, "NORMAL"), INVALID);
  WANT_INT(coap_dtls_set_priority(dtls, NULL), INVALID);
}
static void n_coap_dtls_set_cid(void) {
  WANT_INT(coap_dtls_set_cid(NULL, 1, 8), INVALID);
}
static void n_coap_dtls_set_cid_worker(void) {
  WANT_INT(coap_dtls_set_cid_worker(NULL, 1), INVALID);
}
static void n_coap_dtls_set_cid_node(void) {
  WANT_INT(coap_dtls_set_cid_node(NULL, 1), INVALID);
}
static void n_coap_dtls_set_client_cid(void) {
  const uint8_t cid[4] = {1, 2, 3, 4};
  WANT_INT(coap_dtls_set_client_cid(NULL, cid, 4), INVALID);
  WANT_INT(coap_dtls_set_client_cid(dtls, NULL, 4), INVALID);
  WANT_INT(coap_dtls_set_client_cid(dtls, NULL, 0), 0); /* none */
}
static void n_coap_dtls_last_cid(void) {
  coap_dtls_cid_info_t info;
  WANT_INT(coap_dtls_last_cid(NULL, &info), INVALID);
  WANT_INT(coap_dtls_last_cid(dtls, NULL), INVALID);
}
static void n_coap_dtls_cid_stats(void) {
  coap_dtls_cid_stats_t st;
  WANT_INT(coap_dtls_cid_stats(NULL, &st), INVALID);
  WANT_INT(coap_dtls_cid_stats(dtls, NULL), INVALID);
}
static void n_coap_dtls_can_connect(void) {
  WANT_INT(coap_dtls_can_connect(NULL), 0);
}
static void n_coap_dtls_can_serve(void) {
  WANT_INT(coap_dtls_can_serve(NULL), 0);
}

/* credentials.h */
static void n_coap_psk_table_ref(void) {
  WANT_NULL(coap_psk_table_ref(NULL));
}
static void n_coap_psk_table_free(void) {
  RUNS(coap_psk_table_free(NULL));
}
static void n_coap_psk_table_add(void) {
  coap_psk_table_t *t = coap_psk_table_new(0);
  const uint8_t key[] = {1};
  WANT_INT(coap_psk_table_add(NULL, "id", 2, key, 1), INVALID);
  WANT_INT(coap_psk_table_add(t, NULL, 2, key, 1), INVALID);
  WANT_INT(coap_psk_table_add(t, "id", 2, NULL, 1), INVALID);
  WANT_INT(coap_psk_table_count(t), 0);
  coap_psk_table_free(t);
}
static void n_coap_psk_table_lookup(void) {
  coap_psk_table_t *t = coap_psk_table_new(0);
  const uint8_t key[] = {1};
  WANT_INT(coap_psk_table_add(t, "id", 2, key, 1), 0);
  uint8_t out[8];
  WANT_INT(coap_psk_table_lookup(NULL, "id", out, sizeof out), COAP_E_NOT_FOUND);
  WANT_INT(coap_psk_table_lookup(t, NULL, out, sizeof out), COAP_E_NOT_FOUND);
  WANT_INT(coap_psk_table_lookup(t, "id", NULL, 0), COAP_E_BUFFER_TOO_SMALL);
  coap_psk_table_free(t);
}
static void n_coap_psk_table_contains(void) {
  coap_psk_table_t *t = coap_psk_table_new(0);
  WANT_INT(coap_psk_table_contains(NULL, "id"), 0);
  WANT_INT(coap_psk_table_contains(t, NULL), 0);
  coap_psk_table_free(t);
}
static void n_coap_psk_table_count(void) {
  WANT_INT(coap_psk_table_count(NULL), 0);
}
static void n_coap_psk_table_memory(void) {
  WANT_INT(coap_psk_table_memory(NULL), 0);
}
static void n_coap_psk_table_parse(void) {
  coap_psk_table_t *t = coap_psk_table_new(0);
  WANT_INT(coap_psk_table_parse(NULL, "f", "a b\n", 4, buf, sizeof buf), INVALID);
  WANT_INT(coap_psk_table_parse(t, "f", NULL, 4, buf, sizeof buf), INVALID);
  WANT_INT(coap_psk_table_parse(t, NULL, NULL, 0, NULL, 0), 0);    /* nothing to parse */
  WANT_INT(coap_psk_table_parse(t, NULL, "a b\n", 4, NULL, 0), 1); /* no name, no message */
  coap_psk_table_free(t);
}
static void n_coap_psk_table_load_file(void) {
  coap_psk_table_t *t = NULL;
  WANT_INT(coap_psk_table_load_file(NULL, 0, &t, buf, sizeof buf), INVALID);
  WANT_INT(coap_psk_table_load_file("/nonexistent/psk.txt", 0, NULL, buf, sizeof buf), INVALID);
  WANT_INT(coap_psk_table_load_file("/nonexistent/psk.txt", 0, &t, NULL, 0),
           COAP_E_DTLS_CREDENTIALS);
  WANT_NULL(t);
}
static void n_coap_dtls_set_ticket_keys(void) {
  WANT_INT(coap_dtls_set_ticket_keys(NULL, "", 0), INVALID);
  WANT_INT(coap_dtls_set_ticket_keys(dtls, NULL, 4), INVALID);
}
static void n_coap_dtls_load_ticket_key_file(void) {
  WANT_INT(coap_dtls_load_ticket_key_file(NULL, "/nonexistent/keys", 0, buf, sizeof buf), INVALID);
  WANT_INT(coap_dtls_load_ticket_key_file(dtls, NULL, 0, buf, sizeof buf), INVALID);
  WANT_INT(coap_dtls_load_ticket_key_file(dtls, "/nonexistent/keys", 0, NULL, 0),
           COAP_E_DTLS_CREDENTIALS);
}
static void n_coap_dtls_set_psk_table(void) {
  coap_psk_table_t *t = coap_psk_table_new(0);
  WANT_INT(coap_dtls_set_psk_table(NULL, t), INVALID);
  WANT_INT(coap_dtls_set_psk_table(dtls, NULL), 0); /* none */
  coap_psk_table_free(t);
}
static void n_coap_dtls_add_trusted_rpk_dir(void) {
  WANT_INT(coap_dtls_add_trusted_rpk_dir(NULL, "/tmp"), INVALID);
  WANT_INT(coap_dtls_add_trusted_rpk_dir(dtls, NULL), INVALID);
}
static void n_coap_dtls_trusts_rpk_fingerprint(void) {
  WANT_INT(coap_dtls_trusts_rpk_fingerprint(NULL, "sha256:00"), 0);
  WANT_INT(coap_dtls_trusts_rpk_fingerprint(dtls, NULL), 0);
}
static void n_coap_dtls_knows_psk_identity(void) {
  WANT_INT(coap_dtls_knows_psk_identity(NULL, "id"), 0);
  WANT_INT(coap_dtls_knows_psk_identity(dtls, NULL), 0);
}
static void n_coap_context_end_sessions(void) {
  WANT_INT(coap_context_end_sessions(NULL, NULL, NULL), 0);
  WANT_INT(coap_context_end_sessions(ctx, NULL, NULL), 0); /* all of none */
}
static void n_coap_context_export_sessions(void) {
  const uint8_t key[32] = {0};
  uint8_t out[64];
  WANT_INT(coap_context_export_sessions(NULL, key, 32, 1, 0, out, sizeof out, NULL), INVALID);
  WANT_INT(coap_context_export_sessions(ctx, NULL, 32, 1, 0, out, sizeof out, NULL), INVALID);
  WANT_INT(coap_context_export_sessions(ctx, key, 20, 1, 0, out, sizeof out, NULL), INVALID);
  WANT_INT(coap_context_export_sessions(ctx, key, 32, 1, 0, out, sizeof out, NULL),
           COAP_E_STATE); /* no DTLS configuration */
}
static void n_coap_context_import_sessions(void) {
  const uint8_t key[32] = {0}, in[64] = {0};
  const char *why = NULL;
  WANT_INT(coap_context_import_sessions(NULL, key, 32, 1, 0, 60, NULL, in, sizeof in, &why),
           INVALID);
  WANT_INT(why != NULL, 1);
  WANT_INT(coap_context_import_sessions(ctx, NULL, 32, 1, 0, 60, NULL, in, sizeof in, NULL),
           INVALID);
  WANT_INT(coap_context_import_sessions(ctx, key, 32, 1, 0, 60, NULL, NULL, 0, NULL), INVALID);
  WANT_INT(coap_context_import_sessions(ctx, key, 32, 1, 0, 60, NULL, in, sizeof in, NULL),
           COAP_E_STATE); /* no DTLS configuration */
}
static void n_coap_contexts_export_sessions(void) {
  const uint8_t key[32] = {0};
  uint8_t out[64];
  coap_context_t *two[2] = {ctx, NULL};
  WANT_INT(coap_contexts_export_sessions(NULL, 1, key, 32, 1, 0, out, sizeof out, NULL), INVALID);
  WANT_INT(coap_contexts_export_sessions(two, 2, key, 32, 1, 0, out, sizeof out, NULL), INVALID);
  WANT_INT(coap_contexts_export_sessions(two, 0, key, 32, 1, 0, out, sizeof out, NULL), INVALID);
  WANT_INT(coap_contexts_export_sessions(two, 1, NULL, 32, 1, 0, out, sizeof out, NULL), INVALID);
  WANT_INT(coap_contexts_export_sessions(two, 1, key, 32, 1, 0, out, sizeof out, NULL),
           COAP_E_STATE); /* no DTLS configuration */
}
static void n_coap_contexts_import_sessions(void) {
  const uint8_t key[32] = {0}, in[64] = {0};
  const char *why = NULL;
  coap_context_t *two[2] = {ctx, NULL};
  WANT_INT(coap_contexts_import_sessions(NULL, 1, key, 32, 1, 0, 60, NULL, in, sizeof in, &why),
           INVALID);
  WANT_INT(why != NULL, 1);
  WANT_INT(coap_contexts_import_sessions(two, 2, key, 32, 1, 0, 60, NULL, in, sizeof in, NULL),
           INVALID);
  WANT_INT(coap_contexts_import_sessions(two, 1, NULL, 32, 1, 0, 60, NULL, in, sizeof in, NULL),
           INVALID);
  WANT_INT(coap_contexts_import_sessions(two, 1, key, 32, 1, 0, 60, NULL, NULL, 0, NULL), INVALID);
  WANT_INT(coap_contexts_import_sessions(two, 1, key, 32, 1, 0, 60, NULL, in, sizeof in, NULL),
           COAP_E_STATE); /* no DTLS configuration */
}
static void n_coap_contexts_export_sessions_begin(void) {
  const uint8_t key[32] = {0};
  uint8_t out[64];
  coap_context_t *two[2] = {ctx, NULL};
  WANT_INT(coap_contexts_export_sessions_begin(NULL, 1, key, 32, 1, 0, out, sizeof out, NULL),
           INVALID);
  WANT_INT(coap_contexts_export_sessions_begin(two, 2, key, 32, 1, 0, out, sizeof out, NULL),
           INVALID);
  WANT_INT(coap_contexts_export_sessions_begin(two, 1, NULL, 32, 1, 0, out, sizeof out, NULL),
           INVALID);
  WANT_INT(coap_contexts_export_sessions_begin(two, 1, key, 32, 1, 0, NULL, 0, NULL), INVALID);
  WANT_INT(coap_contexts_export_sessions_begin(two, 1, key, 32, 1, 0, out, sizeof out, NULL),
           COAP_E_STATE); /* no DTLS configuration */
}
static void n_coap_contexts_export_sessions_end(void) {
  coap_context_t *two[2] = {ctx, NULL};
  WANT_INT(coap_contexts_export_sessions_end(NULL, 1, 1), INVALID);
  WANT_INT(coap_contexts_export_sessions_end(two, 2, 0), INVALID);
  WANT_INT(coap_contexts_export_sessions_end(two, 0, 1), INVALID);
  WANT_INT(coap_contexts_export_sessions_end(two, 1, 1), 0); /* nothing outstanding: no-op */
}
static void n_coap_context_end_revoked_sessions(void) {
  WANT_INT(coap_context_end_revoked_sessions(NULL), 0);
  WANT_INT(coap_context_end_revoked_sessions(ctx), 0); /* no DTLS configuration */
}

/* io.h */
static void n_coap_context_listen(void) {
  WANT_NULL(coap_context_listen(NULL, COAP_PROTO_UDP, &addr));
  WANT_NULL(coap_context_listen(ctx, COAP_PROTO_UDP, NULL));
}
static void n_coap_context_set_reuse_port(void) {
  WANT_INT(coap_context_set_reuse_port(NULL, 1), INVALID);
}
static void n_coap_context_fd(void) {
  WANT_INT(coap_context_fd(NULL), INVALID);
}
static void n_coap_context_timeout_ms(void) {
  WANT_INT(coap_context_timeout_ms(NULL), INVALID);
}
static void n_coap_context_process(void) {
  WANT_INT(coap_context_process(NULL, 0), INVALID);
}
static void n_coap_run(void) {
  WANT_INT(coap_run(NULL), INVALID);
}
static void n_coap_context_stop(void) {
  RUNS(coap_context_stop(NULL));
}
static void n_coap_probe_port(void) {
  coap_probe_result_t a, b;
  WANT_INT(coap_probe_port(NULL, 10, &a, &b), INVALID);
  /* one result NULL: that probe is not made; both: nothing to do */
  WANT_INT(coap_probe_port(&addr, 10, NULL, NULL), INVALID);
}

/* seed.h */
static void n_coap_new_context(void) {
  coap_context_t *c = coap_new_context(NULL); /* NULL: no listening address */
  WANT_NONNULL(c);
  coap_context_free(c);
}
static void n_coap_set_addr(void) {
  RUNS(coap_set_addr(NULL, 1));
}
static void n_coap_start(void) {
  WANT_INT(coap_start(NULL), INVALID);
}

/* wire.h */
static void n_coap_content_format_parse(void) {
  WANT_INT(coap_content_format_parse(NULL), COAP_FORMAT_NONE);
}
static void n_coap_msg_parse(void) {
  coap_msg_t m;
  WANT_INT(coap_msg_parse(NULL, datagram, datagram_len), INVALID);
  WANT_INT(coap_msg_parse(&m, NULL, datagram_len), INVALID);
}
static void n_coap_msg_init(void) {
  RUNS(coap_msg_init(NULL, COAP_TYPE_CON, COAP_GET, 1));
}
static void n_coap_msg_set_token(void) {
  WANT_INT(coap_msg_set_token(NULL, (const uint8_t *)"t", 1), INVALID);
  WANT_INT(coap_msg_set_token(&msg, NULL, 2), INVALID);
  WANT_INT(coap_msg_set_token(&msg, NULL, 0), 0); /* no token */
}
static void n_coap_msg_add_option(void) {
  WANT_INT(coap_msg_add_option(NULL, 2049, "a", 1), INVALID);
  WANT_INT(coap_msg_add_option(&msg, 2049, NULL, 2), INVALID);
}
static void n_coap_msg_add_uint(void) {
  WANT_INT(coap_msg_add_uint(NULL, 14, 1), INVALID);
}
static void n_coap_msg_add_string(void) {
  WANT_INT(coap_msg_add_string(NULL, 2049, "a"), INVALID);
  WANT_INT(coap_msg_add_string(&msg, 2049, NULL), 0); /* the empty string */
}
static void n_coap_msg_remove_option(void) {
  RUNS(coap_msg_remove_option(NULL, 11));
}
static void n_coap_msg_set_payload(void) {
  RUNS(coap_msg_set_payload(NULL, "a", 1));
  RUNS(coap_msg_set_payload(&msg, NULL, 3)); /* no payload */
  WANT_INT(msg.payload_len, 0);
}
static void n_coap_msg_find_option(void) {
  WANT_NULL(coap_msg_find_option(NULL, 11));
}
static void n_coap_msg_next_option(void) {
  WANT_NULL(coap_msg_next_option(NULL, &msg.options[0]));
  WANT_NULL(coap_msg_next_option(&msg, NULL));
}
static void n_coap_option_uint(void) {
  WANT_INT(coap_option_uint(NULL), -1);
}
static void n_coap_msg_get_uint(void) {
  WANT_INT(coap_msg_get_uint(NULL, 14, 77), 77);
}
static void n_coap_msg_content_format(void) {
  WANT_INT(coap_msg_content_format(NULL), COAP_FORMAT_NONE);
}
static void n_coap_msg_unknown_critical(void) {
  WANT_NULL(coap_msg_unknown_critical(NULL, NULL, 0));
  RUNS(coap_msg_unknown_critical(&msg, NULL, 3)); /* no list */
}
static void n_coap_block_decode(void) {
  coap_block_t b;
  WANT_INT(coap_block_decode(NULL, &b), INVALID);
  WANT_INT(coap_block_decode(&msg.options[0], NULL), INVALID);
}
static void n_coap_block_encode(void) {
  coap_block_t b = {0};
  uint8_t out[3];
  WANT_INT(coap_block_encode(NULL, out), INVALID);
  WANT_INT(coap_block_encode(&b, NULL), INVALID);
}
static void n_coap_msg_add_block(void) {
  coap_block_t b = {0};
  WANT_INT(coap_msg_add_block(NULL, 23, &b), INVALID);
  WANT_INT(coap_msg_add_block(&msg, 23, NULL), INVALID);
}
static void n_coap_msg_encoded_size(void) {
  WANT_INT(coap_msg_encoded_size(NULL), 0);
}
static void n_coap_msg_encode(void) {
  WANT_INT(coap_msg_encode(NULL, (uint8_t *)buf, sizeof buf), INVALID);
  WANT_INT(coap_msg_encode(&msg, NULL, sizeof buf), INVALID);
}
static void n_coap_msg_format(void) {
  WANT_INT(coap_msg_format(NULL, buf, sizeof buf), 0);
  WANT_INT(buf[0], 0);
  WANT_INT(coap_msg_format(&msg, NULL, sizeof buf), 0);
}
static void n_coap_uri_parse(void) {
  coap_uri_t u;
  WANT_INT(coap_uri_parse(NULL, "coap://192.0.2.1/"), INVALID);
  WANT_INT(coap_uri_parse(&u, NULL), INVALID);
}
static void n_coap_uri_to_options(void) {
  coap_msg_t m;
  uint8_t store[64];
  coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
  WANT_INT(coap_uri_to_options(NULL, &m, store, sizeof store), INVALID);
  WANT_INT(coap_uri_to_options(&uri, NULL, store, sizeof store), INVALID);
  WANT_INT(coap_uri_to_options(&uri, &m, NULL, sizeof store), INVALID);
}
static void n_coap_msg_uri_path(void) {
  WANT_INT(coap_msg_uri_path(NULL, buf, sizeof buf), INVALID);
  WANT_INT(coap_msg_uri_path(&msg, NULL, sizeof buf), COAP_E_BUFFER_TOO_SMALL);
}
static void n_coap_uri_format(void) {
  WANT_INT(coap_uri_format(NULL, buf, sizeof buf), INVALID);
  WANT_INT(coap_uri_format(&uri, NULL, sizeof buf), COAP_E_BUFFER_TOO_SMALL);
}
static void n_coap_link_matches(void) {
  WANT_INT(coap_link_matches(NULL, NULL, 0, "rt=x"), 0);
  WANT_INT(coap_link_matches(NULL, NULL, 0, NULL), 1);   /* no query: all */
  WANT_INT(coap_link_matches("/x", NULL, 3, "rt=x"), 0); /* no attributes */
}
static void n_coap_link_append(void) {
  size_t len = 0;
  WANT_INT(coap_link_append(NULL, sizeof buf, &len, "/x", NULL, 0), INVALID);
  WANT_INT(coap_link_append(buf, sizeof buf, NULL, "/x", NULL, 0), INVALID);
  WANT_INT(coap_link_append(buf, sizeof buf, &len, NULL, NULL, 0), INVALID);
  WANT_INT(coap_link_append(buf, sizeof buf, &len, "/x", NULL, 2), INVALID);
}
static void n_coap_link_next(void) {
  const char *doc = "</x>;rt=y";
  size_t cursor = 0, hl, al;
  const char *h, *a;
  WANT_INT(coap_link_next(NULL, 9, &cursor, &h, &hl, &a, &al), INVALID);
  WANT_INT(coap_link_next(doc, 9, NULL, &h, &hl, &a, &al), INVALID);
  WANT_INT(coap_link_next(doc, 9, &cursor, NULL, &hl, &a, &al), INVALID);
  WANT_INT(coap_link_next(doc, 9, &cursor, &h, NULL, &a, &al), INVALID);
  WANT_INT(coap_link_next(doc, 9, &cursor, &h, &hl, NULL, &al), INVALID);
  WANT_INT(coap_link_next(doc, 9, &cursor, &h, &hl, &a, NULL), INVALID);
}

typedef struct null_case {
  const char *name;
  void (*calls)(void); /* NULL: the function takes no pointer */
} null_case_t;

#define CASE(fn) \
  { #fn, n_##fn }
/* A function the header calls through a macro of the old name */
#define CASE_AS(exported, fn) \
  { #exported, n_##fn }
#define NO_POINTER(fn) \
  { #fn, NULL }

static const null_case_t cases[] = {
    CASE(coap_address_init),
    CASE(coap_address_set_port),
    CASE(coap_address_get_port),
    CASE(coap_address_from_string),
    CASE(coap_address_format),
    CASE(coap_address_equal),
    CASE_AS(coap_tx_params_default_versioned, coap_tx_params_default),
    CASE_AS(coap_context_config_default_versioned, coap_context_config_default),
    CASE_AS(coap_context_new_versioned, coap_context_new),
    CASE(coap_context_free),
    CASE_AS(coap_context_set_tx_params_versioned, coap_context_set_tx_params),
    CASE(coap_context_set_log_level),
    CASE_AS(coap_context_set_transport_versioned, coap_context_set_transport),
    CASE(coap_context_add_endpoint),
    CASE(coap_endpoint_proto),
    CASE(coap_endpoint_address),
    CASE(coap_endpoint_set_transport_data),
    CASE(coap_endpoint_transport_data),
    CASE(coap_context_input),
    CASE(coap_context_input_to),
    CASE(coap_context_input_unreachable),
    CASE(coap_context_input_icmp),
    CASE(coap_context_next_timeout),
    CASE(coap_context_handle_timeouts),
    CASE(coap_resource_add),
    CASE(coap_resource_create),
    CASE(coap_resource_find),
    CASE(coap_resource_remove),
    CASE(coap_resource_set_handler),
    CASE(coap_resource_set_attr),
    CASE(coap_resource_set_accepted_formats),
    CASE(coap_resource_set_hidden),
    CASE(coap_resource_path),
    CASE(coap_context_max_body),
    CASE(coap_resource_set_observable),
    CASE(coap_resource_notify),
    CASE(coap_resource_observer_count),
    CASE(coap_request_msg),
    CASE(coap_request_method),
    CASE(coap_request_peer),
    CASE(coap_request_proto),
    CASE(coap_request_is_notification),
    CASE(coap_request_payload),
    CASE(coap_request_query),
    CASE(coap_response_set_code),
    CASE(coap_response_set_payload),
    CASE(coap_response_add_option),
    CASE(coap_response_add_uint),
    CASE(coap_response_set_max_age),
    CASE(coap_response_set_etag),
    CASE(coap_response_add_location_path),
    CASE(coap_request_defer),
    CASE(coap_deferred_response),
    CASE(coap_deferred_send),
    CASE_AS(coap_request_opts_init_versioned, coap_request_opts_init),
    CASE_AS(coap_send_request_versioned, coap_send_request),
    CASE(coap_cancel_request),
    CASE(coap_observe_cancel),
    CASE_AS(coap_request_blocking_versioned, coap_request_blocking),
    CASE_AS(coap_response_copy_clear_versioned, coap_response_copy_clear),
    CASE(coap_context_set_trace),
    CASE(coap_context_dtls),
    CASE_AS(coap_context_failure_versioned, coap_context_failure),
    CASE(coap_context_set_log_event_handler),
    NO_POINTER(coap_dtls_mode_name),
    CASE(coap_context_last_error),
    CASE_AS(coap_context_last_diag_versioned, coap_context_last_diag),
    CASE_AS(coap_context_last_handshake_versioned, coap_context_last_handshake),
    CASE_AS(coap_context_get_stats_versioned, coap_context_get_stats),
    NO_POINTER(coap_cause_info),
    NO_POINTER(coap_cause_name),
    NO_POINTER(coap_cause_str),
    CASE(coap_cause_from_name),
    NO_POINTER(coap_step_name),
    NO_POINTER(coap_detector_name),
    CASE(coap_dtls_new_context),
    NO_POINTER(coap_dtls_context_new),
    CASE(coap_dtls_context_free),
    CASE(coap_dtls_context_ref),
    CASE(coap_context_set_dtls_context),
    CASE(coap_dtls_context_last_error),
    CASE(coap_dtls_set_psk),
    CASE(coap_dtls_set_psk_hex),
    CASE(coap_dtls_set_psk_lookup),
    CASE(coap_dtls_set_psk_hint),
    CASE(coap_dtls_set_cert),
    CASE(coap_dtls_set_ca),
    CASE(coap_dtls_set_client_cert),
    CASE(coap_dtls_set_verify_peer_name),
    CASE(coap_dtls_set_session_file),
    CASE(coap_dtls_set_resumption),
    CASE(coap_dtls_share_keys),
    CASE(coap_dtls_set_rpk),
    CASE(coap_dtls_add_trusted_rpk),
    CASE(coap_dtls_set_rpk_verify),
    CASE(coap_dtls_rpk_fingerprint),
    CASE(coap_dtls_set_mtu),
    CASE(coap_dtls_set_handshake_timeouts),
    CASE(coap_dtls_set_max_handshakes),
    CASE(coap_dtls_set_cookie_policy),
    CASE(coap_dtls_set_compact_sessions),
    CASE(coap_dtls_set_priority),
    CASE(coap_dtls_set_cid),
    CASE(coap_dtls_set_cid_worker),
    CASE(coap_dtls_set_cid_node),
    CASE(coap_dtls_set_client_cid),
    CASE_AS(coap_dtls_last_cid_versioned, coap_dtls_last_cid),
    CASE_AS(coap_dtls_cid_stats_versioned, coap_dtls_cid_stats),
    CASE(coap_dtls_can_connect),
    CASE(coap_dtls_can_serve),
    NO_POINTER(coap_psk_table_new),
    CASE(coap_psk_table_ref),
    CASE(coap_psk_table_free),
    CASE(coap_psk_table_add),
    CASE(coap_psk_table_lookup),
    CASE(coap_psk_table_contains),
    CASE(coap_psk_table_count),
    CASE(coap_psk_table_memory),
    CASE(coap_psk_table_parse),
    CASE(coap_psk_table_load_file),
    CASE(coap_dtls_set_ticket_keys),
    CASE(coap_dtls_load_ticket_key_file),
    CASE(coap_dtls_set_psk_table),
    CASE(coap_dtls_add_trusted_rpk_dir),
    CASE(coap_dtls_trusts_rpk_fingerprint),
    CASE(coap_dtls_knows_psk_identity),
    CASE(coap_context_end_sessions),
    CASE(coap_context_export_sessions),
    CASE(coap_context_import_sessions),
    CASE(coap_contexts_export_sessions),
    CASE(coap_contexts_import_sessions),
    CASE(coap_contexts_export_sessions_begin),
    CASE(coap_contexts_export_sessions_end),
    CASE(coap_context_end_revoked_sessions),
    NO_POINTER(coap_strerror),
    CASE(coap_context_listen),
    CASE(coap_context_set_reuse_port),
    CASE(coap_context_fd),
    CASE(coap_context_timeout_ms),
    CASE(coap_context_process),
    CASE(coap_run),
    CASE(coap_context_stop),
    CASE_AS(coap_probe_port_versioned, coap_probe_port),
    NO_POINTER(coap_clock_now_ms),
    CASE(coap_new_context),
    CASE(coap_set_addr),
    CASE(coap_start),
    NO_POINTER(coap_option_info),
    NO_POINTER(coap_content_format_name),
    CASE(coap_content_format_parse),
    CASE(coap_msg_parse),
    CASE(coap_msg_init),
    CASE(coap_msg_set_token),
    CASE(coap_msg_add_option),
    CASE(coap_msg_add_uint),
    CASE(coap_msg_add_string),
    CASE(coap_msg_remove_option),
    CASE(coap_msg_set_payload),
    CASE(coap_msg_find_option),
    CASE(coap_msg_next_option),
    CASE(coap_option_uint),
    CASE(coap_msg_get_uint),
    CASE(coap_msg_content_format),
    CASE(coap_msg_unknown_critical),
    NO_POINTER(coap_observe_is_newer),
    NO_POINTER(coap_block_size),
    NO_POINTER(coap_block_szx_for),
    CASE(coap_block_decode),
    CASE(coap_block_encode),
    CASE(coap_msg_add_block),
    CASE(coap_msg_encoded_size),
    CASE(coap_msg_encode),
    NO_POINTER(coap_code_name),
    NO_POINTER(coap_type_name),
    CASE(coap_msg_format),
    CASE(coap_uri_parse),
    CASE(coap_uri_to_options),
    CASE(coap_msg_uri_path),
    CASE(coap_uri_format),
    CASE(coap_link_matches),
    CASE(coap_link_append),
    CASE(coap_link_next),
};

static const null_case_t *case_named(const char *name) {
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (strcmp(cases[i].name, name) == 0) return &cases[i];
  return NULL;
}

/* Every function's calls in a child of its own. */
static void test_every_function(void **state) {
  fixture();
  int failed = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (!cases[i].calls) continue;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      current = cases[i].name;
      cases[i].calls();
      _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "%s: NULL argument not handled (status 0x%x)\n", cases[i].name, status);
      failed++;
    }
  }
  coap_dtls_context_free(dtls);
  coap_context_free(ctx);
  assert_int_equal(failed, 0);
}

/* ---- coverage: the functions the headers declare ---- */

/* The text of |path| without its comments, or NULL. */
static char *read_without_comments(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  static char raw[1 << 17];
  size_t n = fread(raw, 1, sizeof raw - 1, f);
  fclose(f);
  raw[n] = 0;
  char *out = malloc(n + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (raw[i] == '/' && raw[i + 1] == '*') {
      char *end = strstr(raw + i + 2, "*/");
      i = end ? (size_t)(end - raw) + 1 : n;
      out[o++] = ' ';
    } else if (raw[i] == '/' && raw[i + 1] == '/') {
      while (i < n && raw[i] != '\n') i++;
    } else {
      out[o++] = raw[i];
    }
  }
  out[o] = 0;
  return out;
}

/* The name declared by the COAPS_API declaration starting at |p|: the
 * identifier before the first '('. */
static int declared_name(const char *p, char *name, size_t cap) {
  const char *paren = strchr(p, '(');
  if (!paren) return 0;
  const char *end = paren;
  while (end > p && end[-1] == ' ') end--;
  const char *start = end;
  while (start > p &&
         (start[-1] == '_' || (start[-1] >= 'a' && start[-1] <= 'z') ||
          (start[-1] >= 'A' && start[-1] <= 'Z') || (start[-1] >= '0' && start[-1] <= '9')))
    start--;
  size_t len = (size_t)(end - start);
  if (!len || len >= cap) return 0;
  memcpy(name, start, len);
  name[len] = 0;
  return 1;
}

static void test_every_declared_function_has_a_case(void **state) {
  /* This file is tests/unit/test_null_args.c in the source tree. */
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", __FILE__);
  char *tail = strstr(dir, "tests/unit/test_null_args.c");
  assert_non_null(tail);
  strcpy(tail, "include/coaps");
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  unsigned declared = 0, missing = 0;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 3 || strcmp(e->d_name + len - 2, ".h") != 0) continue;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    char *text = read_without_comments(path);
    assert_non_null(text);
    for (char *p = text; (p = strstr(p, "COAPS_API")); p += 9) {
      if (p > text && strncmp(p - 8, "#define ", 8) == 0) continue;
      char name[128];
      if (!declared_name(p, name, sizeof name)) continue;
      declared++;
      if (!case_named(name)) {
        fprintf(stderr, "%s (%s) has no NULL-argument case in %s\n", name, e->d_name, __FILE__);
        missing++;
      }
    }
    free(text);
  }
  closedir(d);
  assert_true(declared >= 140);
  assert_int_equal(missing, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_declared_function_has_a_case),
      cmocka_unit_test(test_every_function),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
