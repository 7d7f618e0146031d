/* Versioned structs (include/coaps/export.h, docs/architecture.md "ABI"):
 * a program built against an older header passes a smaller struct, and
 * the library must neither read nor write a byte past it.
 *
 * An old program is emulated by hand-written copies of each struct's
 * version 1 (the v1_* types below: what a header of version 1 declared,
 * field by field, frozen). Compile-time checks keep today's headers laying
 * version 1 out that way. Each copy is placed in a buffer of exactly its
 * version-1 length (no trailing padding) between guard bytes: the guards
 * must come back intact (any write past the struct), and under ASan they
 * are poisoned, so any read past it fails the run too. Unknown versions
 * (0, -1, one past the current) are refused with COAP_E_INVALID_ARG,
 * nothing written, and a log line where a context has a logger. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "coaps/coaps.h"
#include "common/abi.h"

#if defined(__SANITIZE_ADDRESS__)
#define ABI_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ABI_TEST_ASAN 1
#endif
#endif
#ifdef ABI_TEST_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* ---- version 1 of each struct, as its header declared it ---- */

struct v1_tx_params {
  uint32_t ack_timeout_ms;
  uint32_t ack_random_factor_pm;
  uint8_t max_retransmit;
  uint8_t nstart;
  uint32_t separate_delay_ms;
  uint32_t response_timeout_ms;
  uint8_t token_len;
  uint16_t dedup_capacity;
};

struct v1_context_config {
  struct v1_tx_params tx;
  size_t max_peers;
  uint32_t peer_idle_ms;
  uint32_t peer_evict_ms;
  size_t max_payload;
  uint16_t block_size;
  size_t max_body;
  size_t max_reassembly;
  uint8_t qblock_server_off;
  uint16_t qblock_max_payloads;
  uint8_t qblock_client;
  uint32_t qblock_non_timeout_ms;
  size_t max_observers;
  uint16_t max_observers_per_peer;
  uint16_t observe_con_every;
  uint32_t observe_con_interval_s;
  coap_log_fn log;
  void *log_user;
  coap_log_level_t log_level;
  coap_rand_fn rand;
  void *rand_user;
  coap_resolve_fn resolve;
  void *resolve_user;
  coap_clock_fn clock;
  void *clock_user;
};

struct v1_transport {
  int (*send)(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
              size_t len);
  int (*open_client_endpoint)(void *user, coap_context_t *ctx, coap_proto_t proto,
                              const coap_address_t *dest, coap_endpoint_t **out);
  int (*send_from)(void *user, coap_endpoint_t *ep, const coap_address_t *local,
                   const coap_address_t *to, const uint8_t *data, size_t len);
};

struct v1_request_opts {
  uint8_t method;
  const char *uri;
  int confirmable;
  int content_format;
  int accept;
  const void *payload;
  size_t payload_len;
  const coap_option_t *options;
  size_t n_options;
  uint32_t timeout_ms;
  uint16_t block_size;
  int observe;
  uint8_t no_response;
  int qblock;
};

struct v1_response_copy {
  uint8_t code;
  int content_format;
  uint8_t *payload;
  size_t payload_len;
  uint8_t *raw;
  size_t raw_len;
};

struct v1_stats {
  uint64_t rx_datagrams, tx_datagrams;
  uint64_t rx_malformed;
  uint64_t rx_duplicates;
  uint64_t retransmissions;
  uint64_t requests_handled, requests_sent;
  uint64_t timeouts, resets_received, resets_sent;
  uint64_t peers;
  uint64_t peers_rejected;
  uint64_t peers_evicted;
  uint64_t dtls_handshakes;
  uint64_t dtls_resumed;
  uint64_t dtls_failures;
  uint64_t dtls_cookies_sent;
  uint64_t dtls_refused;
  uint64_t dtls_reconnects;
  uint64_t dtls_compacted;
  uint64_t dtls_half_open_evicted;
  uint64_t observers;
  uint64_t notifications_sent;
  uint64_t observers_removed;
  uint64_t observations;
  uint64_t reassembly_bytes;
  uint64_t rx_too_large;
  uint64_t failures_by_cause[32];
};

/* Version 2 appends byte counts, responses by class and per-mode
 * handshake counters. */
struct v2_stats {
  struct v1_stats v1;
  uint64_t rx_bytes, tx_bytes;
  uint64_t responses_by_class[8];
  uint64_t dtls_handshakes_by_mode[4][2];
  uint64_t dtls_failures_by_mode[4];
  uint64_t dtls_sessions_by_mode[4];
};

/* Version 3 appends the ICMP errors vetted and ignored. */
struct v3_stats {
  struct v2_stats v2;
  uint64_t icmp_vetted, icmp_unvetted;
};

struct v1_failure_record {
  uint64_t seq;
  uint64_t at_ms;
  coap_cause_t cause;
  coap_dtls_mode_t mode;
  int is_server;
  char peer[64];
  char identity[160];
  char explanation[640];
  char fix[320];
};

struct v1_diag {
  coap_cause_t cause;
  int error;
  coap_dtls_step_t step;
  coap_detector_t detected_by;
  int alert;
  char alert_name[40];
  int is_server;
  char peer[64];
  char explanation[640];
  char fix[320];
  unsigned flights;
  uint32_t elapsed_ms;
};

