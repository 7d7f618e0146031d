/* coaps doctor URI: the connection taken apart step by step — resolve,
 * probe the port, cookie exchange, negotiation, authentication, key
 * confirmation, one CoAP request — each with its result and timing, and at
 * the step that failed the cause and the fix. */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "doctor.h"
#include "options.h"
#include "security_flags.h"

static void doctor_usage(FILE *out) {
  fprintf(out,
          "usage: coaps doctor URI [options]\n"
          "       coaps doctor --causes [--markdown]\n"
          "\n"
          "Check a coap:// or coaps:// connection step by step and say at which\n"
          "step it fails, why, and what to do.\n"
          "\n"
          "  URI                      coap[s]://host[:port]/path (GET is sent)\n"
          "  -t, --timeout SECONDS    for the CoAP request (default 10)\n"
          "      --probe-timeout S    for each port probe (default 1)\n"
          "      --json               one JSON object on standard output\n"
          "      --causes             list every failure cause with its fix\n"
          "      --markdown           with --causes: as a Markdown table\n"
          "  -h, --help               this help\n"
          "\n");
  security_flags_usage(out, 0);
  fprintf(out,
          "\n"
          "Exit codes: 0 the connection works, 3 no answer, 4 network (nothing\n"
          "listening, wrong port for the scheme, MTU, unknown host), 5 trust (keys,\n"
          "certificates, names), 6 no common security mode or suite, 7 local\n"
          "configuration (no credentials), 64 bad usage.\n");
}

enum { OPT_JSON = 0x200, OPT_PROBE_TIMEOUT, OPT_CAUSES, OPT_MARKDOWN };

