/* Failures of the node, told once: the last diagnosis for the API,
 * counters per cause, a rate-limited log line per failure, and the checks
 * that tell a coap:// port from a coaps:// one. */
#include <stdio.h>
#include <string.h>

#include "common/abi.h"
#include "common/diag.h"
#include "context/context_internal.h"

/* At most this many failure lines per window; the rest are counted. */
#define FAILURE_LOG_BURST 10
#define FAILURE_LOG_WINDOW_MS 10000

static int failure_log_allowed(coap_context_t *ctx, uint64_t now) {
  if (now - ctx->failure_window_start >= FAILURE_LOG_WINDOW_MS || !ctx->failure_window_start) {
    if (ctx->failures_unlogged)
      coap_logf(&ctx->log, COAP_LOG_WARNING, NULL,
                "%u more failed handshakes or requests were not logged (see the "
                "per-cause counters of coap_context_get_stats)",
                ctx->failures_unlogged);
    ctx->failure_window_start = now ? now : 1;
    ctx->failure_lines = 0;
    ctx->failures_unlogged = 0;
  }
  if (ctx->failure_lines < FAILURE_LOG_BURST) {
    ctx->failure_lines++;
    return 1;
  }
  ctx->failures_unlogged++;
  return 0;
}

/* The record's address without the log prefix's brackets: a peer's name
 * is "[ADDR]" ("[192.0.2.1:5684]", "[[2001:db8::1]:5684]"), and a person
 * pastes the address, not the prefix, into a filter or a URI. */
static void plain_peer(char *out, size_t cap, const char *name) {
  size_t n = strlen(name);
  if (n >= 2 && name[0] == '[' && name[n - 1] == ']')
    snprintf(out, cap, "%.*s", (int)(n - 2), name + 1);
  else
    snprintf(out, cap, "%s", name);
}

/* Into the ring of the last COAP_FAILURE_LOG_SIZE failures. */
static void keep_failure(coap_context_t *ctx, const coap_diag_t *g, const char *identity, int mode,
                         uint64_t now) {
  uint64_t seq = ++ctx->failure_seq;
  coap_failure_record_t *r = &ctx->failures[(seq - 1) % COAP_FAILURE_LOG_SIZE];
  memset(r, 0, sizeof(*r));
  r->seq = seq;
  r->at_ms = now;
  r->cause = g->cause;
  r->mode = (coap_dtls_mode_t)mode;
  r->is_server = g->is_server;
  plain_peer(r->peer, sizeof r->peer, ctx->last_diag.peer);
  snprintf(r->identity, sizeof r->identity, "%s", identity ? identity : "");
  snprintf(r->explanation, sizeof r->explanation, "%s", g->explanation);
  snprintf(r->fix, sizeof r->fix, "%s", g->fix);
}

void coap_context_note_failure(coap_context_t *ctx, const coap_diag_t *g, const char *peer_name,
                               uint64_t now) {
  coap_context_note_failure_of(ctx, g, peer_name, NULL, COAP_DTLS_MODE_NONE, now);
}

void coap_context_note_failure_of(coap_context_t *ctx, const coap_diag_t *g, const char *peer_name,
                                  const char *identity, int mode, uint64_t now) {
  ctx->last_diag = *g;
  if (peer_name) snprintf(ctx->last_diag.peer, sizeof ctx->last_diag.peer, "%s", peer_name);
  ctx->has_diag = 1;
  snprintf(ctx->last_error, sizeof ctx->last_error, "%s", g->explanation);
  if ((int)g->cause > 0 && g->cause < COAP_CAUSE_COUNT) ctx->failures_by_cause[g->cause]++;
  int quiet = g->cause == COAP_CAUSE_PEER_CLOSED;
  if (!quiet) keep_failure(ctx, g, identity, mode, now);
  coap_log_level_t level = quiet ? COAP_LOG_INFO : COAP_LOG_WARNING;
  if (!coap_log_enabled(&ctx->log, level) || (!quiet && !failure_log_allowed(ctx, now))) return;
  char alert[64] = "";
  if (g->alert >= 0)
    snprintf(alert, sizeof alert, " (alert %s %s)", g->alert_name,
             g->detected_by == COAP_DETECTED_PEER_ALERT ? "received" : "sent");
  coap_log_fields_t fields = {identity, coap_cause_name(g->cause), g->fix};
  coap_logf_fields(&ctx->log, level, peer_name, &fields, "%s failed [%s]: %s%s",
                   g->is_server ? "the client's DTLS handshake" : "connection",
                   coap_cause_name(g->cause), g->explanation, alert);
}