struct v1_peer_cert_info {
  char subject[256];
  char issuer[256];
  int64_t not_before, not_after;
  char names[256];
};

struct v1_handshake_report {
  int attempted;
  int established;
  int resumed;
  int cookie;
  char version[16];
  char suite[64];
  char mode[16];
  char server_name[256];
  uint32_t step_ms[12];
  coap_dtls_step_t step;
  unsigned flights;
  unsigned n_certs;
  struct v1_peer_cert_info certs[4];
  char peer_rpk[112];
  struct v1_diag diag;
};

struct v1_probe_result {
  coap_probe_answer_t answer;
  uint32_t ms;
  char detail[96];
};

/* Bytes of a version 1 struct a program has: up to its last field. */
#define V1_LEN(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))

/* Today's header still lays out version 1 field by field this way. */
#define SAME(v1, cur, f)                                                                    \
  _Static_assert(                                                                           \
      offsetof(v1, f) == offsetof(cur, f) && sizeof(((v1 *)0)->f) == sizeof(((cur *)0)->f), \
      #cur "." #f " moved or changed size: version 1 is frozen")

SAME(struct v1_tx_params, coap_tx_params_t, ack_timeout_ms);
SAME(struct v1_tx_params, coap_tx_params_t, ack_random_factor_pm);
SAME(struct v1_tx_params, coap_tx_params_t, max_retransmit);
SAME(struct v1_tx_params, coap_tx_params_t, nstart);
SAME(struct v1_tx_params, coap_tx_params_t, separate_delay_ms);
SAME(struct v1_tx_params, coap_tx_params_t, response_timeout_ms);
SAME(struct v1_tx_params, coap_tx_params_t, token_len);
SAME(struct v1_tx_params, coap_tx_params_t, dedup_capacity);

SAME(struct v1_context_config, coap_context_config_t, tx);
SAME(struct v1_context_config, coap_context_config_t, max_peers);
SAME(struct v1_context_config, coap_context_config_t, peer_idle_ms);
SAME(struct v1_context_config, coap_context_config_t, peer_evict_ms);
SAME(struct v1_context_config, coap_context_config_t, max_payload);
SAME(struct v1_context_config, coap_context_config_t, block_size);
SAME(struct v1_context_config, coap_context_config_t, max_body);
SAME(struct v1_context_config, coap_context_config_t, max_reassembly);
SAME(struct v1_context_config, coap_context_config_t, qblock_server_off);
SAME(struct v1_context_config, coap_context_config_t, qblock_max_payloads);
SAME(struct v1_context_config, coap_context_config_t, qblock_client);
SAME(struct v1_context_config, coap_context_config_t, qblock_non_timeout_ms);
SAME(struct v1_context_config, coap_context_config_t, max_observers);
SAME(struct v1_context_config, coap_context_config_t, max_observers_per_peer);
SAME(struct v1_context_config, coap_context_config_t, observe_con_every);
SAME(struct v1_context_config, coap_context_config_t, observe_con_interval_s);
SAME(struct v1_context_config, coap_context_config_t, log);
SAME(struct v1_context_config, coap_context_config_t, log_user);
SAME(struct v1_context_config, coap_context_config_t, log_level);
SAME(struct v1_context_config, coap_context_config_t, rand);
SAME(struct v1_context_config, coap_context_config_t, rand_user);
SAME(struct v1_context_config, coap_context_config_t, resolve);
SAME(struct v1_context_config, coap_context_config_t, resolve_user);
SAME(struct v1_context_config, coap_context_config_t, clock);
SAME(struct v1_context_config, coap_context_config_t, clock_user);

SAME(struct v1_transport, coap_transport_t, send);
SAME(struct v1_transport, coap_transport_t, open_client_endpoint);
SAME(struct v1_transport, coap_transport_t, send_from);

SAME(struct v1_request_opts, coap_request_opts_t, method);
SAME(struct v1_request_opts, coap_request_opts_t, uri);
SAME(struct v1_request_opts, coap_request_opts_t, confirmable);
SAME(struct v1_request_opts, coap_request_opts_t, content_format);
SAME(struct v1_request_opts, coap_request_opts_t, accept);
SAME(struct v1_request_opts, coap_request_opts_t, payload);
SAME(struct v1_request_opts, coap_request_opts_t, payload_len);
SAME(struct v1_request_opts, coap_request_opts_t, options);
SAME(struct v1_request_opts, coap_request_opts_t, n_options);
SAME(struct v1_request_opts, coap_request_opts_t, timeout_ms);
SAME(struct v1_request_opts, coap_request_opts_t, block_size);
SAME(struct v1_request_opts, coap_request_opts_t, observe);
SAME(struct v1_request_opts, coap_request_opts_t, no_response);
SAME(struct v1_request_opts, coap_request_opts_t, qblock);

SAME(struct v1_response_copy, coap_response_copy_t, code);
SAME(struct v1_response_copy, coap_response_copy_t, content_format);
SAME(struct v1_response_copy, coap_response_copy_t, payload);
SAME(struct v1_response_copy, coap_response_copy_t, payload_len);
SAME(struct v1_response_copy, coap_response_copy_t, raw);
SAME(struct v1_response_copy, coap_response_copy_t, raw_len);

SAME(struct v1_stats, coap_stats_t, rx_datagrams);
SAME(struct v1_stats, coap_stats_t, tx_datagrams);
SAME(struct v1_stats, coap_stats_t, rx_malformed);
SAME(struct v1_stats, coap_stats_t, rx_duplicates);
SAME(struct v1_stats, coap_stats_t, retransmissions);
SAME(struct v1_stats, coap_stats_t, requests_handled);
SAME(struct v1_stats, coap_stats_t, requests_sent);
SAME(struct v1_stats, coap_stats_t, timeouts);
SAME(struct v1_stats, coap_stats_t, resets_received);
SAME(struct v1_stats, coap_stats_t, resets_sent);
SAME(struct v1_stats, coap_stats_t, peers);
SAME(struct v1_stats, coap_stats_t, peers_rejected);
SAME(struct v1_stats, coap_stats_t, peers_evicted);
SAME(struct v1_stats, coap_stats_t, dtls_handshakes);
SAME(struct v1_stats, coap_stats_t, dtls_resumed);
SAME(struct v1_stats, coap_stats_t, dtls_failures);
SAME(struct v1_stats, coap_stats_t, dtls_cookies_sent);
SAME(struct v1_stats, coap_stats_t, dtls_refused);
SAME(struct v1_stats, coap_stats_t, dtls_reconnects);
SAME(struct v1_stats, coap_stats_t, dtls_compacted);
SAME(struct v1_stats, coap_stats_t, dtls_half_open_evicted);
SAME(struct v1_stats, coap_stats_t, observers);
SAME(struct v1_stats, coap_stats_t, notifications_sent);
SAME(struct v1_stats, coap_stats_t, observers_removed);
SAME(struct v1_stats, coap_stats_t, observations);
SAME(struct v1_stats, coap_stats_t, reassembly_bytes);
SAME(struct v1_stats, coap_stats_t, rx_too_large);
SAME(struct v1_stats, coap_stats_t, failures_by_cause);
SAME(struct v2_stats, coap_stats_t, rx_bytes);
SAME(struct v2_stats, coap_stats_t, tx_bytes);
SAME(struct v2_stats, coap_stats_t, responses_by_class);
SAME(struct v2_stats, coap_stats_t, dtls_handshakes_by_mode);
SAME(struct v2_stats, coap_stats_t, dtls_failures_by_mode);
SAME(struct v2_stats, coap_stats_t, dtls_sessions_by_mode);
SAME(struct v3_stats, coap_stats_t, icmp_vetted);
SAME(struct v3_stats, coap_stats_t, icmp_unvetted);
SAME(struct v1_failure_record, coap_failure_record_t, seq);
SAME(struct v1_failure_record, coap_failure_record_t, at_ms);
SAME(struct v1_failure_record, coap_failure_record_t, cause);
SAME(struct v1_failure_record, coap_failure_record_t, mode);
SAME(struct v1_failure_record, coap_failure_record_t, is_server);
SAME(struct v1_failure_record, coap_failure_record_t, peer);
SAME(struct v1_failure_record, coap_failure_record_t, identity);
SAME(struct v1_failure_record, coap_failure_record_t, explanation);
SAME(struct v1_failure_record, coap_failure_record_t, fix);

SAME(struct v1_diag, coap_diag_t, cause);
SAME(struct v1_diag, coap_diag_t, error);
SAME(struct v1_diag, coap_diag_t, step);
SAME(struct v1_diag, coap_diag_t, detected_by);
SAME(struct v1_diag, coap_diag_t, alert);
SAME(struct v1_diag, coap_diag_t, alert_name);
SAME(struct v1_diag, coap_diag_t, is_server);
SAME(struct v1_diag, coap_diag_t, peer);
SAME(struct v1_diag, coap_diag_t, explanation);
SAME(struct v1_diag, coap_diag_t, fix);
SAME(struct v1_diag, coap_diag_t, flights);
SAME(struct v1_diag, coap_diag_t, elapsed_ms);

SAME(struct v1_peer_cert_info, coap_peer_cert_info_t, subject);
SAME(struct v1_peer_cert_info, coap_peer_cert_info_t, issuer);
SAME(struct v1_peer_cert_info, coap_peer_cert_info_t, not_before);
SAME(struct v1_peer_cert_info, coap_peer_cert_info_t, not_after);
SAME(struct v1_peer_cert_info, coap_peer_cert_info_t, names);
_Static_assert(sizeof(struct v1_peer_cert_info) == sizeof(coap_peer_cert_info_t),
               "coap_peer_cert_info_t is embedded in an array: its size is frozen");

SAME(struct v1_handshake_report, coap_handshake_report_t, attempted);
SAME(struct v1_handshake_report, coap_handshake_report_t, established);
SAME(struct v1_handshake_report, coap_handshake_report_t, resumed);
SAME(struct v1_handshake_report, coap_handshake_report_t, cookie);
SAME(struct v1_handshake_report, coap_handshake_report_t, version);
SAME(struct v1_handshake_report, coap_handshake_report_t, suite);
SAME(struct v1_handshake_report, coap_handshake_report_t, mode);
SAME(struct v1_handshake_report, coap_handshake_report_t, server_name);
SAME(struct v1_handshake_report, coap_handshake_report_t, step_ms);
SAME(struct v1_handshake_report, coap_handshake_report_t, step);
SAME(struct v1_handshake_report, coap_handshake_report_t, flights);
SAME(struct v1_handshake_report, coap_handshake_report_t, n_certs);
SAME(struct v1_handshake_report, coap_handshake_report_t, certs);
SAME(struct v1_handshake_report, coap_handshake_report_t, peer_rpk);
SAME(struct v1_handshake_report, coap_handshake_report_t, diag);

SAME(struct v1_probe_result, coap_probe_result_t, answer);
SAME(struct v1_probe_result, coap_probe_result_t, ms);
SAME(struct v1_probe_result, coap_probe_result_t, detail);

/* ---- a struct between guard bytes ---- */

#define GUARD 64
#define GUARD_BYTE 0xA5

typedef struct guarded {
  uint8_t *mem; /* GUARD | len bytes | GUARD */
  size_t len;
} guarded_t;

/* |len| bytes filled with |fill|, guards around them poisoned under ASan. */
static void *guarded_new(guarded_t *g, size_t len, int fill) {
  g->len = len;
  g->mem = malloc(len + 2 * GUARD);
  assert_non_null(g->mem);
  memset(g->mem, GUARD_BYTE, len + 2 * GUARD);
  memset(g->mem + GUARD, fill, len);
  POISON(g->mem, GUARD);
  POISON(g->mem + GUARD + len, GUARD);
  return g->mem + GUARD;
}

/* The guards are as they were; frees the buffer. */
static void guarded_check_free(guarded_t *g) {
  UNPOISON(g->mem, GUARD);
  UNPOISON(g->mem + GUARD + g->len, GUARD);
  for (size_t i = 0; i < GUARD; i++) {
    assert_int_equal(g->mem[i], GUARD_BYTE);
    assert_int_equal(g->mem[GUARD + g->len + i], GUARD_BYTE);
  }
  free(g->mem);
  g->mem = NULL;
}

/* The struct's bytes are all still |fill| (nothing was written). */
static void assert_untouched(const guarded_t *g, int fill) {
  for (size_t i = 0; i < g->len; i++) assert_int_equal(g->mem[GUARD + i], (uint8_t)fill);
}

/* ---- a context with a logger and a transport that records ---- */

typedef struct recorder {
  char log[16384];
  int lines;
  int sent;
  uint8_t last[1500];
  size_t last_len;
} recorder_t;

static void on_log(void *user, coap_log_level_t level, const char *line) {
  recorder_t *r = user;
  size_t n = strlen(r->log);
  snprintf(r->log + n, sizeof r->log - n, "%s\n", line);
  r->lines++;
}

static int rec_send(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
                    size_t len) {
  recorder_t *r = user;
  r->sent++;
  r->last_len = len < sizeof r->last ? len : sizeof r->last;
  memcpy(r->last, data, r->last_len);
  return 0;
}

static int rec_open(void *user, coap_context_t *ctx, coap_proto_t proto, const coap_address_t *dest,
                    coap_endpoint_t **out) {
  *out = coap_context_add_endpoint(ctx, proto, NULL);
  return *out ? 0 : COAP_E_NOMEM;
}

static void on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {}

/* A context made from a version 1 configuration (its own guarded copy,
 * checked and freed here) logging into |r|. */
static coap_context_t *context_v1(recorder_t *r) {
  guarded_t g;
  struct v1_context_config *cfg = guarded_new(&g, V1_LEN(struct v1_context_config, clock_user), 0);
  assert_int_equal(
      coap_context_config_default_versioned(COAP_CONTEXT_CONFIG_V1, (coap_context_config_t *)cfg),
      0);
  cfg->log = on_log;
  cfg->log_user = r;
  cfg->log_level = COAP_LOG_WARNING;
  coap_context_t *ctx =
      coap_context_new_versioned(COAP_CONTEXT_CONFIG_V1, (const coap_context_config_t *)cfg);
  guarded_check_free(&g);
  assert_non_null(ctx);
  return ctx;
}

static const int bad_versions[] = {0, -1, 2, 1000};
#define N_BAD (sizeof bad_versions / sizeof bad_versions[0])

/* What the library reads or writes for version 1 of |id|; the versions
 * it knows. */
static size_t v1_len(coap_abi_id_t id) {
  return coap_abi_struct(id)->len[0];
}
static int versions(coap_abi_id_t id) {
  return coap_abi_struct(id)->versions;
}

/* ---- tests ---- */

/* The library's own table of version 1 lengths is what a version 1
 * program has (the library reads and writes exactly that many bytes). */
static void test_v1_lengths_match_the_library(void **state) {
  assert_int_equal(v1_len(COAP_ABI_TX_PARAMS), V1_LEN(struct v1_tx_params, dedup_capacity));
  assert_int_equal(v1_len(COAP_ABI_CONTEXT_CONFIG), V1_LEN(struct v1_context_config, clock_user));
  assert_int_equal(v1_len(COAP_ABI_TRANSPORT), V1_LEN(struct v1_transport, send_from));
  assert_int_equal(v1_len(COAP_ABI_REQUEST_OPTS), V1_LEN(struct v1_request_opts, qblock));
  assert_int_equal(v1_len(COAP_ABI_RESPONSE_COPY), V1_LEN(struct v1_response_copy, raw_len));
  assert_int_equal(v1_len(COAP_ABI_STATS), V1_LEN(struct v1_stats, failures_by_cause));
  assert_int_equal(v1_len(COAP_ABI_DIAG), V1_LEN(struct v1_diag, elapsed_ms));
  assert_int_equal(v1_len(COAP_ABI_HANDSHAKE_REPORT), V1_LEN(struct v1_handshake_report, diag));
  assert_int_equal(v1_len(COAP_ABI_PROBE_RESULT), V1_LEN(struct v1_probe_result, detail));
  assert_int_equal(v1_len(COAP_ABI_FAILURE_RECORD), V1_LEN(struct v1_failure_record, fix));
  assert_int_equal(coap_abi_struct(COAP_ABI_STATS)->len[1],
                   V1_LEN(struct v2_stats, dtls_sessions_by_mode));
  assert_int_equal(coap_abi_struct(COAP_ABI_STATS)->len[2], V1_LEN(struct v3_stats, icmp_unvetted));
  /* Every table knows exactly the versions up to the header's current one. */
  assert_int_equal(versions(COAP_ABI_TX_PARAMS), COAP_TX_PARAMS_VERSION);
  assert_int_equal(versions(COAP_ABI_CONTEXT_CONFIG), COAP_CONTEXT_CONFIG_VERSION);
  assert_int_equal(versions(COAP_ABI_STATS), COAP_STATS_VERSION);
  assert_int_equal(versions(COAP_ABI_FAILURE_RECORD), COAP_FAILURE_RECORD_VERSION);
  assert_int_equal(versions(COAP_ABI_HANDSHAKE_REPORT), COAP_HANDSHAKE_REPORT_VERSION);
  /* Causes and steps fit their reserved slots. */
  assert_true(COAP_CAUSE_COUNT <= COAP_STATS_CAUSE_SLOTS);
  assert_true(COAP_STEP_COUNT <= COAP_REPORT_STEP_SLOTS);
}

/* The mechanism with a struct that has two versions: a version 1 caller's
 * bytes go over the defaults and the version 2 field keeps its default;
 * writing version 1 stops at its end. */
typedef struct two_versions {
  uint32_t a; /* version 1 */
  uint32_t b; /* version 2 */
} two_versions_t;

static void test_older_version_reads_and_writes_its_prefix(void **state) {
  static const size_t lens[] = {V1_LEN(two_versions_t, a), V1_LEN(two_versions_t, b)};
  const coap_abi_struct_t s = {"two_versions_t", lens, 2};
  guarded_t g;
  uint32_t *old = guarded_new(&g, sizeof(uint32_t), 0);
  *old = 7;
  two_versions_t latest = {.a = 1, .b = 99};
  assert_int_equal(coap_abi_read(&s, 1, old, &latest, NULL, "test"), 0);
  assert_int_equal(latest.a, 7);
  assert_int_equal(latest.b, 99); /* the default: version 1 has no b */
  latest.a = 8;
  assert_int_equal(coap_abi_write(&s, 1, &latest, old, NULL, "test"), 0);
  assert_int_equal(*old, 8);
  guarded_check_free(&g); /* b was not written past the caller's struct */

  two_versions_t full = {0};
  assert_int_equal(coap_abi_write(&s, 2, &latest, &full, NULL, "test"), 0);
  assert_int_equal(full.b, 99);
  recorder_t r = {0};
  coap_logger_t log = {.fn = on_log, .user = &r, .level = COAP_LOG_ERROR};
  assert_int_equal(coap_abi_write(&s, 3, &latest, &full, &log, "coap_test_fn"), COAP_E_INVALID_ARG);
  assert_int_equal(r.lines, 1);
  assert_non_null(strstr(r.log, "coap_test_fn: two_versions_t version 3"));
}

static void test_config_and_tx_params_v1(void **state) {
  guarded_t g;
  struct v1_tx_params *tx = guarded_new(&g, V1_LEN(struct v1_tx_params, dedup_capacity), 0);
  assert_int_equal(coap_tx_params_default_versioned(COAP_TX_PARAMS_V1, (coap_tx_params_t *)tx), 0);
  assert_int_equal(tx->ack_timeout_ms, 2000);
  assert_int_equal(tx->ack_random_factor_pm, 1500);
  assert_int_equal(tx->max_retransmit, 4);
  assert_int_equal(tx->dedup_capacity, 64);

  recorder_t r = {0};
  coap_context_t *ctx = context_v1(&r);
  tx->ack_timeout_ms = 3000;
  assert_int_equal(
      coap_context_set_tx_params_versioned(ctx, COAP_TX_PARAMS_V1, (coap_tx_params_t *)tx), 0);
  tx->nstart = 0; /* out of range */
  assert_int_equal(
      coap_context_set_tx_params_versioned(ctx, COAP_TX_PARAMS_V1, (coap_tx_params_t *)tx),
      COAP_E_INVALID_ARG);
  guarded_check_free(&g);

  guarded_t gc;
  struct v1_context_config *cfg = guarded_new(&gc, V1_LEN(struct v1_context_config, clock_user), 0);
  assert_int_equal(
      coap_context_config_default_versioned(COAP_CONTEXT_CONFIG_V1, (coap_context_config_t *)cfg),
      0);
  assert_int_equal(cfg->tx.ack_timeout_ms, 2000);
  assert_int_equal(cfg->max_peers, 100000);
  assert_int_equal(cfg->max_body, 1u << 20);
  assert_int_equal(cfg->log_level, COAP_LOG_NONE);
  assert_non_null(cfg->clock);
  assert_null(cfg->clock_user);
  guarded_check_free(&gc);
  /* The context made from a version 1 configuration has its logger. */
  assert_int_equal(coap_context_set_tx_params_versioned(ctx, 0, &(coap_tx_params_t){0}),
                   COAP_E_INVALID_ARG);
  assert_non_null(strstr(r.log, "coap_context_set_tx_params: coap_tx_params_t version 0"));
  coap_context_free(ctx);
}

/* A request through a version 1 transport with version 1 options; the
 * counters, the diagnosis and the (absent) handshake report into version 1
 * structs. */
static void test_request_stats_diag_v1(void **state) {
  recorder_t r = {0};
  coap_context_t *ctx = context_v1(&r);
  guarded_t gt;
  struct v1_transport *t = guarded_new(&gt, V1_LEN(struct v1_transport, send_from), 0);
  t->send = rec_send;
  t->open_client_endpoint = rec_open;
  assert_int_equal(
      coap_context_set_transport_versioned(ctx, COAP_TRANSPORT_V1, (coap_transport_t *)t, &r), 0);
  guarded_check_free(&gt);

  guarded_t go;
  struct v1_request_opts *o = guarded_new(&go, V1_LEN(struct v1_request_opts, qblock), 0x5A);
  assert_int_equal(coap_request_opts_init_versioned(COAP_REQUEST_OPTS_V1, (coap_request_opts_t *)o,
                                                    COAP_PUT, "coap://192.0.2.1/v1"),
                   0);
  assert_int_equal(o->method, COAP_PUT);
  assert_int_equal(o->confirmable, 1);
  assert_int_equal(o->accept, COAP_FORMAT_NONE);
  assert_int_equal(o->qblock, 0);
  o->payload = "abc";
  o->payload_len = 3;
  assert_int_equal(coap_send_request_versioned(ctx, COAP_REQUEST_OPTS_V1, (coap_request_opts_t *)o,
                                               on_reply, NULL, NULL),
                   0);
  assert_int_equal(r.sent, 1);
  assert_int_equal(r.last[1], COAP_PUT);
  assert_memory_equal(r.last + r.last_len - 3, "abc", 3);
  /* coaps:// with no credentials: a diagnosis, counted per cause. */
  o->uri = "coaps://192.0.2.1/v1";
  assert_int_equal(coap_send_request_versioned(ctx, COAP_REQUEST_OPTS_V1, (coap_request_opts_t *)o,
                                               on_reply, NULL, NULL),
                   COAP_E_DTLS_NO_CREDENTIALS);
  guarded_check_free(&go);

  guarded_t gs;
  struct v1_stats *st = guarded_new(&gs, V1_LEN(struct v1_stats, failures_by_cause), 0xFF);
  assert_int_equal(coap_context_get_stats_versioned(ctx, COAP_STATS_V1, (coap_stats_t *)st), 0);
  assert_int_equal(st->requests_sent, 1);
  assert_int_equal(st->tx_datagrams, 1);
  assert_int_equal(st->failures_by_cause[COAP_CAUSE_NO_CREDENTIALS], 1);
  for (int i = COAP_CAUSE_COUNT; i < 32; i++) assert_int_equal(st->failures_by_cause[i], 0);
  guarded_check_free(&gs);

  /* A version 2 caller gets the same and the appended counters. */
  guarded_t gs2;
  struct v2_stats *st2 = guarded_new(&gs2, V1_LEN(struct v2_stats, dtls_sessions_by_mode), 0xFF);
  assert_int_equal(coap_context_get_stats_versioned(ctx, COAP_STATS_V2, (coap_stats_t *)st2), 0);
  assert_int_equal(st2->v1.tx_datagrams, 1);
  assert_int_equal(st2->v1.failures_by_cause[COAP_CAUSE_NO_CREDENTIALS], 1);
  assert_true(st2->tx_bytes > 3); /* the PUT with its 3-byte body */
  assert_int_equal(st2->rx_bytes, 0);
  for (int m = 0; m < 4; m++) assert_int_equal(st2->dtls_handshakes_by_mode[m][0], 0);
  guarded_check_free(&gs2);

  /* A version 3 caller gets the ICMP counters too (none here). */
  guarded_t gs3;
  struct v3_stats *st3 = guarded_new(&gs3, V1_LEN(struct v3_stats, icmp_unvetted), 0xFF);
  assert_int_equal(coap_context_get_stats_versioned(ctx, COAP_STATS_V3, (coap_stats_t *)st3), 0);
  assert_int_equal(st3->v2.v1.tx_datagrams, 1);
  assert_int_equal(st3->icmp_vetted, 0);
  assert_int_equal(st3->icmp_unvetted, 0);
  guarded_check_free(&gs3);

  /* The failure log: the same failure, newest first, nothing past it. */
  guarded_t gf;
  struct v1_failure_record *fr = guarded_new(&gf, V1_LEN(struct v1_failure_record, fix), 0);
  assert_int_equal(
      coap_context_failure_versioned(ctx, COAP_FAILURE_RECORD_V1, 0, (coap_failure_record_t *)fr),
      0);
  assert_int_equal(fr->seq, 1);
  assert_int_equal(fr->cause, COAP_CAUSE_NO_CREDENTIALS);
  assert_int_equal(fr->mode, COAP_DTLS_MODE_NONE);
  assert_true(fr->fix[0] != '\0');
  assert_int_equal(
      coap_context_failure_versioned(ctx, COAP_FAILURE_RECORD_V1, 1, (coap_failure_record_t *)fr),
      COAP_E_NOT_FOUND);
  guarded_check_free(&gf);

  guarded_t gd;
  struct v1_diag *d = guarded_new(&gd, V1_LEN(struct v1_diag, elapsed_ms), 0);
  assert_int_equal(coap_context_last_diag_versioned(ctx, COAP_DIAG_V1, (coap_diag_t *)d), 0);
  assert_int_equal(d->cause, COAP_CAUSE_NO_CREDENTIALS);
  assert_int_equal(d->error, COAP_E_DTLS_NO_CREDENTIALS);
  assert_non_null(strstr(d->explanation, "coaps://192.0.2.1/v1"));
  guarded_check_free(&gd);

  /* No handshake yet: nothing written. */
  guarded_t gh;
  size_t hlen = V1_LEN(struct v1_handshake_report, diag);
  void *h = guarded_new(&gh, hlen, 0x33);
  assert_int_equal(coap_context_last_handshake_versioned(ctx, COAP_HANDSHAKE_REPORT_V1, h),
                   COAP_E_NOT_FOUND);
  assert_untouched(&gh, 0x33);
  guarded_check_free(&gh);
  coap_context_free(ctx);
}

/* Every versioned entry point refuses a version it does not know, writes
 * nothing, and says so where it has a logger. */
static void test_unknown_versions_refused(void **state) {
  recorder_t r = {0};
  coap_context_t *ctx = context_v1(&r);
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  coap_transport_t t = {.send = rec_send, .open_client_endpoint = rec_open};
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://192.0.2.1/x");
  coap_address_t lo;
  assert_int_equal(coap_address_from_string(&lo, "127.0.0.1", 9), 0);
  for (size_t i = 0; i < N_BAD; i++) {
    int v = bad_versions[i];
    guarded_t g;
    void *p = guarded_new(&g, sizeof(coap_handshake_report_t), 0x77); /* the largest */
    assert_int_equal(coap_tx_params_default_versioned(v, p), COAP_E_INVALID_ARG);
    assert_int_equal(coap_context_config_default_versioned(v, p), COAP_E_INVALID_ARG);
    assert_int_equal(coap_request_opts_init_versioned(v, p, COAP_GET, "coap://h/"),
                     COAP_E_INVALID_ARG);
    /* Versions 2 and 3 of the stats exist: the next one up stands for them. */
    int vs = v == COAP_STATS_V2 ? COAP_STATS_VERSION + 1 : v;
    assert_int_equal(coap_context_get_stats_versioned(ctx, vs, p), COAP_E_INVALID_ARG);
    assert_int_equal(coap_context_failure_versioned(ctx, v, 0, p), COAP_E_INVALID_ARG);
    assert_int_equal(coap_context_last_diag_versioned(ctx, v, p), COAP_E_INVALID_ARG);
    assert_int_equal(coap_context_last_handshake_versioned(ctx, v, p), COAP_E_INVALID_ARG);
    assert_int_equal(coap_response_copy_clear_versioned(v, p), COAP_E_INVALID_ARG);
    assert_int_equal(coap_probe_port_versioned(&lo, 10, v, p, NULL), COAP_E_INVALID_ARG);
    assert_int_equal(coap_request_blocking_versioned(ctx, COAP_REQUEST_OPTS_VERSION, &o, v, p),
                     COAP_E_INVALID_ARG);
    assert_int_equal(coap_request_blocking_versioned(ctx, v, &o, COAP_RESPONSE_COPY_VERSION, p),
                     COAP_E_INVALID_ARG);
    assert_untouched(&g, 0x77);
    guarded_check_free(&g);

    assert_int_equal(coap_context_set_tx_params_versioned(ctx, v, &cfg.tx), COAP_E_INVALID_ARG);
    /* Version 2 of the transport exists too. */
    int vt = v == COAP_TRANSPORT_V2 ? COAP_TRANSPORT_VERSION + 1 : v;
    assert_int_equal(coap_context_set_transport_versioned(ctx, vt, &t, &r), COAP_E_INVALID_ARG);
    assert_int_equal(coap_send_request_versioned(ctx, v, &o, NULL, NULL, NULL), COAP_E_INVALID_ARG);
    errno = 0;
    assert_null(coap_context_new_versioned(v, &cfg));
    assert_int_equal(errno, EINVAL);
    assert_null(coap_context_new_versioned(v, NULL));
  }
  /* One line per refusal that had the context's logger, naming the call
   * and the struct. */
  assert_non_null(strstr(r.log, "coap_context_get_stats: coap_stats_t version 1000"));
  assert_non_null(strstr(r.log, "coap_context_last_diag: coap_diag_t version -1"));
  assert_non_null(strstr(r.log, "coap_context_set_transport: coap_transport_t version 3"));
  assert_non_null(strstr(r.log, "coap_send_request: coap_request_opts_t version 0"));
  assert_non_null(strstr(r.log, "coap_request_blocking: coap_response_copy_t version 2"));
  assert_int_equal(r.lines, (int)N_BAD * 9);
  coap_context_free(ctx);
}

static void pong(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                 coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "pong", 4);
}