/* 0, 1 for --help, 2 for --causes, -1 on bad usage (already reported). */
static int parse_doctor_args(doctor_args_t *a, int argc, char **argv, cli_options_t *p) {
  static const struct option longopts[] = {
      {"timeout", required_argument, NULL, 't'},
      {"probe-timeout", required_argument, NULL, OPT_PROBE_TIMEOUT},
      {"json", no_argument, NULL, OPT_JSON},
      {"causes", no_argument, NULL, OPT_CAUSES},
      {"markdown", no_argument, NULL, OPT_MARKDOWN},
      {"help", no_argument, NULL, 'h'},
  };
  cli_options_init(p, "doctor", "URI [options]", argc, argv, "t:h", longopts,
                   sizeof longopts / sizeof longopts[0], CLI_CLIENT_SECURITY, " trust-rpk ");
  memset(a, 0, sizeof(*a));
  a->timeout_ms = 10000;
  a->probe_timeout_ms = 1000;
  int c, causes = 0, others = 0;
  while ((c = cli_options_next(p)) != CLI_OPTIONS_END) {
    others += c != OPT_CAUSES && c != OPT_MARKDOWN;
    switch (c) {
      case CLI_OPTIONS_BAD: return -1;
      case 't':
        if (cli_parse_seconds("-t", optarg, 0.001, 3600, &a->timeout_ms) < 0) return -1;
        break;
      case OPT_PROBE_TIMEOUT:
        if (cli_parse_seconds("--probe-timeout", optarg, 0.01, 60, &a->probe_timeout_ms) < 0)
          return -1;
        break;
      case OPT_JSON: a->json = 1; break;
      case OPT_CAUSES: causes = 1; break;
      case OPT_MARKDOWN: a->markdown = 1; break;
      case 'h': return 1;
      default:
        if (security_flags_take(&a->sec, c, optarg) < 0) return -1;
        break;
    }
  }
  if (a->markdown && !causes) {
    cli_error("--markdown goes with --causes");
    return -1;
  }
  if (causes) {
    if (optind < argc) {
      cli_error("--causes takes no URI");
      return -1;
    }
    if (others) {
      cli_error("--causes takes no other option than --markdown");
      return -1;
    }
    return 2;
  }
  if (security_flags_check(&a->sec, 0) < 0) return -1;
  return cli_options_take_uri(p, &a->uri);
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- recording results ---- */

static void step_set(doctor_t *d, int i, step_status_t st, long ms, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void step_set(doctor_t *d, int i, step_status_t st, long ms, const char *fmt, ...) {
  d->steps[i].status = st;
  d->steps[i].ms = ms;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->steps[i].detail, sizeof d->steps[i].detail, fmt, ap);
  va_end(ap);
}

/* A failure the tool found itself (before the library was asked). */
static void fail_with(doctor_t *d, int step, coap_cause_t cause, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail_with(doctor_t *d, int step, coap_cause_t cause, const char *fmt, ...) {
  memset(&d->diag, 0, sizeof d->diag);
  d->diag.cause = cause;
  d->diag.alert = -1;
  d->diag.detected_by =
      cause == COAP_CAUSE_NO_CREDENTIALS ? COAP_DETECTED_CONFIG : COAP_DETECTED_NETWORK;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->diag.explanation, sizeof d->diag.explanation, fmt, ap);
  va_end(ap);
  snprintf(d->diag.fix, sizeof d->diag.fix, "%s", coap_cause_info(cause)->fix);
  d->failed = 1;
  d->failed_step = step;
  d->steps[step].status = ST_FAILED;
}

/* ---- the steps ---- */

static int step_resolve(doctor_t *d) {
  long t0 = now_ms();
  int rc = coap_uri_parse(&d->uri, d->a.uri);
  if (rc < 0) {
    cli_error("bad URI '%s': %s", d->a.uri, coap_strerror(rc));
    return EXIT_USAGE;
  }
  d->secure = d->uri.scheme == COAP_SCHEME_COAPS;
  if (coap_address_from_string(&d->addr, d->uri.host, d->uri.port) != 0) {
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
    int gai = getaddrinfo(d->uri.host, NULL, &hints, &res);
    if (gai != 0 || !res) {
      step_set(d, S_RESOLVE, ST_FAILED, now_ms() - t0, "%s: %s", d->uri.host, gai_strerror(gai));
      d->failed = 1;
      d->failed_step = S_RESOLVE;
      d->resolve_failed = 1;
      return 0;
    }
    memcpy(&d->addr.addr.st, res->ai_addr, res->ai_addrlen);
    d->addr.size = res->ai_addrlen;
    freeaddrinfo(res);
    coap_address_set_port(&d->addr, d->uri.port);
  }
  char text[64];
  step_set(d, S_RESOLVE, ST_OK, now_ms() - t0, "%s -> %s", d->uri.host,
           coap_address_format(&d->addr, text, sizeof text));
  return 0;
}

static void step_credentials(doctor_t *d, coap_context_t *ctx, int *exit_code) {
  const security_flags_t *f = &d->a.sec;
  char what[256] = "";
  size_t n = 0;
  if (f->psk_identity)
    n += snprintf(what + n, sizeof what - n, "PSK identity \"%s\"; ", f->psk_identity);
  if (f->cacert && n < sizeof what) n += snprintf(what + n, sizeof what - n, "CA %s; ", f->cacert);
  if (f->cert && n < sizeof what)
    n += snprintf(what + n, sizeof what - n, "certificate %s; ", f->cert);
  if (f->rpk && n < sizeof what) n += snprintf(what + n, sizeof what - n, "raw key %s; ", f->key);
  if (f->n_trust_rpk && n < sizeof what)
    n += snprintf(what + n, sizeof what - n, "%zu pinned raw key(s); ", f->n_trust_rpk);
  if (n >= 2 && n < sizeof what) what[n - 2] = '\0';
  int rc = security_flags_apply(f, ctx, 0);
  if (rc != 0) {
    *exit_code = rc;
    return;
  }
  if (!d->secure) {
    step_set(d, S_CREDENTIALS, ST_SKIPPED, 0, "coap:// needs none");
  } else if (!n) {
    fail_with(d, S_CREDENTIALS, COAP_CAUSE_NO_CREDENTIALS,
              "%s is a coaps:// URI and no credentials were given", d->a.uri);
  } else {
    step_set(d, S_CREDENTIALS, ST_OK, 0, "%s", what);
  }
}

/* The port, probed both ways: which protocol answers there? */
static void step_probe(doctor_t *d) {
  coap_probe_result_t dtls, coap;
  long t0 = now_ms();
  coap_probe_port(&d->addr, d->a.probe_timeout_ms, &dtls, &coap);
  long ms = now_ms() - t0;
  unsigned port = d->uri.port;
  int want_dtls = d->secure;
  if (dtls.answer == COAP_PROBE_REFUSED || coap.answer == COAP_PROBE_REFUSED) {
    fail_with(d, S_PROBE, COAP_CAUSE_PORT_UNREACHABLE,
              "ICMP port unreachable: nothing listens on UDP port %u of %s", port, d->uri.host);
  } else if (want_dtls && dtls.answer != COAP_PROBE_DTLS && coap.answer == COAP_PROBE_COAP) {
    fail_with(d, S_PROBE, COAP_CAUSE_PLAIN_COAP_PEER,
              "a CoAP ping got %s, a DTLS ClientHello got no DTLS answer: port %u serves "
              "plain coap://",
              coap.detail, port);
  } else if (!want_dtls && dtls.answer == COAP_PROBE_DTLS && coap.answer != COAP_PROBE_COAP) {
    fail_with(d, S_PROBE, COAP_CAUSE_DTLS_PEER,
              "a DTLS ClientHello got %s, a CoAP ping got no answer: port %u serves coaps://",
              dtls.detail, port);
  } else if ((want_dtls ? dtls.answer : coap.answer) == COAP_PROBE_SILENT &&
             dtls.answer == COAP_PROBE_SILENT && coap.answer == COAP_PROBE_SILENT) {
    /* Not conclusive (a firewall may drop probes only): go on. */
    step_set(d, S_PROBE, ST_WARN, ms,
             "neither a DTLS ClientHello nor a CoAP ping got an "
             "answer within %u ms",
             d->a.probe_timeout_ms);
    return;
  }
  if (d->failed) {
    d->steps[S_PROBE].ms = ms;
    return;
  }
  step_set(d, S_PROBE, ST_OK, ms, "DTLS ClientHello got %s; CoAP ping got %s",
           dtls.answer == COAP_PROBE_SILENT ? "no answer" : dtls.detail,
           coap.answer == COAP_PROBE_SILENT ? "no answer" : coap.detail);
}

static void step_request(doctor_t *d, coap_context_t *ctx) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, d->a.uri);
  o.timeout_ms = d->a.timeout_ms;
  coap_response_copy_t r;
  long t0 = now_ms();
  int rc = coap_request_blocking(ctx, &o, &r);
  long ms = now_ms() - t0;
  d->has_rep = d->secure && coap_context_last_handshake(ctx, &d->rep) == 0;
  if (d->has_rep) doctor_fill_handshake_steps(d);
  d->has_cid =
      d->has_rep && d->rep.established && coap_dtls_last_cid(coap_context_dtls(ctx), &d->cid) == 0;
  if (rc == 0) {
    long hs = d->has_rep ? (long)d->rep.step_ms[COAP_STEP_ESTABLISHED] : 0;
    step_set(d, S_REQUEST, ST_OK, ms - hs, "GET -> %s, %zu bytes", coap_code_name(r.code),
             r.payload_len);
    d->code = r.code;
    coap_response_copy_clear(&r);
    return;
  }
  coap_diag_t g;
  if (coap_context_last_diag(ctx, &g) == 0 && g.error == rc) {
    d->diag = g;
  } else {
    memset(&d->diag, 0, sizeof d->diag);
    d->diag.cause = COAP_CAUSE_PROTOCOL;
    d->diag.alert = -1;
    snprintf(d->diag.explanation, sizeof d->diag.explanation, "%s", coap_strerror(rc));
    snprintf(d->diag.fix, sizeof d->diag.fix, "run 'coaps get -v %s' for the exchange", d->a.uri);
  }
  d->failed = 1;
  d->failed_step = doctor_step_of(d);
  d->steps[d->failed_step].status = ST_FAILED;
  d->steps[d->failed_step].ms = d->failed_step == S_REQUEST ? ms : (long)d->diag.elapsed_ms;
}

