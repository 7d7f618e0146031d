/* coaps get|post|put|delete|fetch|patch|ipatch|observe URI */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"
#include "request.h"

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
          "  -b, --block-size N       block size for block-wise transfer (RFC 7959): 16,\n"
          "                           32, 64, 128, 256, 512 or 1024 (default 1024). A\n"
          "                           payload larger than it goes in Block1 blocks; a\n"
          "                           response in Block2 blocks is fetched whole, in\n"
          "                           blocks of N asked for from the first request\n"
          "      --q-block            (get, put, post) block-wise transfer without\n"
          "                           lock-step (Q-Block, RFC 9177): bursts of 10 NON\n"
          "                           blocks per round trip, lost ones asked for again.\n"
          "                           The first request is a CON probe: a server\n"
          "                           without Q-Block answers 4.02 and the request goes\n"
          "                           again with Block1/Block2 (RFC 7959); with --non\n"
          "                           no probe, and such a server's silence is a\n"
          "                           timeout\n"
          "      --max-body BYTES     largest response body taken (default 1048576)\n"
          "      --observe            (get, fetch) observe the resource (RFC 7641):\n"
          "                           print its representation, then each notification,\n"
          "                           one line each; 'coaps observe URI' is the same\n"
          "      --count N            with --observe: stop after N representations, the\n"
          "                           registration's answer included (1: that answer)\n"
          "      --duration SECONDS   with --observe: stop after this long\n"
          "      --json               print each response as one JSON object on one\n"
          "                           line: code, observe, max_age, format, size and\n"
          "                           payload (payload_hex when it is no UTF-8 text)\n"
          "      --no-response CLASSES  ask the server not to answer with these\n"
          "                           classes (RFC 7967): 2xx, 4xx, 5xx, comma-separated,\n"
          "                           or all. With all the request goes NON and the\n"
          "                           tool exits 0 once it is sent, printing nothing\n"
          "  -v, --verbose            show every message sent and received on stderr,\n"
          "                           and each response's code, Observe, Max-Age,\n"
          "                           format and size\n"
          "  -q, --quiet              do not print the response payload\n"
          "  -h, --help               this help\n"
          "\n",
          method);
  security_flags_usage(out, 0);
  fprintf(out,
          "\n"
          "The response payload goes to standard output, the whole body also when the\n"
          "server sends it in blocks (-v shows each block's exchange). Exit codes: 0 2.xx,\n"
          "1 4.xx, 2 5.xx, 3 timeout, 4 network error (also a body over --max-body, or a\n"
          "block-wise transfer that failed), 5 security failure, 7 local configuration\n"
          "(no credentials, or a credential file or key that cannot be used), 64 usage.\n"
          "\n"
          "Observing: each representation is printed on one line as it arrives (a\n"
          "newline or other control byte in it shows as \\n, \\xNN), or as one JSON\n"
          "object a line with --json. After --count representations, after\n"
          "--duration, or on SIGINT (Ctrl-C) or SIGTERM the tool deregisters (a GET\n"
          "with Observe=1), waits at most 2 s for the answer and exits 0; the\n"
          "server may also end the observation itself. A server that answers\n"
          "without Observe has not registered the observation: that answer is\n"
          "printed, stderr says so, and the exit code is the answer's (0 for 2.xx,\n"
          "as RFC 7641 allows a server to decline). An error code from the server\n"
          "ends it with that code's exit status; -t bounds the first answer only.\n"
          "\n"
          "--no-response with some classes only: an answer of the others is\n"
          "printed as usual; none within 5 s (or -t) is exit 0 with nothing printed\n"
          "(-v says so), unless the request was not even acknowledged (exit 3).\n"
          "\n"
          "Examples:\n"
          "  coaps get coap://127.0.0.1/temp\n"
          "  coaps put coap://127.0.0.1/store -d 'hello' -f text\n"
          "  coaps put coap://127.0.0.1/store -d @firmware.bin -f octet --block-size 256\n"
          "  echo '{\"on\":true}' | coaps post coap://[::1]/echo -d @- -f json -v\n"
          "  coaps get coaps://127.0.0.1/temp --psk-identity me --psk secret\n"
          "  coaps get coaps://localhost/temp --cacert ca-cert.pem\n"
          "  coaps get --observe coap://127.0.0.1/temp --count 5\n"
          "  coaps observe coap://127.0.0.1/time --duration 30 --json\n"
          "  coaps post coap://127.0.0.1/store -d reading --no-response 2xx\n");
}

