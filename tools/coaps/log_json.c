/* --log-format json: each of the library's log events as one JSON object
 * on one line of standard error, with its fields apart (time, level,
 * peer, identity, cause, fix, message), for journald and log pipelines.
 * The library hands the fields (coap_context_set_log_event_handler): no
 * text is parsed back. */
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "metrics.h"

static void field(text_buf_t *b, const char *name, const char *value) {
  if (!value[0]) return;
  text_printf(b, ",\"%s\":\"", name);
  text_json_string(b, value);
  text_printf(b, "\"");
}

static void on_event(void *user, const coap_log_event_t *ev) {
  (void)user;
  if (cli_log_quiet) return;
  static const char *const names[] = {"error", "warning", "info", "debug"};
  const char *level =
      ev->level >= COAP_LOG_ERROR && ev->level <= COAP_LOG_DEBUG ? names[ev->level] : "debug";
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  char when[32] = "?";
  if (gmtime_r(&ts.tv_sec, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  text_buf_t b = {0};
  text_printf(&b, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\"", when, ts.tv_nsec / 1000000, level);
  field(&b, "peer", ev->peer);
  field(&b, "identity", ev->identity);
  field(&b, "cause", ev->cause);
  field(&b, "fix", ev->fix);
  field(&b, "message", ev->message);
  text_printf(&b, "}\n");
  /* One write per event: lines from several workers do not interleave. */
  if (!b.failed && b.data) fwrite(b.data, 1, b.len, stderr);
  text_buf_free(&b);
}

void log_json_install(coap_context_t *ctx) {
  coap_context_set_log_event_handler(ctx, on_event, NULL);
}
