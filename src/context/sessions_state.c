/* DTLS sessions carried across a restart: the peer table's entries
 * (secure.c) in the sealed envelope of src/security/dtls_state.c. */
#include <stdlib.h>

#include "coaps/dtls.h"
#include "common/util.h"
#include "context/context_internal.h"
#include "security/dtls_state.h"

/* Sequence numbers skipped at a save: a second line of defence behind
 * retiring the keys (docs/security.md). */
#define RESTART_SEQ_MARGIN 1024

long coap_context_export_sessions(coap_context_t *ctx, const uint8_t *key, size_t key_len,
                                  uint64_t node_id, uint64_t now_ms, uint8_t *out, size_t cap,
                                  size_t *carried) {
  if (!ctx || !key) return COAP_E_INVALID_ARG;
  if (key_len != 16 && key_len != 32) return COAP_E_INVALID_ARG;
  if (!ctx->dtls) return COAP_E_STATE;
  size_t bound = coap_secure_export_bound(ctx);
  if (!out) return (long)(bound + COAP_DTLS_STATE_OVERHEAD);
  uint8_t *plain = malloc(bound ? bound : 1);
  if (!plain) return COAP_E_NOMEM;
  size_t n_carried, n_left;
  long len = coap_secure_export(ctx, RESTART_SEQ_MARGIN, plain, bound, &n_carried, &n_left);
  if (len >= 0) {
    len = coap_dtls_state_seal(key, key_len, node_id, now_ms, ctx->cfg.rand, ctx->cfg.rand_user,
                               plain, (size_t)len, out, cap);
    if (len < 0) len = COAP_E_BUFFER_TOO_SMALL;
  }
  coap_memzero(plain, bound);
  free(plain);
  if (len >= 0) {
    coap_logf(&ctx->log, COAP_LOG_INFO, NULL,
              "%zu DTLS session(s) saved for a restart, %zu not (handshake not finished)",
              n_carried, n_left);
    if (carried) *carried = n_carried;
  }
  return len;
}

long coap_context_import_sessions(coap_context_t *ctx, const uint8_t *key, size_t key_len,
                                  uint64_t node_id, uint64_t now_ms, uint64_t max_age_ms,
                                  uint64_t *last_sealed_ms, const uint8_t *in, size_t len,
                                  const char **why) {
  const char *ignored;
  if (!why) why = &ignored;
  *why = "invalid argument";
  if (!ctx || !key || !in) return COAP_E_INVALID_ARG;
  *why = "no DTLS configuration";
  if (!ctx->dtls) return COAP_E_STATE;
  uint8_t *plain = malloc(len ? len : 1);
  *why = "out of memory";
  if (!plain) return COAP_E_NOMEM;
  uint64_t sealed_at = 0;
  long n = coap_dtls_state_open(key, key_len, node_id, now_ms, max_age_ms, in, len, plain, len,
                                &sealed_at);
  /* Sequence numbers go on from where the buffer left them: a buffer
   * taken twice would use them twice (docs/security.md). */
  if (n >= 0 && last_sealed_ms && sealed_at <= *last_sealed_ms) n = COAP_DTLS_STATE_REPLAYED;
  long rc = COAP_E_INVALID_ARG;
  size_t carried = 0, skipped = 0;
  if (n < 0) {
    *why = coap_dtls_state_refusal(n);
  } else if (coap_secure_import(ctx, plain, (size_t)n, coap_context_now(ctx), &carried, &skipped) <
             0) {
    *why = "malformed inside its seal";
  } else {
    *why = "accepted";
    rc = (long)carried;
    if (last_sealed_ms) *last_sealed_ms = sealed_at;
    coap_logf(&ctx->log, COAP_LOG_INFO, NULL,
              "%zu DTLS session(s) taken over from before the restart, %zu skipped", carried,
              skipped);
  }
  coap_memzero(plain, len);
  free(plain);
  return rc;
}