static uint8_t method_code(const char *m) {
  if (strcmp(m, "observe") == 0) return COAP_GET;
  static const char *const names[] = {"get", "post", "put", "delete", "fetch", "patch", "ipatch"};
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

/* --block-size: a block size RFC 7959 can express. */
static int parse_block_size(const char *text, unsigned *out) {
  char *end;
  unsigned long v = strtoul(text, &end, 10);
  if (end != text && !*end && v >= 16 && v <= 1024 && (v & (v - 1)) == 0) {
    *out = (unsigned)v;
    return 0;
  }
  cli_error("--block-size wants 16, 32, 64, 128, 256, 512 or 1024, got '%s'", text);
  return -1;
}

static int parse_max_body(const char *text, size_t *out) {
  char *end;
  unsigned long long v = strtoull(text, &end, 10);
  if (end != text && !*end && text[0] != '-' && v >= 1 && v <= (1ull << 30)) {
    *out = (size_t)v;
    return 0;
  }
  cli_error("--max-body wants a number of bytes from 1 to 1073741824, got '%s'", text);
  return -1;
}

#define NO_RESPONSE_ALL (COAP_NO_RESPONSE_2XX | COAP_NO_RESPONSE_4XX | COAP_NO_RESPONSE_5XX)
/* How long a request whose answer may be suppressed waits without -t. */
#define NO_RESPONSE_WAIT_MS 5000

/* --no-response "2xx,4xx" or "all" into COAP_NO_RESPONSE_* bits. */
static int parse_no_response(const char *text, uint8_t *out) {
  static const struct {
    const char *name;
    uint8_t bits;
  } classes[] = {{"2xx", COAP_NO_RESPONSE_2XX},
                 {"4xx", COAP_NO_RESPONSE_4XX},
                 {"5xx", COAP_NO_RESPONSE_5XX},
                 {"all", NO_RESPONSE_ALL}};
  *out = 0;
  for (const char *p = text;; p++) {
    size_t len = strcspn(p, ","), i;
    for (i = 0; i < sizeof classes / sizeof classes[0]; i++)
      if (len == 3 && strncmp(p, classes[i].name, 3) == 0) break;
    if (i == sizeof classes / sizeof classes[0]) {
      cli_error(
          "--no-response wants 2xx, 4xx, 5xx (comma-separated) or all, got '%.*s' "
          "in '%s'",
          (int)len, p, text);
      return -1;
    }
    *out |= classes[i].bits;
    p += len;
    if (!*p) return 0;
  }
}

static int parse_count(const char *text, unsigned *out) {
  char *end;
  unsigned long v = strtoul(text, &end, 10);
  if (end != text && !*end && text[0] != '-' && v >= 1 && v <= 1000000000ul) {
    *out = (unsigned)v;
    return 0;
  }
  cli_error("--count wants a number from 1 to 1000000000, got '%s'", text);
  return -1;
}

/* Flags that only make sense together. 0, or -1 after saying why. */
static int check_combination(const request_args_t *a) {
  if (a->observe && a->method != COAP_GET && a->method != COAP_FETCH) {
    cli_error("--observe is for get and fetch (RFC 7641 observes a representation)");
    return -1;
  }
  if (!a->observe && (a->count || a->duration_ms)) {
    cli_error("%s is for an observation: add --observe", a->count ? "--count" : "--duration");
    return -1;
  }
  if (a->observe && a->no_response) {
    cli_error("--no-response cannot be combined with --observe");
    return -1;
  }
  if (a->qblock && (a->observe || a->no_response ||
                    (a->method != COAP_GET && a->method != COAP_PUT && a->method != COAP_POST))) {
    cli_error("--q-block is for get, put and post, without --observe or --no-response");
    return -1;
  }
  return 0;
}

static int parse_format(const char *flag, const char *text, int *out) {
  *out = coap_content_format_parse(text);
  if (*out != COAP_FORMAT_NONE) return 0;
  cli_error(
      "%s: unknown content format '%s' (try text, json, cbor, link, "
      "octet, xml or a number)",
      flag, text);
  return -1;
}

enum { OPT_OBSERVE = 0x300, OPT_COUNT, OPT_DURATION, OPT_JSON, OPT_NO_RESPONSE, OPT_Q_BLOCK };

/* Returns 0, 1 for --help, or -1 on bad usage (already reported). */
static int parse_args(request_args_t *a, const char *method, int argc, char **argv,
                      cli_options_t *p) {
  static const struct option longopts[] = {
      {"observe", no_argument, NULL, OPT_OBSERVE},
      {"count", required_argument, NULL, OPT_COUNT},
      {"duration", required_argument, NULL, OPT_DURATION},
      {"json", no_argument, NULL, OPT_JSON},
      {"no-response", required_argument, NULL, OPT_NO_RESPONSE},
      {"q-block", no_argument, NULL, OPT_Q_BLOCK},
      {"data", required_argument, NULL, 'd'},
      {"content-format", required_argument, NULL, 'f'},
      {"accept", required_argument, NULL, 'A'},
      {"non", no_argument, NULL, 'N'},
      {"timeout", required_argument, NULL, 't'},
      {"option", required_argument, NULL, 'O'},
      {"block-size", required_argument, NULL, 'b'},
      {"max-body", required_argument, NULL, 'M'},
      {"verbose", no_argument, NULL, 'v'},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
  };
  cli_options_init(p, method, "URI [options]", argc, argv, "d:f:A:t:O:b:vqh", longopts,
                   sizeof longopts / sizeof longopts[0], CLI_CLIENT_SECURITY, " option trust-rpk ");
  memset(a, 0, sizeof(*a));
  a->method = method_code(method);
  a->content_format = a->accept = COAP_FORMAT_NONE;
  a->confirmable = 1;
  a->observe = strcmp(method, "observe") == 0;
  int c;
  while ((c = cli_options_next(p)) != CLI_OPTIONS_END) {
    switch (c) {
      case CLI_OPTIONS_BAD: return -1;
      case 'd': a->data = optarg; break;
      case 'f':
        if (parse_format("-f", optarg, &a->content_format) < 0) return -1;
        break;
      case 'A':
        if (parse_format("-A", optarg, &a->accept) < 0) return -1;
        break;
      case 'N': a->confirmable = 0; break;
      case 't': {
        unsigned ms;
        if (cli_parse_seconds("-t", optarg, 0.001, 86400, &ms) < 0) return -1;
        a->timeout_s = ms / 1000.0;
        break;
      }
      case 'O':
        if (parse_extra_option(a, optarg) < 0) return -1;
        break;
      case 'b':
        if (parse_block_size(optarg, &a->block_size) < 0) return -1;
        break;
      case 'M':
        if (parse_max_body(optarg, &a->max_body) < 0) return -1;
        break;
      case 'v': a->verbose++; break;
      case 'q': a->quiet = 1; break;
      case 'h': return 1;
      case OPT_OBSERVE: a->observe = 1; break;
      case OPT_COUNT:
        if (parse_count(optarg, &a->count) < 0) return -1;
        break;
      case OPT_DURATION:
        if (cli_parse_seconds("--duration", optarg, 0.001, 604800, &a->duration_ms) < 0) return -1;
        break;
      case OPT_JSON: a->json = 1; break;
      case OPT_Q_BLOCK: a->qblock = 1; break;
      case OPT_NO_RESPONSE:
        if (parse_no_response(optarg, &a->no_response) < 0) return -1;
        a->no_response_text = optarg;
        break;
      default:
        if (security_flags_take(&a->sec, c, optarg) < 0) return -1;
        break;
    }
  }
  if (check_combination(a) < 0 || security_flags_check(&a->sec, 0) < 0) return -1;
  return cli_options_take_uri(p, &a->uri);
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

/* " [Block2 3/more/1024]": which block a message carries or asks for. */
static void describe_blocks(const coap_msg_t *msg, char *out, size_t cap) {
  static const uint16_t numbers[] = {COAP_OPTION_BLOCK1, COAP_OPTION_BLOCK2};
  static const char *const names[] = {"Block1", "Block2"};
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < 2 && len < cap; i++) {
    const coap_option_t *o = coap_msg_find_option(msg, numbers[i]);
    coap_block_t b;
    if (!o || coap_block_decode(o, &b) < 0) continue;
    int n = snprintf(out + len, cap - len, " [%s %u/%s/%zu]", names[i], b.num,
                     b.more ? "more" : "last", coap_block_size(b.szx));
    if (n > 0) len += (size_t)n;
  }
}

static void trace(void *user, int outgoing, const coap_address_t *peer, const coap_msg_t *msg) {
  char line[1024], addr[64], blocks[96];
  coap_msg_format(msg, line, sizeof line);
  describe_blocks(msg, blocks, sizeof blocks);
  fprintf(stderr, "%s %s %s%s\n", outgoing ? ">" : "<", line,
          coap_address_format(peer, addr, sizeof addr), blocks);
}

int request_exit_for_code(uint8_t code) {
  switch (COAP_CODE_CLASS(code)) {
    case 0: return EXIT_2XX; /* no response, as --no-response asked */
    case 2: return EXIT_2XX;
    case 4: return EXIT_4XX;
    default: return EXIT_5XX;
  }
}

/* What the request's callback was told, kept past it (the response itself
 * is printed in the callback, where it is valid). */
typedef struct request_outcome {
  const request_args_t *a;
  int done, status;
  uint8_t code;
  char detail[640];
} request_outcome_t;

/* The response: its payload on stdout for 2.xx (and with -v or --json for
 * any code), else one line on stderr. */
static void report_response(const request_args_t *a, const coap_reply_t *r) {
  if (r->code == 0) { /* --no-response: nothing came, as asked */
    if (a->verbose && a->no_response == NO_RESPONSE_ALL)
      fprintf(stderr, "coaps: sent (NON); no response expected (--no-response %s)\n",
              a->no_response_text);
    else if (a->verbose)
      fprintf(stderr, "coaps: no response within %g s, as --no-response %s allows\n",
              a->timeout_s > 0 ? a->timeout_s : NO_RESPONSE_WAIT_MS / 1000.0, a->no_response_text);
    return;
  }
  if (COAP_CODE_CLASS(r->code) != 2 && !a->verbose && !a->json)
    cli_error("%s%s%.*s", coap_code_name(r->code), r->payload_len ? ": " : "", (int)r->payload_len,
              r->payload_len ? (const char *)r->payload : "");
  else
    reply_print(a, r, PRINT_RAW);
}

static void on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  (void)ctx;
  request_outcome_t *out = user;
  out->done = 1;
  out->status = reply->status;
  if (reply->detail) snprintf(out->detail, sizeof out->detail, "%s", reply->detail);
  if (reply->status < 0) return;
  out->code = reply->code;
  report_response(out->a, reply);
  if (out->detail[0]) cli_error("%s", out->detail);
}

