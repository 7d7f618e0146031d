/* coaps get|post|put|delete|fetch|patch|ipatch URI */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
  coap_option_t extra[MAX_EXTRA_OPTIONS];
  uint8_t extra_store[MAX_EXTRA_OPTIONS][256];
  size_t n_extra;
  security_flags_t sec;
} request_args_t;

static void request_usage(FILE *out, const char *method) {
  fprintf(out,
          "usage: coaps %s URI [options]\n"
          "\n"
          "  URI                      coap://host[:port]/path[?query] (coaps:// for DTLS)\n"
          "  -d, --data DATA          payload: text, @FILE, or @- for standard input\n"
          "  -f, --content-format F   Content-Format of the payload (name, short name\n"
          "                           such as text/json/cbor/link/octet/xml, or number)\n"
          "  -A, --accept F           ask for this Content-Format\n"
          "      --non                send a non-confirmable request\n"
          "  -t, --timeout SECONDS    give up after this long (default: the RFC 7252\n"
          "                           retransmission schedule, about 93 s)\n"
          "  -O, --option NUM,VALUE   add option NUM (VALUE as text, a number for uint\n"
          "                           options, or 0x-prefixed hex); repeatable\n"
          "  -v, --verbose            show every message sent and received on stderr\n"
          "  -q, --quiet              do not print the response payload\n"
          "  -h, --help               this help\n"
          "\n",
          method);
  security_flags_usage(out, 0);
  fprintf(out,
          "\n"
          "The response payload goes to standard output. Exit codes: 0 2.xx,\n"
          "1 4.xx, 2 5.xx, 3 timeout, 4 network error, 5 security failure, 64 usage.\n"
          "\n"
          "Examples:\n"
          "  coaps get coap://127.0.0.1/temp\n"
          "  coaps put coap://127.0.0.1/store -d 'hello' -f text\n"
          "  echo '{\"on\":true}' | coaps post coap://[::1]/echo -d @- -f json -v\n"
          "  coaps get coaps://127.0.0.1/temp --psk-identity me --psk secret\n"
          "  coaps get coaps://localhost/temp --cacert ca-cert.pem\n");
}

static uint8_t method_code(const char *m) {
  static const char *const names[] = {"get", "post", "put", "delete",
                                      "fetch", "patch", "ipatch"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(m, names[i]) == 0) return (uint8_t)(COAP_GET + i);
  return 0;
}

static int parse_hex(const char *s, uint8_t *out, size_t cap) {
  size_t n = strlen(s);
  if (n % 2 || n / 2 > cap) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (uint8_t)v;
  }
  return (int)(n / 2);
}

/* "NUM,VALUE" → an extra option. */
static int parse_extra_option(request_args_t *a, const char *text) {
  if (a->n_extra == MAX_EXTRA_OPTIONS) {
    cli_error("at most %d -O options", MAX_EXTRA_OPTIONS);
    return -1;
  }
  char *end;
  long num = strtol(text, &end, 10);
  if (end == text || num < 0 || num > 65535 || (*end != ',' && *end != '\0')) {
    cli_error("-O wants NUM,VALUE with NUM from 0 to 65535, got '%s'", text);
    return -1;
  }
  const char *value = *end == ',' ? end + 1 : "";
  uint8_t *store = a->extra_store[a->n_extra];
  int len;
  const coap_option_info_t *info = coap_option_info((uint16_t)num);
  if (strncmp(value, "0x", 2) == 0) {
    len = parse_hex(value + 2, store, sizeof a->extra_store[0]);
  } else if (info && info->format == COAP_OPTFMT_UINT && *value) {
    unsigned long v = strtoul(value, &end, 10);
    if (*end || v > 0xFFFFFFFFul) {
      len = -1;
    } else {
      len = 0;
      for (int shift = 24; shift >= 0; shift -= 8)
        if (len || ((v >> shift) & 0xFF)) store[len++] = (uint8_t)(v >> shift);
    }
  } else {
    len = strlen(value) < sizeof a->extra_store[0] ? (int)strlen(value) : -1;
    if (len > 0) memcpy(store, value, (size_t)len);
  }
  if (len < 0) {
    cli_error("bad value for option %ld: '%s'", num, value);
    return -1;
  }
  a->extra[a->n_extra].number = (uint16_t)num;
  a->extra[a->n_extra].length = (uint16_t)len;
  a->extra[a->n_extra].value = store;
  a->n_extra++;
  return 0;
}

