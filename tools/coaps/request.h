/* coaps get|post|… and coaps observe: what the request commands share
 * between request.c (arguments, one request), observe.c (the observation
 * loop) and reply_print.c (how a response is printed). */
#ifndef COAPS_TOOL_REQUEST_H
#define COAPS_TOOL_REQUEST_H

#include <stdint.h>

#include "cli.h"
#include "security_flags.h"

#define MAX_EXTRA_OPTIONS 16

typedef struct request_args {
  uint8_t method;
  const char *uri;
  const char *data;
  int content_format, accept;
  int confirmable;
  double timeout_s;
  int verbose, quiet;
  unsigned block_size; /* 0: the library's (1024) */
  int qblock;          /* --q-block: Q-Block (RFC 9177) for the transfer */
  size_t max_body;     /* 0: the library's (1 MiB) */
  coap_option_t extra[MAX_EXTRA_OPTIONS];
  uint8_t extra_store[MAX_EXTRA_OPTIONS][256];
  size_t n_extra;
  security_flags_t sec;
  int json;                     /* --json: one JSON object per response, a line each */
  int observe;                  /* --observe (or the observe command) */
  unsigned count;               /* --count: representations to print, 0: no limit */
  unsigned duration_ms;         /* --duration, 0: no limit */
  uint8_t no_response;          /* --no-response: COAP_NO_RESPONSE_* bits */
  const char *no_response_text; /* as given, for messages */
} request_args_t;

/* How one response is printed on standard output. */
typedef enum print_mode {
  PRINT_RAW, /* the payload's bytes as they came (a single request) */
  PRINT_LINE /* one line, control bytes escaped (each notification) */
} print_mode_t;

/* Print |r| (a response with status 0) as --json, -q and |mode| say; -v
 * adds a details line on standard error. */
void reply_print(const request_args_t *a, const coap_reply_t *r, print_mode_t mode);

/* --observe: send the registration and print every notification until
 * --count, --duration, SIGINT/SIGTERM or the server ends it; then
 * deregister. Returns the exit code. */
int observe_run(const request_args_t *a, coap_context_t *ctx, const coap_request_opts_t *o);

/* Says why the request failed (the diagnosis when there is one); returns
 * the exit code. */
int request_explain_failure(const request_args_t *a, coap_context_t *ctx, int rc,
                            const char *detail);
/* The exit code for a response code: 0 2.xx, 1 4.xx, 2 5.xx. */
int request_exit_for_code(uint8_t code);

#endif