int request_explain_failure(const request_args_t *a, coap_context_t *ctx, int rc,
                            const char *detail) {
  coap_diag_t g;
  if (coap_context_last_diag(ctx, &g) == 0 && g.error == rc) {
    cli_print_diag(a->uri, &g);
    return cli_exit_for_diag(&g, rc);
  }
  if (rc == COAP_E_TIMEOUT && a->timeout_s > 0) {
    cli_error("%s: no response within %g s", a->uri, a->timeout_s);
  } else if ((rc <= COAP_E_URI_SCHEME && rc >= COAP_E_URI_ENCODING) || rc == COAP_E_URI_TOO_LONG) {
    cli_error("bad URI '%s': %s", a->uri, coap_strerror(rc));
    /* The command as typed: "get", not the method's name "GET". */
    char cmd[16];
    snprintf(cmd, sizeof cmd, "%s", coap_code_name(a->method));
    for (char *c = cmd; *c; c++) *c = (char)tolower((unsigned char)*c);
    fprintf(stderr, "usage: coaps %s coap[s]://host[:port]/path[?query] [options]\n", cmd);
  } else if (detail && *detail) {
    cli_error("%s: %s: %s%s", a->uri, coap_strerror(rc), detail,
              strstr(detail, "max_body") ? " (--max-body raises it)" : "");
  } else {
    cli_error("%s: %s", a->uri, coap_strerror(rc));
  }
  return cli_exit_for_error(rc);
}

