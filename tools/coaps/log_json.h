/* The lines the tool itself writes on standard error (warnings, -v
 * observer counts, reloads, the summaries at the stop, fatal errors): as
 * text, "coaps: ...", or under --log-format json as one JSON object per
 * line like the library's events (log_json_install), so that a log
 * pipeline reading the server's stderr never meets a line it cannot
 * parse. */
#ifndef COAPS_TOOL_LOG_JSON_H
#define COAPS_TOOL_LOG_JSON_H

#include <stdarg.h>
#include <stddef.h>

/* One structured field of a line: text, or a count. */
typedef struct log_field {
  const char *name;
  const char *text; /* NULL: |count| is the value */
  long long count;
} log_field_t;
#define LOG_TEXT(name, text) ((log_field_t){(name), (text), 0})
#define LOG_COUNT(name, n) ((log_field_t){(name), NULL, (long long)(n)})

/* Set by `coaps serve --log-format json` once its arguments are parsed:
 * the tool's own lines (and cli_error's) become JSON too. */
extern int log_json_enabled;

/* A line at |level| ("error", "warning", "info") with its fields. In
 * text, a warning keeps its "warning: " prefix and the fields are only
 * in the message. */
void tool_log(const char *level, const log_field_t *fields, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void tool_vlog(const char *level, const log_field_t *fields, size_t n, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
