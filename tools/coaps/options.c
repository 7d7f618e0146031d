#include "options.h"

#include <string.h>

#include "security_flags.h"

#define REQUESTS "get, post, put, delete, fetch, patch, ipatch, observe"
#define CLIENTS REQUESTS ", doctor"

/* Every option of the tool, by name: the value it takes as --help names
 * it (NULL: none), and the commands that have it, for the messages. */
static const struct {
  const char *short_name, *long_name, *value, *commands;
} known_options[] = {
    {"-t", "--timeout", "SECONDS", REQUESTS ", doctor"},
    {NULL, "--probe-timeout", "SECONDS", "doctor"},
    {"-o", "--out", "DIR", "keygen"},
    {"-H", "--host", "NAME", "keygen"},
    {NULL, "--force", NULL, "keygen"},
    {NULL, "--ticket-key", "FILE", "keygen"},
    {NULL, "--state-key", "FILE", "keygen"},
    {NULL, "--count", "N", REQUESTS},
    {NULL, "--duration", "SECONDS", REQUESTS},
    {NULL, "--no-response", "CLASSES", REQUESTS},
    {"-d", "--data", "TEXT|@FILE|-", REQUESTS},
    {"-f", "--content-format", "FORMAT", REQUESTS},
    {"-A", "--accept", "FORMAT", REQUESTS},
    {"-O", "--option", "NUM,VALUE", REQUESTS},
    {"-b", "--block-size", "BYTES", REQUESTS},
    {NULL, "--max-body", "BYTES", REQUESTS ", serve"},
    {NULL, "--non", NULL, REQUESTS},
    {NULL, "--q-block", NULL, REQUESTS},
    {NULL, "--observe", NULL, REQUESTS},
    {NULL, "--json", NULL, REQUESTS ", doctor"},
    {"-q", "--quiet", NULL, REQUESTS},
    {"-v", "--verbose", NULL, REQUESTS ", serve"},
    {NULL, "--causes", NULL, "doctor"},
    {NULL, "--markdown", NULL, "doctor"},
    {NULL, "--psk-identity", "ID", CLIENTS ", serve"},
    {NULL, "--psk", "KEY", CLIENTS ", serve"},
    {NULL, "--psk-hex", "HEX", CLIENTS ", serve"},
    {NULL, "--cert", "FILE", CLIENTS ", serve"},
    {NULL, "--key", "FILE", CLIENTS ", serve"},
    {NULL, "--cacert", "FILE", CLIENTS ", serve"},
    {NULL, "--rpk", NULL, CLIENTS ", serve"},
    {NULL, "--trust-rpk", "FILE", CLIENTS ", serve"},
    {NULL, "--mtu", "BYTES", CLIENTS ", serve"},
    {NULL, "--handshake-timeout", "SECONDS", CLIENTS ", serve"},
    {NULL, "--cid", NULL, CLIENTS ", serve"}, /* --cid[=N]: the value is optional */
    {NULL, "--no-cid", NULL, CLIENTS ", serve"},
    {NULL, "--session", "FILE", CLIENTS},
    {NULL, "--cookie", "POLICY", "serve"},
    {NULL, "--require-client-cert", NULL, "serve"},
    {NULL, "--psk-file", "FILE", "serve"},
    {NULL, "--allow-insecure-key-files", NULL, "serve"},
    {NULL, "--ticket-key-file", "FILE", "serve"},
    {NULL, "--node-id", "N", "serve"},
    {"-p", "--port", "PORT", "serve"},
    {NULL, "--dtls-port", "PORT", "serve"},
    {"-a", "--address", "ADDRESS", "serve"},
    {"-w", "--workers", "N", "serve"},
    {NULL, "--max-peers", "N", "serve"},
    {NULL, "--evict-after", "SECONDS", "serve"},
    {NULL, "--metrics", "ADDR:PORT", "serve"},
    {NULL, "--log-format", "FORMAT", "serve"},
    {NULL, "--state-file", "FILE", "serve"},
    {NULL, "--state-key-file", "FILE", "serve"},
    {NULL, "--state-max-age", "SECONDS", "serve"},
};
#define N_KNOWN (sizeof known_options / sizeof known_options[0])

void cli_options_init(cli_options_t *p, const char *command, const char *synopsis, int argc,
                      char **argv, const char *shortopts, const struct option *longopts, size_t n,
                      int security, const char *repeatable) {
  memset(p, 0, sizeof(*p));
  p->command = command;
  p->synopsis = synopsis;
  p->argc = argc;
  p->argv = argv;
  p->repeatable = repeatable ? repeatable : "";
  snprintf(p->shortopts, sizeof p->shortopts, ":%s", shortopts);
  if (n > CLI_MAX_OPTIONS - 1) n = CLI_MAX_OPTIONS - 1;
  memcpy(p->longopts, longopts, n * sizeof longopts[0]);
  p->n_longopts = security == CLI_NO_SECURITY
                      ? n
                      : security_options_merge(p->longopts, n, CLI_MAX_OPTIONS,
                                               security == CLI_SERVER_SECURITY);
  memset(&p->longopts[p->n_longopts], 0, sizeof p->longopts[0]);
  optind = 0; /* GNU getopt: full re-initialisation, as for a new argv */
  opterr = 0; /* the messages are ours */
}

/* The command's option whose id is |id|, or -1. */
static int option_index(const cli_options_t *p, int id) {
  for (size_t i = 0; i < p->n_longopts; i++)
    if (p->longopts[i].val == id) return (int)i;
  return -1;
}

static int is_long(const char *typed) {
  return strncmp(typed, "--", 2) == 0 && typed[2];
}

