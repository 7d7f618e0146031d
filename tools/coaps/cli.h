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
  EXIT_USAGE = 64
};

/* One line on stderr: "coaps: <message>". */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The exit code for a library error. */
int cli_exit_for_error(int err);

int cmd_request(const char *method, int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_keygen(int argc, char **argv);

void demo_resources_register(coap_context_t *ctx);

#endif
