/* coaps serve --metrics: numbers for monitoring (Prometheus /metrics), a
 * status page (/ and /status.json), and the board the workers publish
 * their numbers on.
 *
 * The workers never wait for the HTTP side: each one copies its
 * coap_stats_t and recent failures into its own slot of the board at
 * most every METRICS_PUBLISH_MS, under a mutex it only tries
 * (pthread_mutex_trylock: a scrape copying that slot makes the worker
 * skip one publication, never block). The HTTP thread sums the slots. */
#ifndef COAPS_TOOL_METRICS_H
#define COAPS_TOOL_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "coap.h"

#define METRICS_PUBLISH_MS 100

/* A growing text buffer; on allocation failure it stays short and
 * |failed| is set. */
typedef struct text_buf {
  char *data;
  size_t len, cap;
  int failed;
} text_buf_t;

void text_buf_free(text_buf_t *b);
void text_printf(text_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* |s| as the inside of a JSON string: quotes, backslashes, control
 * characters, and <, >, & and bytes above 0x7e as \u escapes (valid UTF-8
 * whatever the bytes were; safe inside HTML too). */
void text_json_string(text_buf_t *b, const char *s);
/* |s| as a Prometheus label value: backslash, double quote and newline
 * escaped. */
void text_label_value(text_buf_t *b, const char *s);

/* Reloads of the credentials (SIGHUP), as /metrics shows them. */
typedef struct metrics_reloads {
  uint64_t ok, failed;       /* reloads that took, and that kept the old credentials */
  int64_t last_success_unix; /* seconds since the epoch, 0: never */
} metrics_reloads_t;

/* One worker's published numbers. */
typedef struct metrics_slot {
  pthread_mutex_t lock;
  int published; /* anything yet */
  coap_stats_t stats;
  coap_failure_record_t failures[COAP_FAILURE_LOG_SIZE]; /* newest first */
  size_t n_failures;
  uint64_t last_publish_ms; /* the worker's own, read by it only */
  uint64_t failure_seq;     /* the newest one copied (worker only) */
} metrics_slot_t;

typedef struct metrics_board {
  long n_workers;
  metrics_slot_t *slots;
  int64_t started_unix;     /* when serve started */
  uint64_t started_mono_ms; /* the same on the contexts' clock */
  /* Written by the thread that reloads (metrics_note_reload), read by
   * the HTTP thread. */
  _Atomic uint64_t reloads_ok, reloads_failed;
  _Atomic int64_t last_reload_success_unix;
} metrics_board_t;

/* 0, or -1 when out of memory. */
int metrics_board_init(metrics_board_t *b, long n_workers);
void metrics_board_free(metrics_board_t *b);
/* From worker |index|'s thread after each turn of its loop: publish if
 * METRICS_PUBLISH_MS passed (|force|: now). Never blocks. */
void metrics_publish(metrics_board_t *b, long index, coap_context_t *ctx, int force);
/* After a reload of the credentials (|ok|: it took): for
 * coaps_reloads_total and coaps_last_reload_success_timestamp_seconds.
 * |b| NULL (no --metrics): nothing. */
void metrics_note_reload(metrics_board_t *b, int ok);

/* What the HTTP side reads: the workers' numbers summed, and their
 * recent failures merged, newest first. */
typedef struct metrics_view {
  coap_stats_t sum;
  long workers_published;
  coap_failure_record_t failures[COAP_FAILURE_LOG_SIZE];
  size_t n_failures;
  metrics_reloads_t reloads;
  int64_t now_unix, started_unix;
  uint64_t now_mono_ms;
} metrics_view_t;

void metrics_collect(metrics_board_t *b, metrics_view_t *v);
/* When a failure happened, in seconds since the epoch (from its
 * monotonic timestamp). */
double metrics_failure_unix(const metrics_view_t *v, const coap_failure_record_t *f);
/* Monotonic milliseconds: the clock the library's contexts use. */
uint64_t metrics_mono_ms(void);

/* The bodies served. */
void metrics_prometheus(const metrics_view_t *v, text_buf_t *out);
void status_json(const metrics_view_t *v, text_buf_t *out);
extern const char status_page_html[];

/* The HTTP listener. */
typedef struct metrics_server metrics_server_t;
/* "9100" (127.0.0.1:9100), "ADDR:PORT" or "[V6]:PORT" into |out|: 0, or -1
 * after saying what is wrong. */
int metrics_parse_address(const char *text, coap_address_t *out);
/* Listen on |addr| and serve |b| from a thread of its own. NULL after
 * saying why (on stderr); *exit_code is the tool's exit code for it. */
metrics_server_t *metrics_server_start(const coap_address_t *addr, metrics_board_t *b,
                                       int *exit_code);
/* Where it listens (with the port bound when 0 was asked for). */
const coap_address_t *metrics_server_address(const metrics_server_t *s);
void metrics_server_stop(metrics_server_t *s);
/* Built with libmicrohttpd? */
int metrics_available(void);

/* --log-format json: the library's log lines of |ctx| as one JSON object
 * per line on stderr. */
void log_json_install(coap_context_t *ctx);

#endif