/* "the request commands": where an option of another command lives. */
static const char *commands_having(const char *typed) {
  size_t len = strcspn(typed, "=");
  for (size_t i = 0; i < N_KNOWN; i++) {
    const char *s = known_options[i].short_name, *l = known_options[i].long_name;
    if ((s && strlen(s) == len && strncmp(typed, s, len) == 0) ||
        (strlen(l) == len && strncmp(typed, l, len) == 0))
      return known_options[i].commands;
  }
  return NULL;
}

static void say_unknown(const cli_options_t *p, const char *typed) {
  const char *where = commands_having(typed);
  if (where)
    cli_error("unknown option '%s' for coaps %s (commands that take it: %s)", typed, p->command,
              where);
  else
    cli_error("unknown option '%s'", typed);
}

/* getopt_long returned '?' for a long option: unknown, ambiguous, or a
 * value given to a flag that takes none. */
static void say_bad_long(const cli_options_t *p, const char *typed) {
  const char *name = typed + 2;
  size_t len = strcspn(name, "=");
  char matches[256] = "";
  size_t n_matches = 0, used = 0;
  if (len == 0) { /* "--=x": no name at all, not a prefix of every one */
    say_unknown(p, typed);
    return;
  }
  for (size_t i = 0; i < p->n_longopts; i++) {
    const char *l = p->longopts[i].name;
    if (strncmp(l, name, len) != 0) continue;
    if (strlen(l) == len && name[len] == '=') {
      cli_error("--%s takes no value, got '%s'", l, typed);
      return;
    }
    int k = snprintf(matches + used, sizeof matches - used, "%s--%s", n_matches ? ", " : "", l);
    if (k > 0 && (size_t)k < sizeof matches - used) used += (size_t)k;
    n_matches++;
  }
  if (n_matches > 1)
    cli_error("option '%.*s' is ambiguous: %s", (int)(len + 2), typed, matches);
  else
    say_unknown(p, typed);
}

/* getopt_long returned ':': option |id|, typed as |typed|, has no value. */
static void say_missing_value(const cli_options_t *p, int id, const char *typed) {
  int i = option_index(p, id);
  const char *long_name = i >= 0 ? p->longopts[i].name : "";
  for (size_t k = 0; k < N_KNOWN; k++) {
    if (strcmp(known_options[k].long_name + 2, long_name) != 0 || !known_options[k].value) continue;
    const char *as = is_long(typed) || !known_options[k].short_name ? known_options[k].long_name
                                                                    : known_options[k].short_name;
    cli_error("%s needs a value: %s %s", typed, as, known_options[k].value);
    return;
  }
  cli_error("%s needs a value", typed);
}

/* The option getopt_long just returned (|id|) was given before: refused
 * for one that takes a value and is not repeatable. 0, or -1 after saying. */
static int check_repeat(cli_options_t *p, int id) {
  int i = option_index(p, id);
  if (i < 0 || p->longopts[i].has_arg != required_argument) return 0;
  char spaced[64];
  snprintf(spaced, sizeof spaced, " %s ", p->longopts[i].name);
  if (p->seen[i]++ == 0 || strstr(p->repeatable, spaced)) return 0;
  cli_error("--%s given twice (the second time as '%s'): give it once", p->longopts[i].name,
            optarg);
  return -1;
}

/* An empty value ('--cacert ""', often an unset shell variable) names no
 * file, key or number; only a payload may be empty. 0, or -1 after saying. */
static int check_empty(const cli_options_t *p, int id) {
  int i = option_index(p, id);
  if (i < 0 || p->longopts[i].has_arg != required_argument || !optarg || *optarg) return 0;
  if (strcmp(p->longopts[i].name, "data") == 0) return 0;
  cli_error("--%s wants a value, got an empty one", p->longopts[i].name);
  return -1;
}

int cli_options_next(cli_options_t *p) {
  int c = getopt_long(p->argc, p->argv, p->shortopts, p->longopts, NULL);
  if (c == -1) return CLI_OPTIONS_END;
  const char *typed = optind > 0 && optind <= p->argc ? p->argv[optind - 1] : "";
  char letter[3] = {'-', (char)optopt, '\0'};
  if (c == ':') { /* only the last argument can miss its value */
    say_missing_value(p, optopt, is_long(typed) ? typed : letter);
    return CLI_OPTIONS_BAD;
  }
  if (c == '?') {
    /* An unknown letter in a group ("-vx") leaves optind on the group
     * until its last letter: name it by optopt, not by the text. A long
     * option has optopt 0, or its id and a '=' (a value it takes none). */
    int letter_known = optopt > 0 && optopt < 0x100;
    if (letter_known && (!is_long(typed) || !strchr(typed, '=')))
      say_unknown(p, letter);
    else
      say_bad_long(p, typed);
    return CLI_OPTIONS_BAD;
  }
  return check_empty(p, c) < 0 || check_repeat(p, c) < 0 ? CLI_OPTIONS_BAD : c;
}

int cli_options_take_uri(cli_options_t *p, const char **uri) {
  if (optind >= p->argc) {
    cli_error("missing URI");
    return -1;
  }
  *uri = p->argv[optind++];
  return cli_options_no_operand(p);
}

int cli_options_no_operand(cli_options_t *p) {
  if (optind >= p->argc) return 0;
  cli_error("unexpected argument '%s'", p->argv[optind]);
  return -1;
}

int cli_usage_error(const cli_options_t *p) {
  fprintf(stderr, "usage: coaps %s %s  (coaps %s --help for more)\n", p->command, p->synopsis,
          p->command);
  return EXIT_USAGE;
}
