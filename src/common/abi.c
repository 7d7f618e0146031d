/* The frozen layouts of the versioned public structs: for each, the bytes
 * of every version. A field is only ever appended, with a new version
 * (COAP_*_V2 in the header, one more entry here, named by its last field);
 * an entry never changes once released. tests/unit/test_abi_versions.c
 * keeps hand-written copies of each version 1 and checks the headers still
 * lay them out that way. */
#include "common/abi.h"

#include <string.h>

#include "coaps/context.h"
#include "coaps/diag.h"
#include "coaps/dtls.h"
#include "coaps/io.h"

/* One table per struct; it lists every version up to the header's
 * current one. */
#define ABI_STRUCT(var, type, current, ...)                           \
  static const size_t var##_len[] = {__VA_ARGS__};                    \
  _Static_assert(sizeof var##_len / sizeof var##_len[0] == (current), \
                 #var " lists every version up to " #current);        \
  static const coap_abi_struct_t var = {#type, var##_len, (current)}

/* coap_context_config_t embeds coap_tx_params_t (first) and
 * coap_handshake_report_t embeds coap_diag_t and coap_peer_cert_info_t:
 * growing an embedded struct moves what follows it, so it takes a new
 * version of the outer struct too, read or written field by field from a
 * frozen copy of the old layout rather than as a prefix. */
ABI_STRUCT(coap_abi_tx_params, coap_tx_params_t, COAP_TX_PARAMS_VERSION,
           COAP_ABI_LEN(coap_tx_params_t, dedup_capacity));
ABI_STRUCT(coap_abi_context_config, coap_context_config_t, COAP_CONTEXT_CONFIG_VERSION,
           COAP_ABI_LEN(coap_context_config_t, clock_user));
ABI_STRUCT(coap_abi_transport, coap_transport_t, COAP_TRANSPORT_VERSION,
           COAP_ABI_LEN(coap_transport_t, send_from),
           COAP_ABI_LEN(coap_transport_t, close_endpoint));
ABI_STRUCT(coap_abi_request_opts, coap_request_opts_t, COAP_REQUEST_OPTS_VERSION,
           COAP_ABI_LEN(coap_request_opts_t, qblock));
ABI_STRUCT(coap_abi_response_copy, coap_response_copy_t, COAP_RESPONSE_COPY_VERSION,
           COAP_ABI_LEN(coap_response_copy_t, raw_len));
ABI_STRUCT(coap_abi_stats, coap_stats_t, COAP_STATS_VERSION,
           COAP_ABI_LEN(coap_stats_t, failures_by_cause),
           COAP_ABI_LEN(coap_stats_t, dtls_sessions_by_mode),
           COAP_ABI_LEN(coap_stats_t, icmp_unvetted));
ABI_STRUCT(coap_abi_diag, coap_diag_t, COAP_DIAG_VERSION, COAP_ABI_LEN(coap_diag_t, elapsed_ms));
ABI_STRUCT(coap_abi_handshake_report, coap_handshake_report_t, COAP_HANDSHAKE_REPORT_VERSION,
           COAP_ABI_LEN(coap_handshake_report_t, diag));
ABI_STRUCT(coap_abi_failure_record, coap_failure_record_t, COAP_FAILURE_RECORD_VERSION,
           COAP_ABI_LEN(coap_failure_record_t, fix));
ABI_STRUCT(coap_abi_probe_result, coap_probe_result_t, COAP_PROBE_RESULT_VERSION,
           COAP_ABI_LEN(coap_probe_result_t, detail));
ABI_STRUCT(coap_abi_dtls_cid_info, coap_dtls_cid_info_t, COAP_DTLS_CID_INFO_VERSION,
           COAP_ABI_LEN(coap_dtls_cid_info_t, peer));
ABI_STRUCT(coap_abi_dtls_cid_stats, coap_dtls_cid_stats_t, COAP_DTLS_CID_STATS_VERSION,
           COAP_ABI_LEN(coap_dtls_cid_stats_t, held), COAP_ABI_LEN(coap_dtls_cid_stats_t, forged));

/* A new cause or step takes a reserved slot: no field moves. When one is
 * full, a new version appends a larger array and keeps filling the old
 * one as far as it goes. */
_Static_assert(COAP_CAUSE_COUNT <= COAP_STATS_CAUSE_SLOTS,
               "coap_stats_t.failures_by_cause is full: see COAP_STATS_CAUSE_SLOTS");
_Static_assert(COAP_DTLS_MODE_COUNT <= COAP_DTLS_MODE_SLOTS,
               "coap_stats_t's per-mode counters are full: see COAP_DTLS_MODE_SLOTS");
_Static_assert(COAP_STEP_COUNT <= COAP_REPORT_STEP_SLOTS,
               "coap_handshake_report_t.step_ms is full: see COAP_REPORT_STEP_SLOTS");

const coap_abi_struct_t *coap_abi_struct(coap_abi_id_t id) {
  static const coap_abi_struct_t *const table[COAP_ABI_COUNT] = {
      [COAP_ABI_TX_PARAMS] = &coap_abi_tx_params,
      [COAP_ABI_CONTEXT_CONFIG] = &coap_abi_context_config,
      [COAP_ABI_TRANSPORT] = &coap_abi_transport,
      [COAP_ABI_REQUEST_OPTS] = &coap_abi_request_opts,
      [COAP_ABI_RESPONSE_COPY] = &coap_abi_response_copy,
      [COAP_ABI_STATS] = &coap_abi_stats,
      [COAP_ABI_DIAG] = &coap_abi_diag,
      [COAP_ABI_HANDSHAKE_REPORT] = &coap_abi_handshake_report,
      [COAP_ABI_PROBE_RESULT] = &coap_abi_probe_result,
      [COAP_ABI_FAILURE_RECORD] = &coap_abi_failure_record,
      [COAP_ABI_DTLS_CID_INFO] = &coap_abi_dtls_cid_info,
      [COAP_ABI_DTLS_CID_STATS] = &coap_abi_dtls_cid_stats,
  };
  return (unsigned)id < COAP_ABI_COUNT ? table[id] : NULL;
}

size_t coap_abi_len(const coap_abi_struct_t *s, int version, const coap_logger_t *log,
                    const char *fn) {
  if (version >= 1 && version <= s->versions) return s->len[version - 1];
  coap_logf(log, COAP_LOG_ERROR, NULL,
            "%s: %s version %d is not one this library knows (1 to %d): was the "
            "program built against another coaps header? Refused",
            fn, s->name, version, s->versions);
  return 0;
}

int coap_abi_read(const coap_abi_struct_t *s, int version, const void *from, void *latest,
                  const coap_logger_t *log, const char *fn) {
  size_t len = coap_abi_len(s, version, log, fn);
  if (!len) return COAP_E_INVALID_ARG;
  memcpy(latest, from, len);
  return 0;
}

int coap_abi_write(const coap_abi_struct_t *s, int version, const void *latest, void *to,
                   const coap_logger_t *log, const char *fn) {
  size_t len = coap_abi_len(s, version, log, fn);
  if (!len) return COAP_E_INVALID_ARG;
  memcpy(to, latest, len);
  return 0;
}
