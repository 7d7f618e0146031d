/* The coaps command-line tool: shared declarations. */
#ifndef COAPS_TOOL_CLI_H
#define COAPS_TOOL_CLI_H

#include <stdio.h>

#include "coap.h"

/* Exit codes scripts can rely on (documented in --help). */
enum {
  EXIT_2XX = 0,
  EXIT_4XX = 1,
  EXIT_5XX = 2,
  EXIT_TIMEOUT = 3,
  EXIT_NETWORK = 4,
  EXIT_SECURITY = 5,
  EXIT_NEGOTIATION = 6, /* coaps doctor: no common mode or suite */
  EXIT_CONFIG = 7,      /* coaps doctor: local configuration */
  EXIT_USAGE = 64
};

/* One line on stderr: "coaps: <message>". */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "2.5" seconds for |flag| into milliseconds, within [min_s, max_s];
 * 0, or -1 after saying what is wrong. */
int cli_parse_seconds(const char *flag, const char *text, double min_s, double max_s, unsigned *ms);
/* The tool's logger (installed in every context it makes): the library's
 * lines on stderr as "coaps <level>: ...", unless cli_log_quiet is set
 * while the tool reports a failure itself. */
extern int cli_log_quiet;
void cli_log(void *user, coap_log_level_t level, const char *line);
/* The exit code for a library error. */
int cli_exit_for_error(int err);

/* The exit code for a failure with a diagnosis (by its cause's class),
 * or for the bare error when |g| is NULL. */
int cli_exit_for_diag(const coap_diag_t *g, int err);
/* Three lines on stderr: the cause, why, the fix. */
void cli_print_diag(const char *uri, const coap_diag_t *g);
/* Who noticed, at which step, after how long. */
void cli_diag_origin(const coap_diag_t *g, char *out, size_t cap);

int cmd_request(const char *method, int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_doctor(int argc, char **argv);

void demo_resources_register(coap_context_t *ctx);
/* The paths of the resources that change every second and are
 * observable, and the call that notifies their observers (once a second,
 * from the thread that drives |ctx|). */
#define DEMO_OBSERVABLE_COUNT 2
extern const char *const demo_observable[DEMO_OBSERVABLE_COUNT];
void demo_resources_tick(coap_context_t *ctx);

#endif