/* The blocking call fills a version 1 response copy, which a version 1
 * clear frees and empties. One context serves and asks over loopback. */
static void test_blocking_copy_v1(void **state) {
  coap_context_t *ctx = coap_context_new(NULL);
  assert_non_null(ctx);
  coap_address_t lo;
  assert_int_equal(coap_address_from_string(&lo, "127.0.0.1", 0), 0);
  coap_endpoint_t *ep = coap_context_listen(ctx, COAP_PROTO_UDP, &lo);
  assert_non_null(ep);
  coap_resource_set_handler(coap_resource_add(ctx, "ping"), COAP_GET, pong, NULL);
  char uri[64];
  snprintf(uri, sizeof uri, "coap://127.0.0.1:%u/ping",
           coap_address_get_port(coap_endpoint_address(ep)));

  guarded_t go, gr;
  struct v1_request_opts *o = guarded_new(&go, V1_LEN(struct v1_request_opts, qblock), 0);
  assert_int_equal(coap_request_opts_init_versioned(COAP_REQUEST_OPTS_V1, (coap_request_opts_t *)o,
                                                    COAP_GET, uri),
                   0);
  o->timeout_ms = 10000;
  struct v1_response_copy *out = guarded_new(&gr, V1_LEN(struct v1_response_copy, raw_len), 0x11);
  assert_int_equal(
      coap_request_blocking_versioned(ctx, COAP_REQUEST_OPTS_V1, (coap_request_opts_t *)o,
                                      COAP_RESPONSE_COPY_V1, (coap_response_copy_t *)out),
      0);
  assert_int_equal(out->code, COAP_CONTENT);
  assert_int_equal(out->content_format, COAP_FORMAT_TEXT_PLAIN);
  assert_int_equal(out->payload_len, 4);
  assert_string_equal((char *)out->payload, "pong");
  assert_true(out->raw_len > 4);
  assert_int_equal(
      coap_response_copy_clear_versioned(COAP_RESPONSE_COPY_V1, (coap_response_copy_t *)out), 0);
  assert_null(out->payload);
  assert_null(out->raw);
  assert_int_equal(out->content_format, COAP_FORMAT_NONE);
  guarded_check_free(&gr);
  guarded_check_free(&go);
  coap_context_free(ctx);
}

