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

void coap_logf(const coap_logger_t *log, coap_log_level_t level,
               const char *prefix, const char *fmt, ...) {
  if (!coap_log_enabled(log, level)) return;
  char line[512];
  int n = 0;
  if (prefix) n = snprintf(line, sizeof line, "%s ", prefix);
  if (n < 0 || (size_t)n >= sizeof line) n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  if (log->fn)
    log->fn(log->user, level, line);
  else
    fprintf(stderr, "coaps %s: %s\n", level_name(level), line);
}