int coap_context_failure_versioned(const coap_context_t *ctx, int version, size_t index,
                                   coap_failure_record_t *out) {
  const char *fn = "coap_context_failure";
  const coap_abi_struct_t *abi = coap_abi_struct(COAP_ABI_FAILURE_RECORD);
  if (!ctx || !out || !coap_abi_len(abi, version, &ctx->log, fn)) return COAP_E_INVALID_ARG;
  if (index >= COAP_FAILURE_LOG_SIZE || index >= ctx->failure_seq) return COAP_E_NOT_FOUND;
  uint64_t seq = ctx->failure_seq - index;
  return coap_abi_write(abi, version, &ctx->failures[(seq - 1) % COAP_FAILURE_LOG_SIZE], out,
                        &ctx->log, fn);
}

void coap_context_set_log_event_handler(coap_context_t *ctx, coap_log_event_fn fn, void *user) {
  if (!ctx) return;
  ctx->log.event_fn = fn;
  ctx->log.event_user = user;
}

const char *coap_dtls_mode_name(coap_dtls_mode_t mode) {
  static const char *const names[COAP_DTLS_MODE_COUNT] = {"none", "psk", "rpk", "x509"};
  return (unsigned)mode < COAP_DTLS_MODE_COUNT ? names[mode] : "none";
}

void coap_context_fail_peer(coap_context_t *ctx, coap_peer_t *peer, int err, uint64_t now) {
  ctx->diag_current = 1;
  coap_exch_peer_fail(ctx->exch, &peer->exch, err, now);
  ctx->diag_current = 0;
}

const coap_diag_t *coap_context_current_diag(const coap_context_t *ctx, int err) {
  if (!ctx->has_diag || !ctx->diag_current || ctx->last_diag.error != err) return NULL;
  return &ctx->last_diag;
}

int coap_context_last_diag_versioned(const coap_context_t *ctx, int version, coap_diag_t *out) {
  const char *fn = "coap_context_last_diag";
  const coap_abi_struct_t *abi = coap_abi_struct(COAP_ABI_DIAG);
  if (!ctx || !out || !coap_abi_len(abi, version, &ctx->log, fn)) return COAP_E_INVALID_ARG;
  if (!ctx->has_diag) return COAP_E_NOT_FOUND;
  return coap_abi_write(abi, version, &ctx->last_diag, out, &ctx->log, fn);
}

int coap_context_last_handshake_versioned(const coap_context_t *ctx, int version,
                                          coap_handshake_report_t *out) {
  const char *fn = "coap_context_last_handshake";
  const coap_abi_struct_t *abi = coap_abi_struct(COAP_ABI_HANDSHAKE_REPORT);
  if (!ctx || !out || !coap_abi_len(abi, version, &ctx->log, fn)) return COAP_E_INVALID_ARG;
  if (!ctx->has_report) return COAP_E_NOT_FOUND;
  return coap_abi_write(abi, version, &ctx->last_report, out, &ctx->log, fn);
}

/* ---- coap:// and coaps:// on the wrong port ---- */

static uint16_t port_of(const coap_peer_t *peer) {
  return coap_address_get_port(&peer->addr);
}

