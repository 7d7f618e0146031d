/* Option parsing for every coaps command: getopt_long with the checks,
 * messages and usage line the commands share, so that a bad command line
 * reads the same whatever the command (one line saying what is wrong,
 * one usage line saying where help is, exit EXIT_USAGE). */
#ifndef COAPS_TOOL_OPTIONS_H
#define COAPS_TOOL_OPTIONS_H

#include <getopt.h>
#include <stddef.h>

#include "cli.h"

#define CLI_MAX_OPTIONS 48

typedef struct cli_options {
  const char *command;                     /* as typed: "get", "serve" */
  const char *synopsis;                    /* what the usage line shows after the command */
  char shortopts[32];                      /* ":"-prefixed, so a missing value is told apart */
  struct option longopts[CLI_MAX_OPTIONS]; /* ends with an all-zero entry */
  size_t n_longopts;
  const char *repeatable; /* long names that may come more than once */
  unsigned char seen[CLI_MAX_OPTIONS];
  int argc;
  char **argv;
} cli_options_t;

/* Which DTLS credential flags a command takes besides its own. */
enum { CLI_NO_SECURITY, CLI_CLIENT_SECURITY, CLI_SERVER_SECURITY };

/* A command's options: |shortopts| without the leading ':', |longopts|
 * of |n| entries (no terminator needed), plus the DTLS credential flags
 * |security| names (CLI_*_SECURITY). |repeatable| lists the long names, each between
 * spaces (" option trust-rpk "), that may be given more than once; any
 * other option taking a value given twice is refused rather than the
 * first value silently dropped. */
void cli_options_init(cli_options_t *p, const char *command, const char *synopsis, int argc,
                      char **argv, const char *shortopts, const struct option *longopts, size_t n,
                      int security, const char *repeatable);

enum { CLI_OPTIONS_END = -1, CLI_OPTIONS_BAD = -2 };
/* The next option's id (its short letter or the longopts value), with
 * optarg set; CLI_OPTIONS_END after the last; CLI_OPTIONS_BAD after saying
 * on stderr what is wrong: an unknown option (and which command has it,
 * if one does), an ambiguous abbreviation, a missing value (named with
 * the value it wants), an empty value (but for -d), a value given to a
 * flag that takes none, a value option repeated. */
int cli_options_next(cli_options_t *p);

/* After the options: exactly one operand, the URI (GNU getopt has moved
 * operands to the end). 0, or -1 after saying what is wrong. */
int cli_options_take_uri(cli_options_t *p, const char **uri);
/* After the options: no operand at all. 0, or -1 after saying so. */
int cli_options_no_operand(cli_options_t *p);

/* The usage line on stderr, pointing at --help; returns EXIT_USAGE. For
 * a command whose parser said what is wrong. */
int cli_usage_error(const cli_options_t *p);

#endif
