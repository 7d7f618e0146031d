/* /metrics: the Prometheus text exposition format (version 0.0.4) of the
 * numbers summed over the workers. Counters end in _total; every family
 * has its HELP and TYPE lines; label values go through
 * text_label_value. */
#include <inttypes.h>
#include <stdio.h>

#include "metrics.h"

static void family(text_buf_t *b, const char *name, const char *type, const char *help) {
  text_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void single(text_buf_t *b, const char *name, const char *type, const char *help,
                   uint64_t value) {
  family(b, name, type, help);
  text_printf(b, "%s %" PRIu64 "\n", name, value);
}

/* name{label="value"} n */
static void labelled(text_buf_t *b, const char *name, const char *label, const char *value,
                     uint64_t n) {
  text_printf(b, "%s{%s=\"", name, label);
  text_label_value(b, value);
  text_printf(b, "\"} %" PRIu64 "\n", n);
}

static void traffic(text_buf_t *b, const coap_stats_t *s) {
  single(b, "coaps_datagrams_received_total", "counter", "UDP datagrams received.",
         s->rx_datagrams);
  single(b, "coaps_datagrams_sent_total", "counter", "UDP datagrams sent.", s->tx_datagrams);
  single(b, "coaps_received_bytes_total", "counter", "UDP payload bytes received.", s->rx_bytes);
  single(b, "coaps_sent_bytes_total", "counter", "UDP payload bytes sent.", s->tx_bytes);
  single(b, "coaps_malformed_datagrams_total", "counter", "Datagrams rejected by the CoAP codec.",
         s->rx_malformed);
  single(b, "coaps_duplicates_total", "counter", "CON and NON messages seen before.",
         s->rx_duplicates);
  single(b, "coaps_retransmissions_total", "counter", "CON messages sent again.",
         s->retransmissions);
  single(b, "coaps_requests_received_total", "counter", "Requests handled as server.",
         s->requests_handled);
  family(b, "coaps_responses_sent_total", "counter",
         "Responses sent as server, by code class (2xx, 4xx, 5xx).");
  static const int classes[] = {2, 4, 5};
  for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
    char cls[8];
    snprintf(cls, sizeof cls, "%dxx", classes[i]);
    labelled(b, "coaps_responses_sent_total", "class", cls, s->responses_by_class[classes[i]]);
  }
}

static void handshakes(text_buf_t *b, const coap_stats_t *s) {
  family(b, "coaps_dtls_handshakes_total", "counter",
         "DTLS handshakes by mode (psk, rpk, x509), kind (full, resumed) and result "
         "(ok, failed; a failure's kind is not known, its mode is none when it failed "
         "before one was negotiated).");
  for (int m = COAP_DTLS_MODE_PSK; m < COAP_DTLS_MODE_COUNT; m++)
    for (int kind = 0; kind < 2; kind++)
      text_printf(
          b, "coaps_dtls_handshakes_total{mode=\"%s\",kind=\"%s\",result=\"ok\"} %" PRIu64 "\n",
          coap_dtls_mode_name((coap_dtls_mode_t)m), kind ? "resumed" : "full",
          s->dtls_handshakes_by_mode[m][kind]);
  for (int m = 0; m < COAP_DTLS_MODE_COUNT; m++)
    text_printf(b,
                "coaps_dtls_handshakes_total{mode=\"%s\",kind=\"unknown\",result=\"failed\"} "
                "%" PRIu64 "\n",
                coap_dtls_mode_name((coap_dtls_mode_t)m), s->dtls_failures_by_mode[m]);
  family(b, "coaps_failures_total", "counter",
         "Failed handshakes and connections by cause (coaps doctor --causes names them).");
  for (int c = 1; c < COAP_CAUSE_COUNT; c++)
    labelled(b, "coaps_failures_total", "cause", coap_cause_name((coap_cause_t)c),
             s->failures_by_cause[c]);
  family(b, "coaps_dtls_sessions", "gauge", "Established DTLS sessions by mode.");
  for (int m = COAP_DTLS_MODE_PSK; m < COAP_DTLS_MODE_COUNT; m++)
    labelled(b, "coaps_dtls_sessions", "mode", coap_dtls_mode_name((coap_dtls_mode_t)m),
             s->dtls_sessions_by_mode[m]);
  single(b, "coaps_dtls_cookies_sent_total", "counter",
         "Cookie exchanges: HelloVerifyRequests sent.", s->dtls_cookies_sent);
  single(b, "coaps_dtls_refused_total", "counter",
         "ClientHellos dropped: too many handshakes in progress.", s->dtls_refused);
  single(b, "coaps_dtls_half_open_evicted_total", "counter",
         "Unfinished handshakes ended to make room for a verified client.",
         s->dtls_half_open_evicted);
}

static void peers(text_buf_t *b, const coap_stats_t *s) {
  single(b, "coaps_peers", "gauge", "Clients the server keeps state for.", s->peers);
  single(b, "coaps_peers_evicted_total", "counter",
         "Silent clients forgotten to make room (--max-peers, --evict-after).", s->peers_evicted);
  single(b, "coaps_peers_rejected_total", "counter",
         "Datagrams from new clients dropped: --max-peers reached.", s->peers_rejected);
  single(b, "coaps_observers", "gauge", "Observe relations held (RFC 7641).", s->observers);
  single(b, "coaps_notifications_sent_total", "counter", "Observe notifications sent.",
         s->notifications_sent);
}

static void process(text_buf_t *b, const metrics_view_t *v) {
  family(b, "coaps_reloads_total", "counter",
         "Reloads of the credentials (SIGHUP) by result: ok, or failed (the old ones kept).");
  labelled(b, "coaps_reloads_total", "result", "ok", v->reloads.ok);
  labelled(b, "coaps_reloads_total", "result", "failed", v->reloads.failed);
  family(b, "coaps_last_reload_success_timestamp_seconds", "gauge",
         "When the credentials were last reloaded (seconds since the epoch; 0: never).");
  text_printf(b, "coaps_last_reload_success_timestamp_seconds %" PRId64 "\n",
              v->reloads.last_success_unix);
  family(b, "coaps_start_time_seconds", "gauge",
         "When the server started (seconds since the epoch).");
  text_printf(b, "coaps_start_time_seconds %" PRId64 "\n", v->started_unix);
  single(b, "coaps_workers", "gauge", "Workers whose numbers are included.",
         (uint64_t)v->workers_published);
}

void metrics_prometheus(const metrics_view_t *v, text_buf_t *out) {
  traffic(out, &v->sum);
  handshakes(out, &v->sum);
  peers(out, &v->sum);
  process(out, v);
}