int coap_context_plain_sees_dtls(coap_context_t *ctx, coap_endpoint_t *ep,
                                 const coap_address_t *from, const uint8_t *data, size_t len,
                                 uint64_t now) {
  if (!coap_dtls_looks_like_record(data, len)) return 0;
  coap_peer_t *peer = coap_peer_table_find(&ctx->peers, ep, from);
  if (!peer || coap_exch_peer_idle(&peer->exch)) {
    /* We are the server: a client says coaps:// with our coap:// port.
     * No peer state for it; it learns the same from our silence or its
     * own probe. */
    if (coap_dtls_is_client_hello(data, len) && failure_log_allowed(ctx, now)) {
      char addr[64];
      coap_logf(&ctx->log, COAP_LOG_WARNING, NULL,
                "a DTLS ClientHello from %s arrived at a coap:// endpoint: that client "
                "uses coaps:// with a plain CoAP port (coaps:// is 5684 by default)",
                coap_address_format(from, addr, sizeof addr));
    }
    return 1;
  }
  coap_diag_t g;
  coap_diag_begin(&g, COAP_CAUSE_DTLS_PEER, COAP_STEP_NONE, COAP_DETECTED_NETWORK,
                  COAP_E_WRONG_PROTOCOL);
  coap_diag_explain(&g,
                    "port %u answered with a DTLS record, not CoAP: a DTLS (coaps://) "
                    "server listens there",
                    port_of(peer));
  /* The URI's authority, not the bracketed log prefix peer->name. */
  char authority[64];
  coap_address_format(&peer->addr, authority, sizeof authority);
  coap_diag_fix(&g,
                "use coaps://%s/ with credentials, or the server's coap:// port "
                "(5683 by default)",
                authority);
  coap_context_note_failure(ctx, &g, peer->name, now);
  coap_context_fail_peer(ctx, peer, COAP_E_WRONG_PROTOCOL, now);
  return 1;
}

void coap_context_plain_probe(coap_context_t *ctx, coap_peer_t *peer) {
  if (peer->rx || peer->probed || ++peer->tx_unanswered < 2) return;
  peer->probed = 1;
  uint8_t hello[512];
  int n = coap_dtls_probe_hello(hello, sizeof hello);
  if (n <= 0) return;
  coap_logf(&ctx->log, COAP_LOG_DEBUG, peer->name,
            "no answer yet: probing for a DTLS server on that port");
  ctx->tx_datagrams++;
  ctx->transport.send(ctx->transport_user, peer->ep, &peer->addr, hello, (size_t)n);
}

/* One line a minute at most: a NAT in front of many devices rebinds all
 * of them at once, and each sends records until it gives its session up. */
#define STRANGER_LOG_EVERY_MS 60000

void coap_context_note_stranger_record(coap_context_t *ctx, const coap_address_t *from,
                                       uint64_t now) {
  ctx->failures_by_cause[COAP_CAUSE_NAT_REBINDING]++;
  if (ctx->stranger_logged_at && now - ctx->stranger_logged_at < STRANGER_LOG_EVERY_MS) {
    ctx->strangers_unlogged++;
    return;
  }
  char addr[64], name[68], more[96] = "";
  snprintf(name, sizeof name, "[%s]", coap_address_format(from, addr, sizeof addr));
  if (ctx->strangers_unlogged)
    snprintf(more, sizeof more, " (%llu more such records since the last line)",
             (unsigned long long)ctx->strangers_unlogged);
  ctx->stranger_logged_at = now ? now : 1;
  ctx->strangers_unlogged = 0;
  coap_logf(&ctx->log, COAP_LOG_WARNING, name,
            "[%s] encrypted DTLS record from an address with no session: likely NAT "
            "rebinding (the client's port changed; or its session is one this server "
            "no longer has); dropped, the client must handshake again — the client "
            "should use Connection ID%s",
            coap_cause_name(COAP_CAUSE_NAT_REBINDING), more);
}
