/* Levelled logging with a per-peer prefix, redirected through the
 * context's callback. */
#ifndef COAPS_COMMON_LOG_H
#define COAPS_COMMON_LOG_H

#include "coaps/context.h"

typedef struct coap_logger {
  coap_log_fn fn; /* NULL: stderr */
  void *user;
  coap_log_level_t level;
  coap_log_event_fn event_fn; /* set: events instead of lines to |fn| */
  void *event_user;
} coap_logger_t;

/* The fields of a failure's log line beyond its text (NULL: none). */
typedef struct coap_log_fields {
  const char *identity, *cause, *fix;
} coap_log_fields_t;

/* |prefix| (e.g. "[192.0.2.1:5683]") may be NULL. */
void coap_logf(const coap_logger_t *log, coap_log_level_t level, const char *prefix,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* coap_logf with the fields of a failure, for structured handlers. */
void coap_logf_fields(const coap_logger_t *log, coap_log_level_t level, const char *prefix,
                      const coap_log_fields_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* COAP_LOG_NONE is the default: an installed callback then gets errors
 * and warnings, the stderr fallback nothing (the library stays silent
 * unless the application asks). */
static inline coap_log_level_t coap_log_effective(const coap_logger_t *log) {
  if (log->level != COAP_LOG_NONE) return log->level;
  return log->fn || log->event_fn ? COAP_LOG_WARNING : COAP_LOG_NONE;
}

static inline int coap_log_enabled(const coap_logger_t *log, coap_log_level_t level) {
  return log && level != COAP_LOG_NONE && level <= coap_log_effective(log);
}

#endif