static coap_context_t *request_context(const request_args_t *a) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  /* The tool reports failures itself, in one line; the library's own log
   * lines are for -v. */
  cfg.log = cli_log;
  cfg.log_level = a->verbose > 1 ? COAP_LOG_DEBUG : a->verbose ? COAP_LOG_INFO : COAP_LOG_ERROR;
  if (a->max_body) cfg.max_body = a->max_body;
  return coap_context_new(&cfg);
}

static void request_opts(const request_args_t *a, const uint8_t *payload, size_t payload_len,
                         coap_request_opts_t *o) {
  coap_request_opts_init(o, a->method, a->uri);
  o->confirmable = a->confirmable;
  o->content_format = a->content_format;
  o->accept = a->accept;
  o->payload = payload;
  o->payload_len = payload_len;
  o->options = a->extra;
  o->n_options = a->n_extra;
  o->timeout_ms = (uint32_t)(a->timeout_s * 1000);
  o->block_size = (uint16_t)a->block_size;
  o->observe = a->observe;
  o->no_response = a->no_response;
  o->qblock = a->qblock ? 1 : 0;
  /* Some classes suppressed: an answer of the others would come at once
   * (piggy-backed) or soon after (separate), and most likely none comes;
   * waiting the whole retransmission schedule (~93 s) for it would make
   * --no-response useless. The first retransmission still fits. */
  if (a->no_response && a->no_response != NO_RESPONSE_ALL && a->timeout_s == 0)
    o->timeout_ms = NO_RESPONSE_WAIT_MS;
}

