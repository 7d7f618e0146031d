/* --log-format json: each of the library's log events as one JSON object
 * on one line of standard error, with its fields apart (time, level,
 * peer, identity, cause, fix, message), for journald and log pipelines.
 * The library hands the fields (coap_context_set_log_event_handler): no
 * text is parsed back. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "log_json.h"
#include "metrics.h"

int log_json_enabled;

static void field(text_buf_t *b, const char *name, const char *value) {
  if (!value[0]) return;
  text_printf(b, ",\"%s\":\"", name);
  text_json_string(b, value);
  text_printf(b, "\"");
}

/* The object's start: {"time":"...Z","level":"..." (UTC, milliseconds). */
static void begin_object(text_buf_t *b, const char *level) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  char when[32] = "?";
  if (gmtime_r(&ts.tv_sec, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  text_printf(b, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\"", when, ts.tv_nsec / 1000000, level);
}

/* One write per line: lines from several workers do not interleave. */
static void end_object(text_buf_t *b) {
  text_printf(b, "}\n");
  if (!b->failed && b->data) fwrite(b->data, 1, b->len, stderr);
  text_buf_free(b);
}

/* A peer's log prefix "[ADDR]" as the plain address a log pipeline
 * matches and the status page shows. */
static void peer_field(text_buf_t *b, const char *peer) {
  char plain[80];
  size_t n = strlen(peer);
  if (n >= 2 && peer[0] == '[' && peer[n - 1] == ']')
    snprintf(plain, sizeof plain, "%.*s", (int)(n - 2), peer + 1);
  else
    snprintf(plain, sizeof plain, "%s", peer);
  field(b, "peer", plain);
}

static void on_event(void *user, const coap_log_event_t *ev) {
  (void)user;
  if (cli_log_quiet) return;
  static const char *const names[] = {"error", "warning", "info", "debug"};
  const char *level =
      ev->level >= COAP_LOG_ERROR && ev->level <= COAP_LOG_DEBUG ? names[ev->level] : "debug";
  text_buf_t b = {0};
  begin_object(&b, level);
  peer_field(&b, ev->peer);
  field(&b, "identity", ev->identity);
  field(&b, "cause", ev->cause);
  field(&b, "fix", ev->fix);
  field(&b, "message", ev->message);
  end_object(&b);
}

void tool_vlog(const char *level, const log_field_t *fields, size_t n, const char *fmt,
               va_list ap) {
  char message[2048];
  vsnprintf(message, sizeof message, fmt, ap);
  if (!log_json_enabled) {
    fprintf(stderr, "coaps: %s%s\n", strcmp(level, "warning") == 0 ? "warning: " : "", message);
    return;
  }
  text_buf_t b = {0};
  begin_object(&b, level);
  field(&b, "message", message);
  for (size_t i = 0; i < n; i++) {
    if (fields[i].text)
      field(&b, fields[i].name, fields[i].text);
    else
      text_printf(&b, ",\"%s\":%lld", fields[i].name, fields[i].count);
  }
  end_object(&b);
}

void tool_log(const char *level, const log_field_t *fields, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tool_vlog(level, fields, n, fmt, ap);
  va_end(ap);
}

void log_json_install(coap_context_t *ctx) {
  coap_context_set_log_event_handler(ctx, on_event, NULL);
}