/* A probe of a closed loopback port into version 1 results. */
static void test_probe_v1(void **state) {
  /* A port nobody listens on: bind one, learn it, close it. */
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sin;
  assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
  close(fd);
  coap_address_t addr;
  assert_int_equal(coap_address_from_string(&addr, "127.0.0.1", ntohs(sin.sin_port)), 0);

  guarded_t gd, gc;
  size_t len = V1_LEN(struct v1_probe_result, detail);
  struct v1_probe_result *d = guarded_new(&gd, len, 0x44);
  struct v1_probe_result *c = guarded_new(&gc, len, 0x44);
  assert_int_equal(coap_probe_port_versioned(&addr, 2000, COAP_PROBE_RESULT_V1,
                                             (coap_probe_result_t *)d, (coap_probe_result_t *)c),
                   0);
  assert_int_equal(d->answer, COAP_PROBE_REFUSED);
  assert_int_equal(c->answer, COAP_PROBE_REFUSED);
  assert_non_null(memchr(c->detail, '\0', sizeof c->detail));
  guarded_check_free(&gd);
  guarded_check_free(&gc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_v1_lengths_match_the_library),
      cmocka_unit_test(test_older_version_reads_and_writes_its_prefix),
      cmocka_unit_test(test_config_and_tx_params_v1),
      cmocka_unit_test(test_request_stats_diag_v1),
      cmocka_unit_test(test_unknown_versions_refused),
      cmocka_unit_test(test_blocking_copy_v1),
      cmocka_unit_test(test_probe_v1),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
