#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>

static const char *level_name(coap_log_level_t level) {
  switch (level) {
    case COAP_LOG_ERROR: return "error";
    case COAP_LOG_WARNING: return "warning";
    case COAP_LOG_INFO: return "info";
    default: return "debug";
  }
}

static void log_line(const coap_logger_t *log, coap_log_level_t level, const char *prefix,
                     const coap_log_fields_t *fields, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static void log_line(const coap_logger_t *log, coap_log_level_t level, const char *prefix,
                     const coap_log_fields_t *fields, const char *fmt, va_list ap) {
  char line[512];
  int n = 0;
  if (prefix) n = snprintf(line, sizeof line, "%s ", prefix);
  if (n < 0 || (size_t)n >= sizeof line) n = 0;
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  if (log->event_fn) {
    static const coap_log_fields_t none = {NULL, NULL, NULL};
    if (!fields) fields = &none;
    coap_log_event_t ev = {level,
                           line,
                           line + n,
                           prefix ? prefix : "",
                           fields->identity ? fields->identity : "",
                           fields->cause ? fields->cause : "",
                           fields->fix ? fields->fix : ""};
    log->event_fn(log->event_user, &ev);
  } else if (log->fn) {
    log->fn(log->user, level, line);
  } else {
    fprintf(stderr, "coaps %s: %s\n", level_name(level), line);
  }
}

void coap_logf(const coap_logger_t *log, coap_log_level_t level, const char *prefix,
               const char *fmt, ...) {
  if (!coap_log_enabled(log, level)) return;
  va_list ap;
  va_start(ap, fmt);
  log_line(log, level, prefix, NULL, fmt, ap);
  va_end(ap);
}

void coap_logf_fields(const coap_logger_t *log, coap_log_level_t level, const char *prefix,
                      const coap_log_fields_t *fields, const char *fmt, ...) {
  if (!coap_log_enabled(log, level)) return;
  va_list ap;
  va_start(ap, fmt);
  log_line(log, level, prefix, fields, fmt, ap);
  va_end(ap);
}