/* Send and run the loop until the callback has run; 0 or the error. */
static int exchange(coap_context_t *ctx, const coap_request_opts_t *o, request_outcome_t *out) {
  int rc = coap_send_request(ctx, o, on_reply, out, NULL);
  if (rc < 0) {
    /* Refused before anything was sent: the context says why. */
    snprintf(out->detail, sizeof out->detail, "%s", coap_context_last_error(ctx));
    return rc;
  }
  while (!out->done)
    if ((rc = coap_context_process(ctx, -1)) < 0) return rc;
  return out->status;
}

static int run_request(const request_args_t *a) {
  uint8_t *payload;
  size_t payload_len;
  if (load_payload(a->data, &payload, &payload_len) < 0) return EXIT_USAGE;
  coap_context_t *ctx = request_context(a);
  if (!ctx) {
    free(payload);
    cli_error("out of memory");
    return EXIT_NETWORK;
  }
  int status = security_flags_apply(&a->sec, ctx, 0);
  if (status != 0) {
    coap_context_free(ctx);
    free(payload);
    return status;
  }
  if (a->verbose) coap_context_set_trace(ctx, trace, NULL);
  coap_request_opts_t o;
  request_opts(a, payload, payload_len, &o);
  if (a->observe) {
    status = observe_run(a, ctx, &o);
  } else {
    request_outcome_t r = {.a = a};
    int rc = exchange(ctx, &o, &r);
    status = rc < 0 ? request_explain_failure(a, ctx, rc, r.detail) : request_exit_for_code(r.code);
  }
  if (a->verbose) security_print_cid(ctx);
  coap_context_free(ctx);
  free(payload);
  return status;
}

int cmd_request(const char *method, int argc, char **argv) {
  request_args_t a;
  cli_options_t p;
  int rc = parse_args(&a, method, argc, argv, &p);
  if (rc == 1) {
    request_usage(stdout, method);
    return 0;
  }
  if (rc < 0) return cli_usage_error(&p);
  return run_request(&a);
}
