/* coaps — CoAP and CoAP over DTLS from the command line. */
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

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
  fputs("coaps: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* The value each option takes, as --help names it. */
static const struct {
  const char *short_name, *long_name, *value;
} option_values[] = {
    {"-t", "--timeout", "SECONDS"},      {NULL, "--probe-timeout", "SECONDS"},
    {"-o", "--out", "DIR"},              {"-H", "--host", "NAME"},
    {NULL, "--count", "N"},              {NULL, "--duration", "SECONDS"},
    {NULL, "--no-response", "CLASSES"},  {"-d", "--data", "TEXT|@FILE|-"},
    {"-f", "--content-format", "FORMAT"}, {"-A", "--accept", "FORMAT"},
    {"-O", "--option", "NUM,VALUE"},     {"-b", "--block-size", "BYTES"},
    {NULL, "--max-body", "BYTES"},       {NULL, "--psk-identity", "ID"},
    {NULL, "--psk", "KEY"},              {NULL, "--psk-hex", "HEX"},
    {NULL, "--cert", "FILE"},            {NULL, "--key", "FILE"},
    {NULL, "--cacert", "FILE"},          {NULL, "--session", "FILE"},
    {NULL, "--mtu", "BYTES"},            {NULL, "--trust-rpk", "FILE"},
    {NULL, "--handshake-timeout", "SECONDS"}, {NULL, "--cookie", "POLICY"},
    {"-p", "--port", "PORT"},            {NULL, "--dtls-port", "PORT"},
    {"-a", "--address", "ADDRESS"},      {"-w", "--workers", "N"},
    {NULL, "--max-peers", "N"},          {NULL, "--evict-after", "SECONDS"},
};

void cli_bad_option(int c, char **argv) {
  const char *typed = argv[optind - 1];
  if (c != ':') {
    cli_error("unknown option '%s'", typed);
    return;
  }
  size_t len = strcspn(typed, "=");
  /* Exact names first, then GNU getopt's unambiguous long prefixes. */
  for (int prefix = 0; prefix < 2; prefix++)
    for (size_t i = 0; i < sizeof option_values / sizeof option_values[0]; i++) {
      const char *s = option_values[i].short_name, *l = option_values[i].long_name;
      int hit = prefix ? len > 2 && strncmp(typed, l, len) == 0
                       : (s && strcmp(typed, s) == 0) || strcmp(typed, l) == 0;
      if (!hit) continue;
      const char *as = typed[1] == '-' || !s ? l : s;
      cli_error("%s needs a value: %s %s", typed, as, option_values[i].value);
      return;
    }
  cli_error("%s needs a value", typed);
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

int cli_take_uri(int argc, char **argv, const char **uri) {
  if (optind >= argc) {
    cli_error("missing URI");
    return -1;
  }
  *uri = argv[optind++];
  if (optind < argc) {
    cli_error("unexpected argument '%s'", argv[optind]);
    return -1;
  }
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
  if ((err <= COAP_E_URI_SCHEME && err >= COAP_E_URI_ENCODING) || err == COAP_E_URI_TOO_LONG) return EXIT_USAGE;
  return EXIT_NETWORK;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "help") == 0 && argc > 2 && strcmp(argv[2], "help") != 0) {
    /* "coaps help get" is "coaps get --help"; an unknown topic is
     * refused as an unknown command. */
    static char help_flag[] = "--help";
    char *again[] = {argv[0], argv[2], help_flag, NULL};
    return main(3, again);
  }
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "--version") == 0) {
    printf("coaps %s\n", COAPS_TOOL_VERSION);
    return 0;
  }
  static const char *const methods[] = {"get", "post", "put", "delete",
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