static int parse_format(const char *flag, const char *text, int *out) {
  *out = coap_content_format_parse(text);
  if (*out != COAP_FORMAT_NONE) return 0;
  cli_error("%s: unknown content format '%s' (try text, json, cbor, link, "
            "octet, xml or a number)", flag, text);
  return -1;
}

/* Returns 0, 1 for --help, or -1 on bad usage (already reported). */
static int parse_args(request_args_t *a, const char *method, int argc, char **argv) {
  static const struct option base_options[] = {
      {"data", required_argument, NULL, 'd'},
      {"content-format", required_argument, NULL, 'f'},
      {"accept", required_argument, NULL, 'A'},
      {"non", no_argument, NULL, 'N'},
      {"timeout", required_argument, NULL, 't'},
      {"option", required_argument, NULL, 'O'},
      {"verbose", no_argument, NULL, 'v'},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
  };
  struct option longopts[32];
  size_t n = sizeof base_options / sizeof base_options[0];
  memcpy(longopts, base_options, sizeof base_options);
  security_options_merge(longopts, n, sizeof longopts / sizeof longopts[0]);
  memset(a, 0, sizeof(*a));
  a->method = method_code(method);
  a->content_format = a->accept = COAP_FORMAT_NONE;
  a->confirmable = 1;
  optind = 0; /* GNU getopt: full re-initialisation */
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "d:f:A:t:O:vqh", longopts, NULL)) != -1) {
    switch (c) {
      case 'd': a->data = optarg; break;
      case 'f': if (parse_format("-f", optarg, &a->content_format) < 0) return -1; break;
      case 'A': if (parse_format("-A", optarg, &a->accept) < 0) return -1; break;
      case 'N': a->confirmable = 0; break;
      case 't': {
        unsigned ms;
        if (cli_parse_seconds("-t", optarg, 0.001, 86400, &ms) < 0) return -1;
        a->timeout_s = ms / 1000.0;
        break;
      }
      case 'O': if (parse_extra_option(a, optarg) < 0) return -1; break;
      case 'v': a->verbose++; break;
      case 'q': a->quiet = 1; break;
      case 'h': return 1;
      default: {
        int taken = security_flags_take(&a->sec, c, optarg);
        if (taken > 0) break;
        if (taken < 0) return -1;
        cli_error("unknown or incomplete option '%s'", argv[optind - 1]);
        return -1;
      }
    }
  }
  return cli_take_uri(argc, argv, &a->uri);
}

static int read_all(FILE *f, uint8_t **out, size_t *len) {
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) return -1;
  size_t r;
  while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) {
      uint8_t *bigger = cap > (64u << 20) ? NULL : realloc(buf, cap *= 2);
      if (!bigger) {
        free(buf);
        return -1;
      }
      buf = bigger;
    }
  }
  if (ferror(f)) {
    free(buf);
    return -1;
  }
  *out = buf;
  *len = n;
  return 0;
}

/* -d DATA / @FILE / @- into a payload buffer the caller frees. */
static int load_payload(const char *data, uint8_t **out, size_t *len) {
  *out = NULL;
  *len = 0;
  if (!data) return 0;
  if (data[0] != '@') {
    *len = strlen(data);
    *out = (uint8_t *)strdup(data);
    return *out ? 0 : -1;
  }
  if (strcmp(data, "@-") == 0) {
    if (read_all(stdin, out, len) == 0) return 0;
    cli_error("cannot read the payload from standard input");
    return -1;
  }
  FILE *f = fopen(data + 1, "rb");
  if (!f) {
    cli_error("cannot open payload file '%s': %s", data + 1, strerror(errno));
    return -1;
  }
  int rc = read_all(f, out, len);
  fclose(f);
  if (rc < 0) cli_error("cannot read payload file '%s'", data + 1);
  return rc;
}

static void trace(void *user, int outgoing, const coap_address_t *peer,
                  const coap_msg_t *msg) {
  char line[1024], addr[64];
  coap_msg_format(msg, line, sizeof line);
  fprintf(stderr, "%s %s %s\n", outgoing ? ">" : "<", line,
          coap_address_format(peer, addr, sizeof addr));
}

