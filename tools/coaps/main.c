/* coaps — CoAP and CoAP over DTLS from the command line. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log_json.h"

#define COAPS_TOOL_VERSION coaps_version() /* the library's, not the header's */

static void usage(FILE *out) {
  fprintf(out,
          "usage: coaps <command> [options]\n"
          "\n"
          "Commands:\n"
          "  get URI          GET a resource\n"
          "  post URI         POST a payload (-d)\n"
          "  put URI          PUT a payload (-d)\n"
          "  delete URI       DELETE a resource\n"
          "  observe URI      observe a resource (get --observe): print it as it changes\n"
          "  fetch URI        FETCH with a payload (-d)\n"
          "  patch URI        PATCH with a payload (-d)\n"
          "  ipatch URI       iPATCH with a payload (-d)\n"
          "  serve            run a CoAP server with demo resources\n"
          "  keygen           write demo credentials (CA, certificates, PSK)\n"
          "  doctor URI       check a connection step by step: where and why it fails\n"
          "\n"
          "Run 'coaps <command> --help' for the options of a command.\n"
          "\n"
          "Exit codes: 0 2.xx response, 1 4.xx, 2 5.xx, 3 timeout (no response),\n"
          "4 network error (unreachable, reset, unknown host), 5 security (DTLS)\n"
          "failure, 7 local configuration (no credentials for coaps://, or a key,\n"
          "certificate, CA or session file that cannot be used; nothing was sent),\n"
          "64 bad usage.\n");
}

void cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (log_json_enabled) { /* coaps serve --log-format json */
    int warning = strncmp(fmt, "warning: ", 9) == 0;
    tool_vlog(warning ? "warning" : "error", NULL, 0, warning ? fmt + 9 : fmt, ap);
    va_end(ap);
    return;
  }
  fputs("coaps: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int cli_log_quiet;

void cli_log(void *user, coap_log_level_t level, const char *line) {
  (void)user;
  if (cli_log_quiet) return;
  static const char *const names[] = {"error", "warning", "info", "debug"};
  const char *name = level >= COAP_LOG_ERROR && level <= COAP_LOG_DEBUG ? names[level] : "debug";
  fprintf(stderr, "coaps %s: %s\n", name, line);
}

int cli_parse_seconds(const char *flag, const char *text, double min_s, double max_s,
                      unsigned *ms) {
  char *end;
  double s = strtod(text, &end);
  if (end == text || *end || s < min_s || s > max_s) {
    cli_error("%s wants seconds from %g to %g, got '%s'", flag, min_s, max_s, text);
    return -1;
  }
  *ms = (unsigned)(s * 1000);
  return 0;
}

int cli_exit_for_error(int err) {
  switch (err) {
    case COAP_E_TIMEOUT: return EXIT_TIMEOUT;
    case COAP_E_UNREACHABLE:
    case COAP_E_RESET:
    case COAP_E_RESOLVE:
    case COAP_E_BAD_RESPONSE: return EXIT_NETWORK;
    default: break;
  }
  if (err <= COAP_E_DTLS_NO_CREDENTIALS && err > COAP_E_FATAL_THRESHOLD && err >= -99)
    return EXIT_SECURITY;
  if ((err <= COAP_E_URI_SCHEME && err >= COAP_E_URI_ENCODING) || err == COAP_E_URI_TOO_LONG)
    return EXIT_USAGE;
  return EXIT_NETWORK;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  int asks_help = strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0;
  if (asks_help && argc > 2 && strcmp(argv[2], "help") != 0) {
    /* "coaps help get" (or --help get) is "coaps get --help"; an unknown
     * topic is refused as an unknown command. */
    static char help_flag[] = "--help";
    char *again[] = {argv[0], argv[2], help_flag, NULL};
    return main(3, again);
  }
  if (asks_help) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "--version") == 0) {
    if (argc > 2) {
      cli_error("%s takes no argument, got '%s'", cmd, argv[2]);
      fprintf(stderr, "usage: coaps --version  (coaps --help for more)\n");
      return EXIT_USAGE;
    }
    printf("coaps %s\n", COAPS_TOOL_VERSION);
    return 0;
  }
  static const char *const methods[] = {"get",   "post",  "put",    "delete",
                                        "fetch", "patch", "ipatch", "observe"};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (strcmp(cmd, methods[i]) == 0) return cmd_request(cmd, argc - 1, argv + 1);
  if (strcmp(cmd, "serve") == 0) return cmd_serve(argc - 1, argv + 1);
  if (strcmp(cmd, "keygen") == 0) return cmd_keygen(argc - 1, argv + 1);
  if (strcmp(cmd, "doctor") == 0) return cmd_doctor(argc - 1, argv + 1);
  cli_error("unknown command '%s'", cmd);
  usage(stderr);
  return EXIT_USAGE;
}