int doctor_exit_code(const doctor_t *d) {
  if (!d->failed) return 0;
  if (d->resolve_failed) return EXIT_NETWORK;
  switch (coap_cause_info(d->diag.cause)->cls) {
    case COAP_CLASS_NO_ANSWER: return EXIT_TIMEOUT;
    case COAP_CLASS_NETWORK: return EXIT_NETWORK;
    case COAP_CLASS_NEGOTIATION: return EXIT_NEGOTIATION;
    case COAP_CLASS_CONFIG: return EXIT_CONFIG;
    default: return EXIT_SECURITY;
  }
}

static int run_doctor(doctor_t *d) {
  int rc = step_resolve(d);
  if (rc) return rc;
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  /* The doctor reports failures itself. */
  cfg.log = cli_log;
  cfg.log_level = COAP_LOG_ERROR;
  coap_context_t *ctx = coap_context_new(&cfg);
  if (!ctx) {
    cli_error("out of memory");
    return EXIT_NETWORK;
  }
  int exit_code = 0;
  if (!d->failed) step_credentials(d, ctx, &exit_code);
  if (exit_code) {
    coap_context_free(ctx);
    return exit_code;
  }
  if (!d->failed) step_probe(d);
  if (!d->failed) step_request(d, ctx);
  coap_context_free(ctx);
  if (d->a.json)
    doctor_print_json(d);
  else
    doctor_print_text(d);
  return doctor_exit_code(d);
}

int cmd_doctor(int argc, char **argv) {
  doctor_t *d = calloc(1, sizeof(*d));
  if (!d) return EXIT_NETWORK;
  cli_options_t p;
  int rc = parse_doctor_args(&d->a, argc, argv, &p);
  if (rc == 1) {
    doctor_usage(stdout);
  } else if (rc == 2) {
    doctor_print_causes(d->a.markdown);
  } else if (rc < 0) {
    cli_usage_error(&p);
  } else {
    doctor_init_steps(d);
    rc = run_doctor(d);
  }
  free(d);
  return rc == 1 || rc == 2 ? 0 : rc < 0 ? EXIT_USAGE : rc;
}