static int exit_for_code(uint8_t code) {
  switch (COAP_CODE_CLASS(code)) {
    case 2: return EXIT_2XX;
    case 4: return EXIT_4XX;
    default: return EXIT_5XX;
  }
}

static void print_payload(const coap_response_copy_t *r) {
  if (r->payload_len) fwrite(r->payload, 1, r->payload_len, stdout);
  if (r->payload_len && r->payload[r->payload_len - 1] != '\n' && isatty(STDOUT_FILENO))
    fputc('\n', stdout);
  fflush(stdout);
}

/* Says why the request failed; returns the exit code. */
static int explain_failure(const request_args_t *a, coap_context_t *ctx, int rc) {
  coap_diag_t g;
  if (coap_context_last_diag(ctx, &g) == 0 && g.error == rc) {
    cli_print_diag(a->uri, &g);
    return cli_exit_for_diag(&g, rc);
  }
  if (rc == COAP_E_TIMEOUT && a->timeout_s > 0) {
    cli_error("%s: no response within %g s", a->uri, a->timeout_s);
  } else if ((rc <= COAP_E_URI_SCHEME && rc >= COAP_E_URI_ENCODING) ||
             rc == COAP_E_URI_TOO_LONG) {
    cli_error("bad URI '%s': %s", a->uri, coap_strerror(rc));
    fprintf(stderr, "usage: coaps %s coap[s]://host[:port]/path[?query] [options]\n",
            coap_code_name(a->method));
  } else {
    cli_error("%s: %s", a->uri, coap_strerror(rc));
  }
  return cli_exit_for_error(rc);
}

static int run_request(const request_args_t *a) {
  uint8_t *payload;
  size_t payload_len;
  if (load_payload(a->data, &payload, &payload_len) < 0) return EXIT_USAGE;
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  /* The tool reports failures itself, in one line; the library's own log
   * lines are for -v. */
  cfg.log_level = a->verbose > 1 ? COAP_LOG_DEBUG : a->verbose ? COAP_LOG_INFO : COAP_LOG_ERROR;
  coap_context_t *ctx = coap_context_new(&cfg);
  if (!ctx) {
    free(payload);
    cli_error("out of memory");
    return EXIT_NETWORK;
  }
  int sec = security_flags_apply(&a->sec, ctx, 0);
  if (sec != 0) {
    coap_context_free(ctx);
    free(payload);
    return sec;
  }
  if (a->verbose) coap_context_set_trace(ctx, trace, NULL);
  coap_request_opts_t o;
  coap_request_opts_init(&o, a->method, a->uri);
  o.confirmable = a->confirmable;
  o.content_format = a->content_format;
  o.accept = a->accept;
  o.payload = payload;
  o.payload_len = payload_len;
  o.options = a->extra;
  o.n_options = a->n_extra;
  o.timeout_ms = (uint32_t)(a->timeout_s * 1000);
  coap_response_copy_t r;
  int rc = coap_request_blocking(ctx, &o, &r);
  int status;
  if (rc < 0) {
    status = explain_failure(a, ctx, rc);
  } else {
    status = exit_for_code(r.code);
    if (status != EXIT_2XX && !a->verbose)
      cli_error("%s%s%.*s", coap_code_name(r.code), r.payload_len ? ": " : "",
                (int)r.payload_len, r.payload_len ? (const char *)r.payload : "");
    else if (!a->quiet)
      print_payload(&r);
    if (a->verbose) fprintf(stderr, "coaps: %s\n", coap_code_name(r.code));
    coap_response_copy_clear(&r);
  }
  coap_context_free(ctx);
  free(payload);
  return status;
}

int cmd_request(const char *method, int argc, char **argv) {
  request_args_t a;
  int rc = parse_args(&a, method, argc, argv);
  if (rc == 1) {
    request_usage(stdout, method);
    return 0;
  }
  if (rc < 0) {
    fprintf(stderr, "usage: coaps %s URI [options]  (coaps %s --help for more)\n",
            method, method);
    return EXIT_USAGE;
  }
  return run_request(&a);
}
