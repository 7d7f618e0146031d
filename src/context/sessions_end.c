/* Ending DTLS sessions by who the peer is: a device whose PSK identity or
 * raw key a reload removed, or every session at a graceful stop. */
#include "coaps/credentials.h"
#include "context/context_internal.h"

size_t coap_context_end_sessions(coap_context_t *ctx, coap_session_match_fn match, void *user) {
  if (!ctx) return 0;
  size_t ended = 0;
  coap_peer_t *p = coap_peer_table_oldest(&ctx->peers);
  while (p) {
    coap_peer_t *next = coap_peer_newer(p);
    coap_session_info_t info;
    char fp[112];
    if (coap_secure_peer_info(p, &info, fp) == 0 && (!match || match(user, &info) == 1)) {
      coap_logf(&ctx->log, COAP_LOG_INFO, p->name, "DTLS session ended%s%s%s",
                info.psk_identity ? " (identity '" : "", info.psk_identity ? info.psk_identity : "",
                info.psk_identity ? "')" : "");
      coap_context_peer_destroy(ctx, p);
      ended++;
    }
    p = next;
  }
  return ended;
}

size_t coap_context_end_revoked_sessions(coap_context_t *ctx) {
  if (!ctx || !ctx->dtls) return 0;
  size_t ended = 0;
  coap_peer_t *p = coap_peer_table_oldest(&ctx->peers);
  while (p) {
    coap_peer_t *next = coap_peer_newer(p);
    if (coap_secure_peer_revoked(p, ctx->dtls)) {
      coap_logf(&ctx->log, COAP_LOG_WARNING, p->name,
                "credentials no longer accepted (reload): DTLS session ended");
      coap_context_peer_destroy(ctx, p);
      ended++;
    }
    p = next;
  }
  return ended;
}
